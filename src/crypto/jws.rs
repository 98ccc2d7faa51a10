//! JWT signing on the hot path: the key pair is parsed once, the JWS header is encoded once,
//! and each token costs one base64 of the claims plus one signature (aws-lc-rs). The public
//! half is published as a JWKS with a `kid` (RFC 7638 thumbprint) in every token header, so
//! upstreams can rotate keys.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::keyring::{SharedKeys, SignatureError};
use super::keys::{KeyAlgorithm, KeyError, SigningKey};

enum Signer {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A ready-to-sign key with its JWK.
pub struct JwtSigner {
    signer: Signer,
    rng: SystemRandom,
    algorithm: KeyAlgorithm,
    kid: String,
    /// base64url of the JSON header, computed once.
    header_b64: String,
    jwk: Value,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// Parses the key once.
    pub fn new(key: &SigningKey) -> Result<Self, KeyError> {
        let invalid = || KeyError::Invalid {
            path: "signing key".into(),
            algorithm: key.algorithm.name(),
        };
        let der = key.private_der.as_slice();
        let (signer, jwk) = match key.algorithm {
            KeyAlgorithm::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                    .or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(der))
                    .map_err(|_| invalid())?;
                let public = pair.public_key();
                let jwk = json!({
                    "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
                    "kty": "RSA",
                    "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
                });
                (Signer::Rsa(pair), jwk)
            }
            KeyAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| invalid())?;
                // Uncompressed point: 0x04 ‖ X ‖ Y.
                let point = pair.public_key().as_ref().to_vec();
                if point.len() != 65 {
                    return Err(invalid());
                }
                let jwk = json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": B64.encode(&point[1..33]),
                    "y": B64.encode(&point[33..]),
                });
                (Signer::Ecdsa(pair), jwk)
            }
            KeyAlgorithm::EdDsa => {
                let pair =
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| invalid())?;
                let jwk = json!({
                    "crv": "Ed25519",
                    "kty": "OKP",
                    "x": B64.encode(pair.public_key().as_ref()),
                });
                (Signer::Ed25519(pair), jwk)
            }
        };
        // RFC 7638: the thumbprint of the required members, keys sorted, no whitespace;
        // serde_json with preserve_order keeps the insertion order written above (sorted).
        let canonical = serde_json::to_vec(&jwk).map_err(|_| invalid())?;
        let kid = B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &canonical,
        ));
        let header = json!({ "alg": key.algorithm.name(), "kid": kid, "typ": "JWT" });
        let header_b64 = B64.encode(serde_json::to_vec(&header).map_err(|_| invalid())?);
        let mut jwk = jwk;
        if let Value::Object(map) = &mut jwk {
            map.insert("alg".into(), json!(key.algorithm.name()));
            map.insert("kid".into(), json!(kid));
            map.insert("use".into(), json!("sig"));
        }
        Ok(Self {
            signer,
            rng: SystemRandom::new(),
            algorithm: key.algorithm,
            kid,
            header_b64,
            jwk,
        })
    }

    /// The key id carried in every token header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The JWKS document (`{"keys":[...]}`) of this key alone.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// The public JWK, with `alg`, `kid` and `use`.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs already-serialized claims into a compact JWS.
    pub fn sign(&self, claims_json: &[u8]) -> Result<String, KeyError> {
        let mut token = String::with_capacity(self.header_b64.len() + claims_json.len() * 2 + 400);
        token.push_str(&self.header_b64);
        token.push('.');
        B64.encode_string(claims_json, &mut token);
        let signature = self.signature(token.as_bytes())?;
        token.push('.');
        B64.encode_string(signature, &mut token);
        Ok(token)
    }

    fn signature(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
                    .map_err(|_| KeyError::Generation)?;
                Ok(signature)
            }
            Signer::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Generation),
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::generate_private_key_pem;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, jwk::JwkSet};

    fn signer(algorithm: KeyAlgorithm) -> JwtSigner {
        let pem = generate_private_key_pem(algorithm).expect("generate");
        let der = pem::parse(&pem).expect("pem").into_contents();
        JwtSigner::new(&SigningKey {
            algorithm,
            private_der: der,
            pem,
        })
        .expect("signer")
    }

    #[test]
    fn tokens_verify_against_the_published_jwks() {
        for (algorithm, jwt_alg) in [
            (KeyAlgorithm::Rs256, Algorithm::RS256),
            (KeyAlgorithm::Es256, Algorithm::ES256),
            (KeyAlgorithm::EdDsa, Algorithm::EdDSA),
        ] {
            let signer = signer(algorithm);
            let token = signer
                .sign(br#"{"sub":"session","exp":4102444800,"uid":"ID1"}"#)
                .expect("sign");
            let jwks: JwkSet = serde_json::from_value(signer.jwks()).expect("jwks");
            let header = jsonwebtoken::decode_header(&token).expect("header");
            assert_eq!(header.kid.as_deref(), Some(signer.kid()));
            let jwk = jwks.find(signer.kid()).expect("kid in jwks");
            let key = DecodingKey::from_jwk(jwk).expect("decoding key");
            let mut validation = Validation::new(jwt_alg);
            validation.validate_aud = false;
            let data = decode::<Value>(&token, &key, &validation).expect("verify");
            assert_eq!(data.claims["uid"], "ID1", "{algorithm:?}");
        }
    }
}

