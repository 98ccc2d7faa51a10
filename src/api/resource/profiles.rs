//! `resource/profiles`: the user's KYC profiles. A user edits one
//! drafted profile, submits it (`confirm`), and may open a new one once none is drafted or
//! submitted. The private label `profile` follows the state; with KYCAID a submitted profile
//! becomes an applicant (see `api::kyc`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities;
use crate::api::error::ApiError;
use crate::api::kyc;
use crate::api::params::{Params, Validator};
use crate::domain::{
    NewProfile, Profile, ProfileChanges, ProfileData, ProfileState, parse_date, squish,
    validate_profile,
};
use crate::service::changes::publish_change;
use crate::service::error::Key;
use crate::store::{StoreError, UserChange};

fn not_editable() -> ApiError {
    ApiError::from(Key::ResourceProfileDoesntExistOrNotEditable)
}

/// Grape's Boolean coercion; `Err` for anything it refuses.
fn coerce_bool(value: &Value) -> Result<Option<bool>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(Some(true)),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(Some(false)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "1" | "t" | "y" | "yes" | "on" | "true" => Ok(Some(true)),
            "0" | "f" | "n" | "no" | "off" | "false" => Ok(Some(false)),
            _ => Err(()),
        },
        _ => Err(()),
    }
}

/// The declared parameters of POST and PUT, in declaration order: the fields and `confirm`.
fn read_params(params: &Params) -> Result<(ProfileData, bool), ApiError> {
    let mut v = Validator::new("resource.profile", params);
    let first_name = v.optional_string("first_name");
    let last_name = v.optional_string("last_name");
    let dob = match v.raw("dob") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            let date = parse_date(s);
            if date.is_none() {
                v.error("invalid");
            }
            date
        }
        Some(_) => {
            v.error("invalid");
            None
        }
    };
    let address = v.optional_string("address");
    let postcode = v.optional_string("postcode");
    let city = v.optional_string("city");
    let country = v.optional_string("country");
    let metadata = v.optional_string("metadata");
    let confirm = match v.raw("confirm").map(coerce_bool) {
        None => false,
        Some(Ok(value)) => value.unwrap_or(false),
        Some(Err(())) => {
            v.error("invalid");
            false
        }
    };
    v.finish()?;
    // Barong squishes these before validating; the other fields are kept as given.
    let data = ProfileData {
        first_name: first_name.as_deref().map(squish),
        last_name: last_name.as_deref().map(squish),
        dob,
        address,
        postcode: postcode.as_deref().map(squish),
        city: city.as_deref().map(squish),
        country,
        metadata,
    };
    Ok((data, confirm))
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// After a write: caches told, and a submitted profile handed to the KYC provider.
async fn after_write(
    state: &ApiState,
    current: &CurrentUser,
    profile: &Profile,
    change: &UserChange,
) {
    publish_change(state, change).await;
    if profile.state == ProfileState::Submitted {
        kyc::queue_applicant(state, profile.id, current.user.email.clone());
    }
}

/// `GET profiles/me`: every profile of the user, oldest first (masked).
pub async fn me(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<Vec<Value>>, ApiError> {
    let mask = entities::masked(&state);
    Ok(Json(
        entities::user_profiles(&state, current.user.id, mask).await?,
    ))
}

/// `POST profiles`: 201, a drafted profile (submitted with `confirm`).
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let (data, confirm) = read_params(&params)?;
    let open_exists = state
        .store
        .list_user_profiles(current.user.id, &state.encryptor)
        .await?
        .iter()
        .any(|p| p.state.is_open());
    let errors = validate_profile(&data, open_exists, today());
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let new = NewProfile {
        data,
        state: if confirm {
            ProfileState::Submitted
        } else {
            ProfileState::Drafted
        },
        author: None,
        applicant_id: None,
    };
    let (profile, change) = match state
        .store
        .create_profile(current.user.id, &new, &state.encryptor, &state.state_rules)
        .await
    {
        Ok(done) => done,
        // Another request opened one between the check above and this write.
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::unprocessable(vec!["state.exists".into()]));
        }
        Err(other) => return Err(other.into()),
    };
    after_write(&state, &current, &profile, &change).await;
    let body = entities::profile(&profile, entities::masked(&state));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `PUT profiles`: 200, the drafted profile with the given fields (submitted with `confirm`).
pub async fn update(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let (data, confirm) = read_params(&params)?;
    let drafted = state
        .store
        .find_user_profile_in_state(current.user.id, ProfileState::Drafted, &state.encryptor)
        .await?
        .ok_or_else(not_editable)?;
    let errors = validate_profile(&data, false, today());
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let changes = ProfileChanges {
        data,
        state: confirm.then_some(ProfileState::Submitted),
        applicant_id: None,
        only_in_state: Some(ProfileState::Drafted),
    };
    let (profile, change) = state
        .store
        .update_profile(drafted.id, &changes, &state.encryptor, &state.state_rules)
        .await?
        .ok_or_else(not_editable)?;
    after_write(&state, &current, &profile, &change).await;
    Ok(Json(entities::profile(&profile, entities::masked(&state))))
}
