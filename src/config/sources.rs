//! Where raw setting texts come from: the environment, the TOML file, the defaults; and how a
//! URL's password is hidden when a value is shown.

use std::collections::HashMap;
use std::path::PathBuf;

use super::ConfigError;
use super::enums::{Environment, LogFormat, ReplayStore};
use super::settings::{Dflt, NAMES, default_of};
use super::value::Value;

/// The environment and the file, as raw text per setting name.
pub(super) struct Sources<'a> {
    pub(super) env: &'a HashMap<String, String>,
    pub(super) file: HashMap<&'static str, String>,
}

impl Sources<'_> {
    /// The explicitly given value: the environment wins over the file.
    pub(super) fn given(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .or_else(|| self.file.get(name))
            .map(String::as_str)
    }

    /// The given value or the default, before parsing.
    pub(super) fn resolved(&self, name: &str) -> String {
        match self.given(name) {
            Some(value) => value.to_owned(),
            None => match default_of(name) {
                Dflt::Lit(text) => text.to_owned(),
                Dflt::Derived(derive) => derive(self),
            },
        }
    }

    pub(super) fn get<T: Value>(
        &self,
        name: &'static str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.resolved(name);
        parse(&raw).map_err(|problem| {
            let shown = (!T::SECRET).then(|| redact_url_password(&raw));
            ConfigError::invalid(name, shown.as_deref(), &problem)
        })
    }
}

pub(super) fn default_database_url(src: &Sources) -> String {
    let dir = PathBuf::from(src.resolved("BARONG_DATA_DIR"));
    format!("sqlite://{}", dir.join("barong.db").display())
}

pub(super) fn default_uploads_url(src: &Sources) -> String {
    let dir = PathBuf::from(src.resolved("BARONG_DATA_DIR"));
    format!("file://{}", dir.join("uploads").display())
}

pub(super) fn default_log_format(src: &Sources) -> String {
    let production = src.resolved("BARONG_ENV") == Environment::Production.as_str();
    let format = if production {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    format.as_str().to_owned()
}

pub(super) fn default_replay_store(src: &Sources) -> String {
    let store = if src.given("BARONG_REDIS_URL").is_some() {
        ReplayStore::Redis
    } else {
        ReplayStore::Memory
    };
    store.as_str().to_owned()
}

pub(super) fn default_jwt_verify_algorithm(src: &Sources) -> String {
    src.resolved("BARONG_JWT_ALGORITHM")
}

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

/// Hides the password of `scheme://user:password@host...` and of a `password=` query parameter,
/// so database, Redis and RabbitMQ URLs can be shown and echoed in errors.
pub(super) fn redact_url_password(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let mut out = text.to_owned();
    if let Some(at) = text[start..authority_end].rfind('@').map(|i| start + i)
        && let Some(colon) = text[start..at].find(':').map(|i| start + i)
    {
        out = format!("{}:[redacted]{}", &text[..colon], &text[at..]);
    }
    redact_password_param(&out)
}

pub(super) fn redact_password_param(text: &str) -> String {
    let Some((head, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=[redacted]"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}
