//! Faults against the real binary: PostgreSQL stopped and restarted under load (a cluster this
//! test owns), SIGTERM under load, SIGKILL under load on SQLite. Each checks what the clients
//! were told against what the database holds.
//!
//! The PostgreSQL outage test needs the server binaries (/usr/lib/postgresql/*/bin); without
//! them it is skipped, unless OAUTHLINK_FAULT_TESTS=1, when it fails.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::user_oauth_source_connection as conn;
use oauthlink::storage::NewUser;
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

mod common;

use common::{REST, Server, TempDir, fresh_database, library_config, sqlite_url};

const CLIENTS: usize = 16;
const USERS: usize = 300;

/// What the seeded database holds: the superuser's key, a source, users to link.
struct Seed {
    key: String,
    secret_key: String,
    source: String,
    users: Vec<i32>,
}

/// Migrates, bootstraps and adds a source and `USERS` users, through the library.
async fn seed(url: &str) -> Seed {
    let key = oauthlink::crypto::generate_api_key();
    let secret_key = oauthlink::crypto::Keyring::generate_key_hex();
    let config = library_config(url, &secret_key, &[]);
    let service = oauthlink::app::open(&config).await.unwrap();
    oauthlink::cli::bootstrap(&service, Some(&key))
        .await
        .unwrap();
    let store = service.store();
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let username = format!("user{i}");
        users.push(
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
    store.clone().close().await;
    let source = common::create_source(url, &secret_key);
    Seed {
        key,
        secret_key,
        source,
        users,
    }
}

/// The binary serving the seeded database, with these extra settings.
fn serve(url: &str, seed: &Seed, envs: &[(&str, &str)]) -> Server {
    let mut all = vec![("OAUTHLINK_SECRET_KEY", seed.secret_key.as_str())];
    all.extend_from_slice(envs);
    Server::start(url, &all)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Created(i32),
    /// GraphQL SERVICE_UNAVAILABLE, or REST 503 with a `detail`.
    Unavailable,
    /// GraphQL OUTCOME_UNKNOWN, or REST 504 `outcome_unknown`: perhaps stored.
    Unknown,
    /// No HTTP answer (connection refused or reset: the server is gone).
    NoAnswer,
    Other(String),
}

/// Links user `user` to the source, through GraphQL or REST.
async fn create(
    client: &reqwest::Client,
    base: &str,
    seed: &Seed,
    user: i32,
    identifier: &str,
    graphql: bool,
) -> Outcome {
    let at = (&seed.key[..], &seed.source[..]);
    create_at(client, base, at, user, identifier, graphql).await
}

/// Links user `user` to a source, as the holder of a key: `(key, source)`.
async fn create_at(
    client: &reqwest::Client,
    base: &str,
    (key, source): (&str, &str),
    user: i32,
    identifier: &str,
    graphql: bool,
) -> Outcome {
    let request = if graphql {
        client.post(format!("{base}/graphql")).json(&json!({
            "query": "mutation($i: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $i) { pk identifier } }",
            "variables": {"i": {"source": source, "identifier": identifier, "user": user}},
        }))
    } else {
        client
            .post(format!("{base}{REST}"))
            .json(&json!({"source": source, "identifier": identifier, "user": user}))
    };
    let response = match request.bearer_auth(key).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Outcome::Other(format!("timed out: {e}")),
        Err(_) => return Outcome::NoAnswer,
    };
    let status = response.status().as_u16();
    let body: Value = match response.json().await {
        Ok(b) => b,
        // Headers came, the body did not: the server went away mid-answer.
        Err(_) => return Outcome::NoAnswer,
    };
    if graphql {
        let code = &body["errors"][0]["extensions"]["code"];
        match body["data"]["createUserOAuthConnection"]["pk"].as_i64() {
            Some(pk) if status == 200 => Outcome::Created(pk as i32),
            None if code == "SERVICE_UNAVAILABLE" => Outcome::Unavailable,
            None if code == "OUTCOME_UNKNOWN" => Outcome::Unknown,
            _ => Outcome::Other(format!("{status} {body}")),
        }
    } else {
        match (status, body["pk"].as_i64()) {
            (201, Some(pk)) => Outcome::Created(pk as i32),
            // authentik's `detail` shape, with oauthlink's code for this outcome.
            (503, _)
                if body["detail"].is_string()
                    && body["code"] == "service_unavailable"
                    && body.as_object().unwrap().len() == 2 =>
            {
                Outcome::Unavailable
            }
            (504, _) if body["detail"].is_string() && body["code"] == "outcome_unknown" => {
                Outcome::Unknown
            }
            _ => Outcome::Other(format!("{status} {body}")),
        }
    }
}

