//! A run folder handed to SkyPilot: `sky launch -c CLUSTER sky.yaml -y -d` from the folder (it
//! syncs the folder to every node as ~/sky_workdir and runs launch.sh), the job followed through
//! `sky logs CLUSTER JOB --follow --tail 0` (the generated train.py prints each step as an
//! `S1_STUDIO_STEP {json}` line, which becomes the local trainer_log.jsonl), Stop as
//! `sky cancel`, and the checkpoints brought back over ssh from the head node (SkyPilot writes
//! an ssh config entry named after the cluster). The cloud side is SkyPilot's; this drives its
//! command-line tool.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::follow::{failure, write_log, STEP_PREFIX};
use super::local::WatchEnd;
use super::ssh::{Ssh, SshHost};
use crate::cancel::CancelToken;
use crate::train::StepRecord;

/// The launched cluster and job, for re-attaching.
pub const SKY_FILE: &str = "sky_job.json";
/// `sky launch`'s output.
pub const LAUNCH_LOG: &str = "sky_launch.log";
/// The job's log as `sky logs --follow` streams it.
pub const JOB_LOG: &str = "sky_job.log";
/// Where SkyPilot puts the synced folder on the head node.
pub const REMOTE_WORKDIR: &str = "~/sky_workdir";

/// A cluster name SkyPilot takes (lowercase letters, digits and dashes, starting with a letter)
/// from a run folder's name.
pub fn cluster_name(out: &Path) -> String {
    let name: String = out
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-');
    let name = if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.to_string()
    } else {
        format!("s1-{name}")
    };
    name.chars()
        .take(40)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

fn sky(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new("sky");
    c.args(args).current_dir(dir).stdin(Stdio::null());
    c
}

fn not_found(e: std::io::Error, what: &str) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "sky is not on PATH: `pip install skypilot` (with your cloud's extra, e.g. skypilot[aws]) and `sky check`"
            .to_string()
    } else {
        format!("could not run {what}: {e}")
    }
}

/// The job id in `sky launch`'s output (`Job ID: 3`, `Job submitted, ID: 3`).
pub fn job_id_in(text: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let l = l.trim();
        let i = l.find("ID: ")?;
        let id: String = l[i + 4..].chars().take_while(|c| c.is_ascii_digit()).collect();
        (!id.is_empty() && l[..i].to_ascii_lowercase().contains("job")).then_some(id)
    })
}

/// Runs `sky launch -c cluster sky.yaml -y -d` in `out` (its output in sky_launch.log) with
/// `env` passed to the task (`--env K=V`); records the cluster and job in sky_job.json.
pub fn launch(out: &Path, cluster: &str, env: &[(String, String)]) -> Result<Option<String>, String> {
    let log_path = out.join(LAUNCH_LOG);
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut args = vec!["launch", "-c", cluster, "sky.yaml", "-y", "-d"];
    let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for p in &pairs {
        args.extend(["--env", p.as_str()]);
    }
    let status = sky(&args, out)
        .stdout(log)
        .stderr(err)
        .status()
        .map_err(|e| not_found(e, "sky launch"))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "SkyPilot could not launch cluster {cluster} ({status}): {}",
            failure(&text, 15)
        ));
    }
    let id = job_id_in(&text);
    let p = out.join(SKY_FILE);
    std::fs::write(&p, serde_json::json!({ "cluster": cluster, "job_id": id }).to_string())
        .map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(id)
}

