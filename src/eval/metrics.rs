//! The numbers of a sweep (S1_RECIPE.md §5): per setting accuracy and mean thinking tokens; over
//! the sweep Control (share of runs whose thinking stays within their setting's bounds), Scaling
//! (the average slope over all pairs of settings, accuracy in percent per thinking token, and per
//! 1,000 tokens for reading) and Performance (the best accuracy).

use serde::{Deserialize, Serialize};

use super::sweep::Sample;
use crate::grade::Verdict;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingMetrics {
    pub setting: String,
    pub samples: usize,
    /// Percent correct (undecided and no answer count as not correct).
    pub accuracy: f64,
    pub undecided: usize,
    pub mean_thinking_tokens: f64,
    /// Percent of this setting's runs within [min, max] thinking tokens.
    pub controlled: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepMetrics {
    pub settings: Vec<SettingMetrics>,
    /// Percent of all runs within their setting's [min, max] thinking tokens.
    pub control: f64,
    /// Average over pairs of settings a < b (by mean thinking tokens) of
    /// (accuracy(b) - accuracy(a)) / (tokens(b) - tokens(a)), percent per token; None with
    /// fewer than two settings of different lengths.
    pub scaling: Option<f64>,
    /// The same slope per 1,000 thinking tokens.
    pub scaling_per_1k_tokens: Option<f64>,
    /// The best accuracy of the sweep, percent.
    pub performance: f64,
}

fn within(s: &Sample) -> bool {
    s.thinking_tokens >= s.min_thinking && s.max_thinking.is_none_or(|m| s.thinking_tokens <= m)
}

/// The metrics of `samples`, settings in first-seen order.
pub fn compute(samples: &[Sample]) -> SweepMetrics {
    let mut order: Vec<&str> = Vec::new();
    for s in samples {
        if !order.contains(&s.setting.as_str()) {
            order.push(&s.setting);
        }
    }
    let settings: Vec<SettingMetrics> = order
        .iter()
        .map(|name| {
            let rows: Vec<&Sample> = samples.iter().filter(|s| s.setting == *name).collect();
            let n = rows.len().max(1) as f64;
            SettingMetrics {
                setting: name.to_string(),
                samples: rows.len(),
                accuracy: 100.0 * rows.iter().filter(|s| s.verdict == Verdict::Correct).count() as f64 / n,
                undecided: rows.iter().filter(|s| s.verdict == Verdict::Undecided).count(),
                mean_thinking_tokens: rows.iter().map(|s| s.thinking_tokens as f64).sum::<f64>() / n,
                controlled: 100.0 * rows.iter().filter(|s| within(s)).count() as f64 / n,
            }
        })
        .collect();
    let mut by_len: Vec<(f64, f64)> = settings.iter().map(|m| (m.mean_thinking_tokens, m.accuracy)).collect();
    by_len.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut slopes = Vec::new();
    for i in 0..by_len.len() {
        for j in i + 1..by_len.len() {
            let (a, b) = (by_len[i], by_len[j]);
            if b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    let scaling = (!slopes.is_empty()).then(|| slopes.iter().sum::<f64>() / slopes.len() as f64);
    SweepMetrics {
        control: 100.0 * samples.iter().filter(|s| within(s)).count() as f64 / samples.len().max(1) as f64,
        scaling,
        scaling_per_1k_tokens: scaling.map(|s| s * 1000.0),
        performance: settings.iter().map(|m| m.accuracy).fold(0.0, f64::max),
        settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(setting: &str, tokens: usize, max: Option<usize>, correct: bool) -> Sample {
        Sample {
            setting: setting.into(),
            max_thinking: max,
            thinking_tokens: tokens,
            verdict: if correct { Verdict::Correct } else { Verdict::Incorrect },
            ..Sample::default()
        }
    }

    #[test]
    fn control_scaling_performance_by_hand() {
        // Setting A: 100 tokens, 1/2 correct; B: 300 tokens, 2/2 correct; C: 200 tokens, 0/2,
        // and one of C's runs overshoots its maximum of 200.
        let s = vec![
            sample("A", 100, Some(100), true),
            sample("A", 100, Some(100), false),
            sample("B", 300, Some(300), true),
            sample("B", 300, Some(300), true),
            sample("C", 150, Some(200), false),
            sample("C", 250, Some(200), false),
        ];
        let m = compute(&s);
        assert_eq!(m.settings.len(), 3);
        assert_eq!(m.settings[0].accuracy, 50.0);
        assert_eq!(m.settings[2].mean_thinking_tokens, 200.0);
        assert_eq!(m.settings[2].controlled, 50.0);
        assert!((m.control - 100.0 * 5.0 / 6.0).abs() < 1e-9);
        // pairs by length: A(100,50) C(200,0) B(300,100):
        // (0-50)/100 = -0.5, (100-50)/200 = 0.25, (100-0)/100 = 1.0 -> mean 0.25
        assert!((m.scaling.unwrap() - 0.25).abs() < 1e-12);
        assert!((m.scaling_per_1k_tokens.unwrap() - 250.0).abs() < 1e-9);
        assert_eq!(m.performance, 100.0);
    }
}
