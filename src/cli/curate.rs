//! `s1-studio curate ...`: the s1 funnel headless, over a workspace folder. Each subcommand but
//! `report` and `settings` becomes a [`Step`] run by [`steps::run`], the function the Curate view
//! runs too, and prints its report. Model steps commit each result as it arrives, so Ctrl-C (or a
//! kill) loses nothing finished and rerunning the step resumes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cancel::CancelToken;
use crate::curate::backend::{Endpoint, ModelChoice};
use crate::curate::funnel;
use crate::curate::judge::{JudgeOptions, JUDGE_RETRIES};
use crate::curate::quality::parse_rules;
use crate::curate::rule_config::RulesChange;
use crate::curate::steps::annotate::GenOptions;
use crate::curate::steps::attempts::{self, Grader};
use crate::curate::steps::domains::{self, ClassifyOptions};
use crate::curate::steps::import::ImportOptions;
use crate::curate::steps::{self, selection, traces, CurateEvent, DomainSource, Step, TraceSource};
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
    /// The pool's map: a vector per question (hashed TF-IDF, or a model's), then a seeded 2D
    /// layout (resumable)
    Map(super::curate_map::MapArgs),
    /// How much of the map each stored selection covers (occupied cells, distance to nearest)
    Coverage,
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
    /// Fields the missing-field rule requires: solution, answer, trace, attempt (default: as
    /// the workspace keeps them, solution,trace at first)
    #[arg(long)]
    require: Option<String>,
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
    /// auto, f32, bf16 or f16 (local model)
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

    /// The model the flags name (loaded when the step starts).
    fn choice(&self) -> anyhow::Result<ModelChoice> {
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
            return Ok(ModelChoice::Endpoint(e));
        }
        let path = self
            .model
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("give --model PATH or --endpoint URL"))?;
        Ok(ModelChoice::Local {
            path: path.clone(),
            batch: self.batch.max(1),
            device: self.device,
            dtype: parse_dtype(&self.dtype)?,
        })
    }

    /// The step's sampling with the flags' overrides.
    fn gen(&self, base: GenOptions) -> GenOptions {
        GenOptions {
            max_tokens: self.max_tokens.unwrap_or(base.max_tokens),
            temperature: self.temperature.unwrap_or(base.temperature),
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
    #[arg(long, default_value_t = JUDGE_RETRIES)]
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
    #[arg(long, default_value_t = JUDGE_RETRIES)]
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

/// The step a subcommand runs (`report` and `settings` are not steps: they read the funnel or set
/// how it reads the pool, and [`run`] handles them itself).
fn step(command: CurateCommand) -> anyhow::Result<Step> {
    Ok(match command {
        CurateCommand::Import(args) => Step::Import {
            files: args.files,
            options: ImportOptions {
                mapping: args.map,
                source: args.source,
                again: args.again,
                rollback_journal: true,
            },
        },
        CurateCommand::Rules(args) => Step::Rules(RulesChange {
            set: args
                .enable
                .as_deref()
                .map(parse_rules)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            off: args
                .disable
                .as_deref()
                .map(parse_rules)
                .transpose()
                .map_err(anyhow::Error::msg)?
                .unwrap_or_default(),
            require: args.require.as_deref().map(RulesChange::fields),
            ..Default::default()
        }),
        CurateCommand::Decontam(args) => Step::Decontam {
            eval: args.eval,
            with_bundled: args.with_bundled,
            cross_source: args.cross_source,
        },
        CurateCommand::Traces(args) => {
            let from = if let Some(col) = args.from_column {
                TraceSource::Column(col)
            } else if args.model.given() {
                TraceSource::Model {
                    model: args.model.choice()?,
                    gen: args.model.gen(traces::DEFAULT_GEN),
                }
            } else if args.tokenizer.is_none() {
                anyhow::bail!("give --from-column solution, --model PATH, --endpoint URL or --tokenizer PATH");
            } else {
                TraceSource::Existing
            };
            Step::Traces {
                from,
                tokenizer: args.tokenizer,
                remeasure: args.remeasure,
            }
        }
        CurateCommand::Attempt(args) => {
            let grader = match (&args.judge_endpoint, &args.judge_model) {
                (Some(url), Some(m)) => {
                    let mut e = Endpoint::new(url, m);
                    e.api_key = args.model.api_key.clone();
                    e.retries = args.model.retries;
                    Grader::JudgeWith(
                        e,
                        JudgeOptions {
                            retries: args.judge_retries,
                            lenient: args.judge_lenient,
                        },
                    )
                }
                (Some(_), None) => anyhow::bail!("--judge-endpoint needs --judge-model NAME"),
                _ => Grader::Offline,
            };
            Step::Attempts {
                model: args.model.choice()?,
                grader,
                gen: args.model.gen(attempts::DEFAULT_GEN),
            }
        }
        CurateCommand::Classify(args) => Step::Domains(if let Some(f) = args.from_file {
            DomainSource::File(f)
        } else if args.from_subject {
            DomainSource::Subjects
        } else {
            DomainSource::Model {
                model: args.model.choice()?,
                gen: args.model.gen(domains::DEFAULT_GEN),
                how: ClassifyOptions {
                    retries: args.ask_again,
                    lenient: args.lenient,
                },
                all: args.all,
            }
        }),
        CurateCommand::Select(args) => Step::Select(selection::SelectOptions {
            method: args.method,
            seed: args.seed,
            target: args.target,
            uniform_until: args.uniform_until,
            seed_set: !args.no_seed_set,
            seed_set_in_pool: !args.seed_set_out_of_pool,
            name: args.name,
        }),
        CurateCommand::Export(args) => Step::Export {
            selection: args.selection,
            out: args.out,
        },
        CurateCommand::Mark(args) => Step::Mark {
            keys: args.keys,
            manual: Manual::parse(&args.what),
        },
        CurateCommand::Map(args) => Step::Map(args.options()?),
        CurateCommand::Report(_) | CurateCommand::Settings(_) | CurateCommand::Coverage => {
            anyhow::bail!("`curate report`, `curate settings` and `curate coverage` are not steps")
        }
    })
}

pub fn run(a: CurateArgs) -> anyhow::Result<()> {
    let dir = &a.workspace;
    let command = match a.command {
        CurateCommand::Report(args) => return report(dir, &args),
        CurateCommand::Settings(args) => return settings(dir, &args),
        CurateCommand::Coverage => return super::curate_map::coverage(dir),
        CurateCommand::Map(args) if args.list => return super::curate_map::list(dir),
        other => other,
    };
    let creates = matches!(command, CurateCommand::Import(_));
    let step = step(command)?;
    let mut ws = if creates {
        Workspace::open(dir)?
    } else {
        Workspace::open_existing(dir)?
    };
    // A model step shows its progress and stops on Ctrl-C, keeping what finished.
    let (cancel, bar) = if let Step::Map(_) = step {
        (super::cancel_on_ctrlc(), Some(bar("questions")))
    } else if step.uses_model() {
        eprintln!("Ctrl-C stops after the requests in flight; finished results are kept");
        let what = match step {
            Step::Attempts { .. } => "attempts",
            Step::Domains(_) => "questions",
            _ => "traces",
        };
        (super::cancel_on_ctrlc(), Some(bar(what)))
    } else {
        (CancelToken::new(), None)
    };
    let report = steps::run(&mut ws, &step, &cancel, &mut |e| {
        if let (CurateEvent::Progress { done, total, .. }, Some(b)) = (&e, &bar) {
            b.set_length(*total as u64);
            b.set_position(*done as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    print!("{report}");
    // A file that could not be imported is listed above, and the command fails for it.
    if let steps::Report::Import { files, .. } = &report {
        let failed = files.iter().filter(|f| f.failure().is_some()).count();
        if failed > 0 {
            anyhow::bail!("{failed} of {} files not imported (listed above)", files.len());
        }
    }
    Ok(())
}

/// `curate report`: the funnel, stage by stage.
fn report(dir: &std::path::Path, args: &ReportArgs) -> anyhow::Result<()> {
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
    Ok(())
}

/// `curate settings`: how the funnel reads source names and undecided verdicts.
fn settings(dir: &std::path::Path, args: &SettingsArgs) -> anyhow::Result<()> {
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
    Ok(())
}
