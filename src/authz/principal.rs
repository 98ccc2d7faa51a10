//! Who a request is: Barong's session-cookie flow and its API-key flow.
//!
//! Each flow is written once, as checks over the values the caches hold, and runs two ways:
//! - **lent** ([`Authz::decide_lent`]): every value it needs is in this thread's cache fronts
//!   (`thread_front`), borrowed there for the length of the decision. No await, and no
//!   reference count taken and given back: four lock-prefixed instructions fewer an allow,
//!   10 to 15 ns each on Intel cores (docs/benchmarks.md, sixteenth pass).
//! - **owned** ([`Authz::authenticate_session`], [`Authz::authenticate_api_key`]): through the
//!   shared caches, which may load from the store, with the steps that need I/O (deleting a
//!   mismatched session, replay protection).
//!
//! The lent way gives up (`None`) before it writes anything whenever it would need the owned
//! way, which then runs from the start; so both answer every request alike.

use std::sync::Arc;

use super::cache::{self, CachedKey, CachedSession};
use super::request::{self, AuthzRequest, X_CSRF_TOKEN, header as header_text};
use super::token::Source;
use super::{Allow, Authz, Deny, apikey, is_safe};
use crate::crypto::constant_time_eq;
use crate::domain::{
    KeyHolder, ServiceAccount, SessionCookie, SessionDigest, User, session_cookie, session_digest,
};

/// The principal of a request, owned (the owned way's answer).
pub(super) enum Holder {
    User(Arc<User>),
    ServiceAccount(Arc<ServiceAccount>),
}

impl Holder {
    pub(super) fn source(&self) -> Source<'_> {
        match self {
            Self::User(user) => Source::User(user),
            Self::ServiceAccount(account) => Source::ServiceAccount(account),
        }
    }
}

/// Why a session is refused.
enum Refusal {
    Deny(Deny),
    /// Its agent, address or expiry do not match: Barong deletes it, which is I/O.
    Mismatch,
}

/// The API-key headers, each present, ASCII and not blank. The nonce and the signature stay
/// bytes: only their digits are read, and a `str` of them would cost a UTF-8 check.
struct KeyHeaders<'r> {
    kid: &'r str,
    nonce: &'r [u8],
    signature: &'r [u8],
}

impl Authz {
    /// The decision on a request that is neither blocked nor public, from this thread's fronts
    /// alone; `None` when something it needs is not there or needs I/O.
    pub(super) fn decide_lent(&self, req: &AuthzRequest<'_>) -> Option<Result<Allow, Deny>> {
        if req.present.api_key() {
            self.api_key_lent(req)
        } else {
            self.session_lent(req)
        }
    }

    fn session_lent(&self, req: &AuthzRequest<'_>) -> Option<Result<Allow, Deny>> {
        let digest = match self.session_digest(req) {
            Ok(Some(digest)) => digest,
            // No cookie: nothing to look up.
            Ok(None) => return Some(self.check_csrf(req, None).and(Err(Deny::InvalidSession))),
            Err(deny) => return Some(Err(deny)),
        };
        let caches = &self.caches;
        caches.lend_session(&digest, req.now, |session| {
            if let Err(deny) = self.check_csrf(req, session.map(|s| &**s)) {
                return Some(Err(deny));
            }
            let Some(session) = session else {
                return Some(Err(Deny::InvalidSession));
            };
            caches.lend_user(session.user_id, req.now, |user| {
                let Some(user) = user else {
                    return Some(Err(Deny::InvalidSession));
                };
                match self.admit_session(req, &digest, session, user) {
                    Ok(()) => Some(self.authorize(req, Source::User(user))),
                    Err(Refusal::Deny(deny)) => Some(Err(deny)),
                    Err(Refusal::Mismatch) => None,
                }
            })
        })
    }

    /// Barong's cookie flow: CSRF first (so a POST without session and token reports the
    /// token), then the session, its binding to agent, network and expiry, then the user.
    pub(super) async fn authenticate_session(
        &self,
        req: &AuthzRequest<'_>,
    ) -> Result<Holder, Deny> {
        let digest = self.session_digest(req)?;
        let session = match &digest {
            Some(digest) => self.caches.session(digest, req.now).await?,
            None => None,
        };
        self.check_csrf(req, session.as_deref())?;
        let (Some(digest), Some(session)) = (digest, session) else {
            return Err(Deny::InvalidSession);
        };
        let user = self
            .caches
            .user(session.user_id, req.now)
            .await?
            .ok_or(Deny::InvalidSession)?;
        match self.admit_session(req, &digest, &session, &user) {
            Ok(()) => Ok(Holder::User(user)),
            Err(Refusal::Deny(deny)) => Err(deny),
            Err(Refusal::Mismatch) => {
                self.destroy_session(&hex::encode(digest)).await;
                Err(Deny::ClientSessionMismatch)
            }
        }
    }

