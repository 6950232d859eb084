//! An exported run from start to end as the Train view sees a local one: the folder written,
//! the job started where it was chosen (torchrun here, Ray's Jobs API, sbatch), its steps as
//! `TrainEvent`s (the same live charts, ETA and Stop), and its newest checkpoint as the outcome
//! (the run history and "Chat with this checkpoint" read it from the folder); and a job
//! launched earlier found again from its run folder and followed the same way.

use std::path::Path;
use std::time::Duration;

use super::local::{LocalJob, WatchEnd};
use super::{export, ray, read_export, sky, slurm, ExportOptions, Target};
use crate::cancel::CancelToken;
use crate::train::{StepRecord, TrainEvent, TrainOutcome, TrainSettings};

/// How the job is started, beyond the folder's files.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaunchSpec {
    /// The Ray dashboard (Jobs API), e.g. http://127.0.0.1:8265.
    pub ray_address: String,
    /// The Python on the Ray head that runs ray_job.py.
    pub python: String,
    /// Added to the job's environment (NPROC, DEVICE, TORCHRUN, MASTER_PORT, OUTPUT_DIR, …).
    pub env: Vec<(String, String)>,
    /// The Ray cluster does not see this folder: upload it as the job's working directory.
    pub ray_upload: bool,
    /// Slurm over SSH: the login node, `[user@]host[:port]` (empty: sbatch on this machine).
    pub ssh_host: String,
    /// The run's folder on that node (empty: `~/s1-studio-runs/<run folder's name>`).
    pub remote_dir: String,
    /// Extra ssh options (see [`super::ssh::OPTIONS_ENV`]).
    pub ssh_options: Vec<String>,
    /// The SkyPilot cluster (empty: named after the run folder, see [`sky::cluster_name`]).
    pub cluster: String,
}

/// Exports `s` for `opts.target`, launches it and follows it to its end, sending the events a
/// local run sends (`Finished` is left to the caller, with the outcome returned).
pub fn run(
    s: &TrainSettings,
    opts: &ExportOptions,
    spec: &LaunchSpec,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(TrainEvent),
) -> TrainOutcome {
    if s.resume {
        return TrainOutcome::Failed(format!(
            "{} runs cannot be resumed from here; start a new run (the folder's checkpoints stay)",
            opts.target.name()
        ));
    }
    let sum = match export(s, opts) {
        Ok(sum) => sum,
        Err(e) => return TrainOutcome::Failed(e),
    };
    emit(TrainEvent::Started {
        examples: sum.examples,
        total_steps: sum.total_steps,
        resumed_from: None,
        parameters: 0,
        trainable: 0,
    });
    let out = &s.out;
    let detach = CancelToken::new();
    let mut on_step = |r: &crate::train::StepRecord| emit(TrainEvent::Step(r.clone()));
    let end = match opts.target {
        Target::Torchrun => {
            LocalJob::start(out, &spec.env).and_then(|mut job| job.watch(cancel, &detach, &mut on_step))
        }
        Target::Ray => {
            let client = ray::RayClient::new(&spec.ray_address);
            ray::launch(&client, out, &spec.python, &spec.env, spec.ray_upload)
                .and_then(|id| ray::watch(&client, &id, out, cancel, &detach, RAY_PATIENCE, &mut on_step))
        }
        Target::Slurm => {
            slurm::Site::new(&spec.ssh_host, &spec.remote_dir, spec.ssh_options.clone(), out).and_then(|site| {
                site.upload(out)?;
                let id = slurm::submit(&site, out, &spec.env)?;
                slurm::watch(&site, &id, out, cancel, &detach, &mut on_step)
            })
        }
        Target::Skypilot => {
            let cluster = if spec.cluster.trim().is_empty() {
                sky::cluster_name(out)
            } else {
                spec.cluster.trim().to_string()
            };
            sky::launch(out, &cluster, &spec.env).and_then(|job| {
                sky::watch(
                    &cluster,
                    job.as_deref(),
                    out,
                    spec.ssh_options.clone(),
                    cancel,
                    &detach,
                    &mut on_step,
                )
            })
        }
    };
    outcome(end, out)
}

/// How long a Ray watch waits through a lost connection.
const RAY_PATIENCE: Duration = Duration::from_secs(60);

