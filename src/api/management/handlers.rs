//! The management endpoints this server implements so far.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{
    MgmtError, MgmtResult, Params, full_messages, is_blank, present, publish_profile, require,
    text, user_entity,
};
use crate::api::ApiState;
use crate::api::entities::admin::user_with_kyc;
use crate::api::entities::{iso8601, label};
use crate::crypto::multisig::Multisig;
use crate::domain::{LabelScope, User, UserInput, normalise_phone, validate_user};
use crate::import::{ImportContext, ImportRow, Outcome, PartRefused, import_row, insert_member};
use crate::service::changes::publish_change;
use crate::service::totp::check_totp;
use crate::store::StoreError;

/// The user named by `uid`, `email` or `phone_num` (the owner of a phone with that
/// number); `None` when there is none.
async fn find_user(state: &ApiState, params: &Params) -> Result<Option<User>, MgmtError> {
    if let Some(uid) = text(params, "uid") {
        return Ok(state.store.find_user_by_uid(&uid).await?);
    }
    if let Some(email) = text(params, "email") {
        return Ok(state.store.find_user_by_email(&email).await?);
    }
    let Some(number) = text(params, "phone_num")
        .as_deref()
        .and_then(normalise_phone)
    else {
        return Ok(None);
    };
    let index = state.encryptor.blind_index(&number.e164);
    match state
        .store
        .list_phones_by_number_index(&index)
        .await?
        .first()
    {
        Some(phone) => Ok(state.store.find_user_by_id(phone.user_id).await?),
        None => Ok(None),
    }
}

/// POST /timestamp.
pub async fn timestamp(_state: ApiState, _params: Params) -> MgmtResult {
    Ok((
        StatusCode::OK,
        json!({ "timestamp": chrono::Utc::now().timestamp() }),
    ))
}

/// Grape's `exactly_one_of` for the given names.
pub(super) fn exactly_one(params: &Params, names: &[&str]) -> Result<(), MgmtError> {
    let given: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| params.get(*n).is_some_and(|v| !v.is_null()))
        .collect();
    let list = names.join(", ");
    match given.len() {
        0 => Err(MgmtError::unprocessable(&format!(
            "{list} are missing, exactly one parameter must be provided"
        ))),
        1 => {
            if params.get(given[0]).is_some_and(is_blank) {
                Err(MgmtError::unprocessable(&format!("{} is empty", given[0])))
            } else {
                Ok(())
            }
        }
        _ => Err(MgmtError::unprocessable(&format!(
            "{} are mutually exclusive",
            given.join(", ")
        ))),
    }
}

/// POST /users/get: the management `UserWithKYC` (the admin entity, everything unmasked).
pub async fn users_get(state: ApiState, params: Params) -> MgmtResult {
    exactly_one(&params, &["uid", "email", "phone_num"])?;
    let user = find_user(&state, &params)
        .await?
        .ok_or_else(MgmtError::not_found)?;
    Ok((StatusCode::CREATED, user_with_kyc(&state, &user).await?))
}

/// POST /users: a pending user, no confirmation, no activity.
pub async fn users_create(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["email", "password"])?;
    let email = text(&params, "email").unwrap_or_default();
    let password = text(&params, "password").unwrap_or_default();
    let referral_id = match text(&params, "referral_uid") {
        Some(uid) => match state.store.find_user_by_uid(&uid).await? {
            Some(u) => Some(u.id),
            None => return Err(MgmtError::from(crate::api::ApiError::internal())),
        },
        None => None,
    };
    let email_taken = state.store.find_user_by_email(&email).await?.is_some();
    let errors = validate_user(
        &UserInput {
            email: &email,
            password: &password,
            username: None,
            data: None,
            email_taken,
            username_taken: false,
        },
        &state.password_policy,
    );
    if !errors.is_empty() {
        return Err(MgmtError::model(full_messages(&errors)));
    }
    let digest =
        tokio::task::spawn_blocking(move || crate::crypto::password_hash::hash_password(&password))
            .await
            .map_err(|_| MgmtError::from(crate::api::ApiError::internal()))?
            .map_err(|_| MgmtError::from(crate::api::ApiError::internal()))?;
    let user = insert_user(&state, &email, &digest, referral_id).await?;
    Ok((StatusCode::CREATED, user_entity(&state, &user).await?))
}

/// What importing and creating users needs from the state.
pub(super) fn import_context(state: &ApiState) -> ImportContext<'_> {
    ImportContext {
        store: state.store.as_ref(),
        encryptor: &state.encryptor,
        rules: &state.state_rules,
        uid_prefix: &state.config.users.uid_prefix,
    }
}

