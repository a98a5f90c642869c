//! Keys over HTTP(S): a JWKS URL, or OpenID discovery from the issuer
//! (feature `remote`; ureq, rustls on aws-lc-rs with the webpki roots).
//!
//! Used through [`VerifierBuilder::jwks_url`](crate::VerifierBuilder::jwks_url)
//! and [`VerifierBuilder::discover`](crate::VerifierBuilder::discover); the
//! refresh schedule is the [`RefreshPolicy`](crate::RefreshPolicy)'s.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use ureq::tls::{TlsConfig, TlsProvider};
use ureq::Agent;

use crate::refresh::{FetchError, FetchJwks, Fetched};

/// Largest JWKS or discovery document read.
const MAX_DOCUMENT_BYTES: u64 = 512 * 1024;

/// The default limit on one whole request (connect, send, read).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

enum Target {
    Jwks(String),
    Discover { issuer: String },
}

/// Fetches a JWKS over HTTP(S).
pub struct HttpFetcher {
    agent: Agent,
    target: Target,
    /// The `jwks_uri` found by discovery, until a fetch from it fails.
    discovered: Option<String>,
    /// Plain `http://` to non-loopback hosts allowed ([`check_transport`]).
    allow_insecure_http: bool,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl HttpFetcher {
    /// Fetches the JWKS at `url`.
    pub fn jwks_url(url: impl Into<String>) -> Self {
        Self::new(Target::Jwks(url.into()))
    }

    /// Finds the JWKS through `{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must be `issuer` exactly (OpenID Discovery §4.3).
    pub fn discover(issuer: impl Into<String>) -> Self {
        Self::new(Target::Discover { issuer: issuer.into() })
    }

    /// Replaces the per-request timeout ([`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.agent = agent(timeout);
        self
    }

    /// Allows plain `http://` to non-loopback hosts (the JWKS URL, the
    /// issuer, and a discovered `jwks_uri`). Off by default.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The URLs it fetches from before discovery, for the builder's check.
    pub(crate) fn configured_url(&self) -> String {
        match &self.target {
            Target::Jwks(url) => url.clone(),
            Target::Discover { issuer } => issuer.clone(),
        }
    }

    fn new(target: Target) -> Self {
        HttpFetcher { agent: agent(DEFAULT_TIMEOUT), target, discovered: None, allow_insecure_http: false }
    }

    fn jwks_uri(&mut self) -> Result<String, FetchError> {
        let issuer = match &self.target {
            Target::Jwks(url) => return Ok(url.clone()),
            Target::Discover { issuer } => issuer,
        };
        if let Some(uri) = &self.discovered {
            return Ok(uri.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let (body, _) = self.get(&url)?;
        let doc: Discovery =
            serde_json::from_str(&body).map_err(|err| format!("{url}: not a discovery document: {err}"))?;
        if doc.issuer != *issuer {
            return Err(format!("{url}: names issuer {:?}, expected {issuer:?}", doc.issuer).into());
        }
        check_transport(&doc.jwks_uri, self.allow_insecure_http)?;
        self.discovered = Some(doc.jwks_uri.clone());
        Ok(doc.jwks_uri)
    }

    /// GET `url`: its body and `max-age`.
    fn get(&self, url: &str) -> Result<(String, Option<Duration>), FetchError> {
        let mut response =
            self.agent.get(url).header("accept", "application/json").call().map_err(|err| format!("{url}: {err}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}").into());
        }
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let max_age = cache_lifetime(header("cache-control"), header("age"));
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_DOCUMENT_BYTES)
            .read_to_string()
            .map_err(|err| format!("{url}: {err}"))?;
        Ok((body, max_age))
    }
}