/// Concurrent creates, each of a fresh (user, identifier), until `stop` or users run out.
struct Load {
    stop: Arc<AtomicBool>,
    /// Every outcome with its identifier, in completion order.
    outcomes: Arc<Mutex<Vec<(String, Outcome, Duration)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, seed: &Arc<Seed>, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|c| {
                let (base, seed) = (base.to_owned(), seed.clone());
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                tokio::spawn(async move {
                    let client = client();
                    for (i, user) in seed.users.iter().enumerate().skip(c).step_by(clients) {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let identifier = format!("ext-{i}");
                        let started = Instant::now();
                        let outcome =
                            create(&client, &base, &seed, *user, &identifier, i % 2 == 0).await;
                        let took = started.elapsed();
                        outcomes.lock().unwrap().push((identifier, outcome, took));
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            tasks,
        }
    }

    fn acked(&self) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, o, _)| matches!(o, Outcome::Created(_)))
            .count()
    }

    async fn wait_for_acks(&self, n: usize) {
        let started = Instant::now();
        while self.acked() < n {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "load stalled: {:?}",
                self.outcomes.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn finish(self) -> Vec<(String, Outcome, Duration)> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

fn acknowledged(outcomes: &[(String, Outcome, Duration)]) -> Vec<(i32, String)> {
    outcomes
        .iter()
        .filter_map(|(id, o, _)| match o {
            Outcome::Created(pk) => Some((*pk, id.clone())),
            _ => None,
        })
        .collect()
}

/// Asserts that every acknowledged create is in the database, read directly.
async fn assert_durable(url: &str, source: &str, acked: &[(i32, String)]) {
    let db = Database::connect(url).await.unwrap();
    let source: uuid::Uuid = source.parse().unwrap();
    let rows: std::collections::HashMap<i32, String> = conn::Entity::find()
        .filter(conn::Column::SourceId.eq(source))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.identifier))
        .collect();
    db.close().await.ok();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(pk, id)| rows.get(pk) != Some(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but not stored: {lost:?} ({} rows)",
        rows.len()
    );
}

/// What the answers were, checked against the database.
#[derive(Debug, Default)]
struct Exact {
    created: usize,
    unavailable: usize,
    unknown_stored: usize,
    unknown_absent: usize,
}

impl std::fmt::Display for Exact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created (all stored), {} unavailable (all absent), {} unknown ({} stored, {} absent)",
            self.created,
            self.unavailable,
            self.unknown_stored + self.unknown_absent,
            self.unknown_stored,
            self.unknown_absent
        )
    }
}

/// Asserts that every create answered created is stored (same pk) and every one answered
/// unavailable is not; counts the unknown ones by what the database holds. Identifiers are
/// unique across the test's creates.
async fn assert_exact(url: &str, outcomes: &[(String, Outcome, Duration)]) -> Exact {
    let db = Database::connect(url).await.unwrap();
    let rows: std::collections::HashMap<String, i32> = conn::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.identifier, m.id))
        .collect();
    db.close().await.ok();
    let mut exact = Exact::default();
    let mut wrong = Vec::new();
    for (identifier, outcome, _) in outcomes {
        let stored = rows.get(identifier);
        match outcome {
            Outcome::Created(pk) if stored == Some(pk) => exact.created += 1,
            Outcome::Unavailable if stored.is_none() => exact.unavailable += 1,
            Outcome::Unknown if stored.is_some() => exact.unknown_stored += 1,
            Outcome::Unknown => exact.unknown_absent += 1,
            other => wrong.push((identifier, other, stored)),
        }
    }
    assert!(
        wrong.is_empty(),
        "answers that do not match the database (identifier, answer, stored pk): {wrong:?}"
    );
    exact
}

