//! One issuer's signing keys: found through its discovery document, fetched from its JWKS,
//! cached. A fetch happens when a token names a `kid` the cache lacks, or when the set has
//! grown older than its maximum age, and never more than once per `min_refetch`, whoever
//! asks: a flood of made-up `kid`s costs the issuer at most one request per interval. Fetches
//! are single-flight; while one runs, tokens with known keys are not held up. A failed fetch
//! keeps the keys already cached: an issuer that is down does not stop them from working.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::domain::error::CredentialProblem;

/// Largest discovery document or JWKS read (a larger one is an error, not truncated).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Keys kept from one JWKS; the issuer, not the client, decides them, but bound them anyway.
const MAX_KEYS: usize = 64;

/// A verification key as the JWKS published it.
pub(super) struct Key {
    pub decoding: DecodingKey,
    /// The JWK's own `alg`, when it names one: the token's must then be the same.
    pub alg: Option<Algorithm>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<Key>>,
    jwks_uri: Option<String>,
    /// Last successful fetch.
    fetched: Option<Instant>,
    /// Last fetch attempted, successful or not.
    attempted: Option<Instant>,
}

pub(super) struct KeySet {
    issuer: String,
    http: reqwest::Client,
    min_refetch: Duration,
    max_age: Duration,
    /// Never held across an await.
    state: RwLock<State>,
    /// Held by the one fetch in flight.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    pub fn new(
        issuer: String,
        http: reqwest::Client,
        min_refetch: Duration,
        max_age: Duration,
    ) -> Self {
        KeySet {
            issuer,
            http,
            min_refetch,
            max_age,
            state: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The key named `kid`.
    pub async fn key(&self, kid: &str) -> Result<Arc<Key>, CredentialProblem> {
        let now = Instant::now();
        let (found, stale) = self.read(|s| {
            (
                s.keys.get(kid).cloned(),
                s.fetched
                    .is_none_or(|at| now.duration_since(at) >= self.max_age)
                    && self.allowed(s, now),
            )
        });
        match found {
            Some(key) if !stale => Ok(key),
            // Old enough to re-read: the fetch in flight, if any, is not waited for.
            Some(key) => {
                if let Ok(guard) = self.fetching.try_lock() {
                    if self.read(|s| self.allowed(s, Instant::now())) {
                        self.refresh().await;
                    }
                    drop(guard);
                    // Dropped by the issuer: refused from now on.
                    return self
                        .read(|s| s.keys.get(kid).cloned())
                        .ok_or(CredentialProblem::KeyRotatedOut);
                }
                Ok(key)
            }
            None => {
                let _guard = self.fetching.lock().await;
                // Fetched while this request waited?
                if let Some(key) = self.read(|s| s.keys.get(kid).cloned()) {
                    return Ok(key);
                }
                if !self.read(|s| self.allowed(s, Instant::now())) {
                    return Err(self.missing());
                }
                self.refresh().await;
                self.read(|s| s.keys.get(kid).cloned())
                    .ok_or_else(|| self.missing())
            }
        }
    }

    /// Whether a fetch may start now: the last attempt is at least `min_refetch` old.
    fn allowed(&self, state: &State, now: Instant) -> bool {
        state
            .attempted
            .is_none_or(|at| now.duration_since(at) >= self.min_refetch)
    }

    /// Why a key is missing: no keys at all (the issuer never answered) or an unknown `kid`.
    fn missing(&self) -> CredentialProblem {
        if self.read(|s| s.fetched.is_none()) {
            CredentialProblem::KeysUnavailable
        } else {
            CredentialProblem::UnknownKey
        }
    }

    /// The first fetch, unless a token already caused one.
    pub async fn warm_up(&self) {
        let _guard = self.fetching.lock().await;
        if self.read(|s| s.attempted.is_none()) {
            self.refresh().await;
        }
    }

    /// Fetches the JWKS (discovering its address first when unknown) and replaces the keys;
    /// a failure is logged and leaves them as they were. Call with `fetching` held.
    pub async fn refresh(&self) {
        let jwks_uri = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            state.attempted = Some(Instant::now());
            state.jwks_uri.clone()
        };
        let result = async {
            let jwks_uri = match jwks_uri {
                Some(uri) => uri,
                None => self.discover().await?,
            };
            let keys = self.fetch_keys(&jwks_uri).await;
            Ok::<_, anyhow::Error>((jwks_uri, keys))
        }
        .await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok((jwks_uri, Ok(keys))) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "OpenID Connect signing keys fetched");
                state.keys = keys;
                state.jwks_uri = Some(jwks_uri);
                state.fetched = Some(Instant::now());
            }
            Ok((_, Err(e))) | Err(e) => {
                // The JWKS address may have moved: discover it again next time.
                state.jwks_uri = None;
                tracing::warn!(issuer = %self.issuer, error = %e, cached_keys = state.keys.len(), "cannot fetch the issuer's signing keys; the cached ones stay in use");
            }
        }
    }

    async fn discover(&self) -> anyhow::Result<String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let doc: Discovery = serde_json::from_slice(&self.get(&url).await?)?;
        // OpenID Connect Discovery 1.0, section 4.3: the document must name this issuer.
        anyhow::ensure!(
            doc.issuer == self.issuer,
            "the discovery document names issuer {:?}",
            doc.issuer
        );
        Ok(doc.jwks_uri)
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> anyhow::Result<HashMap<String, Arc<Key>>> {
        let raw: RawJwks = serde_json::from_slice(&self.get(jwks_uri).await?)?;
        let mut keys = HashMap::new();
        for value in raw.keys {
            if keys.len() == MAX_KEYS {
                tracing::warn!(issuer = %self.issuer, "JWKS holds more than {MAX_KEYS} keys; the rest are ignored");
                break;
            }
            // A key this service cannot use (another type, encryption) is skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if let Some((kid, key)) = usable(&jwk) {
                keys.insert(kid, Arc::new(key));
            }
        }
        Ok(keys)
    }

    /// A GET of at most `MAX_BODY_BYTES`, 200 only (the client follows no redirect).
    async fn get(&self, url: &str) -> anyhow::Result<Vec<u8>> {
        let mut response = self.http.get(url).send().await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::OK,
            "GET {url}: {}",
            response.status()
        );
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            anyhow::bail!("GET {url}: body larger than {MAX_BODY_BYTES} bytes");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            anyhow::ensure!(
                body.len() + chunk.len() <= MAX_BODY_BYTES,
                "GET {url}: body larger than {MAX_BODY_BYTES} bytes"
            );
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A signing key with a `kid` and an asymmetric type; symmetric (`oct`) keys are never used:
/// a verifier that accepted one would accept tokens anyone holding the JWKS could forge.
fn usable(jwk: &Jwk) -> Option<(String, Key)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if matches!(
        jwk.algorithm,
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
    ) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(Algorithm::try_from(alg).ok()?),
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Key { decoding, alg }))
}
