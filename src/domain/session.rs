//! Server-side sessions behind the `_barong_session` cookie.
//!
//! The cookie carries an opaque random id; the database keys the row by the SHA-256 of that id,
//! so a leaked table (or log) does not hand out live cookies. What a user sees of a session is
//! a third value, a random public id: neither the cookie nor its hash ever leaves the server.

use std::net::IpAddr;

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
    /// Moved by the sliding expiry's write-behind too: the last sighting, to within
    /// `BARONG_SESSION_WRITE_BEHIND`.
    pub updated_at: DateTime<Utc>,
    /// The id the owner and admins see and end the session by.
    pub public_id: String,
    /// How the login was proven: `password`, `password+2fa`, `password+passkey`, `passkey`
    /// (passwordless) or `email` (a confirmation link).
    pub authenticated_with: String,
    /// GeoIP country of `user_ip` at login, when GeoIP is configured.
    pub user_ip_country: Option<String>,
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
    /// As [`Session::authenticated_with`].
    pub authenticated_with: String,
    pub user_ip_country: Option<String>,
}

/// What a request carries under the session cookie's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCookie<'a> {
    /// No cookie of that name, or an empty one.
    Absent,
    /// Its value's bytes as sent. A session id is hex, so a value outside ASCII names no
    /// session: it is looked up and missed like any other unknown one.
    One(&'a [u8]),
    /// The name more than once (in one `Cookie` header or several, or once after a `,`: see
    /// [`session_cookie`]). Servers disagree on which copy wins (Rack keeps the first, others
    /// the last), so a request that has two is refused by the decision and carries no session
    /// on the REST listener: the session that was judged is always the one that is used,
    /// logged out or refreshed.
    Repeated,
}

/// The session cookie `name` among every `Cookie` header of a request: the one rule both
/// listeners follow. Each `;`-separated pair is split at its first `=`, and both sides are
/// trimmed of spaces and tabs, the value of surrounding quotes too.
///
/// Every header is read, whatever bytes it holds. A browser sends all of a site's cookies in
/// one line, so a value outside ASCII in any of them (a language or a name a page's script set)
/// once hid the session beside it, which Barong (Rack reads the line as it is) never did; and a
/// skipped line could carry a second session that a server reading it would use. `;`, `,` and
/// `=` are ASCII, and no byte from 0x80 equals them, so the pairs split alike whatever else a
/// line holds.
///
/// Rack before 2.1.4 and 2.2.3 (the fix of CVE-2020-8184, which a Barong of its time may run;
/// older Node parsers too) splits at `,` as well as `;` and keeps the first of a repeated
/// name: in `x=1,_barong_session=B; _barong_session=A` (a cookie value a sibling domain could
/// set) it reads B where this rule reads A. A session name after a `,` therefore counts as one
/// more session cookie, and the request carries a repeated one: refused by the decision, no
/// session on the REST listener.
///
/// The rule was first written on `str` (`to_str`, `split`, `trim`), which walked the header a
/// character at a time, about 650 instructions of every cookie decision
/// (`benches/instructions.sh`); here `memchr` finds the separators. The tests hold it to the
/// rule in the plainest words.
pub fn session_cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> SessionCookie<'a> {
    let mut found = SessionCookie::Absent;
    let mut seen = false;
    for header in headers.get_all(http::header::COOKIE) {
        let bytes = header.as_bytes();
        if named_after_a_comma(bytes, name) {
            return SessionCookie::Repeated;
        }
        let mut start = 0;
        while start <= bytes.len() {
            let end = memchr::memchr(b';', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            let pair = &bytes[start..end];
            start = end + 1;
            let Some(eq) = memchr::memchr(b'=', pair) else {
                continue;
            };
            if pair[..eq].trim_ascii() != name.as_bytes() {
                continue;
            }
            if seen {
                return SessionCookie::Repeated;
            }
            seen = true;
            let value = trim_quotes(pair[eq + 1..].trim_ascii());
            if !value.is_empty() {
                found = SessionCookie::One(value);
            }
        }
    }
    found
}

