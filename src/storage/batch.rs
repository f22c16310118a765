//! SQLite group commit of connection creates. SQLite has one writer, and with
//! `synchronous=FULL` every commit waits for the disk: one transaction per create made that
//! wait, and the write lock's round trips to SQLite's worker thread, the ceiling of concurrent
//! creates (bench/, issue 5). Creates that arrive while a batch is being written queue up and go
//! together in the next transaction: one BEGIN, two statements per create, one COMMIT (one disk
//! wait). Nobody is answered before the commit that holds their row, so an acknowledged create
//! survives a crash exactly as before.
//!
//! A create that breaks a constraint fails alone: with SQLite's default conflict resolution
//! (ABORT) such a failure undoes only its own statement and the transaction stays active. Any
//! other failure (disk full, I/O error, busy, out of memory) may have rolled the whole
//! transaction back, so the whole batch is rolled back and every create in it is answered
//! "unavailable": none is stored, none is reported failed while stored.
//!
//! The writer runs under a supervisor that restarts it when it dies; while it is down the
//! store is not ready and creates are refused at once.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use entity::user_oauth_source_connection as conn;
use sea_orm::sqlx::error::ErrorKind;
use sea_orm::{ActiveModelTrait, DbErr, RuntimeErr, SqliteTransactionMode, TransactionOptions};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::events::{audit_log, insert_event};
use super::reach::Db;

/// At most this many creates share one transaction.
const MAX_BATCH: usize = 64;
/// Restarts of a writer that keeps dying back off from the first to the last delay.
const RESTART_FIRST: Duration = Duration::from_millis(50);
const RESTART_LAST: Duration = Duration::from_secs(2);

/// Why a create was not stored.
#[derive(Debug)]
pub(super) enum Failure {
    /// This create broke a constraint; the rest of its batch went on.
    Row(DbErr),
    /// Its batch failed and was rolled back: not stored.
    Batch,
    /// The writer died while COMMIT was under way: perhaps stored.
    Unknown,
}

pub(super) struct Create {
    pub actor: i32,
    pub row: conn::ActiveModel,
    pub reply: oneshot::Sender<Result<conn::Model, Failure>>,
}

/// Whether the writer runs, for readiness.
#[derive(Debug, Default)]
struct Health {
    up: AtomicBool,
    /// Test hook: the writer panics at start and before each batch while this is set.
    #[cfg(test)]
    crash: AtomicBool,
}

/// The sending side of the writer's queue and its health. The writer ends when every sender
/// is gone.
#[derive(Clone, Debug)]
pub(super) struct Creates {
    tx: mpsc::Sender<Create>,
    health: Arc<Health>,
}

impl Creates {
    pub(super) async fn send(&self, create: Create) -> Result<(), ()> {
        self.tx.send(create).await.map_err(|_| ())
    }

    pub(super) fn is_up(&self) -> bool {
        self.health.up.load(Ordering::SeqCst)
    }

    /// Test hook: makes the writer die now (at its next batch) and at every restart, until
    /// called with `false`.
    #[cfg(test)]
    pub(super) fn crash(&self, on: bool) {
        self.health.crash.store(on, Ordering::SeqCst);
    }
}

pub(super) fn start(db: Db, gate: Arc<Mutex<()>>) -> Creates {
    let (tx, rx) = mpsc::channel(1024);
    let health = Arc::new(Health::default());
    tokio::spawn(supervise(
        db,
        gate,
        Arc::new(Mutex::new(rx)),
        health.clone(),
    ));
    Creates { tx, health }
}

/// Runs the writer and starts it again when it dies. The queue outlives a writer, so creates
/// waiting in it are served by the next one.
async fn supervise(
    db: Db,
    gate: Arc<Mutex<()>>,
    rx: Arc<Mutex<mpsc::Receiver<Create>>>,
    health: Arc<Health>,
) {
    let mut delay = RESTART_FIRST;
    loop {
        let started = Instant::now();
        let run = tokio::spawn(writer(db.clone(), gate.clone(), rx.clone(), health.clone()));
        let result = run.await;
        health.up.store(false, Ordering::SeqCst);
        match result {
            // Its loop ends only when every sender is gone: the store was dropped.
            Ok(()) => return,
            Err(e) if e.is_cancelled() => return,
            Err(e) => tracing::error!(error = %e, "the SQLite writer died; restarting it"),
        }
        if started.elapsed() > RESTART_LAST * 4 {
            delay = RESTART_FIRST;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RESTART_LAST);
    }
}

