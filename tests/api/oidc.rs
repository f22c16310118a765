//! OpenID Connect access tokens beside API keys, against a real provider (tests/provider):
//! real tokens from client credentials and from authorization code + PKCE, each kind of bad
//! token refused alike on both APIs with nothing written, key rotation followed, an issuer
//! that stops, a flood of made-up `kid`s, permission claims, auto-creation.
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauthlink::config::RestShape;
use oauthlink::domain::permission::Permission;
use oauthlink::oidc::{IssuerSettings, OidcSettings, UserClaim, Verifier};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{CREATE, TestApp, code};
use crate::provider::{DEFAULT_AUDIENCE, DEFAULT_CLIENT, DEFAULT_SECRET, Provider};

const REST: &str = "/api/v3/sources/user_connections/oauth/";
const LINKING: &[Permission] = &[Permission::AddConnection, Permission::ViewConnection];

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn issuer_settings(provider: &Provider) -> IssuerSettings {
    IssuerSettings {
        issuer: provider.issuer.clone(),
        audience: vec![DEFAULT_AUDIENCE.to_owned()],
        user_claim: UserClaim::Sub,
        auto_create: false,
        permissions_claim: None,
        permission_map: Default::default(),
    }
}

/// The service under test, trusting `issuer`.
async fn app_for(issuer: IssuerSettings, tweak: impl FnOnce(&mut OidcSettings)) -> TestApp {
    let mut settings = OidcSettings {
        issuers: vec![issuer],
        leeway: Duration::from_secs(5),
        jwks_min_refetch: Duration::from_secs(1),
        ..OidcSettings::default()
    };
    tweak(&mut settings);
    let verifier = Arc::new(Verifier::new(settings).expect("OIDC settings"));
    TestApp::spawn_service(
        RestShape::Documented,
        &["https://frontend.example"],
        |service| service.with_oidc(verifier),
        |state| state,
    )
    .await
}

/// A user with the linking permissions, linked to `subject` at the provider.
async fn linked_user(app: &TestApp, provider: &Provider, username: &str, subject: &str) -> i32 {
    let (id, _) = app.user(username, LINKING).await;
    app.service
        .store()
        .set_subject(id, &provider.issuer, Some(subject))
        .await
        .unwrap();
    id
}

async fn login(provider: &Provider, sub: &str, claims: Value) -> String {
    let tokens = provider
        .login(DEFAULT_CLIENT, sub, "openid api", claims)
        .await;
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {tokens}"))
        .to_owned()
}

async fn create_graphql(app: &TestApp, token: &str, identifier: &str) -> Value {
    app.graphql(
        Some(token),
        CREATE,
        json!({"input": {"source": app.source, "identifier": identifier}}),
    )
    .await
}

async fn create_rest(app: &TestApp, token: &str, identifier: &str) -> (u16, Value) {
    app.rest(
        Method::POST,
        REST,
        Some(token),
        Some(json!({"source": app.source, "identifier": identifier})),
    )
    .await
}

async fn audit_count(app: &TestApp) -> u64 {
    app.service.store().audit_events(0, 1).await.unwrap().1
}

/// Tokens that must be refused: each on GraphQL (UNAUTHENTICATED) and REST (403, authentik's
/// words), and nothing written.
async fn assert_refused(app: &TestApp, what: &str, token: &str) {
    let before = audit_count(app).await;
    let r = create_graphql(app, token, &format!("refused-{what}")).await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "{what}: {r}");
    assert_eq!(
        r["errors"][0]["message"], "Token invalid/expired",
        "{what}: {r}"
    );
    assert!(r["data"].is_null() || r["data"]["createUserOAuthConnection"].is_null());
    let (status, body) = create_rest(app, token, &format!("refused-{what}")).await;
    assert_eq!(status, 403, "{what}: {body}");
    assert_eq!(body, json!({"detail": "Token invalid/expired"}), "{what}");
    assert_eq!(
        audit_count(app).await,
        before,
        "{what}: something was written"
    );
}

