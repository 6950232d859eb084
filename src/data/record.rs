//! A pool question as curation keeps it, and how a source file's columns map onto it. The shapes of
//! the known sources are recognised from their columns (s1K, s1K-1.1, MATH, AIME, OlympiadBench,
//! GSM8K, GPQA); anything else needs at least a question column, found by its usual names or given
//! explicitly (`question=prompt,solution=output`).

use serde_json::{Map, Value};

/// A question of the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// sha256(question)[:16]
    pub key: String,
    pub question: String,
    /// The reference solution (text), if the source has one.
    pub solution: Option<String>,
    /// The reference final answer, if the source has one apart from the solution.
    pub answer: Option<String>,
    /// s1K's `source_type`: the source column where there is one, else the file's name.
    pub source: String,
    /// s1K's `cot_type` ("math" unless the source says otherwise).
    pub cot_type: String,
    /// s1K's `metadata`: the source's string as is, else the unmapped columns as a JSON object.
    pub metadata: String,
    /// A thinking trace that came with the row.
    pub trace: Option<String>,
    /// The trace generator's answer that came with the row.
    pub attempt: Option<String>,
    /// An MSC domain code that came with the row.
    pub domain: Option<String>,
    /// The trace's length in tokens, when the file carries it.
    pub trace_tokens: Option<usize>,
}

impl Record {
    /// Asks the CPU to start loading the record's texts into its cache. The records of an import
    /// are built on worker threads, each text its own allocation, so the inserting thread's first
    /// touch of every text missed the cache (a third of its time went to the copies SQLite makes
    /// when binding them); prefetching the next row while this one is inserted hides those misses.
    pub fn prefetch(&self) {
        let texts = [
            Some(&self.key),
            Some(&self.question),
            self.solution.as_ref(),
            self.answer.as_ref(),
            Some(&self.source),
            Some(&self.cot_type),
            Some(&self.metadata),
            self.trace.as_ref(),
            self.attempt.as_ref(),
            self.domain.as_ref(),
        ];
        for t in texts.into_iter().flatten() {
            prefetch_bytes(t.as_bytes());
        }
    }
}

/// A hint to load `bytes` into the cache (no effect on other architectures).
fn prefetch_bytes(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for line in bytes.chunks(64) {
            // SAFETY: a prefetch is only a hint; it never faults, even for an invalid address,
            // and here the address is inside a live slice.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr() as *const i8) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// The recognised shapes of source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    S1k,
    S1k11,
    Gpqa,
    OlympiadBench,
    Gsm8k,
    /// MATH and AIME files: `problem`, `solution` and/or `answer`.
    MathLike,
    /// Found by the usual column names or given explicitly.
    Generic,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::S1k => "s1K",
            Shape::S1k11 => "s1K-1.1",
            Shape::Gpqa => "GPQA",
            Shape::OlympiadBench => "OlympiadBench",
            Shape::Gsm8k => "GSM8K",
            Shape::MathLike => "MATH/AIME",
            Shape::Generic => "generic",
        }
    }
}

/// Which column holds each field. `None`: the file has no such column.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ColumnMap {
    pub question: String,
    pub solution: Option<String>,
    pub answer: Option<String>,
    pub trace: Option<String>,
    pub attempt: Option<String>,
    pub domain: Option<String>,
    pub source: Option<String>,
    pub cot_type: Option<String>,
    /// Text to put before the question (OlympiadBench's `context`).
    pub context: Option<String>,
    /// Precomputed trace lengths in tokens.
    #[serde(default)]
    pub trace_tokens: Option<String>,
}

/// The fields a mapping can name, in `field=column` pairs.
pub const FIELDS: [&str; 10] = [
    "question",
    "solution",
    "answer",
    "trace",
    "attempt",
    "domain",
    "source",
    "cot_type",
    "context",
    "trace_tokens",
];

fn first(cols: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find(|n| cols.contains_key(**n)).map(|n| n.to_string())
}

