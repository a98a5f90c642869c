//! The route table: every path and method, and the handler that answers it.

use actix_web::{web, HttpResponse, Resource};

use super::compat;
use super::handlers::{accounts, admin, api_tokens, keys, meta, sessions, status_lists};
use crate::error::ApiError;

/// Registers every route; `main` and the tests build the same app with it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/auth")
            .service(resource("/register").route(web::post().to(accounts::register)))
            .service(resource("/login").route(web::post().to(sessions::login)))
            .service(resource("/refresh").route(web::post().to(sessions::refresh)))
            .service(resource("/logout").route(web::post().to(sessions::logout)))
            .service(resource("/logout-all").route(web::post().to(sessions::logout_all)))
            .service(resource("/me").route(web::get().to(accounts::me)))
            .service(
                resource("/api-tokens")
                    .route(web::get().to(api_tokens::list_own))
                    .route(web::post().to(api_tokens::create_own)),
            )
            .service(resource("/api-tokens/{id}").route(web::delete().to(api_tokens::revoke_own)))
            .service(resource("/token-exchange").route(web::post().to(api_tokens::exchange)))
            .service(resource("/password").route(web::post().to(accounts::change_password)))
            .service(resource("/sessions").route(web::get().to(sessions::list)))
            .service(resource("/sessions/{id}").route(web::delete().to(sessions::delete))),
    )
    .service(
        web::scope("/v1/admin")
            .service(resource("/users").route(web::get().to(admin::list_users)))
            .service(
                resource("/users/{id}")
                    .route(web::get().to(admin::get_user))
                    .route(web::patch().to(admin::patch_user))
                    .route(web::delete().to(admin::delete_user)),
            )
            .service(resource("/users/{id}/roles").route(web::put().to(admin::set_roles)))
            .service(
                resource("/users/{id}/api-tokens")
                    .route(web::get().to(api_tokens::list_for_user))
                    .route(web::post().to(api_tokens::create_for_user)),
            )
            .service(
                resource("/users/{id}/api-tokens/{token_id}").route(web::delete().to(api_tokens::revoke_for_user)),
            ),
    )
    .service(
        web::scope("/v1/status-lists")
            .service(resource("/events").route(web::get().to(status_lists::events)))
            .service(resource("/{n}").route(web::get().to(status_lists::get_list))),
    )
    .service(resource("/.well-known/jwks.json").route(web::get().to(keys::jwks)))
    .service(resource("/.well-known/openid-configuration").route(web::get().to(keys::openid_configuration)))
    .service(resource("/.well-known/oauth-authorization-server").route(web::get().to(keys::authorization_server)))
    .service(resource("/api/token/").route(web::post().to(compat::simplejwt::obtain)))
    .service(resource("/api/token/refresh/").route(web::post().to(compat::simplejwt::refresh)))
    .service(resource("/api/token/verify/").route(web::post().to(compat::simplejwt::verify)))
    .service(resource("/api/token/blacklist/").route(web::post().to(compat::simplejwt::blacklist)))
    .service(resource("/api-token-auth/").route(web::post().to(compat::drf::obtain_auth_token)))
    .service(web::redirect("/demo", "/demo/"))
    .service(resource("/demo/").route(web::get().to(meta::demo_page)))
    .service(resource("/demo/app.js").route(web::get().to(meta::demo_script)))
    .service(resource("/demo/app.css").route(web::get().to(meta::demo_style)))
    .service(resource("/healthz").route(web::get().to(meta::healthz)))
    .service(resource("/readyz").route(web::get().to(meta::readyz)))
    .service(resource("/openapi.yaml").route(web::get().to(meta::openapi)));
}

/// A resource whose unmatched methods get a 405 problem document.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::MethodNotAllowed) }))
}
