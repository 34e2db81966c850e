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

pub mod backfill;
pub mod cli;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::config::ClientConfig;
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState, Check};
use crate::batch::Batch;
use crate::config::{Config, DeadLetterTarget as ConfigDeadLetter};
use crate::dead_letter::{DeadLetter, DeadLetterTarget, MessageRejection};
use crate::decode::{self, Decoded, Format, MessageContext};
use crate::error::ErrorClass;
use crate::keys::{KeyRule, TableMatch};
use crate::merge::tls::{tls_error, PgTls};
use crate::merge::MergeQuery;
use crate::offsets::{BatchId, OffsetTracker, TopicPartition};
use crate::sink::doris::label::build_label;
use crate::sink::{DorisSink, Sink};
use crate::source::kafka::{KafkaSource, SourceEvent, SourceMessage, SourceSettings};
use worker::{BatchDone, BatchOutcome, Resolver, SealedBatch, WorkerContext};

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Something could not be set up (connections, the admin port, the source).
    #[error("cannot start: {0}")]
    Setup(String),
    /// A batch failed in a way retrying cannot fix; its offsets were not committed.
    #[error("stopped: {0}")]
    Fatal(String),
    /// The Kafka source stopped unexpectedly.
    #[error("the Kafka source stopped unexpectedly")]
    SourceGone,
}

/// How one topic's messages become keys.
struct TopicRules {
    /// The topic's format, the same for all its rules (decoding tells the table).
    format: Format,
    /// The topic's rules with the table each takes (`None`: every table no other rule names).
    rules: Vec<(Option<TableMatch>, TopicRule)>,
    /// Tables seen without a rule, each logged once.
    unmatched_logged: HashSet<String>,
}

/// How the events of one topic (or of one of its tables) become keys.
struct TopicRule {
    rule: KeyRule,
    /// Index into the resolvers, when the values go through a resolve query.
    resolver: Option<usize>,
}

/// What `/debug/state` and `/readyz` show; updated by the coordinator.
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
}

/// A batch in flight, for `/debug/state`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InFlightView {
    /// Tracker id.
    pub batch: u64,
    /// Stream Load label.
    pub label: String,
    /// Distinct keys (before resolving).
    pub keys: usize,
    /// Seconds since it was sealed.
    pub age_seconds: f64,
    #[serde(skip)]
    sealed_at: Option<Instant>,
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

/// Builds the PostgreSQL pool from the config: URL, password, timeouts, and TLS as `tls_mode` and `tls_ca_file` say
/// ([`crate::merge::tls`]). Connections are made when first needed.
pub fn postgres_pool(config: &Config) -> Result<Pool, PipelineError> {
    postgres_pool_with(config, 0)
}

/// [`postgres_pool`] with `extra` connections beyond `postgres.pool_size` (backfill streams its keys over one).
pub(crate) fn postgres_pool_with(config: &Config, extra: usize) -> Result<Pool, PipelineError> {
    let pg = &config.file.postgres;
    let mut cfg: tokio_postgres::Config = pg
        .url
        .parse()
        .map_err(|e| PipelineError::Setup(format!("postgres.url: {e}")))?;
    if let Some(p) = &config.postgres_password {
        cfg.password(p.expose_secret());
    }
    cfg.connect_timeout(pg.connect_timeout);
    cfg.application_name("cdc2doris");
    cfg.options(format!(
        "-c statement_timeout={}",
        pg.statement_timeout.as_millis()
    ));
    let tls = PgTls::new(pg.tls_mode, pg.tls_ca_file.as_deref())
        .map_err(|e| PipelineError::Setup(e.to_string()))?;
    cfg.ssl_mode(tls.ssl_mode());
    let mgr = Manager::from_config(
        cfg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(pg.pool_size.max(1) + extra)
        .build()
        .map_err(|e| PipelineError::Setup(format!("postgres pool: {e}")))
}

/// A pool error with its causes: the driver's own text leaves them out ("error performing TLS handshake" and no
/// word of the certificate), so every cause is appended once. Holds no secret: the causes are the server's and the
/// TLS check's words.
pub(crate) fn describe_pool_error(e: &deadpool_postgres::PoolError) -> String {
    crate::error::error_chain(e)
}

/// The librdkafka consumer config: properties from the config plus the secret ones.
pub fn consumer_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in config.kafka_consumer_properties() {
        c.set(k, v);
    }
    for (k, v) in &config.kafka_secret_properties {
        c.set(k, v.expose_secret());
    }
    // Lag per partition comes from librdkafka's statistics.
    if c.get("statistics.interval.ms").is_none() {
        c.set("statistics.interval.ms", "5000");
    }
    c
}

