//! The OpenAPI document at /api/v3/schema/: authentik's operations and security scheme, and
//! schemas that match what the shim really answers, in both generations.
use oauthlink::config::RestShape;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// authentik's operation ids for the viewset (from the reference excerpt).
const AUTHENTIK_OPERATIONS: [&str; 7] = [
    "sources_user_connections_oauth_list",
    "sources_user_connections_oauth_create",
    "sources_user_connections_oauth_retrieve",
    "sources_user_connections_oauth_update",
    "sources_user_connections_oauth_partial_update",
    "sources_user_connections_oauth_destroy",
    "sources_user_connections_oauth_used_by_list",
];

async fn document(app: &TestApp) -> Value {
    let r = app
        .client
        .get(format!("{}/api/v3/schema/?format=json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

/// Every key of `body` is a declared property and every required property is present.
fn conforms(doc: &Value, name: &str, body: &Value) {
    let s = schema(doc, name);
    let properties = s["properties"].as_object().unwrap();
    let object = body.as_object().unwrap_or_else(|| panic!("{name}: {body}"));
    for key in object.keys() {
        assert!(
            properties.contains_key(key),
            "{name} does not declare {key}"
        );
    }
    for required in s["required"].as_array().unwrap() {
        let key = required.as_str().unwrap();
        assert!(object.contains_key(key), "{name} requires {key}: {body}");
    }
}

#[tokio::test]
async fn operations_security_and_extra_fields_are_described() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["servers"][0]["url"], "/api/v3");
    assert_eq!(
        doc["components"]["securitySchemes"]["authentik"],
        json!({"type": "http", "scheme": "bearer"})
    );
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ids.push(op["operationId"].as_str().unwrap().to_owned());
            assert_eq!(
                op["security"],
                json!([{"authentik": []}]),
                "{method} {path}"
            );
            for status in ["400", "403"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }
    for id in AUTHENTIK_OPERATIONS {
        assert!(ids.iter().any(|i| i == id), "missing {id}");
    }
    assert!(ids.iter().any(|i| i == "oauthlink_audit_events_list"));

    let request = schema(&doc, "UserOAuthSourceConnectionRequest");
    assert_eq!(request["required"], json!(["source", "identifier"]));
    assert_eq!(request["properties"]["identifier"]["maxLength"], 255);
    assert_eq!(request["properties"]["access_token"]["writeOnly"], true);
    // The token vault (issue 15): a write-only refresh token, and oauthlink's own operations.
    assert_eq!(request["properties"]["refresh_token"]["writeOnly"], true);
    for id in [
        "oauthlink_connections_token_retrieve",
        "oauthlink_connections_token_refresh",
    ] {
        assert!(ids.iter().any(|i| i == id), "missing {id}");
    }
    for extra in ["source", "user", "expires"] {
        let description = request["properties"][extra]["description"].as_str();
        assert!(description.is_some_and(|d| !d.is_empty()), "{extra}");
    }

    // The default rendering is YAML, as authentik's.
    let r = app
        .client
        .get(format!("{}/api/v3/schema/", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.oai.openapi")
    );
    assert!(r.text().await.unwrap().starts_with("openapi: 3.1.0"));
}

async fn check_generation(shape: RestShape) {
    let app = TestApp::spawn_with(shape).await;
    let doc = document(&app).await;
    let key = Some(app.superuser_key.as_str());
    let path = "/api/v3/sources/user_connections/oauth/";
    let (status, created) = app
        .rest(
            Method::POST,
            path,
            key,
            Some(json!({"source": app.source, "identifier": "octocat",
                        "access_token": "gho_secret", "expires": "2030-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    conforms(&doc, "UserOAuthSourceConnection", &created);
    let source = match shape {
        RestShape::Documented => &created["source"],
        RestShape::Current => &created["source_obj"],
    };
    conforms(&doc, "Source", source);

    let (status, page) = app.rest(Method::GET, path, key, None).await;
    assert_eq!(status, 200);
    conforms(&doc, "PaginatedUserOAuthSourceConnectionList", &page);
    conforms(&doc, "Pagination", &page["pagination"]);

    let (status, error) = app
        .rest(Method::POST, path, key, Some(json!({"identifier": ""})))
        .await;
    assert_eq!(status, 400);
    assert!(error.as_object().unwrap().values().all(Value::is_array));
    let (status, error) = app.rest(Method::POST, path, None, Some(json!({}))).await;
    assert_eq!(status, 403);
    conforms(&doc, "GenericError", &error);

    let (status, events) = app
        .rest(Method::GET, "/api/v3/oauthlink/audit_events/", key, None)
        .await;
    assert_eq!(status, 200);
    conforms(&doc, "PaginatedAuditEventList", &events);
    let (status, token) = app
        .rest(
            Method::GET,
            &format!("/api/v3/oauthlink/connections/{}/token/", created["pk"]),
            key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{token}");
    conforms(&doc, "ConnectionToken", &token);
    conforms(&doc, "AuditEvent", &events["results"][0]);
}

#[tokio::test]
async fn documented_generation_answers_as_its_document_says() {
    check_generation(RestShape::Documented).await;
}

#[tokio::test]
async fn current_generation_answers_as_its_document_says() {
    check_generation(RestShape::Current).await;
}
