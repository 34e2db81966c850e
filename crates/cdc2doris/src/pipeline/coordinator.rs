//! The coordinator: the one task that reads the source's events, turns messages into keys, fills and seals
//! batches, hands them to workers, and owns the offset tracker.
//!
//! It registers every message (in a batch, or as handled when ignored or dead-lettered), acknowledges a batch when
//! its worker reports that Doris committed it, and asks the source to commit what became committable; an offset
//! counts as committed once Kafka confirmed it ([`crate::source::kafka::CommitResult`]). Backpressure: when
//! `max_in_flight` batches are loading and the next one is sealed, it stops reading events.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::worker::{self, BatchDone, BatchOutcome, SealedBatch, WorkerContext};
use super::{now_ms, now_unix, PipelineError};
use crate::admin::{InFlightView, OpenBatchView, SharedState, Totals};
use crate::batch::{Batch, SealReason};
use crate::dead_letter::{DeadLetter, MessageRejection};
use crate::decode::{self, Decoded, Format, MessageContext};
use crate::keys::{KeyRule, KeyType, TableMatch};
use crate::offsets::{BatchId, OffsetTracker, TopicPartition};
use crate::retry::Retry;
use crate::sink::Sink;
use crate::source::kafka::{CommitOffset, CommitResult, KafkaSource, SourceEvent, SourceMessage};

/// How one topic's messages become keys.
pub(super) struct TopicRules {
    /// The topic's format, the same for all its rules (decoding tells the table).
    pub(super) format: Format,
    /// The topic's rules with the table each takes (`None`: every table no other rule names).
    pub(super) rules: Vec<(Option<TableMatch>, TopicRule)>,
    /// Tables seen without a rule, each logged once.
    pub(super) unmatched_logged: HashSet<String>,
}

/// How the events of one topic (or of one of its tables) become keys.
pub(super) struct TopicRule {
    pub(super) rule: KeyRule,
    /// Index into the resolvers, when the values go through a resolve query.
    pub(super) resolver: Option<usize>,
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

/// Messages waiting in the source's channel from which the pipeline counts as behind — when the messages it reads are
/// also older than `max_wait` — until the source has been idle for [`BEHIND_QUIET`]: the batch then widens to the
/// backlog window (`batch.backlog_max_keys`, `batch.backlog_max_wait`). A backlog keeps the channel (4096) full of old
/// messages. A steady stream queues a few hundred while a sealed batch waits for a worker, but young ones: waiting
/// longer for them would only add latency.
pub(super) const BEHIND_QUEUED: usize = 256;

/// After a backlog, how long the source must stay idle before the pipeline counts as caught up. librdkafka's queue
/// runs empty between two fetch responses of a backlog too, so an `Idle` then often comes a few milliseconds before
/// the next message: sealing on it would cut the backlog window short.
pub(super) const BEHIND_QUIET: Duration = Duration::from_millis(100);

/// How long a commit may stay unconfirmed before it is asked for again (a refused asynchronous commit is never
/// reported, see `OffsetTracker::retry_unconfirmed`). Above the default `statistics.interval.ms` (5 s), which
/// brings the confirmations.
const RETRY_UNCONFIRMED_EVERY: Duration = Duration::from_secs(12);

/// The coordinator: one task, the only owner of the offset tracker.
/// Where the coordinator sends commits: the Kafka source (or a test's recorder).
pub(super) trait CommitTarget {
    /// Asks for these offsets (the next offsets to read) to be committed; Kafka's answer comes back as a
    /// [`CommitResult`].
    fn commit(&self, offsets: Vec<CommitOffset>);
}

impl CommitTarget for KafkaSource {
    fn commit(&self, offsets: Vec<CommitOffset>) {
        KafkaSource::commit(self, offsets);
    }
}

/// Starts a sealed batch's work and resolves to how it ended: [`worker::run_batch`] (or a test's script).
pub(super) type Launch =
    Arc<dyn Fn(SealedBatch) -> Pin<Box<dyn Future<Output = BatchDone> + Send>> + Send + Sync>;

/// The launcher of the real workers.
pub(super) fn workers<S: Sink + 'static>(ctx: Arc<WorkerContext<S>>) -> Launch {
    Arc::new(move |batch| Box::pin(worker::run_batch(ctx.clone(), batch)))
}

