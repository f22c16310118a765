use sea_orm::entity::prelude::*;

/// A login source. `kind` decides the read-only values the APIs derive (component, verbose names).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: Uuid,
    #[sea_orm(unique)]
    pub name: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub enabled: bool,
    pub promoted: bool,
    pub authentication_flow_id: Option<Uuid>,
    pub enrollment_flow_id: Option<Uuid>,
    pub policy_engine_mode: String,
    pub user_matching_mode: String,
    #[sea_orm(unique)]
    pub managed: Option<String>,
    pub user_path_template: String,
    pub icon: Option<String>,
    pub kind: String,
    pub provider_type: String,
    pub authorization_url: Option<String>,
    pub access_token_url: Option<String>,
    pub profile_url: Option<String>,
    pub consumer_key: String,
    /// Sealed with the service's secret key (AEAD), never returned.
    pub consumer_secret: Option<Vec<u8>>,
    pub created: DateTimeUtc,
    /// How the refresh grant authenticates at `access_token_url`: `client_secret_basic`
    /// or `client_secret_post`.
    pub token_auth_method: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::user_oauth_source_connection::Entity")]
    UserOAuthSourceConnection,
}

impl Related<super::user_oauth_source_connection::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserOAuthSourceConnection.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
