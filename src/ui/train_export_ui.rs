//! The Train view's "Where" choice: train here with the studio's own trainer, or hand the run
//! to torchrun, Ray, Slurm or SkyPilot (the run folder is written, then started and followed
//! with the same charts and Stop), with the command preview of what will run; a Slurm login
//! node over SSH is remembered in the settings. Drawing only: nothing here touches the disk.

use eframe::egui;

use crate::train::launch::export::{torchrun_preview, unsupported};
use crate::train::launch::{ssh, ExportOptions, LaunchSpec, Target};
use crate::train::TrainSettings;

/// Where the next run trains (not persisted; the studio starts on Local).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteChoice {
    /// None: the studio's own trainer.
    pub target: Option<Target>,
    pub ray_address: String,
    /// The Python on the Ray head.
    pub python: String,
    /// Processes per node (torchrun here; a CPU job elsewhere).
    pub nproc: usize,
    /// GPUs per node on a cluster (0: a CPU job).
    pub gpus_per_node: usize,
    pub nodes: usize,
    /// Ray: the cluster does not see this folder; upload it as the job's working directory.
    pub ray_upload: bool,
    /// Ray with an upload: where the job keeps its checkpoints on the cluster (empty: its copy).
    pub ray_output_dir: String,
}

impl Default for RemoteChoice {
    fn default() -> Self {
        Self {
            target: None,
            ray_address: "http://127.0.0.1:8265".into(),
            python: "python3".into(),
            nproc: 1,
            gpus_per_node: 8,
            nodes: 1,
            ray_upload: false,
            ray_output_dir: String::new(),
        }
    }
}

/// A Slurm login node reached over SSH (persisted in `Settings::train_ssh`): empty host, sbatch
/// on this machine.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SshForm {
    /// `[user@]host[:port]`, or an alias of ~/.ssh/config.
    pub host: String,
    /// The run's folder there (empty: ~/s1-studio-runs/<run folder's name>).
    pub remote_dir: String,
}

fn label(t: Option<Target>) -> &'static str {
    match t {
        None => "Local (this app)",
        Some(Target::Torchrun) => "torchrun (here)",
        Some(Target::Ray) => "Ray",
        Some(Target::Slurm) => "Slurm",
        Some(Target::Skypilot) => "SkyPilot",
    }
}

/// The export options and launch environment for the chosen target.
pub fn launch_parts(c: &RemoteChoice, login: &SshForm, s: &TrainSettings) -> (ExportOptions, LaunchSpec) {
    let target = c.target.unwrap_or_default();
    let cpu = match target {
        Target::Torchrun => s.device.is_cpu(),
        _ => c.gpus_per_node == 0,
    };
    let nproc = if cpu { c.nproc.max(1) } else { c.gpus_per_node.max(1) };
    let mut env = vec![("DEVICE".to_string(), if cpu { "cpu" } else { "cuda" }.to_string())];
    if target == Target::Torchrun || cpu {
        env.push(("NPROC".into(), nproc.to_string()));
    }
    if target == Target::Ray && c.ray_upload && !c.ray_output_dir.trim().is_empty() {
        env.push(("OUTPUT_DIR".into(), c.ray_output_dir.trim().to_string()));
    }
    let opts = ExportOptions {
        target,
        nodes: c.nodes.max(1),
        gpus_per_node: c.gpus_per_node,
        ..ExportOptions::default()
    };
    let over_ssh = target == Target::Slurm && !login.host.trim().is_empty();
    let spec = LaunchSpec {
        ray_address: c.ray_address.clone(),
        python: c.python.clone(),
        env,
        ray_upload: target == Target::Ray && c.ray_upload,
        ssh_host: if over_ssh {
            login.host.trim().to_string()
        } else {
            String::new()
        },
        remote_dir: login.remote_dir.trim().to_string(),
        // A malformed S1_SSH_OPTIONS is shown beside the host field. Slurm's only (a re-attach
        // reaches the host slurm_job.json recorded).
        ssh_options: if matches!(target, Target::Slurm | Target::Skypilot) {
            ssh::options_from_env().unwrap_or_default()
        } else {
            Vec::new()
        },
        cluster: String::new(),
    };
    (opts, spec)
}