/// SIGTERM mid-load: exit 0 within the grace period, and every acknowledged create is
/// durable. SQLite, or PostgreSQL with TEST_DATABASE_URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_exits_cleanly_and_keeps_acknowledged_writes() {
    let dir = TempDir::new("oauthlink-sigterm");
    let url = fresh_database(dir.path(), "faults").await;
    let seed = Arc::new(seed(&url).await);
    let grace = 5;
    let mut server = serve(
        &url,
        &seed,
        &[("OAUTHLINK_SHUTDOWN_GRACE_SECONDS", &grace.to_string())],
    );
    let load = Load::start(&server.base, &seed, CLIENTS);
    load.wait_for_acks(30).await;
    server.signal("-TERM");
    let signalled = Instant::now();
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(grace + 5)));
    let took = signalled.elapsed();
    let outcomes = load.finish().await;
    let status = status.unwrap_or_else(|| panic!("no exit {took:?} after SIGTERM"));
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(took < Duration::from_secs(grace + 2), "took {took:?}");
    // Refused or unanswered after the signal is fine; a 500 or a wrong shape is not.
    let odd: Vec<_> = outcomes
        .iter()
        .filter(|(_, o, _)| matches!(o, Outcome::Other(_)))
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
    let acked = acknowledged(&outcomes);
    assert_durable(&url, &seed.source, &acked).await;
    eprintln!(
        "SIGTERM: {} creates answered, {} requests in all, exit after {took:?}",
        acked.len(),
        outcomes.len()
    );
}

/// SIGTERM with a subscriber connected: the websocket is closed with 1001 at once (its client
/// reconnects elsewhere) and the process exits without waiting out the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_at_once() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let dir = TempDir::new("oauthlink-ws-sigterm");
    let url = sqlite_url(dir.path());
    let key = oauthlink::crypto::Keyring::generate_key_hex();
    let mut server = Server::start(
        &url,
        &[
            ("OAUTHLINK_BOOTSTRAP_TOKEN", &key),
            ("OAUTHLINK_SHUTDOWN_GRACE_SECONDS", "20"),
        ],
    );
    let mut request = format!("ws://{}/graphql", server.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query":
        "subscription { userOAuthSourceConnectionEvents { kind pk } }"}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ack.to_string().contains("connection_ack"), "{ack}");

    let signalled = Instant::now();
    server.signal("-TERM");
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close, Some(1001));
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(5)))
        .expect("exits well before the 20 s grace period");
    assert!(status.success(), "{status:?}\n{}", server.log());
    eprintln!(
        "websocket closed and process exited {:?} after SIGTERM",
        signalled.elapsed()
    );
}

/// A request already in flight when SIGTERM arrives (its body half sent) is still answered
/// and its write kept; a connection opened after the signal is refused; then exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_a_request_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = TempDir::new("oauthlink-inflight");
    let url = sqlite_url(&dir.0);
    let seed = seed(&url).await;
    let mut server = serve(&url, &seed, &[("OAUTHLINK_SHUTDOWN_GRACE_SECONDS", "10")]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let body = format!(
        r#"{{"source": "{}", "identifier": "in-flight", "user": {}}}"#,
        seed.source, seed.users[0]
    );
    let head = format!(
        "POST {REST} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        seed.key,
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_err(),
        "a new connection after SIGTERM is refused"
    );
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(10)));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.log()
    );
    let pk: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let pk = pk["pk"].as_i64().unwrap() as i32;
    assert_durable(&url, &seed.source, &[(pk, "in-flight".to_owned())]).await;
}

/// SIGKILL mid-load on SQLite, then a restart on the same file: every acknowledged create
/// is there, served by the restarted binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_sigkill_under_load_loses_no_acknowledged_write() {
    let dir = TempDir::new("oauthlink-sigkill");
    let url = sqlite_url(&dir.0);
    let seed = Arc::new(seed(&url).await);
    let mut server = serve(&url, &seed, &[]);
    let load = Load::start(&server.base, &seed, CLIENTS);
    load.wait_for_acks(40).await;
    server.signal("-KILL");
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(10)));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let outcomes = load.finish().await;
    let acked = acknowledged(&outcomes);
    drop(server);

    let server = serve(&url, &seed, &[]);
    let client = client();
    for (pk, identifier) in &acked {
        let response = client
            .get(format!("{}{REST}{pk}/", server.base))
            .bearer_auth(&seed.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "pk {pk} lost");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["identifier"], identifier.as_str());
    }
    eprintln!(
        "SIGKILL: {} acknowledged creates all present after restart ({} requests sent)",
        acked.len(),
        outcomes.len()
    );
}

/// A PostgreSQL cluster of this test's own (data directory, port), stopped and removed on
/// drop. As root, PostgreSQL runs as `postgres` (initdb refuses root).
struct OwnedPostgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    as_postgres: bool,
}

