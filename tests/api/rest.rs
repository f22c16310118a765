//! The REST shim, `/api/v3/sources/user_connections/oauth/`: exact bodies of authentik's
//! documented and current shapes, every validation message, auth failures, pagination,
//! filters, the detail routes and health.
use oauthlink::config::RestShape;
use oauthlink::domain::permission::Permission;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

const BASE: &str = "/api/v3/sources/user_connections/oauth/";

fn at(pk: &Value) -> String {
    format!("{BASE}{pk}/")
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// DRF's rendering: `2026-01-02T03:04:05.123456Z`.
fn is_drf_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    b.len() == 27
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && b[26] == b'Z'
}

/// The nested Source of the documented shape, for a source made by the harness.
fn documented_source(pk: Uuid, name: &str, slug: &str) -> Value {
    json!({
        "pk": pk,
        "name": name,
        "slug": slug,
        "enabled": true,
        "authentication_flow": null,
        "enrollment_flow": null,
        "user_property_mappings": [],
        "group_property_mappings": [],
        "component": "ak-source-oauth-form",
        "verbose_name": "OAuth Source",
        "verbose_name_plural": "OAuth Sources",
        "meta_model_name": "authentik_sources_oauth.oauthsource",
        "policy_engine_mode": "any",
        "user_matching_mode": "identifier",
        "managed": null,
        "user_path_template": "goauthentik.io/sources/%(slug)s",
        "icon": null,
    })
}

fn current_source(pk: Uuid, name: &str, slug: &str) -> Value {
    let mut v = documented_source(pk, name, slug);
    v["promoted"] = json!(false);
    v["icon"] = json!("");
    v["icon_url"] = Value::Null;
    v["icon_themed_urls"] = Value::Null;
    v
}

/// A request with full control of headers and body; returns status and raw text.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let mut req = app.client.request(method, format!("{}{}", app.base, path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn post(app: &TestApp, key: Option<&str>, body: Value) -> (u16, Value) {
    app.rest(Method::POST, BASE, key, Some(body)).await
}

