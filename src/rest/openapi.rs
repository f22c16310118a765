//! The shim's OpenAPI 3 document, served at `/api/v3/schema/`. It is generated from the
//! handlers' annotations and the response types that render the bodies (rest/shape.rs), with
//! authentik's operation ids, its `authentik` bearer scheme, and oauthlink's additions
//! described. Responses follow the configured generation.
#![allow(dead_code)] // The request types here describe bodies that rest/body.rs parses by hand.
use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{OneOfBuilder, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder, ResponsesBuilder,
};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

use super::{connections, events, shape, vault};
use crate::config::RestShape;
use crate::domain::model::IdentifierLimit;

/// The body of a create or full update. authentik's documented request holds only
/// `identifier` and `access_token`; `source`, `user` and `expires` are the fields later
/// authentik releases added (and `user`, oauthlink's own), parsed in both generations.
#[derive(ToSchema)]
#[schema(as = UserOAuthSourceConnectionRequest, description = "User source connection")]
pub struct ConnectionRequest {
    /// The OAuth source's uuid. Required: the documented request cannot name a source, so
    /// clients of that generation add it to the body.
    source: Uuid,
    /// oauthlink: the user to link. Default: the caller. Another user needs superuser rights.
    #[schema(required = false, minimum = 1)]
    user: i32,
    /// The user's identifier at the source.
    #[schema(min_length = 1, max_length = 255)]
    identifier: String,
    /// Stored encrypted; never returned.
    #[schema(write_only, nullable, max_length = 8192)]
    access_token: Option<String>,
    /// oauthlink: the refresh token. Stored encrypted; never returned. The token vault
    /// (`/api/v3/oauthlink/connections/{id}/token/`) uses it to refresh the access token.
    #[schema(required = false, write_only, nullable, max_length = 8192)]
    refresh_token: Option<String>,
    /// When the access token expires.
    #[schema(required = false, nullable)]
    expires: Option<DateTime<Utc>>,
}