    /// The digest of the request's one session cookie, `None` without one; a repeated cookie
    /// is refused (two servers could read different ones).
    fn session_digest(&self, req: &AuthzRequest<'_>) -> Result<Option<SessionDigest>, Deny> {
        if !req.present.cookie() {
            return Ok(None);
        }
        match session_cookie(req.headers, &self.settings.session_name) {
            SessionCookie::One(value) => Ok(Some(session_digest(value))),
            SessionCookie::Absent => Ok(None),
            SessionCookie::Repeated => Err(Deny::InvalidSession),
        }
    }

    /// A verb that may change state needs the session's CSRF token (when the setting is on).
    fn check_csrf(
        &self,
        req: &AuthzRequest<'_>,
        session: Option<&CachedSession>,
    ) -> Result<(), Deny> {
        let unsafe_method =
            !is_safe(&req.method) || req.override_method.as_ref().is_some_and(|m| !is_safe(m));
        if self.settings.csrf_protection && unsafe_method {
            let token = header_text(req.headers, X_CSRF_TOKEN).ok_or(Deny::MissingCsrfToken)?;
            let expected = session.map(|s| &*s.csrf_token);
            if !expected.is_some_and(|expected| constant_time_eq(expected, token)) {
                return Err(Deny::CsrfTokenMismatch);
            }
        }
        Ok(())
    }

    /// A found session's binding and expiry, its sliding expiry moved, then its user's state.
    fn admit_session(
        &self,
        req: &AuthzRequest<'_>,
        digest: &SessionDigest,
        session: &CachedSession,
        user: &User,
    ) -> Result<(), Refusal> {
        // Seconds: a coarse clock is enough (`crate::clock`).
        let now = crate::clock::unix_millis() / 1000;
        let policy = *session.policy.get_or_init(|| {
            *self
                .settings
                .sessions
                .for_agent(session.user_agent.as_deref())
        });
        if !session_matches(session, &policy, req, now) {
            return Err(Refusal::Mismatch);
        }
        let new_expiry = now + policy.expire_time;
        if let Some(expire_at) =
            cache::slide(session, new_expiry, self.settings.session_write_behind)
        {
            self.expiry.push(&hex::encode(digest), expire_at);
        }
        if !user.state.allows_login() {
            return Err(Refusal::Deny(Deny::UserNotActive));
        }
        Ok(())
    }

    fn api_key_lent(&self, req: &AuthzRequest<'_>) -> Option<Result<Allow, Deny>> {
        // Replay protection asks its store: the owned way.
        if self.replay.is_some() {
            return None;
        }
        let headers = match key_headers(req) {
            Ok(headers) => headers,
            Err(deny) => return Some(Err(deny)),
        };
        let caches = &self.caches;
        caches.lend_api_key(headers.kid, req.now, |key| {
            let Some(key) = key else {
                return Some(Err(Deny::UnexistentApiKey));
            };
            let now_ms = match self.check_signed(key, &headers) {
                Ok(now_ms) => now_ms,
                Err(deny) => return Some(Err(deny)),
            };
            if !key.active {
                return Some(Err(Deny::ApiKeyNotActive));
            }
            let admitted = |source: Source<'_>| {
                self.note_key_use(key, now_ms);
                self.authorize(req, source)
            };
            match key.key.holder {
                KeyHolder::User(id) => caches.lend_user(id, req.now, |user| {
                    Some(admit_key_user(user).and_then(|user| admitted(Source::User(user))))
                }),
                KeyHolder::ServiceAccount(id) => {
                    caches.lend_service_account(id, req.now, |account| {
                        Some(
                            admit_key_account(account)
                                .and_then(|account| admitted(Source::ServiceAccount(account))),
                        )
                    })
                }
            }
        })
    }

    /// Barong's API-key flow, in its order: key, nonce, window, signature, key state, holder.
    pub(super) async fn authenticate_api_key(
        &self,
        req: &AuthzRequest<'_>,
    ) -> Result<Holder, Deny> {
        let headers = key_headers(req)?;
        let key = self
            .caches
            .api_key(headers.kid, req.now)
            .await?
            .ok_or(Deny::UnexistentApiKey)?;
        let now_ms = self.check_signed(&key, &headers)?;
        if let Some(seen) = &self.replay {
            // One atomic insert-if-absent: of two identical requests, only one is fresh.
            let fresh = seen
                .first_sight(headers.kid, headers.nonce, headers.signature)
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "API-key replay check unavailable");
                    Deny::Unavailable
                })?;
            if !fresh {
                return Err(Deny::NonceReplayed);
            }
        }
        if !key.active {
            return Err(Deny::ApiKeyNotActive);
        }
        let holder = match key.key.holder {
            KeyHolder::User(id) => {
                Holder::User(admit_key_user(self.caches.user(id, req.now).await?)?)
            }
            KeyHolder::ServiceAccount(id) => Holder::ServiceAccount(admit_key_account(
                self.caches.service_account(id, req.now).await?,
            )?),
        };
        self.note_key_use(&key, now_ms);
        Ok(holder)
    }

    /// The nonce, its window and the signature; the time they were judged at (ms).
    fn check_signed(&self, key: &CachedKey, headers: &KeyHeaders<'_>) -> Result<i64, Deny> {
        let nonce_ms = apikey::parse_nonce(headers.nonce);
        if nonce_ms <= 0 {
            return Err(Deny::NonceNotValidTimestamp);
        }
        // A window of seconds: a coarse clock is enough (`crate::clock`).
        let now_ms = crate::clock::unix_millis();
        let settings = &self.settings;
        if (now_ms.saturating_sub(nonce_ms)).abs() >= settings.nonce_lifetime_ms
            || (settings.replay_protection
                && nonce_ms.saturating_sub(now_ms) > settings.future_skew_ms)
        {
            return Err(Deny::NonceExpired);
        }
        let signed = key.hmac.as_ref().is_some_and(|hmac| {
            apikey::signature_matches(hmac, headers.nonce, headers.kid, headers.signature)
        });
        if !signed {
            return Err(Deny::InvalidSignature);
        }
        Ok(now_ms)
    }

    /// Queues the key's last use for the database when it is due.
    fn note_key_use(&self, key: &CachedKey, now_ms: i64) {
        let now = now_ms / 1000;
        if let Some(at) = cache::key_used(key, now, self.settings.session_write_behind) {
            self.expiry.push_key_use(&key.key.kid, at);
        }
    }
}

