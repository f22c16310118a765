//! The OAuth 2.0 refresh grant (RFC 6749 §6) at a source's token endpoint: the one outbound
//! HTTP call of the service. reqwest with rustls; connect and total timeouts; no redirects
//! (a token endpoint that redirects is misconfigured, and following would send the refresh
//! token elsewhere); only http and https URLs; the answer read up to a bound. What the
//! provider says about a failure is reduced to its OAuth `error` code, checked against a
//! short charset: its bodies never reach logs or answers.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::error::ProviderProblem;
use crate::domain::model::TokenAuthMethod;

/// The largest token response read; a larger one is refused (`BadResponse`).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Timeouts of the outbound call.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            total: Duration::from_secs(8),
        }
    }
}

/// The client (one connection pool for every source).
#[derive(Clone, Debug)]
pub struct TokenClient {
    http: reqwest::Client,
    timeouts: Timeouts,
}

/// One refresh request. The secrets stay wrapped until they are written into the request.
pub struct RefreshRequest<'a> {
    pub url: &'a str,
    pub client_id: &'a str,
    pub client_secret: Option<&'a SecretString>,
    pub auth_method: TokenAuthMethod,
    pub refresh_token: &'a SecretString,
}

/// A successful answer.
pub struct Granted {
    pub access_token: SecretString,
    /// Present when the source rotated it.
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for Granted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Granted")
            .field("rotated", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Why a refresh did not produce tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `invalid_grant` (or GitHub's `bad_refresh_token`): the refresh token is dead.
    InvalidGrant,
    /// Anything else; `error` is the provider's OAuth error code when it gave a valid one.
    Problem {
        problem: ProviderProblem,
        error: Option<String>,
    },
}

fn problem(problem: ProviderProblem) -> Refused {
    Refused::Problem {
        problem,
        error: None,
    }
}

/// Only http(s) URLs with a host, no credentials in them: checked when a source is
/// configured and again before every call.
pub fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("only http and https token endpoints are allowed".to_owned());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the token endpoint needs a host".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the token endpoint URL must not carry credentials".to_owned());
    }
    Ok(parsed)
}

/// An OAuth `error` code as RFC 6749 allows it (%x20-21 / %x23-5B / %x5D-7E), narrowed to
/// what codes look like in practice and bounded: anything else is not repeated anywhere.
fn error_code(raw: &str) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then(|| raw.to_owned())
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
}

impl TokenClient {
    pub fn new(timeouts: Timeouts) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .user_agent(concat!("oauthlink/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(TokenClient { http, timeouts })
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sends the refresh grant once. The caller makes sure no other instance sends the same
    /// refresh token (domain/vault.rs).
    pub async fn refresh(&self, request: RefreshRequest<'_>) -> Result<Granted, Refused> {
        let url = check_url(request.url).map_err(|_| problem(ProviderProblem::NotConfigured))?;
        let secret = request
            .client_secret
            .map(|s| s.expose_secret())
            .unwrap_or("");
        // Built whole before anything is awaited (the serializer is not `Send`).
        let (body, basic) = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", request.refresh_token.expose_secret());
            let basic = match request.auth_method {
                // RFC 6749 §2.3.1: both halves form-encoded before base64.
                TokenAuthMethod::ClientSecretBasic => {
                    let encode = |s: &str| -> String {
                        form_urlencoded::byte_serialize(s.as_bytes()).collect()
                    };
                    let pair = format!("{}:{}", encode(request.client_id), encode(secret));
                    let mut value =
                        HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
                            .map_err(|_| problem(ProviderProblem::NotConfigured))?;
                    value.set_sensitive(true);
                    Some(value)
                }
                TokenAuthMethod::ClientSecretPost => {
                    form.append_pair("client_id", request.client_id);
                    form.append_pair("client_secret", secret);
                    None
                }
            };
            (form.finish(), basic)
        };
        let mut builder = self
            .http
            .post(url)
            .header(ACCEPT, "application/json")
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        if let Some(basic) = basic {
            builder = builder.header(AUTHORIZATION, basic);
        }
        let response = builder.body(body).send().await.map_err(transport)?;
        let status = response.status();
        let body = read_bounded(response).await?;
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(problem(ProviderProblem::ServerError));
        }
        // GitHub answers errors with 200 and an `error` member: the body decides, not only
        // the status.
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        let Some(parsed) = parsed else {
            return Err(problem(ProviderProblem::BadResponse));
        };
        if let Some(error) = parsed.error.as_deref() {
            return Err(match error {
                "invalid_grant" | "bad_refresh_token" => Refused::InvalidGrant,
                other => Refused::Problem {
                    problem: ProviderProblem::Rejected,
                    error: error_code(other),
                },
            });
        }
        if !status.is_success() {
            return Err(problem(ProviderProblem::BadResponse));
        }
        let Some(access_token) = parsed.access_token.filter(|t| !t.is_empty()) else {
            return Err(problem(ProviderProblem::BadResponse));
        };
        // Some providers send the lifetime as a string.
        let expires_in = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(Granted {
            access_token: SecretString::from(access_token),
            refresh_token: parsed
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            expires_in,
        })
    }
}

