//! API keys as both the resource and the management namespaces issue and change them.

use super::ApiState;
use super::error::ApiError;
use crate::domain::{ApiKey, KeyHolder, NewApiKey, UserState};
use crate::invalidation::Invalidation;
use crate::service::error::Key;
use crate::store::StoreError;

/// Algorithms a key may use (Barong: HS256 only; the authz path verifies all three).
pub const ALGORITHMS: &[&str] = &["HS256", "HS384", "HS512"];

/// `scope` as Barong splits it: on `,`, no trimming.
fn split_scope(scope: Option<&str>) -> Vec<String> {
    scope
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| ApiError::internal())?;
    Ok(hex::encode(buf))
}

/// Creates a key for `holder` (whose state is `holder_state`): kid of 16 hex digits, secret of
/// 32, state active; the key and its secret in clear (stored encrypted).
pub async fn issue_key(
    state: &ApiState,
    holder: KeyHolder,
    holder_state: &UserState,
    algorithm: &str,
    scope: Option<&str>,
) -> Result<(ApiKey, String), ApiError> {
    let mut errors = Vec::new();
    if !ALGORITHMS.contains(&algorithm) {
        errors.push("kid.blank".to_owned());
        errors.push("algorithm.inclusion".to_owned());
    }
    if !holder_state.is_active() {
        errors.push("key_holder_account.invalid".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let secret = random_hex(16)?;
    let mut attempt = 0;
    let key = loop {
        attempt += 1;
        let new = NewApiKey {
            holder,
            kid: random_hex(8)?,
            algorithm: algorithm.to_owned(),
            scope: split_scope(scope),
            secret_encrypted: state.encryptor.encrypt(&secret),
            state: "active".into(),
        };
        match state.store.create_api_key(&new).await {
            Ok(key) => break key,
            Err(StoreError::Conflict(_)) if attempt < 3 => continue,
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::unprocessable(vec!["kid.taken".into()]));
            }
            Err(other) => return Err(other.into()),
        }
    };
    Ok((key, secret))
}

/// Replaces a key's scope (cleared when absent, as Barong does) and sets its state; activating
/// needs an active holder (`state.invalid`).
pub async fn update_key(
    state: &ApiState,
    key: &ApiKey,
    holder_state: &UserState,
    scope: Option<&str>,
    new_state: Option<&str>,
) -> Result<ApiKey, ApiError> {
    if new_state == Some("active") && !holder_state.is_active() {
        return Err(ApiError::unprocessable(vec!["state.invalid".into()]));
    }
    let updated = state
        .store
        .update_api_key(key.id, &split_scope(scope), new_state)
        .await?
        .ok_or_else(|| ApiError::from(Key::RecordNotFound))?;
    // Awaited: the answer is never followed by a decision that still accepts the old key.
    state
        .invalidation
        .publish_applied(Invalidation::ApiKey(updated.kid.clone()))
        .await;
    Ok(updated)
}
