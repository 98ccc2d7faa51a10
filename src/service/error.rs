//! The error of the REST API's rules: Barong's status with its error keys (or the `{"error":..}`
//! shape). `api::error` turns it into the response.

use axum::http::StatusCode;

use crate::limits::hashing::Refused;
use crate::store::StoreError;

/// Declares [`Key`]: every fixed error key of the REST API with its status, in one table.
macro_rules! error_keys {
    ($($variant:ident = $status:ident $key:literal;)*) => {
        /// A fixed error key of the REST API and the status Barong answers it with. Keys built
        /// from a parameter's name (Grape's `<param>.missing`, `<param>.blank`, ...) are not here:
        /// the validator writes them ([`ApiError::unprocessable`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Key {
            $(#[doc = $key] $variant,)*
        }

        impl Key {
            /// Every key, for the tests that check the table against the OpenAPI document.
            pub const ALL: &'static [Key] = &[$(Key::$variant,)*];

            /// The key as Barong spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Key::$variant => $key,)*
                }
            }

            /// The status Barong answers it with.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(Key::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_keys! {
    AdminAbilityNotPermitted = UNAUTHORIZED "admin.ability.not_permitted";
    AdminLabelDoesntExist = NOT_FOUND "admin.label.doesnt_exist";
    AdminPermissionDoesntExist = NOT_FOUND "admin.permission.doesnt_exist";
    AdminPermissionRoleDoesntExist = UNPROCESSABLE_ENTITY "admin.permission.role_doesnt_exist";
    AdminPermissionsInvalidAction = UNPROCESSABLE_ENTITY "admin.permissions.invalid_action";
    AdminPermissionsInvalidVerb = UNPROCESSABLE_ENTITY "admin.permissions.invalid_verb";
    AdminProfilesDoesntExistOrNotEditable = NOT_FOUND "admin.profiles.doesnt_exist_or_not_editable";
    AdminRestrictionDoesntExist = NOT_FOUND "admin.restriction.doesnt_exist";
    AdminSessionDoesntExist = NOT_FOUND "admin.session.doesnt_exist";
    AdminStorageDoesntExist = NOT_FOUND "admin.storage.doesnt_exist";
    AdminUserDoesntExist = NOT_FOUND "admin.user.doesnt_exist";
    AdminUserEmailNoChange = UNPROCESSABLE_ENTITY "admin.user.email_no_change";
    AdminUserEnable2fa = UNPROCESSABLE_ENTITY "admin.user.enable_2fa";
    AdminUserOtpNoChange = UNPROCESSABLE_ENTITY "admin.user.otp_no_change";
    AdminUserRoleNoChange = UNPROCESSABLE_ENTITY "admin.user.role_no_change";
    AdminUserStateNoChange = UNPROCESSABLE_ENTITY "admin.user.state_no_change";
    AdminUserUpdateHimself = UNPROCESSABLE_ENTITY "admin.user.update_himself";
    EmailInvalid = UNPROCESSABLE_ENTITY "email.invalid";
    EmailTaken = UNPROCESSABLE_ENTITY "email.taken";
    IdentitySessionInvalidOtp = FORBIDDEN "identity.session.invalid_otp";
    IdentitySessionInvalidParams = UNAUTHORIZED "identity.session.invalid_params";
    IdentitySessionMissingOtp = UNAUTHORIZED "identity.session.missing_otp";
    IdentitySessionMissingPasskey = UNAUTHORIZED "identity.session.missing_passkey";
    IdentitySessionNoPasskeys = UNPROCESSABLE_ENTITY "identity.session.no_passkeys";
    IdentitySessionNotFound = NOT_FOUND "identity.session.not_found";
    IdentitySessionPasskeyDisabled = UNPROCESSABLE_ENTITY "identity.session.passkey_disabled";
    IdentitySessionPasswordlessDisabled = FORBIDDEN "identity.session.passwordless_disabled";
    IdentityUserAccessInvalidToken = UNPROCESSABLE_ENTITY "identity.user.access.invalid_token";
    IdentityUserActiveOrDoesntExist = UNPROCESSABLE_ENTITY "identity.user.active_or_doesnt_exist";
    IdentityUserInvalidReferralFormat = UNPROCESSABLE_ENTITY "identity.user.invalid_referral_format";
    IdentityUserPasswordsDoesntMatch = UNPROCESSABLE_ENTITY "identity.user.passwords_doesnt_match";
    IdentityUserReferralDoesntExist = UNPROCESSABLE_ENTITY "identity.user.referral_doesnt_exist";
    IdentityUserUtilizedToken = UNPROCESSABLE_ENTITY "identity.user.utilized_token";
    JwtDecodeAndVerify = UNAUTHORIZED "jwt.decode_and_verify";
    PublicKycInvalidSignature = UNAUTHORIZED "public.kyc.invalid_signature";
    RecordNotFound = NOT_FOUND "record.not_found";
    RequestBodyTooLarge = PAYLOAD_TOO_LARGE "request.body_too_large";
    RequestMalformedBody = BAD_REQUEST "request.malformed_body";
    ResourceDocumentsAlreadyExpired = UNPROCESSABLE_ENTITY "resource.documents.already_expired";
    ResourceDocumentsInvalidFormat = UNPROCESSABLE_ENTITY "resource.documents.invalid_format";
    ResourceDocumentsLimitReached = BAD_REQUEST "resource.documents.limit_reached";
    ResourceDocumentsLimitWillBeReached = BAD_REQUEST "resource.documents.limit_will_be_reached";
    ResourceLabelsPrivate = BAD_REQUEST "resource.labels.private";
    ResourceOtpAlreadyEnabled = BAD_REQUEST "resource.otp.already_enabled";
    ResourceOtpInvalid = UNPROCESSABLE_ENTITY "resource.otp.invalid";
    ResourceOtpNotEnabled = BAD_REQUEST "resource.otp.not_enabled";
    ResourcePasskeyAlreadyRegistered = UNPROCESSABLE_ENTITY "resource.passkey.already_registered";
    ResourcePasskeyChallengeExpired = UNPROCESSABLE_ENTITY "resource.passkey.challenge_expired";
    ResourcePasskeyConfirmationRequired = UNPROCESSABLE_ENTITY "resource.passkey.confirmation_required";
    ResourcePasskeyDisabled = UNPROCESSABLE_ENTITY "resource.passkey.disabled";
    ResourcePasskeyInvalidChallenge = UNPROCESSABLE_ENTITY "resource.passkey.invalid_challenge";
    ResourcePasskeyInvalidCredential = UNPROCESSABLE_ENTITY "resource.passkey.invalid_credential";
    ResourcePasskeyInvalidName = UNPROCESSABLE_ENTITY "resource.passkey.invalid_name";
    ResourcePasskeyInvalidOtp = UNPROCESSABLE_ENTITY "resource.passkey.invalid_otp";
    ResourcePasskeyInvalidPassword = UNPROCESSABLE_ENTITY "resource.passkey.invalid_password";
    ResourcePasskeyNotFound = NOT_FOUND "resource.passkey.not_found";
    ResourcePasswordDoesntMatch = UNPROCESSABLE_ENTITY "resource.password.doesnt_match";
    ResourcePasswordNoChangeProvided = BAD_REQUEST "resource.password.no_change_provided";
    ResourcePasswordPrevPassNotCorrect = BAD_REQUEST "resource.password.prev_pass_not_correct";
    ResourcePhoneDoesntExist = NOT_FOUND "resource.phone.doesnt_exist";
    ResourcePhoneExists = BAD_REQUEST "resource.phone.exists";
    ResourcePhoneInvalidNum = BAD_REQUEST "resource.phone.invalid_num";
    ResourcePhoneNumberExist = BAD_REQUEST "resource.phone.number_exist";
    ResourcePhoneTooManyCodes = TOO_MANY_REQUESTS "resource.phone.too_many_codes";
    ResourcePhoneVerificationInvalid = NOT_FOUND "resource.phone.verification_invalid";
    ResourceProfileDoesntExistOrNotEditable = NOT_FOUND "resource.profile.doesnt_exist_or_not_editable";
    ResourceServiceAccountDoesntExist = NOT_FOUND "resource.service_account.doesnt_exist";
    ResourceSessionNotFound = NOT_FOUND "resource.session.not_found";
    ResourceUserInvalidOtp = UNPROCESSABLE_ENTITY "resource.user.invalid_otp";
    ResourceUserInvalidPassword = UNPROCESSABLE_ENTITY "resource.user.invalid_password";
    ResourceUserMissingOtpCode = UNPROCESSABLE_ENTITY "resource.user.missing_otp_code";
    ResourceUserNoActivity = UNPROCESSABLE_ENTITY "resource.user.no_activity";
    ResourceUserWrongTopic = UNPROCESSABLE_ENTITY "resource.user.wrong_topic";
    RoleDoesntExist = UNPROCESSABLE_ENTITY "role.doesnt_exist";
    ServerBusy = SERVICE_UNAVAILABLE "server.busy";
    ServerInternalError = INTERNAL_SERVER_ERROR "server.internal_error";
    ServerRequestTimeout = REQUEST_TIMEOUT "server.request_timeout";
    ServerUnavailable = SERVICE_UNAVAILABLE "server.unavailable";
    SuperadminUserUpdateEmail = UNPROCESSABLE_ENTITY "superadmin.user.update_email";
    ValueInvalid = UNPROCESSABLE_ENTITY "value.invalid";
    ValueTaken = UNPROCESSABLE_ENTITY "value.taken";
}

