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
    // Fast path: nothing to decode or encode, only the structure to check.
    match structure(raw.as_bytes(), true) {
        Structure::Canonical(len) => Ok(Cow::Borrowed(&raw[..len])),
        Structure::Improper => Err(InvalidPath),
        Structure::NotPlain => {
            let mut path = rewrite(raw.as_bytes())?;
            match structure(path.as_bytes(), false) {
                Structure::Canonical(len) => {
                    path.truncate(len);
                    Ok(Cow::Owned(path))
                }
                Structure::Improper | Structure::NotPlain => Err(InvalidPath),
            }
        }
    }
}

/// What [`structure`] found.
enum Structure {
    /// Proper: the canonical path is the first `len` bytes (a trailing `/` or a `.format`
    /// dropped).
    Canonical(usize),
    /// An empty, `.` or `..` segment.
    Improper,
    /// A byte that is not plain: the path needs the rewrite first.
    NotPlain,
}

/// The segment rules, in one pass: one trailing `/` is dropped, no segment of what is left may
/// be empty, `.` or `..`, and a final `.format` (one dot in the last segment, not its first
/// byte) is dropped, as Rails routes both to the same action. With `plain_only` a byte that is
/// not plain stops the pass (every decision's path goes through here first); a rewritten path
/// holds only plain bytes and `%XX` escapes, never of `/` or `.`, so it is passed whole.
fn structure(bytes: &[u8], plain_only: bool) -> Structure {
    let end = bytes.len() - usize::from(bytes.last() == Some(&b'/'));
    if end == 0 {
        // `` is the root; `/` would be `//` once the prefix's own slash is counted.
        return if bytes.is_empty() {
            Structure::Canonical(0)
        } else {
            Structure::Improper
        };
    }
    // The current segment: where it starts, its dots and where its first dot is.
    let (mut start, mut dots, mut first_dot) = (0, 0, 0);
    let mut improper = false;
    for (i, &b) in bytes[..end].iter().enumerate() {
        // One table load and a jump per byte.
        match CLASS[usize::from(b)] {
            Class::Plain => {}
            Class::Slash => {
                improper |= improper_segment(i - start, dots);
                (start, dots) = (i + 1, 0);
            }
            Class::Dot => {
                if dots == 0 {
                    first_dot = i;
                }
                dots += 1;
            }
            Class::Other if plain_only => return Structure::NotPlain,
            Class::Other => {}
        }
    }
    if improper || improper_segment(end - start, dots) {
        return Structure::Improper;
    }
    if dots == 1 && first_dot > start {
        Structure::Canonical(first_dot)
    } else {
        Structure::Canonical(end)
    }
}

/// An empty, `.` or `..` segment, from its length and its count of dots.
fn improper_segment(len: usize, dots: usize) -> bool {
    len == 0 || (len <= 2 && dots == len)
}

/// A byte that stands for itself in the canonical form: unreserved, sub-delims but `;`, `:`
/// and `@`, and the `/` separator.
fn is_plain(b: u8) -> bool {
    !matches!(CLASS[usize::from(b)], Class::Other)
}

/// What a byte is to [`structure`] and [`is_plain`].
#[derive(Clone, Copy)]
enum Class {
    /// A plain byte other than `/` and `.`.
    Plain,
    Slash,
    Dot,
    /// Not plain.
    Other,
}

/// The class of every byte: one load per byte on the fast path of every decision.
const CLASS: [Class; 256] = {
    let mut table = [Class::Other; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'/' => Class::Slash,
            b'.' => Class::Dot,
            b'-' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b','
            | b'=' | b':' | b'@' => Class::Plain,
            _ if c.is_ascii_alphanumeric() => Class::Plain,
            _ => Class::Other,
        };
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

/// A rule's path prefix (a pass or block rule, a permission's path), compiled once: the
/// canonical path matches when it starts with the prefix, ASCII case ignored, which is how
/// every rule is matched. Every decision compares a dozen of them, mostly past a shared
/// `api/v2/...` start, so a match compares eight bytes at a time: a path byte ORed with the
/// prefix's mask (`0x20` where the prefix has a letter, else `0`) equals the prefix's lower-case
/// byte exactly when the two are equal ignoring ASCII case.
///
/// Each eight bytes' lower-case word and mask word sit side by side in one allocation: a match
/// reads one run of memory, where a lower-case copy and a mask of their own were two more cache
/// lines per prefix, most of them cold by the next request (callgrind's cache simulation,
/// docs/benchmarks.md, eleventh pass). A prefix whose length is not a multiple of eight ends
/// with the pair of its last eight bytes, overlapping the one before: every comparison is one
/// whole-word load of the path, none padded. A prefix shorter than eight bytes is one pair,
/// zero-padded.
///
/// The first two pairs are kept inline, the rest in one allocation: every rule begins `api/v2/`,
/// so the second word is where most prefixes that do not match a path part from it, and about
/// twenty prefixes are compared per decision (rules, then the role's permissions). Those are
/// refused without reading any memory but the rule's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    /// `[lower, mask]` of the eight bytes at `word_at(0)` and `word_at(1)` (the second unused
    /// below nine bytes).
    head: [[u64; 2]; 2],
    /// The pairs from `word_at(2)` on: empty, and never allocated, up to sixteen bytes.
    tail: Box<[[u64; 2]]>,
    len: usize,
    text: Box<str>,
}

