//! `s1-studio train`: supervised fine-tuning with the s1 preset, a progress bar with ETA, and
//! trainer_log.jsonl in the output folder.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::jobs::CancelToken;
use crate::model::DeviceChoice;
use crate::train::data::TraceColumns;
use crate::train::{TrainEvent, TrainOutcome, TrainSettings};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Base model: a Hugging Face folder (config.json, safetensors, tokenizer files)
    #[arg(long, required_unless_present = "attach")]
    model: Option<PathBuf>,
    /// Training rows in the s1K schema (.jsonl or .json)
    #[arg(long, required_unless_present = "attach")]
    data: Option<PathBuf>,
    /// Output folder: checkpoint-N/ folders (Hugging Face layout) and trainer_log.jsonl
    #[arg(long)]
    out: PathBuf,
    /// Settings to start from; the flags below override them
    #[arg(long, default_value = "s1", value_parser = ["s1"])]
    preset: String,
    /// Which trace columns: auto, s1k, deepseek, gemini, or TRACE_COLUMN:ATTEMPT_COLUMN
    #[arg(long, default_value = "auto")]
    trace_columns: String,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    /// Fraction of the steps spent warming the learning rate up
    #[arg(long)]
    warmup_ratio: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Keep the norm weights out of weight decay (newer transformers; s1's transformers 4.46.1
    /// decays them, exempting only biases)
    #[arg(long)]
    no_norm_decay: bool,
    #[arg(long)]
    beta1: Option<f64>,
    #[arg(long)]
    beta2: Option<f64>,
    /// Tokens per example; longer examples are truncated (with a warning)
    #[arg(long)]
    block_size: Option<usize>,
    /// Rows per micro-batch
    #[arg(long)]
    batch: Option<usize>,
    /// Micro-batches per optimizer step (global batch = batch x grad-accum)
    #[arg(long)]
    grad_accum: Option<usize>,
    /// Gradient-norm clipping (0: off)
    #[arg(long)]
    max_grad_norm: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Run each layer again in the backward pass instead of keeping its activations
    #[arg(long)]
    gradient_checkpointing: bool,
    /// Save a checkpoint every N steps too (besides each epoch's end)
    #[arg(long)]
    save_every: Option<usize>,
    /// Keep only the newest N checkpoints (0: all)
    #[arg(long)]
    save_total_limit: Option<usize>,
    /// Continue from the newest checkpoint in --out (weights, optimizer state, step)
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// When --out already holds a run, move it aside to OUT.replaced-<UTC time> (nothing is
    /// deleted) and start afresh; without this or --resume an existing run is an error
    #[arg(long)]
    overwrite: bool,
    /// Train LoRA adapters of this rank instead of every weight (saved in peft's layout)
    #[arg(long)]
    lora_rank: Option<usize>,
    /// LoRA alpha (default: 2 x rank); the update is scaled by alpha / rank
    #[arg(long)]
    lora_alpha: Option<f64>,
    /// Modules that get adapters, comma-separated (default: all seven linear layers of a block)
    #[arg(long, value_delimiter = ',')]
    lora_targets: Option<Vec<String>>,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// f32, or bf16 (CUDA: bf16 compute, f32 master weights and optimizer state)
    #[arg(long, value_enum, default_value = "f32")]
    dtype: crate::train::config::TrainDtype,
    /// Tokens trained on: completion (s1: TRL's completion-only collator, everything after
    /// `<|im_start|>assistant\n` to the end, the `\n` after `<|im_end|>` included) or turn (the
    /// assistant turn through its end-of-turn token)
    #[arg(long, value_enum)]
    loss_mask: Option<crate::train::mask::LossMask>,
    /// How a step's token losses are weighed: example (s1: each example's token mean, averaged
    /// over the examples) or token (the sum over the global batch's tokens, long traces weigh more)
    #[arg(long, value_enum)]
    loss_weighting: Option<crate::train::config::LossWeighting>,
    /// An epoch's last global batch when short: fill (s1: completed with the epoch's first
    /// examples, as accelerate does over 16 GPUs) or short (every example once per epoch)
    #[arg(long, value_enum)]
    last_batch: Option<crate::train::config::LastBatch>,
    #[command(flatten)]
    remote: super::train_remote::RemoteArgs,
}

impl TrainArgs {
    pub fn out(&self) -> &std::path::Path {
        &self.out
    }

    pub fn device(&self) -> DeviceChoice {
        self.device
    }
}

