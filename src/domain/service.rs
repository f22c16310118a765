//! The operations both APIs offer, with their rules. Checks run in one order everywhere:
//! authenticate (by the caller of these), authorize, validate, existence, uniqueness — so a
//! caller without permission learns nothing about what exists.
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::cache::{Caches, KeyEntry};
use super::error::{CredentialProblem, Error, Result};
use super::model::{
    AuditEvent, Connection, ConnectionChanges, ConnectionFilter, ConnectionWithSource,
    NewConnection, Patch, Sort, Source,
};
use super::permission::{Permission, Principal};
use super::search;
use super::validation::{self, Errors};
use crate::crypto::{Keyring, OpenError, Slot, hash_api_key};
use crate::oidc::Verifier;
use crate::storage::{
    ConnectionUpdate, Cursor, KeysetPage, NewUser, SealedToken, SealedTokens, Store,
};

/// The two sealed tokens a connection may hold.
#[derive(Clone, Copy)]
enum TokenKind {
    Access,
    Refresh,
}

#[derive(Clone, Debug)]
pub struct Service {
    store: Store,
    keyring: Keyring,
    caches: Caches,
    /// The trusted OpenID Connect issuers (none: JWTs are refused).
    oidc: Option<Arc<Verifier>>,
    vault: super::vault::Vault,
}

/// The REST list's raw filter parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListQuery<'a> {
    pub user: Option<&'a str>,
    pub source_slug: Option<&'a str>,
    pub search: Option<&'a str>,
}

/// How much of a connection an update replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// PUT: `identifier` is required.
    Full,
    /// PATCH / GraphQL update: absent fields keep their value.
    Partial,
}

impl Service {
    /// The service, with the token vault's settings (its HTTP client is built once, here).
    pub fn new(
        store: Store,
        keyring: Keyring,
        vault: super::vault::VaultOptions,
    ) -> anyhow::Result<Self> {
        Ok(Service {
            store,
            keyring,
            caches: Caches::default(),
            oidc: None,
            vault: super::vault::Vault::new(vault)?,
        })
    }

    /// Accepts OpenID Connect access tokens from the verifier's issuers.
    pub fn with_oidc(mut self, verifier: Arc<Verifier>) -> Self {
        self.oidc = Some(verifier).filter(|v| !v.is_empty());
        self
    }

