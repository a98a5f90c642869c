//! Per-client rate limits on the unauthenticated endpoints an attacker
//! hammers: login, register and refresh, each with its own budget; and a
//! per-API-token budget on token exchange, so one token (leaked or buggy)
//! cannot mint JWTs without end.
//!
//! Clients are keyed by [`client_key`]: an IPv4 address as it is, an IPv6
//! address cut to its first `throttle.ipv6_prefix_len` bits (64 by default: a
//! host is usually given a whole /64, so rotating addresses inside it must not
//! buy a fresh budget), and an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
//! from a dual-stack listener) as the IPv4 address it is.
//!
//! Forgetting idle clients scans the whole map, so it never runs on a
//! request: a background thread sweeps every [`SWEEP_INTERVAL`], and a
//! request only does its one keyed check.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::ThrottleSettings;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    Login,
    Register,
    Refresh,
}

/// How often idle clients (whose budget is full again) are forgotten.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub struct RateLimits {
    limiters: Arc<Limiters>,
    ipv6_prefix_len: u8,
}

struct Limiters {
    login: DefaultKeyedRateLimiter<IpAddr>,
    register: DefaultKeyedRateLimiter<IpAddr>,
    refresh: DefaultKeyedRateLimiter<IpAddr>,
    /// Keyed by API token id.
    token_exchange: DefaultKeyedRateLimiter<String>,
}

impl Limiters {
    fn sweep(&self) {
        for limiter in [&self.login, &self.register, &self.refresh] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.token_exchange.retain_recent();
        self.token_exchange.shrink_to_fit();
    }
}

impl RateLimits {
    /// None when throttling is off. Starts the sweeping thread, which ends
    /// once the limits are dropped.
    pub fn from_settings(settings: &ThrottleSettings) -> Option<RateLimits> {
        if !settings.enabled {
            return None;
        }
        let per_minute = NonZeroU32::new(settings.per_ip_per_minute)?;
        let burst = NonZeroU32::new(settings.per_ip_burst)?;
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let limiters = Arc::new(Limiters {
            login: RateLimiter::keyed(quota),
            register: RateLimiter::keyed(quota),
            refresh: RateLimiter::keyed(quota),
            token_exchange: RateLimiter::keyed(exchange_quota(settings)?),
        });
        let weak = Arc::downgrade(&limiters);
        let spawned = std::thread::Builder::new().name("signet-rate-limit-sweep".into()).spawn(move || sweep(weak));
        if let Err(err) = spawned {
            log::warn!("cannot start the rate-limit sweeper ({err}); idle clients stay in memory");
        }
        Some(RateLimits { limiters, ipv6_prefix_len: settings.ipv6_prefix_len })
    }

    /// O(1): one keyed check, no housekeeping.
    pub fn check(&self, endpoint: Endpoint, ip: IpAddr) -> Result<(), ApiError> {
        let limiter = match endpoint {
            Endpoint::Login => &self.limiters.login,
            Endpoint::Register => &self.limiters.register,
            Endpoint::Refresh => &self.limiters.refresh,
        };
        limiter.check_key(&client_key(ip, self.ipv6_prefix_len)).map_err(too_many)
    }

    /// O(1): one exchange of API token `token_id`.
    pub fn check_token_exchange(&self, token_id: &str) -> Result<(), ApiError> {
        self.limiters.token_exchange.check_key(&token_id.to_owned()).map_err(too_many)
    }
}

fn exchange_quota(settings: &ThrottleSettings) -> Option<Quota> {
    let per_minute = NonZeroU32::new(settings.token_exchanges_per_minute)?;
    let burst = NonZeroU32::new(settings.token_exchanges_per_minute.min(10))?;
    Some(Quota::per_minute(per_minute).allow_burst(burst))
}

fn too_many(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    ApiError::TooManyRequests { retry_after_secs: wait.as_secs() + 1 }
}

fn sweep(limiters: Weak<Limiters>) {
    loop {
        std::thread::sleep(SWEEP_INTERVAL);
        match limiters.upgrade() {
            Some(limiters) => limiters.sweep(),
            None => return,
        }
    }
}

/// The key a client's budget is kept under: IPv4 as is (also when mapped
/// into IPv6), IPv6 cut to its first `ipv6_prefix_len` bits.
pub fn client_key(ip: IpAddr, ipv6_prefix_len: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let keep = u32::from(ipv6_prefix_len.min(128));
            let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ipv6_clients_share_their_prefix_and_mapped_ipv4_is_ipv4() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1"), 64), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("2001:db8:1:2:ffff:1:2:3"), 64), ip("2001:db8:1:2::"));
        assert_ne!(client_key(ip("2001:db8:1:3::1"), 64), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1"), 48), ip("2001:db8:1::"));
        assert_eq!(client_key(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(client_key(ip("2001:db8::1"), 0), ip("::"));
        assert_eq!(client_key(ip("::ffff:203.0.113.9"), 64), ip("203.0.113.9"));
        assert_eq!(client_key(ip("203.0.113.9"), 64), ip("203.0.113.9"));
    }

    fn limits(burst: u32) -> RateLimits {
        let settings = crate::config::Settings::from_toml(&format!("[throttle]\nper_ip_burst = {burst}"))
            .expect("settings")
            .throttle;
        RateLimits::from_settings(&settings).expect("throttling on")
    }

    #[test]
    fn rotating_inside_a_slash_64_buys_no_new_budget() {
        let limits = limits(2);
        assert!(limits.check(Endpoint::Login, ip("2001:db8:1:2::1")).is_ok());
        assert!(limits.check(Endpoint::Login, ip("2001:db8:1:2::2")).is_ok());
        assert!(limits.check(Endpoint::Login, ip("2001:db8:1:2::3")).is_err(), "same /64");
        assert!(limits.check(Endpoint::Login, ip("2001:db8:1:3::1")).is_ok(), "another /64");
        assert!(limits.check(Endpoint::Login, ip("198.51.100.7")).is_ok());
        assert!(limits.check(Endpoint::Login, ip("::ffff:198.51.100.7")).is_ok());
        assert!(limits.check(Endpoint::Login, ip("198.51.100.7")).is_err(), "mapped IPv4 is the same client");
    }

    #[test]
    fn a_sweep_forgets_clients_whose_budget_is_full_again() {
        let limits = limits(2);
        limits.check(Endpoint::Register, ip("2001:db8::1")).expect("within budget");
        assert_eq!(limits.limiters.register.len(), 1);
        // A 60/min quota refills a token per second: wait for a full budget.
        std::thread::sleep(Duration::from_millis(2100));
        limits.limiters.sweep();
        assert_eq!(limits.limiters.register.len(), 0);
    }
}
