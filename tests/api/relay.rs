//! What GraphQL frontend frameworks expect (issue 14): Relay's global ids (`node`, `nodes`,
//! mutations by id), subscriptions over graphql-transport-ws (visibility, cross-instance on
//! PostgreSQL, revocation), persisted operations (APQ, allow-list). SQLite by default,
//! PostgreSQL with TEST_DATABASE_URL.
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use oauthlink::domain::permission::Permission;
use oauthlink::graphql::persisted::{Manifest, sha256_hex};
use oauthlink::storage::Backend;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, code};

const ADD: &[Permission] = &[Permission::AddConnection, Permission::ChangeConnection];

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn create(app: &TestApp, key: &str, identifier: &str) -> (i32, String) {
    let r = app
        .graphql(
            Some(key),
            "mutation($s: UUID!, $i: String!) { createUserOAuthConnection(input: {source: $s, identifier: $i}) { id pk } }",
            json!({"s": app.source, "i": identifier}),
        )
        .await;
    let c = &r["data"]["createUserOAuthConnection"];
    assert!(c["pk"].is_i64(), "{r}");
    (
        c["pk"].as_i64().unwrap() as i32,
        c["id"].as_str().unwrap().to_owned(),
    )
}

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id ... on UserOAuthSourceConnection { pk identifier } ... on Source { slug } ... on Me { username } } }";

#[tokio::test]
async fn node_obeys_the_visibility_of_the_other_queries() {
    let app = TestApp::spawn().await;
    let (alice, alice_key) = app.user("alice", ADD).await;
    let (_, bob_key) = app.user("bob", ADD).await;
    let (_, viewer_key) = app.user("viewer", &[Permission::ViewConnection]).await;
    let (pk, id) = create(&app, &alice_key, "alice-gh").await;
    assert_eq!(id, b64(&format!("UserOAuthSourceConnection:{pk}")));

    let node = |key: String, id: String| {
        let app = &app;
        async move { app.graphql(Some(&key), NODE, json!({"id": id})).await }
    };
    // The owner and a viewer see it; another user gets null, as for an id that never existed.
    for key in [&alice_key, &viewer_key, &app.superuser_key] {
        let r = node(key.clone(), id.clone()).await;
        assert_eq!(r["data"]["node"]["pk"], pk, "{r}");
        assert_eq!(r["data"]["node"]["__typename"], "UserOAuthSourceConnection");
    }
    let hidden = node(bob_key.clone(), id.clone()).await;
    let missing = node(
        bob_key.clone(),
        b64(&format!("UserOAuthSourceConnection:{}", pk + 1000)),
    )
    .await;
    assert_eq!(hidden, json!({"data": {"node": null}}));
    assert_eq!(hidden, missing);
    // Malformed, foreign or non-canonical ids: null, no error, no hint.
    for bad in [
        "x".to_owned(),
        b64("Audit:1"),
        b64(&format!("UserOAuthSourceConnection:0{pk}")),
        b64("Source:not-a-uuid"),
    ] {
        assert_eq!(
            node(alice_key.clone(), bad).await,
            json!({"data": {"node": null}})
        );
    }
    // Sources: every authenticated caller; users: only oneself.
    let source_id = b64(&format!("Source:{}", app.source));
    let r = node(bob_key.clone(), source_id.clone()).await;
    assert_eq!(r["data"]["node"]["slug"], "github", "{r}");
    let me = node(alice_key.clone(), b64(&format!("User:{alice}"))).await;
    assert_eq!(me["data"]["node"]["username"], "alice", "{me}");
    let other = node(bob_key.clone(), b64(&format!("User:{alice}"))).await;
    assert_eq!(other, json!({"data": {"node": null}}));
    // Anonymous callers reach nothing.
    let anon = app.graphql(None, NODE, json!({"id": id})).await;
    assert_eq!(code(&anon), "UNAUTHENTICATED");

    // nodes: order kept, nulls in place, one batch; bounded.
    let r = app
        .graphql(
            Some(&bob_key),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({"ids": [source_id, id, "junk"]}),
        )
        .await;
    assert_eq!(
        r["data"]["nodes"],
        json!([{"id": source_id}, null, null]),
        "{r}"
    );
    let many: Vec<String> = (0..101).map(|_| source_id.clone()).collect();
    let r = app
        .graphql(
            Some(&bob_key),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({"ids": many}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    // The ids count towards the complexity: 100 ids of a wide selection are too complex.
    let ids: Vec<String> = (0..100).map(|_| source_id.clone()).collect();
    let wide = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Source { pk name slug enabled component verboseName verboseNamePlural metaModelName icon managed userPathTemplate } } }";
    let r = app.graphql(Some(&bob_key), wide, json!({"ids": ids})).await;
    assert_eq!(code(&r), "QUERY_LIMIT_EXCEEDED", "{r}");
}

