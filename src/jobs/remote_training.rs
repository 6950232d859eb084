//! A training run on the standard engines (torchrun here, Ray, Slurm) as a job of the same
//! protocol as a local run (`TrainEvent`s, `Finished` last), so the Train view shows it with
//! the same charts and Stop; also one launched earlier, found again from its run folder.

use super::job::Job;
use super::training::TrainingJob;
use super::Notify;
use crate::train::launch::{ExportOptions, LaunchSpec};
use crate::train::{TrainEvent, TrainSettings};

impl TrainingJob {
    /// Exports `settings` for `opts.target`, launches and follows it on its own thread.
    pub fn spawn_remote(
        settings: TrainSettings,
        opts: ExportOptions,
        spec: LaunchSpec,
        notify: Notify,
    ) -> std::io::Result<Self> {
        Job::run("s1-train-remote", notify, move |cancel, emit| {
            let outcome = crate::train::launch::run::run(&settings, &opts, &spec, cancel, emit);
            emit(TrainEvent::Finished(outcome));
        })
    }

    /// Follows the job launched earlier from `out` on its own thread.
    pub fn spawn_attach(out: std::path::PathBuf, spec: LaunchSpec, notify: Notify) -> std::io::Result<Self> {
        Job::run("s1-train-attach", notify, move |cancel, emit| {
            let outcome = crate::train::launch::run::attach(&out, &spec, cancel, emit);
            emit(TrainEvent::Finished(outcome));
        })
    }
}
