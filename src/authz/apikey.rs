//! Barong's API-key checks that need no database: nonce parsing and window, and the HMAC.

use hmac::{Hmac, KeyInit, Mac};
use sha2::block_api::compress256;
use sha2::{Sha256, Sha384, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// `X-Auth-Nonce` as Barong reads it: the leading digits as an integer (non-numeric → 0).
/// Too many digits for an `i64` read as `i64::MAX` (so the window refuses it).
///
/// The header is ASCII (`principal::key_headers`), where ASCII trimming is all trimming.
/// Accumulated in place, saturating: `str::parse` checked each digit through its general
/// radix code, about 170 instructions of every API-key request (callgrind).
pub fn parse_nonce(text: &[u8]) -> i64 {
    text.trim_ascii_start()
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |value, digit| {
            value
                .saturating_mul(10)
                .saturating_add(i64::from(digit - b'0'))
        })
}

/// A key's HMAC, keyed once when the key is cached, so a request hashes only its own message:
/// HS256 through [`Sha256Pads`] (two keyed states of 32 bytes), HS384 and HS512 by cloning
/// `Hmac`'s keyed state (two hash states and a block, a few hundred bytes).
///
/// RustCrypto's rather than aws-lc's, which the rest of the crate uses: aws-lc-rs copies a
/// whole `HMAC_CTX` (about 1 KiB, zeroed first) per signature, about a third of this check's
/// time (`benches/authz.rs`, `hmac/*`; docs/benchmarks.md). Both use the CPU's SHA
/// instructions. The keyed states are wiped on drop (the `zeroize` feature, and
/// [`Sha256Pads`]' own `Drop`), as aws-lc wipes its contexts.
#[derive(Clone)]
pub enum KeyMac {
    /// HS256, nearly every key: most messages are signed through `pads`, the rest (a message
    /// longer than one block) through `mac`.
    Sha256 {
        pads: Sha256Pads,
        mac: Hmac<Sha256>,
    },
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl KeyMac {
    /// The HMAC of a key's `algorithm` column (`HS256` → SHA-256, ...) keyed with `secret`;
    /// `None` for any other algorithm.
    pub fn new(algorithm: &str, secret: &[u8]) -> Option<Self> {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for these.
        match algorithm {
            "HS256" => Some(Self::Sha256 {
                pads: Sha256Pads::new(secret),
                mac: Hmac::new_from_slice(secret).ok()?,
            }),
            "HS384" => Hmac::new_from_slice(secret).ok().map(Self::Sha384),
            "HS512" => Hmac::new_from_slice(secret).ok().map(Self::Sha512),
            _ => None,
        }
    }
}

impl std::fmt::Debug for KeyMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sha256 { .. } => "KeyMac(HS256)",
            Self::Sha384(_) => "KeyMac(HS384)",
            Self::Sha512(_) => "KeyMac(HS512)",
        })
    }
}

/// True when `signature` is the lowercase hex HMAC of `nonce + kid`, compared in constant time.
pub fn signature_matches(key: &KeyMac, nonce: &[u8], kid: &str, signature: &[u8]) -> bool {
    match key {
        KeyMac::Sha256 { pads, mac } => match pads.tag(nonce, kid.as_bytes()) {
            Some(tag) => hex_matches(&tag, signature),
            None => hex_matches(&tag(mac, nonce, kid), signature),
        },
        KeyMac::Sha384(mac) => hex_matches(&tag(mac, nonce, kid), signature),
        KeyMac::Sha512(mac) => hex_matches(&tag(mac, nonce, kid), signature),
    }
}

fn tag<M: Mac + Clone>(mac: &M, nonce: &[u8], kid: &str) -> hmac::digest::Output<M> {
    let mut mac = mac.clone();
    mac.update(nonce);
    mac.update(kid.as_bytes());
    mac.finalize().into_bytes()
}

/// HMAC-SHA256 (RFC 2104) as two SHA-256 states keyed once: the compression of the key XOR
/// ipad and of the key XOR opad. A message that fits in one block with its padding (55 bytes:
/// a 13-digit nonce and a kid of up to 42 characters; Barong's kids are 16) is then signed by
/// exactly two compressions of blocks built on the stack. `Hmac::clone` + `finalize` did the
/// same two compressions through its block buffers: 141 ns a signature against 96 ns here
/// (docs/benchmarks.md, thirteenth pass). The compression is sha2's own
/// (`block_api::compress256`, the CPU's SHA instructions); the tests hold the tags to aws-lc's
/// HMAC for keys and messages around every block boundary.
#[derive(Clone)]
pub struct Sha256Pads {
    inner: [u32; 8],
    outer: [u32; 8],
}

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