#[tokio::test]
async fn real_tokens_from_both_flows_create_as_their_user() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for(issuer_settings(&provider), |_| {}).await;
    let alice = linked_user(&app, &provider, "alice", "alice").await;
    // Client credentials: the token's subject is the client itself.
    let service_account = linked_user(&app, &provider, "frontend-svc", DEFAULT_CLIENT).await;

    // Authorization code + PKCE, driven over HTTP against the real provider; GraphQL.
    let token = login(&provider, "alice", json!({})).await;
    let r = create_graphql(&app, &token, "alice-at-github").await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["createUserOAuthConnection"]["user"], alice);
    let (events, _) = app.service.store().audit_events(0, 1).await.unwrap();
    assert_eq!(
        events[0].actor,
        Some(alice),
        "the audit actor is the token's user"
    );

    // Client credentials at the real token endpoint; REST.
    let cc = provider
        .client_credentials(DEFAULT_CLIENT, DEFAULT_SECRET, "api")
        .await;
    let token = cc["access_token"].as_str().expect("access token");
    let (status, body) = create_rest(&app, token, "svc-at-github").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"], service_account);
    let (events, _) = app.service.store().audit_events(0, 1).await.unwrap();
    assert_eq!(events[0].actor, Some(service_account));

    // API keys keep working beside them.
    let (status, _) = app
        .rest(Method::GET, REST, Some(&app.superuser_key), None)
        .await;
    assert_eq!(status, 200);

    // Owner scope applies unchanged: alice's token cannot link for the service account.
    let token = login(&provider, "alice", json!({})).await;
    let r = app
        .graphql(
            Some(&token),
            CREATE,
            json!({"input": {"source": app.source, "identifier": "x", "user": service_account}}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // A browser frontend on another origin: the real request carries its CORS answer.
    let r = app
        .client
        .post(format!("{}/graphql", app.base))
        .header("Origin", "https://frontend.example")
        .bearer_auth(&token)
        .json(&json!({"query": "{ userOAuthSourceConnections(first: 5) { edges { node { identifier } } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://frontend.example"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["data"]["userOAuthSourceConnections"]["edges"][0]["node"]["identifier"],
        "alice-at-github",
        "{body}"
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_alike_and_write_nothing() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for(issuer_settings(&provider), |_| {}).await;
    linked_user(&app, &provider, "alice", "alice").await;
    let sub = |extra: Value| {
        let mut claims = json!({"sub": "alice"});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    // The control: a token signed on demand is accepted as is.
    let good = provider.sign(sub(json!({})), json!({})).await;
    let r = create_graphql(&app, &good, "control").await;
    assert!(r["errors"].is_null(), "{r}");

    // A subject no database could store (a NUL) is no subject.
    let nul_subject = provider.sign(json!({"sub": "al\u{0}ice"}), json!({})).await;
    assert_refused(&app, "nul-in-subject", &nul_subject).await;
    let wrong_audience = provider
        .sign(sub(json!({"aud": "https://another.api"})), json!({}))
        .await;
    assert_refused(&app, "wrong-audience", &wrong_audience).await;
    let no_audience = provider.sign(sub(json!({"aud": null})), json!({})).await;
    assert_refused(&app, "no-audience", &no_audience).await;
    let wrong_issuer = provider
        .sign(
            sub(json!({"iss": "http://127.0.0.1:9/elsewhere"})),
            json!({}),
        )
        .await;
    assert_refused(&app, "wrong-issuer", &wrong_issuer).await;
    let expired = provider
        .sign(
            sub(json!({"iat": now() - 3600, "exp": now() - 60})),
            json!({}),
        )
        .await;
    assert_refused(&app, "expired", &expired).await;
    let not_yet = provider
        .sign(sub(json!({"nbf": now() + 600})), json!({}))
        .await;
    assert_refused(&app, "not-yet-valid", &not_yet).await;
    let no_exp = provider.sign(sub(json!({"exp": null})), json!({})).await;
    assert_refused(&app, "no-exp", &no_exp).await;
    // Within the leeway (5 s here) an expired token still passes: clock skew.
    let skewed = provider
        .sign(sub(json!({"exp": now() - 2})), json!({}))
        .await;
    let (status, body) = app.rest(Method::GET, REST, Some(&skewed), None).await;
    assert_eq!(status, 200, "{body}");

    // Tampered: the signature's first character changed; or the payload changed under it.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let first = if parts[2].starts_with('A') { "B" } else { "A" };
    parts[2].replace_range(0..1, first);
    assert_refused(&app, "tampered-signature", &parts.join(".")).await;
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&b64().decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("akadmin");
    parts[1] = b64().encode(claims.to_string());
    assert_refused(&app, "tampered-payload", &parts.join(".")).await;

    // alg none, with an empty signature and with one.
    let kid = {
        let header: Value =
            serde_json::from_slice(&b64().decode(good.split('.').next().unwrap()).unwrap())
                .unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let none_header = b64().encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let payload = good.split('.').nth(1).unwrap();
    assert_refused(&app, "alg-none", &format!("{none_header}.{payload}.")).await;
    assert_refused(
        &app,
        "alg-none-signed",
        &format!("{none_header}.{payload}.c2ln"),
    )
    .await;

    // HS256 with the issuer's public key as the HMAC secret (the key confusion attack): the
    // JWKS document's key, as JSON, and its modulus.
    let jwks: Value = app
        .client
        .get(format!("{}/jwks", provider.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = &jwks["keys"][0];
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    let claims = json!({"iss": provider.issuer, "aud": DEFAULT_AUDIENCE, "sub": "alice", "exp": now() + 300});
    for secret in [
        jwk.to_string().into_bytes(),
        b64().decode(jwk["n"].as_str().unwrap()).unwrap(),
    ] {
        let forged = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&secret).unwrap(),
        )
        .unwrap();
        assert_refused(&app, "hs256-public-key", &forged).await;
    }

    // A kid the issuer never published (signed with the real key all the same).
    let unknown_kid = provider
        .sign(sub(json!({})), json!({"kid": "no-such-key"}))
        .await;
    assert_refused(&app, "unknown-kid", &unknown_kid).await;
    // No kid at all.
    let no_kid = provider.sign(sub(json!({})), json!({"kid": null})).await;
    assert_refused(&app, "no-kid", &no_kid).await;

    // Valid, but no user has the subject (auto-creation is off by default).
    let stranger = provider.sign(json!({"sub": "stranger"}), json!({})).await;
    assert_refused(&app, "unknown-subject", &stranger).await;
    assert_eq!(
        app.service
            .store()
            .user_id_by_username("stranger")
            .await
            .unwrap(),
        None
    );

    // A JWT-shaped value is never looked up as an API key: a stored key of that shape does
    // not authenticate (nor does an API key ever reach the issuer, see below).
    let jwt_shaped_key = "abc.def.ghi";
    let (id, _) = app.user("shaped", LINKING).await;
    app.service
        .store()
        .create_token(
            id,
            oauthlink::storage::NewToken {
                identifier: "shaped",
                key_hash: &oauthlink::crypto::hash_api_key(jwt_shaped_key),
                intent: "api",
                expires: None,
                description: "",
            },
        )
        .await
        .unwrap();
    assert_refused(&app, "jwt-shaped-api-key", jwt_shaped_key).await;
    // A bad API key and a bad JWT are refused with the same answer.
    assert_refused(&app, "bad-api-key", &"k".repeat(64)).await;
    let fetches = provider.stats().await["jwks"].clone();
    for _ in 0..5 {
        assert_refused(&app, "opaque", "not-a-jwt-at-all").await;
    }
    assert_eq!(provider.stats().await["jwks"], fetches);
}

#[tokio::test]
async fn rotation_is_followed_and_a_dropped_key_stops_working() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for(issuer_settings(&provider), |_| {}).await;
    linked_user(&app, &provider, "alice", "alice").await;
    let rs256 = login(&provider, "alice", json!({})).await;
    let r = create_graphql(&app, &rs256, "before-rotation").await;
    assert!(r["errors"].is_null(), "{r}");

    // The provider rotates to an ES256 key (the old one still published): new tokens work
    // without a restart once the refetch interval (1 s here) has passed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    provider.rotate("ES256", true).await;
    let es256 = login(&provider, "alice", json!({})).await;
    assert!(es256.starts_with(&b64().encode(r#"{"alg":"ES256""#)[..10]));
    let (status, body) = app.rest(Method::GET, REST, Some(&es256), None).await;
    assert_eq!(status, 200, "{body}");

    // Then to EdDSA, dropping every older key: new tokens work, the old ones stop.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    provider.rotate("EdDSA", false).await;
    let eddsa = login(&provider, "alice", json!({})).await;
    let (status, body) = app.rest(Method::GET, REST, Some(&eddsa), None).await;
    assert_eq!(status, 200, "{body}");
    // (The principal cache keeps a used token for under a second: wait it out.)
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_refused(&app, "rotated-out-rs256", &rs256).await;
    assert_refused(&app, "rotated-out-es256", &es256).await;
}

#[tokio::test]
async fn cached_keys_keep_working_when_the_provider_stops() {
    let Some(mut provider) = Provider::start(json!({})).await else {
        return;
    };
    // Keys older than a second are due for a re-read: the failed re-read must keep them.
    let app = app_for(issuer_settings(&provider), |s| {
        s.jwks_max_age = Duration::from_secs(1);
    })
    .await;
    linked_user(&app, &provider, "alice", "alice").await;
    let first = login(&provider, "alice", json!({})).await;
    let later = login(&provider, "alice", json!({})).await;
    assert_ne!(first, later);
    let r = create_graphql(&app, &first, "while-up").await;
    assert!(r["errors"].is_null(), "{r}");

    provider.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Never seen before, so verified now, with the cached key; the issuer is unreachable.
    let (status, body) = app.rest(Method::GET, REST, Some(&later), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["identifier"], "while-up", "{body}");
    // A token for a key nobody has cached cannot be checked: refused, not a server error.
    let mut parts: Vec<String> = later.split('.').map(str::to_owned).collect();
    let mut header: Value = serde_json::from_slice(&b64().decode(&parts[0]).unwrap()).unwrap();
    header["kid"] = json!("unseen");
    parts[0] = b64().encode(header.to_string());
    assert_refused(&app, "unknown-kid-while-down", &parts.join(".")).await;
}

/// An issuer that has never answered: its tokens cannot be checked either way, so they get
/// the honest 503 (retry later), not a refusal telling the client its token is bad.
#[tokio::test]
async fn an_issuer_never_reached_is_an_outage_not_a_refusal() {
    let Some(mut provider) = Provider::start(json!({})).await else {
        return;
    };
    let token = provider.sign(json!({"sub": "alice"}), json!({})).await;
    provider.stop().await;
    let app = app_for(issuer_settings(&provider), |_| {}).await;
    linked_user(&app, &provider, "alice", "alice").await;
    let before = audit_count(&app).await;
    let r = create_graphql(&app, &token, "while-unreachable").await;
    assert_eq!(code(&r), "SERVICE_UNAVAILABLE", "{r}");
    let (status, body) = create_rest(&app, &token, "while-unreachable").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "service_unavailable", "{body}");
    assert_eq!(audit_count(&app).await, before, "nothing written");
}

#[tokio::test]
async fn a_flood_of_made_up_kids_costs_the_issuer_a_handful_of_fetches() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    // Refetches at most once a second (the default is 30 s): the flood below lasts a few
    // seconds, so an unknown kid does trigger fetches, and at most one per second.
    let app = app_for(issuer_settings(&provider), |_| {}).await;
    linked_user(&app, &provider, "alice", "alice").await;
    let good = login(&provider, "alice", json!({})).await;
    let (status, _) = app.rest(Method::GET, REST, Some(&good), None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    provider.reset_stats().await;

    let parts: Vec<&str> = good.split('.').collect();
    let mut header: Value = serde_json::from_slice(&b64().decode(parts[0]).unwrap()).unwrap();
    let requests: Vec<String> = (0..1000)
        .map(|_| {
            header["kid"] = json!(uuid::Uuid::new_v4().simple().to_string());
            format!(
                "{}.{}.{}",
                b64().encode(header.to_string()),
                parts[1],
                parts[2]
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let refused = &refused;
    let app = &app;
    futures_like_join(requests.iter().map(|token| async move {
        let (status, _) = app.rest(Method::GET, REST, Some(token), None).await;
        if status == 403 {
            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }))
    .await;
    let stats = provider.stats().await;
    let fetches = stats["jwks"].as_u64().unwrap();
    println!(
        "1000 requests with random kids in {:?}: {fetches} JWKS fetches, {} discovery fetches at the provider",
        started.elapsed(),
        stats["discovery"]
    );
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 1000);
    assert!(fetches >= 1, "an unknown kid refetches: {stats}");
    assert!(
        fetches <= started.elapsed().as_secs() + 1,
        "at most one fetch per second: {stats}"
    );
    // The real token still works.
    let (status, _) = app.rest(Method::GET, REST, Some(&good), None).await;
    assert_eq!(status, 200);
}

/// Runs the futures 50 at a time.
async fn futures_like_join<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
        if set.len() == 50 {
            join_all(std::mem::take(&mut set)).await;
        }
    }
    join_all(set).await;
}

async fn join_all<F: std::future::Future<Output = ()>>(futures: Vec<F>) {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[tokio::test]
async fn permission_claims_decide_only_when_configured() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    // Off (the default): the stored grants decide, the token's groups are ignored.
    let app = app_for(issuer_settings(&provider), |_| {}).await;
    let (carol, _) = app.user("carol", &[]).await;
    app.service
        .store()
        .set_subject(carol, &provider.issuer, Some("carol"))
        .await
        .unwrap();
    let token = login(&provider, "carol", json!({"groups": ["linkers"]})).await;
    let r = create_graphql(&app, &token, "carol-off").await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // On: the claim's values map to codenames, replacing the stored grants.
    let mut issuer = issuer_settings(&provider);
    issuer.permissions_claim = Some("groups".into());
    issuer.permission_map = [(
        "linkers".to_owned(),
        vec![
            "add_useroauthsourceconnection".to_owned(),
            "view_useroauthsourceconnection".to_owned(),
        ],
    )]
    .into();
    let app = app_for(issuer, |_| {}).await;
    let (dave, _) = app.user("dave", LINKING).await;
    app.service
        .store()
        .set_subject(dave, &provider.issuer, Some("dave"))
        .await
        .unwrap();
    let (erin, _) = app.user("erin", &[]).await;
    app.service
        .store()
        .set_subject(erin, &provider.issuer, Some("erin"))
        .await
        .unwrap();
    let token = login(&provider, "erin", json!({"groups": ["linkers"]})).await;
    let r = create_graphql(&app, &token, "erin-on").await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["createUserOAuthConnection"]["user"], erin);
    // dave's stored grants do not count when his token's groups grant nothing.
    let token = login(&provider, "dave", json!({"groups": ["visitors"]})).await;
    let r = create_graphql(&app, &token, "dave-on").await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
}

#[tokio::test]
async fn auto_creation_is_off_by_default_and_race_safe_when_on() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let mut issuer = issuer_settings(&provider);
    issuer.auto_create = true;
    issuer.permissions_claim = Some("permissions".into());
    let app = app_for(issuer, |_| {}).await;
    let claims = json!({
        "preferred_username": "frank",
        "email": "frank@example.com",
        "permissions": ["add_useroauthsourceconnection", "view_useroauthsourceconnection"],
    });
    // Eight first requests at once, each with its own token: one user.
    let mut tokens = Vec::new();
    for _ in 0..8 {
        tokens.push(login(&provider, "frank-sub", claims.clone()).await);
    }
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let request = app
                .client
                .get(format!("{}{REST}", app.base))
                .bearer_auth(token);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    assert!(results.iter().all(|s| *s == 200), "{results:?}");
    let store = app.service.store();
    let frank = store
        .subject_owner(&provider.issuer, "frank-sub")
        .await
        .unwrap();
    let frank = frank.expect("a user was created and linked");
    assert_eq!(
        store.user_id_by_username("frank").await.unwrap(),
        Some(frank)
    );
    let users = store
        .connection()
        .query_one_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT COUNT(*) AS n FROM users WHERE username LIKE 'frank%'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(users, 1, "one user for one subject");

    // An IdP user whose name is an existing local user's does not become that user.
    let (local, _) = app.user("grace", LINKING).await;
    let token = login(
        &provider,
        "grace-at-idp",
        json!({"preferred_username": "grace", "permissions": ["view_useroauthsourceconnection"]}),
    )
    .await;
    let (status, _) = app.rest(Method::GET, REST, Some(&token), None).await;
    assert_eq!(status, 200);
    let linked = store
        .subject_owner(&provider.issuer, "grace-at-idp")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(linked, local);
    assert!(store.subjects_of(local).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_token_costs_no_more_statements_than_an_api_key() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let app = app_for(issuer_settings(&provider), |_| {}).await;
    let (id, key) = app.user("henry", LINKING).await;
    app.service
        .store()
        .set_subject(id, &provider.issuer, Some("henry"))
        .await
        .unwrap();
    let token = login(&provider, "henry", json!({})).await;
    // Warm the issuer's keys and the source.
    let warm = login(&provider, "henry", json!({})).await;
    assert_eq!(app.rest(Method::GET, REST, Some(&warm), None).await.0, 200);
    assert_eq!(app.rest(Method::GET, REST, Some(&key), None).await.0, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;

    let app = &app;
    let store = app.service.store();
    let cost = |credential: String| async move {
        let before = store.statements_executed();
        assert_eq!(
            app.rest(Method::GET, REST, Some(&credential), None).await.0,
            200
        );
        store.statements_executed() - before
    };
    let (key_cold, jwt_cold) = (cost(key.clone()).await, cost(token.clone()).await);
    let (key_warm, jwt_warm) = (cost(key.clone()).await, cost(token.clone()).await);
    println!(
        "statements per list: API key {key_cold} then {key_warm}, token {jwt_cold} then {jwt_warm}"
    );
    assert_eq!(jwt_cold, key_cold);
    assert_eq!(jwt_warm, key_warm);
    assert!(
        jwt_warm < jwt_cold,
        "the second request is served from the cache"
    );
}

#[tokio::test]
async fn refused_tokens_count_against_the_failure_allowance_like_keys() {
    let Some(provider) = Provider::start(json!({})).await else {
        return;
    };
    let verifier = Arc::new(
        Verifier::new(OidcSettings {
            issuers: vec![issuer_settings(&provider)],
            ..OidcSettings::default()
        })
        .unwrap(),
    );
    let app = TestApp::spawn_service(
        RestShape::Documented,
        &[],
        |service| service.with_oidc(verifier),
        |state| state.with_auth_failures_per_minute(3),
    )
    .await;
    let (id, _) = app.user("ivy", LINKING).await;
    app.service
        .store()
        .set_subject(id, &provider.issuer, Some("ivy"))
        .await
        .unwrap();
    // A token that worked is trusted from then on, as a key would be.
    let good = login(&provider, "ivy", json!({})).await;
    assert_eq!(app.rest(Method::GET, REST, Some(&good), None).await.0, 200);
    let expired = provider
        .sign(
            json!({"sub": "ivy", "iat": now() - 3600, "exp": now() - 600}),
            json!({}),
        )
        .await;
    for _ in 0..3 {
        assert_eq!(
            app.rest(Method::GET, REST, Some(&expired), None).await.0,
            403
        );
    }
    let (status, _) = app.rest(Method::GET, REST, Some(&expired), None).await;
    assert_eq!(status, 429, "the fourth failure in a minute is throttled");
    let r = app
        .graphql(Some(&"x".repeat(64)), "{ me { username } }", json!({}))
        .await;
    assert_eq!(
        code(&r),
        "RATE_LIMITED",
        "API keys share the allowance: {r}"
    );
    assert_eq!(app.rest(Method::GET, REST, Some(&good), None).await.0, 200);
}
