//! The difficulty judge as s1's featurization.py asks and reads it: s1's grading prompt
//! (data/grading.txt) as the system message, the problem, the attempt and the correct answer as
//! the user's, and a reply that counts only when the text after its last newline is exactly `Yes`
//! or `No` (else s1 asks again).

use crate::grade::Verdict;

/// How the judge is asked and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JudgeOptions {
    /// Asks again this many times when a reply does not end as the protocol says. s1
    /// (featurization.py `_process_example_grading`) asks again without limit, a minute apart; a
    /// question still undecided after these is recorded `undecided` (and, under the s1 preset,
    /// dropped by the funnel, as s1's missing grade would be).
    pub retries: usize,
    /// Read the reply leniently ([`judge_verdict_lenient`]) instead of s1's exact last line.
    pub lenient: bool,
}

/// The studio's default number of judge retries (s1: unlimited).
pub const JUDGE_RETRIES: usize = 10;

impl Default for JudgeOptions {
    fn default() -> Self {
        Self {
            retries: JUDGE_RETRIES,
            lenient: false,
        }
    }
}

/// s1's grading prompt (data/grading.txt), sent as the system message.
pub const JUDGE_SYSTEM: &str = include_str!("../../assets/curate/grading.txt");

/// The judge's user message, as s1's featurization.py builds it.
pub fn judge_prompt(question: &str, attempt: &str, solution: &str) -> String {
    format!("## Problem\n{question}\n\n## Attempt\n{attempt}\n\n## Correct answer\n{solution}")
}

/// s1's reading of a judge's reply (featurization.py: `completion.split('\n')[-1] in ["Yes",
/// "No"]`): the text after the last newline must be exactly `Yes` or `No`, nothing around it (a
/// trailing newline or `**Yes**` is not an answer, and s1 asks again).
pub fn judge_verdict(reply: &str) -> Verdict {
    match reply.rsplit('\n').next().unwrap_or("") {
        "Yes" => Verdict::Correct,
        "No" => Verdict::Incorrect,
        _ => Verdict::Undecided,
    }
}

/// A lenient reading (an option): the last non-empty line, stripped of markup and case, is yes or
/// no.
pub fn judge_verdict_lenient(reply: &str) -> Verdict {
    let last = reply.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let word: String = last
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "yes" => Verdict::Correct,
        "no" => Verdict::Incorrect,
        _ => Verdict::Undecided,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_verdicts_as_s1_reads_them() {
        assert_eq!(judge_verdict("The attempt matches.\n\nYes"), Verdict::Correct);
        assert_eq!(judge_verdict("No"), Verdict::Incorrect);
        // Anything else on the last line, or after it, and s1 asks again.
        for r in [
            "Wrong value.\n**No**.\n",
            "Correct.\nYes\n",
            "Correct.\nyes",
            "Correct.\nYes.",
            "Yes, but then no idea",
            "x\n Yes",
            "x\nYes\r",
        ] {
            assert_eq!(judge_verdict(r), Verdict::Undecided, "{r:?}");
        }
        assert_eq!(judge_verdict_lenient("Wrong value.\n**No**.\n"), Verdict::Incorrect);
        assert_eq!(judge_verdict_lenient("Correct.\nYes\n"), Verdict::Correct);
        assert_eq!(judge_verdict_lenient("Yes, but then no idea"), Verdict::Undecided);
    }

    #[test]
    fn the_judge_is_asked_as_s1_asks() {
        assert_eq!(JUDGE_SYSTEM, include_str!("../../assets/curate/grading.txt"));
        assert!(JUDGE_SYSTEM.starts_with("You are an AI assistant for grading a science problem."));
        assert!(JUDGE_SYSTEM.ends_with("with only \"Yes\" or \"No\" (without quotes)."));
        assert_eq!(
            judge_prompt("Q?", "A.", "S."),
            "## Problem\nQ?\n\n## Attempt\nA.\n\n## Correct answer\nS."
        );
    }
}
