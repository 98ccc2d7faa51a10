//! Barong's one-time tokens: JWTs signed by our signing key, with `sub`
//! `confirmation` (e-mail confirmation) or `reset` (password reset), `iss: barong`,
//! `aud: ["peatio","barong"]`, a 20-hex `jti`, and `exp = iat + BARONG_JWT_EXPIRE_TIME`.
//! Verification answers Barong's `jwt.decode_and_verify.<suffix>` keys in Barong's check order
//! (segments, signature, exp, nbf, iss, iat, jti, aud, sub). The header must name one of our
//! keys (`kid`) with `typ: JWT`, so a jwt-multisig signature of the same key never passes, and
//! `sub` binds a token to its one use; the one-time claim it carries is checked against the
//! store by the caller.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::keyring::{MultisigKey, SharedKeys, SignatureError};

/// Signs and verifies one-time tokens with the server's current key ring, and signs
/// jwt-multisig objects (events, `otp/sign`) with the multisig key.
#[derive(Clone)]
pub struct TokenSigner {
    keys: Arc<SharedKeys>,
    /// The separate multisig key, when one is configured; otherwise the current JWT key signs.
    multisig: Option<MultisigKey>,
    /// Lifetime of a token, seconds.
    pub lifetime: i64,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(keys: Arc<SharedKeys>, multisig: Option<MultisigKey>, lifetime: i64) -> Self {
        Self {
            keys,
            multisig,
            lifetime,
        }
    }

    fn multisig_key(&self) -> MultisigKey {
        match &self.multisig {
            Some(key) => key.clone(),
            None => self.keys.load().current().multisig().clone(),
        }
    }

    /// Signs `claims` as a jwt-multisig object with the signer id `kid` (events, and the
    /// `barong` signature of management `otp/sign`).
    pub fn sign_multisig(
        &self,
        claims: &Value,
        kid: &str,
    ) -> Result<super::multisig::Multisig, super::multisig::MultisigError> {
        let key = self.multisig_key();
        super::multisig::sign(claims, kid, &key.encoding, key.algorithm)
    }

    /// Adds (replacing a previous one) the `kid` signature to an existing multisig object.
    pub fn add_signature(
        &self,
        jws: &mut super::multisig::Multisig,
        kid: &str,
    ) -> Result<(), super::multisig::MultisigError> {
        let key = self.multisig_key();
        jws.sign(kid, &key.encoding, key.algorithm)
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
        let json = serde_json::to_vec(&Value::Object(claims)).map_err(|e| e.to_string())?;
        let token = self
            .keys
            .load()
            .current()
            .sign(&json)
            .map_err(|e| e.to_string())?;
        Ok(IssuedToken { token, jti, exp })
    }

    /// Verifies a token expecting `sub`; the error is the complete Barong key.
    pub fn verify(&self, token: &str, sub: &str) -> Result<Map<String, Value>, String> {
        let fail = |suffix: &str| format!("jwt.decode_and_verify.{suffix}");
        if token.split('.').count() != 3 {
            return Err(fail("segments"));
        }
        let now = chrono::Utc::now().timestamp();
        // A header that names no key of ours, or another type or algorithm, is answered as a
        // signature that does not verify.
        let claims = match self.keys.load().verify_signature(token, now) {
            Ok(claims) => claims,
            Err(SignatureError::Encoding) => return Err(fail("encoding")),
            Err(SignatureError::Algorithm) => return Err(fail("algorithm")),
            Err(SignatureError::Header | SignatureError::Signature) => return Err(fail("raised")),
        };
        let number = |name: &str| claims.get(name).and_then(Value::as_f64);
        // Ours always carry `exp`; one without it is not ours to accept.
        match claims.get("exp").and_then(Value::as_f64) {
            Some(exp) if (now as f64) < exp => {}
            _ => return Err(fail("expired")),
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

fn last_word(text: &str) -> &str {
    text.split_whitespace().last().unwrap_or(text)
}

/// `n` random bytes as lowercase hex.
#[expect(
    clippy::expect_used,
    reason = "without system randomness no token can be made; the process cannot go on safely"
)]
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    hex::encode(bytes)
}

/// The `sub` of every compact token this server signs (`session` is also what Peatio's session
/// check requires).
pub const TOKEN_SUBJECTS: [&str; 3] = ["session", "confirmation", "reset"];