/// Whether a piece of `line` that starts after a `,` (up to the next `,` or `;`) is a pair
/// named `name`: a session cookie to a parser that splits at `,` too (an older Rack), which
/// the `;` pairs do not show as one.
fn named_after_a_comma(line: &[u8], name: &str) -> bool {
    let mut rest = line;
    while let Some(comma) = memchr::memchr(b',', rest) {
        rest = &rest[comma + 1..];
        let piece = &rest[..memchr::memchr2(b',', b';', rest).unwrap_or(rest.len())];
        if let Some(eq) = memchr::memchr(b'=', piece)
            && piece[..eq].trim_ascii() == name.as_bytes()
        {
            return true;
        }
    }
    false
}

/// `str::trim_matches('"')` on bytes: every leading and trailing `"`.
fn trim_quotes(mut value: &[u8]) -> &[u8] {
    while let [b'"', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b'"'] = value {
        value = rest;
    }
    value
}

/// The storage key of a cookie value: lowercase hex SHA-256.
pub fn session_key(cookie_value: &str) -> String {
    hex::encode(session_digest(cookie_value.as_bytes()))
}

/// The raw SHA-256 of a cookie value, of which the storage key is the hex: what the authz
/// cache is keyed by (32 bytes inline, no string made per request).
pub type SessionDigest = [u8; 32];

/// Hashed on every cookie decision, with RustCrypto's `sha2` (the CPU's SHA instructions,
/// the state on the stack) rather than aws-lc's digest context, which initialises and
/// finalises more than one short message needs (`benches/authz.rs`, `cache/session_hit`).
pub fn session_digest(cookie_value: &[u8]) -> SessionDigest {
    use sha2::Digest;
    sha2::Sha256::digest(cookie_value).into()
}

/// The digest a storage key is the hex of; `None` for anything else.
pub fn session_digest_of_key(key: &str) -> Option<SessionDigest> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(key, &mut digest).ok()?;
    Some(digest)
}

/// Whether a login's device and network were seen before (see `Store::record_user_device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSighting {
    /// The first pair remembered for the user (a new account, or the first login since this
    /// was introduced): the baseline, no notice.
    First,
    /// A pair the user has not logged in from before.
    New,
    Known,
}

/// How a session is tied to the address it was opened from (`BARONG_SESSION_BINDING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    /// Barong's: the same /16 (IPv4) or /96 (IPv6).
    Network,
    /// The very address of the login.
    Address,
    /// Any address (the agent and the expiry still bind the session).
    None,
}

impl Binding {
    pub const ALL: &'static [Binding] = &[Binding::Network, Binding::Address, Binding::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Address => "address",
            Self::None => "none",
        }
    }

    /// Whether a request from `client` may use a session opened from `session_ip`. An address
    /// that does not parse binds nothing: the session is refused (fail closed).
    pub fn allows(self, session_ip: &str, client: IpAddr) -> bool {
        self.allows_ip(session_ip.parse().ok(), client)
    }

    /// [`Binding::allows`] for an address parsed once; `None` (a stored address that does not
    /// parse) is allowed by no binding, `none` included: a broken row fails closed.
    pub fn allows_ip(self, session_ip: Option<IpAddr>, client: IpAddr) -> bool {
        let Some(session_ip) = session_ip else {
            return false;
        };
        match self {
            Self::None => true,
            Self::Address => session_ip == client,
            Self::Network => match (session_ip, client) {
                (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..2] == b.octets()[..2],
                (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..12] == b.octets()[..12],
                _ => false,
            },
        }
    }
}

impl std::str::FromStr for Binding {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|b| b.as_str() == raw)
            .ok_or_else(|| "expected one of network, address, none".into())
    }
}

