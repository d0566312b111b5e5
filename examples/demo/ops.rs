//! What an operator's tools ask of the demo: `GET /metrics` (Prometheus text, with the
//! `metrics` feature), `/healthz` (the process is up) and `/readyz` (200 while the registry's
//! revocation feed is fresh, 503 otherwise: see `RegistryHealth` for the probe rule).
//!
//! The Prometheus recorder is installed before the session configuration is built and the
//! registry opened: they take their metric handles then, and a handle taken before any recorder
//! records nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sealed_sessions::registry::Registry;

/// The recorder's handle, to render `/metrics`.
#[cfg(feature = "metrics")]
pub type Metrics = Option<metrics_exporter_prometheus::PrometheusHandle>;
/// No recorder without the `metrics` feature.
#[cfg(not(feature = "metrics"))]
pub type Metrics = Option<()>;

/// Installs the Prometheus recorder (with the `metrics` feature); call it first.
pub fn install_recorder() -> Result<Metrics, String> {
    #[cfg(feature = "metrics")]
    {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
        Ok(Some(handle))
    }
    #[cfg(not(feature = "metrics"))]
    Ok(None)
}

struct Ops {
    registry: Arc<dyn Registry>,
    metrics: Metrics,
}

/// The routes, outside the session layer (probes and scrapers carry no session).
pub fn routes(registry: Arc<dyn Registry>, metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Arc::new(Ops { registry, metrics }))
}

async fn ready(State(ops): State<Arc<Ops>>) -> Response {
    let health = ops.registry.health();
    let status = if health.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let since = health
        .since_confirmed
        .map_or("no feed".to_owned(), |d| format!("{} ms", d.as_millis()));
    // Not the last error: it names the database's host, user and file, and the probe answers
    // anyone who can reach the app (the registry logs the error itself).
    let body = format!(
        "ready: {}\nconnected: {}\nconfirmed: {since} ago\n",
        health.is_ready(),
        health.connected,
    );
    (status, body).into_response()
}

async fn render(State(ops): State<Arc<Ops>>) -> Response {
    // Brings the feed's age and freshness gauges up to date for this scrape.
    let _ = ops.registry.health();
    #[cfg(feature = "metrics")]
    if let Some(handle) = &ops.metrics {
        let text = handle.render();
        return ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response();
    }
    let _ = (&ops.metrics, header::CONTENT_TYPE);
    (
        StatusCode::NOT_FOUND,
        "metrics are off: build the demo with --features metrics\n",
    )
        .into_response()
}