/// The cluster and job sky_job.json recorded.
pub fn attach(out: &Path) -> Result<(String, Option<String>), String> {
    let p = out.join(SKY_FILE);
    let text = std::fs::read_to_string(&p)
        .map_err(|e| format!("{}: {e} (was the run launched with SkyPilot from here?)", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let cluster = v["cluster"]
        .as_str()
        .ok_or_else(|| format!("{}: no cluster", p.display()))?;
    Ok((cluster.to_string(), v["job_id"].as_str().map(str::to_string)))
}

/// Brings the head node's checkpoints into `out` (the cluster's name is its ssh host).
pub fn pull_checkpoints(cluster: &str, out: &Path, ssh_options: Vec<String>) -> Result<(), String> {
    let ssh = Ssh::new(SshHost::parse(cluster)?, ssh_options);
    Ok(ssh.pull_dirs(REMOTE_WORKDIR, "checkpoint-", out)?)
}

/// `sky logs --follow` writing into sky_job.log, read as it grows.
struct LogStream {
    child: Child,
    offset: u64,
    partial: String,
}

impl LogStream {
    fn start(out: &Path, cluster: &str, job: Option<&str>) -> Result<Self, String> {
        let path = out.join(JOB_LOG);
        let log = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let err = log.try_clone().map_err(|e| format!("{}: {e}", path.display()))?;
        let mut args = vec!["logs", cluster];
        args.extend(job);
        // The whole log: SkyPilot shows its last 1000 lines unless told, which would lose the
        // early steps on a re-attach.
        args.extend(["--follow", "--tail", "0"]);
        let child = sky(&args, out)
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| not_found(e, "sky logs"))?;
        Ok(Self {
            child,
            offset: 0,
            partial: String::new(),
        })
    }

    /// The step records of the lines completed since the last call.
    fn poll(&mut self, out: &Path) -> Vec<StepRecord> {
        let Ok(mut f) = std::fs::File::open(out.join(JOB_LOG)) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut records = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            if let Some(j) = line.find(STEP_PREFIX) {
                if let Ok(r) = serde_json::from_str::<StepRecord>(line[j + STEP_PREFIX.len()..].trim()) {
                    records.push(r);
                }
            }
        }
        records
    }

    fn end(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Follows the job on `cluster` to its end: its steps (also written to `out`'s
/// trainer_log.jsonl), `cancel` as `sky cancel`, the checkpoints brought back at the end (and
/// at Stop); a job that ends before its last step is an error with its last log lines.
pub fn watch(
    cluster: &str,
    job: Option<&str>,
    out: &Path,
    ssh_options: Vec<String>,
    cancel: &CancelToken,
    detach: &CancelToken,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<WatchEnd, String> {
    let mut stream = LogStream::start(out, cluster, job)?;
    let mut all: Vec<StepRecord> = Vec::new();
    let mut take = |stream: &mut LogStream, all: &mut Vec<StepRecord>| -> Result<(), String> {
        let new = stream.poll(out);
        if new.is_empty() {
            return Ok(());
        }
        for r in &new {
            on_step(r);
        }
        all.extend(new);
        write_log(out, all)
    };
    let step = |all: &[StepRecord]| all.last().map_or((0, 0), |r| (r.step, r.total_steps));
    loop {
        take(&mut stream, &mut all)?;
        if cancel.is_cancelled() {
            let mut args = vec!["cancel", "-y", cluster];
            args.extend(job);
            if job.is_none() {
                args.push("--all");
            }
            let st = sky(&args, out).output().map_err(|e| not_found(e, "sky cancel"));
            stream.end();
            let st = st?;
            if !st.status.success() {
                return Err(format!(
                    "sky cancel on {cluster} failed: {}",
                    String::from_utf8_lossy(&st.stderr).trim()
                ));
            }
            pull_checkpoints(cluster, out, ssh_options)?;
            return Ok(WatchEnd::Stopped { step: step(&all).0 });
        }
        if detach.is_cancelled() {
            stream.end();
            return Ok(WatchEnd::Detached { step: step(&all).0 });
        }
        if let Ok(Some(_)) = stream.child.try_wait() {
            take(&mut stream, &mut all)?;
            let (n, total) = step(&all);
            if total > 0 && n >= total {
                pull_checkpoints(cluster, out, ssh_options)?;
                return Ok(WatchEnd::Done {
                    steps: n,
                    checkpoint: crate::train::runs::checkpoints(out).last().map(|c| c.1.clone()),
                });
            }
            let text = std::fs::read(out.join(JOB_LOG)).unwrap_or_default();
            let start = text.len().saturating_sub(256 * 1024);
            return Err(format!(
                "the SkyPilot job on {cluster} ended after step {n} of {total} (`sky logs {cluster}` says more; the \
                 cluster stays up until `sky down {cluster}`): {}",
                failure(&String::from_utf8_lossy(&text[start..]), 15)
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_as_skypilot_has_them() {
        assert_eq!(cluster_name(Path::new("/runs/My_Run 2")), "my-run-2");
        assert_eq!(cluster_name(Path::new("/runs/2024")), "s1-2024");
        assert_eq!(
            job_id_in("⚙︎ Launching on AWS\n✓ Job submitted, ID: 12\nother"),
            Some("12".into())
        );
        assert_eq!(job_id_in("Job ID: 3"), Some("3".into()));
        assert_eq!(job_id_in("Cluster ID: 3"), None);
    }
}