impl OwnedPostgres {
    /// None when the binaries are not installed.
    fn bin_dir() -> Option<PathBuf> {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                (bin.join("initdb").exists() && bin.join("pg_ctl").exists())
                    .then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin)
    }

    fn create(bin: PathBuf) -> OwnedPostgres {
        let dir = TempDir::new("oauthlink-pg");
        let as_postgres = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
            .unwrap()
            .trim()
            == "0";
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:", dir.0.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnedPostgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg
    }

    fn data(&self) -> String {
        self.dir.0.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let tool = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&tool);
            c
        } else {
            Command::new(&tool)
        };
        let out = command.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool:?} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.0.display()
        );
        let log = self.dir.0.join("postgres.log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ],
        );
    }

    /// Immediate: backends die at once, as in a crash.
    fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnedPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let tool = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&tool);
            c
        } else {
            Command::new(&tool)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn status_of(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

/// PostgreSQL stopped mid-load and started again, oauthlink left running: while it is down
/// requests fail fast (well inside the database timeout) with the typed unavailable error,
/// ready says 503 and live 200; when it is back, service resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_fails_fast_and_recovers_without_restart() {
    let Some(bin) = OwnedPostgres::bin_dir() else {
        assert!(
            std::env::var("OAUTHLINK_FAULT_TESTS").as_deref() != Ok("1"),
            "OAUTHLINK_FAULT_TESTS=1 but no PostgreSQL binaries in /usr/lib/postgresql/*/bin"
        );
        eprintln!("skipped: no PostgreSQL binaries in /usr/lib/postgresql/*/bin");
        return;
    };
    let pg = OwnedPostgres::create(bin);
    pg.start();
    let url = pg.url();
    let seed = Arc::new(seed(&url).await);
    // A long database timeout: failing fast must not mean waiting it out.
    let timeout = Duration::from_secs(10);
    let fast = Duration::from_secs(5);
    let server = serve(&url, &seed, &[("OAUTHLINK_DATABASE_TIMEOUT_SECONDS", "10")]);
    let base = server.base.clone();
    let client = client();
    let load = Load::start(&base, &seed, 8);
    load.wait_for_acks(20).await;

    pg.stop();
    let down = Instant::now();
    // Requests sent while the database is down, one of each kind, a few times over. The first
    // round may take a pooled connection that was alive when the server stopped (the pool
    // pings only connections idle for a second): its statement is then lost after it was
    // sent, and "outcome unknown" is the honest answer; checked below to be unwritten. By
    // the second round the load has used up such connections.
    let mut unknown = Vec::new();
    for round in 0..3 {
        let started = Instant::now();
        let user = seed.users[USERS - 1 - round];
        for (identifier, graphql) in [
            (format!("down-{round}"), true),
            (format!("down-r{round}"), false),
        ] {
            let outcome = create(&client, &base, &seed, user, &identifier, graphql).await;
            if round == 0 && outcome == Outcome::Unknown {
                unknown.push(identifier);
            } else {
                assert_eq!(outcome, Outcome::Unavailable, "{identifier}");
            }
        }
        let response = client
            .get(format!("{base}{REST}"))
            .bearer_auth(&seed.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 503);
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
        assert_eq!(body["code"], "service_unavailable", "{body}");
        assert_eq!(
            status_of(&client, format!("{base}/-/health/ready/")).await,
            503
        );
        assert_eq!(
            status_of(&client, format!("{base}/-/health/live/")).await,
            200
        );
        let took = started.elapsed();
        assert!(took < fast, "round {round} took {took:?}");
    }
    let outcomes = load.finish().await;
    // The load's own requests: created before the stop, unavailable after, unknown for a
    // write in flight at the stop; nothing else, and none waited out the database timeout.
    let odd: Vec<_> = outcomes
        .iter()
        .filter(|(_, o, took)| {
            let typed = matches!(
                o,
                Outcome::Created(_) | Outcome::Unavailable | Outcome::Unknown
            );
            !typed || *took >= timeout
        })
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
    let unavailable = outcomes
        .iter()
        .filter(|(_, o, _)| *o == Outcome::Unavailable)
        .count();
    assert!(unavailable > 0, "the load saw the outage");

    pg.start();
    let back = Instant::now();
    loop {
        if status_of(&client, format!("{base}/-/health/ready/")).await == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(30), "not ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, graphql) in [true, false].into_iter().enumerate() {
        let user = seed.users[USERS - 10 - i];
        let outcome = create(&client, &base, &seed, user, &format!("back-{i}"), graphql).await;
        assert!(matches!(outcome, Outcome::Created(_)), "{outcome:?}");
    }
    let exact = assert_exact(&url, &outcomes).await;
    let db = Database::connect(&url).await.unwrap();
    let stored = conn::Entity::find()
        .filter(conn::Column::Identifier.is_in(unknown.clone()))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(
        stored, 0,
        "answered unknown while the database was down: {unknown:?}"
    );
    eprintln!(
        "outage: {exact}; {} first-round answers unknown (not stored); down {:?}, ready again {:?} after the start",
        unknown.len(),
        back - down,
        back.elapsed()
    );
    drop(server);
}

/// The PostgreSQL binaries, or None (skipped) unless OAUTHLINK_FAULT_TESTS=1.
fn postgres_binaries() -> Option<PathBuf> {
    let bin = OwnedPostgres::bin_dir();
    if bin.is_none() {
        assert!(
            std::env::var("OAUTHLINK_FAULT_TESTS").as_deref() != Ok("1"),
            "OAUTHLINK_FAULT_TESTS=1 but no PostgreSQL binaries in /usr/lib/postgresql/*/bin"
        );
        eprintln!("skipped: no PostgreSQL binaries in /usr/lib/postgresql/*/bin");
    }
    bin
}

/// How a round takes PostgreSQL away.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `pg_ctl stop -m fast`: sessions terminated, open transactions rolled back.
    Stop,
    /// `pg_ctl stop -m immediate`: every process quits at once, as in a crash.
    Crash,
    /// SIGKILL to the backends serving oauthlink: the server resets every session and
    /// recovers by itself.
    KillBackends,
    /// Inserts held up by a table lock, then `pg_ctl stop -m smart`: new connections are
    /// refused (the service's reachability probe says so) while the sessions already open,
    /// and the inserts waiting on them, go on and commit once the lock is released. Then a
    /// fast stop ends the sessions.
    RefuseWhileWriting,
}

