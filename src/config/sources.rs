//! Where raw setting texts come from: the environment, the TOML file, the defaults; and how a
//! URL's password is hidden when a value is shown.

use std::collections::HashMap;

use super::ConfigError;
use super::settings::NAMES;

/// Reads our settings from the process environment; a non-UTF-8 value is an error, not a guess.
pub(super) fn process_env() -> Result<HashMap<String, String>, ConfigError> {
    let mut env = HashMap::new();
    for &name in NAMES {
        match std::env::var(name) {
            Ok(value) => {
                env.insert(name.to_owned(), value);
            }
            Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ConfigError::invalid(name, None, "expected UTF-8 text"));
            }
        }
    }
    Ok(env)
}

/// The TOML key of a setting: its name lower-cased without `BARONG_`. `JWT_ALGORITHM` would collide
/// with `BARONG_JWT_ALGORITHM`, so it is `jwt_verify_algorithm`.
pub(super) fn toml_key(name: &str) -> String {
    if name == "JWT_ALGORITHM" {
        return "jwt_verify_algorithm".into();
    }
    name.strip_prefix("BARONG_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// Parses the TOML file into raw texts per setting name; unknown keys are errors (typos must not
/// silently fall back to defaults).
pub(super) fn parse_toml(
    text: &str,
    origin: &str,
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let head = e.span().and_then(|span| text.get(..span.start));
        let line = head.map(|head| head.matches('\n').count() + 1);
        let at = line.map(|n| format!(" at line {n}")).unwrap_or_default();
        ConfigError::new(
            "config file",
            format!("invalid {origin}: {}{at}", e.message()),
        )
    })?;
    let mut values = HashMap::new();
    for (key, value) in &table {
        let Some(&name) = NAMES.iter().find(|name| toml_key(name) == *key) else {
            let message = format!(
                "unknown key {key:?} in {origin}: expected a setting name lower-cased without \
                 BARONG_, e.g. session_expire_time"
            );
            return Err(ConfigError::new(key, message));
        };
        let text = toml_text(value).ok_or_else(|| {
            let problem = format!("key {key} in {origin}: expected a string, integer or boolean");
            ConfigError::invalid(name, None, &problem)
        })?;
        values.insert(name, text);
    }
    Ok(values)
}

/// TOML scalars become the text an environment variable would hold; arrays become comma lists.
pub(super) fn toml_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        toml::Value::Array(items) => {
            let texts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    toml::Value::Array(_) => None,
                    scalar => toml_text(scalar),
                })
                .collect();
            texts.map(|texts| texts.join(","))
        }
        _ => None,
    }
}
