//! The authz listener: `ANY /api/v2/auth/{path}`, the decision Envoy's `ext_authz` and nginx's
//! `auth_request` ask for on every request, in Barong's order: restrictions, block rules, pass
//! rules, the principal (session cookie or API key), permissions, then a JWT.
//!
//! Served straight on hyper (no router, no middleware stack) because this is the hot path; the
//! database is read only on cache misses (see `cache`), and writes (activities, sliding
//! expiries) go through background queues.

pub mod apikey;
pub mod audit;
pub mod cache;
mod deny;
pub mod expiry;
pub mod geo;
pub mod grpc;
mod http_front;
mod metrics;
pub mod path;
pub mod policy;
mod principal;
pub mod replay;
pub mod request;
pub mod rules;
mod thread_front;
mod timed_cache;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderValue, Method};

use self::audit::AuditQueue;
use self::cache::Caches;
use self::expiry::ExpiryQueue;
use self::geo::GeoIp;
use self::metrics::{Metrics, Outcome};
use self::policy::{Location, PermissionDecision, RestrictionDecision};
use self::request::{AuthzRequest, header as header_text};
use self::token::{Source, TokenMinter};
use crate::domain::{NewActivity, TrustedProxies};
use crate::invalidation::{Invalidation, InvalidationBus};
use crate::store::Store;

pub use deny::Deny;
pub use http_front::{ConnectionHandle, handle};
pub use rules::Rules;

/// The settings the decision reads, copied out of the configuration once.
#[derive(Debug, Clone)]
pub struct AuthzSettings {
    pub session_name: String,
    /// Binding and sliding expiry, per the session's agent.
    pub sessions: crate::domain::SessionPolicies,
    pub session_write_behind: i64,
    pub csrf_protection: bool,
    /// Whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    pub nonce_lifetime_ms: i64,
    pub replay_protection: bool,
    pub future_skew_ms: i64,
}

/// Everything the decision needs, shared by all connections.
pub struct Authz {
    pub settings: AuthzSettings,
    pub rules: Rules,
    pub caches: Arc<Caches>,
    pub tokens: TokenMinter,
    /// The signing keys; their JWKS is served at `/.well-known/jwks.json`.
    pub keys: Arc<crate::crypto::keyring::SharedKeys>,
    pub audit: AuditQueue,
    pub expiry: ExpiryQueue,
    pub store: Arc<dyn Store>,
    pub bus: InvalidationBus,
    /// Shared with the REST API (the country of a login).
    pub geoip: Option<Arc<GeoIp>>,
    /// Seen (kid, nonce, signature) triples when replay protection is on.
    pub replay: Option<replay::ReplayGuard>,
    pub metrics: Metrics,
    /// Request metrics of both listeners and the REST limiters (rendered by `/metrics`).
    pub observe: Arc<crate::observe::Observability>,
}

/// Barong's whitelink path: exempt from restrictions so a blocked visitor can whitelist itself.
const WHITELINK_PATH: &str = "api/v2/barong/identity/users/access";

/// A positive decision.
enum Allow {
    /// A pass rule: no principal, no token.
    Public,
    /// An authenticated principal with its token.
    Token {
        authorization: HeaderValue,
        api_key: bool,
    },
}

/// What a front (the HTTP listener, the gRPC listener) hands the decision: the original
/// request as the gateway saw it. Each front reads these from its own wire format; everything
/// after that is this one code path.
#[derive(Debug)]
pub struct Input<'a> {
    /// The verb the upstream gets.
    pub method: Method,
    /// The original path without its one leading `/`, not yet canonical (`path::canonical`).
    pub raw_path: &'a str,
    /// The original query string, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    /// Which optional headers `headers` carries: always `request::Present::of(headers)`, made
    /// once by the front (the HTTP front needs it before the decision, for the original verb).
    pub present: request::Present,
    /// Who sent the check (the proxy): its forwarding headers are believed only if it is one
    /// of `BARONG_TRUSTED_PROXIES`.
    pub peer: IpAddr,
}

/// The decision on one request, and the request id it was made under (the proxy's
/// `X-Request-Id`, else a new one), which every answer repeats.
#[derive(Debug)]
pub struct Verdict {
    /// `Ok(None)`: a pass rule, no token; `Ok(Some)`: the `Authorization` value with the JWT.
    pub outcome: Result<Option<HeaderValue>, Deny>,
    pub request_id: HeaderValue,
}

