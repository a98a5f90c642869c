//! The client's IP: the peer address, or, when the peer is a trusted proxy,
//! the right-most `X-Forwarded-For` entry that is not itself a trusted proxy
//! (entries left of it are client-supplied and could be forged).

use std::net::IpAddr;

use actix_web::HttpRequest;

pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|ip| !trusted_proxies.contains(ip)).unwrap_or(peer))
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
}
