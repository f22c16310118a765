//! Key custody: which keys the service may start with, and `oauthlink rekey`.
//!
//! The database records the fingerprint of every key that sealed values in it
//! (storage/custody.rs). A start is refused when a value would not open with the configured
//! keys: a recorded key that is not configured while values still need it, or sampled values
//! sealed with an unknown key. A key file is generated only for a database that holds nothing
//! sealed and records no key, so a lost key file is never silently replaced.
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::config::Config;
use crate::crypto::{KeyInfo, Keyring, OpenError, SealedBy, Slot};
use crate::domain::Service;
use crate::storage::{
    Backend, RecordedKey, SealedSecret, SealedToken, SecretReseal, Store, TokenColumn, TokenReseal,
};

/// The keyring the configuration names: `OAUTHLINK_SECRET_KEY` (+ `OAUTHLINK_SECRET_KEYS_OLD`),
/// else with SQLite the key file (current key first, older keys on the next lines).
pub async fn keyring(config: &Config, store: &Store) -> anyhow::Result<Keyring> {
    let old: Vec<&str> = config
        .secret_keys_old
        .iter()
        .map(|k| k.expose_secret())
        // `OAUTHLINK_SECRET_KEYS_OLD=` (emptied after a rotation) names no key.
        .filter(|k| !k.trim().is_empty())
        .collect();
    if let Some(key) = &config.secret_key {
        return Keyring::from_hex(key.expose_secret(), old)
            .context("OAUTHLINK_SECRET_KEY / OAUTHLINK_SECRET_KEYS_OLD");
    }
    if store.backend() != Backend::Sqlite {
        anyhow::bail!(
            "OAUTHLINK_SECRET_KEY is required with PostgreSQL (64 hex characters, e.g. `openssl rand -hex 32`), \
             and must be the same on every instance"
        );
    }
    let Some(path) = config
        .secret_key_file
        .clone()
        .or_else(|| key_file_beside(&config.database_url))
    else {
        // An in-memory database lives as long as the process: so may its key.
        return Keyring::from_hex(&Keyring::generate_key_hex(), old);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            refuse_new_key_over_data(store, &path).await?;
            let key = Keyring::generate_key_hex();
            match write_private(&path, &format!("{key}\n")) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "generated a new secret key file; back it up with the database");
                    key
                }
                // Another process starting on the same new database wrote it first.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read key file {}", path.display()))?
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot write key file {}", path.display()));
                }
            }
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read key file {}", path.display()));
        }
    };
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let current = lines
        .next()
        .with_context(|| format!("the key file {} holds no key", path.display()))?;
    Keyring::from_hex(current, lines.chain(old))
        .with_context(|| format!("bad key file {}", path.display()))
}

async fn refuse_new_key_over_data(store: &Store, path: &Path) -> anyhow::Result<()> {
    let recorded = store.recorded_keys().await?;
    if recorded.is_empty() && !store.any_sealed().await? {
        return Ok(());
    }
    let ids: Vec<_> = recorded.iter().map(|k| k.key_id.as_str()).collect();
    anyhow::bail!(
        "refusing to start: the key file {} is missing, but the database holds secrets sealed \
         with an earlier key{}. Restore the key file (or set OAUTHLINK_SECRET_KEY to that key); \
         a new key would make every stored access token and consumer secret unreadable",
        path.display(),
        if ids.is_empty() {
            String::new()
        } else {
            format!(" (key id {})", ids.join(", "))
        }
    )
}

