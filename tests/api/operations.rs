//! Operational behaviour: CORS, request ids, body limits.
use oauthlink::config::RestShape;
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn cors_is_off_by_default_and_allows_only_listed_origins() {
    let origin = "https://explorer.example";
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let closed = TestApp::spawn().await;
    let r = preflight(&closed, origin).await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    let open = TestApp::spawn_full(RestShape::Documented, &[origin]).await;
    let r = preflight(&open, origin).await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], origin);
    let r = preflight(&open, "https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_bodies_are_limited() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/-/health/live/", app.base))
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    let r = app
        .client
        .get(format!("{}/-/health/live/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 36, "a uuid is made");

    // Over the body limit: 413, never a 500 or a hang.
    let huge = "x".repeat(200 * 1024);
    let r = app
        .client
        .post(format!(
            "{}/api/v3/sources/user_connections/oauth/",
            app.base
        ))
        .bearer_auth(&app.superuser_key)
        .json(&json!({"identifier": huge, "source": app.source}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(
        body,
        json!({"detail": "Request body is too large.", "code": "payload_too_large"})
    );
    let r = app
        .client
        .post(format!("{}/graphql", app.base))
        .bearer_auth(&app.superuser_key)
        .json(&json!({"query": format!("{{ __typename }} # {huge}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(body.get("data").is_none_or(Value::is_null));
}
