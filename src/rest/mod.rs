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
mod vault;

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
        .route(
            "/api/v3/oauthlink/connections/{id}/token/",
            with_405(get(vault::token)),
        )
        .route(
            "/api/v3/oauthlink/connections/{id}/refresh/",
            with_405(axum::routing::post(vault::refresh)),
        )
        .route("/api/v3/schema/", with_405(get(openapi::serve)))
        .route("/-/health/live/", axum::routing::any(live))
        .route("/-/health/ready/", axum::routing::any(ready))
}

/// Unknown paths: authentik's JSON 404 for API clients.
pub async fn not_found() -> impl IntoResponse {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use crate::config::{Cli, RestShape};
    use crate::domain::error::Error;
    use crate::domain::model::{PolicyEngineMode, UserMatchingMode};
    use crate::server::{AppState, router};
    use crate::storage::{NewSource, NewUser};

    async fn ready_status(client: &reqwest::Client, base: &str) -> u16 {
        let url = format!("{base}/-/health/ready/");
        client.get(url).send().await.unwrap().status().as_u16()
    }

    /// `/-/health/ready/` says 503 while the SQLite writer is dead, 200 once it is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readiness_follows_the_sqlite_writer() {
        let dir = std::env::temp_dir().join(format!("oauthlink-ready-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/ready.sqlite3?mode=rwc", dir.display());
        let key = crate::crypto::Keyring::generate_key_hex();
        let args = ["oauthlink", "--database-url", &url, "--secret-key", &key];
        let config = Cli::try_parse_from(args).unwrap().config;
        let service = crate::app::open(&config).await.unwrap();
        let state = AppState::new(service.clone(), RestShape::Documented);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app =
            router(state, 64 * 1024).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = reqwest::Client::new();
        assert_eq!(ready_status(&client, &base).await, 200);

        let store = service.store();
        let user = NewUser {
            username: "u",
            name: "",
            email: "",
            is_superuser: false,
        };
        let user = store.create_user(user).await.unwrap();
        let source = NewSource {
            name: "GitHub".into(),
            slug: "github".into(),
            enabled: true,
            provider_type: "github".into(),
            authorization_url: None,
            access_token_url: None,
            profile_url: None,
            consumer_key: String::new(),
            consumer_secret: None,
            policy_engine_mode: PolicyEngineMode::Any,
            user_matching_mode: UserMatchingMode::Identifier,
            user_path_template: String::new(),
            icon: None,
        };
        let source = store.create_source(source).await.unwrap();
        let create = || store.insert_connection(user, user, source, "x".into(), None, None);

        // A create makes the idle writer take a batch, and die (and die again at restarts).
        store.crash_writer(true);
        assert_eq!(create().await.unwrap_err(), Error::Unavailable);
        let mut statuses = Vec::new();
        for expected in [503, 200] {
            let mut status = 0;
            for _ in 0..500 {
                status = ready_status(&client, &base).await;
                if status == expected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            statuses.push(status);
            store.crash_writer(false);
        }
        assert_eq!(statuses, [503, 200]);
        create().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