/// The start check (see the module comment); records the current key when it passes.
pub async fn check(store: &Store, keyring: &Keyring) -> anyhow::Result<()> {
    let configured: Vec<String> = keyring.keys().into_iter().map(|k| k.id).collect();
    let mut missing = Vec::new();
    let recorded_keys = store.recorded_keys().await?;
    for recorded in &recorded_keys {
        match keyring.key(&recorded.key_id) {
            Some(key) if key.fingerprint != recorded.fingerprint => anyhow::bail!(
                "refusing to start: the configured key {} does not match the fingerprint the \
                 database recorded for it",
                key.id
            ),
            Some(_) => {}
            None => {
                let id = hex::decode(&recorded.key_id).context("recorded key id")?;
                let n = store.count_sealed_with(&id, recorded.legacy).await?;
                if n > 0 {
                    missing.push(format!("{} ({n} values)", recorded.key_id));
                } else {
                    store.forget_key(&recorded.key_id).await?;
                    tracing::info!(key = %recorded.key_id, "no stored value is sealed with this key any more; its record is removed");
                }
            }
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "refusing to start: stored secrets are sealed with key(s) that are not configured: {}. \
             Configured: {}. Configure the missing key(s) (OAUTHLINK_SECRET_KEY, \
             OAUTHLINK_SECRET_KEYS_OLD or the key file); to retire a key, keep it configured as \
             an old key and run `oauthlink rekey`",
            missing.join(", "),
            configured.join(", ")
        );
    }
    // A few values by pk: their keys must be configured. Version 1 values carry no key id:
    // the key that opens them is recorded as their (legacy) key.
    let (tokens, secrets) = store.sample_sealed().await?;
    let samples = tokens
        .iter()
        .map(|t| (token_slot(TokenColumn::Access, t), &t.sealed))
        .chain(secrets.iter().map(|s| (secret_slot(s), &s.sealed)));
    let mut unknown = BTreeSet::new();
    let mut legacy = Vec::new();
    for (slot, sealed) in samples {
        match Keyring::sealed_by(sealed) {
            SealedBy::Key(id) if keyring.key(&hex::encode(id)).is_none() => {
                unknown.insert(hex::encode(id));
            }
            SealedBy::Legacy => match keyring.legacy_key(slot, sealed) {
                Some(key) => legacy.push(key),
                None => anyhow::bail!(
                    "refusing to start: the database holds secrets sealed before key \
                     fingerprints were recorded, and no configured key ({}) opens them. \
                     Configure the key they were sealed with",
                    configured.join(", ")
                ),
            },
            SealedBy::Key(_) | SealedBy::Malformed => {}
        }
    }
    if !unknown.is_empty() {
        anyhow::bail!(
            "refusing to start: stored secrets are sealed with key(s) {} that are not configured \
             (configured: {})",
            unknown.into_iter().collect::<Vec<_>>().join(", "),
            configured.join(", ")
        );
    }
    // Written only when new, so that a start usually writes nothing.
    let new = std::iter::once(record(&keyring.current(), false))
        .chain(legacy.iter().map(|k| record(k, true)))
        .filter(|r| {
            !recorded_keys
                .iter()
                .any(|k| k.key_id == r.key_id && (k.legacy || !r.legacy))
        });
    for key in new {
        store.record_key(&key).await?;
    }
    Ok(())
}

fn record(key: &KeyInfo, legacy: bool) -> RecordedKey {
    RecordedKey {
        key_id: key.id.clone(),
        fingerprint: key.fingerprint.clone(),
        legacy,
    }
}

/// A stored token's slot. A null row key (rows from before row keys) only fits version 1
/// values, whose associated data does not use it.
fn token_slot(column: TokenColumn, t: &SealedToken) -> Slot {
    let (row_key, user) = (t.row_key.unwrap_or_default(), t.user);
    match column {
        TokenColumn::Access => Slot::AccessToken { row_key, user },
        TokenColumn::Refresh => Slot::RefreshToken { row_key, user },
    }
}

fn secret_slot(s: &SealedSecret) -> Slot {
    Slot::ConsumerSecret { source: s.source }
}

/// `sqlite://data/oauthlink.sqlite3?mode=rwc` → `data/oauthlink.key`.
pub fn key_file_beside(url: &str) -> Option<PathBuf> {
    crate::storage::sqlite_file(url).map(|p| p.with_extension("key"))
}

/// Writes a new file (mode 0600) whole or not at all: written aside, then linked into place,
/// which fails with `AlreadyExists` if another process got there first. A process starting
/// beside it never reads a half-written key.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let aside = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&aside).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&aside, path));
    let _ = std::fs::remove_file(&aside);
    linked
}

/// What `rekey` did to one column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub checked: u64,
    pub resealed: u64,
    pub already_current: u64,
    /// Deleted by a concurrent request before its new value was written.
    pub gone: u64,
    /// Row and reason of each value that did not open; left as it is.
    pub failed: Vec<(String, OpenError)>,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} checked, {} re-sealed, {} already current, {} deleted meanwhile, {} failed",
            self.checked,
            self.resealed,
            self.already_current,
            self.gone,
            self.failed.len()
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct RekeyReport {
    pub tokens: Tally,
    pub refresh_tokens: Tally,
    pub secrets: Tally,
}

/// A row whose value changed under a re-seal is read and tried again this many times.
const RETRIES: usize = 5;

