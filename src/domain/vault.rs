//! The token vault: reading a connection's stored access token, refreshed at its source's
//! token endpoint when it has expired (or will within the margin) or when asked to.
//!
//! At most one refresh of a connection is in flight: in this process, a per-connection lock
//! (bounded cache, bounded wait); across instances, the row lease of storage/vault.rs (a
//! PostgreSQL row lock held across the call to the source). Whoever gets the lock second reads
//! the row again and, if it was refreshed meanwhile, answers with that result: a refresh token
//! is never sent twice. The refresh runs in a task of its own, so a client that disconnects
//! (or a query deadline) cannot drop it between the provider's answer and the write.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::error::{Error, FieldCode, ProviderProblem, Result};
use super::model::TokenAuthMethod;
use super::permission::{Permission, Principal};
use super::service::Service;
use crate::crypto::Slot;
use crate::storage::{SealedRefresh, TokenEndpoint, VaultRow};
use crate::token_endpoint::{RefreshRequest, Refused, Timeouts, TokenClient};

/// The vault's settings.
#[derive(Clone, Copy, Debug)]
pub struct VaultOptions {
    /// A token expiring within this margin is refreshed before it is handed out.
    pub margin: Duration,
    pub timeouts: Timeouts,
    /// How long a reader waits for another refresh of the same connection.
    pub wait: Duration,
}

impl Default for VaultOptions {
    fn default() -> Self {
        VaultOptions {
            margin: Duration::from_secs(60),
            timeouts: Timeouts::default(),
            wait: Duration::from_secs(20),
        }
    }
}

/// Refreshes of connections in flight in this process: one lock per connection. Bounded by
/// a count no client chooses beyond the connections that exist (and idle ones expire).
const MAX_FLIGHTS: u64 = 100_000;

#[derive(Clone, Debug)]
pub struct Vault {
    client: TokenClient,
    options: VaultOptions,
    flights: moka::sync::Cache<i32, Arc<tokio::sync::Mutex<()>>>,
}

impl Vault {
    pub fn new(options: VaultOptions) -> anyhow::Result<Self> {
        Ok(Vault {
            client: TokenClient::new(options.timeouts)?,
            options,
            flights: moka::sync::Cache::builder()
                .max_capacity(MAX_FLIGHTS)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        })
    }
}

/// A token handed out: the only value of the service that carries a stored token.
pub struct TokenAnswer {
    /// `None` when no access token is stored (and none could be refreshed).
    pub access_token: Option<SecretString>,
    /// Always `Bearer`: every source oauthlink links (OAuth 2.0 / OpenID Connect) issues
    /// bearer tokens.
    pub token_type: &'static str,
    pub expires: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

fn access_slot(row: &VaultRow) -> Slot {
    Slot::AccessToken {
        row_key: row.row_key.unwrap_or_default(),
        user: row.user,
    }
}

fn refresh_slot(row: &VaultRow) -> Slot {
    Slot::RefreshToken {
        row_key: row.row_key.unwrap_or_default(),
        user: row.user,
    }
}

impl Service {
    /// A connection's access token. Needs `read_useroauthsourceconnection_token`: for one's
    /// own connections, or anyone's with `view_useroauthsourceconnection` too (superusers
    /// always). Refreshed first when it expires within the margin, or when `force`.
    /// Every answer is audited.
    pub async fn connection_token(
        &self,
        caller: &Principal,
        pk: i32,
        force: bool,
    ) -> Result<TokenAnswer> {
        // Authorization before existence: without the permission nothing is looked up.
        if !caller.has(Permission::ReadConnectionToken) {
            return Err(Error::Forbidden);
        }
        let row = match self.store().vault_row(pk).await? {
            Some(row) if row.user == caller.user_id || caller.has(Permission::ViewConnection) => {
                row
            }
            _ => return Err(Error::NotFound),
        };
        if row.needs_relink {
            return Err(Error::RelinkRequired);
        }
        if !self.wants_refresh(&row, force)? {
            self.store().record_token_read(caller.user_id, &row).await?;
            return self.answer(&row, None);
        }
        let this = self.clone();
        let actor = caller.user_id;
        tokio::spawn(async move { this.refresh_flight(actor, row, force).await })
            .await
            .map_err(Error::internal)?
    }

    /// Whether `row`'s token is to be refreshed before it is handed out.
    fn wants_refresh(&self, row: &VaultRow, force: bool) -> Result<bool> {
        if row.refresh.is_none() {
            if force {
                return Err(Error::field(
                    "refresh_token",
                    FieldCode::Required,
                    "This connection has no refresh token.",
                ));
            }
            return Ok(false);
        }
        if force || row.access.is_none() {
            return Ok(true);
        }
        let margin = TimeDelta::from_std(self.vault().options.margin).unwrap_or(TimeDelta::MAX);
        let soon = Utc::now()
            .checked_add_signed(margin)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(row.expires.is_some_and(|e| e <= soon))
    }

