//! Races and scale-out. 100 concurrent creates that all break one uniqueness rule: exactly one
//! wins, the rest get the typed conflict (never a 500, never a second row), on one instance and
//! split across two instances over one database. Then a bounded mixed load whose acknowledged
//! writes are exactly what the database holds afterwards.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::user_oauth_source_connection as conn;
use oauthlink::storage::NewUser;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{CREATE, TestApp, code};

const PATH: &str = "/api/v3/sources/user_connections/oauth/";
const RACERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Created(i32),
    /// The conflict, with the message the caller saw.
    Conflict(String),
    Other(String),
}

/// One create by the superuser, through GraphQL (even `i`) or REST (odd `i`).
async fn create(app: &TestApp, i: usize, user: i32, source: Uuid, identifier: &str) -> Outcome {
    if i.is_multiple_of(2) {
        let r = app
            .graphql(
                Some(&app.superuser_key),
                CREATE,
                json!({"input": {"source": source, "identifier": identifier, "user": user}}),
            )
            .await;
        match r["data"]["createUserOAuthConnection"]["pk"].as_i64() {
            Some(pk) => Outcome::Created(pk as i32),
            None if code(&r) == "CONFLICT" => {
                Outcome::Conflict(r["errors"][0]["message"].as_str().unwrap_or("").to_owned())
            }
            None => Outcome::Other(r.to_string()),
        }
    } else {
        let (status, body) = app
            .rest(
                Method::POST,
                PATH,
                Some(&app.superuser_key),
                Some(json!({"source": source, "identifier": identifier, "user": user})),
            )
            .await;
        match (status, body["pk"].as_i64()) {
            (201, Some(pk)) => Outcome::Created(pk as i32),
            // DRF's UniqueTogetherValidator shape, nothing else in the body.
            (400, _)
                if body.as_object().map(|o| o.len()) == Some(1)
                    && body["non_field_errors"].as_array().map(Vec::len) == Some(1) =>
            {
                Outcome::Conflict(body["non_field_errors"][0].as_str().unwrap().to_owned())
            }
            _ => Outcome::Other(format!("{status} {body}")),
        }
    }
}

/// Rows of the source, read straight from the database.
async fn rows(app: &TestApp, source: Uuid) -> Vec<conn::Model> {
    conn::Entity::find()
        .filter(conn::Column::SourceId.eq(source))
        .all(app.service.store().connection())
        .await
        .unwrap()
}

async fn plain_users(app: &TestApp, prefix: &str, n: usize) -> Vec<i32> {
    let store = app.service.store();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let username = format!("{prefix}{i}");
        ids.push(
            store
                .create_user(NewUser {
                    username: &username,
                    name: "",
                    email: "",
                    is_superuser: false,
                })
                .await
                .unwrap(),
        );
    }
    ids
}

/// The instances to spread requests over: the app, plus a second server on its database.
async fn instances(app: TestApp, n: usize) -> Vec<Arc<TestApp>> {
    let mut all = Vec::new();
    for _ in 1..n {
        all.push(Arc::new(app.another_instance().await));
    }
    // The owner of the database goes first so that it is dropped last.
    all.insert(0, Arc::new(app));
    all
}

/// Fires `RACERS` creates at once (request i on instance i % n, half GraphQL, half REST),
/// where `attempt(i)` gives (user, identifier); checks one winner, conflicts for the rest with
/// `message`, and one row.
async fn race(instances: &[Arc<TestApp>], attempt: impl Fn(usize) -> (i32, String), message: &str) {
    let source = instances[0].source;
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let app = instances[i % instances.len()].clone();
            let start = start.clone();
            let (user, identifier) = attempt(i);
            tokio::spawn(async move {
                start.wait().await;
                create(&app, i, user, source, &identifier).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let won: Vec<i32> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Created(pk) => Some(*pk),
            _ => None,
        })
        .collect();
    assert_eq!(won.len(), 1, "one winner: {outcomes:?}");
    let losers = outcomes
        .iter()
        .filter(|o| **o == Outcome::Conflict(message.to_owned()))
        .count();
    assert_eq!(losers, RACERS - 1, "the rest conflict: {outcomes:?}");
    let rows = rows(&instances[0], source).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].id, won[0]);
}

