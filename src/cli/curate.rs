//! `s1-studio curate ...`: the s1 funnel headless, over a workspace folder. Every step reads and
//! writes the workspace's SQLite database; model steps commit each result as it arrives, so Ctrl-C
//! (or a kill) loses nothing finished and rerunning the step resumes.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::curate::annotate::{self, GenOptions, Grader};
use crate::curate::backend::{Backend, Endpoint, Local};
use crate::curate::{decontam, export, funnel, import, rules, selection};
use crate::model::{load_model, LoadOptions};
use crate::model::{parse_dtype, DeviceChoice};
use crate::workspace::{Manual, Workspace};

#[derive(Debug, Args)]
pub struct CurateArgs {
    /// The workspace folder (created by `import` when absent)
    #[arg(long, global = true, default_value = ".")]
    workspace: PathBuf,
    #[command(subcommand)]
    command: CurateCommand,
}

#[derive(Debug, Subcommand)]
enum CurateCommand {
    /// Import question files (JSONL, JSON, Parquet) into the pool; duplicates are merged
    Import(ImportArgs),
    /// Run the quality rules (missing fields, weird strings) and choose which are on
    Rules(RulesArgs),
    /// Flag questions sharing a word 8-gram with evaluation sets (and AIME after 2022)
    Decontam(DecontamArgs),
    /// Thinking traces: from a column (stand-in), a local model or an endpoint; then their lengths
    Traces(TracesArgs),
    /// Difficulty: attempts by a model, graded offline or by an LLM judge
    Attempt(AttemptArgs),
    /// Domains: MSC labels by a model, or imported from a JSONL of {key, domain}
    Classify(ClassifyArgs),
    /// Draw a selection: s1's sampler (seeded) or an ablation set
    Select(SelectArgs),
    /// Export a selection in the s1K schema (JSONL and/or Parquet)
    Export(ExportArgs),
    /// Print the funnel, stage by stage, with counts
    Report(ReportArgs),
    /// Include or exclude questions by hand (overrides the funnel)
    Mark(MarkArgs),
    /// Show or change how the funnel reads source names and undecided verdicts
    Settings(SettingsArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Files to import
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Column mapping overrides, e.g. `question=prompt,solution=output,answer=`
    #[arg(long)]
    map: Option<String>,
    /// Source name when the file has no source column (default: the file's name)
    #[arg(long)]
    source: Option<String>,
    /// Import a file again even if it was imported before
    #[arg(long)]
    again: bool,
}

#[derive(Debug, Args)]
struct RulesArgs {
    /// Rules switched on (default: all): missing_field, asy, image, enumeration, bold_number
    #[arg(long)]
    enable: Option<String>,
    /// Rules switched off
    #[arg(long)]
    disable: Option<String>,
    /// Fields the missing-field rule requires: solution, answer, trace, attempt
    #[arg(long, default_value = "solution,trace")]
    require: String,
}

#[derive(Debug, Args)]
struct DecontamArgs {
    /// Evaluation files (JSONL/JSON/Parquet); default: the bundled MATH500, AIME24, AIME25, AMC23, GSM8K
    #[arg(long = "eval", num_args = 1..)]
    eval: Vec<PathBuf>,
    /// Also the bundled sets when files are given
    #[arg(long)]
    with_bundled: bool,
    /// s1's cross-source rule (collect_data.py): check each source also against the questions
    /// of the sources imported before it (in import order) that survived
    #[arg(long)]
    cross_source: bool,
}

#[derive(Debug, Args, Clone)]
struct ModelArgs {
    /// A local model (Hugging Face folder or .gguf), run through the engine
    #[arg(long, conflicts_with = "endpoint")]
    model: Option<PathBuf>,
    /// An OpenAI-compatible base URL, e.g. http://localhost:8000/v1
    #[arg(long)]
    endpoint: Option<String>,
    /// The model name to send to the endpoint (and to store results under)
    #[arg(long)]
    endpoint_model: Option<String>,
    /// API key for the endpoint (or the S1_API_KEY environment variable)
    #[arg(long, env = "S1_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Requests in flight at once (endpoint)
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Retries with exponential backoff on 429/5xx/network errors (endpoint)
    #[arg(long, default_value_t = 5)]
    retries: usize,
    /// First backoff in milliseconds, doubled on each retry
    #[arg(long, default_value_t = 500)]
    backoff_ms: u64,
    /// Prompts per batch (local model)
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// cpu, cuda or cuda:N (local model)
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    #[arg(long, default_value = "auto")]
    dtype: String,
    #[arg(long)]
    max_tokens: Option<usize>,
    #[arg(long)]
    temperature: Option<f64>,
    /// At most this many questions in this run
    #[arg(long)]
    limit: Option<usize>,
}

impl ModelArgs {
    fn given(&self) -> bool {
        self.model.is_some() || self.endpoint.is_some()
    }

