//! The fixed `Authorization` value the load baselines answer with (`baseline.rs`,
//! `grpc_floor.rs`): a real RS256 token signed once at start, so the bytes on the wire match
//! what barong sends.

use http::HeaderValue;

use barong::crypto::jws::JwtSigner;
use barong::crypto::keys::{KeyAlgorithm, SigningKey, generate_private_key_pem};

/// A token of the size the authz listener answers with (RS256, Barong's user claims).
pub fn fixed_bearer() -> HeaderValue {
    let pem = generate_private_key_pem(KeyAlgorithm::Rs256).expect("RSA key");
    let der = pem::parse(&pem).expect("PEM").into_contents();
    let signer = JwtSigner::new(&SigningKey {
        algorithm: KeyAlgorithm::Rs256,
        private_der: der,
        pem,
    })
    .expect("signer");
    let claims = serde_json::json!({
        "iat": 1_700_000_000, "exp": 1_700_003_600, "sub": "session", "iss": "barong",
        "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "uid": "ID0000000001",
        "email": "user0@barong.bench", "role": "member", "level": 3, "state": "active",
        "referral_id": null, "username": null,
    });
    let token = signer
        .sign(&serde_json::to_vec(&claims).expect("claims"))
        .expect("sign");
    HeaderValue::from_str(&format!("Bearer {token}")).expect("header value")
}
