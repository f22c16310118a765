//! Key custody in the database: the record of the keys that sealed values here (by
//! fingerprint), the questions the start check asks (which keys do the sealed values need?),
//! and the batched compare-and-swap writes of `oauthlink rekey`.
use chrono::Utc;
use entity::{sealing_key, source, user_oauth_source_connection as conn};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{Store, db_error};
use crate::crypto::{KEY_ID_LEN, KEY_ID_SQL_OFFSET};
use crate::domain::error::Error;

/// The two sealed token columns of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenColumn {
    Access,
    Refresh,
}

impl TokenColumn {
    fn column(self) -> conn::Column {
        match self {
            TokenColumn::Access => conn::Column::AccessToken,
            TokenColumn::Refresh => conn::Column::RefreshToken,
        }
    }

    fn value(self, m: &conn::Model) -> Option<&Vec<u8>> {
        match self {
            TokenColumn::Access => m.access_token.as_ref(),
            TokenColumn::Refresh => m.refresh_token.as_ref(),
        }
    }
}

/// A connection's sealed access token with the row identity it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedToken {
    pub pk: i32,
    pub user: i32,
    pub row_key: Option<Uuid>,
    pub sealed: Vec<u8>,
}

impl SealedToken {
    pub(super) fn from_row(m: conn::Model) -> Option<Self> {
        Self::from_column(TokenColumn::Access, m)
    }

    fn from_column(column: TokenColumn, m: conn::Model) -> Option<Self> {
        Some(SealedToken {
            pk: m.id,
            user: m.user_id,
            row_key: m.row_key,
            sealed: column.value(&m)?.clone(),
        })
    }
}

/// A source's sealed consumer secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSecret {
    pub source: Uuid,
    pub sealed: Vec<u8>,
}

/// A key recorded as having sealed values in this database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedKey {
    pub key_id: String,
    pub fingerprint: String,
    /// It also opens the version 1 values (which carry no key id).
    pub legacy: bool,
}

/// A re-sealed access token, written only if the row still holds `old`.
pub struct TokenReseal {
    pub pk: i32,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    pub row_key: Uuid,
}

/// A re-sealed consumer secret, written only if the source still holds `old`.
pub struct SecretReseal {
    pub source: Uuid,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// `column` holds a value whose first bytes are `prefix` (the version byte, and the key id).
fn sealed_prefix(column: Expr, prefix: &[u8]) -> Condition {
    let version = Func::cust("substr").args([column.clone(), Expr::val(1), Expr::val(1)]);
    let mut cond = Condition::all().add(Expr::expr(version).eq(prefix[..1].to_vec()));
    if prefix.len() > 1 {
        let id = Func::cust("substr").args([
            column,
            Expr::val(KEY_ID_SQL_OFFSET as i32),
            Expr::val(KEY_ID_LEN as i32),
        ]);
        cond = cond.add(Expr::expr(id).eq(prefix[1..].to_vec()));
    }
    cond
}

/// Values of a key id (version 2), or also every version 1 value when `legacy`.
fn sealed_with(column: Expr, key_id: &[u8], legacy: bool) -> Condition {
    let mut v2 = vec![2u8];
    v2.extend_from_slice(key_id);
    let mut cond = Condition::any().add(sealed_prefix(column.clone(), &v2));
    if legacy {
        cond = cond.add(sealed_prefix(column, &[1]));
    }
    cond
}

impl Store {
    pub async fn recorded_keys(&self) -> Result<Vec<RecordedKey>, Error> {
        Ok(sealing_key::Entity::find()
            .order_by_asc(sealing_key::Column::Created)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|m| RecordedKey {
                key_id: m.key_id,
                fingerprint: m.fingerprint,
                legacy: m.legacy,
            })
            .collect())
    }

