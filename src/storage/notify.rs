//! Change notifications of connections. PostgreSQL: `pg_notify` inside the writing
//! transaction (delivered only if it commits; a rolled-back change notifies nobody), and one
//! `LISTEN` connection per instance, started with the first subscriber, fanning out to a
//! broadcast channel, so every instance's subscribers learn of every instance's writes.
//! SQLite (one process): the channel is fed after each commit.
//!
//! `NOTIFY` serialises the commits of all notifying transactions on one lock (measured here:
//! 2,700-2,900 single-row writes/s with it, 7,800-14,000 without), so a write notifies only
//! while some instance has subscribers: each listening instance keeps a row in
//! `event_listeners` unexpired, and writers test for one (a cheap probe of a tiny table).
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};
use tokio::sync::{OnceCell, broadcast};

use super::{Backend, Store, db_error};
use crate::domain::error::Error;
use crate::domain::model::{ChangeKind, ConnectionChange};

/// The PostgreSQL channel.
pub(super) const CHANNEL: &str = "oauthlink_connection_events";
/// A listening instance's row stands this long and is renewed at a third of it; a crashed
/// instance's row expires (writers then notify nobody's channel for at most this long).
const LISTENER_TTL_SECONDS: i64 = 60;
/// The condition writers send their notification under.
pub(super) const ANYONE_LISTENING: &str =
    "EXISTS (SELECT 1 FROM event_listeners WHERE expires > now())";
/// Changes buffered for the slowest reader of this instance; one who falls further behind
/// is told it lagged (its subscription ends) rather than the buffer growing.
const FANOUT_BUFFER: usize = 1024;

#[derive(Clone, Debug)]
pub(super) struct Changes {
    tx: broadcast::Sender<ConnectionChange>,
    listening: Arc<OnceCell<()>>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: broadcast::channel(FANOUT_BUFFER).0,
            listening: Arc::default(),
        }
    }
}

/// `c:12:3` — kind, connection pk, owner: far below NOTIFY's 8000-byte limit.
pub(super) fn payload(change: ConnectionChange) -> String {
    let kind = match change.kind {
        ChangeKind::Created => 'c',
        ChangeKind::Updated => 'u',
        ChangeKind::Deleted => 'd',
    };
    format!("{kind}:{}:{}", change.pk, change.user)
}

fn parse(payload: &str) -> Option<ConnectionChange> {
    let mut parts = payload.split(':');
    let kind = match parts.next()? {
        "c" => ChangeKind::Created,
        "u" => ChangeKind::Updated,
        "d" => ChangeKind::Deleted,
        _ => return None,
    };
    let pk = parts.next()?.parse().ok()?;
    let user = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some(ConnectionChange { kind, pk, user })
}

/// PostgreSQL: queues the notification in the write's transaction (sent at COMMIT).
pub(super) async fn notify_in(
    txn: &DatabaseTransaction,
    change: ConnectionChange,
) -> Result<(), Error> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT pg_notify($1, $2) WHERE {ANYONE_LISTENING}"),
        [CHANNEL.into(), payload(change).into()],
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

impl Store {
    /// SQLite: tells this process's subscribers of a committed change (PostgreSQL's reach
    /// them through `LISTEN`).
    pub(super) fn committed(&self, change: ConnectionChange) {
        if self.backend() == Backend::Sqlite {
            let _ = self.changes.tx.send(change);
        }
    }

    /// Committed changes from now on. On PostgreSQL the first call starts this instance's
    /// `LISTEN` and returns once it listens.
    pub async fn changes(&self) -> Result<broadcast::Receiver<ConnectionChange>, Error> {
        if self.backend() == Backend::Postgres {
            let pool = self.db.inner.get_postgres_connection_pool().clone();
            let tx = self.changes.tx.clone();
            self.changes
                .listening
                .get_or_try_init(|| async move {
                    // Registered before listening: a write that sees the row notifies, and
                    // the LISTEN is up before the first subscriber is told it is.
                    let instance = uuid::Uuid::new_v4();
                    register(&pool, instance).await.map_err(sqlx_error)?;
                    let mut listener = PgListener::connect_with(&pool).await.map_err(sqlx_error)?;
                    listener.listen(CHANNEL).await.map_err(sqlx_error)?;
                    tokio::spawn(listen(listener, tx));
                    tokio::spawn(renew(pool, instance));
                    Ok::<_, Error>(())
                })
                .await?;
        }
        Ok(self.changes.tx.subscribe())
    }
}

/// Marks this instance as listening for `LISTENER_TTL_SECONDS`.
async fn register(
    pool: &sea_orm::sqlx::PgPool,
    instance: uuid::Uuid,
) -> Result<(), sea_orm::sqlx::Error> {
    sea_orm::sqlx::query(
        "INSERT INTO event_listeners (instance, expires) \
         VALUES ($1, now() + make_interval(secs => $2)) \
         ON CONFLICT (instance) DO UPDATE SET expires = excluded.expires",
    )
    .bind(instance)
    .bind(LISTENER_TTL_SECONDS as f64)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Keeps the row unexpired while the store lives (and sweeps rows long expired).
async fn renew(pool: sea_orm::sqlx::PgPool, instance: uuid::Uuid) {
    let period = Duration::from_secs((LISTENER_TTL_SECONDS / 3) as u64);
    loop {
        tokio::time::sleep(period).await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = register(&pool, instance).await {
            tracing::warn!(error = %e, "change notifications: cannot renew this instance's listener row");
        }
        let _ = sea_orm::sqlx::query(
            "DELETE FROM event_listeners WHERE expires < now() - interval '1 hour'",
        )
        .execute(&pool)
        .await;
    }
}

fn sqlx_error(e: sea_orm::sqlx::Error) -> Error {
    db_error(sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(
        Arc::new(e),
    )))
}

/// Forwards notifications until the store is gone. sqlx reconnects (and listens again) on the
/// call after a lost connection; changes committed in between are not seen.
async fn listen(mut listener: PgListener, tx: broadcast::Sender<ConnectionChange>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match parse(n.payload()) {
                Some(change) => {
                    let _ = tx.send(change);
                }
                None => tracing::warn!("ignoring a malformed change notification"),
            },
            Ok(None) => tracing::warn!("change notifications: connection lost; reconnecting"),
            Err(e) => {
                if matches!(e, sea_orm::sqlx::Error::PoolClosed) {
                    return;
                }
                tracing::warn!(error = %e, "change notifications: LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_is_ignored() {
        for kind in [
            ChangeKind::Created,
            ChangeKind::Updated,
            ChangeKind::Deleted,
        ] {
            let change = ConnectionChange {
                kind,
                pk: 42,
                user: -7,
            };
            assert_eq!(parse(&payload(change)), Some(change));
        }
        for bad in ["", "x:1:2", "c:1", "c:1:2:3", "c:a:2"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
