//! Command line and environment configuration (every flag has an `OAUTHLINK_*` variable).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::oidc::{IssuerSettings, OidcSettings, UserClaim};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://oauthlink.sqlite3?mode=rwc";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "oauthlink",
    version,
    about = "Links users to their accounts at external OAuth sources."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    /// Database URL: `sqlite://FILE?mode=rwc` (created on first start) or `postgres://…`.
    #[arg(long, env = "OAUTHLINK_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// 64 hex characters that seal stored access tokens and consumer secrets (the current
    /// key). With SQLite and none given, the key file is used: generated beside the database
    /// (mode 0600) for a database that holds nothing sealed yet.
    #[arg(
        long,
        env = "OAUTHLINK_SECRET_KEY",
        hide_env_values = true,
        global = true,
        value_parser = secret
    )]
    pub secret_key: Option<SecretString>,

    /// Earlier keys, comma-separated: they still open the values they sealed until
    /// `oauthlink rekey` has re-sealed them with the current key.
    #[arg(
        long,
        env = "OAUTHLINK_SECRET_KEYS_OLD",
        hide_env_values = true,
        global = true,
        value_delimiter = ',',
        value_parser = secret
    )]
    pub secret_keys_old: Vec<SecretString>,

    /// The key file when no secret key is given (SQLite only): the current key on its first
    /// line, earlier keys on the next ones. Default: the database file's path with `.key`
    /// instead of its extension.
    #[arg(long, env = "OAUTHLINK_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<PathBuf>,

    /// Apply pending migrations at start.
    #[arg(long, env = "OAUTHLINK_AUTO_MIGRATE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub auto_migrate: bool,

    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `oauthlink=debug`.
    #[arg(
        long,
        env = "OAUTHLINK_LOG",
        default_value = "info,sea_orm_migration=warn",
        global = true
    )]
    pub log: String,

    /// Log format.
    #[arg(long, env = "OAUTHLINK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,

    /// Seconds a request waits for the database before it is answered "unavailable".
    #[arg(
        long,
        env = "OAUTHLINK_DATABASE_TIMEOUT_SECONDS",
        default_value_t = 3,
        global = true
    )]
    pub database_timeout_seconds: u64,

    /// Largest database pool.
    #[arg(
        long,
        env = "OAUTHLINK_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub database_max_connections: u32,

    /// Token vault: an access token expiring within this many seconds is refreshed at its
    /// source before it is handed out.
    #[arg(
        long,
        env = "OAUTHLINK_TOKEN_REFRESH_MARGIN_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub token_refresh_margin_seconds: u64,

    /// Token vault: seconds to connect to a source's token endpoint.
    #[arg(
        long,
        env = "OAUTHLINK_TOKEN_REFRESH_CONNECT_TIMEOUT_SECONDS",
        default_value_t = 3,
        global = true
    )]
    pub token_refresh_connect_timeout_seconds: u64,

    /// Token vault: seconds a refresh at a source's token endpoint may take in all (below
    /// the GraphQL query deadline, so a query gets the typed error, not the deadline's).
    #[arg(
        long,
        env = "OAUTHLINK_TOKEN_REFRESH_TIMEOUT_SECONDS",
        default_value_t = 8,
        global = true
    )]
    pub token_refresh_timeout_seconds: u64,

    /// Token vault: seconds a reader waits for another instance's (or request's) refresh of
    /// the same connection before it is answered PROVIDER_UNAVAILABLE (reason `busy`).
    /// Should exceed the refresh timeout.
    #[arg(
        long,
        env = "OAUTHLINK_TOKEN_REFRESH_WAIT_SECONDS",
        default_value_t = 20,
        global = true
    )]
    pub token_refresh_wait_seconds: u64,
}

