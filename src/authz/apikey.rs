//! Barong's API-key checks that need no database: nonce parsing and window, and the HMAC.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// `X-Auth-Nonce` as Barong reads it: the leading digits as an integer (non-numeric → 0).
/// Too many digits for an `i64` read as `i64::MAX` (so the window refuses it).
///
/// The header is visible ASCII (`HeaderValue::to_str`), where ASCII trimming is all trimming.
/// Accumulated in place, saturating: `str::parse` checked each digit through its general
/// radix code, about 170 instructions of every API-key request (callgrind).
pub fn parse_nonce(text: &str) -> i64 {
    text.trim_ascii_start()
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |value, digit| {
            value
                .saturating_mul(10)
                .saturating_add(i64::from(digit - b'0'))
        })
}

/// A key's HMAC, keyed once when the key is cached: every request clones the keyed state (two
/// hash states and a block, a few hundred bytes) and hashes only its own message.
///
/// RustCrypto's rather than aws-lc's, which the rest of the crate uses: aws-lc-rs copies a
/// whole `HMAC_CTX` (about 1 KiB, zeroed first) per signature, about a third of this check's
/// time (`benches/authz.rs`, `hmac/*`; docs/benchmarks.md). Both use the CPU's SHA
/// instructions. The keyed states are wiped on drop (the `zeroize` feature), as aws-lc wipes
/// its contexts.
#[derive(Clone)]
pub enum KeyMac {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl KeyMac {
    /// The HMAC of a key's `algorithm` column (`HS256` → SHA-256, ...) keyed with `secret`;
    /// `None` for any other algorithm.
    pub fn new(algorithm: &str, secret: &[u8]) -> Option<Self> {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for these.
        match algorithm {
            "HS256" => Hmac::new_from_slice(secret).ok().map(Self::Sha256),
            "HS384" => Hmac::new_from_slice(secret).ok().map(Self::Sha384),
            "HS512" => Hmac::new_from_slice(secret).ok().map(Self::Sha512),
            _ => None,
        }
    }
}

impl std::fmt::Debug for KeyMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sha256(_) => "KeyMac(HS256)",
            Self::Sha384(_) => "KeyMac(HS384)",
            Self::Sha512(_) => "KeyMac(HS512)",
        })
    }
}

/// True when `signature` is the lowercase hex HMAC of `nonce + kid`, compared in constant time.
pub fn signature_matches(key: &KeyMac, nonce: &str, kid: &str, signature: &str) -> bool {
    match key {
        KeyMac::Sha256(mac) => hex_matches(&tag(mac, nonce, kid), signature),
        KeyMac::Sha384(mac) => hex_matches(&tag(mac, nonce, kid), signature),
        KeyMac::Sha512(mac) => hex_matches(&tag(mac, nonce, kid), signature),
    }
}

fn tag<M: Mac + Clone>(mac: &M, nonce: &str, kid: &str) -> hmac::digest::Output<M> {
    let mut mac = mac.clone();
    mac.update(nonce.as_bytes());
    mac.update(kid.as_bytes());
    mac.finalize().into_bytes()
}

fn hex_matches(tag: &[u8], signature: &str) -> bool {
    // Hex on the stack (the longest tag, SHA-512, is 128 digits): `hex::encode` builds its
    // `String` one `char` at a time, which cost more than the HMAC itself.
    let mut expected = [0u8; 128];
    let Some(expected) = expected.get_mut(..2 * tag.len()) else {
        return false;
    };
    hex::encode_to_slice(tag, expected).is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(expected, signature.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    #[test]
    fn nonces_parse_leading_digits() {
        assert_eq!(parse_nonce("1700000000000"), 1_700_000_000_000);
        assert_eq!(parse_nonce("123abc"), 123);
        assert_eq!(parse_nonce("abc"), 0);
        assert_eq!(parse_nonce("-5"), 0);
        assert_eq!(parse_nonce(""), 0);
        assert_eq!(parse_nonce(" \t42 7"), 42);
        assert_eq!(parse_nonce("4\u{663}"), 4, "only ASCII digits");
        assert_eq!(parse_nonce("99999999999999999999"), i64::MAX);
        // Against `str::parse`, the rule as first written, around the overflow.
        let oracle = |text: &str| {
            let text = text.trim_start();
            let digits = &text[..text.bytes().take_while(u8::is_ascii_digit).count()];
            digits
                .parse()
                .unwrap_or(if digits.is_empty() { 0 } else { i64::MAX })
        };
        let max = i64::MAX.to_string();
        for text in [
            max.clone(),
            format!("{}8", &max[..max.len() - 1]),
            format!("{max}0"),
            format!("000{max}"),
            "922337203685477580".into(),
            "0".into(),
            "007x".into(),
            "\t 12".into(),
        ] {
            assert_eq!(parse_nonce(&text), oracle(&text), "{text:?}");
        }
    }

    /// Held to aws-lc's HMAC (what signed keys before, and what `kyc` and `encryption` still
    /// use) for every algorithm, secret lengths around each block size and messages around
    /// each padding boundary.
    #[test]
    fn hmac_per_algorithm_agrees_with_aws_lc_and_is_case_sensitive() {
        for (name, algorithm, block) in [
            ("HS256", hmac::HMAC_SHA256, 64),
            ("HS384", hmac::HMAC_SHA384, 128),
            ("HS512", hmac::HMAC_SHA512, 128),
        ] {
            for secret_len in [0, 1, 32, block - 1, block, block + 1, 3 * block] {
                let secret: Vec<u8> = (0..secret_len).map(|i| (i * 7 + 1) as u8).collect();
                let key = KeyMac::new(name, &secret).expect("a known algorithm");
                let reference = hmac::Key::new(algorithm, &secret);
                for kid_len in [0, 16, block - 14, block - 13, block - 5, block + 3] {
                    let kid: String = (0..kid_len)
                        .map(|i| (b'a' + (i % 26) as u8) as char)
                        .collect();
                    let nonce = "1700000000000";
                    let sig = hex::encode(
                        hmac::sign(&reference, format!("{nonce}{kid}").as_bytes()).as_ref(),
                    );
                    assert!(
                        signature_matches(&key, nonce, &kid, &sig),
                        "{name} {secret_len} {kid_len}"
                    );
                    if sig.bytes().any(|b| b.is_ascii_alphabetic()) {
                        let upper = sig.to_uppercase();
                        assert!(
                            !signature_matches(&key, nonce, &kid, &upper),
                            "lowercase only"
                        );
                    }
                    assert!(!signature_matches(&key, "1700000000001", &kid, &sig));
                    assert!(!signature_matches(&key, nonce, &kid, &sig[..sig.len() - 1]));
                    assert!(!signature_matches(&key, nonce, &kid, ""));
                }
            }
        }
        assert!(KeyMac::new("RS256", b"secret").is_none());
        assert!(KeyMac::new("hs256", b"secret").is_none());
    }
}