pub fn settings(a: &TrainArgs) -> anyhow::Result<TrainSettings> {
    let (model, data) = (a.model.clone().unwrap_or_default(), a.data.clone().unwrap_or_default());
    let mut s = TrainSettings::s1(model, data, a.out.clone());
    s.trace_columns = TraceColumns::parse(&a.trace_columns).map_err(anyhow::Error::msg)?;
    macro_rules! set {
        ($($field:ident).+ = $v:expr) => {
            if let Some(v) = $v {
                s.$($field).+ = v;
            }
        };
    }
    set!(epochs = a.epochs);
    set!(lr = a.lr);
    set!(warmup_ratio = a.warmup_ratio);
    set!(adam.weight_decay = a.weight_decay);
    set!(adam.beta1 = a.beta1);
    set!(adam.beta2 = a.beta2);
    set!(block_size = a.block_size);
    set!(batch = a.batch);
    set!(grad_accum = a.grad_accum);
    set!(max_grad_norm = a.max_grad_norm);
    set!(seed = a.seed);
    set!(save_every = a.save_every);
    set!(save_total_limit = a.save_total_limit);
    set!(loss_mask = a.loss_mask);
    set!(loss_weighting = a.loss_weighting);
    set!(last_batch = a.last_batch);
    s.gradient_checkpointing = a.gradient_checkpointing;
    if a.no_norm_decay {
        s.adam.decay_norms = false;
    }
    if let Some(r) = a.lora_rank {
        let mut l = crate::train::LoraSettings::new(r);
        if let Some(alpha) = a.lora_alpha {
            l.alpha = alpha;
        }
        if let Some(t) = &a.lora_targets {
            l.target_modules = t.clone();
        }
        s.lora = Some(l);
    } else if a.lora_alpha.is_some() || a.lora_targets.is_some() {
        bail!("--lora-alpha and --lora-targets need --lora-rank");
    }
    s.resume = a.resume;
    s.device = a.device;
    s.dtype = a.dtype;
    s.validate().map_err(anyhow::Error::msg)?;
    Ok(s)
}

/// Refuses to start afresh over an existing run unless `--overwrite` moves it aside first.
fn keep_existing_run(a: &TrainArgs) -> anyhow::Result<()> {
    if a.resume || !crate::train::runs::holds_run(&a.out) {
        return Ok(());
    }
    if !a.overwrite {
        bail!(
            "{} already holds a run (trainer_log.jsonl or checkpoint-N folders); pass --resume to continue it, \
             --overwrite to move it aside and start afresh, or choose another --out (e.g. {})",
            a.out.display(),
            crate::train::runs::next_free(&a.out).display()
        );
    }
    let to = crate::train::runs::move_aside(&a.out).map_err(anyhow::Error::msg)?;
    println!("the earlier run in {} is kept in {}", a.out.display(), to.display());
    Ok(())
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    if a.remote.wanted() {
        return super::train_remote::run(&a, &a.remote);
    }
    let s = settings(&a)?;
    keep_existing_run(&a)?;
    // The memory estimate, before anything loads (a folder without config.json fails later with
    // its own message).
    if let Ok(cfg) = crate::model::ModelConfig::from_hf_file(&s.model.join("config.json")) {
        println!(
            "memory estimate: {}",
            crate::train::memory::estimate(&cfg, &s).describe()
        );
    }
    let cancel = CancelToken::new();
    {
        let c = cancel.clone();
        // Ctrl-C stops after the current micro-batch; the last checkpoint stays valid.
        let _ = ctrlc::set_handler(move || c.cancel());
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps (ETA {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = crate::train::run(&s, &cancel, &mut |e| match e {
        TrainEvent::Started {
            examples,
            total_steps,
            resumed_from,
            parameters,
            trainable,
        } => {
            bar.println(format!(
                "{examples} examples, {total_steps} steps (global batch {}), {:.1}M parameters ({:.1}M trained){}",
                s.global_batch(),
                parameters as f64 / 1e6,
                trainable as f64 / 1e6,
                resumed_from
                    .map(|r| format!(", resuming after step {r}"))
                    .unwrap_or_default()
            ));
            bar.set_length(total_steps as u64);
            bar.set_position(resumed_from.unwrap_or(0) as u64);
            bar.reset_eta();
        }
        TrainEvent::Warning(w) => bar.println(format!("warning: {w}")),
        TrainEvent::Step(r) => {
            bar.set_position(r.step as u64);
            bar.set_message(format!(
                "loss {:.4}  lr {:.2e}  grad norm {:.3}  {:.0} tok/s",
                r.loss, r.lr, r.grad_norm, r.tokens_per_s
            ));
        }
        TrainEvent::Checkpoint { step, path } => bar.println(format!("step {step}: saved {}", path.display())),
        TrainEvent::Finished(_) => bar.finish(),
    });
    match outcome {
        TrainOutcome::Done {
            final_checkpoint,
            steps,
        } => {
            println!("done: {steps} steps; model in {}", final_checkpoint.display());
            Ok(())
        }
        TrainOutcome::Stopped { last_checkpoint, step } => {
            match last_checkpoint {
                Some(c) => println!("stopped at step {step}; resume from {} with --resume", c.display()),
                None => println!("stopped at step {step} before the first checkpoint"),
            }
            Ok(())
        }
        TrainOutcome::Failed(e) => bail!("{e}"),
    }
}