impl Config {
    /// The token vault's settings.
    pub fn vault_options(&self) -> crate::domain::vault::VaultOptions {
        use std::time::Duration;
        crate::domain::vault::VaultOptions {
            margin: Duration::from_secs(self.token_refresh_margin_seconds),
            timeouts: crate::token_endpoint::Timeouts {
                connect: Duration::from_secs(self.token_refresh_connect_timeout_seconds.max(1)),
                total: Duration::from_secs(self.token_refresh_timeout_seconds.max(1)),
            },
            wait: Duration::from_secs(self.token_refresh_wait_seconds.max(1)),
        }
    }
}

/// A secret from the command line or environment: held so that `Debug` never shows it.
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// The shortest bootstrap token accepted: it is a superuser's API key.
pub const BOOTSTRAP_TOKEN_MIN_CHARS: usize = 32;

impl ServeArgs {
    /// The allow-list of `OAUTHLINK_GRAPHQL_OPERATIONS`, read and checked at start.
    pub fn graphql_manifest(&self) -> anyhow::Result<Option<crate::graphql::persisted::Manifest>> {
        let Some(path) = &self.graphql_operations else {
            return Ok(None);
        };
        let manifest =
            crate::graphql::persisted::Manifest::load(path, self.graphql_allow_introspection)?;
        tracing::info!(operations = manifest.len(), path = %path.display(), "GraphQL allow-list mode");
        Ok(Some(manifest))
    }

    /// Refuses a bootstrap token shorter than the minimum. Checked at start rather than by
    /// the argument parser, whose error message would print the value.
    pub fn check_bootstrap_token(&self) -> anyhow::Result<()> {
        use secrecy::ExposeSecret;
        match &self.bootstrap_token {
            Some(t) if t.expose_secret().chars().count() < BOOTSTRAP_TOKEN_MIN_CHARS => {
                anyhow::bail!(
                    "OAUTHLINK_BOOTSTRAP_TOKEN must be at least {BOOTSTRAP_TOKEN_MIN_CHARS} \
                     characters (e.g. `openssl rand -hex 24`)"
                )
            }
            _ => Ok(()),
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "OAUTHLINK_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,

    /// Key of the first superuser's API token, used on the first start only. Without it a key
    /// is generated and printed once.
    /// At least 32 characters.
    #[arg(long, env = "OAUTHLINK_BOOTSTRAP_TOKEN", hide_env_values = true, value_parser = secret)]
    pub bootstrap_token: Option<SecretString>,

    /// Shape of REST responses: `documented` (authentik's reference page, nested `source`) or
    /// `current` (authentik 2025+: `source` uuid plus `source_obj`).
    #[arg(long, env = "OAUTHLINK_REST_SHAPE", value_enum, default_value_t = RestShape::Documented)]
    pub rest_shape: RestShape,

    /// Largest request body in bytes.
    #[arg(long, env = "OAUTHLINK_BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,

    /// Browser origins allowed to call the APIs (CORS), comma-separated, e.g.
    /// `https://studio.apollographql.com`. Empty (the default): no cross-origin access.
    #[arg(
        long,
        env = "OAUTHLINK_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// Failed authentications allowed per client address and minute; beyond it every attempt
    /// from that address gets 429 / RATE_LIMITED until the allowance refills. 0 disables.
    #[arg(long, env = "OAUTHLINK_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    pub auth_failures_per_minute: u32,

    /// Reverse proxies (CIDRs or addresses, comma-separated) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored.
    #[arg(
        long,
        env = "OAUTHLINK_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub trusted_proxies: Vec<String>,

    /// Seconds a connection has to deliver a complete request head (also bounds how long it
    /// may wait idle for its next request).
    #[arg(
        long,
        env = "OAUTHLINK_HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub header_read_timeout_seconds: u64,

    /// Seconds from a request's head to its complete body (408 beyond).
    #[arg(
        long,
        env = "OAUTHLINK_BODY_READ_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub body_read_timeout_seconds: u64,

    /// Seconds an idle keep-alive connection is kept.
    #[arg(
        long,
        env = "OAUTHLINK_KEEP_ALIVE_TIMEOUT_SECONDS",
        default_value_t = 5
    )]
    pub keep_alive_timeout_seconds: u64,