/// The rules one session lives by: its address binding and its sliding expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub binding: Binding,
    /// Seconds of inactivity after which the session ends.
    pub expire_time: i64,
}

/// The default policy and, optionally, another one for sessions whose `User-Agent` matches a
/// pattern (a mobile app that changes networks all day, say). The agent of a session never
/// changes (the decision refuses another one), so a session keeps its policy for life.
#[derive(Debug, Clone)]
pub struct SessionPolicies {
    pub default: SessionPolicy,
    pub client: Option<(regex::Regex, SessionPolicy)>,
}

impl SessionPolicies {
    pub fn for_agent(&self, agent: Option<&str>) -> &SessionPolicy {
        match (&self.client, agent) {
            (Some((pattern, policy)), Some(agent)) if pattern.is_match(agent) => policy,
            _ => &self.default,
        }
    }
}

/// A readable device, `<browser> on <OS>`, from a `User-Agent`: what a user recognises in a
/// list of sessions, and what the new-device notice compares (versions left out, so a browser
/// update is not a new device).
pub fn describe_device(agent: Option<&str>) -> String {
    let agent = agent.unwrap_or("").trim();
    if agent.is_empty() {
        return "Unknown device".into();
    }
    let browser = browser_of(agent);
    match os_of(agent) {
        Some(os) => format!("{browser} on {os}"),
        None => browser,
    }
}

fn browser_of(agent: &str) -> String {
    // Order matters: Chromium-based browsers also say `Chrome/` and `Safari/`, Chrome says
    // `Safari/`, so the most specific tokens come first.
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("OPiOS/", "Opera"),
        ("Opera", "Opera"),
        ("YaBrowser/", "Yandex Browser"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Vivaldi/", "Vivaldi"),
        ("UCBrowser", "UC Browser"),
        ("Electron/", "Electron"),
        ("FxiOS/", "Firefox"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Trident/", "Internet Explorer"),
        ("MSIE ", "Internet Explorer"),
        ("Version/", "Safari"),
    ];
    if let Some((_, name)) = BROWSERS.iter().find(|(token, _)| agent.contains(token)) {
        return (*name).into();
    }
    // A library or an app: its first product token (`okhttp/4.12` -> `okhttp`).
    let product = agent
        .split([' ', '/', ';', '('])
        .find(|part| !part.is_empty())
        .unwrap_or("Unknown");
    product.chars().take(40).collect()
}

fn os_of(agent: &str) -> Option<&'static str> {
    const SYSTEMS: &[(&str, &str)] = &[
        ("Windows Phone", "Windows Phone"),
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Darwin", "macOS"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
    ];
    SYSTEMS
        .iter()
        .find(|(token, _)| agent.contains(token))
        .map(|(_, name)| *name)
}

