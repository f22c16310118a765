//! The authorization matrix: every operation × both transports × every kind of caller × own
//! and another user's row, against the rules of `domain::service`. A row the caller may not
//! see must look exactly like a row that does not exist, and a refused write changes nothing.
use oauthlink::crypto::{generate_api_key, hash_api_key};
use oauthlink::domain::model::Connection;
use oauthlink::domain::permission::Permission;
use oauthlink::storage::NewToken;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, code};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Retrieve,
    List,
    Update,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    BadToken,
    /// A token past its `expires`, of a user holding every connection permission.
    Expired,
    /// A valid token of a deactivated user holding every connection permission.
    Inactive,
    /// No permissions at all.
    Plain,
    /// Exactly the operation's permission.
    Permitted,
    Superuser,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    GraphQl,
    Rest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Own,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Allow,
    /// REST 403 "Authentication credentials were not provided." / UNAUTHENTICATED.
    NoCredentials,
    /// REST 403 "Token invalid/expired" / FORBIDDEN with that message.
    BadCredentials,
    /// REST 403 "You do not have permission…" / FORBIDDEN.
    Forbidden,
    /// REST 404 / NOT_FOUND — for a list: 200 without the row.
    NotFound,
}

use Caller::*;
use Expect::*;

const OPS: [Op; 5] = [Op::Create, Op::Retrieve, Op::List, Op::Update, Op::Delete];
const CALLERS: [Caller; 7] = [
    Anonymous, BadToken, Expired, Inactive, Plain, Permitted, Superuser,
];
const TRANSPORTS: [Transport; 2] = [Transport::GraphQl, Transport::Rest];
const TARGETS: [Target; 2] = [Target::Own, Target::Other];

/// (operation, caller, expected on the caller's own row, expected on another user's row).
/// For create, "own"/"other" is whom the new link is for.
#[rustfmt::skip]
const MATRIX: [(Op, Caller, Expect, Expect); 35] = [
    (Op::Create,   Anonymous, NoCredentials,  NoCredentials),
    (Op::Create,   BadToken,  BadCredentials, BadCredentials),
    (Op::Create,   Expired,   BadCredentials, BadCredentials),
    (Op::Create,   Inactive,  BadCredentials, BadCredentials),
    (Op::Create,   Plain,     Forbidden,      Forbidden),
    (Op::Create,   Permitted, Allow,          Forbidden),
    (Op::Create,   Superuser, Allow,          Allow),
    (Op::Retrieve, Anonymous, NoCredentials,  NoCredentials),
    (Op::Retrieve, BadToken,  BadCredentials, BadCredentials),
    (Op::Retrieve, Expired,   BadCredentials, BadCredentials),
    (Op::Retrieve, Inactive,  BadCredentials, BadCredentials),
    (Op::Retrieve, Plain,     Allow,          NotFound),
    (Op::Retrieve, Permitted, Allow,          Allow),
    (Op::Retrieve, Superuser, Allow,          Allow),
    (Op::List,     Anonymous, NoCredentials,  NoCredentials),
    (Op::List,     BadToken,  BadCredentials, BadCredentials),
    (Op::List,     Expired,   BadCredentials, BadCredentials),
    (Op::List,     Inactive,  BadCredentials, BadCredentials),
    (Op::List,     Plain,     Allow,          NotFound),
    (Op::List,     Permitted, Allow,          Allow),
    (Op::List,     Superuser, Allow,          Allow),
    (Op::Update,   Anonymous, NoCredentials,  NoCredentials),
    (Op::Update,   BadToken,  BadCredentials, BadCredentials),
    (Op::Update,   Expired,   BadCredentials, BadCredentials),
    (Op::Update,   Inactive,  BadCredentials, BadCredentials),
    (Op::Update,   Plain,     Forbidden,      NotFound),
    (Op::Update,   Permitted, Allow,          NotFound),
    (Op::Update,   Superuser, Allow,          Allow),
    (Op::Delete,   Anonymous, NoCredentials,  NoCredentials),
    (Op::Delete,   BadToken,  BadCredentials, BadCredentials),
    (Op::Delete,   Expired,   BadCredentials, BadCredentials),
    (Op::Delete,   Inactive,  BadCredentials, BadCredentials),
    (Op::Delete,   Plain,     Allow,          NotFound),
    (Op::Delete,   Permitted, Allow,          NotFound),
    (Op::Delete,   Superuser, Allow,          Allow),
];