impl From<Key> for ApiError {
    fn from(key: Key) -> Self {
        Self::new(key.status(), key.as_str())
    }
}

/// An error answer of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

/// The two body shapes Barong uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorBody {
    /// `{"errors":[...]}`, the common shape.
    Keys(Vec<String>),
    /// `{"error":"..."}`, used for unknown routes and a few handlers.
    Message(String),
}

impl ApiError {
    /// One key with a status.
    pub fn new(status: StatusCode, key: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::Keys(vec![key.into()]),
        }
    }

    /// 422 with the given keys (parameter and model validation).
    pub fn unprocessable(keys: Vec<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody::Keys(keys),
        }
    }

    /// Barong's answer for a path (or method) no route serves.
    pub fn route_not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            body: ErrorBody::Message("Route is not found".into()),
        }
    }

    /// The database is gone: the request cannot be served now, retrying later may work.
    pub fn unavailable() -> Self {
        ApiError::from(Key::ServerUnavailable)
    }

    /// Anything unexpected: logged by the caller, never detailed to the client.
    pub fn internal() -> Self {
        ApiError::from(Key::ServerInternalError)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::unavailable()
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Self::internal()
            }
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Busy => busy(),
            Refused::Failed => Self::internal(),
        }
    }
}

/// `503 server.busy`: every password-hashing turn and queue place is taken (`limits::hashing`);
/// retrying later may work.
pub fn busy() -> ApiError {
    ApiError::from(Key::ServerBusy)
}

/// `429 <namespace>.too_many_attempts`: an abuse limit (`limits`) refused the attempt.
pub fn too_many(namespace: &str) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("{namespace}.too_many_attempts"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_spelled_once_in_barongs_form() {
        let mut seen = std::collections::HashSet::new();
        for key in Key::ALL {
            let text = key.as_str();
            assert!(seen.insert(text), "{text} twice in the table");
            assert!(
                text.split('.').count() >= 2
                    && text.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"._".contains(&b)),
                "{text} is not a Barong key"
            );
            assert!(key.status().is_client_error() || key.status().is_server_error());
        }
    }

    #[test]
    fn a_key_becomes_its_status_and_body() {
        let error = ApiError::from(Key::RecordNotFound);
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert_eq!(error.body, ErrorBody::Keys(vec!["record.not_found".into()]));
    }
}
