//! Barong's one-time tokens (reference §12.3): JWTs signed by our signing key, with `sub`
//! `confirmation` (e-mail confirmation) or `reset` (password reset), `iss: barong`,
//! `aud: ["peatio","barong"]`, a 20-hex `jti`, and `exp = iat + BARONG_JWT_EXPIRE_TIME`.
//! Verification answers Barong's `jwt.decode_and_verify.<suffix>` keys in Barong's check order
//! (segments, signature, exp, nbf, iss, iat, jti, aud, sub).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::keys::{KeyAlgorithm, SigningKey};

/// Signs and verifies one-time tokens with the server's key.
#[derive(Clone)]
pub struct TokenSigner {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Lifetime of a token, seconds.
    pub lifetime: i64,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a key cannot sign tokens.
#[derive(Debug, thiserror::Error)]
#[error("the signing key cannot be used for tokens: {0}")]
pub struct TokenKeyError(String);

impl TokenSigner {
    /// Builds the signer from the loaded private key; the public half is derived from it.
    pub fn new(key: &SigningKey, lifetime: i64) -> Result<Self, TokenKeyError> {
        use aws_lc_rs::signature::KeyPair;
        let err = |e: &dyn std::fmt::Display| TokenKeyError(e.to_string());
        let pem = key.pem.as_bytes();
        let (algorithm, encoding, public) = match key.algorithm {
            KeyAlgorithm::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.private_der)
                    .or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(&key.private_der))
                    .map_err(|e| err(&e))?;
                (
                    Algorithm::RS256,
                    EncodingKey::from_rsa_pem(pem).map_err(|e| err(&e))?,
                    DecodingKey::from_rsa_der(pair.public_key().as_ref()),
                )
            }
            KeyAlgorithm::Es256 => {
                let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &key.private_der,
                )
                .map_err(|e| err(&e))?;
                (
                    Algorithm::ES256,
                    EncodingKey::from_ec_pem(pem).map_err(|e| err(&e))?,
                    DecodingKey::from_ec_der(pair.public_key().as_ref()),
                )
            }
            KeyAlgorithm::EdDsa => {
                let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(
                    &key.private_der,
                )
                .map_err(|e| err(&e))?;
                (
                    Algorithm::EdDSA,
                    EncodingKey::from_ed_pem(pem).map_err(|e| err(&e))?,
                    DecodingKey::from_ed_der(pair.public_key().as_ref()),
                )
            }
        };
        Ok(Self {
            algorithm,
            encoding,
            decoding: public,
            lifetime,
        })
    }

    /// Signs `claims` as a jwt-multisig object with the signer id `kid` (events, and the
    /// `barong` signature of management `otp/sign`).
    pub fn sign_multisig(
        &self,
        claims: &Value,
        kid: &str,
    ) -> Result<super::multisig::Multisig, super::multisig::MultisigError> {
        super::multisig::sign(claims, kid, &self.encoding, self.algorithm)
    }

    /// Adds (replacing a previous one) the `kid` signature to an existing multisig object.
    pub fn add_signature(
        &self,
        jws: &mut super::multisig::Multisig,
        kid: &str,
    ) -> Result<(), super::multisig::MultisigError> {
        jws.sign(kid, &self.encoding, self.algorithm)
    }

    /// Signs a token with `sub` and the extra claims; returns it with its `jti` and `exp`.
    pub fn issue(&self, sub: &str, extra: Map<String, Value>) -> Result<IssuedToken, String> {
        let now = chrono::Utc::now().timestamp();
        let jti = random_hex(10);
        let exp = now + self.lifetime;
        let mut claims = Map::new();
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(exp));
        claims.insert("sub".into(), json!(sub));
        claims.insert("iss".into(), json!("barong"));
        claims.insert("aud".into(), json!(["peatio", "barong"]));
        claims.insert("jti".into(), json!(jti));
        claims.extend(extra);
        let token = jsonwebtoken::encode(
            &Header::new(self.algorithm),
            &Value::Object(claims),
            &self.encoding,
        )
        .map_err(|e| e.to_string())?;
        Ok(IssuedToken { token, jti, exp })
    }

    /// Verifies a token expecting `sub`; the error is the complete Barong key.
    pub fn verify(&self, token: &str, sub: &str) -> Result<Map<String, Value>, String> {
        let fail = |suffix: &str| format!("jwt.decode_and_verify.{suffix}");
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(fail("segments"));
        }
        let header: Value = decode_segment(parts[0]).ok_or_else(|| fail("encoding"))?;
        let claims: Value = decode_segment(parts[1]).ok_or_else(|| fail("encoding"))?;
        let Value::Object(claims) = claims else {
            return Err(fail("encoding"));
        };
        if header.get("alg").and_then(Value::as_str) != Some(alg_name(self.algorithm)) {
            return Err(fail("algorithm"));
        }
        let message = format!("{}.{}", parts[0], parts[1]);
        match jsonwebtoken::crypto::verify(
            parts[2],
            message.as_bytes(),
            &self.decoding,
            self.algorithm,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(fail("raised")),
            Err(_) => return Err(fail("encoding")),
        }
        let now = chrono::Utc::now().timestamp();
        let number = |name: &str| claims.get(name).and_then(Value::as_f64);
        if let Some(exp) = claims.get("exp") {
            match exp.as_f64() {
                Some(exp) if (now as f64) < exp => {}
                _ => return Err(fail("expired")),
            }
        }
        if let Some(nbf) = number("nbf")
            && nbf > now as f64
        {
            return Err(fail("reached"));
        }
        match claims.get("iss").and_then(Value::as_str) {
            Some("barong") => {}
            Some(other) => return Err(fail(last_word(other))),
            None => return Err(fail("<none>")),
        }
        if let Some(iat) = claims.get("iat") {
            match iat.as_f64() {
                Some(iat) if iat <= now as f64 => {}
                _ => return Err(fail("iat")),
            }
        }
        if claims
            .get("jti")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(fail("jti"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == "peatio" || a == "barong",
            Some(Value::Array(items)) => items
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a == "peatio" || a == "barong")),
            _ => false,
        };
        if !audience_ok {
            // Ruby interpolates the received value: a string as is, an array as `["a", "b"]`.
            let received = match claims.get("aud") {
                None | Some(Value::Null) => "<none>".to_owned(),
                Some(Value::String(a)) => a.clone(),
                Some(Value::Array(items)) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(other) => other.to_string(),
            };
            return Err(fail(last_word(&received)));
        }
        match claims.get("sub").and_then(Value::as_str) {
            Some(s) if s == sub => Ok(claims),
            Some(other) => Err(fail(last_word(other))),
            None => Err(fail("<none>")),
        }
    }
}

