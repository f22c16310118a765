//! Response bodies in the two generations of authentik's schema. The same types render the
//! responses and describe them in the OpenAPI document (rest/openapi.rs), so the two cannot
//! drift apart.
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::RestShape;
use crate::domain::model::{self, Connection, ConnectionWithSource, Source};

/// DRF's datetime rendering: microseconds, UTC, `Z`.
fn drf_datetime<S: Serializer>(d: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&d.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

fn drf_datetime_opt<S: Serializer>(d: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => drf_datetime(d, s),
        None => s.serialize_none(),
    }
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum PolicyEngineMode {
    All,
    Any,
}

impl From<model::PolicyEngineMode> for PolicyEngineMode {
    fn from(m: model::PolicyEngineMode) -> Self {
        match m {
            model::PolicyEngineMode::All => PolicyEngineMode::All,
            model::PolicyEngineMode::Any => PolicyEngineMode::Any,
        }
    }
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum UserMatchingModeEnum {
    Identifier,
    EmailLink,
    EmailDeny,
    UsernameLink,
    UsernameDeny,
}

impl From<model::UserMatchingMode> for UserMatchingModeEnum {
    fn from(m: model::UserMatchingMode) -> Self {
        use model::UserMatchingMode as M;
        match m {
            M::Identifier => UserMatchingModeEnum::Identifier,
            M::EmailLink => UserMatchingModeEnum::EmailLink,
            M::EmailDeny => UserMatchingModeEnum::EmailDeny,
            M::UsernameLink => UserMatchingModeEnum::UsernameLink,
            M::UsernameDeny => UserMatchingModeEnum::UsernameDeny,
        }
    }
}

// Source Serializer, as the documented (2024.x) clients read it.
#[derive(Serialize, ToSchema)]
#[schema(as = Source, description = "Source Serializer")]
pub struct SourceDocumented<'a> {
    #[schema(read_only)]
    pub pk: Uuid,
    pub name: &'a str,
    #[schema(pattern = "^[-a-zA-Z0-9_]+$", max_length = 50)]
    pub slug: &'a str,
    #[schema(required = false)]
    pub enabled: bool,
    #[schema(required = false, nullable)]
    pub authentication_flow: Option<Uuid>,
    #[schema(required = false, nullable)]
    pub enrollment_flow: Option<Uuid>,
    #[schema(required = false)]
    pub user_property_mappings: &'a [Uuid],
    #[schema(required = false)]
    pub group_property_mappings: &'a [Uuid],
    #[schema(read_only)]
    pub component: &'static str,
    #[schema(read_only)]
    pub verbose_name: &'static str,
    #[schema(read_only)]
    pub verbose_name_plural: &'static str,
    #[schema(read_only)]
    pub meta_model_name: &'static str,
    #[schema(required = false)]
    pub policy_engine_mode: PolicyEngineMode,
    #[schema(required = false)]
    pub user_matching_mode: UserMatchingModeEnum,
    #[schema(read_only, nullable, required = true)]
    pub managed: Option<&'a str>,
    #[schema(required = false)]
    pub user_path_template: &'a str,
    #[schema(read_only, nullable, required = true)]
    pub icon: Option<&'a str>,
}

impl<'a> From<&'a Source> for SourceDocumented<'a> {
    fn from(s: &'a Source) -> Self {
        SourceDocumented {
            pk: s.pk,
            name: &s.name,
            slug: &s.slug,
            enabled: s.enabled,
            authentication_flow: s.authentication_flow,
            enrollment_flow: s.enrollment_flow,
            user_property_mappings: &s.user_property_mappings,
            group_property_mappings: &s.group_property_mappings,
            component: s.kind.component(),
            verbose_name: s.kind.verbose_name(),
            verbose_name_plural: s.kind.verbose_name_plural(),
            meta_model_name: s.kind.meta_model_name(),
            policy_engine_mode: s.policy_engine_mode.into(),
            user_matching_mode: s.user_matching_mode.into(),
            managed: s.managed.as_deref(),
            user_path_template: &s.user_path_template,
            icon: s.icon.as_deref(),
        }
    }
}

