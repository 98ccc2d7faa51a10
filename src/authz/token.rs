//! The JWT the allow answer carries: Barong's claims, signed with the current key, and reused
//! for the same principal and claims for a short while so signing is not paid per request.
//! A reused token is only handed out while the key that signed it is still current.

use std::any::Any;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use serde::Serialize;

use super::thread_front::ThreadFront;
use crate::clock::Tick;
use crate::crypto::keyring::{RingKey, SharedKeys};
use crate::crypto::keys::KeyError;
use crate::domain::{ServiceAccount, User};

/// Who the token speaks for, with the claims Barong puts in it, borrowed from the cached user
/// or service account: building one per decision copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Principal<'a> {
    pub uid: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub level: i32,
    pub state: &'a str,
    /// `Some` for users (`username`, `referral_id`), `None` for service accounts.
    pub user_extras: Option<UserExtras<'a>>,
}

impl<'a> Principal<'a> {
    /// A user's claims.
    pub fn of_user(user: &'a User) -> Self {
        Self {
            uid: &user.uid,
            email: &user.email,
            role: &user.role,
            level: user.level,
            state: user.state.as_str(),
            user_extras: Some(UserExtras {
                username: user.username.as_deref(),
                referral_id: user.referral_id,
            }),
        }
    }

    /// A service account's claims (no user claims).
    pub fn of_service_account(account: &'a ServiceAccount) -> Self {
        Self {
            uid: &account.uid,
            email: &account.email,
            role: &account.role,
            level: account.level,
            state: account.state.as_str(),
            user_extras: None,
        }
    }
}

/// Claims only users carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserExtras<'a> {
    pub username: Option<&'a str>,
    pub referral_id: Option<i64>,
}

/// The cached object a principal's claims were read from. The caches never change one in
/// place (a changed row is a new object), so while a thread's slot keeps the object alive, its
/// address stands for exactly these claims: a hit there hashes and compares no claim.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    User(&'a Arc<User>),
    ServiceAccount(&'a Arc<ServiceAccount>),
}

/// Whom a token is for.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A cached user or service account: the claims are read from it, and a thread's reuse is
    /// keyed by the object itself. The decision's only way in, so the claims and the object a
    /// reuse is keyed by can never disagree.
    Cached(Source<'a>),
    /// Claims without the object they came from (benches, tests): reused through the shared
    /// cache only.
    Claims(Principal<'a>),
}

impl<'a> Source<'a> {
    /// The claims of the object.
    pub fn principal(self) -> Principal<'a> {
        match self {
            Self::User(user) => Principal::of_user(user),
            Self::ServiceAccount(account) => Principal::of_service_account(account),
        }
    }

    fn address(self) -> usize {
        match self {
            Self::User(user) => Arc::as_ptr(user) as usize,
            Self::ServiceAccount(account) => Arc::as_ptr(account) as usize,
        }
    }

    /// Keeps the object alive, so its address names no other object while a slot holds it.
    fn pin(self) -> Arc<dyn Any + Send + Sync> {
        match self {
            Self::User(user) => user.clone(),
            Self::ServiceAccount(account) => account.clone(),
        }
    }
}

/// A thread's reusable token for one source object.
#[derive(Clone)]
struct Reuse {
    minted: Arc<Minted>,
    _source: Arc<dyn Any + Send + Sync>,
}

impl Reuse {
    fn own_copy(reuse: &Reuse) -> Reuse {
        Reuse {
            minted: Minted::own_copy(&reuse.minted),
            _source: reuse._source.clone(),
        }
    }
}

/// The principal a reusable token was minted for, owned: a hit is only taken when it equals
/// the asking principal field by field, so two principals whose hashes collide never share a
/// token.
#[derive(Debug, Clone)]
struct Owner {
    uid: Box<str>,
    email: Box<str>,
    role: Box<str>,
    level: i32,
    state: Box<str>,
    user_extras: Option<(Option<Box<str>>, Option<i64>)>,
}

impl Owner {
    fn of(p: &Principal<'_>) -> Self {
        Self {
            uid: p.uid.into(),
            email: p.email.into(),
            role: p.role.into(),
            level: p.level,
            state: p.state.into(),
            user_extras: p
                .user_extras
                .map(|u| (u.username.map(Into::into), u.referral_id)),
        }
    }