    /// Records a key (idempotent; instances starting together may both record it).
    pub async fn record_key(&self, key: &RecordedKey) -> Result<(), Error> {
        let (_gate, txn) = self.write_txn().await?;
        sealing_key::Entity::insert(sealing_key::ActiveModel {
            key_id: Set(key.key_id.clone()),
            fingerprint: Set(key.fingerprint.clone()),
            legacy: Set(key.legacy),
            created: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(sealing_key::Column::KeyId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db_error)?;
        if key.legacy {
            sealing_key::Entity::update_many()
                .col_expr(sealing_key::Column::Legacy, Expr::value(true))
                .filter(sealing_key::Column::KeyId.eq(key.key_id.as_str()))
                .exec(&txn)
                .await
                .map_err(db_error)?;
        }
        txn.commit().await.map_err(db_error)
    }

    /// Drops the record of a key that no value needs any more.
    pub async fn forget_key(&self, key_id: &str) -> Result<(), Error> {
        let (_gate, txn) = self.write_txn().await?;
        sealing_key::Entity::delete_by_id(key_id.to_owned())
            .exec(&txn)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)
    }

    /// How many stored values are sealed with this key id (and, when `legacy`, how many are
    /// version 1 values). A scan: asked only when a recorded key is not configured.
    pub async fn count_sealed_with(&self, key_id: &[u8], legacy: bool) -> Result<u64, Error> {
        let tokens = conn::Entity::find()
            .filter(conn::Column::AccessToken.is_not_null())
            .filter(sealed_with(
                Expr::col((conn::Entity, conn::Column::AccessToken)),
                key_id,
                legacy,
            ))
            .count(&self.db)
            .await
            .map_err(db_error)?;
        let refresh = conn::Entity::find()
            .filter(conn::Column::RefreshToken.is_not_null())
            .filter(sealed_with(
                Expr::col((conn::Entity, conn::Column::RefreshToken)),
                key_id,
                legacy,
            ))
            .count(&self.db)
            .await
            .map_err(db_error)?;
        let secrets = source::Entity::find()
            .filter(source::Column::ConsumerSecret.is_not_null())
            .filter(sealed_with(
                Expr::col((source::Entity, source::Column::ConsumerSecret)),
                key_id,
                legacy,
            ))
            .count(&self.db)
            .await
            .map_err(db_error)?;
        Ok(tokens + refresh + secrets)
    }

    /// Whether anything sealed is stored (a scan when nothing is: asked only when a key file
    /// is missing).
    pub async fn any_sealed(&self) -> Result<bool, Error> {
        let token = conn::Entity::find()
            .filter(
                Condition::any()
                    .add(conn::Column::AccessToken.is_not_null())
                    .add(conn::Column::RefreshToken.is_not_null()),
            )
            .one(&self.db)
            .await
            .map_err(db_error)?;
        let secret = source::Entity::find()
            .filter(source::Column::ConsumerSecret.is_not_null())
            .one(&self.db)
            .await
            .map_err(db_error)?;
        Ok(token.is_some() || secret.is_some())
    }

    /// The oldest and newest sealed value of each column, looked for among the first and last
    /// `SAMPLE_WINDOW` connections by pk so that a start never scans a large table (four
    /// statements on the primary keys): what the start check opens when no key is recorded
    /// yet, and whose key ids it checks otherwise.
    pub async fn sample_sealed(&self) -> Result<(Vec<SealedToken>, Vec<SealedSecret>), Error> {
        const SAMPLE_WINDOW: i32 = 1000;
        let mut tokens = Vec::new();
        for newest in [false, true] {
            let q = conn::Entity::find().filter(conn::Column::AccessToken.is_not_null());
            let q = if newest {
                q.filter(Expr::col(conn::Column::Id).gt(Expr::cust(format!(
                    "(SELECT max(id) FROM user_oauth_source_connections) - {SAMPLE_WINDOW}"
                ))))
                .order_by_desc(conn::Column::Id)
            } else {
                q.filter(Expr::col(conn::Column::Id).lt(Expr::cust(format!(
                    "(SELECT min(id) FROM user_oauth_source_connections) + {SAMPLE_WINDOW}"
                ))))
                .order_by_asc(conn::Column::Id)
            };
            if let Some(t) = q
                .one(&self.db)
                .await
                .map_err(db_error)?
                .and_then(SealedToken::from_row)
                && !tokens.contains(&t)
            {
                tokens.push(t);
            }
        }
        let mut secrets = Vec::new();
        for newest in [false, true] {
            let q = source::Entity::find().filter(source::Column::ConsumerSecret.is_not_null());
            let q = if newest {
                q.order_by_desc(source::Column::Uuid)
            } else {
                q.order_by_asc(source::Column::Uuid)
            };
            if let Some(s) = q.one(&self.db).await.map_err(db_error)?
                && let Some(sealed) = s.consumer_secret
            {
                let s = SealedSecret {
                    source: s.uuid,
                    sealed,
                };
                if !secrets.contains(&s) {
                    secrets.push(s);
                }
            }
        }
        Ok((tokens, secrets))
    }

    /// The highest connection pk now (0 when there is none).
    pub async fn last_connection_pk(&self) -> Result<i32, Error> {
        Ok(conn::Entity::find()
            .order_by_desc(conn::Column::Id)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map_or(0, |m| m.id))
    }

    /// Sealed access tokens of connections with a pk in `after + 1 ..= upto`, by pk.
    pub async fn tokens_after(
        &self,
        column: TokenColumn,
        after: i32,
        upto: i32,
        limit: u64,
    ) -> Result<Vec<SealedToken>, Error> {
        Ok(conn::Entity::find()
            .filter(conn::Column::Id.gt(after))
            .filter(conn::Column::Id.lte(upto))
            .filter(column.column().is_not_null())
            .order_by_asc(conn::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .filter_map(|m| SealedToken::from_column(column, m))
            .collect())
    }

    pub async fn tokens_by_pk(
        &self,
        column: TokenColumn,
        pks: &[i32],
    ) -> Result<Vec<SealedToken>, Error> {
        Ok(conn::Entity::find()
            .filter(conn::Column::Id.is_in(pks.iter().copied()))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .filter_map(|m| SealedToken::from_column(column, m))
            .collect())
    }

    /// Sealed consumer secrets of sources with a uuid above `after`, by uuid.
    pub async fn secrets_after(
        &self,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<SealedSecret>, Error> {
        let mut q = source::Entity::find().filter(source::Column::ConsumerSecret.is_not_null());
        if let Some(after) = after {
            q = q.filter(source::Column::Uuid.gt(after));
        }
        self.secrets(q.order_by_asc(source::Column::Uuid).limit(limit))
            .await
    }

    pub async fn secrets_by_pk(&self, pks: &[Uuid]) -> Result<Vec<SealedSecret>, Error> {
        self.secrets(source::Entity::find().filter(source::Column::Uuid.is_in(pks.iter().copied())))
            .await
    }

    async fn secrets(
        &self,
        q: sea_orm::Select<source::Entity>,
    ) -> Result<Vec<SealedSecret>, Error> {
        Ok(q.all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .filter_map(|s| {
                Some(SealedSecret {
                    source: s.uuid,
                    sealed: s.consumer_secret?,
                })
            })
            .collect())
    }

    /// Writes re-sealed tokens in one transaction, each only where the row still holds the
    /// value that was read (a concurrent update or delete wins). Returns the pks that had
    /// changed meanwhile. `last_updated` is left alone: nothing a client sees changed.
    pub async fn reseal_tokens(&self, reseals: &[TokenReseal]) -> Result<Vec<i32>, Error> {
        self.reseal_column(TokenColumn::Access, reseals).await
    }

    /// As `reseal_tokens`, for either token column. A refresh token's row key is never
    /// changed (rows holding one have had a row key since it was written).
    pub async fn reseal_column(
        &self,
        column: TokenColumn,
        reseals: &[TokenReseal],
    ) -> Result<Vec<i32>, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let mut changed = Vec::new();
        for r in reseals {
            let mut update = conn::Entity::update_many()
                .col_expr(column.column(), Expr::value(r.new.clone()))
                .filter(conn::Column::Id.eq(r.pk))
                .filter(column.column().eq(r.old.clone()));
            if column == TokenColumn::Access {
                update = update.col_expr(conn::Column::RowKey, Expr::value(r.row_key));
            }
            let done = update.exec(&txn).await.map_err(db_error)?;
            if done.rows_affected == 0 {
                changed.push(r.pk);
            }
        }
        txn.commit().await.map_err(db_error)?;
        Ok(changed)
    }

    /// As `reseal_tokens`, for consumer secrets.
    pub async fn reseal_secrets(&self, reseals: &[SecretReseal]) -> Result<Vec<Uuid>, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let mut changed = Vec::new();
        for r in reseals {
            let done = source::Entity::update_many()
                .col_expr(source::Column::ConsumerSecret, Expr::value(r.new.clone()))
                .filter(source::Column::Uuid.eq(r.source))
                .filter(source::Column::ConsumerSecret.eq(r.old.clone()))
                .exec(&txn)
                .await
                .map_err(db_error)?;
            if done.rows_affected == 0 {
                changed.push(r.source);
            }
        }
        txn.commit().await.map_err(db_error)?;
        Ok(changed)
    }
}
