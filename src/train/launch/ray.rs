//! Ray's Job Submission REST API (the dashboard's /api/jobs/): submit ray_job.py for a run
//! folder, read the job's status and log, stop it. The job's step lines (S1_STUDIO_STEP …) are
//! read out of its log into the run's trainer_log.jsonl, so a job on any Ray cluster shows in
//! the same charts; the submission id is kept in ray_job.json to re-attach later.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::export::shell_quote;
use super::follow::{failure, steps_in_log, write_log};
use super::local::WatchEnd;
use crate::cancel::CancelToken;
use crate::train::StepRecord;

/// The submitted job's id and address, for re-attaching.
pub const RAY_FILE: &str = "ray_job.json";

/// The Jobs API request that runs ray_job.py from `out` (on a cluster that sees this folder:
/// a local head or a shared filesystem) with `env` added to the job's environment. The job
/// writes its own step file (ray_trainer_log.jsonl) so that the watcher's trainer_log.jsonl,
/// rebuilt from the job's log, is never written by two hands.
pub fn submission(out: &Path, python: &str, env: &[(String, String)]) -> Value {
    let dir = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let mut vars = serde_json::Map::new();
    vars.insert("LOG_FILE".into(), json!("ray_trainer_log.jsonl"));
    for (k, v) in env {
        vars.insert(k.clone(), json!(v));
    }
    json!({
        "entrypoint": format!("cd {} && {} ray_job.py", shell_quote(&dir.display().to_string()), shell_quote(python)),
        "runtime_env": { "env_vars": vars },
        "metadata": { "s1_studio_run": dir.display().to_string() },
    })
}

/// The Jobs API request that runs ray_job.py from the uploaded package `uri` (ray_package.rs),
/// for a cluster that does not see this folder: the job and each of its tasks run in Ray's
/// unpacked copy (`S1_RAY_WORKING_DIR` tells ray_job.py so).
pub fn submission_uploaded(out: &Path, uri: &str, python: &str, env: &[(String, String)]) -> Value {
    let dir = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let mut vars = serde_json::Map::new();
    vars.insert("LOG_FILE".into(), json!("ray_trainer_log.jsonl"));
    vars.insert("S1_RAY_WORKING_DIR".into(), json!("1"));
    for (k, v) in env {
        vars.insert(k.clone(), json!(v));
    }
    json!({
        "entrypoint": format!("{} ray_job.py", shell_quote(python)),
        "runtime_env": { "working_dir": uri, "env_vars": vars },
        "metadata": { "s1_studio_run": dir.display().to_string() },
    })
}

/// A Ray cluster's Jobs API.
#[derive(Debug, Clone)]
pub struct RayClient {
    base: String,
    agent: ureq::Agent,
}

/// A job's state as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    /// PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED.
    pub status: String,
    pub message: String,
}

impl JobInfo {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "STOPPED" | "SUCCEEDED" | "FAILED")
    }
}

