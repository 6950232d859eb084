//! The training loop: load the model and data, run the optimizer steps of the schedule, report
//! every step (trainer_log.jsonl and events), write checkpoints, resume from the last one.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use rayon::prelude::*;

use super::checkpoint::{self, TrainerState};
use super::config::{LastBatch, TrainSettings};
use super::data::{self, Example, MicroBatch, Renderer};
use super::optim::{self, AdamW};
use super::step::accumulate_micro_batch;
use crate::cancel::CancelToken;
use crate::model::lora::LoraConfig;
use crate::model::{load_model, Decoder, DeviceChoice, LoadOptions, ModelFormat};

/// One optimizer step, as written to trainer_log.jsonl.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub total_steps: usize,
    /// Mean token loss over the global batch.
    pub loss: f64,
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    pub epoch: f64,
    pub tokens_per_s: f64,
    /// Seconds since the run (or the resume) started.
    pub elapsed: f64,
    /// Estimated seconds left.
    pub remaining: f64,
}

/// What a run reports as it goes. Order: `Warning`s about the data and settings, `Started` once
/// (the data rendered, the model loaded), then `Step` after each optimizer step and `Checkpoint`
/// after each save, and `Finished` last, always: done, stopped or failed (a run that fails
/// before it starts sends only `Finished`).
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    Started {
        examples: usize,
        total_steps: usize,
        resumed_from: Option<usize>,
        parameters: usize,
        trainable: usize,
    },
    Warning(String),
    Step(StepRecord),
    Checkpoint {
        step: usize,
        path: PathBuf,
    },
    /// The run ended: finished, stopped or failed (always the last event).
    Finished(TrainOutcome),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrainOutcome {
    Done {
        final_checkpoint: PathBuf,
        steps: usize,
    },
    Stopped {
        last_checkpoint: Option<PathBuf>,
        step: usize,
    },
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error("{path}:{line}: {message}")]
    Render {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("{0}")]
    Resume(String),
    #[error("training: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens the chosen device (on the training thread: CUDA contexts belong to the thread that uses them).
pub fn device(choice: DeviceChoice) -> Result<Device, TrainError> {
    choice.open().map_err(|e| TrainError::Settings(e.to_string()))
}

/// Renders every row (in parallel); errors name the file and row.
pub fn prepare_examples(
    settings: &TrainSettings,
    renderer: &Renderer<'_>,
) -> Result<(Vec<Example>, usize), TrainError> {
    let rows = data::read_rows(&settings.data, &settings.trace_columns)?;
    let examples: Vec<Example> = rows
        .par_iter()
        .map(|r| {
            renderer.example(r).map_err(|message| TrainError::Render {
                path: settings.data.clone(),
                line: r.line,
                message,
            })
        })
        .collect::<Result<_, _>>()?;
    let truncated = examples.iter().filter(|e| e.truncated > 0).count();
    Ok((examples, truncated))
}

