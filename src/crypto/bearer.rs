//! The bearer check of the resource and admin APIs: a JWT this server signed (any key of the
//! ring, current or retired), with Barong's claims and leeways.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::keyring::{SharedKeys, SignatureError};

/// Leeways of the bearer check, seconds (`JWT_EXPIRATION_LEEWAY`, `JWT_NOT_BEFORE_LEEWAY`,
/// `JWT_ISSUED_AT_LEEWAY`, each falling back to `JWT_DEFAULT_LEEWAY`, then to 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leeways {
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
}

impl Leeways {
    /// Each `JWT_*_LEEWAY`, else `JWT_DEFAULT_LEEWAY`, else none.
    pub fn from_config(config: &crate::config::Bearer) -> Self {
        let pick = |specific: Option<u64>| {
            specific
                .or(config.jwt_default_leeway)
                .and_then(|s| i64::try_from(s).ok())
                .unwrap_or(0)
        };
        Self {
            exp: pick(config.jwt_expiration_leeway),
            nbf: pick(config.jwt_not_before_leeway),
            iat: pick(config.jwt_issued_at_leeway),
        }
    }
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
mod tests {
    use super::*;
    use crate::crypto::keyring::KeyRing;
    use crate::crypto::keys::generate_private_key_pem;
    use crate::crypto::keys::{KeyAlgorithm, SigningKey};
    use serde_json::json;

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