/// The three headers as `HeaderValue::to_str` accepts them, not blank. A `HeaderValue` holds
/// only tab, space to `~` and bytes from 0x80, so `to_str` accepts exactly the ASCII ones; the
/// nonce and the signature (77 bytes) are checked so, a word at a time, where `to_str` checks
/// a byte at a time (112 instructions fewer a key's decision, eighteenth pass). The kid,
/// short, goes through `to_str` for its `str`: `std::str::from_utf8` of 16 bytes costs more
/// (117 instructions). ASCII trimming is then all trimming.
fn key_headers<'r>(req: &AuthzRequest<'r>) -> Result<KeyHeaders<'r>, Deny> {
    let [kid, nonce, signature] = request::api_key_headers(req.headers);
    let kid = kid.and_then(|v| v.to_str().ok());
    let ascii = |value: Option<&'r http::HeaderValue>| {
        value
            .map(http::HeaderValue::as_bytes)
            .filter(|v| v.is_ascii())
    };
    let blank = |value: &[u8]| value.trim_ascii().is_empty();
    match (kid, ascii(nonce), ascii(signature)) {
        (Some(kid), Some(nonce), Some(signature))
            if !blank(kid.as_bytes()) && !blank(nonce) && !blank(signature) =>
        {
            Ok(KeyHeaders {
                kid,
                nonce,
                signature,
            })
        }
        _ => Err(Deny::InvalidApiKeyHeaders),
    }
}

/// A key's user: found, allowed to log in, with 2FA on. Owned or lent alike.
fn admit_key_user<U: AsRef<User>>(user: Option<U>) -> Result<U, Deny> {
    let user = user.ok_or(Deny::InvalidSession)?;
    if !user.as_ref().state.allows_login() {
        return Err(Deny::InvalidSession);
    }
    if !user.as_ref().otp {
        return Err(Deny::Disabled2fa);
    }
    Ok(user)
}

/// A key's service account: found and allowed to log in.
fn admit_key_account<A: AsRef<ServiceAccount>>(account: Option<A>) -> Result<A, Deny> {
    let account = account.ok_or(Deny::InvalidSession)?;
    if !account.as_ref().state.allows_login() {
        return Err(Deny::InvalidSession);
    }
    Ok(account)
}

/// Same agent (both absent counts as equal), not expired, and the address the policy's
/// binding asks for (Barong's: the same /16 for IPv4, /96 for IPv6).
fn session_matches(
    cached: &CachedSession,
    policy: &crate::domain::SessionPolicy,
    req: &AuthzRequest<'_>,
    now: i64,
) -> bool {
    let agent = header_text(req.headers, http::header::USER_AGENT);
    let expire_at = cached
        .expiry()
        .expire_at
        .load(std::sync::atomic::Ordering::Relaxed);
    agent == cached.user_agent.as_deref()
        && now < expire_at
        && policy.binding.allows_ip(cached.user_ip, req.client_ip)
}
