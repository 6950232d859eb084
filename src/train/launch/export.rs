//! Writing a run folder that trains outside the studio: the rows rendered as s1's data (Parquet,
//! a `text` column), the step order of the studio's own trainer (order.json), s1's sft.py with a
//! step-log callback (train.py), the torchrun line with s1's arguments (launch.sh), the FSDP
//! config, requirements, the launch files of every target (job.sbatch, ray_job.py and
//! ray_submit.json, sky.yaml), a README with the command preview and studio_export.json (what the
//! watcher reads back). Nothing runs here; see [`super::local`] and [`super::ray`] for that.

use std::path::{Path, PathBuf};

use super::Target;
use crate::train::config::{LastBatch, LossWeighting};
use crate::train::data::{self, Renderer};
use crate::train::mask::{self, LossMask};
use crate::train::TrainSettings;

/// What the export file records, read back by the launchers and watchers.
pub const EXPORT_FILE: &str = "studio_export.json";

const TRAIN_PY: &str = include_str!("templates/train.py");
const LAUNCH_SH: &str = include_str!("templates/launch.sh");
const JOB_SBATCH: &str = include_str!("templates/job.sbatch");
const RAY_JOB_PY: &str = include_str!("templates/ray_job.py");
const SKY_YAML: &str = include_str!("templates/sky.yaml");
const REQUIREMENTS: &str = include_str!("templates/requirements.txt");
const README: &str = include_str!("templates/README.md");

/// How the folder is set up beyond the training settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportOptions {
    pub target: Target,
    /// What train.py loads: a Hugging Face id or a path on the cluster. None: the local model
    /// folder is copied into the run folder (model/), so the folder is self-contained.
    pub remote_model: Option<String>,
    /// Nodes (Slurm, SkyPilot).
    pub nodes: usize,
    /// GPUs per node (Slurm's gres, Ray's reservation, SkyPilot's accelerators); 0: a CPU job.
    pub gpus_per_node: usize,
    /// SkyPilot's accelerator name (e.g. H100).
    pub accelerator: String,
    /// Slurm's time limit (HH:MM:SS).
    pub time_limit: String,
}