impl Prefix {
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let pair = |chunk: &[u8]| {
            let (mut lower, mut mask) = ([0u8; 8], [0u8; 8]);
            for (i, b) in chunk.iter().take(8).enumerate() {
                lower[i] = b.to_ascii_lowercase();
                mask[i] = if b.is_ascii_alphabetic() { 0x20 } else { 0 };
            }
            [u64::from_ne_bytes(lower), u64::from_ne_bytes(mask)]
        };
        let words: Vec<[u64; 2]> = if bytes.len() < 8 {
            vec![pair(bytes)]
        } else {
            (0..bytes.len().div_ceil(8))
                .map(|i| pair(&bytes[word_at(i, bytes.len())..]))
                .collect()
        };
        let mut head = [[0; 2]; 2];
        for (slot, words) in head.iter_mut().zip(&words) {
            *slot = *words;
        }
        Self {
            head,
            tail: words.get(2..).unwrap_or_default().into(),
            len: bytes.len(),
            text: text.into(),
        }
    }

    /// This prefix's [`PrefixKey`].
    pub fn key(&self) -> PrefixKey {
        // The last pair: `word_at` of the last word is `len - 8` once there are eight bytes
        // (below eight, `admits` reads no pair).
        let [lower, mask] = match self.len.div_ceil(8) {
            0 | 1 => self.head[0],
            2 => self.head[1],
            _ => self.tail.last().copied().unwrap_or(self.head[1]),
        };
        PrefixKey {
            lower,
            mask,
            len: self.len,
        }
    }

    /// The prefix as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `path` starts with this prefix, ignoring ASCII case.
    pub fn matches(&self, path: &str) -> bool {
        let Some(head) = path.as_bytes().get(..self.len) else {
            return false;
        };
        if self.len < 8 {
            // Zero-padded as its pair was made: a padded byte is 0 | 0 == 0.
            let mut word = [0u8; 8];
            word[..head.len()].copy_from_slice(head);
            let [lower, mask] = self.head[0];
            return u64::from_ne_bytes(word) | mask == lower;
        }
        let pair_matches = |i: usize, [lower, mask]: [u64; 2]| {
            let at = word_at(i, self.len);
            head.get(at..at + 8)
                .is_some_and(|bytes| word(bytes) | mask == lower)
        };
        // The inline pairs first, so a prefix that parts from the path by its sixteenth byte
        // is refused before its tail is read.
        pair_matches(0, self.head[0])
            && (self.len <= 8 || pair_matches(1, self.head[1]))
            && (self.tail.iter())
                .enumerate()
                .all(|(i, pair)| pair_matches(i + 2, *pair))
    }
}

/// A prefix's last eight bytes and its length: enough to refuse nearly every path the prefix
/// does not start, since every rule begins `api/v2/` and a prefix's end is where it parts from
/// most paths. Kept in arrays of their own ([`Prefixes`], a role's permission rows), a table's
/// keys are a few cache lines every decision reads, and a prefix is read only when its key
/// admits the path (read whole, each prefix compared was about a missed cache line in
/// callgrind's simulation; docs/benchmarks.md, fourteenth pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixKey {
    lower: u64,
    mask: u64,
    len: usize,
}

impl PrefixKey {
    /// False when `path` cannot start with the prefix; true when it may, which
    /// [`Prefix::matches`] decides. A prefix shorter than eight bytes admits every path as long.
    pub fn admits(&self, path: &str) -> bool {
        if self.len > path.len() {
            return false;
        }
        // `None` only below eight bytes: the start wrapped past the end.
        path.as_bytes()
            .get(self.len.wrapping_sub(8)..self.len)
            .is_none_or(|end| word(end) | self.mask == self.lower)
    }
}

/// Prefixes asked whether any of them starts a path (the pass rules, the block rules): each
/// key first, its prefix only when the key admits the path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes {
    keys: Box<[PrefixKey]>,
    prefixes: Box<[Prefix]>,
}

impl Prefixes {
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let prefixes: Box<[Prefix]> = texts.into_iter().map(Prefix::new).collect();
        Self {
            keys: prefixes.iter().map(Prefix::key).collect(),
            prefixes,
        }
    }

    /// `path` starts with one of the prefixes, ignoring ASCII case. Inline: the decision calls
    /// it twice (block, then pass rules), a call's overhead for a handful of keys each.
    #[inline]
    pub fn any_matches(&self, path: &str) -> bool {
        (self.keys.iter().zip(self.prefixes.iter()))
            .any(|(key, prefix)| key.admits(path) && prefix.matches(path))
    }

    /// The prefixes as written.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(Prefix::as_str)
    }
}

