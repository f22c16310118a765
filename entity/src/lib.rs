//! SeaORM entities of oauthlink. Only the service's storage layer uses them.
pub mod api_token;
pub mod audit_event;
pub mod flow;
pub mod oidc_subject;
pub mod property_mapping;
pub mod sealing_key;
pub mod source;
pub mod source_group_property_mapping;
pub mod source_user_property_mapping;
pub mod user;
pub mod user_oauth_source_connection;
pub mod user_permission;

pub mod prelude {
    pub use super::api_token::Entity as ApiToken;
    pub use super::audit_event::Entity as AuditEvent;
    pub use super::flow::Entity as Flow;
    pub use super::oidc_subject::Entity as OidcSubject;
    pub use super::property_mapping::Entity as PropertyMapping;
    pub use super::sealing_key::Entity as SealingKey;
    pub use super::source::Entity as Source;
    pub use super::source_group_property_mapping::Entity as SourceGroupPropertyMapping;
    pub use super::source_user_property_mapping::Entity as SourceUserPropertyMapping;
    pub use super::user::Entity as User;
    pub use super::user_oauth_source_connection::Entity as UserOAuthSourceConnection;
    pub use super::user_permission::Entity as UserPermission;
}
