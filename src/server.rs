//! The HTTP server: routes, middleware, the connection loop with its limits, graceful
//! shutdown.
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request as AxumRequest};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use secrecy::ExposeSecret;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::TrustedProxies;
use crate::config::{Config, RestShape, ServeArgs};
use crate::domain::{Error, Service};
use crate::metrics::{self, Metrics};
use crate::telemetry::clip;
use crate::throttle::FailedAuthThrottle;
use crate::{app, cli, graphql, rest};

#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub graphql: Arc<graphql::Api>,
    pub rest_shape: RestShape,
    /// None: failed authentications are not throttled.
    pub throttle: Option<Arc<FailedAuthThrottle>>,
    pub metrics: Arc<Metrics>,
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl AppState {
    pub fn new(service: Service, rest_shape: RestShape) -> Self {
        AppState {
            graphql: Arc::new(graphql::Api::new(
                graphql::schema(Some(service.clone())),
                HttpLimits::default().request_deadline,
            )),
            service,
            rest_shape,
            throttle: None,
            metrics: Arc::new(Metrics::new()),
            trusted_proxies: Arc::default(),
        }
    }

    /// Throttles failed authentications to `per_minute` per client address (0: off).
    pub fn with_auth_failures_per_minute(mut self, per_minute: u32) -> Self {
        self.throttle = FailedAuthThrottle::per_minute(per_minute).map(Arc::new);
        self
    }

    /// Believes `X-Forwarded-For` from these proxies only.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    /// Allow-list mode (`OAUTHLINK_GRAPHQL_OPERATIONS`): only the manifest's documents run.
    pub fn with_operations(mut self, manifest: Option<graphql::persisted::Manifest>) -> Self {
        self.graphql = Arc::new(self.graphql.with_operations(manifest));
        self
    }

    /// Websockets at once and subscriptions per websocket.
    pub fn with_socket_limits(mut self, limits: graphql::ws::SocketLimits) -> Self {
        self.graphql = Arc::new(self.graphql.with_socket_limits(limits));
        self
    }

    /// Stops GraphQL queries still running after `deadline`.
    pub fn with_query_deadline(mut self, deadline: Duration) -> Self {
        self.graphql = Arc::new(self.graphql.with_deadline(deadline));
        self
    }
}

/// What one client may hold of the server: what a reverse proxy would set in front of it.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Largest request body (413 beyond).
    pub body_limit: usize,
    /// Time from the connection's wait for a request to its complete head; hyper starts the
    /// clock when it starts waiting, so it also bounds an idle keep-alive connection.
    pub header_read: Duration,
    /// Time from the complete head to the complete body (408 beyond).
    pub body_read: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keep_alive: Duration,
    /// Largest request head (request line and headers; 431 beyond).
    pub max_header_bytes: usize,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A GraphQL query still executing after this is stopped.
    pub request_deadline: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            body_limit: 64 * 1024,
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            request_deadline: Duration::from_secs(10),
        }
    }
}

impl HttpLimits {
    pub fn from_args(serve: &ServeArgs) -> Self {
        HttpLimits {
            body_limit: serve.body_limit_bytes,
            header_read: Duration::from_secs(serve.header_read_timeout_seconds),
            body_read: Duration::from_secs(serve.body_read_timeout_seconds),
            keep_alive: Duration::from_secs(serve.keep_alive_timeout_seconds),
            max_header_bytes: serve.max_header_bytes,
            max_connections: serve.max_connections,
            request_deadline: Duration::from_secs(serve.request_timeout_seconds),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const REQUEST_ID_MAX_LEN: usize = 64;

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

/// The methods HTTP defines (RFC 9110, RFC 5789); a route that does not serve one answers 405.
/// Any other method is refused with 405 before routing, metrics or logs.
pub const KNOWN_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// A client's `X-Request-Id` is kept only when short and of a safe alphabet; otherwise a
/// fresh one replaces it (it is echoed and logged).
fn acceptable_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= REQUEST_ID_MAX_LEN
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// First of all: unknown methods answered 405, unsafe request ids dropped, and the body
/// given its deadline.
async fn gate(body_read: Duration, mut request: AxumRequest, next: Next) -> Response {
    if !KNOWN_METHODS.contains(request.method()) {
        return rest::errors::unknown_method();
    }
    if request
        .headers()
        .get(REQUEST_ID)
        .is_some_and(|v| !acceptable_request_id(v))
    {
        request.headers_mut().remove(REQUEST_ID);
    }
    let request = request.map(|body| Body::new(DeadlineBody::new(body, body_read)));
    next.run(request).await
}

/// A request body that must arrive whole before its deadline (a slow sender cannot hold a
/// connection by trickling bytes).
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, within: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(within)),
        }
    }
}

/// The error a body past its deadline reads with.
#[derive(Debug)]
pub struct BodyDeadlineExceeded;

impl std::fmt::Display for BodyDeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body was not received in time")
    }
}

impl std::error::Error for BodyDeadlineExceeded {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyDeadlineExceeded))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The domain error of a body that could not be read because it was too large or too slow;
/// `None` for a broken one (each API words that itself).
pub fn body_error(rejection: &BytesRejection) -> Option<Error> {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Some(Error::PayloadTooLarge);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<BodyDeadlineExceeded>() {
            return Some(Error::RequestTimeout);
        }
        source = e.source();
    }
    None
}

