//! What the service reads and writes, independent of storage and transport.
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyEngineMode {
    All,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserMatchingMode {
    Identifier,
    EmailLink,
    EmailDeny,
    UsernameLink,
    UsernameDeny,
}

macro_rules! str_enum {
    ($ty:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

str_enum!(PolicyEngineMode { All => "all", Any => "any" });
str_enum!(UserMatchingMode {
    Identifier => "identifier",
    EmailLink => "email_link",
    EmailDeny => "email_deny",
    UsernameLink => "username_link",
    UsernameDeny => "username_deny",
});

/// How a client authenticates at a source's token endpoint (RFC 6749 §2.3.1; OpenID
/// Connect's `token_endpoint_auth_method` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenAuthMethod {
    /// HTTP Basic with the form-encoded client id and secret (the default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

str_enum!(TokenAuthMethod {
    ClientSecretBasic => "client_secret_basic",
    ClientSecretPost => "client_secret_post",
});

/// The kind of a source decides the read-only values the APIs show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    OAuth,
}

str_enum!(SourceKind { OAuth => "oauth" });

impl SourceKind {
    pub fn component(self) -> &'static str {
        match self {
            SourceKind::OAuth => "ak-source-oauth-form",
        }
    }
    pub fn verbose_name(self) -> &'static str {
        match self {
            SourceKind::OAuth => "OAuth Source",
        }
    }
    pub fn verbose_name_plural(self) -> &'static str {
        match self {
            SourceKind::OAuth => "OAuth Sources",
        }
    }
    pub fn meta_model_name(self) -> &'static str {
        match self {
            SourceKind::OAuth => "authentik_sources_oauth.oauthsource",
        }
    }
}

/// A source as the APIs show it (no provider secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub pk: Uuid,
    pub name: String,
    pub slug: String,
    pub enabled: bool,
    pub promoted: bool,
    pub authentication_flow: Option<Uuid>,
    pub enrollment_flow: Option<Uuid>,
    pub user_property_mappings: Vec<Uuid>,
    pub group_property_mappings: Vec<Uuid>,
    pub kind: SourceKind,
    pub policy_engine_mode: PolicyEngineMode,
    pub user_matching_mode: UserMatchingMode,
    pub managed: Option<String>,
    pub user_path_template: String,
    pub icon: Option<String>,
}

/// A stored connection. The access token never leaves storage, so it is not here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub pk: i32,
    pub user: i32,
    pub source: Uuid,
    pub identifier: String,
    pub created: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    /// The row identity its sealed access token is bound to (storage only, never shown).
    pub row_key: Option<Uuid>,
    /// The source refused the refresh token: the user must link again.
    pub needs_relink: bool,
}

/// A connection together with its source, as every API returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionWithSource {
    pub connection: Connection,
    pub source: Source,
}

/// A value a client may set, leave out, or set to null.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

/// A create, after the transport has parsed it. Parse failures arrive as field errors in
/// `errors`, so that validation reports every field at once, in one order.
#[derive(Clone, Debug, Default)]
pub struct NewConnection {
    pub source: Patch<Uuid>,
    pub user: Patch<i32>,
    pub identifier: Patch<String>,
    pub access_token: Patch<String>,
    /// Write-only, sealed like the access token.
    pub refresh_token: Patch<String>,
    pub expires: Patch<DateTime<Utc>>,
    pub identifier_limit: IdentifierLimit,
}

/// An update: absent fields keep their value.
#[derive(Clone, Debug, Default)]
pub struct ConnectionChanges {
    pub source: Patch<Uuid>,
    pub identifier: Patch<String>,
    pub access_token: Patch<String>,
    /// Write-only, sealed like the access token.
    pub refresh_token: Patch<String>,
    pub expires: Patch<DateTime<Utc>>,
    pub identifier_limit: IdentifierLimit,
}

/// How long an identifier a client may set. authentik allowed 255 characters until 2025.4 and
/// none since (a text column); GraphQL keeps 255, as OpenID Connect's `sub` (at most 255 ASCII
/// characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdentifierLimit {
    /// 255 characters: authentik 2024.x (the documented REST generation) and GraphQL.
    #[default]
    Classic,
    /// authentik 2025.4+ has no limit. Here a hard cap remains: (source, identifier) is a
    /// B-tree unique index, and PostgreSQL refuses index entries above about 2.7 kB, so
    /// 512 characters (at most 2048 bytes of UTF-8) always fit.
    Long,
}

impl IdentifierLimit {
    pub fn max_chars(self) -> usize {
        match self {
            IdentifierLimit::Classic => 255,
            IdentifierLimit::Long => 512,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Pk,
    Created,
    LastUpdated,
    Identifier,
    User,
    SourceSlug,
    /// The source's uuid (authentik's `ordering=source`).
    Source,
    /// Nulls last ascending, first descending (PostgreSQL's default, so authentik's).
    Expires,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// Filters common to both APIs' lists.
#[derive(Clone, Debug, Default)]
pub struct ConnectionFilter {
    pub source_slug: Option<String>,
    pub user: Option<i32>,
    /// Search terms (DRF's SearchFilter): every term is a substring of the username, the
    /// source slug or the identifier, ASCII letters folded to lower case (domain/search.rs).
    pub search: Vec<String>,
}

/// An audited write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: i32,
    pub created: DateTime<Utc>,
    pub actor: Option<i32>,
    pub action: String,
    pub connection: i32,
    pub source: Option<Uuid>,
    pub identifier: Option<String>,
    /// The connection's user when the event was written.
    pub owner: Option<i32>,
}

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// A committed change of a connection, as every instance learns of it: ids only (readers
/// load the row with their own visibility).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionChange {
    pub kind: ChangeKind,
    pub pk: i32,
    /// The owner, so a subscriber who may not see the row never loads it.
    pub user: i32,
}