    fn backend(&self) -> anyhow::Result<Box<dyn Backend>> {
        if let Some(url) = &self.endpoint {
            let name = self
                .endpoint_model
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--endpoint needs --endpoint-model NAME"))?;
            let mut e = Endpoint::new(url, &name);
            e.api_key = self.api_key.clone();
            e.concurrency = self.concurrency.max(1);
            e.retries = self.retries;
            e.backoff = std::time::Duration::from_millis(self.backoff_ms);
            return Ok(Box::new(e));
        }
        let path = self
            .model
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("give --model PATH or --endpoint URL"))?;
        let opts = LoadOptions {
            device: self.device.open()?,
            dtype: parse_dtype(&self.dtype)?,
            dequantize: false,
        };
        let model = load_model(path, &opts).with_context(|| format!("loading {}", path.display()))?;
        let name = crate::curate::backend::local_name(path);
        Ok(Box::new(Local {
            model,
            name,
            batch: self.batch.max(1),
        }))
    }

    fn gen(&self, max_tokens: usize, temperature: f64) -> GenOptions {
        GenOptions {
            max_tokens: self.max_tokens.unwrap_or(max_tokens),
            temperature: self.temperature.unwrap_or(temperature),
            limit: self.limit,
        }
    }
}

#[derive(Debug, Args)]
struct TracesArgs {
    /// Use a column of each question as its trace: `solution` (a stand-in when no reasoning model
    /// is at hand; the origin records it)
    #[arg(long, conflicts_with_all = ["model", "endpoint"])]
    from_column: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Count trace tokens with this tokenizer (tokenizer.json or its folder); also grades each
    /// trace's answer against the reference
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Recount every trace, not only new ones
    #[arg(long)]
    remeasure: bool,
}

#[derive(Debug, Args)]
struct AttemptArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Grade with an LLM judge at this OpenAI-compatible URL (s1's Yes/No protocol) instead of
    /// the offline grader
    #[arg(long)]
    judge_endpoint: Option<String>,
    #[arg(long)]
    judge_model: Option<String>,
    /// Ask the judge again up to this many times when its reply does not end with a line that
    /// is exactly Yes or No (s1 asks again without limit); still undecided, the question is
    /// reported and, under the s1 preset, dropped
    #[arg(long, default_value_t = annotate::JUDGE_RETRIES)]
    judge_retries: usize,
    /// Read the judge leniently (its last non-empty line, markup and case ignored) instead of
    /// s1's exact last line
    #[arg(long)]
    judge_lenient: bool,
}

#[derive(Debug, Args)]
struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Import domains from a JSONL file of {"key": ..., "domain": "05"} (or {"question": ...})
    #[arg(long, conflicts_with_all = ["model", "endpoint"])]
    from_file: Option<PathBuf>,
    /// Label every question, not only the funnel's survivors
    #[arg(long)]
    all: bool,
    /// Map the sources' own subject labels (MATH `type`, OlympiadBench `subfield`) to MSC codes:
    /// a rough stand-in where no classifier model is at hand (not s1's method)
    #[arg(long, conflicts_with_all = ["model", "endpoint", "from_file"])]
    from_subject: bool,
    /// Asks after the first while a reply does not end in a two-digit code (s1 asks until it does)
    #[arg(long, default_value_t = annotate::JUDGE_RETRIES)]
    ask_again: usize,
    /// Take the last valid MSC code anywhere in the reply instead of s1's last two characters
    #[arg(long)]
    lenient: bool,
}

