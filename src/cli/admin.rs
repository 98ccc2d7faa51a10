//! Operator commands: `barong users create` and `barong permissions load`.

use std::path::Path;

use serde_yaml_ng::Value as Yaml;

use crate::config::Config;
use crate::crypto::password_hash::hash_password;
use crate::domain::password::PasswordPolicy;
use crate::domain::{
    LabelScope, NewLabel, NewPermission, NewUser, UserInput, UserState, derive_level, generate_uid,
    validate_user,
};
use crate::invalidation::Invalidation;
use crate::server::{self, ServeError};
use crate::store::{Store, StoreError};

/// Verbs and actions a permission may have (as `POST /admin/permissions` checks them).
const VERBS: &[&str] = &["GET", "POST", "DELETE", "PUT", "HEAD", "PATCH", "ALL"];
const ACTIONS: &[&str] = &["ACCEPT", "DROP", "AUDIT"];

fn invalid(message: impl Into<String>) -> ServeError {
    ServeError::Invalid(message.into())
}

/// Creates an active user with a verified e-mail (private label `email:verified`, level
/// recomputed) and the given role, which must exist in the permissions table.
pub async fn create_user(
    config: &Config,
    email: &str,
    password: &str,
    role: &str,
) -> Result<String, ServeError> {
    let store = server::open_store(config).await?;
    store.migrate().await?;
    let email = email.trim().to_lowercase();
    let policy = PasswordPolicy::new(
        &config.users.password_regexp,
        config.users.password_min_entropy as f64,
        config.users.password_use_dictionary,
    )
    .map_err(|e| invalid(format!("invalid BARONG_PASSWORD_REGEXP: {e}")))?;
    let input = UserInput {
        email: &email,
        password,
        email_taken: store.find_user_by_email(&email).await?.is_some(),
        ..UserInput::default()
    };
    let errors = validate_user(&input, &policy);
    if !errors.is_empty() {
        return Err(invalid(format!("user refused: {}", errors.join(", "))));
    }
    if !store
        .list_permissions()
        .await?
        .iter()
        .any(|p| p.role == role)
    {
        return Err(invalid(format!(
            "role {role:?} does not exist (no permission names it; load permissions first)"
        )));
    }
    let labels = vec![(
        "email".to_owned(),
        "verified".to_owned(),
        LabelScope::Private.as_str().to_owned(),
    )];
    let level = derive_level(&labels, &store.list_levels().await?);
    let digest = hash_password(password).map_err(|_| invalid("cannot hash the password"))?;
    let user = store
        .create_user(&NewUser {
            uid: generate_uid(&config.users.uid_prefix, rand::random()),
            username: None,
            email,
            password_digest: digest,
            role: role.to_owned(),
            data: None,
            level,
            otp: false,
            state: UserState::Active,
            referral_id: None,
            labels: vec![NewLabel {
                key: "email".into(),
                value: "verified".into(),
                scope: LabelScope::Private.as_str().into(),
            }],
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(column) => invalid(format!("user refused: {column}.taken")),
            other => other.into(),
        })?;
    Ok(user.uid)
}

/// Reads Barong's permissions: a seeds.yml (its `permissions` section; other sections are
/// ignored) or a bare list of `{role, verb, path, action, topic}`.
pub fn read_permissions(path: &Path) -> Result<Vec<NewPermission>, ServeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let yaml: Yaml = serde_yaml_ng::from_str(&text)
        .map_err(|e| invalid(format!("invalid permissions file: {e}")))?;
    let list = match yaml {
        Yaml::Mapping(mut map) => map
            .remove("permissions")
            .ok_or_else(|| invalid("invalid permissions file: no `permissions` section"))?,
        other => other,
    };
    let permissions: Vec<NewPermission> = serde_yaml_ng::from_value(list)
        .map_err(|e| invalid(format!("invalid permissions file: {e}")))?;
    let permissions: Vec<NewPermission> = permissions
        .into_iter()
        .map(NewPermission::normalized)
        .collect();
    for (index, p) in permissions.iter().enumerate() {
        if p.role.trim().is_empty() || p.path.trim().is_empty() {
            return Err(invalid(format!(
                "invalid permissions file: entry {} has a blank role or path",
                index + 1
            )));
        }
        if !VERBS.contains(&p.verb.as_str()) || !ACTIONS.contains(&p.action.as_str()) {
            return Err(invalid(format!(
                "invalid permissions file: entry {} ({} {} {}): verb must be one of {}, action one of {}",
                index + 1,
                p.role,
                p.verb,
                p.action,
                VERBS.join("/"),
                ACTIONS.join("/")
            )));
        }
    }
    Ok(permissions)
}

/// Replaces the permissions table with the file's and tells running instances (PostgreSQL
/// NOTIFY; with SQLite the server's snapshot follows within `BARONG_AUTHZ_CACHE_TTL`).
pub async fn load_permissions(config: &Config, path: &Path) -> Result<usize, ServeError> {
    let permissions = read_permissions(path)?;
    let store = server::open_store(config).await?;
    store.migrate().await?;
    let count = store.replace_permissions(&permissions).await?;
    announce(store.as_ref(), &Invalidation::Permissions).await;
    Ok(count)
}

/// Announces as an instance of its own, so every server applies it.
async fn announce(store: &dyn Store, invalidation: &Invalidation) {
    let payload = format!("cli-{} {}", std::process::id(), invalidation.encode());
    if let Err(error) = store.notify_invalidation(&payload).await {
        tracing::warn!(%error, "running instances not told; they follow within BARONG_AUTHZ_CACHE_TTL");
    }
}