/// Whether a base64url payload may be signed for a client (management `otp/sign`): only a JSON
/// object that no verifier of a token we issue would accept. Refused: a `sub` of ours (or any
/// `sub` that is not a string), `iss: barong` (every token and event of ours), an `event` claim
/// (what event consumers act on), and anything we cannot read ourselves, since another reader
/// might read it differently. Duplicate members are looked at one by one, as parsers disagree
/// on which one wins; both base64 alphabets are read, as Ruby's decoder accepts both.
pub fn signable_payload(payload: &str) -> bool {
    let normalised: String = payload
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    let Ok(bytes) = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        normalised,
    ) else {
        return false;
    };
    let Ok(Members(members)) = serde_json::from_slice::<Members>(&bytes) else {
        return false;
    };
    let is = |value: &Value, names: &[&str]| {
        value
            .as_str()
            .is_some_and(|v| names.contains(&v.trim().to_ascii_lowercase().as_str()))
    };
    !members.iter().any(|(name, value)| match name.as_str() {
        "sub" => !value.is_string() || is(value, &TOKEN_SUBJECTS),
        "iss" => is(value, &["barong"]),
        "event" => true,
        _ => false,
    })
}

/// The members of a JSON object in order, duplicates kept.
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyring::KeyRing;
    use crate::crypto::keys::{KeyAlgorithm, SigningKey, generate_private_key_pem};

    fn signer(algorithm: KeyAlgorithm, lifetime: i64) -> TokenSigner {
        let pem = generate_private_key_pem(algorithm).expect("gen");
        let private_der = pem::parse(&pem).expect("pem").into_contents();
        let key = SigningKey {
            algorithm,
            private_der,
            pem,
        };
        let keys = Arc::new(SharedKeys::new(KeyRing::single(&key).expect("ring")));
        TokenSigner::new(keys, None, lifetime)
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

    /// An event (or any multisig signature of the same key) in compact form is no token: not a
    /// confirmation, not a reset, not a session bearer, whatever its claims say.
    #[test]
    fn multisig_signatures_are_no_compact_tokens() {
        use crate::crypto::bearer::{JwtVerifier, Leeways};
        let signer = signer(KeyAlgorithm::Rs256, 60);
        let now = chrono::Utc::now().timestamp();
        for sub in ["confirmation", "reset", "session"] {
            let claims = json!({
                "iat": now, "exp": now + 60, "sub": sub, "iss": "barong",
                "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "uid": "ID1",
                "event": {"name": "system.user.email.confirmation.token"},
            });
            let jws = signer.sign_multisig(&claims, "barong").expect("sign");
            let signature = &jws.signatures[0];
            let compact = format!(
                "{}.{}.{}",
                signature.protected, jws.payload, signature.signature
            );
            assert_eq!(
                signer.verify(&compact, sub).unwrap_err(),
                "jwt.decode_and_verify.raised"
            );
            let audience = ["peatio".to_owned()];
            let bearer =
                JwtVerifier::new(signer.keys.clone(), "barong", &audience, Leeways::default());
            assert!(bearer.verify(&compact).is_err(), "{sub}");
        }
    }

    #[test]
    fn payloads_that_pass_for_our_tokens_are_not_signable() {
        use base64::Engine;
        let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        let std64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        for ok in [
            r#"{"data":{"rid":"x"},"iat":1,"exp":2,"jti":"a"}"#,
            r#"{"sub":"withdraw","iss":"applogic"}"#,
        ] {
            assert!(signable_payload(&b64(ok)), "{ok}");
        }
        for bad in [
            r#"{"sub":"session","uid":"ID1","role":"superadmin"}"#,
            r#"{"sub":" Session "}"#,
            r#"{"sub":"reset","email":"victim@x.io"}"#,
            r#"{"sub":"confirmation"}"#,
            r#"{"sub":["session"]}"#,
            r#"{"sub":"x","sub":"session"}"#,
            r#"{"s\u0075b":"session"}"#,
            r#"{"iss":"barong","data":{}}"#,
            r#"{"event":{"name":"system.user.email.confirmation.token"}}"#,
            r#"["sub","session"]"#,
            r#"{"sub":"session"} trailing"#,
        ] {
            assert!(!signable_payload(&b64(bad)), "{bad}");
        }
        // `?>` encodes to `Pz4` in both alphabets; this one needs `/` in the standard alphabet.
        let standard = std64(r#"{"sub":"session","x":"???"}"#);
        assert!(standard.contains('/'));
        assert!(!signable_payload(&standard));
        assert!(!signable_payload("not base64!"));
    }
}
