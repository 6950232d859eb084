//! The Train view's "Where" choice with Slurm on a login node over SSH: the SSH host typed in
//! the Where panel (and kept in the settings), Start copies the run folder there, submits it,
//! and the steps arrive in the same live charts; the checkpoint comes back into the local run
//! folder, the history lists it and it opens in the Chat view; "Follow launched job" finds the
//! job again from slurm_job.json. The login node is the test's own sshd in front of the one-node
//! Slurm of tests/common/slurm.rs (see tests/train_ssh.rs for what they need).

mod common;

use std::time::Duration;

use common::gui::{app, chat_with_checkpoint, harness, step_until, train_to_the_end};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use s1_studio::train::launch::{ssh, Target};
use s1_studio::ui::settings::View;
use s1_studio::ui::train_state::TrainStatus;
use s1_studio::ui::Settings;

type H = egui_kittest::Harness<'static, s1_studio::ui::StudioApp>;

fn type_into(h: &mut H, role: Role, label: &str, text: &str) {
    h.get_by_role_and_label(role, label).focus();
    h.run();
    h.get_by_role_and_label(role, label).type_text(text);
    h.run();
}

#[test]
fn where_slurm_over_ssh_runs_the_form_on_a_login_node() {
    let py = common::slurm::trl_python();
    let cluster = common::slurm::Cluster::start();
    // What a login node's profile sets: the cluster's config, and torchrun's Python.
    let sshd = common::sshd::Sshd::start(&[
        ("SLURM_CONF", cluster.conf().display().to_string()),
        ("TORCHRUN", format!("{py} -m torch.distributed.run")),
        ("MASTER_PORT", common::free_port().to_string()),
        ("OMP_NUM_THREADS", "1".into()),
    ]);
    // The user's way to give the studio's ssh its options.
    std::env::set_var(ssh::OPTIONS_ENV, format!("-F {}", sshd.config("ssh_config").display()));

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    common::sum_rows(&d.join("rows.jsonl"), 6);
    let there = d.join("login-node/run");
    let mut s = Settings {
        view: View::Train,
        ..Default::default()
    };
    s.train.model = d.join("model");
    s.train.data = d.join("rows.jsonl");
    s.train.out = d.join("out");
    (
        s.train.epochs,
        s.train.lr,
        s.train.batch,
        s.train.grad_accum,
        s.train.block_size,
    ) = (2, 2e-3, 1, 2, 128);
    let mut h = harness(app(s));
    h.run();
    h.get_by_label("Where").click();
    h.run();
    h.get_by_label("Slurm").click();
    h.run();
    assert_eq!(h.state().train.remote.target, Some(Target::Slurm));
    type_into(&mut h, Role::SpinButton, "GPUs per node", "0");
    type_into(&mut h, Role::SpinButton, "Processes", "2");
    type_into(&mut h, Role::TextInput, "SSH host", "s1-login");
    type_into(&mut h, Role::TextInput, "Folder there", &there.display().to_string());
    assert_eq!(h.state().settings.train_ssh.host, "s1-login", "kept in the settings");
    assert_eq!(h.state().train.remote.gpus_per_node, 0);
    assert_eq!(h.state().train.remote.nproc, 2);
    h.get_by_label("Start").click();
    let checkpoint = train_to_the_end(&mut h, Duration::from_secs(300), || {
        std::fs::read_to_string(there.join("launch.log")).unwrap_or_default()
    });
    let n = h.state().train.records.len();
    assert_eq!(checkpoint, d.join(format!("out/checkpoint-{n}")));
    assert!(
        there.join(format!("checkpoint-{n}/model.safetensors")).exists(),
        "trained there"
    );

    // Found again from the run folder: the job has ended, so the watch ends at once, Done.
    h.get_by_label("Follow launched job").click();
    step_until(&mut h, Duration::from_secs(60), |_| {}, |a| !a.train.is_running());
    assert_eq!(
        h.state().train.status,
        TrainStatus::Done {
            checkpoint: checkpoint.clone()
        }
    );
    assert_eq!(h.state().train.records.len(), n);

    chat_with_checkpoint(&mut h, &checkpoint);
}
