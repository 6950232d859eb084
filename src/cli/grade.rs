//! `s1-studio grade`: grades the responses of a JSONL, JSON or Parquet file against their references offline and
//! writes per row the extracted answer, the reference and the verdict.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use crate::grade::{grade_with, Extraction, Kind, Verdict};

#[derive(Debug, Args)]
pub struct GradeArgs {
    /// The rows: JSONL, JSON or Parquet (by the extension)
    #[arg(long)]
    input: PathBuf,
    /// The field holding the model's response
    #[arg(long)]
    response_field: String,
    /// The field holding the reference answer
    #[arg(long)]
    reference_field: String,
    #[arg(long, value_enum, default_value = "math")]
    kind: Kind,
    /// How answers are read: `s1` (s1's own, from the whole continuation: the text after the
    /// last `<|im_start|>answer`, its last \boxed{}, else what follows its first `Answer:`,
    /// else all of it) or `lenient` (the studio's: more forms; no answer found is no answer)
    #[arg(long, value_enum, default_value = "s1")]
    extraction: Extraction,
    /// Write the rows with `extracted`, `reference` and `verdict` added here (JSONL)
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Counts per verdict.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub correct: usize,
    pub incorrect: usize,
    pub undecided: usize,
    pub no_answer: usize,
}

pub fn run(a: GradeArgs) -> anyhow::Result<()> {
    let mut out = match &a.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("{}: cannot create", p.display()))?,
        )),
        None => None,
    };
    let mut s = Summary::default();
    let mut failed: Option<anyhow::Error> = None;
    crate::data::read::for_each_row(&a.input, |r| {
        let step = || -> anyhow::Result<()> {
            let r = r.map_err(|e| anyhow::anyhow!("{}:{}: {}", a.input.display(), e.line, e.message))?;
            let at = || format!("{}:{}", a.input.display(), r.line);
            let mut row = serde_json::Value::Object(r.columns);
            let field = |name: &str| -> anyhow::Result<String> {
                match row.get(name) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                    Some(other) => bail!("{}: field `{name}` is not text ({other})", at()),
                    None => bail!("{}: no field `{name}`", at()),
                }
            };
            let (response, reference) = (field(&a.response_field)?, field(&a.reference_field)?);
            let g = grade_with(&response, &reference, a.kind, a.extraction);
            match (g.verdict, &g.extracted) {
                (_, None) => s.no_answer += 1,
                (Verdict::Correct, _) => s.correct += 1,
                (Verdict::Incorrect, _) => s.incorrect += 1,
                (Verdict::Undecided, _) => s.undecided += 1,
            }
            if let Some(w) = out.as_mut() {
                row["extracted"] = serde_json::json!(g.extracted);
                row["reference"] = serde_json::json!(g.reference);
                row["verdict"] = serde_json::json!(g.verdict);
                writeln!(w, "{row}")?;
            }
            Ok(())
        };
        match step() {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(w) = out.as_mut() {
        w.flush()?;
    }
    let total = s.correct + s.incorrect + s.undecided + s.no_answer;
    if total == 0 {
        bail!("{}: no rows", a.input.display());
    }
    let pct = |n: usize| 100.0 * n as f64 / total as f64;
    println!("{total} rows ({:?}, {:?} extraction)", a.kind, a.extraction);
    println!("  correct    {:>6} {:>6.1}%", s.correct, pct(s.correct));
    println!("  incorrect  {:>6} {:>6.1}%", s.incorrect, pct(s.incorrect));
    println!("  undecided  {:>6} {:>6.1}%", s.undecided, pct(s.undecided));
    println!(
        "  no answer  {:>6} {:>6.1}%  (counted incorrect)",
        s.no_answer,
        pct(s.no_answer)
    );
    println!("accuracy {:.1}% (undecided counted wrong)", pct(s.correct));
    Ok(())
}