#[tokio::test]
async fn mutations_take_the_global_id_and_answer_in_relay_shape() {
    let app = TestApp::spawn().await;
    let (_, alice_key) = app.user("alice", ADD).await;
    let (_, bob_key) = app
        .user(
            "bob",
            &[
                Permission::AddConnection,
                Permission::ChangeConnection,
                Permission::DeleteConnection,
            ],
        )
        .await;
    let (pk, id) = create(&app, &alice_key, "alice-gh").await;
    const UPDATE: &str = "mutation($pk: Int, $id: ID, $i: String) { updateUserOAuthSourceConnection(pk: $pk, id: $id, input: {identifier: $i}) { id pk identifier } }";
    let r = app
        .graphql(Some(&alice_key), UPDATE, json!({"id": id, "i": "renamed"}))
        .await;
    assert_eq!(
        r["data"]["updateUserOAuthSourceConnection"],
        json!({"id": id, "pk": pk, "identifier": "renamed"}),
        "{r}"
    );
    // Still by pk; both or neither is a field error.
    let r = app
        .graphql(Some(&alice_key), UPDATE, json!({"pk": pk, "i": "again"}))
        .await;
    assert_eq!(
        r["data"]["updateUserOAuthSourceConnection"]["identifier"],
        "again"
    );
    for vars in [json!({"pk": pk, "id": id, "i": "x"}), json!({"i": "x"})] {
        let r = app.graphql(Some(&alice_key), UPDATE, vars).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(
            r["errors"][0]["extensions"]["fieldErrors"][0]["field"],
            "pk"
        );
    }
    // A source's id, or garbage, names no connection.
    let source_id = b64(&format!("Source:{}", app.source));
    for bad in [source_id, "garbage".to_owned()] {
        let r = app
            .graphql(Some(&alice_key), UPDATE, json!({"id": bad, "i": "x"}))
            .await;
        assert_eq!(code(&r), "NOT_FOUND", "{r}");
    }
    // Another user's row by id: NOT_FOUND whatever their permissions.
    const REMOVE: &str =
        "mutation($id: ID) { removeUserOAuthSourceConnection(id: $id) { deletedId pk } }";
    let r = app.graphql(Some(&bob_key), REMOVE, json!({"id": id})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app
        .graphql(Some(&alice_key), REMOVE, json!({"id": id}))
        .await;
    assert_eq!(
        r["data"]["removeUserOAuthSourceConnection"],
        json!({"deletedId": id, "pk": pk}),
        "{r}"
    );
    let r = app.graphql(Some(&alice_key), NODE, json!({"id": id})).await;
    assert_eq!(r, json!({"data": {"node": null}}));
    // The old delete takes the id too.
    let (pk2, id2) = create(&app, &alice_key, "alice-2").await;
    let r = app
        .graphql(
            Some(&alice_key),
            "mutation($id: ID) { deleteUserOAuthSourceConnection(id: $id) }",
            json!({"id": id2}),
        )
        .await;
    assert_eq!(r["data"]["deleteUserOAuthSourceConnection"], pk2, "{r}");
}

async fn post(app: &TestApp, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = app.client.post(format!("{}/graphql", app.base)).json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn apq(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

#[tokio::test]
async fn automatic_persisted_queries_register_verified_documents() {
    let app = TestApp::spawn().await;
    let key = app.superuser_key.clone();
    let query = "query Me { me { username } }";
    let hash = sha256_hex(query);
    let (status, r) = post(&app, Some(&key), json!({"extensions": apq(&hash)})).await;
    assert_eq!(status, 404, "{r}");
    assert_eq!(r["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND");
    // The text must hash to the hash sent with it.
    let (status, r) = post(
        &app,
        Some(&key),
        json!({"query": "{ me { pk } }", "extensions": apq(&hash)}),
    )
    .await;
    assert_eq!((status, code(&r)), (400, "BAD_REQUEST"), "{r}");
    let (status, r) = post(
        &app,
        Some(&key),
        json!({"query": query, "extensions": apq(&hash)}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = post(&app, Some(&key), json!({"extensions": apq(&hash)})).await;
    assert_eq!(status, 200);
    assert_eq!(r["data"]["me"]["username"], "akadmin", "{r}");
    // Anonymous callers register nothing.
    let intro = "{ __typename }";
    let ih = sha256_hex(intro);
    let (status, _) = post(&app, None, json!({"query": intro, "extensions": apq(&ih)})).await;
    assert_eq!(status, 200);
    let (status, r) = post(&app, Some(&key), json!({"extensions": apq(&ih)})).await;
    assert_eq!(
        (status, code(&r)),
        (404, "PERSISTED_QUERY_NOT_FOUND"),
        "{r}"
    );
    let (status, r) = post(
        &app,
        Some(&key),
        json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": hash}}}),
    )
    .await;
    assert_eq!((status, code(&r)), (400, "BAD_REQUEST"), "{r}");
}

#[tokio::test]
async fn allow_list_mode_runs_only_listed_operations() {
    let listed = "query Me { me { username } }";
    let manifest = Manifest::parse(
        &json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{"id": "me-1", "name": "Me", "type": "query", "body": listed}]
        })
        .to_string(),
    )
    .unwrap();
    let app = TestApp::spawn_custom(oauthlink::config::RestShape::Documented, &[], move |s| {
        s.with_operations(Some(manifest))
    })
    .await;
    let key = app.superuser_key.clone();
    for body in [
        json!({"query": listed}),
        json!({"documentId": "me-1"}),
        json!({"extensions": apq(&sha256_hex(listed))}),
    ] {
        let (status, r) = post(&app, Some(&key), body).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["data"]["me"]["username"], "akadmin", "{r}");
    }
    for body in [
        json!({"query": "query Me { me { username pk } }"}),
        json!({"query": "{ __schema { queryType { name } } }"}),
        json!({"documentId": "other"}),
        json!({"query": "not even graphql {"}),
    ] {
        let (status, r) = post(&app, Some(&key), body).await;
        assert_eq!((status, code(&r)), (403, "OPERATION_NOT_ALLOWED"), "{r}");
    }
    // Anonymous callers are refused the same way (the list decides first).
    let (status, r) = post(&app, None, json!({"query": "{ __typename }"})).await;
    assert_eq!((status, code(&r)), (403, "OPERATION_NOT_ALLOWED"), "{r}");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(app: &TestApp, init: Value) -> Socket {
    let url = format!("{}/graphql", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": init}).to_string(),
    ))
    .await
    .unwrap();
    ws
}

/// The next message within `wait`: `Ok(json)` for text, `Err(code)` for a close.
async fn next(ws: &mut Socket, wait: Duration) -> Option<Result<Value, u16>> {
    loop {
        let m = tokio::time::timeout(wait, ws.next()).await.ok()??.ok()?;
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ping" {
                    continue;
                }
                return Some(Ok(v));
            }
            Message::Close(frame) => return Some(Err(frame.map_or(0, |f| f.code.into()))),
            _ => continue,
        }
    }
}

