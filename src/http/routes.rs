//! The route table: every path and method, and the handler that answers it.
//! One table is the single source of truth for what is served, for the
//! `Allow` header of each 405, and for the OpenAPI parity test.

use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError, Route};
use serde_json::json;

use super::compat;
use super::handlers::{accounts, admin, api_tokens, audit, clients, keys, meta, oauth, sessions, status_lists};
use super::state::AppState;
use crate::error::ApiError;

/// Every route the app serves, one entry per path with the methods it
/// answers. The single source of truth for `routes` (what is served, and the
/// `Allow` header of each 405) and for `registered_routes` (what the OpenAPI
/// parity test compares with openapi.yaml).
fn table() -> Vec<Endpoint> {
    type E = Endpoint;
    vec![
        E::new("/v1/auth/register").post(accounts::register),
        E::new("/v1/auth/login").post(sessions::login),
        E::new("/v1/auth/refresh").post(sessions::refresh),
        E::new("/v1/auth/logout").post(sessions::logout),
        E::new("/v1/auth/logout-all").post(sessions::logout_all),
        E::new("/v1/auth/me").get(accounts::me),
        E::new("/v1/auth/api-tokens").get(api_tokens::list_own).post(api_tokens::create_own),
        E::new("/v1/auth/api-tokens/{id}").delete(api_tokens::revoke_own),
        E::new("/v1/auth/token-exchange").post(api_tokens::exchange),
        E::new("/v1/auth/password").post(accounts::change_password),
        E::new("/v1/auth/sessions").get(sessions::list),
        E::new("/v1/auth/sessions/{id}").delete(sessions::delete),
        E::new("/v1/admin/users").get(admin::list_users),
        E::new("/v1/admin/users/{id}").get(admin::get_user).patch(admin::patch_user).delete(admin::delete_user),
        E::new("/v1/admin/users/{id}/roles").put(admin::set_roles),
        E::new("/v1/admin/users/{id}/api-tokens").get(api_tokens::list_for_user).post(api_tokens::create_for_user),
        E::new("/v1/admin/users/{id}/api-tokens/{token_id}").delete(api_tokens::revoke_for_user),
        E::new("/v1/admin/audit").get(audit::list),
        E::new("/v1/admin/clients").get(clients::list).post(clients::create),
        E::new("/v1/admin/clients/{client_id}").delete(clients::delete),
        E::new("/v1/admin/clients/{client_id}/secret").post(clients::rotate_secret),
        E::oauth("/oauth/token").post(oauth::token),
        E::oauth("/oauth/introspect").post(oauth::introspect),
        E::oauth("/oauth/revoke").post(oauth::revoke),
        E::new("/v1/status-lists/events").get(status_lists::events),
        E::new("/v1/status-lists/{n}").get(status_lists::get_list),
        E::new("/.well-known/jwks.json").get(keys::jwks),
        E::new("/.well-known/openid-configuration").get(keys::openid_configuration),
        E::new("/.well-known/oauth-authorization-server").get(keys::authorization_server),
        E::drf("/api/token/").post(compat::simplejwt::obtain),
        E::drf("/api/token/refresh/").post(compat::simplejwt::refresh),
        E::drf("/api/token/verify/").post(compat::simplejwt::verify),
        E::drf("/api/token/blacklist/").post(compat::simplejwt::blacklist),
        E::drf("/api-token-auth/").post(compat::drf::obtain_auth_token),
        E::new("/demo").get(meta::demo_redirect),
        E::new("/demo/").get(meta::demo_page),
        E::new("/demo/app.js").get(meta::demo_script),
        E::new("/demo/app.css").get(meta::demo_style),
        E::new("/healthz").get(meta::healthz),
        E::new("/readyz").get(meta::readyz),
        E::new("/openapi.yaml").get(meta::openapi),
    ]
}

/// Registers every route of `table`; `main` and the tests build the same app with it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for endpoint in table() {
        cfg.service(endpoint.into_resource());
    }
}

/// (method, path) of every registered route, paths in the `{param}` form
/// openapi.yaml uses.
/// `/metrics` is outside the table: it is served on the main address or on
/// `metrics.bind` (see `metrics::route`), but always served.
pub fn registered_routes() -> Vec<(Method, &'static str)> {
    let mut routes: Vec<_> =
        table().into_iter().flat_map(|e| e.routes.into_iter().map(move |(method, _)| (method, e.path))).collect();
    routes.push((Method::GET, super::metrics::PATH));
    routes
}

/// Whose wire format a route speaks, which decides the body of its 405.
#[derive(Clone, Copy)]
enum Wire {
    Signet,
    /// The compat routes: DRF's `{"detail": "Method \"GET\" not allowed."}`.
    Drf,
    /// `/oauth/*`: RFC 6749 error objects, never problem documents.
    OAuth,
}

/// One path of `table` and the routes registered on it.
struct Endpoint {
    path: &'static str,
    wire: Wire,
    routes: Vec<(Method, Route)>,
}

impl Endpoint {
    fn new(path: &'static str) -> Self {
        Endpoint { path, wire: Wire::Signet, routes: Vec::new() }
    }

    fn drf(path: &'static str) -> Self {
        Endpoint { wire: Wire::Drf, ..Endpoint::new(path) }
    }

    fn oauth(path: &'static str) -> Self {
        Endpoint { wire: Wire::OAuth, ..Endpoint::new(path) }
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push((method.clone(), web::route().method(method).to(handler)));
        self
    }

    fn get<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, h)
    }

    fn post<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::POST, h)
    }

    fn put<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::PUT, h)
    }

    fn patch<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::PATCH, h)
    }

    fn delete<F: Handler<A>, A: FromRequest + 'static>(self, h: F) -> Self
    where
        F::Output: Responder + 'static,
    {
        self.on(Method::DELETE, h)
    }

    /// The actix resource; any other method answers 405 with the `Allow`
    /// header RFC 9110 requires, listing exactly the methods registered here.
    fn into_resource(self) -> Resource {
        let allow = self.routes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", ");
        let wire = self.wire;
        let mut resource = web::resource(self.path);
        for (_, route) in self.routes {
            resource = resource.route(route);
        }
        resource.default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move { method_not_allowed(&req, wire, &allow) }
        }))
    }
}

fn method_not_allowed(req: &HttpRequest, wire: Wire, allow: &str) -> HttpResponse {
    let mut response = match wire {
        Wire::Signet => ApiError::MethodNotAllowed.error_response(),
        Wire::OAuth => oauth::method_not_allowed(),
        Wire::Drf => {
            let compat_on = req.app_data::<web::Data<AppState>>().is_some_and(|s| {
                if req.path() == "/api-token-auth/" {
                    s.settings.compat.drf
                } else {
                    s.settings.compat.simplejwt
                }
            });
            // A disabled compat route does not exist, whatever the method.
            if !compat_on {
                return ApiError::NotFound.error_response();
            }
            HttpResponse::MethodNotAllowed()
                .json(json!({"detail": format!("Method \"{}\" not allowed.", req.method())}))
        }
    };
    if let Ok(value) = header::HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}
