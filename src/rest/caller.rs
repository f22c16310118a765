//! The REST shim's caller: resolved from the request's head before the body is read, and
//! refused in authentik's words (403) when absent or invalid.
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::errors::RestError;
use crate::domain::Error;
use crate::domain::permission::Principal;
use crate::server::AppState;

/// An authenticated caller (realworld-axum-sqlx's `AuthUser`).
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, RestError> {
        match crate::auth::authenticate(state, parts).await? {
            Some(principal) => Ok(AuthUser(principal)),
            None => Err(RestError(Error::Unauthenticated)),
        }
    }
}
