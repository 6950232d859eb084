//! The Curate table's picked rows (the multi-selection the bulk Include / Exclude / Clear act
//! on), as a file manager's: a click picks one row, Ctrl/Cmd-click adds or removes one, and
//! Shift-click picks the rows from the last clicked one to this one in the table's order. Also
//! each step's last result, shown beside its button. No drawing here.

use std::collections::BTreeSet;

use crate::curate::steps::snapshot::PoolRow;

/// How a row was clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClickKind {
    /// Ctrl (Cmd on macOS): add or remove this row.
    pub toggle: bool,
    /// Shift: the range from the anchor (the row clicked last) to this row.
    pub range: bool,
}

/// The picked rows, by key (stable across sorting, filtering and new snapshots).
#[derive(Debug, Clone, Default)]
pub struct Picked {
    pub keys: BTreeSet<String>,
    /// The row a Shift-click ranges from.
    anchor: Option<String>,
    /// Bumped on every change (what the map's drawing is keyed on).
    version: u64,
}

impl Picked {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.anchor = None;
        self.version += 1;
    }

    /// How many changes there were: equal versions, the same picked rows.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Picks exactly `keys` (a box on the map), with no anchor.
    pub fn set(&mut self, keys: impl IntoIterator<Item = String>) {
        self.keys = keys.into_iter().collect();
        self.anchor = None;
        self.version += 1;
    }

    /// A click on `key`; `visible` and `rows` are the table's rows in the order shown (a range
    /// is taken in that order). A range whose anchor is not shown (filtered out) picks `key` alone.
    pub fn click(&mut self, key: &str, how: ClickKind, visible: &[usize], rows: &[PoolRow]) {
        self.version += 1;
        let at = |k: &str| visible.iter().position(|&i| rows.get(i).is_some_and(|r| r.key == k));
        if how.range {
            if let (Some(a), Some(b)) = (self.anchor.as_deref().and_then(at), at(key)) {
                if !how.toggle {
                    self.keys.clear();
                }
                let (lo, hi) = (a.min(b), a.max(b));
                for &i in &visible[lo..=hi] {
                    if let Some(r) = rows.get(i) {
                        self.keys.insert(r.key.clone());
                    }
                }
                return;
            }
        }
        if how.toggle && !how.range {
            if !self.keys.remove(key) {
                self.keys.insert(key.to_string());
            }
        } else {
            self.keys.clear();
            self.keys.insert(key.to_string());
        }
        self.anchor = Some(key.to_string());
    }
}

/// What a step's button shows beside it once the step ended (until it runs again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// "done: 1,000 selected", or "failed: ..." .
    pub text: String,
    pub failed: bool,
    /// One line per file or entry that could not be used ("PATH: PROBLEM").
    pub problems: Vec<String>,
}

impl StepResult {
    pub fn done(headline: &str, problems: Vec<String>) -> Self {
        Self {
            text: format!("done: {headline}"),
            failed: false,
            problems,
        }
    }

    pub fn failed(error: &str, problems: Vec<String>) -> Self {
        Self {
            text: format!("failed: {error}"),
            failed: true,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<PoolRow> {
        (0..n)
            .map(|i| PoolRow {
                key: format!("k{i}"),
                ..Default::default()
            })
            .collect()
    }

    fn keys(p: &Picked) -> Vec<&str> {
        p.keys.iter().map(String::as_str).collect()
    }

    #[test]
    fn click_toggle_and_range_in_the_order_shown() {
        let rows = rows(6);
        // Shown in reverse order, without k2.
        let visible = [5, 4, 3, 1, 0];
        let mut p = Picked::default();
        let plain = ClickKind::default();
        let toggle = ClickKind {
            toggle: true,
            range: false,
        };
        let range = ClickKind {
            toggle: false,
            range: true,
        };
        p.click("k4", plain, &visible, &rows);
        assert_eq!(keys(&p), ["k4"]);
        p.click("k1", toggle, &visible, &rows);
        assert_eq!(keys(&p), ["k1", "k4"]);
        p.click("k1", toggle, &visible, &rows);
        assert_eq!(keys(&p), ["k4"]);
        // The anchor is k1 (clicked last): k1 up to k5 as shown, k2 (hidden) left out.
        p.click("k5", range, &visible, &rows);
        assert_eq!(keys(&p), ["k1", "k3", "k4", "k5"]);
        // A range again from the same anchor replaces the picked rows.
        p.click("k0", range, &visible, &rows);
        assert_eq!(keys(&p), ["k0", "k1"]);
        // Ctrl+Shift adds the range.
        p.click("k4", plain, &visible, &rows);
        p.click(
            "k3",
            ClickKind {
                toggle: true,
                range: true,
            },
            &[5, 4, 3],
            &rows,
        );
        assert_eq!(keys(&p), ["k3", "k4"]);
        p.clear();
        assert!(p.is_empty());
        // No anchor: a Shift-click picks the row alone.
        p.click("k3", range, &visible, &rows);
        assert_eq!(keys(&p), ["k3"]);
        // A box on the map picks exactly its rows; every change is a new version.
        let v = p.version();
        p.set(["k5".to_string(), "k1".to_string()]);
        assert_eq!(keys(&p), ["k1", "k5"]);
        assert!(p.version() > v);
        p.click("k2", range, &visible, &rows);
        assert_eq!(keys(&p), ["k2"], "no anchor after a box");
    }
}