const EVENTS: &str = "subscription { userOAuthSourceConnectionEvents { kind id pk connection { identifier user } } }";

async fn subscribe(app: &TestApp, key: &str) -> Socket {
    let mut ws = socket(app, json!({"Authorization": format!("Bearer {key}")})).await;
    let ack = next(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(ack, Some(Ok(json!({"type": "connection_ack"}))));
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}).to_string(),
    ))
    .await
    .unwrap();
    // The subscription listens once the server has taken it: give it a moment.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ws
}

#[tokio::test]
async fn subscriptions_need_credentials() {
    let app = TestApp::spawn().await;
    for init in [
        json!({}),
        json!({"Authorization": "Bearer nope"}),
        Value::Null,
    ] {
        let mut ws = socket(&app, init.clone()).await;
        assert_eq!(
            next(&mut ws, Duration::from_secs(5)).await,
            Some(Err(4403)),
            "{init}"
        );
    }
    // Subscribing before the acknowledgement: 4401.
    let url = format!("{}/graphql", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws, Duration::from_secs(5)).await, Some(Err(4401)));
    // Over HTTP a subscription is refused.
    let (status, r) = post(&app, Some(&app.superuser_key), json!({"query": EVENTS})).await;
    assert_eq!((status, code(&r)), (400, "BAD_REQUEST"), "{r}");
}

