//! The GraphQL API: the create mutation, its typed errors, and the rest of the resource.
use oauthlink::domain::permission::Permission;
use serde_json::{Value, json};

use crate::helpers::{CREATE, TestApp, code};

fn field_errors(r: &Value) -> Vec<(String, String)> {
    r["errors"][0]["extensions"]["fieldErrors"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap().to_owned(),
                        e["code"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pair(field: &str, code: &str) -> Vec<(String, String)> {
    vec![(field.to_owned(), code.to_owned())]
}

#[tokio::test]
async fn create_returns_the_connection_with_its_full_source() {
    let app = TestApp::spawn().await;
    let r = app
        .graphql(
            Some(&app.superuser_key),
            CREATE,
            json!({"input": {"source": app.source, "identifier": "  12345 ", "accessToken": "secret", "expires": "2030-01-01T00:00:00Z"}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let c = &r["data"]["createUserOAuthConnection"];
    assert_eq!(c["identifier"], "12345", "trimmed like DRF");
    assert_eq!(c["user"], 1);
    assert_eq!(c["expires"], "2030-01-01T00:00:00+00:00");
    let s = &c["source"];
    assert_eq!(s["pk"], app.source.to_string());
    assert_eq!(s["slug"], "github");
    assert_eq!(s["component"], "ak-source-oauth-form");
    assert_eq!(s["verboseName"], "OAuth Source");
    assert_eq!(s["verboseNamePlural"], "OAuth Sources");
    assert_eq!(s["metaModelName"], "authentik_sources_oauth.oauthsource");
    assert_eq!(s["policyEngineMode"], "any");
    assert_eq!(s["userMatchingMode"], "identifier");
    assert_eq!(s["userPathTemplate"], "goauthentik.io/sources/%(slug)s");
    assert_eq!(s["userPropertyMappings"], json!([]));
    assert!(s["managed"].is_null() && s["icon"].is_null() && s["authenticationFlow"].is_null());
    assert!(!r.to_string().contains("secret"));
}

#[tokio::test]
async fn invalid_input_is_bad_user_input_with_field_errors() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let cases = [
        (
            json!({"source": app.source, "identifier": "   "}),
            pair("identifier", "blank"),
        ),
        (
            json!({"source": app.source, "identifier": "x".repeat(256)}),
            pair("identifier", "max_length"),
        ),
        (
            json!({"source": app.source, "identifier": "a\u{0}b"}),
            pair("identifier", "invalid"),
        ),
        (
            json!({"source": app.source}),
            pair("identifier", "required"),
        ),
        (
            json!({"source": app.source, "identifier": null}),
            pair("identifier", "null"),
        ),
        (
            json!({"source": app.source, "identifier": {"a": 1}}),
            pair("identifier", "invalid"),
        ),
        (
            json!({"source": "not-a-uuid", "identifier": "x"}),
            pair("source", "invalid"),
        ),
        (
            json!({"source": uuid::Uuid::nil(), "identifier": "x"}),
            pair("source", "does_not_exist"),
        ),
        (
            json!({"source": app.source, "identifier": "x", "user": 9999}),
            pair("user", "does_not_exist"),
        ),
        (
            json!({"source": app.source, "identifier": "x", "user": null}),
            pair("user", "null"),
        ),
        (
            json!({"source": app.source, "identifier": "x", "user": "abc"}),
            pair("user", "invalid"),
        ),
    ];
    for (input, expected) in cases {
        let r = app.graphql(key, CREATE, json!({"input": input})).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{input} → {r}");
        assert_eq!(field_errors(&r), expected, "{input} → {r}");
        assert!(
            r["errors"][0]["extensions"]["fieldErrors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // The same rules hold for literal arguments, not only variables.
    let r = app
        .graphql(key, &format!("mutation {{ createUserOAuthConnection(input: {{source: \"{}\", identifier: \"\"}}) {{ pk }} }}", app.source), json!({}))
        .await;
    assert_eq!(field_errors(&r), pair("identifier", "blank"), "{r}");
}

#[tokio::test]
async fn duplicates_are_conflicts_naming_the_fields() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let (bob, _) = app.user("bob", &[]).await;
    let r = app
        .graphql(
            key,
            CREATE,
            json!({"input": {"source": app.source, "identifier": "one"}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app
        .graphql(
            key,
            CREATE,
            json!({"input": {"source": app.source, "identifier": "two"}}),
        )
        .await;
    assert_eq!(code(&r), "CONFLICT");
    assert_eq!(
        r["errors"][0]["extensions"]["fields"],
        json!(["user", "source"])
    );
    let r = app
        .graphql(
            key,
            CREATE,
            json!({"input": {"source": app.source, "identifier": "one", "user": bob}}),
        )
        .await;
    assert_eq!(code(&r), "CONFLICT");
    assert_eq!(
        r["errors"][0]["extensions"]["fields"],
        json!(["source", "identifier"])
    );
    assert_eq!(
        r["errors"][0]["message"],
        "The fields source, identifier must make a unique set."
    );
}

#[tokio::test]
async fn authentication_and_permission_come_before_anything_else() {
    let app = TestApp::spawn().await;
    let (_, plain) = app.user("plain", &[]).await;
    let (_, adder) = app.user("adder", &[Permission::AddConnection]).await;
    let unknown_source = json!({"input": {"source": uuid::Uuid::nil(), "identifier": ""}});
    assert_eq!(
        code(&app.graphql(None, CREATE, unknown_source.clone()).await),
        "UNAUTHENTICATED"
    );
    let bad = app
        .graphql(Some("bad-key"), CREATE, unknown_source.clone())
        .await;
    // Refused credentials: sign in again (not "not allowed").
    assert_eq!(code(&bad), "UNAUTHENTICATED");
    assert_eq!(bad["errors"][0]["message"], "Token invalid/expired");
    // No permission: refused before the (invalid, unknown) input is looked at.
    let r = app.graphql(Some(&plain), CREATE, unknown_source).await;
    assert_eq!(code(&r), "FORBIDDEN");
    assert!(r["errors"][0]["extensions"]["fieldErrors"].is_null());
    // Another user's link needs a superuser.
    let r = app
        .graphql(
            Some(&adder),
            CREATE,
            json!({"input": {"source": app.source, "identifier": "x", "user": 1}}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
    // With the permission, for oneself: allowed.
    let r = app
        .graphql(
            Some(&adder),
            CREATE,
            json!({"input": {"source": app.source, "identifier": "x"}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
}

#[tokio::test]
async fn library_errors_carry_codes_too() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    assert_eq!(
        code(&app.graphql(key, "{ me { ", json!({})).await),
        "GRAPHQL_PARSE_FAILED"
    );
    assert_eq!(
        code(&app.graphql(key, "{ nope }", json!({})).await),
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        code(&app.graphql(key, "{ me { nope } }", json!({})).await),
        "GRAPHQL_VALIDATION_FAILED"
    );
    let aliases: String = (0..40).map(|i| format!("a{i}: errorCodes ")).collect();
    assert_eq!(
        code(
            &app.graphql(key, &format!("{{ {aliases} }}"), json!({}))
                .await
        ),
        "QUERY_LIMIT_EXCEEDED"
    );
    let levels = 20;
    let nested = format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "ofType { ".repeat(levels),
        "} ".repeat(levels)
    );
    let r = app.graphql(key, &nested, json!({})).await;
    assert_eq!(code(&r), "QUERY_LIMIT_EXCEEDED", "{r}");
    // The standard introspection query fits the limits.
    let intro = app.graphql(key, INTROSPECTION, json!({})).await;
    assert!(intro["errors"].is_null(), "{intro}");
    // Batches are refused with a code.
    let r: Value = app
        .client
        .post(format!("{}/graphql", app.base))
        .json(&json!([{"query": "{ errorCodes }"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code(&r), "BAD_REQUEST");
    // Mutations are not accepted over GET.
    let resp = app
        .client
        .get(format!("{}/graphql", app.base))
        .query(&[(
            "query",
            "mutation { deleteUserOAuthSourceConnection(pk: 1) }",
        )])
        .bearer_auth(&app.superuser_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    // Queries are.
    let resp: Value = app
        .client
        .get(format!("{}/graphql", app.base))
        .query(&[("query", "{ me { username } }")])
        .bearer_auth(&app.superuser_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["data"]["me"]["username"], "akadmin");
}

#[tokio::test]
async fn list_pages_with_cursors_filters_and_visibility() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let gitlab = app.add_source("GitLab", "gitlab").await;
    let (alice, alice_key) = app.user("alice", &[]).await;
    for i in 0..5 {
        let (u, _) = app.user(&format!("u{i}"), &[]).await;
        for s in [app.source, gitlab] {
            let r = app
                .graphql(
                    key,
                    CREATE,
                    json!({"input": {"source": s, "identifier": format!("{s}-{i}"), "user": u}}),
                )
                .await;
            assert!(r["errors"].is_null(), "{r}");
        }
    }
    let r = app
        .graphql(
            key,
            CREATE,
            json!({"input": {"source": app.source, "identifier": "alice-gh", "user": alice}}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    const LIST: &str = r#"query($after: String, $before: String, $first: Int, $last: Int, $slug: String, $order: UserOAuthSourceConnectionOrder) {
      userOAuthSourceConnections(first: $first, after: $after, last: $last, before: $before, sourceSlug: $slug, orderBy: $order) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { pk identifier user source { slug } } }
      }
    }"#;
    // Walk forward in pages of 4 by identifier, descending.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = app
            .graphql(key, LIST, json!({"first": 4, "after": after, "order": {"field": "IDENTIFIER", "direction": "DESC"}}))
            .await;
        let page = &r["data"]["userOAuthSourceConnections"];
        assert_eq!(page["totalCount"], 11, "{r}");
        for e in page["edges"].as_array().unwrap() {
            seen.push(e["node"]["identifier"].as_str().unwrap().to_owned());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 11);
    // Backward from the end gives the last page.
    let r = app.graphql(key, LIST, json!({"last": 3})).await;
    let page = &r["data"]["userOAuthSourceConnections"];
    assert_eq!(page["edges"].as_array().unwrap().len(), 3);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
    // Filter by slug.
    let r = app
        .graphql(key, LIST, json!({"slug": "gitlab", "first": 100}))
        .await;
    assert_eq!(r["data"]["userOAuthSourceConnections"]["totalCount"], 5);
    // A plain user sees only their own.
    let r = app
        .graphql(Some(&alice_key), LIST, json!({"first": 100}))
        .await;
    let page = &r["data"]["userOAuthSourceConnections"];
    assert_eq!(page["totalCount"], 1);
    assert_eq!(page["edges"][0]["node"]["identifier"], "alice-gh");
    // Bad cursor and page size are typed input errors.
    assert_eq!(
        code(&app.graphql(key, LIST, json!({"after": "garbage!"})).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(&app.graphql(key, LIST, json!({"first": 1000})).await),
        "BAD_USER_INPUT"
    );
}

/// A slug with a NUL (which PostgreSQL cannot even compare) is a field error, as in the
/// REST list's slug filter, not an internal error. Found by schemathesis.
#[tokio::test]
async fn a_source_slug_with_a_nul_is_bad_user_input() {
    let app = TestApp::spawn().await;
    let r = app
        .graphql(
            Some(&app.superuser_key),
            "query($s: String) { source(slug: $s) { pk } }",
            json!({"s": "gith\u{0}ub"}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    let r = app
        .graphql(
            Some(&app.superuser_key),
            "query($s: String) { source(slug: $s) { pk } }",
            json!({"s": "no-such-source"}),
        )
        .await;
    assert!(
        r["errors"].is_null() && r["data"]["source"].is_null(),
        "{r}"
    );
}

/// A variable the operation declares and the request leaves out is the client's input error,
/// not an internal one, and nothing runs.
#[tokio::test]
async fn a_missing_variable_is_bad_user_input() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let r = app
        .graphql(
            key,
            "mutation($pk: Int!) { deleteUserOAuthSourceConnection(pk: $pk) }",
            json!({}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    assert!(r["errors"][0]["extensions"]["errorId"].is_null(), "{r}");
    let r = app
        .graphql(
            key,
            "mutation($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) { pk } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(app.service.store().audit_events(0, 1).await.unwrap().1, 0);
}

#[tokio::test]
async fn update_and_delete_follow_the_same_rules() {
    let app = TestApp::spawn().await;
    let (alice, alice_key) = app.user("alice", &[]).await;
    let (_, changer) = app
        .user(
            "changer",
            &[Permission::ChangeConnection, Permission::ViewConnection],
        )
        .await;
    let r = app
        .graphql(
            Some(&app.superuser_key),
            CREATE,
            json!({"input": {"source": app.source, "identifier": "a1", "user": alice}}),
        )
        .await;
    let pk = r["data"]["createUserOAuthConnection"]["pk"]
        .as_i64()
        .unwrap();
    const UPDATE: &str = "mutation($pk: Int!, $input: UpdateUserOAuthSourceConnectionInput!) { updateUserOAuthSourceConnection(pk: $pk, input: $input) { identifier expires lastUpdated } }";
    const DELETE: &str = "mutation($pk: Int!) { deleteUserOAuthSourceConnection(pk: $pk) }";
    // The owner without the change permission may not re-link.
    assert_eq!(
        code(
            &app.graphql(
                Some(&alice_key),
                UPDATE,
                json!({"pk": pk, "input": {"identifier": "z"}})
            )
            .await
        ),
        "FORBIDDEN"
    );
    let r = app
        .graphql(
            Some(&changer),
            UPDATE,
            json!({"pk": pk, "input": {"identifier": "a2", "expires": "2031-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateUserOAuthSourceConnection"]["identifier"], "a2",
        "{r}"
    );
    let r = app
        .graphql(
            Some(&changer),
            UPDATE,
            json!({"pk": pk, "input": {"identifier": ""}}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
    assert_eq!(
        code(
            &app.graphql(Some(&changer), UPDATE, json!({"pk": 999, "input": {}}))
                .await
        ),
        "NOT_FOUND"
    );
    // Someone else's row is invisible to a plain user: NOT_FOUND, like a missing one.
    let (_, mallory) = app.user("mallory", &[]).await;
    assert_eq!(
        code(&app.graphql(Some(&mallory), DELETE, json!({"pk": pk})).await),
        "NOT_FOUND"
    );
    assert_eq!(
        code(
            &app.graphql(Some(&mallory), DELETE, json!({"pk": 999}))
                .await
        ),
        "NOT_FOUND"
    );
    // The owner may delete their own.
    let r = app
        .graphql(Some(&alice_key), DELETE, json!({"pk": pk}))
        .await;
    assert_eq!(r["data"]["deleteUserOAuthSourceConnection"], pk, "{r}");
    assert_eq!(
        code(
            &app.graphql(Some(&alice_key), DELETE, json!({"pk": pk}))
                .await
        ),
        "NOT_FOUND"
    );
    // Every write is audited, readable by superusers only.
    let events = "{ events { totalCount events { action connection identifier } } }";
    let r = app
        .graphql(Some(&app.superuser_key), events, json!({}))
        .await;
    assert_eq!(r["data"]["events"]["totalCount"], 3, "{r}");
    assert_eq!(r["data"]["events"]["events"][0]["action"], "delete");
    assert_eq!(
        code(&app.graphql(Some(&alice_key), events, json!({})).await),
        "FORBIDDEN"
    );
}

pub const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}"#;

/// A page costs the same number of statements for 1, 10 or 100 connections: sources come in
/// one batch, not one query per row.
#[tokio::test]
async fn a_page_of_connections_costs_constant_queries() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let mut sources = vec![app.source];
    for i in 0..4 {
        sources.push(app.add_source(&format!("S{i}"), &format!("s{i}")).await);
    }
    const PAGE: &str = "{ userOAuthSourceConnections(first: 100) { edges { node { pk identifier source { pk slug userPropertyMappings } } } } }";
    let mut costs = Vec::new();
    let mut made = 0;
    for target in [1, 10, 100] {
        while made < target {
            let (u, _) = app.user(&format!("q{made}"), &[]).await;
            let s = sources[made % sources.len()];
            let r = app
                .graphql(
                    key,
                    CREATE,
                    json!({"input": {"source": s, "identifier": format!("q{made}"), "user": u}}),
                )
                .await;
            assert!(r["errors"].is_null(), "{r}");
            made += 1;
        }
        // Warm the caller and source lookups (cached for 500 ms) out of the measurement's
        // noise: measure a second request, right after the first.
        app.graphql(key, PAGE, json!({})).await;
        let before = app.service.store().statements_executed();
        let r = app.graphql(key, PAGE, json!({})).await;
        let cost = app.service.store().statements_executed() - before;
        assert_eq!(
            r["data"]["userOAuthSourceConnections"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            target
        );
        costs.push(cost);
    }
    // Constant in the page size: an N+1 would add one statement per row (90 from 10 to 100
    // rows). One of slack: a lookup cached for 500 ms may expire between the two requests on
    // a loaded machine.
    let least = *costs.iter().min().unwrap();
    assert!(
        costs.iter().all(|c| *c <= least + 1),
        "statements per page grew: {costs:?}"
    );
    assert!(costs[0] <= 8, "{costs:?}");
}
