//! The GraphQL API: schema, HTTP handlers (POST, GET, GraphiQL) and the per-request caller.
pub mod document;
mod errors;
pub mod graphiql;
mod mutation;
mod query;
mod types;
mod vault;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::parse_query_string;
use async_graphql::parser::types::OperationType;
use async_graphql::{
    Context, EmptySubscription, MergedObject, Request, Schema as GqlSchema, ServerError,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use document::{Document, Documents, Refusal};
pub use errors::{ErrorCode, render};
use errors::{ErrorCodes, refusal, request_error};

use crate::domain::permission::Principal;
use crate::domain::{Error, Service};
use crate::server::AppState;

// The root types: the connection API and the token vault's operations (graphql/vault.rs).
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(query::Query, vault::VaultQuery);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(mutation::Mutation, vault::VaultMutation);

pub type Schema = GqlSchema<QueryRoot, MutationRoot, EmptySubscription>;

/// Limits that still allow the standard introspection query.
pub const MAX_DEPTH: usize = 16;
pub const MAX_COMPLEXITY: usize = 1000;

pub fn schema(service: Option<Service>) -> Schema {
    let mut builder = GqlSchema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(64)
    .extension(ErrorCodes);
    if let Some(service) = service {
        builder = builder.data(service);
    }
    builder.finish()
}

/// The SDL committed as `schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

/// The GraphQL endpoint: its schema, the analysed documents of authenticated callers, the
/// names its root types define (the only operation labels metrics get), and the deadline of
/// a query's execution.
pub struct Api {
    pub schema: Schema,
    documents: Documents,
    root_fields: HashSet<String>,
    deadline: Duration,
}

/// Fields an anonymous caller may select: introspection and the list of error codes.
const PUBLIC_ROOT_FIELDS: [&str; 4] = ["__schema", "__type", "__typename", "errorCodes"];

impl Api {
    pub fn new(schema: Schema, deadline: Duration) -> Self {
        let root_fields = async_graphql::parser::parse_schema(schema.sdl())
            .map(|doc| {
                doc.definitions
                    .iter()
                    .filter_map(|d| match d {
                        async_graphql::parser::types::TypeSystemDefinition::Type(t) => Some(t),
                        _ => None,
                    })
                    .filter(|t| matches!(t.node.name.node.as_str(), "Query" | "Mutation"))
                    .filter_map(|t| match &t.node.kind {
                        async_graphql::parser::types::TypeKind::Object(o) => Some(o),
                        _ => None,
                    })
                    .flat_map(|o| o.fields.iter().map(|f| f.node.name.node.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Api {
            schema,
            documents: Documents::default(),
            root_fields,
            deadline,
        }
    }

    /// The same endpoint with another query deadline (the schema's names are not read again).
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        Api {
            schema: self.schema.clone(),
            documents: Documents::default(),
            root_fields: self.root_fields.clone(),
            deadline,
        }
    }

    /// The metrics label of an operation: its type and its one root field, `multiple`, or
    /// `invalid` for names the schema does not have (so clients cannot invent labels).
    fn label(&self, op: &document::Operation) -> String {
        let ty = match op.ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        };
        let known = |f: &String| {
            f == "__typename" || f == "__schema" || f == "__type" || self.root_fields.contains(f)
        };
        let field = match op.roots.as_slice() {
            _ if !op.roots.iter().all(known) => "invalid",
            [one] => one.as_str(),
            _ => "multiple",
        };
        format!("{ty} {field}")
    }
}

/// The caller of one request, resolved from the request's head before anything else.
pub struct Caller(Option<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        crate::auth::authenticate(state, parts)
            .await
            .map(Caller)
            .map_err(refusal)
    }
}

pub(crate) fn service<'a>(ctx: &Context<'a>) -> &'a Service {
    ctx.data_unchecked::<Service>()
}

