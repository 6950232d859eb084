//! A run folder submitted to Slurm: `sbatch --parsable job.sbatch`, the job's state from
//! `squeue`, Stop as `scancel`, from one of two sites. Here (a login node, or a one-node
//! cluster): the folder is on the filesystem the nodes share, so the job's trainer_log.jsonl and
//! checkpoints are read where they land. Over SSH (a login node that shares nothing with this
//! machine): the folder is copied to a directory there, the commands run through ssh, the log is
//! brought back as it grows and the checkpoints at the end. One watch loop serves both; a job
//! that dies shows the reason from its slurm-ID.out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::follow::{failure, LogFollower};
use super::local::WatchEnd;
use super::ssh::{self, Ssh, SshHost};
use crate::cancel::CancelToken;
use crate::train::StepRecord;

/// The submitted job's id (and, over SSH, the host and folder), for re-attaching.
pub const SLURM_FILE: &str = "slurm_job.json";

/// Consecutive failed polls over SSH before the watcher gives up (the job runs on).
const LOST_AFTER: usize = 4;

/// Where Slurm's commands run and the job's files are.
#[derive(Debug, Clone)]
pub enum Site {
    /// This machine, on the filesystem the nodes share.
    Here,
    /// A login node over SSH; the run folder is copied to `dir` there.
    Ssh { ssh: Ssh, dir: String },
}

/// A failed step, and whether it was the connection (worth another try).
struct StepError {
    connection: bool,
    message: String,
}

impl From<ssh::SshError> for StepError {
    fn from(e: ssh::SshError) -> Self {
        Self {
            connection: e.connection,
            message: e.message,
        }
    }
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        Self {
            connection: false,
            message,
        }
    }
}

fn run_here(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{what} is not on PATH: submit from a Slurm login node (Debian: apt-get install slurm-client), or over SSH (--ssh)")
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

impl Site {
    /// Over SSH to `host` (`[user@]host[:port]`) with `options`, the run in `dir` there (default
    /// `~/s1-studio-runs/<run folder's name>`); Here when `host` is empty.
    pub fn new(host: &str, dir: &str, options: Vec<String>, out: &Path) -> Result<Self, String> {
        if host.trim().is_empty() {
            return Ok(Site::Here);
        }
        let dir = if dir.trim().is_empty() {
            ssh::default_remote_dir(out)
        } else {
            dir.trim().to_string()
        };
        Ok(Site::Ssh {
            ssh: Ssh::new(SshHost::parse(host)?, options),
            dir,
        })
    }

    /// Where the job's files are, in words (`login:~/s1-studio-runs/a`, or the local folder).
    pub fn describe(&self, out: &Path) -> String {
        match self {
            Site::Here => out.display().to_string(),
            Site::Ssh { ssh, dir } => format!("{}:{dir}", ssh.host),
        }
    }

    /// Runs a Slurm command (`args[0]` with the rest) in the job's folder with `env` added.
    fn slurm(&self, out: &Path, args: &[&str], env: &[(String, String)]) -> Result<String, StepError> {
        let what = args[0];
        match self {
            Site::Here => Ok(run_here(
                Command::new(what)
                    .args(&args[1..])
                    .current_dir(out)
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                what,
            )?),
            Site::Ssh { ssh, dir } => {
                let mut line = format!("cd {} && ", ssh::quote(&ssh::remote_path(dir)));
                if !env.is_empty() {
                    line.push_str("env ");
                    for (k, v) in env {
                        line.push_str(&ssh::quote(&format!("{k}={v}")));
                        line.push(' ');
                    }
                }
                line.push_str(&args.iter().map(|a| ssh::quote(a)).collect::<Vec<_>>().join(" "));
                Ok(ssh.exec(&line, what)?)
            }
        }
    }

    /// Copies the run folder there (nothing to do here); a folder there that holds a run
    /// already (its log or checkpoints would be taken for this one's) is refused.
    pub fn upload(&self, out: &Path) -> Result<(), String> {
        let Site::Ssh { ssh, dir } = self else {
            return Ok(());
        };
        let d = ssh::quote(&ssh::remote_path(dir));
        let held = ssh.exec(
            &format!(
                "if [ -e {d}/{} ] || ls -d {d}/checkpoint-* >/dev/null 2>&1; then echo held; fi",
                crate::train::runs::LOG
            ),
            &format!("looking at {}:{dir}", ssh.host),
        )?;
        if held == "held" {
            return Err(format!(
                "{}:{dir} already holds a run (trainer_log.jsonl or checkpoints); choose another folder there \
                 (--remote-dir) or remove it",
                ssh.host
            ));
        }
        Ok(ssh.push_dir(out, dir)?)
    }

    /// Brings the job's new trainer_log.jsonl lines into `out` (there already, here).
    fn sync_log(&self, out: &Path) -> Result<(), StepError> {
        if let Site::Ssh { ssh, dir } = self {
            let log = crate::train::runs::LOG;
            ssh.pull_tail(&format!("{}/{log}", ssh::remote_path(dir)), &out.join(log))?;
        }
        Ok(())
    }

    /// Brings the job's checkpoints into `out` (there already, here).
    pub fn pull_checkpoints(&self, out: &Path) -> Result<(), String> {
        match self {
            Site::Here => Ok(()),
            Site::Ssh { ssh, dir } => Ok(ssh.pull_dirs(dir, "checkpoint-", out)?),
        }
    }

    /// The end of the job's slurm-ID.out (brought into `out` over SSH, so it stays with the run).
    fn job_output(&self, out: &Path, id: &str) -> String {
        let name = format!("slurm-{id}.out");
        if let Site::Ssh { ssh, dir } = self {
            let path = ssh::quote(&format!("{}/{name}", ssh::remote_path(dir)));
            match ssh.output(&format!("tail -c 262144 {path}"), "reading the job's output") {
                Ok(o) if o.status.success() => {
                    let _ = std::fs::write(out.join(&name), &o.stdout);
                }
                Ok(o) => return String::from_utf8_lossy(&o.stderr).trim().to_string(),
                Err(e) => return e.message,
            }
        }
        let bytes = std::fs::read(out.join(&name)).unwrap_or_default();
        let start = bytes.len().saturating_sub(256 * 1024);
        failure(&String::from_utf8_lossy(&bytes[start..]), 15)
    }

    /// How long between polls (each is a connection over SSH).
    fn poll_every(&self) -> Duration {
        match self {
            Site::Here => Duration::from_millis(500),
            Site::Ssh { .. } => Duration::from_secs(2),
        }
    }
}

/// Submits job.sbatch from `out` (over SSH: from its copy there) with `env` added; records the
/// job id and site in slurm_job.json and returns the id.
pub fn submit(site: &Site, out: &Path, env: &[(String, String)]) -> Result<String, String> {
    let text = site
        .slurm(out, &["sbatch", "--parsable", "job.sbatch"], env)
        .map_err(|e| format!("Slurm refused the job in {}: {}", site.describe(out), e.message))?;
    let id = text
        .lines()
        .last()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("sbatch answered `{text}` instead of a job id"));
    }
    let mut meta = serde_json::json!({ "job_id": id });
    if let Site::Ssh { ssh, dir } = site {
        meta["ssh"] = serde_json::json!(ssh.host);
        meta["remote_dir"] = serde_json::json!(dir);
    }
    let p = out.join(SLURM_FILE);
    std::fs::write(&p, meta.to_string()).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(id)
}

