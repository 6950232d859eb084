//! Evaluation sets and `grade` inputs as Parquet (a Hugging Face `datasets` file) or JSON, not
//! only JSONL: the same questions and verdicts as the JSONL of the same rows; a file of another
//! kind is refused naming its extension.

use std::process::Command;

use s1_studio::data::parquet_io::{Column, TableWriter};
use s1_studio::eval::benchmarks::load;

const ROWS: [(&str, &str, &str); 3] = [
    ("What is 1+1?", "2", "so \\boxed{2}"),
    ("What is 2+3?", "5", "Answer: 6"),
    ("What is 10/4?", "\\frac{5}{2}", "\\boxed{2.5}"),
];

fn write_parquet(path: &std::path::Path) {
    let mut w = TableWriter::create(path, &[("problem", false), ("answer", false), ("response", false)]).unwrap();
    let col = |i: usize| Column::Text(ROWS.iter().map(|r| Some([r.0, r.1, r.2][i].to_string())).collect());
    w.write(vec![col(0), col(1), col(2)]).unwrap();
    w.finish().unwrap();
}

fn write_jsonl(path: &std::path::Path) {
    let text: String = ROWS
        .iter()
        .map(|(q, a, r)| format!("{}\n", serde_json::json!({"problem": q, "answer": a, "response": r})))
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn an_eval_set_as_parquet_or_json_loads_as_its_jsonl() {
    let d = tempfile::tempdir().unwrap();
    let (pq, jl, js) = (
        d.path().join("set.parquet"),
        d.path().join("set.jsonl"),
        d.path().join("set.json"),
    );
    write_parquet(&pq);
    write_jsonl(&jl);
    let rows: Vec<serde_json::Value> = ROWS
        .iter()
        .map(|(q, a, _)| serde_json::json!({"problem": q, "answer": a}))
        .collect();
    std::fs::write(&js, serde_json::to_string(&rows).unwrap()).unwrap();
    let want = load(jl.to_str().unwrap(), None).unwrap();
    assert_eq!(want.questions.len(), 3);
    for p in [&pq, &js] {
        let got = load(p.to_str().unwrap(), None).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(got.questions, want.questions, "{}", p.display());
        assert_eq!(got.kind, want.kind);
    }
    let txt = d.path().join("set.txt");
    std::fs::write(&txt, "x").unwrap();
    let e = load(txt.to_str().unwrap(), None).unwrap_err();
    assert!(e.contains("set.txt") && e.contains(".txt"), "{e}");
}

#[test]
fn grade_reads_parquet_as_it_reads_jsonl() {
    let d = tempfile::tempdir().unwrap();
    let (pq, jl) = (d.path().join("r.parquet"), d.path().join("r.jsonl"));
    write_parquet(&pq);
    write_jsonl(&jl);
    let run = |input: &std::path::Path, out: &std::path::Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_s1-studio"))
            .args([
                "grade",
                "--response-field",
                "response",
                "--reference-field",
                "answer",
                "--input",
            ])
            .arg(input)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            std::fs::read_to_string(out).unwrap(),
        )
    };
    let (sum_pq, rows_pq) = run(&pq, &d.path().join("pq.out.jsonl"));
    let (sum_jl, rows_jl) = run(&jl, &d.path().join("jl.out.jsonl"));
    assert_eq!(sum_pq, sum_jl);
    assert!(sum_pq.contains("correct         2"), "{sum_pq}");
    let verdicts = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"].to_string())
            .collect()
    };
    assert_eq!(verdicts(&rows_pq), verdicts(&rows_jl));
}
