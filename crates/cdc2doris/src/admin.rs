//! The admin HTTP endpoints: `/metrics` (Prometheus), `/healthz`, `/readyz`, `/debug/state`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

use serde::Deserialize;

/// One readiness check: its name, whether it passes, and a detail for humans.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What is checked (`partitions_assigned`, `postgres`, `doris_recent_load`, …).
    pub name: String,
    /// Whether it passes.
    pub ok: bool,
    /// Why, in a few words.
    pub detail: String,
}

/// Computes the readiness checks on demand.
pub type ReadinessFn = Arc<dyn Fn() -> Vec<Check> + Send + Sync>;
/// Renders the pipeline's state as JSON on demand.
pub type DebugStateFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What the endpoints read.
#[derive(Clone)]
pub struct AdminState {
    /// The Prometheus recorder's handle; `None` when metrics are not installed (tests).
    pub prometheus: Option<PrometheusHandle>,
    /// Readiness checks.
    pub readiness: ReadinessFn,
    /// The `/debug/state` document.
    pub debug_state: DebugStateFn,
}

/// Histogram buckets (seconds) for latencies: from 1 ms to 10 min.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0,
    1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Buckets for sizes (keys, rows, bytes): powers of 4 from 1 to 1 Gi.
const SIZE_BUCKETS: &[f64] = &[
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
];

/// Installs the process-wide Prometheus recorder. Histograms whose name ends in `_seconds` get
/// latency buckets, the others size buckets. The caller runs [`PrometheusHandle::run_upkeep`]
/// periodically.
pub fn install_metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_string()),
            LATENCY_BUCKETS,
        )?
        .set_buckets(SIZE_BUCKETS)?
        .install_recorder()
}

/// The router, for tests and [`serve`].
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/debug/state", get(debug_state))
        .with_state(state)
}

/// Why `admin.listen` deserves a look when it is not a loopback address: the endpoints have no authentication, so
/// anyone who reaches the address reads the metrics and `/debug/state` (docs/security.md, "Admin endpoint").
pub fn exposure_warning(listen: std::net::SocketAddr) -> Option<crate::error::Problem> {
    (!listen.ip().is_loopback()).then(|| {
        crate::error::Problem::new(
            "admin.listen",
            format!(
                "{listen} is not a loopback address: /metrics, /readyz and /debug/state have no authentication, so \
                 anyone who reaches it reads them; keep 127.0.0.1, or make sure only the monitoring network reaches \
                 this address"
            ),
        )
    })
}

/// Serves the admin endpoints on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics(State(s): State<AdminState>) -> Response {
    match &s.prometheus {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not installed\n").into_response(),
    }
}

#[derive(Serialize)]
struct ReadyBody {
    ready: bool,
    checks: Vec<Check>,
}

async fn readyz(State(s): State<AdminState>) -> Response {
    let checks = (s.readiness)();
    let ready = checks.iter().all(|c| c.ok);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(ReadyBody { ready, checks })).into_response()
}

