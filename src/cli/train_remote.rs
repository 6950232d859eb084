//! `s1-studio train --target torchrun|slurm|ray|skypilot --out RUN [--launch]`: the run folder
//! for the standard engines (see train::launch), optionally started and followed with the same
//! progress bar as a local run; `--attach --out RUN` follows a run launched earlier.

use anyhow::bail;
use clap::Args;

use crate::jobs::CancelToken;
use crate::train::launch::local::{LocalJob, WatchEnd};
use crate::train::launch::run::Launched;
use crate::train::launch::{self, ray, sky, slurm, ssh, ExportOptions, Target};
use crate::train::StepRecord;

#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Train with the standard engines instead: write a run folder in --out for torchrun, slurm,
    /// ray or skypilot (TRL SFT script with s1's formatting, mask and settings, data as Parquet)
    #[arg(long, value_enum)]
    pub target: Option<Target>,
    /// Start the exported run (torchrun: here, as a subprocess; ray: through the Jobs API at
    /// --ray-address; slurm: sbatch on this login node, or on --ssh's; skypilot: sky launch)
    /// and follow its log
    #[arg(long, requires = "target")]
    pub launch: bool,
    /// Follow a run launched earlier from --out (its launch.json, ray_job.json or slurm_job.json)
    #[arg(long, conflicts_with = "target")]
    pub attach: bool,
    /// The Ray dashboard (Jobs API)
    #[arg(long, env = "RAY_ADDRESS", default_value = "http://127.0.0.1:8265")]
    pub ray_address: String,
    /// Upload the run folder to the Ray cluster as the job's working directory (as `ray job submit
    /// --working-dir .` does), for a cluster that does not see this folder; the checkpoints are
    /// then written on the cluster (under --ray-output-dir when given)
    #[arg(long)]
    pub ray_upload: bool,
    /// Where the job writes its checkpoints on the Ray cluster (shared or persistent storage);
    /// with --ray-upload the default is the job's own copy of the folder, which Ray may remove
    #[arg(long)]
    pub ray_output_dir: Option<String>,
    /// The Python that runs ray_job.py on the Ray head
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// What train.py loads instead of a copy of --model: a Hugging Face id or a path on the cluster
    #[arg(long)]
    pub remote_model: Option<String>,
    /// Nodes (Slurm, SkyPilot)
    #[arg(long, default_value_t = 2)]
    pub nodes: usize,
    /// GPUs per node (Slurm, Ray, SkyPilot); 0 for a CPU job
    #[arg(long, default_value_t = 8)]
    pub gpus_per_node: usize,
    /// Processes of a launch here or on Ray (default: the GPUs, else 1)
    #[arg(long)]
    pub nproc: Option<usize>,
    /// Slurm on a login node that shares no folder with this machine, [user@]host[:port] (an
    /// alias of ~/.ssh/config works): the run folder is copied there, sbatch runs there, the
    /// log follows and the checkpoints come back. ssh never prompts: the key must be in the
    /// agent or the config; more options in S1_SSH_OPTIONS (`-F FILE -i KEY ...`)
    #[arg(long, value_name = "[USER@]HOST[:PORT]", requires = "launch")]
    pub ssh: Option<String>,
    /// The run's folder on the --ssh host (default ~/s1-studio-runs/<--out's name>)
    #[arg(long, requires = "ssh")]
    pub remote_dir: Option<String>,
    /// The SkyPilot cluster to launch on (default: named after --out's folder)
    #[arg(long, requires = "launch")]
    pub cluster: Option<String>,
}

impl RemoteArgs {
    pub fn wanted(&self) -> bool {
        self.target.is_some() || self.attach
    }
}

