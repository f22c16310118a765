//! OpenID Connect access tokens as credentials: a JWT from a configured issuer, signed with
//! one of its published keys (RS*, PS*, ES256/384, EdDSA; never `none` or HS*), for a
//! configured audience, inside its validity window (with leeway), names a user through one
//! claim. Validation is `jsonwebtoken`'s; this module picks the issuer and key and turns the
//! verified claims into what the service needs. It never touches the database.
mod keys;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

pub use settings::{IssuerSettings, OidcSettings, UserClaim};

use crate::domain::error::CredentialProblem;
use crate::domain::permission::Permission;

/// The signature algorithms accepted, all asymmetric.
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// Longest subject stored (a longer claim value is refused).
pub const MAX_SUBJECT_CHARS: usize = 255;
/// Values of the permissions claim looked at, at most.
const MAX_PERMISSION_VALUES: usize = 256;
/// Longest username given to an auto-created user (Django's limit).
const MAX_USERNAME_CHARS: usize = 150;

/// Whether a bearer value is shaped like a JWS compact serialization (three non-empty
/// base64url segments). Such a value is only ever checked as a JWT, anything else only as an
/// API key: neither falls back to the other.
pub fn looks_like_jwt(value: &str) -> bool {
    let mut segments = 0;
    for segment in value.split('.') {
        segments += 1;
        if segment.is_empty()
            || !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    segments == 3
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub issuer: String,
    /// The user claim's value: the user's external subject at `issuer`.
    pub subject: String,
    /// `exp` plus the leeway: when the token stops being accepted.
    pub valid_until: DateTime<Utc>,
    /// From the permissions claim, when the issuer has one configured.
    pub permissions: Option<Vec<Permission>>,
    /// Present when unknown subjects get a user on first use.
    pub new_user: Option<NewUserProfile>,
}

/// What an auto-created user is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUserProfile {
    pub username: String,
    pub name: String,
    pub email: String,
}

struct Issuer {
    settings: IssuerSettings,
    permission_map: HashMap<String, Vec<Permission>>,
    keys: keys::KeySet,
}

pub struct Verifier {
    issuers: Vec<Issuer>,
    leeway: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.issuers().collect::<Vec<_>>())
            .finish()
    }
}

impl Verifier {
    /// Checks the settings; fetches nothing (see `warm_up`).
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.http_timeout)
            .timeout(settings.http_timeout)
            .user_agent(concat!("oauthlink/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut issuers = Vec::new();
        for issuer in settings.issuers {
            check_issuer_url(&issuer.issuer)?;
            anyhow::ensure!(
                issuer.audience.iter().any(|a| !a.trim().is_empty()),
                "issuer {}: an audience is required (OAUTHLINK_OIDC_AUDIENCE)",
                issuer.issuer
            );
            anyhow::ensure!(
                issuers
                    .iter()
                    .all(|i: &Issuer| i.settings.issuer != issuer.issuer),
                "issuer {} is configured twice",
                issuer.issuer
            );
            let mut permission_map = HashMap::new();
            for (value, codenames) in &issuer.permission_map {
                let permissions = codenames
                    .iter()
                    .map(|c| c.parse::<Permission>().map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                permission_map.insert(value.clone(), permissions);
            }
            anyhow::ensure!(
                permission_map.is_empty() || issuer.permissions_claim.is_some(),
                "issuer {}: a permission map needs a permissions claim",
                issuer.issuer
            );
            issuers.push(Issuer {
                keys: keys::KeySet::new(
                    issuer.issuer.clone(),
                    http.clone(),
                    settings.jwks_min_refetch,
                    settings.jwks_max_age,
                ),
                permission_map,
                settings: issuer,
            });
        }
        Ok(Verifier {
            issuers,
            leeway: settings.leeway,
        })
    }

    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.settings.issuer.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Fetches every issuer's keys once, in the background. An issuer that is down is logged
    /// and tried again when a token needs its keys: it does not stop the service.
    pub fn warm_up(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            for issuer in &this.issuers {
                issuer.keys.warm_up().await;
            }
        });
    }

    /// Validates `token` (see the module comment). The reason of a refusal is for the log.
    pub async fn verify(&self, token: &str) -> Result<Verified, CredentialProblem> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| CredentialProblem::BadToken)?;
        if !ALLOWED.contains(&header.alg) {
            return Err(CredentialProblem::DisallowedAlgorithm);
        }
        let kid = header.kid.as_deref().ok_or(CredentialProblem::UnknownKey)?;
        // The issuer is picked by the unverified `iss`; the signature check below uses that
        // issuer's keys only, and the validation checks `iss` again.
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| CredentialProblem::BadToken)?;
        let iss = unverified.get("iss").and_then(Value::as_str);
        let issuer = self
            .issuers
            .iter()
            .find(|i| Some(i.settings.issuer.as_str()) == iss)
            .ok_or(CredentialProblem::WrongIssuer)?;
        let key = issuer.keys.key(kid).await?;
        if key.alg.is_some_and(|alg| alg != header.alg)
            || !key.decoding.family().algorithms().contains(&header.alg)
        {
            return Err(CredentialProblem::DisallowedAlgorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.settings.issuer]);
        validation.set_audience(&issuer.settings.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| problem(e.kind()))?
            .claims;
        issuer.verified(&claims, self.leeway)
    }
}