/// The shape of a file from its first row's columns, and the mapping that goes with it.
pub fn detect(cols: &Map<String, Value>) -> (Shape, Option<ColumnMap>) {
    let has = |k: &str| cols.contains_key(k);
    let s = |k: &str| has(k).then(|| k.to_string());
    if has("deepseek_thinking_trajectory") || has("gemini_thinking_trajectory") {
        let (trace, attempt) = if has("deepseek_thinking_trajectory") {
            ("deepseek_thinking_trajectory", "deepseek_attempt")
        } else {
            ("gemini_thinking_trajectory", "gemini_attempt")
        };
        return (
            Shape::S1k11,
            Some(ColumnMap {
                question: "question".into(),
                solution: s("solution"),
                trace: s(trace),
                attempt: s(attempt),
                source: s("source_type"),
                cot_type: s("cot_type"),
                ..Default::default()
            }),
        );
    }
    if has("thinking_trajectories") && has("question") {
        return (
            Shape::S1k,
            Some(ColumnMap {
                question: "question".into(),
                solution: s("solution"),
                trace: s("thinking_trajectories"),
                attempt: s("attempt"),
                source: s("source_type"),
                cot_type: s("cot_type"),
                ..Default::default()
            }),
        );
    }
    if has("Question") && has("Correct Answer") {
        return (
            Shape::Gpqa,
            Some(ColumnMap {
                question: "Question".into(),
                solution: s("Explanation"),
                answer: s("Correct Answer"),
                ..Default::default()
            }),
        );
    }
    if has("question") && has("final_answer") {
        return (
            Shape::OlympiadBench,
            Some(ColumnMap {
                question: "question".into(),
                solution: s("solution"),
                answer: s("final_answer"),
                context: s("context"),
                ..Default::default()
            }),
        );
    }
    if has("question") && has("answer") && !has("solution") {
        let gsm8k = cols
            .get("answer")
            .and_then(Value::as_str)
            .is_some_and(|a| a.contains("####"));
        if gsm8k {
            return (
                Shape::Gsm8k,
                Some(ColumnMap {
                    question: "question".into(),
                    solution: s("answer"),
                    ..Default::default()
                }),
            );
        }
    }
    if has("problem") {
        return (
            Shape::MathLike,
            Some(ColumnMap {
                question: "problem".into(),
                solution: s("solution"),
                answer: s("answer"),
                source: s("source_type"),
                ..Default::default()
            }),
        );
    }
    let question = first(cols, &["question", "Question", "prompt", "input", "instruction"]);
    (
        Shape::Generic,
        question.map(|question| ColumnMap {
            question,
            solution: first(cols, &["solution", "Explanation", "reasoning", "output", "response"]),
            answer: first(cols, &["answer", "final_answer", "Correct Answer", "target"]),
            trace: first(cols, &["thinking_trajectory", "trace", "thinking"]),
            attempt: s("attempt"),
            domain: first(cols, &["domain", "msc"]),
            source: s("source_type"),
            cot_type: s("cot_type"),
            trace_tokens: s("trace_tokens"),
            ..Default::default()
        }),
    )
}

/// Applies `field=column` overrides (comma-separated) to a mapping; an empty column unsets a field.
pub fn apply_overrides(map: &mut ColumnMap, overrides: &str) -> Result<(), String> {
    for pair in overrides.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, column) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not field=column"))?;
        let (field, column) = (field.trim(), column.trim());
        let col = (!column.is_empty()).then(|| column.to_string());
        match field {
            "question" => map.question = col.ok_or("the question column cannot be unset")?,
            "solution" => map.solution = col,
            "answer" => map.answer = col,
            "trace" => map.trace = col,
            "attempt" => map.attempt = col,
            "domain" => map.domain = col,
            "source" => map.source = col,
            "cot_type" => map.cot_type = col,
            "context" => map.context = col,
            "trace_tokens" => map.trace_tokens = col,
            other => return Err(format!("unknown field `{other}`; fields: {}", FIELDS.join(", "))),
        }
    }
    Ok(())
}

