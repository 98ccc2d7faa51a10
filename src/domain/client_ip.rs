//! The client's address, believed only as far as a chain of trusted proxies vouches for it.
//!
//! Barong takes Rails' `request.remote_ip`: the `X-Forwarded-For` entries right to left, then
//! `Client-IP`, skipping private and loopback addresses. Taken literally that lets any client
//! whose own address is private (an internal client, or every client behind an L4 balancer or a
//! k8s SNAT) name its own address in a header. Here the walk starts at the socket peer and goes
//! left only while the hop it came from is a trusted proxy (`BARONG_TRUSTED_PROXIES`): headers
//! from anyone else are never read. `Client-IP` is read only when `BARONG_TRUST_CLIENT_IP_HEADER`
//! says so, `True-Client-IP` only with `BARONG_GATEWAY=akamai`, and both only from a trusted
//! peer. Used for sessions, activities, limits and restrictions alike (`docs/security.md`).

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// Rails' `TRUSTED_PROXIES`: loopback and the private ranges.
pub const DEFAULT_TRUSTED_PROXIES: &str =
    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";

/// Which peers' forwarding headers are believed, and which headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    pub networks: Vec<IpNet>,
    /// `Client-IP` (after `X-Forwarded-For`, as Rails orders them).
    pub client_ip_header: bool,
    /// `True-Client-IP` (Akamai), which then wins over the others.
    pub true_client_ip: bool,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self {
            networks: parse_networks(DEFAULT_TRUSTED_PROXIES).unwrap_or_default(),
            client_ip_header: false,
            true_client_ip: false,
        }
    }
}

/// A comma-separated list of networks (`10.0.0.0/8`) or single addresses (`10.1.2.3`).
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("{item:?} is not an address or a network"))
        })
        .collect()
}

impl TrustedProxies {
    /// Whether `ip` is one of our proxies (IPv4-mapped IPv6 peers count as their IPv4 address).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub fn client_ip(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let peer = unmapped(peer);
        if !self.trusts(peer) {
            return peer;
        }
        if self.true_client_ip
            && let Some(ip) = single(headers, &TRUE_CLIENT_IP)
        {
            return ip;
        }
        // The hops, nearest first: what the peer appended last is the right-most entry of
        // `X-Forwarded-For`; `Client-IP`'s entries (when read) come before all of them.
        let client_ip = self
            .client_ip_header
            .then(|| entries_nearest_first(headers, &CLIENT_IP));
        let hops =
            entries_nearest_first(headers, &X_FORWARDED_FOR).chain(client_ip.into_iter().flatten());
        let mut client = peer;
        for entry in hops {
            // A hop that does not parse ends the chain: what lies left of it is unverifiable.
            let Some(ip) = parse_ip(entry) else {
                break;
            };
            client = unmapped(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

// Header names as constants: a `&str` name is parsed on every lookup, and this runs on every
// decision from a trusted proxy.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const CLIENT_IP: HeaderName = HeaderName::from_static("client-ip");
pub const TRUE_CLIENT_IP: HeaderName = HeaderName::from_static("true-client-ip");

/// Every header [`TrustedProxies::client_ip`] reads: a request without any of them comes from
/// its peer ([`peer_address`]), whoever the peer is.
pub const FORWARDING_HEADERS: [HeaderName; 3] = [X_FORWARDED_FOR, CLIENT_IP, TRUE_CLIENT_IP];

/// The client address of a request that carries none of [`FORWARDING_HEADERS`]: what
/// [`TrustedProxies::client_ip`] gives for it, without looking the three names up (the authz
/// decision knows from one pass over the names it makes anyway, `authz::request::Present`).
pub fn peer_address(peer: IpAddr) -> IpAddr {
    unmapped(peer)
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Every comma-separated entry of every `name` header, last first (the order the hops are
/// judged in); an unreadable header is one entry that never parses (so the chain stops there
/// rather than skipping it). Walked in place: collecting the entries cost every decision behind
/// a trusted proxy an allocation and about 100 instructions more (docs/benchmarks.md, sixteenth
/// pass). A readable value is visible ASCII, spaces and tabs (`HeaderValue::to_str`), where
/// ASCII trimming is all trimming.
fn entries_nearest_first<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a str> + use<'a> {
    headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|v| v.to_str().unwrap_or("?").rsplit(','))
        .map(str::trim_ascii)
}

/// One non-empty, parseable value of `name` (several values: none is believed).
fn single(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_ip(value.to_str().ok()?.trim())
}

/// Parses an address, tolerating `[v6]` brackets and a port on IPv4 (`1.2.3.4:5678`).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.parse().ok();
    }
    match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(':') => {
            host.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("value"));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn rails() -> TrustedProxies {
        TrustedProxies::default()
    }

    #[test]
    fn peer_when_nothing_forwarded() {
        let t = rails();
        assert_eq!(t.client_ip(&HeaderMap::new(), ip("8.8.8.8")), ip("8.8.8.8"));
        assert_eq!(
            t.client_ip(&HeaderMap::new(), ip("127.0.0.1")),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_names_nobody() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("client-ip", "2.2.2.2")]);
        assert_eq!(rails().client_ip(&h, ip("8.8.8.8")), ip("8.8.8.8"));
        let only_loopback = TrustedProxies {
            networks: parse_networks("127.0.0.1").expect("nets"),
            ..rails()
        };
        assert_eq!(only_loopback.client_ip(&h, ip("10.0.0.5")), ip("10.0.0.5"));
        assert_eq!(only_loopback.client_ip(&h, ip("127.0.0.1")), ip("1.1.1.1"));
    }