impl Issuer {
    fn verified(
        &self,
        claims: &Map<String, Value>,
        leeway: Duration,
    ) -> Result<Verified, CredentialProblem> {
        let settings = &self.settings;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                // A NUL could never be stored (PostgreSQL refuses it): such a value is absent.
                .filter(|v| !v.is_empty() && !v.contains('\0'))
        };
        let subject = text(settings.user_claim.name())
            .filter(|s| s.chars().count() <= MAX_SUBJECT_CHARS)
            .ok_or(CredentialProblem::MissingUserClaim)?
            .to_owned();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(CredentialProblem::BadToken)?;
        let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        let valid_until = DateTime::from_timestamp(exp.saturating_add(leeway), 0)
            .ok_or(CredentialProblem::BadToken)?;
        let permissions = settings
            .permissions_claim
            .as_deref()
            .map(|claim| self.permissions(claims.get(claim)));
        let new_user = settings.auto_create.then(|| {
            let username = text("preferred_username")
                .or(text("email"))
                .unwrap_or(&subject);
            NewUserProfile {
                username: username.chars().take(MAX_USERNAME_CHARS).collect(),
                name: text("name").unwrap_or("").chars().take(150).collect(),
                email: text("email").unwrap_or("").chars().take(254).collect(),
            }
        });
        Ok(Verified {
            issuer: settings.issuer.clone(),
            subject,
            valid_until,
            permissions,
            new_user,
        })
    }

    /// The permissions a claim value grants: an array of strings or a space-separated string,
    /// mapped through the permission map (or read as codenames when there is none).
    fn permissions(&self, claim: Option<&Value>) -> Vec<Permission> {
        let values: Vec<&str> = match claim {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => s.split_whitespace().collect(),
            _ => Vec::new(),
        };
        let mut permissions: Vec<Permission> = values
            .into_iter()
            .take(MAX_PERMISSION_VALUES)
            .flat_map(|v| {
                if self.permission_map.is_empty() {
                    v.parse::<Permission>().ok().into_iter().collect()
                } else {
                    self.permission_map.get(v).cloned().unwrap_or_default()
                }
            })
            .collect();
        permissions.sort();
        permissions.dedup();
        permissions
    }
}

/// Why `jsonwebtoken` refused a token.
fn problem(kind: &ErrorKind) -> CredentialProblem {
    match kind {
        ErrorKind::ExpiredSignature => CredentialProblem::Expired,
        ErrorKind::ImmatureSignature => CredentialProblem::NotYetValid,
        ErrorKind::InvalidAudience => CredentialProblem::WrongAudience,
        ErrorKind::InvalidIssuer => CredentialProblem::WrongIssuer,
        ErrorKind::InvalidSignature => CredentialProblem::BadSignature,
        ErrorKind::InvalidAlgorithm => CredentialProblem::DisallowedAlgorithm,
        _ => CredentialProblem::BadToken,
    }
}

