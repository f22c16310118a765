//! The token vault (issue 15) without a provider: who may read a stored token, over both
//! APIs, with the audit events it writes; tokens never in ordinary answers; the relink state;
//! refusals that need no source. The refresh against a real OAuth server is in
//! vault_refresh.rs.
use oauthlink::domain::permission::Permission;
use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::{TestApp, code};

pub const TOKEN_QUERY: &str =
    "query T($pk: Int!) { userOAuthConnectionToken(pk: $pk) { accessToken tokenType expires } }";
pub const REFRESH_MUTATION: &str = "mutation R($pk: Int!) { refreshUserOAuthConnectionToken(pk: $pk) { accessToken tokenType expires } }";

pub fn token_path(pk: i32) -> String {
    format!("/api/v3/oauthlink/connections/{pk}/token/")
}

pub fn refresh_path(pk: i32) -> String {
    format!("/api/v3/oauthlink/connections/{pk}/refresh/")
}

/// Links `user` (by the superuser) with the given tokens; returns the connection's pk.
pub async fn link(
    app: &TestApp,
    user: i32,
    identifier: &str,
    access: Option<&str>,
    refresh: Option<&str>,
    expires: Option<chrono::DateTime<chrono::Utc>>,
) -> i32 {
    let r = app
        .graphql(
            Some(&app.superuser_key),
            "mutation C($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) { pk needsRelink } }",
            json!({"input": {"source": app.source, "user": user, "identifier": identifier,
                   "accessToken": access, "refreshToken": refresh,
                   "expires": expires.map(|e| e.to_rfc3339())}}),
        )
        .await;
    assert_eq!(
        r["data"]["createUserOAuthConnection"]["needsRelink"], false,
        "{r}"
    );
    r["data"]["createUserOAuthConnection"]["pk"]
        .as_i64()
        .unwrap_or_else(|| panic!("{r}")) as i32
}

