//! Server-side sessions behind the `_barong_session` cookie.
//!
//! The cookie carries an opaque random id; the database keys the row by the SHA-256 of that id,
//! so a leaked table (or log) does not hand out live cookies.

use chrono::{DateTime, Utc};

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 hex of the cookie value.
    pub id: String,
    pub user_id: i64,
    pub uid: String,
    pub user_ip: String,
    pub user_agent: Option<String>,
    pub csrf_token: String,
    /// Epoch seconds after which the session is refused (sliding: pushed forward on use).
    pub expire_at: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: String,
    pub user_id: i64,
    pub uid: String,
    pub user_ip: String,
    pub user_agent: Option<String>,
    pub csrf_token: String,
    pub expire_at: i64,
}

/// What a request carries under the session cookie's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCookie<'a> {
    /// No cookie of that name, or an empty one.
    Absent,
    One(&'a str),
    /// The name more than once (in one `Cookie` header or several). Servers disagree on which
    /// copy wins (Rack keeps the first, others the last), so a request that has two is refused
    /// by the decision and carries no session on the REST listener: the session that was judged
    /// is always the one that is used, logged out or refreshed.
    Repeated,
}

/// The session cookie `name` among every `Cookie` header of a request: the one rule both
/// listeners follow.
pub fn session_cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> SessionCookie<'a> {
    let mut found = SessionCookie::Absent;
    let mut seen = false;
    let pairs = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='));
    for (key, value) in pairs {
        if key.trim() != name {
            continue;
        }
        if seen {
            return SessionCookie::Repeated;
        }
        seen = true;
        let value = value.trim().trim_matches('"');
        if !value.is_empty() {
            found = SessionCookie::One(value);
        }
    }
    found
}

/// The storage key of a cookie value: lowercase hex SHA-256.
pub fn session_key(cookie_value: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        cookie_value.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(values: &[&'static str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for value in values {
            map.append(http::header::COOKIE, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn one_session_cookie_or_none() {
        let name = "_barong_session";
        let one = cookies(&["a=1; _barong_session=abc; b=2"]);
        assert_eq!(session_cookie(&one, name), SessionCookie::One("abc"));
        let quoted = cookies(&["_barong_session=\"abc\""]);
        assert_eq!(session_cookie(&quoted, name), SessionCookie::One("abc"));
        for absent in [
            &[][..],
            &["a=1"],
            &["_barong_session="],
            &["x_barong_session=1"],
        ] {
            assert_eq!(
                session_cookie(&cookies(absent), name),
                SessionCookie::Absent
            );
        }
        for repeated in [
            &["_barong_session=A; _barong_session=B"][..],
            &["_barong_session=A", "_barong_session=B"],
            &["_barong_session=A; _barong_session=A"],
            &["_barong_session=; _barong_session=B"],
            &["_barong_session=A;_barong_session =B"],
        ] {
            assert_eq!(
                session_cookie(&cookies(repeated), name),
                SessionCookie::Repeated,
                "{repeated:?}"
            );
        }
    }

    #[test]
    fn session_key_is_sha256_hex() {
        assert_eq!(
            session_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