async fn writer(
    db: Db,
    gate: Arc<Mutex<()>>,
    rx: Arc<Mutex<mpsc::Receiver<Create>>>,
    health: Arc<Health>,
) {
    let mut rx = rx.lock().await;
    #[cfg(test)]
    assert!(
        !health.crash.load(Ordering::SeqCst),
        "test hook: writer crash"
    );
    health.up.store(true, Ordering::SeqCst);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let pending = Pending {
            creates: std::mem::take(&mut batch),
            committing: false,
        };
        #[cfg(test)]
        assert!(
            !health.crash.load(Ordering::SeqCst),
            "test hook: writer crash"
        );
        // Other writes of this process (updates, deletes) wait at the same gate.
        let guard = gate.lock().await;
        write(&db, pending).await;
        drop(guard);
    }
}

/// Creates taken from the queue and not answered yet. If the writer dies holding them, each
/// is told what is known: not stored while COMMIT was not sent (the transaction is rolled
/// back when dropped), unknown once it was.
struct Pending {
    creates: Vec<Create>,
    committing: bool,
}

impl Pending {
    /// Answers every create with the same failure.
    fn fail(mut self, failure: impl Fn() -> Failure) {
        for create in self.creates.drain(..) {
            let _ = create.reply.send(Err(failure()));
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let committing = self.committing;
        for create in self.creates.drain(..) {
            let failure = if committing {
                Failure::Unknown
            } else {
                Failure::Batch
            };
            let _ = create.reply.send(Err(failure));
        }
    }
}

/// A constraint violation: SQLite undid only the failing statement.
fn row_violation(e: &DbErr) -> bool {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .is_some_and(|db| db.kind() != ErrorKind::Other),
        _ => false,
    }
}

