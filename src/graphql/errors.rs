//! The one place domain errors become GraphQL errors, and the extension that gives every
//! library-produced error (parse, validation, limits, input coercion) a code too.
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Enum, ErrorExtensionValues, Response, ServerError, ServerResult, ValidationResult, Value,
    Variables,
};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;

use crate::domain::error::{Error, FieldError, NON_FIELD_ERRORS};
use crate::domain::validation;

/// Every `extensions.code` this API returns.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No credentials were presented, or they were refused (unknown, expired, inactive user):
    /// sign in again. HTTP 401.
    Unauthenticated,
    /// The caller lacks the permission.
    Forbidden,
    /// Input failed validation; see `extensions.fieldErrors`.
    BadUserInput,
    /// The object does not exist or is not visible to the caller.
    NotFound,
    /// A uniqueness rule was violated; see `extensions.fieldErrors` and `extensions.fields`.
    Conflict,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// Too many failed authentications from this client; see `extensions.retryAfter`.
    RateLimited,
    /// The database is unreachable; nothing was written; retry later.
    ServiceUnavailable,
    /// The database connection was lost after a write was sent: it may or may not be stored.
    /// Read it back (e.g. by source and identifier) before retrying.
    OutcomeUnknown,
    /// An unexpected failure; the message is masked, `extensions.errorId` is in the log.
    InternalServerError,
    /// The HTTP request is not a GraphQL request (body, method or content type).
    BadRequest,
    /// The document does not parse.
    GraphqlParseFailed,
    /// The document does not validate against the schema.
    GraphqlValidationFailed,
    /// The document exceeds a cost limit (fields, fragment spreads, aliases, depth or
    /// complexity, counted with fragments expanded), or a query ran past its deadline; for
    /// subscriptions: too many websockets or subscriptions, or a subscriber fell behind.
    QueryLimitExceeded,
    /// The request body arrived too slowly. HTTP 408.
    RequestTimeout,
    /// The source refused the connection's refresh token (revoked, expired or reused): the
    /// user must link the account again; the connection's `needsRelink` is true.
    RelinkRequired,
    /// The source's token endpoint could not refresh the token now (timeout, network, 5xx,
    /// unusable answer; see `extensions.reason`). Nothing stored changed; retry later.
    ProviderUnavailable,
    /// Automatic persisted queries: the server does not hold the document of this hash; send
    /// the query text with it (Apollo's link does). HTTP 404.
    PersistedQueryNotFound,
    /// The server runs only the operations of its allow-list and this is not one. HTTP 403.
    OperationNotAllowed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::BadUserInput,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::ServiceUnavailable,
        ErrorCode::OutcomeUnknown,
        ErrorCode::InternalServerError,
        ErrorCode::BadRequest,
        ErrorCode::GraphqlParseFailed,
        ErrorCode::GraphqlValidationFailed,
        ErrorCode::QueryLimitExceeded,
        ErrorCode::RequestTimeout,
        ErrorCode::RelinkRequired,
        ErrorCode::ProviderUnavailable,
        ErrorCode::PersistedQueryNotFound,
        ErrorCode::OperationNotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::OutcomeUnknown => "OUTCOME_UNKNOWN",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::QueryLimitExceeded => "QUERY_LIMIT_EXCEEDED",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::RelinkRequired => "RELINK_REQUIRED",
            ErrorCode::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ErrorCode::OperationNotAllowed => "OPERATION_NOT_ALLOWED",
        }
    }
}

/// GraphQL's spelling of a REST field name.
fn graphql_field(field: &str) -> String {
    match field {
        "access_token" => "accessToken".to_owned(),
        "refresh_token" => "refreshToken".to_owned(),
        NON_FIELD_ERRORS => "nonFieldErrors".to_owned(),
        other => other.to_owned(),
    }
}

fn field_errors_value(errors: &[FieldError]) -> Value {
    Value::List(
        errors
            .iter()
            .map(|e| {
                let mut obj = async_graphql::indexmap::IndexMap::new();
                obj.insert(
                    async_graphql::Name::new("field"),
                    Value::from(graphql_field(e.field)),
                );
                obj.insert(
                    async_graphql::Name::new("code"),
                    Value::from(e.code.as_str()),
                );
                obj.insert(
                    async_graphql::Name::new("message"),
                    Value::from(e.message.clone()),
                );
                Value::Object(obj)
            })
            .collect(),
    )
}

fn with_code(message: impl Into<String>, code: ErrorCode) -> async_graphql::Error {
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code.as_str());
    async_graphql::Error {
        message: message.into(),
        source: None,
        extensions: Some(ext),
    }
}

