use chrono::{DateTime, SubsecRound, Utc};

/// Both databases keep microseconds: so does every timestamp we write.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
use entity::{source, user, user_oauth_source_connection as conn};
use sea_orm::sea_query::NullOrdering;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DbBackend, EntityTrait,
    FromQueryResult, IntoActiveModel, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, SqlErr, Statement, Value,
};
use uuid::Uuid;

use super::custody::SealedToken;
use super::events::{audit_log, record};
use super::notify::notify_in;
use super::{Backend, Store, db_error, db_error_quiet, lost_after_send, write_error};
use crate::domain::error::{Error, UniqueRule};
use crate::domain::model::{
    ChangeKind, Connection, ConnectionChange, ConnectionFilter, Patch, Sort, SortKey,
};
use crate::domain::search;
use crate::domain::validation;

/// A keyset position: the sort column's value (as text) and the pk tie-breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub value: String,
    pub pk: i32,
}

/// One keyset page request.
#[derive(Clone, Debug)]
pub struct KeysetPage {
    pub sort: Sort,
    /// Rows strictly after (forward) or before (backward) this position.
    pub cursor: Option<Cursor>,
    pub forward: bool,
    pub limit: u64,
}

/// A sealed value with the row identity it was sealed for (see `crypto::Slot`).
pub struct RowSealed {
    pub row_key: Uuid,
    pub sealed: Vec<u8>,
}

/// The sealed tokens of a new connection, both bound to its row identity.
pub struct SealedTokens {
    pub row_key: Uuid,
    pub access: Option<Vec<u8>>,
    pub refresh: Option<Vec<u8>>,
}

/// The values an update writes; `None`/`Absent` keeps the stored value.
pub struct ConnectionUpdate {
    pub source: Option<Uuid>,
    pub identifier: Option<String>,
    pub access_token: Patch<Vec<u8>>,
    /// Sealed with the same row identity as the access token.
    pub refresh_token: Patch<Vec<u8>>,
    /// The row identity a new access token was sealed with; written together with it.
    pub row_key: Option<Uuid>,
    pub expires: Patch<DateTime<Utc>>,
}

fn to_connection(m: conn::Model) -> Connection {
    Connection {
        pk: m.id,
        user: m.user_id,
        source: m.source_id,
        identifier: m.identifier,
        created: m.created,
        last_updated: m.last_updated,
        expires: m.expires,
        row_key: m.row_key,
        needs_relink: m.relink_required_at.is_some(),
    }
}

/// The text a keyset cursor holds for a row.
pub fn cursor_for(sort: SortKey, c: &Connection) -> Cursor {
    let value = match sort {
        SortKey::Pk | SortKey::SourceSlug | SortKey::Expires => String::new(),
        SortKey::Source => c.source.to_string(),
        SortKey::Created => c.created.to_rfc3339(),
        SortKey::LastUpdated => c.last_updated.to_rfc3339(),
        SortKey::Identifier => c.identifier.clone(),
        SortKey::User => c.user.to_string(),
    };
    Cursor { value, pk: c.pk }
}

/// The keyset column of an ordering; `None` for orderings by pk alone (GraphQL offers no
/// ordering by source slug or expiry).
fn sort_column(key: SortKey) -> Option<conn::Column> {
    match key {
        SortKey::Pk | SortKey::SourceSlug | SortKey::Expires => None,
        SortKey::Source => Some(conn::Column::SourceId),
        SortKey::Created => Some(conn::Column::Created),
        SortKey::LastUpdated => Some(conn::Column::LastUpdated),
        SortKey::Identifier => Some(conn::Column::Identifier),
        SortKey::User => Some(conn::Column::UserId),
    }
}

/// Parses a cursor's value for its column; `None` when it is not a value of that column.
fn cursor_value(key: SortKey, text: &str) -> Option<Value> {
    match key {
        SortKey::Pk | SortKey::SourceSlug | SortKey::Expires => Some(Value::Int(None)),
        SortKey::Source => Uuid::parse_str(text).ok().map(Into::into),
        SortKey::Created | SortKey::LastUpdated => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|d| d.with_timezone(&Utc).into()),
        SortKey::Identifier => Some(text.to_owned().into()),
        SortKey::User => text.parse::<i32>().ok().map(Into::into),
    }
}