async fn write(db: &Db, mut pending: Pending) {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let txn = match db.begin_with_options(options).await {
        Ok(txn) => txn,
        Err(e) => {
            tracing::warn!(error = %e, "SQLite writer: BEGIN failed; batch answered unavailable");
            return pending.fail(|| Failure::Batch);
        }
    };
    let mut results = Vec::with_capacity(pending.creates.len());
    for create in &pending.creates {
        let inserted = match create.row.clone().insert(&txn).await {
            Ok(m) => m,
            Err(e) if row_violation(&e) => {
                results.push(Err(Failure::Row(e)));
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "SQLite writer: batch failed and rolled back");
                let _ = txn.rollback().await;
                return pending.fail(|| Failure::Batch);
            }
        };
        // A row without its audit event must not commit: the whole batch goes.
        if let Err(e) = insert_event(&txn, create.actor, "create", &inserted).await {
            tracing::warn!(error = %e, "SQLite writer: audit insert failed; batch rolled back");
            let _ = txn.rollback().await;
            return pending.fail(|| Failure::Batch);
        }
        results.push(Ok(inserted));
    }
    pending.committing = true;
    // A COMMIT that SQLite refuses did not commit (busy: the transaction stays open and is
    // rolled back when dropped); one whose worker thread died may have.
    if let Err(e) = txn.commit().await {
        tracing::warn!(error = %e, "SQLite writer: COMMIT failed");
        if super::lost_after_send(&e) {
            return pending.fail(|| Failure::Unknown);
        }
        pending.committing = false;
        return pending.fail(|| Failure::Batch);
    }
    for (create, result) in pending.creates.drain(..).zip(results) {
        if let Ok(row) = &result {
            audit_log(create.actor, "create", row);
        }
        let _ = create.reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::ActiveValue::Set;
    use sea_orm::ConnectionTrait;
    use uuid::Uuid;

    use super::super::{NewSource, NewUser, Store, StoreOptions};
    use crate::domain::error::{Error, UniqueRule};
    use crate::domain::model::{PolicyEngineMode, UserMatchingMode};

    /// A migrated SQLite store in a fresh directory, a source and `n` users.
    async fn store(max_connections: u32, n: usize) -> (Store, std::path::PathBuf, Uuid, Vec<i32>) {
        let dir = std::env::temp_dir().join(format!("oauthlink-batch-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/batch.sqlite3?mode=rwc", dir.display());
        let options = StoreOptions {
            max_connections,
            ..StoreOptions::default()
        };
        let store = Store::connect(&url, &options).await.unwrap();
        store.migrate().await.unwrap();
        let source = store
            .create_source(NewSource {
                name: "GitHub".into(),
                slug: "github".into(),
                enabled: true,
                provider_type: "github".into(),
                authorization_url: None,
                access_token_url: None,
                profile_url: None,
                consumer_key: String::new(),
                consumer_secret: None,
                policy_engine_mode: PolicyEngineMode::Any,
                user_matching_mode: UserMatchingMode::Identifier,
                user_path_template: String::new(),
                icon: None,
            })
            .await
            .unwrap();
        let mut users = Vec::new();
        for i in 0..n {
            let name = format!("u{i}");
            let new = NewUser {
                username: &name,
                name: "",
                email: "",
                is_superuser: false,
            };
            users.push(store.create_user(new).await.unwrap());
        }
        (store, dir, source, users)
    }

    /// Waits (bounded) until the writer's queue holds `queued` creates.
    async fn until_queued(store: &Store, queued: usize) {
        let tx = &store.creates.as_ref().unwrap().tx;
        for _ in 0..1000 {
            if tx.max_capacity() - tx.capacity() == queued {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the queue never held {queued} creates");
    }

    /// Spawns creates of `users` (identifier `prefix-i`), each with `token`.
    fn spawn_creates(
        store: &Store,
        source: Uuid,
        users: &[i32],
        prefix: &str,
        token: Option<Vec<u8>>,
    ) -> Vec<tokio::task::JoinHandle<Result<crate::domain::model::Connection, Error>>> {
        users
            .iter()
            .enumerate()
            .map(|(i, &user)| {
                let store = store.clone();
                // Bytes that fill pages; they are never opened.
                let token = token.clone().map(|sealed| crate::storage::RowSealed {
                    row_key: Uuid::new_v4(),
                    sealed,
                });
                let identifier = format!("{prefix}-{i}");
                tokio::spawn(async move {
                    store
                        .insert_connection(user, user, source, identifier, token, None)
                        .await
                })
            })
            .collect()
    }

    async fn pragma(store: &Store, sql: &str) -> i64 {
        let row = store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                sql.to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    async fn rows(store: &Store) -> u64 {
        use sea_orm::{EntityTrait, PaginatorTrait};
        entity::user_oauth_source_connection::Entity::find()
            .count(store.connection())
            .await
            .unwrap()
    }

    /// Creates queued behind a held write lock go out together; the one that breaks a
    /// uniqueness rule fails alone and the others, and their audit events, are committed.
    #[tokio::test]
    async fn a_violation_fails_alone_in_its_batch() {
        let (store, dir, source, users) = store(16, 8).await;
        let gate = store.write_gate.clone().unwrap();
        let held = gate.lock().await;
        let mut tasks = Vec::new();
        // Eight distinct links, and a second identity of the first user at the same source.
        for (i, user) in users.iter().copied().chain([users[0]]).enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .insert_connection(user, user, source, format!("id-{i}"), None, None)
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        let mut created = 0;
        let mut conflicts = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => created += 1,
                Err(e) => conflicts.push(e),
            }
        }
        assert_eq!(created, 8);
        assert_eq!(conflicts, [Error::Conflict(UniqueRule::UserSource)]);
        let (events, total) = store.audit_events(0, 100).await.unwrap();
        assert_eq!((events.len(), total), (8, 8));
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// SQLITE_FULL in the middle of a batch (the file may not grow past `max_page_count`):
    /// no create of the batch is stored, each is answered unavailable, and once there is room
    /// again the same creates succeed.
    #[tokio::test]
    async fn a_full_disk_fails_the_whole_batch_and_the_writer_recovers() {
        // One connection: the PRAGMA below limits the writer's own connection.
        let (store, dir, source, users) = store(1, 18).await;
        let token = vec![7u8; 16 * 1024];
        // The pages one create with this token takes.
        let before = pragma(&store, "PRAGMA page_count").await;
        let sanity = spawn_creates(&store, source, &users[..1], "sanity", Some(token.clone()));
        sanity.into_iter().next().unwrap().await.unwrap().unwrap();
        let per_row = pragma(&store, "PRAGMA page_count").await - before;
        assert!(per_row >= 4, "a create takes {per_row} pages");

        // The writer takes a small plug create and waits at the gate; sixteen large creates
        // queue behind it and go out as the next batch.
        let gate = store.write_gate.clone().unwrap();
        let held = gate.lock().await;
        let (reply, plug) = tokio::sync::oneshot::channel();
        let row = entity::user_oauth_source_connection::ActiveModel {
            user_id: Set(users[1]),
            source_id: Set(source),
            identifier: Set("plug".into()),
            access_token: Set(None),
            expires: Set(None),
            created: Set(chrono::Utc::now()),
            last_updated: Set(chrono::Utc::now()),
            ..Default::default()
        };
        let creates = store.creates.as_ref().unwrap();
        let create = super::Create {
            actor: users[1],
            row,
            reply,
        };
        creates.send(create).await.unwrap();
        // Queued, then taken.
        until_queued(&store, 0).await;
        let batch = spawn_creates(&store, source, &users[2..18], "full", Some(token.clone()));
        until_queued(&store, 16).await;
        // Room for the plug and a row or two of the batch, not for sixteen.
        let limit = pragma(&store, "PRAGMA page_count").await + 3 * per_row;
        assert_eq!(
            pragma(&store, &format!("PRAGMA max_page_count = {limit}")).await,
            limit
        );
        drop(held);
        plug.await.unwrap().unwrap();
        for task in batch {
            assert_eq!(task.await.unwrap().unwrap_err(), Error::Unavailable);
        }
        assert_eq!(rows(&store).await, 2, "the sanity row and the plug only");
        let (_, events) = store.audit_events(0, 100).await.unwrap();
        assert_eq!(events, 2);
        // The batch's first row had room (one still fits under the same limit, as the
        // rollback gave back what the batch took): the failure came mid-batch.
        let one = spawn_creates(&store, source, &users[2..3], "one", Some(token.clone()));
        one.into_iter().next().unwrap().await.unwrap().unwrap();

        // Space returns: the service goes on without a restart.
        pragma(&store, "PRAGMA max_page_count = 2147483646").await;
        for task in spawn_creates(&store, source, &users[3..18], "full", Some(token)) {
            task.await.unwrap().unwrap();
        }
        assert_eq!(rows(&store).await, 18);
        assert!(store.ping().await);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A writer that dies is restarted; while it is down the store is not ready and creates
    /// are refused, and the creates it was holding are not stored.
    #[tokio::test]
    async fn a_dead_writer_is_not_ready_and_is_restarted() {
        let (store, dir, source, users) = store(4, 3).await;
        assert!(store.ping().await);
        store.crash_writer(true);
        // The writer takes this create and dies before its transaction.
        let lost = spawn_creates(&store, source, &users[..1], "lost", None);
        for task in lost {
            assert_eq!(task.await.unwrap().unwrap_err(), Error::Unavailable);
        }
        // It dies again at every restart while the hook is set: not ready.
        wait_ready(&store, false).await;
        let refused = spawn_creates(&store, source, &users[1..2], "refused", None);
        for task in refused {
            assert_eq!(task.await.unwrap().unwrap_err(), Error::Unavailable);
        }
        store.crash_writer(false);
        wait_ready(&store, true).await;
        for task in spawn_creates(&store, source, &users, "back", None) {
            task.await.unwrap().unwrap();
        }
        assert_eq!(rows(&store).await, 3, "only the creates after the restart");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    async fn wait_ready(store: &Store, ready: bool) {
        for _ in 0..500 {
            if store.ping().await == ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("readiness never became {ready}");
    }
}
