//! The refresh cookie of SPA cookie mode: `__Host-signet_refresh`, HttpOnly,
//! Secure, Path=/, SameSite from `cookies.same_site`, Max-Age = the refresh
//! token's lifetime. The `__Host-` prefix makes browsers refuse it unless it
//! is Secure, host-only and for the whole site.

use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::HttpRequest;

use crate::config::CookieSameSite;

pub const NAME: &str = "__Host-signet_refresh";

pub fn refresh_cookie(token: String, max_age_secs: i64, same_site: CookieSameSite) -> Cookie<'static> {
    Cookie::build(NAME, token)
        .http_only(true)
        .secure(true)
        .path("/")
        .same_site(same_site_of(same_site))
        .max_age(Duration::seconds(max_age_secs.max(0)))
        .finish()
}

/// Tells the browser to forget the cookie.
pub fn removal(same_site: CookieSameSite) -> Cookie<'static> {
    refresh_cookie(String::new(), 0, same_site)
}

pub fn from_request(req: &HttpRequest) -> Option<String> {
    req.cookie(NAME).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

fn same_site_of(setting: CookieSameSite) -> SameSite {
    match setting {
        CookieSameSite::Strict => SameSite::Strict,
        CookieSameSite::Lax => SameSite::Lax,
        CookieSameSite::None => SameSite::None,
    }
}
