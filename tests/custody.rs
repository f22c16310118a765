//! Key custody against the real binary: a lost key file or a changed key refuses the start
//! (and the data stays), `rekey` under concurrent creates leaves every value opening with the
//! new key alone, sealed values swapped between rows refuse to open, short bootstrap tokens
//! are refused, and the database and key files are private. SQLite, or PostgreSQL with
//! TEST_DATABASE_URL (the key file test is SQLite's alone).
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entity::{source, user_oauth_source_connection as conn};
use oauthlink::crypto::Keyring;
use oauthlink::storage::NewUser;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Database, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter,
};
use serde_json::{Value, json};

mod common;

use common::{REST, Server, TempDir, command, fresh_database, library_config, sqlite_url};

fn run(url: &str, envs: &[(&str, &str)], args: &[&str]) -> Output {
    command(url, envs).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A 48-character bootstrap token, as CI's.
fn bootstrap_token() -> String {
    Keyring::generate_key_hex()[..48].to_owned()
}

/// Links a new user to the source with an access token derived from the identifier; returns
/// the pk, or `None` when the server did not answer 201.
async fn link(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    source: &str,
    user: i32,
    identifier: &str,
) -> Option<i32> {
    let body = json!({"source": source, "identifier": identifier, "user": user,
                      "access_token": token_of(identifier),
                      "refresh_token": refresh_of(identifier)});
    let r = client
        .post(format!("{base}{REST}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .ok()?;
    if r.status().as_u16() != 201 {
        return None;
    }
    r.json::<Value>().await.ok()?["pk"]
        .as_i64()
        .map(|p| p as i32)
}

fn token_of(identifier: &str) -> String {
    format!("gho_{identifier}_secret")
}

fn refresh_of(identifier: &str) -> String {
    format!("ghr_{identifier}_secret")
}

/// Creates `n` users through the library (faster than the CLI) and closes it.
async fn users(url: &str, key: &str, n: usize, prefix: &str) -> Vec<i32> {
    let service = oauthlink::app::open(&library_config(url, key, &[]))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let username = format!("{prefix}{i}");
        let user = NewUser {
            username: &username,
            name: "",
            email: "",
            is_superuser: false,
        };
        ids.push(service.store().create_user(user).await.unwrap());
    }
    service.store().clone().close().await;
    ids
}

async fn db(url: &str) -> DatabaseConnection {
    Database::connect(url).await.unwrap()
}

async fn tokens_stored(db: &DatabaseConnection) -> u64 {
    conn::Entity::find()
        .filter(conn::Column::AccessToken.is_not_null())
        .count(db)
        .await
        .unwrap()
}

/// Opens every stored token with a service holding `key` alone and compares it with what was
/// sent; returns how many.
async fn open_all_with(url: &str, key: &str) -> usize {
    let service = oauthlink::app::open(&library_config(url, key, &[]))
        .await
        .expect("starts with the key alone");
    let rows = conn::Entity::find()
        .all(service.store().connection())
        .await
        .unwrap();
    for row in &rows {
        let sealed = service
            .store()
            .sealed_access_token(row.id)
            .await
            .unwrap()
            .expect("every row has a token");
        assert_eq!(
            service.open_access_token(&sealed),
            Ok(token_of(&row.identifier)),
            "connection {}",
            row.id
        );
        // Its refresh token (if the row has one) opens too, in its own slot.
        for refresh in service
            .store()
            .tokens_by_pk(oauthlink::storage::TokenColumn::Refresh, &[row.id])
            .await
            .unwrap()
        {
            let slot = oauthlink::crypto::Slot::RefreshToken {
                row_key: refresh
                    .row_key
                    .expect("rows with a refresh token have a row key"),
                user: refresh.user,
            };
            let opened = service.keyring().open(slot, &refresh.sealed).unwrap();
            assert_eq!(opened.plaintext, refresh_of(&row.identifier));
        }
    }
    service.store().clone().close().await;
    rows.len()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// SQLite: the generated key file is the database's; deleting it refuses the start instead of
/// sealing new rows with a new key, and restoring it opens the old tokens again. The files
/// are private.
#[tokio::test]
async fn lost_key_file_refuses_the_start_and_the_restored_one_opens_old_tokens() {
    let dir = TempDir::new("oauthlink-custody");
    let url = sqlite_url(&dir.0);
    let token = bootstrap_token();
    let server = Server::start(&url, &[("OAUTHLINK_BOOTSTRAP_TOKEN", &token)]);
    let out = run(
        &url,
        &[],
        &[
            "source",
            "create",
            "--name",
            "GitHub",
            "--slug",
            "github",
            "--consumer-secret",
            "cs-secret",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let source = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let client = reqwest::Client::new();
    let pk = link(&client, &server.base, &token, &source, 1, "octocat").await;
    assert!(pk.is_some());
    #[cfg(unix)]
    for file in [
        "oauthlink.sqlite3",
        "oauthlink.sqlite3-wal",
        "oauthlink.sqlite3-shm",
        "oauthlink.key",
    ] {
        assert_eq!(mode(&dir.0.join(file)), 0o600, "{file}");
    }
    drop(server);

    let key_file = dir.0.join("oauthlink.key");
    let kept = dir.0.join("kept.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let log = Server::refused(&url, &[]);
    assert!(
        log.contains("key file") && log.contains("missing") && log.contains("Restore"),
        "{log}"
    );
    assert!(!key_file.exists(), "no new key file over existing data");
    // The CLI refuses alike.
    let out = run(&url, &[], &["rekey"]);
    assert!(!out.status.success(), "{}", text(&out));
    let db = db(&url).await;
    assert_eq!(tokens_stored(&db).await, 1, "the data is intact");
    db.close().await.unwrap();

    std::fs::rename(&kept, &key_file).unwrap();
    let out = run(&url, &[], &["rekey"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "access_token: 1 checked, 0 re-sealed, 1 already current, 0 deleted meanwhile, 0 failed"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("consumer_secret: 1 checked, 0 re-sealed, 1 already current"),
        "{stdout}"
    );
    drop(Server::start(&url, &[]));
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(open_all_with(&url, key.trim()).await, 1);
}

/// A changed OAUTHLINK_SECRET_KEY (PostgreSQL's only way to give one) is refused while values
/// sealed with the recorded key exist; the original key starts.
#[tokio::test]
async fn changed_key_is_refused() {
    let dir = TempDir::new("oauthlink-custody");
    let url = fresh_database(dir.path(), "custody").await;
    let key = Keyring::generate_key_hex();
    let token = bootstrap_token();
    let server = Server::start(
        &url,
        &[
            ("OAUTHLINK_SECRET_KEY", &key),
            ("OAUTHLINK_BOOTSTRAP_TOKEN", &token),
        ],
    );
    let out = run(
        &url,
        &[("OAUTHLINK_SECRET_KEY", &key)],
        &["source", "create", "--name", "GitHub", "--slug", "github"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let source = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let pk = link(
        &reqwest::Client::new(),
        &server.base,
        &token,
        &source,
        1,
        "octocat",
    )
    .await;
    assert!(pk.is_some());
    drop(server);

    let other = Keyring::generate_key_hex();
    let log = Server::refused(&url, &[("OAUTHLINK_SECRET_KEY", &other)]);
    let recorded = Keyring::single(&key).unwrap().current().id;
    assert!(
        log.contains("not configured") && log.contains(&recorded) && !log.contains(&key),
        "{log}"
    );
    let db = db(&url).await;
    assert_eq!(tokens_stored(&db).await, 1);
    db.close().await.unwrap();
    drop(Server::start(&url, &[("OAUTHLINK_SECRET_KEY", &key)]));
    assert_eq!(open_all_with(&url, &key).await, 1);
}

/// Rotation: the server runs with the new key current and the old one configured as old;
/// `rekey` runs while creates go on; afterwards the new key alone opens every value, none is
/// lost, and the old key alone is refused.
#[tokio::test]
async fn rekey_under_concurrent_creates_leaves_every_value_with_the_new_key() {
    const BEFORE: usize = 120;
    const DURING: usize = 400;
    let dir = TempDir::new("oauthlink-custody");
    let url = fresh_database(dir.path(), "custody").await;
    let (old, new) = (Keyring::generate_key_hex(), Keyring::generate_key_hex());
    let token = bootstrap_token();
    let server = Server::start(
        &url,
        &[
            ("OAUTHLINK_SECRET_KEY", &old),
            ("OAUTHLINK_BOOTSTRAP_TOKEN", &token),
        ],
    );
    let out = run(
        &url,
        &[("OAUTHLINK_SECRET_KEY", &old)],
        &[
            "source",
            "create",
            "--name",
            "GitHub",
            "--slug",
            "github",
            "--consumer-secret",
            "cs-secret",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let source = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let users = users(&url, &old, BEFORE + DURING, "u").await;
    let client = reqwest::Client::new();
    for (i, user) in users[..BEFORE].iter().enumerate() {
        let pk = link(
            &client,
            &server.base,
            &token,
            &source,
            *user,
            &format!("before{i}"),
        )
        .await;
        assert!(pk.is_some());
    }
    drop(server);

    // The new key current everywhere, the old one still opening.
    let rotating = [
        ("OAUTHLINK_SECRET_KEY", new.as_str()),
        ("OAUTHLINK_SECRET_KEYS_OLD", old.as_str()),
    ];
    let server = Server::start(&url, &rotating);
    // Creates run from before the rekey starts until after it ended; `overlap` counts those
    // answered while it ran.
    let phase = Arc::new(AtomicU64::new(0)); // 0 before, 1 during, 2 after the rekey
    let (acked, overlap) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let creates: Vec<_> = users[BEFORE..]
        .chunks(DURING / 4)
        .enumerate()
        .map(|(c, chunk)| {
            let (client, base, token, source) = (
                client.clone(),
                server.base.clone(),
                token.clone(),
                source.clone(),
            );
            let (phase, acked, overlap) = (phase.clone(), acked.clone(), overlap.clone());
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                let mut created = 0;
                for (i, user) in chunk.into_iter().enumerate() {
                    let identifier = format!("during{c}_{i}");
                    let before = phase.load(Ordering::SeqCst);
                    if before == 2 && i % 8 == 7 {
                        break; // a few more after the rekey, then stop
                    }
                    if link(&client, &base, &token, &source, user, &identifier)
                        .await
                        .is_some()
                    {
                        created += 1;
                        acked.fetch_add(1, Ordering::SeqCst);
                        if before == 1 && phase.load(Ordering::SeqCst) == 1 {
                            overlap.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                created
            })
        })
        .collect();
    while acked.load(Ordering::SeqCst) < 8 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let url2 = url.clone();
    let rotating_owned: Vec<(String, String)> = rotating
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    phase.store(1, Ordering::SeqCst);
    let started = Instant::now();
    let rekey = tokio::task::spawn_blocking(move || {
        let envs: Vec<(&str, &str)> = rotating_owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run(&url2, &envs, &["rekey", "--batch", "16"])
    });
    let out = rekey.await.unwrap();
    let took = started.elapsed();
    phase.store(2, Ordering::SeqCst);
    let mut created = 0;
    for task in creates {
        created += task.await.unwrap();
    }
    assert!(out.status.success(), "{}", text(&out));
    let overlap = overlap.load(Ordering::SeqCst);
    assert!(overlap > 0, "no create was answered while the rekey ran");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{stdout}rekey took {took:?}; {created} creates, {overlap} answered during it");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(
        stdout.contains("consumer_secret: 1 checked, 1 re-sealed"),
        "{stdout}"
    );
    // Refresh tokens are re-sealed like access tokens (issue 15).
    let refresh_line = stdout
        .lines()
        .find(|l| l.contains("refresh_token:"))
        .unwrap_or_default();
    assert!(
        refresh_line.contains(&format!(" checked, {BEFORE} re-sealed, ")),
        "{stdout}"
    );
    assert!(stdout.contains("seals nothing any more"), "{stdout}");
    let db = db(&url).await;
    let all = BEFORE + created;
    assert_eq!(tokens_stored(&db).await, all as u64, "none lost");
    db.close().await.unwrap();
    drop(server);

    // The old key can go: the new one alone starts and opens everything.
    assert_eq!(open_all_with(&url, &new).await, all);
    let out = run(&url, &[("OAUTHLINK_SECRET_KEY", &new)], &["rekey"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "access_token: {all} checked, 0 re-sealed, {all} already current"
        )),
        "{stdout}"
    );
    let log = Server::refused(&url, &[("OAUTHLINK_SECRET_KEY", &old)]);
    assert!(log.contains("not configured"), "{log}");
}

/// Swapping two rows' sealed tokens (or secrets) by SQL makes them refuse to open, with or
/// without their row keys; `rekey` reports them and leaves them as they are.
#[tokio::test]
async fn swapped_sealed_values_refuse_to_open() {
    let dir = TempDir::new("oauthlink-custody");
    let url = fresh_database(dir.path(), "custody").await;
    let key = Keyring::generate_key_hex();
    let token = bootstrap_token();
    let env = [("OAUTHLINK_SECRET_KEY", key.as_str())];
    let server = Server::start(
        &url,
        &[
            ("OAUTHLINK_SECRET_KEY", &key),
            ("OAUTHLINK_BOOTSTRAP_TOKEN", &token),
        ],
    );
    let mut sources = Vec::new();
    for slug in ["a", "b"] {
        let out = run(
            &url,
            &env,
            &[
                "source",
                "create",
                "--name",
                slug,
                "--slug",
                slug,
                "--consumer-secret",
                slug,
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        sources.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    let users = users(&url, &key, 4, "s").await;
    let client = reqwest::Client::new();
    let mut pks = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let pk = link(
            &client,
            &server.base,
            &token,
            &sources[0],
            *user,
            &format!("x{i}"),
        )
        .await;
        pks.push(pk.unwrap());
    }
    drop(server);

    let db = db(&url).await;
    let row = |pk| {
        let db = db.clone();
        async move {
            conn::Entity::find_by_id(pk)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    // Rows 0 and 1: the tokens alone. Rows 2 and 3: tokens with their row keys.
    for (a, b, with_row_key) in [(pks[0], pks[1], false), (pks[2], pks[3], true)] {
        let (ra, rb) = (row(a).await, row(b).await);
        let (mut ma, mut mb) = (
            ra.clone().into_active_model(),
            rb.clone().into_active_model(),
        );
        ma.access_token = Set(rb.access_token.clone());
        mb.access_token = Set(ra.access_token.clone());
        if with_row_key {
            ma.row_key = Set(rb.row_key);
            mb.row_key = Set(ra.row_key);
        }
        ma.update(&db).await.unwrap();
        mb.update(&db).await.unwrap();
    }
    let sa = source::Entity::find_by_id(sources[0].parse::<uuid::Uuid>().unwrap())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let sb = source::Entity::find_by_id(sources[1].parse::<uuid::Uuid>().unwrap())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let (mut ma, mut mb) = (
        sa.clone().into_active_model(),
        sb.clone().into_active_model(),
    );
    ma.consumer_secret = Set(sb.consumer_secret.clone());
    mb.consumer_secret = Set(sa.consumer_secret.clone());
    ma.update(&db).await.unwrap();
    mb.update(&db).await.unwrap();
    let mut stored_before = Vec::new();
    for pk in &pks {
        stored_before.push(row(*pk).await.access_token);
    }

    let service = oauthlink::app::open(&library_config(&url, &key, &[]))
        .await
        .expect("a swapped value does not stop the service");
    for pk in &pks {
        let sealed = service
            .store()
            .sealed_access_token(*pk)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            service.open_access_token(&sealed),
            Err(oauthlink::crypto::OpenError::Refused),
            "connection {pk}"
        );
    }
    service.store().clone().close().await;

    let out = run(&url, &env, &["rekey"]);
    assert!(!out.status.success(), "{}", text(&out));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains(
            "access_token: 4 checked, 0 re-sealed, 0 already current, 0 deleted meanwhile, 4 failed"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("consumer_secret: 2 checked, 0 re-sealed, 0 already current, 0 deleted meanwhile, 2 failed"), "{stdout}");
    for pk in &pks {
        assert!(
            stderr.contains(&format!("connection {pk}: does not open")),
            "{stderr}"
        );
    }
    for (pk, before) in pks.iter().zip(stored_before) {
        assert_eq!(row(*pk).await.access_token, before, "left as it was");
    }
    db.close().await.unwrap();
}

#[tokio::test]
async fn short_bootstrap_tokens_are_refused() {
    let dir = TempDir::new("oauthlink-custody");
    let url = sqlite_url(&dir.0);
    let log = Server::refused(
        &url,
        &[(
            "OAUTHLINK_BOOTSTRAP_TOKEN",
            "short-token-of-31-characters-xx",
        )],
    );
    assert!(log.contains("at least 32 characters"), "{log}");
    assert!(!log.contains("short-token-of-31"), "{log}");
}

/// A value sealed the way the version 1 code did: `0x01 | nonce | ciphertext`, bound to the
/// column only.
fn seal_v1(key_hex: &str, column: &[u8], plaintext: &str) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let cipher =
        chacha20poly1305::XChaCha20Poly1305::new_from_slice(&hex::decode(key_hex).unwrap())
            .unwrap();
    let nonce = [9u8; 24];
    let ct = cipher
        .encrypt(
            chacha20poly1305::XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: column,
            },
        )
        .unwrap();
    [&[1u8][..], &nonce, &ct].concat()
}

/// A database from before key custody (version 1 values, no row keys, no recorded key): its
/// key starts it and is recorded, another key is refused, and `rekey` rewrites the values in
/// the current format.
#[tokio::test]
async fn version_1_databases_start_with_their_key_and_rekey_upgrades_them() {
    let dir = TempDir::new("oauthlink-custody");
    let url = fresh_database(dir.path(), "custody").await;
    let key = Keyring::generate_key_hex();
    let env = [("OAUTHLINK_SECRET_KEY", key.as_str())];
    let token = bootstrap_token();
    let server = Server::start(&url, &[env[0], ("OAUTHLINK_BOOTSTRAP_TOKEN", &token)]);
    let out = run(
        &url,
        &env,
        &["source", "create", "--name", "GitHub", "--slug", "github"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let source = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let client = reqwest::Client::new();
    let pk = link(&client, &server.base, &token, &source, 1, "octocat")
        .await
        .unwrap();
    drop(server);
    // Back to what version 1 stored.
    let db = db(&url).await;
    let mut row = conn::Entity::find_by_id(pk)
        .one(&db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    row.access_token = Set(Some(seal_v1(
        &key,
        b"user_oauth_source_connections.access_token",
        &token_of("octocat"),
    )));
    row.row_key = Set(None);
    // Version 1 knew no refresh tokens.
    row.refresh_token = Set(None);
    row.update(&db).await.unwrap();
    entity::sealing_key::Entity::delete_many()
        .exec(&db)
        .await
        .unwrap();

    let log = Server::refused(
        &url,
        &[("OAUTHLINK_SECRET_KEY", &Keyring::generate_key_hex())],
    );
    assert!(log.contains("no configured key"), "{log}");
    let recorded = entity::sealing_key::Entity::find().all(&db).await.unwrap();
    assert!(recorded.is_empty(), "a refused start writes nothing");

    let out = run(&url, &env, &["rekey"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("access_token: 1 checked, 1 re-sealed, 0 already current"),
        "{stdout}"
    );
    let recorded = entity::sealing_key::Entity::find().all(&db).await.unwrap();
    let id = Keyring::single(&key).unwrap().current().id;
    assert!(
        recorded.iter().any(|k| k.key_id == id && k.legacy),
        "{recorded:?}"
    );
    let row = conn::Entity::find_by_id(pk)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.row_key.is_some());
    assert_eq!(row.access_token.unwrap()[0], 2, "rewritten as version 2");
    db.close().await.unwrap();
    assert_eq!(open_all_with(&url, &key).await, 1);
}

/// A re-seal writes only over the value it read: a token replaced meanwhile (a concurrent
/// update) wins, and `rekey` reads it again.
#[tokio::test]
async fn a_reseal_never_overwrites_a_concurrent_write() {
    use oauthlink::storage::{RowSealed, TokenReseal};
    let dir = TempDir::new("oauthlink-custody");
    let url = fresh_database(dir.path(), "custody").await;
    let key = Keyring::generate_key_hex();
    let service = oauthlink::app::open(&library_config(&url, &key, &[]))
        .await
        .unwrap();
    let store = service.store();
    let user = NewUser {
        username: "cas",
        name: "",
        email: "",
        is_superuser: false,
    };
    let user = store.create_user(user).await.unwrap();
    let source = store
        .create_source(oauthlink::storage::NewSource {
            name: "GitHub".into(),
            slug: "github".into(),
            enabled: true,
            provider_type: "github".into(),
            authorization_url: None,
            access_token_url: None,
            profile_url: None,
            consumer_key: String::new(),
            consumer_secret: None,
            policy_engine_mode: oauthlink::domain::model::PolicyEngineMode::Any,
            user_matching_mode: oauthlink::domain::model::UserMatchingMode::Identifier,
            user_path_template: String::new(),
            icon: None,
        })
        .await
        .unwrap();
    let row_key = uuid::Uuid::new_v4();
    let slot = oauthlink::crypto::Slot::AccessToken { row_key, user };
    let first = service.keyring().seal(slot, "first");
    let pk = store
        .insert_connection(
            user,
            user,
            source,
            "octocat".into(),
            Some(RowSealed {
                row_key,
                sealed: first.clone(),
            }),
            None,
        )
        .await
        .unwrap()
        .pk;
    let stale = TokenReseal {
        pk,
        old: service.keyring().seal(slot, "read before an update"),
        new: service.keyring().seal(slot, "stale"),
        row_key,
    };
    assert_eq!(store.reseal_tokens(&[stale]).await.unwrap(), vec![pk]);
    let stored = store.sealed_access_token(pk).await.unwrap().unwrap();
    assert_eq!(stored.sealed, first, "the concurrent value stays");
    let fresh = TokenReseal {
        pk,
        old: first,
        new: service.keyring().seal(slot, "second"),
        row_key,
    };
    assert!(store.reseal_tokens(&[fresh]).await.unwrap().is_empty());
    let stored = store.sealed_access_token(pk).await.unwrap().unwrap();
    assert_eq!(service.open_access_token(&stored).as_deref(), Ok("second"));
    store.clone().close().await;
}
