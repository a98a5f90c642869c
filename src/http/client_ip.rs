//! The client's IP: the peer address, or, when the peer is a trusted proxy,
//! the right-most `X-Forwarded-For` entry that is not itself a trusted proxy
//! (entries left of it are client-supplied and could be forged).
//!
//! The walk goes right to left, one hop at a time, and stops at the first
//! entry that is not a bare IP address (a port, `unknown`, garbage): what
//! lies left of it cannot be trusted, so the client is then the last trusted
//! hop reached. Skipping such an entry would let the client choose its own
//! address. Addresses are compared in canonical form, so an IPv4-mapped IPv6
//! peer (`::ffff:10.0.0.5`) matches the proxy `10.0.0.5`.

use std::net::IpAddr;

use actix_web::HttpRequest;

pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or("not text"))
        .flat_map(|v| v.split(','))
        .collect();
    Some(walk(peer, &entries, trusted_proxies))
}

/// `peer`, then the `X-Forwarded-For` entries from right to left, while each
/// hop is a trusted proxy.
fn walk(peer: IpAddr, entries: &[&str], trusted_proxies: &[IpAddr]) -> IpAddr {
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|proxy| proxy.to_canonical() == ip);
    let mut hop = peer.to_canonical();
    for entry in entries.iter().rev() {
        if !trusted(hop) {
            break;
        }
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => hop = ip.to_canonical(),
            Err(_) => break,
        }
    }
    hop
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.5:4000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.9"))
            .to_http_request();
        assert_eq!(client_ip(&req, &[]), Some(ip("10.0.0.5")));
        assert_eq!(client_ip(&req, &[ip("10.0.0.5")]), Some(ip("203.0.113.9")));
        assert_eq!(client_ip(&req, &[ip("10.0.0.5"), ip("203.0.113.9")]), Some(ip("6.6.6.6")));
    }

    #[test]
    fn an_entry_that_is_not_an_address_ends_the_walk() {
        let proxies = [ip("10.0.0.5"), ip("10.0.0.6")];
        let client = |header: &str| {
            let req = TestRequest::default()
                .peer_addr("10.0.0.5:4000".parse().expect("addr"))
                .insert_header(("x-forwarded-for", header))
                .to_http_request();
            client_ip(&req, &proxies)
        };
        // Before: the bad entry was skipped and the forged address believed.
        assert_eq!(client("6.6.6.6, unknown"), Some(ip("10.0.0.5")));
        assert_eq!(client("6.6.6.6, 203.0.113.9:443"), Some(ip("10.0.0.5")));
        assert_eq!(client("6.6.6.6, garbage, 10.0.0.6"), Some(ip("10.0.0.6")));
        assert_eq!(client("6.6.6.6,, 203.0.113.9"), Some(ip("203.0.113.9")));
        assert_eq!(client("6.6.6.6,"), Some(ip("10.0.0.5")));
        assert_eq!(client(" 203.0.113.9 "), Some(ip("203.0.113.9")));
    }

    #[test]
    fn proxies_and_hops_compare_canonically() {
        let req = TestRequest::default()
            .peer_addr("[::ffff:10.0.0.5]:4000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "6.6.6.6, ::ffff:10.0.0.6"))
            .to_http_request();
        assert_eq!(client_ip(&req, &[]), Some(ip("10.0.0.5")));
        assert_eq!(client_ip(&req, &[ip("10.0.0.5")]), Some(ip("10.0.0.6")));
        assert_eq!(client_ip(&req, &[ip("10.0.0.5"), ip("10.0.0.6")]), Some(ip("6.6.6.6")));
        assert_eq!(client_ip(&req, &[ip("::ffff:10.0.0.5"), ip("::ffff:10.0.0.6")]), Some(ip("6.6.6.6")));
        let plain =
            TestRequest::default().peer_addr("[::ffff:198.51.100.7]:1".parse().expect("addr")).to_http_request();
        assert_eq!(client_ip(&plain, &[]), Some(ip("198.51.100.7")));
    }
}
