//! `cdc2doris run`: wires the stages and owns the lifecycle.
//!
//! ```text
//!  Kafka ──poll thread──▶ events (bounded) ──▶ coordinator ──sealed batch──▶ workers (≤ max_in_flight)
//!                                              │  decode, keys,               │ resolve → merge (PostgreSQL)
//!                                              │  de-duplicate, seal          │ → load (Doris Stream Load)
//!      ◀──commit (next offsets)── offsets.rs ◀─┴──────── BatchDone ◀─────────┘
//! ```
//!
//! The coordinator is the only task that touches the offset tracker: it registers every message
//! (in a batch, or as handled when ignored or dead-lettered), acknowledges a batch when its worker
//! reports that Doris committed it, and asks the source to commit what became committable.
//! Backpressure: when `max_in_flight` batches are loading and the next one is sealed, the
//! coordinator stops reading events; the source's channel fills, the source waits for room, and
//! pauses its partitions when none comes within a second.
//!
//! Shutdown order (SIGTERM/SIGINT → `shutdown` cancelled): stop reading events → seal the open
//! batch and dispatch it → wait for every in-flight batch (up to `batch.shutdown_timeout`, then
//! abandon them unacknowledged) → commit what is acknowledged → drop the event channel → stop the
//! source (final synchronous commit, leave the group).

pub mod cli;
mod coordinator;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState, Check};
use crate::admin::{SharedState, Totals};
use crate::config::Config;
use crate::dead_letter::DeadLetter;
use crate::error::ErrorClass;
use crate::keys::{KeyRule, TableMatch};
use crate::merge::resolve::Resolver;
use crate::merge::tls::tls_error;
use crate::merge::MergeQuery;
use crate::offsets::OffsetTracker;
use crate::sink::DorisSink;
use crate::source::kafka::{KafkaSource, SourceSettings};
use coordinator::{Coordinator, TopicRule, TopicRules};
use worker::WorkerContext;

