//! The token vault over REST, at oauthlink's own paths (authentik has no such operation):
//! `GET /api/v3/oauthlink/connections/{id}/token/` and `POST …/{id}/refresh/`. Tokens have a
//! body of their own; no other answer carries one.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::caller::AuthUser;
use super::errors::{RestError, detail};
use crate::domain::vault::TokenAnswer;
use crate::server::AppState;

/// A connection's access token, as stored or just refreshed at its source.
#[derive(Serialize, ToSchema)]
pub struct ConnectionToken {
    /// The access token; null when none is stored.
    #[schema(nullable)]
    pub access_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// When the access token expires, if known.
    #[schema(nullable, value_type = String, format = DateTime)]
    pub expires: Option<DateTime<Utc>>,
}

fn answer(result: crate::domain::Result<TokenAnswer>) -> Response {
    let mut response = match result {
        Ok(t) => Json(ConnectionToken {
            access_token: t.access_token.map(|s| s.expose_secret().to_owned()),
            token_type: t.token_type,
            expires: t.expires,
        })
        .into_response(),
        Err(e) => RestError(e).into_response(),
    };
    // Said here too, not only by the router's default: this body is a credential.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Detail ids are integers; anything else is Django's plain "Not found.".
fn parse_id(id: &str) -> Option<i32> {
    id.parse::<i32>().ok()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

#[utoipa::path(
    get,
    path = "/oauthlink/connections/{id}/token/",
    operation_id = "oauthlink_connections_token_retrieve",
    tag = "oauthlink",
    description = "The connection's access token, refreshed at its source first when it \
                   expires within the margin. Needs `read_useroauthsourceconnection_token` \
                   (own connections; anyone's with `view_useroauthsourceconnection` too). \
                   Audited. 409 `relink_required`: the source refused the refresh token. \
                   502/503 `provider_unavailable` (with `reason`): the source failed, nothing \
                   changed.",
    params(super::openapi::IdParam),
    responses((status = 200, body = ConnectionToken, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn token(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> Response {
    let Some(pk) = parse_id(&id) else {
        return not_found();
    };
    answer(state.service.connection_token(&caller, pk, false).await)
}

#[utoipa::path(
    post,
    path = "/oauthlink/connections/{id}/refresh/",
    operation_id = "oauthlink_connections_token_refresh",
    tag = "oauthlink",
    description = "Refreshes the connection's access token at its source now (unless another \
                   refresh of it just finished: then that result) and returns it. No body. \
                   Same permission and answers as the token read.",
    params(super::openapi::IdParam),
    responses((status = 200, body = ConnectionToken, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn refresh(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> Response {
    let Some(pk) = parse_id(&id) else {
        return not_found();
    };
    answer(state.service.connection_token(&caller, pk, true).await)
}
