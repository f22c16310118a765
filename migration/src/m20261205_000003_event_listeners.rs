//! Instances that have change subscribers right now (PostgreSQL). A write sends its change
//! notification only while some row here is unexpired: `NOTIFY` serialises the commits of
//! every notifying transaction on one lock, so sending it with nobody listening would cap
//! the database's write rate for nothing. Each listening instance renews its row; a
//! crashed one's row simply expires.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventListeners {
    Table,
    Instance,
    Expires,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventListeners::Table)
                    .col(
                        ColumnDef::new(EventListeners::Instance)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(EventListeners::Expires)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventListeners::Table).to_owned())
            .await
    }
}
