//! The one error type that decides every outcome. Transports render it (graphql/errors.rs,
//! rest/errors.rs) and never invent outcomes of their own.
use std::fmt;

/// Field-level error codes, in the REST contract's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldCode {
    Required,
    Blank,
    MaxLength,
    Null,
    Invalid,
    DoesNotExist,
    Unique,
}

impl FieldCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldCode::Required => "required",
            FieldCode::Blank => "blank",
            FieldCode::MaxLength => "max_length",
            FieldCode::Null => "null",
            FieldCode::Invalid => "invalid",
            FieldCode::DoesNotExist => "does_not_exist",
            FieldCode::Unique => "unique",
        }
    }
}

/// A field error. `field` is the REST (snake_case) name; GraphQL renders its own spelling.
/// `non_field_errors` is the field of errors about several fields at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub code: FieldCode,
    pub message: String,
}

pub const NON_FIELD_ERRORS: &str = "non_field_errors";

/// The "field" of an error about a query parameter that is no form field (REST `search`):
/// DRF answers such an error as a bare list of messages.
pub const WHOLE_REQUEST: &str = "";

/// The two uniqueness rules of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueRule {
    /// One connection per (user, source).
    UserSource,
    /// One external identity per source maps to one user.
    SourceIdentifier,
}

impl UniqueRule {
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            UniqueRule::UserSource => &["user", "source"],
            UniqueRule::SourceIdentifier => &["source", "identifier"],
        }
    }

    /// Django REST framework's UniqueTogetherValidator message.
    pub fn message(self) -> String {
        format!(
            "The fields {} must make a unique set.",
            self.fields().join(", ")
        )
    }
}

/// Why a presented credential was refused. Logged, never shown: the caller sees one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialProblem {
    Malformed,
    Unknown,
    Expired,
    InactiveUser,
    // OpenID Connect access tokens (src/oidc):
    /// Not a decodable JWT, or a required claim is missing or malformed.
    BadToken,
    /// `none`, HS* or another algorithm outside the allowed set, or not the key's.
    DisallowedAlgorithm,
    /// `iss` is no configured issuer.
    WrongIssuer,
    /// `aud` holds none of the issuer's audiences.
    WrongAudience,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    BadSignature,
    /// The `kid` is not in the issuer's JWKS (or the token names none).
    UnknownKey,
    /// The key was in the cached JWKS but the issuer no longer publishes it.
    KeyRotatedOut,
    /// The issuer's keys could not be fetched and none are cached.
    KeysUnavailable,
    /// The configured user claim is missing, empty or too long.
    MissingUserClaim,
    /// No user is linked to the subject, and auto-creation is off.
    UnknownSubject,
    /// A JWT was presented but no issuer is configured.
    NoIssuer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No credentials were presented.
    Unauthenticated,
    /// Credentials were presented and refused.
    InvalidCredentials(CredentialProblem),
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// Input failed validation (including references to rows that do not exist).
    Validation(Vec<FieldError>),
    /// The object does not exist or is not visible to the caller.
    NotFound,
    /// A uniqueness rule was violated (decided by the database constraint).
    Conflict(UniqueRule),
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// The request body arrived too slowly.
    RequestTimeout,
    /// Too many failed authentications from this client.
    RateLimited { retry_after_secs: u64 },
    /// The database is unreachable or timed out; nothing was written.
    Unavailable,
    /// The connection was lost after a write was sent (or while it committed): it may or
    /// may not be stored. Clients read back before retrying.
    OutcomeUnknown,
    /// The source refused the stored refresh token (`invalid_grant`: revoked, expired or
    /// reused): the user must link the account again. The connection is marked so.
    RelinkRequired,
    /// The source's token endpoint could not refresh the token now (timeout, network error,
    /// 5xx, an answer that is no token, or another refresh of the same token still running
    /// past the wait): nothing stored changed; retry later.
    ProviderUnavailable(ProviderProblem),
    /// Anything else. Logged with `id`; the message shown is masked.
    Internal { id: uuid::Uuid },
}

/// Why a refresh at the source failed without an answer to act on. Logged and rendered as a
/// short code; the provider's own error text never is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderProblem {
    /// No answer within the connect or total timeout.
    Timeout,
    /// Connection refused, reset, or TLS failure.
    Network,
    /// The token endpoint answered 5xx (or 429).
    ServerError,
    /// The answer was not a usable token response, or was larger than the bound.
    BadResponse,
    /// The source refused the client or the request (an OAuth error other than
    /// `invalid_grant`, e.g. `invalid_client`): its configuration needs fixing.
    Rejected,
    /// The source has no usable token endpoint or client credentials configured.
    NotConfigured,
    /// Another refresh of the same connection ran past the bounded wait.
    Busy,
}

impl ProviderProblem {
    /// The source answered, but not usably: a gateway's error (502), not an outage (503).
    pub fn bad_gateway(self) -> bool {
        matches!(
            self,
            ProviderProblem::BadResponse | ProviderProblem::Rejected
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderProblem::Timeout => "timeout",
            ProviderProblem::Network => "network",
            ProviderProblem::ServerError => "server_error",
            ProviderProblem::BadResponse => "bad_response",
            ProviderProblem::Rejected => "rejected",
            ProviderProblem::NotConfigured => "not_configured",
            ProviderProblem::Busy => "busy",
        }
    }
}

impl Error {
    pub fn field(field: &'static str, code: FieldCode, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError {
            field,
            code,
            message: message.into(),
        }])
    }

    /// Logs an unexpected failure with a fresh id and returns the masked error.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4();
        // Debug-escaped and bounded: a database error may quote a client's value.
        let cause = cause.to_string();
        let cause = crate::telemetry::clip_to(&cause, 1000);
        tracing::error!(error_id = %id, error = ?cause, "internal error");
        Error::Internal { id }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unauthenticated => f.write_str("authentication credentials were not provided"),
            Error::InvalidCredentials(_) => f.write_str("token invalid/expired"),
            Error::Forbidden => f.write_str("permission denied"),
            Error::Validation(errors) => write!(f, "{} invalid field(s)", errors.len()),
            Error::NotFound => f.write_str("not found"),
            Error::Conflict(rule) => f.write_str(&rule.message()),
            Error::PayloadTooLarge => f.write_str("request body too large"),
            Error::RequestTimeout => f.write_str("request body timed out"),
            Error::RateLimited { .. } => f.write_str("rate limited"),
            Error::Unavailable => f.write_str("database unavailable"),
            Error::OutcomeUnknown => f.write_str("outcome of the write unknown"),
            Error::RelinkRequired => f.write_str("the source refused the refresh token"),
            Error::ProviderUnavailable(p) => write!(f, "token refresh failed ({})", p.as_str()),
            Error::Internal { id } => write!(f, "internal error {id}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
