//! The token vault's storage: a connection's sealed tokens, its source's token endpoint, and
//! the refresh lease. On PostgreSQL the lease is a transaction holding the row with
//! `SELECT … FOR UPDATE` across the call to the source, so that one instance at a time
//! refreshes a connection and the others, once they get the row, read its result; the wait
//! for the row is bounded by `lock_timeout`. SQLite has one writer: the lease is a plain
//! read, the service's in-process single flight keeps refreshes of a connection one at a
//! time, and the write is a compare-and-swap on the refresh token that was sent.
use chrono::{DateTime, SubsecRound, Utc};
use entity::{source, user_oauth_source_connection as conn};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect, RuntimeErr,
};
use uuid::Uuid;

use super::events::{audit_log, insert_event};
use super::{Backend, Store, db_error};
use crate::domain::error::{Error, ProviderProblem};

/// A connection's row as the vault needs it: the sealed tokens and their row identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultRow {
    pub pk: i32,
    pub user: i32,
    pub source: Uuid,
    pub row_key: Option<Uuid>,
    pub access: Option<Vec<u8>>,
    pub refresh: Option<Vec<u8>>,
    pub expires: Option<DateTime<Utc>>,
    pub needs_relink: bool,
    model: conn::Model,
}

impl VaultRow {
    fn from_model(m: conn::Model) -> Self {
        VaultRow {
            pk: m.id,
            user: m.user_id,
            source: m.source_id,
            row_key: m.row_key,
            access: m.access_token.clone(),
            refresh: m.refresh_token.clone(),
            expires: m.expires,
            needs_relink: m.relink_required_at.is_some(),
            model: m,
        }
    }

    /// Whether both sealed tokens are still the ones of `other` (no refresh in between).
    pub fn same_tokens(&self, other: &VaultRow) -> bool {
        self.access == other.access && self.refresh == other.refresh
    }
}

/// What a source's token endpoint needs: its URL, the client's id and sealed secret, and
/// how the client authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEndpoint {
    pub source: Uuid,
    pub url: Option<String>,
    pub client_id: String,
    pub sealed_secret: Option<Vec<u8>>,
    pub auth_method: String,
}

/// A refresh's result, sealed for the row.
pub struct SealedRefresh {
    pub access: Vec<u8>,
    /// `None`: the source did not rotate the refresh token; the stored one stays.
    pub refresh: Option<Vec<u8>>,
    pub expires: Option<DateTime<Utc>>,
}

/// The audit actions of the vault.
pub const READ_TOKEN: &str = "read_token";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const RELINK_REQUIRED: &str = "relink_required";

/// The row of one connection, held for a refresh (see the module comment).
pub struct RefreshLease {
    store: Store,
    /// PostgreSQL: the transaction holding the row lock.
    txn: Option<DatabaseTransaction>,
    pub row: VaultRow,
}

/// PostgreSQL's `lock_not_available` (lock_timeout passed).
fn lock_timed_out(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    matches!(e.as_ref(), Sqlx::Database(db) if db.code().as_deref() == Some("55P03"))
}

impl Store {
    pub async fn vault_row(&self, pk: i32) -> Result<Option<VaultRow>, Error> {
        Ok(conn::Entity::find_by_id(pk)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(VaultRow::from_model))
    }

    pub async fn token_endpoint(&self, source: Uuid) -> Result<Option<TokenEndpoint>, Error> {
        Ok(source::Entity::find_by_id(source)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(|s| TokenEndpoint {
                source: s.uuid,
                url: s.access_token_url,
                client_id: s.consumer_key,
                sealed_secret: s.consumer_secret,
                auth_method: s.token_auth_method,
            }))
    }

    /// Audits a read of the stored token (nothing else changes).
    pub async fn record_token_read(&self, actor: i32, row: &VaultRow) -> Result<(), Error> {
        let (_gate, txn) = self.write_txn().await?;
        insert_event(&txn, actor, READ_TOKEN, &row.model)
            .await
            .map_err(db_error)?;
        super::commit(txn).await?;
        audit_log(actor, READ_TOKEN, &row.model);
        Ok(())
    }

