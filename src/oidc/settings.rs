//! What an operator configures per issuer (see `config::OidcArgs` for the variables).
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The claim that names the user: its value is the user's external subject at the issuer
/// (stored per issuer, set by `oauthlink user subject` or by auto-creation). A local user is
/// never matched by username or e-mail alone: whoever can choose their name at the IdP
/// could otherwise take over the local user of that name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum UserClaim {
    #[default]
    Sub,
    PreferredUsername,
    Email,
}

impl UserClaim {
    pub fn name(self) -> &'static str {
        match self {
            UserClaim::Sub => "sub",
            UserClaim::PreferredUsername => "preferred_username",
            UserClaim::Email => "email",
        }
    }
}

/// One trusted issuer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// Exactly as the tokens' `iss` and the discovery document's `issuer` spell it.
    pub issuer: String,
    /// Accepted `aud` values (one must be in the token's `aud`).
    pub audience: Vec<String>,
    #[serde(default)]
    pub user_claim: UserClaim,
    /// Unknown subjects get a user on first use (off: they are refused).
    #[serde(default)]
    pub auto_create: bool,
    /// The claim listing the caller's permissions or groups (a JSON array of strings, or a
    /// space-separated string like `scope`). Set: permissions come from the token, not from
    /// the stored grants. Unset (the default): the stored user's grants, as for API keys.
    #[serde(default)]
    pub permissions_claim: Option<String>,
    /// Claim value -> permission codenames. Empty: the claim's values are codenames
    /// themselves. Values that map to nothing grant nothing.
    #[serde(default)]
    pub permission_map: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuers: Vec<IssuerSettings>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// An unknown `kid` refetches the issuer's JWKS at most once per this interval.
    pub jwks_min_refetch: Duration,
    /// Keys are re-read when a token arrives and the set is older than this (a key the
    /// issuer dropped stops working within it).
    pub jwks_max_age: Duration,
    /// Each request to an issuer (discovery, JWKS) gives up after this.
    pub http_timeout: Duration,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            issuers: Vec::new(),
            leeway: Duration::from_secs(30),
            jwks_min_refetch: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(600),
            http_timeout: Duration::from_secs(5),
        }
    }
}
