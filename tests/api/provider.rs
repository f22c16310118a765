//! A real OpenID Connect provider for the tests: `tests/provider/server.mjs` (the certified
//! `oidc-provider` npm package, pinned in its lockfile) started as a child process on a
//! loopback port, with its test-only `/__admin/` endpoints wrapped here.
//!
//! ```ignore
//! let Some(provider) = Provider::start(json!({"audience": "https://api.test"})).await else {
//!     return; // node missing and OAUTHLINK_REQUIRE_PROVIDER unset: skipped, reason printed
//! };
//! let tokens = provider.login("test", "alice", "openid offline_access api", json!({})).await;
//! ```
//!
//! Interface (as in the shared spec; additions marked +):
//! - `Provider::start(config) -> Option<Provider>`: `config` is the server's PROVIDER_CONFIG
//!   (`clients`, `audience`, `resource_scopes`+, `access_token_ttl`, `rotate_refresh_tokens`,
//!   `alg`). Without `clients`, one client `DEFAULT_CLIENT`/`DEFAULT_SECRET` may use
//!   authorization_code, refresh_token and client_credentials, redirect `http://127.0.0.1/callback`,
//!   scopes `openid offline_access profile email api`. Runs `npm ci` in tests/provider once per
//!   process when node_modules is missing. `None` when `node` is missing, unless
//!   `OAUTHLINK_REQUIRE_PROVIDER=1` (set by .ci/run): then it panics.
//! - `issuer`, `audience`+ (fields), `stats`, `reset_stats`, `rotate(alg, keep_old) -> kid`,
//!   `mode(json)` (`token_delay_ms`, `down`, `drop`+: drop connections instead of 503),
//!   `login(client_id, sub, scope, claims)` (a real authorization-code + PKCE flow; returns the
//!   token endpoint's JSON), `client_credentials(client_id, secret, scope)`+ (the real token
//!   endpoint's JSON), `sign(claims, header) -> String` (current key; claim `null` = left out),
//!   `revoke(client_id, token)`+, `stop()` (kills the process).
//! - Dropping the `Provider` kills the child; the child also exits when its stdin (a pipe held
//!   here) closes, so a killed test process leaves nothing behind.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::OnceCell;

pub const DEFAULT_CLIENT: &str = "test";
pub const DEFAULT_SECRET: &str = "test-secret";
pub const DEFAULT_AUDIENCE: &str = "https://oauthlink.test";

const REQUIRE: &str = "OAUTHLINK_REQUIRE_PROVIDER";

pub struct Provider {
    pub issuer: String,
    pub audience: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    _stdin: Option<ChildStdin>,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider")
}

/// Skips (returns false, printing why) or, when the provider is required, panics.
fn unavailable(reason: &str) -> bool {
    if std::env::var(REQUIRE).as_deref() == Ok("1") {
        panic!("{REQUIRE}=1 but the OpenID provider cannot run: {reason}");
    }
    eprintln!("skipped: the OpenID provider cannot run: {reason}");
    false
}

/// Node present and the harness's packages installed, once per test process.
async fn ready() -> bool {
    static READY: OnceCell<bool> = OnceCell::const_new();
    *READY
        .get_or_init(|| async {
            match Command::new("node").arg("--version").output().await {
                Ok(out) if out.status.success() => {}
                _ => return unavailable("`node` is not installed"),
            }
            if !provider_dir().join("node_modules").is_dir() {
                let status = Command::new("npm")
                    .args(["ci", "--silent", "--no-audit", "--no-fund"])
                    .current_dir(provider_dir())
                    .status()
                    .await;
                if !matches!(status, Ok(s) if s.success()) {
                    return unavailable(&format!("`npm ci` in tests/provider failed: {status:?}"));
                }
            }
            true
        })
        .await
}