/// The authenticated caller; anonymous callers only reach public fields (checked before
/// execution), so this refusal is a second line.
pub(crate) async fn caller(ctx: &Context<'_>) -> async_graphql::Result<Principal> {
    ctx.data_unchecked::<Caller>()
        .0
        .clone()
        .ok_or_else(|| render(Error::Unauthenticated))
}

fn document_error(error: ServerError) -> Response {
    async_graphql_axum::GraphQLResponse::from(async_graphql::Response::from_errors(vec![error]))
        .into_response()
}

/// Parses and analyses a document, or takes it from the cache.
// The error is the ready answer, built once on a path that ends the request.
#[allow(clippy::result_large_err)]
fn document(api: &Api, query: &str) -> Result<Arc<Document>, Response> {
    if let Some(doc) = api.documents.get(query) {
        return Ok(doc);
    }
    let parsed = async_graphql::parser::parse_query(query).map_err(|e| {
        let mut e = ServerError::from(e);
        errors::set_code(&mut e, ErrorCode::GraphqlParseFailed);
        document_error(e)
    })?;
    Document::analyse(parsed).map(Arc::new).map_err(|refusal| {
        document_error(match refusal {
            Refusal::Limit(m) => request_error(m, ErrorCode::QueryLimitExceeded),
            Refusal::Cycle(m) => request_error(m, ErrorCode::GraphqlValidationFailed),
        })
    })
}

async fn execute(
    state: &AppState,
    caller: Caller,
    mut request: Request,
    over_get: bool,
) -> Response {
    let api = &state.graphql;
    let doc = match document(api, &request.query) {
        Ok(doc) => doc,
        Err(response) => return response,
    };
    let op = match doc.operation(request.operation_name.as_deref()) {
        Ok(op) => op,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message, ErrorCode::BadRequest),
    };
    if over_get && op.ty == OperationType::Mutation {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Mutations are only accepted over POST.",
            ErrorCode::BadRequest,
        );
    }
    if caller.0.is_none() {
        if !op
            .roots
            .iter()
            .all(|f| PUBLIC_ROOT_FIELDS.contains(&f.as_str()))
        {
            return refusal(Error::Unauthenticated);
        }
    } else {
        api.documents.put(&request.query, doc.clone());
    }
    let label = api.label(op);
    let is_query = op.ty == OperationType::Query;
    request.set_parsed_query(doc.parsed.clone());
    let request = request.data(caller).data(state.clone());
    // A query that still runs at the deadline is stopped. A mutation is not: once it has
    // written, its answer must say so.
    // async-graphql's execution future is large: boxed once, then only a pointer moves.
    let execution = Box::pin(api.schema.execute(request));
    let response = if is_query {
        match tokio::time::timeout(api.deadline, execution).await {
            Ok(response) => response,
            Err(_) => async_graphql::Response::from_errors(vec![request_error(
                format!(
                    "The query ran longer than {} s and was stopped.",
                    api.deadline.as_secs_f32()
                ),
                ErrorCode::QueryLimitExceeded,
            )]),
        }
    } else {
        execution.await
    };
    let outcome = response.errors.first().map_or("ok", |e| errors::code_of(e));
    let mut http = async_graphql_axum::GraphQLResponse::from(response).into_response();
    http.extensions_mut().insert(crate::metrics::Outcome {
        operation: label,
        outcome: outcome.to_owned(),
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
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => match crate::server::body_error(&rejection) {
            Some(error) => return refusal(error),
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("The request body could not be read: {rejection}"),
                    ErrorCode::BadRequest,
                );
            }
        },
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
    if body.trim_ascii_start().starts_with(b"[") {
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
    execute(&state, caller, request, false).await
}

/// GET /graphql: a query in the URL (GraphQL over HTTP), or GraphiQL for a browser.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return graphiql::page("/graphql");
    };
    match parse_query_string(&query) {
        Ok(request) => execute(&state, caller, request, true).await,
        Err(e) => refuse(
            StatusCode::BAD_REQUEST,
            &format!("The query string is not a GraphQL request: {e}"),
            ErrorCode::BadRequest,
        ),
    }
}
