//! The KYCAID workflow: `POST public/kyc`, the callback KYCAID sends when a
//! verification changes, and the background jobs Barong runs in Sidekiq, here as tasks on the
//! runtime: applicant creation for a submitted profile, and applying a completed verification
//! to the user's labels.
//!
//! Jobs live in memory: one lost to a crash is not retried (KYCAID repeats callbacks it got no
//! 2xx for, but an applicant job lost after the profile was submitted leaves it `submitted`,
//! where an admin can still decide on it).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use crate::config::KycProvider;
use crate::domain::{LabelScope, ProfileChanges, ProfileState};
use crate::kyc::{Applicant, ApplicantOutcome, KycError, Kycaid, label_decisions};
use crate::service::changes::publish_change;
use crate::service::error::Key;
use crate::store::StoreError;

/// Why a job stopped early (logged; never carries personal data).
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kyc(#[from] KycError),
}

/// The public routes (mounted under `/public`).
pub fn routes() -> Router<ApiState> {
    Router::new().route("/kyc", post(callback))
}

/// `POST public/kyc`: 422 (body `422`) with the `local` provider; otherwise the callback must
/// carry KYCAID's `x-data-integrity` signature of its body under
/// `BARONG_KYCAID_AUTHORIZATION_TOKEN` (401 `public.kyc.invalid_signature` when not: Barong
/// checks nothing here, KYCAID documents the check), then 200 (body `200`) and the
/// verification is applied in the background.
async fn callback(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    if state.config.kyc.kyc_provider == KycProvider::Local {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!(422))).into_response();
    }
    let signature = headers
        .get("x-data-integrity")
        .and_then(|v| v.to_str().ok());
    let token = state.config.kyc.kycaid_authorization_token.expose();
    if !crate::kyc::callback_is_authentic(token, &body, signature) {
        tracing::warn!("KYC callback refused: missing or wrong x-data-integrity signature");
        return ApiError::from(Key::PublicKycInvalidSignature).into_response();
    }
    let Ok(Value::Object(params)) = serde_json::from_slice::<Value>(&body) else {
        return ApiError::from(Key::RequestMalformedBody).into_response();
    };
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    match (text("applicant_id"), text("verification_id")) {
        (Some(applicant_id), Some(verification_id)) => {
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(error) =
                    apply_verification(&state, &applicant_id, &verification_id).await
                {
                    tracing::warn!(%error, "KYC verification not applied");
                }
            });
        }
        _ => tracing::info!("KYC callback without applicant_id and verification_id: ignored"),
    }
    (StatusCode::OK, Json(json!(200))).into_response()
}

/// Barong's `VerificationsWorker`: for a completed verification, every check whose label the
/// user has (private) becomes `verified` or `rejected`; state and level follow.
async fn apply_verification(
    state: &ApiState,
    applicant_id: &str,
    verification_id: &str,
) -> Result<(), JobError> {
    let Some(profile) = state
        .store
        .find_profile_by_applicant_id(applicant_id, &state.encryptor)
        .await?
    else {
        tracing::info!("KYC callback for an unknown applicant: ignored");
        return Ok(());
    };
    let verification = Kycaid::from_config(&state.config.kyc)
        .verification(verification_id)
        .await?;
    if verification.status != "completed" {
        return Ok(());
    }
    let labels = state.store.list_user_labels(profile.user_id).await?;
    for (key, verified) in label_decisions(&verification) {
        if !labels
            .iter()
            .any(|l| l.key == key && LabelScope::Private.is(&l.scope))
        {
            continue;
        }
        let value = if verified { "verified" } else { "rejected" };
        let updated = state
            .store
            .update_label_value(
                profile.user_id,
                &key,
                LabelScope::Private.as_str(),
                value,
                &state.state_rules,
            )
            .await?;
        if let Some((_, change)) = updated {
            publish_change(state, &change).await;
        }
    }
    Ok(())
}

/// Queues Barong's `ApplicantWorker` for a submitted profile (KYCAID provider only).
pub(crate) fn queue_applicant(state: &ApiState, profile_id: i64, email: String) {
    if state.config.kyc.kyc_provider != KycProvider::Kycaid {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(error) = create_applicant(&state, profile_id, &email).await {
            tracing::warn!(profile_id, %error, "KYCAID applicant not created; profile stays submitted");
        }
    });
}

/// Creates the applicant; the profile becomes `verified` with its applicant id, or `rejected`
/// when KYCAID refuses it (Barong's rule), and the `profile` label follows.
async fn create_applicant(state: &ApiState, profile_id: i64, email: &str) -> Result<(), JobError> {
    let Some(profile) = state
        .store
        .find_profile(profile_id, &state.encryptor)
        .await?
        .filter(|p| p.state == ProfileState::Submitted)
    else {
        return Ok(());
    };
    let d = &profile.data;
    let applicant = Applicant {
        first_name: d.first_name.as_deref(),
        last_name: d.last_name.as_deref(),
        dob: d.dob.map(|dob| dob.format("%Y-%m-%d").to_string()),
        residence_country: d.country.as_deref(),
        email,
        phone: None,
    };
    let outcome = Kycaid::from_config(&state.config.kyc)
        .create_applicant(&applicant)
        .await?;
    let (next, applicant_id) = match outcome {
        ApplicantOutcome::Created(id) => (ProfileState::Verified, Some(id)),
        ApplicantOutcome::Refused { kind, applicant_id } => {
            tracing::info!(
                profile_id,
                kind,
                "KYCAID refused the applicant; profile rejected"
            );
            (ProfileState::Rejected, applicant_id)
        }
    };
    let changes = ProfileChanges {
        state: Some(next),
        applicant_id,
        only_in_state: Some(ProfileState::Submitted),
        ..ProfileChanges::default()
    };
    let updated = state
        .store
        .update_profile(profile_id, &changes, &state.encryptor, &state.state_rules)
        .await?;
    if let Some((_, change)) = updated {
        publish_change(state, &change).await;
    }
    Ok(())
}
