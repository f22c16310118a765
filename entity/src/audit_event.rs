use sea_orm::entity::prelude::*;

/// One audited write. Never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub created: DateTimeUtc,
    pub actor_id: Option<i32>,
    pub action: String,
    pub connection_id: i32,
    pub source_id: Option<Uuid>,
    pub identifier: Option<String>,
    /// The connection's user (whose token a `read_token` event is about).
    pub owner_id: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
