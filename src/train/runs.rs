//! Run folders as the app and the CLI see them, so that a new run never overwrites an old one:
//! whether a folder already holds a run, the next free suffixed folder (`run-2`, `run-3`, ...),
//! moving a run aside (`<folder>.replaced-<UTC time>`) instead of deleting it, a run's name
//! (run.json, the folder name by default), and reading a run's log and checkpoints tolerantly
//! (a cut-short or malformed log is read as far as it goes, with a note).

use std::path::{Path, PathBuf};

use super::StepRecord;

/// The step log of a run folder.
pub const LOG: &str = "trainer_log.jsonl";
/// A run's metadata (its name), written by the app when a run is renamed.
pub const META: &str = "run.json";

/// The `checkpoint-N` folders of `out` that are complete (with a trainer_state.json), by step.
pub fn checkpoints(out: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    let mut all: Vec<(usize, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let step: usize = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()?;
            let dir = e.path();
            dir.join("trainer_state.json").exists().then_some((step, dir))
        })
        .collect();
    all.sort();
    all
}

/// Whether `out` holds a run that starting afresh would overwrite: a non-empty trainer_log.jsonl
/// or a checkpoint folder.
pub fn holds_run(out: &Path) -> bool {
    let log = std::fs::metadata(out.join(LOG)).map(|m| m.len() > 0).unwrap_or(false);
    log || !checkpoints(out).is_empty()
}

/// `out` itself when it holds no run, else the first of `<base>-2`, `<base>-3`, ... that does
/// not exist, where `<base>` is `out` without a `-N` suffix it already has (so `run-2` gives `run-3`).
pub fn next_free(out: &Path) -> PathBuf {
    if !holds_run(out) {
        return out.to_path_buf();
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let (base, first) = match name.rsplit_once('-') {
        Some((b, n)) if !b.is_empty() && n.parse::<usize>().is_ok_and(|n| n >= 2) => {
            (b.to_string(), n.parse::<usize>().unwrap_or(1) + 1)
        }
        _ => (name, 2),
    };
    (first..)
        .map(|i| out.with_file_name(format!("{base}-{i}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| out.to_path_buf())
}

/// The current UTC time as `YYYYMMDD-HHMMSS`.
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Moves the run in `out` aside to `<out>.replaced-<UTC time>` (a sibling, never deleted) and
/// returns where it went. Errors name both folders.
pub fn move_aside(out: &Path) -> Result<PathBuf, String> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stamp = utc_stamp();
    let mut to = out.with_file_name(format!("{name}.replaced-{stamp}"));
    let mut i = 2;
    while to.exists() {
        to = out.with_file_name(format!("{name}.replaced-{stamp}-{i}"));
        i += 1;
    }
    std::fs::rename(out, &to)
        .map_err(|e| format!("could not move {} aside to {}: {e}", out.display(), to.display()))?;
    Ok(to)
}

/// A run's name: run.json's `name`, else the folder name.
pub fn run_name(out: &Path) -> String {
    std::fs::read_to_string(out.join(META))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            out.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        })
}

/// Writes a run's name into its run.json (other keys kept).
pub fn set_run_name(out: &Path, name: &str) -> Result<(), String> {
    let p = out.join(META);
    let mut v = std::fs::read_to_string(&p)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(|v| v.is_object())
        .unwrap_or_else(|| serde_json::json!({}));
    v["name"] = serde_json::Value::String(name.trim().to_string());
    let text = serde_json::to_string_pretty(&v).map_err(|e| format!("{}: {e}", p.display()))?;
    std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
}

/// An earlier run as read from its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub out: PathBuf,
    pub name: String,
    /// `[step, loss]` from trainer_log.jsonl, lines that could be read.
    pub losses: Vec<[f64; 2]>,
    /// The last step logged (the highest step of a readable line); 0 when none.
    pub steps: usize,
    /// The run's planned steps, as its log says.
    pub total_steps: usize,
    /// Complete checkpoints, by step.
    pub checkpoints: Vec<(usize, PathBuf)>,
    /// What could not be read (a malformed or cut-short line, a missing log).
    pub notes: Vec<String>,
}

impl RunRecord {
    /// The newest checkpoint.
    pub fn checkpoint(&self) -> Option<&Path> {
        self.checkpoints.last().map(|(_, p)| p.as_path())
    }
}

