//! The numbers of a sweep (S1_RECIPE.md §5): per setting accuracy and mean thinking tokens; over
//! the sweep Control (the paper's: the share of the evaluated settings whose thinking stays within
//! their bounds, a setting being in bounds when every one of its runs is; the share of runs is
//! kept as a second figure, `control_runs`), Scaling (the average slope over all pairs of
//! settings, in accuracy percentage points per thinking token, and per 1,000 thinking tokens for
//! reading) and Performance (the best accuracy). The units are written into metrics.json.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::sweep::{Sample, Setting};
use crate::grade::normalize::normalize;
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
    /// Every run of this setting within [min, max] thinking tokens (what Control counts).
    #[serde(default)]
    pub in_bounds: bool,
    /// Which curve the setting belongs to (budget forcing, or a baseline).
    pub series: String,
    /// With several samples per question: percent of questions whose most common answer is
    /// correct (parallel scaling by majority vote).
    pub majority_accuracy: Option<f64>,
    /// Thinking tokens spent per question, all its samples together (majority vote's x-axis).
    pub mean_total_thinking_tokens: f64,
}

/// Control, Scaling and Performance of one curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesMetrics {
    pub series: String,
    /// Percent of the series' settings in bounds (the paper's Control).
    pub control: f64,
    /// Percent of the series' runs in bounds.
    #[serde(default)]
    pub control_runs: f64,
    pub scaling: Option<f64>,
    pub scaling_per_1k_tokens: Option<f64>,
    pub performance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepMetrics {
    pub settings: Vec<SettingMetrics>,
    /// The paper's Control: percent of the evaluated settings whose runs all stay within the
    /// setting's [min, max] thinking tokens.
    pub control: f64,
    /// Percent of all runs within their setting's [min, max] thinking tokens (a second figure).
    #[serde(default)]
    pub control_runs: f64,
    /// Average over pairs of settings a < b (by mean thinking tokens) of
    /// (accuracy(b) - accuracy(a)) / (tokens(b) - tokens(a)), percent per token; None with
    /// fewer than two settings of different lengths.
    pub scaling: Option<f64>,
    /// The same slope per 1,000 thinking tokens.
    pub scaling_per_1k_tokens: Option<f64>,
    /// The best accuracy of the sweep, percent.
    pub performance: f64,
    /// The same three numbers per curve (budget forcing and each baseline present).
    pub series: Vec<SeriesMetrics>,
    /// What each headline number measures, in words (written into metrics.json).
    #[serde(default = "Units::new")]
    pub units: Units,
}

/// The units of the headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Units {
    pub control: String,
    pub control_runs: String,
    pub scaling: String,
    pub scaling_per_1k_tokens: String,
    pub performance: String,
}

/// Scaling's unit as the plot and the CLI state it.
pub const SCALING_PER_1K_UNIT: &str = "accuracy points per 1k thinking tokens";

impl Units {
    pub fn new() -> Self {
        Self {
            control: "percent of the evaluated settings whose every run keeps its thinking tokens within the \
                      setting's [min, max]"
                .into(),
            control_runs: "percent of all runs whose thinking tokens are within their setting's [min, max]".into(),
            scaling: "accuracy percentage points per thinking token: the mean over all pairs of settings a < b \
                      (by mean thinking tokens) of (accuracy(b) - accuracy(a)) / (tokens(b) - tokens(a))"
                .into(),
            scaling_per_1k_tokens: "accuracy percentage points per 1,000 thinking tokens (scaling x 1000)".into(),
            performance: "percent correct of the best setting".into(),
        }
    }
}

impl Default for Units {
    fn default() -> Self {
        Self::new()
    }
}

fn within(s: &Sample) -> bool {
    s.thinking_tokens >= s.min_thinking && s.max_thinking.is_none_or(|m| s.thinking_tokens <= m)
}

/// Percent of questions whose most common normalised answer is graded correct (ties: the
/// answer seen first); None with one sample per question.
fn majority(rows: &[&Sample]) -> Option<f64> {
    let mut by_q: HashMap<&str, Vec<&Sample>> = HashMap::new();
    for s in rows {
        by_q.entry(s.question_id.as_str()).or_default().push(s);
    }
    if by_q.values().all(|v| v.len() < 2) {
        return None;
    }
    let correct = by_q
        .values()
        .filter(|v| {
            // answer -> (votes, the verdict of its first sample, the order it was first seen)
            let mut votes: HashMap<String, (usize, Verdict, usize)> = HashMap::new();
            for (i, s) in v.iter().enumerate() {
                let Some(a) = &s.extracted else { continue };
                votes.entry(normalize(a)).or_insert((0, s.verdict, i)).0 += 1;
            }
            votes
                .values()
                .max_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)))
                .is_some_and(|v| v.1 == Verdict::Correct)
        })
        .count();
    Some(100.0 * correct as f64 / by_q.len() as f64)
}

/// A named curve: points (tokens, accuracy, setting).
pub type Curve<'a> = (String, Vec<(f64, f64, &'a str)>);