/// Renders a domain error.
pub fn render(error: Error) -> async_graphql::Error {
    match error {
        Error::Unauthenticated => with_code(
            "Authentication credentials were not provided.",
            ErrorCode::Unauthenticated,
        ),
        Error::InvalidCredentials(_) => {
            with_code("Token invalid/expired", ErrorCode::Unauthenticated)
        }
        Error::Forbidden => with_code(
            "You do not have permission to perform this action.",
            ErrorCode::Forbidden,
        ),
        Error::Validation(errors) => {
            let mut e = with_code("Invalid input.", ErrorCode::BadUserInput);
            if let Some(ext) = e.extensions.as_mut() {
                ext.set("fieldErrors", field_errors_value(&errors));
            }
            e
        }
        Error::NotFound => with_code("Not found.", ErrorCode::NotFound),
        Error::Conflict(rule) => {
            let fields: Vec<FieldError> = rule
                .fields()
                .iter()
                .map(|f| FieldError {
                    field: f,
                    code: crate::domain::error::FieldCode::Unique,
                    message: rule.message(),
                })
                .collect();
            let mut e = with_code(rule.message(), ErrorCode::Conflict);
            if let Some(ext) = e.extensions.as_mut() {
                ext.set("fieldErrors", field_errors_value(&fields));
                ext.set(
                    "fields",
                    Value::List(rule.fields().iter().map(|f| Value::from(*f)).collect()),
                );
            }
            e
        }
        Error::PayloadTooLarge => {
            with_code("Request body is too large.", ErrorCode::PayloadTooLarge)
        }
        Error::RateLimited { retry_after_secs } => {
            let mut e = with_code("Request was throttled.", ErrorCode::RateLimited);
            if let Some(ext) = e.extensions.as_mut() {
                ext.set("retryAfter", retry_after_secs);
            }
            e
        }
        Error::RequestTimeout => with_code(
            "The request body was not received in time.",
            ErrorCode::RequestTimeout,
        ),
        Error::Unavailable => with_code(
            "The service is temporarily unavailable; retry later.",
            ErrorCode::ServiceUnavailable,
        ),
        Error::OutcomeUnknown => with_code(
            "The database connection was lost after the write was sent: it may or may not be \
             stored. Read it back before retrying.",
            ErrorCode::OutcomeUnknown,
        ),
        Error::RelinkRequired => with_code(
            "The source refused the stored refresh token: the user must link the account again.",
            ErrorCode::RelinkRequired,
        ),
        Error::ProviderUnavailable(problem) => {
            let mut e = with_code(
                "The source's token endpoint could not refresh the token; nothing was changed. \
                 Retry later.",
                ErrorCode::ProviderUnavailable,
            );
            if let Some(ext) = e.extensions.as_mut() {
                ext.set("reason", problem.as_str());
            }
            e
        }
        Error::Internal { id } => {
            let mut e = with_code("Internal server error.", ErrorCode::InternalServerError);
            if let Some(ext) = e.extensions.as_mut() {
                ext.set("errorId", id.to_string());
            }
            e
        }
    }
}

/// A request refused before execution (by authentication, the throttle, the body's size or
/// speed, or the database during authentication), with the HTTP status that says why, as the
/// GraphQL-over-HTTP specification allows for requests that never reach execution.
pub fn refusal(error: Error) -> axum::response::Response {
    let status = match &error {
        Error::Unauthenticated | Error::InvalidCredentials(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Error::OutcomeUnknown => StatusCode::GATEWAY_TIMEOUT,
        Error::RelinkRequired => StatusCode::CONFLICT,
        Error::ProviderUnavailable(p) if p.bad_gateway() => StatusCode::BAD_GATEWAY,
        Error::ProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Validation(_) | Error::NotFound | Error::Conflict(_) => StatusCode::BAD_REQUEST,
    };
    let retry_after = match &error {
        Error::RateLimited { retry_after_secs } => Some(HeaderValue::from(*retry_after_secs)),
        _ => None,
    };
    let rendered = render(error);
    let mut e = ServerError::new(rendered.message, None);
    e.extensions = rendered.extensions;
    let body = async_graphql_axum::GraphQLResponse::from(Response::from_errors(vec![e]));
    let mut response = (status, body).into_response();
    if let Some(wait) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, wait);
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"oauthlink\""),
        );
    }
    response
}

/// The code of an error this API produced (every one has one, see `ErrorCodes`).
pub fn code_of(e: &ServerError) -> &'static str {
    let code = e.extensions.as_ref().and_then(|x| x.get("code"));
    ErrorCode::ALL
        .into_iter()
        .map(ErrorCode::as_str)
        .find(|c| matches!(code, Some(Value::String(s)) if s == c))
        .unwrap_or("uncoded")
}

/// A coded error for a request that never reached the executor.
pub fn request_error(message: impl Into<String>, code: ErrorCode) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code.as_str());
    e.extensions = Some(ext);
    e
}

fn has_code(e: &ServerError) -> bool {
    e.extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some())
}

pub(super) fn set_code(e: &mut ServerError, code: ErrorCode) {
    e.extensions
        .get_or_insert_with(ErrorExtensionValues::default)
        .set("code", code.as_str());
}