/// Reads the run in `out`, as much of it as can be read; None when the folder holds no run.
pub fn read_run(out: &Path) -> Option<RunRecord> {
    if !holds_run(out) {
        return None;
    }
    let mut notes = Vec::new();
    let (mut losses, mut steps, mut total_steps) = (Vec::new(), 0, 0);
    match std::fs::read(out.join(LOG)) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let ends_cleanly = text.is_empty() || text.ends_with('\n');
            let lines: Vec<&str> = text.lines().collect();
            let mut bad = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                if l.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<StepRecord>(l) {
                    Ok(r) => {
                        losses.push([r.step as f64, r.loss]);
                        steps = steps.max(r.step);
                        total_steps = r.total_steps;
                    }
                    Err(_) if i + 1 == lines.len() && !ends_cleanly => {
                        notes.push(format!("{LOG} ends in a cut-short line {} (left out)", i + 1))
                    }
                    Err(_) => bad.push(i + 1),
                }
            }
            if !bad.is_empty() {
                let shown: Vec<String> = bad.iter().take(5).map(|n| n.to_string()).collect();
                notes.push(format!(
                    "{} malformed line{} in {LOG} left out (line {}{})",
                    bad.len(),
                    if bad.len() == 1 { "" } else { "s" },
                    shown.join(", "),
                    if bad.len() > 5 { ", …" } else { "" }
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => notes.push(format!("no {LOG}")),
        Err(e) => notes.push(format!("{LOG}: {e}")),
    }
    let checkpoints = checkpoints(out);
    if let Some((last, _)) = checkpoints.last() {
        if *last > steps {
            notes.push(format!("checkpoint-{last} is past the last logged step {steps}"));
            steps = *last;
        }
    }
    Some(RunRecord {
        out: out.to_path_buf(),
        name: run_name(out),
        losses,
        steps,
        total_steps,
        checkpoints,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: usize) -> String {
        format!(
            "{{\"step\":{step},\"total_steps\":6,\"loss\":2.5,\"lr\":0.1,\"grad_norm\":1.0,\"epoch\":0.5,\"tokens_per_s\":1.0,\"elapsed\":1.0,\"remaining\":1.0}}\n"
        )
    }

    fn checkpoint(out: &Path, step: usize) {
        let c = out.join(format!("checkpoint-{step}"));
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("trainer_state.json"), "{}").unwrap();
    }

    #[test]
    fn a_run_is_read_by_its_last_step_with_notes_for_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        std::fs::create_dir_all(&out).unwrap();
        assert!(read_run(&out).is_none(), "an empty folder is no run");
        let log = format!("{}not json\n{}{}{{\"step\":4,\"lo", line(1), line(2), line(3));
        std::fs::write(out.join(LOG), log).unwrap();
        checkpoint(&out, 2);
        checkpoint(&out, 3);
        std::fs::create_dir_all(out.join("checkpoint-9")).unwrap();
        let r = read_run(&out).unwrap();
        assert_eq!((r.steps, r.total_steps, r.losses.len()), (3, 6, 3));
        assert_eq!(r.checkpoints.iter().map(|c| c.0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(r.checkpoint(), Some(out.join("checkpoint-3").as_path()));
        assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
        assert!(r.notes.iter().any(|n| n.contains("line 2")), "{:?}", r.notes);
        assert!(r.notes.iter().any(|n| n.contains("cut-short line 5")), "{:?}", r.notes);
        assert_eq!(r.name, "run");
        set_run_name(&out, "  first try ").unwrap();
        assert_eq!(read_run(&out).unwrap().name, "first try");
    }

    #[test]
    fn checkpoints_without_a_log_are_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        checkpoint(&out, 4);
        let r = read_run(&out).unwrap();
        assert_eq!(r.steps, 4);
        assert!(
            r.notes.iter().any(|n| n.contains("no trainer_log.jsonl")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn next_free_counts_up_and_move_aside_keeps_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        assert_eq!(next_free(&out), out, "a missing folder is free");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(LOG), line(1)).unwrap();
        assert_eq!(next_free(&out), dir.path().join("run-2"));
        std::fs::create_dir_all(dir.path().join("run-2")).unwrap();
        assert_eq!(next_free(&out), dir.path().join("run-3"));
        std::fs::create_dir_all(dir.path().join("run-3")).unwrap();
        std::fs::write(dir.path().join("run-3").join(LOG), line(1)).unwrap();
        assert_eq!(next_free(&dir.path().join("run-3")), dir.path().join("run-4"));
        let to = move_aside(&out).unwrap();
        assert!(!out.exists());
        let name = to.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("run.replaced-") && name.len() == "run.replaced-".len() + 15,
            "{name}"
        );
        assert_eq!(std::fs::read_to_string(to.join(LOG)).unwrap(), line(1));
    }
}