pub(super) struct Coordinator<'a> {
    pub(super) rules: HashMap<String, TopicRules>,
    pub(super) tracker: OffsetTracker,
    pub(super) open: Option<Batch>,
    pub(super) sealed: Option<(SealedBatch, InFlight)>,
    pub(super) in_flight: HashMap<BatchId, InFlight>,
    pub(super) max_in_flight: usize,
    pub(super) max_keys: usize,
    pub(super) max_bytes: usize,
    pub(super) max_wait: Duration,
    /// A batch this old is sealed once the source is idle and a worker is free.
    pub(super) linger: Duration,
    /// While behind: the distinct keys and age at which a batch closes.
    pub(super) backlog_max_keys: usize,
    pub(super) backlog_max_wait: Duration,
    /// When the source said it handed over everything librdkafka had ([`SourceEvent::Idle`]), if no message came
    /// since.
    pub(super) idle_since: Option<Instant>,
    /// How old (by its Kafka timestamp) the last message read was, when it had a timestamp.
    pub(super) read_age: Option<Duration>,
    /// [`BEHIND_QUEUED`] messages were queued before the coordinator, the last one read was older than `max_wait`,
    /// and the source was not idle for
    /// [`BEHIND_QUIET`] since: a backlog.
    pub(super) behind: bool,
    /// Starts a batch's work.
    pub(super) launch: Launch,
    /// The merge query's key type, and each resolve rule's value type (by index): what a key must fit.
    pub(super) key_type: KeyType,
    pub(super) resolver_types: Vec<KeyType>,
    pub(super) dead_letter: Arc<DeadLetter>,
    pub(super) tasks: TaskTracker,
    pub(super) done_tx: Option<mpsc::UnboundedSender<BatchDone>>,
    pub(super) totals: Totals,
    pub(super) shared: Arc<Mutex<SharedState>>,
    pub(super) source: &'a (dyn CommitTarget + Sync),
    pub(super) revoke_timeout: Duration,
    pub(super) last_progress: Instant,
    pub(super) progress_interval: Duration,
    pub(super) last_load_unix: u64,
    /// Cancelled at shutdown: retries give up.
    pub(super) shutdown: CancellationToken,
}

pub(super) struct InFlight {
    name: String,
    partitions: HashSet<TopicPartition>,
    keys: usize,
    sealed_at: Instant,
    event_times_ms: std::collections::BTreeMap<i64, u64>,
    messages: u64,
}