async fn debug_state(State(s): State<AdminState>) -> Response {
    axum::Json((s.debug_state)()).into_response()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin HTTP server. Default `127.0.0.1:9464`.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

#[cfg(test)]
mod exposure_tests {
    use super::*;

    #[test]
    fn only_a_non_loopback_address_is_a_warning() {
        assert!(exposure_warning("127.0.0.1:9464".parse().unwrap()).is_none());
        assert!(exposure_warning("[::1]:9464".parse().unwrap()).is_none());
        let w = exposure_warning("0.0.0.0:9464".parse().unwrap()).unwrap();
        assert_eq!(w.path, "admin.listen");
        assert!(w.message.contains("no authentication"), "{}", w.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    async fn get_text(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if let Err(e) = s.write_all(req.as_bytes()).await {
            panic!("{e}");
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf).await;
        let code = buf.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (code, body)
    }

    #[tokio::test]
    async fn readyz_follows_the_checks_and_debug_state_is_json() {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let state = AdminState {
            prometheus: None,
            readiness: Arc::new(move || {
                vec![Check {
                    name: "partitions_assigned".into(),
                    ok: f.load(Ordering::SeqCst),
                    detail: "x".into(),
                }]
            }),
            debug_state: Arc::new(|| serde_json::json!({"in_flight": []})),
        };
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, state, stop.clone()));
        assert_eq!(get_text(addr, "/healthz").await, (200, "ok\n".to_string()));
        let (code, body) = get_text(addr, "/readyz").await;
        assert_eq!(code, 503);
        assert!(body.contains("\"ready\":false"), "{body}");
        flag.store(true, Ordering::SeqCst);
        assert_eq!(get_text(addr, "/readyz").await.0, 200);
        let (code, body) = get_text(addr, "/debug/state").await;
        assert_eq!((code, body.as_str()), (200, "{\"in_flight\":[]}"));
        assert_eq!(get_text(addr, "/metrics").await.0, 404);
        stop.cancel();
        let _ = server.await;
    }
}

/// What `/debug/state` and `/readyz` show; the pipeline's coordinator keeps it up to date.
#[derive(Debug, Default, serde::Serialize)]
pub struct SharedState {
    /// Assigned partitions with committable/committed offsets.
    pub partitions: Vec<crate::offsets::PartitionView>,
    /// Batches being merged or loaded.
    pub in_flight: Vec<InFlightView>,
    /// The batch being filled.
    pub open_batch: Option<OpenBatchView>,
    /// Totals since start.
    pub totals: Totals,
    /// Seconds since the epoch of the last committed load (0: none yet).
    pub last_load_unix: u64,
    /// The last fatal error, if any.
    pub fatal: Option<String>,
    /// Consumer lag per partition (from librdkafka's statistics).
    pub consumer_lag: std::collections::BTreeMap<String, i64>,
    /// Times the source paused its partitions because the pipeline stayed full.
    pub source_pauses: u64,
    /// Events the source fetched that wait for room in the pipeline.
    pub source_waiting: u64,
}

/// A batch in flight, for `/debug/state`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InFlightView {
    /// Tracker id.
    pub batch: u64,
    /// The batch and the offset ranges it covers (each load's label is made from what it carries).
    pub batch_name: String,
    /// Distinct keys (before resolving).
    pub keys: usize,
    /// Seconds since it was sealed.
    pub age_seconds: f64,
    #[serde(skip)]
    pub(crate) sealed_at: Option<std::time::Instant>,
}

/// The open batch, for `/debug/state`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenBatchView {
    /// Messages in it.
    pub messages: u64,
    /// Distinct keys.
    pub keys: usize,
}

/// Counters since start.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Totals {
    /// Messages read.
    pub messages: u64,
    /// Messages ignored: no row change, or a table no key rule of the topic names.
    pub ignored: u64,
    /// Of the ignored messages, those of a table no key rule of their topic names.
    pub no_rule: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
    /// Keys refreshed (after de-duplication and resolving).
    pub keys_refreshed: u64,
    /// Batches committed by Doris.
    pub loads: u64,
    /// Rows sent (upserts + deletes).
    pub rows: u64,
    /// Delete rows sent.
    pub deletes: u64,
    /// Merge queries run.
    pub queries: u64,
    /// Body bytes loaded.
    pub bytes: u64,
    /// Rows Doris rejected, each dead-lettered with its key.
    pub rows_rejected: u64,
    /// Batches that waited for their transactions to become visible in PostgreSQL before merging.
    pub visibility_waits: u64,
    /// Milliseconds those batches waited, in all.
    pub visibility_wait_ms: u64,
    /// Batches sealed, by why ([`crate::batch::SealReason`]).
    pub sealed: SealedTotals,
}

/// Batches sealed since start, by reason.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SealedTotals {
    /// Caught up with Kafka and a worker free.
    pub idle: u64,
    /// Distinct keys reached the limit.
    pub keys: u64,
    /// Message bytes reached `max_bytes`.
    pub bytes: u64,
    /// The batch reached `max_wait` (or `backlog_max_wait`).
    pub max_wait: u64,
    /// A revoke or shutdown.
    pub other: u64,
    /// Of those, batches that were open while the pipeline was behind (backlog windows).
    pub behind: u64,
}
