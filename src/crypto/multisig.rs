//! jwt-multisig, the JWS general JSON serialization Barong uses for management requests and
//! events: `{"payload": b64url(claims), "signatures": [{"protected": b64url(header),
//! "header": {"kid": ...}, "signature": b64url(sig)}, ...]}`. Each signature is an ordinary
//! compact-JWS signature over `protected + "." + payload`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value, json};

/// Why a multisig object cannot be read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultisigError {
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    #[error("signature of {0} does not verify")]
    BadSignature(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// One signature of a multisig object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub kid: String,
    pub protected: String,
    pub signature: String,
}

/// A parsed multisig object.
#[derive(Debug, Clone, PartialEq)]
pub struct Multisig {
    /// The base64url payload as received (the signed bytes).
    pub payload: String,
    pub signatures: Vec<Signature>,
}

impl Multisig {
    /// Reads the general serialization; anything else is `Malformed`.
    pub fn parse(value: &Value) -> Result<Self, MultisigError> {
        let payload = value
            .get("payload")
            .and_then(Value::as_str)
            .ok_or(MultisigError::Malformed("payload"))?
            .to_owned();
        let list = value
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or(MultisigError::Malformed("signatures"))?;
        let signatures = list
            .iter()
            .map(|s| {
                let text = |name: &'static str| {
                    s.get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or(MultisigError::Malformed(name))
                };
                let kid = s
                    .get("header")
                    .and_then(|h| h.get("kid"))
                    .and_then(Value::as_str)
                    .ok_or(MultisigError::Malformed("kid"))?
                    .to_owned();
                Ok(Signature {
                    kid,
                    protected: text("protected")?,
                    signature: text("signature")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            payload,
            signatures,
        })
    }

    /// The decoded claims object.
    pub fn claims(&self) -> Result<Map<String, Value>, MultisigError> {
        match decode_json(&self.payload) {
            Some(Value::Object(map)) => Ok(map),
            _ => Err(MultisigError::Malformed("payload")),
        }
    }

    /// Verifies one signature with `key`; the algorithm is the one of its protected header and
    /// must be `allowed`.
    pub fn verify(
        &self,
        signature: &Signature,
        key: &DecodingKey,
        allowed: Algorithm,
    ) -> Result<(), MultisigError> {
        let header = decode_json(&signature.protected).ok_or(MultisigError::Malformed("header"))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg != algorithm_name(allowed) {
            return Err(MultisigError::BadSignature(signature.kid.clone()));
        }
        let message = format!("{}.{}", signature.protected, self.payload);
        match jsonwebtoken::crypto::verify(&signature.signature, message.as_bytes(), key, allowed) {
            Ok(true) => Ok(()),
            _ => Err(MultisigError::BadSignature(signature.kid.clone())),
        }
    }

    /// Adds (replacing any signature of the same kid) a signature by `key`.
    pub fn sign(
        &mut self,
        kid: &str,
        key: &EncodingKey,
        algorithm: Algorithm,
    ) -> Result<(), MultisigError> {
        let signature = sign_part(&self.payload, kid, key, algorithm)?;
        self.signatures.retain(|s| s.kid != kid);
        self.signatures.push(signature);
        Ok(())
    }

    /// The general serialization.
    pub fn to_json(&self) -> Value {
        let signatures: Vec<Value> = self
            .signatures
            .iter()
            .map(|s| {
                json!({
                    "protected": s.protected,
                    "header": { "kid": s.kid },
                    "signature": s.signature,
                })
            })
            .collect();
        json!({ "payload": self.payload, "signatures": signatures })
    }
}

/// Signs `claims` once: a new multisig object with a single signature.
pub fn sign(
    claims: &Value,
    kid: &str,
    key: &EncodingKey,
    algorithm: Algorithm,
) -> Result<Multisig, MultisigError> {
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = sign_part(&payload, kid, key, algorithm)?;
    Ok(Multisig {
        payload,
        signatures: vec![signature],
    })
}

fn sign_part(
    payload: &str,
    kid: &str,
    key: &EncodingKey,
    algorithm: Algorithm,
) -> Result<Signature, MultisigError> {
    let header = json!({ "alg": algorithm_name(algorithm) });
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let message = format!("{protected}.{payload}");
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, algorithm)
        .map_err(|e| MultisigError::Sign(e.to_string()))?;
    Ok(Signature {
        kid: kid.to_owned(),
        protected,
        signature,
    })
}

fn decode_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The JOSE name of an algorithm.
pub fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}
