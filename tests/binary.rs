//! The real binary: first start on an empty database (bootstrap, key file), an ephemeral
//! port, secrets kept out of the logs at debug level, and a clean exit on SIGTERM.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_oauthlink");

fn run(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn first_start_serves_and_keeps_secrets_out_of_logs() {
    let dir = std::env::temp_dir().join(format!("oauthlink-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/oauthlink.sqlite3?mode=rwc", dir.display());
    let envs = [
        ("OAUTHLINK_DATABASE_URL", url.as_str()),
        ("OAUTHLINK_LOG", "debug"),
        ("OAUTHLINK_LOG_FORMAT", "json"),
    ];
    let mut child = Command::new(BIN)
        .arg("serve")
        .envs(envs.iter().copied())
        .env("OAUTHLINK_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The generated key is printed once on stdout; the address is logged.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let key = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(key.len(), 64, "{line}");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut log = Vec::new();
    let started = Instant::now();
    let address = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server logs its address");
        log.push(l.clone());
        if let Ok(event) = serde_json::from_str::<Value>(&l)
            && let Some(address) = event["address"].as_str()
        {
            break address.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(20));
    };
    // The key file was generated beside the database, private.
    let key_file = dir.join("oauthlink.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let source = run(
        &["source", "create", "--name", "GitHub", "--slug", "github"],
        &envs,
    );
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    let secret = "gho_TopSecretAccessToken_42";
    let r: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&key)
        .json(&json!({"query": "mutation($i: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $i) { pk source { slug } } }",
                      "variables": {"i": {"source": source, "identifier": "octo", "accessToken": secret}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["data"]["createUserOAuthConnection"]["source"]["slug"], "github",
        "{r}"
    );
    let (alice_id, alice_key) = (
        run(&["user", "create", "--username", "alice"], &envs),
        run(&["token", "create", "--username", "alice"], &envs),
    );
    run(
        &[
            "user",
            "grant",
            "--username",
            "alice",
            "add_useroauthsourceconnection",
        ],
        &envs,
    );
    let resp = client
        .post(format!("{base}/api/v3/sources/user_connections/oauth/"))
        .bearer_auth(&alice_key)
        .json(&json!({"source": source, "identifier": "alice-gh", "access_token": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"].to_string(), alice_id);
    assert!(!body.to_string().contains(secret));

    // SIGTERM: a clean exit.
    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        log.push(l);
    }
    let log = log.join("\n");
    assert!(log.contains("oauthlink::audit"), "audit lines are logged");
    for s in [secret, key.as_str(), alice_key.as_str()] {
        assert!(!log.contains(s), "a secret reached the log");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `oauthlink user subject`: shows, links, refuses a subject another user holds, unlinks.
#[test]
fn user_subject_links_a_user_to_an_issuer_identity() {
    let dir = std::env::temp_dir().join(format!("oauthlink-subject-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/oauthlink.sqlite3?mode=rwc", dir.display());
    let issuer = "https://id.example.com/application/o/oauthlink/";
    let envs = [
        ("OAUTHLINK_DATABASE_URL", url.as_str()),
        ("OAUTHLINK_LOG", "warn"),
        ("OAUTHLINK_OIDC_ISSUER", issuer),
    ];
    run(&["user", "create", "--username", "alice"], &envs);
    run(&["user", "create", "--username", "bob"], &envs);
    let subject = |args: &[&str]| {
        let mut all = vec!["user", "subject"];
        all.extend_from_slice(args);
        Command::new(BIN)
            .args(&all)
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    };
    assert_eq!(run(&["user", "subject", "--username", "alice"], &envs), "");
    let set = subject(&["--username", "alice", "--set", "2f1c-alice"]);
    assert!(set.status.success());
    assert_eq!(
        run(&["user", "subject", "--username", "alice"], &envs),
        format!("{issuer}\t2f1c-alice")
    );
    // Another user cannot take the same subject.
    let taken = subject(&["--username", "bob", "--set", "2f1c-alice"]);
    assert!(!taken.status.success());
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("linked to another user"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    // A subject at another issuer is separate; --issuer overrides the variable.
    let other = "https://login.example.org";
    assert!(
        subject(&[
            "--username",
            "bob",
            "--issuer",
            other,
            "--set",
            "2f1c-alice"
        ])
        .status
        .success()
    );
    assert!(
        subject(&["--username", "alice", "--clear"])
            .status
            .success()
    );
    assert_eq!(run(&["user", "subject", "--username", "alice"], &envs), "");
    assert_eq!(
        run(&["user", "subject", "--username", "bob"], &envs),
        format!("{other}\t2f1c-alice")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
