//! What the tests of the real binary share: temporary directories, fresh databases (a SQLite
//! file, or with TEST_DATABASE_URL a new PostgreSQL database named with CI's prefix so its
//! cleanup finds it), the library's configuration, and the binary serving on an ephemeral port
//! with its log captured.
// Each test binary includes this module and uses its own part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauthlink::config::Cli;
use sea_orm::Database;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_oauthlink");
pub const REST: &str = "/api/v3/sources/user_connections/oauth/";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/oauthlink.sqlite3?mode=rwc", dir.display())
}

/// A SQLite file in `dir`, or with TEST_DATABASE_URL a new PostgreSQL database named
/// `<OAUTHLINK_TEST_DB_PREFIX>_<label>_…`.
pub async fn fresh_database(dir: &Path, label: &str) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let prefix = std::env::var("OAUTHLINK_TEST_DB_PREFIX")
                .unwrap_or_else(|_| "oauthlink_test".into());
            assert!(
                prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "OAUTHLINK_TEST_DB_PREFIX: {prefix:?}"
            );
            let name = unique(&format!("{prefix}_{label}"));
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

/// The library's configuration, parsed from flags so that settings added later keep their
/// defaults here.
pub fn library_config(url: &str, secret_key: &str, old: &[&str]) -> oauthlink::config::Config {
    use clap::Parser;
    let mut args = vec![
        "oauthlink",
        "--database-url",
        url,
        "--secret-key",
        secret_key,
        "--log",
        "warn",
    ];
    let old = old.join(",");
    if !old.is_empty() {
        args.extend(["--secret-keys-old", &old]);
    }
    Cli::try_parse_from(args).unwrap().config
}

/// A command of the binary on `url` with only these variables: nothing leaks in from the
/// environment the tests run in.
pub fn command(url: &str, envs: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OAUTHLINK_DATABASE_URL", url)
        .env("OAUTHLINK_LOG", "warn")
        .envs(envs.iter().copied());
    c
}

/// `oauthlink source create` (GitHub); returns the source's uuid.
pub fn create_source(url: &str, secret_key: &str) -> String {
    let out = command(url, &[("OAUTHLINK_SECRET_KEY", secret_key)])
        .args(["source", "create", "--name", "GitHub", "--slug", "github"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The binary serving on an ephemeral port, its stderr collected; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// How a `serve` ended up: listening, or exited with its stderr.
pub enum Start {
    Serving(Server),
    Exited(Option<i32>, String),
}

/// The address a start-up line announces, in the JSON or the human log format.
fn announced(line: &str) -> Option<SocketAddr> {
    match serde_json::from_str::<Value>(line) {
        Ok(event) => event["address"].as_str()?.parse().ok(),
        Err(_) => line
            .split("address=")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok(),
    }
}

impl Server {
    /// `oauthlink serve` on `url` with these settings (defaults: an ephemeral port, JSON log
    /// at warn plus the server's start-up line).
    pub fn spawn(url: &str, envs: &[(&str, &str)]) -> Start {
        let mut child = command(url, &[])
            .arg("serve")
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
        let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
        let lines = log.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l.clone());
                let _ = tx.send(Some(l));
            }
            let _ = tx.send(None);
        });
        let started = Instant::now();
        loop {
            let joined = || log.lock().unwrap().join("\n");
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "neither listening nor exited: {}",
                joined()
            );
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Some(l)) => {
                    if let Some(addr) = announced(&l) {
                        return Start::Serving(Server {
                            child,
                            addr,
                            base: format!("http://{addr}"),
                            log,
                        });
                    }
                }
                // Stderr closed: the process is exiting.
                Ok(None) | Err(_) => {
                    let status = child.wait().unwrap();
                    return Start::Exited(status.code(), joined());
                }
            }
        }
    }

    /// Serving, or the test fails with the server's log.
    pub fn start(url: &str, envs: &[(&str, &str)]) -> Server {
        match Server::spawn(url, envs) {
            Start::Serving(s) => s,
            Start::Exited(code, log) => panic!("the server exited ({code:?}): {log}"),
        }
    }

    /// The start was refused (a non-zero exit); returns the log.
    pub fn refused(url: &str, envs: &[(&str, &str)]) -> String {
        match Server::spawn(url, envs) {
            Start::Serving(_) => panic!("the server started"),
            Start::Exited(code, log) => {
                assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {log}");
                log
            }
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
