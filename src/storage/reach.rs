//! Failing fast while PostgreSQL refuses connections. sqlx's pool retries a refused connection
//! until its acquire timeout, so without this every request would wait out the database
//! timeout during an outage. Each pool operation that is still pending after a moment races a
//! probe (one direct connection, no retries, shared by all operations for a moment): when the
//! server refuses it, the operation is answered "unavailable" at once. A slow but reachable
//! database still gets the whole timeout; SQLite is left alone.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::Mutex;

/// How long an operation runs before the probe is consulted, and how long a probe's answer
/// stands for everyone.
const PROBE_AFTER: Duration = Duration::from_millis(200);

struct Probe {
    options: PgConnectOptions,
    timeout: Duration,
    last: Mutex<Option<(Instant, bool)>>,
}

impl Probe {
    /// Does the server refuse connections right now?
    async fn refused(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, refused)) = *last
            && at.elapsed() < PROBE_AFTER
        {
            return refused;
        }
        let refused =
            match tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                .await
            {
                Ok(Ok(connection)) => {
                    let _ = connection.close().await;
                    false
                }
                // Refused, reset, or "shutting down / starting up".
                Ok(Err(_)) => true,
                // No answer: perhaps only slow; the pool's own timeout decides.
                Err(_) => false,
            };
        *last = Some((Instant::now(), refused));
        refused
    }
}

/// The pool, with the probe on PostgreSQL.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) inner: DatabaseConnection,
    probe: Option<Arc<Probe>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Db {
    pub(crate) fn new(inner: DatabaseConnection, url: &str, timeout: Duration) -> Db {
        let probe = match inner.get_database_backend() {
            DbBackend::Postgres => url.parse::<PgConnectOptions>().ok().map(|options| {
                Arc::new(Probe {
                    options,
                    timeout,
                    last: Mutex::new(None),
                })
            }),
            _ => None,
        };
        Db { inner, probe }
    }

    async fn guard<T>(&self, op: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbErr> {
        let Some(probe) = &self.probe else {
            return op.await;
        };
        let refused = async {
            loop {
                tokio::time::sleep(PROBE_AFTER).await;
                if probe.refused().await {
                    return;
                }
            }
        };
        tokio::select! {
            result = op => result,
            () = refused => Err(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)),
        }
    }

    pub(crate) fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.guard(self.inner.begin()).await
    }

    pub(crate) async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.guard(self.inner.begin_with_options(options)).await
    }

    pub(crate) async fn ping(&self) -> Result<(), DbErr> {
        self.guard(self.inner.ping()).await
    }

    pub(crate) async fn close(self) -> Result<(), DbErr> {
        self.inner.close().await
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// `ConnectionTrait` is an `async_trait`; these are its methods written out.
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    fn execute_raw<'a, 'b>(&'a self, stmt: Statement) -> BoxFuture<'b, Result<ExecResult, DbErr>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.guard(self.inner.execute_raw(stmt)))
    }

    fn execute_unprepared<'a, 'c, 'b>(
        &'a self,
        sql: &'c str,
    ) -> BoxFuture<'b, Result<ExecResult, DbErr>>
    where
        'a: 'b,
        'c: 'b,
        Self: 'b,
    {
        Box::pin(self.guard(self.inner.execute_unprepared(sql)))
    }

    fn query_one_raw<'a, 'b>(
        &'a self,
        stmt: Statement,
    ) -> BoxFuture<'b, Result<Option<QueryResult>, DbErr>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.guard(self.inner.query_one_raw(stmt)))
    }

    fn query_all_raw<'a, 'b>(
        &'a self,
        stmt: Statement,
    ) -> BoxFuture<'b, Result<Vec<QueryResult>, DbErr>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.guard(self.inner.query_all_raw(stmt)))
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.inner.is_mock_connection()
    }
}
