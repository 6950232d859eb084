//! Chat templates: the Jinja template a model ships (`tokenizer_config.json`'s `chat_template`,
//! `chat_template.jinja`, GGUF `tokenizer.chat_template`), rendered with minijinja and Python
//! string methods, as transformers renders it.

use minijinja::{context, Environment, Error, ErrorKind, Value};

use super::error::{ModelError, Result};

/// Qwen2.5's template for conversations without tools (s1 trains and evaluates with it).
pub const QWEN25_TEMPLATE: &str = include_str!("../../assets/chat_templates/qwen2.5.jinja");
/// Plain ChatML, used when a model ships no template.
pub const CHATML_TEMPLATE: &str = include_str!("../../assets/chat_templates/chatml.jinja");

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("len", &self.source.len()).finish()
    }
}

fn raise_exception(msg: String) -> std::result::Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn strftime_now(fmt: String) -> String {
    // Templates use it for "Today Date"; a fixed date keeps prompts reproducible.
    fmt.replace("%d", "26")
        .replace("%b", "Jul")
        .replace("%B", "July")
        .replace("%Y", "2024")
}

impl ChatTemplate {
    /// Compiles `source`; `bos`/`eos` are exposed to it as `bos_token`/`eos_token`.
    pub fn new(source: &str, bos: Option<&str>, eos: Option<&str>) -> Result<Self> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        minijinja_contrib::add_to_environment(&mut env);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        // A template comes from a downloaded file: it runs on an instruction budget.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| ModelError::Template(describe(&e)))?;
        Ok(Self {
            env,
            source: source.to_string(),
            bos_token: bos.unwrap_or_default().to_string(),
            eos_token: eos.unwrap_or_default().to_string(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation; `add_generation_prompt` opens the assistant's turn.
    /// `enable_thinking` is passed for templates that read it (Qwen3).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        enable_thinking: Option<bool>,
    ) -> Result<String> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| ModelError::Template(e.to_string()))?;
        let ctx = match enable_thinking {
            Some(t) => context! {
                messages => messages, add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token, eos_token => self.eos_token, enable_thinking => t,
            },
            None => context! {
                messages => messages, add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token, eos_token => self.eos_token,
            },
        };
        let input: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
        let mut out = CappedWriter {
            buf: Vec::new(),
            cap: OUTPUT_BASE_CAP.saturating_add(input.saturating_mul(4)),
            overflow: false,
        };
        match tmpl.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.buf).map_err(|_| ModelError::Template("output is not UTF-8".into())),
            Err(_) if out.overflow => Err(ModelError::Template(format!(
                "the template's output grew past {} bytes for {input} bytes of messages; \
                 the template is broken or hostile",
                out.cap
            ))),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(ModelError::Template(format!(
                "the template ran past its budget of {TEMPLATE_FUEL} instructions (an endless or \
                 exponential loop?)"
            ))),
            Err(e) => Err(ModelError::Template(describe(&e))),
        }
    }
}

/// Instructions one render may run. Real templates use a few hundred per message
/// (see the tests); an endless loop stops here in well under a second.
pub const TEMPLATE_FUEL: u64 = 2_000_000;
/// Output a render may produce besides four times its messages' bytes.
pub const OUTPUT_BASE_CAP: usize = 4 << 20;

