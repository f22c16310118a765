//! Test harness: a real server on an ephemeral port over a real database — a fresh SQLite
//! file, or a fresh PostgreSQL database when TEST_DATABASE_URL is set.
use std::sync::atomic::{AtomicU64, Ordering};

use oauthlink::config::{Config, LogFormat, RestShape};
use oauthlink::crypto::{Keyring, generate_api_key, hash_api_key};
use oauthlink::domain::Service;
use oauthlink::domain::model::{PolicyEngineMode, UserMatchingMode};
use oauthlink::domain::permission::Permission;
use oauthlink::server::{AppState, router_with_cors};
use oauthlink::storage::{NewSource, NewToken, NewUser};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub service: Service,
    #[allow(dead_code)]
    pub database_url: String,
    pub superuser_key: String,
    pub source: Uuid,
    /// What the service was opened with (a second instance needs the same secret key).
    pub config: Config,
    _dir: Option<tempfile_dir::TempDir>,
}

/// A temporary directory removed on drop (no extra crate needed).
mod tempfile_dir {
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Set (to 1) where the tests must run on PostgreSQL: a run that would fall back to SQLite,
/// or skip a PostgreSQL-only test, fails instead.
const REQUIRE_POSTGRES: &str = "OAUTHLINK_REQUIRE_POSTGRES";

/// Fails when PostgreSQL is required (see `REQUIRE_POSTGRES`) and `test` would not use it.
pub fn assert_postgres_not_required(test: &str) {
    assert!(
        std::env::var(REQUIRE_POSTGRES).as_deref() != Ok("1"),
        "{REQUIRE_POSTGRES}=1 but {test} would not run on PostgreSQL \
         (TEST_DATABASE_URL={:?})",
        std::env::var("TEST_DATABASE_URL").unwrap_or_default()
    );
}

/// The prefix of the PostgreSQL databases the tests create: `OAUTHLINK_TEST_DB_PREFIX`, so
/// that a CI run can drop exactly its own, or `oauthlink_test`.
pub fn database_prefix() -> String {
    let prefix =
        std::env::var("OAUTHLINK_TEST_DB_PREFIX").unwrap_or_else(|_| "oauthlink_test".into());
    assert!(
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "OAUTHLINK_TEST_DB_PREFIX must be lower-case letters, digits and _: {prefix:?}"
    );
    prefix
}

/// A fresh database URL for one test.
pub async fn fresh_database() -> (String, Option<tempfile_dir::TempDir>) {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let name = format!("{}_{}_{}", database_prefix(), std::process::id(), n);
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if base.starts_with("postgres") => {
            let admin = Database::connect(&base)
                .await
                .expect("connect to TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let (prefix, _) = base.rsplit_once('/').expect("database URL with a path");
            (format!("{prefix}/{name}"), None)
        }
        _ => {
            assert_postgres_not_required("this test");
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}/oauthlink.sqlite3?mode=rwc", dir.display());
            (url, Some(tempfile_dir::TempDir(dir)))
        }
    }
}

pub fn config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        secret_key: Some(Keyring::generate_key_hex().into()),
        secret_keys_old: Vec::new(),
        secret_key_file: None,
        auto_migrate: true,
        log: "warn".into(),
        log_format: LogFormat::Human,
        database_timeout_seconds: 3,
        database_max_connections: 8,
        token_refresh_margin_seconds: 60,
        token_refresh_connect_timeout_seconds: 3,
        token_refresh_timeout_seconds: 8,
        token_refresh_wait_seconds: 20,
    }
}

