//! The command line: one file per subcommand, each a thin wrapper over the library; bench/ holds
//! the performance benchmarks.

mod bench;
mod curate;
mod curate_map;
mod eval;
mod generate;
mod grade;
mod init_model;
mod merge_lora;
mod models;
mod serve;
mod train;
mod train_remote;

use clap::{Parser, Subcommand};

pub use crate::model::{parse_device, parse_dtype};

/// s1-studio: curate, fine-tune and run reasoning models under a thinking budget (s1 recipe).
#[derive(Debug, Parser)]
#[command(name = "s1-studio", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the desktop app (the default when no subcommand is given)
    Ui(UiArgs),
    /// Generate from a model with budget forcing, streaming thinking and answer
    Generate(generate::GenerateArgs),
    /// Fine-tune a model on s1K-format rows (the s1 recipe)
    Train(train::TrainArgs),
    /// Fold a LoRA adapter (peft layout) into its base model
    MergeLora(merge_lora::MergeLoraArgs),
    /// Write a randomly initialised Hugging Face model folder
    InitModel(init_model::InitModelArgs),
    /// A thinking-budget sweep over a benchmark: samples, metrics and the scaling plot
    Eval(eval::EvalArgs),
    /// Curate a pool into an s1K-style set (the s1 funnel) in a workspace folder
    Curate(curate::CurateArgs),
    /// Grade responses against references offline (MATH/AIME/GSM8K/multiple choice)
    Grade(grade::GradeArgs),
    /// Serve a model behind the OpenAI API, with minimum and maximum thinking per request
    Serve(serve::ServeArgs),
    /// The model library: pull from Hugging Face, the demo model, list, remove
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Performance benchmarks against named baselines, measured in the same run
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

impl Cli {
    /// Whether the command only prints text (curate, grade): it may die quietly on a closed pipe.
    pub fn prints_text(&self) -> bool {
        matches!(self.command, Some(Command::Curate(_)) | Some(Command::Grade(_)))
    }

    /// Whether the command trains (train, bench train, bench grads).
    pub fn trains(&self) -> bool {
        matches!(
            self.command,
            Some(Command::Train(_))
                | Some(Command::Bench(
                    bench::BenchCommand::Train(_) | bench::BenchCommand::Grads(_)
                ))
        )
    }
}

#[derive(Debug, clap::Args)]
pub struct UiArgs {
    /// A model to open at start: a Hugging Face folder or a .gguf file
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// The view to show first
    #[arg(long, value_parser = ["curate", "train", "chat", "evaluate"])]
    pub view: Option<String>,
    /// The workspace folder to open (curation's pool and annotations)
    #[arg(long)]
    pub workspace: Option<std::path::PathBuf>,
}

/// A cancel token that the first Ctrl-C sets (the work stops after what is in flight, keeping
/// what finished); a second Ctrl-C, or a failure to install the handler, falls back to the default.
pub(crate) fn cancel_on_ctrlc() -> crate::jobs::CancelToken {
    let cancel = crate::jobs::CancelToken::new();
    let c = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if c.is_cancelled() {
            std::process::exit(130);
        }
        c.cancel();
    });
    cancel
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Generate(args)) => generate::run(args),
        Some(Command::InitModel(args)) => init_model::run(args),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::MergeLora(args)) => merge_lora::run(args),
        Some(Command::Bench(cmd)) => bench::run(cmd),
        Some(Command::Grade(args)) => grade::run(args),
        Some(Command::Curate(args)) => curate::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Models(cmd)) => models::run(cmd),
        Some(Command::Ui(args)) => run_ui(Some(args)),
        None => run_ui(None),
    }
}

#[cfg(feature = "gui")]
fn run_ui(args: Option<UiArgs>) -> anyhow::Result<()> {
    let start = args.map(|a| crate::ui::StartOptions {
        model: a.model,
        view: a.view,
        workspace: a.workspace,
    });
    crate::ui::run_app(start.unwrap_or_default())
}

#[cfg(not(feature = "gui"))]
fn run_ui(_: Option<UiArgs>) -> anyhow::Result<()> {
    anyhow::bail!(
        "this s1-studio was built without its window (cargo's `gui` feature is off); \
         the other commands work: s1-studio --help"
    )
}
