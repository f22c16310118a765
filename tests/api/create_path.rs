//! The create path of issue 12: one database statement per warm create on PostgreSQL (the
//! principal and the source come from their caches, the user's existence from the insert's
//! foreign key), with the order in which errors win unchanged.
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

const REST: &str = "/api/v3/sources/user_connections/oauth/";

#[tokio::test]
async fn a_warm_create_is_one_statement_on_postgresql() {
    let app = TestApp::spawn().await;
    let store = app.service.store();
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(app.user(&format!("u{i}"), &[]).await.0);
    }
    let create = |user: i32, i: usize| {
        app.rest(
            Method::POST,
            REST,
            Some(&app.superuser_key),
            Some(json!({"source": app.source, "user": user, "identifier": format!("id-{i}")})),
        )
    };
    // Warm: the key and the source are cached by the first create.
    assert_eq!(create(users[0], 0).await.0, 201);
    let before = store.statements_executed();
    for (i, &user) in users.iter().enumerate().skip(1) {
        assert_eq!(create(user, i).await.0, 201);
    }
    let per_create = (store.statements_executed() - before) as f64 / 5.0;
    println!("statements per warm create: {per_create}");
    if app.database_url.starts_with("postgres") {
        assert_eq!(per_create, 1.0);
    } else {
        // SQLite's writer: the row and its audit event, in the batch's shared transaction.
        assert_eq!(per_create, 2.0);
    }
}

#[tokio::test]
async fn an_unknown_user_and_an_unknown_source_are_reported_together() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .rest(
            Method::POST,
            REST,
            Some(&app.superuser_key),
            Some(json!({"source": Uuid::new_v4(), "user": 999_999, "identifier": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["user", "source"],
        "{body}"
    );
    // With a cached (existing) source, an unknown user is still an existence error, also
    // when the identifier is taken: existence wins over uniqueness.
    let (status, _) = app
        .rest(
            Method::POST,
            REST,
            Some(&app.superuser_key),
            Some(json!({"source": app.source, "identifier": "taken"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .rest(
            Method::POST,
            REST,
            Some(&app.superuser_key),
            Some(json!({"source": app.source, "user": 999_999, "identifier": "taken"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"user": ["Invalid pk \"999999\" - object does not exist."]})
    );
}

#[tokio::test]
async fn a_source_deleted_after_it_was_cached_is_does_not_exist() {
    let app = TestApp::spawn().await;
    let source = app.add_source("Doomed", "doomed").await;
    let body = |i: &str| Some(json!({"source": source, "identifier": i}));
    let key = Some(app.superuser_key.as_str());
    assert_eq!(app.rest(Method::POST, REST, key, body("a")).await.0, 201);
    // Gone behind the cache's back (another process's SQL), with its rows.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let db = app.service.store().connection();
    entity::audit_event::Entity::delete_many()
        .filter(entity::audit_event::Column::SourceId.eq(source))
        .exec(db)
        .await
        .unwrap();
    entity::user_oauth_source_connection::Entity::delete_many()
        .filter(entity::user_oauth_source_connection::Column::SourceId.eq(source))
        .exec(db)
        .await
        .unwrap();
    entity::source::Entity::delete_by_id(source)
        .exec(db)
        .await
        .unwrap();
    let (status, body) = app.rest(Method::POST, REST, key, body("b")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"source": [format!("Invalid pk \"{source}\" - object does not exist.")]})
    );
}
