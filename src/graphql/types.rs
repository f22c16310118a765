//! GraphQL object, input and enum types. Names are pinned where async-graphql's renaming
//! would spell "OAuth" as "Oauth".
use async_graphql::{
    ComplexObject, Enum, ID, InputObject, Interface, MaybeUndefined, SimpleObject,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::model::{self, ConnectionWithSource, SortKey};
use crate::domain::permission::Principal;

use super::node::GlobalId;

/// Relay's Global Object Identification: every object with a stable identity, refetchable
/// through `node(id:)`.
#[derive(Interface, Clone, Debug)]
#[graphql(field(name = "id", ty = "&ID", desc = "Opaque, stable, type-tagged id."))]
pub enum Node {
    UserOAuthSourceConnection(UserOAuthSourceConnection),
    Source(Source),
    User(Me),
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(rename_items = "lowercase")]
pub enum PolicyEngineMode {
    All,
    Any,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum UserMatchingMode {
    Identifier,
    EmailLink,
    EmailDeny,
    UsernameLink,
    UsernameDeny,
}

/// A login source, with the read-only values derived from its kind.
#[derive(SimpleObject, Clone, Debug)]
pub struct Source {
    /// Global id (`node(id:)`).
    pub id: ID,
    pub pk: Uuid,
    /// Display name.
    pub name: String,
    /// Internal name, used in URLs.
    pub slug: String,
    pub enabled: bool,
    /// Flow used to authenticate existing users.
    pub authentication_flow: Option<Uuid>,
    /// Flow used to enroll new users.
    pub enrollment_flow: Option<Uuid>,
    pub user_property_mappings: Vec<Uuid>,
    pub group_property_mappings: Vec<Uuid>,
    pub component: String,
    pub verbose_name: String,
    pub verbose_name_plural: String,
    pub meta_model_name: String,
    pub policy_engine_mode: PolicyEngineMode,
    /// How the source decides whether an existing user is authenticated or a new one enrolled.
    pub user_matching_mode: UserMatchingMode,
    /// Set on objects managed by the system.
    pub managed: Option<String>,
    pub user_path_template: String,
    pub icon: Option<String>,
}

impl From<model::Source> for Source {
    fn from(s: model::Source) -> Self {
        Source {
            id: GlobalId::Source(s.pk).into(),
            pk: s.pk,
            component: s.kind.component().to_owned(),
            verbose_name: s.kind.verbose_name().to_owned(),
            verbose_name_plural: s.kind.verbose_name_plural().to_owned(),
            meta_model_name: s.kind.meta_model_name().to_owned(),
            policy_engine_mode: match s.policy_engine_mode {
                model::PolicyEngineMode::All => PolicyEngineMode::All,
                model::PolicyEngineMode::Any => PolicyEngineMode::Any,
            },
            user_matching_mode: match s.user_matching_mode {
                model::UserMatchingMode::Identifier => UserMatchingMode::Identifier,
                model::UserMatchingMode::EmailLink => UserMatchingMode::EmailLink,
                model::UserMatchingMode::EmailDeny => UserMatchingMode::EmailDeny,
                model::UserMatchingMode::UsernameLink => UserMatchingMode::UsernameLink,
                model::UserMatchingMode::UsernameDeny => UserMatchingMode::UsernameDeny,
            },
            name: s.name,
            slug: s.slug,
            enabled: s.enabled,
            authentication_flow: s.authentication_flow,
            enrollment_flow: s.enrollment_flow,
            user_property_mappings: s.user_property_mappings,
            group_property_mappings: s.group_property_mappings,
            managed: s.managed,
            user_path_template: s.user_path_template,
            icon: s.icon,
        }
    }
}

/// A user's link to an external identity at a source. The access token is write-only and
/// has no field here.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "UserOAuthSourceConnection")]
pub struct UserOAuthSourceConnection {
    /// Global id (`node(id:)`).
    pub id: ID,
    pub pk: i32,
    /// The linked user's pk.
    pub user: i32,
    pub source: Source,
    /// The user's identifier at the source (e.g. the OpenID `sub`).
    pub identifier: String,
    pub created: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    /// When the stored access token expires.
    pub expires: Option<DateTime<Utc>>,
    /// The source refused the stored refresh token: the user must link the account again
    /// (a new token written by an update clears it).
    pub needs_relink: bool,
}

impl From<ConnectionWithSource> for UserOAuthSourceConnection {
    fn from(c: ConnectionWithSource) -> Self {
        let ConnectionWithSource { connection, source } = c;
        UserOAuthSourceConnection {
            id: GlobalId::Connection(connection.pk).into(),
            pk: connection.pk,
            user: connection.user,
            source: source.into(),
            identifier: connection.identifier,
            created: connection.created,
            last_updated: connection.last_updated,
            expires: connection.expires,
            needs_relink: connection.needs_relink,
        }
    }
}

#[derive(InputObject, Debug)]
#[graphql(name = "CreateUserOAuthConnectionInput")]
pub struct CreateUserOAuthConnectionInput {
    /// The source's pk.
    pub source: Uuid,
    /// The user to link; default: the caller. Another user needs a superuser.
    pub user: MaybeUndefined<i32>,
    /// The user's identifier at the source.
    pub identifier: String,
    /// Stored encrypted; write-only: never returned.
    #[graphql(secret)]
    pub access_token: MaybeUndefined<String>,
    /// Stored encrypted; write-only: never returned. Used to refresh the access token at the
    /// source's token endpoint.
    #[graphql(secret)]
    pub refresh_token: MaybeUndefined<String>,
    /// When the access token expires (the vault refreshes it from then, less the margin).
    pub expires: MaybeUndefined<DateTime<Utc>>,
}

/// Absent fields keep their value; `null` clears `accessToken`, `refreshToken` and
/// `expires`. A new token clears `needsRelink`.
#[derive(InputObject, Debug)]
#[graphql(name = "UpdateUserOAuthSourceConnectionInput")]
pub struct UpdateUserOAuthSourceConnectionInput {
    pub identifier: MaybeUndefined<String>,
    #[graphql(secret)]
    pub access_token: MaybeUndefined<String>,
    #[graphql(secret)]
    pub refresh_token: MaybeUndefined<String>,
    pub expires: MaybeUndefined<DateTime<Utc>>,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(name = "UserOAuthSourceConnectionOrderField")]
pub enum OrderField {
    #[default]
    Pk,
    Created,
    LastUpdated,
    Identifier,
    User,
}

impl From<OrderField> for SortKey {
    fn from(f: OrderField) -> Self {
        match f {
            OrderField::Pk => SortKey::Pk,
            OrderField::Created => SortKey::Created,
            OrderField::LastUpdated => SortKey::LastUpdated,
            OrderField::Identifier => SortKey::Identifier,
            OrderField::User => SortKey::User,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

#[derive(InputObject, Debug, Clone, Copy, Default)]
#[graphql(name = "UserOAuthSourceConnectionOrder")]
pub struct Order {
    #[graphql(default)]
    pub field: OrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "UserOAuthSourceConnectionEdge")]
pub struct Edge {
    pub cursor: String,
    pub node: UserOAuthSourceConnection,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// The caller (a `User` node: `node(id:)` finds only the caller's own).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Me {
    /// Global id (`User:<pk>`).
    pub id: ID,
    pub pk: i32,
    pub username: String,
    pub is_superuser: bool,
    #[graphql(skip)]
    pub principal: Principal,
}

#[ComplexObject]
impl Me {
    /// Permission codenames held (superusers hold all).
    async fn permissions(&self) -> Vec<String> {
        crate::domain::permission::Permission::ALL
            .iter()
            .filter(|p| self.principal.has(**p))
            .map(|p| p.codename().to_owned())
            .collect()
    }
}

/// One audited write. Never holds a secret.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "AuditEvent")]
pub struct AuditEvent {
    pub id: i32,
    pub created: DateTime<Utc>,
    /// The acting user's pk.
    pub actor: Option<i32>,
    /// `create`, `update`, `delete`, `read_token` (a token was handed out),
    /// `refresh_token` (refreshed at the source) or `relink_required` (the source refused
    /// the refresh token).
    pub action: String,
    pub connection: i32,
    pub source: Option<Uuid>,
    pub identifier: Option<String>,
    /// The connection's user (whose token a `read_token` is).
    pub owner: Option<i32>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "AuditEventPage")]
pub struct AuditEventPage {
    pub total_count: u64,
    pub events: Vec<AuditEvent>,
}

impl Me {
    pub fn of(principal: Principal) -> Self {
        Me {
            id: GlobalId::User(principal.user_id).into(),
            pk: principal.user_id,
            username: principal.username.clone(),
            is_superuser: principal.is_superuser,
            principal,
        }
    }
}

/// What `removeUserOAuthSourceConnection` answers: the deleted object's ids, for a Relay
/// store (`@deleteRecord` on `deletedId`) or Apollo's cache (`cache.evict`).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "RemoveUserOAuthSourceConnectionPayload")]
pub struct RemovePayload {
    pub deleted_id: ID,
    pub pk: i32,
}