async fn same_user_and_source(n: usize) {
    let app = TestApp::spawn().await;
    let user = plain_users(&app, "racer", 1).await[0];
    let all = instances(app, n).await;
    race(
        &all,
        |i| (user, format!("ext-{i}")),
        "The fields user, source must make a unique set.",
    )
    .await;
}

async fn same_source_and_identifier(n: usize) {
    let app = TestApp::spawn().await;
    let users = plain_users(&app, "racer", RACERS).await;
    let all = instances(app, n).await;
    race(
        &all,
        |i| (users[i], "the-same-external-id".to_owned()),
        "The fields source, identifier must make a unique set.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_creates_of_one_user_and_source_make_one_row() {
    same_user_and_source(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_creates_of_one_source_and_identifier_make_one_row() {
    same_source_and_identifier(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hundred_creates_of_one_user_and_source_make_one_row() {
    same_user_and_source(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hundred_creates_of_one_source_and_identifier_make_one_row() {
    same_source_and_identifier(2).await;
}

const CLIENTS: usize = 32;
const LOAD_FOR: Duration = Duration::from_secs(3);

/// What the clients were told, shared between them.
#[derive(Default)]
struct Ledger {
    /// Acknowledged creates: pk → identifier.
    created: BTreeMap<i32, String>,
    /// Acknowledged deletes.
    deleted: BTreeSet<i32>,
    /// Rows a client may try to delete (created, not yet deleted as far as we know).
    live: Vec<i32>,
    /// Answers that are neither success nor the expected refusal.
    unexpected: Vec<String>,
    counts: BTreeMap<&'static str, usize>,
}

async fn delete(app: &TestApp, graphql: bool, pk: i32) -> Result<bool, String> {
    if graphql {
        let r = app
            .graphql(
                Some(&app.superuser_key),
                "mutation($pk: Int!) { deleteUserOAuthSourceConnection(pk: $pk) }",
                json!({"pk": pk}),
            )
            .await;
        match (&r["data"]["deleteUserOAuthSourceConnection"], code(&r)) {
            (Value::Number(n), _) if n.as_i64() == Some(pk as i64) => Ok(true),
            (_, "NOT_FOUND") => Ok(false),
            _ => Err(r.to_string()),
        }
    } else {
        match app
            .rest(
                Method::DELETE,
                &format!("{PATH}{pk}/"),
                Some(&app.superuser_key),
                None,
            )
            .await
        {
            (204, _) => Ok(true),
            (404, _) => Ok(false),
            (s, b) => Err(format!("{s} {b}")),
        }
    }
}

async fn list(app: &TestApp, graphql: bool) -> Result<(), String> {
    if graphql {
        let r = app
            .graphql(
                Some(&app.superuser_key),
                "{ userOAuthSourceConnections(first: 50) { totalCount nodes { pk identifier } } }",
                json!({}),
            )
            .await;
        match r["data"]["userOAuthSourceConnections"]["nodes"].as_array() {
            Some(_) if r["errors"].is_null() => Ok(()),
            _ => Err(r.to_string()),
        }
    } else {
        match app
            .rest(
                Method::GET,
                &format!("{PATH}?page_size=50"),
                Some(&app.superuser_key),
                None,
            )
            .await
        {
            (200, b) if b["results"].is_array() => Ok(()),
            (s, b) => Err(format!("{s} {b}")),
        }
    }
}

/// `CLIENTS` clients for `LOAD_FOR`: creates over a small (user, source) space so that many
/// conflict, deletes of rows others may be deleting too, and lists. Afterwards the database
/// holds exactly the acknowledged creates minus the acknowledged deletes.
async fn mixed_load(n: usize) {
    let app = TestApp::spawn().await;
    let users = plain_users(&app, "mixed", 12).await;
    let mut sources = vec![app.source];
    for s in 0..3 {
        sources.push(app.add_source(&format!("S{s}"), &format!("s{s}")).await);
    }
    let all = instances(app, n).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let deadline = Instant::now() + LOAD_FOR;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let app = all[c % all.len()].clone();
            let (users, sources, ledger) = (users.clone(), sources.clone(), ledger.clone());
            tokio::spawn(async move {
                let mut seq = 0usize;
                while Instant::now() < deadline {
                    seq += 1;
                    let graphql = rand::random::<bool>();
                    let roll = rand::random_range(0..4);
                    let target = {
                        let l = ledger.lock().unwrap();
                        (!l.live.is_empty()).then(|| l.live[rand::random_range(0..l.live.len())])
                    };
                    let (kind, result) = match (roll, target) {
                        (0 | 1, _) | (2, None) => {
                            let user = users[rand::random_range(0..users.len())];
                            let source = sources[rand::random_range(0..sources.len())];
                            let identifier = format!("m-{c}-{seq}");
                            let i = usize::from(!graphql);
                            match create(&app, i, user, source, &identifier).await {
                                Outcome::Created(pk) => {
                                    let mut l = ledger.lock().unwrap();
                                    // Keys are never reused (AUTOINCREMENT / serial), or
                                    // the ledger could not tell two rows apart.
                                    if let Some(old) = l.created.insert(pk, identifier) {
                                        l.unexpected.push(format!("pk {pk} reused ({old})"));
                                    }
                                    l.live.push(pk);
                                    ("created", Ok(()))
                                }
                                Outcome::Conflict(_) => ("conflict", Ok(())),
                                Outcome::Other(e) => ("create", Err(e)),
                            }
                        }
                        (2, Some(pk)) => match delete(&app, graphql, pk).await {
                            Ok(true) => {
                                let mut l = ledger.lock().unwrap();
                                l.deleted.insert(pk);
                                l.live.retain(|p| *p != pk);
                                ("deleted", Ok(()))
                            }
                            // Someone else deleted it first.
                            Ok(false) => ("delete raced", Ok(())),
                            Err(e) => ("delete", Err(e)),
                        },
                        _ => ("listed", list(&app, graphql).await),
                    };
                    let mut l = ledger.lock().unwrap();
                    *l.counts.entry(kind).or_default() += 1;
                    if let Err(e) = result {
                        l.unexpected.push(format!("{kind}: {e}"));
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.unexpected.is_empty(), "{:?}", ledger.unexpected);
    let db = all[0].service.store().connection();
    let actual: BTreeMap<i32, String> = conn::Entity::find()
        .filter(conn::Column::SourceId.is_in(sources))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.identifier))
        .collect();
    let mut expected = ledger.created.clone();
    expected.retain(|pk, _| !ledger.deleted.contains(pk));
    assert_eq!(actual, expected, "counts: {:?}", ledger.counts);
    // The load did what it says: all kinds of request ran.
    for kind in ["created", "conflict", "deleted", "listed"] {
        assert!(ledger.counts.get(kind) > Some(&0), "{:?}", ledger.counts);
    }
    eprintln!("mixed load on {n} instance(s): {:?}", ledger.counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_load_keeps_exactly_the_acknowledged_writes() {
    mixed_load(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_mixed_load_keeps_exactly_the_acknowledged_writes() {
    mixed_load(2).await;
}

/// Updates and deletes racing on one row: each answer is a success or a plain 404, exactly one
/// delete wins, and the audit trail records one delete per row.
#[tokio::test]
async fn racing_updates_and_deletes_of_a_row_answer_typed_and_delete_once() {
    let app = Arc::new(TestApp::spawn().await);
    let key = app.superuser_key.clone();
    for round in 0..20 {
        let (status, created) = app
            .rest(
                Method::POST,
                PATH,
                Some(&key),
                Some(json!({"source": app.source, "identifier": format!("race-{round}")})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let detail = format!("{PATH}{}/", created["pk"]);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (app, key, detail) = (app.clone(), key.clone(), detail.clone());
            tasks.push(tokio::spawn(async move {
                let (method, body) = if i % 2 == 0 {
                    (
                        Method::PATCH,
                        Some(json!({"identifier": format!("race-{round}-{i}")})),
                    )
                } else {
                    (Method::DELETE, None)
                };
                let (status, body) = app.rest(method.clone(), &detail, Some(&key), body).await;
                (method, status, body)
            }));
        }
        let mut deleted = 0;
        for task in tasks {
            let (method, status, body) = task.await.unwrap();
            match (method.as_str(), status) {
                ("DELETE", 204) => deleted += 1,
                ("PATCH", 200) => {}
                (_, 404) => assert_eq!(
                    body,
                    json!({"detail": "No UserOAuthSourceConnection matches the given query."})
                ),
                other => panic!("{other:?}: {body}"),
            }
        }
        assert_eq!(deleted, 1, "round {round}");
    }
    let (events, _) = app.service.store().audit_events(0, 1000).await.unwrap();
    let deletes = events.iter().filter(|e| e.action == "delete").count();
    assert_eq!(deletes, 20);
}
