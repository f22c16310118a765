//! Storage: the only module that touches SeaORM. It maps database failures to the domain
//! error (constraint names to field errors, lost connections to `Unavailable`).
mod batch;
mod connections;
mod custody;
mod events;
mod notify;
mod reach;
mod sources;
mod subjects;
mod tokens;
mod users;
mod vault;

pub use connections::{ConnectionUpdate, Cursor, KeysetPage, RowSealed, SealedTokens, cursor_for};
pub use custody::{RecordedKey, SealedSecret, SealedToken, SecretReseal, TokenColumn, TokenReseal};
pub use sources::{NewSource, TokenEndpointChange};
pub use tokens::NewToken;
pub use users::NewUser;
pub use vault::{RefreshLease, SealedRefresh, TokenEndpoint, VaultRow};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, RuntimeErr, SqlErr, SqliteTransactionMode, TransactionOptions,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::domain::error::{Error, UniqueRule};

/// Pool and timeout settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// How long a request waits for the database before it is answered "unavailable".
    pub timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    /// The pool; on PostgreSQL it fails fast while the server refuses connections.
    db: reach::Db,
    /// Statements run through the pool, for tests that count queries.
    statements: Arc<AtomicU64>,
    /// SQLite allows one writer: writers queue here instead of failing with "database is
    /// locked" when two deferred transactions both try to upgrade.
    write_gate: Option<Arc<Mutex<()>>>,
    /// SQLite: connection creates go through the group-commit writer (storage/batch.rs).
    creates: Option<batch::Creates>,
    max_connections: u32,
    /// Committed changes of connections, for subscribers (storage/notify.rs).
    changes: notify::Changes,
}

/// The kinds of database this service runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Connections of the pool: open (idle or in use), idle, and the configured maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// A fixed key for the PostgreSQL advisory lock that serialises migrations and bootstrap
/// across instances ("oauthlnk" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6f61_7574_686c_6e6b;

/// The file of a SQLite URL (`sqlite://data/x.sqlite3?mode=rwc` → `data/x.sqlite3`); `None`
/// for other databases and in-memory ones.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Creates a new SQLite file readable by its owner only, before SQLite opens it: SQLite gives
/// its `-wal` and `-shm` files the database file's mode, so they are private too. (SQLite
/// would create it 0644, less the umask.) An existing file is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the database file is readable by other users; `chmod 600` it and its -wal/-shm files");
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