impl RayClient {
    /// `address`: the dashboard, e.g. http://127.0.0.1:8265 (http:// is added when missing).
    pub fn new(address: &str) -> Self {
        let a = address.trim().trim_end_matches('/');
        let base = if a.contains("://") {
            a.to_string()
        } else {
            format!("http://{a}")
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Self { base, agent }
    }

    pub fn address(&self) -> &str {
        &self.base
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, String), String> {
        let url = format!("{}{path}", self.base);
        let sent = match (method, body) {
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.to_string().as_str()),
            ("POST", None) => self.agent.post(&url).send_empty(),
            _ => self.agent.get(&url).call(),
        };
        let mut resp = sent.map_err(|e| {
            format!(
                "cannot reach the Ray dashboard at {} ({e}); is a cluster running there (`ray start --head` \
                 serves the Jobs API on port 8265)? Check --ray-address",
                self.base
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok((status, text))
    }

    /// Submits a job; returns its submission id. A refusal names the HTTP status and Ray's reason.
    pub fn submit(&self, request: &Value) -> Result<String, String> {
        let (status, text) = self.call("POST", "/api/jobs/", Some(request))?;
        if status != 200 {
            // Ray answers a bad request with a Python traceback: its last line is the reason.
            let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            return Err(format!(
                "the Ray cluster at {} rejected the job (HTTP {status}): {}",
                self.base,
                reason.chars().take(500).collect::<String>()
            ));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}/api/jobs/: reply is not JSON ({e})", self.base))?;
        v["submission_id"]
            .as_str()
            .or_else(|| v["job_id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("{}/api/jobs/: reply without submission_id: {text}", self.base))
    }

    pub fn status(&self, id: &str) -> Result<JobInfo, String> {
        let (status, text) = self.call("GET", &format!("/api/jobs/{id}"), None)?;
        if status != 200 {
            return Err(format!(
                "Ray job {id} at {}: HTTP {status}: {}",
                self.base,
                text.chars().take(300).collect::<String>()
            ));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("Ray job {id}: reply is not JSON ({e})"))?;
        Ok(JobInfo {
            status: v["status"].as_str().unwrap_or("UNKNOWN").to_string(),
            message: v["message"].as_str().unwrap_or("").to_string(),
        })
    }

    pub fn logs(&self, id: &str) -> Result<String, String> {
        let (status, text) = self.call("GET", &format!("/api/jobs/{id}/logs"), None)?;
        if status != 200 {
            return Err(format!("Ray job {id} logs: HTTP {status}"));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("Ray job {id} logs: reply is not JSON ({e})"))?;
        Ok(v["logs"].as_str().unwrap_or("").to_string())
    }

    /// Uploads a working-directory package unless the cluster has it already (the name is its
    /// content's hash, so an unchanged folder is sent once).
    pub fn upload(&self, p: &super::ray_package::Package) -> Result<(), String> {
        let path = format!("/api/packages/gcs/{}", p.name);
        if self.call("GET", &path, None)?.0 == 200 {
            return Ok(());
        }
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .send(&p.bytes[..])
            .map_err(|e| format!("uploading the run folder to the Ray cluster at {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            return Err(format!(
                "the Ray cluster at {} refused the run folder's package ({:.1} MiB, HTTP {status}): {}",
                self.base,
                p.bytes.len() as f64 / 1048576.0,
                reason.chars().take(300).collect::<String>()
            ));
        }
        Ok(())
    }

    pub fn stop(&self, id: &str) -> Result<(), String> {
        let (status, text) = self.call("POST", &format!("/api/jobs/{id}/stop"), None)?;
        if status != 200 {
            return Err(format!("stopping Ray job {id}: HTTP {status}: {text}"));
        }
        Ok(())
    }
}

/// Submits the run in `out` and records the job in ray_job.json; returns the submission id.
/// `upload`: the cluster does not see this folder, so it goes as a working-directory package
/// (ray_package.rs); the checkpoints are then written on the cluster, in its copy or under
/// `OUTPUT_DIR` when `env` sets it.
pub fn launch(
    client: &RayClient,
    out: &Path,
    python: &str,
    env: &[(String, String)],
    upload: bool,
) -> Result<String, String> {
    let request = if upload {
        let p = super::ray_package::package(out)?;
        client.upload(&p)?;
        submission_uploaded(out, &p.uri(), python, env)
    } else {
        submission(out, python, env)
    };
    let id = client.submit(&request)?;
    let meta = json!({ "submission_id": id, "address": client.address(), "uploaded": upload });
    let p = out.join(RAY_FILE);
    std::fs::write(&p, meta.to_string()).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(id)
}

/// The client and job id ray_job.json recorded, to re-attach; `address` overrides the recorded one.
pub fn attach(out: &Path, address: Option<&str>) -> Result<(RayClient, String), String> {
    let p = out.join(RAY_FILE);
    let text = std::fs::read_to_string(&p)
        .map_err(|e| format!("{}: {e} (was the run submitted to Ray from here?)", p.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let id = v["submission_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no submission_id", p.display()))?;
    let addr = address.or(v["address"].as_str()).unwrap_or("http://127.0.0.1:8265");
    Ok((RayClient::new(addr), id.to_string()))
}

/// Follows job `id` to its end, its steps written to `out`'s trainer_log.jsonl and sent to
/// `on_step`; `cancel` stops the job, `detach` lets it run on. A lost connection is retried for
/// `patience` before it is an error (re-attach later with the same run folder).
pub fn watch(
    client: &RayClient,
    id: &str,
    out: &Path,
    cancel: &CancelToken,
    detach: &CancelToken,
    patience: Duration,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<WatchEnd, String> {
    let mut seen = 0;
    let mut lost_since: Option<std::time::Instant> = None;
    loop {
        let polled = client
            .status(id)
            .and_then(|info| client.logs(id).map(|log| (info, log)));
        let (info, log) = match polled {
            Ok(x) => {
                lost_since = None;
                x
            }
            Err(e) => {
                let since = *lost_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > patience {
                    return Err(format!(
                        "lost the connection to Ray job {id} ({e}); the job may run on: re-attach with \
                         `s1-studio train --attach --out {}`",
                        out.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        let steps = steps_in_log(&log);
        if steps.len() > seen {
            write_log(out, &steps)?;
            steps[seen..].iter().for_each(&mut *on_step);
            seen = steps.len();
        }
        let step = steps.last().map_or(0, |r| r.step);
        if cancel.is_cancelled() {
            client.stop(id)?;
            return Ok(WatchEnd::Stopped { step });
        }
        if detach.is_cancelled() {
            return Ok(WatchEnd::Detached { step });
        }
        if info.is_terminal() {
            return match info.status.as_str() {
                "SUCCEEDED" => Ok(WatchEnd::Done {
                    steps: step,
                    checkpoint: crate::train::runs::checkpoints(out).last().map(|c| c.1.clone()),
                }),
                "STOPPED" => Ok(WatchEnd::Stopped { step }),
                _ => Err(format!(
                    "Ray job {id} failed after step {step} ({}): {}",
                    info.message.lines().next().unwrap_or(""),
                    failure(&log, 15)
                )),
            };
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
