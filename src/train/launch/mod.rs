//! Training beyond one machine: the studio writes a run folder that the standard engines train
//! (TRL + torchrun, under Slurm, Ray or SkyPilot), starts it where it can (a local subprocess,
//! Ray's Jobs REST API), and follows its trainer_log.jsonl into the same run history the local
//! trainer writes. The distributed runtime itself is theirs; nothing here reimplements it.

pub mod export;
pub mod follow;
pub mod local;
pub mod ray;
pub mod ray_package;
pub mod run;
pub mod sky;
pub mod slurm;
pub mod ssh;

pub use export::{export, read_export, ExportOptions, ExportSummary};
pub use run::LaunchSpec;

/// Where an exported run trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// torchrun on this machine or any node (launch.sh).
    #[default]
    Torchrun,
    /// A Slurm batch job (job.sbatch).
    Slurm,
    /// A Ray job (ray_job.py through the Jobs API).
    Ray,
    /// A SkyPilot task (sky.yaml).
    Skypilot,
}

impl Target {
    pub const ALL: [Target; 4] = [Target::Torchrun, Target::Slurm, Target::Ray, Target::Skypilot];

    /// The name used by the CLI and the files.
    pub fn name(self) -> &'static str {
        match self {
            Target::Torchrun => "torchrun",
            Target::Slurm => "slurm",
            Target::Ray => "ray",
            Target::Skypilot => "skypilot",
        }
    }

    /// How the target is started and followed, in a sentence.
    pub fn note(self) -> &'static str {
        match self {
            Target::Torchrun => {
                "`s1-studio train --target torchrun --out RUN --launch` starts it here and follows its log; \
                 on a GPU node run launch.sh there (it finds the GPUs with nvidia-smi)."
            }
            Target::Slurm => {
                "Submit job.sbatch from a login node whose filesystem the compute nodes share (the job's \
                 trainer_log.jsonl and checkpoints land in this folder), or with `--launch --ssh [user@]host` \
                 from here: the folder is copied there, the log follows and the checkpoints come back."
            }
            Target::Ray => {
                "`s1-studio train --target ray --out RUN --launch --ray-address http://HEAD:8265` submits \
                 ray_job.py through the Jobs API and follows the job's log into trainer_log.jsonl."
            }
            Target::Skypilot => {
                "`s1-studio train --target skypilot --out RUN --launch [--cluster NAME]` runs `sky launch` (it syncs \
                 this folder to every node and runs launch.sh), follows `sky logs` and brings the checkpoints back \
                 over ssh to the cluster's name; `sky down NAME` ends the cluster."
            }
        }
    }
}
