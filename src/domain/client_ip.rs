//! The client's IP address as Barong computes it (`request.remote_ip`, reference §4.1): the
//! `X-Forwarded-For` entries right to left, then `Client-IP`, then the socket peer, skipping
//! trusted proxies (loopback and private ranges); with `BARONG_GATEWAY=akamai` a non-empty
//! `True-Client-IP` wins. Used for sessions, activities and restrictions alike.

use std::net::IpAddr;

use http::HeaderMap;

/// Whether `ip` is a proxy we trust to have appended the next address: loopback, 10/8,
/// 172.16/12, 192.168/16, fc00::/7 and ::1 (Rails' `TRUSTED_PROXIES`).
pub fn is_trusted_proxy(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_loopback() || v4.is_private();
            }
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

fn header_ips<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = IpAddr> + 'a {
    let name = name.to_owned();
    headers
        .get_all(name.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).collect::<Vec<_>>())
        .filter_map(parse_ip)
        .collect::<Vec<_>>()
        .into_iter()
}

/// Parses an address, tolerating `[v6]` brackets and a port on IPv4 (`1.2.3.4:5678`).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    let unbracketed = text.trim_start_matches('[');
    if let Some((host, _)) = unbracketed.split_once(']') {
        return host.parse().ok();
    }
    match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(':') => {
            host.parse().ok()
        }
        _ => None,
    }
}

/// The client address of a request that arrived from `peer` with `headers`.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, akamai: bool) -> IpAddr {
    if akamai
        && let Some(ip) = headers
            .get("true-client-ip")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .and_then(parse_ip)
    {
        return ip;
    }
    let mut forwarded: Vec<IpAddr> = header_ips(headers, "x-forwarded-for").collect();
    forwarded.reverse();
    let mut client: Vec<IpAddr> = header_ips(headers, "client-ip").collect();
    client.reverse();
    forwarded
        .into_iter()
        .chain(client)
        .chain(std::iter::once(peer))
        .find(|ip| !is_trusted_proxy(*ip))
        .unwrap_or(peer)
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

    #[test]
    fn peer_when_nothing_forwarded() {
        assert_eq!(
            client_ip(&HeaderMap::new(), ip("8.8.8.8"), false),
            ip("8.8.8.8")
        );
        assert_eq!(
            client_ip(&HeaderMap::new(), ip("127.0.0.1"), false),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn forwarded_right_to_left_skipping_trusted() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2, 10.0.0.1")]);
        assert_eq!(client_ip(&h, ip("127.0.0.1"), false), ip("2.2.2.2"));
        let h = headers(&[("x-forwarded-for", "192.168.1.1, 172.16.0.3")]);
        assert_eq!(client_ip(&h, ip("127.0.0.1"), false), ip("127.0.0.1"));
        let h = headers(&[("x-forwarded-for", "garbage, 3.3.3.3:4000")]);
        assert_eq!(client_ip(&h, ip("::1"), false), ip("3.3.3.3"));
        let h = headers(&[("x-forwarded-for", "fd00::1"), ("client-ip", "4.4.4.4")]);
        assert_eq!(client_ip(&h, ip("::1"), false), ip("4.4.4.4"));
    }

    #[test]
    fn akamai_true_client_ip() {
        let h = headers(&[
            ("x-forwarded-for", "2.2.2.2"),
            ("true-client-ip", "5.5.5.5"),
        ]);
        assert_eq!(client_ip(&h, ip("127.0.0.1"), true), ip("5.5.5.5"));
        assert_eq!(client_ip(&h, ip("127.0.0.1"), false), ip("2.2.2.2"));
        let h = headers(&[("x-forwarded-for", "2.2.2.2"), ("true-client-ip", " ")]);
        assert_eq!(client_ip(&h, ip("127.0.0.1"), true), ip("2.2.2.2"));
    }
}
