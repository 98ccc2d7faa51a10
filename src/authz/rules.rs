//! Pass and block path rules in Barong's `authz_rules.yml` format.

use std::path::Path;

use serde::Deserialize;

use super::path::Prefixes;

/// Barong's default rules, used when `BARONG_AUTHZ_RULES_FILE` is unset.
pub const DEFAULT_RULES: &str = include_str!("../../config/authz_rules.yml");

/// Path-prefix rules, matched as a prefix as Barong does, on the canonical path and ignoring
/// ASCII case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pass: Prefixes,
    block: Prefixes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: RuleLists,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuleLists {
    #[serde(default)]
    pass: Option<Vec<String>>,
    #[serde(default)]
    block: Option<Vec<String>>,
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid authz rules: {0}")]
pub struct RulesError(pub String);

impl Rules {
    /// Parses the YAML text (`rules: {pass: [...], block: [...]}`).
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let file: RulesFile =
            serde_yaml_ng::from_str(text).map_err(|e| RulesError(e.to_string()))?;
        let compile = |list: Option<Vec<String>>| {
            Prefixes::new(list.unwrap_or_default().iter().map(|p| &**p))
        };
        Ok(Self {
            pass: compile(file.rules.pass),
            block: compile(file.rules.block),
        })
    }

    /// Reads the file at `path`, or the built-in defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Self, RulesError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| RulesError(format!("{}: {e}", path.display())))?;
                Self::parse(&text)
            }
            None => Self::parse(DEFAULT_RULES),
        }
    }

    /// True when the canonical `path` starts with a block prefix (ASCII case ignored).
    pub fn is_blocked(&self, path: &str) -> bool {
        self.block.any_matches(path)
    }

    /// True when the canonical `path` starts with a pass prefix (ASCII case ignored).
    pub fn is_public(&self, path: &str) -> bool {
        self.pass.any_matches(path)
    }

    /// The pass prefixes, as written.
    pub fn pass(&self) -> impl Iterator<Item = &str> {
        self.pass.iter()
    }

    /// The block prefixes, as written.
    pub fn block(&self) -> impl Iterator<Item = &str> {
        self.block.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_identity_and_block_management() {
        let rules = Rules::load(None).expect("defaults");
        assert!(rules.is_public("api/v2/barong/identity/sessions"));
        assert!(rules.is_public("api/v2/peatio/public/markets"));
        assert!(rules.is_blocked("api/v2/barong/management/users"));
        assert!(!rules.is_public("api/v2/barong/resource/users/me"));
        assert!(!rules.is_blocked("api/v2/barong/resource/users/me"));
    }

    #[test]
    fn empty_lists_and_bad_files() {
        let rules = Rules::parse("rules:\n  pass:\n").expect("empty pass");
        assert!(rules.pass().next().is_none() && rules.block().next().is_none());
        assert!(Rules::parse("nope: 1").is_err());
    }
}
