//! Passkey ceremonies (WebAuthn, through webauthn-rs): registering a passkey, and logging in
//! with one as the second factor or, when allowed, alone. The server half of every challenge is
//! kept in the database (`passkey_challenges`) and taken by the one request that answers it, so
//! a challenge works on any instance sharing the database, once, until it expires. The rules
//! that need no WebAuthn (factors, counters, expiry) are in `domain::passkey`; the HTTP
//! handlers in `api::resource::passkeys` and `api::identity::passkeys` only translate.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey as Credential, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::config::Passkeys;
use crate::domain::User;
use crate::domain::passkey::{
    ChallengePurpose, NewPasskey, Passkey, PasskeyChallenge, counter_shows_clone,
};
use crate::store::{Store, StoreError};

/// Why a ceremony did not complete. The handlers turn each into their scope's error key.
#[derive(Debug)]
pub enum PasskeyError {
    /// `BARONG_PASSKEY_RP_ID` is unset.
    Disabled,
    /// The answer is not a WebAuthn credential at all.
    Malformed,
    /// No open challenge of this kind (never issued, answered already, or someone else's).
    UnknownChallenge,
    ChallengeExpired,
    /// The credential is not a passkey of the user being logged in.
    UnknownCredential,
    /// The credential is registered already.
    AlreadyRegistered,
    /// The user has no passkey to log in with.
    NoPasskeys,
    /// The authenticator's counter did not move forward: a cloned authenticator or a replayed
    /// assertion. The passkey's owner, for the activity row.
    Cloned {
        user_id: i64,
    },
    /// webauthn-rs refused the answer; the reason goes to the activity and the log.
    Refused(&'static str),
    Store(StoreError),
}

impl From<StoreError> for PasskeyError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// What the reason of a refusal says, for the user's activity.
fn refusal(error: &WebauthnError) -> PasskeyError {
    let reason = match error {
        WebauthnError::CredentialPossibleCompromise => return PasskeyError::Refused("cloned"),
        WebauthnError::InvalidRPOrigin => "origin not allowed",
        WebauthnError::InvalidRPIDHash => "relying party id mismatch",
        WebauthnError::MismatchedChallenge => "challenge mismatch",
        WebauthnError::UserNotVerified => "user not verified",
        WebauthnError::CredentialNotFound => "credential not allowed",
        _ => "verification failed",
    };
    tracing::info!(%error, reason, "passkey answer refused");
    PasskeyError::Refused(reason)
}

/// The relying party of the settings; `Disabled` while passkeys are off.
fn relying_party(settings: Option<&Passkeys>) -> Result<(Webauthn, &Passkeys), PasskeyError> {
    let settings = settings.ok_or(PasskeyError::Disabled)?;
    let (first, more) = settings
        .origins
        .split_first()
        .ok_or(PasskeyError::Disabled)?;
    let builder = WebauthnBuilder::new(&settings.rp_id, first).map_err(|error| {
        // `Config::check_passkeys` refuses such settings at start; kept closed regardless.
        tracing::error!(%error, "passkey relying party refused its settings");
        PasskeyError::Disabled
    })?;
    let builder = more
        .iter()
        .fold(builder, |b, origin| b.append_allowed_origin(origin))
        .rp_name(&settings.rp_name)
        .timeout(Duration::from_secs(settings.challenge_ttl));
    let webauthn = builder.build().map_err(|_| PasskeyError::Disabled)?;
    Ok((webauthn, settings))
}

/// One spelling of a challenge (base64url without padding), whichever base64 a client used.
fn canonical_challenge(text: &str) -> Option<String> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
}

/// The challenge an answer signed, read from its client data (webauthn-rs checks it again
/// against the stored state: this only finds that state).
fn answered_challenge(client_data_json: &[u8]) -> Result<String, PasskeyError> {
    let data: Value =
        serde_json::from_slice(client_data_json).map_err(|_| PasskeyError::Malformed)?;
    data.get("challenge")
        .and_then(Value::as_str)
        .and_then(canonical_challenge)
        .ok_or(PasskeyError::Malformed)
}

