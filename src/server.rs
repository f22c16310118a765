//! The HTTP server: routes, middleware, graceful shutdown.
use std::sync::Arc;
use std::time::Duration;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{Config, RestShape, ServeArgs};
use crate::domain::permission::Principal;
use crate::domain::{Error, Service};
use crate::metrics::{self, Metrics};
use crate::throttle::FailedAuthThrottle;
use crate::{app, cli, graphql, rest};

#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub schema: graphql::Schema,
    pub rest_shape: RestShape,
    /// None: failed authentications are not throttled.
    pub throttle: Option<Arc<FailedAuthThrottle>>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(service: Service, rest_shape: RestShape) -> Self {
        AppState {
            schema: graphql::schema(Some(service.clone())),
            service,
            rest_shape,
            throttle: None,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Throttles failed authentications to `per_minute` per client address (0: off).
    pub fn with_auth_failures_per_minute(mut self, per_minute: u32) -> Self {
        self.throttle = FailedAuthThrottle::per_minute(per_minute).map(Arc::new);
        self
    }

    /// The one authentication path of both APIs. An address over its allowance of failures
    /// is refused before its credentials are looked at.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: ClientAddr,
    ) -> Result<Principal, Error> {
        let throttle = self.throttle.as_deref().zip(client.0);
        if let Some((throttle, ip)) = throttle
            && let Some(wait) = throttle.blocked(ip)
        {
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Error::RateLimited { retry_after_secs });
        }
        let result = self.service.authenticate(authorization).await;
        if let (Err(Error::InvalidCredentials(_)), Some((throttle, ip))) = (&result, throttle) {
            throttle.failed(ip);
        }
        result
    }
}

/// The peer address of a request, when the server records it (`ConnectInfo`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let error = Error::internal("handler panicked");
    rest::errors::RestError(error).into_response()
}

/// CORS for the listed origins only; none listed, no CORS headers at all.
pub fn cors_layer(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| HeaderValue::from_str(o).map_err(|_| anyhow::anyhow!("bad CORS origin {o:?}")))
        .collect::<anyhow::Result<_>>()?;
    if origins.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
            .expose_headers([REQUEST_ID]),
    ))
}

pub fn router(state: AppState, body_limit: usize) -> Router {
    router_with_cors(state, body_limit, None)
}

pub fn router_with_cors(state: AppState, body_limit: usize, cors: Option<CorsLayer>) -> Router {
    let app = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .merge(graphql::graphiql::asset_routes())
        .merge(rest::routes())
        .route("/metrics", get(metrics::serve))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .fallback(rest::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // Only method, path and id: never headers or bodies (they hold secrets).
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    match cors {
        Some(layer) => app.layer(layer),
        None => app,
    }
}

pub async fn run(config: &Config, serve: &ServeArgs) -> anyhow::Result<()> {
    serve.check_bootstrap_token()?;
    let service = app::open(config).await?;
    let token = serve.bootstrap_token.as_ref().map(|t| t.expose_secret());
    cli::bootstrap(&service, token).await?;
    let listener = TcpListener::bind(serve.listen).await?;
    tracing::info!(address = %listener.local_addr()?, database = %app::redact(&config.database_url), "listening");
    let state = AppState::new(service.clone(), serve.rest_shape)
        .with_auth_failures_per_minute(serve.auth_failures_per_minute);
    let app = router_with_cors(
        state,
        serve.body_limit_bytes,
        cors_layer(&serve.cors_origins)?,
    );
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        signal.notify_waiters();
    });
    let grace = Duration::from_secs(serve.shutdown_grace_seconds);
    let notified = shutdown.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { notified.notified().await });
    let server = tokio::spawn(async move { server.await });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => { result??; }
        () = async { shutdown.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("in-flight requests still running after the grace period; closing");
        }
    }
    service.store().clone().close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
