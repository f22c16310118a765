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

#[tokio::test]
async fn failed_authentication_is_throttled_per_address_on_both_apis() {
    let app = TestApp::spawn_custom(RestShape::Documented, &[], |state| {
        state.with_auth_failures_per_minute(3)
    })
    .await;
    let path = "/api/v3/sources/user_connections/oauth/";
    // Missing credentials are not failures: they never count.
    for _ in 0..5 {
        let (status, _) = app.rest(reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, 403);
    }
    for _ in 0..3 {
        let (status, body) = app
            .rest(reqwest::Method::GET, path, Some("wrong-key"), None)
            .await;
        assert_eq!(
            (status, &body),
            (403, &json!({"detail": "Token invalid/expired"}))
        );
    }
    // Over the allowance: refused before the credentials are looked at, the right key too.
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&app.superuser_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "throttled");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Request was throttled.")
    );

    let response = app
        .graphql(
            Some(&app.superuser_key),
            "{ userOAuthSourceConnections { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::helpers::code(&response), "RATE_LIMITED");
    let retry = response["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!((1..=20).contains(&retry), "{response}");
    // Endpoints without credentials stay open.
    let (status, _) = app
        .rest(reqwest::Method::GET, "/-/health/live/", None, None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_a_limit_failures_are_never_throttled() {
    let app = TestApp::spawn().await;
    for _ in 0..30 {
        let (status, _) = app
            .rest(
                reqwest::Method::GET,
                "/api/v3/sources/user_connections/oauth/",
                Some("wrong-key"),
                None,
            )
            .await;
        assert_eq!(status, 403);
    }
}

/// The value of the sample line that starts with `series` (labels included), if any.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_operation_and_outcome() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let input = json!({"input": {"source": app.source, "identifier": "metered"}});
    for _ in 0..2 {
        app.graphql(key, crate::helpers::CREATE, input.clone())
            .await;
    }
    app.graphql(key, "{ noSuchField }", json!({})).await;
    app.rest(
        reqwest::Method::GET,
        "/api/v3/sources/user_connections/oauth/",
        key,
        None,
    )
    .await;
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    let create = r#"api="graphql",operation="mutation createUserOAuthConnection""#;
    assert_eq!(
        sample(
            &text,
            &format!(r#"oauthlink_requests_total{{{create},outcome="ok"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"oauthlink_requests_total{{{create},outcome="CONFLICT"}}"#)
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"oauthlink_request_duration_seconds_count{{{create},outcome="CONFLICT"}}"#)
        ),
        Some(1.0)
    );
    // A root field the schema does not have is `invalid`: clients cannot invent label values.
    assert_eq!(
        sample(
            &text,
            r#"oauthlink_requests_total{api="graphql",operation="query invalid",outcome="GRAPHQL_VALIDATION_FAILED"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains("noSuchField"));
    assert_eq!(
        sample(
            &text,
            r#"oauthlink_requests_total{api="rest",operation="GET /api/v3/sources/user_connections/oauth/",outcome="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"oauthlink_db_pool_connections{state="max"}"#),
        Some(8.0)
    );
    assert!(sample(&text, r#"oauthlink_db_pool_connections{state="open"}"#).unwrap() >= 1.0);
    assert!(sample(&text, "oauthlink_db_statements_total").unwrap() > 0.0);
}