/// The `publicKey` options of a ceremony as the browser API takes them, and its challenge.
fn options_of(answer: &impl serde::Serialize) -> Result<(Value, String), PasskeyError> {
    let value = serde_json::to_value(answer).map_err(|_| PasskeyError::Refused("options"))?;
    let public_key = value.get("publicKey").cloned().unwrap_or(Value::Null);
    let challenge = public_key
        .get("challenge")
        .and_then(Value::as_str)
        .and_then(canonical_challenge)
        .ok_or(PasskeyError::Refused("options"))?;
    Ok((json!({ "publicKey": public_key }), challenge))
}

async fn open_challenge(
    store: &dyn Store,
    settings: &Passkeys,
    challenge: String,
    purpose: ChallengePurpose,
    user_id: Option<i64>,
    state: Value,
    now: i64,
) -> Result<(), PasskeyError> {
    let ttl = i64::try_from(settings.challenge_ttl).unwrap_or(i64::MAX);
    let challenge = PasskeyChallenge {
        challenge,
        purpose,
        user_id,
        state: state.to_string(),
        expires_at: now.saturating_add(ttl),
    };
    store.passkey_challenge_insert(&challenge, now).await?;
    Ok(())
}

/// Takes the open challenge an answer signed, if it is of `purposes` and still fresh.
async fn take_challenge(
    store: &dyn Store,
    client_data_json: &[u8],
    purposes: &[ChallengePurpose],
    now: i64,
) -> Result<PasskeyChallenge, PasskeyError> {
    let key = answered_challenge(client_data_json)?;
    let challenge = store
        .passkey_challenge_take(&key)
        .await?
        .ok_or(PasskeyError::UnknownChallenge)?;
    if !purposes.contains(&challenge.purpose) {
        return Err(PasskeyError::UnknownChallenge);
    }
    if challenge.is_expired(now) {
        return Err(PasskeyError::ChallengeExpired);
    }
    Ok(challenge)
}

fn parse_state<T: serde::de::DeserializeOwned>(state: &Value) -> Result<T, PasskeyError> {
    serde_json::from_value(state.clone()).map_err(|error| {
        tracing::error!(%error, "stored passkey ceremony unreadable");
        PasskeyError::Refused("state")
    })
}

fn parse_credential(credential: &Passkey) -> Result<Credential, PasskeyError> {
    serde_json::from_str(&credential.credential).map_err(|error| {
        tracing::error!(%error, id = credential.id, "stored passkey unreadable");
        PasskeyError::Refused("stored passkey unreadable")
    })
}

/// The signature counter inside webauthn-rs's serialised credential.
fn counter_of(credential: &Credential) -> Result<(i64, String), PasskeyError> {
    let value = serde_json::to_value(credential).map_err(|_| PasskeyError::Refused("counter"))?;
    let counter = value
        .pointer("/cred/counter")
        .and_then(Value::as_i64)
        .ok_or(PasskeyError::Refused("counter"))?;
    Ok((counter, value.to_string()))
}

/// Starts adding a passkey to `user`'s account: the options for `navigator.credentials.create`.
/// Resident keys are preferred so that the passkey can also log in alone where that is allowed.
pub async fn start_registration(
    store: &dyn Store,
    settings: Option<&Passkeys>,
    user: &User,
    now: i64,
) -> Result<Value, PasskeyError> {
    let (webauthn, settings) = relying_party(settings)?;
    let existing = store.passkey_list(user.id).await?;
    // One handle per user, drawn at the first passkey: a discoverable login names the user by it.
    let handle = match existing.first() {
        Some(passkey) => {
            Uuid::parse_str(&passkey.user_handle).map_err(|_| PasskeyError::Refused("handle"))?
        }
        None => Uuid::new_v4(),
    };
    let exclude = existing
        .iter()
        .filter_map(|p| parse_credential(p).ok())
        .map(|c| c.cred_id().clone())
        .collect::<Vec<_>>();
    let (options, registration) = webauthn
        .start_passkey_registration(handle, &user.email, &user.email, Some(exclude))
        .map_err(|e| refusal(&e))?;
    let (mut options, challenge) = options_of(&options)?;
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
        selection["residentKey"] = json!("preferred");
    }
    let state = json!({ "handle": handle.to_string(), "registration": registration });
    open_challenge(
        store,
        settings,
        challenge,
        ChallengePurpose::Register,
        Some(user.id),
        state,
        now,
    )
    .await?;
    Ok(options)
}