fn dead_letter_target(config: &Config) -> DeadLetterTarget {
    match &config.dead_letter {
        ConfigDeadLetter::File(p) => DeadLetterTarget::File(p.clone()),
        ConfigDeadLetter::Topic(t) => {
            let mut properties: Vec<(String, String)> = vec![(
                "bootstrap.servers".to_string(),
                config.file.kafka.bootstrap_servers.join(","),
            )];
            // Security settings apply to the producer too; consumer-only ones are left out.
            for (k, v) in &config.file.kafka.properties {
                if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                    properties.push((k.clone(), v.to_string()));
                }
            }
            for (k, v) in &config.kafka_secret_properties {
                properties.push((k.clone(), v.expose_secret().to_string()));
            }
            DeadLetterTarget::Kafka {
                topic: t.clone(),
                properties,
            }
        }
    }
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
        .map_err(|e| PipelineError::Setup(format!("merge.query_file: {e}")))?;
        let password = config
            .doris_password
            .clone()
            .unwrap_or_else(|| secrecy::SecretString::from(String::new()));
        let sink = DorisSink::new(&file.doris, password)
            .map_err(|e| PipelineError::Setup(format!("doris: {e}")))?;
        let dead_letter = Arc::new(
            DeadLetter::open(&dead_letter_target(config))
                .await
                .map_err(|e| PipelineError::Setup(format!("dead_letter: {e}")))?,
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
        let setup =
            |e: String| PipelineError::Setup(format!("keys.rules[{i}] (topic {}): {e}", r.topic));
        let rule =
            KeyRule::new(r.fields.iter().cloned(), r.key_type).map_err(|e| setup(e.to_string()))?;
        let table = r
            .table
            .as_deref()
            .map(TableMatch::parse)
            .transpose()
            .map_err(setup)?;
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
        Ok(c) => {
            if let Err(e) = c.simple_query("SELECT 1").await {
                tracing::warn!("PostgreSQL does not answer yet: {e}");
                pg_healthy.store(false, Ordering::Relaxed);
            }
        }
        Err(e) => {
            // A certificate the TLS check refuses stays refused until someone acts: stop now and say so, rather
            // than retry every batch.
            if let deadpool_postgres::PoolError::Backend(e) = &e {
                if let Some(tls) = tls_error(e).filter(|t| t.class() == ErrorClass::Permanent) {
                    return Err(PipelineError::Setup(format!("PostgreSQL: {tls}")));
                }
            }
            tracing::warn!(
                "PostgreSQL is not reachable yet: {}",
                describe_pool_error(&e)
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
        sink,
        dead_letter: dead_letter.clone(),
        abandon: abandon.clone(),
    });

    let shared = Arc::new(Mutex::new(SharedState::default()));
    let tasks = TaskTracker::new();
    let admin_stop = CancellationToken::new();

    // Source.
    let (events_tx, events_rx) = mpsc::channel(4096);
    let source = KafkaSource::start(
        &consumer_config(&config),
        SourceSettings {
            topics: file.kafka.topics.clone(),
            revoke_timeout: file.kafka.revoke_timeout,
            channel_capacity: 4096,
        },
        events_tx,
    )
    .map_err(|e| PipelineError::Setup(e.to_string()))?;
    let source_stats = source.stats();

    // Admin endpoints.
    let listener = tokio::net::TcpListener::bind(file.admin.listen)
        .await
        .map_err(|e| PipelineError::Setup(format!("admin.listen {}: {e}", file.admin.listen)))?;
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
                    serde_json::to_value(&*s).unwrap_or_default()
                }
                Err(_) => serde_json::Value::Null,
            }
        }),
    };
    tracing::info!(listen = %file.admin.listen, "admin endpoints: /metrics /healthz /readyz /debug/state");
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
        label_prefix: file.doris.label_prefix.clone(),
        database: file.doris.database.clone(),
        table: file.doris.table.clone(),
        ctx,
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
    };
    let result = coord
        .run(events_rx, &shutdown, file.batch.shutdown_timeout, &abandon)
        .await;
    let fatal = result.as_ref().err().map(ToString::to_string);
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