/// PostgreSQL: writes send NOTIFY only while some instance has subscribers (NOTIFY
/// serialises the commits of notifying transactions), and do once one subscribes. The
/// channel is watched by a LISTEN of the test's own, not through the service.
#[tokio::test]
async fn writes_notify_only_while_an_instance_listens() {
    use sea_orm::sqlx::postgres::PgListener;
    let app = TestApp::spawn().await;
    if app.service.store().backend() != Backend::Postgres {
        return;
    }
    let mut watch = PgListener::connect(&app.database_url).await.unwrap();
    watch.listen("oauthlink_connection_events").await.unwrap();
    let (_, key) = app.user("alice", ADD).await;
    create(&app, &key, "before-anyone-listens").await;
    let heard = tokio::time::timeout(Duration::from_millis(500), watch.recv()).await;
    assert!(
        heard.is_err(),
        "a write notified with no subscriber anywhere"
    );

    let _ws = subscribe(&app, &key).await;
    // (One link per user and source: another user's.)
    let (_, bob) = app.user("bob", ADD).await;
    let (pk, _) = create(&app, &bob, "while-someone-listens").await;
    let n = tokio::time::timeout(Duration::from_secs(3), watch.recv())
        .await
        .expect("a notification once an instance listens")
        .unwrap();
    assert!(
        n.payload().starts_with(&format!("c:{pk}:")),
        "{}",
        n.payload()
    );
}

