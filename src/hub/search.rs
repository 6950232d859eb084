//! `models search`: the hub's model search (`GET /api/models?search=…&sort=downloads`), most
//! downloaded first, optionally only repos holding GGUF files (`filter=gguf`), with what each
//! hit is and whether this engine runs its architecture. The fields asked for (`expand=`) are
//! the ones shown: downloads, likes, tags, pipeline tag, last change, and the architecture
//! from the repo's config or its GGUF metadata.

use super::transfer::Http;
use super::{HubError, HubSettings, Result};
use crate::model::Arch;

/// The most hits one search asks for.
pub const MAX_LIMIT: usize = 100;

/// The fields each hit is asked for (the hub sends only these, and the id).
const EXPAND: [&str; 7] = [
    "downloads",
    "likes",
    "tags",
    "pipeline_tag",
    "lastModified",
    "config",
    "gguf",
];

/// What to search for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Words the repo id contains.
    pub text: String,
    /// Only repos holding GGUF files.
    pub gguf_only: bool,
    /// How many hits, 1 to [`MAX_LIMIT`].
    pub limit: usize,
}

impl SearchQuery {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.trim().to_string(),
            gguf_only: false,
            limit: 20,
        }
    }
}

/// One repo the search found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// `org/name`.
    pub id: String,
    pub downloads: u64,
    pub likes: u64,
    pub tags: Vec<String>,
    /// `text-generation`, … when the hub knows it.
    pub pipeline_tag: Option<String>,
    /// When the repo last changed (ISO 8601, as the hub sends it).
    pub last_modified: Option<String>,
    /// The repo holds GGUF files.
    pub gguf: bool,
    /// `llama`, `qwen2`, … from its config.json, its GGUF metadata or its tags.
    pub architecture: Option<String>,
}

impl SearchHit {
    /// Whether this engine runs the architecture: None when the hub does not say what it is.
    pub fn supported(&self) -> Option<bool> {
        self.architecture.as_deref().map(|a| Arch::parse(a).is_some())
    }

    /// `yes (qwen2)`, `no (mamba)` or `?`: the engine column of the CLI's table and the panel.
    pub fn engine_label(&self) -> String {
        match (self.supported(), &self.architecture) {
            (Some(true), Some(a)) => format!("yes ({a})"),
            (Some(false), Some(a)) => format!("no ({a})"),
            _ => "?".into(),
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct RawHit {
    id: String,
    #[serde(default)]
    downloads: Option<u64>,
    #[serde(default)]
    likes: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    pipeline_tag: Option<String>,
    #[serde(default, rename = "lastModified")]
    last_modified: Option<String>,
    #[serde(default)]
    config: Option<RawConfig>,
    #[serde(default)]
    gguf: Option<RawGguf>,
}

#[derive(Debug, serde::Deserialize)]
struct RawConfig {
    #[serde(default)]
    model_type: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct RawGguf {
    #[serde(default)]
    architecture: Option<String>,
}

impl RawHit {
    fn into_hit(self) -> SearchHit {
        let architecture = self
            .config
            .and_then(|c| c.model_type)
            .or_else(|| self.gguf.as_ref().and_then(|g| g.architecture.clone()))
            .or_else(|| self.tags.iter().find(|t| Arch::parse(t).is_some()).cloned());
        SearchHit {
            gguf: self.gguf.is_some() || self.tags.iter().any(|t| t == "gguf"),
            id: self.id,
            downloads: self.downloads.unwrap_or(0),
            likes: self.likes.unwrap_or(0).max(0) as u64,
            tags: self.tags,
            pipeline_tag: self.pipeline_tag,
            last_modified: self.last_modified,
            architecture,
        }
    }
}

/// Asks the hub for repos matching `q`, most downloaded first.
pub fn search(hub: &HubSettings, q: &SearchQuery) -> Result<Vec<SearchHit>> {
    let text = q.text.trim();
    let bad = |m: &str| HubError::Repo {
        repo: format!("search `{text}`"),
        message: m.to_string(),
    };
    if text.is_empty() {
        return Err(bad("type words the repo id contains, e.g. `smollm2 gguf`"));
    }
    if q.limit == 0 || q.limit > MAX_LIMIT {
        return Err(bad(&format!("--limit must be 1 to {MAX_LIMIT}, not {}", q.limit)));
    }
    let limit = q.limit.to_string();
    let mut query: Vec<(&str, &str)> = vec![
        ("search", text),
        ("limit", &limit),
        ("sort", "downloads"),
        ("direction", "-1"),
    ];
    if q.gguf_only {
        query.push(("filter", "gguf"));
    }
    query.extend(EXPAND.iter().map(|f| ("expand", *f)));
    let url = format!("{}/api/models", hub.endpoint);
    let raw: Vec<RawHit> = Http::new(hub.token.clone()).get_json_query(&url, &query, 16 << 20)?;
    Ok(raw
        .into_iter()
        .map(RawHit::into_hit)
        .filter(|h| h.gguf || !q.gguf_only)
        .take(q.limit)
        .collect())
}

/// `1.2M`, `34.5k`, `950`: download and like counts as the hub shows them.
pub fn compact_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}B", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(json: &str) -> SearchHit {
        serde_json::from_str::<RawHit>(json).unwrap().into_hit()
    }

    #[test]
    fn hits_read_what_the_hub_sends() {
        let h = hit(
            r#"{"id": "a/b-GGUF", "downloads": 1200, "likes": 3, "tags": ["gguf", "llama"],
                "lastModified": "2025-01-02T03:04:05.000Z", "gguf": {"architecture": "qwen3"}}"#,
        );
        assert!(h.gguf);
        assert_eq!(
            h.architecture.as_deref(),
            Some("qwen3"),
            "the GGUF metadata before tags"
        );
        assert_eq!(h.engine_label(), "yes (qwen3)");
        let h = hit(r#"{"id": "a/m", "config": {"model_type": "mamba"}, "tags": ["llama"]}"#);
        assert_eq!((h.downloads, h.likes, h.gguf), (0, 0, false));
        assert_eq!(h.engine_label(), "no (mamba)", "config.json before tags");
        let h = hit(r#"{"id": "a/x", "tags": ["text-generation"], "likes": -1}"#);
        assert_eq!((h.engine_label().as_str(), h.likes), ("?", 0));
        assert!(serde_json::from_str::<RawHit>(r#"{"downloads": 3}"#).is_err());
    }

    #[test]
    fn bad_queries_are_refused_before_asking() {
        let hub = HubSettings {
            endpoint: "http://127.0.0.1:9".into(),
            token: None,
        };
        let err = search(&hub, &SearchQuery::new("  ")).unwrap_err().to_string();
        assert!(err.contains("type words"), "{err}");
        let mut q = SearchQuery::new("qwen");
        q.limit = 0;
        let err = search(&hub, &q).unwrap_err().to_string();
        assert!(err.contains("--limit must be 1 to 100, not 0"), "{err}");
    }

    #[test]
    fn counts_read_short() {
        assert_eq!(compact_count(950), "950");
        assert_eq!(compact_count(34_500), "34.5k");
        assert_eq!(compact_count(1_240_000), "1.2M");
    }
}
