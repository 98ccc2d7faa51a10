//! The one spelling of a request path that every rule is matched against.
//!
//! A proxy and the application behind it may each decode, merge or resolve a path in their own
//! way: if the decision matched the raw bytes, `/admin/%61djustments` would slip past a DROP row
//! on `/admin/adjustments` and still reach the same Rails action. So the decision first reduces
//! the path to a canonical form, and refuses (`400 authz.invalid_path`) every spelling for which
//! two servers could resolve different routes. The rules are in `docs/security.md`; in short:
//!
//! - characters a path may carry unencoded (RFC 3986 `pchar` but `;`) are decoded wherever they
//!   appear percent-encoded, so `%61` and `a` are the same path;
//! - every other byte stays (or becomes) percent-encoded with upper-case hex, so the output is
//!   plain ASCII and decoding it again changes nothing;
//! - refused: an encoded `/`, `\`, `.`, `%`, `;`, `?` or `#`; a raw `\` or `;`; control bytes
//!   (raw or encoded, NUL included); malformed escapes; bytes that do not decode to UTF-8
//!   (overlong forms included); empty segments (`//`) and dot segments (`.`, `..`);
//! - one trailing `/` is dropped and a final `.format` suffix (one dot) is dropped, as Rails
//!   routes both to the same action.
//!
//! Letter case is kept: rules are compared ignoring ASCII case (see `rules` and `policy`), so a
//! different case can never reach a route its lower-case spelling may not reach.

use std::borrow::Cow;

/// The path cannot be judged safely: the decision refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPath;

/// The canonical form of `raw`, a path without its leading `/` (what follows `/api/v2/auth/`).
/// Borrowed when `raw` is already canonical, which is the common case.
pub fn canonical(raw: &str) -> Result<Cow<'_, str>, InvalidPath> {
    let bytes = raw.as_bytes();
    // Fast path: nothing to decode or encode, only the structure to check.
    let path: Cow<'_, str> = if bytes.iter().all(|&b| is_plain(b)) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(rewrite(bytes)?)
    };
    let path = check_segments(path)?;
    Ok(strip_format(path))
}

/// A byte that stands for itself in the canonical form: unreserved, sub-delims but `;`, `:`
/// and `@`, and the `/` separator.
fn is_plain(b: u8) -> bool {
    PLAIN[usize::from(b)]
}

/// [`is_plain`] as a table: one load per byte on the fast path of every decision.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        b += 1;
    }
    table
};

/// Decodes what may be decoded, encodes what must stay encoded, refuses the rest.
fn rewrite(bytes: &[u8]) -> Result<String, InvalidPath> {
    // The decoded bytes, to check that they are UTF-8 as a whole.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|h| hex(*h));
            let lo = bytes.get(i + 2).and_then(|l| hex(*l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(InvalidPath);
            };
            let d = hi << 4 | lo;
            // An encoded separator, dot, escape or delimiter means something else to each server.
            if matches!(d, b'/' | b'\\' | b'.' | b'%' | b';' | b'?' | b'#') || is_control(d) {
                return Err(InvalidPath);
            }
            decoded.push(d);
            push_canonical(&mut out, d);
            i += 3;
            continue;
        }
        if b == b'\\' || b == b';' || b == b'?' || b == b'#' || is_control(b) {
            return Err(InvalidPath);
        }
        decoded.push(b);
        push_canonical(&mut out, b);
        i += 1;
    }
    std::str::from_utf8(&decoded).map_err(|_| InvalidPath)?;
    Ok(out)
}

