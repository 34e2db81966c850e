//! doris-sim: an Apache Doris Stream Load emulator for tests and demos (not part of Doris). See `README.md`.
//! "spec §N" in this crate is section N of `docs/doris-stream-load.md`, and "C*N*" an item of its checklist (§9).
//!
//! Reading order, following one load:
//! - `http/mod.rs` — both listeners: accept loop, panic isolation, auth, routing; `http/fe.rs` — the FE (auth,
//!   `Expect`, 307, `get_load_state`); `http/be.rs` — the BE (the load, 2PC, error logs); `http/sim_api.rs` —
//!   `/api/_sim/`.
//! - `load.rs` — request headers → parameters; body (JSON / CSV) → typed row operations, counters, rejected rows.
//! - `value.rs` — column types and value casts (DECIMAL, DATETIME(p), VARCHAR(n) …).
//! - `expr.rs` — the `where` / `delete` / `columns` expression subset.
//! - `state.rs` — labels, transactions, faults, version pressure, the commit log of `--data-dir`.
//! - `table.rs` — stored rows and the Unique / Duplicate / Aggregate merge rules.
//! - `ddl.rs` — the Doris DDL subset that defines the tables.
//! - `response.rs` — the reply JSON, field by field in Doris's order.
//! - `client.rs` — a tiny typed client of the sim-only endpoints, for tests.
//! - `mysql/` — the FE query port (MySQL protocol): `mod.rs` the listener and password check, `sql.rs` the SQL it
//!   answers.
//!
//! In-process use (one sim per test, ephemeral ports):
//! ```no_run
//! # async fn demo() -> Result<(), doris_sim::SimError> {
//! let sim = doris_sim::Sim::start(doris_sim::SimOptions {
//!     ddl: vec!["CREATE DATABASE d; CREATE TABLE d.t (k BIGINT NOT NULL, v STRING) UNIQUE KEY(k) \
//!                DISTRIBUTED BY HASH(k) BUCKETS 1;".into()],
//!     ..Default::default()
//! })
//! .await?;
//! let fe = sim.fe_url(); // http://127.0.0.1:<port>
//! let rows = sim.client().rows("d", "t").await;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod client;
pub mod ddl;
pub mod expr;
mod http;
pub mod load;
pub mod mysql;
pub mod response;
pub mod state;
pub mod table;
pub mod value;
pub mod version;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use client::SimClient;
pub use state::{FaultKind, FaultSpec};
pub use version::DorisVersion;

/// How to start a sim. `Default` gives ephemeral ports, user `root` with an empty password, memory only.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// FE `http_port` (Doris default 8030); 0 = ephemeral.
    pub fe_port: u16,
    /// BE `webserver_port` (Doris default 8040); 0 = ephemeral.
    pub be_port: u16,
    /// FE `query_port`, the MySQL protocol (Doris default 9030); 0 = ephemeral.
    pub query_port: u16,
    /// DDL sources: an entry containing `;` or a newline is DDL text, anything else is a file path.
    pub ddl: Vec<String>,
    /// The one Doris user that may load.
    pub user: String,
    pub password: String,
    /// Directory of the commit log; data and labels survive a restart. `None` = memory only.
    pub data_dir: Option<PathBuf>,
    /// `max_tablet_version_num`: loads fail with `[E-235]` while more versions than this are uncompacted.
    /// `None` = no limit.
    pub max_versions: Option<u64>,
    /// Background compaction speed, in versions drained per second per table (default 10).
    pub compaction_versions_per_sec: f64,
    /// `streaming_label_keep_max_second`: how long finished labels stay (default 43200 s = 12 h).
    pub label_keep_max_secs: u64,
    /// `streaming_load_max_mb` in bytes (default 10240 MiB).
    pub max_body_bytes: u64,
    /// `streaming_load_json_max_mb` in bytes, for JSON without `read_json_by_line` (default 100 MiB).
    pub max_json_body_bytes: u64,
    /// Interface both listeners bind (default 127.0.0.1).
    pub bind_host: String,
    /// Host written into `Location` and `ErrorURL` (default 127.0.0.1).
    pub be_host: String,
    /// `group_commit_interval_ms`: when group-commit loads become visible (default 10000 ms).
    pub group_commit_interval_ms: u64,
    /// Session time zone loads default to when they send no `timezone` header (default `+00:00`).
    pub timezone: String,
    /// The Doris release whose load behaviours to follow where releases differ (default the newest; `version.rs`).
    pub doris_version: DorisVersion,
    /// Pre-committed (2PC) transactions are aborted after this many seconds; `None` = never (default).
    pub precommit_ttl_secs: Option<u64>,
    /// HTTPS on the FE and BE listeners; `None` = plain HTTP (default).
    pub tls: Option<SimTls>,
}

