//! Who is calling: the client's address (through trusted proxies only) and the principal of
//! the presented credentials. Both APIs resolve the principal here, once, from the request's
//! head: before the body is read, parsed or a GraphQL document validated.
use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, header};
use ipnet::IpNet;

use crate::crypto::hash_api_key;
use crate::domain::error::{CredentialProblem, Error};
use crate::domain::permission::Principal;
use crate::domain::service::{Credential, refuse};
use crate::server::AppState;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// Hops of `X-Forwarded-For` walked at most: a chain longer than this is a client's invention.
const MAX_FORWARDED_HOPS: usize = 16;

/// The reverse proxies whose `X-Forwarded-For` is believed (`OAUTHLINK_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// CIDRs or single addresses.
    pub fn parse(list: &[String]) -> anyhow::Result<Self> {
        list.iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("bad trusted proxy {s:?}: expected an address or CIDR")
                    })
            })
            .collect::<anyhow::Result<_>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: the peer itself unless it is a trusted proxy; then the
    /// right-most `X-Forwarded-For` address that is not a trusted proxy (every address to its
    /// right was added by a proxy we trust; anything to its left may be the client's own).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .rev()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.rsplit(','))
            .take(MAX_FORWARDED_HOPS);
        for hop in hops {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The client address of a request (`None` where the server does not record peers).
pub(crate) fn client_ip(parts: &Parts, proxies: &TrustedProxies) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| proxies.client(info.0.ip(), &parts.headers))
}

/// The principal of the request's credentials: `Ok(None)` when none were presented. Refused
/// credentials count against the client's allowance; see `throttle`.
pub async fn authenticate(state: &AppState, parts: &Parts) -> Result<Option<Principal>, Error> {
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map_err(|_| ()));
    let client = client_ip(parts, &state.trusted_proxies);
    authenticate_value(state, authorization, client).await
}

/// `authenticate` after the header is read: the value of an `Authorization` header (`Err`:
/// not text) from `client`. Websockets present theirs in `connection_init`.
pub async fn authenticate_value(
    state: &AppState,
    authorization: Option<Result<&str, ()>>,
    client: Option<IpAddr>,
) -> Result<Option<Principal>, Error> {
    let credential = match authorization {
        None => Credential::None,
        Some(Err(_)) => Credential::Malformed,
        Some(Ok(value)) => Credential::parse(Some(value)),
    };
    authenticate_credential(state, credential, client).await
}

/// API keys and OpenID Connect access tokens alike: each shape is checked its own way only
/// (see `Credential::parse`), refused alike, and throttled alike.
pub async fn authenticate_credential(
    state: &AppState,
    credential: Credential<'_>,
    client: Option<IpAddr>,
) -> Result<Option<Principal>, Error> {
    // The credential's SHA-256: its cache key, and what the throttle trusts once it worked.
    let hash = match credential {
        Credential::None => return Ok(None),
        Credential::Malformed => None,
        Credential::Key(value) | Credential::Jwt(value) => Some(hash_api_key(value)),
    };
    let throttle = state.throttle.as_deref().zip(client);
    let trusted = match (throttle, &hash) {
        (Some((t, _)), Some(hash)) => t.is_trusted(hash),
        _ => false,
    };
    let reserved = match throttle {
        Some((t, ip)) if !trusted => {
            t.reserve(ip).map_err(|wait| Error::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            })?;
            Some((t, ip))
        }
        _ => None,
    };
    let result = match (credential, &hash) {
        (Credential::Key(_), Some(hash)) => state.service.principal_for_key_hash(hash).await,
        (Credential::Jwt(token), Some(hash)) => state.service.principal_for_jwt(token, hash).await,
        _ => Err(refuse(CredentialProblem::Malformed)),
    };
    match &result {
        // A refused credential keeps its reservation: that is the recorded failure.
        Err(Error::InvalidCredentials(_)) => {}
        outcome => {
            if let Some((t, ip)) = reserved {
                t.refund(ip);
            }
            if let (Ok(_), Some((t, _)), Some(hash)) = (outcome, throttle, &hash) {
                t.trust(hash);
            }
        }
    }
    result.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer: its header is ignored.
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &headers(&["203.0.113.9"])),
            ip("198.51.100.7")
        );
        // Trusted: the right-most untrusted hop, not a spoofed left-most one.
        assert_eq!(
            proxies.client(
                ip("10.1.2.3"),
                &headers(&["1.1.1.1, 203.0.113.9, 10.9.9.9"])
            ),
            ip("203.0.113.9")
        );
        // Several header lines read as one list.
        assert_eq!(
            proxies.client(ip("192.0.2.1"), &headers(&["1.1.1.1", "203.0.113.5"])),
            ip("203.0.113.5")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &headers(&[])),
            ip("10.1.2.3")
        );
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &headers(&["nonsense"])),
            ip("10.1.2.3")
        );
        assert!(TrustedProxies::parse(&["not-a-cidr".into()]).is_err());
    }
}