#[derive(Debug, Args)]
struct SelectArgs {
    #[arg(long, value_enum, default_value = "s1")]
    method: selection::Method,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 1000)]
    target: usize,
    /// Domains drawn uniformly while fewer than this many are selected (s1: 700)
    #[arg(long, default_value_t = 700)]
    uniform_until: usize,
    /// Leave out s1's seed set
    #[arg(long)]
    no_seed_set: bool,
    /// Take the seed set out of the domains' pools before drawing (s1 leaves it in, where a
    /// draw may pick a seed question again and add nothing)
    #[arg(long)]
    seed_set_out_of_pool: bool,
    /// Store under this name (default METHOD-seedSEED)
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The selection (default: the newest)
    #[arg(long)]
    selection: Option<String>,
    /// Output file(s): .jsonl and/or .parquet
    #[arg(long, required = true, num_args = 1..)]
    out: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Also print as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SettingsArgs {
    /// How sources are recognised as AIME, GPQA and MATH: `s1` (s1's exact names, e.g.
    /// qq8933/AIME_1983_2024, Idavidrein/gpqa, qfq/openaimath/...) or `loose` (any name containing
    /// aime, gpqa or math)
    #[arg(long, value_enum)]
    source_names: Option<crate::curate::sources::SourceNames>,
    /// A question with an undecided difficulty verdict: `exclude` (s1) or `keep` (as not correct)
    #[arg(long, value_enum)]
    undecided: Option<funnel::Undecided>,
}

#[derive(Debug, Args)]
struct MarkArgs {
    /// include | exclude | clear
    #[arg(value_parser = ["include", "exclude", "clear"])]
    what: String,
    /// Question keys
    #[arg(required = true)]
    keys: Vec<String>,
}

fn bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {what}  [{{elapsed}} < {{eta}}]"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// A progress callback that drives `bar`.
fn on_progress(bar: &indicatif::ProgressBar) -> impl FnMut(usize, usize) + '_ {
    move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }
}

fn print_step(what: &str, r: &annotate::StepReport) {
    println!(
        "{what}: {} done, {} failed, {} already done (of {} pending at the start)",
        r.done, r.failed, r.skipped, r.pending
    );
}