/// What Start will do, in words and commands.
pub fn preview(c: &RemoteChoice, login: &SshForm, s: &TrainSettings) -> String {
    let Some(target) = c.target else {
        return String::new();
    };
    let (opts, spec) = launch_parts(c, login, s);
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let nproc = spec
        .env
        .iter()
        .find(|(k, _)| k == "NPROC")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(opts.gpus_per_node.max(1));
    let gpus = spec.env.iter().any(|(k, v)| k == "DEVICE" && v == "cuda");
    let out = s.out.display();
    let start = match target {
        Target::Torchrun => format!("then runs here: cd {out} && {} bash launch.sh", env.join(" ")),
        Target::Ray if spec.ray_upload => format!(
            "then uploads the folder to {} (PUT /api/packages/gcs/_ray_pkg_<hash>.zip) and submits it as the \
             job's working directory: {} ray_job.py  [{}]",
            c.ray_address,
            c.python,
            env.join(" ")
        ),
        Target::Ray => format!(
            "then submits to {} (POST /api/jobs/): cd {out} && {} ray_job.py  [{}]",
            c.ray_address,
            c.python,
            env.join(" ")
        ),
        Target::Slurm if !spec.ssh_host.is_empty() => {
            let dir = if spec.remote_dir.is_empty() {
                ssh::default_remote_dir(&s.out)
            } else {
                spec.remote_dir.clone()
            };
            format!(
                "then copies it to {host}:{dir} (rsync, else tar, over ssh) and submits there: ssh {host} 'cd {dir} && {} \
                 sbatch job.sbatch'  ({} node(s)); the log follows, the checkpoints come back to {out}",
                env.join(" "),
                opts.nodes,
                host = spec.ssh_host
            )
        }
        Target::Slurm => format!(
            "then submits from this machine: cd {out} && {} sbatch job.sbatch  ({} node(s))",
            env.join(" "),
            opts.nodes
        ),
        Target::Skypilot => format!(
            "then runs: cd {out} && sky launch -c {} sky.yaml -y -d, follows `sky logs`, and brings the checkpoints \
             back over ssh (sky down ends the cluster)",
            crate::train::launch::sky::cluster_name(&s.out)
        ),
    };
    format!(
        "writes {out}: data/train.parquet, train.py (s1's sft.py), launch.sh, fsdp_config.json, requirements.txt, \
         job.sbatch, ray_job.py, sky.yaml, README.md\n{start}\n  = {}",
        torchrun_preview(s, nproc, gpus)
    )
}

/// The "Where" row (above Start).
pub fn where_ui(ui: &mut egui::Ui, c: &mut RemoteChoice) {
    egui::ComboBox::from_label("Where")
        .selected_text(label(c.target))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut c.target, None, label(None));
            for t in Target::ALL {
                ui.selectable_value(&mut c.target, Some(t), label(Some(t)));
            }
        })
        .response
        .on_hover_text(
            "Train here with the studio's trainer, or hand the run to the standard engines: the run folder \
             (TRL script with s1's formatting, mask and settings) is written, started and followed",
        );
}

