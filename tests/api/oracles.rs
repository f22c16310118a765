//! No existence oracles, and authentik's edges of the REST list (issue 11), on whichever
//! database the suite runs on: `?user=N` answers alike for existing and missing users to
//! callers who may not see every row; delete, update and used_by resolve visible rows first;
//! search folds ASCII case only, the same on SQLite and PostgreSQL; an empty filter is no
//! filter; NUL is a 400; search terms must all match; identifier length, ordering and page
//! sizes per generation.
use oauthlink::config::RestShape;
use oauthlink::domain::permission::Permission;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, code};

const BASE: &str = "/api/v3/sources/user_connections/oauth/";
const INVALID_CHOICE: &str =
    "Select a valid choice. That choice is not one of the available choices.";
const NUL: &str = "Null characters are not allowed.";

async fn list(app: &TestApp, key: &str, query: &str) -> (u16, Value) {
    app.rest(Method::GET, &format!("{BASE}?{query}"), Some(key), None)
        .await
}

/// A superuser creates `identifier` for `user` at `source`; returns the row's pk.
async fn link(app: &TestApp, user: i32, source: Uuid, identifier: &str) -> i64 {
    let (status, body) = app
        .rest(
            Method::POST,
            BASE,
            Some(&app.superuser_key),
            Some(json!({"user": user, "source": source, "identifier": identifier})),
        )
        .await;
    assert_eq!(status, 201, "{identifier}: {body}");
    body["pk"].as_i64().unwrap()
}

fn identifiers(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {body}"))
        .iter()
        .map(|r| r["identifier"].as_str().unwrap().to_owned())
        .collect()
}

/// Identifiers the superuser lists for `query`, all on one page.
async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let (status, body) = list(app, &app.superuser_key, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert_eq!(
        body["pagination"]["count"].as_u64().unwrap() as usize,
        body["results"].as_array().unwrap().len(),
        "{query}: not on one page"
    );
    identifiers(&body)
}

fn sorted(mut v: Vec<&str>) -> Vec<String> {
    v.sort();
    v.into_iter().map(str::to_owned).collect()
}

async fn sorted_ids(app: &TestApp, query: &str) -> Vec<String> {
    let mut v = ids(app, query).await;
    v.sort();
    v
}

#[tokio::test]
async fn user_filter_tells_nobody_which_users_exist() {
    let app = TestApp::spawn().await;
    let (bob, _) = app.user("bob", &[]).await;
    link(&app, bob, app.source, "bob-at-github").await;
    let (alice, alice_key) = app.user("alice", &[]).await;
    link(&app, alice, app.source, "alice-at-github").await;
    // Every permission but view: still no view of others' rows, so no oracle either.
    let (_, writer_key) = app
        .user(
            "writer",
            &[
                Permission::AddConnection,
                Permission::ChangeConnection,
                Permission::DeleteConnection,
            ],
        )
        .await;
    let missing = 999_999;
    for key in [&alice_key, &writer_key] {
        let (status, existing) = list(&app, key, &format!("user={bob}")).await;
        assert_eq!(status, 200, "{existing}");
        let (status, absent) = list(&app, key, &format!("user={missing}")).await;
        assert_eq!(status, 200, "{absent}");
        assert_eq!(
            existing, absent,
            "an existing and a missing user look alike"
        );
        assert_eq!(existing["pagination"]["count"], 0);
        assert_eq!(existing["results"], json!([]));
        // Not a number: the same 400 to everyone, whatever exists.
        let (status, body) = list(&app, key, "user=abc").await;
        assert_eq!((status, body), (400, json!({"user": [INVALID_CHOICE]})));
    }
    // A caller filtering on themselves sees their rows.
    assert_eq!(
        identifiers(&list(&app, &alice_key, &format!("user={alice}")).await.1),
        ["alice-at-github"]
    );
    // Who may see every row gets authentik's 400 for a missing user, and the rows otherwise.
    let (_, viewer_key) = app.user("viewer", &[Permission::ViewConnection]).await;
    for key in [viewer_key.as_str(), app.superuser_key.as_str()] {
        let (status, body) = list(&app, key, &format!("user={missing}")).await;
        assert_eq!((status, body), (400, json!({"user": [INVALID_CHOICE]})));
        let (status, body) = list(&app, key, &format!("user={bob}")).await;
        assert_eq!(status, 200);
        assert_eq!(identifiers(&body), ["bob-at-github"]);
    }
}

