//! Identifiers longer than 255 characters: authentik 2025.4+ stores them in a text column, and
//! the current REST generation accepts up to 512 characters (domain/model.rs `IdentifierLimit`).
//! PostgreSQL enforced the old `varchar(255)`; `varchar` to `text` is binary-compatible, so
//! neither the table nor its indexes are rewritten. SQLite never enforces declared lengths.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UserOauthSourceConnections {
    Table,
    Identifier,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Identifier,
}

async fn set_type(manager: &SchemaManager<'_>, text: bool) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let column = |name: DynIden, null: bool| {
        let mut c = ColumnDef::new(name);
        if text {
            c.text();
        } else {
            c.string_len(255);
        }
        if null {
            c.null();
        } else {
            c.not_null();
        }
        c
    };
    manager
        .alter_table(
            Table::alter()
                .table(UserOauthSourceConnections::Table)
                .modify_column(column(
                    UserOauthSourceConnections::Identifier.into_iden(),
                    false,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .modify_column(column(AuditEvents::Identifier.into_iden(), true))
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, true).await
    }

    /// Fails while a longer identifier is stored, rather than cutting it.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, false).await
    }
}
