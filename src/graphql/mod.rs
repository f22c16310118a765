//! The GraphQL API: schema, HTTP handlers (POST, GET, GraphiQL) and the per-request caller.
pub mod document;
mod errors;
pub mod graphiql;
mod mutation;
pub mod node;
pub mod persisted;
mod query;
mod subscription;
mod types;
mod vault;
pub mod ws;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::parse_query_string;
use async_graphql::parser::types::OperationType;
use async_graphql::{Context, MergedObject, Request, Schema as GqlSchema, ServerError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
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

pub type Schema = GqlSchema<QueryRoot, MutationRoot, subscription::Subscription>;

/// Limits that still allow the standard introspection query.
pub const MAX_DEPTH: usize = 16;
pub const MAX_COMPLEXITY: usize = 1000;

pub fn schema(service: Option<Service>) -> Schema {
    let mut builder = GqlSchema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        subscription::Subscription,
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
    /// APQ's registered documents (unused in allow-list mode).
    registered: persisted::Registered,
    /// Allow-list mode: only these documents run.
    manifest: Option<Arc<persisted::Manifest>>,
    /// Websocket connections and their subscriptions.
    pub(crate) sockets: ws::Sockets,
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
                    .filter(|t| {
                        matches!(
                            t.node.name.node.as_str(),
                            "Query" | "Mutation" | "Subscription"
                        )
                    })
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
            registered: persisted::Registered::default(),
            manifest: None,
            sockets: ws::Sockets::default(),
        }
    }

    /// The same endpoint with another query deadline (the schema's names are not read again).
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        Api {
            schema: self.schema.clone(),
            documents: Documents::default(),
            root_fields: self.root_fields.clone(),
            deadline,
            registered: persisted::Registered::default(),
            manifest: self.manifest.clone(),
            sockets: self.sockets.clone(),
        }
    }

    /// The same endpoint in allow-list mode (`None`: any document, with APQ).
    pub fn with_operations(&self, manifest: Option<persisted::Manifest>) -> Self {
        Api {
            manifest: manifest.map(Arc::new),
            ..self.with_deadline(self.deadline)
        }
    }

    /// The same endpoint with other websocket limits.
    pub fn with_socket_limits(&self, limits: ws::SocketLimits) -> Self {
        Api {
            sockets: ws::Sockets::new(limits),
            ..self.with_deadline(self.deadline)
        }
    }

    /// The answer of a query stopped at the deadline.
    pub(crate) fn past_deadline(&self) -> async_graphql::Response {
        async_graphql::Response::from_errors(vec![request_error(
            format!(
                "The query ran longer than {} s and was stopped.",
                self.deadline.as_secs_f32()
            ),
            ErrorCode::QueryLimitExceeded,
        )])
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
pub struct Caller(pub(crate) Option<Principal>);

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

/// A request refused before execution: the domain's refusal (with its own status), or a
/// transport error with the status it is answered with over HTTP.
pub(crate) enum Refused {
    Domain(Error),
    Request(StatusCode, ServerError),
}

impl Refused {
    fn new(status: StatusCode, message: impl Into<String>, code: ErrorCode) -> Self {
        Refused::Request(status, request_error(message, code))
    }

    fn into_response(self) -> Response {
        match self {
            Refused::Domain(e) => refusal(e),
            Refused::Request(status, e) => (
                status,
                async_graphql_axum::GraphQLResponse::from(async_graphql::Response::from_errors(
                    vec![e],
                )),
            )
                .into_response(),
        }
    }

    /// The same refusal as a GraphQL response (over a websocket, which has no status).
    pub(crate) fn into_graphql(self) -> async_graphql::Response {
        let e = match self {
            Refused::Domain(e) => {
                let rendered = render(e);
                let mut e = ServerError::new(rendered.message, None);
                e.extensions = rendered.extensions;
                e
            }
            Refused::Request(_, e) => e,
        };
        async_graphql::Response::from_errors(vec![e])
    }
}

/// Parses and analyses a document, or takes it from the cache.
fn document(api: &Api, query: &str) -> Result<Arc<Document>, Refused> {
    if let Some(doc) = api.documents.get(query) {
        return Ok(doc);
    }
    let parsed = async_graphql::parser::parse_query(query).map_err(|e| {
        let mut e = ServerError::from(e);
        errors::set_code(&mut e, ErrorCode::GraphqlParseFailed);
        Refused::Request(StatusCode::OK, e)
    })?;
    Document::analyse(parsed).map(Arc::new).map_err(|refusal| {
        Refused::Request(
            StatusCode::OK,
            match refusal {
                Refusal::Limit(m) => request_error(m, ErrorCode::QueryLimitExceeded),
                Refusal::Cycle(m) => request_error(m, ErrorCode::GraphqlValidationFailed),
            },
        )
    })
}

/// How a request arrived.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Post,
    Get,
    WebSocket,
}

/// A request ready for the executor.
pub(crate) struct Prepared {
    pub request: Request,
    pub label: String,
    pub is_query: bool,
}