impl Authz {
    /// The one decision both fronts call, in a span carrying the request id; counts the
    /// outcome and its latency.
    pub async fn check(&self, input: &Input<'_>) -> Verdict {
        use tracing::Instrument;
        let started = crate::clock::Stopwatch::start();
        // The caches' and the token's clock, read once (`crate::clock`).
        let now = crate::clock::Tick::now();
        let request_id = if input.present.request_id() {
            crate::observe::request_id(input.headers)
        } else {
            crate::observe::new_request_id()
        };
        // Debug level: at the default `info` the span is never built, so the hot path does not
        // pay for it; `RUST_LOG=barong=debug` shows every decision's id.
        let span = tracing::debug_span!("authz", request_id = ?request_id);
        let outcome = if span.is_disabled() {
            // Not even the instrumenting wrapper: it would enter and leave a span per poll.
            self.judge(input, now).await
        } else {
            self.judge(input, now).instrument(span).await
        };
        self.count(&outcome, started.elapsed());
        let outcome = outcome.map(|allow| match allow {
            Allow::Public => None,
            Allow::Token { authorization, .. } => Some(authorization),
        });
        Verdict {
            outcome,
            request_id,
        }
    }

    /// A request a front refuses before it can be judged (a malformed gRPC check), counted as
    /// a deny like any other.
    pub fn refuse(&self, deny: Deny, headers: &http::HeaderMap) -> Verdict {
        self.count(&Err(deny), std::time::Duration::ZERO);
        Verdict {
            outcome: Err(deny),
            request_id: crate::observe::request_id(headers),
        }
    }

    async fn judge(&self, input: &Input<'_>, now: crate::clock::Tick) -> Result<Allow, Deny> {
        let outcome = match judged(input) {
            Ok((path, override_method)) => {
                let req = AuthzRequest {
                    method: input.method.clone(),
                    present: input.present,
                    override_method,
                    path: &path,
                    query: input.query,
                    headers: input.headers,
                    client_ip: if input.present.forwarding() {
                        self.settings
                            .trusted_proxies
                            .client_ip(input.headers, input.peer)
                    } else {
                        crate::domain::client_ip::peer_address(input.peer)
                    },
                    now,
                };
                self.decide(&req).await
            }
            Err(deny) => Err(deny),
        };
        // Inside the request's span: with `RUST_LOG=barong::authz=debug` every decision is
        // logged with its request id (never with cookies, tokens or keys).
        tracing::debug!(
            allowed = outcome.is_ok(),
            raw_path = input.raw_path,
            "authz decision"
        );
        outcome
    }

    fn count(&self, outcome: &Result<Allow, Deny>, elapsed: std::time::Duration) {
        self.metrics.record(match outcome {
            Ok(Allow::Public) => Outcome::Public,
            Ok(Allow::Token { api_key: true, .. }) => Outcome::ApiKey,
            Ok(Allow::Token { .. }) => Outcome::Session,
            Err(deny) => Outcome::Deny(*deny),
        });
        let status = match outcome {
            Ok(_) => 200,
            Err(deny) => deny.status().as_u16(),
        };
        self.observe.requests.decided(status, elapsed);
    }
}

/// What the decision judges besides the headers: the canonical path and the override verb.
/// Refused before anything else, so no rule, cache or audit row ever sees a raw spelling.
fn judged<'r>(input: &Input<'r>) -> Result<(std::borrow::Cow<'r, str>, Option<Method>), Deny> {
    let path = path::canonical(input.raw_path).map_err(|_| Deny::InvalidPath)?;
    let override_method = request::override_method(input.headers, input.present, input.query)
        .map_err(|_| Deny::InvalidMethod)?;
    Ok((path, override_method))
}

impl Authz {
    async fn decide(&self, req: &AuthzRequest<'_>) -> Result<Allow, Deny> {
        if req.path != WHITELINK_PATH {
            self.check_restrictions(req)?;
        }
        if self.rules.is_blocked(req.path) {
            return Err(Deny::PermissionDenied);
        }
        if self.rules.is_public(req.path) {
            return Ok(Allow::Public);
        }
        if let Some(outcome) = self.decide_lent(req) {
            return outcome;
        }
        let holder = if req.present.api_key() {
            self.authenticate_api_key(req).await?
        } else {
            self.authenticate_session(req).await?
        };
        self.authorize(req, holder.source())
    }

    /// RBAC, then the token: how every allowed decision ends.
    fn authorize(&self, req: &AuthzRequest<'_>, source: Source<'_>) -> Result<Allow, Deny> {
        self.check_permission(req, source)?;
        let authorization = self
            .tokens
            .token(token::Subject::Cached(source), req.now)
            .map_err(|error| {
                tracing::error!(%error, "JWT signing failed");
                Deny::Unavailable
            })?;
        Ok(Allow::Token {
            authorization,
            api_key: req.present.api_key(),
        })
    }

