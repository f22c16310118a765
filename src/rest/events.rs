//! `/api/v3/oauthlink/audit_events/`: the audit trail of connection writes, newest first,
//! for superusers, paged like authentik's lists. oauthlink's own endpoint: authentik's
//! `/events/events/` has another model, so it is not imitated here.
use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::AuthUser;
use super::errors::RestError;
use super::paging::{self, PageRequest};
use super::shape::Pagination;
use crate::server::AppState;

/// One audited write or token read. Never holds a secret.
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    pub pk: i32,
    #[schema(value_type = String, format = DateTime)]
    pub created: DateTime<Utc>,
    /// The acting user's pk.
    #[schema(nullable)]
    pub actor: Option<i32>,
    /// `create`, `update`, `delete`, `read_token` (a token was handed out), `refresh_token`
    /// (refreshed at the source) or `relink_required` (the source refused the refresh token).
    pub action: String,
    /// The connection's pk.
    pub connection: i32,
    #[schema(nullable)]
    pub source: Option<Uuid>,
    #[schema(nullable)]
    pub identifier: Option<String>,
    /// The connection's user (whose token a `read_token` event is about).
    #[schema(nullable)]
    pub owner: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct PaginatedAuditEventList {
    pub pagination: Pagination,
    pub results: Vec<AuditEvent>,
}

#[utoipa::path(
    get,
    path = "/oauthlink/audit_events/",
    operation_id = "oauthlink_audit_events_list",
    tag = "oauthlink",
    description = "Audit events of connection writes, newest first (superusers only).",
    params(super::openapi::PageParams),
    responses((status = 200, body = PaginatedAuditEventList, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let request = match PageRequest::parse(&params, paging::CURRENT) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let service = &state.service;
    // The first read brings the count; `last` needs it before the offset is known.
    let first = request.offset_guess();
    let (mut rows, count) = match service.audit_events(&caller, first, request.size).await {
        Ok(r) => r,
        Err(e) => return RestError(e).into_response(),
    };
    let (page, offset) = match request.resolve(count) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if offset != first {
        rows = match service.audit_events(&caller, offset, request.size).await {
            Ok((rows, _)) => rows,
            Err(e) => return RestError(e).into_response(),
        };
    }
    Json(PaginatedAuditEventList {
        pagination: request.block(page, count, rows.len()),
        results: rows
            .into_iter()
            .map(|e| AuditEvent {
                pk: e.id,
                created: e.created,
                actor: e.actor,
                action: e.action,
                connection: e.connection,
                source: e.source,
                identifier: e.identifier,
                owner: e.owner,
            })
            .collect(),
    })
    .into_response()
}