/// The curves to plot: one per series (mean thinking tokens, accuracy, setting), and majority
/// vote (all the tokens a question's samples spent, majority accuracy) where there is one;
/// points in order of tokens.
pub fn curves(m: &SweepMetrics) -> Vec<Curve<'_>> {
    let mut out: Vec<Curve> = Vec::new();
    for st in &m.settings {
        let mut points = vec![(st.series.as_str(), st.mean_thinking_tokens, st.accuracy)];
        if let Some(maj) = st.majority_accuracy {
            points.push(("majority vote", st.mean_total_thinking_tokens, maj));
        }
        for (name, x, y) in points {
            let p = (x, y, st.setting.as_str());
            match out.iter_mut().find(|c| c.0 == name) {
                Some(c) => c.1.push(p),
                None => out.push((name.to_string(), vec![p])),
            }
        }
    }
    for c in &mut out {
        c.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Control, Scaling and Performance over the settings `ms` and their `samples`.
fn series_metrics(series: &str, ms: &[&SettingMetrics], samples: &[&Sample]) -> SeriesMetrics {
    let mut by_len: Vec<(f64, f64)> = ms.iter().map(|m| (m.mean_thinking_tokens, m.accuracy)).collect();
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
    SeriesMetrics {
        series: series.to_string(),
        control: 100.0 * ms.iter().filter(|m| m.in_bounds).count() as f64 / ms.len().max(1) as f64,
        control_runs: 100.0 * samples.iter().filter(|s| within(s)).count() as f64 / samples.len().max(1) as f64,
        scaling,
        scaling_per_1k_tokens: scaling.map(|s| s * 1000.0),
        performance: ms.iter().map(|m| m.accuracy).fold(0.0, f64::max),
    }
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
                in_bounds: rows.iter().all(|s| within(s)),
                series: Setting::series(name).to_string(),
                majority_accuracy: majority(&rows),
                mean_total_thinking_tokens: {
                    let questions: std::collections::HashSet<&str> =
                        rows.iter().map(|s| s.question_id.as_str()).collect();
                    rows.iter().map(|s| s.thinking_tokens as f64).sum::<f64>() / questions.len().max(1) as f64
                },
            }
        })
        .collect();
    let mut names: Vec<&str> = Vec::new();
    for m in &settings {
        if !names.contains(&m.series.as_str()) {
            names.push(&m.series);
        }
    }
    let series: Vec<SeriesMetrics> = names
        .iter()
        .map(|name| {
            let ms: Vec<&SettingMetrics> = settings.iter().filter(|m| m.series == *name).collect();
            let rows: Vec<&Sample> = samples
                .iter()
                .filter(|s| Setting::series(&s.setting) == *name)
                .collect();
            series_metrics(name, &ms, &rows)
        })
        .collect();
    // The headline numbers are budget forcing's (all settings when there is none).
    let main = series
        .iter()
        .find(|s| s.series == "budget forcing")
        .cloned()
        .unwrap_or_else(|| {
            let ms: Vec<&SettingMetrics> = settings.iter().collect();
            let rows: Vec<&Sample> = samples.iter().collect();
            series_metrics("all", &ms, &rows)
        });
    SweepMetrics {
        control: main.control,
        control_runs: main.control_runs,
        units: Units::new(),
        scaling: main.scaling,
        scaling_per_1k_tokens: main.scaling_per_1k_tokens,
        performance: main.performance,
        settings,
        series,
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
        let mut s = s;
        for (i, x) in s.iter_mut().enumerate() {
            x.question_id = i.to_string();
        }
        let m = compute(&s);
        assert_eq!(m.settings.len(), 3);
        assert_eq!(m.settings[0].accuracy, 50.0);
        assert_eq!(m.settings[2].mean_thinking_tokens, 200.0);
        assert_eq!(m.settings[2].controlled, 50.0);
        assert!(m.settings[0].in_bounds && m.settings[1].in_bounds && !m.settings[2].in_bounds);
        // The paper's Control counts settings: 2 of 3 keep every run in bounds; the share of
        // runs (5 of 6) is the second figure.
        assert!((m.control - 100.0 * 2.0 / 3.0).abs() < 1e-9, "{}", m.control);
        assert!((m.control_runs - 100.0 * 5.0 / 6.0).abs() < 1e-9);
        // pairs by length: A(100,50) C(200,0) B(300,100):
        // (0-50)/100 = -0.5, (100-50)/200 = 0.25, (100-0)/100 = 1.0 -> mean 0.25
        assert!((m.scaling.unwrap() - 0.25).abs() < 1e-12);
        assert!((m.scaling_per_1k_tokens.unwrap() - 250.0).abs() < 1e-9);
        assert_eq!(m.performance, 100.0);
        assert_eq!(m.series.len(), 1);
        assert_eq!(m.settings[0].majority_accuracy, None, "one sample per question");
    }

    #[test]
    fn majority_vote_and_baseline_series() {
        let mut s = Vec::new();
        // Question 1: answers 2, 2, 3 (2 is correct) -> majority correct; question 2: 5, 7, 7
        // (5 is correct) -> majority wrong.
        for (q, ans, correct) in [
            ("1", "2", true),
            ("1", "2.0", true),
            ("1", "3", false),
            ("2", "5", true),
            ("2", "7", false),
            ("2", "7", false),
        ] {
            let mut x = sample("max=100 waits=0", 50, Some(100), correct);
            x.question_id = q.into();
            x.extracted = Some(ans.into());
            s.push(x);
        }
        s.push(sample("prompt max=100", 150, Some(100), true));
        s.push(sample("prompt max=200", 150, Some(200), false));
        let m = compute(&s);
        let f = &m.settings[0];
        assert_eq!(f.majority_accuracy, Some(50.0));
        assert_eq!(f.accuracy, 50.0);
        assert_eq!(
            f.mean_total_thinking_tokens, 150.0,
            "3 samples x 50 tokens per question"
        );
        assert_eq!(
            m.series.iter().map(|x| x.series.as_str()).collect::<Vec<_>>(),
            ["budget forcing", "token-conditional prompt"]
        );
        let p = &m.series[1];
        assert_eq!(p.control, 50.0, "150 tokens overran the budget of 100: 1 of 2 settings");
        assert_eq!(p.control_runs, 50.0);
        assert_eq!(p.scaling, None, "both prompt settings used 150 tokens");
        assert_eq!(m.control, 100.0, "the headline numbers are budget forcing's");
    }
}
