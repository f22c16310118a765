use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Uuid,
    Username,
    Name,
    Email,
    IsActive,
    IsSuperuser,
    DateJoined,
    Path,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Identifier,
    UserId,
    KeyHash,
    Intent,
    Expires,
    Description,
    Created,
}

#[derive(DeriveIden)]
enum UserPermissions {
    Table,
    UserId,
    Codename,
}

#[derive(DeriveIden)]
enum Flows {
    Table,
    Uuid,
    Slug,
    Name,
    Designation,
}

#[derive(DeriveIden)]
enum PropertyMappings {
    Table,
    Uuid,
    Name,
    Expression,
}

#[derive(DeriveIden, Clone)]
enum SourceUserPropertyMappings {
    Table,
}

#[derive(DeriveIden, Clone)]
enum SourceGroupPropertyMappings {
    Table,
}

#[derive(DeriveIden)]
enum LinkColumn {
    SourceId,
    PropertyMappingId,
}

#[derive(DeriveIden)]
enum Sources {
    Table,
    Uuid,
    Name,
    Slug,
    Enabled,
    Promoted,
    AuthenticationFlowId,
    EnrollmentFlowId,
    PolicyEngineMode,
    UserMatchingMode,
    Managed,
    UserPathTemplate,
    Icon,
    Kind,
    ProviderType,
    AuthorizationUrl,
    AccessTokenUrl,
    ProfileUrl,
    ConsumerKey,
    ConsumerSecret,
    Created,
}

#[derive(DeriveIden)]
enum UserOauthSourceConnections {
    Table,
    Id,
    UserId,
    SourceId,
    Identifier,
    AccessToken,
    Expires,
    Created,
    LastUpdated,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Created,
    ActorId,
    Action,
    ConnectionId,
    SourceId,
    Identifier,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .to_owned()
}