fn permission(op: Op) -> Permission {
    match op {
        Op::Create => Permission::AddConnection,
        Op::Retrieve | Op::List => Permission::ViewConnection,
        Op::Update => Permission::ChangeConnection,
        Op::Delete => Permission::DeleteConnection,
    }
}

const ALL_CONNECTION_PERMISSIONS: [Permission; 4] = [
    Permission::AddConnection,
    Permission::ViewConnection,
    Permission::ChangeConnection,
    Permission::DeleteConnection,
];

/// A pk no row has.
const MISSING: i32 = 2_000_000_000;

const BASE: &str = "/api/v3/sources/user_connections/oauth/";

const GQL_CREATE: &str = "mutation($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) { pk user identifier } }";
const GQL_RETRIEVE: &str =
    "query($pk: Int!) { userOAuthSourceConnection(pk: $pk) { pk user identifier } }";
const GQL_LIST: &str = "query($slug: String) { userOAuthSourceConnections(sourceSlug: $slug, first: 100) { totalCount edges { node { pk } } } }";
const GQL_UPDATE: &str = "mutation($pk: Int!, $input: UpdateUserOAuthSourceConnectionInput!) { updateUserOAuthSourceConnection(pk: $pk, input: $input) { pk identifier } }";
const GQL_DELETE: &str = "mutation($pk: Int!) { deleteUserOAuthSourceConnection(pk: $pk) }";

/// An app with one user per kind of caller, for one operation.
struct World {
    app: TestApp,
    /// The caller kinds' keys (None: no header) and the user whose rows are "own".
    callers: Vec<(Caller, Option<String>, i32)>,
    /// Owner of every "other" row.
    victim: i32,
}

impl World {
    async fn new(op: Op) -> World {
        let app = TestApp::spawn().await;
        let store = app.service.store();
        // Anonymous and bad-token callers have no identity; "their" rows belong to ghost.
        let (ghost, _) = app.user("ghost", &[]).await;
        let (victim, _) = app.user("victim", &[]).await;
        let (expired, _) = app.user("expired", &ALL_CONNECTION_PERMISSIONS).await;
        let expired_key = generate_api_key();
        store
            .create_token(
                expired,
                NewToken {
                    identifier: "expired-old",
                    key_hash: &hash_api_key(&expired_key),
                    intent: "api",
                    expires: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
                    description: "",
                },
            )
            .await
            .unwrap();
        let (inactive, inactive_key) = app.user("inactive", &ALL_CONNECTION_PERMISSIONS).await;
        store.set_user_active(inactive, false).await.unwrap();
        let (plain, plain_key) = app.user("plain", &[]).await;
        let (permitted, permitted_key) = app.user("permitted", &[permission(op)]).await;
        let superuser_key = app.superuser_key.clone();
        let callers = vec![
            (Anonymous, None, ghost),
            (BadToken, Some(generate_api_key()), ghost),
            (Expired, Some(expired_key), expired),
            (Inactive, Some(inactive_key), inactive),
            (Plain, Some(plain_key), plain),
            (Permitted, Some(permitted_key), permitted),
            (Superuser, Some(superuser_key), 1),
        ];
        World {
            app,
            callers,
            victim,
        }
    }

    fn caller(&self, kind: Caller) -> (Option<&str>, i32) {
        let (_, key, user) = self
            .callers
            .iter()
            .find(|(k, _, _)| *k == kind)
            .expect("every caller kind is set up");
        (key.as_deref(), *user)
    }

    async fn row(&self, pk: i32) -> Option<Connection> {
        self.app.service.store().connection_by_pk(pk).await.unwrap()
    }