/// `schema.table` of an event, for logs.
fn describe_table(table: &decode::TableName<'_>) -> String {
    match (&table.schema, &table.table) {
        (Some(schema), Some(table)) => format!("{schema}.{table}"),
        (None, Some(table)) => table.to_string(),
        _ => "(no table)".to_owned(),
    }
}

/// How often the coordinator asks the source to commit what became committable and refreshes `/debug/state`.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The coordinator: one task, the only owner of the offset tracker.
struct Coordinator<'a, S: Sink + 'static> {
    rules: HashMap<String, TopicRules>,
    tracker: OffsetTracker,
    open: Option<Batch>,
    sealed: Option<(SealedBatch, InFlight)>,
    in_flight: HashMap<BatchId, InFlight>,
    max_in_flight: usize,
    max_keys: usize,
    max_bytes: usize,
    max_wait: Duration,
    label_prefix: String,
    database: String,
    table: String,
    ctx: Arc<WorkerContext<S>>,
    dead_letter: Arc<DeadLetter>,
    tasks: TaskTracker,
    done_tx: Option<mpsc::UnboundedSender<BatchDone>>,
    totals: Totals,
    shared: Arc<Mutex<SharedState>>,
    source: &'a KafkaSource,
    revoke_timeout: Duration,
    last_progress: Instant,
    progress_interval: Duration,
    last_load_unix: u64,
}

struct InFlight {
    label: String,
    partitions: HashSet<(String, i32)>,
    keys: usize,
    sealed_at: Instant,
    event_times_ms: Vec<i64>,
    messages: u64,
}