/// A signed token with the claims the caller stores.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub exp: i64,
}

fn alg_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "RS256",
    }
}

fn last_word(text: &str) -> &str {
    text.split_whitespace().last().unwrap_or(text)
}

fn decode_segment(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{generate_private_key_pem, write_secret_file};

    fn signer(algorithm: KeyAlgorithm, lifetime: i64) -> TokenSigner {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        write_secret_file(&path, &generate_private_key_pem(algorithm).expect("gen")).expect("w");
        let key = SigningKey::load(&path, algorithm).expect("load");
        TokenSigner::new(&key, lifetime).expect("signer")
    }

    #[test]
    fn round_trip_and_barong_suffixes() {
        for algorithm in [
            KeyAlgorithm::Rs256,
            KeyAlgorithm::Es256,
            KeyAlgorithm::EdDsa,
        ] {
            let s = signer(algorithm, 60);
            let mut extra = Map::new();
            extra.insert("email".into(), json!("a@b.com"));
            let issued = s.issue("confirmation", extra).expect("issue");
            let claims = s.verify(&issued.token, "confirmation").expect("valid");
            assert_eq!(claims["email"], "a@b.com");
            assert_eq!(claims["jti"], issued.jti.as_str());
            assert_eq!(
                s.verify(&issued.token, "reset").unwrap_err(),
                "jwt.decode_and_verify.confirmation"
            );
            assert_eq!(
                s.verify("abc", "reset").unwrap_err(),
                "jwt.decode_and_verify.segments"
            );
            assert_eq!(
                s.verify("a.b.c", "reset").unwrap_err(),
                "jwt.decode_and_verify.encoding"
            );
            let other = signer(algorithm, 60);
            let forged = other.issue("confirmation", Map::new()).expect("issue");
            assert_eq!(
                s.verify(&forged.token, "confirmation").unwrap_err(),
                "jwt.decode_and_verify.raised"
            );
            let expired = signer(algorithm, -10);
            let old = expired.issue("confirmation", Map::new()).expect("issue");
            assert_eq!(
                expired.verify(&old.token, "confirmation").unwrap_err(),
                "jwt.decode_and_verify.expired"
            );
        }
    }
}