/// A fingerprint of what determines the run's steps: a resume must see the same.
fn fingerprint(examples: &[Example], s: &TrainSettings) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in examples {
        e.ids.hash(&mut h);
        e.loss.hash(&mut h);
    }
    (s.epochs, s.batch, s.grad_accum, s.block_size, s.seed).hash(&mut h);
    (s.loss_weighting.name(), s.adam.decay_norms, s.last_batch.name()).hash(&mut h);
    if let Some(l) = &s.lora {
        (l.rank, &l.target_modules, l.alpha.to_bits()).hash(&mut h);
    }
    s.lr.to_bits().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Runs a training job to its end, reporting through `emit`. Returns the outcome (also sent
/// as the last event).
pub fn run(settings: &TrainSettings, cancel: &CancelToken, emit: &mut dyn FnMut(TrainEvent)) -> TrainOutcome {
    let outcome = match run_inner(settings, cancel, emit) {
        Ok(o) => o,
        Err(e) => TrainOutcome::Failed(explain_oom(e).to_string()),
    };
    emit(TrainEvent::Finished(outcome.clone()));
    outcome
}

fn run_inner(
    settings: &TrainSettings,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<TrainOutcome, TrainError> {
    settings.validate().map_err(TrainError::Settings)?;
    super::alloc::keep_freed_memory();
    // A fresh run never truncates an earlier run's log: the caller resumes, picks another
    // folder or moves the old run aside (`runs::move_aside`) first.
    if !settings.resume && super::runs::holds_run(&settings.out) {
        return Err(TrainError::Settings(format!(
            "{} already holds a run (trainer_log.jsonl or checkpoints); resume it, choose another output folder, or move it aside",
            settings.out.display()
        )));
    }
    let dev = device(settings.device)?;
    // The flash kernels' choice (S1_FLASH_KERNEL) is read on CUDA's first attention call: a
    // wrong value is said here, before the model loads, not steps into the run.
    if dev.is_cuda() {
        crate::model::kernels::flash_kernel::current().map_err(TrainError::Settings)?;
    }
    std::fs::create_dir_all(&settings.out).map_err(|source| TrainError::Io {
        path: settings.out.clone(),
        source,
    })?;
    // Resume: the newest complete checkpoint replaces the base weights.
    let resume = if settings.resume {
        checkpoint::latest_checkpoint(&settings.out)
    } else {
        None
    };
    if settings.resume && resume.is_none() && super::runs::holds_run(&settings.out) {
        return Err(TrainError::Resume(format!(
            "{} has no complete checkpoint to resume from; start afresh in a new folder or replace the run",
            settings.out.display()
        )));
    }
    let base = settings.model.clone();
    // Full fine-tuning resumes from the checkpoint's weights; LoRA from the base plus the
    // checkpoint's adapter.
    let weights_from = match (&resume, &settings.lora) {
        (Some((_, d)), None) => d.clone(),
        _ => base.clone(),
    };
    let opts = LoadOptions {
        device: dev.clone(),
        dtype: Some(settings.dtype.dtype()),
        dequantize: true,
    };
    let model = load_model(&weights_from, &opts)?;
    if model.format == ModelFormat::Gguf {
        return Err(TrainError::Settings(format!(
            "{}: training needs a Hugging Face folder (config.json + safetensors); GGUF files are for inference",
            weights_from.display()
        )));
    }
    let renderer = Renderer {
        tokenizer: &model.tokenizer,
        template: &model.template,
        block_size: settings.block_size,
        mask: settings.loss_mask,
    };
    let (examples, truncated) = prepare_examples(settings, &renderer)?;
    if truncated > 0 {
        let cut: usize = examples.iter().map(|e| e.truncated).sum();
        emit(TrainEvent::Warning(format!(
            "{truncated} of {} examples are longer than the block size of {} tokens and were truncated ({cut} tokens cut)",
            examples.len(),
            settings.block_size
        )));
    }
    let no_loss = examples.iter().filter(|e| e.loss_tokens() == 0).count();
    if no_loss == examples.len() {
        let shortest = examples.iter().map(|e| e.prompt_tokens).min().unwrap_or(0);
        return Err(TrainError::Settings(format!(
            "{}: the block size of {} tokens leaves no assistant token to train on in any example \
             (the shortest prompt alone is {shortest} tokens); raise --block-size",
            settings.data.display(),
            settings.block_size
        )));
    }
    if no_loss > 0 {
        emit(TrainEvent::Warning(format!(
            "{no_loss} examples have no assistant tokens left after truncation and add nothing to the loss"
        )));
    }
    let pad = data::pad_id(&model.tokenizer);
    let schedule = data::schedule(
        examples.len(),
        settings.epochs,
        settings.global_batch(),
        settings.seed,
        settings.last_batch == LastBatch::Fill,
    );
    let total_steps = schedule.len();
    let steps_per_epoch = data::steps_per_epoch(examples.len(), settings.global_batch());
    let fp = fingerprint(&examples, settings);

    let mut dec = model.decoder;
    let parameters = dec.config().num_parameters();
    check_memory(dec.config(), settings, &dev)?;
    let lora_cfg = settings.lora.as_ref().map(|l| LoraConfig {
        r: l.rank,
        lora_alpha: l.alpha,
        target_modules: l.target_modules.clone(),
        use_rslora: false,
        base_model_name_or_path: Some(std::path::absolute(&base).unwrap_or(base.clone()).display().to_string()),
    });
    let named = match &lora_cfg {
        None => dec.make_trainable()?,
        Some(cfg) => {
            let init = match &resume {
                Some((_, dir)) => {
                    let p = dir.join("adapter_model.safetensors");
                    Some(
                        candle_core::safetensors::load(&p, &Device::Cpu)
                            .map_err(|e| TrainError::Resume(format!("{}: {e}", p.display())))?,
                    )
                }
                None => None,
            };
            dec.add_lora(cfg, settings.seed, init.as_ref())?
        }
    };
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let trainable = vars.iter().map(|v| v.elem_count()).sum();
    let mut opt = AdamW::new(named, settings.adam)?;
    let mut start_step = 0;
    if let Some((step, dir)) = &resume {
        let state = checkpoint::read_state(dir)?;
        if state.fingerprint != fp {
            return Err(TrainError::Resume(format!(
                "{}: the checkpoint was made with other data or settings (batch, epochs, block size, seed, lr, \
                 loss mask, loss weighting, norm decay, last batch); start a new run in another folder or restore \
                 them (runs begun before s1's mask and weighting became the default resume with \
                 --loss-mask turn --loss-weighting token --no-norm-decay --last-batch short)",
                dir.display()
            )));
        }
        let p = dir.join("optimizer.safetensors");
        let st = candle_core::safetensors::load(&p, &Device::Cpu)
            .map_err(|e| TrainError::Resume(format!("{}: {e}", p.display())))?;
        opt.load_state(&st, *step)
            .map_err(|e| TrainError::Resume(format!("{}: {e}", p.display())))?;
        start_step = *step;
    }
    emit(TrainEvent::Started {
        examples: examples.len(),
        total_steps,
        resumed_from: resume.as_ref().map(|(s, _)| *s),
        parameters,
        trainable,
    });

    let log_path = settings.out.join("trainer_log.jsonl");
    let mut log = open_log(&log_path, start_step)?;
    let started = Instant::now();
    let mut last_checkpoint = resume.map(|(_, d)| d);
    let mut acc: Vec<Option<Tensor>> = vec![None; vars.len()];
    for (step, rows) in schedule.iter().enumerate().skip(start_step) {
        if cancel.is_cancelled() {
            return Ok(TrainOutcome::Stopped { last_checkpoint, step });
        }
        let t0 = Instant::now();
        let micro: Vec<MicroBatch> = rows
            .chunks(settings.batch.max(1))
            .map(|c| MicroBatch::new(&c.iter().map(|&i| &examples[i]).collect::<Vec<_>>(), pad))
            .collect();
        // Each row's weight in the step's loss, over the whole global batch (s1: the mean over
        // the examples of each one's token mean).
        let row_tokens: Vec<usize> = micro
            .iter()
            .flat_map(|m| (0..m.rows).map(move |r| m.row_loss_tokens(r)))
            .collect();
        let scales = settings.loss_weighting.row_scales(&row_tokens);
        let mut loss = 0.0;
        let mut first_row = 0;
        acc.iter_mut().for_each(|a| *a = None);
        for mb in &micro {
            let mb_scales = &scales[first_row..first_row + mb.rows];
            first_row += mb.rows;
            loss += accumulate_micro_batch(&dec, &vars, mb, mb_scales, settings.gradient_checkpointing, &mut acc)?;
            if cancel.is_cancelled() {
                return Ok(TrainOutcome::Stopped { last_checkpoint, step });
            }
        }
        let grads: Vec<Tensor> = acc
            .iter()
            .zip(&vars)
            .map(|(g, v)| match g {
                Some(g) => Ok(g.clone()),
                None => v.zeros_like(),
            })
            .collect::<candle_core::Result<_>>()?;
        let grad_norm = optim::global_norm(&grads)?;
        let lr = optim::lr_at(step, total_steps, settings.lr, settings.warmup_ratio);
        opt.apply(&grads, lr, optim::clip_scale(grad_norm, settings.max_grad_norm))?;
        let tokens: usize = micro.iter().map(|m| m.rows * m.seq).sum();
        let elapsed = started.elapsed().as_secs_f64();
        let done = step + 1 - start_step;
        let record = StepRecord {
            step: step + 1,
            total_steps,
            loss,
            lr,
            grad_norm,
            epoch: (step + 1) as f64 / steps_per_epoch.max(1) as f64,
            tokens_per_s: tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            elapsed,
            remaining: elapsed / done as f64 * (total_steps - step - 1) as f64,
        };
        let line = serde_json::to_string(&record).unwrap_or_default();
        writeln!(log, "{line}")
            .and_then(|_| log.flush())
            .map_err(|source| TrainError::Io {
                path: log_path.clone(),
                source,
            })?;
        emit(TrainEvent::Step(record));
        let end_of_epoch = (step + 1) % steps_per_epoch.max(1) == 0;
        let periodic = settings.save_every > 0 && (step + 1) % settings.save_every == 0;
        if end_of_epoch || periodic || step + 1 == total_steps {
            let dir = checkpoint::checkpoint_dir(&settings.out, step + 1);
            let state = TrainerState {
                step: step + 1,
                total_steps,
                epoch: (step + 1) as f64 / steps_per_epoch.max(1) as f64,
                seed: settings.seed,
                fingerprint: fp.clone(),
            };
            save_checkpoint(&dir, &base, &mut dec, &names, &opt, &state, settings, lora_cfg.as_ref())?;
            checkpoint::prune(&settings.out, settings.save_total_limit);
            emit(TrainEvent::Checkpoint {
                step: step + 1,
                path: dir.clone(),
            });
            last_checkpoint = Some(dir);
        }
    }
    Ok(TrainOutcome::Done {
        final_checkpoint: last_checkpoint.unwrap_or_else(|| checkpoint::checkpoint_dir(&settings.out, total_steps)),
        steps: total_steps,
    })
}

/// Refuses a run whose weights, gradients, AdamW moments and activations
/// ([`super::memory::estimate`]) would not fit in the memory the device has available (the
/// system's on the CPU, the GPU's free memory on CUDA), naming what to lower. The weights are
/// already loaded when this runs: their bytes count as available.
fn check_memory(cfg: &crate::model::ModelConfig, s: &TrainSettings, dev: &Device) -> Result<(), TrainError> {
    let free = if dev.is_cpu() {
        available_memory()
    } else {
        crate::model::device::free_memory(dev)
    };
    let Some(free) = free else {
        return Ok(());
    };
    let e = super::memory::estimate(cfg, s);
    match e.refusal(free + e.loaded_weights(cfg, s), s) {
        Some(msg) => Err(TrainError::Settings(if dev.is_cpu() {
            msg
        } else {
            format!("GPU: {msg}")
        })),
        None => Ok(()),
    }
}

/// MemAvailable from /proc/meminfo (Linux), in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Adds what to lower to a device's out-of-memory error (not to the memory check's own refusal,
/// which names the setting already).
fn explain_oom(e: TrainError) -> TrainError {
    if matches!(e, TrainError::Settings(_)) {
        return e;
    }
    let text = e.to_string();
    if text.to_lowercase().contains("out of memory") || text.contains("OUT_OF_MEMORY") {
        return TrainError::Settings(format!(
            "{text}: the device ran out of memory; lower --batch or --block-size, add --gradient-checkpointing, \
             or train LoRA adapters (--lora-rank)"
        ));
    }
    e
}

/// Opens trainer_log.jsonl: a fresh run truncates it; a resume keeps the steps up to the
/// checkpoint and drops any logged after it (they will be run again).
fn open_log(path: &Path, keep_steps: usize) -> Result<std::fs::File, TrainError> {
    let io = |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    let kept = if keep_steps > 0 {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                serde_json::from_str::<StepRecord>(l)
                    .map(|r| r.step <= keep_steps)
                    .unwrap_or(false)
            })
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    } else {
        String::new()
    };
    std::fs::write(path, kept).map_err(io)?;
    std::fs::OpenOptions::new().append(true).open(path).map_err(io)
}