impl OwnedPostgres {
    /// SIGKILLs every client backend but the caller's; returns how many.
    async fn kill_backends(&self) -> usize {
        use sea_orm::{ConnectionTrait, Statement};
        let admin = Database::connect(self.url()).await.unwrap();
        let rows = admin
            .query_all_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' \
                 AND pid <> pg_backend_pid()",
            ))
            .await
            .unwrap();
        admin.close().await.ok();
        let pids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<i32>("", "pid").unwrap().to_string())
            .collect();
        if !pids.is_empty() {
            // A backend may have gone already: a failed kill of one is not an error.
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
        }
        pids.len()
    }
}

impl OwnedPostgres {
    /// See `Fault::RefuseWhileWriting`.
    async fn refuse_while_writing(&self) {
        use sea_orm::sqlx::Connection as _;
        use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
        let count = |sql: &str| Statement::from_string(sea_orm::DbBackend::Postgres, sql);
        let admin = Database::connect(self.url()).await.unwrap();
        let lock = admin.begin().await.unwrap();
        lock.execute_unprepared(
            "LOCK TABLE user_oauth_source_connections IN SHARE ROW EXCLUSIVE MODE",
        )
        .await
        .unwrap();
        // Inserts of the load queue behind the lock: statements already at the server.
        let waiting = Instant::now();
        loop {
            let row = lock
                .query_one_raw(count(
                    "SELECT count(*) AS n FROM pg_locks WHERE NOT granted \
                     AND relation = 'user_oauth_source_connections'::regclass",
                ))
                .await
                .unwrap()
                .unwrap();
            if row.try_get::<i64>("", "n").unwrap() >= 4 {
                break;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(10),
                "no insert waits"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "smart", "-W", "stop"]);
        let refusing = Instant::now();
        // One direct connection, no retries (a pool would retry until its timeout).
        let url = self.url();
        while sea_orm::sqlx::postgres::PgConnection::connect(&url)
            .await
            .is_ok()
        {
            assert!(
                refusing.elapsed() < Duration::from_secs(10),
                "still accepting"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Long enough for the service to probe (every 200 ms) and see the refusal: a
        // statement cancelled on that account would now be answered "unavailable".
        tokio::time::sleep(Duration::from_millis(800)).await;
        lock.commit().await.unwrap();
        admin.close().await.ok();
        // The waiting inserts commit; their clients go on over the open sessions a little.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }
}

/// PostgreSQL stopped or killed while 16 clients create, 20 rounds, oauthlink left running:
/// every create answered created is stored, every one answered unavailable is not, and the
/// ones answered "outcome unknown" (the connection died after the write was sent) are counted
/// with what the database holds for them, which may be either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_killed_mid_write_answers_exactly() {
    use std::sync::atomic::AtomicUsize;

    const ROUNDS: usize = 20;
    const SOURCES: usize = 40;
    let Some(bin) = postgres_binaries() else {
        return;
    };
    let pg = OwnedPostgres::create(bin);
    pg.start();
    let url = pg.url();
    let seed = seed(&url).await;
    // USERS x SOURCES distinct (user, source) pairs to create.
    let mut sources = vec![seed.source.clone()];
    {
        let config = library_config(&url, &seed.secret_key, &[]);
        let service = oauthlink::app::open(&config).await.unwrap();
        for i in 1..SOURCES {
            let slug = format!("source-{i}");
            let source = oauthlink::storage::NewSource {
                name: slug.clone(),
                slug,
                enabled: true,
                provider_type: "github".into(),
                authorization_url: None,
                access_token_url: None,
                profile_url: None,
                consumer_key: String::new(),
                consumer_secret: None,
                policy_engine_mode: oauthlink::domain::model::PolicyEngineMode::Any,
                user_matching_mode: oauthlink::domain::model::UserMatchingMode::Identifier,
                user_path_template: String::new(),
                icon: None,
            };
            let uuid = service.store().create_source(source).await.unwrap();
            sources.push(uuid.to_string());
        }
        service.store().clone().close().await;
    }
    let server = serve(&url, &seed, &[]);
    let base = server.base.clone();
    let seed = Arc::new(seed);
    let sources = Arc::new(sources);
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let ready = client();
    let started = Instant::now();
    let mut killed = 0;
    for round in 0..ROUNDS {
        let faults = [
            Fault::Stop,
            Fault::Crash,
            Fault::KillBackends,
            Fault::RefuseWhileWriting,
        ];
        let fault = faults[round % faults.len()];
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (base, seed, sources) = (base.clone(), seed.clone(), sources.clone());
                let (next, outcomes) = (next.clone(), outcomes.clone());
                let (stop, acked) = (stop.clone(), acked.clone());
                tokio::spawn(async move {
                    let client = client();
                    // Until the first failure after the fault, or the end of the round.
                    while !stop.load(Ordering::SeqCst) {
                        let k = next.fetch_add(1, Ordering::SeqCst);
                        let user = seed.users[k % USERS];
                        let at = (&seed.key[..], &sources[(k / USERS) % SOURCES][..]);
                        let identifier = format!("k{k}");
                        let started = Instant::now();
                        let outcome =
                            create_at(&client, &base, at, user, &identifier, k % 2 == 0).await;
                        let created = matches!(outcome, Outcome::Created(_));
                        outcomes
                            .lock()
                            .unwrap()
                            .push((identifier, outcome, started.elapsed()));
                        if !created {
                            break;
                        }
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // Writes in flight on every client before the fault.
        let wait = Instant::now();
        while acked.load(Ordering::SeqCst) < 2 * CLIENTS {
            assert!(
                wait.elapsed() < Duration::from_secs(30),
                "round {round}: no load"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        match fault {
            Fault::Stop => {
                let data = pg.data();
                pg.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
            }
            Fault::Crash => pg.stop(),
            Fault::KillBackends => killed += pg.kill_backends().await,
            Fault::RefuseWhileWriting => pg.refuse_while_writing().await,
        }
        // Every client runs into the fault (or the round ends) and stops.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            c.await.unwrap();
        }
        if !matches!(fault, Fault::KillBackends) {
            pg.start();
        }
        let back = Instant::now();
        while status_of(&ready, format!("{base}/-/health/ready/")).await != 200 {
            assert!(
                back.elapsed() < Duration::from_secs(30),
                "round {round}: not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let took = started.elapsed();
    let outcomes = Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap();
    let exact = assert_exact(&url, &outcomes).await;
    eprintln!(
        "{ROUNDS} rounds of {CLIENTS} clients ({killed} backends SIGKILLed) in {took:?}: {} creates: {exact}",
        outcomes.len()
    );
    assert!(
        exact.unavailable + exact.unknown_stored + exact.unknown_absent > 0,
        "the faults reached the creates"
    );
    drop(server);
}