/// Completes adding a passkey: verifies the authenticator's answer and stores the credential.
pub async fn finish_registration(
    store: &dyn Store,
    settings: Option<&Passkeys>,
    user: &User,
    credential: &Value,
    name: &str,
    now: i64,
) -> Result<Passkey, PasskeyError> {
    let (webauthn, _) = relying_party(settings)?;
    let answer: RegisterPublicKeyCredential =
        serde_json::from_value(credential.clone()).map_err(|_| PasskeyError::Malformed)?;
    let challenge = take_challenge(
        store,
        &answer.response.client_data_json,
        &[ChallengePurpose::Register],
        now,
    )
    .await?;
    if challenge.user_id != Some(user.id) {
        return Err(PasskeyError::UnknownChallenge);
    }
    let state: Value =
        serde_json::from_str(&challenge.state).map_err(|_| PasskeyError::Refused("state"))?;
    let handle = state
        .get("handle")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let registration: PasskeyRegistration =
        parse_state(state.get("registration").unwrap_or(&Value::Null))?;
    let passkey = webauthn
        .finish_passkey_registration(&answer, &registration)
        .map_err(|e| refusal(&e))?;
    let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice());
    let (counter, serialised) = counter_of(&passkey)?;
    let stored = store
        .passkey_insert(&NewPasskey {
            user_id: user.id,
            credential_id,
            user_handle: handle,
            name: name.to_owned(),
            credential: serialised,
            counter,
            created_at: now,
        })
        .await;
    match stored {
        Ok(passkey) => Ok(passkey),
        Err(StoreError::Conflict(_)) => Err(PasskeyError::AlreadyRegistered),
        Err(other) => Err(other.into()),
    }
}

/// Starts the second step of a login whose password was right: the options for
/// `navigator.credentials.get`, allowing the user's passkeys.
pub async fn start_login(
    store: &dyn Store,
    settings: Option<&Passkeys>,
    user: &User,
    now: i64,
) -> Result<Value, PasskeyError> {
    let (webauthn, settings) = relying_party(settings)?;
    let credentials = store
        .passkey_list(user.id)
        .await?
        .iter()
        .map(parse_credential)
        .collect::<Result<Vec<_>, _>>()?;
    if credentials.is_empty() {
        return Err(PasskeyError::NoPasskeys);
    }
    let (options, authentication) = webauthn
        .start_passkey_authentication(&credentials)
        .map_err(|e| refusal(&e))?;
    let (options, challenge) = options_of(&options)?;
    let state =
        serde_json::to_value(&authentication).map_err(|_| PasskeyError::Refused("state"))?;
    open_challenge(
        store,
        settings,
        challenge,
        ChallengePurpose::SecondFactor,
        Some(user.id),
        state,
        now,
    )
    .await?;
    Ok(options)
}

/// Starts a login by passkey alone: options without credentials, the authenticator offers the
/// discoverable ones it holds for this relying party. Only when the settings allow it.
pub async fn start_passwordless(
    store: &dyn Store,
    settings: Option<&Passkeys>,
    now: i64,
) -> Result<Value, PasskeyError> {
    let (webauthn, settings) = relying_party(settings)?;
    let (options, authentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| refusal(&e))?;
    let (options, challenge) = options_of(&options)?;
    let state =
        serde_json::to_value(&authentication).map_err(|_| PasskeyError::Refused("state"))?;
    open_challenge(
        store,
        settings,
        challenge,
        ChallengePurpose::Passwordless,
        None,
        state,
        now,
    )
    .await?;
    Ok(options)
}

/// A completed passkey login: whose, and how it was proven.
#[derive(Debug)]
pub struct LoggedIn {
    pub user_id: i64,
    pub purpose: ChallengePurpose,
    pub passkey: Passkey,
}

