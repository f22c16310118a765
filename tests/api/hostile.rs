//! Hostile and malformed bodies on both APIs: each gets a clear, typed answer (never a 500 or
//! a hang), and none of them leaves a row behind.
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{CREATE, TestApp, code};

const REST: &str = "/api/v3/sources/user_connections/oauth/";

/// Sends raw bytes as JSON; returns status and body.
async fn send(app: &TestApp, path: &str, body: Vec<u8>) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.superuser_key)
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(10))
        .body(body)
        .send()
        .await
        .expect("an answer, not a hang");
    let status = r.status().as_u16();
    let body = r.json().await.expect("a JSON body");
    (status, body)
}

fn assert_parse_error(rest: (u16, Value), graphql: (u16, Value), what: &str) {
    let (status, body) = rest;
    assert_eq!(status, 400, "REST {what}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("JSON parse error - "),
        "REST {what}: {body}"
    );
    let (status, body) = graphql;
    assert_eq!(status, 400, "GraphQL {what}: {body}");
    assert_eq!(code(&body), "BAD_REQUEST", "GraphQL {what}: {body}");
}

#[tokio::test]
async fn malformed_json_is_refused_with_a_parse_error_on_both_apis() {
    let app = TestApp::spawn().await;
    let source = app.source.to_string();

    let mut bad_utf8 = format!(r#"{{"source": "{source}", "identifier": ""#).into_bytes();
    bad_utf8.extend_from_slice(&[0xff, 0xfe, b'"', b'}']);
    let mut bad_utf8_gql = br#"{"query": "{ __typename }", "operationName": ""#.to_vec();
    bad_utf8_gql.extend_from_slice(&[0xc3, 0x28, b'"', b'}']);
    assert_parse_error(
        send(&app, REST, bad_utf8).await,
        send(&app, "/graphql", bad_utf8_gql).await,
        "invalid UTF-8",
    );

    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert_parse_error(
        send(
            &app,
            REST,
            format!(r#"{{"identifier": {deep}}}"#).into_bytes(),
        )
        .await,
        send(
            &app,
            "/graphql",
            format!(r#"{{"query": "{{ __typename }}", "variables": {{"v": {deep}}}}}"#)
                .into_bytes(),
        )
        .await,
        "nesting beyond 128 levels",
    );

    // Duplicate keys: which one would count is a parser's choice, so neither does.
    let rest = send(
        &app,
        REST,
        format!(r#"{{"source": "{source}", "identifier": "a", "identifier": "b"}}"#).into_bytes(),
    )
    .await;
    assert!(
        rest.1["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"identifier\"")
    );
    let graphql = send(
        &app,
        "/graphql",
        format!(
            r#"{{"query": {}, "variables": {{"input": {{"source": "{source}", "identifier": "a", "identifier": "b"}}}}}}"#,
            json!(CREATE)
        )
        .into_bytes(),
    )
    .await;
    assert!(
        graphql.1["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate key")
    );
    assert_parse_error(rest, graphql, "duplicate keys");

    assert_parse_error(
        send(&app, REST, b"{\"identifier\": \"x\"".to_vec()).await,
        send(&app, "/graphql", b"{\"query\": ".to_vec()).await,
        "truncated JSON",
    );
    assert_eq!(rows(&app).await, 0);
}

async fn rows(app: &TestApp) -> u64 {
    let (_, body) = app
        .rest(reqwest::Method::GET, REST, Some(&app.superuser_key), None)
        .await;
    body["pagination"]["count"].as_u64().unwrap()
}

#[tokio::test]
async fn wrong_types_and_huge_strings_are_field_errors_on_both_apis() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let huge = "x".repeat(60_000);
    let cases = [
        (
            json!({"identifier": {"nested": true}}),
            "identifier",
            "invalid",
        ),
        (json!({"identifier": ["a"]}), "identifier", "invalid"),
        (json!({"identifier": huge}), "identifier", "max_length"),
        (
            json!({"identifier": "nul\u{0}byte"}),
            "identifier",
            "invalid",
        ),
        (
            json!({"identifier": "ok", "expires": 17}),
            "expires",
            "invalid",
        ),
        (
            json!({"identifier": "ok", "source": 42}),
            "source",
            "invalid",
        ),
    ];
    for (fields, field, field_code) in cases {
        let mut body = json!({"source": app.source});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, rest) = app
            .rest(reqwest::Method::POST, REST, key, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {rest}");
        assert!(rest[field][0].is_string(), "REST names {field}: {rest}");

        let mut input = body.clone();
        if let Some(token) = input.as_object_mut().unwrap().remove("access_token") {
            input["accessToken"] = token;
        }
        let response = app.graphql(key, CREATE, json!({"input": input})).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{input}: {response}");
        let errors = &response["errors"][0]["extensions"]["fieldErrors"];
        let found = errors
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .unwrap_or_else(|| panic!("GraphQL names {field}: {response}"));
        if field_code != "invalid" {
            assert_eq!(found["code"], field_code, "{response}");
        }
    }
    assert_eq!(rows(&app).await, 0);

    // Unknown fields: ignored by REST, as authentik does; refused by GraphQL's schema.
    let (status, _) = app
        .rest(
            reqwest::Method::POST,
            REST,
            key,
            Some(json!({"source": app.source, "identifier": "ok", "is_superuser": true})),
        )
        .await;
    assert_eq!(status, 201);
    let response = app
        .graphql(
            key,
            CREATE,
            json!({"input": {"source": app.source, "identifier": "ok2", "isSuperuser": true}}),
        )
        .await;
    assert!(
        ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"].contains(&code(&response)),
        "{response}"
    );
    assert_eq!(rows(&app).await, 1);
}
