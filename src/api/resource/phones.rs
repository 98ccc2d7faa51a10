//! `resource/phones`: add a number, (re)send its code, verify
//! it. Numbers are normalised to E.164, stored encrypted with a blind index, and never logged.
//!
//! Beyond Barong: codes to one phone are limited (`BARONG_PHONE_RESEND_INTERVAL` between two,
//! `BARONG_PHONE_MAX_CODES_PER_HOUR` per hour), refused with 429 `resource.phone.too_many_codes`;
//! after 5 wrong codes in 5 minutes a user's codes are refused unchecked for the rest of the
//! window (`verification_invalid`), as TOTP codes are.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities::{self, user_full_info};
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator};
use crate::domain::{
    NewPhone, NormalisedPhone, PHONE_CHANNELS, Phone, normalise_phone, phone_code,
};
use crate::service::changes::publish_change;
use crate::service::error::Key;
use crate::sms::SmsError;
use crate::store::StoreError;

const SCOPE: &str = "resource.phone";

fn provider_error(error: SmsError) -> ApiError {
    ApiError::unprocessable(vec![error.key().to_owned()])
}

/// `GET phones`: the user's phones, numbers masked.
pub async fn list(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let mask = state.config.users.api_data_masking_enabled;
    let phones = state.store.list_user_phones(current.user.id).await?;
    Ok(Json(Value::Array(
        phones
            .iter()
            .map(|p| entities::phone(p, &state.encryptor, mask))
            .collect(),
    )))
}

/// `phone_number` and `channel` (default `sms`), validated in Barong's order.
fn number_and_channel(params: &Params) -> Result<(String, String), ApiError> {
    let mut v = Validator::new(SCOPE, params);
    let number = v.required_string("phone_number");
    let channel = v.optional_string("channel");
    v.finish()?;
    let channel = channel
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "sms".to_owned());
    if !PHONE_CHANNELS.contains(&channel.as_str()) {
        return Err(ApiError::unprocessable(vec![
            "resource.phone.invalid_channel".into(),
        ]));
    }
    Ok((number.unwrap_or_default(), channel))
}

/// Barong's `validate_phone`: a valid number (400 `invalid_num`) that no account has verified
/// (400 `number_exist`); answers the normalised number and its blind index.
async fn validate_phone(
    state: &ApiState,
    number: &str,
) -> Result<(NormalisedPhone, String), ApiError> {
    let normalised =
        normalise_phone(number).ok_or_else(|| ApiError::from(Key::ResourcePhoneInvalidNum))?;
    let index = state.encryptor.blind_index(&normalised.e164);
    let holders = state.store.list_phones_by_number_index(&index).await?;
    if holders.iter().any(Phone::is_verified) {
        return Err(ApiError::from(Key::ResourcePhoneNumberExist));
    }
    Ok((normalised, index))
}

/// Sends the phone's code if the resend limits allow it.
async fn send(state: &ApiState, phone: &Phone, e164: &str, channel: &str) -> Result<(), ApiError> {
    let config = &state.config;
    let allowed = state
        .store
        .claim_phone_code_send(
            phone.id,
            chrono::Utc::now().timestamp(),
            config.phone.phone_resend_interval as i64,
            3600,
            config.phone.phone_max_codes_per_hour as i64,
        )
        .await?;
    if !allowed {
        return Err(ApiError::from(Key::ResourcePhoneTooManyCodes));
    }
    let code = phone.code.as_deref().unwrap_or_default();
    state
        .phone_verifier
        .send_code(e164, code, channel)
        .await
        .map_err(provider_error)
}

fn code_sent(channel: &str) -> Response {
    let message = format!("Code was sent successfully via {channel}");
    (StatusCode::CREATED, Json(json!({ "message": message }))).into_response()
}

/// `POST phones`: adds the number (unverified, with a fresh 5-digit code) and sends the code.
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let (number, channel) = number_and_channel(&params)?;
    let (normalised, index) = validate_phone(&state, &number).await?;
    let user_id = current.user.id;
    if state
        .store
        .find_user_phone(user_id, &index)
        .await?
        .is_some()
    {
        return Err(ApiError::from(Key::ResourcePhoneExists));
    }
    let new = NewPhone {
        user_id,
        country: normalised.country.clone(),
        code: Some(phone_code(rand::random())),
        number_encrypted: state.encryptor.encrypt(&normalised.e164),
        number_index: index,
        validated: false,
    };
    let phone = match state.store.create_phone(&new).await {
        Ok(phone) => phone,
        Err(StoreError::Conflict(_)) => return Err(ApiError::from(Key::ResourcePhoneExists)),
        Err(other) => return Err(other.into()),
    };
    send(&state, &phone, &normalised.e164, &channel).await?;
    Ok(code_sent(&channel))
}

/// `POST phones/send_code`: sends the same code again.
pub async fn send_code(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let (number, channel) = number_and_channel(&params)?;
    let (normalised, index) = validate_phone(&state, &number).await?;
    let phone = state
        .store
        .find_user_phone(current.user.id, &index)
        .await?
        .ok_or_else(|| ApiError::from(Key::ResourcePhoneDoesntExist))?;
    send(&state, &phone, &normalised.e164, &channel).await?;
    Ok(code_sent(&channel))
}

/// `POST phones/verify`: checks the code with the provider, then marks the phone verified with
/// the private label `phone: verified` (level recomputed); 201 UserWithFullInfo.
pub async fn verify(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let number = v.required_string("phone_number");
    let code = v.required_string("verification_code");
    v.finish()?;
    let (number, code) = (number.unwrap_or_default(), code.unwrap_or_default());
    let (normalised, index) = validate_phone(&state, &number).await?;
    let phone = state
        .store
        .find_user_phone(current.user.id, &index)
        .await?
        .ok_or_else(|| ApiError::from(Key::ResourcePhoneDoesntExist))?;
    // 5-digit codes are guessable: after too many wrong ones they are refused unchecked.
    let failures = &state.observe.limits.phone_code;
    let failure_key = current.user.id.to_string();
    // The slot is taken before the provider sees the code; a wrong code keeps it.
    if !failures.reserve(&failure_key).await? {
        return Err(ApiError::from(Key::ResourcePhoneVerificationInvalid));
    }
    let approved = state
        .phone_verifier
        .check_code(&normalised.e164, code.trim(), phone.code.as_deref())
        .await
        .map_err(provider_error)?;
    if !approved {
        return Err(ApiError::from(Key::ResourcePhoneVerificationInvalid));
    }
    failures.clear(&failure_key).await;
    let change = match state.store.verify_phone(phone.id, &state.state_rules).await {
        Ok(Some(change)) => change,
        Ok(None) => return Err(ApiError::from(Key::ResourcePhoneDoesntExist)),
        Err(StoreError::Conflict(_)) => return Err(ApiError::from(Key::ResourcePhoneNumberExist)),
        Err(other) => return Err(other.into()),
    };
    publish_change(&state, &change).await;
    let body = user_full_info(&state, &change.user, None).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
