//! Prometheus metrics at `/metrics`: requests by API, operation and outcome (count and
//! latency), database statements, and the connection pool.
//!
//! Every label value comes from a set the server fixes, never from the client: the method
//! from the known methods, the route from the router's templates, a GraphQL operation from
//! its type and the schema's root field names (or `multiple`, `invalid`), the outcome from the
//! status codes and error codes the server answers with.
use std::fmt::Write;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::server::AppState;
use crate::storage::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub api: &'static str,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// Set by a handler that knows its request better than the route does (GraphQL).
#[derive(Clone, Debug)]
pub struct Outcome {
    pub operation: String,
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    statements: Counter,
    pool: Family<PoolLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("oauthlink");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let statements = Counter::default();
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register("requests", "Requests answered", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to response",
            latency.clone(),
        );
        registry.register(
            "db_statements",
            "Database statements executed",
            statements.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections (open, idle, max)",
            pool.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            statements,
            pool,
        }
    }

    pub fn observe(&self, labels: &RequestLabels, seconds: f64) {
        self.requests.get_or_create(labels).inc();
        self.latency.get_or_create(labels).observe(seconds);
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, store: &Store) -> String {
        let stats = store.pool_stats();
        for (state, value) in [
            ("open", stats.open),
            ("idle", stats.idle),
            ("max", stats.max),
        ] {
            self.pool
                .get_or_create(&PoolLabels { state })
                .set(i64::from(value));
        }
        let executed = store.statements_executed();
        let counted = self.statements.get();
        if executed > counted {
            self.statements.inc_by(executed - counted);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }
}

fn api_of(route: &str) -> &'static str {
    if route.starts_with("/graphql") {
        "graphql"
    } else if route.starts_with("/api/") {
        "rest"
    } else {
        "other"
    }
}

/// The label of a method: one of the known methods, or `OTHER`.
pub fn method_label(method: &Method) -> &'static str {
    crate::server::KNOWN_METHODS
        .iter()
        .find(|m| *m == method)
        .map_or("OTHER", Method::as_str)
}

/// Route-layer middleware: counts and times every routed request.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let labels = match response.extensions().get::<Outcome>() {
        Some(o) => RequestLabels {
            api: api_of(&route),
            operation: o.operation.clone(),
            outcome: o.outcome.clone(),
        },
        None => RequestLabels {
            api: api_of(&route),
            operation: format!("{method} {route}"),
            outcome: response.status().as_u16().to_string(),
        },
    };
    state
        .metrics
        .observe(&labels, start.elapsed().as_secs_f64());
    response
}

/// GET /metrics.
pub async fn serve(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(state.service.store());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