impl Coordinator<'_> {
    pub(super) async fn run(
        &mut self,
        mut events: mpsc::Receiver<SourceEvent>,
        mut commit_results: mpsc::UnboundedReceiver<CommitResult>,
        shutdown: &CancellationToken,
        shutdown_timeout: Duration,
        abandon: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        self.done_tx = Some(done_tx);
        // Commits and the shared state are brought up to date at most every FLUSH_EVERY, not after every message:
        // a backlog brings thousands of messages a second, and each flush walks every partition.
        let mut next_flush = tokio::time::Instant::now();
        let mut next_retry = next_flush + RETRY_UNCONFIRMED_EVERY;
        let mut dirty = false;
        let result = loop {
            // A backlog keeps the channel full; a pipeline that keeps up empties it as messages come. Behind lasts
            // until the source has been idle for BEHIND_QUIET.
            if self.behind && self.idle_since.is_some_and(|t| t.elapsed() >= BEHIND_QUIET) {
                self.behind = false;
            }
            if events.len() >= BEHIND_QUEUED && self.read_age.is_none_or(|age| age >= self.max_wait)
            {
                self.behind = true;
            }
            let deadline = self.deadline();
            let can_read = self.sealed.is_none();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Ok(()),
                _ = sleep_until(Some(next_flush)), if dirty => {}
                Some(done) = done_rx.recv() => {
                    if let Err(e) = self.on_done(done) { break Err(e); }
                }
                Some(result) = commit_results.recv() => self.on_commit_result(result),
                ev = events.recv(), if can_read => match ev {
                    Some(SourceEvent::Message(m)) => {
                        self.idle_since = None;
                        self.read_age = m
                            .timestamp_ms
                            .map(|ts| Duration::from_millis((now_ms() - ts).max(0) as u64));
                        self.on_message(m).await;
                    }
                    Some(SourceEvent::Idle) => self.idle_since = Some(Instant::now()),
                    Some(SourceEvent::Assigned(parts)) => {
                        for (tp, at) in parts { self.tracker.assign(&tp.topic, tp.partition, at); }
                    }
                    Some(SourceEvent::Revoked { partitions, lost, reply }) => {
                        if let Err(e) = self.on_revoked(partitions, lost, reply, &mut done_rx).await { break Err(e); }
                    }
                    None => break Err(PipelineError::SourceGone),
                },
                _ = sleep_until(deadline.map(|(at, _)| at)), if deadline.is_some() && can_read => {
                    if let Some((_, reason)) = deadline { self.seal(reason); }
                }
            }
            self.dispatch();
            dirty = true;
            let now = tokio::time::Instant::now();
            if now >= next_flush {
                if now >= next_retry {
                    self.tracker.retry_unconfirmed();
                    next_retry = now + RETRY_UNCONFIRMED_EVERY;
                }
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
        self.seal(SealReason::Other);
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
        let mut retry = Retry::new(&self.shutdown);
        while let Err(e) = self.dead_letter.write_message(&rec).await {
            tracing::error!(
                "cannot write the dead letter, retrying (the message stays unacknowledged): {e}"
            );
            if !retry.pause().await {
                // Not registered: the commit stops before this message, which is read again at the next start.
                // The run loop stops reading at once (shutdown comes first there).
                tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset,
                    "shutting down before the dead letter could be written; the message will be read again");
                return;
            }
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
        // A key its query cannot bind (an integer beyond 64 bits for an `integer` key) is poison: this message goes
        // to the dead-letter destination instead of failing the batch it would join.
        let bind_type = match resolver {
            Some(r) => self.resolver_types.get(r).copied(),
            None => Some(self.key_type),
        };
        if let Some(key_type) = bind_type {
            if let Some(bad) = tuples.iter().flatten().find(|k| !k.fits(key_type)) {
                let reason = format!(
                    "key {bad} is beyond a 64-bit integer, the key type of the query it is bound to (integer): it \
                     cannot be refreshed; check the key rule's field, or declare key_type = \"string\""
                );
                self.dead_letter_message(&m, "keys", reason).await;
                return;
            }
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
        // PostgreSQL transaction ids (Debezium's `source.txId`, unwrapped `__txId`): the merge waits until they are
        // visible. Snapshot reads (`r`) read committed data; Maxwell's and Canal's ids are MySQL's.
        if let Decoded::Change(c) = &decoded {
            if matches!(c.format, Format::Debezium | Format::DebeziumUnwrapped)
                && c.op != decode::Op::Read
            {
                if let Some(x) = c.position.xid {
                    batch.txids.insert(x);
                }
            }
        }
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
        batch.behind |= self.behind;
        let keys = batch.distinct_keys();
        // Behind, the batch is a window over the backlog: it holds keys, not messages, so only the number of keys
        // bounds it (and `backlog_max_wait`, see `deadline`).
        if keys >= self.backlog_max_keys || (!self.behind && keys >= self.max_keys) {
            self.seal(SealReason::Keys);
        } else if !self.behind && batch.bytes >= self.max_bytes {
            self.seal(SealReason::Bytes);
        }
    }

    /// When the open batch is sealed without another message, and why: once the source is idle and a worker free,
    /// `linger` after its first message; otherwise `max_wait` after it (`backlog_max_wait` while behind). `None`
    /// without an open batch.
    fn deadline(&self) -> Option<(tokio::time::Instant, SealReason)> {
        let b = self.open.as_ref()?;
        let wait = if self.behind {
            self.backlog_max_wait
        } else {
            self.max_wait
        };
        let mut at = (b.opened + wait, SealReason::MaxWait);
        if let Some(idle) = self.idle_since {
            // Behind, the source's idle may only mean that the next fetch is on its way: it must last.
            let idle_at = if self.behind {
                (b.opened + self.linger).max(idle + BEHIND_QUIET)
            } else {
                b.opened + self.linger
            };
            if self.sealed.is_none() && self.in_flight.len() < self.max_in_flight && idle_at < at.0
            {
                at = (idle_at, SealReason::Idle);
            }
        }
        Some((tokio::time::Instant::from_std(at.0), at.1))
    }

    /// Closes the open batch; it waits in `sealed` until a worker slot is free.
    fn seal(&mut self, reason: SealReason) {
        if self.sealed.is_some() {
            return;
        }
        let Some(b) = self.open.take() else { return };
        metrics::counter!("cdc2doris_batches_sealed_total", "reason" => reason.as_str())
            .increment(1);
        let sealed = &mut self.totals.sealed;
        match reason {
            SealReason::Idle => sealed.idle += 1,
            SealReason::Keys => sealed.keys += 1,
            SealReason::Bytes => sealed.bytes += 1,
            SealReason::MaxWait => sealed.max_wait += 1,
            SealReason::Other => sealed.other += 1,
        }
        if b.behind {
            sealed.behind += 1;
        }
        let ranges = b.offset_ranges();
        let name = crate::sink::describe_ranges(b.id, &ranges);
        metrics::histogram!("cdc2doris_batch_keys").record(b.distinct_keys() as f64);
        metrics::histogram!("cdc2doris_batch_messages").record(b.messages as f64);
        metrics::histogram!("cdc2doris_batch_bytes").record(b.bytes as f64);
        if b.distinct_keys() > 0 {
            metrics::gauge!("cdc2doris_batch_dedup_ratio")
                .set(b.messages as f64 / b.distinct_keys() as f64);
        }
        tracing::debug!(batch = %name, keys = b.distinct_keys(), messages = b.messages, reason = reason.as_str(), behind = b.behind, "batch sealed");
        let partitions = b.ranges.keys().cloned().collect();
        let txids = b.sorted_txids();
        let info = InFlight {
            name: name.clone(),
            partitions,
            keys: b.distinct_keys(),
            sealed_at: Instant::now(),
            event_times_ms: b.event_times_ms,
            messages: b.messages,
        };
        let sealed = SealedBatch {
            txids,
            id: b.id,
            name,
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
        let work = (self.launch)(batch);
        self.tasks.spawn(async move {
            let _ = done_tx.send(work.await);
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
                visibility_wait,
            } => {
                if !visibility_wait.is_zero() {
                    self.totals.visibility_waits += 1;
                    self.totals.visibility_wait_ms += visibility_wait.as_millis() as u64;
                }
                if let Err(e) = self.tracker.ack_batch(done.id) {
                    tracing::warn!(batch = %done.name, "ack ignored: {e}");
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
                        batch = %done.name, keys, rows, deletes, queries, attempts = r.attempts,
                        bytes, rejected, seconds = done.elapsed.as_secs_f64(), "batch loaded"
                    );
                }
                metrics::counter!("cdc2doris_keys_refreshed_total").increment(keys as u64);
                if let Some(info) = info {
                    let now = now_ms();
                    let latency = metrics::histogram!("cdc2doris_pipeline_event_to_ack_seconds");
                    for (ts, n) in &info.event_times_ms {
                        let lag = (now - ts).max(0) as f64 / 1000.0;
                        latency.record_many(lag, *n as usize);
                    }
                    metrics::counter!("cdc2doris_batch_messages_acked_total")
                        .increment(info.messages);
                }
                Ok(())
            }
            BatchOutcome::Abandoned => {
                let _ = self.tracker.forget_batch(done.id);
                tracing::warn!(batch = %done.name, "batch abandoned at shutdown; its messages will be read again");
                Ok(())
            }
            BatchOutcome::Fatal(source) => {
                let _ = self.tracker.forget_batch(done.id);
                tracing::error!(batch = %done.name, "batch failed for good: {source}");
                Err(PipelineError::Fatal {
                    batch: done.name,
                    source: Box::new(source),
                })
            }
        }
    }

    /// Partitions are being taken away: finish their batches (bounded), then answer with what to commit.
    async fn on_revoked(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
        reply: std::sync::mpsc::SyncSender<Vec<crate::source::kafka::CommitOffset>>,
        done_rx: &mut mpsc::UnboundedReceiver<BatchDone>,
    ) -> Result<(), PipelineError> {
        let revoked: HashSet<&TopicPartition> = partitions.iter().collect();
        let touches = |parts: &HashSet<TopicPartition>| parts.iter().any(|p| revoked.contains(p));
        if !lost {
            if self.open.as_ref().is_some_and(|b| {
                partitions
                    .iter()
                    .any(|tp| b.covers(&tp.topic, tp.partition))
            }) {
                self.seal(SealReason::Other);
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
        for tp in &partitions {
            if let Some(next) = self.tracker.revoke(&tp.topic, tp.partition) {
                commit.push((tp.clone(), next));
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
            self.tracker.mark_requested(&tp.topic, tp.partition, *next);
        }
        self.source.commit(candidates);
    }

    /// Kafka answered a commit: confirmed offsets count as committed; a failed one is asked for again at the next
    /// flush (an idle partition included).
    fn on_commit_result(&mut self, result: CommitResult) {
        for (tp, offset) in &result.offsets {
            if result.ok {
                self.tracker
                    .mark_committed(&tp.topic, tp.partition, *offset);
            } else {
                self.tracker.commit_failed(&tp.topic, tp.partition, *offset);
            }
        }
    }

    fn publish_state(&mut self) {
        if let Ok(mut s) = self.shared.lock() {
            s.partitions = self.tracker.partitions();
            s.in_flight = self
                .in_flight
                .iter()
                .map(|(id, f)| InFlightView {
                    batch: id.get(),
                    batch_name: f.name.clone(),
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

#[cfg(test)]
mod tests {
    //! The coordinator driven with in-memory events: no Kafka, no PostgreSQL, no Doris. A scripted launcher hands
    //! each sealed batch to the test, which decides when and how it ends.

    use super::*;
    use crate::dead_letter::DeadLetterTarget;
    use crate::source::kafka::CommitOffset;
    use tokio::sync::oneshot;

    const TOPIC: &str = "t";

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: TOPIC.into(),
            partition,
        }
    }

    /// Records every commit asked for.
    #[derive(Default)]
    struct Commits(Mutex<Vec<CommitOffset>>);

    impl CommitTarget for Commits {
        fn commit(&self, offsets: Vec<CommitOffset>) {
            if let Ok(mut c) = self.0.lock() {
                c.extend(offsets);
            }
        }
    }

    impl Commits {
        /// The highest offset asked for on a partition.
        fn last(&self, partition: i32) -> Option<i64> {
            self.0.lock().ok().and_then(|c| {
                c.iter()
                    .filter(|(t, _)| t.partition == partition)
                    .map(|(_, o)| *o)
                    .max()
            })
        }
    }

    /// A batch handed to the test, and how to end it.
    struct Started {
        batch: SealedBatch,
        finish: oneshot::Sender<BatchOutcome>,
    }

    fn loaded(keys: usize) -> BatchOutcome {
        BatchOutcome::Loaded {
            receipt: None,
            keys,
            rows: keys,
            deletes: 0,
            queries: 1,
            rejected: 0,
            loads: 1,
            bytes: 10,
            visibility_wait: Duration::ZERO,
        }
    }

    /// A launcher that hands each batch to the test; a batch whose sender is dropped, or that is abandoned, ends
    /// `Abandoned`.
    fn scripted(abandon: CancellationToken) -> (Launch, mpsc::UnboundedReceiver<Started>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let launch: Launch = Arc::new(move |batch: SealedBatch| {
            let (finish, outcome) = oneshot::channel();
            let (id, name) = (batch.id, batch.name.clone());
            let _ = tx.send(Started { batch, finish });
            let abandon = abandon.clone();
            Box::pin(async move {
                let outcome = tokio::select! {
                    o = outcome => o.unwrap_or(BatchOutcome::Abandoned),
                    () = abandon.cancelled() => BatchOutcome::Abandoned,
                };
                BatchDone {
                    id,
                    name,
                    outcome,
                    elapsed: Duration::ZERO,
                }
            })
        });
        (launch, rx)
    }

    fn message(partition: i32, offset: i64, id: i64) -> SourceEvent {
        SourceEvent::Message(SourceMessage {
            topic: Arc::from(TOPIC),
            partition,
            offset,
            key: None,
            payload: Some(
                format!(
                    r#"{{"before":null,"after":{{"id":{id}}},"op":"c","source":{{"schema":"public","table":"jobs","txId":5}}}}"#
                )
                .into_bytes(),
            ),
            timestamp_ms: None,
        })
    }

    async fn coordinator<'a>(
        commits: &'a Commits,
        launch: Launch,
        max_keys: usize,
        max_wait: Duration,
        dir: &tempfile::TempDir,
    ) -> Coordinator<'a> {
        let rule = KeyRule::new(["id"], KeyType::Integer).expect("rule");
        let mut rules = HashMap::new();
        rules.insert(
            TOPIC.to_string(),
            TopicRules {
                format: Format::Debezium,
                rules: vec![(
                    None,
                    TopicRule {
                        rule,
                        resolver: None,
                    },
                )],
                unmatched_logged: HashSet::new(),
            },
        );
        let dead_letter = DeadLetter::open(&DeadLetterTarget::File(dir.path().join("dl.jsonl")))
            .await
            .expect("dead letter");
        Coordinator {
            rules,
            tracker: OffsetTracker::new(),
            open: None,
            sealed: None,
            in_flight: HashMap::new(),
            max_in_flight: 2,
            max_keys,
            max_bytes: usize::MAX,
            max_wait,
            linger: Duration::from_millis(20),
            backlog_max_keys: max_keys,
            backlog_max_wait: max_wait,
            idle_since: None,
            read_age: None,
            behind: false,
            launch,
            key_type: KeyType::Integer,
            resolver_types: Vec::new(),
            dead_letter: Arc::new(dead_letter),
            tasks: TaskTracker::new(),
            done_tx: None,
            totals: Totals::default(),
            shared: Arc::new(Mutex::new(SharedState::default())),
            source: commits,
            revoke_timeout: Duration::from_secs(10),
            last_progress: Instant::now(),
            progress_interval: Duration::ZERO,
            last_load_unix: 0,
            shutdown: CancellationToken::new(),
        }
    }

    async fn next_started(rx: &mut mpsc::UnboundedReceiver<Started>) -> Started {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a batch within 10 s")
            .expect("launcher alive")
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn acks_out_of_order_commit_only_what_every_earlier_batch_allows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let commits = Commits::default();
        let abandon = CancellationToken::new();
        let (launch, mut started) = scripted(abandon.clone());
        // One key per batch: each message is a batch of its own.
        let mut c = coordinator(&commits, launch, 1, Duration::from_secs(60), &dir).await;
        let shutdown = c.shutdown.clone();
        let stop = shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        let (_results_tx, results_rx) = mpsc::unbounded_channel();
        let script = async {
            tx.send(SourceEvent::Assigned(vec![(tp(0), Some(0))]))
                .await
                .expect("send");
            tx.send(message(0, 0, 1)).await.expect("send");
            tx.send(message(0, 1, 2)).await.expect("send");
            let a = next_started(&mut started).await;
            let b = next_started(&mut started).await;
            assert_eq!(a.batch.keys.len() + b.batch.keys.len(), 2);
            assert_eq!(a.batch.txids, vec![5]);
            // The later batch is acknowledged first: nothing may be committed past the earlier one.
            let _ = b.finish.send(loaded(1));
            tokio::time::sleep(FLUSH_EVERY * 3).await;
            assert!(
                commits.last(0).is_none_or(|o| o == 0),
                "{:?}",
                commits.last(0)
            );
            let _ = a.finish.send(loaded(1));
            wait_for("offset 2 committed", || commits.last(0) == Some(2)).await;
            shutdown.cancel();
        };
        let (result, ()) = tokio::join!(
            c.run(rx, results_rx, &stop, Duration::from_secs(5), &abandon),
            script
        );
        result.expect("clean stop");
    }

    #[tokio::test]
    async fn a_revoke_mid_batch_seals_it_waits_for_it_and_answers_with_its_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let commits = Commits::default();
        let abandon = CancellationToken::new();
        let (launch, mut started) = scripted(abandon.clone());
        // The batch would stay open for a minute: only the revoke seals it.
        let mut c = coordinator(&commits, launch, 100, Duration::from_secs(60), &dir).await;
        let shutdown = c.shutdown.clone();
        let stop = shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        let (_results_tx, results_rx) = mpsc::unbounded_channel();
        let script = async {
            tx.send(SourceEvent::Assigned(vec![(tp(0), Some(3))]))
                .await
                .expect("send");
            tx.send(message(0, 3, 1)).await.expect("send");
            tx.send(message(0, 4, 2)).await.expect("send");
            let (reply, answer) = std::sync::mpsc::sync_channel(1);
            tx.send(SourceEvent::Revoked {
                partitions: vec![tp(0)],
                lost: false,
                reply,
            })
            .await
            .expect("send");
            let s = next_started(&mut started).await;
            assert_eq!(s.batch.keys.len(), 2);
            let _ = s.finish.send(loaded(2));
            let offsets =
                tokio::task::spawn_blocking(move || answer.recv_timeout(Duration::from_secs(10)))
                    .await
                    .expect("join")
                    .expect("an answer to the revoke");
            assert_eq!(offsets, vec![(tp(0), 5)]);
            shutdown.cancel();
        };
        let (result, ()) = tokio::join!(
            c.run(rx, results_rx, &stop, Duration::from_secs(5), &abandon),
            script
        );
        result.expect("clean stop");
    }

    #[tokio::test]
    async fn shutdown_flushes_the_open_batch_and_commits_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let commits = Commits::default();
        let abandon = CancellationToken::new();
        let (launch, mut started) = scripted(abandon.clone());
        let mut c = coordinator(&commits, launch, 100, Duration::from_secs(60), &dir).await;
        let shutdown = c.shutdown.clone();
        let stop = shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        let (_results_tx, results_rx) = mpsc::unbounded_channel();
        let script = async {
            tx.send(SourceEvent::Assigned(vec![(tp(0), None)]))
                .await
                .expect("send");
            tx.send(message(0, 10, 1)).await.expect("send");
            tokio::time::sleep(FLUSH_EVERY * 2).await;
            shutdown.cancel();
            let s = next_started(&mut started).await;
            let _ = s.finish.send(loaded(1));
        };
        let (result, ()) = tokio::join!(
            c.run(rx, results_rx, &stop, Duration::from_secs(5), &abandon),
            script
        );
        result.expect("clean stop");
        assert_eq!(commits.last(0), Some(11));
    }

    #[tokio::test]
    async fn a_batch_still_loading_at_the_shutdown_deadline_is_abandoned_uncommitted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let commits = Commits::default();
        let abandon = CancellationToken::new();
        let (launch, mut started) = scripted(abandon.clone());
        let mut c = coordinator(&commits, launch, 1, Duration::from_secs(60), &dir).await;
        let shutdown = c.shutdown.clone();
        let stop = shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        let (_results_tx, results_rx) = mpsc::unbounded_channel();
        let script = async {
            tx.send(SourceEvent::Assigned(vec![(tp(0), Some(0))]))
                .await
                .expect("send");
            tx.send(message(0, 0, 1)).await.expect("send");
            // Never finished by the test: only the abandon ends it.
            let s = next_started(&mut started).await;
            shutdown.cancel();
            s
        };
        let (result, s) = tokio::join!(
            c.run(rx, results_rx, &stop, Duration::from_millis(300), &abandon),
            script
        );
        result.expect("clean stop");
        drop(s);
        assert!(abandon.is_cancelled(), "the deadline abandons the workers");
        assert!(
            commits.last(0).is_none_or(|o| o == 0),
            "{:?}",
            commits.last(0)
        );
    }

    #[tokio::test]
    async fn a_caught_up_source_seals_at_once_and_a_busy_pipeline_keeps_batching() {
        let dir = tempfile::tempdir().expect("tempdir");
        let commits = Commits::default();
        let abandon = CancellationToken::new();
        let (launch, mut started) = scripted(abandon.clone());
        // max_wait a minute: only the source's Idle can seal these batches.
        let mut c = coordinator(&commits, launch, 100, Duration::from_secs(60), &dir).await;
        c.max_in_flight = 1;
        let shared = c.shared.clone();
        let shutdown = c.shutdown.clone();
        let stop = shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        let (_results_tx, results_rx) = mpsc::unbounded_channel();
        let sealed = || {
            shared
                .lock()
                .map(|s| s.totals.sealed.clone())
                .expect("state")
        };
        let script = async {
            tx.send(SourceEvent::Assigned(vec![(tp(0), Some(0))]))
                .await
                .expect("send");
            tx.send(message(0, 0, 1)).await.expect("send");
            tx.send(SourceEvent::Idle).await.expect("send");
            let a = next_started(&mut started).await;
            assert_eq!(a.batch.keys.len(), 1);
            // The only worker is busy: what comes meanwhile waits for it, idle source or not, in one batch.
            for (offset, id) in [(1, 2), (2, 3), (3, 4)] {
                tx.send(message(0, offset, id)).await.expect("send");
            }
            tx.send(SourceEvent::Idle).await.expect("send");
            tokio::time::sleep(FLUSH_EVERY * 3).await;
            assert!(
                started.try_recv().is_err(),
                "no second batch while the worker is busy"
            );
            let _ = a.finish.send(loaded(1));
            let b = next_started(&mut started).await;
            assert_eq!(b.batch.keys.len(), 3);
            let _ = b.finish.send(loaded(3));
            wait_for("offset 4 committed", || commits.last(0) == Some(4)).await;
            let s = sealed();
            assert_eq!((s.idle, s.max_wait, s.keys, s.bytes), (2, 0, 0, 0), "{s:?}");
            shutdown.cancel();
        };
        let (result, ()) = tokio::join!(
            c.run(rx, results_rx, &stop, Duration::from_secs(5), &abandon),
            script
        );
        result.expect("clean stop");
    }

    #[tokio::test]
    async fn a_refused_commit_is_asked_for_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let commits = Commits::default();
        let abandon = CancellationToken::new();
        let (launch, _started) = scripted(abandon.clone());
        let mut c = coordinator(&commits, launch, 1, Duration::from_secs(60), &dir).await;
        let shutdown = c.shutdown.clone();
        let stop = shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let script = async {
            tx.send(SourceEvent::Assigned(vec![(tp(0), Some(0))]))
                .await
                .expect("send");
            // A message the coordinator ignores (a heartbeat): committable at once.
            tx.send(SourceEvent::Message(SourceMessage {
                topic: Arc::from(TOPIC),
                partition: 0,
                offset: 0,
                key: None,
                payload: Some(br#"{"ts_ms":1}"#.to_vec()),
                timestamp_ms: None,
            }))
            .await
            .expect("send");
            wait_for("the commit of offset 1", || commits.last(0) == Some(1)).await;
            let asked = || commits.0.lock().map(|c| c.len()).unwrap_or(0);
            let before = asked();
            let _ = results_tx.send(CommitResult {
                offsets: vec![(tp(0), 1)],
                ok: false,
            });
            // Nothing new arrives on the partition, yet the refused commit is asked for again.
            wait_for("a second commit of offset 1", || asked() > before).await;
            shutdown.cancel();
        };
        let (result, ()) = tokio::join!(
            c.run(rx, results_rx, &stop, Duration::from_secs(5), &abandon),
            script
        );
        result.expect("clean stop");
    }
}
