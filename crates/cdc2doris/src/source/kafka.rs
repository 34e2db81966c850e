//! The Kafka source: a consumer-group member polled on a dedicated thread.
//!
//! # Why a thread of its own
//! librdkafka runs rebalance callbacks inside `poll()`, on the polling thread, and the revoke
//! callback is the last moment to commit the offsets of the partitions being taken away. We want
//! that callback to *block*: hand the revoked partitions to the pipeline, wait (bounded) until the
//! batches holding their messages are acknowledged by Doris, and commit synchronously before the
//! partitions are released. Blocking is only safe on a thread that is not a tokio worker, so a
//! plain `BaseConsumer` is polled on a `std::thread` (the design of Quickwit's Kafka source,
//! quickwit-oss/quickwit `quickwit-indexing/src/source/kafka_source.rs`).
//!
//! # Protocol between this thread and the pipeline
//! - Messages go out, owned, on a bounded channel in the order they were read. When the channel is
//!   full the thread pauses every assigned partition and keeps polling (so the group does not
//!   evict it after `max.poll.interval.ms`), then resumes once there is room again: that is how a
//!   slow Doris slows consumption instead of growing memory.
//! - Assignments are announced with [`SourceEvent::Assigned`], after librdkafka applied them.
//! - Revocations are announced with [`SourceEvent::Revoked`] *before* they are applied; the
//!   pipeline answers with the offsets to commit for those partitions, which this thread commits
//!   with `CommitMode::Sync` before returning from the callback. A lost assignment (session timed
//!   out) is announced the same way, but nothing is committed: the group already gave the
//!   partitions to someone else.
//! - Commits come in as [`SourceCommand::Commit`]; offsets are the **next** offset to read
//!   (see `offsets.rs` on the "+1" trap) and are passed to `commit` unchanged.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::error::ErrorClass;
use crate::offsets::{commit_list, TopicPartition};

/// One Kafka message, owned, as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    /// The topic it was read from.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The Kafka message key (Debezium puts the row's primary key there).
    pub key: Option<Vec<u8>>,
    /// The value; `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The message timestamp (ms since the epoch), when the broker or producer set one.
    pub timestamp_ms: Option<i64>,
}

/// A partition and the next offset to read, to commit (see `offsets.rs`).
pub type CommitOffset = (TopicPartition, i64);

/// What the source tells the pipeline.
#[derive(Debug)]
pub enum SourceEvent {
    /// A message, in read order per partition.
    Message(SourceMessage),
    /// These partitions were assigned to this member, each with the group's committed offset (the next offset to
    /// read) when it has one: reading resumes there. Sent in order with the messages: every message of these
    /// partitions that follows was fetched for this assignment.
    Assigned(Vec<(TopicPartition, Option<i64>)>),
    /// These partitions are being taken away. Reply with the offsets to commit for them (or an
    /// empty list) as soon as the batches holding their messages are acknowledged or abandoned.
    /// Messages of these partitions read before the revoke and not yet handed over are dropped:
    /// their next owner reads them again.
    Revoked {
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// True when the assignment was lost (nothing will be committed).
        lost: bool,
        /// Where to send the offsets to commit.
        reply: std::sync::mpsc::SyncSender<Vec<CommitOffset>>,
    },
    /// The source handed over everything librdkafka had fetched: the pipeline is caught up with Kafka for now.
    /// Sent once after messages flowed, when a poll without waiting finds nothing; the next message may already be
    /// on its way. The coordinator seals a waiting batch on it instead of waiting for `batch.max_wait`.
    Idle,
}

/// The outcome of a commit, as Kafka confirmed or refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitResult {
    /// The offsets of the commit.
    pub offsets: Vec<CommitOffset>,
    /// Whether Kafka accepted it.
    pub ok: bool,
}

/// What the pipeline tells the source.
#[derive(Debug)]
pub enum SourceCommand {
    /// Commit these offsets (asynchronously: confirmed through the statistics, every `statistics.interval.ms`).
    Commit(Vec<CommitOffset>),
}

