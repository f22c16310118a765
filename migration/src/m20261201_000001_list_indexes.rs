//! Indexes for the list orderings and the source filter that had none: keyset pages ordered by
//! last update or by user, and a source's rows in creation or pk order. Without them those
//! pages sorted the whole table (bench/, growth to 1,000,000 rows).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UserOauthSourceConnections {
    Table,
    Id,
    UserId,
    SourceId,
    Created,
    LastUpdated,
}

use UserOauthSourceConnections as C;

/// Name and columns of each index; `id` last, the keyset tie-breaker.
const INDEXES: [(&str, &[C]); 4] = [
    ("ix_connection_last_updated", &[C::LastUpdated, C::Id]),
    ("ix_connection_user", &[C::UserId, C::Id]),
    (
        "ix_connection_source_created",
        &[C::SourceId, C::Created, C::Id],
    ),
    ("ix_connection_source", &[C::SourceId, C::Id]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in INDEXES {
            let mut index = Index::create();
            index.name(name).table(C::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(C::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