    /// The refresh of one connection, one at a time (see the module comment). `seen` is the
    /// row as the reader first read it.
    async fn refresh_flight(&self, actor: i32, seen: VaultRow, force: bool) -> Result<TokenAnswer> {
        let wait = self.vault().options.wait;
        let lock = self
            .vault()
            .flights
            .get_with(seen.pk, || Arc::new(tokio::sync::Mutex::new(())));
        let _flight = tokio::time::timeout(wait, lock.lock_owned())
            .await
            .map_err(|_| Error::ProviderUnavailable(ProviderProblem::Busy))?;
        let lease = self
            .store()
            .lease_for_refresh(seen.pk, wait)
            .await?
            .ok_or(Error::NotFound)?;
        let row = lease.row.clone();
        if row.needs_relink {
            lease.release().await;
            return Err(Error::RelinkRequired);
        }
        // Refreshed by someone else while this reader waited: their result is the answer.
        let still = if force {
            row.same_tokens(&seen)
        } else {
            self.wants_refresh(&row, false)?
        };
        if !still || row.refresh.is_none() {
            let row = lease.read_current(actor).await?;
            return self.answer(&row, None);
        }
        // A database failure here is the database's (`Unavailable`), not the source's.
        let endpoint = match self.store().token_endpoint(row.source).await {
            Ok(endpoint) => endpoint,
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        };
        let sent = match self.refresh_at_source(&row, endpoint).await {
            Ok(sent) => sent,
            Err(Refused::InvalidGrant) => {
                tracing::warn!(connection = row.pk, source = %row.source, "the source refused the refresh token (invalid_grant): the user must link again");
                lease.mark_relink(actor).await?;
                return Err(Error::RelinkRequired);
            }
            Err(Refused::Problem { problem, error }) => {
                tracing::warn!(connection = row.pk, source = %row.source, reason = problem.as_str(), oauth_error = error.as_deref(), "token refresh failed; nothing changed");
                lease.release().await;
                return Err(Error::ProviderUnavailable(problem));
            }
        };
        let expires = sent.expires_in.map(|secs| {
            Utc::now()
                + TimeDelta::seconds(
                    i64::try_from(secs)
                        .unwrap_or(i64::MAX / 1000)
                        .min(10 * 365 * 86_400),
                )
        });
        let sealed = SealedRefresh {
            access: self
                .keyring()
                .seal(access_slot(&row), sent.access_token.expose_secret()),
            refresh: sent
                .refresh_token
                .as_ref()
                .map(|t| self.keyring().seal(refresh_slot(&row), t.expose_secret())),
            expires,
        };
        let stored = lease.store_refreshed(actor, sealed).await?;
        tracing::info!(connection = row.pk, source = %row.source, rotated = sent.refresh_token.is_some(), "token refreshed");
        self.answer(&stored, Some(sent.access_token))
    }

    /// Opens what the refresh grant needs and sends it.
    async fn refresh_at_source(
        &self,
        row: &VaultRow,
        endpoint: Option<TokenEndpoint>,
    ) -> std::result::Result<crate::token_endpoint::Granted, Refused> {
        let not_configured = || Refused::Problem {
            problem: ProviderProblem::NotConfigured,
            error: None,
        };
        let Some(endpoint) = endpoint else {
            return Err(not_configured());
        };
        let Some(url) = endpoint.url.as_deref().filter(|u| !u.is_empty()) else {
            tracing::warn!(source = %row.source, "the source has no access_token_url: cannot refresh");
            return Err(not_configured());
        };
        let auth_method =
            TokenAuthMethod::parse(&endpoint.auth_method).ok_or_else(not_configured)?;
        let secret = match &endpoint.sealed_secret {
            Some(sealed) => {
                let slot = Slot::ConsumerSecret {
                    source: endpoint.source,
                };
                match self.keyring().open(slot, sealed) {
                    Ok(opened) => Some(SecretString::from(opened.plaintext)),
                    Err(e) => {
                        tracing::error!(source = %row.source, error = %e, "the consumer secret does not open");
                        return Err(not_configured());
                    }
                }
            }
            None => None,
        };
        let refresh_token = match row
            .refresh
            .as_ref()
            .map(|sealed| self.keyring().open(refresh_slot(row), sealed))
        {
            Some(Ok(opened)) => SecretString::from(opened.plaintext),
            Some(Err(e)) => {
                tracing::error!(connection = row.pk, error = %e, "the refresh token does not open");
                return Err(not_configured());
            }
            None => return Err(not_configured()),
        };
        self.vault()
            .client
            .refresh(RefreshRequest {
                url,
                client_id: &endpoint.client_id,
                client_secret: secret.as_ref(),
                auth_method,
                refresh_token: &refresh_token,
            })
            .await
    }

    /// The answer for a row; `fresh` is the token just received (not opened again).
    fn answer(&self, row: &VaultRow, fresh: Option<SecretString>) -> Result<TokenAnswer> {
        let access_token = match (fresh, &row.access) {
            (Some(token), _) => Some(token),
            (None, Some(sealed)) => Some(SecretString::from(
                self.keyring()
                    .open(access_slot(row), sealed)
                    .map_err(|e| Error::internal(format!("connection {}: {e}", row.pk)))?
                    .plaintext,
            )),
            (None, None) => None,
        };
        Ok(TokenAnswer {
            access_token,
            token_type: "Bearer",
            expires: row.expires,
        })
    }
}
