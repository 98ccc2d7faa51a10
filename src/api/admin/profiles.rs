//! `admin/profiles`: every user's profiles, an admin's decision on a submitted
//! profile (the private `profile` label, state and level follow in the same transaction),
//! and profiles an admin creates for a user. Unmasked.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Admin, target_user};
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator};
use crate::api::{ApiState, entities, pagination};
use crate::domain::abilities::{Action, Resource};
use crate::domain::{
    NewProfile, ProfileChanges, ProfileData, ProfileState, parse_date, role, squish,
    validate_profile,
};
use crate::service::error::Key;
use crate::store::StoreError;

const SCOPE: &str = "admin.profile";

fn not_editable() -> ApiError {
    ApiError::from(Key::AdminProfilesDoesntExistOrNotEditable)
}

/// `GET profiles`: every user's profiles by id, paginated.
pub async fn list(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::Profile)?;
    let (rows, total) = state
        .store
        .list_profiles(page.limit, page.offset(), &state.encryptor)
        .await?;
    let body: Vec<Value> = rows.iter().map(|p| entities::profile(p, false)).collect();
    Ok((pagination::headers(&uri, page, total), Json(body)).into_response())
}

/// `PUT profiles`: the state of the user's submitted profile.
pub async fn update(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let new_state = v.required_string("state");
    let parsed = new_state.as_deref().map(ProfileState::parse);
    if parsed == Some(None) {
        v.error(&format!("{SCOPE}.invalid_state"));
    }
    v.finish()?;
    let new_state = parsed.flatten().ok_or_else(not_editable)?;
    admin.authorize(Action::Update, Resource::Profile)?;
    let target = state
        .store
        .find_user_by_uid(&uid.unwrap_or_default())
        .await?
        .ok_or_else(not_editable)?;
    let submitted = state
        .store
        .find_user_profile_in_state(target.id, ProfileState::Submitted, &state.encryptor)
        .await?
        .ok_or_else(not_editable)?;
    if target.role == role::SUPERADMIN && admin.user.role != role::SUPERADMIN {
        return Err(ApiError::unprocessable(vec![
            "admin.profiles.superadmin_change".into(),
        ]));
    }
    let second_approval_needed = state.config.users.profile_double_verification
        && submitted.author.as_deref() == Some(admin.user.uid.as_str())
        && !state
            .config
            .barong_yml
            .profile_verification_roles
            .contains(&admin.user.role);
    if second_approval_needed {
        return Err(ApiError::unprocessable(vec![
            "admin.profiles.second_admin_approval".into(),
        ]));
    }
    let changes = ProfileChanges {
        state: Some(new_state),
        only_in_state: Some(ProfileState::Submitted),
        ..ProfileChanges::default()
    };
    let (profile, change) = state
        .store
        .update_profile(submitted.id, &changes, &state.encryptor, &state.state_rules)
        .await?
        .ok_or_else(not_editable)?;
    crate::service::changes::publish_change(&state, &change).await;
    admin.target(&target.uid);
    Ok(Json(entities::profile(&profile, false)))
}

/// `POST profiles` (no ability check, as in Barong): a submitted profile authored by the
/// caller; 201. An unknown uid is `404 admin.user.doesnt_exist` (Barong answers 500).
pub async fn create(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let first_name = v.optional_string("first_name");
    let last_name = v.optional_string("last_name");
    let dob = match v.optional_string("dob") {
        Some(text) if !text.trim().is_empty() => {
            let date = parse_date(&text);
            if date.is_none() {
                v.error(&format!("{SCOPE}.invalid_dob"));
            }
            date
        }
        _ => None,
    };
    let address = v.optional_string("address");
    let postcode = v.optional_string("postcode");
    let city = v.optional_string("city");
    let country = v.optional_string("country");
    let metadata = v.optional_string("metadata");
    v.finish()?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
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
    let open_exists = state
        .store
        .list_user_profiles(target.id, &state.encryptor)
        .await?
        .iter()
        .any(|p| p.state.is_open());
    let errors = validate_profile(&data, open_exists, chrono::Utc::now().date_naive());
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    let new = NewProfile {
        data,
        state: ProfileState::Submitted,
        author: Some(admin.user.uid.clone()),
        applicant_id: None,
    };
    let (profile, change) = match state
        .store
        .create_profile(target.id, &new, &state.encryptor, &state.state_rules)
        .await
    {
        Ok(done) => done,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::unprocessable(vec!["state.exists".into()]));
        }
        Err(other) => return Err(other.into()),
    };
    crate::service::changes::publish_change(&state, &change).await;
    admin.target(&target.uid);
    let body = entities::profile(&profile, false);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