/// A row the caller cannot see answers 404, exactly as a missing pk, whatever permission the
/// caller holds, and is left as it was.
#[tokio::test]
async fn writes_and_used_by_resolve_visible_rows_first() {
    let app = TestApp::spawn().await;
    let (bob, _) = app.user("bob", &[]).await;
    let pk = link(&app, bob, app.source, "bob-at-github").await;
    let row = format!("{BASE}{pk}/");
    let missing = format!("{BASE}2000000000/");
    let (_, deleter) = app.user("deleter", &[Permission::DeleteConnection]).await;
    let (_, changer) = app.user("changer", &[Permission::ChangeConnection]).await;
    let not_found = json!({"detail": "No UserOAuthSourceConnection matches the given query."});
    let cases = [
        (&deleter, Method::DELETE, "", None),
        (&deleter, Method::GET, "used_by/", None),
        (
            &changer,
            Method::PATCH,
            "",
            Some(json!({"identifier": "taken"})),
        ),
        (
            &changer,
            Method::PUT,
            "",
            Some(json!({"source": app.source, "identifier": "taken"})),
        ),
    ];
    for (key, method, suffix, body) in cases {
        for path in [&row, &missing] {
            let answer = app
                .rest(
                    method.clone(),
                    &format!("{path}{suffix}"),
                    Some(key),
                    body.clone(),
                )
                .await;
            assert_eq!(answer, (404, not_found.clone()), "{method} {path}{suffix}");
        }
    }
    // GraphQL: the same rule.
    let gql = "mutation($pk: Int!) { deleteUserOAuthSourceConnection(pk: $pk) }";
    let r = app.graphql(Some(&deleter), gql, json!({"pk": pk})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app
        .graphql(Some(&deleter), gql, json!({"pk": 2_000_000_000}))
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    // Nothing changed.
    let (status, body) = app
        .rest(Method::GET, &row, Some(&app.superuser_key), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["identifier"], "bob-at-github");
    // Who may see the row but not delete it learns it exists: 403.
    let (_, viewer) = app.user("viewer", &[Permission::ViewConnection]).await;
    let (status, _) = app.rest(Method::DELETE, &row, Some(&viewer), None).await;
    assert_eq!(status, 403);
    let (status, body) = app
        .rest(Method::GET, &format!("{row}used_by/"), Some(&viewer), None)
        .await;
    assert_eq!((status, body), (200, json!([])));
    // View and delete together: deleted.
    let (_, both) = app
        .user(
            "both",
            &[Permission::ViewConnection, Permission::DeleteConnection],
        )
        .await;
    let (status, _) = app.rest(Method::DELETE, &row, Some(&both), None).await;
    assert_eq!(status, 204);
}

/// ASCII letters fold, others do not, on both databases: "Ä" is not "ä", "ß" is not "ss".
#[tokio::test]
async fn search_folds_ascii_case_alike_on_both_databases() {
    let app = TestApp::spawn().await;
    let idents = ["ÄBC", "äbc", "abc", "Straße", "STRASSE"];
    for (i, ident) in idents.iter().enumerate() {
        let (user, _) = app.user(&format!("u{i}"), &[]).await;
        link(&app, user, app.source, ident).await;
    }
    let cases: [(&str, Vec<&str>); 9] = [
        ("äbc", vec!["äbc"]),
        ("%C3%84bc", vec!["ÄBC"]),
        ("ÄBC", vec!["ÄBC"]),
        ("ABC", vec!["abc"]),
        ("bc", vec!["ÄBC", "äbc", "abc"]),
        ("straße", vec!["Straße"]),
        ("STRAßE", vec!["Straße"]),
        ("strasse", vec!["STRASSE"]),
        ("SS", vec!["STRASSE"]),
    ];
    for (term, expected) in cases {
        assert_eq!(
            sorted_ids(&app, &format!("search={term}")).await,
            sorted(expected),
            "search={term}"
        );
    }
    // Usernames and slugs fold the same way.
    assert_eq!(ids(&app, "search=U3").await, ["Straße"]);
    assert_eq!(ids(&app, "search=GitHub").await.len(), idents.len());
}

/// DRF's SearchFilter: terms split on spaces and commas, each must match some field.
#[tokio::test]
async fn search_terms_must_all_match() {
    let app = TestApp::spawn().await;
    let gitlab = app.add_source("GitLab", "gitlab").await;
    let (ann, _) = app.user("ann", &[]).await;
    let (ben, _) = app.user("ben", &[]).await;
    link(&app, ann, app.source, "alpha-one").await;
    link(&app, ben, app.source, "alpha-two").await;
    link(&app, ann, gitlab, "beta-one").await;
    let cases: [(&str, Vec<&str>); 10] = [
        ("alpha one", vec!["alpha-one"]),
        ("alpha,one", vec!["alpha-one"]),
        ("alpha,%20two", vec!["alpha-two"]),
        ("one%20%20gitlab", vec!["beta-one"]),
        // A term may match another field than the others: username, slug, identifier.
        ("ann one", vec!["alpha-one", "beta-one"]),
        ("ben,github", vec!["alpha-two"]),
        ("alpha three", vec![]),
        // A quoted phrase is one term.
        ("%22alpha one%22", vec![]),
        ("%22one alpha%22", vec![]),
        ("%22ha-one%22", vec!["alpha-one"]),
    ];
    for (term, expected) in cases {
        assert_eq!(
            sorted_ids(&app, &format!("search={term}")).await,
            sorted(expected),
            "search={term}"
        );
    }
    // Nothing but separators: no search.
    assert_eq!(ids(&app, "search=%20,%20").await.len(), 3);
}

#[tokio::test]
async fn empty_filters_are_ignored() {
    let app = TestApp::spawn().await;
    let gitlab = app.add_source("GitLab", "gitlab").await;
    let (ann, _) = app.user("ann", &[]).await;
    link(&app, ann, app.source, "gh").await;
    link(&app, ann, gitlab, "gl").await;
    for query in ["source__slug=", "source__slug=%20", "user=", "search=", ""] {
        assert_eq!(sorted_ids(&app, query).await, ["gh", "gl"], "{query}");
    }
    // Django's CharField strips surrounding whitespace.
    assert_eq!(ids(&app, "source__slug=%20gitlab%20").await, ["gl"]);
    assert_eq!(ids(&app, "source__slug=nothing").await.len(), 0);
}

#[tokio::test]
async fn nul_in_a_query_parameter_is_a_400() {
    let app = TestApp::spawn().await;
    let su = app.superuser_key.clone();
    let (status, body) = list(&app, &su, "source__slug=git%00hub").await;
    assert_eq!((status, body), (400, json!({"source__slug": [NUL]})));
    // The search filter's error is a bare list, as DRF renders it.
    let (status, body) = list(&app, &su, "search=a%00").await;
    assert_eq!((status, body), (400, json!([NUL])));
    // Filter-set errors come together, in the filter set's order, before the search's.
    let (status, body) = list(&app, &su, "source__slug=%00&user=abc&search=%00").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"user": [INVALID_CHOICE], "source__slug": [NUL]})
    );
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["user", "source__slug"]
    );
    // Filters are read before the page: a bad filter on a bad page is still the 400.
    let (status, _) = list(&app, &su, "search=%00&page=99").await;
    assert_eq!(status, 400);
    // A plain user gets the same answers.
    let (_, plain) = app.user("plain", &[]).await;
    let (status, body) = list(&app, &plain, "search=%00").await;
    assert_eq!((status, body), (400, json!([NUL])));
}