/// Themed icon URLs; oauthlink keeps no themed icons, so the field is always null.
#[derive(Serialize, ToSchema)]
pub struct ThemedUrls {
    #[schema(nullable)]
    pub light: Option<String>,
    #[schema(nullable)]
    pub dark: Option<String>,
}

// Source Serializer, as current (2026.x) clients read it.
#[derive(Serialize, ToSchema)]
#[schema(as = Source, description = "Source Serializer")]
pub struct SourceCurrent<'a> {
    #[schema(read_only)]
    pub pk: Uuid,
    pub name: &'a str,
    #[schema(pattern = "^[-a-zA-Z0-9_]+$")]
    pub slug: &'a str,
    #[schema(required = false)]
    pub enabled: bool,
    #[schema(required = false)]
    pub promoted: bool,
    #[schema(required = false, nullable)]
    pub authentication_flow: Option<Uuid>,
    #[schema(required = false, nullable)]
    pub enrollment_flow: Option<Uuid>,
    #[schema(required = false)]
    pub user_property_mappings: &'a [Uuid],
    #[schema(required = false)]
    pub group_property_mappings: &'a [Uuid],
    #[schema(read_only)]
    pub component: &'static str,
    #[schema(read_only)]
    pub verbose_name: &'static str,
    #[schema(read_only)]
    pub verbose_name_plural: &'static str,
    #[schema(read_only)]
    pub meta_model_name: &'static str,
    #[schema(required = false)]
    pub policy_engine_mode: PolicyEngineMode,
    #[schema(required = false)]
    pub user_matching_mode: UserMatchingModeEnum,
    #[schema(read_only, nullable, required = true)]
    pub managed: Option<&'a str>,
    #[schema(required = false)]
    pub user_path_template: &'a str,
    // The current schema types `icon` as a non-null string: empty when unset.
    #[schema(required = false)]
    pub icon: &'a str,
    #[schema(read_only, nullable, required = true)]
    pub icon_url: Option<&'a str>,
    #[schema(read_only, nullable, required = true)]
    pub icon_themed_urls: Option<ThemedUrls>,
}

impl<'a> From<&'a Source> for SourceCurrent<'a> {
    fn from(s: &'a Source) -> Self {
        SourceCurrent {
            pk: s.pk,
            name: &s.name,
            slug: &s.slug,
            enabled: s.enabled,
            promoted: s.promoted,
            authentication_flow: s.authentication_flow,
            enrollment_flow: s.enrollment_flow,
            user_property_mappings: &s.user_property_mappings,
            group_property_mappings: &s.group_property_mappings,
            component: s.kind.component(),
            verbose_name: s.kind.verbose_name(),
            verbose_name_plural: s.kind.verbose_name_plural(),
            meta_model_name: s.kind.meta_model_name(),
            policy_engine_mode: s.policy_engine_mode.into(),
            user_matching_mode: s.user_matching_mode.into(),
            managed: s.managed.as_deref(),
            user_path_template: &s.user_path_template,
            icon: s.icon.as_deref().unwrap_or_default(),
            icon_url: s.icon.as_deref(),
            icon_themed_urls: None,
        }
    }
}

// The documented (2024.x) generation: the source nested under `source`.
#[derive(Serialize, ToSchema)]
#[schema(as = UserOAuthSourceConnection, description = "User source connection")]
pub struct ConnectionDocumented<'a> {
    #[schema(read_only)]
    pub pk: i32,
    #[schema(read_only)]
    pub user: i32,
    #[schema(read_only)]
    pub source: SourceDocumented<'a>,
    #[serde(serialize_with = "drf_datetime")]
    #[schema(read_only, value_type = String, format = DateTime)]
    pub created: DateTime<Utc>,
    #[schema(max_length = 255)]
    pub identifier: &'a str,
    /// oauthlink: present (true) only when the source refused the stored refresh token and
    /// the user must link again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(read_only, required = false)]
    pub needs_relink: bool,
}