/// Why the pipeline (or a backfill) stopped with an error. Each wraps the stage's own error; nothing here holds a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The PostgreSQL pool cannot be built from `[postgres]`.
    #[error("cannot start: {0}")]
    Pool(#[from] crate::merge::pool::PoolSetupError),
    /// PostgreSQL refused the connection in a way that stays until someone acts (a certificate the TLS check
    /// refuses).
    #[error("cannot start: PostgreSQL: {}", pool_refusal(.0))]
    PostgresRefused(#[source] deadpool_postgres::PoolError),
    /// `postgres.url` reaches a hot standby.
    #[error(
        "cannot start: PostgreSQL (postgres.url) is a hot standby (in recovery): its snapshots do not list running \
         transactions, so neither the row versions nor the wait for a change's transaction hold there; point \
         postgres.url at the primary (with several hosts, add target_session_attrs=read-write)"
    )]
    HotStandby,
    /// The merge query cannot be used.
    #[error("cannot start: merge.query_file: {0}")]
    MergeQuery(#[source] crate::merge::MergeError),
    /// A key rule cannot be compiled.
    #[error("cannot start: keys.rules[{index}] (topic {topic}): {source}")]
    KeyRule {
        /// Index in `keys.rules`.
        index: usize,
        /// The rule's topic.
        topic: String,
        /// What is wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The Doris sink cannot be built from `[doris]`.
    #[error("cannot start: doris: {0}")]
    Sink(#[source] crate::sink::doris::BuildError),
    /// The dead-letter destination cannot be opened.
    #[error("cannot start: dead_letter: {0}")]
    DeadLetter(#[source] crate::dead_letter::DeadLetterError),
    /// The Kafka consumer cannot be created.
    #[error("cannot start: {0}")]
    Source(#[source] crate::source::kafka::SourceError),
    /// The admin endpoint cannot listen.
    #[error("cannot start: admin.listen {listen}: {source}")]
    Admin {
        /// The address.
        listen: std::net::SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// A batch failed in a way retrying cannot fix; its offsets were not committed.
    #[error("stopped: batch {batch}: {source}")]
    Fatal {
        /// The batch's name (id and offset ranges).
        batch: String,
        /// Why.
        #[source]
        source: Box<worker::BatchError>,
    },
    /// The Kafka source stopped unexpectedly.
    #[error("the Kafka source stopped unexpectedly")]
    SourceGone,
}

impl PipelineError {
    /// The error without anything that may quote row data, for `/debug/state` and `/readyz` (the log has it whole):
    /// a batch's failure by its class, SQLSTATE or Doris status. The start-up errors hold no row data.
    pub fn summary(&self) -> String {
        match self {
            PipelineError::Fatal { batch, source } => {
                format!("stopped: batch {batch}: {}", source.summary())
            }
            _ => self.to_string(),
        }
    }
}

/// What PostgreSQL's refusal says: the TLS check's words when it was that, else the error with its causes.
fn pool_refusal(e: &deadpool_postgres::PoolError) -> String {
    if let deadpool_postgres::PoolError::Backend(b) = e {
        if let Some(tls) = tls_error(b) {
            return tls.to_string();
        }
    }
    crate::merge::pool::describe_pool_error(e)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Builds the PostgreSQL pool from the config ([`crate::merge::pool`]).
pub fn postgres_pool(config: &Config) -> Result<Pool, PipelineError> {
    postgres_pool_with(config, 0)
}

/// [`postgres_pool`] with `extra` connections beyond `postgres.pool_size` (backfill streams its keys over one).
pub(crate) fn postgres_pool_with(config: &Config, extra: usize) -> Result<Pool, PipelineError> {
    Ok(crate::merge::pool::pool(
        &config.file.postgres,
        config.postgres_password.as_ref(),
        extra,
    )?)
}

/// What merging and loading need, built from the config: shared by `run` and `backfill`.
pub(crate) struct Parts {
    pub pool: Pool,
    pub merge: MergeQuery,
    pub sink: DorisSink,
    pub dead_letter: Arc<DeadLetter>,
}

impl Parts {
    /// Builds them; `extra_connections` beyond `postgres.pool_size`.
    pub(crate) async fn new(
        config: &Config,
        extra_connections: usize,
    ) -> Result<Parts, PipelineError> {
        let file = &config.file;
        let pool = postgres_pool_with(config, extra_connections)?;
        let merge = MergeQuery::new(
            &config.merge_query,
            &file.merge.key_column,
            file.merge.key_type,
            &file.doris.sequence_column,
        )
        .map_err(PipelineError::MergeQuery)?;
        let password = config
            .doris_password
            .clone()
            .unwrap_or_else(|| secrecy::SecretString::from(String::new()));
        let sink = DorisSink::new(&file.doris, password).map_err(PipelineError::Sink)?;
        let dead_letter = Arc::new(
            DeadLetter::open(&config.dead_letter)
                .await
                .map_err(PipelineError::DeadLetter)?,
        );
        Ok(Parts {
            pool,
            merge,
            sink,
            dead_letter,
        })
    }
}

/// Runs the pipeline until `shutdown` is cancelled (then drains and returns `Ok`) or a fatal error.
pub async fn run(
    config: Config,
    prometheus: Option<PrometheusHandle>,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let file = &config.file;
    let Parts {
        pool,
        merge,
        sink,
        dead_letter,
    } = Parts::new(&config, 0).await?;

    let mut resolvers = Vec::new();
    let mut rules: HashMap<String, TopicRules> = HashMap::new();
    for (i, r) in file.keys.rules.iter().enumerate() {
        let setup = |e: Box<dyn std::error::Error + Send + Sync>| PipelineError::KeyRule {
            index: i,
            topic: r.topic.clone(),
            source: e,
        };
        let rule =
            KeyRule::new(r.fields.iter().cloned(), r.key_type).map_err(|e| setup(e.into()))?;
        let table = r
            .table
            .as_deref()
            .map(TableMatch::parse)
            .transpose()
            .map_err(|e| setup(e.into()))?;
        let subject = match &table {
            Some(t) => format!("{} (table {t})", r.topic),
            None => r.topic.clone(),
        };
        let resolver = r.resolve_query.as_ref().map(|q| {
            resolvers.push(Resolver::new(&subject, q, r.key_type));
            resolvers.len() - 1
        });
        let topic = rules.entry(r.topic.clone()).or_insert_with(|| TopicRules {
            format: r.format,
            rules: Vec::new(),
            unmatched_logged: HashSet::new(),
        });
        topic.rules.push((table, TopicRule { rule, resolver }));
    }

    let abandon = CancellationToken::new();
    // Whether PostgreSQL answered the last query (readiness); probed once at start.
    let pg_healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    match pool.get().await {
        Ok(c) => match c.query_one("SELECT pg_is_in_recovery()", &[]).await {
            Ok(row) if row.try_get::<_, bool>(0).unwrap_or(false) => {
                return Err(PipelineError::HotStandby);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("PostgreSQL does not answer yet: {e}");
                pg_healthy.store(false, Ordering::Relaxed);
            }
        },
        Err(e) => {
            // A certificate the TLS check refuses stays refused until someone acts: stop now and say so, rather
            // than retry every batch.
            if let deadpool_postgres::PoolError::Backend(b) = &e {
                if tls_error(b).is_some_and(|t| t.class() == ErrorClass::Permanent) {
                    return Err(PipelineError::PostgresRefused(e));
                }
            }
            tracing::warn!(
                "PostgreSQL is not reachable yet: {}",
                crate::merge::pool::describe_pool_error(&e)
            );
            pg_healthy.store(false, Ordering::Relaxed);
        }
    }
    let ctx = Arc::new(WorkerContext {
        key_column: file.merge.key_column.clone(),
        pg_healthy: pg_healthy.clone(),
        pool: pool.clone(),
        merge,
        key_type: file.merge.key_type,
        resolvers,
        chunk_size: file.merge.chunk_size,
        parallel_chunks: file.postgres.pool_size.max(1),
        max_load_bytes: file.batch.max_load_bytes.max(1),
        labels: sink.label_scope(),
        sink,
        dead_letter: dead_letter.clone(),
        abandon: abandon.clone(),
    });

    let shared = Arc::new(Mutex::new(SharedState::default()));
    let tasks = TaskTracker::new();
    let admin_stop = CancellationToken::new();

    // Source.
    let (events_tx, events_rx) = mpsc::channel(4096);
    let mut source = KafkaSource::start(
        &crate::source::kafka::consumer_config(
            config.file.kafka.run_consumer_properties(&file.batch),
            &config.kafka_secret_properties,
        ),
        SourceSettings {
            topics: file.kafka.topics.clone(),
            revoke_timeout: file.kafka.revoke_timeout,
            channel_capacity: 4096,
        },
        events_tx,
    )
    .map_err(PipelineError::Source)?;
    let source_stats = source.stats();

    // Admin endpoints.
    let listener = tokio::net::TcpListener::bind(file.admin.listen)
        .await
        .map_err(|source| PipelineError::Admin {
            listen: file.admin.listen,
            source,
        })?;
    let stale_after = file.batch.max_wait + file.doris.retry_deadline;
    let admin_state = AdminState {
        prometheus: prometheus.clone(),
        readiness: Arc::new({
            let shared = shared.clone();
            let stats = source_stats.clone();
            let pg = pg_healthy.clone();
            move || {
                let mut checks = readiness(&shared, &stats, stale_after);
                let ok = pg.load(Ordering::Relaxed);
                checks.push(Check {
                    name: "postgres".into(),
                    ok,
                    detail: if ok {
                        "last query succeeded".into()
                    } else {
                        "last query failed; retrying".into()
                    },
                });
                checks
            }
        }),
        debug_state: Arc::new({
            let shared = shared.clone();
            let stats = source_stats.clone();
            move || match shared.lock() {
                Ok(mut s) => {
                    s.consumer_lag = stats.lag.lock().map(|l| l.clone()).unwrap_or_default();
                    s.source_pauses = stats.pauses.load(Ordering::Relaxed);
                    s.source_waiting = stats.waiting.load(Ordering::Relaxed);
                    serde_json::to_value(&*s).unwrap_or_default()
                }
                Err(_) => serde_json::Value::Null,
            }
        }),
    };
    tracing::info!(listen = %file.admin.listen, "admin endpoints: /metrics /healthz /readyz /debug/state");
    if let Some(w) = admin::exposure_warning(file.admin.listen) {
        tracing::warn!("{w}");
    }
    tasks.spawn(admin::serve(listener, admin_state, admin_stop.clone()));
    if let Some(h) = prometheus {
        let stop = admin_stop.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => h.run_upkeep(),
                }
            }
        });
    }

    let commit_results = source
        .take_commit_results()
        .unwrap_or_else(|| mpsc::unbounded_channel().1);
    let mut coord = Coordinator {
        rules,
        tracker: OffsetTracker::new(),
        open: None,
        sealed: None,
        in_flight: HashMap::new(),
        max_in_flight: file.batch.max_in_flight.max(1),
        max_keys: file.batch.max_keys.max(1),
        max_bytes: file.batch.max_bytes.max(1),
        max_wait: file.batch.max_wait,
        linger: file.batch.linger,
        backlog_max_keys: file.batch.backlog_max_keys.max(file.batch.max_keys).max(1),
        backlog_max_wait: file.batch.backlog_max_wait.max(file.batch.max_wait),
        idle_since: None,
        read_age: None,
        behind: false,
        key_type: ctx.key_type,
        resolver_types: ctx.resolvers.iter().map(|r| r.value_type).collect(),
        launch: coordinator::workers(ctx),
        dead_letter,
        tasks: tasks.clone(),
        done_tx: None,
        totals: Totals::default(),
        shared: shared.clone(),
        source: &source,
        revoke_timeout: file.kafka.revoke_timeout,
        last_progress: Instant::now(),
        progress_interval: file.log.progress_interval,
        last_load_unix: 0,
        shutdown: shutdown.clone(),
    };
    let result = coord
        .run(
            events_rx,
            commit_results,
            &shutdown,
            file.batch.shutdown_timeout,
            &abandon,
        )
        .await;
    let fatal = result.as_ref().err().map(PipelineError::summary);
    if let Ok(mut s) = shared.lock() {
        s.fatal = fatal;
    }
    drop(coord);
    source.stop().await;
    admin_stop.cancel();
    tasks.close();
    tasks.wait().await;
    pool.close();
    result
}

fn readiness(
    shared: &Mutex<SharedState>,
    stats: &crate::source::kafka::SourceStats,
    stale_after: Duration,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let max_poll = stats.max_poll_exceeded.load(Ordering::Relaxed);
    checks.push(Check {
        name: "kafka_group_member".into(),
        ok: !max_poll,
        detail: if max_poll {
            "left the group after max.poll.interval.ms; raise it or speed up loads".into()
        } else {
            "polling".into()
        },
    });
    let Ok(s) = shared.lock() else {
        checks.push(Check {
            name: "state".into(),
            ok: false,
            detail: "state lock poisoned".into(),
        });
        return checks;
    };
    checks.push(Check {
        name: "partitions_assigned".into(),
        ok: !s.partitions.is_empty(),
        detail: format!("{} partitions", s.partitions.len()),
    });
    let oldest = s
        .in_flight
        .iter()
        .filter_map(|b| b.sealed_at.map(|t| t.elapsed()))
        .max();
    let stuck = oldest.is_some_and(|a| a > stale_after);
    checks.push(Check {
        name: "loads_progressing".into(),
        ok: !stuck && s.fatal.is_none(),
        detail: match (&s.fatal, oldest) {
            (Some(f), _) => f.clone(),
            (None, Some(a)) => format!(
                "oldest batch in flight for {:.1}s; last load at {}",
                a.as_secs_f64(),
                s.last_load_unix
            ),
            (None, None) => format!("no batch in flight; last load at {}", s.last_load_unix),
        },
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{FailReason, SinkError};

    /// What `/debug/state` and `/readyz` show of a fatal batch failure: the batch, the load's label and Doris'
    /// status, not Doris' message nor an unexpected body, which may quote the rows (the log has them).
    #[test]
    fn a_fatal_error_is_published_without_doris_message_or_body() {
        let fatal = |e: SinkError| PipelineError::Fatal {
            batch: "b7 (t-0:10..20)".into(),
            source: Box::new(worker::BatchError::Load(e)),
        };
        let rejected = SinkError::Rejected {
            label: "l7".into(),
            reason: FailReason::BadRequest,
            message: "column email: value ann.private@example.com too long".into(),
        };
        let answer = SinkError::UnexpectedAnswer {
            label: "l8".into(),
            url: "http://be:8040/api/d/t/_stream_load".into(),
            status: 500,
            body_excerpt: "{\"row\": \"ann.private@example.com\"}".into(),
        };
        let exhausted = SinkError::RetriesExhausted {
            label: "l9".into(),
            attempts: 3,
            elapsed: Duration::from_secs(30),
            last: Box::new(SinkError::Rejected {
                label: "l9".into(),
                reason: FailReason::Unclassified,
                message: "ann.private@example.com".into(),
            }),
        };
        for e in [rejected, answer, exhausted] {
            let e = fatal(e);
            assert!(e.to_string().contains("ann.private"), "the log's text: {e}");
            let summary = e.summary();
            assert!(
                summary.starts_with("stopped: batch b7 (t-0:10..20): load l"),
                "{summary}"
            );
            assert!(!summary.contains("ann.private"), "{summary}");
        }
    }
}
