//! Wiring: configuration to a ready `Service` (database, migrations, secret key).
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::custody;
use crate::domain::Service;
use crate::storage::{Store, StoreOptions};

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
    let keyring = custody::keyring(config, &store).await?;
    custody::check(&store, &keyring).await?;
    Service::new(store, keyring, config.vault_options())
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
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("sqlite://x.sqlite3"), "sqlite://x.sqlite3");
    }
}
