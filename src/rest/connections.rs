//! `/api/v3/sources/user_connections/oauth/`: authentik's viewset over the shared service.
// Handlers return ready responses as their error type: that is what they answer with.
#![allow(clippy::result_large_err)]
use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body;
use super::caller::AuthUser;
use super::errors::{RestError, detail};
use super::paging::{PageRequest, PageSizes};
use super::shape;
use crate::config::RestShape;
use crate::domain::model::{Sort, SortKey};
use crate::domain::permission::Principal;
use crate::domain::service::{ListQuery, UpdateKind};
use crate::server::AppState;

/// Detail ids are integers; anything else is Django's plain "Not found.".
fn parse_id(id: &str) -> Result<i32, Response> {
    id.parse::<i32>()
        .map_err(|_| detail(StatusCode::NOT_FOUND, "Not found."))
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

#[utoipa::path(
    post,
    path = "/sources/user_connections/oauth/",
    operation_id = "sources_user_connections_oauth_create",
    tag = "sources",
    description = "User-source connection Viewset",
    request_body(content = super::openapi::ConnectionRequest, content_type = "application/json"),
    responses((status = 201, body = shape::ConnectionDocumented, description = "Created")),
    security(("authentik" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let map = tri!(body::json_object(&headers, &raw));
    let (input, errors) = body::new_connection(&map, state.rest_shape);
    match state
        .service
        .create_connection(&caller, input, errors)
        .await
    {
        Ok(created) => (
            StatusCode::CREATED,
            Json(shape::with_source(&created, state.rest_shape)),
        )
            .into_response(),
        Err(e) => RestError(e).into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/sources/user_connections/oauth/{id}/",
    operation_id = "sources_user_connections_oauth_retrieve",
    tag = "sources",
    description = "User-source connection Viewset",
    params(super::openapi::IdParam),
    responses((status = 200, body = shape::ConnectionDocumented, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> Response {
    let pk = tri!(parse_id(&id));
    match state.service.connection(&caller, pk).await {
        Ok(c) => Json(shape::with_source(&c, state.rest_shape)).into_response(),
        Err(e) => RestError(e).into_response(),
    }
}

async fn update(
    state: AppState,
    caller: Principal,
    headers: &HeaderMap,
    id: String,
    raw: Result<Bytes, BytesRejection>,
    kind: UpdateKind,
) -> Response {
    let pk = tri!(parse_id(&id));
    let map = tri!(body::json_object(headers, &raw));
    let (changes, errors) = body::changes(&map, state.rest_shape);
    match state
        .service
        .update_connection(&caller, pk, changes, kind, errors)
        .await
    {
        Ok(c) => Json(shape::with_source(&c, state.rest_shape)).into_response(),
        Err(e) => RestError(e).into_response(),
    }
}

#[utoipa::path(
    put,
    path = "/sources/user_connections/oauth/{id}/",
    operation_id = "sources_user_connections_oauth_update",
    tag = "sources",
    description = "User-source connection Viewset",
    params(super::openapi::IdParam),
    request_body(content = super::openapi::ConnectionRequest, content_type = "application/json"),
    responses((status = 200, body = shape::ConnectionDocumented, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn put(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    update(state, caller, &headers, id, raw, UpdateKind::Full).await
}

#[utoipa::path(
    patch,
    path = "/sources/user_connections/oauth/{id}/",
    operation_id = "sources_user_connections_oauth_partial_update",
    tag = "sources",
    description = "User-source connection Viewset",
    params(super::openapi::IdParam),
    request_body(content = super::openapi::PatchedConnectionRequest, content_type = "application/json"),
    responses((status = 200, body = shape::ConnectionDocumented, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn patch(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    update(state, caller, &headers, id, raw, UpdateKind::Partial).await
}

#[utoipa::path(
    delete,
    path = "/sources/user_connections/oauth/{id}/",
    operation_id = "sources_user_connections_oauth_destroy",
    tag = "sources",
    description = "User-source connection Viewset",
    params(super::openapi::IdParam),
    responses((status = 204, description = "No response body")),
    security(("authentik" = [])),
)]
pub async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> Response {
    let pk = tri!(parse_id(&id));
    match state.service.delete_connection(&caller, pk).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => RestError(e).into_response(),
    }
}

// Nothing references a connection: `[]` for a row the caller can see.
#[utoipa::path(
    get,
    path = "/sources/user_connections/oauth/{id}/used_by/",
    operation_id = "sources_user_connections_oauth_used_by_list",
    tag = "sources",
    description = "Get a list of all objects that use this object",
    params(super::openapi::IdParam),
    responses((status = 200, body = Vec<super::openapi::UsedBy>, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn used_by(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> Response {
    let pk = tri!(parse_id(&id));
    match state.service.connection(&caller, pk).await {
        Ok(_) => Json(json!([])).into_response(),
        Err(e) => RestError(e).into_response(),
    }
}

/// `ordering=-created,identifier`: DRF's OrderingFilter. Only the generation's readable
/// serializer fields count (`source` is the source's uuid); unknown terms are ignored, and
/// with none left the default order applies.
fn ordering(param: Option<&str>, shape: RestShape) -> Vec<Sort> {
    let default = vec![
        Sort {
            key: SortKey::SourceSlug,
            descending: false,
        },
        Sort {
            key: SortKey::Pk,
            descending: false,
        },
    ];
    let Some(param) = param else { return default };
    let sorts: Vec<Sort> = param
        .split(',')
        .filter_map(|term| {
            let term = term.trim();
            let (descending, name) = match term.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, term),
            };
            let key = match (name, shape) {
                ("pk", _) => SortKey::Pk,
                ("created", _) => SortKey::Created,
                ("identifier", _) => SortKey::Identifier,
                ("user", _) => SortKey::User,
                ("source", _) => SortKey::Source,
                ("last_updated", RestShape::Current) => SortKey::LastUpdated,
                ("expires", RestShape::Current) => SortKey::Expires,
                _ => return None,
            };
            Some(Sort { key, descending })
        })
        .collect();
    if sorts.is_empty() { default } else { sorts }
}

#[utoipa::path(
    get,
    path = "/sources/user_connections/oauth/",
    operation_id = "sources_user_connections_oauth_list",
    tag = "sources",
    description = "User-source connection Viewset",
    params(super::openapi::ListParams),
    responses((status = 200, body = shape::PageDocumented, description = "OK")),
    security(("authentik" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let service = &state.service;
    // Filters first, then the page: a bad filter is a 400 even on a bad page (as DRF).
    let query = ListQuery {
        user: params.get("user").map(String::as_str),
        source_slug: params.get("source__slug").map(String::as_str),
        search: params.get("search").map(String::as_str),
    };
    let filter = tri!(
        service
            .list_filter(&caller, query)
            .await
            .map_err(|e| RestError(e).into_response())
    );
    let request = tri!(PageRequest::parse(&params, PageSizes::of(state.rest_shape)));
    let count = tri!(
        service
            .count_connections(&caller, &filter)
            .await
            .map_err(|e| RestError(e).into_response())
    );
    let (page, offset) = tri!(request.resolve(count));
    let rows = if count == 0 {
        Vec::new()
    } else {
        let sorts = ordering(params.get("ordering").map(String::as_str), state.rest_shape);
        tri!(
            service
                .connections_page(&caller, &filter, &sorts, offset, request.size)
                .await
                .map_err(|e| RestError(e).into_response())
        )
    };
    let pks: Vec<_> = rows.iter().map(|c| c.source).collect();
    let sources = tri!(
        service
            .sources_of(&pks)
            .await
            .map_err(|e| RestError(e).into_response())
    );
    let pagination = request.block(page, count, rows.len());
    let mut pairs = Vec::with_capacity(rows.len());
    for c in &rows {
        let Some(s) = sources.get(&c.source) else {
            return RestError(crate::domain::Error::internal("connection without source"))
                .into_response();
        };
        pairs.push((c, s));
    }
    match state.rest_shape {
        RestShape::Documented => Json(shape::PageDocumented {
            pagination,
            results: pairs.iter().map(|(c, s)| shape::documented(c, s)).collect(),
        })
        .into_response(),
        RestShape::Current => Json(shape::PageCurrent {
            pagination,
            results: pairs.iter().map(|(c, s)| shape::current(c, s)).collect(),
            autocomplete: shape::Autocomplete::default(),
        })
        .into_response(),
    }
}