    /// Largest request head in bytes (request line and headers; 431 beyond).
    #[arg(long, env = "OAUTHLINK_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Connections served at once (more wait in the listen backlog).
    #[arg(long, env = "OAUTHLINK_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// GraphQL websockets (subscriptions) open at once; each also takes one of the
    /// `OAUTHLINK_MAX_CONNECTIONS` slots while it lives.
    #[arg(long, env = "OAUTHLINK_MAX_WEBSOCKETS", default_value_t = 256)]
    pub max_websockets: usize,

    /// Subscriptions running at once on one websocket.
    #[arg(
        long,
        env = "OAUTHLINK_MAX_SUBSCRIPTIONS_PER_WEBSOCKET",
        default_value_t = 16
    )]
    pub max_subscriptions_per_websocket: usize,

    /// Allow-list mode: a persisted-query manifest (Apollo's
    /// `apollo-persisted-query-manifest` or relay-compiler's `{"<id>": "<text>"}`); any other
    /// GraphQL document is refused with OPERATION_NOT_ALLOWED.
    #[arg(long, env = "OAUTHLINK_GRAPHQL_OPERATIONS")]
    pub graphql_operations: Option<std::path::PathBuf>,

    /// In allow-list mode, also run unlisted introspection (documents selecting only
    /// `__schema`, `__type` and `__typename`), e.g. for GraphiQL.
    #[arg(long, env = "OAUTHLINK_GRAPHQL_ALLOW_INTROSPECTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub graphql_allow_introspection: bool,

    /// Seconds a GraphQL query may execute before it is stopped.
    #[arg(long, env = "OAUTHLINK_REQUEST_TIMEOUT_SECONDS", default_value_t = 10)]
    pub request_timeout_seconds: u64,

    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "OAUTHLINK_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// OpenID Connect issuers whose access tokens are accepted beside API keys. Either the
/// simple form (`OAUTHLINK_OIDC_ISSUER` plus the settings below, shared by every issuer
/// listed), or `OAUTHLINK_OIDC_ISSUERS` with settings per issuer; not both.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OidcArgs {
    /// Issuer URLs, comma-separated, spelled as the tokens' `iss` (each one's JWKS is found
    /// through `ISSUER/.well-known/openid-configuration`). https:// (http:// on loopback).
    #[arg(long, env = "OAUTHLINK_OIDC_ISSUER", value_delimiter = ',')]
    pub oidc_issuer: Vec<String>,

    /// Accepted `aud` values, comma-separated. Required with an issuer.
    #[arg(long, env = "OAUTHLINK_OIDC_AUDIENCE", value_delimiter = ',')]
    pub oidc_audience: Vec<String>,

    /// The claim naming the user; its value is the user's external subject at the issuer
    /// (`oauthlink user subject`).
    #[arg(long, env = "OAUTHLINK_OIDC_USER_CLAIM", value_enum, default_value_t = UserClaim::Sub)]
    pub oidc_user_claim: UserClaim,

    /// Create a user for an unknown subject on its first valid token.
    #[arg(long, env = "OAUTHLINK_OIDC_AUTO_CREATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub oidc_auto_create: bool,

    /// The claim carrying permissions or groups (e.g. `groups`). Set, the token's claim
    /// decides the caller's permissions instead of the stored grants.
    #[arg(long, env = "OAUTHLINK_OIDC_PERMISSIONS_CLAIM")]
    pub oidc_permissions_claim: Option<String>,

    /// `VALUE=CODENAME` pairs, comma-separated (a value may repeat): what each value of the
    /// permissions claim grants. Empty: the claim's values are permission codenames.
    #[arg(long, env = "OAUTHLINK_OIDC_PERMISSION_MAP", value_delimiter = ',')]
    pub oidc_permission_map: Vec<String>,

    /// Per-issuer settings as a JSON array, instead of the variables above:
    /// `[{"issuer": "...", "audience": ["..."], "user_claim": "sub", "auto_create": false,
    /// "permissions_claim": "groups", "permission_map": {"admins": ["add_oauthsource"]}}]`.
    #[arg(long, env = "OAUTHLINK_OIDC_ISSUERS")]
    pub oidc_issuers: Option<String>,

    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[arg(long, env = "OAUTHLINK_OIDC_LEEWAY_SECONDS", default_value_t = 30)]
    pub oidc_leeway_seconds: u64,

    /// A token with an unknown `kid` refetches its issuer's JWKS at most once per this many
    /// seconds.
    #[arg(
        long,
        env = "OAUTHLINK_OIDC_JWKS_MIN_REFETCH_SECONDS",
        default_value_t = 30
    )]
    pub oidc_jwks_min_refetch_seconds: u64,

    /// Cached keys older than this many seconds are re-read when a token arrives (a key the
    /// issuer dropped stops working by then).
    #[arg(
        long,
        env = "OAUTHLINK_OIDC_JWKS_MAX_AGE_SECONDS",
        default_value_t = 600
    )]
    pub oidc_jwks_max_age_seconds: u64,
}