/// Issuers are reached over HTTPS; plain HTTP only on loopback (a local test issuer).
fn check_issuer_url(issuer: &str) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(issuer)
        .map_err(|e| anyhow::anyhow!("OpenID Connect issuer {issuer:?}: {e}"))?;
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        url.scheme() == "https" || (url.scheme() == "http" && loopback),
        "OpenID Connect issuer {issuer:?}: must be https:// (http:// only on loopback)"
    );
    anyhow::ensure!(
        url.query().is_none() && url.fragment().is_none(),
        "OpenID Connect issuer {issuer:?}: no query or fragment allowed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_base64url_segments_look_like_a_jwt() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("a-_0.b.c"));
        for not in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "a..c",
            ".b.c",
            "a.b.",
            "a.b+.c",
            "a.b/.c",
            "a.b=.c",
            "a b.c.d",
            "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdef0123",
        ] {
            assert!(!looks_like_jwt(not), "{not:?}");
        }
    }

    #[test]
    fn issuers_must_use_https_off_loopback() {
        assert!(check_issuer_url("https://id.example.com/application/o/app/").is_ok());
        assert!(check_issuer_url("http://127.0.0.1:8080").is_ok());
        assert!(check_issuer_url("http://localhost:8080/realms/x").is_ok());
        assert!(check_issuer_url("http://[::1]:8080").is_ok());
        assert!(check_issuer_url("http://id.example.com").is_err());
        assert!(check_issuer_url("ftp://127.0.0.1").is_err());
        assert!(check_issuer_url("not a url").is_err());
    }

    fn issuer(map: &[(&str, &[&str])]) -> Issuer {
        let settings = IssuerSettings {
            issuer: "https://id.example.com".into(),
            audience: vec!["api".into()],
            user_claim: UserClaim::Sub,
            auto_create: false,
            permissions_claim: Some("groups".into()),
            permission_map: map
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        };
        let verifier = Verifier::new(OidcSettings {
            issuers: vec![settings],
            ..OidcSettings::default()
        })
        .unwrap();
        verifier.issuers.into_iter().next().unwrap()
    }

    #[test]
    fn permission_claims_map_to_codenames() {
        let mapped = issuer(&[(
            "admins",
            &[
                "add_useroauthsourceconnection",
                "view_useroauthsourceconnection",
            ],
        )]);
        let got = mapped.permissions(Some(&serde_json::json!(["admins", "nobody", 3])));
        assert_eq!(
            got,
            vec![Permission::AddConnection, Permission::ViewConnection]
        );
        assert!(mapped.permissions(None).is_empty());
        // Without a map the values are codenames; a space-separated string works too.
        let direct = issuer(&[]);
        assert_eq!(
            direct.permissions(Some(&serde_json::json!(
                "view_useroauthsourceconnection bogus"
            ))),
            vec![Permission::ViewConnection]
        );
    }

    #[test]
    fn unknown_codenames_in_the_map_are_refused_at_start() {
        let settings = IssuerSettings {
            issuer: "https://id.example.com".into(),
            audience: vec!["api".into()],
            user_claim: UserClaim::Sub,
            auto_create: false,
            permissions_claim: Some("groups".into()),
            permission_map: [("g".to_owned(), vec!["superpowers".to_owned()])].into(),
        };
        let err = Verifier::new(OidcSettings {
            issuers: vec![settings.clone()],
            ..OidcSettings::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("unknown permission"), "{err}");
        let no_audience = IssuerSettings {
            audience: vec![],
            permission_map: Default::default(),
            ..settings
        };
        assert!(
            Verifier::new(OidcSettings {
                issuers: vec![no_audience],
                ..OidcSettings::default()
            })
            .is_err()
        );
    }
}
