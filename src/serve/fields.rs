//! Reading one field of a JSON request: absent and `null` are the same (`None`); a value of the
//! wrong type or range is a 400 that names the field. Unknown fields are left alone (clients send
//! many this server has no use for).

use serde_json::{Map, Value};

use super::error::ApiError;

pub type Object = Map<String, Value>;

/// The request body as a JSON object.
pub fn object(body: &[u8]) -> Result<Object, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}"), Some("invalid_json")))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request(
            "the body must be a JSON object",
            Some("invalid_json"),
        )),
    }
}

fn present<'a>(obj: &'a Object, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

/// A whole number >= 0.
pub fn uint(obj: &Object, name: &str) -> Result<Option<usize>, ApiError> {
    let Some(v) = present(obj, name) else { return Ok(None) };
    if let Some(n) = v.as_u64() {
        return usize::try_from(n)
            .map(Some)
            .map_err(|_| ApiError::invalid(name, format!("`{name}` is too large")));
    }
    if v.as_i64().is_some() || v.as_f64().is_some_and(|f| f < 0.0) {
        return Err(ApiError::invalid(name, format!("`{name}` must be >= 0 (got {v})")));
    }
    Err(ApiError::invalid(
        name,
        format!("`{name}` must be a whole number (got {v})"),
    ))
}

/// A number within `lo..=hi`.
pub fn float(obj: &Object, name: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
    let Some(v) = present(obj, name) else { return Ok(None) };
    match v.as_f64() {
        Some(f) if (lo..=hi).contains(&f) => Ok(Some(f)),
        Some(f) => Err(ApiError::invalid(
            name,
            format!("`{name}` must be between {lo} and {hi} (got {f})"),
        )),
        None => Err(ApiError::invalid(name, format!("`{name}` must be a number (got {v})"))),
    }
}

pub fn string<'a>(obj: &'a Object, name: &str) -> Result<Option<&'a str>, ApiError> {
    let Some(v) = present(obj, name) else { return Ok(None) };
    v.as_str()
        .map(Some)
        .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be a string (got {v})")))
}

pub fn boolean(obj: &Object, name: &str) -> Result<Option<bool>, ApiError> {
    let Some(v) = present(obj, name) else { return Ok(None) };
    v.as_bool()
        .map(Some)
        .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be true or false (got {v})")))
}

/// A nested object (`stream_options`, `chat_template_kwargs`).
pub fn nested<'a>(obj: &'a Object, name: &str) -> Result<Option<&'a Object>, ApiError> {
    let Some(v) = present(obj, name) else { return Ok(None) };
    v.as_object()
        .map(Some)
        .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be an object")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Object {
        object(s.as_bytes()).unwrap()
    }

    #[test]
    fn numbers_are_checked_and_named() {
        let o = obj(r#"{"a": 5, "b": -1, "c": 1.5, "d": "x", "e": null}"#);
        assert_eq!(uint(&o, "a").unwrap(), Some(5));
        let e = uint(&o, "b").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("b"));
        assert!(e.message.contains(">= 0"), "{}", e.message);
        assert!(uint(&o, "c").unwrap_err().message.contains("whole number"));
        assert!(uint(&o, "d").is_err());
        assert_eq!(uint(&o, "e").unwrap(), None);
        assert_eq!(uint(&o, "missing").unwrap(), None);
        assert_eq!(float(&o, "c", 0.0, 2.0).unwrap(), Some(1.5));
        assert!(float(&o, "c", 0.0, 1.0).is_err());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_400() {
        assert_eq!(object(b"{nope").unwrap_err().code, Some("invalid_json"));
        assert_eq!(object(b"[1]").unwrap_err().code, Some("invalid_json"));
    }
}