fn change(kind: ChangeKind, c: &Connection) -> ConnectionChange {
    ConnectionChange {
        kind,
        pk: c.pk,
        user: c.user,
    }
}

impl Store {
    /// Inserts a connection and its audit event in one transaction. Uniqueness is decided by
    /// the database's constraints, never by a read first.
    pub async fn insert_connection(
        &self,
        actor: i32,
        user: i32,
        source: Uuid,
        identifier: String,
        access_token: Option<RowSealed>,
        expires: Option<DateTime<Utc>>,
    ) -> Result<Connection, Error> {
        // Every row gets a row key, so a token set later is bound to the same identity.
        let tokens = match access_token {
            Some(t) => SealedTokens {
                row_key: t.row_key,
                access: Some(t.sealed),
                refresh: None,
            },
            None => SealedTokens {
                row_key: Uuid::new_v4(),
                access: None,
                refresh: None,
            },
        };
        self.insert_connection_with(actor, user, source, identifier, tokens, expires)
            .await
    }

    /// As `insert_connection`, with a refresh token too.
    pub async fn insert_connection_with(
        &self,
        actor: i32,
        user: i32,
        source: Uuid,
        identifier: String,
        tokens: SealedTokens,
        expires: Option<DateTime<Utc>>,
    ) -> Result<Connection, Error> {
        let now = now();
        let SealedTokens {
            row_key,
            access: access_token,
            refresh: refresh_token,
        } = tokens;
        if self.backend() == Backend::Postgres {
            let values = vec![
                user.into(),
                source.into(),
                identifier.into(),
                access_token.into(),
                expires.into(),
                now.into(),
                now.into(),
                Utc::now().into(),
                actor.into(),
                row_key.into(),
                refresh_token.into(),
            ];
            return self.insert_connection_pg(actor, values, user, source).await;
        }
        let model = conn::ActiveModel {
            user_id: Set(user),
            source_id: Set(source),
            identifier: Set(identifier),
            access_token: Set(access_token),
            expires: Set(expires),
            created: Set(now),
            last_updated: Set(now),
            row_key: Set(Some(row_key)),
            refresh_token: Set(refresh_token),
            ..Default::default()
        };
        let Some(creates) = &self.creates else {
            return Err(Error::internal("SQLite store without its writer"));
        };
        // The writer is down (restarting after a crash): refused at once, not queued.
        if !creates.is_up() {
            return Err(Error::Unavailable);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let create = super::batch::Create {
            actor,
            row: model,
            reply,
        };
        if creates.send(create).await.is_err() {
            return Err(Error::Unavailable);
        }
        match answer.await {
            Ok(Ok(inserted)) => {
                let inserted = to_connection(inserted);
                self.committed(change(ChangeKind::Created, &inserted));
                Ok(inserted)
            }
            Ok(Err(super::batch::Failure::Row(e))) => {
                Err(self.explain_write_error(e, user, source).await)
            }
            Ok(Err(super::batch::Failure::Batch)) => Err(Error::Unavailable),
            Ok(Err(super::batch::Failure::Unknown)) => Err(Error::OutcomeUnknown),
            // Dropped unanswered: the writer died before it took this create into a
            // transaction (one it took is answered by batch::Pending).
            Err(_) => Err(Error::Unavailable),
        }
    }

    /// PostgreSQL: the row, its audit event and its change notification (storage/notify.rs;
    /// delivered at commit, sent only while an instance listens) in one statement (a data-modifying CTE is atomic on its own), one
    /// round trip instead of four (BEGIN, two INSERTs, COMMIT).
    /// `values`: user, source, identifier, access token, expires, created, last updated, the
    /// audit event's time, actor, row key, refresh token.
    async fn insert_connection_pg(
        &self,
        actor: i32,
        values: Vec<Value>,
        user: i32,
        source: Uuid,
    ) -> Result<Connection, Error> {
        const SQL: &str = "WITH ins AS (\
            INSERT INTO user_oauth_source_connections \
              (user_id, source_id, identifier, access_token, expires, created, last_updated, row_key, refresh_token) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $10, $11) \
            RETURNING id, user_id, source_id, identifier, access_token, expires, created, last_updated, row_key, refresh_token, relink_required_at\
          ), audit AS (\
            INSERT INTO audit_events (created, actor_id, action, connection_id, source_id, identifier, owner_id) \
            SELECT $8, $9, 'create', id, source_id, identifier, user_id FROM ins\
          ), note AS (\
            SELECT CASE WHEN EXISTS (SELECT 1 FROM event_listeners WHERE expires > now()) \
              THEN pg_notify('oauthlink_connection_events', 'c:' || id || ':' || user_id) END FROM ins\
          ) SELECT ins.* FROM ins CROSS JOIN note";
        let stmt = Statement::from_sql_and_values(DbBackend::Postgres, SQL, values);
        let inserted = match conn::Model::find_by_statement(stmt).one(&self.db).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(Error::internal("insert returned no row")),
            Err(e) if lost_after_send(&e) => return Err(write_error(DbBackend::Postgres, e)),
            Err(e) => return Err(self.explain_write_error(e, user, source).await),
        };
        audit_log(actor, "create", &inserted);
        Ok(to_connection(inserted))
    }

