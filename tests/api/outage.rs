//! PostgreSQL killing the service's connections (an admin's `pg_terminate_backend`, a failover,
//! a proxy restart): requests in flight fail with the typed "unavailable" error or succeed,
//! never a 500, and the pool replaces the dead connections by itself. (A PostgreSQL stopped
//! outright is tests/faults.rs.) PostgreSQL only: SQLite has no server to lose.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use entity::user_oauth_source_connection as conn;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, EntityTrait};
use serde_json::json;

use crate::helpers::TestApp;

const PATH: &str = "/api/v3/sources/user_connections/oauth/";

fn postgres() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// A PostgreSQL-only test without PostgreSQL: says so where it is seen (stderr is not
/// captured when written directly), and fails where PostgreSQL is required.
pub fn skip_without_postgres(test: &str) {
    crate::helpers::assert_postgres_not_required(test);
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs TEST_DATABASE_URL=postgres://…"
    );
}

/// Terminates every session of `database` but the caller's; returns how many.
async fn kill_sessions(admin_url: &str, database: &str) -> i64 {
    let admin = Database::connect(admin_url).await.unwrap();
    let row = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    admin.close().await.ok();
    row.try_get::<i64>("", "n").unwrap()
}

#[derive(Debug)]
enum Outcome {
    Created(i64),
    Unavailable,
    /// The connection died after the write was sent: perhaps stored.
    Unknown,
    Other(String),
}

/// A create of `identifier` at `source`, classified.
async fn create(app: &TestApp, source: uuid::Uuid, identifier: &str) -> (String, Outcome) {
    (
        identifier.to_owned(),
        create_once(app, source, identifier).await,
    )
}

async fn create_once(app: &TestApp, source: uuid::Uuid, identifier: &str) -> Outcome {
    let (status, body) = app
        .rest(
            Method::POST,
            PATH,
            Some(&app.superuser_key),
            Some(json!({"source": source, "identifier": identifier})),
        )
        .await;
    match (status, &body) {
        (201, b) => Outcome::Created(b["pk"].as_i64().unwrap()),
        (503, b) if b["code"] == "service_unavailable" => Outcome::Unavailable,
        (504, b) if b["code"] == "outcome_unknown" => Outcome::Unknown,
        _ => Outcome::Other(format!("{status} {body}")),
    }
}

#[tokio::test]
async fn killed_connections_fail_typed_and_are_replaced() {
    let Some(admin_url) = postgres() else {
        return skip_without_postgres("killed_connections_fail_typed_and_are_replaced");
    };
    let app = Arc::new(TestApp::spawn().await);
    let database = app.database_url.rsplit('/').next().unwrap().to_owned();
    // The superuser creates all rows; one connection per (user, source), so one source each.
    let mut sources = Vec::new();
    for i in 0..400 {
        sources.push(
            app.add_source(&format!("Kill {i}"), &format!("kill-{i}"))
                .await,
        );
    }
    let sources = Arc::new(sources);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (app, stop, next, sources) = (app.clone(), stop.clone(), next.clone(), sources.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= sources.len() {
                    break;
                }
                seen.push(create(&app, sources[n], &format!("kill-{n}")).await);
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut killed = 0;
    for _ in 0..3 {
        killed += kill_sessions(&admin_url, &database).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(killed > 0, "the service had sessions to kill");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.extend(w.await.unwrap());
    }
    let others: Vec<&str> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Other(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert!(others.is_empty(), "untyped outcomes: {others:?}");

    // Afterwards the pool serves again, without a restart.
    let (status, body) = app.rest(Method::GET, "/-/health/ready/", None, None).await;
    assert_eq!(status, 200, "{body}");
    let after = app.add_source("After", "after").await;
    match create_once(&app, after, "after-the-kill").await {
        Outcome::Created(_) => {}
        other => panic!("after the kill: {other:?}"),
    }
    // Every acknowledged create is stored, every unavailable one is not; unknown ones may be
    // either.
    let stored: std::collections::HashMap<String, i64> = conn::Entity::find()
        .all(app.service.store().connection())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.identifier, i64::from(r.id)))
        .collect();
    let (mut unavailable, mut unknown, mut unknown_stored) = (0, 0, 0);
    for (identifier, outcome) in &outcomes {
        let row = stored.get(identifier);
        match outcome {
            Outcome::Created(pk) => assert_eq!(row, Some(pk), "acknowledged {identifier}"),
            Outcome::Unavailable => {
                assert_eq!(row, None, "{identifier} answered unavailable but stored");
                unavailable += 1;
            }
            Outcome::Unknown => {
                unknown += 1;
                unknown_stored += usize::from(row.is_some());
            }
            Outcome::Other(_) => unreachable!(),
        }
    }
    eprintln!(
        "{} creates, {unavailable} unavailable, {unknown} unknown ({unknown_stored} stored), \
         {killed} sessions killed",
        outcomes.len()
    );
}