/// A writer that refuses to grow past `cap` bytes (the template output's bound).
struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    overflow: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(b.len()) > self.cap {
            self.overflow = true;
            return Err(std::io::Error::other("template output too large"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A template error in a line: minijinja's own message with its line (its alternate form, which
/// draws the source with a caret under the span, is not used: on some hostile templates its span
/// runs backwards and the drawing panicked, found by the chat_template fuzz target), and the
/// error behind it, if any.
fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen25_template_matches_s1_prompt() {
        let t = ChatTemplate::new(QWEN25_TEMPLATE, None, Some("<|im_end|>")).unwrap();
        let s = t
            .render(&[ChatMessage::new("user", "What is 1+1?")], true, None)
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
             <|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn renders_the_real_qwen3_template() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/tokenizer/qwen3/tokenizer_config.json"
        );
        let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let src = cfg["chat_template"].as_str().unwrap();
        let t = ChatTemplate::new(src, None, Some("<|im_end|>")).unwrap();
        let msgs = [
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "<think>\nhmm\n</think>\n\nHello!"),
            ChatMessage::new("user", "2+2?"),
        ];
        let s = t.render(&msgs, true, Some(false)).unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n\
             <|im_start|>assistant\n<think>\n\n</think>\n\n"
        );
    }

    #[test]
    fn hostile_templates_end_in_a_clear_error() {
        let endless = "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}";
        let quiet = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let huge = "{% for i in range(1000) %}{{ 'x' * 99999999 }}{% endfor %}";
        for (src, want) in [(endless, "grew past"), (quiet, "budget"), (huge, "grew past")] {
            let t = ChatTemplate::new(src, None, None).unwrap();
            let e = t
                .render(&[ChatMessage::new("user", "hi")], true, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{src}: {e}");
        }
    }

    #[test]
    fn long_real_conversations_fit_the_budget() {
        let t = ChatTemplate::new(QWEN25_TEMPLATE, None, Some("<|im_end|>")).unwrap();
        let msgs: Vec<ChatMessage> = (0..2000)
            .map(|i| ChatMessage::new(if i % 2 == 0 { "user" } else { "assistant" }, "x".repeat(1000)))
            .collect();
        let s = t.render(&msgs, true, None).unwrap();
        assert!(s.len() > 2_000_000);
    }

    #[test]
    fn template_errors_are_reported() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", None, None).unwrap();
        let e = t.render(&[], true, None).unwrap_err().to_string();
        assert!(e.contains("no system role"), "{e}");
        assert!(ChatTemplate::new("{% for %}", None, None).is_err());
        // The chat_template fuzz target's find: an error whose span runs backwards (over a
        // carriage return) once made the drawing of the error panic.
        let bytes: Vec<u8> = [
            &b"\x7b\x25\x2d\x20\x66\x6f\x72\x20\x69\x6e\x20\x6d\x65\x73\x73\x61\x67\x65\x73\x20\x25\x7d\x0a\x20"[..],
            &b"\x20\x20\x20\x7b\x7b\x0d\x20\x27\x3c\x7c\x69\x6d\x5f\x73\x74\x61\x72\x74\x7c\x3e\xff\xff\xff\xff"[..],
            &b"\xff\xff\xff\xff\x27\x20\x2b\x20\x6d\x65\x73\x73\x61\x67\x65\x2e\x72\x6f\x6c\x65\x20\x2b\x20\x27"[..],
            &b"\x5c\x6e\x27\x20\x2b\x20\x6d\x65\x73\x73\x61\x67\x65\x2e\x63\x6f\x6e\x74\x65\x6e\x74\x20\x2b\x20"[..],
            &b"\x27\x5f\x65\x6e\x64\x7c\x3e\x5c\x6e\x27\x20\x7d\x7d\x0a\x7b\x25\x2d\x20\x65\x6e\x64\x66\x6f\x72"[..],
            &b"\x20\x25\x7d\x0a\x7b\x25\x2d\x20\x69\x66\x20\x61\x64\x64\x5f\x47\x65\x6e\x65\x72\x61\x74\x69\x6f"[..],
            &b"\x6e\x5f\x70\x72\x6f\x6d\x70\x74\x20\x25\x7d\x0a\x20\x20\x20\x20\x7b\x7b\x2d\x20\x27\x3c\x7c\x69"[..],
            &b"\xea\x5f\x73\x74\x61\x72\x73\x74\x61\x6e\x74\x5c\x6e\x27\x20\x7d\x7d\x0a\x7b\x25\x2d\x20\x65\x6e"[..],
            &b"\x64\x69\x66\x20\x25\x7d\x0a"[..],
        ]
        .concat();
        let src = String::from_utf8_lossy(&bytes);
        let e = match ChatTemplate::new(&src, None, None) {
            Ok(t) => t
                .render(&[ChatMessage::new("user", "Hi")], true, Some(true))
                .unwrap_err(),
            Err(e) => e,
        }
        .to_string();
        assert!(e.contains("cannot unpack") && e.contains("chat:1"), "{e}");
    }
}
