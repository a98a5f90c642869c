//! Per-client-IP rate limits on the unauthenticated endpoints an attacker
//! hammers: login, register and refresh, each with its own budget.

use std::net::IpAddr;
use std::num::NonZeroU32;

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

/// Past this many tracked IPs, forget the ones whose budget is full again.
const RETAIN_THRESHOLD: usize = 10_000;

pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    register: DefaultKeyedRateLimiter<IpAddr>,
    refresh: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimits {
    /// None when throttling is off.
    pub fn from_settings(settings: &ThrottleSettings) -> Option<RateLimits> {
        if !settings.enabled {
            return None;
        }
        let per_minute = NonZeroU32::new(settings.per_ip_per_minute)?;
        let burst = NonZeroU32::new(settings.per_ip_burst)?;
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Some(RateLimits {
            login: RateLimiter::keyed(quota),
            register: RateLimiter::keyed(quota),
            refresh: RateLimiter::keyed(quota),
        })
    }

    pub fn check(&self, endpoint: Endpoint, ip: IpAddr) -> Result<(), ApiError> {
        let limiter = match endpoint {
            Endpoint::Login => &self.login,
            Endpoint::Register => &self.register,
            Endpoint::Refresh => &self.refresh,
        };
        if limiter.len() > RETAIN_THRESHOLD {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests { retry_after_secs: wait.as_secs() + 1 }
        })
    }
}
