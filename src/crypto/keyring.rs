//! The keys of the compact JWTs this server issues (session tokens for upstreams, e-mail
//! confirmation and password reset tokens). One key is current and signs; the keys it replaced
//! keep verifying, and stay in the JWKS, until the last token they signed has expired. The
//! whole ring is swapped at once when the keys change, so a request sees one consistent set.
//!
//! Every verifier of ours goes through [`KeyRing::verify_signature`]: the header must name one
//! of our keys by `kid`, carry `typ: JWT` and the algorithm of that key. A jwt-multisig
//! signature (events, management `otp/sign`) has neither `kid` nor `typ` in its protected
//! header, so it never passes for a compact token of ours even when made with the same key.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value, json};

use super::jws::JwtSigner;
use super::keys::{KeyAlgorithm, KeyError, SigningKey};
use crate::snapshot::Snapshot;

/// The `typ` every compact token of ours carries in its header.
pub const TOKEN_TYPE: &str = "JWT";

/// One key of the ring.
pub struct RingKey {
    signer: JwtSigner,
    decoding: DecodingKey,
    algorithm: Algorithm,
    multisig: MultisigKey,
    /// Unix time after which nothing it signed is valid any more (`None` while current).
    retires_at: Option<i64>,
}

impl RingKey {
    /// The `kid` of its tokens and JWK.
    pub fn kid(&self) -> &str {
        self.signer.kid()
    }

    /// Signs serialized claims into a compact JWS with `{alg, kid, typ}`.
    pub fn sign(&self, claims_json: &[u8]) -> Result<String, KeyError> {
        self.signer.sign(claims_json)
    }

    /// The jwt-multisig signer of the same key.
    pub fn multisig(&self) -> &MultisigKey {
        &self.multisig
    }

    /// When its tokens stop verifying, if it is no longer current.
    pub fn retires_at(&self) -> Option<i64> {
        self.retires_at
    }
}

/// A private key as jwt-multisig (events, `otp/sign`) uses it.
#[derive(Clone)]
pub struct MultisigKey {
    pub encoding: EncodingKey,
    pub algorithm: Algorithm,
    /// The public key as PEM (SubjectPublicKeyInfo), for Peatio's management keychain.
    pub public_pem: String,
}

impl MultisigKey {
    pub fn new(key: &SigningKey) -> Result<Self, KeyError> {
        let invalid = || KeyError::Invalid {
            path: "signing key".into(),
            algorithm: key.algorithm.name(),
        };
        let pem = key.pem.as_bytes();
        let (encoding, algorithm) = match key.algorithm {
            KeyAlgorithm::Rs256 => (EncodingKey::from_rsa_pem(pem), Algorithm::RS256),
            KeyAlgorithm::Es256 => (EncodingKey::from_ec_pem(pem), Algorithm::ES256),
            KeyAlgorithm::EdDsa => (EncodingKey::from_ed_pem(pem), Algorithm::EdDSA),
        };
        let encoding = encoding.map_err(|_| invalid())?;
        let public_pem = public_key_pem(key).ok_or_else(invalid)?;
        Ok(Self {
            encoding,
            algorithm,
            public_pem,
        })
    }
}

/// The SubjectPublicKeyInfo PEM of a private key.
fn public_key_pem(key: &SigningKey) -> Option<String> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let der: Vec<u8> = match key.algorithm {
        KeyAlgorithm::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.private_der)
                .or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(&key.private_der))
                .ok()?;
            pair.public_key().as_der().ok()?.as_ref().to_vec()
        }
        KeyAlgorithm::Es256 => {
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.private_der,
            )
            .ok()?;
            pair.public_key().as_der().ok()?.as_ref().to_vec()
        }
        KeyAlgorithm::EdDsa => {
            let pair =
                aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key.private_der)
                    .ok()?;
            pair.public_key().as_der().ok()?.as_ref().to_vec()
        }
    };
    Some(pem::encode(&pem::Pem::new("PUBLIC KEY", der)))
}

/// A key and, for a key that is no longer current, when its last token expires.
pub struct KeySpec {
    pub key: SigningKey,
    pub retires_at: Option<i64>,
}

/// The current key first, then the previous ones still verifying.
pub struct KeyRing {
    keys: Vec<Arc<RingKey>>,
    jwks: bytes::Bytes,
}

/// Why a token's header or signature is not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// Not three base64url JSON segments.
    Encoding,
    /// An algorithm none of our keys (or not the named key) signs with.
    Algorithm,
    /// Not `typ: JWT`, or no `kid` of ours.
    Header,
    /// The signature does not verify.
    Signature,
}

impl KeyRing {
    /// `current` signs; `previous` keys verify until their `retires_at`.
    pub fn new(current: &SigningKey, previous: &[KeySpec]) -> Result<Self, KeyError> {
        let mut keys = vec![Arc::new(ring_key(current, None)?)];
        for spec in previous {
            let key = ring_key(&spec.key, spec.retires_at)?;
            if keys.iter().all(|k| k.kid() != key.kid()) {
                keys.push(Arc::new(key));
            }
        }
        let jwks: Vec<&Value> = keys.iter().map(|k| k.signer.jwk()).collect();
        let jwks = bytes::Bytes::from(json!({ "keys": jwks }).to_string());
        Ok(Self { keys, jwks })
    }

