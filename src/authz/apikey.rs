//! Barong's API-key checks that need no database: nonce parsing and window, and the HMAC.

use aws_lc_rs::hmac;

/// `X-Auth-Nonce` as Barong reads it: the leading digits as an integer (non-numeric → 0).
pub fn parse_nonce(text: &str) -> i64 {
    // A slice, not a collected `String`: this runs on every API-key request.
    let text = text.trim_start();
    let digits = &text[..text.bytes().take_while(u8::is_ascii_digit).count()];
    digits
        .parse()
        .unwrap_or(if digits.is_empty() { 0 } else { i64::MAX })
}

/// The HMAC algorithm of a key's `algorithm` column (`HS256` → SHA-256, ...).
pub fn hmac_algorithm(algorithm: &str) -> Option<hmac::Algorithm> {
    match algorithm {
        "HS256" => Some(hmac::HMAC_SHA256),
        "HS384" => Some(hmac::HMAC_SHA384),
        "HS512" => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

/// True when `signature` is the lowercase hex HMAC of `nonce + kid`, compared in constant time.
pub fn signature_matches(key: &hmac::Key, nonce: &str, kid: &str, signature: &str) -> bool {
    let mut context = hmac::Context::with_key(key);
    context.update(nonce.as_bytes());
    context.update(kid.as_bytes());
    let tag = context.sign();
    // Hex on the stack (the longest tag, SHA-512, is 128 digits): `hex::encode` builds its
    // `String` one `char` at a time, which cost more than the HMAC itself.
    let mut expected = [0u8; 2 * aws_lc_rs::digest::MAX_OUTPUT_LEN];
    let Some(expected) = expected.get_mut(..2 * tag.as_ref().len()) else {
        return false;
    };
    hex::encode_to_slice(tag.as_ref(), expected).is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(expected, signature.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn hmac_per_algorithm_and_case_sensitive_hex() {
        for (name, algorithm) in [
            ("HS256", hmac::HMAC_SHA256),
            ("HS384", hmac::HMAC_SHA384),
            ("HS512", hmac::HMAC_SHA512),
        ] {
            assert!(hmac_algorithm(name).is_some());
            let key = hmac::Key::new(algorithm, b"secret");
            let sig = hex::encode(hmac::sign(&key, b"1700kid").as_ref());
            assert!(signature_matches(&key, "1700", "kid", &sig), "{name}");
            assert!(!signature_matches(&key, "1700", "kid", &sig.to_uppercase()));
            assert!(!signature_matches(&key, "1701", "kid", &sig));
        }
        assert!(hmac_algorithm("RS256").is_none());
    }
}
