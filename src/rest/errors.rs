//! The one place domain errors become REST responses, in authentik's shapes: 400
//! `ValidationError` (field → messages), everything else `GenericError` (`{"detail": …}`).
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::domain::error::{Error, NON_FIELD_ERRORS, WHOLE_REQUEST};

pub struct RestError(pub Error);

impl From<Error> for RestError {
    fn from(e: Error) -> Self {
        RestError(e)
    }
}

pub fn detail(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, Json(json!({ "detail": detail.into() }))).into_response()
}

/// `{"detail", "code"}`: for outcomes authentik has no body of its own for, so clients can
/// tell them apart without parsing the message. The codes are DRF's where DRF has one.
fn coded(status: StatusCode, detail: impl Into<String>, code: &str) -> Response {
    (
        status,
        Json(json!({ "detail": detail.into(), "code": code })),
    )
        .into_response()
}

/// A method HTTP does not define, answered before routing: 405 (not RFC 9110's 501, so that
/// clients and checkers that treat every 5xx as the server's fault see a client error), and
/// the method is not echoed (it may be as long as the request head).
pub fn unknown_method() -> Response {
    coded(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed.",
        "method_not_allowed",
    )
}

pub fn non_field(message: impl Into<String>) -> Response {
    let message: String = message.into();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ NON_FIELD_ERRORS: [message] })),
    )
        .into_response()
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        match self.0 {
            Error::Unauthenticated => detail(
                StatusCode::FORBIDDEN,
                "Authentication credentials were not provided.",
            ),
            Error::InvalidCredentials(_) => detail(StatusCode::FORBIDDEN, "Token invalid/expired"),
            Error::Forbidden => detail(
                StatusCode::FORBIDDEN,
                "You do not have permission to perform this action.",
            ),
            // DRF renders a ValidationError raised outside a serializer as a bare list.
            Error::Validation(errors) if errors.iter().all(|e| e.field == WHOLE_REQUEST) => {
                let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
                (StatusCode::BAD_REQUEST, Json(messages)).into_response()
            }
            Error::Validation(errors) => {
                let mut body = Map::new();
                for e in errors {
                    body.entry(e.field)
                        .or_insert_with(|| Value::Array(vec![]))
                        .as_array_mut()
                        .expect("inserted as array")
                        .push(Value::String(e.message));
                }
                (StatusCode::BAD_REQUEST, Json(Value::Object(body))).into_response()
            }
            Error::NotFound => detail(
                StatusCode::NOT_FOUND,
                "No UserOAuthSourceConnection matches the given query.",
            ),
            Error::Conflict(rule) => non_field(rule.message()),
            Error::PayloadTooLarge => coded(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body is too large.",
                "payload_too_large",
            ),
            Error::RequestTimeout => coded(
                StatusCode::REQUEST_TIMEOUT,
                "The request body was not received in time.",
                "request_timeout",
            ),
            Error::RateLimited { retry_after_secs } => {
                let mut r = coded(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Request was throttled. Expected available in {retry_after_secs} seconds."
                    ),
                    "throttled",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                r
            }
            Error::Unavailable => coded(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable, try again later.",
                "service_unavailable",
            ),
            // 504: the database did not answer the write; unlike 503 a blind retry is wrong.
            Error::OutcomeUnknown => coded(
                StatusCode::GATEWAY_TIMEOUT,
                "The database connection was lost after the write was sent: it may or may not \
                 be stored. Read it back before retrying.",
                "outcome_unknown",
            ),
            // 409: the request conflicts with the connection's state (its link is broken);
            // retrying cannot help until the user links again.
            Error::RelinkRequired => coded(
                StatusCode::CONFLICT,
                "The source refused the stored refresh token: the user must link the account \
                 again.",
                "relink_required",
            ),
            // The provider, not this service, failed; nothing stored changed. 502 when it
            // answered unusably, 503 when it did not answer (or another refresh ran long).
            Error::ProviderUnavailable(problem) => {
                let status = if problem.bad_gateway() {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let body = json!({
                    "detail": "The source's token endpoint could not refresh the token; nothing \
                               was changed. Retry later.",
                    "code": "provider_unavailable",
                    "reason": problem.as_str(),
                });
                let mut r = (status, Json(body)).into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                r
            }
            Error::Internal { id } => detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("A server error occurred (error id {id})."),
            ),
        }
    }
}
