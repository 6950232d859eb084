//! The exported run folder trained by the real engines on this CPU: TRL + torchrun with two
//! gloo processes gives the loss curve of s1-studio's own trainer on the same data, seed and
//! settings; the studio launches it, follows it into the run history, stops it, and shows a
//! dying job's last lines; a local Ray cluster takes the same folder through the Jobs API.
//!
//! How the two runs are made equal: the export writes the studio's step order (order.json: the
//! seeded shuffle of each epoch, the short last batch completed with the epoch's first examples)
//! and train.py samples in that order, so with a global batch of 4 over 2 processes (one
//! example per micro-batch, 2 accumulated) every step sees the same 4 examples as the studio's
//! step; train.py weighs each example's token mean as the studio does. Same weights (the tiny
//! model folder is copied), f32 on both sides, no dropout.
//!
//! Needs a Python with torch, transformers 4.46.1, trl 0.12.0, accelerate and datasets
//! (S1_PYTHON), and for the Ray test `ray[default]` in it.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use s1_studio::jobs::CancelToken;
use s1_studio::train::launch::local::{LocalJob, WatchEnd};
use s1_studio::train::launch::{self, ray, ExportOptions, Target};
use s1_studio::train::{run, StepRecord, TrainOutcome, TrainSettings};

/// Loss of a step: the two sides sum the same f32 numbers in another order.
const LOSS_TOLERANCE: f64 = 1e-4;
/// Gradient norm, relative: the drift of f32 weights after a few AdamW steps.
const GRAD_NORM_TOLERANCE: f64 = 1e-3;

