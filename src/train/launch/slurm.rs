//! A run folder submitted to Slurm from this machine (a login node, or a one-node cluster):
//! `sbatch --parsable job.sbatch`, the job's state from `squeue`, Stop as `scancel`. The
//! folder is on the filesystem the nodes share, so the job's trainer_log.jsonl and checkpoints
//! are read where they land; a job that dies shows the reason from its slurm-ID.out.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::follow::{failure, LogFollower};
use super::local::WatchEnd;
use crate::cancel::CancelToken;
use crate::train::StepRecord;

/// The submitted job's id, for re-attaching.
pub const SLURM_FILE: &str = "slurm_job.json";

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{what} is not on PATH: submit from a Slurm login node (Debian: apt-get install slurm-client)")
        } else {
            format!("could not run {what}: {e}")
        }
    })?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Submits job.sbatch from `out` with `env` added; records and returns the job id.
pub fn submit(out: &Path, env: &[(String, String)]) -> Result<String, String> {
    let text = run(
        Command::new("sbatch")
            .args(["--parsable", "job.sbatch"])
            .current_dir(out)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        "sbatch",
    )
    .map_err(|e| format!("Slurm refused the job in {}: {e}", out.display()))?;
    let id = text.split(';').next().unwrap_or("").trim().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("sbatch answered `{text}` instead of a job id"));
    }
    let p = out.join(SLURM_FILE);
    std::fs::write(&p, serde_json::json!({ "job_id": id }).to_string()).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(id)
}

/// The job id slurm_job.json recorded.
pub fn attach(out: &Path) -> Result<String, String> {
    let p = out.join(SLURM_FILE);
    let text =
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e} (was the run submitted from here?)", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    v["job_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{}: no job_id", p.display()))
}

/// The job's state (PENDING, RUNNING, COMPLETING, …), or None once Slurm no longer lists it.
pub fn state(id: &str) -> Result<Option<String>, String> {
    match run(Command::new("squeue").args(["-h", "-j", id, "-o", "%T"]), "squeue") {
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => Ok(Some(s.lines().next().unwrap_or("").to_string())),
        Err(e) if e.contains("Invalid job id") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Follows job `id` of the run in `out` to its end (see [`super::local::LocalJob::watch`]).
pub fn watch(
    id: &str,
    out: &Path,
    cancel: &CancelToken,
    detach: &CancelToken,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<WatchEnd, String> {
    let mut follower = LogFollower::new(&out.join(crate::train::runs::LOG));
    let (mut step, mut total) = (0, 0);
    let mut read = |step: &mut usize, total: &mut usize| {
        for r in follower.poll() {
            (*step, *total) = (r.step, r.total_steps);
            on_step(&r);
        }
    };
    loop {
        read(&mut step, &mut total);
        if cancel.is_cancelled() {
            run(Command::new("scancel").arg(id), "scancel")?;
            return Ok(WatchEnd::Stopped { step });
        }
        if detach.is_cancelled() {
            return Ok(WatchEnd::Detached { step });
        }
        if state(id)?.is_none() {
            read(&mut step, &mut total);
            if total > 0 && step >= total {
                return Ok(WatchEnd::Done {
                    steps: step,
                    checkpoint: crate::train::runs::checkpoints(out).last().map(|c| c.1.clone()),
                });
            }
            let log = std::fs::read(out.join(format!("slurm-{id}.out"))).unwrap_or_default();
            return Err(format!(
                "Slurm job {id} ended after step {step} of {total}: {}",
                failure(&String::from_utf8_lossy(&log), 15)
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