/// Errors of the Kafka source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The consumer could not be created (a bad property, an unknown option). Shown through [`describe_error`],
    /// and not exposed as a source: librdkafka's own text quotes the property's value, which may be a secret.
    #[error(
        "cannot create the Kafka consumer: {}; check [kafka], [kafka.properties] and [kafka.properties_from_env]",
        describe_error(.0)
    )]
    Create(KafkaError),
    /// Subscribing failed.
    #[error("cannot subscribe to topics {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The polling thread could not be started.
    #[error("cannot start the Kafka polling thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl SourceError {
    /// Whether retrying can help.
    pub fn class(&self) -> ErrorClass {
        match self {
            SourceError::Create(_) | SourceError::Subscribe { .. } => ErrorClass::Permanent,
            SourceError::Thread(_) => ErrorClass::Transient,
        }
    }
}

/// The librdkafka consumer config: `properties` (`kafka.*` settings and `kafka.properties`) plus the secret ones
/// (`kafka.properties_from_env`), with statistics every 5 s unless set (the lag per partition comes from them).
pub fn consumer_config(
    properties: impl IntoIterator<Item = (String, String)>,
    secrets: &[(String, secrecy::SecretString)],
) -> ClientConfig {
    use secrecy::ExposeSecret;
    let mut c = ClientConfig::new();
    for (k, v) in properties {
        c.set(k, v);
    }
    for (k, v) in secrets {
        c.set(k, v.expose_secret());
    }
    if c.get("statistics.interval.ms").is_none() {
        c.set("statistics.interval.ms", "5000");
    }
    c
}

/// A librdkafka error as text without any property value. librdkafka's configuration errors quote the value (rdkafka
/// prints it after the property name too), and the value may be a secret from `kafka.properties_from_env` — under any
/// property name, even a misspelt one — so it is replaced by `***`; the value of a plain property is in the file.
pub fn describe_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            let quoted = format!("\"{value}\"");
            let desc = if value.is_empty() {
                desc.clone()
            } else if desc.contains(&quoted) {
                // Only the quoted value, so that a short one ("x") does not mangle the words around it.
                desc.replace(&quoted, "\"***\"")
            } else {
                desc.replace(value.as_str(), "***")
            };
            format!("property {key:?}: {desc}")
        }
        other => other.to_string(),
    }
}

/// Settings of the polling thread.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// How long a revoke waits for the pipeline's answer before releasing the partitions anyway
    /// (their in-flight batches still load; their offsets are then committed by the next owner's
    /// progress instead — at-least-once either way).
    pub revoke_timeout: Duration,
    /// Capacity of the message channel to the pipeline.
    pub channel_capacity: usize,
}

/// Counters the admin endpoints and metrics read.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Messages handed to the pipeline.
    pub messages: AtomicU64,
    /// Times the partitions were paused because the pipeline stayed full (see `WAIT_BEFORE_PAUSE`).
    pub pauses: AtomicU64,
    /// Events fetched and waiting for room in the pipeline (bounded: while they wait, the assigned partitions are
    /// paused, those assigned meanwhile included).
    pub waiting: AtomicU64,
    /// Errors reported by the client (broker down, max.poll.interval exceeded, …).
    pub errors: AtomicU64,
    /// Commits that failed.
    pub commit_failures: AtomicU64,
    /// True once the member left the group after `max.poll.interval.ms` (`/readyz` turns red).
    pub max_poll_exceeded: AtomicBool,
    /// Consumer lag per assigned partition (`topic/partition` → messages not yet committed), from
    /// librdkafka's statistics (every `statistics.interval.ms`).
    pub lag: std::sync::Mutex<std::collections::BTreeMap<String, i64>>,
}

impl SourceStats {
    /// Total lag over the assigned partitions (unknown partitions count 0).
    pub fn total_lag(&self) -> i64 {
        self.lag
            .lock()
            .map(|l| l.values().filter(|v| **v > 0).sum())
            .unwrap_or(0)
    }
}