/// The REST name of an input field the library named.
fn known_field(name: &str) -> Option<&'static str> {
    Some(match name {
        "identifier" => "identifier",
        "source" => "source",
        "user" => "user",
        "accessToken" => "access_token",
        "refreshToken" => "refresh_token",
        "expires" => "expires",
        _ => return None,
    })
}

/// Turns the library's input-coercion messages into the field errors our own validation
/// would give, so a client sees one vocabulary whichever layer caught the mistake.
fn library_field_error(message: &str, variables: &Variables) -> Option<FieldError> {
    let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
    // `Invalid value for argument "input", field "source" of type "UUID!" is required but not provided`
    if message.contains("is required but not provided") {
        return known_field(quoted.get(1)?).map(validation::required);
    }
    // `Invalid value for argument "input.identifier", expected type "String"`
    if message.starts_with("Invalid value for argument") {
        let path = *quoted.first()?;
        let mut segments = path.split('.');
        let root = segments.next()?;
        let name = path.rsplit('.').next()?;
        let field = known_field(name)?;
        let mut value = variables.get(&async_graphql::Name::new(root));
        for seg in segments {
            value = match value {
                Some(Value::Object(o)) => o.get(seg),
                _ => None,
            };
        }
        return Some(match (value, quoted.get(1).copied()) {
            (Some(Value::Null), _) => validation::null(field),
            (_, Some("Int")) => validation::wrong_pk_type(field, "str"),
            _ => validation::not_a_string(field),
        });
    }
    // `Failed to parse "UUID": … (occurred while parsing "CreateUserOAuthConnectionInput")`,
    // `Expected input type "DateTime", found 17. (occurred while parsing …)`
    match *quoted.first()? {
        "UUID" => Some(FieldError {
            field: "source",
            code: crate::domain::error::FieldCode::Invalid,
            message: "Must be a valid UUID.".to_owned(),
        }),
        "DateTime" => Some(validation::invalid_datetime("expires")),
        _ => None,
    }
}

fn set_field_error(e: &mut ServerError, variables: &Variables) {
    if let Some(fe) = library_field_error(&e.message, variables) {
        e.extensions
            .get_or_insert_with(ErrorExtensionValues::default)
            .set("fieldErrors", field_errors_value(&[fe]));
    }
}

/// Gives every error a code: the library's own errors get theirs by the phase they come from.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension {
            variables: Default::default(),
        })
    }
}

/// One per request: keeps the variables to tell `null` from a wrong type.
struct ErrorCodesExtension {
    variables: std::sync::Mutex<Variables>,
}

impl ErrorCodesExtension {
    fn variables(&self) -> Variables {
        self.variables.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for e in &mut response.errors {
            if has_code(e) {
                continue;
            }
            // What is left uncoded comes from input coercion during execution.
            let coercion = ["Failed to parse", "Invalid value", "Expected input type"];
            // A variable the operation uses but the request did not send: the client's input.
            let missing_variable =
                e.message.starts_with("Variable ") && e.message.ends_with(" is not defined.");
            if missing_variable {
                set_code(e, ErrorCode::BadUserInput);
            } else if coercion.iter().any(|p| e.message.starts_with(p)) {
                set_code(e, ErrorCode::BadUserInput);
                set_field_error(e, &self.variables());
            } else {
                let id = uuid::Uuid::new_v4();
                let message = crate::telemetry::clip(&e.message);
                tracing::error!(error_id = %id, error = ?message, "unexpected GraphQL error");
                e.message = "Internal server error.".to_owned();
                set_code(e, ErrorCode::InternalServerError);
                e.extensions
                    .get_or_insert_with(ErrorExtensionValues::default)
                    .set("errorId", id.to_string());
            }
        }
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Ok(mut v) = self.variables.lock() {
            v.clone_from(variables);
        }
        // The handler parsed and analysed the document; the library's recursion and directive
        // checks can still refuse it here.
        next.run(ctx, query, variables).await.map_err(|mut e| {
            let code = if e.message.contains("recursion depth") || e.message.contains("directives")
            {
                ErrorCode::QueryLimitExceeded
            } else {
                ErrorCode::GraphqlParseFailed
            };
            set_code(&mut e, code);
            e
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|mut e| {
                    let code = if e.message.contains("nested too deep")
                        || e.message.contains("too complex")
                        || e.message.contains("too many directives")
                    {
                        ErrorCode::QueryLimitExceeded
                    } else if e.message.starts_with("Invalid value for argument")
                        || e.message.starts_with("Variable")
                    {
                        set_field_error(&mut e, &self.variables());
                        ErrorCode::BadUserInput
                    } else {
                        ErrorCode::GraphqlValidationFailed
                    };
                    set_code(&mut e, code);
                    e
                })
                .collect()
        })
    }
}