/// Inserts a pending member with a fresh uid.
pub(crate) async fn insert_user(
    state: &ApiState,
    email: &str,
    digest: &str,
    referral_id: Option<i64>,
) -> Result<User, MgmtError> {
    insert_member(&import_context(state), email, digest, referral_id)
        .await?
        .ok_or_else(|| MgmtError::model(vec!["Email has already been taken".into()]))
}

/// POST /users/update: `role` and/or `data`.
pub async fn users_update(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["uid"])?;
    let role = present(&params, "role");
    let data = present(&params, "data");
    if role.is_none() && data.is_none() {
        return Err(MgmtError::unprocessable(
            "role, data are missing, at least one parameter must be provided",
        ));
    }
    let uid = text(&params, "uid").unwrap_or_default();
    let Some(mut user) = state.store.find_user_by_uid(&uid).await? else {
        return Err(MgmtError::unprocessable("user.doesnt_exist"));
    };
    if let Some(role) = role {
        let known = state
            .store
            .list_permissions()
            .await?
            .iter()
            .any(|p| p.role == role);
        if !known {
            return Err(MgmtError::model(vec!["Role doesnt_exist".into()]));
        }
        let change = state
            .store
            .update_user(user.id, &crate::domain::UserUpdate::Role(role))
            .await?;
        publish_change(&state, &change).await;
    }
    if let Some(data) = data {
        if !crate::domain::data_is_valid(&data) {
            return Err(MgmtError::model(vec![
                "Data data is not json compatible string".into(),
            ]));
        }
        user = state.store.update_user_data(user.id, &data).await?;
    }
    let user = state
        .store
        .find_user_by_id(user.id)
        .await?
        .ok_or_else(MgmtError::not_found)?;
    Ok((StatusCode::CREATED, user_entity(&state, &user).await?))
}

/// POST /users/import: a user with the given bcrypt digest, kept as is, then its verified
/// phone (when given) and a profile from the profile fields (the rule `barong users import`
/// shares). A refused phone or profile answers 422 and leaves the user created, as in Barong.
pub async fn users_import(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["email", "password_digest"])?;
    let row = ImportRow::parse(&params)
        .map_err(|invalid| MgmtError::unprocessable(&invalid.to_string()))?;
    let imported = match import_row(&import_context(&state), &row, full_messages).await? {
        Outcome::Exists => {
            return Err(MgmtError::unprocessable(
                "User already exists by this email",
            ));
        }
        Outcome::Created(imported) => imported,
    };
    if let Some((profile, change)) = &imported.profile {
        publish_profile(&state, profile, change).await;
    }
    match imported.refused {
        Some(PartRefused::Phone(messages) | PartRefused::Profile(messages)) => {
            Err(MgmtError::model(messages))
        }
        None => Ok((
            StatusCode::CREATED,
            user_entity(&state, &imported.user).await?,
        )),
    }
}

/// `AdminLabelView`.
fn admin_label(l: &crate::domain::Label) -> Value {
    json!({
        "key": l.key,
        "value": l.value,
        "scope": l.scope,
        "description": l.description,
        "created_at": iso8601(&l.created_at),
        "updated_at": iso8601(&l.updated_at),
    })
}

async fn label_owner(state: &ApiState, params: &Params) -> Result<User, MgmtError> {
    let uid = text(params, "user_uid").unwrap_or_default();
    state
        .store
        .find_user_by_uid(&uid)
        .await?
        .ok_or_else(MgmtError::not_found)
}

/// POST /labels/list.
pub async fn labels_list(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["user_uid"])?;
    let user = label_owner(&state, &params).await?;
    let labels: Vec<Value> = state
        .store
        .list_user_labels(user.id)
        .await?
        .iter()
        .map(admin_label)
        .collect();
    Ok((StatusCode::CREATED, Value::Array(labels)))
}

/// Barong's label model checks: key and value `^[a-z0-9_-]+$` up to 255 characters.
fn label_errors(key: &str, value: &str) -> Option<Value> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    let mut errors = serde_json::Map::new();
    if !ok(key) {
        errors.insert("key".into(), json!(["Key is invalid"]));
    }
    if !ok(value) {
        errors.insert("value".into(), json!(["Value is invalid"]));
    }
    (!errors.is_empty()).then_some(Value::Object(errors))
}

fn raw_error(body: Value) -> MgmtError {
    MgmtError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        body,
    }
}

