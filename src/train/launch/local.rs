//! An exported run started on this machine: `bash launch.sh` as a subprocess in its own process
//! group (so Stop ends torchrun and every rank), its output in launch.log, its pid in
//! launch.json (so a later session re-attaches), and a watch loop that turns the growing
//! trainer_log.jsonl into steps and a dead job into an error with its last log lines.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::follow::{failure, LogFollower};
use crate::cancel::CancelToken;
use crate::train::StepRecord;

/// The launched job's output (stdout and stderr).
pub const LAUNCH_LOG: &str = "launch.log";
/// The launched job's pid and start, for re-attaching.
pub const LAUNCH_FILE: &str = "launch.json";

/// How a watched run ended, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEnd {
    /// The job finished; its newest checkpoint.
    Done { steps: usize, checkpoint: Option<PathBuf> },
    /// Stopped from here (the job was ended).
    Stopped { step: usize },
    /// The watcher let go; the job runs on (re-attach later).
    Detached { step: usize },
}

/// A local job: a child of this process, or one found again through launch.json.
#[derive(Debug)]
pub struct LocalJob {
    out: PathBuf,
    child: Option<Child>,
    pid: i32,
}

/// The reason and last lines of launch.log in `out`.
fn log_failure(out: &Path) -> String {
    let bytes = std::fs::read(out.join(LAUNCH_LOG)).unwrap_or_default();
    let start = bytes.len().saturating_sub(256 * 1024);
    failure(&String::from_utf8_lossy(&bytes[start..]), 15)
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

impl LocalJob {
    /// Starts `bash launch.sh` in `out` with `env` added, in a new process group.
    pub fn start(out: &Path, env: &[(String, String)]) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let launch = out.join("launch.sh");
        if !launch.exists() {
            return Err(format!(
                "{}: missing; write the run folder first (s1-studio train --target torchrun --out {})",
                launch.display(),
                out.display()
            ));
        }
        let log_path = out.join(LAUNCH_LOG);
        let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;
        let child = Command::new("bash")
            .arg("launch.sh")
            .current_dir(out)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("could not start bash launch.sh in {}: {e}", out.display()))?;
        let pid = child.id() as i32;
        let meta = serde_json::json!({ "pid": pid, "target": "torchrun", "log": LAUNCH_LOG });
        let p = out.join(LAUNCH_FILE);
        std::fs::write(&p, meta.to_string()).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(Self {
            out: out.to_path_buf(),
            child: Some(child),
            pid,
        })
    }

    /// Finds the job launch.json names, if it still runs.
    pub fn attach(out: &Path) -> Result<Self, String> {
        let p = out.join(LAUNCH_FILE);
        let text =
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e} (was the run launched here?)", p.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        let pid = v["pid"].as_i64().ok_or_else(|| format!("{}: no `pid`", p.display()))? as i32;
        if !alive(pid) {
            return Err(format!(
                "the job started from {} (pid {pid}) is no longer running; {}",
                out.display(),
                log_failure(out)
            ));
        }
        Ok(Self {
            out: out.to_path_buf(),
            child: None,
            pid,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// None while it runs; then Ok, or the exit status said plainly.
    pub fn finished(&mut self) -> Option<Result<(), String>> {
        match &mut self.child {
            Some(c) => match c.try_wait() {
                Ok(None) => None,
                Ok(Some(st)) if st.success() => Some(Ok(())),
                Ok(Some(st)) => Some(Err(match st.code() {
                    Some(code) => format!("exited with code {code}"),
                    None => "was killed by a signal".to_string(),
                })),
                Err(e) => Some(Err(format!("could not be waited for ({e})"))),
            },
            None if alive(self.pid) => None,
            None => Some(Ok(())),
        }
    }

    /// Ends the job and all its processes: SIGTERM to the group, SIGKILL after 10 s.
    pub fn stop(&mut self) {
        // SAFETY: signals to the job's own process group (its pid is the group id).
        unsafe { libc::kill(-self.pid, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(10);
        while self.finished().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.finished().is_none() {
            // SAFETY: as above.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            if let Some(c) = &mut self.child {
                let _ = c.wait();
            }
        }
    }

    /// Follows the job to its end: every new step goes to `on_step`; `cancel` stops the job
    /// (`detach` instead lets it run on). A job that fails, or ends before its last step, is an
    /// error with its last log lines.
    pub fn watch(
        &mut self,
        cancel: &CancelToken,
        detach: &CancelToken,
        on_step: &mut dyn FnMut(&StepRecord),
    ) -> Result<WatchEnd, String> {
        let mut follower = LogFollower::new(&self.out.join(crate::train::runs::LOG));
        let (mut step, mut total) = (0, 0);
        loop {
            for r in follower.poll() {
                (step, total) = (r.step, r.total_steps);
                on_step(&r);
            }
            if cancel.is_cancelled() {
                self.stop();
                return Ok(WatchEnd::Stopped { step });
            }
            if detach.is_cancelled() {
                return Ok(WatchEnd::Detached { step });
            }
            if let Some(end) = self.finished() {
                for r in follower.poll() {
                    (step, total) = (r.step, r.total_steps);
                    on_step(&r);
                }
                let last = || log_failure(&self.out);
                return match end {
                    Err(how) => Err(format!(
                        "the job in {} {how} after step {step}: {}",
                        self.out.display(),
                        last()
                    )),
                    Ok(()) if total == 0 || step < total => Err(format!(
                        "the job in {} ended after step {step} of {total}: {}",
                        self.out.display(),
                        last()
                    )),
                    Ok(()) => Ok(WatchEnd::Done {
                        steps: step,
                        checkpoint: crate::train::runs::checkpoints(&self.out).last().map(|c| c.1.clone()),
                    }),
                };
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
