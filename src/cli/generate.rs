use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::generate::conversation::waits_label;
use crate::generate::{
    chat, BudgetConfig, GenerateParams, InjectionKind, MaxThinking, PastMax, SamplingParams, StreamEvent,
    ThinkingFormat,
};
use crate::model::{load_model, ChatMessage, LoadOptions};
use crate::model::{parse_dtype, DeviceChoice};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A Hugging Face model folder or a .gguf file
    #[arg(long)]
    model: PathBuf,
    /// The user's message
    #[arg(long)]
    prompt: String,
    /// System prompt (default: the chat template's own)
    #[arg(long)]
    system: Option<String>,
    /// Minimum thinking tokens: earlier ends of thinking are replaced by the ignore string
    #[arg(long, default_value_t = 0)]
    min_thinking: usize,
    /// Maximum thinking tokens: a number, `auto` (s1's rule) or `unlimited`
    #[arg(long, default_value = "unlimited")]
    max_thinking: MaxThinking,
    /// Ignore the end of thinking this many times (s1's thinking_n_ignore)
    #[arg(long, default_value_t = 0)]
    waits: usize,
    /// The string appended in place of an ignored end of thinking
    #[arg(long, default_value = "Wait")]
    ignore_str: String,
    /// Appended after the answer delimiter when the budget forces the end
    #[arg(long, default_value = "Final Answer:")]
    final_answer: String,
    /// When ignored ends push the thinking to the maximum: `s1` (its loop: the rounds go on
    /// unseen, the thinking is cut at the maximum and ends as the last round did) or `cut`
    /// (force the end at once)
    #[arg(long, default_value = "s1")]
    past_max: PastMax,
    /// No thinking: answer directly
    #[arg(long)]
    no_think: bool,
    /// Thinking delimiters: s1 (<|im_start|>think / <|im_start|>answer), think-tags (<think>…</think>), or auto
    /// (detected from the model's chat template and tokenizer)
    #[arg(long, default_value = "auto", value_parser = ["auto", "s1", "think-tags"])]
    format: String,
    /// Sampling temperature; 0 is greedy
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// 0 keeps every token
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Bound on all tokens generated after the prompt (default: up to the context length)
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Print one JSON object instead of streaming
    #[arg(long)]
    json: bool,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// auto (f32 on CPU, bf16 on CUDA), f32, bf16, f16
    #[arg(long, default_value = "auto")]
    dtype: String,
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    let opts = LoadOptions {
        device: a.device.open()?,
        dtype: parse_dtype(&a.dtype)?,
        dequantize: false,
    };
    let model = load_model(&a.model, &opts).with_context(|| format!("loading {}", a.model.display()))?;
    let style = model.thinking_style();
    let format = match a.format.as_str() {
        "s1" => ThinkingFormat::s1(),
        "think-tags" => ThinkingFormat::think_tags(),
        _ => ThinkingFormat::for_style(&style),
    };
    let params = GenerateParams {
        sampling: SamplingParams {
            temperature: a.temperature,
            top_p: a.top_p,
            top_k: a.top_k,
            seed: a.seed,
        },
        budget: BudgetConfig {
            thinking: !a.no_think,
            min_thinking: a.min_thinking,
            max_thinking: a.max_thinking,
            num_ignore: a.waits,
            ignore_str: a.ignore_str.clone(),
            final_answer: a.final_answer.clone(),
            format,
            past_max: a.past_max,
        },
        max_new_tokens: a.max_tokens,
        auto_prompt_tokens: None,
    };
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(ChatMessage::new("system", s));
    }
    messages.push(ChatMessage::new("user", &a.prompt));

    let cancel = super::cancel_on_ctrlc();

    if a.json {
        let gen = chat(&model, &messages, &params, &cancel, &mut |_| {})?;
        let mut v = serde_json::to_value(&gen)?;
        v["model"] = serde_json::Value::String(a.model.display().to_string());
        v["thinking_style"] = serde_json::to_value(style)?;
        v["format"] = serde_json::to_value(&params.budget.format)?;
        // waits_injected counts both kinds; say the Waits setting's apart from the minimum's.
        v["waits_from_setting"] =
            serde_json::Value::from(gen.waits_injected - gen.waits_for_min.min(gen.waits_injected));
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }

    let style = Style {
        on: std::io::stdout().is_terminal(),
    };
    let mut out = std::io::stdout().lock();
    let mut section = None::<bool>; // Some(true) = thinking
    let mut highlight_next = false;
    let gen = chat(&model, &messages, &params, &cancel, &mut |ev| {
        let _ = match ev {
            StreamEvent::Thinking(d) => {
                if section != Some(true) {
                    section = Some(true);
                    let _ = writeln!(out, "{}", style.paint("2", "── thinking ──"));
                }
                if highlight_next {
                    highlight_next = false;
                    write!(out, "{}", style.paint("1;33", d))
                } else {
                    write!(out, "{}", style.paint("2", d))
                }
            }
            StreamEvent::Answer(d) => {
                if section != Some(false) {
                    section = Some(false);
                    let _ = writeln!(out, "\n{}", style.paint("2", "── answer ──"));
                }
                write!(out, "{d}")
            }
            StreamEvent::Injected { injection: inj, .. } => match inj.kind {
                InjectionKind::Ignore => {
                    highlight_next = true;
                    Ok(())
                }
                InjectionKind::ForcedEnd => write!(
                    out,
                    "{}",
                    style.paint(
                        "1;31",
                        &format!("\n[thinking budget reached after {} tokens]", inj.at_thinking_token)
                    )
                ),
                _ => Ok(()),
            },
            StreamEvent::Counts { .. } => Ok(()),
        };
        let _ = out.flush();
    })?;
    writeln!(out)?;
    eprintln!(
        "{}",
        style.paint(
            "2",
            &format!(
                "[{} thinking + {} answer tokens, {}, forced end: {}, {:.1} tokens/s, stop: {:?}]",
                gen.thinking_tokens,
                gen.answer_tokens,
                waits_label(gen.waits_injected, gen.waits_for_min),
                gen.forced_end,
                gen.tokens_per_s,
                gen.stop_reason
            )
        )
    );
    Ok(())
}