impl<S: Sink + 'static> Coordinator<'_, S> {
    async fn run(
        &mut self,
        mut events: mpsc::Receiver<SourceEvent>,
        shutdown: &CancellationToken,
        shutdown_timeout: Duration,
        abandon: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        self.done_tx = Some(done_tx);
        // Commits and the shared state are brought up to date at most every FLUSH_EVERY, not after every message:
        // a backlog brings thousands of messages a second, and each flush walks every partition.
        let mut next_flush = tokio::time::Instant::now();
        let mut dirty = false;
        let result = loop {
            let deadline = self
                .open
                .as_ref()
                .map(|b| tokio::time::Instant::from_std(b.opened + self.max_wait));
            let can_read = self.sealed.is_none();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Ok(()),
                _ = sleep_until(Some(next_flush)), if dirty => {}
                Some(done) = done_rx.recv() => {
                    if let Err(e) = self.on_done(done) { break Err(e); }
                }
                ev = events.recv(), if can_read => match ev {
                    Some(SourceEvent::Message(m)) => self.on_message(m).await,
                    Some(SourceEvent::Assigned(parts)) => {
                        for (t, p) in parts { self.tracker.assign(&t, p, None); }
                    }
                    Some(SourceEvent::Revoked { partitions, lost, reply }) => {
                        if let Err(e) = self.on_revoked(partitions, lost, reply, &mut done_rx).await { break Err(e); }
                    }
                    None => break Err(PipelineError::SourceGone),
                },
                _ = sleep_until(deadline), if deadline.is_some() && can_read => self.seal(),
            }
            self.dispatch();
            dirty = true;
            let now = tokio::time::Instant::now();
            if now >= next_flush {
                self.commit();
                self.publish_state();
                dirty = false;
                next_flush = now + FLUSH_EVERY;
            }
        };
        // Drain: seal and dispatch what is open, wait for everything in flight.
        if result.is_ok() {
            tracing::info!(
                "shutting down: flushing the open batch and waiting for loads in flight"
            );
        }
        self.seal();
        let drain_until = tokio::time::Instant::now() + shutdown_timeout;
        let mut fatal = result.err();
        while !self.in_flight.is_empty() || self.sealed.is_some() {
            if fatal.is_none() {
                self.dispatch();
            } else {
                self.sealed = None;
                abandon.cancel();
            }
            tokio::select! {
                d = done_rx.recv() => match d {
                    Some(done) => {
                        if let Err(e) = self.on_done(done) {
                            fatal.get_or_insert(e);
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(drain_until) => {
                    tracing::warn!(in_flight = self.in_flight.len(), "shutdown timeout: abandoning batches in flight (their offsets stay uncommitted)");
                    abandon.cancel();
                    self.sealed = None;
                    // Workers return promptly once abandoned.
                    while let Some(done) = done_rx.recv().await {
                        let _ = self.on_done(done);
                        if self.in_flight.is_empty() { break; }
                    }
                    break;
                }
            }
            self.commit();
        }
        self.commit();
        self.publish_state();
        drop(events);
        self.log_progress(true);
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn dead_letter_message(
        &mut self,
        m: &SourceMessage,
        stage: &'static str,
        reason: String,
    ) {
        tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, stage, "dead-lettering a message: {reason}");
        let rec = MessageRejection {
            stage,
            reason,
            topic: &m.topic,
            partition: m.partition,
            offset: m.offset,
            key: m.key.as_deref(),
            value: m.payload.as_deref(),
        };
        let mut delay = Duration::from_millis(200);
        while let Err(e) = self.dead_letter.write_message(&rec).await {
            tracing::error!(
                "cannot write the dead letter, retrying (the message stays unacknowledged): {e}"
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
        self.totals.dead_lettered += 1;
        self.handled(m, "dead_letter");
    }

    fn handled(&mut self, m: &SourceMessage, outcome: &'static str) {
        metrics::counter!("cdc2doris_source_messages_total", "topic" => m.topic.to_string(), "outcome" => outcome).increment(1);
        if let Err(e) = self
            .tracker
            .register_handled(&m.topic, m.partition, m.offset)
        {
            tracing::debug!("dropping a message: {e}");
        }
    }

    async fn on_message(&mut self, m: SourceMessage) {
        self.totals.messages += 1;
        let Some(topic_rules) = self.rules.get(&*m.topic) else {
            self.dead_letter_message(
                &m,
                "keys",
                format!("no key rule for topic {}; add one to keys.rules", m.topic),
            )
            .await;
            return;
        };
        let format = topic_rules.format;
        let ctx = MessageContext::new(&m.topic, m.partition, m.offset);
        let decoded = match decode::decode(format, &ctx, m.key.as_deref(), m.payload.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                let reason = e.to_string();
                self.dead_letter_message(&m, "decode", reason).await;
                return;
            }
        };
        if let Decoded::Ignore(i) = &decoded {
            tracing::debug!(topic = %m.topic, offset = m.offset, reason = i.reason.as_str(), "ignored");
            self.totals.ignored += 1;
            self.handled(&m, "ignored");
            return;
        }
        let Some(rule) = crate::keys::rule_for_table(&topic_rules.rules, decoded.table()) else {
            let table = describe_table(decoded.table());
            if let Some(topic_rules) = self.rules.get_mut(&*m.topic) {
                if topic_rules.unmatched_logged.insert(table.clone()) {
                    tracing::info!(
                        topic = %m.topic,
                        offset = m.offset,
                        table = %table,
                        "events of this table are ignored: no keys.rules entry of the topic names it (logged once \
                         per table; counted as outcome=no_rule)"
                    );
                }
            }
            self.totals.ignored += 1;
            self.totals.no_rule += 1;
            self.handled(&m, "no_rule");
            return;
        };
        let resolver = rule.resolver;
        let tuples = match rule.rule.extract(&decoded, m.key.as_deref(), &ctx) {
            Ok(t) => t,
            // In the Debezium envelope a tombstone always follows the delete event of the same row, and
            // that event (its before image) already gave the keys. When the rule's field is not part of
            // the row's primary key (job_activity → job_id), the tombstone cannot name it and needs not.
            // Unwrapped records are different: there the tombstone may be the only sign of a delete.
            Err(crate::keys::KeyError::Missing { .. })
                if m.payload.is_none() && format == Format::Debezium =>
            {
                self.totals.ignored += 1;
                self.handled(&m, "ignored");
                return;
            }
            Err(e) => {
                let reason = e.to_string();
                self.dead_letter_message(&m, "keys", reason).await;
                return;
            }
        };
        if tuples.is_empty() {
            if let Decoded::Change(c) = &decoded {
                if c.op == decode::Op::Truncate {
                    tracing::warn!(topic = %m.topic, offset = m.offset, "TRUNCATE carries no keys: rows of the truncated table stay in Doris until their keys change again");
                }
            }
            self.handled(&m, "no_keys");
            return;
        }
        if self.open.is_none() {
            self.open = Some(Batch::new(self.tracker.open_batch()));
        }
        let Some(batch) = self.open.as_mut() else {
            return;
        };
        if let Err(e) = self
            .tracker
            .register(&m.topic, m.partition, m.offset, batch.id)
        {
            tracing::debug!("dropping a message: {e}");
            return;
        }
        metrics::counter!("cdc2doris_source_messages_total", "topic" => m.topic.to_string(), "outcome" => "keys").increment(1);
        let bytes = m.key.as_ref().map_or(0, Vec::len) + m.payload.as_ref().map_or(0, Vec::len);
        batch.cover(&m.topic, m.partition, m.offset, bytes, m.timestamp_ms);
        for mut t in tuples {
            let Some(k) = t.pop() else { continue };
            match resolver {
                Some(r) => {
                    batch.resolve.entry(r).or_default().insert(k);
                }
                None => {
                    batch.keys.insert(k);
                }
            }
        }
        if batch.distinct_keys() >= self.max_keys || batch.bytes >= self.max_bytes {
            self.seal();
        }
    }

    /// Closes the open batch; it waits in `sealed` until a worker slot is free.
    fn seal(&mut self) {
        if self.sealed.is_some() {
            return;
        }
        let Some(b) = self.open.take() else { return };
        let ranges = b.offset_ranges();
        let label = build_label(&self.label_prefix, &self.database, &self.table, &ranges);
        metrics::histogram!("cdc2doris_batch_keys").record(b.distinct_keys() as f64);
        metrics::histogram!("cdc2doris_batch_messages").record(b.messages as f64);
        metrics::histogram!("cdc2doris_batch_bytes").record(b.bytes as f64);
        if b.distinct_keys() > 0 {
            metrics::gauge!("cdc2doris_batch_dedup_ratio")
                .set(b.messages as f64 / b.distinct_keys() as f64);
        }
        tracing::debug!(label = %label, keys = b.distinct_keys(), messages = b.messages, "batch sealed");
        let partitions = b.ranges.keys().map(|(t, p)| (t.to_string(), *p)).collect();
        let info = InFlight {
            label: label.clone(),
            partitions,
            keys: b.distinct_keys(),
            sealed_at: Instant::now(),
            event_times_ms: b.event_times_ms,
            messages: b.messages,
        };
        let sealed = SealedBatch {
            id: b.id,
            label,
            ranges,
            keys: b.keys,
            resolve: b.resolve.into_iter().collect(),
        };
        self.sealed = Some((sealed, info));
    }

    /// Starts the sealed batch on a worker when a slot is free.
    fn dispatch(&mut self) {
        if self.in_flight.len() >= self.max_in_flight {
            return;
        }
        let Some((batch, info)) = self.sealed.take() else {
            return;
        };
        let Some(done_tx) = self.done_tx.clone() else {
            return;
        };
        self.in_flight.insert(batch.id, info);
        let ctx = self.ctx.clone();
        self.tasks.spawn(async move {
            let done = worker::run_batch(ctx, batch).await;
            let _ = done_tx.send(done);
        });
    }

    /// A worker finished: acknowledge, count, or stop.
    fn on_done(&mut self, done: BatchDone) -> Result<(), PipelineError> {
        let info = self.in_flight.remove(&done.id);
        match done.outcome {
            BatchOutcome::Loaded {
                receipt,
                keys,
                rows,
                deletes,
                queries,
                rejected,
                loads,
                bytes,
            } => {
                if let Err(e) = self.tracker.ack_batch(done.id) {
                    tracing::warn!(label = %done.label, "ack ignored: {e}");
                }
                self.totals.keys_refreshed += keys as u64;
                self.totals.rows += rows as u64 + deletes as u64;
                self.totals.deletes += deletes as u64;
                self.totals.queries += queries as u64;
                self.totals.rows_rejected += rejected as u64;
                if let Some(r) = &receipt {
                    self.totals.loads += loads as u64;
                    self.totals.bytes += bytes as u64;
                    self.last_load_unix = now_unix();
                    tracing::info!(
                        label = %done.label, keys, rows, deletes, queries, attempts = r.attempts,
                        bytes, rejected, seconds = done.elapsed.as_secs_f64(), "batch loaded"
                    );
                }
                metrics::counter!("cdc2doris_keys_refreshed_total").increment(keys as u64);
                if let Some(info) = info {
                    let now = now_ms();
                    for ts in &info.event_times_ms {
                        let lag = (now - ts).max(0) as f64 / 1000.0;
                        metrics::histogram!("cdc2doris_pipeline_event_to_ack_seconds").record(lag);
                    }
                    metrics::counter!("cdc2doris_batch_messages_acked_total")
                        .increment(info.messages);
                }
                Ok(())
            }
            BatchOutcome::Abandoned => {
                let _ = self.tracker.forget_batch(done.id);
                tracing::warn!(label = %done.label, "batch abandoned at shutdown; its messages will be read again");
                Ok(())
            }
            BatchOutcome::Fatal(msg) => {
                let _ = self.tracker.forget_batch(done.id);
                tracing::error!(label = %done.label, "batch failed for good: {msg}");
                Err(PipelineError::Fatal(format!("batch {}: {msg}", done.label)))
            }
        }
    }

    /// Partitions are being taken away: finish their batches (bounded), then answer with what to commit.
    async fn on_revoked(
        &mut self,
        partitions: Vec<(String, i32)>,
        lost: bool,
        reply: std::sync::mpsc::SyncSender<Vec<crate::source::kafka::CommitOffset>>,
        done_rx: &mut mpsc::UnboundedReceiver<BatchDone>,
    ) -> Result<(), PipelineError> {
        let revoked: HashSet<(String, i32)> = partitions.iter().cloned().collect();
        let touches = |parts: &HashSet<(String, i32)>| parts.iter().any(|p| revoked.contains(p));
        if !lost {
            if self
                .open
                .as_ref()
                .is_some_and(|b| partitions.iter().any(|(t, p)| b.covers(t, *p)))
            {
                self.seal();
            }
            // Leave a margin before the source's own revoke timeout.
            let until = tokio::time::Instant::now()
                + self.revoke_timeout.saturating_sub(Duration::from_secs(1));
            loop {
                self.dispatch();
                let waiting = self.in_flight.values().any(|f| touches(&f.partitions))
                    || self
                        .sealed
                        .as_ref()
                        .is_some_and(|(_, f)| touches(&f.partitions));
                if !waiting {
                    break;
                }
                tokio::select! {
                    d = done_rx.recv() => match d {
                        Some(done) => self.on_done(done)?,
                        None => break,
                    },
                    _ = tokio::time::sleep_until(until) => {
                        tracing::warn!("revoke: batches of the revoked partitions are still loading; releasing them uncommitted");
                        break;
                    }
                }
            }
        }
        let mut commit = Vec::new();
        for (t, p) in &partitions {
            if let Some(next) = self.tracker.revoke(t, *p) {
                commit.push((
                    TopicPartition {
                        topic: t.clone(),
                        partition: *p,
                    },
                    next,
                ));
            }
        }
        let _ = reply.send(if lost { Vec::new() } else { commit });
        self.publish_state();
        Ok(())
    }

    /// Asks the source to commit whatever became committable.
    fn commit(&mut self) {
        let candidates = self.tracker.commit_candidates();
        if candidates.is_empty() {
            return;
        }
        for (tp, next) in &candidates {
            self.tracker.mark_committed(&tp.topic, tp.partition, *next);
        }
        self.source.commit(candidates);
    }

    fn publish_state(&mut self) {
        if let Ok(mut s) = self.shared.lock() {
            s.partitions = self.tracker.partitions();
            s.in_flight = self
                .in_flight
                .iter()
                .map(|(id, f)| InFlightView {
                    batch: id.get(),
                    label: f.label.clone(),
                    keys: f.keys,
                    age_seconds: f.sealed_at.elapsed().as_secs_f64(),
                    sealed_at: Some(f.sealed_at),
                })
                .collect();
            s.open_batch = self.open.as_ref().map(|b| OpenBatchView {
                messages: b.messages,
                keys: b.distinct_keys(),
            });
            s.totals = self.totals.clone();
            s.last_load_unix = self.last_load_unix;
        }
        metrics::gauge!("cdc2doris_batches_in_flight").set(self.in_flight.len() as f64);
        self.log_progress(false);
    }

    fn log_progress(&mut self, force: bool) {
        if !force
            && (self.progress_interval.is_zero()
                || self.last_progress.elapsed() < self.progress_interval)
        {
            return;
        }
        self.last_progress = Instant::now();
        let t = &self.totals;
        tracing::info!(
            messages = t.messages,
            ignored = t.ignored,
            dead_lettered = t.dead_lettered,
            keys_refreshed = t.keys_refreshed,
            queries = t.queries,
            loads = t.loads,
            rows = t.rows,
            deletes = t.deletes,
            bytes = t.bytes,
            in_flight = self.in_flight.len(),
            "progress"
        );
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
