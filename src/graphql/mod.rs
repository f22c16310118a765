//! The GraphQL API: schema, HTTP handlers (POST, GET, GraphiQL) and the per-request caller.
mod errors;
pub mod graphiql;
mod mutation;
mod operation;
mod query;
mod types;

use async_graphql::http::parse_query_string;
use async_graphql::{Context, EmptySubscription, Pos, Request, Schema as GqlSchema};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;

pub use errors::{ErrorCode, render};
use errors::{ErrorCodes, request_error};

use crate::domain::permission::Principal;
use crate::domain::{Error, Service};
use crate::server::{AppState, ClientAddr};

pub type Schema = GqlSchema<query::Query, mutation::Mutation, EmptySubscription>;

/// Limits that still allow the standard introspection query.
pub const MAX_DEPTH: usize = 16;
pub const MAX_COMPLEXITY: usize = 1000;

pub fn schema(service: Option<Service>) -> Schema {
    let mut builder = GqlSchema::build(query::Query, mutation::Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(64)
        // Outermost, so it names whatever document the inner chain returns (parsed or kept).
        .extension(operation::OperationLabel)
        .extension(ErrorCodes::default());
    if let Some(service) = service {
        builder = builder.data(service);
    }
    builder.finish()
}

/// The SDL committed as `schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

/// The caller of one request, resolved on first use and at most once.
pub struct Caller {
    authorization: Option<String>,
    client: ClientAddr,
    resolved: OnceCell<Result<Principal, Error>>,
}

impl Caller {
    pub fn new(authorization: Option<String>, client: ClientAddr) -> Self {
        Caller {
            authorization,
            client,
            resolved: OnceCell::new(),
        }
    }
}

pub(crate) fn service<'a>(ctx: &Context<'a>) -> &'a Service {
    ctx.data_unchecked::<Service>()
}

pub(crate) async fn caller(ctx: &Context<'_>) -> async_graphql::Result<Principal> {
    let c = ctx.data_unchecked::<Caller>();
    let resolved = c
        .resolved
        .get_or_init(|| async {
            let state = ctx.data_unchecked::<AppState>();
            state
                .authenticate(c.authorization.as_deref(), c.client)
                .await
        })
        .await;
    resolved.clone().map_err(render)
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    client: ClientAddr,
    request: Request,
) -> Response {
    let slot = operation::OperationSlot::default();
    let request = request
        .data(Caller::new(authorization(headers), client))
        .data(slot.clone())
        .data(state.clone());
    let response = state.schema.execute(request).await;
    let outcome = response.errors.first().map_or_else(
        || "ok".to_owned(),
        |e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map_or_else(
                    || "uncoded".to_owned(),
                    |code| match code {
                        async_graphql::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
        },
    );
    let mut http = async_graphql_axum::GraphQLResponse::from(response).into_response();
    http.extensions_mut().insert(crate::metrics::Outcome {
        operation: slot.label(),
        outcome,
    });
    http
}

fn refuse(status: StatusCode, message: &str, code: ErrorCode) -> Response {
    let response = async_graphql::Response::from_errors(vec![request_error(message, code)]);
    (status, async_graphql_axum::GraphQLResponse::from(response)).into_response()
}

/// POST /graphql: one operation per request (batches are refused).
pub async fn post(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let error = errors::render(Error::PayloadTooLarge).into_server_error(Pos::default());
            let response = async_graphql::Response::from_errors(vec![error]);
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                async_graphql_axum::GraphQLResponse::from(response),
            )
                .into_response();
        }
        Err(rejection) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("The request body could not be read: {rejection}"),
                ErrorCode::BadRequest,
            );
        }
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json")
                || ct.starts_with("application/graphql-response+json")
        });
    if !is_json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the request as application/json.",
            ErrorCode::BadRequest,
        );
    }
    if body.first().is_some_and(|b| *b == b'[') || body.trim_ascii_start().starts_with(b"[") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Batched requests are not supported.",
            ErrorCode::BadRequest,
        );
    }
    let parsed = crate::strict_json::from_slice(&body).and_then(serde_json::from_value);
    let request: Request = match parsed {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("The body is not a GraphQL request: {e}"),
                ErrorCode::BadRequest,
            );
        }
    };
    execute(&state, &headers, client, request).await
}

/// GET /graphql: a query in the URL (GraphQL over HTTP), or GraphiQL for a browser.
pub async fn get(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return graphiql::page("/graphql");
    };
    let request = match parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("The query string is not a GraphQL request: {e}"),
                ErrorCode::BadRequest,
            );
        }
    };
    // Mutations change state: only over POST. (A document that does not parse is left to
    // the executor, which reports it with its code.)
    if let Ok(doc) = async_graphql::parser::parse_query(&request.query) {
        let selected = doc.operations.iter().find(|(name, _)| {
            request.operation_name.is_none()
                || name.map(|n| n.as_str()) == request.operation_name.as_deref()
        });
        if selected.is_some_and(|(_, op)| {
            op.node.ty == async_graphql::parser::types::OperationType::Mutation
        }) {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "Mutations are only accepted over POST.",
                ErrorCode::BadRequest,
            );
        }
    }
    execute(&state, &headers, client, request).await
}