    pub(super) fn vault(&self) -> &super::vault::Vault {
        &self.vault
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolves `Authorization: Bearer <key>`. Every refusal is logged with its reason and
    /// answered alike.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        match Credential::parse(authorization) {
            Credential::None => Err(Error::Unauthenticated),
            Credential::Malformed => Err(refuse(CredentialProblem::Malformed)),
            Credential::Key(key) => self.principal_for_key_hash(&hash_api_key(key)).await,
            Credential::Jwt(token) => self.principal_for_jwt(token, &hash_api_key(token)).await,
        }
    }

    /// The principal of an API key, by the key's hash; see `cache` for how fresh it is.
    pub async fn principal_for_key_hash(&self, key_hash: &str) -> Result<Principal> {
        let now = Utc::now();
        let entry = match self.caches.principals.get(key_hash) {
            Some(entry) => entry,
            None => match self.store.principal_by_key_hash(key_hash, now).await? {
                Ok(entry) => {
                    self.caches
                        .principals
                        .insert(key_hash.to_owned(), entry.clone());
                    entry
                }
                Err(problem) => return Err(refuse(problem)),
            },
        };
        self.unexpired(key_hash, entry, now)
    }

    /// The principal of an OpenID Connect access token (`token_hash` is its SHA-256, the
    /// cache key). A cached token costs nothing; a new one its validation (keys cached, see
    /// `oidc`) and one statement, as an API key does. Auto-creation, when on, adds a write
    /// for a subject's first token only.
    pub async fn principal_for_jwt(&self, token: &str, token_hash: &str) -> Result<Principal> {
        let now = Utc::now();
        if let Some(entry) = self.caches.principals.get(token_hash) {
            return self.unexpired(token_hash, entry, now);
        }
        let Some(verifier) = &self.oidc else {
            return Err(refuse(CredentialProblem::NoIssuer));
        };
        let verified = verifier
            .verify(token)
            .await
            .map_err(|problem| match problem {
                // No key of the issuer was ever fetched: the token may well be good, so this is
                // an outage (503), not a refusal that would tell a client to drop its token.
                CredentialProblem::KeysUnavailable => {
                    tracing::warn!(
                        "the token's issuer has no signing keys cached and cannot be reached"
                    );
                    Error::Unavailable
                }
                problem => refuse(problem),
            })?;
        let (issuer, subject) = (verified.issuer.as_str(), verified.subject.as_str());
        let mut found = self.store.principal_by_subject(issuer, subject).await?;
        if let (Err(CredentialProblem::UnknownSubject), Some(profile)) =
            (&found, &verified.new_user)
        {
            let new_user = NewUser {
                username: &profile.username,
                name: &profile.name,
                email: &profile.email,
                is_superuser: false,
            };
            self.store
                .create_user_for_subject(issuer, subject, new_user)
                .await?;
            found = self.store.principal_by_subject(issuer, subject).await?;
        }
        let mut principal = found.map_err(refuse)?;
        // A configured permissions claim replaces the stored grants.
        if let Some(permissions) = verified.permissions {
            principal.permissions = permissions;
        }
        let entry = (principal, Some(verified.valid_until));
        self.caches
            .principals
            .insert(token_hash.to_owned(), entry.clone());
        self.unexpired(token_hash, entry, now)
    }

    /// A cached or fresh principal, unless its credential has expired meanwhile.
    fn unexpired(&self, hash: &str, entry: KeyEntry, now: DateTime<Utc>) -> Result<Principal> {
        let (principal, expires) = entry;
        if expires.is_some_and(|e| e <= now) {
            self.caches.principals.invalidate(hash);
            return Err(refuse(CredentialProblem::Expired));
        }
        Ok(principal)
    }

    /// A source by pk, through the cache.
    async fn cached_source(&self, pk: Uuid) -> Result<Option<Source>> {
        if let Some(source) = self.caches.sources.get(&pk) {
            return Ok(Some(source));
        }
        let found = self.store.source_by_pk(pk).await?;
        if let Some(source) = &found {
            self.caches.sources.insert(pk, source.clone());
        }
        Ok(found)
    }

    pub async fn create_connection(
        &self,
        caller: &Principal,
        input: NewConnection,
        mut errors: Errors,
    ) -> Result<ConnectionWithSource> {
        // Authorize: linking an identity is privileged, for another user only superusers.
        if !caller.has(Permission::AddConnection) {
            return Err(Error::Forbidden);
        }
        if let Patch::Value(user) = input.user
            && user != caller.user_id
            && !caller.is_superuser
        {
            return Err(Error::Forbidden);
        }
        // Validate.
        let user = match input.user {
            Patch::Absent => Some(caller.user_id),
            Patch::Null => {
                errors.push(validation::null("user"));
                None
            }
            Patch::Value(u) => Some(u),
        };
        let source = required(&mut errors, "source", input.source);
        let max_chars = input.identifier_limit.max_chars();
        let identifier = required(&mut errors, "identifier", input.identifier)
            .and_then(|i| errors.check(validation::text("identifier", &i, max_chars)));
        // The row identity the token is bound to, chosen before the INSERT so the create stays
        // one write (the pk is only known after it).
        let row_key = Uuid::new_v4();
        let access_token = self.seal_token(
            &mut errors,
            TokenKind::Access,
            input.access_token,
            row_key,
            user,
        );
        let refresh_token = self.seal_token(
            &mut errors,
            TokenKind::Refresh,
            input.refresh_token,
            row_key,
            user,
        );
        let expires = optional(input.expires);
        errors.into_result()?;
        let (Some(user), Some(source), Some(identifier)) = (user, source, identifier) else {
            unreachable!("missing values were reported as field errors");
        };
        // Existence: the source through the cache; the user is left to the insert's foreign
        // key and looked up only when something failed, so a warm create is one statement.
        let found = self.cached_source(source).await?;
        let source_row = match found {
            Some(found) => found,
            // Missing: report the user too if it is missing.
            None => self.report_missing(user, caller, source, None).await?,
        };
        // Uniqueness: the insert itself decides.
        let inserted = self
            .store
            .insert_connection_with(
                caller.user_id,
                user,
                source,
                identifier,
                SealedTokens {
                    row_key,
                    access: access_token.flatten(),
                    refresh: refresh_token.flatten(),
                },
                expires,
            )
            .await;
        match inserted {
            Ok(connection) => Ok(ConnectionWithSource {
                connection,
                source: source_row,
            }),
            // Existence wins over uniqueness: a missing user's link cannot be a duplicate.
            Err(Error::Conflict(rule)) => {
                if user != caller.user_id && !self.store.user_exists(user).await? {
                    return Err(Error::Validation(vec![validation::does_not_exist(
                        "user", user,
                    )]));
                }
                Err(Error::Conflict(rule))
            }
            // The user, or the cached source, is gone: the cache must not say otherwise.
            Err(e @ Error::Validation(_)) => {
                self.caches.sources.invalidate(&source);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Checks that the referenced user and source exist, reporting both at once.
    async fn existing(&self, user: i32, caller: &Principal, source: Uuid) -> Result<Source> {
        let found = self.cached_source(source).await?;
        self.report_missing(user, caller, source, found).await
    }

    /// `found` is the source as already read; the user is looked up unless it is the caller.
    async fn report_missing(
        &self,
        user: i32,
        caller: &Principal,
        source: Uuid,
        found: Option<Source>,
    ) -> Result<Source> {
        let mut errors = Errors::default();
        if user != caller.user_id && !self.store.user_exists(user).await? {
            errors.push(validation::does_not_exist("user", user));
        }
        if found.is_none() {
            errors.push(validation::does_not_exist("source", source));
        }
        errors.into_result()?;
        Ok(found.expect("checked above"))
    }

    /// `Some(None)` means "store no token"; the outer `None` means a field error was recorded.
    /// `user` is `None` only when a field error about it was recorded. Each kind of token has
    /// its own slot, so one never opens as the other.
    fn seal_token(
        &self,
        errors: &mut Errors,
        kind: TokenKind,
        token: Patch<String>,
        row_key: Uuid,
        user: Option<i32>,
    ) -> Option<Option<Vec<u8>>> {
        let field = match kind {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        };
        match token {
            Patch::Absent | Patch::Null => Some(None),
            Patch::Value(t) => errors
                .check(validation::secret(field, &t))
                .and(user)
                .map(|user| {
                    let slot = match kind {
                        TokenKind::Access => Slot::AccessToken { row_key, user },
                        TokenKind::Refresh => Slot::RefreshToken { row_key, user },
                    };
                    Some(self.keyring.seal(slot, &t))
                }),
        }
    }

    /// An update's token change, sealed: absent and null pass through; a value that fails
    /// validation records its field error and changes nothing.
    fn seal_change(
        &self,
        errors: &mut Errors,
        kind: TokenKind,
        change: Patch<String>,
        row_key: Uuid,
        user: i32,
    ) -> Patch<Vec<u8>> {
        match change {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            value => match self.seal_token(errors, kind, value, row_key, Some(user)) {
                Some(Some(sealed)) => Patch::Value(sealed),
                _ => Patch::Absent,
            },
        }
    }

    /// Opens a stored access token (for the service's own use; no API returns it).
    pub fn open_access_token(&self, token: &SealedToken) -> std::result::Result<String, OpenError> {
        let row_key = token.row_key.unwrap_or_default();
        let slot = Slot::AccessToken {
            row_key,
            user: token.user,
        };
        self.keyring.open(slot, &token.sealed).map(|o| o.plaintext)
    }

    /// Seals a consumer secret bound to the uuid its source will have.
    pub fn seal_consumer_secret(&self, source: Uuid, secret: &str) -> Vec<u8> {
        self.keyring.seal(Slot::ConsumerSecret { source }, secret)
    }

    /// A connection the caller may see; others' rows look absent.
    pub async fn connection(&self, caller: &Principal, pk: i32) -> Result<ConnectionWithSource> {
        let connection = self.visible(caller, pk).await?;
        self.with_source(connection).await
    }

    /// The connections of these pks the caller may see (one query for the rows, one for
    /// their sources); the others are simply absent, as if they did not exist.
    pub async fn connections_visible(
        &self,
        caller: &Principal,
        pks: &[i32],
    ) -> Result<HashMap<i32, ConnectionWithSource>> {
        let rows: Vec<Connection> = self
            .store
            .connections_by_pks(pks)
            .await?
            .into_iter()
            .filter(|c| Self::may_see(caller, c.user))
            .collect();
        let source_pks: Vec<Uuid> = rows.iter().map(|c| c.source).collect();
        let sources = self.sources_of(&source_pks).await?;
        Ok(rows
            .into_iter()
            .filter_map(|connection| {
                let source = sources.get(&connection.source)?.clone();
                Some((connection.pk, ConnectionWithSource { connection, source }))
            })
            .collect())
    }

    /// Committed changes of connections from now on (every instance's, on PostgreSQL).
    pub async fn connection_changes(
        &self,
    ) -> Result<tokio::sync::broadcast::Receiver<super::model::ConnectionChange>> {
        self.store.changes().await
    }

    /// Whether the caller may see a connection of `owner`: their own, or all with the view
    /// permission (the rule of every read, and of the events a subscriber receives).
    pub fn may_see(caller: &Principal, owner: i32) -> bool {
        owner == caller.user_id || caller.has(Permission::ViewConnection)
    }

    async fn visible(&self, caller: &Principal, pk: i32) -> Result<Connection> {
        match self.store.connection_by_pk(pk).await? {
            Some(c) if Self::may_see(caller, c.user) => Ok(c),
            _ => Err(Error::NotFound),
        }
    }

    async fn with_source(&self, connection: Connection) -> Result<ConnectionWithSource> {
        let source = self
            .cached_source(connection.source)
            .await?
            .ok_or_else(|| {
                Error::internal(format!("connection {} lost its source", connection.pk))
            })?;
        Ok(ConnectionWithSource { connection, source })
    }

    pub async fn update_connection(
        &self,
        caller: &Principal,
        pk: i32,
        changes: ConnectionChanges,
        kind: UpdateKind,
        mut errors: Errors,
    ) -> Result<ConnectionWithSource> {
        // Rows the caller cannot see look missing, whatever their permission: that reveals
        // nothing. Only for rows they can see does the change permission decide.
        let current = self.visible(caller, pk).await?;
        if !caller.has(Permission::ChangeConnection) {
            return Err(Error::Forbidden);
        }
        let identifier = match changes.identifier {
            Patch::Absent if kind == UpdateKind::Full => {
                errors.push(validation::required("identifier"));
                None
            }
            Patch::Absent => None,
            Patch::Null => {
                errors.push(validation::null("identifier"));
                None
            }
            Patch::Value(i) => errors.check(validation::text(
                "identifier",
                &i,
                changes.identifier_limit.max_chars(),
            )),
        };
        let source = match changes.source {
            Patch::Absent => None,
            Patch::Null => {
                errors.push(validation::null("source"));
                None
            }
            Patch::Value(s) => Some(s),
        };
        // A row from before row keys gets one with its next token.
        let row_key = current.row_key.unwrap_or_else(Uuid::new_v4);
        let access_token = self.seal_change(
            &mut errors,
            TokenKind::Access,
            changes.access_token,
            row_key,
            current.user,
        );
        let refresh_token = self.seal_change(
            &mut errors,
            TokenKind::Refresh,
            changes.refresh_token,
            row_key,
            current.user,
        );
        let new_token =
            matches!(access_token, Patch::Value(_)) || matches!(refresh_token, Patch::Value(_));
        errors.into_result()?;
        // The response's source is read before the write: once the write has committed, a
        // failed read must not answer "unavailable" (as if nothing was written).
        let source_row = match source {
            Some(source) if source != current.source => {
                self.existing(current.user, caller, source).await?
            }
            _ => self.with_source(current.clone()).await?.source,
        };
        let updated = self
            .store
            .update_connection(
                caller.user_id,
                pk,
                ConnectionUpdate {
                    source,
                    identifier,
                    row_key: new_token.then_some(row_key),
                    access_token,
                    refresh_token,
                    expires: changes.expires,
                },
            )
            .await?
            .ok_or(Error::NotFound)?;
        Ok(ConnectionWithSource {
            connection: updated,
            source: source_row,
        })
    }

    pub async fn delete_connection(&self, caller: &Principal, pk: i32) -> Result<()> {
        // As for updates: rows the caller cannot see look missing, whatever their permission.
        let row = self.visible(caller, pk).await?;
        if row.user != caller.user_id && !caller.has(Permission::DeleteConnection) {
            return Err(Error::Forbidden);
        }
        if self.store.delete_connection(caller.user_id, pk).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// The REST list's filters, read as django-filter and DRF's SearchFilter read them: an
    /// empty value is no filter, a NUL character is a 400, a `user` that is no user is a 400.
    /// That last answer is given only to callers who may see every row: to anyone else a
    /// missing user looks like an existing one whose rows they cannot see (an empty list),
    /// so the filter tells nobody which users exist.
    pub async fn list_filter(
        &self,
        caller: &Principal,
        query: ListQuery<'_>,
    ) -> Result<ConnectionFilter> {
        let mut errors = Errors::default();
        let mut filter = ConnectionFilter::default();
        // Django's ModelChoiceField: no stripping, but Python's int() ignores surrounding spaces.
        if let Some(raw) = query.user.filter(|u| !u.is_empty()) {
            let sees_all = caller.has(Permission::ViewConnection);
            match raw.trim().parse::<i32>() {
                // Who sees only their own rows gets them or nothing, without a lookup.
                Ok(id) if !sees_all || id == caller.user_id => filter.user = Some(id),
                Ok(id) if self.store.user_exists(id).await? => filter.user = Some(id),
                _ => errors.push(validation::invalid_choice("user")),
            }
        }
        // Django's CharField strips surrounding whitespace before anything else.
        if let Some(slug) = query.source_slug.map(str::trim).filter(|s| !s.is_empty()) {
            if slug.contains('\0') {
                errors.push(validation::null_characters("source__slug"));
            } else {
                filter.source_slug = Some(slug.to_owned());
            }
        }
        errors.into_result()?;
        // The search filter runs after the filter set, so its error comes only alone.
        if let Some(search) = query.search {
            if search.contains('\0') {
                return Err(Error::Validation(vec![validation::null_characters(
                    super::error::WHOLE_REQUEST,
                )]));
            }
            filter.search = search::terms(search);
        }
        Ok(filter)
    }

    /// Rows a caller may list: everyone's with the view permission, else their own.
    fn owner_scope(caller: &Principal) -> Option<i32> {
        (!caller.has(Permission::ViewConnection)).then_some(caller.user_id)
    }

    pub async fn count_connections(
        &self,
        caller: &Principal,
        filter: &ConnectionFilter,
    ) -> Result<u64> {
        self.store
            .count_connections(Self::owner_scope(caller), filter)
            .await
    }

    pub async fn connections_page(
        &self,
        caller: &Principal,
        filter: &ConnectionFilter,
        sorts: &[Sort],
        offset: u64,
        limit: u64,
    ) -> Result<Vec<Connection>> {
        self.store
            .connections_by_offset(Self::owner_scope(caller), filter, sorts, offset, limit)
            .await
    }

    /// A keyset page; `None` when the cursor does not fit the ordering.
    pub async fn connections_keyset(
        &self,
        caller: &Principal,
        filter: &ConnectionFilter,
        page: &KeysetPage,
    ) -> Result<Option<(Vec<Connection>, bool)>> {
        self.store
            .connections_by_keyset(Self::owner_scope(caller), filter, page)
            .await
    }

    pub fn cursor_for(sort: Sort, connection: &Connection) -> Cursor {
        crate::storage::cursor_for(sort.key, connection)
    }

    /// The sources of a page of connections, in one batch.
    pub async fn sources_of(&self, pks: &[Uuid]) -> Result<HashMap<Uuid, Source>> {
        self.store.sources_by_pk(pks).await
    }

    /// Sources hold no secrets in their API form: every authenticated caller may read them.
    pub async fn sources(&self, _caller: &Principal) -> Result<Vec<Source>> {
        self.store.list_sources().await
    }

    pub async fn source(
        &self,
        _caller: &Principal,
        pk: Option<Uuid>,
        slug: Option<&str>,
    ) -> Result<Option<Source>> {
        match (pk, slug) {
            (Some(pk), _) => self.store.source_by_pk(pk).await,
            // As the list's slug filter: PostgreSQL cannot even compare a NUL.
            (None, Some(slug)) if slug.contains('\0') => {
                Err(Error::Validation(vec![validation::null_characters("slug")]))
            }
            (None, Some(slug)) => self.store.source_by_slug(slug).await,
            (None, None) => Ok(None),
        }
    }

    pub async fn audit_events(
        &self,
        caller: &Principal,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<AuditEvent>, u64)> {
        if !caller.is_superuser {
            return Err(Error::Forbidden);
        }
        self.store.audit_events(offset, limit).await
    }
}

/// What an `Authorization` header presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No header, or authentik's "Bearer" with no key: no credentials at all.
    None,
    /// A scheme other than Bearer.
    Malformed,
    /// An API key.
    Key(&'a str),
    /// A JWT-shaped value: an OpenID Connect access token, never looked up as an API key.
    Jwt(&'a str),
}

impl<'a> Credential<'a> {
    pub fn parse(authorization: Option<&'a str>) -> Self {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Credential::None;
        };
        let (scheme, key) = header.split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Credential::Malformed;
        }
        match key.trim() {
            "" => Credential::None,
            jwt if crate::oidc::looks_like_jwt(jwt) => Credential::Jwt(jwt),
            key => Credential::Key(key),
        }
    }
}

pub(crate) fn refuse(problem: CredentialProblem) -> Error {
    tracing::info!(reason = ?problem, "credentials refused");
    Error::InvalidCredentials(problem)
}

fn required<T>(errors: &mut Errors, field: &'static str, value: Patch<T>) -> Option<T> {
    match value {
        Patch::Absent => {
            errors.push(validation::required(field));
            None
        }
        Patch::Null => {
            errors.push(validation::null(field));
            None
        }
        Patch::Value(v) => Some(v),
    }
}

fn optional(value: Patch<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match value {
        Patch::Value(v) => Some(v),
        Patch::Absent | Patch::Null => None,
    }
}