#[tokio::test]
async fn subscribers_see_only_rows_they_could_read_from_any_instance() {
    let a = TestApp::spawn().await;
    // PostgreSQL: the change is made on another instance (LISTEN/NOTIFY); SQLite is one process.
    let postgres = a.service.store().backend() == Backend::Postgres;
    let b = if postgres {
        Some(a.another_instance().await)
    } else {
        None
    };
    let writer = b.as_ref().unwrap_or(&a);
    let (alice, alice_key) = a.user("alice", ADD).await;
    let (_, bob_key) = a.user("bob", ADD).await;
    let mut alice_ws = subscribe(&a, &alice_key).await;
    let mut admin_ws = subscribe(&a, &a.superuser_key).await;

    let (bob_pk, _) = create(writer, &bob_key, "bob-gh").await;
    // A write that fails (here: a duplicate, on PostgreSQL one statement with its NOTIFY)
    // notifies nobody: the superuser's next event is alice's create.
    let dup = writer
        .graphql(
            Some(&bob_key),
            "mutation($s: UUID!) { createUserOAuthConnection(input: {source: $s, identifier: \"bob-gh\"}) { pk } }",
            json!({"s": writer.source}),
        )
        .await;
    assert_eq!(code(&dup), "CONFLICT", "{dup}");
    let started = Instant::now();
    let (pk, id) = create(writer, &alice_key, "alice-gh").await;
    let event = next(&mut alice_ws, Duration::from_secs(3)).await;
    let latency = started.elapsed();
    let event = event.expect("an event").expect("not closed");
    assert_eq!(
        event["payload"]["data"]["userOAuthSourceConnectionEvents"],
        json!({"kind": "CREATED", "id": id, "pk": pk, "connection": {"identifier": "alice-gh", "user": alice}}),
        "alice sees her row, never bob's: {event}"
    );
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    eprintln!(
        "subscription event {latency:?} after the write ({})",
        if postgres {
            "another instance, LISTEN/NOTIFY"
        } else {
            "one SQLite instance"
        }
    );
    // The superuser sees both, in order.
    for expected in [bob_pk, pk] {
        let e = next(&mut admin_ws, Duration::from_secs(3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            e["payload"]["data"]["userOAuthSourceConnectionEvents"]["pk"],
            expected
        );
    }
    // Updates and deletions; a deletion carries the id only.
    writer
        .graphql(
            Some(&alice_key),
            "mutation($id: ID) { updateUserOAuthSourceConnection(id: $id, input: {identifier: \"x\"}) { pk } }",
            json!({"id": id}),
        )
        .await;
    // (The update's event is awaited before the deletion: an update whose row is gone by the
    // time it is delivered is skipped, its deletion following.)
    let e = next(&mut alice_ws, Duration::from_secs(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e["payload"]["data"]["userOAuthSourceConnectionEvents"]["kind"],
        "UPDATED"
    );
    writer
        .graphql(
            Some(&alice_key),
            "mutation($id: ID) { removeUserOAuthSourceConnection(id: $id) { pk } }",
            json!({"id": id}),
        )
        .await;
    let e = next(&mut alice_ws, Duration::from_secs(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e["payload"]["data"]["userOAuthSourceConnectionEvents"],
        json!({"kind": "DELETED", "id": id, "pk": pk, "connection": null})
    );
    // Nothing else reached alice (bob's create, in particular).
    assert_eq!(next(&mut alice_ws, Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn a_revoked_subscriber_stops_receiving_within_a_second() {
    let app = TestApp::spawn().await;
    let (_, key) = app.user("alice", ADD).await;
    let mut ws = subscribe(&app, &key).await;
    let revoked = Instant::now();
    assert!(
        app.service
            .store()
            .delete_token("alice-token")
            .await
            .unwrap()
    );
    let e = next(&mut ws, Duration::from_secs(3))
        .await
        .unwrap()
        .unwrap();
    let elapsed = revoked.elapsed();
    assert_eq!(e["type"], "next", "{e}");
    assert_eq!(
        e["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{e}"
    );
    // And the subscription is over.
    let e = next(&mut ws, Duration::from_secs(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e, json!({"id": "1", "type": "complete"}));
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

/// A websocket that never initialises is closed (4408) after the init timeout, and a message
/// larger than the bound closes the socket: neither can hold a slot or memory for long.
#[tokio::test]
async fn unauthenticated_and_oversized_sockets_are_closed() {
    let app = TestApp::spawn_custom(oauthlink::config::RestShape::Documented, &[], |s| {
        s.with_socket_limits(oauthlink::graphql::ws::SocketLimits {
            init_timeout: Duration::from_millis(500),
            max_message_bytes: 4096,
            ..Default::default()
        })
    })
    .await;
    let url = format!("{}/graphql", app.base.replace("http://", "ws://"));
    let open = || async {
        let mut req = url.clone().into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req).await.unwrap().0
    };
    let mut silent = open().await;
    let started = std::time::Instant::now();
    assert_eq!(
        next(&mut silent, Duration::from_secs(5)).await,
        Some(Err(4408))
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");

    // An accepted init is not closed by the timer.
    let mut ws = subscribe(&app, &app.superuser_key).await;
    assert_eq!(next(&mut ws, Duration::from_millis(300)).await, None);

    let mut big = open().await;
    let padding = "x".repeat(8192);
    let _ = big
        .send(Message::text(
            json!({"type": "connection_init", "payload": {"pad": padding}}).to_string(),
        ))
        .await;
    // Closed by the server (1009, message too big) or dropped: never acknowledged.
    match next(&mut big, Duration::from_secs(5)).await {
        None | Some(Err(_)) => {}
        Some(Ok(m)) => panic!("an oversized message was answered: {m}"),
    }
}

#[tokio::test]
async fn subscriptions_per_socket_are_capped() {
    let app = TestApp::spawn_custom(oauthlink::config::RestShape::Documented, &[], |s| {
        s.with_socket_limits(oauthlink::graphql::ws::SocketLimits {
            max_sockets: 4,
            max_subscriptions: 2,
            ..Default::default()
        })
    })
    .await;
    let mut ws = subscribe(&app, &app.superuser_key).await;
    for id in ["2", "3"] {
        ws.send(Message::text(
            json!({"id": id, "type": "subscribe", "payload": {"query": EVENTS}}).to_string(),
        ))
        .await
        .unwrap();
    }
    // One of the two (the socket starts them in no set order) is refused, then completed.
    let e = next(&mut ws, Duration::from_secs(3))
        .await
        .unwrap()
        .unwrap();
    let refused = e["id"].as_str().unwrap().to_owned();
    assert!(refused == "2" || refused == "3", "{e}");
    assert_eq!(
        e["payload"]["errors"][0]["extensions"]["code"], "QUERY_LIMIT_EXCEEDED",
        "{e}"
    );
    let e = next(&mut ws, Duration::from_secs(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e, json!({"id": refused, "type": "complete"}));
    // The other two keep running: nothing more arrives.
    assert_eq!(next(&mut ws, Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn queries_over_the_websocket_pass_the_http_checks() {
    let app = TestApp::spawn().await;
    let mut ws = socket(
        &app,
        json!({"Authorization": format!("Bearer {}", app.superuser_key)}),
    )
    .await;
    assert_eq!(
        next(&mut ws, Duration::from_secs(5)).await,
        Some(Ok(json!({"type": "connection_ack"})))
    );
    let ask = |id: &str, query: &str| {
        Message::text(
            json!({"id": id, "type": "subscribe", "payload": {"query": query}}).to_string(),
        )
    };
    ws.send(ask("1", "{ me { username } }")).await.unwrap();
    let e = next(&mut ws, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e["payload"]["data"]["me"]["username"], "akadmin", "{e}");
    assert_eq!(
        next(&mut ws, Duration::from_secs(5)).await,
        Some(Ok(json!({"id": "1", "type": "complete"})))
    );
    // The cost analysis applies as over HTTP.
    let deep = format!("{{ {}pk{} }}", "me { ".repeat(20), " }".repeat(20));
    ws.send(ask("2", &deep)).await.unwrap();
    let e = next(&mut ws, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e["payload"]["errors"][0]["extensions"]["code"], "QUERY_LIMIT_EXCEEDED",
        "{e}"
    );
}