async fn count_rows(app: &TestApp) -> u64 {
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("{BASE}?page_size=100"),
            Some(&app.superuser_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["pagination"]["count"].as_u64().unwrap()
}

const REQUIRED: &str = "This field is required.";

#[tokio::test]
async fn create_documented_shape_is_exact() {
    let app = TestApp::spawn().await;
    let (status, body) = post(
        &app,
        Some(&app.superuser_key),
        json!({"source": app.source, "identifier": "  octocat ", "access_token": "gho_secret_value", "expires": "2030-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        keys(&body),
        ["pk", "user", "source", "created", "identifier"],
        "{body}"
    );
    let created = body["created"].as_str().unwrap();
    assert!(is_drf_datetime(created), "{created}");
    assert!(body["pk"].as_i64().is_some_and(|pk| pk > 0), "{body}");
    assert_eq!(
        body,
        json!({
            "pk": body["pk"],
            "user": 1,
            "source": documented_source(app.source, "GitHub", "github"),
            "created": created,
            "identifier": "octocat",
        })
    );
    assert_eq!(
        keys(&body["source"]),
        keys(&documented_source(app.source, "GitHub", "github"))
    );
    let text = body.to_string();
    assert!(!text.contains("access_token") && !text.contains("gho_secret_value"));
    assert!(!text.contains("expires") && !text.contains("last_updated"));

    // Retrieve answers the same object.
    let (status, got) = app
        .rest(
            Method::GET,
            &at(&body["pk"]),
            Some(&app.superuser_key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got, body);
}

#[tokio::test]
async fn create_current_shape_is_exact() {
    let app = TestApp::spawn_with(RestShape::Current).await;
    let (bob, _) = app.user("bob", &[]).await;
    let (status, body) = post(
        &app,
        Some(&app.superuser_key),
        json!({"source": app.source, "identifier": "with-expiry", "access_token": "tok", "expires": "2030-01-02T03:04:05+02:00"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        keys(&body),
        [
            "pk",
            "user",
            "source",
            "source_obj",
            "identifier",
            "created",
            "last_updated",
            "expires"
        ]
    );
    for field in ["created", "last_updated", "expires"] {
        assert!(is_drf_datetime(body[field].as_str().unwrap()), "{body}");
    }
    assert_eq!(
        body,
        json!({
            "pk": body["pk"],
            "user": 1,
            "source": app.source.to_string(),
            "source_obj": current_source(app.source, "GitHub", "github"),
            "identifier": "with-expiry",
            "created": body["created"],
            "last_updated": body["last_updated"],
            "expires": "2030-01-02T01:04:05.000000Z",
        })
    );
    assert!(!body.to_string().contains("access_token"));

    // Without `expires` the key is absent, not null.
    let (status, body) = post(
        &app,
        Some(&app.superuser_key),
        json!({"source": app.source, "identifier": "no-expiry", "user": bob}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        keys(&body),
        [
            "pk",
            "user",
            "source",
            "source_obj",
            "identifier",
            "created",
            "last_updated"
        ]
    );
    assert_eq!(body["user"], bob);
    assert_eq!(
        body["source_obj"],
        current_source(app.source, "GitHub", "github")
    );
}

#[tokio::test]
async fn create_validation_messages_word_for_word() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let s = app.source;
    let nil = Uuid::nil();
    let unknown = Uuid::new_v4();
    let datetime = "Datetime has wrong format. Use one of these formats instead: \
                    YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({}),
            json!({"source": [REQUIRED], "identifier": [REQUIRED]}),
        ),
        (json!({"identifier": "x"}), json!({"source": [REQUIRED]})),
        (json!({"source": s}), json!({"identifier": [REQUIRED]})),
        (
            json!({"source": s, "identifier": ""}),
            json!({"identifier": ["This field may not be blank."]}),
        ),
        (
            json!({"source": s, "identifier": " \t\n "}),
            json!({"identifier": ["This field may not be blank."]}),
        ),
        (
            json!({"source": s, "identifier": null}),
            json!({"identifier": ["This field may not be null."]}),
        ),
        (
            json!({"source": s, "identifier": "x".repeat(256)}),
            json!({"identifier": ["Ensure this field has no more than 255 characters."]}),
        ),
        (
            json!({"source": s, "identifier": {"a": 1}}),
            json!({"identifier": ["Not a valid string."]}),
        ),
        (
            json!({"source": s, "identifier": ["a"]}),
            json!({"identifier": ["Not a valid string."]}),
        ),
        (
            json!({"source": s, "identifier": true}),
            json!({"identifier": ["Not a valid string."]}),
        ),
        (
            json!({"source": s, "identifier": "a\u{0}b"}),
            json!({"identifier": ["Null characters are not allowed."]}),
        ),
        (
            json!({"source": s, "identifier": "x", "access_token": {"a": 1}}),
            json!({"access_token": ["Not a valid string."]}),
        ),
        (
            json!({"source": "not-a-uuid", "identifier": "x"}),
            json!({"source": ["\u{201c}not-a-uuid\u{201d} is not a valid UUID."]}),
        ),
        (
            json!({"source": 5, "identifier": "x"}),
            json!({"source": ["Invalid pk \"5\" - object does not exist."]}),
        ),
        (
            json!({"source": nil, "identifier": "x"}),
            json!({"source": ["Invalid pk \"00000000-0000-0000-0000-000000000000\" - object does not exist."]}),
        ),
        (
            json!({"source": unknown, "identifier": "x"}),
            json!({"source": [format!("Invalid pk \"{unknown}\" - object does not exist.")]}),
        ),
        (
            json!({"source": null, "identifier": "x"}),
            json!({"source": ["This field may not be null."]}),
        ),
        (
            json!({"source": s, "identifier": "x", "user": "abc"}),
            json!({"user": ["Incorrect type. Expected pk value, received str."]}),
        ),
        (
            json!({"source": s, "identifier": "x", "user": true}),
            json!({"user": ["Incorrect type. Expected pk value, received bool."]}),
        ),
        (
            json!({"source": s, "identifier": "x", "user": 9999}),
            json!({"user": ["Invalid pk \"9999\" - object does not exist."]}),
        ),
        (
            json!({"source": s, "identifier": "x", "user": null}),
            json!({"user": ["This field may not be null."]}),
        ),
        (
            json!({"source": s, "identifier": "x", "expires": "tomorrow"}),
            json!({"expires": [datetime]}),
        ),
        // Several at once, in the serializer's field order.
        (
            json!({"identifier": "", "source": "nope", "user": "abc"}),
            json!({
                "user": ["Incorrect type. Expected pk value, received str."],
                "source": ["\u{201c}nope\u{201d} is not a valid UUID."],
                "identifier": ["This field may not be blank."],
            }),
        ),
        // Unknown user and unknown source are reported together.
        (
            json!({"source": nil, "identifier": "x", "user": 9999}),
            json!({
                "user": ["Invalid pk \"9999\" - object does not exist."],
                "source": ["Invalid pk \"00000000-0000-0000-0000-000000000000\" - object does not exist."],
            }),
        ),
    ];
    assert_eq!(cases.len(), 24);
    for (input, expected) in &cases {
        let (status, body) = post(&app, key, input.clone()).await;
        assert_eq!(status, 400, "{input} → {body}");
        assert_eq!(&body, expected, "{input}");
        assert_eq!(keys(&body), keys(expected), "field order for {input}");
    }
    assert_eq!(count_rows(&app).await, 0, "a refused create left a row");
}

#[tokio::test]
async fn create_accepts_numbers_extra_fields_and_edge_lengths() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let (u1, _) = app.user("u1", &[]).await;
    let (u2, _) = app.user("u2", &[]).await;
    let (u3, _) = app.user("u3", &[]).await;
    // A number is a string to a CharField.
    let (status, body) = post(&app, key, json!({"source": app.source, "identifier": 123})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["identifier"], "123");
    // Unknown and read-only fields are ignored.
    let (status, body) = post(
        &app,
        key,
        json!({"source": app.source, "identifier": "extra", "user": u1, "pk": 4242, "created": "2000-01-01T00:00:00Z", "nonsense": [1, 2]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["pk"], 4242);
    assert_ne!(body["created"], "2000-01-01T00:00:00.000000Z");
    assert!(body.get("nonsense").is_none());
    assert_eq!(body["user"], u1);
    // 255 characters (after trimming) fit; a numeric string user pk is accepted.
    let long = "é".repeat(255);
    let (status, body) = post(
        &app,
        key,
        json!({"source": app.source, "identifier": format!("  {long}  "), "user": u2.to_string()}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["identifier"], long.as_str());
    assert_eq!(body["user"], u2);
    // `access_token` may be blank or null.
    let (status, body) = post(
        &app,
        key,
        json!({"source": app.source, "identifier": "tok", "user": u3, "access_token": ""}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(count_rows(&app).await, 4);
}

#[tokio::test]
async fn create_refuses_bodies_that_are_not_json_objects() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {}", app.superuser_key);
    let json_ct = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let form_ct = [
        ("authorization", auth.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(Headers, Option<&str>, u16, Value)> = vec![
        (
            &json_ct[..],
            Some("[]"),
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ),
        (
            &json_ct[..],
            Some("\"text\""),
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}),
        ),
        (
            &json_ct[..],
            Some("null"),
            400,
            json!({"non_field_errors": ["No data provided"]}),
        ),
        // An empty JSON body is an empty object.
        (
            &json_ct[..],
            Some(""),
            400,
            json!({"source": [REQUIRED], "identifier": [REQUIRED]}),
        ),
        (
            &form_ct[..],
            Some("identifier=x"),
            415,
            json!({"detail": "Unsupported media type \"application/x-www-form-urlencoded\" in request."}),
        ),
    ];
    for (headers, body, status, expected) in &cases {
        let (got_status, text) = raw(&app, Method::POST, BASE, headers, *body).await;
        assert_eq!(got_status, *status, "{body:?} → {text}");
        assert_eq!(parse(&text), *expected, "{body:?}");
    }
    for bad in ["{bad", "{\"identifier\": ", "{\"a\":1}}"] {
        let (status, text) = raw(&app, Method::POST, BASE, &json_ct, Some(bad)).await;
        assert_eq!(status, 400, "{bad} → {text}");
        let body = parse(&text);
        assert_eq!(keys(&body), ["detail"], "{text}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error"),
            "{text}"
        );
    }
    assert_eq!(count_rows(&app).await, 0);
}

#[tokio::test]
async fn duplicates_are_non_field_errors() {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let (bob, _) = app.user("bob", &[]).await;
    let (status, first) = post(
        &app,
        key,
        json!({"source": app.source, "identifier": "one"}),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = post(
        &app,
        key,
        json!({"source": app.source, "identifier": "two"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"non_field_errors": ["The fields user, source must make a unique set."]})
    );
    let (status, body) = post(
        &app,
        key,
        json!({"source": app.source, "identifier": "one", "user": bob}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"non_field_errors": ["The fields source, identifier must make a unique set."]})
    );
    // Breaking both rules reports the (user, source) one.
    let (status, body) = post(
        &app,
        key,
        json!({"source": app.source, "identifier": "one"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"non_field_errors": ["The fields user, source must make a unique set."]})
    );
    assert_eq!(count_rows(&app).await, 1);
}

#[tokio::test]
async fn authentication_and_permission_failures_are_403() {
    let app = TestApp::spawn().await;
    let (_, plain) = app.user("plain", &[]).await;
    let (_, viewer) = app.user("viewer", &[Permission::ViewConnection]).await;
    let not_provided = json!({"detail": "Authentication credentials were not provided."});
    let invalid = json!({"detail": "Token invalid/expired"});
    let denied = json!({"detail": "You do not have permission to perform this action."});
    let plain_auth = format!("Bearer {plain}");
    let viewer_auth = format!("Bearer {viewer}");
    let cases: Vec<(Option<&str>, &Value)> = vec![
        (None, &not_provided),
        (Some(""), &not_provided),
        (Some("Bearer"), &not_provided),
        (Some("Bearer "), &not_provided),
        (Some("Bearer not-a-key"), &invalid),
        (Some("Basic xyz"), &invalid),
        (Some("Token abc"), &invalid),
        (Some(&plain_auth), &denied),
        (Some(&viewer_auth), &denied),
    ];
    // Valid and invalid bodies alike: credentials and permission are checked first.
    let valid = json!({"source": app.source, "identifier": "x"}).to_string();
    let invalid_body = json!({"source": Uuid::nil(), "identifier": ""}).to_string();
    for (authorization, expected) in &cases {
        for body in [&valid, &invalid_body] {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = authorization {
                headers.push(("authorization", a));
            }
            let (status, text) = raw(&app, Method::POST, BASE, &headers, Some(body)).await;
            assert_eq!(status, 403, "{authorization:?} → {text}");
            assert_eq!(parse(&text), **expected, "{authorization:?}");
        }
    }
    // The read routes answer the same to bad credentials.
    for path in [
        BASE.to_owned(),
        format!("{BASE}1/"),
        format!("{BASE}1/used_by/"),
    ] {
        let (status, body) = app.rest(Method::GET, &path, None, None).await;
        assert_eq!((status, &body), (403, &not_provided), "{path}");
        let (status, body) = app.rest(Method::GET, &path, Some("nope"), None).await;
        assert_eq!((status, &body), (403, &invalid), "{path}");
    }
    assert_eq!(count_rows(&app).await, 0);
}

/// Five users with a GitHub link each (`gh-0` … `gh-4`), two GitLab links.
async fn seeded() -> (TestApp, Vec<(i32, String)>) {
    let app = TestApp::spawn().await;
    let key = Some(app.superuser_key.as_str());
    let gitlab = app.add_source("GitLab", "gitlab").await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(app.user(&format!("user{i}"), &[]).await);
    }
    for (i, (id, _)) in users.iter().enumerate() {
        let (status, body) = post(
            &app,
            key,
            json!({"source": app.source, "identifier": format!("gh-{i}"), "user": id}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    for (i, ident) in [(0, "gl-Mixed"), (1, "gl-1")] {
        let (status, body) = post(
            &app,
            key,
            json!({"source": gitlab, "identifier": ident, "user": users[i].0}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    (app, users)
}

async fn list(app: &TestApp, key: &str, query: &str) -> (u16, Value) {
    app.rest(Method::GET, &format!("{BASE}?{query}"), Some(key), None)
        .await
}

fn identifiers(body: &Value) -> Vec<&str> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {body}"))
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect()
}

/// Identifiers listed by the superuser for a query (all on one page).
async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let (status, body) = list(app, &app.superuser_key, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert_eq!(
        body["pagination"]["count"].as_u64().unwrap() as usize,
        body["results"].as_array().unwrap().len(),
        "{query}"
    );
    identifiers(&body).into_iter().map(str::to_owned).collect()
}

#[allow(clippy::too_many_arguments)]
fn pagination(
    next: u64,
    previous: u64,
    count: u64,
    current: u64,
    pages: u64,
    start: u64,
    end: u64,
) -> Value {
    json!({
        "next": next, "previous": previous, "count": count, "current": current,
        "total_pages": pages, "start_index": start, "end_index": end,
    })
}

#[tokio::test]
async fn list_paginates_like_authentik() {
    let (app, _) = seeded().await;
    let su = app.superuser_key.as_str();

    // The empty list.
    let (status, body) = list(&app, su, "source__slug=nothing").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"pagination": pagination(0, 0, 0, 1, 1, 0, 0), "results": []})
    );
    assert_eq!(keys(&body), ["pagination", "results"]);

    // Default order: source slug, then pk; default page size holds them all.
    let (status, body) = list(&app, su, "").await;
    assert_eq!(status, 200);
    assert_eq!(body["pagination"], pagination(0, 0, 7, 1, 1, 1, 7));
    assert_eq!(
        identifiers(&body),
        ["gh-0", "gh-1", "gh-2", "gh-3", "gh-4", "gl-Mixed", "gl-1"]
    );
    let first = &body["results"][0];
    assert_eq!(
        keys(first),
        ["pk", "user", "source", "created", "identifier"]
    );
    assert_eq!(
        first["source"],
        documented_source(app.source, "GitHub", "github")
    );
    assert!(is_drf_datetime(first["created"].as_str().unwrap()));

    // GitHub's five rows in pages of two.
    let pages = [
        (
            "page=1",
            pagination(2, 0, 5, 1, 3, 1, 2),
            vec!["gh-0", "gh-1"],
        ),
        (
            "page=2",
            pagination(3, 1, 5, 2, 3, 3, 4),
            vec!["gh-2", "gh-3"],
        ),
        ("page=3", pagination(0, 2, 5, 3, 3, 5, 5), vec!["gh-4"]),
        ("page=last", pagination(0, 2, 5, 3, 3, 5, 5), vec!["gh-4"]),
    ];
    for (page, expected, idents) in pages {
        let (status, body) =
            list(&app, su, &format!("source__slug=github&page_size=2&{page}")).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert_eq!(body["pagination"], expected, "{page}");
        assert_eq!(identifiers(&body), idents, "{page}");
    }
    for page in [
        "page=99",
        "page=abc",
        "page=0",
        "page=-1",
        "page=4&page_size=2&source__slug=github",
    ] {
        let (status, body) = list(&app, su, page).await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Invalid page."})),
            "{page}"
        );
    }
    // page 1 of an empty result is fine; page 2 is not.
    let (status, _) = list(&app, su, "source__slug=nothing&page=2").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn list_filters_orders_searches_and_scopes() {
    let (app, users) = seeded().await;
    let su = app.superuser_key.as_str();
    assert_eq!(ids(&app, "source__slug=gitlab").await, ["gl-Mixed", "gl-1"]);
    assert_eq!(ids(&app, "source__slug=GitLab").await, Vec::<String>::new());
    let q = format!("user={}", users[0].0);
    let (status, body) = list(&app, su, &q).await;
    assert_eq!(status, 200);
    assert_eq!(identifiers(&body), ["gh-0", "gl-Mixed"]);
    let q = format!("user={}&source__slug=gitlab", users[1].0);
    let (_, body) = list(&app, su, &q).await;
    assert_eq!(identifiers(&body), ["gl-1"]);
    // A user with no rows is a valid choice.
    let (status, body) = list(&app, su, "user=1").await;
    assert_eq!(status, 200);
    assert_eq!(body["pagination"]["count"], 0);
    for bad in ["user=abc", "user=9999", "user=1.5"] {
        let (status, body) = list(&app, su, bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(
            body,
            json!({"user": ["Select a valid choice. That choice is not one of the available choices."]}),
            "{bad}"
        );
    }

    assert_eq!(
        ids(&app, "ordering=-identifier").await,
        ["gl-Mixed", "gl-1", "gh-4", "gh-3", "gh-2", "gh-1", "gh-0"]
    );
    assert_eq!(
        ids(&app, "ordering=identifier").await,
        ["gh-0", "gh-1", "gh-2", "gh-3", "gh-4", "gl-1", "gl-Mixed"]
    );
    assert_eq!(
        ids(&app, "ordering=-pk").await,
        ["gl-1", "gl-Mixed", "gh-4", "gh-3", "gh-2", "gh-1", "gh-0"]
    );
    // Unknown terms are ignored.
    assert_eq!(
        ids(&app, "ordering=bogus,-identifier").await,
        ids(&app, "ordering=-identifier").await
    );

    // Search: case-insensitive substring of username, source slug or identifier.
    assert_eq!(ids(&app, "search=USER0").await, ["gh-0", "gl-Mixed"]);
    assert_eq!(ids(&app, "search=GITLAB").await, ["gl-Mixed", "gl-1"]);
    assert_eq!(ids(&app, "search=mixed").await, ["gl-Mixed"]);
    assert_eq!(ids(&app, "search=gh-3").await, ["gh-3"]);
    assert_eq!(ids(&app, "search=%25").await, Vec::<String>::new());
    assert_eq!(ids(&app, "search=_").await, Vec::<String>::new());
    assert_eq!(ids(&app, "search=nomatch").await.len(), 0);

    // A plain user sees only their own rows, whatever the filters say.
    let (status, body) = list(&app, &users[1].1, "").await;
    assert_eq!(status, 200);
    assert_eq!(identifiers(&body), ["gh-1", "gl-1"]);
    assert_eq!(body["pagination"], pagination(0, 0, 2, 1, 1, 1, 2));
    let q = format!("user={}", users[0].0);
    let (status, body) = list(&app, &users[1].1, &q).await;
    assert_eq!(status, 200);
    assert_eq!(body["pagination"]["count"], 0);
    let (_, body) = list(&app, &users[1].1, "search=user0").await;
    assert_eq!(body["pagination"]["count"], 0);
    // With the view permission, everyone's.
    let (_, viewer) = app.user("viewer", &[Permission::ViewConnection]).await;
    let (_, body) = list(&app, &viewer, "").await;
    assert_eq!(body["pagination"]["count"], 7);
}

#[tokio::test]
async fn list_current_shape_adds_autocomplete() {
    let app = TestApp::spawn_with(RestShape::Current).await;
    let (status, body) = list(&app, &app.superuser_key, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"pagination": pagination(0, 0, 0, 1, 1, 0, 0), "results": [], "autocomplete": {}})
    );
    let (status, created) = post(
        &app,
        Some(&app.superuser_key),
        json!({"source": app.source, "identifier": "cur"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, body) = list(&app, &app.superuser_key, "").await;
    assert_eq!(body["autocomplete"], json!({}));
    assert_eq!(body["pagination"], pagination(0, 0, 1, 1, 1, 1, 1));
    assert_eq!(body["results"], json!([created]));
    assert_eq!(body["results"][0]["source"], app.source.to_string());
}

#[tokio::test]
async fn detail_routes_retrieve_update_delete() {
    let app = TestApp::spawn().await;
    let su = Some(app.superuser_key.as_str());
    let (alice, alice_key) = app.user("alice", &[]).await;
    let (_, bob_key) = app.user("bob", &[]).await;
    let (status, row) = post(
        &app,
        su,
        json!({"source": app.source, "identifier": "alice-gh", "user": alice}),
    )
    .await;
    assert_eq!(status, 201, "{row}");
    let url = at(&row["pk"]);
    let no_match = json!({"detail": "No UserOAuthSourceConnection matches the given query."});

    // Retrieve: superuser and owner.
    for key in [app.superuser_key.as_str(), alice_key.as_str()] {
        let (status, body) = app.rest(Method::GET, &url, Some(key), None).await;
        assert_eq!((status, &body), (200, &row));
    }
    // Not an integer: Django's plain 404.
    for path in ["abc", "1.5", "-"] {
        let (status, body) = app
            .rest(Method::GET, &format!("{BASE}{path}/"), su, None)
            .await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Not found."})),
            "{path}"
        );
    }
    // Another user's row looks like a missing one.
    let (status, body) = app.rest(Method::GET, &url, Some(&bob_key), None).await;
    assert_eq!((status, &body), (404, &no_match));
    let (status, body) = app
        .rest(Method::GET, &format!("{BASE}999999/"), su, None)
        .await;
    assert_eq!((status, &body), (404, &no_match));

    // used_by: [] for whoever may see the row.
    let used_by = format!("{url}used_by/");
    for key in [app.superuser_key.as_str(), alice_key.as_str()] {
        let (status, body) = app.rest(Method::GET, &used_by, Some(key), None).await;
        assert_eq!((status, body), (200, json!([])));
    }
    let (status, body) = app.rest(Method::GET, &used_by, Some(&bob_key), None).await;
    assert_eq!((status, &body), (404, &no_match));

    // PATCH needs the change permission, even on one's own row.
    let (status, body) = app
        .rest(
            Method::PATCH,
            &url,
            Some(&alice_key),
            Some(json!({"identifier": "mine"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"detail": "You do not have permission to perform this action."})
        )
    );
    let (status, body) = app
        .rest(
            Method::PATCH,
            &url,
            su,
            Some(json!({"identifier": "  renamed "})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut expected = row.clone();
    expected["identifier"] = json!("renamed");
    assert_eq!(body, expected, "only the identifier changes");
    let (status, body) = app
        .rest(Method::PATCH, &url, su, Some(json!({"identifier": ""})))
        .await;
    assert_eq!(
        (status, body),
        (400, json!({"identifier": ["This field may not be blank."]}))
    );
    let (status, body) = app
        .rest(Method::PATCH, &url, su, Some(json!({"identifier": null})))
        .await;
    assert_eq!(
        (status, body),
        (400, json!({"identifier": ["This field may not be null."]}))
    );
    // An empty PATCH changes nothing.
    let (status, body) = app.rest(Method::PATCH, &url, su, Some(json!({}))).await;
    assert_eq!((status, &body), (200, &expected));

    // PUT replaces: identifier is required.
    let (status, body) = app.rest(Method::PUT, &url, su, Some(json!({}))).await;
    assert_eq!((status, body), (400, json!({"identifier": [REQUIRED]})));
    let (status, body) = app
        .rest(Method::PUT, &url, su, Some(json!({"identifier": "put"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identifier"], "put");
    let (_, now) = app.rest(Method::GET, &url, su, None).await;
    assert_eq!(now["identifier"], "put");

    // Methods the routes do not have.
    for (method, path, name) in [
        (Method::PATCH, BASE.to_owned(), "PATCH"),
        (Method::PUT, BASE.to_owned(), "PUT"),
        (Method::DELETE, BASE.to_owned(), "DELETE"),
        (Method::POST, url.clone(), "POST"),
        (Method::POST, used_by.clone(), "POST"),
    ] {
        let (status, body) = app.rest(method, &path, su, Some(json!({}))).await;
        assert_eq!(
            (status, body),
            (
                405,
                json!({"detail": format!("Method \"{name}\" not allowed.")})
            ),
            "{name} {path}"
        );
    }

    // Bob cannot delete Alice's row: it looks missing, and it stays.
    let (status, body) = app.rest(Method::DELETE, &url, Some(&bob_key), None).await;
    assert_eq!((status, &body), (404, &no_match));
    let (status, _) = app.rest(Method::GET, &url, su, None).await;
    assert_eq!(status, 200);

    // DELETE: 204 with an empty body, then gone.
    let resp = app
        .client
        .delete(format!("{}{}", app.base, url))
        .bearer_auth(&app.superuser_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(resp.text().await.unwrap(), "");
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = app.rest(method, &url, su, None).await;
        assert_eq!((status, &body), (404, &no_match));
    }
    let (status, body) = app
        .rest(Method::PATCH, &url, su, Some(json!({"identifier": "x"})))
        .await;
    assert_eq!((status, &body), (404, &no_match));
}

#[tokio::test]
async fn health_endpoints() {
    let app = TestApp::spawn().await;
    for path in ["/-/health/live/", "/-/health/ready/"] {
        let (status, _) = raw(&app, Method::GET, path, &[], None).await;
        assert_eq!(status, 200, "{path}");
        let (status, _) = raw(&app, Method::HEAD, path, &[], None).await;
        assert_eq!(status, 200, "HEAD {path}");
    }
    // Unknown paths (including the list without its trailing slash) are JSON 404s.
    let (status, body) = app
        .rest(
            Method::GET,
            "/api/v3/sources/user_connections/oauth",
            Some(&app.superuser_key),
            None,
        )
        .await;
    assert_eq!((status, body), (404, json!({"detail": "Not found."})));
}

#[tokio::test]
async fn audit_list_is_for_superusers_paged_and_holds_no_secret() {
    let app = TestApp::spawn().await;
    let admin = Some(app.superuser_key.as_str());
    let path = "/api/v3/oauthlink/audit_events/";
    let (_, plain) = app.user("plain", &[Permission::AddConnection]).await;
    let (status, body) = app.rest(Method::GET, path, Some(&plain), None).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"detail": "You do not have permission to perform this action."})
        )
    );
    let (status, _) = app.rest(Method::GET, path, None, None).await;
    assert_eq!(status, 403);

    let secret = "gho_audit_secret_token";
    let (status, created) = post(
        &app,
        admin,
        json!({"source": app.source, "identifier": "audited", "access_token": secret}),
    )
    .await;
    assert_eq!(status, 201);
    let detail = at(&created["pk"]);
    let (status, _) = app
        .rest(
            Method::PATCH,
            &detail,
            admin,
            Some(json!({"identifier": "audited-2"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.rest(Method::DELETE, &detail, admin, None).await;
    assert_eq!(status, 204);

    let (status, page) = app
        .rest(Method::GET, &format!("{path}?page_size=2"), admin, None)
        .await;
    assert_eq!(status, 200);
    assert!(!page.to_string().contains(secret));
    assert_eq!(page["pagination"]["count"], 3);
    assert_eq!(page["pagination"]["total_pages"], 2);
    let actions: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "update"], "newest first");
    assert_eq!(page["results"][0]["connection"], created["pk"]);
    assert_eq!(page["results"][1]["identifier"], "audited-2");

    let (status, last) = app
        .rest(
            Method::GET,
            &format!("{path}?page_size=2&page=last"),
            admin,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(last["pagination"]["current"], 2);
    assert_eq!(last["results"][0]["action"], "create");
    assert_eq!(last["results"][0]["source"], json!(app.source));
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("{path}?page_size=2&page=3"),
            admin,
            None,
        )
        .await;
    assert_eq!((status, body), (404, json!({"detail": "Invalid page."})));
}