pub fn router(state: AppState, body_limit: usize) -> Router {
    router_with_cors(state, body_limit, None)
}

pub fn router_with_cors(state: AppState, body_limit: usize, cors: Option<CorsLayer>) -> Router {
    router_with_limits(
        state,
        &HttpLimits {
            body_limit,
            ..HttpLimits::default()
        },
        cors,
    )
}

pub fn router_with_limits(state: AppState, limits: &HttpLimits, cors: Option<CorsLayer>) -> Router {
    let body_read = limits.body_read;
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
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        // Answers are per caller and may hold personal data: no cache keeps them, and no
        // browser guesses their type. (GraphiQL's assets set their own caching.)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // Only method, path and id, each bounded and escaped: never headers or
                // bodies (they hold secrets).
                tracing::info_span!(
                    "request",
                    method = metrics::method_label(req.method()),
                    path = ?clip(req.uri().path()),
                    request_id = ?id,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(move |req, next| {
            gate(body_read, req, next)
        }));
    match cors {
        Some(layer) => app.layer(layer),
        None => app,
    }
}

/// When a connection last finished a request, and how many it is serving.
#[derive(Default)]
struct Activity(Mutex<(usize, Option<Instant>)>);

impl Activity {
    fn begin(self: &Arc<Self>) -> ActivityGuard {
        if let Ok(mut a) = self.0.lock() {
            a.0 += 1;
        }
        ActivityGuard(self.clone())
    }

    /// When the connection turns idle-too-long, if it is idle after a request now. (Before
    /// its first request the header-read timeout alone bounds it.)
    fn idle_until(&self, keep_alive: Duration) -> Option<Instant> {
        let a = self.0.lock().ok()?;
        if a.0 == 0 {
            a.1.map(|done| done + keep_alive)
        } else {
            None
        }
    }
}

struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if let Ok(mut a) = self.0.0.lock() {
            a.0 -= 1;
            a.1 = Some(Instant::now());
        }
    }
}

/// A connection's slot of `max_connections`, in its requests' extensions: a websocket keeps
/// it taken after the upgrade, while it lives, and learns from it when shutdown begins.
#[derive(Clone)]
pub struct ConnectionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
    shutdown: watch::Receiver<bool>,
}

impl ConnectionSlot {
    /// Resolves once the server begins shutting down.
    pub async fn shutting_down(&mut self) {
        // A dropped sender (the server is gone) also means: stop.
        let _ = self.shutdown.wait_for(|stop| *stop).await;
    }
}

/// Serves one connection until it closes, its keep-alive idles out, or shutdown begins.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Arc<HttpLimits>,
    mut shutdown: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::default());
    let slot = ConnectionSlot {
        _permit: Arc::new(permit),
        shutdown: shutdown.clone(),
    };
    let service = {
        let activity = activity.clone();
        tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(slot.clone());
            let guard = activity.begin();
            let response = app.clone().oneshot(request.map(Body::new));
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_header_size(limits.max_header_bytes)
        .max_headers(100)
        .keep_alive(true);
    let conn = http
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        // Busy, or before the first request: look again one keep-alive later.
        let wake = activity
            .idle_until(limits.keep_alive)
            .unwrap_or_else(|| Instant::now() + limits.keep_alive);
        tokio::select! {
            _ = conn.as_mut() => break,
            () = tokio::time::sleep_until(wake), if !closing => {
                if activity.idle_until(limits.keep_alive).is_some_and(|t| t <= Instant::now()) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = shutdown.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Accepts connections until `shutdown` resolves, then lets open ones finish for at most
/// `grace`. At most `limits.max_connections` are served at once.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits.clone(),
            stopped.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests still running after the grace period; closing");
    }
}

pub async fn run(config: &Config, serve_args: &ServeArgs) -> anyhow::Result<()> {
    serve_args.check_bootstrap_token()?;
    let oidc = Arc::new(crate::oidc::Verifier::new(serve_args.oidc.settings()?)?);
    let service = app::open(config).await?.with_oidc(oidc.clone());
    if !oidc.is_empty() {
        tracing::info!(issuers = ?oidc.issuers().collect::<Vec<_>>(), "accepting OpenID Connect access tokens");
        oidc.warm_up();
    }
    let token = serve_args
        .bootstrap_token
        .as_ref()
        .map(|t| t.expose_secret());
    cli::bootstrap(&service, token).await?;
    let listener = TcpListener::bind(serve_args.listen).await?;
    tracing::info!(address = %listener.local_addr()?, database = %app::redact(&config.database_url), "listening");
    let limits = HttpLimits::from_args(serve_args);
    let state = AppState::new(service.clone(), serve_args.rest_shape)
        .with_auth_failures_per_minute(serve_args.auth_failures_per_minute)
        .with_trusted_proxies(TrustedProxies::parse(&serve_args.trusted_proxies)?)
        .with_query_deadline(limits.request_deadline)
        .with_operations(serve_args.graphql_manifest()?)
        .with_socket_limits(graphql::ws::SocketLimits {
            max_sockets: serve_args.max_websockets,
            max_subscriptions: serve_args.max_subscriptions_per_websocket,
            max_message_bytes: limits.body_limit,
            ..Default::default()
        });
    let app = router_with_limits(state, &limits, cors_layer(&serve_args.cors_origins)?);
    let signal = async {
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
    };
    let grace = Duration::from_secs(serve_args.shutdown_grace_seconds);
    serve(listener, app, limits, signal, grace).await;
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