impl Provider {
    pub async fn start(config: Value) -> Option<Provider> {
        if !ready().await {
            return None;
        }
        let audience = config["audience"]
            .as_str()
            .unwrap_or(DEFAULT_AUDIENCE)
            .to_owned();
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(provider_dir())
            .env("PORT", "0")
            .env("PROVIDER_CONFIG", config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node tests/provider/server.mjs");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        // Its diagnostics, less oidc-provider's development warnings.
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if !line.starts_with("oidc-provider WARNING") {
                    eprintln!("[provider] {line}");
                }
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("the provider printed its address within 60 s")
            .expect("read the provider's stdout")
            .expect("the provider exited before listening");
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        let hello: Value = serde_json::from_str(&first).expect("the provider's JSON line");
        let issuer = hello["issuer"].as_str().expect("issuer").to_owned();
        Some(Provider {
            issuer,
            audience,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            child: Some(child),
            _stdin: stdin,
        })
    }

    async fn admin(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/__admin/{path}", self.issuer);
        let req = match body {
            Some(body) => self.client.post(url).json(&body),
            None => self.client.get(url),
        };
        let resp = req.send().await.expect("provider admin request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("provider admin JSON");
        assert!(
            status.is_success(),
            "provider admin {path}: {status} {body}"
        );
        body
    }

    pub async fn stats(&self) -> Value {
        self.admin("stats", None).await
    }

    pub async fn reset_stats(&self) {
        self.admin("stats/reset", Some(json!({}))).await;
    }

    /// A new signing key becomes current (first in the JWKS); returns its `kid`.
    pub async fn rotate(&self, alg: &str, keep_old: bool) -> String {
        let r = self
            .admin("rotate", Some(json!({"alg": alg, "keep_old": keep_old})))
            .await;
        r["kid"].as_str().unwrap().to_owned()
    }

    pub async fn mode(&self, mode: Value) {
        self.admin("mode", Some(mode)).await;
    }

    /// A real authorization-code + PKCE flow; the token endpoint's JSON.
    pub async fn login(&self, client_id: &str, sub: &str, scope: &str, claims: Value) -> Value {
        self.admin(
            "login",
            Some(json!({"client_id": client_id, "sub": sub, "scope": scope, "claims": claims})),
        )
        .await
    }

    /// The real token endpoint, grant `client_credentials`, resource = the audience.
    pub async fn client_credentials(&self, client_id: &str, secret: &str, scope: &str) -> Value {
        let resp = self
            .client
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", self.audience.as_str()),
            ])
            .send()
            .await
            .expect("token endpoint");
        resp.json().await.expect("token endpoint JSON")
    }

    /// A JWT signed with the provider's current key: `iss`, `aud`, `iat`, `exp`, `jti`
    /// defaulted, `claims` and `header` merged over them (a `null` claim is left out).
    pub async fn sign(&self, claims: Value, header: Value) -> String {
        let r = self
            .admin("sign", Some(json!({"claims": claims, "header": header})))
            .await;
        r["token"].as_str().unwrap().to_owned()
    }

    pub async fn revoke(&self, client_id: &str, token: &str) {
        self.admin(
            "revoke",
            Some(json!({"client_id": client_id, "token": token})),
        )
        .await;
    }

    /// Kills the provider: its port refuses connections from now on.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// The harness itself: it starts, a real authorization-code + PKCE flow yields a JWT access
/// token for the audience and a refresh token, which the real token endpoint accepts.
#[tokio::test]
async fn provider_harness_issues_jwt_access_and_refresh_tokens() {
    let Some(provider) = Provider::start(json!({"rotate_refresh_tokens": true})).await else {
        return;
    };
    let tokens = provider
        .login(
            DEFAULT_CLIENT,
            "alice",
            "openid offline_access api",
            json!({"preferred_username": "alice"}),
        )
        .await;
    let access = tokens["access_token"].as_str().expect("access_token");
    let segments: Vec<&str> = access.split('.').collect();
    assert_eq!(segments.len(), 3, "a JWS compact serialization: {access}");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(segments[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&b64.decode(segments[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert_eq!(claims["aud"], DEFAULT_AUDIENCE);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["preferred_username"], "alice");
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("offline_access yields a refresh token");

    // The real token endpoint honours it, once: rotation is on.
    let refreshed: Value = provider
        .client
        .post(format!("{}/token", provider.issuer))
        .basic_auth(DEFAULT_CLIENT, Some(DEFAULT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(refreshed["access_token"].as_str().is_some(), "{refreshed}");
    assert_ne!(refreshed["refresh_token"].as_str(), Some(refresh));
    let stats = provider.stats().await;
    assert_eq!(stats["token_by_grant"]["refresh_token"], 1, "{stats}");
    assert_eq!(stats["refresh_tokens_used"], json!([refresh]));

    // Client credentials at the real token endpoint: a JWT for the audience too.
    let cc = provider
        .client_credentials(DEFAULT_CLIENT, DEFAULT_SECRET, "api")
        .await;
    assert_eq!(
        cc["access_token"].as_str().unwrap().split('.').count(),
        3,
        "{cc}"
    );
}
