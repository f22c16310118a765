//! The REST shim: authentik's `/api/v3/sources/user_connections/oauth/` viewset, its
//! health endpoints, and the audit list.
mod body;
mod caller;
mod connections;
pub mod errors;
mod events;
pub mod openapi;
mod paging;
mod shape;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use crate::server::AppState;
use errors::detail;

async fn method_not_allowed(method: Method) -> Response {
    detail(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method \"{method}\" not allowed."),
    )
}

fn with_405(router: MethodRouter<AppState>) -> MethodRouter<AppState> {
    router.fallback(method_not_allowed)
}

async fn live() -> StatusCode {
    StatusCode::OK
}

/// Ready when the database answers.
async fn ready(State(state): State<AppState>) -> StatusCode {
    if state.service.store().ping().await {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

pub fn routes() -> Router<AppState> {
    const BASE: &str = "/api/v3/sources/user_connections/oauth";
    Router::new()
        .route(
            &format!("{BASE}/"),
            with_405(get(connections::list).post(connections::create)),
        )
        .route(
            &format!("{BASE}/{{id}}/"),
            with_405(
                get(connections::retrieve)
                    .put(connections::put)
                    .patch(connections::patch)
                    .delete(connections::destroy),
            ),
        )
        .route(
            &format!("{BASE}/{{id}}/used_by/"),
            with_405(get(connections::used_by)),
        )
        .route(
            "/api/v3/oauthlink/audit_events/",
            with_405(get(events::list)),
        )
        .route("/api/v3/schema/", with_405(get(openapi::serve)))
        .route("/-/health/live/", axum::routing::any(live))
        .route("/-/health/ready/", axum::routing::any(ready))
}

/// Unknown paths: authentik's JSON 404 for API clients.
pub async fn not_found() -> impl IntoResponse {
    detail(StatusCode::NOT_FOUND, "Not found.")
}
