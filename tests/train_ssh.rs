//! Slurm over SSH, for real: an OpenSSH server started by the test on a free port of 127.0.0.1
//! (its own host key, config and authorized key; the client's options in an ssh config file
//! passed with `-F`, as a user's `S1_SSH_OPTIONS` would) is the login node of the one-node
//! Slurm cluster of tests/common/slurm.rs. The run folder is copied to a directory there that
//! is not the local folder, sbatch runs there, the studio follows the job through ssh, and the
//! trainer log and the final checkpoint come back into the local folder. Errors: a closed port,
//! a key the server refuses, a job that dies.
//!
//! Needs root, `apt-get install openssh-server rsync slurm-wlm munge`, and a Python with torch,
//! transformers 4.46.1 and trl 0.12.0 (S1_PYTHON).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::sshd::Sshd;
use s1_studio::jobs::CancelToken;
use s1_studio::train::launch::local::WatchEnd;
use s1_studio::train::launch::ssh::{self, Copier, Ssh, SshHost};
use s1_studio::train::launch::{self, slurm, Target};
use s1_studio::train::TrainSettings;

/// One test at a time: each picks free ports (sshd's, torchrun's rendezvous) that another
/// test's could take between the pick and the bind.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn settings(d: &Path, out: &str) -> TrainSettings {
    let mut s = TrainSettings::s1(d.join("model"), d.join("rows.jsonl"), d.join(out));
    (s.epochs, s.lr, s.batch, s.grad_accum, s.block_size) = (2, 2e-3, 1, 2, 128);
    s
}