    /// Rows of one source, as the superuser lists them: (pk, user, identifier).
    async fn rows_of(&self, slug: &str) -> Vec<(i64, i64, String)> {
        let (status, body) = self
            .app
            .rest(
                Method::GET,
                &format!("{BASE}?source__slug={slug}&page_size=100"),
                Some(&self.app.superuser_key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["pk"].as_i64().unwrap(),
                    r["user"].as_i64().unwrap(),
                    r["identifier"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// What a transport answered, comparable across two requests.
#[derive(Debug, PartialEq)]
enum Answer {
    Rest(u16, Value),
    GraphQl(Value),
}

/// What one request asks for.
struct Request<'a> {
    op: Op,
    key: Option<&'a str>,
    source: Uuid,
    slug: &'a str,
    /// The row addressed (retrieve, update, delete).
    pk: i32,
    /// For create: the user the link is for (None: the caller).
    for_user: Option<i32>,
    identifier: &'a str,
}

async fn send(app: &TestApp, transport: Transport, r: &Request<'_>) -> Answer {
    match transport {
        Transport::Rest => {
            let detail = format!("{BASE}{}/", r.pk);
            let (method, path, body) = match r.op {
                Op::Create => {
                    let mut body = json!({"source": r.source, "identifier": r.identifier});
                    if let Some(u) = r.for_user {
                        body["user"] = json!(u);
                    }
                    (Method::POST, BASE.to_owned(), Some(body))
                }
                Op::Retrieve => (Method::GET, detail, None),
                Op::List => (
                    Method::GET,
                    format!("{BASE}?source__slug={}&page_size=100", r.slug),
                    None,
                ),
                Op::Update => (
                    Method::PATCH,
                    detail,
                    Some(json!({"identifier": r.identifier})),
                ),
                Op::Delete => (Method::DELETE, detail, None),
            };
            let (status, body) = app.rest(method, &path, r.key, body).await;
            Answer::Rest(status, body)
        }
        Transport::GraphQl => {
            let (query, vars) = match r.op {
                Op::Create => {
                    let mut input = json!({"source": r.source, "identifier": r.identifier});
                    if let Some(u) = r.for_user {
                        input["user"] = json!(u);
                    }
                    (GQL_CREATE, json!({"input": input}))
                }
                Op::Retrieve => (GQL_RETRIEVE, json!({"pk": r.pk})),
                Op::List => (GQL_LIST, json!({"slug": r.slug})),
                Op::Update => (
                    GQL_UPDATE,
                    json!({"pk": r.pk, "input": {"identifier": r.identifier}}),
                ),
                Op::Delete => (GQL_DELETE, json!({"pk": r.pk})),
            };
            Answer::GraphQl(app.graphql(r.key, query, vars).await)
        }
    }
}

fn gql_field(op: Op) -> &'static str {
    match op {
        Op::Create => "createUserOAuthConnection",
        Op::Retrieve => "userOAuthSourceConnection",
        Op::List => "userOAuthSourceConnections",
        Op::Update => "updateUserOAuthSourceConnection",
        Op::Delete => "deleteUserOAuthSourceConnection",
    }
}

/// The pks a successful list answered.
fn listed(answer: &Answer) -> Vec<i64> {
    let items: Vec<&Value> = match answer {
        Answer::Rest(_, body) => body["results"].as_array().unwrap().iter().collect(),
        Answer::GraphQl(r) => r["data"]["userOAuthSourceConnections"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .collect(),
    };
    items.iter().map(|i| i["pk"].as_i64().unwrap()).collect()
}

/// Checks a refusal's exact shape.
fn assert_refused(answer: &Answer, op: Op, expect: Expect, case: &str) {
    let (status, message, gql_code) = match expect {
        NoCredentials => (
            403,
            "Authentication credentials were not provided.",
            "UNAUTHENTICATED",
        ),
        BadCredentials => (403, "Token invalid/expired", "UNAUTHENTICATED"),
        Forbidden => (
            403,
            "You do not have permission to perform this action.",
            "FORBIDDEN",
        ),
        NotFound => (
            404,
            "No UserOAuthSourceConnection matches the given query.",
            "NOT_FOUND",
        ),
        Allow => unreachable!("not a refusal"),
    };
    match answer {
        Answer::Rest(got, body) => {
            assert_eq!(*got, status, "{case}: {body}");
            assert_eq!(*body, json!({"detail": message}), "{case}");
        }
        Answer::GraphQl(r) => {
            assert_eq!(code(r), gql_code, "{case}: {r}");
            let message = if expect == NotFound {
                "Not found."
            } else {
                message
            };
            assert_eq!(r["errors"][0]["message"], message, "{case}: {r}");
            assert_eq!(r["errors"].as_array().unwrap().len(), 1, "{case}: {r}");
            assert!(
                r["data"].is_null() || r["data"][gql_field(op)].is_null(),
                "{case}: refused but answered data: {r}"
            );
        }
    }
}

/// Runs every case of one operation; returns how many ran.
async fn run(op: Op) -> usize {
    let world = World::new(op).await;
    let app = &world.app;
    let store = app.service.store();
    let mut ran = 0;
    for (row_op, caller, own, other) in MATRIX.iter().copied().filter(|r| r.0 == op) {
        assert_eq!(row_op, op);
        let (key, me) = world.caller(caller);
        for transport in TRANSPORTS {
            for target in TARGETS {
                ran += 1;
                let expect = if target == Target::Own { own } else { other };
                let case = format!("{op:?} by {caller:?} on {target:?} row via {transport:?}");
                // A fresh source per case: no case sees another's rows.
                let slug = format!("s{ran}-{transport:?}").to_lowercase();
                let source = app.add_source(&slug, &slug).await;
                let target_user = if target == Target::Own {
                    me
                } else {
                    world.victim
                };
                // Seeded rows (none for create: the pair must be free).
                let (own_row, other_row) = if op == Op::Create {
                    (None, None)
                } else {
                    let own_row = store
                        .insert_connection(1, me, source, format!("own-{ran}"), None, None)
                        .await
                        .unwrap();
                    let other_row = store
                        .insert_connection(
                            1,
                            world.victim,
                            source,
                            format!("other-{ran}"),
                            None,
                            None,
                        )
                        .await
                        .unwrap();
                    (Some(own_row), Some(other_row))
                };
                let pk = match target {
                    Target::Own => own_row.as_ref().map_or(0, |c| c.pk),
                    Target::Other => other_row.as_ref().map_or(0, |c| c.pk),
                };
                let identifier = format!("new-{ran}");
                let mut request = Request {
                    op,
                    key,
                    source,
                    slug: &slug,
                    pk,
                    for_user: (target == Target::Other).then_some(world.victim),
                    identifier: &identifier,
                };
                let answer = send(app, transport, &request).await;

                // The answer.
                match (expect, op) {
                    (Allow, Op::List) | (NotFound, Op::List) => {
                        if let Answer::Rest(status, body) = &answer {
                            assert_eq!(*status, 200, "{case}: {body}");
                        }
                        if let Answer::GraphQl(r) = &answer {
                            assert!(r["errors"].is_null(), "{case}: {r}");
                        }
                        let pks = listed(&answer);
                        assert_eq!(
                            pks.contains(&i64::from(pk)),
                            expect == Allow,
                            "{case}: listed {pks:?}, row {pk}"
                        );
                        // The caller's own row is always listed.
                        let mine = own_row.as_ref().unwrap().pk;
                        assert!(pks.contains(&i64::from(mine)), "{case}: own row missing");
                    }
                    (Allow, _) => {
                        let data = match &answer {
                            Answer::Rest(status, body) => {
                                let ok = match op {
                                    Op::Create => 201,
                                    Op::Delete => 204,
                                    _ => 200,
                                };
                                assert_eq!(*status, ok, "{case}: {body}");
                                body.clone()
                            }
                            Answer::GraphQl(r) => {
                                assert!(r["errors"].is_null(), "{case}: {r}");
                                r["data"][gql_field(op)].clone()
                            }
                        };
                        match op {
                            Op::Create => {
                                assert_eq!(data["user"], target_user, "{case}: {data}");
                                assert_eq!(data["identifier"], identifier.as_str(), "{case}");
                            }
                            Op::Retrieve => {
                                assert_eq!(data["pk"], pk, "{case}: {data}");
                                assert_eq!(data["user"], target_user, "{case}: {data}");
                            }
                            Op::Update => {
                                assert_eq!(data["pk"], pk, "{case}: {data}");
                                assert_eq!(data["identifier"], identifier.as_str(), "{case}");
                            }
                            Op::Delete => match transport {
                                Transport::Rest => assert!(data.is_null(), "{case}: {data}"),
                                Transport::GraphQl => assert_eq!(data, pk, "{case}"),
                            },
                            Op::List => unreachable!(),
                        }
                    }
                    (refusal, _) => {
                        assert_refused(&answer, op, refusal, &case);
                        // Refusing a row the caller may not see says nothing about whether
                        // it exists: the answer is the one for a pk no row has.
                        let invisible = target == Target::Other
                            || refusal == NoCredentials
                            || refusal == BadCredentials;
                        if op != Op::Create && op != Op::List && invisible {
                            request.pk = MISSING;
                            let missing = send(app, transport, &request).await;
                            assert_eq!(
                                answer, missing,
                                "{case}: the refusal differs from the one for a missing pk"
                            );
                        }
                    }
                }

                // The database afterwards.
                if op == Op::Create {
                    let rows = world.rows_of(&slug).await;
                    if expect == Allow {
                        assert_eq!(rows.len(), 1, "{case}: {rows:?}");
                        assert_eq!(rows[0].1, i64::from(target_user), "{case}");
                        assert_eq!(rows[0].2, identifier, "{case}");
                    } else {
                        assert!(rows.is_empty(), "{case}: refused create wrote {rows:?}");
                    }
                } else {
                    for (seeded, is_target) in [
                        (&own_row, target == Target::Own),
                        (&other_row, target == Target::Other),
                    ] {
                        let seeded = seeded.as_ref().unwrap();
                        let now = world.row(seeded.pk).await;
                        match (op, expect, is_target) {
                            (Op::Delete, Allow, true) => {
                                assert!(now.is_none(), "{case}: not deleted")
                            }
                            (Op::Update, Allow, true) => {
                                let now = now.expect("updated row is still there");
                                assert_eq!(now.identifier, identifier, "{case}");
                                assert_eq!(
                                    (now.user, now.source, now.created),
                                    (seeded.user, seeded.source, seeded.created),
                                    "{case}"
                                );
                            }
                            _ => assert_eq!(
                                now.as_ref(),
                                Some(seeded),
                                "{case}: row {} changed",
                                seeded.pk
                            ),
                        }
                    }
                }
            }
        }
    }
    ran
}

/// 7 callers × 2 transports × 2 targets.
const CASES_PER_OP: usize = 28;

#[test]
fn the_matrix_covers_every_combination_once() {
    assert_eq!(MATRIX.len(), OPS.len() * CALLERS.len());
    for op in OPS {
        for caller in CALLERS {
            let n = MATRIX.iter().filter(|r| r.0 == op && r.1 == caller).count();
            assert_eq!(n, 1, "{op:?} × {caller:?} appears {n} times");
        }
    }
    assert_eq!(
        CASES_PER_OP,
        CALLERS.len() * TRANSPORTS.len() * TARGETS.len()
    );
    assert_eq!(OPS.len() * CASES_PER_OP, 140);
    // Whoever cannot authenticate is refused alike for every operation and row.
    for (op, caller, own, other) in MATRIX {
        let unauthenticated = match caller {
            Anonymous => Some(NoCredentials),
            BadToken | Expired | Inactive => Some(BadCredentials),
            _ => None,
        };
        if let Some(e) = unauthenticated {
            assert_eq!((own, other), (e, e), "{op:?} × {caller:?}");
        }
    }
}

#[tokio::test]
async fn create_matrix() {
    assert_eq!(run(Op::Create).await, CASES_PER_OP);
}

#[tokio::test]
async fn retrieve_matrix() {
    assert_eq!(run(Op::Retrieve).await, CASES_PER_OP);
}

#[tokio::test]
async fn list_matrix() {
    assert_eq!(run(Op::List).await, CASES_PER_OP);
}

#[tokio::test]
async fn update_matrix() {
    assert_eq!(run(Op::Update).await, CASES_PER_OP);
}

#[tokio::test]
async fn delete_matrix() {
    assert_eq!(run(Op::Delete).await, CASES_PER_OP);
}

/// Beyond the matrix: a row the caller may see is a 403 for a refused update or delete; a
/// missing one a 404.
#[tokio::test]
async fn a_viewer_without_change_or_delete_gets_403_on_visible_rows() {
    let app = TestApp::spawn().await;
    let (victim, _) = app.user("victim", &[]).await;
    let (_, viewer) = app.user("viewer", &[Permission::ViewConnection]).await;
    let row = app
        .service
        .store()
        .insert_connection(1, victim, app.source, "v".into(), None, None)
        .await
        .unwrap();
    let denied = json!({"detail": "You do not have permission to perform this action."});
    let not_found = json!({"detail": "No UserOAuthSourceConnection matches the given query."});
    for method in [Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"identifier": "changed"}));
        let (status, got) = app
            .rest(
                method.clone(),
                &format!("{BASE}{}/", row.pk),
                Some(&viewer),
                body.clone(),
            )
            .await;
        assert_eq!((status, &got), (403, &denied), "{method}");
        let (status, got) = app
            .rest(
                method.clone(),
                &format!("{BASE}{MISSING}/"),
                Some(&viewer),
                body,
            )
            .await;
        assert_eq!((status, &got), (404, &not_found), "{method}");
    }
    assert_eq!(
        app.service
            .store()
            .connection_by_pk(row.pk)
            .await
            .unwrap()
            .as_ref(),
        Some(&row)
    );
}