/// The chosen target's fields and the command preview (below Start).
pub fn where_details_ui(ui: &mut egui::Ui, c: &mut RemoteChoice, login: &mut SshForm, s: &TrainSettings) {
    let Some(target) = c.target else { return };
    ui.separator();
    match target {
        Target::Torchrun => {
            ui.horizontal(|ui| {
                let l = ui.label("Processes");
                ui.add(egui::DragValue::new(&mut c.nproc).range(1..=64))
                    .labelled_by(l.id);
            });
        }
        Target::Ray | Target::Slurm | Target::Skypilot => {
            ui.horizontal(|ui| {
                let l = ui.label("Nodes");
                ui.add(egui::DragValue::new(&mut c.nodes).range(1..=512))
                    .labelled_by(l.id);
                let l = ui.label("GPUs per node");
                ui.add(egui::DragValue::new(&mut c.gpus_per_node).range(0..=16))
                    .labelled_by(l.id)
                    .on_hover_text("0: a CPU job (gloo, fp32), for a check");
            });
            if c.gpus_per_node == 0 {
                ui.horizontal(|ui| {
                    let l = ui.label("Processes");
                    ui.add(egui::DragValue::new(&mut c.nproc).range(1..=64))
                        .labelled_by(l.id);
                });
            }
        }
    }
    if target == Target::Ray {
        ui.horizontal(|ui| {
            let l = ui.label("Ray address");
            ui.text_edit_singleline(&mut c.ray_address).labelled_by(l.id);
        });
        ui.horizontal(|ui| {
            let l = ui.label("Python on the head");
            ui.text_edit_singleline(&mut c.python).labelled_by(l.id);
        });
        ui.checkbox(&mut c.ray_upload, "Upload the folder (the cluster does not see it)")
            .on_hover_text(
                "Sent as the job's working directory through the dashboard (at most 500 MiB: name a large model \
                 on the cluster instead). The checkpoints are then written on the cluster.",
            );
        if c.ray_upload {
            ui.horizontal(|ui| {
                let l = ui.label("Checkpoints there");
                ui.add(
                    egui::TextEdit::singleline(&mut c.ray_output_dir)
                        .hint_text("a shared or persistent path on the cluster (empty: the job's copy)"),
                )
                .labelled_by(l.id);
            });
        }
    }
    if target == Target::Slurm {
        ui.horizontal(|ui| {
            let l = ui.label("SSH host");
            ui.add(egui::TextEdit::singleline(&mut login.host).hint_text("empty: sbatch on this machine"))
                .labelled_by(l.id)
                .on_hover_text(
                    "A login node that shares no folder with this machine: [user@]host[:port] or an alias of \
                     ~/.ssh/config. ssh never prompts (the key must be in the agent or the config); more options \
                     in S1_SSH_OPTIONS",
                );
        });
        if !login.host.trim().is_empty() {
            ui.horizontal(|ui| {
                let l = ui.label("Folder there");
                ui.add(egui::TextEdit::singleline(&mut login.remote_dir).hint_text(ssh::default_remote_dir(&s.out)))
                    .labelled_by(l.id);
            });
            if let Err(e) = ssh::SshHost::parse(&login.host) {
                ui.colored_label(ui.visuals().warn_fg_color, e);
            }
            if let Err(e) = ssh::options_from_env() {
                ui.colored_label(ui.visuals().warn_fg_color, e);
            }
        }
    }
    for bad in unsupported(s) {
        ui.colored_label(ui.visuals().warn_fg_color, format!("not exported: {bad}"));
    }
    ui.add(egui::Label::new(egui::RichText::new(preview(c, login, s)).monospace().small()).wrap());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_says_what_runs_where() {
        let mut s = TrainSettings::s1("m".into(), "d.jsonl".into(), "/runs/a".into());
        let mut c = RemoteChoice::default();
        let mut login = SshForm::default();
        assert_eq!(preview(&c, &login, &s), "");
        c.target = Some(Target::Torchrun);
        c.nproc = 2;
        let p = preview(&c, &login, &s);
        assert!(p.contains("cd /runs/a && DEVICE=cpu NPROC=2 bash launch.sh"), "{p}");
        assert!(
            p.contains("--gradient_accumulation_steps=8") && p.contains("--ddp_backend=gloo"),
            "{p}"
        );
        c.target = Some(Target::Slurm);
        c.nodes = 2;
        let p = preview(&c, &login, &s);
        assert!(p.contains("DEVICE=cuda sbatch job.sbatch  (2 node(s))"), "{p}");
        assert!(
            p.contains("--nproc-per-node 8") && p.contains("full_shard auto_wrap"),
            "{p}"
        );
        login.host = "me@login:2222".into();
        let p = preview(&c, &login, &s);
        assert!(
            p.contains("copies it to me@login:2222:~/s1-studio-runs/a")
                && p.contains("'cd ~/s1-studio-runs/a && DEVICE=cuda"),
            "{p}"
        );
        let (_, spec) = launch_parts(&c, &login, &s);
        assert_eq!(
            (spec.ssh_host.as_str(), spec.remote_dir.as_str()),
            ("me@login:2222", "")
        );
        c.target = Some(Target::Ray);
        assert_eq!(launch_parts(&c, &login, &s).1.ssh_host, "", "the host is Slurm's only");
        assert!(!launch_parts(&c, &login, &s).1.ray_upload);
        c.ray_upload = true;
        c.ray_output_dir = "/shared/ckpt".into();
        let (_, spec) = launch_parts(&c, &login, &s);
        assert!(spec.ray_upload);
        assert!(spec.env.contains(&("OUTPUT_DIR".into(), "/shared/ckpt".into())));
        assert!(
            preview(&c, &login, &s).contains("PUT /api/packages/gcs/"),
            "{}",
            preview(&c, &login, &s)
        );
        c.target = Some(Target::Slurm);
        assert!(!launch_parts(&c, &login, &s).1.ray_upload, "the upload is Ray's only");
        s.lora = Some(crate::train::LoraSettings::new(4));
        assert_eq!(unsupported(&s).len(), 1);
    }
}