    /// A ring of one key.
    pub fn single(key: &SigningKey) -> Result<Self, KeyError> {
        Self::new(key, &[])
    }

    /// The key that signs now.
    pub fn current(&self) -> &Arc<RingKey> {
        &self.keys[0]
    }

    /// Every key that verifies, current first.
    pub fn keys(&self) -> &[Arc<RingKey>] {
        &self.keys
    }

    /// The JWKS document, rendered once.
    pub fn jwks(&self) -> bytes::Bytes {
        self.jwks.clone()
    }

    /// Checks the header and the signature of a compact token; returns its claims object (not
    /// checked: that is the caller's, per token kind).
    pub fn verify_signature(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Map<String, Value>, SignatureError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SignatureError::Encoding);
        };
        let Some(Value::Object(head)) = decode_segment(header) else {
            return Err(SignatureError::Encoding);
        };
        let Some(Value::Object(claims)) = decode_segment(payload) else {
            return Err(SignatureError::Encoding);
        };
        let alg = head.get("alg").and_then(Value::as_str);
        if !self
            .keys
            .iter()
            .any(|k| Some(k.signer.algorithm().name()) == alg)
        {
            return Err(SignatureError::Algorithm);
        }
        if head.get("typ").and_then(Value::as_str) != Some(TOKEN_TYPE) {
            return Err(SignatureError::Header);
        }
        let kid = head.get("kid").and_then(Value::as_str);
        let key = self
            .keys
            .iter()
            .find(|k| Some(k.kid()) == kid && k.retires_at.is_none_or(|at| now < at))
            .ok_or(SignatureError::Header)?;
        if alg != Some(key.signer.algorithm().name()) {
            return Err(SignatureError::Algorithm);
        }
        let message_len = header.len() + 1 + payload.len();
        let message = &token.as_bytes()[..message_len];
        match jsonwebtoken::crypto::verify(signature, message, &key.decoding, key.algorithm) {
            Ok(true) => Ok(claims),
            Ok(false) => Err(SignatureError::Signature),
            Err(_) => Err(SignatureError::Encoding),
        }
    }
}

fn ring_key(key: &SigningKey, retires_at: Option<i64>) -> Result<RingKey, KeyError> {
    let invalid = || KeyError::Invalid {
        path: "signing key".into(),
        algorithm: key.algorithm.name(),
    };
    let signer = JwtSigner::new(key)?;
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(signer.jwk().clone()).map_err(|_| invalid())?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| invalid())?;
    let algorithm = match key.algorithm {
        KeyAlgorithm::Rs256 => Algorithm::RS256,
        KeyAlgorithm::Es256 => Algorithm::ES256,
        KeyAlgorithm::EdDsa => Algorithm::EdDSA,
    };
    Ok(RingKey {
        signer,
        decoding,
        algorithm,
        multisig: MultisigKey::new(key)?,
        retires_at,
    })
}

fn decode_segment(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The ring every component reads; replaced as a whole when the keys change.
pub struct SharedKeys {
    ring: Snapshot<KeyRing>,
}

impl SharedKeys {
    pub fn new(ring: KeyRing) -> Self {
        Self {
            ring: Snapshot::new(ring),
        }
    }

    /// The ring as of now.
    pub fn load(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// What `read` makes of the ring as of now, without taking a reference to it: the
    /// decision's way (every allowed decision reads the current key).
    pub fn read<R>(&self, read: impl FnOnce(&KeyRing) -> R) -> R {
        self.ring.read(read)
    }

    /// Makes `ring` the one everyone uses from now on.
    pub fn replace(&self, ring: KeyRing) {
        self.ring.store(Arc::new(ring));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::generate_private_key_pem;

    fn key(algorithm: KeyAlgorithm) -> SigningKey {
        let pem = generate_private_key_pem(algorithm).expect("generate");
        let private_der = pem::parse(&pem).expect("pem").into_contents();
        SigningKey {
            algorithm,
            private_der,
            pem,
        }
    }

    #[test]
    fn previous_keys_verify_until_they_retire_and_unknown_headers_fail() {
        let now = chrono::Utc::now().timestamp();
        let old_key = key(KeyAlgorithm::Es256);
        let old = KeyRing::single(&old_key).expect("old");
        let token = old.current().sign(br#"{"sub":"session"}"#).expect("sign");
        let ring = KeyRing::new(
            &key(KeyAlgorithm::Rs256),
            &[KeySpec {
                key: old_key,
                retires_at: Some(now + 60),
            }],
        )
        .expect("ring");
        assert_eq!(ring.keys().len(), 2);
        assert!(ring.verify_signature(&token, now).is_ok());
        assert_eq!(
            ring.verify_signature(&token, now + 60),
            Err(SignatureError::Header)
        );
        let jwks: Value = serde_json::from_slice(&ring.jwks()).expect("jwks");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
        // A multisig-style signature (no kid, no typ) over the same claims is not a token.
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"session"}"#);
        let protected = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let message = format!("{protected}.{payload}");
        let current = ring.current();
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &current.multisig().encoding,
            current.multisig().algorithm,
        )
        .expect("sign");
        assert_eq!(
            ring.verify_signature(&format!("{message}.{signature}"), now),
            Err(SignatureError::Header)
        );
    }
}
