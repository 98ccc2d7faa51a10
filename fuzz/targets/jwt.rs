//! Bearer-token verification (`barong::crypto::bearer::JwtVerifier`, what the resource API runs on
//! every `Authorization: Bearer` header), and signing of arbitrary claims.
//!
//! Input, by its first byte: 0 = the rest is a whole token; 1 = header JSON, a newline,
//! payload JSON, a newline, the signature, base64url-encoded into a token here (so the fuzzer
//! reaches the JSON and claim checks); 2 = claims JSON signed with our key, then verified.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/jwt.rs` and the stable replay in
//! `tests/it/fuzz_replay.rs`.

use std::sync::OnceLock;

use std::sync::Arc;

use barong::crypto::bearer::{JwtVerifier, Leeways};
use barong::crypto::keyring::{KeyRing, RingKey, SharedKeys};
use barong::crypto::keys::{KeyAlgorithm, SigningKey, generate_private_key_pem};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

struct Keys {
    signer: Arc<RingKey>,
    verifier: JwtVerifier,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let algorithm = KeyAlgorithm::Es256;
        let pem = generate_private_key_pem(algorithm).expect("generate");
        let private_der = pem::parse(&pem).expect("pem").into_contents();
        let ring = KeyRing::single(&SigningKey {
            algorithm,
            private_der,
            pem,
        })
        .expect("key ring");
        let signer = ring.current().clone();
        let audience = ["peatio".to_owned(), "barong".to_owned()];
        let leeway = Leeways {
            exp: 5,
            nbf: 5,
            iat: 5,
        };
        let verifier =
            JwtVerifier::new(Arc::new(SharedKeys::new(ring)), "barong", &audience, leeway);
        Keys { signer, verifier }
    })
}

/// One input: must never panic.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = keys();
    match mode % 3 {
        0 => {
            let _ = keys.verifier.verify(&String::from_utf8_lossy(rest));
        }
        1 => {
            let mut parts = rest.splitn(3, |b| *b == b'\n');
            let header = URL_SAFE_NO_PAD.encode(parts.next().unwrap_or(b""));
            let payload = URL_SAFE_NO_PAD.encode(parts.next().unwrap_or(b""));
            let signature = URL_SAFE_NO_PAD.encode(parts.next().unwrap_or(b""));
            let _ = keys
                .verifier
                .verify(&format!("{header}.{payload}.{signature}"));
        }
        _ => {
            if let Ok(token) = keys.signer.sign(rest) {
                let _ = keys.verifier.verify(&token);
            }
        }
    }
}
