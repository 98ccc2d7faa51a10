//! The caller's address, agent and session cookie, read once per request for the handlers
//! that log an activity or open a session ([`RequestMeta`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::ApiState;
use super::error::ApiError;
use crate::domain::{SessionCookie, session_cookie};
pub use crate::service::activity::RequestMeta;

impl FromRequestParts<ApiState> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let ip = state
            .config
            .trusted_proxies()
            .client_ip(&parts.headers, peer);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // A repeated session cookie carries no session here, as it authorizes nothing at the
        // decision: what was judged is what gets used or logged out.
        let cookie = match session_cookie(&parts.headers, &state.config.session.session_name) {
            SessionCookie::One(value) => std::str::from_utf8(value).ok().map(str::to_owned),
            SessionCookie::Absent | SessionCookie::Repeated => None,
        };
        Ok(Self {
            ip,
            user_agent,
            cookie,
        })
    }
}
