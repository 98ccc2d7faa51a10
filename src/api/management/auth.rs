//! Management request signing: every request is a jwt-multisig object checked against the
//! keychain and the scopes of Barong's `management_api.yml`.
//!
//! Beyond Barong, a request is good for a bounded time and once: one without `exp` is refused
//! when its `iat` is further than `BARONG_MANAGEMENT_MAX_AGE` from now (and without either),
//! and its `jti` (required) is recorded in the store's shared table of used token ids until
//! the request would have expired, so a replay on any instance is refused.

use std::collections::HashMap;
use std::path::Path;

use axum::http::{HeaderMap, StatusCode, Uri, header};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::MgmtError;
use crate::crypto::multisig::Multisig;

/// One configured signer.
pub struct Signer {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Who may sign which scope.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub permitted_signers: Vec<String>,
    #[serde(default)]
    pub mandatory_signers: Vec<String>,
}

/// `management_api.yml`: keychain, jwt options and scopes.
#[derive(Default)]
pub struct ManagementConfig {
    keychain: HashMap<String, Signer>,
    scopes: HashMap<String, Scope>,
    /// Leeway for `exp`/`nbf`, seconds (`jwt.leeway`, `exp_leeway`, `nbf_leeway`).
    leeway: i64,
    /// `jwt.iss` when `jwt.verify_iss` is true.
    issuer: Option<String>,
    /// `jwt.aud` when `jwt.verify_aud` is true.
    audience: Option<String>,
    /// Longest age of a request without `exp`, seconds.
    max_age: i64,
}

/// A verified request: its parameters, and the used-once key of its `jti` with the time until
/// which it must be remembered.
#[derive(Debug)]
pub struct Verified {
    pub params: Map<String, Value>,
    pub replay_key: String,
    pub remember_until: i64,
}

/// Longest age of a management request without `exp` when nothing is configured.
pub const DEFAULT_MAX_AGE: i64 = 300;

#[derive(Deserialize)]
struct RawKey {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    keychain: HashMap<String, RawKey>,
    #[serde(default)]
    jwt: HashMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    scopes: HashMap<String, Scope>,
}

impl ManagementConfig {
    /// Reads the file; a private key, an unknown algorithm or a scope without mandatory signers
    /// is refused (Barong refuses them at boot).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut keychain = HashMap::new();
        for (id, key) in raw.keychain {
            keychain.insert(id.clone(), signer(&id, &key)?);
        }
        for (name, scope) in &raw.scopes {
            if scope.mandatory_signers.is_empty() {
                return Err(format!("scope {name}: mandatory_signers must not be empty"));
            }
        }
        let flag = |name: &str| raw.jwt.get(name).and_then(|v| v.as_bool()) == Some(true);
        let text = |name: &str| {
            raw.jwt
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let leeway = ["leeway", "exp_leeway", "nbf_leeway"]
            .iter()
            .filter_map(|n| raw.jwt.get(*n).and_then(|v| v.as_i64()))
            .max()
            .unwrap_or(0);
        Ok(Self {
            keychain,
            scopes: raw.scopes,
            leeway,
            issuer: flag("verify_iss").then(|| text("iss")).flatten(),
            audience: flag("verify_aud").then(|| text("aud")).flatten(),
            max_age: DEFAULT_MAX_AGE,
        })
    }

    /// Sets the longest age of a request without `exp` (`BARONG_MANAGEMENT_MAX_AGE`).
    pub fn with_max_age(mut self, seconds: i64) -> Self {
        self.max_age = seconds;
        self
    }

    /// Checks a request for `scope`; its `data` claim (default `{}`) is the parameters.
    pub fn authenticate(
        &self,
        scope: &str,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Verified, MgmtError> {
        if uri.query().is_some() {
            return Err(MgmtError::message(
                StatusCode::BAD_REQUEST,
                "Query parameters are not allowed.",
            ));
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type != "application/json" {
            return Err(MgmtError::message(
                StatusCode::BAD_REQUEST,
                "Only JSON body is accepted.",
            ));
        }
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return Err(MgmtError::message(
                StatusCode::BAD_REQUEST,
                "Couldn't parse JWT.",
            ));
        };
        let failed = || MgmtError::message(StatusCode::UNAUTHORIZED, "Failed to verify JWT.");
        let rules = self.scopes.get(scope).ok_or_else(failed)?;
        let jws = Multisig::parse(&json).map_err(|_| failed())?;
        let claims = jws.claims().map_err(|_| failed())?;
        let mut verified = Vec::new();
        for signature in &jws.signatures {
            if !rules.permitted_signers.contains(&signature.kid) {
                continue;
            }
            let signer = self.keychain.get(&signature.kid).ok_or_else(failed)?;
            jws.verify(signature, &signer.key, signer.algorithm)
                .map_err(|_| failed())?;
            verified.push(signature.kid.as_str());
        }
        let remember_until = self.check_claims(&claims).map_err(|_| failed())?;
        // Without a `jti` a replay cannot be told from a new request.
        let jti = claims
            .get("jti")
            .and_then(|j| match j {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|j| !j.is_empty())
            .ok_or_else(failed)?;
        if rules
            .mandatory_signers
            .iter()
            .any(|m| !verified.contains(&m.as_str()))
        {
            return Err(MgmtError::message(
                StatusCode::UNAUTHORIZED,
                "Not enough signatures for the action.",
            ));
        }
        let params = match claims.get("data") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(failed()),
        };
        Ok(Verified {
            params,
            replay_key: format!("management:{jti}"),
            remember_until,
        })
    }

    /// `exp` (or, without it, `iat` within the maximum age) and `nbf`; `iss`/`aud` when the
    /// file asks for them. Returns until when the request could be accepted.
    fn check_claims(&self, claims: &Map<String, Value>) -> Result<i64, ()> {
        let now = chrono::Utc::now().timestamp();
        let until = match claims.get("exp") {
            Some(exp) => {
                let exp = exp.as_i64().ok_or(())?;
                if now >= exp + self.leeway {
                    return Err(());
                }
                exp + self.leeway
            }
            None => {
                let iat = claims.get("iat").and_then(Value::as_i64).ok_or(())?;
                let bound = self.max_age + self.leeway;
                if now.abs_diff(iat) > bound.unsigned_abs() {
                    return Err(());
                }
                iat + bound
            }
        };
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or(())?;
            if now + self.leeway < nbf {
                return Err(());
            }
        }
        if let Some(iss) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(iss.as_str())
        {
            return Err(());
        }
        if let Some(aud) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == aud,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
                _ => false,
            };
            if !ok {
                return Err(());
            }
        }
        Ok(until)
    }
}

fn signer(id: &str, key: &RawKey) -> Result<Signer, String> {
    let pem = base64::engine::general_purpose::URL_SAFE
        .decode(key.value.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key.value.trim()))
        .map_err(|_| format!("keychain {id}: value is not base64url"))?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("PRIVATE KEY") {
        return Err(format!("keychain {id}: a private key is not allowed"));
    }
    let algorithm: Algorithm = key
        .algorithm
        .parse()
        .map_err(|_| format!("keychain {id}: unknown algorithm {}", key.algorithm))?;
    let decoding = match algorithm {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => DecodingKey::from_rsa_pem(&pem),
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => DecodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
        _ => {
            return Err(format!(
                "keychain {id}: {} needs a public key",
                key.algorithm
            ));
        }
    }
    .map_err(|e| format!("keychain {id}: {e}"))?;
    Ok(Signer {
        algorithm,
        key: decoding,
    })
}
