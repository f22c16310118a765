//! External identities: a user's subject at an OpenID Connect issuer. One subject per issuer
//! names at most one user, and a user has at most one subject per issuer; the first
//! constraint is also what makes auto-creation race-safe (two first requests, one user).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OidcSubjects {
    Table,
    Id,
    Issuer,
    Subject,
    UserId,
    Created,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OidcSubjects::Table)
                    .col(
                        ColumnDef::new(OidcSubjects::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(OidcSubjects::Issuer).text().not_null())
                    .col(ColumnDef::new(OidcSubjects::Subject).text().not_null())
                    .col(ColumnDef::new(OidcSubjects::UserId).integer().not_null())
                    .col(
                        ColumnDef::new(OidcSubjects::Created)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oidc_subject_user")
                            .from(OidcSubjects::Table, OidcSubjects::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_oidc_subject_issuer_subject")
                    .table(OidcSubjects::Table)
                    .col(OidcSubjects::Issuer)
                    .col(OidcSubjects::Subject)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_oidc_subject_user_issuer")
                    .table(OidcSubjects::Table)
                    .col(OidcSubjects::UserId)
                    .col(OidcSubjects::Issuer)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OidcSubjects::Table).to_owned())
            .await
    }
}