/// The running source: a handle on the polling thread.
pub struct KafkaSource {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    commands: mpsc::UnboundedSender<SourceCommand>,
    stats: Arc<SourceStats>,
    commit_results: Option<mpsc::UnboundedReceiver<CommitResult>>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What a rebalance callback leaves for the polling loop to do once `poll()` returns, in order.
#[derive(Debug)]
enum RebalanceNote {
    /// Drop the pending messages of these partitions.
    Revoked(Vec<TopicPartition>),
    /// The revoke could not be announced in time: announce it (as lost) in order, after dropping their messages.
    Unannounced(Vec<TopicPartition>),
    /// Announce the assignment in order with the messages.
    Assigned(Vec<(TopicPartition, Option<i64>)>),
}

/// The librdkafka context: logs through `tracing`, runs the revoke handshake.
struct SourceContext {
    events: mpsc::Sender<SourceEvent>,
    revoke_timeout: Duration,
    stats: Arc<SourceStats>,
    notes: std::sync::Mutex<Vec<RebalanceNote>>,
    commit_results: mpsc::UnboundedSender<CommitResult>,
}

impl SourceContext {
    fn note(&self, n: RebalanceNote) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(n);
        }
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "MAXPOLL" {
            self.stats.max_poll_exceeded.store(true, Ordering::Relaxed);
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut lags = std::collections::BTreeMap::new();
        let mut committed = Vec::new();
        for (name, topic) in &statistics.topics {
            for (id, p) in &topic.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue.
                if *id < 0 || !p.desired {
                    continue;
                }
                if p.committed_offset >= 0 {
                    committed.push((TopicPartition::new(name.as_str(), *id), p.committed_offset));
                }
                // consumer_lag = high watermark − committed offset: what is read but not yet
                // acknowledged by Doris counts as lag.
                let lag = p.consumer_lag;
                metrics::gauge!("cdc2doris_source_consumer_lag", "topic" => name.clone(), "partition" => id.to_string())
                    .set(lag as f64);
                lags.insert(format!("{name}/{id}"), lag);
            }
        }
        if let Ok(mut l) = self.stats.lag.lock() {
            *l = lags;
        }
        // librdkafka reports the outcome of a manual asynchronous commit only to an `offset_commit_cb`, which
        // rust-rdkafka's event API never sets: `commit_callback` hears of synchronous commits only. The
        // statistics carry the offsets Kafka confirmed: they are the confirmations (and, sent even when empty, the
        // coordinator's cue to ask again for a commit nobody answered, see `OffsetTracker::retry_unconfirmed`).
        let _ = self.commit_results.send(CommitResult {
            offsets: committed,
            ok: true,
        });
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cdc2doris_source_errors_total").increment(1);
        tracing::error!(error = %error, "Kafka client error: {reason}");
    }
}

fn tpl_partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

fn tpl_offsets(tpl: &TopicPartitionList) -> Vec<CommitOffset> {
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((TopicPartition::new(e.topic(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let partitions = tpl_partitions(tpl);
        if partitions.is_empty() {
            return;
        }
        let lost = consumer.assignment_lost();
        tracing::info!(
            ?partitions,
            lost,
            "partitions revoked; finishing their batches"
        );
        self.note(RebalanceNote::Revoked(partitions.clone()));
        // Bounded by revoke_timeout, the hand-over included: a pipeline that reads nothing (a Doris outage fills
        // it) must not hold the poll thread, hence the group, for the whole outage.
        let deadline = std::time::Instant::now() + self.revoke_timeout;
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let mut event = SourceEvent::Revoked {
            partitions: partitions.clone(),
            lost,
            reply,
        };
        loop {
            match self.events.try_send(event) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => return, // the pipeline is gone (shutdown)
                Err(mpsc::error::TrySendError::Full(e)) => {
                    if std::time::Instant::now() >= deadline {
                        tracing::warn!(
                            timeout = ?self.revoke_timeout,
                            "the pipeline had no room to hear of the revoke in time; releasing the partitions uncommitted"
                        );
                        self.note(RebalanceNote::Unannounced(partitions));
                        return;
                    }
                    event = e;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let offsets = match answer
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            Ok(offsets) => offsets,
            Err(_) => {
                tracing::warn!(
                    timeout = ?self.revoke_timeout,
                    "the pipeline did not finish the revoked partitions' batches in time; releasing them uncommitted"
                );
                return;
            }
        };
        if lost || offsets.is_empty() {
            return;
        }
        match commit_list(&offsets) {
            Ok(tpl) => {
                if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                    self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "commit on revoke failed; the next owner re-reads from the last commit");
                } else {
                    tracing::info!(?offsets, "committed on revoke");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot build the commit list on revoke"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = tpl_partitions(tpl);
                if partitions.is_empty() {
                    return;
                }
                // Where reading resumes: the group's committed offsets (librdkafka starts there too).
                let committed = match consumer.committed_offsets((*tpl).clone(), COMMITTED_TIMEOUT)
                {
                    Ok(c) => tpl_offsets(&c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the committed offsets of the assigned partitions");
                        Vec::new()
                    }
                };
                let assigned: Vec<(TopicPartition, Option<i64>)> = partitions
                    .into_iter()
                    .map(|tp| {
                        let at = committed
                            .iter()
                            .find(|(c, _)| *c == tp)
                            .map(|(_, o)| *o)
                            .filter(|o| *o >= 0);
                        (tp, at)
                    })
                    .collect();
                tracing::info!(partitions = ?assigned, "partitions assigned (with the committed offsets reading resumes from)");
                self.note(RebalanceNote::Assigned(assigned));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "rebalance failed");
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        let _ = self.commit_results.send(CommitResult {
            offsets: tpl_offsets(offsets),
            ok: result.is_ok(),
        });
        match result {
            Ok(()) => {
                for e in offsets.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        metrics::gauge!("cdc2doris_source_committed_offset", "topic" => e.topic().to_string(), "partition" => e.partition().to_string())
                            .set(o as f64);
                    }
                }
            }
            Err(e) => {
                self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("cdc2doris_source_commit_failures_total").increment(1);
                tracing::warn!(error = %e, "offset commit failed; it is tried again");
            }
        }
    }
}

/// How long an assignment waits for the group's committed offsets.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer properties the service owns; a user's `[kafka.properties]` cannot override them.
pub fn owned_properties(group_id: &str, bootstrap_servers: &str) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.servers", bootstrap_servers.to_string()),
        ("group.id", group_id.to_string()),
        // Offsets are committed by the pipeline only after Doris acknowledged.
        ("enable.auto.commit", "false".to_string()),
        ("enable.auto.offset.store", "false".to_string()),
        ("enable.partition.eof", "false".to_string()),
    ]
}

