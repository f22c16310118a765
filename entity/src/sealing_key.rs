use sea_orm::entity::prelude::*;

/// A key that sealed values in this database, by id and fingerprint (a keyed hash: never the
/// key). `legacy`: it also opens the version 1 values, which carry no key id.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sealing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: String,
    pub fingerprint: String,
    pub legacy: bool,
    pub created: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
