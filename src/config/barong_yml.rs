//! Barong's `config/barong.yml` (`BARONG_CONFIG`).

use serde_yaml_ng::Value as Yaml;

use super::ConfigError;
use crate::domain::role;

/// Barong's `config/barong.yml` (`BARONG_CONFIG`): lists that drive activation, state triggers,
/// document types, data storage titles, captcha and profile verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarongYml {
    /// Private labels (key, value) a user needs to become `active`; default `email: verified`.
    pub activation_requirements: Vec<(String, String)>,
    /// Label keys forcing a state, in file order: (state, label keys).
    pub state_triggers: Vec<(String, Vec<String>)>,
    /// Allowed `doc_type` values.
    pub document_types: Vec<String>,
    /// Allowed data storage titles; empty by default.
    pub user_storage_titles: Vec<String>,
    /// Endpoint names where captcha is enforced (when `BARONG_CAPTCHA` is not `none`).
    pub captcha_protected_endpoints: Vec<String>,
    /// Roles exempt from profile double verification.
    pub profile_verification_roles: Vec<String>,
}

impl Default for BarongYml {
    /// The contents of Barong's shipped `config/barong.yml`.
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let trigger = |state: &str, labels: &[&str]| (state.to_owned(), strings(labels));
        Self {
            activation_requirements: default_activation_requirements(),
            state_triggers: vec![
                trigger("banned", &["ban", "fraud"]),
                trigger("deleted", &["delete"]),
                trigger("locked", &["suspicious", "lock"]),
            ],
            document_types: strings(&[
                "Passport",
                "Identity card",
                "Driver license",
                "Utility Bill",
                "Residental",
                "Institutional",
                "Address",
            ]),
            user_storage_titles: Vec::new(),
            captcha_protected_endpoints: strings(&[
                "user_create",
                "session_create",
                "password_reset",
                "email_confirmation",
            ]),
            profile_verification_roles: strings(&[role::SUPERADMIN]),
        }
    }
}

fn default_activation_requirements() -> Vec<(String, String)> {
    vec![("email".into(), "verified".into())]
}

impl BarongYml {
    /// Parses a barong.yml document. A key that is absent keeps its default, except
    /// `captcha_protected_endpoints`: Barong protects nothing when that list is absent.
    /// A key present but empty (`null`) means an empty list, except `activation_requirements`,
    /// which Barong then replaces by `email: verified`. Unknown keys are ignored, as in Barong.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text).map_err(|problem| ConfigError::invalid("BARONG_CONFIG", None, &problem))
    }

    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let document: Yaml =
            serde_yaml_ng::from_str(text).map_err(|e| format!("expected a YAML document ({e})"))?;
        let mapping = match document {
            Yaml::Null => serde_yaml_ng::Mapping::new(),
            Yaml::Mapping(mapping) => mapping,
            _ => return Err("expected a YAML mapping of barong.yml keys".into()),
        };
        let mut yml = Self {
            captcha_protected_endpoints: Vec::new(),
            ..Self::default()
        };
        for (key, value) in &mapping {
            yml.set(key.as_str().unwrap_or_default(), value)?;
        }
        Ok(yml)
    }

    fn set(&mut self, key: &str, value: &Yaml) -> Result<(), String> {
        match key {
            "activation_requirements" if value.is_null() => {
                self.activation_requirements = default_activation_requirements();
            }
            "activation_requirements" => self.activation_requirements = yaml_pairs(key, value)?,
            "state_triggers" => self.state_triggers = yaml_triggers(key, value)?,
            "document_types" => self.document_types = yaml_list(key, value)?,
            "user_storage_titles" => self.user_storage_titles = yaml_list(key, value)?,
            "captcha_protected_endpoints" => {
                self.captcha_protected_endpoints = yaml_list(key, value)?;
            }
            "profile_verification_roles" => {
                self.profile_verification_roles = yaml_list(key, value)?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn yaml_scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(text) => Some(text.clone()),
        Yaml::Number(number) => Some(number.to_string()),
        Yaml::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn yaml_list(key: &str, value: &Yaml) -> Result<Vec<String>, String> {
    let problem = || format!("key {key}: expected a list of strings");
    match value {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Sequence(items) => items
            .iter()
            .map(|item| yaml_scalar(item).ok_or_else(problem))
            .collect(),
        _ => Err(problem()),
    }
}

fn yaml_pairs(key: &str, value: &Yaml) -> Result<Vec<(String, String)>, String> {
    let problem = || format!("key {key}: expected a mapping of label key to label value");
    let Yaml::Mapping(mapping) = value else {
        return Err(problem());
    };
    mapping
        .iter()
        .map(|(k, v)| yaml_scalar(k).zip(yaml_scalar(v)).ok_or_else(problem))
        .collect()
}

fn yaml_triggers(key: &str, value: &Yaml) -> Result<Vec<(String, Vec<String>)>, String> {
    let problem = || format!("key {key}: expected a mapping of state to a list of label keys");
    match value {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Mapping(mapping) => mapping
            .iter()
            .map(|(state, labels)| {
                let state = yaml_scalar(state).ok_or_else(problem)?;
                Ok((state, yaml_list(key, labels).map_err(|_| problem())?))
            })
            .collect(),
        _ => Err(problem()),
    }
}
