//! How a setting's raw text becomes a typed value: the [`Value`] trait, [`Secret`], the
//! rate-limit and list types, and the parsers of settings with rules of their own.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A password, token or key. `Debug` and `Display` print `[redacted]` so a secret cannot reach a log
/// line, an error or `barong config` by accident; [`Secret::expose`] is the one deliberate way out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the code that has to use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Barong's secrets default to `''`, which means "not configured".
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a raw setting text becomes a typed value and how that value is shown by `describe()`.
pub(super) trait Value: Sized {
    /// Secret values are never echoed in errors nor shown by `describe()`.
    const SECRET: bool = false;
    /// Parses the raw text; the error is the part after `invalid NAME="value": `.
    fn parse(raw: &str) -> Result<Self, String>;
    /// The display value for `barong config`.
    fn show(&self) -> String;
}

impl Value for String {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
    fn show(&self) -> String {
        // URLs (database, redis, rabbitmq) may carry a password.
        redact_url_password(self)
    }
}

impl Value for bool {
    fn parse(raw: &str) -> Result<Self, String> {
        // Barong accepts exactly these two strings; "1", "yes" or "TRUE" abort the boot.
        match raw {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// Barong's integer rule (`^\d+$`) plus the range of the Rust type.
macro_rules! integer_value {
    ($($ty:ty),*) => {$(
        impl Value for $ty {
            fn parse(raw: &str) -> Result<Self, String> {
                let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
                digits
                    .then(|| raw.parse().ok())
                    .flatten()
                    .ok_or_else(|| format!("expected a whole number from 0 to {}", <$ty>::MAX))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_value!(u16, u32, u64);

/// A rate limit: at most `count` events per `window` seconds; `count == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window (0: unlimited).
    pub count: u32,
    /// The window, seconds.
    pub window: u64,
}

impl RateLimit {
    /// Whether the limit is on.
    pub fn enabled(&self) -> bool {
        self.count > 0 && self.window > 0
    }
}

impl Value for RateLimit {
    fn parse(raw: &str) -> Result<Self, String> {
        let bad = || "expected COUNT/SECONDS (e.g. 5/300) or 0 (off)".to_owned();
        if raw == "0" {
            return Ok(RateLimit {
                count: 0,
                window: 0,
            });
        }
        let (count, window) = raw.split_once('/').ok_or_else(bad)?;
        let count = u32::parse(count.trim()).map_err(|_| bad())?;
        let window = u64::parse(window.trim()).map_err(|_| bad())?;
        if window == 0 && count > 0 {
            return Err(bad());
        }
        Ok(RateLimit { count, window })
    }
    fn show(&self) -> String {
        if self.enabled() {
            format!("{}/{}", self.count, self.window)
        } else {
            "0".into()
        }
    }
}

impl Value for SocketAddr {
    fn parse(raw: &str) -> Result<Self, String> {
        raw.parse()
            .map_err(|_| "expected an IP address and port, e.g. 127.0.0.1:8001".into())
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for PathBuf {
    fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("expected a path".into());
        }
        Ok(PathBuf::from(raw))
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl Value for Vec<String> {
    fn parse(raw: &str) -> Result<Self, String> {
        // Barong's `array` type: comma split, whitespace squished; empty items carry no meaning.
        Ok(split_list(raw))
    }
    fn show(&self) -> String {
        self.join(",")
    }
}

impl Value for Vec<ipnet::IpNet> {
    fn parse(raw: &str) -> Result<Self, String> {
        crate::domain::client_ip::parse_networks(raw)
    }
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(ToString::to_string).collect();
        items.join(",")
    }
}

impl Value for Secret {
    const SECRET: bool = true;
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(Secret::new(raw))
    }
    fn show(&self) -> String {
        show_secret(self)
    }
}

impl Value for crate::domain::Binding {
    fn parse(raw: &str) -> Result<Self, String> {
        raw.parse()
    }
    fn show(&self) -> String {
        self.as_str().to_owned()
    }
}

impl<T: Value> Value for Option<T> {
    const SECRET: bool = T::SECRET;
    fn parse(raw: &str) -> Result<Self, String> {
        // An empty value means "unset", as Barong's `''` defaults do (e.g. BARONG_MAXMINDDB_PATH).
        if raw.is_empty() {
            return Ok(None);
        }
        T::parse(raw).map(Some)
    }
    fn show(&self) -> String {
        self.as_ref().map(Value::show).unwrap_or_default()
    }
}

pub(super) fn show_secret(secret: &Secret) -> String {
    if secret.is_empty() {
        String::new()
    } else {
        "[redacted]".into()
    }
}

pub(super) fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|item| item.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|item| !item.is_empty())
        .collect()
}

pub(super) fn parse_existing_file(raw: &str) -> Result<Option<PathBuf>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let path = PathBuf::from(raw);
    if path.is_file() {
        Ok(Some(path))
    } else {
        Err("expected an existing file".into())
    }
}

/// hyper cannot read a request head into less than 8 KiB.
pub(super) fn parse_header_size(raw: &str) -> Result<u64, String> {
    match u64::parse(raw)? {
        value if value >= 8192 => Ok(value),
        _ => Err("expected a number of bytes of at least 8192".into()),
    }
}

pub(super) fn parse_positive_u32(raw: &str) -> Result<u32, String> {
    match u32::parse(raw)? {
        0 => Err("expected a whole number greater than 0".into()),
        value => Ok(value),
    }
}

pub(super) fn parse_positive_u64(raw: &str) -> Result<u64, String> {
    match u64::parse(raw)? {
        0 => Err("expected a whole number greater than 0".into()),
        value => Ok(value),
    }
}

/// Barong checks `^[A-z]{2,6}$`; note that `[A-z]` also admits `[ \ ] ^ _` and the backtick.
pub(super) fn parse_uid_prefix(raw: &str) -> Result<String, String> {
    let length_ok = (2..=6).contains(&raw.chars().count());
    if length_ok && raw.chars().all(|c| ('A'..='z').contains(&c)) {
        Ok(raw.to_ascii_uppercase())
    } else {
        Err("expected 2 to 6 letters (^[A-z]{2,6}$)".into())
    }
}

pub(super) fn parse_password_regexp(raw: &str) -> Result<String, String> {
    match fancy_regex::Regex::new(raw) {
        Ok(_) => Ok(raw.to_owned()),
        Err(e) => Err(format!("expected a valid regular expression ({e})")),
    }
}

pub(super) fn parse_agent_pattern(raw: &str) -> Result<String, String> {
    match regex::Regex::new(raw) {
        Ok(_) => Ok(raw.to_owned()),
        Err(e) => Err(format!("expected a valid regular expression ({e})")),
    }
}

pub(super) fn parse_database_url(raw: &str) -> Result<String, String> {
    let schemes = ["sqlite://", "postgres://", "postgresql://"];
    let has_rest = |scheme: &&str| {
        raw.strip_prefix(*scheme)
            .is_some_and(|rest| !rest.is_empty())
    };
    if schemes.iter().any(has_rest) {
        Ok(raw.to_owned())
    } else {
        Err("expected a sqlite://, postgres:// or postgresql:// URL".into())
    }
}

pub(super) fn parse_uploads_url(raw: &str) -> Result<String, String> {
    let schemes = ["file://", "s3://", "gs://"];
    let has_rest = |scheme: &&str| {
        raw.strip_prefix(*scheme)
            .is_some_and(|rest| !rest.is_empty())
    };
    if schemes.iter().any(has_rest) {
        Ok(raw.to_owned())
    } else {
        Err("expected a file://, s3:// or gs:// URL".into())
    }
}

pub(super) fn parse_encryption_key(raw: &str) -> Result<Option<Secret>, String> {
    let key = raw.trim();
    if key.is_empty() {
        return Ok(None);
    }
    match decode_key32(key) {
        Some(_) => Ok(Some(Secret::new(key))),
        None => Err("expected 32 bytes as 64 hex characters or base64".into()),
    }
}

/// Barong stops at the first `*` (any origin) and aborts on a malformed origin before it. Origins
/// are normalized as browsers send them (lower-case host, no default port, no trailing slash).
pub(super) fn parse_cors_origins(raw: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for item in split_list(raw) {
        if item == "*" {
            return Ok(vec!["*".into()]);
        }
        let origin = parse_cors_origin(&item).ok_or_else(|| {
            format!("expected a comma list of http(s)://host[:port] origins or *, got {item:?}")
        })?;
        origins.push(origin);
    }
    Ok(origins)
}

pub(super) fn parse_cors_origin(item: &str) -> Option<String> {
    let url = url::Url::parse(item).ok()?;
    let plain = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    let host_ok = match url.host()? {
        url::Host::Domain(domain) => domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => true,
    };
    let scheme_ok = matches!(url.scheme(), "http" | "https");
    (plain && host_ok && scheme_ok).then(|| url.origin().ascii_serialization())
}

/// Barong's quirk: anything but digits (or an empty value) means the default 3600.
pub(super) fn parse_cors_max_age(raw: &str) -> Result<u64, String> {
    Ok(u64::parse(raw).unwrap_or(3600))
}

/// Decodes a 32-byte key given as 64 hex characters or as base64 (standard or URL-safe alphabet,
/// with or without its single `=` of padding).
pub(super) fn decode_key32(text: &str) -> Option<[u8; 32]> {
    if text.len() == 64 {
        return decode_hex32(text);
    }
    decode_base64_32(text)
}

pub(super) fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

pub(super) fn decode_base64_32(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    // 32 bytes are 43 base64 characters (256 of 258 bits) plus one `=`. Either alphabet, never
    // both; the engines refuse non-zero spare bits, as strict decoders would later.
    let body = text.strip_suffix('=').unwrap_or(text);
    if body.len() != 43 {
        return None;
    }
    let engine = if body.contains(['-', '_']) {
        URL_SAFE_NO_PAD
    } else {
        STANDARD_NO_PAD
    };
    engine.decode(body).ok()?.try_into().ok()
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

/// A relying-party id is a bare domain name: no scheme, port, path or address.
pub(super) fn parse_rp_id(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    let bare = raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let is_address = raw.parse::<std::net::IpAddr>().is_ok();
    if !bare || is_address || raw.starts_with('.') || raw.ends_with('.') {
        return Err("expected a domain name such as example.com (no scheme, port or path)".into());
    }
    Ok(raw.to_ascii_lowercase())
}