/// Replaces the tensors that the optimizer keeps an f32 master of (bf16 training) with that
/// master, so checkpoints hold the full-precision weights; everything is saved in f32.
fn master_over(tensors: &mut HashMap<String, Tensor>, opt: &AdamW) -> candle_core::Result<()> {
    let masters = opt.master_weights();
    for (name, t) in tensors.iter_mut() {
        *t = match masters.get(name.as_str()) {
            Some(w) => w.to_device(&Device::Cpu)?.contiguous()?,
            None => t.to_dtype(DType::F32)?,
        };
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn save_checkpoint(
    dir: &Path,
    base: &Path,
    dec: &mut Decoder,
    names: &[String],
    opt: &AdamW,
    state: &TrainerState,
    settings: &TrainSettings,
    lora: Option<&LoraConfig>,
) -> Result<(), TrainError> {
    let state_json = serde_json::to_vec_pretty(state).unwrap_or_default();
    let settings_json = serde_json::to_vec_pretty(settings).unwrap_or_default();
    let opt_state = opt.state_tensors()?;
    if let Some(cfg) = lora {
        // peft's layout: adapter_config.json + adapter_model.safetensors.
        let mut tensors = dec.lora_tensors()?;
        master_over(&mut tensors, opt)?;
        let conf = serde_json::to_vec_pretty(&cfg.to_peft_json()).unwrap_or_default();
        checkpoint::write_model_folder(
            dir,
            base,
            "adapter_model.safetensors",
            &tensors,
            false,
            &[
                ("adapter_config.json", conf),
                ("trainer_state.json", state_json),
                ("training_settings.json", settings_json),
            ],
            Some(("optimizer.safetensors", &opt_state)),
        )?;
        return Ok(());
    }
    let mut params: HashMap<String, Tensor> = dec
        .parameters()?
        .into_iter()
        .filter(|(n, _)| names.contains(n))
        .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<candle_core::Result<_>>()?;
    master_over(&mut params, opt)?;
    checkpoint::write_model_folder(
        dir,
        base,
        "model.safetensors",
        &params,
        true,
        &[
            ("trainer_state.json", state_json),
            ("training_settings.json", settings_json),
        ],
        Some(("optimizer.safetensors", &opt_state)),
    )?;
    Ok(())
}

#[cfg(test)]
mod oom_tests {
    use super::*;

    #[test]
    fn a_device_oom_gets_the_hint_and_the_memory_check_is_left_as_it_is() {
        let oom = explain_oom(TrainError::Candle(candle_core::Error::Msg(
            "CUDA_ERROR_OUT_OF_MEMORY".into(),
        )));
        assert!(oom.to_string().contains("lower --batch or --block-size"), "{oom}");
        let refusal = "GPU: out of memory: the run needs about 9 GB; add --gradient-checkpointing";
        let kept = explain_oom(TrainError::Settings(refusal.into()));
        assert_eq!(kept.to_string(), refusal);
        let other = explain_oom(TrainError::Resume("no checkpoint".into()));
        assert_eq!(other.to_string(), "no checkpoint");
    }
}