fn property_mapping_link(table: impl IntoIden + Clone, prefix: &str) -> TableCreateStatement {
    Table::create()
        .table(table.clone())
        .col(ColumnDef::new(LinkColumn::SourceId).uuid().not_null())
        .col(
            ColumnDef::new(LinkColumn::PropertyMappingId)
                .uuid()
                .not_null(),
        )
        .primary_key(
            Index::create()
                .col(LinkColumn::SourceId)
                .col(LinkColumn::PropertyMappingId),
        )
        .foreign_key(&mut fk(
            &format!("fk_{prefix}_source"),
            (table.clone(), LinkColumn::SourceId),
            (Sources::Table, Sources::Uuid),
            ForeignKeyAction::Cascade,
        ))
        .foreign_key(&mut fk(
            &format!("fk_{prefix}_mapping"),
            (table, LinkColumn::PropertyMappingId),
            (PropertyMappings::Table, PropertyMappings::Uuid),
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(
                        ColumnDef::new(Users::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Users::Uuid).uuid().not_null().unique_key())
                    .col(
                        ColumnDef::new(Users::Username)
                            .string_len(150)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Users::Name).text().not_null().default(""))
                    .col(
                        ColumnDef::new(Users::Email)
                            .string_len(254)
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(Users::IsActive)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(
                        ColumnDef::new(Users::IsSuperuser)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Users::DateJoined)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Users::Path)
                            .text()
                            .not_null()
                            .default("users"),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(
                        ColumnDef::new(ApiTokens::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::Identifier)
                            .string_len(255)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(ApiTokens::UserId).integer().not_null())
                    .col(
                        ColumnDef::new(ApiTokens::KeyHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(ApiTokens::Intent).string_len(32).not_null())
                    .col(
                        ColumnDef::new(ApiTokens::Expires)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::Description)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::Created)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_api_token_user",
                        (ApiTokens::Table, ApiTokens::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserPermissions::Table)
                    .col(ColumnDef::new(UserPermissions::UserId).integer().not_null())
                    .col(
                        ColumnDef::new(UserPermissions::Codename)
                            .string_len(100)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(UserPermissions::UserId)
                            .col(UserPermissions::Codename),
                    )
                    .foreign_key(&mut fk(
                        "fk_user_permission_user",
                        (UserPermissions::Table, UserPermissions::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Flows::Table)
                    .col(ColumnDef::new(Flows::Uuid).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Flows::Slug)
                            .string_len(50)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Flows::Name).text().not_null())
                    .col(
                        ColumnDef::new(Flows::Designation)
                            .string_len(100)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PropertyMappings::Table)
                    .col(
                        ColumnDef::new(PropertyMappings::Uuid)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PropertyMappings::Name)
                            .text()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(PropertyMappings::Expression)
                            .text()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sources::Table)
                    .col(
                        ColumnDef::new(Sources::Uuid)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Sources::Name).text().not_null().unique_key())
                    .col(
                        ColumnDef::new(Sources::Slug)
                            .string_len(50)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Sources::Enabled)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(
                        ColumnDef::new(Sources::Promoted)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Sources::AuthenticationFlowId).uuid().null())
                    .col(ColumnDef::new(Sources::EnrollmentFlowId).uuid().null())
                    .col(
                        ColumnDef::new(Sources::PolicyEngineMode)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Sources::UserMatchingMode)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Sources::Managed).text().null().unique_key())
                    .col(ColumnDef::new(Sources::UserPathTemplate).text().not_null())
                    .col(ColumnDef::new(Sources::Icon).text().null())
                    .col(ColumnDef::new(Sources::Kind).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Sources::ProviderType)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Sources::AuthorizationUrl).text().null())
                    .col(ColumnDef::new(Sources::AccessTokenUrl).text().null())
                    .col(ColumnDef::new(Sources::ProfileUrl).text().null())
                    .col(
                        ColumnDef::new(Sources::ConsumerKey)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(Sources::ConsumerSecret).blob().null())
                    .col(
                        ColumnDef::new(Sources::Created)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_source_authentication_flow",
                        (Sources::Table, Sources::AuthenticationFlowId),
                        (Flows::Table, Flows::Uuid),
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut fk(
                        "fk_source_enrollment_flow",
                        (Sources::Table, Sources::EnrollmentFlowId),
                        (Flows::Table, Flows::Uuid),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(property_mapping_link(
                SourceUserPropertyMappings::Table,
                "supm",
            ))
            .await?;
        manager
            .create_table(property_mapping_link(
                SourceGroupPropertyMappings::Table,
                "sgpm",
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserOauthSourceConnections::Table)
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::UserId)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::SourceId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::Identifier)
                            .string_len(255)
                            .not_null()
                            // The service rejects blanks first; the database is the last word.
                            .check(Expr::cust("length(trim(identifier)) > 0")),
                    )
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::AccessToken)
                            .blob()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::Expires)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::Created)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UserOauthSourceConnections::LastUpdated)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_connection_user",
                        (
                            UserOauthSourceConnections::Table,
                            UserOauthSourceConnections::UserId,
                        ),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_connection_source",
                        (
                            UserOauthSourceConnections::Table,
                            UserOauthSourceConnections::SourceId,
                        ),
                        (Sources::Table, Sources::Uuid),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        // Constraint names are mapped to field errors by the storage layer.
        manager
            .create_index(
                Index::create()
                    .name("uq_connection_user_source")
                    .table(UserOauthSourceConnections::Table)
                    .col(UserOauthSourceConnections::UserId)
                    .col(UserOauthSourceConnections::SourceId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_connection_source_identifier")
                    .table(UserOauthSourceConnections::Table)
                    .col(UserOauthSourceConnections::SourceId)
                    .col(UserOauthSourceConnections::Identifier)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Keyset pages ordered by creation time or identifier, with pk as the tie-breaker.
        manager
            .create_index(
                Index::create()
                    .name("ix_connection_created")
                    .table(UserOauthSourceConnections::Table)
                    .col(UserOauthSourceConnections::Created)
                    .col(UserOauthSourceConnections::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_connection_identifier")
                    .table(UserOauthSourceConnections::Table)
                    .col(UserOauthSourceConnections::Identifier)
                    .col(UserOauthSourceConnections::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::Created)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::ActorId).integer().null())
                    .col(
                        ColumnDef::new(AuditEvents::Action)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::ConnectionId)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::SourceId).uuid().null())
                    .col(
                        ColumnDef::new(AuditEvents::Identifier)
                            .string_len(255)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            UserOauthSourceConnections::Table.into_iden(),
            SourceGroupPropertyMappings::Table.into_iden(),
            SourceUserPropertyMappings::Table.into_iden(),
            Sources::Table.into_iden(),
            PropertyMappings::Table.into_iden(),
            Flows::Table.into_iden(),
            UserPermissions::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