    fn check_restrictions(&self, req: &AuthzRequest<'_>) -> Result<(), Deny> {
        let decision = self.caches.restrictions.read(|restrictions| {
            if restrictions.is_empty() {
                return RestrictionDecision::Pass;
            }
            let location = if restrictions.needs_location() {
                self.locate(req.client_ip)
            } else {
                Location::default()
            };
            restrictions.evaluate(req.client_ip, &location, req.path)
        });
        match decision {
            RestrictionDecision::Pass => Ok(()),
            RestrictionDecision::Deny { category, code } => {
                Err(Deny::Restricted { category, code })
            }
        }
    }

    fn locate(&self, ip: IpAddr) -> Location {
        self.geoip
            .as_ref()
            .map(|geo| geo.locate(ip))
            .unwrap_or_default()
    }

    /// Barong destroys a session whose agent, network or expiry do not match. The row is
    /// deleted before the deny is answered, so a follow-up request cannot reload it.
    async fn destroy_session(&self, id: &str) {
        if let Err(error) = self.store.delete_session(id).await {
            tracing::warn!(%error, "mismatched session not deleted");
        }
        self.caches.forget_session(id).await;
        self.bus.publish(Invalidation::Session(id.to_owned()));
    }

    /// RBAC, recording AUDIT and denied decisions of users in the background.
    /// RBAC for the verb and, when the request asks for one, the override verb: both must be
    /// allowed, since either may be the one the upstream runs.
    fn check_permission(&self, req: &AuthzRequest<'_>, who: Source<'_>) -> Result<(), Deny> {
        self.check_permission_for(req, who, &req.method)?;
        match &req.override_method {
            Some(method) if *method != req.method => self.check_permission_for(req, who, method),
            _ => Ok(()),
        }
    }

    fn check_permission_for(
        &self,
        req: &AuthzRequest<'_>,
        who: Source<'_>,
        method: &Method,
    ) -> Result<(), Deny> {
        let decision = self
            .caches
            .permissions
            .read(|permissions| permissions.evaluate(who.principal().role, method, req.path));
        match decision {
            PermissionDecision::Allow { audit: None } => Ok(()),
            PermissionDecision::Allow { audit: Some(topic) } => {
                // The admin API's audit layer writes this row with the body's parameters and
                // the target (`api::admin::audit`); a second one from here would count twice.
                if !is_admin_api_path(req.path) {
                    self.record_audit(req, who, method, topic, "succeed");
                }
                Ok(())
            }
            PermissionDecision::Deny { topic } => {
                self.record_audit(req, who, method, topic, "denied");
                Err(Deny::InvalidPermission)
            }
        }
    }

    fn record_audit(
        &self,
        req: &AuthzRequest<'_>,
        who: Source<'_>,
        method: &Method,
        topic: String,
        result: &str,
    ) {
        let Source::User(user) = who else {
            return; // service accounts are never logged
        };
        let user_id = user.id;
        let mut params: serde_json::Map<String, serde_json::Value> = req
            .query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let target_uid = ["uid", "user_uid"]
            .iter()
            .find_map(|k| params.get(*k).and_then(|v| v.as_str()).map(str::to_owned));
        params.insert(
            "path".into(),
            serde_json::Value::String(req.path.to_owned()),
        );
        let location = self.locate(req.client_ip);
        self.audit.record(NewActivity {
            user_id,
            target_uid,
            category: "admin".into(),
            user_ip: req.client_ip.to_string(),
            user_ip_country: location.country,
            user_agent: header_text(req.headers, http::header::USER_AGENT)
                .unwrap_or("")
                .to_owned(),
            topic,
            action: audit_action(method).into(),
            result: result.into(),
            data: Some(serde_json::Value::Object(params).to_string()),
        });
    }
}

/// The verbs that never need a CSRF token: every other one (PROPFIND, LOCK, any extension
/// verb an upstream may route) does, not only the ones Barong lists.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Paths the admin API serves (both mount points); it records its own admin activities.
fn is_admin_api_path(path: &str) -> bool {
    let path = path.trim_start_matches('/');
    path.starts_with("api/v2/barong/admin/") || path.starts_with("api/v2/admin/")
}

/// Barong's audit action of a verb (the admin API's audit rows use it too).
pub fn audit_action(method: &Method) -> &'static str {
    match method.as_str() {
        "POST" => "create",
        "PUT" | "PATCH" => "update",
        "GET" => "read",
        "DELETE" => "delete",
        _ => "system",
    }
}
