//! Management API test helpers: signer keys made by the test, Barong's `management_api.yml`,
//! and jwt-multisig request bodies signed like Barong's clients sign them.
#![allow(
    dead_code,
    reason = "a helper kept for the areas that use it may be unused in the others"
)]

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// A signer: its id, algorithm, private key and public PEM.
pub struct TestSigner {
    pub kid: String,
    pub algorithm: Algorithm,
    pub private: EncodingKey,
    pub public_pem: String,
}

/// An RS256 signer (key written by `barong keys generate`).
pub fn rs256(kid: &str, dir: &Path) -> TestSigner {
    let path = dir.join(format!("{kid}.pem"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_barong"))
        .args(["keys", "generate", "--algorithm", "RS256", "--out"])
        .arg(&path)
        .env("BARONG_DATA_DIR", dir)
        .status()
        .expect("barong keys generate");
    assert!(status.success());
    from_pem(kid, Algorithm::RS256, &path)
}

/// An ES256 signer (rcgen).
pub fn es256(kid: &str) -> TestSigner {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec key");
    TestSigner {
        kid: kid.into(),
        algorithm: Algorithm::ES256,
        private: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("ec pem"),
        public_pem: pair.public_key_pem(),
    }
}

/// A signer from a PKCS#8 PEM file.
pub fn from_pem(kid: &str, algorithm: Algorithm, path: &PathBuf) -> TestSigner {
    let pem = std::fs::read_to_string(path).expect("read key");
    let pair = rcgen::KeyPair::from_pem(&pem).expect("parse key");
    let private = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        _ => EncodingKey::from_ec_pem(pem.as_bytes()),
    }
    .expect("encoding key");
    TestSigner {
        kid: kid.into(),
        algorithm,
        private,
        public_pem: pair.public_key_pem(),
    }
}

/// The keychain entry: `{algorithm, value: base64url(PEM)}`.
pub fn keychain_entry(signer: &TestSigner) -> String {
    let alg = match signer.algorithm {
        Algorithm::RS256 => "RS256",
        _ => "ES256",
    };
    format!(
        "  {}:\n    algorithm: {alg}\n    value: \"{}\"\n",
        signer.kid,
        URL_SAFE.encode(signer.public_pem.as_bytes())
    )
}

/// Signs `data` (the request parameters) by each signer, with `exp` one minute ahead.
pub fn request(data: Value, signers: &[&TestSigner]) -> Value {
    let now = chrono::Utc::now().timestamp();
    request_with_claims(
        json!({ "iat": now, "exp": now + 60, "jti": jti(), "data": data }),
        signers,
    )
}

/// A fresh request id (each is accepted once).
pub fn jti() -> String {
    hex::encode(rand::random::<[u8; 10]>())
}

/// Signs arbitrary claims.
pub fn request_with_claims(claims: Value, signers: &[&TestSigner]) -> Value {
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signatures: Vec<Value> = signers
        .iter()
        .map(|s| {
            let alg = match s.algorithm {
                Algorithm::RS256 => "RS256",
                _ => "ES256",
            };
            let protected = URL_SAFE_NO_PAD.encode(json!({ "alg": alg }).to_string());
            let message = format!("{protected}.{payload}");
            let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &s.private, s.algorithm)
                .expect("sign");
            json!({ "protected": protected, "header": { "kid": s.kid }, "signature": signature })
        })
        .collect();
    json!({ "payload": payload, "signatures": signatures })
}

/// The claims inside a multisig object.
pub fn claims_of(jws: &Value) -> Value {
    let payload = jws["payload"].as_str().expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

/// POSTs (or PUTs) a signed request to `/api/v2/barong/management<path>`.
pub async fn call(api: &str, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, body) = call_with_headers(api, method, path, body).await;
    (status, body)
}

/// [`call`], with the answer's headers.
pub async fn call_with_headers(
    api: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{api}/api/v2/barong/management{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}
