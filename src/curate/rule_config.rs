//! Which quality rules are on and which fields the missing-field rule requires. The workspace
//! keeps it (settings `rules.enabled` and `rules.required`), and only the workspace: the funnel
//! reads it, the command line's `rules --enable/--disable/--require` and the Curate view's
//! toggles change it through a [`RulesChange`], so neither front-end undoes the other's choice.

use super::quality::{parse_rules, Rule};
use crate::workspace::Workspace;

/// Fields the missing-field rule can require.
pub const REQUIRABLE: [&str; 4] = ["solution", "answer", "trace", "attempt"];

/// s1's: the reference solution and the trace (its API errors were missing traces).
pub const DEFAULT_REQUIRED: [&str; 2] = ["solution", "trace"];

/// The settings the configuration is stored under.
pub const ENABLED_SETTING: &str = "rules.enabled";
pub const REQUIRED_SETTING: &str = "rules.required";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesConfig {
    pub enabled: Vec<Rule>,
    /// Fields the missing-field rule checks.
    pub required: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            enabled: Rule::ALL.to_vec(),
            required: DEFAULT_REQUIRED.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl RulesConfig {
    /// The stored configuration (the default before it was first changed or the rules ran).
    pub fn load(ws: &Workspace) -> anyhow::Result<RulesConfig> {
        let mut cfg = RulesConfig::default();
        if let Some(v) = ws.setting(ENABLED_SETTING)? {
            cfg.enabled = parse_rules(&v).map_err(|e| anyhow::anyhow!("workspace setting `{ENABLED_SETTING}`: {e}"))?;
        }
        if let Some(v) = ws.setting(REQUIRED_SETTING)? {
            cfg.required = v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
        }
        Ok(cfg)
    }

    /// The settings rows that store it: (key, value).
    pub fn settings(&self) -> [(&'static str, String); 2] {
        let enabled: Vec<&str> = self.enabled.iter().map(|r| r.name()).collect();
        [
            (ENABLED_SETTING, enabled.join(",")),
            (REQUIRED_SETTING, self.required.join(",")),
        ]
    }

    /// Stores it in the workspace.
    pub fn store(&self, ws: &Workspace) -> anyhow::Result<()> {
        for (k, v) in self.settings() {
            ws.set_setting(k, &v)?;
        }
        Ok(())
    }

    /// An error naming the first field the missing-field rule cannot check.
    pub fn check(&self) -> anyhow::Result<()> {
        for f in &self.required {
            if !REQUIRABLE.contains(&f.as_str()) {
                anyhow::bail!("cannot require `{f}`; requirable fields: {}", REQUIRABLE.join(", "));
            }
        }
        Ok(())
    }
}

/// A change to the stored configuration: the command line's flags or a toggle in the view.
/// Applied in order: `set` replaces the enabled rules, then `on` and `off` switch single rules,
/// then `require` replaces the required fields. The default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesChange {
    pub set: Option<Vec<Rule>>,
    pub on: Vec<Rule>,
    pub off: Vec<Rule>,
    pub require: Option<Vec<String>>,
}

impl RulesChange {
    /// Reads a comma-separated field list (`solution,trace`) for `require`.
    pub fn fields(list: &str) -> Vec<String> {
        list.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// `cfg` with the change applied; an unknown required field is an error.
    pub fn apply(&self, cfg: &RulesConfig) -> anyhow::Result<RulesConfig> {
        let mut cfg = cfg.clone();
        if let Some(set) = &self.set {
            cfg.enabled = set.clone();
        }
        for r in &self.on {
            if !cfg.enabled.contains(r) {
                cfg.enabled.push(*r);
            }
        }
        cfg.enabled.retain(|r| !self.off.contains(r));
        // Stored in the rules' own order, whichever order the toggles came in.
        cfg.enabled = Rule::ALL.into_iter().filter(|r| cfg.enabled.contains(r)).collect();
        if let Some(req) = &self.require {
            cfg.required = req.clone();
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Applies the change to the workspace's configuration and stores the result.
    pub fn store(&self, ws: &Workspace) -> anyhow::Result<RulesConfig> {
        let cfg = self.apply(&RulesConfig::load(ws)?)?;
        cfg.store(ws)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_in_order_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        assert_eq!(RulesConfig::load(&ws).unwrap(), RulesConfig::default());
        let off = RulesChange {
            off: vec![Rule::Asy],
            require: Some(RulesChange::fields("solution, answer")),
            ..Default::default()
        };
        off.store(&ws).unwrap();
        let cfg = RulesConfig::load(&ws).unwrap();
        assert!(!cfg.enabled.contains(&Rule::Asy));
        assert_eq!(cfg.required, ["solution", "answer"]);
        // Switching it on again puts it back in its place; the required fields stay.
        RulesChange {
            on: vec![Rule::Asy],
            ..Default::default()
        }
        .store(&ws)
        .unwrap();
        let cfg = RulesConfig::load(&ws).unwrap();
        assert_eq!(cfg.enabled, Rule::ALL.to_vec());
        assert_eq!(cfg.required, ["solution", "answer"]);
        let e = RulesChange {
            require: Some(vec!["colour".into()]),
            ..Default::default()
        }
        .store(&ws)
        .unwrap_err()
        .to_string();
        assert!(e.contains("colour") && e.contains("requirable"), "{e}");
        assert_eq!(RulesConfig::load(&ws).unwrap(), cfg, "a bad change stores nothing");
    }
}