/// A watch's end as the run's outcome.
fn outcome(end: Result<WatchEnd, String>, out: &Path) -> TrainOutcome {
    match end {
        Ok(WatchEnd::Done { steps, checkpoint }) => TrainOutcome::Done {
            final_checkpoint: checkpoint.unwrap_or_else(|| out.to_path_buf()),
            steps,
        },
        Ok(WatchEnd::Stopped { step } | WatchEnd::Detached { step }) => TrainOutcome::Stopped {
            last_checkpoint: crate::train::runs::checkpoints(out).last().map(|c| c.1.clone()),
            step,
        },
        Err(e) => TrainOutcome::Failed(e),
    }
}

/// A job launched earlier from a run folder, found again from what its launch recorded.
#[derive(Debug)]
pub enum Launched {
    /// launch.sh here (launch.json).
    Local(LocalJob),
    /// A Ray job (ray_job.json).
    Ray(ray::RayClient, String),
    /// A Slurm job, here or over SSH (slurm_job.json).
    Slurm(slurm::Site, String),
    /// A SkyPilot job (sky_job.json): the cluster, the job, the ssh options for the checkpoints.
    Sky(String, Option<String>, Vec<String>),
}

impl Launched {
    /// The job `out`'s launch recorded; `ray_address` overrides the recorded dashboard, and a
    /// Slurm job over SSH is reached with `ssh_options`.
    pub fn find(out: &Path, ray_address: Option<&str>, ssh_options: Vec<String>) -> Result<Self, String> {
        if out.join(ray::RAY_FILE).exists() {
            let (client, id) = ray::attach(out, ray_address)?;
            return Ok(Launched::Ray(client, id));
        }
        if out.join(slurm::SLURM_FILE).exists() {
            let (site, id) = slurm::attach(out, ssh_options)?;
            return Ok(Launched::Slurm(site, id));
        }
        if out.join(sky::SKY_FILE).exists() {
            let (cluster, job) = sky::attach(out)?;
            return Ok(Launched::Sky(cluster, job, ssh_options));
        }
        if out.join(super::local::LAUNCH_FILE).exists() {
            return LocalJob::attach(out).map(Launched::Local);
        }
        Err(format!(
            "{} holds no launched job (launch.json, ray_job.json, slurm_job.json or sky_job.json): start it with --launch",
            out.display()
        ))
    }

    /// What is followed, in words.
    pub fn describe(&self, out: &Path) -> String {
        match self {
            Launched::Local(job) => format!("pid {} ({})", job.pid(), out.join(super::local::LAUNCH_LOG).display()),
            Launched::Ray(client, id) => format!("Ray job {id} at {}", client.address()),
            Launched::Slurm(site, id) => {
                format!("Slurm job {id} (its output: {}/slurm-{id}.out)", site.describe(out))
            }
            Launched::Sky(cluster, job, _) => format!(
                "SkyPilot job {} on cluster {cluster} ({})",
                job.as_deref().unwrap_or("(latest)"),
                out.join(sky::JOB_LOG).display()
            ),
        }
    }

    /// Follows the job to its end (see [`LocalJob::watch`]).
    pub fn watch(
        &mut self,
        out: &Path,
        cancel: &CancelToken,
        detach: &CancelToken,
        on_step: &mut dyn FnMut(&StepRecord),
    ) -> Result<WatchEnd, String> {
        match self {
            Launched::Local(job) => job.watch(cancel, detach, on_step),
            Launched::Ray(client, id) => ray::watch(client, id, out, cancel, detach, RAY_PATIENCE, on_step),
            Launched::Slurm(site, id) => slurm::watch(site, id, out, cancel, detach, on_step),
            Launched::Sky(cluster, job, options) => {
                sky::watch(cluster, job.as_deref(), out, options.clone(), cancel, detach, on_step)
            }
        }
    }
}

/// Follows the job launched earlier from `out` (see [`Launched::find`]; the dashboard and ssh
/// options from `spec`) as [`run`] follows a new one: its steps from the start of its log.
pub fn attach(out: &Path, spec: &LaunchSpec, cancel: &CancelToken, emit: &mut dyn FnMut(TrainEvent)) -> TrainOutcome {
    let ray_address = (!spec.ray_address.is_empty()).then_some(spec.ray_address.as_str());
    let mut job = match Launched::find(out, ray_address, spec.ssh_options.clone()) {
        Ok(job) => job,
        Err(e) => return TrainOutcome::Failed(e),
    };
    let (examples, total_steps) = read_export(out).map_or((0, 0), |s| (s.examples, s.total_steps));
    emit(TrainEvent::Started {
        examples,
        total_steps,
        resumed_from: None,
        parameters: 0,
        trainable: 0,
    });
    let end = job.watch(out, cancel, &CancelToken::new(), &mut |r| {
        emit(TrainEvent::Step(r.clone()))
    });
    outcome(end, out)
}
