//! The token vault's refresh against a real OAuth 2.0 / OpenID Connect server (npm
//! `oidc-provider` via the shared harness, provider.rs) issuing real tokens through a real
//! authorization-code flow, with refresh-token rotation on.
use std::collections::HashSet;
use std::time::Duration;

use oauthlink::domain::permission::Permission;
use oauthlink::storage::TokenEndpointChange;
use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::{TestApp, code};
use super::provider::{DEFAULT_CLIENT, DEFAULT_SECRET, Provider};
use super::vault::{REFRESH_MUTATION, TOKEN_QUERY, events, link, refresh_path, token_path};

const SCOPE: &str = "openid offline_access api";
const POST_CLIENT: &str = "vault-post";
const POST_SECRET: &str = "vault-post-secret";

/// The provider's clients: the harness's default one (client_secret_basic) and one that
/// authenticates with client_secret_post.
fn provider_config() -> Value {
    let client = |id: &str, secret: &str, method: &str| {
        json!({
            "client_id": id,
            "client_secret": secret,
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["http://127.0.0.1/callback"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "scope": "openid offline_access profile email api",
        })
    };
    json!({
        "rotate_refresh_tokens": true,
        "access_token_ttl": 3600,
        "clients": [
            client(DEFAULT_CLIENT, DEFAULT_SECRET, "client_secret_basic"),
            client(POST_CLIENT, POST_SECRET, "client_secret_post"),
        ],
    })
}

/// The source `github` of `app` refreshes at the provider's token endpoint (from its
/// discovery document) as `client_id`.
async fn configure_source(app: &TestApp, provider: &Provider, client_id: &str, secret: &str) {
    let discovery: Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        provider.issuer
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap().to_owned();
    let method = if client_id == POST_CLIENT {
        oauthlink::domain::model::TokenAuthMethod::ClientSecretPost
    } else {
        oauthlink::domain::model::TokenAuthMethod::ClientSecretBasic
    };
    let found = app
        .service
        .store()
        .update_token_endpoint(
            "github",
            TokenEndpointChange {
                access_token_url: Some(token_endpoint),
                auth_method: Some(method),
                consumer_key: Some(client_id.to_owned()),
                consumer_secret: Some(app.service.seal_consumer_secret(app.source, secret)),
            },
        )
        .await
        .unwrap();
    assert!(found);
}

/// A real login at the provider; returns (access token, refresh token).
async fn login(provider: &Provider, client_id: &str, sub: &str) -> (String, String) {
    let tokens = provider.login(client_id, sub, SCOPE, json!({})).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {tokens}"))
        .to_owned();
    (access, refresh)
}

fn refreshes(stats: &Value) -> u64 {
    stats["token_by_grant"]["refresh_token"]
        .as_u64()
        .unwrap_or(0)
}

/// A user allowed to read their own tokens, linked with a token that expired a minute ago.
async fn expired_link(
    app: &TestApp,
    provider: &Provider,
    client: &str,
) -> (i32, String, String, String) {
    let (user, key) = app.user("alice", &[Permission::ReadConnectionToken]).await;
    let (access, refresh) = login(provider, client, "alice").await;
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let pk = link(
        app,
        user,
        "alice",
        Some(&access),
        Some(&refresh),
        Some(past),
    )
    .await;
    (pk, key, access, refresh)
}

/// 50 concurrent readers of one expired token — over two instances on PostgreSQL, one on
/// SQLite — make exactly one refresh request at the provider, all get the same new token, and
/// the old refresh token is consumed once (with rotation on, a second use would be refused and
/// revoke the grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_reads_of_an_expired_token_refresh_it_once() {
    let Some(provider) = Provider::start(provider_config()).await else {
        return;
    };
    let app = TestApp::spawn().await;
    configure_source(&app, &provider, DEFAULT_CLIENT, DEFAULT_SECRET).await;
    let (pk, key, old_access, old_refresh) = expired_link(&app, &provider, DEFAULT_CLIENT).await;
    let postgres = app.service.store().backend() == oauthlink::storage::Backend::Postgres;
    let second = if postgres {
        Some(app.another_instance().await)
    } else {
        None
    };
    let instances: Vec<&TestApp> = std::iter::once(&app).chain(second.as_ref()).collect();
    provider.reset_stats().await;

    let started = std::time::Instant::now();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let mut readers = Vec::new();
    for i in 0..50 {
        let instance = instances[i % instances.len()];
        let (base, client, key, barrier) = (
            instance.base.clone(),
            instance.client.clone(),
            key.clone(),
            barrier.clone(),
        );
        readers.push(tokio::spawn(async move {
            barrier.wait().await;
            // Half over REST, half over GraphQL.
            if i % 4 < 2 {
                let r = client
                    .get(format!("{base}{}", token_path(pk)))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let body: Value = r.json().await.unwrap();
                body["access_token"].as_str().unwrap().to_owned()
            } else {
                let body: Value = client
                    .post(format!("{base}/graphql"))
                    .bearer_auth(&key)
                    .json(&json!({"query": TOKEN_QUERY, "variables": {"pk": pk}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                body["data"]["userOAuthConnectionToken"]["accessToken"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{body}"))
                    .to_owned()
            }
        }));
    }
    let mut tokens = HashSet::new();
    for r in readers {
        tokens.insert(r.await.unwrap());
    }
    assert_eq!(tokens.len(), 1, "all 50 readers got the same token");
    let new_access = tokens.into_iter().next().unwrap();
    assert_ne!(new_access, old_access);
    let stats = provider.stats().await;
    assert_eq!(refreshes(&stats), 1, "exactly one refresh request: {stats}");
    assert_eq!(
        stats["refresh_tokens_used"],
        json!([old_refresh]),
        "the old refresh token was used once: {stats}"
    );
    eprintln!(
        "50 concurrent reads on {} instance(s): {} refresh request(s) at the provider, 1 token, {:?}",
        instances.len(),
        refreshes(&stats),
        started.elapsed()
    );
    assert_eq!(events(&app, pk, "refresh_token").await.len(), 1);
    assert_eq!(events(&app, pk, "read_token").await.len(), 50);
    // Now fresh: the next read answers from storage, with the new expiry.
    let r = app
        .graphql(Some(&key), TOKEN_QUERY, json!({"pk": pk}))
        .await;
    assert_eq!(
        r["data"]["userOAuthConnectionToken"]["accessToken"],
        new_access.as_str()
    );
    let expires: chrono::DateTime<chrono::Utc> = r["data"]["userOAuthConnectionToken"]["expires"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::minutes(50));
    assert_eq!(refreshes(&provider.stats().await), 1);
    // The rotated refresh token was stored: a forced refresh uses it and succeeds.
    let (status, body) = app
        .rest(Method::POST, &refresh_path(pk), Some(&key), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["access_token"], new_access.as_str());
    let stats = provider.stats().await;
    assert_eq!(refreshes(&stats), 2);
    let used = stats["refresh_tokens_used"].as_array().unwrap();
    assert_eq!(used.len(), 2);
    assert_ne!(
        used[1],
        json!(old_refresh),
        "the rotated token was sent, not the old one"
    );
}

/// A revoked refresh token: the connection needs relinking — visible in both APIs and the
/// audit log — and readers get the typed error, without another call to the provider. A new
/// token written by an update clears the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_marks_the_connection_for_relinking() {
    let Some(provider) = Provider::start(provider_config()).await else {
        return;
    };
    let app = TestApp::spawn().await;
    configure_source(&app, &provider, POST_CLIENT, POST_SECRET).await;
    let (pk, key, _, refresh) = expired_link(&app, &provider, POST_CLIENT).await;
    provider.revoke(POST_CLIENT, &refresh).await;
    provider.reset_stats().await;

    let r = app
        .graphql(Some(&key), TOKEN_QUERY, json!({"pk": pk}))
        .await;
    assert_eq!(code(&r), "RELINK_REQUIRED", "{r}");
    assert_eq!(refreshes(&provider.stats().await), 1);
    let (status, body) = app
        .rest(Method::GET, &token_path(pk), Some(&key), None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "relink_required");
    assert!(body.get("access_token").is_none());
    // No second attempt with a refresh token known to be dead.
    assert_eq!(refreshes(&provider.stats().await), 1);
    let su = Some(app.superuser_key.as_str());
    let (_, rest) = app
        .rest(
            Method::GET,
            &format!("/api/v3/sources/user_connections/oauth/{pk}/"),
            su,
            None,
        )
        .await;
    assert_eq!(rest["needs_relink"], true, "{rest}");
    let gql = app
        .graphql(
            su,
            "query Q($pk: Int!) { userOAuthSourceConnection(pk: $pk) { needsRelink } }",
            json!({"pk": pk}),
        )
        .await;
    assert_eq!(
        gql["data"]["userOAuthSourceConnection"]["needsRelink"], true,
        "{gql}"
    );
    let owner = app
        .service
        .store()
        .vault_row(pk)
        .await
        .unwrap()
        .unwrap()
        .user;
    assert_eq!(
        events(&app, pk, "relink_required").await,
        vec![(json!(owner), json!(owner))]
    );
    assert!(events(&app, pk, "read_token").await.is_empty());

    // The user links again: new tokens clear the state.
    let (access, refresh) = login(&provider, POST_CLIENT, "alice").await;
    let r = app
        .graphql(
            su,
            "mutation U($pk: Int!, $input: UpdateUserOAuthSourceConnectionInput!) { updateUserOAuthSourceConnection(pk: $pk, input: $input) { needsRelink } }",
            json!({"pk": pk, "input": {"accessToken": access, "refreshToken": refresh,
                   "expires": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateUserOAuthSourceConnection"]["needsRelink"], false,
        "{r}"
    );
    let r = app
        .graphql(Some(&key), REFRESH_MUTATION, json!({"pk": pk}))
        .await;
    let fresh = r["data"]["refreshUserOAuthConnectionToken"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert_ne!(fresh, access);
}

/// The provider slow past the timeout, answering 503, or stopped: a typed 503-class error,
/// and the stored tokens are exactly as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_provider_changes_nothing() {
    let Some(mut provider) = Provider::start(provider_config()).await else {
        return;
    };
    let app = TestApp::spawn_configured(|c| {
        c.token_refresh_timeout_seconds = 1;
        c.token_refresh_connect_timeout_seconds = 1;
    })
    .await;
    configure_source(&app, &provider, DEFAULT_CLIENT, DEFAULT_SECRET).await;
    let (pk, key, _, _) = expired_link(&app, &provider, DEFAULT_CLIENT).await;
    let stored = || async { app.service.store().vault_row(pk).await.unwrap().unwrap() };
    let before = stored().await;

    // Slow: the call is abandoned after the 1 s total timeout.
    provider.mode(json!({"token_delay_ms": 3000})).await;
    let started = std::time::Instant::now();
    let (status, body) = app
        .rest(Method::GET, &token_path(pk), Some(&key), None)
        .await;
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "provider_unavailable");
    assert_eq!(body["reason"], "timeout");
    assert_eq!(stored().await, before);

    // Down (503 from the provider).
    provider
        .mode(json!({"token_delay_ms": 0, "down": true}))
        .await;
    let r = app
        .graphql(Some(&key), TOKEN_QUERY, json!({"pk": pk}))
        .await;
    assert_eq!(code(&r), "PROVIDER_UNAVAILABLE", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["reason"], "server_error");
    assert!(
        !r.to_string().contains("provider down"),
        "the provider's body is not repeated"
    );
    assert_eq!(stored().await, before);

    // Stopped: connections refused.
    provider.stop().await;
    let (status, body) = app
        .rest(Method::POST, &refresh_path(pk), Some(&key), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "network");
    assert_eq!(stored().await, before);
    assert!(events(&app, pk, "read_token").await.is_empty());
    assert!(events(&app, pk, "refresh_token").await.is_empty());
}

/// Run as a deployment would: the binary with debug logs, the source configured by the CLI.
/// After links, reads and refreshes, no access or refresh token is in any log line, in
/// /metrics, or in any answer other than the token read itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_in_debug_logs_metrics_or_other_answers() {
    let Some(provider) = Provider::start(provider_config()).await else {
        return;
    };
    let bin = env!("CARGO_BIN_EXE_oauthlink");
    let dir = std::env::temp_dir().join(format!("oauthlink_vault_logs_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/db.sqlite3?mode=rwc", dir.display());
    let secret_key = oauthlink::crypto::Keyring::generate_key_hex();
    let admin_key = oauthlink::crypto::generate_api_key();
    let env = |cmd: &mut std::process::Command| {
        cmd.env("OAUTHLINK_DATABASE_URL", &url)
            .env("OAUTHLINK_SECRET_KEY", &secret_key)
            .env("OAUTHLINK_LOG", "debug")
            .env_remove("TEST_DATABASE_URL");
    };
    let token_endpoint = format!("{}/token", provider.issuer);
    let mut create = std::process::Command::new(bin);
    env(&mut create);
    let out = create
        .args([
            "source", "create", "--name", "Provider", "--slug", "provider",
        ])
        .args([
            "--access-token-url",
            &token_endpoint,
            "--consumer-key",
            POST_CLIENT,
        ])
        .args(["--token-auth-method", "client_secret_post"])
        .env("OAUTHLINK_CONSUMER_SECRET", POST_SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut logs = String::from_utf8_lossy(&out.stderr).into_owned();
    // A non-http endpoint is refused by the CLI.
    let mut bad = std::process::Command::new(bin);
    env(&mut bad);
    let out = bad
        .args([
            "source",
            "update",
            "--slug",
            "provider",
            "--access-token-url",
            "ftp://x/token",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut serve = tokio::process::Command::new(bin);
    serve
        .arg("serve")
        .env("OAUTHLINK_DATABASE_URL", &url)
        .env("OAUTHLINK_SECRET_KEY", &secret_key)
        .env("OAUTHLINK_LOG", "debug")
        .env("OAUTHLINK_BOOTSTRAP_TOKEN", &admin_key)
        .env("OAUTHLINK_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = serve.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/-/health/ready/"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (access, refresh) = login(&provider, POST_CLIENT, "alice").await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let mut answers = Vec::new();
    let send = |req: reqwest::RequestBuilder| {
        let req = req.bearer_auth(&admin_key);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.text().await.unwrap())
        }
    };
    let (status, created) = send(
        client
            .post(format!("{base}/api/v3/sources/user_connections/oauth/"))
            .json(
                &json!({"source": source, "identifier": "alice", "access_token": access,
                          "refresh_token": refresh, "expires": past}),
            ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let pk = serde_json::from_str::<Value>(&created).unwrap()["pk"]
        .as_i64()
        .unwrap() as i32;
    answers.push(created);
    // Refreshed on read (expired), then forced once more over GraphQL.
    let (status, read) = send(client.get(format!("{base}{}", token_path(pk)))).await;
    assert_eq!(status, 200, "{read}");
    let new_access = serde_json::from_str::<Value>(&read).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, forced) = send(
        client
            .post(format!("{base}/graphql"))
            .json(&json!({"query": REFRESH_MUTATION, "variables": {"pk": pk}})),
    )
    .await;
    let newest =
        serde_json::from_str::<Value>(&forced).unwrap()["data"]["refreshUserOAuthConnectionToken"]
            ["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{forced}"))
            .to_owned();
    for path in [
        "/api/v3/sources/user_connections/oauth/".to_owned(),
        format!("/api/v3/sources/user_connections/oauth/{pk}/"),
        "/api/v3/oauthlink/audit_events/".to_owned(),
        "/metrics".to_owned(),
    ] {
        let (status, body) = send(client.get(format!("{base}{path}"))).await;
        assert_eq!(status, 200, "{path}: {body}");
        answers.push(body);
    }
    let (_, gql) = send(client.post(format!("{base}/graphql")).json(&json!({
        "query": "{ userOAuthSourceConnections(first: 5) { edges { node { pk identifier expires needsRelink } } } events { events { action actor owner } } }"
    })))
    .await;
    answers.push(gql);
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    logs.push_str(&String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);

    // The provider saw the rotation: the refresh tokens it issued after ours are known too.
    let used = provider.stats().await["refresh_tokens_used"].clone();
    let mut secrets = vec![
        access.clone(),
        refresh.clone(),
        new_access.clone(),
        newest.clone(),
    ];
    secrets.extend(
        used.as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned)),
    );
    assert!(secrets.len() >= 5, "{used}");
    assert!(logs.contains("token refreshed"), "debug logs were captured");
    assert!(logs.lines().count() > 20, "debug logs were captured");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a token is in the logs");
        for answer in &answers {
            assert!(!answer.contains(secret.as_str()), "a token is in {answer}");
        }
    }
}