/// The document a request runs: its own text, or the text its persisted id names. In
/// allow-list mode nothing else, and an unlisted text is refused before it is parsed.
fn persisted_text(
    api: &Api,
    caller: &Caller,
    request: &Request,
    document_id: Option<String>,
) -> Result<Option<Arc<str>>, Refused> {
    let named = persisted::Named {
        sha256: persisted::apq_hash(&request.extensions).map_err(miss)?,
        document_id,
    };
    match &api.manifest {
        Some(manifest) => match manifest.resolve(&request.query, &named) {
            Ok(text) => Ok(Some(text)),
            // Introspection admitted by setting: the only unlisted documents parsed.
            Err(persisted::Miss::NotAllowed)
                if manifest.allow_introspection && !request.query.is_empty() =>
            {
                let doc = document(api, &request.query)?;
                let op = doc
                    .operation(request.operation_name.as_deref())
                    .map_err(|m| Refused::new(StatusCode::BAD_REQUEST, m, ErrorCode::BadRequest))?;
                let introspection = ["__schema", "__type", "__typename"];
                if op.roots.iter().all(|f| introspection.contains(&f.as_str())) {
                    Ok(None)
                } else {
                    Err(miss(persisted::Miss::NotAllowed))
                }
            }
            Err(m) => Err(miss(m)),
        },
        None => {
            if named.document_id.is_some() && request.query.is_empty() {
                return Err(miss(persisted::Miss::NotFound));
            }
            api.registered
                .resolve(&request.query, &named, caller.0.is_some())
                .map_err(miss)
        }
    }
}

fn miss(m: persisted::Miss) -> Refused {
    match m {
        // Apollo's link retries with the text on this message or code; Apollo Server answers 404.
        persisted::Miss::NotFound => Refused::new(
            StatusCode::NOT_FOUND,
            "PersistedQueryNotFound",
            ErrorCode::PersistedQueryNotFound,
        ),
        persisted::Miss::NotAllowed => Refused::new(
            StatusCode::FORBIDDEN,
            "This server runs only the operations of its allow-list.",
            ErrorCode::OperationNotAllowed,
        ),
        persisted::Miss::HashMismatch => Refused::new(
            StatusCode::BAD_REQUEST,
            "provided sha does not match query",
            ErrorCode::BadRequest,
        ),
        persisted::Miss::Unsupported(m) => {
            Refused::new(StatusCode::BAD_REQUEST, m, ErrorCode::BadRequest)
        }
    }
}

/// Every check before execution, the same over HTTP and websockets: the persisted document,
/// the cost analysis, the operation, the method, and what an anonymous caller may select.
pub(crate) fn prepare(
    state: &AppState,
    caller: Caller,
    mut request: Request,
    document_id: Option<String>,
    transport: Transport,
) -> Result<Prepared, Refused> {
    let api = &state.graphql;
    if let Some(text) = persisted_text(api, &caller, &request, document_id)? {
        request.query = text.to_string();
    }
    let doc = document(api, &request.query)?;
    let op = doc
        .operation(request.operation_name.as_deref())
        .map_err(|m| Refused::new(StatusCode::BAD_REQUEST, m, ErrorCode::BadRequest))?;
    if transport == Transport::Get && op.ty == OperationType::Mutation {
        return Err(Refused::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Mutations are only accepted over POST.",
            ErrorCode::BadRequest,
        ));
    }
    if transport != Transport::WebSocket && op.ty == OperationType::Subscription {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "Subscriptions run over a websocket (graphql-transport-ws) at this path.",
            ErrorCode::BadRequest,
        ));
    }
    if caller.0.is_none() {
        if !op
            .roots
            .iter()
            .all(|f| PUBLIC_ROOT_FIELDS.contains(&f.as_str()))
        {
            return Err(Refused::Domain(Error::Unauthenticated));
        }
    } else {
        api.documents.put(&request.query, doc.clone());
    }
    let label = api.label(op);
    let is_query = op.ty == OperationType::Query;
    request.set_parsed_query(doc.parsed.clone());
    let request = request.data(caller).data(state.clone());
    Ok(Prepared {
        request,
        label,
        is_query,
    })
}

async fn execute(
    state: &AppState,
    caller: Caller,
    request: Request,
    document_id: Option<String>,
    transport: Transport,
) -> Response {
    let api = &state.graphql;
    let Prepared {
        request,
        label,
        is_query,
    } = match prepare(state, caller, request, document_id, transport) {
        Ok(prepared) => prepared,
        Err(refused) => return refused.into_response(),
    };
    // A query that still runs at the deadline is stopped. A mutation is not: once it has
    // written, its answer must say so.
    // async-graphql's execution future is large: boxed once, then only a pointer moves.
    let execution = Box::pin(api.schema.execute(request));
    let response = if is_query {
        match tokio::time::timeout(api.deadline, execution).await {
            Ok(response) => response,
            Err(_) => api.past_deadline(),
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
    let parsed = crate::strict_json::from_slice(&body).and_then(|mut json| {
        // Persisted documents by id (GraphQL over HTTP's `documentId`, Relay's `doc_id`).
        let document_id = json.as_object_mut().and_then(|o| {
            let id = o.remove("documentId").or_else(|| o.remove("doc_id"));
            id.and_then(|v| v.as_str().map(str::to_owned))
        });
        serde_json::from_value::<Request>(json).map(|r| (r, document_id))
    });
    let (request, document_id) = match parsed {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("The body is not a GraphQL request: {e}"),
                ErrorCode::BadRequest,
            );
        }
    };
    execute(&state, caller, request, document_id, Transport::Post).await
}

/// GET /graphql: a websocket (`Upgrade: websocket`, see `ws`), a query in the URL (GraphQL
/// over HTTP), or GraphiQL for a browser.
pub async fn get(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    if ws::is_upgrade(request.headers()) {
        return ws::upgrade(state, request).await;
    }
    let (mut parts, _) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Some(query) = parts.uri.query().filter(|q| !q.is_empty()) else {
        return graphiql::page("/graphql");
    };
    match parse_query_string(query) {
        Ok(request) => execute(&state, caller, request, None, Transport::Get).await,
        Err(e) => refuse(
            StatusCode::BAD_REQUEST,
            &format!("The query string is not a GraphQL request: {e}"),
            ErrorCode::BadRequest,
        ),
    }
}
