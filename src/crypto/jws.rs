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

use serde_json::{Value, json};

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
