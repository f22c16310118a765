//! Wiring: configuration to a ready `Service` (database, migrations, secret key).
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::crypto::Sealer;
use crate::domain::Service;
use crate::storage::{Backend, Store, StoreOptions};

pub async fn open(config: &Config) -> anyhow::Result<Service> {
    let store = Store::connect(
        &config.database_url,
        &StoreOptions {
            max_connections: config.database_max_connections,
            timeout: Duration::from_secs(config.database_timeout_seconds),
        },
    )
    .await
    .with_context(|| format!("cannot open the database {}", redact(&config.database_url)))?;
    if config.auto_migrate {
        store.migrate().await.context("migrations failed")?;
    } else if store.pending_migrations().await? > 0 {
        anyhow::bail!(
            "the database needs migrations: run `oauthlink migrate` or set OAUTHLINK_AUTO_MIGRATE=true"
        );
    }
    let sealer = sealer(config, store.backend())?;
    Ok(Service::new(store, sealer))
}

fn sealer(config: &Config, backend: Backend) -> anyhow::Result<Sealer> {
    if let Some(key) = &config.secret_key {
        return Sealer::from_hex(key).context("OAUTHLINK_SECRET_KEY");
    }
    if backend != Backend::Sqlite {
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
        return Sealer::from_hex(&Sealer::generate_key_hex());
    };
    match std::fs::read_to_string(&path) {
        Ok(key) => {
            Sealer::from_hex(&key).with_context(|| format!("bad key file {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Sealer::generate_key_hex();
            write_private(&path, &key)
                .with_context(|| format!("cannot write key file {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new secret key file; back it up with the database");
            Sealer::from_hex(&key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read key file {}", path.display())),
    }
}

/// `sqlite://data/oauthlink.sqlite3?mode=rwc` → `data/oauthlink.key`.
fn key_file_beside(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path).with_extension("key"))
}

fn write_private(path: &PathBuf, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
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

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("sqlite://x.sqlite3"), "sqlite://x.sqlite3");
    }
}
