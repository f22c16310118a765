//! Failing fast while PostgreSQL refuses connections. sqlx's pool retries a refused connection
//! until its acquire timeout, so without this every request would wait out the database
//! timeout during an outage. Waiting for a pooled connection (or for BEGIN, which writes
//! nothing) races a probe after a moment (one direct connection, no retries, shared by all
//! waiters for a moment): when the server refuses it, the wait is answered "unavailable" at
//! once. A statement, once it has its connection, is never cancelled by the probe: it runs to
//! completion, so a write the server may have committed is never reported as not written
//! (storage::write_error tells "not stored" from "unknown"). A slow but reachable database
//! still gets the whole timeout; SQLite is left alone.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, Connection as _, Executor as _, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, RuntimeErr, Statement, TransactionOptions, TransactionTrait,
};
use sea_query_sqlx::SqlxValues;
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
    /// Statements this module runs itself (SeaORM's metric callback counts the others).
    statements: Arc<AtomicU64>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Db {
    pub(crate) fn new(
        inner: DatabaseConnection,
        url: &str,
        timeout: Duration,
        statements: Arc<AtomicU64>,
    ) -> Db {
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
        Db {
            inner,
            probe,
            statements,
        }
    }

    /// Races `op` against the probe. Only for operations that write nothing: waiting for a
    /// connection, BEGIN, a ping.
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

    /// PostgreSQL: a pooled connection, failing fast while the server refuses connections.
    /// `None` on SQLite.
    async fn acquire(&self) -> Result<Option<PoolConnection<Postgres>>, DbErr> {
        if self.probe.is_none() {
            return Ok(None);
        }
        let pool = self.inner.get_postgres_connection_pool();
        // sqlx's futures are several kilobytes: boxed where they are made, so only a pointer
        // moves through `guard`, `select!` and the callers' state (the profile showed these
        // moves as a fifth of a create's instructions).
        let connection = self
            .guard(Box::pin(async {
                pool.acquire().await.map_err(sqlx_conn_acquire_err)
            }))
            .await?;
        self.statements.fetch_add(1, Ordering::Relaxed);
        Ok(Some(connection))
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let Some(mut connection) = Box::pin(self.acquire()).await? else {
            return self.inner.execute_raw(stmt).await;
        };
        // Not raced: the statement may already be at the server.
        Box::pin(query(&stmt).execute(&mut *connection))
            .await
            .map(Into::into)
            .map_err(sqlx_error_to_exec_err)
    }

    async fn execute_sql(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let Some(mut connection) = Box::pin(self.acquire()).await? else {
            return self.inner.execute_unprepared(sql).await;
        };
        connection
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .map(Into::into)
            .map_err(sqlx_error_to_exec_err)
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let Some(mut connection) = Box::pin(self.acquire()).await? else {
            return self.inner.query_one_raw(stmt).await;
        };
        match Box::pin(query(&stmt).fetch_one(&mut *connection)).await {
            Ok(row) => Ok(Some(row.into())),
            Err(sqlx::Error::RowNotFound) => Ok(None),
            Err(e) => Err(sqlx_error_to_query_err(e)),
        }
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(mut connection) = Box::pin(self.acquire()).await? else {
            return self.inner.query_all_raw(stmt).await;
        };
        Box::pin(query(&stmt).fetch_all(&mut *connection))
            .await
            .map(|rows| rows.into_iter().map(Into::into).collect())
            .map_err(sqlx_error_to_query_err)
    }

    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.guard(Box::pin(self.inner.begin())).await
    }

    pub(crate) async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.guard(Box::pin(self.inner.begin_with_options(options)))
            .await
    }

    pub(crate) async fn ping(&self) -> Result<(), DbErr> {
        self.guard(Box::pin(self.inner.ping())).await
    }

    pub(crate) async fn close(self) -> Result<(), DbErr> {
        self.inner.close().await
    }
}

// SeaORM's own error mappings (private in SeaORM), so the rest of storage sees one shape:
// `ConnectionAcquire`/`Conn` before a statement was sent, `Exec`/`Query` after.
fn sqlx_conn_acquire_err(e: sqlx::Error) -> DbErr {
    match e {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        e => DbErr::Conn(RuntimeErr::SqlxError(e.into())),
    }
}

fn sqlx_error_to_exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e.into()))
}

fn sqlx_error_to_query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e.into()))
}

/// A SeaORM statement as a sqlx query, bound as SeaORM binds it.
fn query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt
        .values
        .clone()
        .unwrap_or(sea_orm::sea_query::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
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
        Box::pin(self.execute(stmt))
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
        Box::pin(self.execute_sql(sql))
    }

    fn query_one_raw<'a, 'b>(
        &'a self,
        stmt: Statement,
    ) -> BoxFuture<'b, Result<Option<QueryResult>, DbErr>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.query_one(stmt))
    }

    fn query_all_raw<'a, 'b>(
        &'a self,
        stmt: Statement,
    ) -> BoxFuture<'b, Result<Vec<QueryResult>, DbErr>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.query_all(stmt))
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.inner.is_mock_connection()
    }
}