/// POST /labels: a new private label.
pub async fn labels_create(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["user_uid", "key", "value"])?;
    let user = label_owner(&state, &params).await?;
    let key = text(&params, "key").unwrap_or_default().to_lowercase();
    let value = text(&params, "value").unwrap_or_default().to_lowercase();
    if let Some(errors) = label_errors(&key, &value) {
        return Err(raw_error(errors));
    }
    match state
        .store
        .create_label(
            user.id,
            &key,
            &value,
            LabelScope::Private.as_str(),
            &state.state_rules,
        )
        .await
    {
        Ok((created, change)) => {
            publish_change(&state, &change).await;
            Ok((StatusCode::CREATED, label(&created)))
        }
        Err(StoreError::Conflict(_)) => {
            Err(raw_error(json!({ "key": ["Key has already been taken"] })))
        }
        Err(other) => Err(other.into()),
    }
}

/// PUT /labels: update the private label by key, or create it when `replace` (default true).
pub async fn labels_put(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["user_uid", "key", "value"])?;
    let user = label_owner(&state, &params).await?;
    let key = text(&params, "key").unwrap_or_default().to_lowercase();
    let value = text(&params, "value").unwrap_or_default().to_lowercase();
    let replace = params
        .get("replace")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if let Some(errors) = label_errors(&key, &value) {
        return Err(raw_error(errors));
    }
    let rules = &state.state_rules;
    if let Some((updated, change)) = state
        .store
        .update_label_value(user.id, &key, LabelScope::Private.as_str(), &value, rules)
        .await?
    {
        publish_change(&state, &change).await;
        return Ok((StatusCode::OK, label(&updated)));
    }
    if !replace {
        return Err(MgmtError::message(
            StatusCode::NOT_FOUND,
            "label doesnt exist",
        ));
    }
    let scope = text(&params, "scope").unwrap_or_else(|| LabelScope::Private.as_str().into());
    let (created, change) = state
        .store
        .create_label(user.id, &key, &value, &scope, rules)
        .await?;
    publish_change(&state, &change).await;
    Ok((StatusCode::OK, label(&created)))
}

/// POST /labels/delete: the private label must exist; 204.
pub async fn labels_delete(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["user_uid", "key"])?;
    let user = label_owner(&state, &params).await?;
    let key = text(&params, "key").unwrap_or_default();
    match state
        .store
        .delete_label(
            user.id,
            &key,
            LabelScope::Private.as_str(),
            &state.state_rules,
        )
        .await?
    {
        Some(change) => {
            publish_change(&state, &change).await;
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        None => Err(MgmtError::not_found()),
    }
}

/// The reason `otp/sign` gives for a payload it will not sign.
pub const RESERVED_PAYLOAD: &str = "payload is reserved for tokens issued by barong";

/// POST /otp/sign: adds the `barong` signature to a multisig JWT once the user's TOTP code
/// checks out.
pub async fn otp_sign(state: ApiState, params: Params) -> MgmtResult {
    require(&params, &["user_uid", "otp_code", "jwt"])?;
    let Some(jwt) = params.get("jwt").filter(|v| v.is_object()) else {
        return Err(MgmtError::unprocessable("jwt is invalid"));
    };
    // The `barong` signature over a payload is also a compact JWS of it: one that could pass
    // for a session, confirmation or reset token, or an event, is never signed for a client.
    // Checked before the code, so a refused payload does not use up the user's code.
    if let Ok(jws) = Multisig::parse(jwt)
        && !crate::crypto::tokens::signable_payload(&jws.payload)
    {
        return Err(MgmtError::unprocessable(&format!(
            "JWT is invalid by the reason \"{RESERVED_PAYLOAD}\""
        )));
    }
    let uid = text(&params, "user_uid").unwrap_or_default();
    let user = state
        .store
        .find_user_by_uid(&uid)
        .await?
        .filter(|u| u.state.is_active())
        .ok_or_else(MgmtError::not_found)?;
    if !user.otp {
        return Err(MgmtError::unprocessable("Account has not enabled 2FA"));
    }
    let code = text(&params, "otp_code").unwrap_or_default();
    if !check_totp(&state, user.id, &code).await? {
        return Err(MgmtError::unprocessable("OTP code is invalid"));
    }
    let invalid = |reason: String| {
        MgmtError::unprocessable(&format!("JWT is invalid by the reason \"{reason}\""))
    };
    let mut jws = Multisig::parse(jwt).map_err(|e| invalid(e.to_string()))?;
    state
        .tokens
        .add_signature(&mut jws, "barong")
        .map_err(|e| invalid(e.to_string()))?;
    Ok((StatusCode::CREATED, jws.to_json()))
}