fn python() -> String {
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args([
            "-c",
            "import torch, accelerate, datasets, transformers, trl; assert transformers.__version__ == '4.46.1', transformers.__version__; assert trl.__version__.startswith('0.12'), trl.__version__",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs a Python with torch, accelerate, datasets, transformers==4.46.1 and trl==0.12.0 \
         (S1_PYTHON={py}): `pip install torch transformers==4.46.1 trl==0.12.0 accelerate datasets`"
    );
    py
}

/// 10 rows, global batch 4 (3 steps an epoch, the third completed with 2 of the epoch's first),
/// 2 epochs.
fn setup(d: &Path, out: &str) -> TrainSettings {
    if !d.join("model").exists() {
        common::tiny_qwen(&d.join("model"), 256);
        common::sum_rows(&d.join("rows.jsonl"), 10);
    }
    let mut s = TrainSettings::s1(d.join("model"), d.join("rows.jsonl"), d.join(out));
    s.epochs = 2;
    s.lr = 2e-3;
    s.batch = 2;
    s.grad_accum = 2;
    s.block_size = 128;
    s
}

fn export(s: &TrainSettings, target: Target) -> launch::ExportSummary {
    let opts = ExportOptions {
        target,
        ..ExportOptions::default()
    };
    launch::export(s, &opts).unwrap()
}

fn read_log(out: &Path) -> Vec<StepRecord> {
    std::fs::read_to_string(out.join("trainer_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn torchrun_on_two_processes_matches_the_studio_trainer() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The studio's own run.
    let local = setup(d, "studio");
    let outcome = run(&local, &CancelToken::new(), &mut |_| {});
    assert!(matches!(outcome, TrainOutcome::Done { steps: 6, .. }), "{outcome:?}");
    let studio = read_log(&local.out);

    // The same settings exported and trained by torchrun + TRL, launched and followed by the studio.
    let s = setup(d, "torchrun");
    let sum = export(&s, Target::Torchrun);
    assert_eq!((sum.examples, sum.total_steps, sum.global_batch), (10, 6, 4));
    // The launch files of the other targets parse: bash for launch.sh and job.sbatch, YAML with
    // SkyPilot's keys for sky.yaml, JSON for the Jobs API request.
    for f in ["launch.sh", "job.sbatch"] {
        let ok = Command::new("bash").arg("-n").arg(s.out.join(f)).status().unwrap();
        assert!(ok.success(), "{f} does not parse");
    }
    let sky = format!(
        "import yaml; d = yaml.safe_load(open({:?})); assert d['resources']['accelerators'] == 'H100:8' \
         and d['num_nodes'] == 2 and d['workdir'] == '.' and 'launch.sh' in d['run'], d",
        s.out.join("sky.yaml")
    );
    assert!(
        Command::new(&py).args(["-c", &sky]).status().unwrap().success(),
        "sky.yaml"
    );
    let submit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.out.join("ray_submit.json")).unwrap()).unwrap();
    assert!(
        submit["entrypoint"].as_str().unwrap().ends_with("ray_job.py"),
        "{submit}"
    );
    let mut job = LocalJob::start(&s.out, &common::torchrun_cpu_env(&py)).unwrap();
    let mut followed = Vec::new();
    let end = job.watch(&CancelToken::new(), &CancelToken::new(), &mut |r| {
        followed.push(r.clone())
    });
    let Ok(WatchEnd::Done { steps, checkpoint }) = end else {
        panic!("{end:?}")
    };
    assert_eq!(steps, 6);
    let exported = read_log(&s.out);
    assert_eq!(followed, exported, "the watcher saw every logged step once");
    assert_eq!(exported.len(), studio.len());
    let launch_log = std::fs::read_to_string(s.out.join("launch.log")).unwrap();
    assert!(
        launch_log.contains("2 process(es) on cpu") && launch_log.contains("gradient accumulation 2"),
        "{launch_log}"
    );
    for (a, b) in studio.iter().zip(&exported) {
        eprintln!(
            "step {}: loss studio {:.6} torchrun {:.6} (diff {:.1e}), grad norm {:.6} {:.6}, lr {:.3e} {:.3e}",
            a.step,
            a.loss,
            b.loss,
            a.loss - b.loss,
            a.grad_norm,
            b.grad_norm,
            a.lr,
            b.lr
        );
        assert_eq!((a.step, a.total_steps), (b.step, b.total_steps));
        assert!(
            (a.loss - b.loss).abs() < LOSS_TOLERANCE,
            "step {}: {} vs {}",
            a.step,
            a.loss,
            b.loss
        );
        assert!(
            (a.grad_norm - b.grad_norm).abs() / a.grad_norm < GRAD_NORM_TOLERANCE,
            "step {}: grad norm {} vs {}",
            a.step,
            a.grad_norm,
            b.grad_norm
        );
        assert!((a.lr - b.lr).abs() < 1e-12, "step {}: lr {} vs {}", a.step, a.lr, b.lr);
        assert!(
            (a.epoch - b.epoch).abs() < 1e-9,
            "step {}: epoch {} vs {}",
            a.step,
            a.epoch,
            b.epoch
        );
    }
    assert!(
        exported[5].loss < exported[0].loss - 0.1,
        "the loss did not fall: {exported:?}"
    );

    // The run history reads it as any run, and its checkpoint is one the studio's engine loads
    // (what "Chat with this checkpoint" opens).
    let record = s1_studio::train::runs::read_run(&s.out).unwrap();
    assert_eq!((record.steps, record.total_steps), (6, 6));
    assert_eq!(record.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(), vec![3, 6]);
    assert_eq!(checkpoint.as_deref(), record.checkpoint());
    let model =
        s1_studio::model::load_model(record.checkpoint().unwrap(), &s1_studio::model::LoadOptions::default()).unwrap();
    assert!(!model.template_is_fallback, "the checkpoint keeps the chat template");
}

#[test]
fn a_dying_job_shows_its_last_lines_and_stop_ends_every_process() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A job that dies: its data file is gone.
    let s = setup(d, "dies");
    export(&s, Target::Torchrun);
    std::fs::remove_file(s.out.join("data/train.parquet")).unwrap();
    let mut job = LocalJob::start(&s.out, &common::torchrun_cpu_env(&py)).unwrap();
    let err = job
        .watch(&CancelToken::new(), &CancelToken::new(), &mut |_| {})
        .unwrap_err();
    assert!(err.contains("exited with code") && err.contains("last lines"), "{err}");
    assert!(err.contains("train.parquet"), "the last lines name what failed: {err}");

    // Stop after the first step: the job and its ranks end, the run keeps its steps so far.
    let s = setup(d, "stopped");
    export(&s, Target::Torchrun);
    let mut job = LocalJob::start(&s.out, &common::torchrun_cpu_env(&py)).unwrap();
    let cancel = CancelToken::new();
    let c = cancel.clone();
    let end = job.watch(&cancel, &CancelToken::new(), &mut |_| c.cancel()).unwrap();
    let WatchEnd::Stopped { step } = end else {
        panic!("{end:?}")
    };
    assert!((1..6).contains(&step), "{step}");
    let pgid = job.pid();
    // SAFETY: signal 0 only asks whether a process of the group is left.
    let left = unsafe { libc::kill(-pgid, 0) } == 0;
    assert!(!left, "processes of the stopped job's group {pgid} are still running");

    // A job still running is found again from its folder; one that ended says so.
    let err = LocalJob::attach(&s.out).unwrap_err();
    assert!(err.contains("no longer running"), "{err}");
}

/// A Ray head started for the test (`ray start --head --block`), ended with its process group.
struct RayHead {
    child: Child,
    address: String,
    _tmp: tempfile::TempDir,
}