    /// Takes the row for a refresh, waiting at most `wait` for another instance's refresh of
    /// it (PostgreSQL). `None` when the row is gone.
    pub async fn lease_for_refresh(
        &self,
        pk: i32,
        wait: std::time::Duration,
    ) -> Result<Option<RefreshLease>, Error> {
        if self.backend() == Backend::Sqlite {
            return Ok(self.vault_row(pk).await?.map(|row| RefreshLease {
                store: self.clone(),
                txn: None,
                row,
            }));
        }
        let txn = self.db.begin().await.map_err(db_error)?;
        let ms = wait.as_millis().clamp(1, i32::MAX as u128);
        txn.execute_unprepared(&format!("SET LOCAL lock_timeout = {ms}"))
            .await
            .map_err(db_error)?;
        let row = match conn::Entity::find_by_id(pk)
            .lock_exclusive()
            .one(&txn)
            .await
        {
            Ok(row) => row,
            Err(e) if lock_timed_out(&e) => {
                tracing::info!(connection = pk, "waited too long for another refresh");
                return Err(Error::ProviderUnavailable(ProviderProblem::Busy));
            }
            Err(e) => return Err(db_error(e)),
        };
        Ok(row.map(|m| RefreshLease {
            store: self.clone(),
            txn: Some(txn),
            row: VaultRow::from_model(m),
        }))
    }
}

impl RefreshLease {
    /// The transaction to write in: the lease's own (PostgreSQL) or a new write transaction.
    async fn write<T>(
        self,
        work: impl AsyncFnOnce(&DatabaseTransaction, &VaultRow) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match self.txn {
            Some(txn) => {
                let out = work(&txn, &self.row).await?;
                super::commit(txn).await?;
                Ok(out)
            }
            None => {
                let (_gate, txn) = self.store.write_txn().await?;
                let out = work(&txn, &self.row).await?;
                super::commit(txn).await?;
                Ok(out)
            }
        }
    }

    /// Audits a read of the row as it is (another refresh's result, or a fresh token).
    pub async fn read_current(self, actor: i32) -> Result<VaultRow, Error> {
        let row = self
            .write(async move |txn, row| {
                insert_event(txn, actor, READ_TOKEN, &row.model)
                    .await
                    .map_err(db_error)?;
                Ok(row.clone())
            })
            .await?;
        audit_log(actor, READ_TOKEN, &row.model);
        Ok(row)
    }

    /// Stores a refresh's result, with its audit event and the read's, in one transaction.
    /// SQLite: only if the row still holds the refresh token that was sent (another process
    /// on the same file may have refreshed it meanwhile: answered "busy", nothing written).
    pub async fn store_refreshed(
        self,
        actor: i32,
        refreshed: SealedRefresh,
    ) -> Result<VaultRow, Error> {
        let backend = self.store.db.get_database_backend();
        let row = self
            .write(async move |txn, row| {
                let mut update = conn::Entity::update_many()
                    .col_expr(conn::Column::AccessToken, Expr::value(refreshed.access))
                    .col_expr(conn::Column::Expires, Expr::value(refreshed.expires))
                    .col_expr(
                        conn::Column::LastUpdated,
                        Expr::value(Utc::now().trunc_subsecs(6)),
                    )
                    .filter(conn::Column::Id.eq(row.pk));
                if let Some(new) = refreshed.refresh {
                    update = update.col_expr(conn::Column::RefreshToken, Expr::value(new));
                }
                if backend == DbBackend::Sqlite {
                    update = update.filter(conn::Column::RefreshToken.eq(row.refresh.clone()));
                }
                let done = update.exec(txn).await.map_err(db_error)?;
                if done.rows_affected == 0 {
                    return Err(Error::ProviderUnavailable(ProviderProblem::Busy));
                }
                let stored = conn::Entity::find_by_id(row.pk)
                    .one(txn)
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| Error::internal("refreshed row vanished in its transaction"))?;
                insert_event(txn, actor, REFRESH_TOKEN, &stored)
                    .await
                    .map_err(db_error)?;
                insert_event(txn, actor, READ_TOKEN, &stored)
                    .await
                    .map_err(db_error)?;
                Ok(VaultRow::from_model(stored))
            })
            .await?;
        audit_log(actor, REFRESH_TOKEN, &row.model);
        audit_log(actor, READ_TOKEN, &row.model);
        Ok(row)
    }

    /// The source refused the refresh token: the connection needs the user to link again.
    pub async fn mark_relink(self, actor: i32) -> Result<(), Error> {
        let row = self
            .write(async move |txn, row| {
                let mut model: conn::ActiveModel = row.model.clone().into();
                model.relink_required_at = Set(Some(Utc::now().trunc_subsecs(6)));
                let stored = sea_orm::ActiveModelTrait::update(model, txn)
                    .await
                    .map_err(db_error)?;
                insert_event(txn, actor, RELINK_REQUIRED, &stored)
                    .await
                    .map_err(db_error)?;
                Ok(stored)
            })
            .await?;
        audit_log(actor, RELINK_REQUIRED, &row);
        Ok(())
    }

    /// Nothing changes (the refresh failed): the row lock, if any, is released.
    pub async fn release(self) {
        if let Some(txn) = self.txn {
            let _ = txn.rollback().await;
        }
    }
}
