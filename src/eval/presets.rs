//! Named sweeps with s1's own settings (eval/commands.sh of simplescaling/s1): the thinking
//! budgets and "Wait" counts of its scaling curves, its ignore-string ablations, its baselines;
//! every one with `max_gen_toks=32768` and greedy decoding, as s1 ran them.

use super::sweep::{Method, Setting, WAIT};
use crate::generate::MaxThinking;

/// s1's `max_gen_toks`: the bound on generated tokens in every command of eval/commands.sh.
pub const S1_MAX_GEN_TOKS: usize = 32_768;

/// The thinking budgets of s1's budget-forcing runs (`max_tokens_thinking`, commands.sh
/// "s1 Budget Forcing"): 500, 1000, 2000, 4000, 8000, 16000 (not powers of two), and `auto`.
pub const S1_BUDGETS: [usize; 6] = [500, 1000, 2000, 4000, 8000, 16000];

/// The `thinking_n_ignore` counts s1 ran with `max_tokens_thinking=auto` and "Wait".
pub const S1_WAITS: [usize; 4] = [1, 2, 4, 6];

/// A named sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    /// What it is and where in s1's commands.sh it comes from.
    pub about: &'static str,
    pub settings: Vec<Setting>,
    /// Bound on all generated tokens per sample.
    pub max_new_tokens: usize,
    /// 0: greedy.
    pub temperature: f64,
}

fn forcing(max: MaxThinking, waits: usize, ignore: &str) -> Setting {
    Setting {
        max_thinking: max,
        waits,
        min_thinking: 0,
        method: Method::Forcing,
        ignore_str: ignore.into(),
    }
}

fn baseline(n: usize, method: Method) -> Setting {
    Setting {
        max_thinking: MaxThinking::Tokens(n),
        waits: 0,
        min_thinking: 0,
        method,
        ignore_str: WAIT.into(),
    }
}

/// The names of [`presets`], in order.
pub const NAMES: [&str; 5] = ["s1", "s1-ablations", "s1-no-forcing", "s1-token-prompt", "s1-rejection"];

/// Tries per sample for the rejection-sampling preset. s1 resamples until every thinking fits
/// (no limit); a sweep needs one.
pub const REJECTION_TRIES: usize = 64;

/// Every preset.
pub fn presets() -> Vec<Preset> {
    let mut s1 = Vec::new();
    for n in S1_BUDGETS {
        s1.push(forcing(MaxThinking::Tokens(n), 0, WAIT));
    }
    s1.push(forcing(MaxThinking::Auto, 0, WAIT));
    for w in S1_WAITS {
        s1.push(forcing(MaxThinking::Auto, w, WAIT));
    }
    vec![
        Preset {
            name: "s1",
            about: "s1's budget-forcing curve (commands.sh \"s1 Budget Forcing\"): max thinking 500, 1000, \
                    2000, 4000, 8000, 16000 and auto; auto with 1, 2, 4, 6 \"Wait\"s",
            settings: s1,
            max_new_tokens: S1_MAX_GEN_TOKS,
            temperature: 0.0,
        },
        Preset {
            name: "s1-ablations",
            about: "s1's extrapolation ablations (commands.sh \"Budget forcing extrapolation ablations\"): \
                    auto with 2 ignored ends and no string, \"Hmm\", \"Alternatively\", and \"Wait\" to compare",
            settings: ["", "Hmm", "Alternatively", WAIT]
                .into_iter()
                .map(|s| forcing(MaxThinking::Auto, 2, s))
                .collect(),
            max_new_tokens: S1_MAX_GEN_TOKS,
            temperature: 0.0,
        },
        Preset {
            name: "s1-no-forcing",
            about: "s1 without budget forcing (commands.sh \"s1 without budget forcing\"): thinking unbounded",
            settings: vec![forcing(MaxThinking::Unlimited, 0, WAIT)],
            max_new_tokens: S1_MAX_GEN_TOKS,
            temperature: 0.0,
        },
        Preset {
            name: "s1-token-prompt",
            about: "token-conditional control (commands.sh PROMPTTOKEN): \"Think for up to N tokens.\" with \
                    N = 2048, 4096, 8192, 16384",
            settings: [2048, 4096, 8192, 16384]
                .into_iter()
                .map(|n| baseline(n, Method::TokenPrompt))
                .collect(),
            max_new_tokens: S1_MAX_GEN_TOKS,
            temperature: 0.0,
        },
        Preset {
            name: "s1-rejection",
            about: "rejection sampling (commands.sh \"s1 Rejection sampling\"): thinking within 3500, 4000, \
                    5000, 6000, 8000, 16000 tokens, temperature 1",
            settings: [3500, 4000, 5000, 6000, 8000, 16000]
                .into_iter()
                .map(|n| baseline(n, Method::Rejection { tries: REJECTION_TRIES }))
                .collect(),
            max_new_tokens: S1_MAX_GEN_TOKS,
            temperature: 1.0,
        },
    ]
}

/// The preset called `name`, or an error listing the names.
pub fn preset(name: &str) -> Result<Preset, String> {
    presets()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("preset `{name}` is not one of {}", NAMES.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings are s1's, by name, as eval/commands.sh ran them.
    #[test]
    fn s1_presets_are_commands_sh() {
        let keys = |name: &str| -> Vec<String> { preset(name).unwrap().settings.iter().map(Setting::key).collect() };
        assert_eq!(
            keys("s1"),
            [
                "max=500 waits=0",
                "max=1000 waits=0",
                "max=2000 waits=0",
                "max=4000 waits=0",
                "max=8000 waits=0",
                "max=16000 waits=0",
                "max=auto waits=0",
                "max=auto waits=1",
                "max=auto waits=2",
                "max=auto waits=4",
                "max=auto waits=6",
            ]
        );
        assert_eq!(
            keys("s1-ablations"),
            [
                "max=auto waits=2 ignore=none",
                "max=auto waits=2 ignore=Hmm",
                "max=auto waits=2 ignore=Alternatively",
                "max=auto waits=2",
            ]
        );
        assert_eq!(keys("s1-no-forcing"), ["max=unlimited waits=0"]);
        assert_eq!(keys("s1-token-prompt")[0], "prompt max=2048");
        assert_eq!(keys("s1-rejection").len(), 6);
        for p in presets() {
            assert_eq!(p.max_new_tokens, 32_768, "{}", p.name);
            let greedy = p.name != "s1-rejection";
            assert_eq!(p.temperature == 0.0, greedy, "{}", p.name);
        }
        assert_eq!(presets().iter().map(|p| p.name).collect::<Vec<_>>(), NAMES);
        assert!(preset("s2").unwrap_err().contains("s1, s1-ablations"));
    }
}