/// The certificate the FE and BE serve over TLS, like Doris' `enable_https` with its key store.
#[derive(Debug, Clone)]
pub struct SimTls {
    /// PEM file: the server certificate, then any intermediate CA certificates.
    pub cert_file: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// The FE serves HTTPS but redirects to a plain-HTTP BE (`http://` in `Location`), as a cluster whose BEs lack
    /// TLS does; the BE then serves plain HTTP. For tests of a client's https → http downgrade refusal.
    pub plain_be: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            fe_port: 0,
            be_port: 0,
            query_port: 0,
            ddl: Vec::new(),
            user: "root".into(),
            password: String::new(),
            data_dir: None,
            max_versions: None,
            compaction_versions_per_sec: 10.0,
            label_keep_max_secs: 43_200,
            max_body_bytes: 10_240 << 20,
            max_json_body_bytes: 100 << 20,
            bind_host: "127.0.0.1".into(),
            be_host: "127.0.0.1".into(),
            group_commit_interval_ms: 10_000,
            timezone: "+00:00".into(),
            doris_version: DorisVersion::default(),
            precommit_ttl_secs: None,
            tls: None,
        }
    }
}

/// Why a sim could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read DDL file {path}: {source}")]
    ReadDdl {
        path: String,
        source: std::io::Error,
    },
    #[error("DDL refused: {0}")]
    Ddl(#[from] ddl::DdlError),
    #[error(transparent)]
    Persist(#[from] state::PersistError),
    #[error("cannot bind the {listener} listener on {addr}: {source}")]
    Bind {
        listener: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("unknown time zone {0:?}: use +HH:MM, UTC or a fixed-offset name")]
    TimeZone(String),
    #[error("TLS: {path}: {reason}")]
    Tls { path: String, reason: String },
}

/// The TLS acceptor of `tls`: its certificate chain and key.
fn tls_acceptor(tls: &SimTls) -> Result<tokio_rustls::TlsAcceptor, SimError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |path: &std::path::Path, reason: String| SimError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| err(&tls.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(err(&tls.cert_file, "holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| err(&tls.key_file, e.to_string()))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| err(&tls.cert_file, e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A running emulator. Dropping it stops the listeners; `shutdown` also waits for them.
pub struct Sim {
    fe_addr: SocketAddr,
    be_addr: SocketAddr,
    query_addr: SocketAddr,
    /// Where `/api/_sim/` answers plain HTTP: the FE, or with TLS a separate listener (ephemeral port, same bind address).
    control_addr: SocketAddr,
    /// `https` for a TLS FE.
    fe_scheme: &'static str,
    be_scheme: &'static str,
    state: Arc<state::State>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Reads every DDL source into one catalog.
pub fn load_ddl(sources: &[String]) -> Result<ddl::Catalog, SimError> {
    let mut catalog = ddl::Catalog::default();
    for (i, src) in sources.iter().enumerate() {
        if src.contains(';') || src.contains('\n') {
            ddl::parse_into(&mut catalog, &format!("<ddl #{}>", i + 1), src)?;
        } else {
            let text = std::fs::read_to_string(src).map_err(|source| SimError::ReadDdl {
                path: src.clone(),
                source,
            })?;
            ddl::parse_into(&mut catalog, src, &text)?;
        }
    }
    Ok(catalog)
}

impl Sim {
    /// Parses the DDL, replays `data_dir`, binds both listeners and starts serving.
    pub async fn start(opts: SimOptions) -> Result<Sim, SimError> {
        let catalog = load_ddl(&opts.ddl)?;
        let offset_secs = value::parse_tz(&opts.timezone)
            .ok_or_else(|| SimError::TimeZone(opts.timezone.clone()))?;
        let knobs = state::Knobs {
            max_versions: opts.max_versions,
            label_keep_max_ms: opts.label_keep_max_secs.saturating_mul(1000),
            default_tz: value::LoadTz { offset_secs },
            doris_version: opts.doris_version,
        };
        let state = Arc::new(state::State::new(catalog, knobs, opts.data_dir.as_deref())?);
        let bind = |listener: &'static str, port: u16| {
            let addr = format!("{}:{port}", opts.bind_host);
            async move {
                TcpListener::bind(&addr)
                    .await
                    .map_err(|source| SimError::Bind {
                        listener,
                        addr,
                        source,
                    })
            }
        };
        let acceptor = opts.tls.as_ref().map(tls_acceptor).transpose()?;
        let be_tls = acceptor
            .clone()
            .filter(|_| !opts.tls.as_ref().is_some_and(|t| t.plain_be));
        let fe_scheme = if acceptor.is_some() { "https" } else { "http" };
        let be_scheme = if be_tls.is_some() { "https" } else { "http" };
        let fe = bind("FE", opts.fe_port).await?;
        let be = bind("BE", opts.be_port).await?;
        let query = bind("query", opts.query_port).await?;
        let local = |l: &TcpListener, listener: &'static str| {
            l.local_addr().map_err(|source| SimError::Bind {
                listener,
                addr: opts.bind_host.clone(),
                source,
            })
        };
        let fe_addr = local(&fe, "FE")?;
        let be_addr = local(&be, "BE")?;
        let query_addr = local(&query, "query")?;
        let control = match acceptor {
            Some(_) => Some(bind("control", 0).await?),
            None => None,
        };
        let control_addr = match &control {
            Some(l) => local(l, "control")?,
            None => fe_addr,
        };
        let query_ctx = Arc::new(mysql::QueryCtx {
            state: state.clone(),
            user: opts.user.clone(),
            password: opts.password.clone(),
        });
        let ctx = Arc::new(http::Ctx {
            state: state.clone(),
            user: opts.user.clone(),
            password: opts.password.clone(),
            be_host: opts.be_host.clone(),
            be_port: be_addr.port(),
            max_body_bytes: opts.max_body_bytes,
            max_json_body_bytes: opts.max_json_body_bytes,
            group_commit_interval: Duration::from_millis(opts.group_commit_interval_ms),
            be_scheme,
        });
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        if let Some(control) = control {
            tracker.spawn(http::serve(
                control,
                http::Role::Control,
                ctx.clone(),
                None,
                cancel.clone(),
                tracker.clone(),
            ));
        }
        tracker.spawn(http::serve(
            fe,
            http::Role::Fe,
            ctx.clone(),
            acceptor,
            cancel.clone(),
            tracker.clone(),
        ));
        tracker.spawn(http::serve(
            be,
            http::Role::Be,
            ctx,
            be_tls,
            cancel.clone(),
            tracker.clone(),
        ));
        tracker.spawn(mysql::serve(
            query,
            query_ctx,
            cancel.clone(),
            tracker.clone(),
        ));
        tracker.spawn(housekeeping(
            state.clone(),
            opts.compaction_versions_per_sec,
            opts.precommit_ttl_secs,
            cancel.clone(),
        ));
        Ok(Sim {
            fe_addr,
            be_addr,
            query_addr,
            control_addr,
            fe_scheme,
            be_scheme,
            state,
            cancel,
            tracker,
        })
    }

    /// `http://127.0.0.1:<fe port>` (`https://` with TLS).
    pub fn fe_url(&self) -> String {
        format!("{}://{}", self.fe_scheme, self.fe_addr)
    }

    /// `http://127.0.0.1:<be port>` (`https://` with TLS, unless `plain_be`).
    pub fn be_url(&self) -> String {
        format!("{}://{}", self.be_scheme, self.be_addr)
    }

    pub fn fe_addr(&self) -> SocketAddr {
        self.fe_addr
    }

    pub fn be_addr(&self) -> SocketAddr {
        self.be_addr
    }

    /// The FE query port (MySQL protocol), e.g. `127.0.0.1:9030`.
    pub fn query_addr(&self) -> SocketAddr {
        self.query_addr
    }

    /// A client of the sim-only endpoints of this sim's FE (with TLS: of its plain control listener).
    pub fn client(&self) -> SimClient {
        SimClient::new(self.control_addr)
    }

    /// Where the sim-only endpoints answer plain HTTP: the FE, or with TLS a separate listener (ephemeral port, same bind address).
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// Visible row count of a table, without HTTP (benchmarks).
    pub fn visible_rows(&self, db: &str, table: &str) -> Option<usize> {
        let idx = self.state.catalog.table(db, table)?;
        Some(self.state.lock().tables[idx].data.visible_rows())
    }

    /// Stops the listeners and waits (at most 5 s) for in-flight requests.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Compaction (drains versions), group-commit visibility, pre-commit expiry and the label cleaner.
async fn housekeeping(
    state: Arc<state::State>,
    versions_per_sec: f64,
    precommit_ttl_secs: Option<u64>,
    cancel: CancellationToken,
) {
    let tick = Duration::from_millis(100);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
        ticks += 1;
        state.compact(versions_per_sec * tick.as_secs_f64());
        state.flush_due();
        if let Some(ttl) = precommit_ttl_secs {
            if ticks.is_multiple_of(5) {
                state.expire_precommitted(ttl.saturating_mul(1000));
            }
        }
        if ticks.is_multiple_of(600) {
            state.clean_labels();
        }
    }
}