/// The network a login came from, as the new-device notice remembers it: the /16 of an IPv4
/// address, the /48 (one site) of an IPv6 one.
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            format!("{a}.{b}.0.0/16")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// An address as user-facing entities show it with masking on: the network part only
/// (`203.0.*.*`, `2001:db8:1:*`); text that is not an address is masked whole.
pub fn mask_ip(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, ..] = v4.octets();
            format!("{a}.{b}.*.*")
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:*", s[0], s[1], s[2])
        }
        Err(_) => "*".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(Binding::Network.allows("10.1.2.3", ip("10.1.200.200")));
        assert!(!Binding::Network.allows("10.1.2.3", ip("10.2.2.3")));
        assert!(Binding::Network.allows("2001:db8::1", ip("2001:db8::ffff:1")));
        assert!(!Binding::Network.allows("2001:db8::1", ip("2001:db9::1")));
        assert!(!Binding::Network.allows("10.1.2.3", ip("::1")));
        assert!(Binding::Address.allows("10.1.2.3", ip("10.1.2.3")));
        assert!(!Binding::Address.allows("10.1.2.3", ip("10.1.2.4")));
        assert!(Binding::None.allows("10.1.2.3", ip("192.0.2.1")));
        for binding in Binding::ALL {
            assert!(!binding.allows("garbage", ip("10.1.2.3")));
            assert_eq!(binding.as_str().parse::<Binding>(), Ok(*binding));
        }
        assert!("/16".parse::<Binding>().is_err());
    }

    #[test]
    fn policies_by_agent() {
        let default = SessionPolicy {
            binding: Binding::Network,
            expire_time: 1800,
        };
        let mobile = SessionPolicy {
            binding: Binding::None,
            expire_time: 86400,
        };
        let policies = SessionPolicies {
            default,
            client: Some((regex::Regex::new("BarongMobile/").expect("re"), mobile)),
        };
        assert_eq!(policies.for_agent(Some("BarongMobile/2.1 (iOS)")), &mobile);
        assert_eq!(policies.for_agent(Some("Mozilla/5.0")), &default);
        assert_eq!(policies.for_agent(None), &default);
    }

    #[test]
    fn devices_addresses_and_masks() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(describe_device(Some(chrome)), "Chrome on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_device(Some(safari)), "Safari on iOS");
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(describe_device(Some(firefox)), "Firefox on Linux");
        let edge = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0";
        assert_eq!(describe_device(Some(edge)), "Edge on macOS");
        assert_eq!(describe_device(Some("okhttp/4.12.0")), "okhttp");
        assert_eq!(describe_device(None), "Unknown device");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(network_of(ip("203.0.113.7")), "203.0.0.0/16");
        assert_eq!(network_of(ip("2001:db8:1:2::1")), "2001:db8:1::/48");
        assert_eq!(mask_ip("203.0.113.7"), "203.0.*.*");
        assert_eq!(mask_ip("2001:db8:1:2::1"), "2001:db8:1:*");
        assert_eq!(mask_ip("nonsense"), "*");
    }

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
        assert_eq!(session_cookie(&one, name), SessionCookie::One(b"abc"));
        let quoted = cookies(&["_barong_session=\"abc\""]);
        assert_eq!(session_cookie(&quoted, name), SessionCookie::One(b"abc"));
        // A `,` that no session name follows changes nothing.
        let listed = cookies(&["lang=en,fr; _barong_session=abc,x=1"]);
        assert_eq!(
            session_cookie(&listed, name),
            SessionCookie::One(b"abc,x=1")
        );
        // A line with bytes outside ASCII is read like any other: the session beside such a
        // value counts, and so does one in it when another line has one too.
        let lines = |lines: &[&[u8]]| {
            let mut map = http::HeaderMap::new();
            for line in lines {
                map.append(
                    http::header::COOKIE,
                    http::HeaderValue::from_bytes(line).expect("value"),
                );
            }
            map
        };
        let beside = lines(&["lang=fran\u{e7}ais; _barong_session=abc".as_bytes()]);
        assert_eq!(session_cookie(&beside, name), SessionCookie::One(b"abc"));
        let twice = lines(&[b"x=\xff; _barong_session=a", b"_barong_session=b"]);
        assert_eq!(session_cookie(&twice, name), SessionCookie::Repeated);
        let odd = lines(&[b"_barong_session=ab\xffc"]);
        assert_eq!(session_cookie(&odd, name), SessionCookie::One(b"ab\xffc"));
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
            // An older Rack splits at `,` too, and would read B in each.
            &["x=1,_barong_session=B; _barong_session=A"],
            &["_barong_session=A", "x=1, _barong_session=B"],
            &["a,_barong_session=B"],
        ] {
            assert_eq!(
                session_cookie(&cookies(repeated), name),
                SessionCookie::Repeated,
                "{repeated:?}"
            );
        }
    }

    /// The rule in the plainest words, with the slice methods: what `session_cookie` is held
    /// to (it was first written on `str`, which skipped a line outside ASCII).
    fn session_cookie_oracle<'a>(headers: &'a http::HeaderMap, name: &str) -> SessionCookie<'a> {
        // An older Rack's reading: how many pieces split at `;` and `,` are named `name`, against
        // how many pairs split at `;` alone are.
        let named = |line: &[u8], separators: &[u8]| {
            line.split(|b| separators.contains(b))
                .filter(|piece| {
                    piece
                        .iter()
                        .position(|b| *b == b'=')
                        .is_some_and(|eq| piece[..eq].trim_ascii() == name.as_bytes())
                })
                .count()
        };
        let lines = headers.get_all(http::header::COOKIE);
        if lines
            .iter()
            .any(|line| named(line.as_bytes(), b";,") > named(line.as_bytes(), b";"))
        {
            return SessionCookie::Repeated;
        }
        let mut found = SessionCookie::Absent;
        let mut seen = false;
        let pairs = lines
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .filter_map(|pair| {
                let eq = pair.iter().position(|b| *b == b'=')?;
                Some((&pair[..eq], &pair[eq + 1..]))
            });
        for (key, value) in pairs {
            if key.trim_ascii() != name.as_bytes() {
                continue;
            }
            if seen {
                return SessionCookie::Repeated;
            }
            seen = true;
            let mut value = value.trim_ascii();
            while let Some(rest) = value.strip_prefix(b"\"") {
                value = rest;
            }
            while let Some(rest) = value.strip_suffix(b"\"") {
                value = rest;
            }
            if !value.is_empty() {
                found = SessionCookie::One(value);
            }
        }
        found
    }

    #[test]
    fn session_cookie_agrees_with_the_plain_rule_on_every_short_spelling() {
        // Every header of up to 5 units over these, alone and beside a session cookie, with the
        // name `n`: separators (Rack's `,` too), blanks, quotes, a byte outside ASCII.
        const UNITS: [&[u8]; 10] = [
            b"n", b"=", b";", b",", b" ", b"\t", b"\"", b"v", b"\xff", b"n=",
        ];
        let mut spellings: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = spellings.clone();
        for _ in 0..5 {
            let mut next = Vec::new();
            for base in &frontier {
                for unit in UNITS {
                    let mut s = base.clone();
                    s.extend_from_slice(unit);
                    next.push(s);
                }
            }
            spellings.extend(next.iter().cloned());
            frontier = next;
        }
        let mut checked = 0;
        for spelling in &spellings {
            let Ok(value) = http::HeaderValue::from_bytes(spelling) else {
                continue;
            };
            for others in [&[][..], &[&b"n=1"[..]][..], &[&b"a=\"n\""[..]][..]] {
                let mut map = http::HeaderMap::new();
                map.append(http::header::COOKIE, value.clone());
                for other in others {
                    map.append(
                        http::header::COOKIE,
                        http::HeaderValue::from_bytes(other).expect("value"),
                    );
                }
                assert_eq!(
                    session_cookie(&map, "n"),
                    session_cookie_oracle(&map, "n"),
                    "{spelling:?} then {others:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    #[test]
    fn session_digest_is_the_key_unhexed() {
        let key = session_key("abc");
        assert_eq!(session_digest_of_key(&key), Some(session_digest(b"abc")));
        assert_eq!(session_digest_of_key("ab"), None);
        assert_eq!(session_digest_of_key(&"zz".repeat(32)), None);
    }

    #[test]
    fn session_key_is_sha256_hex() {
        assert_eq!(
            session_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Every length around the block and padding boundaries, against aws-lc's digest
        // (what made the keys of sessions stored before).
        for len in 0..=200 {
            let value: String = (0..len)
                .map(|i| char::from(b'!' + (i % 90) as u8))
                .collect();
            let reference = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
            assert_eq!(
                session_digest(value.as_bytes()),
                reference.as_ref(),
                "{len}"
            );
        }
    }
}
