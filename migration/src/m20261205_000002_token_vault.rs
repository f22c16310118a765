//! The token vault: a connection may hold a sealed refresh token and be marked as needing the
//! user to link again (its refresh token was refused); a source says how its token endpoint
//! authenticates the client; audit events name the owner of the connection they are about
//! (a token read is one user reading another's token).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserOauthSourceConnections {
    Table,
    RefreshToken,
    RelinkRequiredAt,
}

#[derive(DeriveIden)]
enum Sources {
    Table,
    TokenAuthMethod,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    OwnerId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            (
                UserOauthSourceConnections::Table.into_iden(),
                ColumnDef::new(UserOauthSourceConnections::RefreshToken)
                    .blob()
                    .null()
                    .to_owned(),
            ),
            (
                UserOauthSourceConnections::Table.into_iden(),
                ColumnDef::new(UserOauthSourceConnections::RelinkRequiredAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ),
            (
                Sources::Table.into_iden(),
                ColumnDef::new(Sources::TokenAuthMethod)
                    .string_len(32)
                    .not_null()
                    .default("client_secret_basic")
                    .to_owned(),
            ),
            (
                AuditEvents::Table.into_iden(),
                ColumnDef::new(AuditEvents::OwnerId)
                    .integer()
                    .null()
                    .to_owned(),
            ),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let drops: [(DynIden, DynIden); 4] = [
            (
                UserOauthSourceConnections::Table.into_iden(),
                UserOauthSourceConnections::RefreshToken.into_iden(),
            ),
            (
                UserOauthSourceConnections::Table.into_iden(),
                UserOauthSourceConnections::RelinkRequiredAt.into_iden(),
            ),
            (
                Sources::Table.into_iden(),
                Sources::TokenAuthMethod.into_iden(),
            ),
            (
                AuditEvents::Table.into_iden(),
                AuditEvents::OwnerId.into_iden(),
            ),
        ];
        for (table, column) in drops {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