impl Store {
    pub async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Store> {
        if let Some(file) = sqlite_file(url)
            && url.contains("mode=rwc")
        {
            create_private(&file)?;
        }
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false)
            .max_connections(options.max_connections)
            .min_connections(1)
            .connect_timeout(options.timeout)
            .acquire_timeout(options.timeout)
            // Ping only connections idle for a while (the ones a restart or a proxy may have
            // cut), not every checkout: a ping per statement was a round trip per statement.
            .test_before_acquire_if_idle_for(Duration::from_secs(1));
        let busy_timeout = options.timeout.max(Duration::from_secs(5));
        opts.map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
            o.journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the API acknowledges it.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(busy_timeout)
        });
        let mut attempt = 0;
        let mut db = loop {
            match Database::connect(opts.clone()).await {
                // Two processes opening one new SQLite file at once: putting it in WAL mode
                // takes a lock SQLite does not wait for ("database is locked" at once); the
                // retry finds the file in WAL mode already.
                Err(e)
                    if sqlite_file(url).is_some()
                        && attempt < 10
                        && e.to_string().contains("database is locked") =>
                {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "opening SQLite raced another process; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                result => break result?,
            }
        };
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let write_gate = match db.get_database_backend() {
            DbBackend::Sqlite => Some(Arc::new(Mutex::new(()))),
            _ => None,
        };
        let db = reach::Db::new(db, url, options.timeout, statements.clone());
        let creates = write_gate
            .as_ref()
            .map(|gate| batch::start(db.clone(), gate.clone()));
        Ok(Store {
            db,
            statements,
            write_gate,
            creates,
            max_connections: options.max_connections,
            changes: notify::Changes::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => Backend::Sqlite,
            _ => Backend::Postgres,
        }
    }

    /// Applies pending migrations. On PostgreSQL under an advisory lock, so instances
    /// starting together take turns.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            match self.migrate_once().await {
                // Two processes opening one new SQLite file: the loser of the write lock fails
                // at once (SQLite does not wait on a lock upgrade); its retry finds the work done.
                Err(e) if self.backend() == Backend::Sqlite && attempt < 10 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                result => return result,
            }
        }
    }

    async fn migrate_once(&self) -> anyhow::Result<()> {
        let _gate = self.write_gate().await;
        let txn = self.db.begin().await?;
        self.lock_for_setup(&txn).await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Number of migrations not yet applied.
    pub async fn pending_migrations(&self) -> anyhow::Result<usize> {
        Ok(Migrator::get_pending_migrations(&self.db.inner)
            .await?
            .len())
    }

    async fn lock_for_setup(&self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        if self.backend() == Backend::Postgres {
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await?;
        }
        Ok(())
    }

    /// Readiness: can we run a statement now, and (SQLite) is the writer of creates running?
    pub async fn ping(&self) -> bool {
        let writer_up = self.creates.as_ref().is_none_or(batch::Creates::is_up);
        writer_up && self.db.ping().await.is_ok()
    }

    /// Test hook: the SQLite writer dies now and at every restart until called with `false`.
    #[cfg(test)]
    pub(crate) fn crash_writer(&self, on: bool) {
        if let Some(creates) = &self.creates {
            creates.crash(on);
        }
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }

    async fn write_gate(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    /// A write transaction (queued behind other writers on SQLite).
    async fn write_txn(&self) -> Result<(Option<MutexGuard<'_, ()>>, DatabaseTransaction), Error> {
        let gate = self.write_gate().await;
        // The gate only queues this process's writers. Against another process on the same
        // SQLite file, a deferred transaction that reads first cannot upgrade to a writer once
        // the other committed ("database is locked", no busy wait): take the write lock at
        // BEGIN, which waits out the busy timeout instead. (Ignored by PostgreSQL.)
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: gate.as_ref().map(|_| SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
            .map_err(db_error)?;
        Ok((gate, txn))
    }

    /// The connection pool right now, for /metrics.
    pub fn pool_stats(&self) -> PoolStats {
        let (open, idle) = match self.db.get_database_backend() {
            DbBackend::Sqlite => {
                let pool = self.db.inner.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.db.inner.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        PoolStats {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.max_connections,
        }
    }

    /// Statements executed so far (SQLite and PostgreSQL alike).
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    #[doc(hidden)]
    /// The raw connection, for tests that bypass the service.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db.inner
    }
}

/// Which uniqueness rule a violation message names. PostgreSQL reports the constraint name;
/// SQLite reports the columns.
fn unique_rule(message: &str) -> Option<UniqueRule> {
    if message.contains("uq_connection_source_identifier")
        || message.contains(
            "user_oauth_source_connections.source_id, user_oauth_source_connections.identifier",
        )
    {
        Some(UniqueRule::SourceIdentifier)
    } else if message.contains("uq_connection_user_source")
        || message.contains(
            "user_oauth_source_connections.user_id, user_oauth_source_connections.source_id",
        )
    {
        Some(UniqueRule::UserSource)
    } else {
        None
    }
}

/// The uniqueness rule a failure broke, without logging anything.
pub(crate) fn db_error_quiet(err: &DbErr) -> Option<Error> {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            unique_rule(&message).map(Error::Conflict)
        }
        _ => None,
    }
}

/// Maps a database failure to the domain error.
pub(crate) fn db_error(err: DbErr) -> Error {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err()
        && let Some(rule) = unique_rule(&message)
    {
        return Error::Conflict(rule);
    }
    if is_unavailable(&err) {
        let err = err.to_string();
        tracing::warn!(error = ?crate::telemetry::clip_to(&err, 1000), "database unavailable");
        return Error::Unavailable;
    }
    Error::internal(err)
}

/// Maps the failure of a write whose statement, or COMMIT, may have reached PostgreSQL. A
/// connection lost before the statement went out (no connection, refused, pool timeout) is
/// `Unavailable`: nothing was written. Lost after it went out, nobody can tell whether the
/// server committed: `OutcomeUnknown`, never "unavailable, retry". (SQLite: a failed statement
/// or COMMIT did not commit, so the ordinary mapping holds.)
pub(crate) fn write_error(backend: DbBackend, err: DbErr) -> Error {
    if backend == DbBackend::Postgres && lost_after_send(&err) {
        tracing::warn!(error = %err, "connection lost after a write was sent: outcome unknown");
        return Error::OutcomeUnknown;
    }
    db_error(err)
}

/// Commits a write transaction: a connection lost during COMMIT leaves the outcome unknown.
pub(super) async fn commit(txn: DatabaseTransaction) -> Result<(), Error> {
    let backend = txn.get_database_backend();
    txn.commit().await.map_err(|e| write_error(backend, e))
}

/// A statement's (not an acquire's) failure that says the connection went away, not that
/// the server refused the statement.
pub(super) fn lost_after_send(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    match e.as_ref() {
        Sqlx::Io(_) | Sqlx::Protocol(_) | Sqlx::Tls(_) | Sqlx::WorkerCrashed => true,
        // The backend terminated (57P01-57P05) or the connection broke (08): whether that
        // came before or after the commit is not said. 57014 (cancelled) rolled back.
        Sqlx::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => false,
    }
}

pub(super) fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
                Sqlx::Tls(_) | Sqlx::Protocol(_) => true,
                // PostgreSQL shutting down or terminating our backend (class 57: operator
                // intervention; 08: connection exception).
                Sqlx::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("57") || c.starts_with("08")),
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_name_their_rule_on_both_databases() {
        assert_eq!(
            unique_rule(
                "duplicate key value violates unique constraint \"uq_connection_user_source\""
            ),
            Some(UniqueRule::UserSource)
        );
        assert_eq!(
            unique_rule(
                "UNIQUE constraint failed: user_oauth_source_connections.source_id, user_oauth_source_connections.identifier"
            ),
            Some(UniqueRule::SourceIdentifier)
        );
        assert_eq!(
            unique_rule("UNIQUE constraint failed: users.username"),
            None
        );
    }
}