/// The job slurm_job.json recorded and its site (over SSH with `options`, as on submit).
pub fn attach(out: &Path, options: Vec<String>) -> Result<(Site, String), String> {
    let p = out.join(SLURM_FILE);
    let text =
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e} (was the run submitted from here?)", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let id = v["job_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{}: no job_id", p.display()))?;
    if v["ssh"].is_null() {
        return Ok((Site::Here, id));
    }
    let host: SshHost = serde_json::from_value(v["ssh"].clone()).map_err(|e| format!("{}: ssh: {e}", p.display()))?;
    let dir = v["remote_dir"]
        .as_str()
        .ok_or_else(|| format!("{}: ssh without remote_dir", p.display()))?;
    Ok((
        Site::Ssh {
            ssh: Ssh::new(host, options),
            dir: dir.to_string(),
        },
        id,
    ))
}

/// The job's state (PENDING, RUNNING, COMPLETING, …), or None once Slurm no longer lists it.
fn state(site: &Site, out: &Path, id: &str) -> Result<Option<String>, StepError> {
    match site.slurm(out, &["squeue", "-h", "-j", id, "-o", "%T"], &[]) {
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => Ok(Some(s.lines().next().unwrap_or("").to_string())),
        Err(e) if e.message.contains("Invalid job id") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Follows job `id` of the run in `out` to its end (see [`super::local::LocalJob::watch`]):
/// its steps from trainer_log.jsonl, Stop as scancel, its checkpoints in `out` at the end.
/// Over SSH a connection that stays lost ends the watch with an error; the job runs on.
pub fn watch(
    site: &Site,
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
    let mut misses = 0;
    let lost = |e: &StepError| {
        format!(
            "{}\nthe watch of Slurm job {id} stopped; the job runs on: follow it again with `s1-studio train --attach --out {}`",
            e.message,
            out.display()
        )
    };
    loop {
        let polled = site.sync_log(out).and_then(|()| {
            read(&mut step, &mut total);
            if cancel.is_cancelled() || detach.is_cancelled() {
                return Ok(Some(String::new()));
            }
            state(site, out, id)
        });
        if cancel.is_cancelled() {
            site.slurm(out, &["scancel", id], &[]).map_err(|e| e.message)?;
            site.pull_checkpoints(out)?;
            return Ok(WatchEnd::Stopped { step });
        }
        if detach.is_cancelled() {
            return Ok(WatchEnd::Detached { step });
        }
        match polled {
            Err(e) if e.connection => {
                misses += 1;
                if misses >= LOST_AFTER {
                    return Err(lost(&e));
                }
            }
            Err(e) => return Err(e.message),
            Ok(Some(_)) => misses = 0,
            Ok(None) => {
                site.sync_log(out).map_err(|e| lost(&e))?;
                read(&mut step, &mut total);
                if total > 0 && step >= total {
                    site.pull_checkpoints(out)?;
                    return Ok(WatchEnd::Done {
                        steps: step,
                        checkpoint: newest_checkpoint(out),
                    });
                }
                return Err(format!(
                    "Slurm job {id} ended after step {step} of {total}: {}",
                    site.job_output(out, id)
                ));
            }
        }
        std::thread::sleep(site.poll_every());
    }
}

fn newest_checkpoint(out: &Path) -> Option<PathBuf> {
    crate::train::runs::checkpoints(out).last().map(|c| c.1.clone())
}