/// Completes a passkey login (second factor or passwordless): the assertion verified against
/// the stored credential, the counter checked and moved forward in one compare-and-set.
pub async fn finish_login(
    store: &dyn Store,
    settings: Option<&Passkeys>,
    credential: &Value,
    now: i64,
) -> Result<LoggedIn, PasskeyError> {
    let (webauthn, settings) = relying_party(settings)?;
    let answer: PublicKeyCredential =
        serde_json::from_value(credential.clone()).map_err(|_| PasskeyError::Malformed)?;
    let purposes: &[ChallengePurpose] = if settings.passwordless {
        &[
            ChallengePurpose::SecondFactor,
            ChallengePurpose::Passwordless,
        ]
    } else {
        &[ChallengePurpose::SecondFactor]
    };
    let challenge = take_challenge(store, &answer.response.client_data_json, purposes, now).await?;
    let credential_id = URL_SAFE_NO_PAD.encode(answer.get_credential_id());
    let stored = store
        .passkey_find(&credential_id)
        .await?
        .ok_or(PasskeyError::UnknownCredential)?;
    let state: Value =
        serde_json::from_str(&challenge.state).map_err(|_| PasskeyError::Refused("state"))?;
    let mut passkey = parse_credential(&stored)?;
    let verified = match challenge.purpose {
        ChallengePurpose::SecondFactor => {
            if challenge.user_id != Some(stored.user_id) {
                return Err(PasskeyError::UnknownCredential);
            }
            let authentication: PasskeyAuthentication = parse_state(&state)?;
            webauthn.finish_passkey_authentication(&answer, &authentication)
        }
        ChallengePurpose::Passwordless => {
            let (handle, _) = webauthn
                .identify_discoverable_authentication(&answer)
                .map_err(|_| PasskeyError::UnknownCredential)?;
            if handle.to_string() != stored.user_handle {
                return Err(PasskeyError::UnknownCredential);
            }
            let authentication: DiscoverableAuthentication = parse_state(&state)?;
            webauthn.finish_discoverable_authentication_v2(&answer, authentication, &passkey)
        }
        ChallengePurpose::Register => return Err(PasskeyError::UnknownChallenge),
    };
    let result = match verified {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Err(PasskeyError::Cloned {
                user_id: stored.user_id,
            });
        }
        Err(error) => return Err(refusal(&error)),
    };
    // The state of a second-factor ceremony holds the counter of when it started; the stored
    // one is the latest.
    let stored_counter = u32::try_from(stored.counter).unwrap_or(u32::MAX);
    if counter_shows_clone(stored_counter, result.counter()) {
        return Err(PasskeyError::Cloned {
            user_id: stored.user_id,
        });
    }
    passkey.update_credential(&result);
    let (counter, serialised) = counter_of(&passkey)?;
    if !store
        .passkey_used(stored.id, stored.counter, counter, &serialised, now)
        .await?
    {
        // Another assertion with this counter won the race: one of the two is a copy.
        return Err(PasskeyError::Cloned {
            user_id: stored.user_id,
        });
    }
    Ok(LoggedIn {
        user_id: stored.user_id,
        purpose: challenge.purpose,
        passkey: stored,
    })
}

/// Which second factors complete `user`'s login; passkeys count only while they are on, so
/// turning them off never locks a user out of the password login.
pub async fn second_factors(
    state: &super::ApiState,
    user: &crate::domain::User,
) -> Result<crate::domain::passkey::SecondFactors, super::error::ApiError> {
    let passkeys = if state.config.passkeys().is_some() {
        state.store.passkey_list(user.id).await?.len()
    } else {
        0
    };
    Ok(crate::domain::passkey::SecondFactors::of(
        user.otp, passkeys,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_have_one_spelling() {
        let bytes = [0xfb_u8, 0xff, 0x01, 0x02];
        let canonical = URL_SAFE_NO_PAD.encode(bytes);
        for spelling in [
            URL_SAFE_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            STANDARD.encode(bytes),
        ] {
            assert_eq!(
                canonical_challenge(&spelling).as_deref(),
                Some(canonical.as_str())
            );
        }
        assert_eq!(canonical_challenge("not base64!"), None);
    }

    #[test]
    fn answers_name_their_challenge() {
        let data = br#"{"type":"webauthn.get","challenge":"AAEC","origin":"https://x"}"#;
        assert_eq!(answered_challenge(data).ok().as_deref(), Some("AAEC"));
        assert!(matches!(
            answered_challenge(b"[]"),
            Err(PasskeyError::Malformed)
        ));
    }
}
