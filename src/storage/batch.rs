//! SQLite group commit of connection creates. SQLite has one writer, and with
//! `synchronous=FULL` every commit waits for the disk: one transaction per create made that
//! wait, and the write lock's round trips to SQLite's worker thread, the ceiling of concurrent
//! creates (bench/, issue 5). Creates that arrive while a batch is being written queue up and go
//! together in the next transaction: one BEGIN, two statements per create, one COMMIT (one disk
//! wait). Nobody is answered before the commit that holds their row, so an acknowledged create
//! survives a crash exactly as before.
//!
//! A create that breaks a constraint fails alone: SQLite undoes only the failing statement and
//! the transaction goes on with the others.
use std::sync::Arc;

use entity::user_oauth_source_connection as conn;
use sea_orm::{ActiveModelTrait, DbErr, SqliteTransactionMode, TransactionOptions};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::events::{audit_log, insert_event};
use super::reach::Db;

/// At most this many creates share one transaction.
const MAX_BATCH: usize = 64;

pub(super) struct Create {
    pub actor: i32,
    pub row: conn::ActiveModel,
    pub reply: oneshot::Sender<Result<conn::Model, DbErr>>,
}

/// The sending side; the writer task ends when every sender is gone.
pub(super) type Creates = mpsc::Sender<Create>;

pub(super) fn start(db: Db, gate: Arc<Mutex<()>>) -> Creates {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(writer(db, gate, rx));
    tx
}

async fn writer(db: Db, gate: Arc<Mutex<()>>, mut rx: mpsc::Receiver<Create>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Other writes of this process (updates, deletes) wait at the same gate.
        let guard = gate.lock().await;
        write(&db, std::mem::take(&mut batch)).await;
        drop(guard);
    }
}

async fn write(db: &Db, batch: Vec<Create>) {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let txn = match db.begin_with_options(options).await {
        Ok(txn) => txn,
        Err(e) => return fail_all(batch, &e),
    };
    let mut done = Vec::with_capacity(batch.len());
    for create in batch {
        let inserted = match create.row.clone().insert(&txn).await {
            Ok(m) => m,
            Err(e) => {
                // Only the statement was undone: the others go on.
                done.push((create, Err(e)));
                continue;
            }
        };
        if let Err(e) = insert_event(&txn, create.actor, "create", &inserted).await {
            // A row without its audit event must not commit: the whole batch goes.
            let _ = txn.rollback().await;
            let creates = done.into_iter().map(|(c, _)| c).chain([create]);
            return fail_all(creates.collect(), &e);
        }
        done.push((create, Ok(inserted)));
    }
    if let Err(e) = txn.commit().await {
        return fail_all(done.into_iter().map(|(c, _)| c).collect(), &e);
    }
    for (create, result) in done {
        if let Ok(row) = &result {
            audit_log(create.actor, "create", row);
        }
        let _ = create.reply.send(result);
    }
}

fn fail_all(batch: Vec<Create>, e: &DbErr) {
    for create in batch {
        let _ = create.reply.send(Err(copy(e)));
    }
}

/// `DbErr` is not `Clone`; the copy keeps what the error mapping decides by: whether the
/// database was unreachable, and the message.
fn copy(e: &DbErr) -> DbErr {
    if super::is_unavailable(e) {
        DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed)
    } else {
        DbErr::Custom(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewSource, NewUser, Store, StoreOptions};
    use crate::domain::error::{Error, UniqueRule};
    use crate::domain::model::{PolicyEngineMode, UserMatchingMode};

    /// Creates queued behind a held write lock go out together; the one that breaks a
    /// uniqueness rule fails alone and the others, and their audit events, are committed.
    #[tokio::test]
    async fn a_violation_fails_alone_in_its_batch() {
        let dir = std::env::temp_dir().join(format!("oauthlink-batch-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/batch.sqlite3?mode=rwc", dir.display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
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
        for i in 0..8 {
            let name = format!("u{i}");
            let new = NewUser {
                username: &name,
                name: "",
                email: "",
                is_superuser: false,
            };
            users.push(store.create_user(new).await.unwrap());
        }

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
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
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
}