    /// A foreign-key failure means the user or source went away after it was checked. When a
    /// write breaks both uniqueness rules, the databases name either one first: report the
    /// (user, source) rule, as authentik's serializer does.
    async fn explain_write_error(&self, e: sea_orm::DbErr, user: i32, source: Uuid) -> Error {
        if let Some(Error::Conflict(UniqueRule::SourceIdentifier)) = db_error_quiet(&e) {
            let pair_taken = conn::Entity::find()
                .filter(conn::Column::UserId.eq(user))
                .filter(conn::Column::SourceId.eq(source))
                .count(&self.db)
                .await;
            return match pair_taken {
                Ok(n) if n > 0 => Error::Conflict(UniqueRule::UserSource),
                Ok(_) => Error::Conflict(UniqueRule::SourceIdentifier),
                Err(e) => db_error(e),
            };
        }
        // The user is not read before the insert; the source may have gone since it was
        // cached. Report each that is missing, in the field order of a validation.
        if let Some(SqlErr::ForeignKeyConstraintViolation(_)) = e.sql_err() {
            let (user_exists, source_found) =
                match tokio::try_join!(self.user_exists(user), self.source_by_pk(source)) {
                    Ok(found) => found,
                    Err(e) => return e,
                };
            let mut errors = Vec::new();
            if !user_exists {
                errors.push(validation::does_not_exist("user", user));
            }
            if source_found.is_none() {
                errors.push(validation::does_not_exist("source", source));
            }
            if errors.is_empty() {
                // Both are back (or the failure was another key's): not the caller's input.
                return db_error(e);
            }
            return Error::Validation(errors);
        }
        db_error(e)
    }

    pub async fn connection_by_pk(&self, pk: i32) -> Result<Option<Connection>, Error> {
        Ok(conn::Entity::find_by_id(pk)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(to_connection))
    }