fn push_canonical(out: &mut String, b: u8) {
    if is_plain(b) {
        out.push(char::from(b));
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Refuses empty and dot segments; drops one trailing `/`.
fn check_segments(path: Cow<'_, str>) -> Result<Cow<'_, str>, InvalidPath> {
    let body = path.strip_suffix('/').unwrap_or(&path);
    if body.is_empty() {
        // `` and `/`: the root. A lone `/` is `//` once the prefix's own slash is counted.
        return if path.is_empty() {
            Ok(path)
        } else {
            Err(InvalidPath)
        };
    }
    if !segments_are_proper(body.as_bytes()) {
        return Err(InvalidPath);
    }
    if body.len() == path.len() {
        return Ok(path);
    }
    Ok(match path {
        Cow::Borrowed(text) => Cow::Borrowed(&text[..text.len() - 1]),
        Cow::Owned(mut text) => {
            text.pop();
            Cow::Owned(text)
        }
    })
}

/// No segment of `body` (split at `/`) is empty, `.` or `..`. Split as bytes: the segments of
/// a decision's path are short, and `str::split` pays a searcher per segment.
fn segments_are_proper(body: &[u8]) -> bool {
    body.split(|&b| b == b'/')
        .all(|segment| !matches!(segment, b"" | b"." | b".."))
}

/// Rails' routes take a final `.ext` of the last segment as the format. Only a single dot with
/// a non-empty stem is stripped, so the result is itself canonical (`a.b.c` stays as it is).
fn strip_format(path: Cow<'_, str>) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    let start = bytes.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let last = &bytes[start..];
    let cut = match last.iter().position(|&b| b == b'.') {
        Some(dot) if dot > 0 && !last[dot + 1..].contains(&b'.') => start + dot,
        _ => return path,
    };
    match path {
        Cow::Borrowed(text) => Cow::Borrowed(&text[..cut]),
        Cow::Owned(mut text) => {
            text.truncate(cut);
            Cow::Owned(text)
        }
    }
}

/// `path` starts with `prefix`, ignoring ASCII case: how every rule is matched.
pub fn starts_with_ignore_case(path: &str, prefix: &str) -> bool {
    path.len() >= prefix.len()
        && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        canonical(raw)
            .unwrap_or_else(|_| panic!("{raw:?} refused"))
            .into_owned()
    }

    #[test]
    fn plain_paths_are_borrowed_unchanged() {
        for raw in ["", "api/v2/barong/resource/users/me", "a:b@c/d+e,f=g"] {
            assert!(
                matches!(canonical(raw), Ok(Cow::Borrowed(p)) if p == raw),
                "{raw}"
            );
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded() {
        assert_eq!(
            ok("api/v2/peatio/admin/%61djustments"),
            "api/v2/peatio/admin/adjustments"
        );
        assert_eq!(ok("admin/adjustment%73"), "admin/adjustments");
        assert_eq!(ok("a/%7e%2D%5f%41"), "a/~-_A");
        assert_eq!(ok("a/%40%3a%2b"), "a/@:+");
    }

    #[test]
    fn other_bytes_are_encoded_upper_case() {
        assert_eq!(ok("a/b%20c"), "a/b%20c");
        assert_eq!(ok("a/%c3%a9"), "a/%C3%A9");
        assert_eq!(ok("a/{x}|"), "a/%7Bx%7D%7C");
        assert_eq!(ok("a/\"q\""), "a/%22q%22");
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        for raw in [
            "public%00/../account",
            "public/../account",
            "public/./account",
            "a/..",
            "./a",
            "a//b",
            "/a",
            "/",
            "a/%2e%2e/b",
            "a/%2E/b",
            "a/.%2e/b",
            "a%2fb",
            "a%2Fb",
            "a%5cb",
            "a\\b",
            "a;b",
            "a%3bb",
            "a/b;jsessionid=1",
            "a%25",
            "a%2561",
            "a%",
            "a%4",
            "a%zz",
            "a%3fb",
            "a%23b",
            "a\u{1}b",
            "a%0ab",
            "a%7f",
            "a%c0%af",
            "a%ff",
            "a%e2%82",
        ] {
            assert_eq!(canonical(raw), Err(InvalidPath), "{raw:?}");
        }
    }

    #[test]
    fn trailing_slash_and_format() {
        assert_eq!(
            ok("api/v2/barong/identity/sessions/"),
            "api/v2/barong/identity/sessions"
        );
        assert_eq!(ok("api/v2/x/orders.json"), "api/v2/x/orders");
        assert_eq!(ok("api/v2/x/orders.json/"), "api/v2/x/orders");
        assert_eq!(ok("a.b/c"), "a.b/c");
        assert_eq!(ok("a/b.c.d"), "a/b.c.d");
        assert_eq!(ok("a/.hidden"), "a/.hidden");
        assert_eq!(canonical("a/..json"), Ok(Cow::Borrowed("a/..json")));
    }

    #[test]
    fn canonical_is_idempotent_on_examples() {
        for raw in ["a/%c3%a9/x.y", "a/b%20c/", "a/%61%62.json", "x/{y}"] {
            let once = ok(raw);
            assert_eq!(ok(&once), once, "{raw}");
        }
    }

    /// The structure checks as first written with `str::split` and `find`, kept as the oracle
    /// of the byte loops.
    fn reference(raw: &str) -> Option<String> {
        let body = raw.strip_suffix('/').unwrap_or(raw);
        if body.is_empty() {
            return raw.is_empty().then(String::new);
        }
        if body
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return None;
        }
        let start = body.rfind('/').map_or(0, |i| i + 1);
        let last = &body[start..];
        Some(match last.find('.') {
            Some(dot) if dot > 0 && last[dot + 1..].find('.').is_none() => {
                body[..start + dot].to_owned()
            }
            _ => body.to_owned(),
        })
    }

    #[test]
    fn byte_loops_agree_with_split_on_every_short_path() {
        // Every string up to 7 bytes over the bytes that decide the structure.
        let alphabet = [b'a', b'.', b'/'];
        let mut checked = 0;
        for len in 0..=7u32 {
            for mut n in 0..3usize.pow(len) {
                let mut raw = Vec::new();
                for _ in 0..len {
                    raw.push(alphabet[n % 3]);
                    n /= 3;
                }
                let raw = String::from_utf8(raw).expect("ascii");
                let ours = canonical(&raw).ok().map(Cow::into_owned);
                assert_eq!(ours, reference(&raw), "{raw:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 3280);
    }

    #[test]
    fn prefixes_ignore_case() {
        assert!(starts_with_ignore_case(
            "api/v2/Peatio/ADMIN/x",
            "api/v2/peatio/admin"
        ));
        assert!(!starts_with_ignore_case("api/v2", "api/v2/peatio"));
        assert!(starts_with_ignore_case("é", ""));
    }
}