impl Default for ExportOptions {
    /// s1's: 16 H100s as 2 nodes of 8.
    fn default() -> Self {
        Self {
            target: Target::Torchrun,
            remote_model: None,
            nodes: 2,
            gpus_per_node: 8,
            accelerator: "H100".into(),
            time_limit: "24:00:00".into(),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportSummary {
    pub out: PathBuf,
    pub target: Target,
    pub examples: usize,
    pub total_steps: usize,
    pub global_batch: usize,
    /// The command that starts the run for the target, from the run folder.
    pub command: String,
    pub files: Vec<String>,
    pub settings: TrainSettings,
    pub options: ExportOptions,
}

/// The settings that the exported TRL script cannot honour, said plainly; empty when it can.
pub fn unsupported(s: &TrainSettings) -> Vec<String> {
    let mut bad = Vec::new();
    if s.lora.is_some() {
        bad.push("LoRA (--lora-rank): the exported script fine-tunes every weight, as s1 does".to_string());
    }
    if s.loss_mask != LossMask::Completion {
        bad.push("--loss-mask turn: the exported script uses s1's completion-only collator".into());
    }
    if s.loss_weighting != LossWeighting::Example {
        bad.push("--loss-weighting token: the exported script weighs each example's mean, as s1".into());
    }
    if !s.adam.decay_norms {
        bad.push("--no-norm-decay: transformers 4.46.1's Trainer decays the norm weights, as s1's runs did".into());
    }
    if s.last_batch != LastBatch::Fill {
        bad.push("--last-batch short: the exported order completes short batches, as accelerate does for s1".into());
    }
    bad
}

/// The launch command of `target`, run from the run folder.
pub fn command(target: Target) -> &'static str {
    match target {
        Target::Torchrun => "bash launch.sh",
        Target::Slurm => "sbatch job.sbatch",
        Target::Ray => "ray job submit --working-dir . -- python ray_job.py",
        Target::Skypilot => "sky launch sky.yaml",
    }
}

/// The torchrun line launch.sh runs for `s` on `nproc` processes of one node, with the
/// settings that matter (a preview: launch.sh holds every argument).
pub fn torchrun_preview(s: &TrainSettings, nproc: usize, gpus: bool) -> String {
    let g = s.global_batch();
    let nproc = nproc.max(1);
    let accum = if g.is_multiple_of(nproc) {
        (g / nproc).to_string()
    } else {
        format!("(does not divide: {g} / {nproc})")
    };
    format!(
        "torchrun --nproc-per-node {nproc} train.py --num_train_epochs={} --learning_rate={} --warmup_ratio={} \
         --lr_scheduler_type=cosine --weight_decay={} --adam_beta1={} --adam_beta2={} --max_grad_norm={} \
         --per_device_train_batch_size=1 --gradient_accumulation_steps={accum} --block_size={} --seed={} {}",
        s.epochs,
        s.lr,
        s.warmup_ratio,
        s.adam.weight_decay,
        s.adam.beta1,
        s.adam.beta2,
        s.max_grad_norm,
        s.block_size,
        s.seed,
        if gpus {
            "--fsdp='full_shard auto_wrap' --fsdp_config=fsdp_config.json --bf16=True"
        } else {
            "--use_cpu=True --ddp_backend=gloo"
        }
    )
}

/// Quotes `s` for bash: plain when safe, `$'…'` when it holds a newline, else single quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+@%,".contains(c));
    if safe {
        return s.to_string();
    }
    if s.contains('\n') || s.contains('\t') {
        let mut q = String::from("$'");
        for c in s.chars() {
            match c {
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                '\\' => q.push_str("\\\\"),
                '\'' => q.push_str("\\'"),
                c => q.push(c),
            }
        }
        q.push('\'');
        return q;
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// transformers' decoder-layer class for FSDP's auto wrap, from config.json's architectures
/// (s1's fsdp_config_qwen.json: Qwen2DecoderLayer).
fn layer_class(model: &Path) -> Result<String, String> {
    let p = model.join("config.json");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let arch = v["architectures"][0]
        .as_str()
        .ok_or_else(|| format!("{}: no `architectures` entry to name the FSDP layer class", p.display()))?;
    let family = arch.strip_suffix("ForCausalLM").unwrap_or(arch);
    Ok(format!("{family}DecoderLayer"))
}

/// Copies the regular files of the model folder (weights, config, tokenizer) into `to`, hard
/// linking where the filesystem allows.
fn copy_model(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let rd = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for e in rd.filter_map(|e| e.ok()) {
        let src = e.path();
        if !src.is_file() {
            continue;
        }
        let dst = to.join(e.file_name());
        let _ = std::fs::remove_file(&dst);
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| format!("copying {} to {}: {e}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

fn write(out: &Path, name: &str, text: &str, files: &mut Vec<String>) -> Result<(), String> {
    let p = out.join(name);
    std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    files.push(name.to_string());
    Ok(())
}

fn render(name: &str, source: &str, ctx: &serde_json::Value) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(source, ctx).map_err(|e| format!("template {name}: {e}"))
}

/// Writes the run folder `s.out` for `opts.target`. Errors name the file or the setting.
pub fn export(s: &TrainSettings, opts: &ExportOptions) -> Result<ExportSummary, String> {
    s.validate()?;
    let bad = unsupported(s);
    if !bad.is_empty() {
        return Err(format!("cannot export these settings: {}", bad.join("; ")));
    }
    if crate::train::runs::holds_run(&s.out) {
        return Err(format!(
            "{} already holds a run (trainer_log.jsonl or checkpoints); choose another folder (e.g. {})",
            s.out.display(),
            crate::train::runs::next_free(&s.out).display()
        ));
    }
    let (tokenizer, template) = crate::train::preview::tokenizer_and_template(s)?;
    let renderer = Renderer {
        tokenizer: &tokenizer,
        template: &template,
        block_size: s.block_size,
        mask: s.loss_mask,
    };
    let rows = data::read_rows(&s.data, &s.trace_columns).map_err(|e| e.to_string())?;
    let mut texts = Vec::with_capacity(rows.len());
    let mut prompt0 = String::new();
    for r in &rows {
        let (full, prompt) = renderer
            .render(r)
            .map_err(|e| format!("{}:{}: {e}", s.data.display(), r.line))?;
        if prompt0.is_empty() {
            prompt0 = prompt;
        }
        texts.push(Some(full));
    }
    let (instruction, response) = mask::trl_templates(&prompt0).ok_or_else(|| {
        format!(
            "{}: the chat template's assistant marker is neither Qwen's (<|im_start|>assistant) nor Llama 3's; \
             s1's sft.py has completion-only templates for those two only",
            s.model.display()
        )
    })?;
    let pad = ["<|fim_pad|>", "<|reserved_special_token_5|>"]
        .into_iter()
        .find(|t| tokenizer.token_to_id(t).is_some())
        .ok_or_else(|| {
            format!(
                "{}: the tokenizer has neither <|fim_pad|> nor <|reserved_special_token_5|>, the pad tokens s1's sft.py sets",
                s.model.display()
            )
        })?;
    let layer = layer_class(&s.model)?;

    let out = &s.out;
    std::fs::create_dir_all(out.join("data")).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut files = Vec::new();
    let parquet = out.join("data/train.parquet");
    let mut w =
        crate::data::parquet_io::TableWriter::create(&parquet, &[("text", false)]).map_err(|e| e.to_string())?;
    w.write(vec![crate::data::parquet_io::Column::Text(texts)])
        .map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    files.push("data/train.parquet".into());

    let g = s.global_batch();
    let schedule = data::schedule(rows.len(), s.epochs, g, s.seed, true);
    let per_epoch = data::steps_per_epoch(rows.len(), g);
    let epochs: Vec<Vec<usize>> = schedule.chunks(per_epoch.max(1)).map(|steps| steps.concat()).collect();
    let order = serde_json::json!({ "global_batch": g, "seed": s.seed, "epochs": epochs });
    write(out, "order.json", &order.to_string(), &mut files)?;

    let copied = opts.remote_model.is_none();
    let model_name = match &opts.remote_model {
        Some(m) => m.clone(),
        None => {
            copy_model(&s.model, &out.join("model"))?;
            files.push("model/".into());
            "model".into()
        }
    };
    let fsdp = serde_json::json!({ "transformer_layer_cls_to_wrap": layer });
    write(
        out,
        "fsdp_config.json",
        &serde_json::to_string_pretty(&fsdp).unwrap_or_default(),
        &mut files,
    )?;
    let job_name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "s1-run".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect::<String>();
    // The save schedule of the studio's trainer: every epoch's end, and every N steps if asked.
    let (save_strategy, save_steps) = if s.save_every > 0 {
        ("steps", s.save_every)
    } else {
        ("epoch", 0)
    };
    let ctx = serde_json::json!({
        "examples": rows.len(),
        "total_steps": schedule.len(),
        "global_batch": g,
        "micro_batch": 1,
        "layer_class": layer,
        "model_name": shell_quote(&model_name),
        "order_file": "order.json",
        "block_size": s.block_size,
        "instruction_template": shell_quote(instruction),
        "response_template": shell_quote(response),
        "response_template_shown": response.replace('\n', "\\n"),
        "pad_token": shell_quote(pad),
        "epochs": s.epochs,
        "warmup_ratio": s.warmup_ratio,
        "save_strategy": save_strategy,
        "save_steps": save_steps,
        "save_total_limit": s.save_total_limit,
        "lr": s.lr,
        "weight_decay": s.adam.weight_decay,
        "beta1": s.adam.beta1,
        "beta2": s.adam.beta2,
        "eps": s.adam.eps,
        "max_grad_norm": s.max_grad_norm,
        "seed": s.seed,
        "gradient_checkpointing": s.gradient_checkpointing,
        "job_name": job_name,
        "nodes": opts.nodes.max(1),
        "gpus_per_node": opts.gpus_per_node,
        "cpus_per_task": (opts.gpus_per_node * 8).max(2),
        "time_limit": opts.time_limit,
        // None for a CPU job: sky.yaml then asks for CPUs instead.
        "accelerators": (opts.gpus_per_node > 0).then(|| format!("{}:{}", opts.accelerator, opts.gpus_per_node)),
        "target": opts.target.name(),
        "data": s.data.display().to_string(),
        "copied_model": copied,
        "command": command(opts.target),
        "target_note": opts.target.note(),
    });
    write(out, "train.py", TRAIN_PY, &mut files)?;
    write(out, "requirements.txt", REQUIREMENTS, &mut files)?;
    write(out, "launch.sh", &render("launch.sh", LAUNCH_SH, &ctx)?, &mut files)?;
    write(out, "job.sbatch", &render("job.sbatch", JOB_SBATCH, &ctx)?, &mut files)?;
    write(out, "ray_job.py", &render("ray_job.py", RAY_JOB_PY, &ctx)?, &mut files)?;
    write(out, "sky.yaml", &render("sky.yaml", SKY_YAML, &ctx)?, &mut files)?;
    let submit = super::ray::submission(out, "python", &[]);
    write(
        out,
        "ray_submit.json",
        &serde_json::to_string_pretty(&submit).unwrap_or_default(),
        &mut files,
    )?;
    write(out, "README.md", &render("README.md", README, &ctx)?, &mut files)?;
    #[cfg(unix)]
    for f in ["launch.sh", "job.sbatch"] {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(out.join(f), std::fs::Permissions::from_mode(0o755));
    }
    let summary = ExportSummary {
        out: out.clone(),
        target: opts.target,
        examples: rows.len(),
        total_steps: schedule.len(),
        global_batch: g,
        command: command(opts.target).to_string(),
        files,
        settings: s.clone(),
        options: opts.clone(),
    };
    let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
    std::fs::write(out.join(EXPORT_FILE), json).map_err(|e| format!("{}: {e}", out.join(EXPORT_FILE).display()))?;
    Ok(summary)
}

/// Reads back what [`export`] wrote in `out`.
pub fn read_export(out: &Path) -> Result<ExportSummary, String> {
    let p = out.join(EXPORT_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| {
        format!(
            "{}: {e} (not a folder written by `s1-studio train --target`)",
            p.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_newlines_and_quotes() {
        assert_eq!(shell_quote("model"), "model");
        assert_eq!(shell_quote("<|im_start|>user"), "'<|im_start|>user'");
        assert_eq!(shell_quote("<|im_start|>assistant\n"), "$'<|im_start|>assistant\\n'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn skypilot_asks_for_the_gpus_or_for_cpus_in_a_cpu_job() {
        let ctx = |gpus: usize| {
            serde_json::json!({
                "job_name": "s1",
                "nodes": 2,
                "cpus_per_task": (gpus * 8).max(2),
                "accelerators": (gpus > 0).then(|| format!("H100:{gpus}")),
            })
        };
        let gpu = render("sky.yaml", SKY_YAML, &ctx(8)).unwrap();
        assert!(
            gpu.contains("resources:\n  accelerators: H100:8\nnum_nodes: 2"),
            "{gpu}"
        );
        assert!(!gpu.contains("cpus:"), "{gpu}");
        let cpu = render("sky.yaml", SKY_YAML, &ctx(0)).unwrap();
        assert!(!cpu.contains("accelerators"), "{cpu}");
        assert!(cpu.contains("\n  cpus: 2+\nnum_nodes: 2"), "{cpu}");
    }

    #[test]
    fn unsupported_settings_are_named() {
        let mut s = TrainSettings::default();
        assert!(unsupported(&s).is_empty());
        s.lora = Some(crate::train::LoraSettings::new(8));
        s.loss_mask = LossMask::Turn;
        let bad = unsupported(&s);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("LoRA") && bad[1].contains("turn"), "{bad:?}");
    }
}
