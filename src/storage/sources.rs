use std::collections::HashMap;

use chrono::Utc;
use entity::{source, source_group_property_mapping as sgpm, source_user_property_mapping as supm};
use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement, UnionType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::{Store, db_error};
use crate::domain::error::Error;
use crate::domain::model::{
    PolicyEngineMode, Source, SourceKind, TokenAuthMethod, UserMatchingMode,
};

pub struct NewSource {
    pub name: String,
    pub slug: String,
    pub enabled: bool,
    pub provider_type: String,
    pub authorization_url: Option<String>,
    pub access_token_url: Option<String>,
    pub profile_url: Option<String>,
    pub consumer_key: String,
    pub consumer_secret: Option<Vec<u8>>,
    pub policy_engine_mode: PolicyEngineMode,
    pub user_matching_mode: UserMatchingMode,
    pub user_path_template: String,
    pub icon: Option<String>,
}

/// What `oauthlink source update` changes; `None` keeps the stored value.
#[derive(Default)]
pub struct TokenEndpointChange {
    pub access_token_url: Option<String>,
    pub auth_method: Option<TokenAuthMethod>,
    pub consumer_key: Option<String>,
    /// Sealed for the source.
    pub consumer_secret: Option<Vec<u8>>,
}

impl Store {
    pub async fn create_source(&self, new: NewSource) -> Result<Uuid, Error> {
        self.create_source_with(Uuid::new_v4(), new).await
    }

    /// With its uuid chosen by the caller: a consumer secret is sealed bound to it.
    pub async fn create_source_with(&self, uuid: Uuid, new: NewSource) -> Result<Uuid, Error> {
        let model = source::ActiveModel {
            uuid: Set(uuid),
            name: Set(new.name),
            slug: Set(new.slug),
            enabled: Set(new.enabled),
            promoted: Set(false),
            authentication_flow_id: Set(None),
            enrollment_flow_id: Set(None),
            policy_engine_mode: Set(new.policy_engine_mode.as_str().to_owned()),
            user_matching_mode: Set(new.user_matching_mode.as_str().to_owned()),
            managed: Set(None),
            user_path_template: Set(new.user_path_template),
            icon: Set(new.icon),
            kind: Set(SourceKind::OAuth.as_str().to_owned()),
            provider_type: Set(new.provider_type),
            authorization_url: Set(new.authorization_url),
            access_token_url: Set(new.access_token_url),
            profile_url: Set(new.profile_url),
            consumer_key: Set(new.consumer_key),
            consumer_secret: Set(new.consumer_secret),
            created: Set(Utc::now()),
            token_auth_method: Set(TokenAuthMethod::default().as_str().to_owned()),
        };
        let (_gate, txn) = self.write_txn().await?;
        source::Entity::insert(model)
            .exec_without_returning(&txn)
            .await
            .map_err(db_error)?;
        super::commit(txn).await?;
        Ok(uuid)
    }