impl RayHead {
    fn start(py: &str) -> Self {
        let ok = Command::new(py)
            .args(["-c", "import ray, aiohttp"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "this test needs Ray in S1_PYTHON ({py}): `{py} -m pip install 'ray[default]'`"
        );
        use std::os::unix::process::CommandExt;
        let tmp = tempfile::Builder::new().prefix("ray").tempdir_in("/tmp").unwrap();
        let (port, dash) = (common::free_port(), common::free_port());
        let child = Command::new(py)
            .args([
                "-m",
                "ray.scripts.scripts",
                "start",
                "--head",
                "--block",
                "--disable-usage-stats",
            ])
            .args(["--port", &port.to_string(), "--dashboard-port", &dash.to_string()])
            .args(["--include-dashboard", "true", "--num-cpus", "4"])
            .arg("--temp-dir")
            .arg(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let address = format!("http://127.0.0.1:{dash}");
        // Owned by the guard from here on, so a head that never answers is ended too.
        let head = Self {
            child,
            address,
            _tmp: tmp,
        };
        for _ in 0..240 {
            if ureq::get(format!("{}/api/version", head.address)).call().is_ok() {
                return head;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("the Ray head did not answer on {} within 2 minutes", head.address);
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signals to the head's own process group.
        unsafe { libc::kill(-pid, libc::SIGTERM) };
        std::thread::sleep(Duration::from_secs(3));
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn a_local_ray_cluster_takes_the_job_through_the_jobs_api() {
    // Unreachable: said plainly, without a cluster.
    let nowhere = ray::RayClient::new(&format!("127.0.0.1:{}", common::free_port()));
    let err = nowhere.submit(&serde_json::json!({"entrypoint": "true"})).unwrap_err();
    assert!(
        err.contains("cannot reach the Ray dashboard") && err.contains("ray start --head"),
        "{err}"
    );

    let py = python();
    let head = RayHead::start(&py);
    let client = ray::RayClient::new(&head.address);
    // Rejected: the API's reason comes back.
    let err = client.submit(&serde_json::json!({"entrypoint": 5})).unwrap_err();
    assert!(
        err.contains("rejected the job (HTTP 400)") && err.contains("entrypoint"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = setup(d, "ray");
    export(&s, Target::Ray);
    let env: Vec<(String, String)> = common::torchrun_cpu_env(&py)
        .into_iter()
        .filter(|(k, _)| k != "TORCHRUN")
        .collect();
    // As to a cluster that does not see this folder: uploaded as the job's working directory,
    // the checkpoints written where OUTPUT_DIR says (here, the run folder itself).
    let mut upload_env = env.clone();
    upload_env.push(("OUTPUT_DIR".into(), s.out.display().to_string()));
    let id = ray::launch(&client, &s.out, &py, &upload_env, true).unwrap();
    // Re-attach from the folder, as a later session would.
    let (again, same) = ray::attach(&s.out, None).unwrap();
    assert_eq!((again.address(), same.as_str()), (client.address(), id.as_str()));
    let mut followed = Vec::new();
    let end = ray::watch(
        &again,
        &id,
        &s.out,
        &CancelToken::new(),
        &CancelToken::new(),
        Duration::from_secs(30),
        &mut |r| followed.push(r.step),
    );
    let Ok(WatchEnd::Done { steps: 6, .. }) = end else {
        panic!("{end:?}: {}", client.logs(&id).unwrap_or_default())
    };
    assert_eq!(followed, (1..=6).collect::<Vec<_>>());
    assert_eq!(
        read_log(&s.out).len(),
        6,
        "the job's steps are the run's trainer_log.jsonl"
    );
    let record = s1_studio::train::runs::read_run(&s.out).unwrap();
    assert_eq!(record.checkpoint(), Some(s.out.join("checkpoint-6").as_path()));
    let log = client.logs(&id).unwrap();
    let ran_in = log
        .lines()
        .find_map(|l| l.split_once("ray_job.py: running launch.sh in ").map(|(_, dir)| dir))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        ran_in.contains("_ray_pkg_") && !ran_in.contains(&*s.out.to_string_lossy()),
        "the job ran in Ray's copy of the package: {ran_in}"
    );

    // A job that dies on the cluster: FAILED, with its last lines.
    let s = setup(d, "ray-dies");
    export(&s, Target::Ray);
    std::fs::remove_file(s.out.join("data/train.parquet")).unwrap();
    // From the folder where it is (a local head, or a filesystem the cluster shares).
    let id = ray::launch(&client, &s.out, &py, &env, false).unwrap();
    let err = ray::watch(
        &client,
        &id,
        &s.out,
        &CancelToken::new(),
        &CancelToken::new(),
        Duration::from_secs(30),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.contains("failed after step 0") && err.contains("train.parquet"),
        "{err}"
    );
}
