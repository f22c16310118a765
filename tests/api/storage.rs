//! Storage and security properties checked on the database itself.
use oauthlink::domain::permission::Permission;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{CREATE, TestApp, code};

#[tokio::test]
async fn access_token_is_sealed_at_rest_and_never_returned() {
    let app = TestApp::spawn().await;
    let token = "gho_VerySecretAccessToken123";
    let r = app
        .graphql(
            Some(&app.superuser_key),
            CREATE,
            json!({"input": {"source": app.source, "identifier": "octocat", "accessToken": token}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(!r.to_string().contains(token));
    let pk = r["data"]["createUserOAuthConnection"]["pk"]
        .as_i64()
        .unwrap() as i32;
    let raw = app
        .service
        .store()
        .sealed_access_token(pk)
        .await
        .unwrap()
        .expect("stored");
    assert!(
        !raw.sealed
            .windows(token.len())
            .any(|w| w == token.as_bytes()),
        "stored in clear"
    );
    assert_eq!(app.service.open_access_token(&raw).as_deref(), Ok(token));
    // Reading back through both APIs never shows it.
    let (_, body) = app
        .rest(
            reqwest::Method::GET,
            &format!("/api/v3/sources/user_connections/oauth/{pk}/"),
            Some(&app.superuser_key),
            None,
        )
        .await;
    assert!(!body.to_string().contains(token));
}

#[tokio::test]
async fn the_database_itself_rejects_duplicates() {
    let app = TestApp::spawn().await;
    let db = app.service.store().connection();
    let backend = db.get_database_backend();
    let (user, _) = app.user("dup", &[]).await;
    let source = app.source;
    let insert = |u: i32, ident: &str| match backend {
        sea_orm::DbBackend::Postgres => format!(
            "INSERT INTO user_oauth_source_connections (user_id, source_id, identifier, created, last_updated) \
                 VALUES ({u}, '{source}', '{ident}', now(), now())"
        ),
        _ => format!(
            "INSERT INTO user_oauth_source_connections (user_id, source_id, identifier, created, last_updated) \
                 SELECT {u}, source_id, '{ident}', created, last_updated FROM user_oauth_source_connections LIMIT 1"
        ),
    };
    // Seed one row through the service, then bypass it.
    let r = app
        .graphql(
            Some(&app.superuser_key),
            CREATE,
            json!({"input": {"source": source, "identifier": "seed", "user": user}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let (admin, _) = app.user("other", &[]).await;
    assert!(
        db.execute_unprepared(&insert(user, "again")).await.is_err(),
        "duplicate (user, source) accepted"
    );
    assert!(
        db.execute_unprepared(&insert(admin, "seed")).await.is_err(),
        "duplicate (source, identifier) accepted"
    );
    assert!(
        db.execute_unprepared(&insert(admin, "   ")).await.is_err(),
        "blank identifier accepted"
    );
    assert!(db.execute_unprepared(&insert(admin, "fresh")).await.is_ok());
}

#[tokio::test]
async fn tokens_valid_unknown_expired_and_inactive() {
    let app = TestApp::spawn().await;
    let (_, key) = app.user("alice", &[Permission::AddConnection]).await;
    let me = "{ me { username permissions } }";
    let ok = app.graphql(Some(&key), me, json!({})).await;
    assert_eq!(ok["data"]["me"]["username"], "alice");
    assert_eq!(
        ok["data"]["me"]["permissions"],
        json!(["add_useroauthsourceconnection"])
    );
    assert_eq!(
        code(&app.graphql(Some("nope"), me, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&app.graphql(None, me, json!({})).await),
        "UNAUTHENTICATED"
    );

    // Expired.
    let store = app.service.store();
    let expired_key = oauthlink::crypto::generate_api_key();
    let id = store.user_id_by_username("alice").await.unwrap().unwrap();
    store
        .create_token(
            id,
            oauthlink::storage::NewToken {
                identifier: "old",
                key_hash: &oauthlink::crypto::hash_api_key(&expired_key),
                intent: "api",
                expires: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
                description: "",
            },
        )
        .await
        .unwrap();
    let r = app.graphql(Some(&expired_key), me, json!({})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
    assert_eq!(r["errors"][0]["message"], "Token invalid/expired");

    // Inactive user: the same answer, within the principal cache's second.
    store.set_user_active(id, false).await.unwrap();
    let changed = std::time::Instant::now();
    let r = loop {
        let r = app.graphql(Some(&key), me, json!({})).await;
        if code(&r) != "<none>" || changed.elapsed() > std::time::Duration::from_secs(1) {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(code(&r), "UNAUTHENTICATED");
    assert_eq!(r["errors"][0]["message"], "Token invalid/expired");
}

#[tokio::test]
async fn concurrent_duplicate_creates_make_exactly_one_row() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            // Half race on the (user, source) pair, half on the identifier via REST.
            if i % 2 == 0 {
                let r = app
                    .graphql(
                        Some(&app.superuser_key),
                        CREATE,
                        json!({"input": {"source": app.source, "identifier": format!("id-{i}")}}),
                    )
                    .await;
                if r["errors"].is_null() {
                    "ok".to_owned()
                } else {
                    code(&r).to_owned()
                }
            } else {
                let (status, _) = app
                    .rest(
                        reqwest::Method::POST,
                        "/api/v3/sources/user_connections/oauth/",
                        Some(&app.superuser_key),
                        Some(json!({"source": app.source, "identifier": format!("id-{i}")})),
                    )
                    .await;
                match status {
                    201 => "ok".to_owned(),
                    400 => "CONFLICT".to_owned(),
                    s => format!("status {s}"),
                }
            }
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| *o == "ok").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().all(|o| o == "ok" || o == "CONFLICT"),
        "{outcomes:?}"
    );
}

/// Many writers at once: every distinct create succeeds (no "database is locked" on SQLite).
#[tokio::test]
async fn concurrent_distinct_creates_all_succeed() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(app.user(&format!("w{i}"), &[]).await.0);
    }
    let tasks: Vec<_> = users
        .into_iter()
        .map(|u| {
            let app = app.clone();
            tokio::spawn(async move {
                app.graphql(
                    Some(&app.superuser_key),
                    CREATE,
                    json!({"input": {"source": app.source, "identifier": format!("ext-{u}"), "user": u}}),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r["errors"].is_null(), "{r}");
    }
    let r = app
        .graphql(
            Some(&app.superuser_key),
            "{ userOAuthSourceConnections { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["userOAuthSourceConnections"]["totalCount"], 50);
}

/// Two instances starting together on one empty database: migrations run once, and exactly
/// one superuser is bootstrapped.
#[tokio::test]
async fn instances_starting_together_bootstrap_once() {
    let (url, _dir) = crate::helpers::fresh_database().await;
    let config = crate::helpers::config(&url);
    let start = |key: &'static str| {
        let config = config.clone();
        async move {
            let service = oauthlink::app::open(&config).await.unwrap();
            oauthlink::cli::bootstrap(&service, Some(key))
                .await
                .unwrap();
            service
        }
    };
    let (a, b) = tokio::join!(start("key-of-instance-a"), start("key-of-instance-b"));
    let users = a.store().user_id_by_username("akadmin").await.unwrap();
    assert!(users.is_some());
    // Exactly one of the two keys works.
    let ok_a = a
        .authenticate(Some("Bearer key-of-instance-a"))
        .await
        .is_ok();
    let ok_b = b
        .authenticate(Some("Bearer key-of-instance-b"))
        .await
        .is_ok();
    assert!(ok_a ^ ok_b, "a: {ok_a}, b: {ok_b}");
}