    /// Changes what the refresh grant uses (`None` keeps a value); `false` when there is no
    /// such source. The consumer secret arrives sealed for this source.
    pub async fn update_token_endpoint(
        &self,
        slug: &str,
        change: TokenEndpointChange,
    ) -> Result<bool, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let Some(row) = source::Entity::find()
            .filter(source::Column::Slug.eq(slug))
            .one(&txn)
            .await
            .map_err(db_error)?
        else {
            return Ok(false);
        };
        let mut model: source::ActiveModel = row.into();
        if let Some(url) = change.access_token_url {
            model.access_token_url = Set(Some(url));
        }
        if let Some(method) = change.auth_method {
            model.token_auth_method = Set(method.as_str().to_owned());
        }
        if let Some(key) = change.consumer_key {
            model.consumer_key = Set(key);
        }
        if let Some(secret) = change.consumer_secret {
            model.consumer_secret = Set(Some(secret));
        }
        sea_orm::ActiveModelTrait::update(model, &txn)
            .await
            .map_err(db_error)?;
        super::commit(txn).await?;
        Ok(true)
    }

    /// A source's uuid by slug.
    pub async fn source_uuid(&self, slug: &str) -> Result<Option<Uuid>, Error> {
        Ok(source::Entity::find()
            .filter(source::Column::Slug.eq(slug))
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(|s| s.uuid))
    }

    /// Loads sources with their property mappings: three statements however many.
    pub async fn sources_by_pk(&self, pks: &[Uuid]) -> Result<HashMap<Uuid, Source>, Error> {
        if pks.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = source::Entity::find()
            .filter(source::Column::Uuid.is_in(pks.iter().copied()))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        self.assemble(rows)
            .await
            .map(|list| list.into_iter().map(|s| (s.pk, s)).collect())
    }

    pub async fn source_by_pk(&self, pk: Uuid) -> Result<Option<Source>, Error> {
        Ok(self.sources_by_pk(&[pk]).await?.remove(&pk))
    }

    pub async fn source_by_slug(&self, slug: &str) -> Result<Option<Source>, Error> {
        let rows = source::Entity::find()
            .filter(source::Column::Slug.eq(slug))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(self.assemble(rows).await?.pop())
    }

    pub async fn list_sources(&self) -> Result<Vec<Source>, Error> {
        let rows = source::Entity::find()
            .order_by_asc(source::Column::Slug)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        self.assemble(rows).await
    }

    async fn assemble(&self, rows: Vec<source::Model>) -> Result<Vec<Source>, Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let pks: Vec<Uuid> = rows.iter().map(|r| r.uuid).collect();
        // Both link tables in one statement (a create reads its source: one round trip less).
        let union = links(
            supm::Entity,
            supm::Column::SourceId,
            supm::Column::PropertyMappingId,
            "0",
            &pks,
        )
        .union(
            UnionType::All,
            links(
                sgpm::Entity,
                sgpm::Column::SourceId,
                sgpm::Column::PropertyMappingId,
                "1",
                &pks,
            ),
        )
        .to_owned();
        let stmt = self.db.get_database_backend().build(&union);
        let mut user_maps: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut group_maps: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for link in MappingLink::find_by_statement(stmt)
            .all(&self.db)
            .await
            .map_err(db_error)?
        {
            let maps = if link.kind == 0 {
                &mut user_maps
            } else {
                &mut group_maps
            };
            maps.entry(link.source_id)
                .or_default()
                .push(link.property_mapping_id);
        }
        for list in user_maps.values_mut().chain(group_maps.values_mut()) {
            list.sort();
        }
        rows.into_iter()
            .map(|row| {
                let user_property_mappings = user_maps.remove(&row.uuid).unwrap_or_default();
                let group_property_mappings = group_maps.remove(&row.uuid).unwrap_or_default();
                to_source(row, user_property_mappings, group_property_mappings)
            })
            .collect()
    }
}

/// `kind`, source, mapping of the links in one link table.
fn links<E: EntityTrait, C: ColumnTrait>(
    entity: E,
    source_col: C,
    mapping_col: C,
    kind: &'static str,
    pks: &[Uuid],
) -> SelectStatement {
    Query::select()
        .expr_as(Expr::cust(kind), Alias::new("kind"))
        .column(source_col)
        .column(mapping_col)
        .from(entity)
        .and_where(source_col.is_in(pks.iter().copied()))
        .to_owned()
}

#[derive(FromQueryResult)]
struct MappingLink {
    kind: i32,
    source_id: Uuid,
    property_mapping_id: Uuid,
}

fn to_source(
    row: source::Model,
    user_property_mappings: Vec<Uuid>,
    group_property_mappings: Vec<Uuid>,
) -> Result<Source, Error> {
    let bad = |what: &str, value: &str| {
        Error::internal(format!(
            "source {}: stored {what} {value:?} is unknown",
            row.uuid
        ))
    };
    Ok(Source {
        pk: row.uuid,
        kind: SourceKind::parse(&row.kind).ok_or_else(|| bad("kind", &row.kind))?,
        policy_engine_mode: PolicyEngineMode::parse(&row.policy_engine_mode)
            .ok_or_else(|| bad("policy engine mode", &row.policy_engine_mode))?,
        user_matching_mode: UserMatchingMode::parse(&row.user_matching_mode)
            .ok_or_else(|| bad("user matching mode", &row.user_matching_mode))?,
        name: row.name,
        slug: row.slug,
        enabled: row.enabled,
        promoted: row.promoted,
        authentication_flow: row.authentication_flow_id,
        enrollment_flow: row.enrollment_flow_id,
        user_property_mappings,
        group_property_mappings,
        managed: row.managed,
        user_path_template: row.user_path_template,
        icon: row.icon,
    })
}