/// The server's own connection loop, with its default limits, until the test ends.
async fn serve_forever(listener: tokio::net::TcpListener, app: axum::Router) {
    oauthlink::server::serve(
        listener,
        app,
        oauthlink::server::HttpLimits::default(),
        std::future::pending(),
        std::time::Duration::ZERO,
    )
    .await;
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(RestShape::Documented).await
    }

    pub async fn spawn_with(shape: RestShape) -> TestApp {
        Self::spawn_full(shape, &[]).await
    }

    pub async fn spawn_full(shape: RestShape, cors_origins: &[&str]) -> TestApp {
        Self::spawn_custom(shape, cors_origins, |state| state).await
    }

    /// A server opened with an adjusted configuration (e.g. the token vault's timeouts).
    #[allow(dead_code)]
    pub async fn spawn_configured(adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_inner(
            RestShape::Documented,
            &[],
            |service| service,
            |state| state,
            adjust,
        )
        .await
    }

    /// A server whose state `customize` adjusts (e.g. to throttle failed authentications).
    pub async fn spawn_custom(
        shape: RestShape,
        cors_origins: &[&str],
        customize: impl FnOnce(AppState) -> AppState,
    ) -> TestApp {
        Self::spawn_inner(shape, cors_origins, |service| service, customize, |_| {}).await
    }

    /// A server whose service `with_service` adjusts before the state is built (e.g. to
    /// accept OpenID Connect tokens), and whose state `customize` adjusts.
    pub async fn spawn_service(
        shape: RestShape,
        cors_origins: &[&str],
        with_service: impl FnOnce(Service) -> Service,
        customize: impl FnOnce(AppState) -> AppState,
    ) -> TestApp {
        Self::spawn_inner(shape, cors_origins, with_service, customize, |_| {}).await
    }

    async fn spawn_inner(
        shape: RestShape,
        cors_origins: &[&str],
        with_service: impl FnOnce(Service) -> Service,
        customize: impl FnOnce(AppState) -> AppState,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let (database_url, dir) = fresh_database().await;
        let mut config = config(&database_url);
        adjust(&mut config);
        let service = oauthlink::app::open(&config).await.expect("open service");
        let service = with_service(service);
        if service.store().backend() != oauthlink::storage::Backend::Postgres {
            assert_postgres_not_required("the API tests");
        }
        let superuser_key = generate_api_key();
        oauthlink::cli::bootstrap(&service, Some(&superuser_key))
            .await
            .unwrap();
        let source = service
            .store()
            .create_source(new_source("GitHub", "github"))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let origins: Vec<String> = cors_origins.iter().map(|o| o.to_string()).collect();
        let cors = oauthlink::server::cors_layer(&origins).unwrap();
        let state = customize(AppState::new(service.clone(), shape));
        let app = router_with_cors(state, 64 * 1024, cors);
        tokio::spawn(serve_forever(listener, app));
        TestApp {
            base,
            client: reqwest::Client::new(),
            service,
            database_url,
            superuser_key,
            source,
            config,
            _dir: dir,
        }
    }

    /// Another instance of the service over this app's database (its own pool and port), as
    /// in a scaled-out deployment. Same superuser key and source; the database stays owned by
    /// `self`.
    #[allow(dead_code)]
    pub async fn another_instance(&self) -> TestApp {
        let service = oauthlink::app::open(&self.config)
            .await
            .expect("open second instance");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router_with_cors(
            AppState::new(service.clone(), RestShape::Documented),
            64 * 1024,
            None,
        );
        tokio::spawn(serve_forever(listener, app));
        TestApp {
            base,
            client: reqwest::Client::new(),
            service,
            database_url: self.database_url.clone(),
            superuser_key: self.superuser_key.clone(),
            source: self.source,
            config: self.config.clone(),
            _dir: None,
        }
    }

    pub async fn add_source(&self, name: &str, slug: &str) -> Uuid {
        self.service
            .store()
            .create_source(new_source(name, slug))
            .await
            .unwrap()
    }

    /// A user with an API key and the given permissions.
    pub async fn user(&self, username: &str, permissions: &[Permission]) -> (i32, String) {
        let store = self.service.store();
        let id = store
            .create_user(NewUser {
                username,
                name: "",
                email: "",
                is_superuser: false,
            })
            .await
            .unwrap();
        store.grant(id, permissions).await.unwrap();
        let key = generate_api_key();
        store
            .create_token(
                id,
                NewToken {
                    identifier: &format!("{username}-token"),
                    key_hash: &hash_api_key(&key),
                    intent: "api",
                    expires: None,
                    description: "",
                },
            )
            .await
            .unwrap();
        (id, key)
    }

    pub async fn graphql(&self, key: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    /// A REST call; returns status and body (Null when empty).
    pub async fn rest(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }
}

pub fn new_source(name: &str, slug: &str) -> NewSource {
    NewSource {
        name: name.into(),
        slug: slug.into(),
        enabled: true,
        provider_type: "github".into(),
        authorization_url: None,
        access_token_url: None,
        profile_url: None,
        consumer_key: "client-id".into(),
        consumer_secret: None,
        policy_engine_mode: PolicyEngineMode::Any,
        user_matching_mode: UserMatchingMode::Identifier,
        user_path_template: "goauthentik.io/sources/%(slug)s".into(),
        icon: None,
    }
}

pub const CREATE: &str = r#"
mutation Create($input: CreateUserOAuthConnectionInput!) {
  createUserOAuthConnection(input: $input) {
    pk user identifier created lastUpdated expires
    source {
      pk name slug enabled authenticationFlow enrollmentFlow userPropertyMappings
      groupPropertyMappings component verboseName verboseNamePlural metaModelName
      policyEngineMode userMatchingMode managed userPathTemplate icon
    }
  }
}"#;

/// The `extensions.code` of the first error.
pub fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}
