//! Every way a decision can refuse: Barong's error key, its whole JSON body and its status,
//! shared by the HTTP and gRPC fronts.

use http::{HeaderValue, StatusCode};

use super::cache::LoadError;

/// Every way a decision can refuse, with Barong's key and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deny {
    /// A path spelling two servers could route differently (`path::canonical`).
    InvalidPath,
    /// A method override that is not one verb.
    InvalidMethod,
    /// A gRPC check that does not describe one HTTP request (no `http` attribute, a header no
    /// HTTP request could carry): nothing to judge, so nothing passes.
    InvalidRequest,
    Restricted {
        category: &'static str,
        code: u16,
    },
    PermissionDenied,
    MissingCsrfToken,
    CsrfTokenMismatch,
    InvalidSession,
    ClientSessionMismatch,
    UserNotActive,
    InvalidApiKeyHeaders,
    UnexistentApiKey,
    NonceNotValidTimestamp,
    NonceExpired,
    NonceReplayed,
    InvalidSignature,
    ApiKeyNotActive,
    Disabled2fa,
    InvalidPermission,
    /// The database is needed and unreachable: fail closed, fast.
    Unavailable,
}

/// Each deny key with its whole answer body, both `'static`, and the body as a header value
/// checked at compile time (`HeaderValue::from_static` called at run time checks every byte):
/// a deny answer copies and checks nothing. The table's index of a key is [`Deny::index`],
/// which also picks its counter in `/metrics` (`authz::metrics`).
macro_rules! deny_texts {
    ($($name:ident = $key:literal;)*) => {
        #[allow(
            non_camel_case_types,
            clippy::upper_case_acronyms,
            reason = "each names its constant of old, as the key reads in upper case"
        )]
        #[derive(Clone, Copy)]
        enum Text { $($name),* }

        const COUNT: usize = [$(Text::$name),*].len();

        static TEXTS: [(&str, &str, HeaderValue); COUNT] = [$((
            $key,
            concat!(r#"{"errors":[""#, $key, r#""]}"#),
            HeaderValue::from_static(concat!(r#"{"errors":[""#, $key, r#""]}"#)),
        )),*];
    };
}

deny_texts! {
    RESTRICT_MAINTENANCE = "authz.restrict.maintenance";
    RESTRICT_BLOCKLOGIN = "authz.restrict.blocklogin";
    RESTRICT_BLACKLIST = "authz.restrict.blacklist";
    INVALID_PATH = "authz.invalid_path";
    INVALID_METHOD = "authz.invalid_method";
    INVALID_REQUEST = "authz.invalid_request";
    PERMISSION_DENIED = "authz.permission_denied";
    MISSING_CSRF_TOKEN = "authz.missing_csrf_token";
    CSRF_TOKEN_MISMATCH = "authz.csrf_token_mismatch";
    INVALID_SESSION = "authz.invalid_session";
    CLIENT_SESSION_MISMATCH = "authz.client_session_mismatch";
    USER_NOT_ACTIVE = "authz.user_not_active";
    INVALID_API_KEY_HEADERS = "authz.invalid_api_key_headers";
    UNEXISTENT_APIKEY = "authz.unexistent_apikey";
    NONCE_NOT_VALID_TIMESTAMP = "authz.nonce_not_valid_timestamp";
    NONCE_EXPIRED = "authz.nonce_expired";
    NONCE_REPLAYED = "authz.nonce_replayed";
    INVALID_SIGNATURE = "authz.invalid_signature";
    APIKEY_NOT_ACTIVE = "authz.apikey_not_active";
    DISABLED_2FA = "authz.disabled_2fa";
    INVALID_PERMISSION = "authz.invalid_permission";
    UNAVAILABLE = "authz.unavailable";
}

impl Deny {
    /// How many keys there are: [`Self::index`] is below it.
    pub const KEYS: usize = COUNT;

    pub fn key(self) -> &'static str {
        self.texts().0
    }

    /// Barong's error body, `{"errors":["<key>"]}`.
    pub fn body(self) -> &'static str {
        self.texts().1
    }

    /// [`Self::body`] as a header value (nginx's `X-Barong-Error`).
    pub fn body_header(self) -> HeaderValue {
        self.texts().2.clone()
    }

    /// The key's place among all keys (below [`Self::KEYS`]): one counter each in `/metrics`,
    /// found without comparing a string.
    pub fn index(self) -> usize {
        self.text() as usize
    }

    /// Every key, in the order [`Self::index`] numbers them.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        TEXTS.iter().map(|texts| texts.0)
    }

    fn texts(self) -> &'static (&'static str, &'static str, HeaderValue) {
        // Every `Text` names an entry of `TEXTS` (the macro makes both from one list).
        &TEXTS[self.index()]
    }

    fn text(self) -> Text {
        use Text::*;
        match self {
            Self::Restricted { category, .. } => match category {
                "maintenance" => RESTRICT_MAINTENANCE,
                "blocklogin" => RESTRICT_BLOCKLOGIN,
                _ => RESTRICT_BLACKLIST,
            },
            Self::InvalidPath => INVALID_PATH,
            Self::InvalidMethod => INVALID_METHOD,
            Self::InvalidRequest => INVALID_REQUEST,
            Self::PermissionDenied => PERMISSION_DENIED,
            Self::MissingCsrfToken => MISSING_CSRF_TOKEN,
            Self::CsrfTokenMismatch => CSRF_TOKEN_MISMATCH,
            Self::InvalidSession => INVALID_SESSION,
            Self::ClientSessionMismatch => CLIENT_SESSION_MISMATCH,
            Self::UserNotActive => USER_NOT_ACTIVE,
            Self::InvalidApiKeyHeaders => INVALID_API_KEY_HEADERS,
            Self::UnexistentApiKey => UNEXISTENT_APIKEY,
            Self::NonceNotValidTimestamp => NONCE_NOT_VALID_TIMESTAMP,
            Self::NonceExpired => NONCE_EXPIRED,
            Self::NonceReplayed => NONCE_REPLAYED,
            Self::InvalidSignature => INVALID_SIGNATURE,
            Self::ApiKeyNotActive => APIKEY_NOT_ACTIVE,
            Self::Disabled2fa => DISABLED_2FA,
            Self::InvalidPermission => INVALID_PERMISSION,
            Self::Unavailable => UNAVAILABLE,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Restricted { code, .. } => {
                StatusCode::from_u16(code).unwrap_or(StatusCode::UNAUTHORIZED)
            }
            Self::InvalidPath | Self::InvalidMethod | Self::InvalidRequest => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidApiKeyHeaders => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl From<LoadError> for Deny {
    fn from(error: LoadError) -> Self {
        tracing::warn!(%error, "authz cannot reach the database");
        Deny::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_statuses_follow_barong() {
        assert_eq!(
            Deny::InvalidApiKeyHeaders.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let maintenance = Deny::Restricted {
            category: "maintenance",
            code: 471,
        };
        assert_eq!(maintenance.status().as_u16(), 471);
        assert_eq!(maintenance.key(), "authz.restrict.maintenance");
        assert_eq!(Deny::Unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Deny::InvalidRequest.status(), StatusCode::BAD_REQUEST);
    }
}