/// A transport failure, classified without repeating it (its text may hold the URL).
fn transport(e: reqwest::Error) -> Refused {
    if e.is_timeout() {
        problem(ProviderProblem::Timeout)
    } else if e.is_redirect() || e.is_builder() {
        problem(ProviderProblem::BadResponse)
    } else {
        problem(ProviderProblem::Network)
    }
}

/// The body, refused beyond `MAX_RESPONSE_BYTES` (checked while streaming, not after).
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, Refused> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(problem(ProviderProblem::BadResponse));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(problem(ProviderProblem::BadResponse));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_without_credentials_pass() {
        assert!(check_url("https://oauth2.googleapis.com/token").is_ok());
        assert!(check_url("http://127.0.0.1:8080/token").is_ok());
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/token",
            "https://user:pw@example.com/token",
            "not a url",
            "gopher://x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    /// A one-shot HTTP server on loopback answering every request with `response`; counts
    /// the requests it saw.
    async fn serve(response: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 8192];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (url, seen)
    }

    async fn refresh_at(url: &str) -> Result<Granted, Refused> {
        let client = TokenClient::new(Timeouts {
            connect: Duration::from_secs(2),
            total: Duration::from_secs(5),
        })
        .unwrap();
        let refresh_token = SecretString::from("r1".to_owned());
        client
            .refresh(RefreshRequest {
                url,
                client_id: "id",
                client_secret: None,
                auth_method: TokenAuthMethod::ClientSecretBasic,
                refresh_token: &refresh_token,
            })
            .await
    }

    #[tokio::test]
    async fn answers_beyond_the_bound_are_refused_while_streaming() {
        // No Content-Length: the bound must hold while reading, not only by the header.
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"access_token\":\"".to_vec();
        response.extend(std::iter::repeat_n(b'a', MAX_RESPONSE_BYTES + 10));
        response.extend(b"\"}");
        let (url, _) = serve(response).await;
        assert_eq!(
            refresh_at(&url).await.unwrap_err(),
            problem(ProviderProblem::BadResponse)
        );
        // Just below the bound is fine.
        let body = format!(
            "{{\"access_token\":\"{}\",\"expires_in\":\"60\"}}",
            "a".repeat(1000)
        );
        let ok = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (url, _) = serve(ok.into_bytes()).await;
        let granted = refresh_at(&url).await.unwrap();
        assert_eq!(granted.expires_in, Some(60));
        assert!(granted.refresh_token.is_none());
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (target, hits) =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()).await;
        let redirect = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n"
        );
        let (url, _) = serve(redirect.into_bytes()).await;
        assert_eq!(
            refresh_at(&url).await.unwrap_err(),
            problem(ProviderProblem::BadResponse)
        );
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the refresh token went nowhere else"
        );
    }

    #[tokio::test]
    async fn oauth_errors_are_classified_and_only_their_code_kept() {
        let answer = |status: &str, body: &str| {
            format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
        };
        let (url, _) = serve(answer(
            "400 Bad Request",
            r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
        ))
        .await;
        assert_eq!(refresh_at(&url).await.unwrap_err(), Refused::InvalidGrant);
        // GitHub: errors with 200.
        let (url, _) = serve(answer("200 OK", r#"{"error":"bad_refresh_token"}"#)).await;
        assert_eq!(refresh_at(&url).await.unwrap_err(), Refused::InvalidGrant);
        let (url, _) = serve(answer(
            "401 Unauthorized",
            r#"{"error":"invalid_client <b>x</b>"}"#,
        ))
        .await;
        assert_eq!(
            refresh_at(&url).await.unwrap_err(),
            Refused::Problem {
                problem: ProviderProblem::Rejected,
                error: None
            }
        );
        let (url, _) = serve(answer("502 Bad Gateway", "<html>upstream down</html>")).await;
        assert_eq!(
            refresh_at(&url).await.unwrap_err(),
            problem(ProviderProblem::ServerError)
        );
    }

    #[test]
    fn error_codes_are_repeated_only_when_they_look_like_codes() {
        assert_eq!(
            error_code("invalid_client").as_deref(),
            Some("invalid_client")
        );
        assert_eq!(error_code("<script>"), None);
        assert_eq!(error_code(&"a".repeat(65)), None);
        assert_eq!(error_code("has space"), None);
        assert_eq!(error_code(""), None);
    }
}