/// A value as text: strings as they are (moved, not copied), numbers printed, lists joined
/// (`sep`), null and empty as none.
fn text_of(v: Option<Value>, sep: &str) -> Option<String> {
    let t = match v? {
        Value::Null => return None,
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.into_iter().filter_map(|i| text_of(Some(i), sep)).collect();
            parts.join(sep)
        }
        other => other.to_string(),
    };
    (!t.trim().is_empty()).then_some(t)
}

/// A trace column: s1K keeps a list with one trace; take the first non-empty.
fn trace_of(v: Option<Value>) -> Option<String> {
    match v? {
        Value::Array(items) => items.into_iter().find_map(|i| text_of(Some(i), "")),
        other => text_of(Some(other), ""),
    }
}

/// Builds a record from a row, taking its values (no copies of the long texts). `default_source`
/// names the source when no column does (the file's name). Errors name what is missing.
pub fn to_record(
    mut cols: Map<String, Value>,
    map: &ColumnMap,
    shape: Shape,
    default_source: &str,
) -> Result<Record, String> {
    let fields: [Option<&String>; 10] = [
        Some(&map.question),
        map.solution.as_ref(),
        map.answer.as_ref(),
        map.trace.as_ref(),
        map.attempt.as_ref(),
        map.domain.as_ref(),
        map.source.as_ref(),
        map.cot_type.as_ref(),
        map.context.as_ref(),
        map.trace_tokens.as_ref(),
    ];
    let mut mapped: Vec<&str> = fields.iter().flatten().map(|s| s.as_str()).collect();
    // A column named by two fields is copied for the first and moved for the last.
    let mut grab = |c: Option<&String>| -> Option<Value> {
        let c = c?;
        let uses = mapped.iter().filter(|m| **m == c.as_str()).count();
        if uses > 1 {
            let v = cols.get(c).cloned();
            // Count this use as spent: the next lookup of the same column takes it.
            if let Some(pos) = mapped.iter().position(|m| *m == c.as_str()) {
                mapped.remove(pos);
            }
            v
        } else {
            cols.remove(c)
        }
    };
    let mut question = match grab(Some(&map.question)) {
        None => return Err(format!("no `{}` column", map.question)),
        Some(v) => text_of(Some(v), "\n").ok_or_else(|| format!("empty `{}`", map.question))?,
    };
    if let Some(ctx) = text_of(grab(map.context.as_ref()), "\n") {
        question = format!("{ctx}\n\n{question}");
    }
    let mut solution = text_of(grab(map.solution.as_ref()), "\n\n");
    let mut answer = text_of(grab(map.answer.as_ref()), ", ");
    let trace = trace_of(grab(map.trace.as_ref()));
    let attempt = text_of(grab(map.attempt.as_ref()), "\n");
    let domain = text_of(grab(map.domain.as_ref()), " ");
    let source = text_of(grab(map.source.as_ref()), " ");
    let cot_type = text_of(grab(map.cot_type.as_ref()), " ");
    let trace_tokens = match grab(map.trace_tokens.as_ref()) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    format!(
                        "`{}` is not a token count: {v}",
                        map.trace_tokens.as_deref().unwrap_or("")
                    )
                })? as usize,
        ),
    };
    if shape == Shape::Gsm8k {
        answer = solution
            .as_deref()
            .and_then(|s| s.rsplit_once("####"))
            .map(|(_, a)| a.trim().to_string());
    }
    if solution.is_none() && answer.is_some() && shape != Shape::Gpqa {
        // MATH train and similar: the answer is the only reference there is.
        solution = answer.clone();
    }
    let metadata = match cols.remove("metadata") {
        Some(Value::String(s)) => s,
        other => {
            if let Some(v) = other {
                cols.insert("metadata".into(), v);
            }
            Value::Object(cols).to_string()
        }
    };
    Ok(Record {
        key: crate::data::question_key(&question),
        question,
        solution,
        answer,
        source: source.unwrap_or_else(|| default_source.to_string()),
        cot_type: cot_type.unwrap_or_else(|| "math".to_string()),
        metadata,
        trace,
        attempt,
        domain,
        trace_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn olympiadbench_lists_are_joined_and_context_prepended() {
        let row = obj(
            json!({"id": 1, "question": "Q?", "solution": ["a", "b"], "final_answer": ["2", "3"],
                             "context": "Given x.", "unit": null}),
        );
        let (shape, map) = detect(&row);
        assert_eq!(shape, Shape::OlympiadBench);
        let r = to_record(row.clone(), &map.unwrap(), shape, "olympiad").unwrap();
        assert_eq!(r.question, "Given x.\n\nQ?");
        assert_eq!(r.solution.as_deref(), Some("a\n\nb"));
        assert_eq!(r.answer.as_deref(), Some("2, 3"));
        assert_eq!(r.source, "olympiad");
        assert_eq!(r.metadata, r#"{"id":1,"unit":null}"#);
    }

    #[test]
    fn gsm8k_answer_is_split_from_its_solution() {
        let row = obj(json!({"question": "Q", "answer": "3+4=7\n#### 7"}));
        let (shape, map) = detect(&row);
        assert_eq!(shape, Shape::Gsm8k);
        let r = to_record(row.clone(), &map.unwrap(), shape, "gsm8k").unwrap();
        assert_eq!(
            (r.solution.as_deref(), r.answer.as_deref()),
            (Some("3+4=7\n#### 7"), Some("7"))
        );
    }

    #[test]
    fn s1k_trace_list_and_string_metadata() {
        let row = obj(
            json!({"question": "Q", "solution": "S", "cot_type": "math", "source_type": "AI-MO/NuminaMath",
                             "metadata": "{'a': 1}", "cot": null, "thinking_trajectories": ["T"], "attempt": "A"}),
        );
        let (shape, map) = detect(&row);
        assert_eq!(shape, Shape::S1k);
        let r = to_record(row.clone(), &map.unwrap(), shape, "file").unwrap();
        assert_eq!(r.trace.as_deref(), Some("T"));
        assert_eq!(r.attempt.as_deref(), Some("A"));
        assert_eq!(r.source, "AI-MO/NuminaMath");
        assert_eq!(r.metadata, "{'a': 1}");
    }

    #[test]
    fn gpqa_columns() {
        let row = obj(
            json!({"Question": "Which gas?", "Correct Answer": "Argon", "Incorrect Answer 1": "Neon",
                             "Explanation": "Noble.", "Record ID": "rec1"}),
        );
        let (shape, map) = detect(&row);
        assert_eq!(shape, Shape::Gpqa);
        let r = to_record(row, &map.unwrap(), shape, "gpqa_diamond").unwrap();
        assert_eq!(
            (r.question.as_str(), r.answer.as_deref(), r.solution.as_deref()),
            ("Which gas?", Some("Argon"), Some("Noble."))
        );
        assert!(r.metadata.contains("Incorrect Answer 1") && r.metadata.contains("rec1"));
    }

    #[test]
    fn overrides_and_their_errors() {
        let mut m = ColumnMap::default();
        apply_overrides(&mut m, "question=prompt, solution=output,answer=").unwrap();
        assert_eq!(
            (m.question.as_str(), m.solution.as_deref(), m.answer.as_deref()),
            ("prompt", Some("output"), None)
        );
        assert!(apply_overrides(&mut m, "colour=x")
            .unwrap_err()
            .contains("unknown field"));
        assert!(apply_overrides(&mut m, "question")
            .unwrap_err()
            .contains("field=column"));
        let row = obj(json!({"prompt": "  "}));
        assert!(to_record(row.clone(), &m, Shape::Generic, "f")
            .unwrap_err()
            .contains("empty `prompt`"));
    }
}