async fn post(app: &TestApp, identifier: String) -> (u16, Value) {
    let body = json!({"source": app.source, "identifier": identifier});
    app.rest(Method::POST, BASE, Some(&app.superuser_key), Some(body))
        .await
}

async fn patch(app: &TestApp, row: String, identifier: String) -> (u16, Value) {
    let body = json!({"identifier": identifier});
    app.rest(Method::PATCH, &row, Some(&app.superuser_key), Some(body))
        .await
}

#[tokio::test]
async fn identifier_length_follows_the_generation() {
    let documented = TestApp::spawn().await;
    let current = TestApp::spawn_with(RestShape::Current).await;
    let too_long = |n: usize| json!({"identifier": [format!("Ensure this field has no more than {n} characters.")]});
    // Documented (authentik 2024.x): 255.
    assert_eq!(
        post(&documented, "x".repeat(256)).await,
        (400, too_long(255))
    );
    // Current (authentik 2025.4+ has no limit): up to oauthlink's cap of 512 characters,
    // stored and returned whole — four-byte characters included (2048 bytes, indexed).
    let long = "𝔸".repeat(512);
    let (status, body) = post(&current, long.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["identifier"], long);
    let pk = body["pk"].clone();
    let (status, body) = current
        .rest(
            Method::GET,
            &format!("{BASE}{pk}/"),
            Some(&current.superuser_key),
            None,
        )
        .await;
    assert_eq!((status, &body["identifier"]), (200, &json!(long)));
    assert_eq!(post(&current, "x".repeat(513)).await, (400, too_long(512)));
    // Updates follow the same rule.
    let row = format!("{BASE}{pk}/");
    let (status, body) = patch(&current, row.clone(), "y".repeat(400)).await;
    assert_eq!(
        (status, body["identifier"].as_str().map(str::len)),
        (200, Some(400))
    );
    assert_eq!(
        patch(&current, row, "y".repeat(513)).await,
        (400, too_long(512))
    );
    // The audit trail holds the long identifier too.
    let r = current
        .graphql(
            Some(&current.superuser_key),
            "{ events(limit: 1) { events { action identifier } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["events"]["events"][0]["identifier"]
            .as_str()
            .map(str::len),
        Some(400),
        "{r}"
    );
    // GraphQL keeps 255 whatever the REST generation.
    let r = current
        .graphql(
            Some(&current.superuser_key),
            "mutation($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) { pk } }",
            json!({"input": {"source": current.source, "identifier": "z".repeat(256)}}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["fieldErrors"][0]["code"],
        "max_length"
    );
    // The OpenAPI documents say so.
    for (app, max) in [(&documented, 255), (&current, 512)] {
        let doc: Value = app
            .client
            .get(format!("{}/api/v3/schema/?format=json", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for schema in [
            "UserOAuthSourceConnectionRequest",
            "PatchedUserOAuthSourceConnectionRequest",
        ] {
            assert_eq!(
                doc["components"]["schemas"][schema]["properties"]["identifier"]["maxLength"], max,
                "{schema}"
            );
        }
        let bad_request = &doc["components"]["responses"]["ValidationErrorResponse"]["content"]["application/json"]
            ["schema"]["oneOf"];
        assert!(
            bad_request
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["type"] == "array"),
            "the bare list of a bad search is documented: {bad_request}"
        );
    }
}

/// `ordering=source` is the source's uuid; only the generation's serializer fields count.
#[tokio::test]
async fn ordering_follows_the_generation() {
    for shape in [RestShape::Documented, RestShape::Current] {
        let app = TestApp::spawn_with(shape).await;
        let mut sources = vec![(app.source, "github".to_owned())];
        for slug in ["aaa", "mmm", "zzz"] {
            sources.push((app.add_source(slug, slug).await, slug.to_owned()));
        }
        let (ann, _) = app.user("ann", &[]).await;
        for (source, slug) in &sources {
            link(&app, ann, *source, &format!("at-{slug}")).await;
        }
        let by_slug: Vec<String> = ["at-aaa", "at-github", "at-mmm", "at-zzz"]
            .map(String::from)
            .to_vec();
        let mut by_uuid = sources.clone();
        by_uuid.sort_by_key(|(uuid, _)| *uuid);
        let by_uuid: Vec<String> = by_uuid.iter().map(|(_, s)| format!("at-{s}")).collect();
        assert_eq!(ids(&app, "ordering=source").await, by_uuid, "{shape:?}");
        let mut reversed = by_uuid.clone();
        reversed.reverse();
        assert_eq!(ids(&app, "ordering=-source").await, reversed, "{shape:?}");
        // Not serializer fields: ignored, so the default order (slug, then pk).
        for ignored in ["-source__slug", "-id", "bogus"] {
            assert_eq!(
                ids(&app, &format!("ordering={ignored}")).await,
                by_slug,
                "{shape:?} {ignored}"
            );
        }
        // `last_updated` is a field of the current generation only.
        let newest_first: Vec<String> = ["at-zzz", "at-mmm", "at-aaa", "at-github"]
            .map(String::from)
            .to_vec();
        let expected = match shape {
            RestShape::Documented => by_slug.clone(),
            RestShape::Current => newest_first,
        };
        assert_eq!(
            ids(&app, "ordering=-last_updated").await,
            expected,
            "{shape:?}"
        );
    }
}

#[tokio::test]
async fn current_generation_orders_by_expiry_nulls_last() {
    let app = TestApp::spawn_with(RestShape::Current).await;
    let gitlab = app.add_source("GitLab", "gitlab").await;
    let (ann, _) = app.user("ann", &[]).await;
    let (ben, _) = app.user("ben", &[]).await;
    let key = Some(app.superuser_key.as_str());
    for (user, source, ident, expires) in [
        (ann, app.source, "late", json!("2031-01-01T00:00:00Z")),
        (ann, gitlab, "never", Value::Null),
        (ben, app.source, "early", json!("2030-01-01T00:00:00Z")),
    ] {
        let mut body = json!({"user": user, "source": source, "identifier": ident});
        if !expires.is_null() {
            body["expires"] = expires;
        }
        let (status, body) = app.rest(Method::POST, BASE, key, Some(body)).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(
        ids(&app, "ordering=expires").await,
        ["early", "late", "never"]
    );
    assert_eq!(
        ids(&app, "ordering=-expires").await,
        ["never", "late", "early"]
    );
}

/// Rows and pages of a list.
async fn page(app: &TestApp, query: &str) -> (usize, u64) {
    let (status, body) = list(app, &app.superuser_key, query).await;
    assert_eq!(status, 200, "{body}");
    (
        body["results"].as_array().unwrap().len(),
        body["pagination"]["total_pages"].as_u64().unwrap(),
    )
}

/// Documented generation: 100 rows a page by default and no limit of 100 (a server cap of
/// 1000 is tested in rest/paging.rs); current: 20 by default, at most 100.
#[tokio::test]
async fn page_sizes_follow_the_generation() {
    for shape in [RestShape::Documented, RestShape::Current] {
        let app = TestApp::spawn_with(shape).await;
        let mut users = Vec::new();
        for i in 0..11 {
            users.push(app.user(&format!("u{i}"), &[]).await.0);
        }
        let mut sources = vec![app.source];
        for i in 0..9 {
            sources.push(app.add_source(&format!("s{i}"), &format!("s{i}")).await);
        }
        for user in &users {
            for source in &sources {
                link(&app, *user, *source, &format!("{user}-{source}")).await;
            }
        }
        let (default, large) = match shape {
            RestShape::Documented => ((100, 2), (105, 2)),
            RestShape::Current => ((20, 6), (100, 2)),
        };
        assert_eq!(page(&app, "").await, default, "{shape:?}");
        assert_eq!(page(&app, "page_size=105").await, large, "{shape:?}");
        assert_eq!(page(&app, "page_size=0").await, default, "{shape:?}");
        assert_eq!(page(&app, "page_size=abc").await, default, "{shape:?}");
    }
}