/// The audit events (newest first) of one action on one connection: (actor, owner).
pub async fn events(app: &TestApp, connection: i32, action: &str) -> Vec<(Value, Value)> {
    let (status, body) = app
        .rest(
            Method::GET,
            "/api/v3/oauthlink/audit_events/?page_size=100",
            Some(&app.superuser_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["connection"] == connection && e["action"] == action)
        .map(|e| (e["actor"].clone(), e["owner"].clone()))
        .collect()
}

/// Who may read whose token, over GraphQL and REST alike; every read is audited with its
/// reader and the token's owner, and refusals are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix_of_token_reads_on_both_apis() {
    let app = TestApp::spawn().await;
    let read = Permission::ReadConnectionToken;
    let view = Permission::ViewConnection;
    let (owner, owner_key) = app.user("owner", &[]).await;
    let (_, reader_key) = app.user("reader", &[read]).await;
    let (reader_owner, reader_owner_key) = app.user("reader_owner", &[read]).await;
    let (_, viewer_key) = app.user("viewer", &[view]).await;
    let (_, auditor_key) = app.user("auditor", &[read, view]).await;
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let pk = link(&app, owner, "o", Some("tok-owner"), None, Some(expires)).await;
    let own = link(
        &app,
        reader_owner,
        "ro",
        Some("tok-ro"),
        None,
        Some(expires),
    )
    .await;
    let missing = pk + 1000;

    // (who, key, connection) -> expected outcome: Ok(token) or the GraphQL code + REST status.
    let superuser = app.superuser_key.clone();
    type Expected<'a> = Result<&'a str, (&'a str, u16)>;
    let cases: Vec<(&str, Option<&str>, i32, Expected)> = vec![
        ("anonymous", None, pk, Err(("UNAUTHENTICATED", 403))),
        (
            "owner without the permission",
            Some(&owner_key),
            pk,
            Err(("FORBIDDEN", 403)),
        ),
        // Authorization before existence: no permission, no answer about what exists.
        (
            "no permission, missing row",
            Some(&owner_key),
            missing,
            Err(("FORBIDDEN", 403)),
        ),
        (
            "viewer without the permission",
            Some(&viewer_key),
            pk,
            Err(("FORBIDDEN", 403)),
        ),
        (
            "other user with the permission",
            Some(&reader_key),
            pk,
            Err(("NOT_FOUND", 404)),
        ),
        (
            "reader, missing row",
            Some(&reader_key),
            missing,
            Err(("NOT_FOUND", 404)),
        ),
        (
            "owner with the permission",
            Some(&reader_owner_key),
            own,
            Ok("tok-ro"),
        ),
        (
            "holder of read + view",
            Some(&auditor_key),
            pk,
            Ok("tok-owner"),
        ),
        ("superuser", Some(&superuser), pk, Ok("tok-owner")),
    ];
    for (who, key, connection, expected) in cases {
        let gql = app
            .graphql(key, TOKEN_QUERY, json!({"pk": connection}))
            .await;
        let (status, rest) = app
            .rest(Method::GET, &token_path(connection), key, None)
            .await;
        match expected {
            Ok(token) => {
                let t = &gql["data"]["userOAuthConnectionToken"];
                assert_eq!(t["accessToken"], token, "{who}: {gql}");
                assert_eq!(t["tokenType"], "Bearer", "{who}");
                assert!(t["expires"].is_string(), "{who}: {gql}");
                assert_eq!(status, 200, "{who}: {rest}");
                assert_eq!(rest["access_token"], token, "{who}");
                assert_eq!(rest["token_type"], "Bearer", "{who}");
            }
            Err((gql_code, rest_status)) => {
                assert_eq!(code(&gql), gql_code, "{who}: {gql}");
                assert!(gql["data"].is_null() || gql["data"]["userOAuthConnectionToken"].is_null());
                assert_eq!(status, rest_status, "{who}: {rest}");
                assert!(rest.get("access_token").is_none(), "{who}: {rest}");
            }
        }
        // The explicit refresh has the same gate (no refresh token is stored here: a reader
        // who passes it gets a field error instead of a token).
        let (status, rest) = app
            .rest(Method::POST, &refresh_path(connection), key, None)
            .await;
        let gql = app
            .graphql(key, REFRESH_MUTATION, json!({"pk": connection}))
            .await;
        match expected {
            Ok(_) => {
                assert_eq!(status, 400, "{who}: {rest}");
                assert_eq!(
                    rest["refresh_token"][0],
                    "This connection has no refresh token."
                );
                assert_eq!(code(&gql), "BAD_USER_INPUT", "{who}: {gql}");
            }
            Err((gql_code, rest_status)) => {
                assert_eq!(status, rest_status, "{who}: {rest}");
                assert_eq!(code(&gql), gql_code, "{who}: {gql}");
            }
        }
    }

    // Two reads (GraphQL and REST) per allowed case, each with its reader and the owner.
    let (auditor, superuser_id) = (
        app.service
            .store()
            .user_id_by_username("auditor")
            .await
            .unwrap()
            .unwrap(),
        1,
    );
    let mut reads = events(&app, pk, "read_token").await;
    reads.sort_by_key(|(actor, _)| actor.as_i64());
    assert_eq!(
        reads,
        vec![
            (json!(superuser_id), json!(owner)),
            (json!(superuser_id), json!(owner)),
            (json!(auditor), json!(owner)),
            (json!(auditor), json!(owner)),
        ]
    );
    assert_eq!(
        events(&app, own, "read_token").await,
        vec![(json!(reader_owner), json!(reader_owner)); 2]
    );

    // By global id, under the same rules: the owner's own token, and another's refused.
    let by_id = "query T($id: ID!) { userOAuthConnectionToken(id: $id) { accessToken } }";
    let id = |pk| oauthlink::graphql::node::GlobalId::Connection(pk).encode();
    let gql = app
        .graphql(Some(&reader_owner_key), by_id, json!({"id": id(own)}))
        .await;
    assert_eq!(
        gql["data"]["userOAuthConnectionToken"]["accessToken"], "tok-ro",
        "{gql}"
    );
    let gql = app
        .graphql(Some(&reader_owner_key), by_id, json!({"id": id(pk)}))
        .await;
    assert_eq!(code(&gql), "NOT_FOUND", "{gql}");
    let gql = app
        .graphql(
            Some(&reader_owner_key),
            TOKEN_QUERY_BOTH,
            json!({"pk": own, "id": id(own)}),
        )
        .await;
    assert_eq!(code(&gql), "BAD_USER_INPUT", "{gql}");
}

const TOKEN_QUERY_BOTH: &str =
    "query T($pk: Int!, $id: ID!) { userOAuthConnectionToken(pk: $pk, id: $id) { accessToken } }";

/// Refresh tokens are write-only like access tokens: no answer but the token read carries a
/// token, and the token read carries only the access token.
#[tokio::test]
async fn tokens_appear_in_no_ordinary_answer() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let (status, created) = app
        .rest(
            Method::POST,
            "/api/v3/sources/user_connections/oauth/",
            key,
            Some(json!({"source": app.source, "identifier": "rest",
                        "access_token": "rest-access-secret", "refresh_token": "rest-refresh-secret"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let rest_pk = created["pk"].as_i64().unwrap() as i32;
    // The relink flag is only shown when set: authentik's clients see their usual body.
    assert!(created.get("needs_relink").is_none(), "{created}");
    assert!(created.get("refresh_token").is_none(), "{created}");
    let (other, _) = app.user("other", &[]).await;
    let gql_pk = link(&app, other, "gql", None, Some("gql-refresh-secret"), None).await;
    let mut answers = Vec::new();
    for path in [
        "/api/v3/sources/user_connections/oauth/".to_owned(),
        format!("/api/v3/sources/user_connections/oauth/{rest_pk}/"),
        format!("/api/v3/sources/user_connections/oauth/{gql_pk}/"),
        "/api/v3/oauthlink/audit_events/".to_owned(),
    ] {
        let (status, body) = app.rest(Method::GET, &path, key, None).await;
        assert_eq!(status, 200, "{path}");
        answers.push(body.to_string());
    }
    let (status, patched) = app
        .rest(
            Method::PATCH,
            &format!("/api/v3/sources/user_connections/oauth/{rest_pk}/"),
            key,
            Some(json!({"refresh_token": "rest-refresh-secret-2"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    answers.push(patched.to_string());
    let list = app
        .graphql(
            key,
            "{ userOAuthSourceConnections(first: 10) { edges { node { pk identifier expires needsRelink } } } events { events { action owner actor } } }",
            json!({}),
        )
        .await;
    assert!(list["errors"].is_null(), "{list}");
    answers.push(list.to_string());
    // No field of the connection type can carry a token.
    let fields = app
        .graphql(
            key,
            r#"{ __type(name: "UserOAuthSourceConnection") { fields { name } } }"#,
            json!({}),
        )
        .await;
    let names: Vec<&str> = fields["data"]["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_lowercase().contains("token")),
        "{names:?}"
    );
    assert!(names.contains(&"needsRelink"));
    for answer in &answers {
        for secret in ["access-secret", "refresh-secret"] {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
    }
    // The token read gives the access token, never the refresh token, and is not cached.
    let r = app
        .client
        .get(format!("{}{}", app.base, token_path(rest_pk)))
        .bearer_auth(&app.superuser_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    assert!(body.contains("rest-access-secret"), "{body}");
    assert!(!body.contains("refresh-secret"), "{body}");
    // A refresh token alone, and nowhere to refresh it: the source has no token endpoint.
    // A typed 503-class refusal; nothing stored changes.
    let before = app
        .service
        .store()
        .vault_row(gql_pk)
        .await
        .unwrap()
        .unwrap();
    let gql = app.graphql(key, TOKEN_QUERY, json!({"pk": gql_pk})).await;
    assert_eq!(code(&gql), "PROVIDER_UNAVAILABLE", "{gql}");
    assert_eq!(gql["errors"][0]["extensions"]["reason"], "not_configured");
    let (status, rest) = app.rest(Method::GET, &token_path(gql_pk), key, None).await;
    assert_eq!(status, 503, "{rest}");
    assert_eq!(rest["code"], "provider_unavailable");
    assert_eq!(rest["reason"], "not_configured");
    let after = app
        .service
        .store()
        .vault_row(gql_pk)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before, after);
    assert!(events(&app, gql_pk, "read_token").await.is_empty());
}

/// Outbound calls go only to http(s) token endpoints, checked when the source is
/// configured (the CLI) and again at call time.
#[tokio::test]
async fn a_token_endpoint_that_is_not_http_is_refused_at_call_time() {
    let app = TestApp::spawn().await;
    let store = app.service.store();
    store
        .update_token_endpoint(
            "github",
            oauthlink::storage::TokenEndpointChange {
                access_token_url: Some("file:///etc/passwd".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    let pk = link(&app, 1, "x", Some("old"), Some("refresh"), Some(past)).await;
    let (status, body) = app
        .rest(Method::GET, &token_path(pk), Some(&app.superuser_key), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "not_configured");
}
