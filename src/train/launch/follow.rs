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

/// The last `n` lines of `text`, without the step lines (they are in the charts already).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(STEP_PREFIX) && !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of the file at `path` (empty when it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(64 * 1024);
    last_lines(&String::from_utf8_lossy(&bytes[start..]), n)
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
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &steps_in_log(&log)).unwrap();
        let text = std::fs::read_to_string(dir.path().join("trainer_log.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
