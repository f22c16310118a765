use sea_orm::entity::prelude::*;

/// A user's link to an external identity at an OAuth source.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_oauth_source_connections")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub source_id: Uuid,
    pub identifier: String,
    /// Sealed with the service's secret key (AEAD); write-only through every API.
    pub access_token: Option<Vec<u8>>,
    pub expires: Option<DateTimeUtc>,
    pub created: DateTimeUtc,
    pub last_updated: DateTimeUtc,
    /// The row identity bound into the sealed access token (null on rows from before it).
    pub row_key: Option<Uuid>,
    /// Sealed like the access token (same row identity); write-only through every API.
    pub refresh_token: Option<Vec<u8>>,
    /// Set when the source refused the refresh token (`invalid_grant`): the user must link
    /// again. Cleared by a write of a new token.
    pub relink_required_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::source::Entity",
        from = "Column::SourceId",
        to = "super::source::Column::Uuid",
        on_delete = "Cascade"
    )]
    Source,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::source::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Source.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
