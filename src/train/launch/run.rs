//! An exported run from start to end as the Train view sees a local one: the folder written,
//! the job started where it was chosen (torchrun here, Ray's Jobs API, sbatch), its steps as
//! `TrainEvent`s (the same live charts, ETA and Stop), and its newest checkpoint as the outcome
//! (the run history and "Chat with this checkpoint" read it from the folder).

use super::local::{LocalJob, WatchEnd};
use super::{export, ray, slurm, ExportOptions, Target};
use crate::cancel::CancelToken;
use crate::train::{TrainEvent, TrainOutcome, TrainSettings};

/// How the job is started, beyond the folder's files.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaunchSpec {
    /// The Ray dashboard (Jobs API), e.g. http://127.0.0.1:8265.
    pub ray_address: String,
    /// The Python on the Ray head that runs ray_job.py.
    pub python: String,
    /// Added to the job's environment (NPROC, DEVICE, TORCHRUN, MASTER_PORT, …).
    pub env: Vec<(String, String)>,
    /// Slurm over SSH: the login node, `[user@]host[:port]` (empty: sbatch on this machine).
    pub ssh_host: String,
    /// The run's folder on that node (empty: `~/s1-studio-runs/<run folder's name>`).
    pub remote_dir: String,
    /// Extra ssh options (see [`super::ssh::OPTIONS_ENV`]).
    pub ssh_options: Vec<String>,
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
            ray::launch(&client, out, &spec.python, &spec.env).and_then(|id| {
                ray::watch(
                    &client,
                    &id,
                    out,
                    cancel,
                    &detach,
                    std::time::Duration::from_secs(60),
                    &mut on_step,
                )
            })
        }
        Target::Slurm => {
            slurm::Site::new(&spec.ssh_host, &spec.remote_dir, spec.ssh_options.clone(), out).and_then(|site| {
                site.upload(out)?;
                let id = slurm::submit(&site, out, &spec.env)?;
                slurm::watch(&site, &id, out, cancel, &detach, &mut on_step)
            })
        }
        Target::Skypilot => {
            return TrainOutcome::Failed(format!(
                "wrote {}; SkyPilot runs start with `sky launch -c NAME sky.yaml` from that folder (README.md \
                 there says how to bring the checkpoints back)",
                out.display()
            ))
        }
    };
    let newest = || crate::train::runs::checkpoints(out).last().map(|c| c.1.clone());
    match end {
        Ok(WatchEnd::Done { steps, checkpoint }) => TrainOutcome::Done {
            final_checkpoint: checkpoint.unwrap_or_else(|| out.clone()),
            steps,
        },
        Ok(WatchEnd::Stopped { step } | WatchEnd::Detached { step }) => TrainOutcome::Stopped {
            last_checkpoint: newest(),
            step,
        },
        Err(e) => TrainOutcome::Failed(e),
    }
}