    fn is(&self, p: &Principal<'_>) -> bool {
        *self.uid == *p.uid
            && *self.email == *p.email
            && *self.role == *p.role
            && self.level == p.level
            && *self.state == *p.state
            && self.user_extras.as_ref().map(|(n, r)| (n.as_deref(), *r))
                == p.user_extras.map(|u| (u.username, u.referral_id))
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    sub: &'static str,
    iss: &'static str,
    aud: [&'static str; 2],
    jti: String,
    uid: &'a str,
    email: &'a str,
    role: &'a str,
    level: i32,
    state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    referral_id: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<Option<&'a str>>,
}

/// Mints (or reuses) tokens.
pub struct TokenMinter {
    keys: Arc<SharedKeys>,
    lifetime: i64,
    reuse: Duration,
    /// Ready `Authorization` values with the `kid` that signed them, by the principal's hash:
    /// a reuse is a hash, a lookup, a comparison and a reference-count bump, not a copy.
    /// Entries past the reuse window are ignored and replaced; the cache only bounds their
    /// number (the same cache as the decision's, see `authz::timed_cache`).
    minted: quick_cache::sync::Cache<u64, Arc<Minted>>,
    /// Each thread's hottest tokens by their source object's address ([`Source`]), so two
    /// cores reusing one token write no line in common (`super::thread_front`); a hit is
    /// checked for its window and key as a shared one is.
    front: ThreadFront<usize, Reuse>,
    /// A seeded fast hash: a collision costs only a fresh token (the owner is compared).
    hasher: foldhash::fast::RandomState,
}

struct Minted {
    value: HeaderValue,
    at: Tick,
    kid: Box<str>,
    owner: Owner,
}

impl Minted {
    /// A thread's own copy, down to the header's bytes: a cloned `HeaderValue` shares them
    /// and their reference count.
    fn own_copy(minted: &Arc<Minted>) -> Arc<Minted> {
        let value = HeaderValue::from_bytes(minted.value.as_bytes())
            .unwrap_or_else(|_| minted.value.clone());
        Arc::new(Minted {
            value,
            at: minted.at,
            kid: minted.kid.clone(),
            owner: minted.owner.clone(),
        })
    }
}

impl TokenMinter {
    /// `lifetime` is `BARONG_JWT_EXPIRE_TIME`; reuse is capped at a tenth of it, so a reused
    /// token always has most of its life left.
    pub fn new(keys: Arc<SharedKeys>, lifetime_secs: u64, reuse_secs: u64) -> Self {
        let reuse = Duration::from_secs(reuse_secs.min(lifetime_secs / 10));
        Self {
            keys,
            lifetime: i64::try_from(lifetime_secs).unwrap_or(3600),
            reuse,
            minted: quick_cache::sync::Cache::new(100_000),
            front: ThreadFront::new(Reuse::own_copy),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The `Authorization: Bearer <jwt>` value for `subject`, fresh or reused within the reuse
    /// window as of `now` (the decision's clock).
    pub fn token(&self, subject: Subject<'_>, now: Tick) -> Result<HeaderValue, KeyError> {
        self.keys
            .read(|ring| self.token_by(ring.current(), subject, now))
    }

    /// [`Self::token`] with the ring's current key.
    fn token_by(
        &self,
        key: &RingKey,
        subject: Subject<'_>,
        now: Tick,
    ) -> Result<HeaderValue, KeyError> {
        let (principal, source) = match subject {
            Subject::Cached(source) => (source.principal(), Some(source)),
            Subject::Claims(principal) => (principal, None),
        };
        let principal = &principal;
        let fresh = |entry: &Minted| {
            now.saturating_duration_since(entry.at) < self.reuse && *entry.kid == *key.kid()
        };
        // `None` when tokens are never reused; else the claims' hash for the shared cache.
        let hash = if self.reuse.is_zero() {
            None
        } else {
            // Tokens never change in place, so the front needs no epoch (always 0). Only a
            // cached object has a slot: its address is the key.
            let slot = source.map(|source| {
                let address = source.address();
                (source, address, self.front.hash(&address))
            });
            if let Some((_, address, front_hash)) = slot
                && let Some(value) = self.front.get_with(front_hash, &address, now, 0, |reuse| {
                    fresh(&reuse.minted).then(|| reuse.minted.value.clone())
                })
            {
                return Ok(value);
            }
            let hash = self.hasher.hash_one(principal);
            if let Some(entry) = self.minted.get(&hash)
                && entry.owner.is(principal)
                && fresh(&entry)
            {
                let value = entry.value.clone();
                if let Some((source, address, front_hash)) = slot {
                    let until = entry.at + self.reuse;
                    let reuse = Reuse {
                        minted: entry,
                        _source: source.pin(),
                    };
                    self.front.put(front_hash, address, reuse, until, 0);
                }
                return Ok(value);
            }
            Some(hash)
        };
        let token = HeaderValue::try_from(format!("Bearer {}", self.mint(key, principal)?))
            .map_err(|_| KeyError::Generation)?;
        if let Some(hash) = hash {
            let minted = Minted {
                value: token.clone(),
                at: now,
                kid: key.kid().into(),
                owner: Owner::of(principal),
            };
            self.minted.insert(hash, Arc::new(minted));
        }
        Ok(token)
    }

    fn mint(&self, key: &RingKey, p: &Principal<'_>) -> Result<String, KeyError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iat: now,
            exp: now + self.lifetime,
            sub: "session",
            iss: "barong",
            aud: ["peatio", "barong"],
            jti: hex::encode(rand::random::<[u8; 10]>()),
            uid: p.uid,
            email: p.email,
            role: p.role,
            level: p.level,
            state: p.state,
            referral_id: p.user_extras.map(|u| u.referral_id),
            username: p.user_extras.map(|u| u.username),
        };
        let json = serde_json::to_vec(&claims).map_err(|_| KeyError::Generation)?;
        key.sign(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyring::{KeyRing, KeySpec};
    use crate::crypto::keys::{KeyAlgorithm, SigningKey, generate_private_key_pem};

    fn key() -> SigningKey {
        let pem = generate_private_key_pem(KeyAlgorithm::Es256).expect("generate");
        let private_der = pem::parse(&pem).expect("pem").into_contents();
        SigningKey {
            algorithm: KeyAlgorithm::Es256,
            private_der,
            pem,
        }
    }

    fn kid_of(value: &HeaderValue) -> String {
        let token = value.to_str().expect("ascii").trim_start_matches("Bearer ");
        jsonwebtoken::decode_header(token)
            .expect("header")
            .kid
            .expect("kid")
    }

    #[test]
    fn a_reused_token_is_only_the_same_principals() {
        let keys = Arc::new(SharedKeys::new(KeyRing::single(&key()).expect("ring")));
        let minter = TokenMinter::new(keys, 3600, 30);
        let member = Principal {
            uid: "ID1",
            email: "a@b.io",
            role: "member",
            level: 1,
            state: "active",
            user_extras: Some(UserExtras {
                username: None,
                referral_id: None,
            }),
        };
        let first = minter
            .token(Subject::Claims(member), Tick::now())
            .expect("token");
        assert_eq!(
            minter
                .token(Subject::Claims(member), Tick::now())
                .expect("reused"),
            first
        );
        let admin = Principal {
            role: "admin",
            ..member
        };
        assert_ne!(
            minter
                .token(Subject::Claims(admin), Tick::now())
                .expect("token"),
            first,
            "another role"
        );
        let account = Principal {
            user_extras: None,
            ..member
        };
        assert_ne!(
            minter
                .token(Subject::Claims(account), Tick::now())
                .expect("token"),
            first,
            "no user claims"
        );
    }

    #[test]
    fn a_reused_token_never_outlives_its_key() {
        let old = key();
        let keys = Arc::new(SharedKeys::new(KeyRing::single(&old).expect("ring")));
        let minter = TokenMinter::new(keys.clone(), 3600, 30);
        let principal = Principal {
            uid: "ID1",
            email: "a@b.io",
            role: "member",
            level: 1,
            state: "active",
            user_extras: None,
        };
        let first = minter
            .token(Subject::Claims(principal), Tick::now())
            .expect("token");
        assert_eq!(
            minter
                .token(Subject::Claims(principal), Tick::now())
                .expect("reused"),
            first
        );
        let retires_at = chrono::Utc::now().timestamp() + 3600;
        let spec = KeySpec {
            key: old,
            retires_at: Some(retires_at),
        };
        keys.replace(KeyRing::new(&key(), &[spec]).expect("rotated"));
        let after = minter
            .token(Subject::Claims(principal), Tick::now())
            .expect("token");
        assert_ne!(after, first);
        assert_eq!(kid_of(&after), keys.load().current().kid());
        assert_ne!(kid_of(&after), kid_of(&first));
    }

    fn user(role: &str) -> Arc<User> {
        let now = chrono::Utc::now();
        Arc::new(User {
            id: 1,
            uid: "ID1".into(),
            username: None,
            email: "a@b.io".into(),
            password_digest: String::new(),
            role: role.into(),
            data: None,
            level: 1,
            otp: false,
            state: crate::domain::UserState::Active,
            referral_id: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// The per-thread front is keyed by the source object: the same object gets its token
    /// back, another object with other claims never does, even once the first is dropped
    /// everywhere else (the slot keeps it alive, so its address is not reused), and a key
    /// rotation ends the reuse there as in the shared cache.
    #[test]
    fn a_threads_reuse_is_the_same_source_objects() {
        let keys = Arc::new(SharedKeys::new(KeyRing::single(&key()).expect("ring")));
        let minter = TokenMinter::new(keys.clone(), 3600, 30);
        let member = user("member");
        let token = |user: &Arc<User>| {
            minter
                .token(Subject::Cached(Source::User(user)), Tick::now())
                .expect("token")
        };
        let first = token(&member);
        // The second fills the front from the shared cache; the rest are front hits.
        for _ in 0..20 {
            assert_eq!(token(&member), first);
        }
        let same_claims = user("member");
        assert_eq!(token(&same_claims), first, "equal claims share the token");
        drop(same_claims);
        let admin = user("admin");
        let admins = token(&admin);
        assert_ne!(admins, first, "another role");
        drop(member);
        for _ in 0..20 {
            let other = user("superadmin");
            assert_ne!(token(&other), first);
            assert_ne!(token(&other), admins);
        }
        keys.replace(KeyRing::single(&key()).expect("ring"));
        assert_ne!(token(&admin), admins, "a new key ends the reuse");
    }
}