/// Leeways of the bearer check, seconds (`JWT_EXPIRATION_LEEWAY`, `JWT_NOT_BEFORE_LEEWAY`,
/// `JWT_ISSUED_AT_LEEWAY`, each falling back to `JWT_DEFAULT_LEEWAY`, then to 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leeways {
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
}

/// Verifies the session JWTs the authz path mints, as the resource and admin APIs receive them
/// from the gateway: header and signature by one of our keys (see `keyring`), `exp` required
/// and not passed (beyond the configured leeway), `nbf`/`iat` not in the future, `iss`, `aud`,
/// `sub == "session"` and a non-empty `jti`.
pub struct JwtVerifier {
    keys: Arc<SharedKeys>,
    issuer: String,
    audience: Vec<String>,
    leeway: Leeways,
}

/// Why a bearer token was refused (the API answers `jwt.decode_and_verify` for all of them).
#[derive(Debug, thiserror::Error)]
#[error("invalid bearer token: {0}")]
pub struct VerifyError(pub &'static str);

impl JwtVerifier {
    /// `issuer` and `audience` default to Barong's (`barong`, `peatio`/`barong`).
    pub fn new(keys: Arc<SharedKeys>, issuer: &str, audience: &[String], leeway: Leeways) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_vec(),
            leeway,
        }
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        let now = chrono::Utc::now().timestamp();
        let claims = self.keys.load().verify_signature(token, now).map_err(|e| {
            VerifyError(match e {
                SignatureError::Encoding => "malformed",
                SignatureError::Algorithm => "algorithm",
                SignatureError::Header => "not one of our session tokens",
                SignatureError::Signature => "bad signature",
            })
        })?;
        let number = |name: &str| {
            claims
                .get(name)
                .map(|v| v.as_f64().ok_or(VerifyError(name_of(name))))
        };
        match number("exp") {
            None => return Err(VerifyError("no exp")),
            Some(exp) => {
                if now as f64 >= exp? + self.leeway.exp as f64 {
                    return Err(VerifyError("expired"));
                }
            }
        }
        if let Some(nbf) = number("nbf")
            && nbf? > (now + self.leeway.nbf) as f64
        {
            return Err(VerifyError("not yet valid"));
        }
        if let Some(iat) = number("iat")
            && iat? > (now + self.leeway.iat) as f64
        {
            return Err(VerifyError("issued in the future"));
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(VerifyError("issuer"));
        }
        let ours = |a: &Value| {
            a.as_str()
                .is_some_and(|a| self.audience.iter().any(|x| x == a))
        };
        let audience_ok = match claims.get("aud") {
            Some(Value::Array(items)) => items.iter().any(ours),
            Some(single) => ours(single),
            None => false,
        };
        if !audience_ok {
            return Err(VerifyError("audience"));
        }
        if claims.get("sub").and_then(Value::as_str) != Some("session") {
            return Err(VerifyError("subject"));
        }
        if claims
            .get("jti")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(VerifyError("missing jti"));
        }
        Ok(claims)
    }
}

