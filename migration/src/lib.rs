//! Schema migrations, the same meaning on SQLite and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod m20261130_000001_initial;
mod m20261201_000001_list_indexes;
mod m20261204_000001_identifier_text;
mod m20261204_000001_key_custody;
mod m20261205_000001_oidc_subjects;
mod m20261205_000002_token_vault;
mod m20261205_000003_event_listeners;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261130_000001_initial::Migration),
            Box::new(m20261201_000001_list_indexes::Migration),
            Box::new(m20261204_000001_identifier_text::Migration),
            Box::new(m20261204_000001_key_custody::Migration),
            Box::new(m20261205_000001_oidc_subjects::Migration),
            Box::new(m20261205_000002_token_vault::Migration),
            Box::new(m20261205_000003_event_listeners::Migration),
        ]
    }
}
