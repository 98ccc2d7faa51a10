//! The client's address as Barong computes it (`remote_ip`): `X-Forwarded-For` read right to
//! left, then `Client-IP`, then the socket peer, skipping trusted proxies; with the Akamai
//! gateway a non-empty `True-Client-IP` wins.

use std::net::IpAddr;

use http::HeaderMap;

/// Loopback, private and unique-local ranges: proxies in front of us, never the client.
fn is_trusted_proxy(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || v6.is_unspecified()
        }
    }
}

/// Barong's `remote_ip` for a request that arrived from `peer`.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, akamai: bool) -> IpAddr {
    if akamai && let Some(ip) = header_ips(headers, "true-client-ip").into_iter().next() {
        return ip;
    }
    let mut candidates = header_ips(headers, "x-forwarded-for");
    candidates.reverse();
    candidates.extend(header_ips(headers, "client-ip"));
    candidates
        .into_iter()
        .find(|ip| !is_trusted_proxy(*ip))
        .unwrap_or(peer)
}

/// Every parseable address in the comma-separated values of `name` (all occurrences).
fn header_ips(headers: &HeaderMap, name: &str) -> Vec<IpAddr> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().expect("value"));
        }
        map
    }

    #[test]
    fn forwarded_for_is_read_right_to_left_skipping_proxies() {
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 8.8.8.8, 10.0.0.2")]);
        assert_eq!(
            client_ip(&h, peer, false),
            "8.8.8.8".parse::<IpAddr>().expect("ip")
        );
        let only_proxies = headers(&[("x-forwarded-for", "192.168.1.1, 10.0.0.2")]);
        assert_eq!(client_ip(&only_proxies, peer, false), peer);
        assert_eq!(client_ip(&HeaderMap::new(), peer, false), peer);
        let garbage = headers(&[("x-forwarded-for", "not an ip, 9.9.9.9")]);
        assert_eq!(
            client_ip(&garbage, peer, false),
            "9.9.9.9".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn akamai_true_client_ip_wins_only_when_enabled() {
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        let h = headers(&[
            ("true-client-ip", "5.5.5.5"),
            ("x-forwarded-for", "8.8.8.8"),
        ]);
        assert_eq!(
            client_ip(&h, peer, true),
            "5.5.5.5".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            client_ip(&h, peer, false),
            "8.8.8.8".parse::<IpAddr>().expect("ip")
        );
    }
}
