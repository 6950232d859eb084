//! Import of Parquet files written by Hugging Face `datasets` (scripts/make_parquet_fixture.py):
//! the s1K and s1K-1.1 shapes are recognised, list and struct columns read, traces come along,
//! and the trainer reads the same files.

mod common;

use s1_studio::curate::steps::import;
use s1_studio::data::record::Shape;
use s1_studio::workspace::Workspace;

#[test]
fn s1k_parquet_from_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    let r = import::import(
        &mut ws,
        &common::fixture("curate/s1k_like.parquet"),
        &Default::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        (r.shape, r.rows, r.added, r.malformed, r.traces),
        (Shape::S1k, 3, 3, 0, 3)
    );
    let (trace, attempt, origin): (String, String, String) = ws
        .conn
        .query_row(
            "SELECT trace, trace_attempt, trace_origin FROM questions WHERE question = 'How many primes are below 30?'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (trace.as_str(), attempt.as_str(), origin.as_str()),
        (
            "2, 3, 5, 7, 11, 13, 17, 19, 23, 29.",
            "10",
            "column:thinking_trajectories"
        )
    );
    let (source, meta): (String, String) = ws
        .conn
        .query_row(
            "SELECT source, metadata FROM questions WHERE question = 'Solve $x+1=3$.'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (source.as_str(), meta.as_str()),
        ("AI-MO/NuminaMath-CoT/aops_forum", "{'source': 'aops_forum'}")
    );
    let rows = s1_studio::train::data::read_rows(
        &common::fixture("curate/s1k_like.parquet"),
        &s1_studio::train::data::TraceColumns::Auto,
    )
    .unwrap();
    assert_eq!(
        rows[1].trajectories,
        vec!["2, 3, 5, 7, 11, 13, 17, 19, 23, 29.".to_string()]
    );
}

#[test]
fn s1k11_parquet_takes_the_deepseek_traces_and_keeps_the_rest_as_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    let p = common::fixture("curate/s1k11_like.parquet");
    let r = import::import(&mut ws, &p, &Default::default(), |_| {}).unwrap();
    assert_eq!((r.shape, r.added, r.traces), (Shape::S1k11, 1, 1));
    let (trace, attempt): (String, String) = ws
        .conn
        .query_row("SELECT trace, trace_attempt FROM questions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (trace.as_str(), attempt.as_str()),
        ("Six sevens are forty-two.", "**42**")
    );
    // The Gemini trace is chosen by mapping.
    let dir2 = tempfile::tempdir().unwrap();
    let mut ws2 = Workspace::open(dir2.path()).unwrap();
    let opts = import::ImportOptions {
        mapping: Some("trace=gemini_thinking_trajectory,attempt=gemini_attempt".into()),
        ..Default::default()
    };
    import::import(&mut ws2, &p, &opts, |_| {}).unwrap();
    let trace: String = ws2
        .conn
        .query_row("SELECT trace FROM questions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(trace, "6*7");
    // The struct column reads as JSON (kept whole when the row has its own metadata string).
    let mut seen = None;
    s1_studio::data::read::for_each_row(&p, |r| {
        seen = Some(r.unwrap().columns["extra"].clone());
        true
    })
    .unwrap();
    assert_eq!(seen.unwrap(), serde_json::json!({"level": 3, "tags": ["a", "b"]}));
}
