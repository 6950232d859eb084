//! `s1-studio eval`: a budget sweep of a model over a benchmark, graded offline; writes
//! samples.jsonl (resumable), metrics.json and scaling.svg into the output folder.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::eval::{self, presets, sweep, EvalEvent, EvalRequest};
use crate::grade::{Extraction, Kind};
use crate::model::{parse_dtype, DeviceChoice};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A Hugging Face folder or a .gguf file. With --endpoint, only its tokenizer and chat
    /// template are read (s1's loop renders prompts and counts tokens locally); its weights are
    /// not loaded
    #[arg(long)]
    model: PathBuf,
    /// Generate through an OpenAI-compatible server instead (vLLM, SGLang, llama.cpp's server,
    /// `s1-studio serve`), its base URL, e.g. http://localhost:8000/v1: budget forcing runs as
    /// s1's loop over /completions (stop strings, the ignore string appended, forced end)
    #[arg(long, requires = "endpoint_model")]
    endpoint: Option<String>,
    /// The `model` sent to the endpoint
    #[arg(long, requires = "endpoint")]
    endpoint_model: Option<String>,
    /// The environment variable holding the endpoint's API key (sent as a bearer token)
    #[arg(long, requires = "endpoint")]
    api_key_env: Option<String>,
    /// Requests in flight at once to the endpoint
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Retries of a request after 429, 5xx or a connection error (backoff from 0.5 s, doubled)
    #[arg(long, default_value_t = 5)]
    retries: usize,
    /// How prompts go to the endpoint: `ids` (token ids, as s1 hands vLLM its prompts: nothing
    /// is re-tokenized between rounds) or `text` (for servers that refuse token prompts)
    #[arg(long, default_value = "ids", value_parser = ["ids", "text"], requires = "endpoint")]
    endpoint_prompts: String,
    /// A field added to every request, KEY=VALUE (the value read as JSON when it parses, else
    /// as text; `null` removes one of the loop's own sampler fields: repetition_penalty,
    /// repeat_penalty, min_p, top_k, return_token_ids). Repeatable
    #[arg(long = "endpoint-param", value_name = "KEY=VALUE", requires = "endpoint")]
    endpoint_params: Vec<String>,
    /// math500, aime24, aime25, amc23, gsm8k, or a JSONL file (question + answer columns, or
    /// GPQA's Question / Correct Answer / Incorrect Answer 1-3 as multiple choice)
    #[arg(long)]
    bench: String,
    /// Grade as (default: the benchmark's own; files: gsm8k when answers have ####, else math)
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// How answers are read: `s1` (s1's own: the text after the last `<|im_start|>answer`, its
    /// last \boxed{}, else what follows its first `Answer:`), or `lenient` (the studio's: more
    /// forms, and no default letter for multiple choice)
    #[arg(long, value_enum, default_value = "s1")]
    extraction: Extraction,
    /// A named sweep with s1's own settings from its eval/commands.sh, instead of
    /// --max-thinking/--waits: s1 (500 ... 16000 and auto; auto with 1, 2, 4, 6 Waits),
    /// s1-ablations, s1-no-forcing, s1-token-prompt, s1-rejection. It also sets --max-tokens
    /// 32768 and the temperature (greedy; 1 for rejection sampling) unless they are given.
    #[arg(long, conflicts_with_all = ["max_thinking", "waits", "baselines", "min_thinking"])]
    preset: Option<String>,
    /// Use the first N questions
    #[arg(long)]
    limit: Option<usize>,
    /// Thinking budgets to sweep: token counts, `auto`, `unlimited`
    #[arg(long, value_delimiter = ',', default_value = "512,1024,2048")]
    max_thinking: Vec<String>,
    /// Numbers of ignored ends of thinking ("Wait") to sweep
    #[arg(long, value_delimiter = ',', default_value = "0")]
    waits: Vec<String>,
    /// Baselines on the same plot, for each numeric budget: `prompt` ("Think for up to N
    /// tokens." in the prompt, thinking capped at auto only, as s1 ran it) and `reject`
    /// (resample until the thinking ends on its own within the budget).
    /// Majority vote comes from --samples above 1.
    #[arg(long, value_delimiter = ',')]
    baselines: Vec<String>,
    /// Tries per sample for rejection sampling (use a temperature above 0)
    #[arg(long, default_value_t = 8)]
    reject_tries: usize,
    /// Minimum thinking tokens for every setting
    #[arg(long, default_value_t = 0)]
    min_thinking: usize,
    /// Samples per question and setting (seeds seed, seed+1, ...)
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// 0: greedy (s1's evaluation; the default, or the preset's)
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Bound on all tokens generated per sample
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Sequences generated at once (the weights are read once per step for all of them)
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Output folder (samples.jsonl, metrics.json, scaling.svg)
    #[arg(long, default_value = "eval-out")]
    out: PathBuf,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    #[arg(long, default_value = "auto")]
    dtype: String,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let preset = match &a.preset {
        Some(name) => Some(presets::preset(name).map_err(|e| anyhow::anyhow!("--preset: {e}"))?),
        None => None,
    };
    let mut settings = match &preset {
        Some(p) => p.settings.clone(),
        None => sweep::settings_from_lists(&a.max_thinking, &a.waits, a.min_thinking).map_err(anyhow::Error::msg)?,
    };
    let mut methods = Vec::new();
    for b in a.baselines.iter().map(|b| b.trim()).filter(|b| !b.is_empty()) {
        methods.push(match b {
            "prompt" => sweep::Method::TokenPrompt,
            "reject" => sweep::Method::Rejection { tries: a.reject_tries },
            other => bail!("--baselines: `{other}` is not one of prompt, reject"),
        });
    }
    let mut budgets: Vec<crate::generate::MaxThinking> = Vec::new();
    for s in &settings {
        if !budgets.contains(&s.max_thinking) {
            budgets.push(s.max_thinking);
        }
    }
    let extra = sweep::baseline_settings(&budgets, &methods);
    if !methods.is_empty() && extra.is_empty() {
        bail!("--baselines need numeric --max-thinking budgets");
    }
    settings.extend(extra);
    if a.samples == 0 {
        bail!("--samples must be at least 1");
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let cfg = sweep::SweepConfig {
        settings,
        limit: a.limit,
        samples: a.samples,
        temperature: a.temperature.or(preset.as_ref().map(|p| p.temperature)).unwrap_or(0.0),
        top_p: a.top_p,
        seed: a.seed,
        max_new_tokens: a.max_tokens.or(preset.as_ref().map(|p| p.max_new_tokens)),
        batch: a.batch,
        extraction: a.extraction,
    };
    let req = EvalRequest {
        model: a.model.clone(),
        bench: a.bench.clone(),
        kind: a.kind,
        config: cfg,
        out: a.out.clone(),
        device: a.device,
        dtype: parse_dtype(&a.dtype)?,
        endpoint: endpoint(&a)?,
    };
    let cancel = super::cancel_on_ctrlc();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} samples  {msg}  [{elapsed} < {eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut correct, mut generated, mut samples, mut retokenized) = (0usize, 0usize, 0usize, 0usize);
    let mut announced = false;
    let started = std::time::Instant::now();
    let m = eval::run(&req, &cancel, &mut |e| match e {
        EvalEvent::Started { earlier, .. } => samples += earlier.len(),
        EvalEvent::Progress(p) => {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            if !announced && p.resumed > 0 {
                announced = true;
                bar.println(format!(
                    "resuming: {} of {} samples already in samples.jsonl",
                    p.resumed, p.total
                ));
            }
        }
        EvalEvent::Sample(s) => {
            samples += 1;
            correct += (s.verdict == crate::grade::Verdict::Correct) as usize;
            generated += s.thinking_tokens + s.answer_tokens;
            retokenized += s.retokenized as usize;
            bar.set_message(format!("{correct} correct this run"));
        }
        EvalEvent::Finished(_) => bar.finish_and_clear(),
    })
    .map_err(anyhow::Error::msg)?;
    if samples == 0 {
        bail!("no samples were generated");
    }
    let (mpath, ppath) = (req.metrics_path(), req.plot_path());
    println!(
        "{:<28} {:>8} {:>10} {:>12} {:>10}",
        "setting", "samples", "accuracy", "thinking", "in bounds"
    );
    for s in &m.settings {
        println!(
            "{:<28} {:>8} {:>9.1}% {:>12.1} {:>9.0}%",
            s.setting, s.samples, s.accuracy, s.mean_thinking_tokens, s.controlled
        );
    }
    println!(
        "Control {:.1}% of settings in bounds ({:.1}% of runs)  Scaling {}  Performance {:.1}%",
        m.control,
        m.control_runs,
        m.scaling_per_1k_tokens
            .map(|v| format!("{v:.3} points per 1k thinking tokens"))
            .unwrap_or_else(|| "- (one length)".into()),
        m.performance
    );
    let secs = started.elapsed().as_secs_f64();
    if generated > 0 {
        println!(
            "generated {generated} tokens in {secs:.1} s: {:.1} tokens/s (batch {}, prefill included)",
            generated as f64 / secs,
            a.batch
        );
    }
    if retokenized > 0 {
        println!(
            "note: {retokenized} samples went to the endpoint as text that does not tokenize back to s1's ids \
             (a delimiter merged with the text beside it; `retokenized` in samples.jsonl): they may differ from \
             the loop on token ids, which --endpoint-prompts ids sends where the server takes it"
        );
    }
    if cancel.is_cancelled() {
        println!("stopped early; rerun the same command to continue");
    }
    println!(
        "wrote {}, {} and {}",
        req.samples_path().display(),
        mpath.display(),
        ppath.display()
    );
    Ok(())
}

/// The endpoint the arguments name, if any (its key read from --api-key-env).
fn endpoint(a: &EvalArgs) -> anyhow::Result<Option<eval::remote::EvalEndpoint>> {
    let (Some(url), Some(model)) = (&a.endpoint, &a.endpoint_model) else {
        return Ok(None);
    };
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let mut client = eval::endpoint::EndpointClient::new(url);
    client.retries = a.retries;
    if let Some(var) = &a.api_key_env {
        match std::env::var(var) {
            Ok(k) if !k.is_empty() => client.api_key = Some(k),
            _ => bail!("--api-key-env: the environment variable {var} is not set"),
        }
    }
    let mut e = eval::remote::EvalEndpoint::new(client, model, &a.model, a.concurrency);
    e.prompts = eval::remote_request::PromptForm::parse(&a.endpoint_prompts).map_err(anyhow::Error::msg)?;
    for p in &a.endpoint_params {
        let (k, v) = eval::remote_request::parse_param(p).map_err(|e| anyhow::anyhow!("--endpoint-param {e}"))?;
        e.params.insert(k, v);
    }
    Ok(Some(e))
}
