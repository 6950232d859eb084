//! How curation recognises the sources s1 treats apart: AIME, GPQA and MATH. s1's notebook
//! (data/filter.ipynb) compares `source_type` with its own dataset names: the seed set and the
//! benchmark distribution use `== "Idavidrein/gpqa"`, `== "qq8933/AIME_1983_2024"` and
//! `"qfq/openaimath" in source_type`; the `[asy]` exception uses `"AIME" in source_type` (case
//! matters). That is the default ([`SourceNames::S1`]): import a file with `--source` set to s1's
//! name to give it that role. [`SourceNames::Loose`] is a named option for pools whose sources are
//! named otherwise (e.g. after their files): any source whose name contains `aime`, `gpqa` or
//! `math`, in any case.

use crate::workspace::Workspace;

/// s1's AIME source (add_aime.py, filter.ipynb).
pub const S1_AIME: &str = "qq8933/AIME_1983_2024";
/// s1's GPQA source (collect_data.py `load_gpqa_extended`, filter.ipynb).
pub const S1_GPQA: &str = "Idavidrein/gpqa";
/// What an s1 MATH source contains (filter.ipynb cell 14 tests `'qfq/openaimath' in
/// source_type`; its rows are `qfq/openaimath/<subject>`).
pub const S1_MATH: &str = "qfq/openaimath";

/// The workspace setting that holds the choice.
pub const SETTING: &str = "sources.names";

/// How source names are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceNames {
    /// s1's exact names (filter.ipynb).
    #[default]
    S1,
    /// Any source whose name contains `aime`, `gpqa` or `math` (any case).
    Loose,
}

/// The roles a source plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kinds {
    pub aime: bool,
    pub gpqa: bool,
    /// MATH (s1's openaimath): seeds when the trace is correct and longer than 5,600 tokens.
    pub math: bool,
}

impl SourceNames {
    pub fn name(self) -> &'static str {
        match self {
            SourceNames::S1 => "s1",
            SourceNames::Loose => "loose",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "s1" => Some(SourceNames::S1),
            "loose" => Some(SourceNames::Loose),
            _ => None,
        }
    }

    /// The roles of a source.
    pub fn kinds(self, source: &str) -> Kinds {
        match self {
            SourceNames::S1 => Kinds {
                aime: source == S1_AIME,
                gpqa: source == S1_GPQA,
                math: source.contains(S1_MATH),
            },
            SourceNames::Loose => {
                let l = source.to_ascii_lowercase();
                Kinds {
                    aime: l.contains("aime"),
                    gpqa: l.contains("gpqa"),
                    math: l.contains("math"),
                }
            }
        }
    }

    /// Whether a question of this source keeps its `[asy]` figures (s1: `'AIME' in source_type`).
    pub fn keeps_asy(self, source: &str) -> bool {
        match self {
            SourceNames::S1 => source.contains("AIME"),
            SourceNames::Loose => source.to_ascii_lowercase().contains("aime"),
        }
    }

    /// The workspace's choice (s1's when never set).
    pub fn load(ws: &Workspace) -> anyhow::Result<Self> {
        match ws.setting(SETTING)? {
            None => Ok(SourceNames::S1),
            Some(v) => Self::parse(&v)
                .ok_or_else(|| anyhow::anyhow!("workspace setting `{SETTING}` is `{v}`; it must be `s1` or `loose`")),
        }
    }

    /// Stores the choice in the workspace.
    pub fn store(self, ws: &Workspace) -> anyhow::Result<()> {
        ws.conn.execute(
            "INSERT INTO settings (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [SETTING, self.name()],
        )?;
        Ok(())
    }
}

/// Whether a source's name says AIME in any case: the AIME year rule's test (a safety rule, so
/// broader than s1's names; see [`SourceNames`] for the `[asy]` exception and the seed set).
pub fn is_aime(source: &str) -> bool {
    source.to_ascii_lowercase().contains("aime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s1_names_are_exact() {
        let s1 = SourceNames::S1;
        assert_eq!(
            s1.kinds(S1_AIME),
            Kinds {
                aime: true,
                ..Default::default()
            }
        );
        assert_eq!(
            s1.kinds(S1_GPQA),
            Kinds {
                gpqa: true,
                ..Default::default()
            }
        );
        assert!(s1.kinds("qfq/openaimath/Intermediate Algebra").math);
        // Not seeds in s1, although their names mention maths.
        for other in [
            "AI-MO/NuminaMath-CoT/olympiads",
            "KbsdJames/Omni-MATH",
            "Hothan/OlympiadBench/OE/Math",
        ] {
            assert_eq!(s1.kinds(other), Kinds::default(), "{other}");
        }
        assert_eq!(s1.kinds("aime_1983_2023"), Kinds::default());
        assert!(s1.keeps_asy(S1_AIME) && s1.keeps_asy("AIME 2019"));
        assert!(!s1.keeps_asy("aime_1983_2023"), "s1's test is case-sensitive");
        let loose = SourceNames::Loose;
        assert!(loose.kinds("aime_1983_2023").aime && loose.keeps_asy("aime_1983_2023"));
        assert!(loose.kinds("math_train").math);
    }
}