impl Sha256Pads {
    fn new(secret: &[u8]) -> Self {
        use sha2::Digest;
        // A key longer than the block is hashed first; a shorter one is zero-padded.
        let mut key = Zeroizing::new([0u8; 64]);
        if secret.len() > 64 {
            key[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        let keyed = |pad: u8| {
            let mut block = Zeroizing::new([0u8; 64]);
            for (byte, key) in block.iter_mut().zip(key.iter()) {
                *byte = key ^ pad;
            }
            let mut state = SHA256_IV;
            compress256(&mut state, std::slice::from_ref(&*block));
            state
        };
        Self {
            inner: keyed(0x36),
            outer: keyed(0x5c),
        }
    }

    /// The HMAC of `first` then `second`; `None` when they do not fit in one block.
    fn tag(&self, first: &[u8], second: &[u8]) -> Option<[u8; 32]> {
        let len = first.len() + second.len();
        if len > 55 {
            return None;
        }
        // The inner hash: the keyed ipad block, then the message, 0x80 and the bit length of
        // both blocks (RFC 6234's padding).
        let mut block = [0u8; 64];
        block[..first.len()].copy_from_slice(first);
        block[first.len()..len].copy_from_slice(second);
        block[len] = 0x80;
        block[56..].copy_from_slice(&((64 + len as u64) * 8).to_be_bytes());
        let mut inner = self.inner;
        compress256(&mut inner, &[block]);
        // The outer hash: the keyed opad block, then the inner digest, padded the same way.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&digest(inner));
        block[32] = 0x80;
        block[56..].copy_from_slice(&((64 + 32u64) * 8).to_be_bytes());
        let mut outer = self.outer;
        compress256(&mut outer, &[block]);
        Some(digest(outer))
    }
}

/// A SHA-256 state as its digest: the eight words, big-endian.
fn digest(state: [u32; 8]) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    bytes
}

impl Drop for Sha256Pads {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

fn hex_matches(tag: &[u8], signature: &[u8]) -> bool {
    // Hex on the stack (the longest tag, SHA-512, is 128 digits): `hex::encode` builds its
    // `String` one `char` at a time, which cost more than the HMAC itself.
    let mut expected = [0u8; 128];
    let Some(expected) = expected.get_mut(..2 * tag.len()) else {
        return false;
    };
    crate::crypto::hex::encode_to_slice(tag, expected)
        && aws_lc_rs::constant_time::verify_slices_are_equal(expected, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    #[test]
    fn nonces_parse_leading_digits() {
        assert_eq!(parse_nonce("1700000000000".as_bytes()), 1_700_000_000_000);
        assert_eq!(parse_nonce("123abc".as_bytes()), 123);
        assert_eq!(parse_nonce("abc".as_bytes()), 0);
        assert_eq!(parse_nonce("-5".as_bytes()), 0);
        assert_eq!(parse_nonce("".as_bytes()), 0);
        assert_eq!(parse_nonce(" \t42 7".as_bytes()), 42);
        assert_eq!(parse_nonce("4\u{663}".as_bytes()), 4, "only ASCII digits");
        assert_eq!(parse_nonce("99999999999999999999".as_bytes()), i64::MAX);
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
            assert_eq!(parse_nonce(text.as_bytes()), oracle(&text), "{text:?}");
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
                // 41 to 43 with the 13-digit nonce: around the largest message HS256 signs
                // through its precomputed pads (55 bytes).
                for kid_len in [
                    0,
                    16,
                    41,
                    42,
                    43,
                    block - 14,
                    block - 13,
                    block - 5,
                    block + 3,
                ] {
                    let kid: String = (0..kid_len)
                        .map(|i| (b'a' + (i % 26) as u8) as char)
                        .collect();
                    let nonce = "1700000000000";
                    let sig = hex::encode(
                        hmac::sign(&reference, format!("{nonce}{kid}").as_bytes()).as_ref(),
                    );
                    let nonce = nonce.as_bytes();
                    assert!(
                        signature_matches(&key, nonce, &kid, sig.as_bytes()),
                        "{name} {secret_len} {kid_len}"
                    );
                    if sig.bytes().any(|b| b.is_ascii_alphabetic()) {
                        let upper = sig.to_uppercase();
                        assert!(
                            !signature_matches(&key, nonce, &kid, upper.as_bytes()),
                            "lowercase only"
                        );
                    }
                    let sig = sig.as_bytes();
                    assert!(!signature_matches(&key, b"1700000000001", &kid, sig));
                    assert!(!signature_matches(&key, nonce, &kid, &sig[..sig.len() - 1]));
                    assert!(!signature_matches(&key, nonce, &kid, b""));
                }
            }
        }
        assert!(KeyMac::new("RS256", b"secret").is_none());
        assert!(KeyMac::new("hs256", b"secret").is_none());
    }

    /// The pads sign every message that fits one block as RustCrypto's HMAC does, and give way
    /// to it above: every split of every length up to two blocks, for short, block-sized and
    /// long secrets.
    #[test]
    fn sha256_pads_agree_with_hmac_up_to_one_block_and_give_way_above() {
        for secret_len in [0, 20, 64, 65, 100] {
            let secret: Vec<u8> = (0..secret_len).map(|i| (i * 13 + 5) as u8).collect();
            let pads = Sha256Pads::new(&secret);
            let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret).expect("any length");
            let message: Vec<u8> = (0..128u8).map(|i| b'0' + i % 75).collect();
            for len in 0..=128 {
                for split in [0, len / 3, len] {
                    let (first, second) = message[..len].split_at(split);
                    let tag = pads.tag(first, second);
                    if len > 55 {
                        assert!(tag.is_none(), "{len} bytes do not fit one block");
                        continue;
                    }
                    let mut reference = mac.clone();
                    reference.update(&message[..len]);
                    let expected: [u8; 32] = reference.finalize().into_bytes().into();
                    assert_eq!(tag, Some(expected), "secret {secret_len}, message {len}");
                }
            }
        }
    }
}