/// Re-seals every stored secret with the current key, `batch` rows per transaction, while the
/// service runs: each write applies only where the row still holds the value read (compare
/// and swap), so a concurrent update or delete wins and a create is never touched. Every
/// value is opened (checked) on the way; one that does not open is reported and left alone.
/// Idempotent: a rerun re-seals what is left.
pub async fn rekey(service: &Service, batch: u64) -> anyhow::Result<RekeyReport> {
    let store = service.store();
    let ring = service.keyring();
    let mut report = RekeyReport::default();
    // Rows created after this point were sealed with the current key (every instance has it
    // by now, step 1 of the rotation): stopping here keeps a rekey from chasing the creates.
    let upto = store.last_connection_pk().await?;
    rekey_tokens(
        service,
        TokenColumn::Access,
        upto,
        batch,
        &mut report.tokens,
    )
    .await?;
    rekey_tokens(
        service,
        TokenColumn::Refresh,
        upto,
        batch,
        &mut report.refresh_tokens,
    )
    .await?;
    let mut after = None;
    loop {
        let rows = store.secrets_after(after, batch.max(1)).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.source);
        let tally = &mut report.secrets;
        tally.checked += rows.len() as u64;
        let mut pending = rows;
        for attempt in 0..=RETRIES {
            let mut reseals = Vec::new();
            for s in &pending {
                let slot = secret_slot(s);
                match ring.open(slot, &s.sealed) {
                    Ok(o) if o.current => tally.already_current += 1,
                    Ok(o) => reseals.push(SecretReseal {
                        source: s.source,
                        old: s.sealed.clone(),
                        new: ring.seal(slot, &o.plaintext),
                    }),
                    Err(e) => tally.failed.push((format!("source {}", s.source), e)),
                }
            }
            let changed = store.reseal_secrets(&reseals).await?;
            tally.resealed += (reseals.len() - changed.len()) as u64;
            if changed.is_empty() {
                break;
            }
            pending = store.secrets_by_pk(&changed).await?;
            tally.gone += (changed.len() - pending.len()) as u64;
            if attempt == RETRIES {
                anyhow::bail!(
                    "sources {changed:?} kept changing while being re-sealed; run rekey again"
                );
            }
        }
    }
    Ok(report)
}

/// Re-seals one token column of the connections up to `upto` (see `rekey`).
async fn rekey_tokens(
    service: &Service,
    column: TokenColumn,
    upto: i32,
    batch: u64,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let store = service.store();
    let ring = service.keyring();
    let mut after = 0;
    loop {
        let rows = store
            .tokens_after(column, after, upto, batch.max(1))
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.pk;
        tally.checked += rows.len() as u64;
        let mut pending = rows;
        for attempt in 0..=RETRIES {
            let mut reseals = Vec::new();
            for t in &pending {
                match ring.open(token_slot(column, t), &t.sealed) {
                    Ok(o) if o.current => tally.already_current += 1,
                    Ok(o) => {
                        // A row from before row keys gets one with its re-sealed access
                        // token; a refresh token always has its row's.
                        let row_key = t.row_key.unwrap_or_else(Uuid::new_v4);
                        let slot = token_slot(
                            column,
                            &SealedToken {
                                row_key: Some(row_key),
                                ..t.clone()
                            },
                        );
                        reseals.push(TokenReseal {
                            pk: t.pk,
                            old: t.sealed.clone(),
                            new: ring.seal(slot, &o.plaintext),
                            row_key,
                        });
                    }
                    Err(e) => tally.failed.push((format!("connection {}", t.pk), e)),
                }
            }
            let changed = store.reseal_column(column, &reseals).await?;
            tally.resealed += (reseals.len() - changed.len()) as u64;
            if changed.is_empty() {
                break;
            }
            pending = store.tokens_by_pk(column, &changed).await?;
            tally.gone += (changed.len() - pending.len()) as u64;
            if attempt == RETRIES {
                anyhow::bail!(
                    "connections {changed:?} kept changing while being re-sealed; run rekey again"
                );
            }
        }
        tracing::info!(after, ?column, "rekey: tokens up to this connection done");
    }
    Ok(())
}

/// How many values each configured old key still seals (after a rekey: 0 means it may go).
pub async fn old_key_use(service: &Service) -> anyhow::Result<Vec<(String, u64)>> {
    let recorded = service.store().recorded_keys().await?;
    let mut out = Vec::new();
    for key in service.keyring().keys().into_iter().filter(|k| !k.current) {
        let legacy = recorded.iter().any(|r| r.key_id == key.id && r.legacy);
        let id = hex::decode(&key.id).expect("key ids are hex");
        out.push((
            key.id,
            service.store().count_sealed_with(&id, legacy).await?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_sits_beside_the_database() {
        assert_eq!(
            key_file_beside("sqlite://data/oauthlink.sqlite3?mode=rwc"),
            Some(PathBuf::from("data/oauthlink.key"))
        );
        assert_eq!(key_file_beside("sqlite::memory:"), None);
        assert_eq!(key_file_beside("postgres://x@h/db"), None);
    }
}
