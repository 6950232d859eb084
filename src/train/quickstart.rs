//! "Try a 2-minute finetune": everything a first fine-tune needs, made in one folder so that the
//! Train view can start at once on a laptop CPU. A tiny random Llama (init-model: hidden 128, 4
//! layers) with a real tokenizer (taken from a GGUF's metadata, the demo model's), a few rows of
//! the bundled sample pool in the s1K layout with stand-in traces (each row's reference solution
//! as its thinking, since the pool has no model traces), and settings that finish in a few
//! dozen steps. The point is the loop (data, loss curve, checkpoint, chat with it), not a
//! useful model.

use std::io::Write;
use std::path::Path;

use candle_core::quantized::gguf_file;

use super::TrainSettings;
use crate::model::init::{init_model, InitSpec, TemplateChoice};
use crate::model::{Arch, TextTokenizer};

/// Rows of the pool taken.
pub const ROWS: usize = 12;

/// Writes `dir/{tokenizer,tiny-model,rows.jsonl}` and returns the settings of a short run into
/// `dir/run` (20 epochs of 3 steps: the loss curve shows the rows being learnt, and the
/// checkpoint's replies echo their format): the tokenizer of `tokenizer_gguf`, the first [`ROWS`] usable rows of `pool` (JSONL
/// with `problem`, `solution` and `answer`, as the bundled MATH pool has them).
pub fn prepare(dir: &Path, tokenizer_gguf: &Path, pool: &str) -> Result<TrainSettings, String> {
    let tok_dir = dir.join("tokenizer");
    std::fs::create_dir_all(&tok_dir).map_err(|e| format!("{}: {e}", tok_dir.display()))?;
    let mut f = std::fs::File::open(tokenizer_gguf).map_err(|e| format!("{}: {e}", tokenizer_gguf.display()))?;
    let content = gguf_file::Content::read(&mut f)
        .map_err(|e| format!("{}: not a readable GGUF file: {e}", tokenizer_gguf.display()))?;
    let tok = TextTokenizer::from_gguf(tokenizer_gguf, &content.metadata).map_err(|e| e.to_string())?;
    let tok_path = tok_dir.join("tokenizer.json");
    tok.inner()
        .save(&tok_path, false)
        .map_err(|e| format!("{}: {e}", tok_path.display()))?;
    let spec = InitSpec {
        arch: Arch::Llama,
        hidden: 128,
        layers: 4,
        heads: 4,
        kv_heads: 2,
        intermediate: 256,
        vocab: None,
        tie_embeddings: true,
        max_position_embeddings: 2048,
        rope_theta: 10_000.0,
        seed: 0,
        head_dim: None,
    };
    let model = dir.join("tiny-model");
    init_model(&spec, &tok_path, &TemplateChoice::ChatMl, &model).map_err(|e| e.to_string())?;
    let data = dir.join("rows.jsonl");
    write_rows(pool, &data)?;
    let mut s = TrainSettings::s1(model, data, dir.join("run"));
    s.epochs = 20;
    s.lr = 3e-3;
    s.warmup_ratio = 0.1;
    s.batch = 1;
    s.grad_accum = 4;
    s.block_size = 512;
    Ok(s)
}

/// The first [`ROWS`] pool rows with a problem, solution and answer, as s1K rows whose trace is
/// the solution (a stand-in) and whose attempt states the answer.
fn write_rows(pool: &str, out: &Path) -> Result<(), String> {
    let mut f = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut n = 0;
    for line in pool.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let s = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        let (problem, solution, answer) = (s("problem"), s("solution"), s("answer"));
        if problem.is_empty() || solution.is_empty() || answer.is_empty() || solution.len() > 1200 {
            continue;
        }
        let row = serde_json::json!({
            "question": problem,
            "solution": solution,
            "cot_type": "math",
            "source_type": "s1-studio quickstart (stand-in traces)",
            "thinking_trajectories": [format!("Stand-in trace: the reference solution. {solution}")],
            "attempt": format!("The answer is $\\boxed{{{answer}}}$."),
        });
        writeln!(f, "{row}").map_err(|e| format!("{}: {e}", out.display()))?;
        n += 1;
        if n == ROWS {
            return Ok(());
        }
    }
    Err(format!(
        "the pool has only {n} usable rows (with problem, solution and answer); {ROWS} are needed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_need_a_problem_a_solution_and_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.jsonl");
        let good = r#"{"problem": "1+1?", "solution": "It is 2.", "answer": "2"}"#;
        let pool = format!("not json\n{}\n{}\n", r#"{"problem": "x"}"#, [good; ROWS].join("\n"));
        write_rows(&pool, &out).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().count(), ROWS);
        assert!(text.contains(r#"The answer is $\\boxed{2}$."#), "{text}");
        let err = write_rows(good, &out).unwrap_err();
        assert!(err.contains("only 1 usable rows"), "{err}");
    }
}