fn name_of(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp not a number",
        "nbf" => "nbf not a number",
        _ => "iat not a number",
    }
}

#[cfg(test)]
mod verifier_tests {
    use super::*;
    use crate::crypto::keyring::KeyRing;
    use crate::crypto::keys::generate_private_key_pem;

    fn key(algorithm: KeyAlgorithm) -> SigningKey {
        let pem = generate_private_key_pem(algorithm).expect("generate");
        let der = pem::parse(&pem).expect("pem").into_contents();
        SigningKey {
            algorithm,
            private_der: der,
            pem,
        }
    }

    fn claims(overrides: Value) -> Vec<u8> {
        let now = chrono::Utc::now().timestamp();
        let mut base = json!({
            "iat": now, "exp": now + 60, "sub": "session", "iss": "barong",
            "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "uid": "ID1"
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut base, overrides) {
            base.extend(more);
        }
        serde_json::to_vec(&base).expect("json")
    }

    #[test]
    fn accepts_our_tokens_and_refuses_the_rest() {
        let audience = ["peatio".to_owned(), "barong".to_owned()];
        for algorithm in [
            KeyAlgorithm::Rs256,
            KeyAlgorithm::Es256,
            KeyAlgorithm::EdDsa,
        ] {
            let keys = Arc::new(SharedKeys::new(
                KeyRing::single(&key(algorithm)).expect("ring"),
            ));
            let ours = keys.load().current().clone();
            let verifier = JwtVerifier::new(keys, "barong", &audience, Leeways::default());
            let token = ours.sign(&claims(json!({}))).expect("sign");
            assert_eq!(verifier.verify(&token).expect("valid")["uid"], "ID1");
            let now = chrono::Utc::now().timestamp();
            for bad in [
                json!({"exp": now}),
                json!({"exp": now - 1}),
                json!({"exp": null}),
                json!({"exp": "soon"}),
                json!({"sub": "confirmation"}),
                json!({"iss": "evil"}),
                json!({"aud": ["elsewhere"]}),
                json!({"jti": ""}),
                json!({"iat": now + 600}),
                json!({"nbf": now + 600}),
            ] {
                let token = ours.sign(&claims(bad.clone())).expect("sign");
                assert!(verifier.verify(&token).is_err(), "{algorithm:?} {bad}");
            }
            let stranger = KeyRing::single(&key(algorithm)).expect("ring");
            let forged = stranger.current().sign(&claims(json!({}))).expect("sign");
            assert!(verifier.verify(&forged).is_err(), "another key");
            assert!(verifier.verify("not.a.token").is_err());
        }
        // An HS256 token made with the public key as secret (alg confusion) is refused.
        let keys = Arc::new(SharedKeys::new(
            KeyRing::single(&key(KeyAlgorithm::Rs256)).expect("ring"),
        ));
        let kid = keys.load().current().kid().to_owned();
        let verifier = JwtVerifier::new(keys, "barong", &audience, Leeways::default());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid);
        let forged = jsonwebtoken::encode(
            &header,
            &serde_json::from_slice::<Value>(&claims(json!({}))).expect("claims"),
            &jsonwebtoken::EncodingKey::from_secret(b"public"),
        )
        .expect("forge");
        assert!(verifier.verify(&forged).is_err());
    }

    #[test]
    fn expiry_leeway_is_the_configured_one() {
        let audience = ["peatio".to_owned()];
        let keys = Arc::new(SharedKeys::new(
            KeyRing::single(&key(KeyAlgorithm::Es256)).expect("ring"),
        ));
        let ours = keys.load().current().clone();
        let now = chrono::Utc::now().timestamp();
        let token = ours.sign(&claims(json!({"exp": now - 5}))).expect("sign");
        let strict = JwtVerifier::new(keys.clone(), "barong", &audience, Leeways::default());
        assert!(strict.verify(&token).is_err());
        let lenient = Leeways {
            exp: 30,
            ..Leeways::default()
        };
        let lenient = JwtVerifier::new(keys, "barong", &audience, lenient);
        assert!(lenient.verify(&token).is_ok());
    }
}
