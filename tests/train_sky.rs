//! The SkyPilot driver (train::launch::sky) against a stand-in for the `sky` command-line tool:
//! no cloud is reachable here, so a small script takes `sky launch -c C sky.yaml -y -d --env
//! K=V`, `sky logs C JOB --follow --tail 0` and `sky cancel -y C JOB` as SkyPilot does, with this
//! machine as the cluster (the folder copied to ~/sky_workdir, launch.sh run there with the
//! --env values: 2 torchrun processes on the CPU). The job's S1_STUDIO_STEP lines become the
//! local trainer log, and the checkpoints come back over real ssh to the cluster's name (the
//! test's sshd, host `s1-login`, as SkyPilot's ssh config entry would be). What the stand-in
//! does not do: provision, run sky.yaml's setup and run sections, or several nodes.
//!
//! Needs root, `apt-get install openssh-server rsync`, and a Python with torch,
//! transformers 4.46.1 and trl 0.12.0 (S1_PYTHON).

mod common;

use std::path::Path;

use s1_studio::jobs::CancelToken;
use s1_studio::train::launch::local::WatchEnd;
use s1_studio::train::launch::{self, sky, Target};
use s1_studio::train::TrainSettings;

const SKY: &str = r#"#!/usr/bin/env bash
# A stand-in for SkyPilot's `sky` with this machine as the cluster (see tests/train_sky.rs).
set -euo pipefail
W="$(getent passwd "$(id -un)" | cut -d: -f6)/sky_workdir"
echo "$*" >> "$SKY_CALLS"
cmd="$1"; shift
case "$cmd" in
launch)
  envs=()
  while [ $# -gt 0 ]; do case "$1" in --env) envs+=("$2"); shift 2;; *) shift;; esac; done
  rm -rf "$W"; mkdir -p "$W"; cp -a . "$W"/
  cd "$W"
  env "${envs[@]}" setsid bash launch.sh > job.log 2>&1 < /dev/null &
  echo $! > job.pid
  echo "Job submitted, ID: 1"
  ;;
logs)
  tail -n +1 --pid="$(cat "$W/job.pid")" -f "$W/job.log"
  ;;
cancel)
  kill -TERM -- "-$(cat "$W/job.pid")" || true
  ;;
esac
"#;

#[test]
fn a_skypilot_job_is_launched_followed_and_its_checkpoints_come_back() {
    let py = common::slurm::trl_python();
    let sshd = common::sshd::Sshd::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("sky"), SKY).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("sky"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", bin.display()));
    std::env::set_var("SKY_CALLS", d.join("calls.txt"));

    let opts = common::cpu_job_inputs(d, 6, Target::Skypilot);
    let mut s = TrainSettings::s1(d.join("model"), d.join("rows.jsonl"), d.join("sky run"));
    (s.epochs, s.lr, s.batch, s.grad_accum, s.block_size) = (2, 2e-3, 1, 2, 128);
    let sum = launch::export(&s, &opts).unwrap();
    let env = common::torchrun_cpu_env(&py);
    assert_eq!(sky::cluster_name(&s.out), "sky-run");
    let cluster = "s1-login";
    let job = sky::launch(&s.out, cluster, &env).unwrap();
    assert_eq!(job.as_deref(), Some("1"));
    assert_eq!(sky::attach(&s.out).unwrap(), (cluster.to_string(), job.clone()));
    let mut steps = Vec::new();
    let end = sky::watch(
        cluster,
        job.as_deref(),
        &s.out,
        sshd.options(),
        &CancelToken::new(),
        &CancelToken::new(),
        &mut |r| steps.push(r.step),
    );
    let Ok(WatchEnd::Done { steps: n, checkpoint }) = end else {
        panic!(
            "{end:?}\n{}",
            std::fs::read_to_string(s.out.join(sky::JOB_LOG)).unwrap_or_default()
        )
    };
    assert_eq!(n, sum.total_steps);
    assert_eq!(steps, (1..=n).collect::<Vec<_>>());
    let log = std::fs::read_to_string(s.out.join("trainer_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), n);
    let last = s.out.join(format!("checkpoint-{n}"));
    assert_eq!(checkpoint.as_deref(), Some(last.as_path()));
    assert!(last.join("model.safetensors").exists());
    let calls = std::fs::read_to_string(d.join("calls.txt")).unwrap();
    assert!(
        calls.contains("launch -c s1-login sky.yaml -y -d --env NPROC=2 --env DEVICE=cpu")
            && calls.contains("logs s1-login 1 --follow --tail 0"),
        "{calls}"
    );
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let _ = std::fs::remove_dir_all(Path::new(&home).join("sky_workdir"));

    // Without sky on PATH: how to get it.
    std::env::set_var("PATH", "/usr/bin:/bin");
    let s2 = d.join("other");
    std::fs::create_dir_all(&s2).unwrap();
    let err = sky::launch(&s2, "c", &[]).unwrap_err();
    assert!(err.contains("pip install skypilot"), "{err}");
    std::env::set_var("PATH", path);
}
