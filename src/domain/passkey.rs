//! Passkeys (WebAuthn credentials) as stored, their open challenges, and the rules that do not
//! need the WebAuthn library: which factor completes a login, when a counter betrays a clone,
//! when a challenge is stale, when deleting a passkey needs the user to prove who they are.
//! The ceremonies themselves are `crate::service::passkeys` (webauthn-rs).

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    pub id: i64,
    pub user_id: i64,
    /// The credential id, base64url without padding, as the authenticator reports it.
    pub credential_id: String,
    /// The WebAuthn user handle (a random UUID per user) the authenticator keeps with a
    /// discoverable credential: how a passwordless login names its user.
    pub user_handle: String,
    pub name: String,
    /// webauthn-rs's serialised credential (public key, counter, flags).
    pub credential: String,
    /// The last signature counter accepted.
    pub counter: i64,
    /// Epoch seconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What it takes to store a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    pub user_id: i64,
    pub credential_id: String,
    pub user_handle: String,
    pub name: String,
    pub credential: String,
    pub counter: i64,
    pub created_at: i64,
}

/// What a challenge was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// Adding a passkey to the account of a logged-in user.
    Register,
    /// The second step of a login whose password was right.
    SecondFactor,
    /// A login by passkey alone (discoverable credential).
    Passwordless,
}

impl ChallengePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SecondFactor => "2fa",
            Self::Passwordless => "passwordless",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "register" => Some(Self::Register),
            "2fa" => Some(Self::SecondFactor),
            "passwordless" => Some(Self::Passwordless),
            _ => None,
        }
    }

    /// How a session opened by this ceremony was proven (`Session::authenticated_with`).
    pub fn authenticated_with(self) -> &'static str {
        match self {
            Self::Passwordless => "passkey",
            Self::SecondFactor | Self::Register => "password+passkey",
        }
    }
}

/// The server half of an open ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyChallenge {
    /// The challenge as sent, base64url: the key the answer is found by.
    pub challenge: String,
    pub purpose: ChallengePurpose,
    /// The user it was issued to; `None` for a passwordless login (the answer names the user).
    pub user_id: Option<i64>,
    /// webauthn-rs's serialised ceremony state.
    pub state: String,
    /// Epoch seconds after which the answer is refused.
    pub expires_at: i64,
}

impl PasskeyChallenge {
    /// A challenge is answered at most once and only before it expires.
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// Which second factors can complete the login of a user whose password was right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondFactors {
    pub totp: bool,
    pub passkey: bool,
}

impl SecondFactors {
    /// A TOTP user keeps Barong's login; a registered passkey is a second factor as well, and
    /// the only one of a user without TOTP.
    pub fn of(otp_enabled: bool, passkeys: usize) -> Self {
        Self {
            totp: otp_enabled,
            passkey: passkeys > 0,
        }
    }

    /// Whether the password alone is not enough.
    pub fn required(self) -> bool {
        self.totp || self.passkey
    }
}

/// The WebAuthn rule on signature counters (§7.2 step 21): once either the stored or the
/// presented counter is non-zero, the presented one must be greater. Otherwise two copies of
/// the private key are in use: the authenticator was cloned, or an assertion replayed.
pub fn counter_shows_clone(stored: u32, presented: u32) -> bool {
    (stored > 0 || presented > 0) && presented <= stored
}

/// The outcome of deleting one of a user's passkeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyDeletion {
    Deleted,
    /// Not a passkey of this user.
    NotFound,
    /// The user's last passkey, and the request did not prove the user (TOTP code or password):
    /// a stolen session must not remove a second factor.
    NeedsConfirmation,
}

/// The longest passkey name.
pub const NAME_MAX: usize = 64;

/// A passkey name: trimmed, 1 to [`NAME_MAX`] characters, no control characters.
pub fn passkey_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let fits = !name.is_empty() && name.chars().count() <= NAME_MAX;
    (fits && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_that_do_not_move_forward_are_clones() {
        assert!(
            !counter_shows_clone(0, 0),
            "authenticators without a counter"
        );
        assert!(!counter_shows_clone(0, 1));
        assert!(!counter_shows_clone(5, 6));
        assert!(counter_shows_clone(5, 5));
        assert!(counter_shows_clone(5, 4));
        assert!(counter_shows_clone(5, 0));
    }

    #[test]
    fn second_factors() {
        assert!(!SecondFactors::of(false, 0).required());
        let passkey_only = SecondFactors::of(false, 2);
        assert!(passkey_only.required() && passkey_only.passkey && !passkey_only.totp);
        let both = SecondFactors::of(true, 1);
        assert!(both.totp && both.passkey);
        assert!(SecondFactors::of(true, 0).required());
    }

    #[test]
    fn purposes_round_trip_and_name_the_session() {
        for purpose in [
            ChallengePurpose::Register,
            ChallengePurpose::SecondFactor,
            ChallengePurpose::Passwordless,
        ] {
            assert_eq!(ChallengePurpose::parse(purpose.as_str()), Some(purpose));
        }
        assert_eq!(
            ChallengePurpose::SecondFactor.authenticated_with(),
            "password+passkey"
        );
        assert_eq!(
            ChallengePurpose::Passwordless.authenticated_with(),
            "passkey"
        );
        assert_eq!(ChallengePurpose::parse("login"), None);
    }

    #[test]
    fn challenges_expire_at_their_time() {
        let challenge = PasskeyChallenge {
            challenge: "c".into(),
            purpose: ChallengePurpose::Register,
            user_id: Some(1),
            state: "{}".into(),
            expires_at: 100,
        };
        assert!(!challenge.is_expired(99));
        assert!(challenge.is_expired(100));
    }

    #[test]
    fn names() {
        assert_eq!(passkey_name("  Laptop  ").as_deref(), Some("Laptop"));
        assert_eq!(passkey_name("   "), None);
        assert_eq!(passkey_name("a\u{0}b"), None);
        assert_eq!(passkey_name(&"x".repeat(65)), None);
        assert!(passkey_name(&"é".repeat(64)).is_some());
    }
}
