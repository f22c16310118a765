//! Key custody: the keys that sealed the database's secrets are recorded by fingerprint (a
//! keyed hash, never the key), so a start with another key is refused instead of sealing new
//! rows with it; and each connection gets `row_key`, the random row identity its access
//! token's associated data binds (chosen before the INSERT, unlike the integer pk). Rows from
//! before keep a null `row_key` until `oauthlink rekey` re-seals their token.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SealingKeys {
    Table,
    KeyId,
    Fingerprint,
    Legacy,
    Created,
}

#[derive(DeriveIden)]
enum UserOauthSourceConnections {
    Table,
    RowKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SealingKeys::Table)
                    .col(
                        ColumnDef::new(SealingKeys::KeyId)
                            .string_len(16)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SealingKeys::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SealingKeys::Legacy)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(SealingKeys::Created)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UserOauthSourceConnections::Table)
                    .add_column(
                        ColumnDef::new(UserOauthSourceConnections::RowKey)
                            .uuid()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserOauthSourceConnections::Table)
                    .drop_column(UserOauthSourceConnections::RowKey)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(SealingKeys::Table).to_owned())
            .await
    }
}
