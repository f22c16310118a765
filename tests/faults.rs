//! Faults against the real binary: PostgreSQL stopped and restarted under load (a cluster this
//! test owns), SIGTERM under load, SIGKILL under load on SQLite. Each checks what the clients
//! were told against what the database holds.
//!
//! The PostgreSQL outage test needs the server binaries (/usr/lib/postgresql/*/bin); without
//! them it is skipped, unless OAUTHLINK_FAULT_TESTS=1, when it fails.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::user_oauth_source_connection as conn;
use oauthlink::config::Cli;
use oauthlink::storage::NewUser;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_oauthlink");
const CLIENTS: usize = 16;
const USERS: usize = 300;
const REST: &str = "/api/v3/sources/user_connections/oauth/";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh database: a SQLite file in `dir`, or with TEST_DATABASE_URL a new PostgreSQL
/// database (named like the API tests' so CI's cleanup finds it).
async fn fresh_database(dir: &Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let name = unique("oauthlink_test_faults");
            let admin = Database::connect(&base).await.unwrap();
            sea_orm::ConnectionTrait::execute_unprepared(
                &admin,
                &format!("CREATE DATABASE {name}"),
            )
            .await
            .unwrap();
            admin.close().await.ok();
            let (prefix, _) = base.rsplit_once('/').unwrap();
            format!("{prefix}/{name}")
        }
        _ => sqlite_url(dir),
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/oauthlink.sqlite3?mode=rwc", dir.display())
}

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
    let config = library_config(url, &secret_key);
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
    let out = Command::new(BIN)
        .args(["source", "create", "--name", "GitHub", "--slug", "github"])
        .env("OAUTHLINK_DATABASE_URL", url)
        .env("OAUTHLINK_SECRET_KEY", &secret_key)
        .env("OAUTHLINK_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let source = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    Seed {
        key,
        secret_key,
        source,
        users,
    }
}

/// The library's configuration, parsed from flags so that settings added later keep their
/// defaults here.
fn library_config(url: &str, secret_key: &str) -> oauthlink::config::Config {
    use clap::Parser;
    Cli::try_parse_from([
        "oauthlink",
        "--database-url",
        url,
        "--secret-key",
        secret_key,
        "--log",
        "warn",
    ])
    .unwrap()
    .config
}

/// The binary, serving on an ephemeral port; killed on drop if still running.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(url: &str, seed: &Seed, envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .env("OAUTHLINK_DATABASE_URL", url)
            .env("OAUTHLINK_SECRET_KEY", &seed.secret_key)
            .env("OAUTHLINK_LISTEN", "127.0.0.1:0")
            .env("OAUTHLINK_LOG", "warn,oauthlink::server=info")
            .env("OAUTHLINK_LOG_FORMAT", "json")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let lines = log.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l.clone());
                let _ = tx.send(l);
            }
        });
        let address = loop {
            let l = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the server logs its address");
            if let Ok(event) = serde_json::from_str::<Value>(&l)
                && let Some(address) = event["address"].as_str()
            {
                break address.to_owned();
            }
        };
        Server {
            child,
            base: format!("http://{address}"),
            log,
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit, at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let request = if graphql {
        client.post(format!("{base}/graphql")).json(&json!({
            "query": "mutation($i: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $i) { pk identifier } }",
            "variables": {"i": {"source": seed.source, "identifier": identifier, "user": user}},
        }))
    } else {
        client
            .post(format!("{base}{REST}"))
            .json(&json!({"source": seed.source, "identifier": identifier, "user": user}))
    };
    let response = match request.bearer_auth(&seed.key).send().await {
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

/// SIGTERM mid-load: exit 0 within the grace period, and every acknowledged create is
/// durable. SQLite, or PostgreSQL with TEST_DATABASE_URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_exits_cleanly_and_keeps_acknowledged_writes() {
    let dir = TempDir::new("oauthlink-sigterm");
    let url = fresh_database(&dir.0).await;
    let seed = Arc::new(seed(&url).await);
    let grace = 5;
    let mut server = Server::start(
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

/// A request already in flight when SIGTERM arrives (its body half sent) is still answered
/// and its write kept; a connection opened after the signal is refused; then exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_a_request_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = TempDir::new("oauthlink-inflight");
    let url = sqlite_url(&dir.0);
    let seed = seed(&url).await;
    let mut server = Server::start(&url, &seed, &[("OAUTHLINK_SHUTDOWN_GRACE_SECONDS", "10")]);
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
    let mut server = Server::start(&url, &seed, &[]);
    let load = Load::start(&server.base, &seed, CLIENTS);
    load.wait_for_acks(40).await;
    server.signal("-KILL");
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(10)));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let outcomes = load.finish().await;
    let acked = acknowledged(&outcomes);
    drop(server);

    let server = Server::start(&url, &seed, &[]);
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
    let server = Server::start(&url, &seed, &[("OAUTHLINK_DATABASE_TIMEOUT_SECONDS", "10")]);
    let base = server.base.clone();
    let client = client();
    let load = Load::start(&base, &seed, 8);
    load.wait_for_acks(20).await;

    pg.stop();
    let down = Instant::now();
    // Requests sent while the database is down, one of each kind, a few times over.
    for round in 0..3 {
        let started = Instant::now();
        let user = seed.users[USERS - 1 - round];
        let outcome = create(&client, &base, &seed, user, &format!("down-{round}"), true).await;
        assert_eq!(outcome, Outcome::Unavailable);
        let outcome = create(
            &client,
            &base,
            &seed,
            user,
            &format!("down-r{round}"),
            false,
        )
        .await;
        assert_eq!(outcome, Outcome::Unavailable);
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
    // The load's own requests: created before the stop, unavailable after; nothing else, and
    // none waited out the database timeout.
    let odd: Vec<_> = outcomes
        .iter()
        .filter(|(_, o, took)| {
            !matches!(o, Outcome::Created(_) | Outcome::Unavailable) || *took >= timeout
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
    assert_durable(&url, &seed.source, &acknowledged(&outcomes)).await;
    eprintln!(
        "outage: {} creates before the stop, {unavailable} answered unavailable, down {:?}, ready again {:?} after the start",
        acknowledged(&outcomes).len(),
        back - down,
        back.elapsed()
    );
    drop(server);
}
