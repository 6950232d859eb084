//! Following a run's step log as it grows: new complete lines of trainer_log.jsonl (a line still
//! being written waits for its newline), the step lines a job prints into its own log
//! (`S1_STUDIO_STEP {json}`, for watchers that only see the log), and a file's last lines for
//! the error of a job that died.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::train::StepRecord;

/// The prefix train.py prints before each step's JSON.
pub const STEP_PREFIX: &str = "S1_STUDIO_STEP ";

/// Reads the records appended to a trainer_log.jsonl since the last poll.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogFollower {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
        }
    }

    /// The records of the lines completed since the last call (a missing file: none yet; a file
    /// that shrank, as a restarted job truncates it: read again from its start). Unreadable
    /// lines are skipped.
    pub fn poll(&mut self) -> Vec<StepRecord> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if f.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            if let Ok(r) = serde_json::from_str::<StepRecord>(line.trim()) {
                out.push(r);
            }
        }
        out
    }
}

/// The step records a job printed into its log (lines starting with [`STEP_PREFIX`]).
pub fn steps_in_log(log: &str) -> Vec<StepRecord> {
    log.lines()
        .filter_map(|l| l.find(STEP_PREFIX).map(|i| &l[i + STEP_PREFIX.len()..]))
        .filter_map(|j| serde_json::from_str(j.trim()).ok())
        .collect()
}

/// `text` without terminal colour codes (Ray colours its task prefixes).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … letter
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of `text`, without the step lines (they are in the charts already).
pub fn last_lines(text: &str, n: usize) -> String {
    let text = plain(text);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(STEP_PREFIX) && !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last Python exception line of a job's log (`FileNotFoundError: …`, also behind
/// torchrun's `[rank0]: ` prefix): torchrun ends a failed job with its own summary, which hides
/// the reason.
pub fn error_line(text: &str) -> Option<String> {
    plain(text).lines().rev().find_map(|l| {
        let mut t = l.trim();
        // Ray prefixes a task's lines with `(task pid=N) `.
        if let Some((_, rest)) = t
            .strip_prefix('(')
            .and_then(|r| r.split_once(") "))
            .filter(|(p, _)| p.contains("pid="))
        {
            t = rest.trim();
        }
        if let Some(rest) = t.strip_prefix("[rank").and_then(|r| r.split_once("]:")) {
            t = rest.1.trim();
        }
        let (head, _) = t.split_once(": ")?;
        let name = head.rsplit('.').next().unwrap_or(head);
        let looks = !head.contains(' ')
            && (name.ends_with("Error") || name.ends_with("Exception") || name == "KeyboardInterrupt");
        looks.then(|| t.chars().take(400).collect())
    })
}

/// A failed job's reason and last lines, from its log text.
pub fn failure(text: &str, n: usize) -> String {
    match error_line(text) {
        Some(e) => format!("{e}\nits last lines:\n{}", last_lines(text, n)),
        None => format!("its last lines:\n{}", last_lines(text, n)),
    }
}

/// Writes `records` as the run's trainer_log.jsonl (whole, replacing it) when they differ from
/// what it holds: a remote job's steps, read from its log, become the local run history.
pub fn write_log(out: &Path, records: &[StepRecord]) -> Result<(), String> {
    let path = out.join(crate::train::runs::LOG);
    let text: String = records
        .iter()
        .map(|r| format!("{}\n", serde_json::to_string(r).unwrap_or_default()))
        .collect();
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    let tmp = out.join(format!("{}.part", crate::train::runs::LOG));
    std::fs::write(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: usize) -> String {
        format!(
            "{{\"step\":{step},\"total_steps\":4,\"loss\":2.0,\"lr\":0.1,\"grad_norm\":1.0,\"epoch\":0.5,\"tokens_per_s\":1.0,\"elapsed\":1.0,\"remaining\":1.0}}"
        )
    }

    #[test]
    fn the_follower_reads_complete_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trainer_log.jsonl");
        let mut f = LogFollower::new(&p);
        assert!(f.poll().is_empty(), "no file yet");
        std::fs::write(&p, format!("{}\n{}", rec(1), &rec(2)[..10])).unwrap();
        assert_eq!(f.poll().iter().map(|r| r.step).collect::<Vec<_>>(), vec![1]);
        std::fs::write(&p, format!("{}\n{}\n{}\n", rec(1), rec(2), rec(3))).unwrap();
        assert_eq!(f.poll().iter().map(|r| r.step).collect::<Vec<_>>(), vec![2, 3]);
        assert!(f.poll().is_empty());
        std::fs::write(&p, format!("{}\n", rec(1))).unwrap();
        assert_eq!(
            f.poll().iter().map(|r| r.step).collect::<Vec<_>>(),
            vec![1],
            "a truncated log is read again"
        );
    }

    #[test]
    fn step_lines_come_out_of_a_job_log() {
        let log = format!(
            "starting\n{STEP_PREFIX}{}\nwarning: x\n(pid=1) {STEP_PREFIX}{}\nTraceback\nboom\n",
            rec(1),
            rec(2)
        );
        assert_eq!(steps_in_log(&log).len(), 2);
        assert_eq!(last_lines(&log, 2), "Traceback\nboom");
        assert_eq!(error_line(&log), None);
        let died = "Traceback\n[rank0]: FileNotFoundError: data/train.parquet\nE1 torch.distributed.elastic: failed (exitcode: 1)\n";
        assert_eq!(
            error_line(died).as_deref(),
            Some("FileNotFoundError: data/train.parquet")
        );
        assert!(failure(died, 1).starts_with("FileNotFoundError: data/train.parquet\nits last lines:\nE1"));
        let ray = "\u{1b}[36m(run pid=1)\u{1b}[0m [rank0]: FileNotFoundError: x\n";
        assert_eq!(error_line(ray).as_deref(), Some("FileNotFoundError: x"));
        assert_eq!(last_lines(ray, 1), "(run pid=1) [rank0]: FileNotFoundError: x");
        assert_eq!(
            error_line("ray.exceptions.RayTaskError: boom").as_deref(),
            Some("ray.exceptions.RayTaskError: boom")
        );
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &steps_in_log(&log)).unwrap();
        let text = std::fs::read_to_string(dir.path().join("trainer_log.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