/// Where the `i`th compared word of a prefix of `len >= 8` bytes starts: every eighth byte,
/// the last word ending with the prefix.
fn word_at(i: usize, len: usize) -> usize {
    (i * 8).min(len - 8)
}

/// Eight bytes as one word (`bytes` is eight bytes long).
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(bytes);
    u64::from_ne_bytes(word)
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
        // Every string of up to 7 units over the bytes that decide the structure. `%61` (an
        // encoded `a`) sends the path through the rewrite, so both the one-pass fast path and
        // the checks after a rewrite are held to the oracle.
        let units = ["a", ".", "/", "%61"];
        let mut checked = 0;
        for len in 0..=7u32 {
            for mut n in 0..4usize.pow(len) {
                let mut raw = String::new();
                for _ in 0..len {
                    raw.push_str(units[n % 4]);
                    n /= 4;
                }
                let ours = canonical(&raw).ok().map(Cow::into_owned);
                assert_eq!(ours, reference(&raw.replace("%61", "a")), "{raw:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 21845);
    }

    #[test]
    fn plain_bytes_are_pchar_but_semicolon_and_the_slash() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&b);
            assert_eq!(is_plain(b), expected, "{b:#04x}");
        }
    }

    #[test]
    fn a_list_matches_when_any_prefix_does() {
        let list = Prefixes::new(["api/v2/barong/public", "api/v2/peatio/public", "api"]);
        assert!(list.any_matches("API/v2/x"));
        let list = Prefixes::new(["api/v2/barong/public", "api/v2/peatio/public"]);
        assert!(list.any_matches("api/v2/Peatio/PUBLIC/markets"));
        assert!(!list.any_matches("api/v2/peatio/publi"));
        assert!(!list.any_matches("api/v2/barong/resource/users/me"));
        assert!(!Prefixes::default().any_matches(""));
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            ["api/v2/barong/public", "api/v2/peatio/public"]
        );
    }

    #[test]
    fn prefixes_ignore_case() {
        let admin = Prefix::new("api/v2/peatio/admin");
        assert!(admin.matches("api/v2/Peatio/ADMIN/x"));
        assert!(!admin.matches("api/v2/peatio/admi"));
        assert!(!Prefix::new("api/v2/peatio").matches("api/v2"));
        assert!(Prefix::new("").matches("é"));
        assert_eq!(admin.as_str(), "api/v2/peatio/admin");
    }

    /// The word-wise match agrees with `eq_ignore_ascii_case` on every prefix and every path of up
    /// to 3 bytes over bytes around the letters' edges (`@` and `[` beside `A`
    /// and `Z`, `` ` `` and `{` beside `a` and `z`, `_` which differs from DEL only in bit
    /// 0x20), and across the word boundary on long prefixes.
    #[test]
    fn prefix_matches_agree_with_eq_ignore_ascii_case() {
        fn oracle(path: &[u8], prefix: &[u8]) -> bool {
            path.len() >= prefix.len() && path[..prefix.len()].eq_ignore_ascii_case(prefix)
        }
        fn all(alphabet: &[u8], max: u32) -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            for len in 0..=max {
                for mut n in 0..alphabet.len().pow(len) {
                    let mut text = Vec::new();
                    for _ in 0..len {
                        text.push(alphabet[n % alphabet.len()]);
                        n /= alphabet.len();
                    }
                    out.push(text);
                }
            }
            out
        }
        let alphabet = *b"aAzZ@[`{_\x7f/";
        let paths = all(&alphabet, 3);
        for prefix in all(&alphabet, 3) {
            let compiled = Prefix::new(std::str::from_utf8(&prefix).expect("ascii"));
            let key = compiled.key();
            for path in &paths {
                let text = std::str::from_utf8(path).expect("ascii");
                let expected = oracle(path, &prefix);
                assert_eq!(compiled.matches(text), expected, "{text:?} {prefix:?}");
                // Below eight bytes the key admits every path as long as the prefix.
                assert_eq!(key.admits(text), path.len() >= prefix.len(), "key {text:?}");
            }
        }
        let long = "api/v2/barong/resource/users/me";
        for len in 0..=long.len() {
            let prefix = Prefix::new(&long[..len]);
            let key = prefix.key();
            assert!(prefix.matches(&long.to_ascii_uppercase()));
            assert!(key.admits(&long.to_ascii_uppercase()));
            for (at, flip) in (0..len).flat_map(|at| [(at, 0x20), (at, 0x40)]) {
                let mut path = long.as_bytes().to_vec();
                path[at] ^= flip;
                let path = String::from_utf8(path).expect("ascii");
                let expected = oracle(path.as_bytes(), &long.as_bytes()[..len]);
                assert_eq!(prefix.matches(&path), expected, "{path:?}");
                // A key never refuses a path its prefix matches; it refuses a change in its
                // own eight bytes.
                assert!(!expected || key.admits(&path), "key {path:?}");
                if len >= 8 && at + 8 >= len {
                    assert_eq!(key.admits(&path), expected, "key {path:?} at {at}");
                }
            }
        }
    }
}