/// The body of a partial update: every field optional.
#[derive(ToSchema)]
#[schema(
    as = PatchedUserOAuthSourceConnectionRequest,
    description = "User source connection"
)]
pub struct PatchedConnectionRequest {
    #[schema(required = false)]
    source: Uuid,
    #[schema(required = false, min_length = 1, max_length = 255)]
    identifier: String,
    #[schema(required = false, write_only, nullable, max_length = 8192)]
    access_token: Option<String>,
    /// oauthlink: stored encrypted; never returned. A new token clears `needs_relink`.
    #[schema(required = false, write_only, nullable, max_length = 8192)]
    refresh_token: Option<String>,
    #[schema(required = false, nullable)]
    expires: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsedByActionEnum {
    Cascade,
    CascadeMany,
    SetNull,
    SetDefault,
    LeftDangling,
}

/// A list of all objects referencing the queried object (always empty for a connection).
#[derive(ToSchema)]
pub struct UsedBy {
    app: String,
    model_name: String,
    pk: String,
    name: String,
    action: UsedByActionEnum,
}

/// DRF's validation error: field → messages, object-level ones under `non_field_errors`.
#[derive(ToSchema)]
#[schema(description = "Validation Error")]
pub struct ValidationError {
    #[schema(required = false)]
    non_field_errors: Vec<String>,
    #[serde(flatten)]
    fields: BTreeMap<String, Vec<String>>,
}

/// `{"detail": …}`. oauthlink adds a `code` where authentik has no such error (408, 413, 429,
/// 503, 504).
#[derive(ToSchema)]
#[schema(description = "Generic API Error")]
pub struct GenericError {
    detail: String,
    #[schema(required = false)]
    code: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdParam {
    /// A unique integer value identifying this User OAuth Source Connection.
    id: i32,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Which field to use when ordering the results: comma-separated `pk`, `user`, `source`
    /// (the source's uuid), `identifier`, `created` (and in the current generation
    /// `last_updated`, `expires`), each optionally prefixed `-`; unknown terms are ignored.
    /// Default: source slug, then pk.
    ordering: Option<String>,
    /// A page number within the paginated result set (or `last`).
    page: Option<i32>,
    /// Number of results to return per page. Documented generation: 100 by default, at most
    /// 1000 (a server-side cap; authentik 2024.x had none). Current generation: 20 by
    /// default, at most 100. Larger values get the maximum.
    page_size: Option<i32>,
    /// A search term. Split on spaces and commas (quoted phrases stay whole); every term must
    /// be a substring of the username, the source slug or the identifier, ASCII letters
    /// compared without case. A NUL character is a 400 (a list of messages).
    search: Option<String>,
    /// The source's slug, exactly (surrounding spaces trimmed; empty: no filter). A NUL
    /// character is a 400.
    #[param(rename = "source__slug")]
    source_slug: Option<String>,
    /// A user's pk. No such user: a 400 for callers with `view_useroauthsourceconnection`;
    /// to others every user but themselves gives an empty list, so existence stays hidden.
    user: Option<i32>,
}

/// Paging of the audit list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// A page number within the paginated result set (or `last`).
    page: Option<i32>,
    /// Number of results to return per page (at most 100).
    page_size: Option<i32>,
}

/// The bearer scheme under authentik's name, and the error responses every operation can give.
struct Additions;

impl Modify for Additions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "authentik",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let response = |schema: RefOr<Schema>, description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(schema)).build(),
                )
                .build()
        };
        let named = |name: &str| RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name));
        let error = |schema: &str, description: &str| response(named(schema), description);
        // A 400 is field errors, `{"detail": …}` for a body that is not JSON, or a bare
        // list of messages for a bad `search` (DRF's SearchFilter).
        let bad_request = response(
            RefOr::T(Schema::OneOf(
                OneOfBuilder::new()
                    .item(named("ValidationError"))
                    .item(named("GenericError"))
                    .item(Vec::<String>::schema())
                    .build(),
            )),
            "Invalid input",
        );
        let responses = [
            ("ValidationErrorResponse", bad_request),
            (
                "GenericErrorResponse",
                error("GenericError", "Not authenticated or not allowed"),
            ),
            ("NotFoundResponse", error("GenericError", "Not found")),
            (
                "PayloadTooLargeResponse",
                error("GenericError", "Request body too large"),
            ),
            (
                "UnsupportedMediaTypeResponse",
                error("GenericError", "Request body is not JSON"),
            ),
            (
                "RequestTimeoutResponse",
                error("GenericError", "Request body not received in time"),
            ),
            (
                "ThrottledResponse",
                error("GenericError", "Too many failed authentications"),
            ),
            (
                "UnavailableResponse",
                error("GenericError", "Database unavailable"),
            ),
            (
                "RelinkRequiredResponse",
                error(
                    "GenericError",
                    "The source refused the refresh token: the user must link again (code relink_required)",
                ),
            ),
            (
                "ProviderUnavailableResponse",
                error(
                    "GenericError",
                    "The source's token endpoint did not answer usably; nothing changed (code provider_unavailable, with a reason)",
                ),
            ),
            (
                "OutcomeUnknownResponse",
                error(
                    "GenericError",
                    "Connection to the database lost after the write was sent: read back before retrying",
                ),
            ),
        ];
        for (name, response) in responses {
            components.responses.insert(name.into(), RefOr::T(response));
        }
        for item in doc.paths.paths.values_mut() {
            let with_body = [&mut item.post, &mut item.put, &mut item.patch];
            for op in with_body.into_iter().flatten() {
                add_errors(op, true, true);
            }
            if let Some(op) = &mut item.delete {
                add_errors(op, false, true);
            }
            if let Some(op) = &mut item.get {
                add_errors(op, false, false);
            }
        }
    }
}