impl KafkaSource {
    /// Creates the consumer from `config`, subscribes and starts the polling thread. Messages and
    /// rebalance events go to `events`.
    pub fn start(
        config: &ClientConfig,
        settings: SourceSettings,
        events: mpsc::Sender<SourceEvent>,
    ) -> Result<KafkaSource, SourceError> {
        let stats = Arc::new(SourceStats::default());
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let context = SourceContext {
            events: events.clone(),
            revoke_timeout: settings.revoke_timeout,
            stats: stats.clone(),
            notes: std::sync::Mutex::new(Vec::new()),
            commit_results: results_tx,
        };
        let consumer: BaseConsumer<SourceContext> = config
            .create_with_context(context)
            .map_err(SourceError::Create)?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| SourceError::Subscribe {
                topics: settings.topics.clone(),
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        // The polling thread waits for room in `events` on the caller's runtime (see `hand_over`).
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name("kafka-poll".to_string())
            .spawn({
                let stop = stop.clone();
                let stats = stats.clone();
                move || poll_loop(consumer, events, commands_rx, stop, stats, runtime)
            })
            .map_err(SourceError::Thread)?;
        Ok(KafkaSource {
            thread: Some(thread),
            stop,
            commands: commands_tx,
            stats,
            commit_results: Some(results_rx),
        })
    }

    /// Asks the polling thread to commit `offsets` (the next offsets to read).
    pub fn commit(&self, offsets: Vec<CommitOffset>) {
        if !offsets.is_empty() {
            let _ = self.commands.send(SourceCommand::Commit(offsets));
        }
    }

    /// Kafka's answers to the commits (once: the receiver is handed over).
    pub fn take_commit_results(&mut self) -> Option<mpsc::UnboundedReceiver<CommitResult>> {
        self.commit_results.take()
    }

    /// The source's counters.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// Stops polling, applies the commands already sent (the final commit is synchronous), leaves
    /// the group and waits for the thread to end. Call it after the pipeline sent its last commit
    /// and dropped its event receiver (leaving the group revokes every partition; with the
    /// receiver gone, the revoke callback returns at once).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            if tokio::task::spawn_blocking(move || t.join()).await.is_err() {
                tracing::warn!("the Kafka polling thread panicked");
            }
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn owned(m: &rdkafka::message::BorrowedMessage<'_>, topic: &mut Option<Arc<str>>) -> SourceMessage {
    let name = m.topic();
    let topic = match topic {
        Some(t) if &**t == name => t.clone(),
        _ => {
            let t: Arc<str> = Arc::from(name);
            *topic = Some(t.clone());
            t
        }
    };
    SourceMessage {
        topic,
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        timestamp_ms: m.timestamp().to_millis(),
    }
}

fn apply_commands(
    consumer: &BaseConsumer<SourceContext>,
    commands: &mut mpsc::UnboundedReceiver<SourceCommand>,
    mode: CommitMode,
) {
    while let Ok(cmd) = commands.try_recv() {
        match cmd {
            SourceCommand::Commit(offsets) => match commit_list(&offsets) {
                Ok(tpl) => {
                    if let Err(e) = consumer.commit(&tpl, mode) {
                        tracing::warn!(error = %e, "offset commit failed; the next commit retries it");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot build the commit list"),
            },
        }
    }
}

/// How long the polling thread waits for room in the pipeline before it pauses the partitions. Pausing throws away
/// what librdkafka has prefetched (up to `fetch.max.bytes` per partition, fetched again after the resume), and a
/// pipeline draining a backlog is full most of the time: pausing at the first full channel made the source pause
/// and refetch dozens of times a minute and starve the partitions last in each fetch (`bench/pipeline`: 14k instead
/// of 80k events/s). So a busy pipeline is waited for, and only one that stays full this long — a Doris or
/// PostgreSQL outage — gets its partitions paused, while the thread keeps polling for rebalances.
const WAIT_BEFORE_PAUSE: Duration = Duration::from_secs(1);

/// What became of an event handed to the pipeline.
enum Handover {
    Sent,
    /// No room within [`WAIT_BEFORE_PAUSE`]; the event comes back.
    Full(SourceEvent),
    /// The pipeline is gone.
    Closed,
}

/// Sends `e` to the pipeline, waiting up to [`WAIT_BEFORE_PAUSE`] for room (on `runtime`, when there is one).
fn hand_over(
    events: &mpsc::Sender<SourceEvent>,
    runtime: Option<&tokio::runtime::Handle>,
    e: SourceEvent,
) -> Handover {
    let e = match events.try_send(e) {
        Ok(()) => return Handover::Sent,
        Err(mpsc::error::TrySendError::Full(e)) => e,
        Err(mpsc::error::TrySendError::Closed(_)) => return Handover::Closed,
    };
    let Some(runtime) = runtime else {
        return Handover::Full(e);
    };
    // The timer is created inside `block_on`, where the runtime's context is entered.
    match runtime
        .block_on(async { tokio::time::timeout(WAIT_BEFORE_PAUSE, events.reserve()).await })
    {
        Ok(Ok(permit)) => {
            permit.send(e);
            Handover::Sent
        }
        Ok(Err(_)) => Handover::Closed,
        Err(_) => Handover::Full(e),
    }
}

/// Applies what the rebalance callbacks of the last `poll()` noted, in order: drops the pending messages of revoked
/// partitions, queues the announcements, and pauses newly assigned partitions while the pipeline is paused.
fn apply_notes(
    consumer: &BaseConsumer<SourceContext>,
    pending: &mut VecDeque<SourceEvent>,
    paused: &mut Option<TopicPartitionList>,
) {
    let notes = match consumer.context().notes.lock() {
        Ok(mut n) => std::mem::take(&mut *n),
        Err(_) => return,
    };
    for note in notes {
        match note {
            RebalanceNote::Revoked(parts) => drop_pending(pending, &parts),
            RebalanceNote::Unannounced(parts) => {
                drop_pending(pending, &parts);
                // Nothing is committed for them any more; the pipeline only needs to forget them.
                let (reply, _) = std::sync::mpsc::sync_channel(1);
                pending.push_back(SourceEvent::Revoked {
                    partitions: parts,
                    lost: true,
                    reply,
                });
            }
            RebalanceNote::Assigned(parts) => {
                if paused.is_some() {
                    // Newly assigned partitions are fetched unless paused too: pause the whole assignment again,
                    // so that what waits for the pipeline stays bounded.
                    match consumer.assignment() {
                        Ok(tpl) => {
                            if let Err(e) = consumer.pause(&tpl) {
                                tracing::warn!(error = %e, "cannot pause partitions");
                            }
                            *paused = Some(tpl);
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot read the assignment"),
                    }
                }
                pending.push_back(SourceEvent::Assigned(parts));
            }
        }
    }
}

/// Drops the messages of `parts` from `pending`: read before their revoke, they belong to the next assignment's
/// reader (which reads them again from the committed offset).
fn drop_pending(pending: &mut VecDeque<SourceEvent>, parts: &[TopicPartition]) {
    let before = pending.len();
    pending.retain(|e| match e {
        SourceEvent::Message(m) => !parts
            .iter()
            .any(|p| p.partition == m.partition && *p.topic == *m.topic),
        _ => true,
    });
    let dropped = before - pending.len();
    if dropped > 0 {
        tracing::info!(
            dropped,
            "dropped messages of revoked partitions that were waiting for the pipeline"
        );
    }
}

fn poll_loop(
    consumer: BaseConsumer<SourceContext>,
    events: mpsc::Sender<SourceEvent>,
    mut commands: mpsc::UnboundedReceiver<SourceCommand>,
    stop: Arc<AtomicBool>,
    stats: Arc<SourceStats>,
    runtime: Option<tokio::runtime::Handle>,
) {
    const POLL: Duration = Duration::from_millis(100);
    let mut pending: VecDeque<SourceEvent> = VecDeque::new();
    let mut paused: Option<TopicPartitionList> = None;
    let mut topic_cache: Option<Arc<str>> = None;
    // A message was polled since the last `Idle` was queued: the next poll does not wait, and finding nothing queues
    // `Idle` (the pipeline has everything librdkafka fetched).
    let mut flowing = false;
    // Set on every turn of the loop (once per message while they flow): the handle, not a registry lookup each time.
    let waiting_gauge = metrics::gauge!("cdc2doris_source_waiting_events");
    'poll: while !stop.load(Ordering::SeqCst) {
        apply_commands(&consumer, &mut commands, CommitMode::Async);
        // Hand over what is pending; pause when the pipeline stays without room.
        while let Some(e) = pending.pop_front() {
            let is_message = matches!(e, SourceEvent::Message(_));
            match hand_over(&events, runtime.as_ref(), e) {
                Handover::Sent => {
                    if is_message {
                        stats.messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Handover::Full(e) => {
                    pending.push_front(e);
                    break;
                }
                // The pipeline is gone (it shuts down): still apply its last commit and leave the group below.
                Handover::Closed => break 'poll,
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
        }
        if pending.is_empty() {
            if let Some(tpl) = paused.take() {
                if let Err(e) = consumer.resume(&tpl) {
                    tracing::warn!(error = %e, "cannot resume partitions");
                }
            }
        } else if paused.is_none() {
            match consumer.assignment() {
                Ok(tpl) => {
                    if let Err(e) = consumer.pause(&tpl) {
                        tracing::warn!(error = %e, "cannot pause partitions");
                    }
                    stats.pauses.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("cdc2doris_source_pauses_total").increment(1);
                    tracing::info!(
                        "the pipeline has had no room for {}s: partitions paused until it catches up",
                        WAIT_BEFORE_PAUSE.as_secs_f64()
                    );
                    paused = Some(tpl);
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the assignment"),
            }
        }
        stats.waiting.store(pending.len() as u64, Ordering::Relaxed);
        waiting_gauge.set(pending.len() as f64);
        // While messages wait for room, poll briefly: only rebalances and errors are expected.
        let timeout = if !pending.is_empty() {
            Duration::from_millis(10)
        } else if flowing {
            Duration::ZERO
        } else {
            POLL
        };
        let polled = consumer.poll(timeout);
        // Rebalance callbacks ran inside poll(): apply their notes before the message it returned, which was
        // fetched after them.
        apply_notes(&consumer, &mut pending, &mut paused);
        match polled {
            None => {
                if flowing && pending.is_empty() {
                    pending.push_back(SourceEvent::Idle);
                    flowing = false;
                }
            }
            Some(Ok(m)) => {
                // A message fetched before a pause took effect is kept, in order.
                pending.push_back(SourceEvent::Message(owned(&m, &mut topic_cache)));
                flowing = true;
            }
            Some(Err(e)) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "Kafka poll error");
            }
        }
    }
    // Shutdown: the pipeline sent its final commit before asking us to stop.
    apply_commands(&consumer, &mut commands, CommitMode::Sync);
    // Resume before leaving: librdkafka 2.12 can hang in rd_kafka_destroy (a broker thread that never ends) when
    // the consumer is closed with paused partitions.
    if paused.take().is_some() {
        if let Ok(tpl) = consumer.assignment() {
            if let Err(e) = consumer.resume(&tpl) {
                tracing::warn!(error = %e, "cannot resume partitions before leaving the group");
            }
        }
    }
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!("Kafka consumer closed");
}