    #[test]
    fn forwarded_right_to_left_while_trusted() {
        let t = rails();
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2, 10.0.0.1")]);
        assert_eq!(t.client_ip(&h, ip("127.0.0.1")), ip("2.2.2.2"));
        // Every hop trusted: the one furthest away, as Rails answers.
        let h = headers(&[("x-forwarded-for", "192.168.1.1, 172.16.0.3")]);
        assert_eq!(t.client_ip(&h, ip("127.0.0.1")), ip("192.168.1.1"));
        let h = headers(&[("x-forwarded-for", "3.3.3.3:4000")]);
        assert_eq!(t.client_ip(&h, ip("::1")), ip("3.3.3.3"));
        // Garbage stops the walk: nothing left of it is believed.
        let h = headers(&[("x-forwarded-for", "5.5.5.5, garbage, 10.0.0.7")]);
        assert_eq!(t.client_ip(&h, ip("127.0.0.1")), ip("10.0.0.7"));
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:80")]);
        assert_eq!(t.client_ip(&h, ip("::ffff:127.0.0.1")), ip("2001:db8::1"));
        // Several header lines are one list, the last line's last entry nearest.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 10.0.0.2"),
            ("x-forwarded-for", "10.0.0.3"),
        ]);
        assert_eq!(t.client_ip(&h, ip("127.0.0.1")), ip("1.1.1.1"));
        let h = headers(&[
            ("x-forwarded-for", "7.7.7.7,8.8.8.8"),
            ("x-forwarded-for", "\t10.0.0.3 "),
        ]);
        assert_eq!(t.client_ip(&h, ip("127.0.0.1")), ip("8.8.8.8"));
    }

    #[test]
    fn client_ip_header_only_when_enabled() {
        let h = headers(&[("client-ip", "4.4.4.4")]);
        assert_eq!(rails().client_ip(&h, ip("::1")), ip("::1"));
        let t = TrustedProxies {
            client_ip_header: true,
            ..rails()
        };
        assert_eq!(t.client_ip(&h, ip("::1")), ip("4.4.4.4"));
        let h = headers(&[("x-forwarded-for", "fd00::1"), ("client-ip", "4.4.4.4")]);
        assert_eq!(t.client_ip(&h, ip("::1")), ip("4.4.4.4"));
        // Client-IP's entries come before all of X-Forwarded-For's, last entry nearest.
        let h = headers(&[
            ("client-ip", "4.4.4.4, 10.0.0.6"),
            ("x-forwarded-for", "10.0.0.5"),
        ]);
        assert_eq!(t.client_ip(&h, ip("::1")), ip("4.4.4.4"));
    }

    #[test]
    fn akamai_true_client_ip() {
        let h = headers(&[
            ("x-forwarded-for", "2.2.2.2"),
            ("true-client-ip", "5.5.5.5"),
        ]);
        let akamai = TrustedProxies {
            true_client_ip: true,
            ..rails()
        };
        assert_eq!(akamai.client_ip(&h, ip("127.0.0.1")), ip("5.5.5.5"));
        assert_eq!(akamai.client_ip(&h, ip("8.8.4.4")), ip("8.8.4.4"));
        assert_eq!(rails().client_ip(&h, ip("127.0.0.1")), ip("2.2.2.2"));
        let h = headers(&[("x-forwarded-for", "2.2.2.2"), ("true-client-ip", " ")]);
        assert_eq!(akamai.client_ip(&h, ip("127.0.0.1")), ip("2.2.2.2"));
    }

    #[test]
    fn networks_parse() {
        assert_eq!(
            parse_networks("10.0.0.0/8, 192.168.1.7 ,::1")
                .expect("ok")
                .len(),
            3
        );
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("nope").is_err());
        assert!(parse_networks("").expect("empty").is_empty());
    }
}