impl OidcArgs {
    /// The issuers and their settings; an empty list when none is configured.
    pub fn settings(&self) -> anyhow::Result<OidcSettings> {
        let listed: Vec<&str> = self
            .oidc_issuer
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let issuers = match self.oidc_issuers.as_deref().map(str::trim) {
            Some(json) if !json.is_empty() => {
                anyhow::ensure!(
                    listed.is_empty(),
                    "set OAUTHLINK_OIDC_ISSUERS or OAUTHLINK_OIDC_ISSUER, not both"
                );
                serde_json::from_str::<Vec<IssuerSettings>>(json)
                    .map_err(|e| anyhow::anyhow!("OAUTHLINK_OIDC_ISSUERS: {e}"))?
            }
            _ => {
                let audience: Vec<String> = self
                    .oidc_audience
                    .iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                anyhow::ensure!(
                    listed.is_empty() || !audience.is_empty(),
                    "OAUTHLINK_OIDC_AUDIENCE is required when OAUTHLINK_OIDC_ISSUER is set"
                );
                let mut permission_map = std::collections::BTreeMap::<String, Vec<String>>::new();
                for pair in self.oidc_permission_map.iter().map(|p| p.trim()) {
                    if pair.is_empty() {
                        continue;
                    }
                    let (value, codename) = pair.rsplit_once('=').ok_or_else(|| {
                        anyhow::anyhow!(
                            "OAUTHLINK_OIDC_PERMISSION_MAP: {pair:?} is not VALUE=CODENAME"
                        )
                    })?;
                    permission_map
                        .entry(value.trim().to_owned())
                        .or_default()
                        .push(codename.trim().to_owned());
                }
                listed
                    .iter()
                    .map(|issuer| IssuerSettings {
                        issuer: (*issuer).to_owned(),
                        audience: audience.clone(),
                        user_claim: self.oidc_user_claim,
                        auto_create: self.oidc_auto_create,
                        permissions_claim: self
                            .oidc_permissions_claim
                            .clone()
                            .filter(|c| !c.trim().is_empty()),
                        permission_map: permission_map.clone(),
                    })
                    .collect()
            }
        };
        Ok(OidcSettings {
            issuers,
            leeway: Duration::from_secs(self.oidc_leeway_seconds),
            jwks_min_refetch: Duration::from_secs(self.oidc_jwks_min_refetch_seconds),
            jwks_max_age: Duration::from_secs(self.oidc_jwks_max_age_seconds),
            ..OidcSettings::default()
        })
    }
}