fn add_errors(op: &mut Operation, with_body: bool, writes: bool) {
    let mut list = vec![
        ("400", "ValidationErrorResponse"),
        ("403", "GenericErrorResponse"),
        ("404", "NotFoundResponse"),
        ("429", "ThrottledResponse"),
        ("503", "UnavailableResponse"),
    ];
    if with_body {
        list.push(("413", "PayloadTooLargeResponse"));
        list.push(("415", "UnsupportedMediaTypeResponse"));
        list.push(("408", "RequestTimeoutResponse"));
    }
    if writes {
        list.push(("504", "OutcomeUnknownResponse"));
    }
    // The token vault's operations (oauthlink's own paths) may meet the source's failures.
    if op
        .operation_id
        .as_deref()
        .is_some_and(|id| id.starts_with("oauthlink_connections_token"))
    {
        list.push(("409", "RelinkRequiredResponse"));
        list.push(("502", "ProviderUnavailableResponse"));
    }
    let mut extra = ResponsesBuilder::new();
    for (status, name) in list {
        extra = extra.response(
            status,
            RefOr::Ref(utoipa::openapi::Ref::new(format!(
                "#/components/responses/{name}"
            ))),
        );
    }
    op.responses.responses.extend(extra.build().responses);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "oauthlink",
        description = "authentik-compatible REST API of oauthlink: user OAuth source connections.",
    ),
    servers((url = "/api/v3")),
    paths(
        connections::list,
        connections::create,
        connections::retrieve,
        connections::put,
        connections::patch,
        connections::destroy,
        connections::used_by,
        events::list,
        vault::token,
        vault::refresh,
    ),
    components(schemas(ValidationError, GenericError)),
    modifiers(&Additions),
)]
struct Api;

/// The document for the configured generation: the current one swaps in its own shapes of the
/// connection, its source and the list page (same component names, as authentik's own).
pub fn document(shape: RestShape) -> Document {
    let mut doc = Api::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    if shape == RestShape::Current {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut replace = |name: String, schema| {
            components.schemas.insert(name, schema);
        };
        replace(
            <shape::ConnectionCurrent as ToSchema>::name().into_owned(),
            shape::ConnectionCurrent::schema(),
        );
        replace(
            <shape::SourceCurrent as ToSchema>::name().into_owned(),
            shape::SourceCurrent::schema(),
        );
        replace(
            <shape::PageCurrent as ToSchema>::name().into_owned(),
            shape::PageCurrent::schema(),
        );
        replace(
            <shape::ThemedUrls as ToSchema>::name().into_owned(),
            shape::ThemedUrls::schema(),
        );
        // authentik lifted the 255-character limit in 2025.4; oauthlink keeps a hard cap.
        let long = IdentifierLimit::Long.max_chars();
        for name in [
            "UserOAuthSourceConnectionRequest",
            "PatchedUserOAuthSourceConnectionRequest",
        ] {
            set_max_length(components, name, "identifier", long);
        }
    }
    doc
}

fn set_max_length(
    components: &mut utoipa::openapi::Components,
    schema: &str,
    property: &str,
    max: usize,
) {
    if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
        && let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property)
    {
        field.max_length = Some(max);
    }
}

#[derive(Deserialize)]
pub struct Format {
    format: Option<String>,
}

/// YAML by default, as authentik's `/api/v3/schema/`; JSON with `?format=json` or when the
/// client accepts only JSON.
pub async fn serve(
    State(state): State<crate::server::AppState>,
    Query(format): Query<Format>,
    headers: HeaderMap,
) -> Response {
    let doc = document(state.rest_shape);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = match format.format.as_deref() {
        Some("json") => true,
        Some(_) => false,
        None => accept.contains("json") && !accept.contains("yaml"),
    };
    if json {
        axum::Json(doc).into_response()
    } else {
        match doc.to_yaml() {
            Ok(yaml) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/vnd.oai.openapi; charset=utf-8"),
                )],
                yaml,
            )
                .into_response(),
            Err(e) => super::errors::RestError(crate::domain::Error::internal(e)).into_response(),
        }
    }
}
