//! Command line and environment configuration (every flag has an `OAUTHLINK_*` variable).
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

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
        #[arg(long)]
        access_token_url: Option<String>,
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
}
