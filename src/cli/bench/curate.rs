//! `s1-studio bench curate`: a synthetic pool of N questions (1,000,000 by default) through import
//! (with exact-duplicate merging), the quality rules, decontamination against the bundled eval sets
//! and s1's selection, each step timed, with the process's peak memory; the baseline is the time to
//! read and parse the same file.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::curate::funnel;
use crate::curate::rule_config::RulesConfig;
use crate::curate::steps::{decontam, import, rules, selection};
use crate::workspace::Workspace;

#[derive(Debug, Args)]
pub struct CurateBenchArgs {
    /// Questions in the synthetic pool
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Where the pool file and the workspace go (rewritten)
    #[arg(long, default_value = "target/bench/curate")]
    dir: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the results as JSON here too
    #[arg(long)]
    json: Option<PathBuf>,
}

const WORDS: [&str; 48] = [
    "find",
    "the",
    "number",
    "of",
    "integers",
    "such",
    "that",
    "sum",
    "product",
    "triangle",
    "circle",
    "radius",
    "probability",
    "chosen",
    "random",
    "sequence",
    "terms",
    "prime",
    "divisible",
    "remainder",
    "polynomial",
    "roots",
    "real",
    "complex",
    "matrix",
    "function",
    "value",
    "maximum",
    "minimum",
    "area",
    "length",
    "angle",
    "points",
    "plane",
    "digits",
    "base",
    "ordered",
    "pairs",
    "positive",
    "least",
    "greatest",
    "common",
    "set",
    "each",
    "every",
    "distinct",
    "given",
    "let",
];

fn sentence(rng: &mut StdRng, n: usize) -> String {
    let mut s = String::with_capacity(n * 8);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s
}

/// Peak resident memory of this process, in MiB (also reported by bench train).
pub(super) fn peak_rss_mib() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

fn write_pool(path: &std::path::Path, rows: usize, seed: u64) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let math500: Vec<String> = crate::eval::benchmarks::load("math500", None)
        .map_err(anyhow::Error::msg)?
        .questions
        .into_iter()
        .map(|q| q.question)
        .collect();
    let codes: Vec<&str> = crate::curate::classify::domains()
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut recent: Vec<String> = Vec::new();
    for i in 0..rows {
        let r: f64 = rng.random();
        let mut q = if r < 0.03 && !recent.is_empty() {
            // an exact duplicate of a recent question
            recent[rng.random_range(0..recent.len())].clone()
        } else {
            format!("{} {i} {}?", sentence(&mut rng, 12), sentence(&mut rng, 12))
        };
        if (0.03..0.04).contains(&r) {
            q.push_str(" [asy] draw((0,0)--(1,1)); [/asy]");
        } else if (0.04..0.045).contains(&r) {
            q.push_str(" ![Image](fig.png)");
        } else if (0.045..0.047).contains(&r) {
            let m = &math500[rng.random_range(0..math500.len())];
            q = format!("{q} {m}");
        }
        if recent.len() < 1000 {
            recent.push(q.clone());
        } else {
            let k = rng.random_range(0..recent.len());
            recent[k] = q.clone();
        }
        let row = serde_json::json!({
            "question": q,
            "solution": sentence(&mut rng, 10),
            "answer": rng.random_range(0..1000).to_string(),
            "source_type": if i % 50 == 0 { "synthetic/aime" } else { "synthetic/numina" },
            "domain": codes[rng.random_range(0..codes.len())],
            "trace": sentence(&mut rng, 20),
            "trace_tokens": rng.random_range(200..12000),
        });
        serde_json::to_writer(&mut w, &row)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

pub fn run(a: CurateBenchArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.dir)?;
    let pool = a.dir.join("pool.jsonl");
    let t = Instant::now();
    write_pool(&pool, a.rows, a.seed)?;
    let bytes = std::fs::metadata(&pool)?.len();
    println!(
        "synthetic pool: {} rows, {:.0} MB, written in {:.1} s (not timed below)",
        a.rows,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // Baseline: read the file and parse every row.
    let t = Instant::now();
    let mut n = 0usize;
    for line in std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&pool)?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        n += v.is_object() as usize;
    }
    let read_s = t.elapsed().as_secs_f64();
    println!("baseline: read + parse the file: {read_s:.2} s ({n} rows)");

    let ws_dir = a.dir.join("ws");
    let _ = std::fs::remove_dir_all(&ws_dir);
    let mut ws = Workspace::open(&ws_dir)?;
    let mut times: Vec<(&str, f64)> = Vec::new();

    let t = Instant::now();
    let opts = import::ImportOptions {
        rollback_journal: true,
        ..Default::default()
    };
    let r = import::import(&mut ws, &pool, &opts, |_| {})?;
    times.push(("import + dedup", t.elapsed().as_secs_f64()));
    println!(
        "import: {} new, {} duplicates merged, {} traces, {} domains",
        r.added, r.duplicates, r.traces, r.domains
    );

    let t = Instant::now();
    let counts = rules::run(&mut ws, &RulesConfig::default())?;
    times.push(("quality rules", t.elapsed().as_secs_f64()));
    let hits: Vec<String> = counts.iter().map(|c| format!("{} {}", c.rule.name(), c.hits)).collect();
    println!("rules: {}", hits.join(", "));

    let t = Instant::now();
    let d = decontam::run(&mut ws, &decontam::bundled_sets()?)?;
    times.push(("decontamination", t.elapsed().as_secs_f64()));
    println!("decontam: {} flagged", d.flagged);

    let t = Instant::now();
    let s = selection::run(
        &mut ws,
        &selection::SelectOptions {
            seed: a.seed,
            ..Default::default()
        },
    )?;
    times.push(("select (funnel + s1 sampler)", t.elapsed().as_secs_f64()));
    println!("select: {} of {} candidates", s.selected.len(), s.candidates);

    let t = Instant::now();
    let f = funnel::compute(&ws)?;
    times.push(("funnel report", t.elapsed().as_secs_f64()));
    print!("{}", funnel::render(&f.stages));

    let total: f64 = times.iter().map(|t| t.1).sum();
    // The funnel to select: import (with dedup), rules, decontamination, selection; the report
    // after it is timed apart.
    let funnel_s: f64 = times[..4].iter().map(|t| t.1).sum();
    let peak = peak_rss_mib();
    println!("\n{:32} {:>8}", "step", "seconds");
    for (name, s) in &times {
        println!("{name:32} {s:>8.2}");
    }
    println!("{:32} {funnel_s:>8.2}", "import to selection");
    println!("{:32} {total:>8.2}", "total (with the report)");
    println!(
        "peak memory {peak:.0} MiB; import to selection / read-and-parse = {:.2}x; {} cores",
        funnel_s / read_s,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    if let Some(p) = &a.json {
        let v = serde_json::json!({
            "rows": a.rows,
            "file_bytes": bytes,
            "read_parse_s": read_s,
            "steps": times.iter().map(|(n, s)| serde_json::json!({"step": n, "s": s})).collect::<Vec<_>>(),
            "import_to_selection_s": funnel_s,
            "total_s": total,
            "peak_rss_mib": peak,
        });
        std::fs::write(p, serde_json::to_string_pretty(&v)?)?;
    }
    Ok(())
}