impl ServeArgs {
    /// The serve settings from the environment alone (when no subcommand is given).
    pub fn from_env() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["oauthlink"]).serve
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestShape {
    Documented,
    Current,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Run the service (the default).
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage sources.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Re-seal every stored secret with the current key (online, in batches; a rerun
    /// continues). Prints counts; fails if a value does not open.
    Rekey {
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u64,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Create a user; prints its integer pk.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long)]
        superuser: bool,
    },
    /// Grant permissions (codenames such as `add_useroauthsourceconnection`).
    Grant {
        #[arg(long)]
        username: String,
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// Take permissions back.
    Revoke {
        #[arg(long)]
        username: String,
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// Deactivate a user: their tokens stop working.
    Deactivate {
        #[arg(long)]
        username: String,
    },
    /// Show a user's external subjects (OpenID Connect) at every issuer, as `ISSUER<TAB>SUBJECT`
    /// lines; or link (`--set`) or unlink (`--clear`) the one at an issuer.
    Subject {
        #[arg(long)]
        username: String,
        /// The issuer (default: OAUTHLINK_OIDC_ISSUER, when it names exactly one).
        #[arg(long, env = "OAUTHLINK_OIDC_ISSUER")]
        issuer: Option<String>,
        /// The subject: the value of the issuer's user claim (`sub` by default).
        #[arg(long, conflicts_with = "clear")]
        set: Option<String>,
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Create an API token; prints the key (shown only this once).
    Create {
        #[arg(long)]
        username: String,
        /// Unique name of the token (default: generated).
        #[arg(long)]
        identifier: Option<String>,
        /// Expiry, RFC 3339 (default: never).
        #[arg(long)]
        expires: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Revoke (delete) an API token by its identifier.
    Revoke {
        #[arg(long)]
        identifier: String,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum SourceCommand {
    /// Create an OAuth source; prints its uuid.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: String,
        /// Provider type, e.g. github, google, entraid, openidconnect.
        #[arg(long, default_value = "openidconnect")]
        provider_type: String,
        #[arg(long)]
        authorization_url: Option<String>,
        /// The token endpoint (refresh grant of the token vault): http(s) only.
        #[arg(long)]
        access_token_url: Option<String>,
        /// How the token endpoint authenticates the client: `client_secret_basic` (default)
        /// or `client_secret_post`.
        #[arg(long, default_value = "client_secret_basic")]
        token_auth_method: String,
        #[arg(long)]
        profile_url: Option<String>,
        #[arg(long, default_value = "")]
        consumer_key: String,
        /// Sealed at rest; never shown again.
        #[arg(long, env = "OAUTHLINK_CONSUMER_SECRET", hide_env_values = true, value_parser = secret)]
        consumer_secret: Option<SecretString>,
        #[arg(long, default_value = "any")]
        policy_engine_mode: String,
        #[arg(long, default_value = "identifier")]
        user_matching_mode: String,
        #[arg(long)]
        disabled: bool,
    },
    /// Change what the token vault's refresh grant uses (the source's token endpoint, its
    /// client authentication and credentials); options left out keep their value.
    Update {
        /// The source to change.
        #[arg(long)]
        slug: String,
        /// The token endpoint: http(s) only.
        #[arg(long)]
        access_token_url: Option<String>,
        /// `client_secret_basic` or `client_secret_post`.
        #[arg(long)]
        token_auth_method: Option<String>,
        #[arg(long)]
        consumer_key: Option<String>,
        /// Sealed at rest; never shown again.
        #[arg(long, env = "OAUTHLINK_CONSUMER_SECRET", hide_env_values = true, value_parser = secret)]
        consumer_secret: Option<SecretString>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_secret() {
        let key = "ab".repeat(32);
        let old = "cd".repeat(32);
        let token = "bootstrap-token-0123456789abcdef0123456789";
        let cli = Cli::try_parse_from([
            "oauthlink",
            "--secret-key",
            &key,
            "--secret-keys-old",
            &old,
            "serve",
            "--bootstrap-token",
            token,
        ])
        .unwrap();
        let source = Cli::try_parse_from([
            "oauthlink",
            "source",
            "create",
            "--name",
            "n",
            "--slug",
            "s",
            "--consumer-secret",
            "consumer-secret-value",
        ])
        .unwrap();
        let shown = format!("{cli:?} {:?} {source:?}", cli.config);
        for secret in [key.as_str(), old.as_str(), token, "consumer-secret-value"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        // The values are there, only not shown.
        use secrecy::ExposeSecret;
        let Some(Command::Serve(serve)) = cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.bootstrap_token.unwrap().expose_secret(), token);
        assert_eq!(cli.config.secret_keys_old[0].expose_secret(), old);
    }

    #[test]
    fn short_bootstrap_tokens_are_refused() {
        let serve = |token: &str| {
            let cli = Cli::try_parse_from(["oauthlink", "serve", "--bootstrap-token", token]);
            let Some(Command::Serve(serve)) = cli.unwrap().command else {
                panic!("serve")
            };
            serve
        };
        let err = serve(&"é".repeat(31)).check_bootstrap_token().unwrap_err();
        assert!(err.to_string().contains("at least 32 characters"), "{err}");
        assert!(!err.to_string().contains("é"));
        assert!(serve(&"é".repeat(32)).check_bootstrap_token().is_ok());
        let none = Cli::try_parse_from(["oauthlink", "serve"]).unwrap();
        let Some(Command::Serve(none)) = none.command else {
            panic!("serve")
        };
        assert!(none.check_bootstrap_token().is_ok());
    }

    #[test]
    fn oidc_settings_from_the_simple_and_the_json_form() {
        let serve = |args: &[&str]| {
            let mut all = vec!["oauthlink", "serve"];
            all.extend_from_slice(args);
            let Some(Command::Serve(serve)) = Cli::try_parse_from(all).unwrap().command else {
                panic!("serve")
            };
            serve.oidc.settings()
        };
        assert!(serve(&[]).unwrap().issuers.is_empty());
        let simple = serve(&[
            "--oidc-issuer",
            "https://a.example,https://b.example",
            "--oidc-audience",
            "api",
            "--oidc-permissions-claim",
            "groups",
            "--oidc-permission-map",
            "ops=add_oauthsource,ops=view_oauthsource,viewers=view_oauthsource",
            "--oidc-leeway-seconds",
            "7",
        ])
        .unwrap();
        assert_eq!(simple.issuers.len(), 2);
        assert_eq!(simple.issuers[1].issuer, "https://b.example");
        assert_eq!(simple.issuers[0].audience, ["api"]);
        assert_eq!(
            simple.issuers[0].permission_map["ops"],
            ["add_oauthsource", "view_oauthsource"]
        );
        assert_eq!(simple.leeway, Duration::from_secs(7));
        assert!(!simple.issuers[0].auto_create, "off by default");
        // An issuer needs an audience; a map entry needs its `=`.
        let err = serve(&["--oidc-issuer", "https://a.example"]).unwrap_err();
        assert!(err.to_string().contains("OAUTHLINK_OIDC_AUDIENCE"), "{err}");
        assert!(
            serve(&[
                "--oidc-issuer",
                "https://a.example",
                "--oidc-audience",
                "api",
                "--oidc-permission-map",
                "ops"
            ])
            .is_err()
        );
        let json = r#"[{"issuer": "https://a.example", "audience": ["api"], "user_claim": "email",
            "auto_create": true, "permissions_claim": "roles", "permission_map": {"r": ["view_oauthsource"]}}]"#;
        let per_issuer = serve(&["--oidc-issuers", json]).unwrap();
        assert_eq!(per_issuer.issuers[0].user_claim, UserClaim::Email);
        assert!(per_issuer.issuers[0].auto_create);
        // Both forms at once, or an unknown field, are refused.
        assert!(serve(&["--oidc-issuers", json, "--oidc-issuer", "https://b.example"]).is_err());
        assert!(
            serve(&[
                "--oidc-issuers",
                r#"[{"issuer": "x", "audience": [], "typo": 1}]"#
            ])
            .is_err()
        );
    }
}