impl FetchJwks for HttpFetcher {
    fn fetch(&mut self) -> Result<Fetched, FetchError> {
        let url = self.jwks_uri()?;
        check_transport(&url, self.allow_insecure_http)?;
        let result = self.get(&url).and_then(|(body, max_age)| {
            let jwks: JwkSet = serde_json::from_str(&body).map_err(|err| format!("{url}: not a JWKS: {err}"))?;
            Ok(Fetched { jwks, max_age })
        });
        if result.is_err() {
            // The issuer may have moved its keys: discover again next time.
            self.discovered = None;
        }
        result
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Jwks(url) => url.clone(),
            Target::Discover { issuer } => format!("{issuer} (discovery)"),
        }
    }
}

/// rustls on aws-lc-rs with the webpki roots.
pub(crate) fn tls_config() -> TlsConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    TlsConfig::builder().provider(TlsProvider::Rustls).unversioned_rustls_crypto_provider(provider).build()
}

pub(crate) fn agent(timeout: Duration) -> Agent {
    let tls = tls_config();
    Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("signet-verify/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .new_agent()
}

/// Whether keys or status lists may be fetched from `url`: `https://`, or
/// `http://` to a loopback host (127.0.0.0/8, `::1`, `localhost`), or plain
/// `http://` anywhere when the caller opted in
/// ([`VerifierBuilder::allow_insecure_http`](crate::VerifierBuilder::allow_insecure_http)).
/// Over plain HTTP anyone on the path could substitute their own keys.
pub(crate) fn check_transport(url: &str, allow_insecure_http: bool) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return Err(format!("{url}: only https:// (or http:// to a loopback host) is supported"));
    };
    if allow_insecure_http || is_loopback(rest) {
        return Ok(());
    }
    Err(format!("{url}: plain http:// to a non-loopback host; use https://, or opt in with allow_insecure_http(true)"))
}

/// Whether the authority at the start of `rest` (after `http://`) is a loopback host.
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Userinfo could disguise the host (`http://localhost@evil.com/`).
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, _)) => host,
            None => return false,
        }
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// How long a response may be cached: `max-age` less `Age` (RFC 9111);
/// `no-store`/`no-cache` mean at once (the policy's minimum applies).
pub(crate) fn cache_lifetime(cache_control: Option<&str>, age: Option<&str>) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control?.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return Some(Duration::ZERO),
            "max-age" => {
                max_age = value.trim().trim_matches('"').parse::<u64>().ok();
            }
            _ => {}
        }
    }
    let age = age.and_then(|a| a.trim().parse::<u64>().ok()).unwrap_or(0);
    max_age.map(|secs| Duration::from_secs(secs.saturating_sub(age)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "https://id.example.com",
            "HTTPS://id.example.com/.well-known/jwks.json",
            "http://127.0.0.1:8080/keys",
            "http://127.1.2.3/keys",
            "http://localhost:8080",
            "http://LOCALHOST./x",
            "http://[::1]:8080/keys",
            "http://user@127.0.0.1/keys",
        ] {
            assert_eq!(check_transport(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://id.example.com",
            "http://10.0.0.1:8080/keys",
            "http://[::2]/keys",
            "http://localhost.evil.com/keys",
            "http://127.0.0.1@evil.com/keys",
            "http://localhost:80@evil.com/",
            "http://[::1",
            "ftp://127.0.0.1/keys",
            "file:///etc/keys.json",
        ] {
            assert!(check_transport(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_transport("http://id.example.com", true), Ok(()));
        assert!(check_transport("ftp://id.example.com", true).is_err());
    }

    #[test]
    fn cache_control_parsing() {
        let secs = |cc: &str, age: Option<&str>| cache_lifetime(Some(cc), age).map(|d| d.as_secs());
        assert_eq!(secs("public, max-age=300", None), Some(300));
        assert_eq!(secs("Max-Age=\"60\"", None), Some(60));
        assert_eq!(secs("public, max-age=300", Some("100")), Some(200));
        assert_eq!(secs("max-age=10", Some("100")), Some(0));
        assert_eq!(secs("no-store", None), Some(0));
        assert_eq!(secs("public", None), None);
        assert_eq!(secs("max-age=abc", None), None);
        assert_eq!(cache_lifetime(None, None), None);
    }
}
