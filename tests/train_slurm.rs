//! The exported run folder submitted to a real one-node Slurm cluster (Debian's slurm-wlm:
//! slurmctld and slurmd on this host, started by the test with its own config and ports, munge
//! for authentication): sbatch takes job.sbatch, the studio follows the job's trainer_log.jsonl
//! to the end (2 torchrun processes on the CPU), and a job that dies shows its reason from
//! slurm-ID.out.
//!
//! Needs root (slurmd runs jobs as their user, started here as root), slurm-wlm and munge
//! (`apt-get install slurm-wlm munge`), and a Python with torch, transformers 4.46.1 and
//! trl 0.12.0 (S1_PYTHON).

mod common;

use s1_studio::jobs::CancelToken;
use s1_studio::train::launch::local::WatchEnd;
use s1_studio::train::launch::{self, slurm, Target};
use s1_studio::train::TrainSettings;

#[test]
fn a_one_node_slurm_cluster_runs_the_sbatch_script() {
    let py = common::slurm::trl_python();
    let _cluster = common::slurm::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = common::cpu_job_inputs(d, 6, Target::Slurm);
    let env = common::torchrun_cpu_env(&py);
    let settings = |out: &str| {
        let mut s = TrainSettings::s1(d.join("model"), d.join("rows.jsonl"), d.join(out));
        (s.epochs, s.lr, s.batch, s.grad_accum, s.block_size) = (2, 2e-3, 1, 2, 128);
        s
    };

    let s = settings("slurm");
    let sum = launch::export(&s, &opts).unwrap();
    let script = std::fs::read_to_string(s.out.join("job.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --nodes=1") && !script.contains("--gres"),
        "{script}"
    );
    let here = slurm::Site::Here;
    let id = slurm::submit(&here, &s.out, &env).unwrap();
    let (site, again) = slurm::attach(&s.out, Vec::new()).unwrap();
    assert!(matches!(site, slurm::Site::Here) && again == id);
    let mut steps = Vec::new();
    let end = slurm::watch(&here, &id, &s.out, &CancelToken::new(), &CancelToken::new(), &mut |r| {
        steps.push(r.step)
    });
    let Ok(WatchEnd::Done { steps: n, checkpoint }) = end else {
        panic!(
            "{end:?}\n{}",
            std::fs::read_to_string(s.out.join(format!("slurm-{id}.out"))).unwrap_or_default()
        )
    };
    assert_eq!(n, sum.total_steps);
    assert_eq!(steps, (1..=sum.total_steps).collect::<Vec<_>>());
    assert_eq!(checkpoint, Some(s.out.join(format!("checkpoint-{n}"))));

    // A job that dies: the reason comes from slurm-ID.out.
    let s = settings("slurm-dies");
    launch::export(&s, &opts).unwrap();
    std::fs::remove_file(s.out.join("data/train.parquet")).unwrap();
    let id = slurm::submit(&here, &s.out, &env).unwrap();
    let err = slurm::watch(
        &here,
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
}