fn bar(total: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn show(bar: &indicatif::ProgressBar, r: &StepRecord) {
    bar.set_length(r.total_steps as u64);
    bar.set_position(r.step as u64);
    bar.set_message(format!(
        "loss {:.4}  lr {:.2e}  grad norm {:.3}  {:.0} tok/s  ETA {:.0}s",
        r.loss, r.lr, r.grad_norm, r.tokens_per_s, r.remaining
    ));
}

fn report(end: Result<WatchEnd, String>, out: &std::path::Path) -> anyhow::Result<()> {
    match end {
        Ok(WatchEnd::Done { steps, checkpoint }) => {
            match checkpoint {
                Some(c) => println!("done: {steps} steps; model in {}", c.display()),
                None => println!("done: {steps} steps (no checkpoint in {})", out.display()),
            }
            Ok(())
        }
        Ok(WatchEnd::Stopped { step }) => {
            println!("stopped at step {step}");
            Ok(())
        }
        Ok(WatchEnd::Detached { step }) => {
            println!(
                "left the job running at step {step}; follow it again with: s1-studio train --attach --out {}",
                out.display()
            );
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
}

/// The launch's environment: the device (here: --device; on a cluster: CPU when
/// --gpus-per-node is 0, else the GPUs) and --nproc.
fn launch_env(a: &super::train::TrainArgs, r: &RemoteArgs, target: Target) -> Vec<(String, String)> {
    let cpu = match target {
        Target::Torchrun => a.device().is_cpu(),
        _ => r.gpus_per_node == 0,
    };
    let mut env = vec![("DEVICE".to_string(), if cpu { "cpu" } else { "cuda" }.to_string())];
    if let Some(n) = r.nproc {
        env.push(("NPROC".into(), n.to_string()));
    }
    env
}

/// Follows the job launched from `out` (here, on Ray or on Slurm), with a progress bar.
fn follow(out: &std::path::Path, mut job: Launched) -> anyhow::Result<()> {
    let cancel = CancelToken::new();
    {
        let c = cancel.clone();
        // Ctrl-C stops the job (torchrun and every rank, the Ray job, or scancel).
        let _ = ctrlc::set_handler(move || c.cancel());
    }
    let b = bar(launch::read_export(out).map_or(0, |s| s.total_steps));
    b.println(format!("following {}", job.describe(out)));
    let end = job.watch(out, &cancel, &CancelToken::new(), &mut |s| show(&b, s));
    b.finish();
    report(end, out)
}

pub fn run(a: &super::train::TrainArgs, r: &RemoteArgs) -> anyhow::Result<()> {
    let out = a.out().to_path_buf();
    if r.attach {
        let options = ssh::options_from_env().map_err(anyhow::Error::msg)?;
        let job = Launched::find(&out, Some(&r.ray_address), options).map_err(anyhow::Error::msg)?;
        return follow(&out, job);
    }
    let Some(target) = r.target else {
        bail!("--target or --attach is needed")
    };
    if r.ssh.is_some() && target != Target::Slurm {
        bail!(
            "--ssh launches Slurm runs (--target slurm); for {} see {}",
            target.name(),
            target.note()
        );
    }
    // A bad host or S1_SSH_OPTIONS is said before anything is written.
    let site = match &r.ssh {
        Some(host) => slurm::Site::new(
            host,
            r.remote_dir.as_deref().unwrap_or(""),
            ssh::options_from_env().map_err(anyhow::Error::msg)?,
            &out,
        )
        .map_err(anyhow::Error::msg)?,
        None => slurm::Site::Here,
    };
    let s = super::train::settings(a)?;
    let opts = ExportOptions {
        target,
        remote_model: r.remote_model.clone(),
        nodes: r.nodes,
        gpus_per_node: r.gpus_per_node,
        ..ExportOptions::default()
    };
    let sum = launch::export(&s, &opts).map_err(anyhow::Error::msg)?;
    println!(
        "wrote {} for {}: {} examples, {} steps of {} examples ({})",
        out.display(),
        target.name(),
        sum.examples,
        sum.total_steps,
        sum.global_batch,
        sum.files.join(", ")
    );
    println!("command (from {}): {}", out.display(), sum.command);
    if !r.launch {
        println!("see {} for the other targets", out.join("README.md").display());
        return Ok(());
    }
    match target {
        Target::Torchrun => {
            let job = LocalJob::start(&out, &launch_env(a, r, target)).map_err(anyhow::Error::msg)?;
            follow(&out, Launched::Local(job))
        }
        Target::Ray => {
            let client = ray::RayClient::new(&r.ray_address);
            let mut env = launch_env(a, r, target);
            if let Some(d) = &r.ray_output_dir {
                env.push(("OUTPUT_DIR".into(), d.clone()));
            }
            if r.ray_upload {
                println!(
                    "uploading {} to {} as the job's working directory",
                    out.display(),
                    client.address()
                );
                if r.ray_output_dir.is_none() {
                    println!(
                        "note: the checkpoints stay in the job's copy of the folder on the cluster; give --ray-output-dir \
                         (shared or persistent storage there) to keep them"
                    );
                }
            }
            let id = ray::launch(&client, &out, &r.python, &env, r.ray_upload).map_err(anyhow::Error::msg)?;
            follow(&out, Launched::Ray(client, id))
        }
        Target::Slurm => {
            if let slurm::Site::Ssh { .. } = site {
                println!("copying {} to {}", out.display(), site.describe(&out));
                site.upload(&out).map_err(anyhow::Error::msg)?;
            }
            let id = slurm::submit(&site, &out, &launch_env(a, r, target)).map_err(anyhow::Error::msg)?;
            follow(&out, Launched::Slurm(site, id))
        }
        Target::Skypilot => {
            let cluster = r.cluster.clone().unwrap_or_else(|| sky::cluster_name(&out));
            println!(
                "sky launch -c {cluster} sky.yaml -y -d (its output: {})",
                out.join(sky::LAUNCH_LOG).display()
            );
            let job = sky::launch(&out, &cluster, &launch_env(a, r, target)).map_err(anyhow::Error::msg)?;
            let options = ssh::options_from_env().map_err(anyhow::Error::msg)?;
            follow(&out, Launched::Sky(cluster, job, options))
        }
    }
}