    /// The rows of these pks that exist, in one query.
    pub async fn connections_by_pks(&self, pks: &[i32]) -> Result<Vec<Connection>, Error> {
        if pks.is_empty() {
            return Ok(Vec::new());
        }
        Ok(conn::Entity::find()
            .filter(conn::Column::Id.is_in(pks.iter().copied()))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_connection)
            .collect())
    }

    /// Applies an update and audits it; `None` when the row is gone.
    pub async fn update_connection(
        &self,
        actor: i32,
        pk: i32,
        update: ConnectionUpdate,
    ) -> Result<Option<Connection>, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let Some(row) = conn::Entity::find_by_id(pk)
            .one(&txn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let (user, old_source) = (row.user_id, row.source_id);
        let mut model = row.into_active_model();
        if let Some(source) = update.source {
            model.source_id = Set(source);
        }
        if let Some(identifier) = update.identifier {
            model.identifier = Set(identifier);
        }
        match update.access_token {
            Patch::Absent => {}
            Patch::Null => model.access_token = Set(None),
            Patch::Value(v) => model.access_token = Set(Some(v)),
        }
        match update.refresh_token {
            Patch::Absent => {}
            Patch::Null => model.refresh_token = Set(None),
            Patch::Value(v) => model.refresh_token = Set(Some(v)),
        }
        if let Some(row_key) = update.row_key {
            model.row_key = Set(Some(row_key));
        }
        // A new token is a new link: the source's refusal of the old one no longer applies.
        if update.row_key.is_some() {
            model.relink_required_at = Set(None);
        }
        match update.expires {
            Patch::Absent => {}
            Patch::Null => model.expires = Set(None),
            Patch::Value(v) => model.expires = Set(Some(v)),
        }
        model.last_updated = Set(now());
        let updated = match model.update(&txn).await {
            Ok(m) => m,
            // Deleted by a concurrent request since it was read (PostgreSQL reads committed
            // rows without locking them): gone, as if the read had missed it.
            Err(sea_orm::DbErr::RecordNotUpdated) => {
                let _ = txn.rollback().await;
                return Ok(None);
            }
            Err(e) => {
                let _ = txn.rollback().await;
                let source = update.source.unwrap_or(old_source);
                return Err(self.explain_write_error(e, user, source).await);
            }
        };
        record(&txn, actor, "update", &updated).await?;
        let updated = to_connection(updated);
        let note = change(ChangeKind::Updated, &updated);
        notify_in(&txn, note).await?;
        super::commit(txn).await?;
        self.committed(note);
        Ok(Some(updated))
    }

    /// Deletes and audits; `false` when the row was already gone.
    pub async fn delete_connection(&self, actor: i32, pk: i32) -> Result<bool, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let Some(row) = conn::Entity::find_by_id(pk)
            .one(&txn)
            .await
            .map_err(db_error)?
        else {
            return Ok(false);
        };
        let deleted = conn::Entity::delete_by_id(pk)
            .exec(&txn)
            .await
            .map_err(db_error)?;
        // A concurrent delete won: one 204 and one audit event, not two.
        if deleted.rows_affected == 0 {
            let _ = txn.rollback().await;
            return Ok(false);
        }
        record(&txn, actor, "delete", &row).await?;
        let note = ConnectionChange {
            kind: ChangeKind::Deleted,
            pk: row.id,
            user: row.user_id,
        };
        notify_in(&txn, note).await?;
        super::commit(txn).await?;
        self.committed(note);
        Ok(true)
    }

    fn filtered(&self, owner: Option<i32>, filter: &ConnectionFilter) -> Select<conn::Entity> {
        let mut q = conn::Entity::find();
        if let Some(owner) = owner {
            q = q.filter(conn::Column::UserId.eq(owner));
        }
        if let Some(user) = filter.user {
            q = q.filter(conn::Column::UserId.eq(user));
        }
        let needs_source = filter.source_slug.is_some() || !filter.search.is_empty();
        if needs_source {
            q = q.inner_join(source::Entity);
        }
        if let Some(slug) = &filter.source_slug {
            q = q.filter(source::Column::Slug.eq(slug.as_str()));
        }
        if !filter.search.is_empty() {
            q = q.inner_join(user::Entity);
        }
        // Every term must match one of the fields (DRF's SearchFilter).
        for term in &filter.search {
            let escaped = search::fold(term)
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            let like = |col: Expr| {
                self.fold_ascii(col)
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            q = q.filter(
                Condition::any()
                    .add(like(Expr::col((user::Entity, user::Column::Username))))
                    .add(like(Expr::col((source::Entity, source::Column::Slug))))
                    .add(like(Expr::col((conn::Entity, conn::Column::Identifier)))),
            );
        }
        q
    }

    /// Lower-cases ASCII letters only, on both databases (domain/search.rs says why).
    /// SQLite's `lower()` does exactly that; PostgreSQL's follows the locale, so it gets an
    /// explicit `translate`.
    fn fold_ascii(&self, col: Expr) -> Expr {
        match self.backend() {
            Backend::Sqlite => Expr::expr(Func::lower(col)),
            Backend::Postgres => Expr::expr(Func::cust("translate").args([
                col,
                Expr::val("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                Expr::val("abcdefghijklmnopqrstuvwxyz"),
            ])),
        }
    }

    pub async fn count_connections(
        &self,
        owner: Option<i32>,
        filter: &ConnectionFilter,
    ) -> Result<u64, Error> {
        self.filtered(owner, filter)
            .count(&self.db)
            .await
            .map_err(db_error)
    }

    /// A page by offset, for REST's page numbers. `owner` limits rows to one user's.
    pub async fn connections_by_offset(
        &self,
        owner: Option<i32>,
        filter: &ConnectionFilter,
        sorts: &[Sort],
        offset: u64,
        limit: u64,
    ) -> Result<Vec<Connection>, Error> {
        let mut q = self.filtered(owner, filter);
        if sorts.iter().any(|s| s.key == SortKey::SourceSlug)
            && filter.source_slug.is_none()
            && filter.search.is_empty()
        {
            q = q.inner_join(source::Entity);
        }
        for s in sorts {
            let order = if s.descending {
                Order::Desc
            } else {
                Order::Asc
            };
            q = match s.key {
                SortKey::SourceSlug => q.order_by(source::Column::Slug, order),
                SortKey::Pk => q.order_by(conn::Column::Id, order),
                // PostgreSQL's default: nulls count as larger than any value.
                SortKey::Expires => {
                    let nulls = if s.descending {
                        NullOrdering::First
                    } else {
                        NullOrdering::Last
                    };
                    q.order_by_with_nulls(conn::Column::Expires, order, nulls)
                }
                key => q.order_by(sort_column(key).expect("non-pk key has a column"), order),
            };
        }
        if !sorts.iter().any(|s| s.key == SortKey::Pk) {
            q = q.order_by(conn::Column::Id, Order::Asc);
        }
        Ok(q.offset(offset)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_connection)
            .collect())
    }

    /// A keyset page, for GraphQL cursors: cheap at any depth with the (column, pk) indexes.
    /// Returns rows in the requested order (reversed back for backward pages) and whether
    /// more exist beyond the page.
    pub async fn connections_by_keyset(
        &self,
        owner: Option<i32>,
        filter: &ConnectionFilter,
        page: &KeysetPage,
    ) -> Result<Option<(Vec<Connection>, bool)>, Error> {
        let mut q = self.filtered(owner, filter);
        let col = sort_column(page.sort.key);
        // Walking backward is walking forward in the opposite order.
        let ascending = page.sort.descending != page.forward;
        if let Some(cursor) = &page.cursor {
            let Some(value) = cursor_value(page.sort.key, &cursor.value) else {
                return Ok(None);
            };
            let pk = Expr::col((conn::Entity, conn::Column::Id));
            let cond = match col {
                None if ascending => Condition::all().add(pk.gt(cursor.pk)),
                None => Condition::all().add(pk.lt(cursor.pk)),
                Some(c) => {
                    let c = Expr::col((conn::Entity, c));
                    let (beyond, tie) = if ascending {
                        (c.clone().gt(value.clone()), pk.gt(cursor.pk))
                    } else {
                        (c.clone().lt(value.clone()), pk.lt(cursor.pk))
                    };
                    Condition::any()
                        .add(beyond)
                        .add(Condition::all().add(c.eq(value)).add(tie))
                }
            };
            q = q.filter(cond);
        }
        let order = if ascending { Order::Asc } else { Order::Desc };
        if let Some(c) = col {
            q = q.order_by(c, order.clone());
        }
        q = q.order_by(conn::Column::Id, order);
        let mut rows: Vec<Connection> = q
            .limit(page.limit + 1)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_connection)
            .collect();
        let more = rows.len() as u64 > page.limit;
        rows.truncate(page.limit as usize);
        if !page.forward {
            rows.reverse();
        }
        Ok(Some((rows, more)))
    }
}

impl Store {
    /// A connection's stored access token, sealed, with the row identity it is bound to.
    pub async fn sealed_access_token(&self, pk: i32) -> Result<Option<SealedToken>, Error> {
        Ok(conn::Entity::find_by_id(pk)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .and_then(SealedToken::from_row))
    }
}