pub fn run(a: CurateArgs) -> anyhow::Result<()> {
    let dir = &a.workspace;
    match a.command {
        CurateCommand::Import(args) => {
            let mut ws = Workspace::open(dir)?;
            for f in &args.files {
                let opts = import::ImportOptions {
                    mapping: args.map.clone(),
                    source: args.source.clone(),
                    again: args.again,
                    rollback_journal: true,
                };
                let started = std::time::Instant::now();
                let r = import::import(&mut ws, f, &opts, |_| {})?;
                println!(
                    "{}: {} shape; {} rows, {} new questions, {} duplicates, {} malformed ({:.2} s)",
                    r.file,
                    r.shape.name(),
                    r.rows,
                    r.added,
                    r.duplicates,
                    r.malformed,
                    started.elapsed().as_secs_f64()
                );
                println!("  mapping: {}", serde_json::to_string(&r.mapping)?);
                if r.traces > 0 || r.domains > 0 {
                    println!("  with {} traces and {} domains from the file", r.traces, r.domains);
                }
                for e in r.errors.iter().take(10) {
                    println!("  {}:{}: {}", r.file, e.line, e.message);
                }
                if r.malformed > 10 {
                    println!(
                        "  ... {} more malformed rows (all in the workspace's import_errors)",
                        r.malformed - 10
                    );
                }
            }
            println!("pool: {} questions", ws.question_count()?);
        }
        CurateCommand::Rules(args) => {
            let mut ws = Workspace::open_existing(dir)?;
            let mut cfg = rules::config(&ws)?;
            if let Some(e) = &args.enable {
                cfg.enabled = rules::parse_rules(e).map_err(anyhow::Error::msg)?;
            }
            if let Some(d) = &args.disable {
                let off = rules::parse_rules(d).map_err(anyhow::Error::msg)?;
                cfg.enabled.retain(|r| !off.contains(r));
            }
            cfg.required = args
                .require
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let counts = rules::run(&mut ws, &cfg)?;
            println!("{:14} {:>4} {:>8}  examples", "rule", "on", "hits");
            for c in counts {
                let on = if c.enabled { "yes" } else { "no" };
                println!("{:14} {:>4} {:>8}  {}", c.rule.name(), on, c.hits, c.rule.describe());
                for (k, q) in &c.examples {
                    let q: String = q.chars().take(100).collect::<String>().replace('\n', " ");
                    println!("    {k}  {q}");
                }
            }
        }
        CurateCommand::Decontam(args) => {
            let mut ws = Workspace::open_existing(dir)?;
            let mut sets = Vec::new();
            if args.eval.is_empty() || args.with_bundled {
                sets.extend(decontam::bundled_sets()?);
            }
            for f in &args.eval {
                sets.push(decontam::set_from_file(f)?);
            }
            let opts = decontam::DecontamOptions {
                cross_source: args.cross_source,
            };
            let r = decontam::run_with(&mut ws, &sets, &opts)?;
            for (name, n, hits) in &r.per_set {
                println!("{name:12} {n:>6} questions   {hits:>6} pool questions overlap");
            }
            println!("AIME problems after 2022: {}", r.aime_after_2022);
            if args.cross_source {
                println!("against earlier sources (in import order):");
                for (name, n, hits) in &r.cross_source {
                    println!("    {name}: {n} questions checked, {hits} share an 8-gram with an earlier source");
                }
            }
            println!("flagged: {} questions", r.flagged);
            for (set, key, gram) in &r.examples {
                println!("    {set}: {key}  \"{gram}\"");
            }
        }
        CurateCommand::Traces(args) => {
            let mut ws = Workspace::open_existing(dir)?;
            if let Some(col) = &args.from_column {
                let r = annotate::traces_from_column(&mut ws, col)?;
                print_step(&format!("traces from `{col}` (stand-ins, not model traces)"), &r);
            } else if args.model.given() {
                let backend = args.model.backend()?;
                eprintln!("Ctrl-C stops after the requests in flight; finished results are kept");
                let cancel = super::cancel_on_ctrlc();
                let b = bar("traces");
                let r = annotate::generate_traces(
                    &ws,
                    backend.as_ref(),
                    &args.model.gen(32768, 0.0),
                    &cancel,
                    &mut on_progress(&b),
                )?;
                b.finish_and_clear();
                print_step(&format!("traces by {}", backend.name()), &r);
            } else if args.tokenizer.is_none() {
                anyhow::bail!("give --from-column solution, --model PATH, --endpoint URL or --tokenizer PATH");
            }
            if let Some(t) = &args.tokenizer {
                let r = annotate::measure_traces(&mut ws, t, args.remeasure)?;
                println!("trace lengths: {} traces measured with {}", r.done, t.display());
            }
        }
        CurateCommand::Attempt(args) => {
            let ws = Workspace::open_existing(dir)?;
            let backend = args.model.backend()?;
            let grader = match (&args.judge_endpoint, &args.judge_model) {
                (Some(url), Some(m)) => {
                    let mut e = Endpoint::new(url, m);
                    e.api_key = args.model.api_key.clone();
                    e.retries = args.model.retries;
                    Grader::JudgeWith(
                        e,
                        annotate::JudgeOptions {
                            retries: args.judge_retries,
                            lenient: args.judge_lenient,
                        },
                    )
                }
                (Some(_), None) => anyhow::bail!("--judge-endpoint needs --judge-model NAME"),
                _ => Grader::Offline,
            };
            eprintln!("Ctrl-C stops after the requests in flight; finished results are kept");
            let cancel = super::cancel_on_ctrlc();
            let b = bar("attempts");
            // s1: temperature 0.05, up to 32,768 tokens.
            let r = annotate::attempts(
                &ws,
                backend.as_ref(),
                &grader,
                &args.model.gen(32768, 0.05),
                &cancel,
                &mut on_progress(&b),
            )?;
            b.finish_and_clear();
            print_step(&format!("attempts by {}", backend.name()), &r);
            if r.undecided > 0 {
                println!(
                    "{} attempts undecided (no verdict): such questions are {} (`curate settings --undecided`)",
                    r.undecided,
                    match funnel::Undecided::load(&ws)? {
                        funnel::Undecided::Exclude => "dropped by the difficulty stage, as s1",
                        funnel::Undecided::Keep => "kept as not correct",
                    }
                );
            }
        }
        CurateCommand::Classify(args) => {
            let mut ws = Workspace::open_existing(dir)?;
            if let Some(f) = &args.from_file {
                let mut pairs = Vec::new();
                crate::data::read::for_each_row(f, |row| {
                    if let Ok(row) = row {
                        let key = row
                            .columns
                            .get("key")
                            .and_then(|v| v.as_str())
                            .map(str::to_string)
                            .or_else(|| {
                                row.columns
                                    .get("question")
                                    .and_then(|v| v.as_str())
                                    .map(crate::curate::question_key)
                            });
                        let dom = row.columns.get("domain").map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        });
                        if let (Some(k), Some(d)) = (key, dom) {
                            pairs.push((k, d));
                        }
                    }
                    true
                })?;
                let r = annotate::domains_from_map(&mut ws, &pairs)?;
                println!(
                    "domains from {}: {} stored, {} not MSC codes",
                    f.display(),
                    r.done,
                    r.failed
                );
                return Ok(());
            }
            if args.from_subject {
                let r = annotate::domains_from_subjects(&mut ws)?;
                println!(
                    "domains from subject labels: {} stored, {} without a known subject",
                    r.done, r.failed
                );
                return Ok(());
            }
            let backend = args.model.backend()?;
            eprintln!("Ctrl-C stops after the requests in flight; finished results are kept");
            let cancel = super::cancel_on_ctrlc();
            let b = bar("questions");
            let r = annotate::classify_domains(
                &ws,
                backend.as_ref(),
                &args.model.gen(1024, 0.0),
                &annotate::ClassifyOptions {
                    retries: args.ask_again,
                    lenient: args.lenient,
                },
                args.all,
                &cancel,
                &mut on_progress(&b),
            )?;
            b.finish_and_clear();
            print_step(&format!("domains by {}", backend.name()), &r);
        }
        CurateCommand::Select(args) => {
            let mut ws = Workspace::open_existing(dir)?;
            let opts = selection::SelectOptions {
                method: args.method,
                seed: args.seed,
                target: args.target,
                uniform_until: args.uniform_until,
                seed_set: !args.no_seed_set,
                seed_set_in_pool: !args.seed_set_out_of_pool,
                name: args.name.clone(),
            };
            let r = selection::run(&mut ws, &opts)?;
            println!(
                "selection `{}`: {} of {} candidates ({} from the seed set)",
                r.name,
                r.selected.len(),
                r.candidates,
                r.seed_set
            );
            for (d, n) in r.per_domain.iter().take(12) {
                println!("  {d} {:40} {n}", crate::curate::classify::title(d).unwrap_or("?"));
            }
            if r.per_domain.len() > 12 {
                println!("  ... {} domains in all", r.per_domain.len());
            }
        }
        CurateCommand::Export(args) => {
            let ws = Workspace::open_existing(dir)?;
            let (name, keys) = selection::load(&ws, args.selection.as_deref())?;
            let rows = export::rows(&ws, &keys)?;
            for out in &args.out {
                match out.extension().and_then(|e| e.to_str()) {
                    Some("jsonl") => export::write_jsonl(out, &rows)?,
                    Some("parquet") => export::write_parquet(out, &rows)?,
                    _ => anyhow::bail!("{}: give a .jsonl or .parquet path", out.display()),
                }
                println!(
                    "{}: {} rows of selection `{name}` (s1K schema)",
                    out.display(),
                    rows.len()
                );
            }
        }
        CurateCommand::Report(args) => {
            let ws = Workspace::open_existing(dir)?;
            let f = funnel::compute(&ws)?;
            print!("{}", funnel::render(&f.stages));
            let failures: i64 = ws.conn.query_row("SELECT count(*) FROM failures", [], |r| r.get(0))?;
            if failures > 0 {
                println!("{failures} model calls failed (table `failures`); rerun the step to retry them");
            }
            if f.undecided > 0 {
                println!(
                    "{} questions have an undecided difficulty verdict: {} (`curate settings --undecided`)",
                    f.undecided,
                    match f.undecided_policy {
                        funnel::Undecided::Exclude => "dropped, as s1",
                        funnel::Undecided::Keep => "kept as not correct",
                    }
                );
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&f.stages)?);
            }
        }
        CurateCommand::Mark(args) => {
            let ws = Workspace::open_existing(dir)?;
            let m = Manual::parse(&args.what);
            for k in &args.keys {
                ws.set_manual(k, m)?;
            }
            println!("{} questions marked {}", args.keys.len(), args.what);
        }
        CurateCommand::Settings(args) => {
            let ws = Workspace::open_existing(dir)?;
            if let Some(n) = args.source_names {
                n.store(&ws)?;
            }
            if let Some(u) = args.undecided {
                u.store(&ws)?;
            }
            println!(
                "source names: {}\nundecided verdicts: {}",
                crate::curate::sources::SourceNames::load(&ws)?.name(),
                funnel::Undecided::load(&ws)?.name()
            );
            if args.source_names.is_some() {
                println!("rerun `curate rules` so that the [asy] exception follows the names");
            }
        }
    }
    Ok(())
}