// The current (2026.x) generation: `source` is the uuid, the object under `source_obj`.
#[derive(Serialize, ToSchema)]
#[schema(as = UserOAuthSourceConnection, description = "User source connection")]
pub struct ConnectionCurrent<'a> {
    #[schema(read_only)]
    pub pk: i32,
    #[schema(read_only)]
    pub user: i32,
    pub source: Uuid,
    #[schema(read_only)]
    pub source_obj: SourceCurrent<'a>,
    pub identifier: &'a str,
    #[serde(serialize_with = "drf_datetime")]
    #[schema(read_only, value_type = String, format = DateTime)]
    pub created: DateTime<Utc>,
    #[serde(serialize_with = "drf_datetime")]
    #[schema(read_only, value_type = String, format = DateTime)]
    pub last_updated: DateTime<Utc>,
    // Not nullable in the schema: left out when unset.
    #[serde(
        serialize_with = "drf_datetime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(required = false, value_type = String, format = DateTime)]
    pub expires: Option<DateTime<Utc>>,
    /// oauthlink: present (true) only when the source refused the stored refresh token and
    /// the user must link again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(read_only, required = false)]
    pub needs_relink: bool,
}

/// A connection in the configured generation.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ConnectionBody<'a> {
    Documented(ConnectionDocumented<'a>),
    Current(ConnectionCurrent<'a>),
}

pub fn documented<'a>(c: &'a Connection, s: &'a Source) -> ConnectionDocumented<'a> {
    ConnectionDocumented {
        pk: c.pk,
        user: c.user,
        source: s.into(),
        created: c.created,
        identifier: &c.identifier,
        needs_relink: c.needs_relink,
    }
}

pub fn current<'a>(c: &'a Connection, s: &'a Source) -> ConnectionCurrent<'a> {
    ConnectionCurrent {
        pk: c.pk,
        user: c.user,
        source: c.source,
        source_obj: s.into(),
        identifier: &c.identifier,
        created: c.created,
        last_updated: c.last_updated,
        expires: c.expires,
        needs_relink: c.needs_relink,
    }
}

pub fn with_source(c: &ConnectionWithSource, shape: RestShape) -> ConnectionBody<'_> {
    match shape {
        RestShape::Documented => ConnectionBody::Documented(documented(&c.connection, &c.source)),
        RestShape::Current => ConnectionBody::Current(current(&c.connection, &c.source)),
    }
}

/// authentik's pagination block. The schema types its members as `number`.
#[derive(Serialize, ToSchema)]
pub struct Pagination {
    #[schema(value_type = f64)]
    pub next: u64,
    #[schema(value_type = f64)]
    pub previous: u64,
    #[schema(value_type = f64)]
    pub count: u64,
    #[schema(value_type = f64)]
    pub current: u64,
    #[schema(value_type = f64)]
    pub total_pages: u64,
    #[schema(value_type = f64)]
    pub start_index: u64,
    #[schema(value_type = f64)]
    pub end_index: u64,
}

/// Always empty: the `autocomplete` of current clients' list body.
#[derive(Serialize, Default)]
pub struct Autocomplete {}

#[derive(Serialize, ToSchema)]
#[schema(as = PaginatedUserOAuthSourceConnectionList)]
pub struct PageDocumented<'a> {
    pub pagination: Pagination,
    pub results: Vec<ConnectionDocumented<'a>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PaginatedUserOAuthSourceConnectionList)]
pub struct PageCurrent<'a> {
    pub pagination: Pagination,
    pub results: Vec<ConnectionCurrent<'a>>,
    #[schema(value_type = Object)]
    pub autocomplete: Autocomplete,
}