#[test]
fn a_slurm_login_node_over_ssh_runs_the_job_and_the_run_comes_back() {
    let _one = one_at_a_time();
    let py = common::slurm::trl_python();
    let cluster = common::slurm::Cluster::start();
    // The login node's sessions find the cluster's config, as a real one's profile does.
    let sshd = Sshd::start(&[("SLURM_CONF", cluster.conf().display().to_string())]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = common::cpu_job_inputs(d, 6, Target::Slurm);
    // A rendezvous port picked just before each submit.
    let env = || common::torchrun_cpu_env(&py);
    let there = d.join("login-node/runs/first");

    let s = settings(d, "here");
    let sum = launch::export(&s, &opts).unwrap();
    let site = slurm::Site::new("s1-login", &there.display().to_string(), sshd.options(), &s.out).unwrap();
    assert_eq!(site.describe(&s.out), format!("s1-login:{}", there.display()));
    site.upload(&s.out).unwrap();
    assert!(there.join("job.sbatch").exists() && there.join("data/train.parquet").exists());
    // Not twice into one folder there: its log would be taken for the new run's.
    std::fs::write(there.join("trainer_log.jsonl"), "").unwrap();
    let err = site.upload(&s.out).unwrap_err();
    assert!(
        err.contains(&format!("s1-login:{} already holds a run", there.display())),
        "{err}"
    );
    std::fs::remove_file(there.join("trainer_log.jsonl")).unwrap();
    let id = slurm::submit(&site, &s.out, &env()).unwrap();
    // The login node goes away after the first step: the watch ends saying how to re-attach,
    // and the job runs on.
    let mut login = sshd;
    let mut seen = Vec::new();
    let err = slurm::watch(&site, &id, &s.out, &CancelToken::new(), &CancelToken::new(), &mut |r| {
        seen.push(r.step);
        login.stop();
    })
    .unwrap_err();
    assert!(
        err.contains("cannot reach s1-login: connection refused")
            && err.contains(&format!(
                "follow it again with `s1-studio train --attach --out {}`",
                s.out.display()
            )),
        "{err}"
    );
    assert_eq!(seen.first(), Some(&1), "{seen:?}");
    drop(login);
    // Back (on another port, the user's ssh config says where), followed as a later session
    // would: from what slurm_job.json recorded.
    let sshd = Sshd::start(&[("SLURM_CONF", cluster.conf().display().to_string())]);
    let (attached, again) = slurm::attach(&s.out, sshd.options()).unwrap();
    assert_eq!(again, id);
    assert_eq!(attached.describe(&s.out), site.describe(&s.out));
    let mut steps = Vec::new();
    let end = slurm::watch(
        &attached,
        &id,
        &s.out,
        &CancelToken::new(),
        &CancelToken::new(),
        &mut |r| steps.push(r.step),
    );
    let Ok(WatchEnd::Done { steps: n, checkpoint }) = end else {
        panic!(
            "{end:?}\n{}",
            std::fs::read_to_string(there.join(format!("slurm-{id}.out"))).unwrap_or_default()
        )
    };
    assert_eq!(n, sum.total_steps);
    assert_eq!(steps, (1..=sum.total_steps).collect::<Vec<_>>());
    // The local folder holds the run: every step's log line and the final checkpoint, copied
    // from the login node's folder (the job wrote only there).
    let log = std::fs::read_to_string(s.out.join("trainer_log.jsonl")).unwrap();
    assert_eq!(log, std::fs::read_to_string(there.join("trainer_log.jsonl")).unwrap());
    assert_eq!(log.lines().count(), sum.total_steps);
    let last = s.out.join(format!("checkpoint-{n}"));
    assert_eq!(checkpoint.as_deref(), Some(last.as_path()));
    assert_eq!(
        s1_studio::train::runs::checkpoints(&s.out).last(),
        Some(&(n, last.clone()))
    );
    assert_eq!(
        std::fs::read(last.join("model.safetensors")).unwrap(),
        std::fs::read(there.join(format!("checkpoint-{n}/model.safetensors"))).unwrap()
    );

    // A job that dies: the reason from its slurm-ID.out there, which comes back beside the run.
    let s = settings(d, "dies");
    launch::export(&s, &opts).unwrap();
    std::fs::remove_file(s.out.join("data/train.parquet")).unwrap();
    let site = slurm::Site::new(
        "s1-login",
        &d.join("login-node/runs/dies").display().to_string(),
        sshd.options(),
        &s.out,
    )
    .unwrap();
    site.upload(&s.out).unwrap();
    let id = slurm::submit(&site, &s.out, &env()).unwrap();
    let err = slurm::watch(
        &site,
        &id,
        &s.out,
        &CancelToken::new(),
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.contains(&format!("Slurm job {id} ended after step 0")) && err.contains("train.parquet"),
        "{err}"
    );
    assert!(s.out.join(format!("slurm-{id}.out")).exists());

    // Stop: scancel there after the first step; Slurm lets the job go.
    let s = settings(d, "stopped");
    launch::export(&s, &opts).unwrap();
    let _ = std::fs::remove_dir_all("/root/s1-studio-runs/stopped");
    let site = slurm::Site::new("s1-login", "", sshd.options(), &s.out).unwrap();
    site.upload(&s.out).unwrap();
    assert!(
        Path::new("/root/s1-studio-runs/stopped/job.sbatch").exists(),
        "the default folder is ~/s1-studio-runs/<run name>"
    );
    let id = slurm::submit(&site, &s.out, &env()).unwrap();
    let stop = CancelToken::new();
    let end = slurm::watch(&site, &id, &s.out, &stop, &CancelToken::new(), &mut |_| stop.cancel()).unwrap();
    assert!(matches!(end, WatchEnd::Stopped { step } if step >= 1), "{end:?}");
    let gone = (0..120).any(|_| {
        let out = Command::new("squeue")
            .args(["-h", "-j", &id, "-o", "%T"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let done = text.trim().is_empty() || text.contains("CANCELLED");
        if !done {
            std::thread::sleep(Duration::from_millis(500));
        }
        done
    });
    assert!(gone, "Slurm still lists job {id} a minute after scancel");
    let _ = std::fs::remove_dir_all("/root/s1-studio-runs/stopped");
}

/// A small tree with a checkpoint, for the copies.
fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("checkpoint-2/sub")).unwrap();
    std::fs::write(root.join("checkpoint-2/trainer_state.json"), "{}").unwrap();
    std::fs::write(root.join("checkpoint-2/sub/w.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(root.join("name with space.txt"), "x").unwrap();
}

#[test]
fn copies_go_both_ways_with_rsync_and_with_tar_and_failures_name_the_host() {
    let _one = one_at_a_time();
    let sshd = Sshd::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host = SshHost::parse("s1-login").unwrap();
    for copier in [Copier::Rsync, Copier::Tar] {
        let ssh = Ssh::new(host.clone(), sshd.options()).with_copier(copier);
        let local = d.join(format!("{copier:?}-here"));
        tree(&local);
        let there = d.join(format!("{copier:?}-there/a run"));
        ssh.push_dir(&local, &there.display().to_string()).unwrap();
        assert_eq!(
            std::fs::read(there.join("checkpoint-2/sub/w.bin")).unwrap().len(),
            100_000,
            "{copier:?}"
        );
        assert!(there.join("name with space.txt").exists(), "{copier:?}");
        let back = d.join(format!("{copier:?}-back"));
        std::fs::write(there.join("other.txt"), "not a checkpoint").unwrap();
        ssh.pull_dirs(&there.display().to_string(), "checkpoint-", &back)
            .unwrap();
        assert_eq!(
            s1_studio::train::runs::checkpoints(&back),
            vec![(2, back.join("checkpoint-2"))],
            "{copier:?}"
        );
        assert!(
            !back.join("other.txt").exists(),
            "only the checkpoints come back ({copier:?})"
        );

        // The log comes back in pieces as it grows, and whole again after it was truncated.
        let (remote, mirror) = (there.join("log.jsonl"), back.join("log.jsonl"));
        let r = remote.display().to_string();
        assert_eq!(ssh.pull_tail(&r, &mirror).unwrap(), 0, "no remote file yet");
        std::fs::write(&remote, "one\ntw").unwrap();
        assert_eq!(ssh.pull_tail(&r, &mirror).unwrap(), 6);
        std::fs::write(&remote, "one\ntwo\n").unwrap();
        assert_eq!(ssh.pull_tail(&r, &mirror).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(&mirror).unwrap(), "one\ntwo\n");
        std::fs::write(&remote, "1\n").unwrap();
        ssh.pull_tail(&r, &mirror).unwrap();
        assert_eq!(std::fs::read_to_string(&mirror).unwrap(), "1\n");
    }

    // Nothing listens: the message names the host and port.
    let closed = common::free_port();
    let site = slurm::Site::new(&format!("127.0.0.1:{closed}"), "", sshd.options(), d).unwrap();
    let err = site.upload(d).unwrap_err();
    assert!(
        err.contains(&format!("cannot reach 127.0.0.1:{closed}: connection refused")),
        "{err}"
    );
    // A key the server does not know: refused, never a prompt.
    let stranger = ssh::parse_options(&format!("-F {}", sshd.config("ssh_config_stranger").display())).unwrap();
    let site = slurm::Site::new("s1-login", "", stranger, d).unwrap();
    let err = site.upload(d).unwrap_err();
    assert!(
        err.contains("s1-login refused the login") && err.contains("publickey"),
        "{err}"
    );
    // sbatch missing on the login node (this sshd's sessions have no SLURM_CONF, but sbatch is
    // there; a command that is not there is said so).
    let ssh = Ssh::new(host, sshd.options());
    let err = ssh.exec("no-such-command-s1", "submitting").unwrap_err();
    assert!(
        !err.connection && err.message.starts_with("submitting on s1-login: command not found"),
        "{err}"
    );
}

#[test]
fn the_cli_says_which_host_it_cannot_reach() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    common::sum_rows(&d.join("rows.jsonl"), 4);
    let closed = common::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .args([
            "train",
            "--target",
            "slurm",
            "--launch",
            "--gpus-per-node",
            "0",
            "--nodes",
            "1",
        ])
        .arg("--model")
        .arg(d.join("model"))
        .arg("--data")
        .arg(d.join("rows.jsonl"))
        .arg("--out")
        .arg(d.join("run"))
        .args(["--ssh", &format!("me@127.0.0.1:{closed}")])
        // The user's way to pass ssh options; here only a known-hosts file of its own.
        .env(
            ssh::OPTIONS_ENV,
            format!("-o UserKnownHostsFile={}", d.join("known_hosts").display()),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot reach me@127.0.0.1:{closed}: connection refused")),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .args(["train", "--target", "slurm", "--launch", "--ssh", "me@h:0", "--out"])
        .arg(d.join("run2"))
        .args(["--model", "m", "--data", "r.jsonl"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ssh host `me@h:0`: port `0`"), "{err}");
}
