//! One batch's journey after it is sealed: resolve → merge (PostgreSQL) → load (Doris).
//!
//! A worker never touches offsets: it reports how its batch ended ([`BatchOutcome`]) and the
//! coordinator acknowledges it in `offsets.rs`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool_postgres::Pool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::dead_letter::{DeadLetter, LoadRejection};
use crate::error::ErrorClass;
use crate::keys::{KeyType, KeyValue};
use crate::merge::postgres::KeyTypeError;
use crate::merge::resolve::{ResolveError, Resolver};
use crate::merge::{MergeError, MergeKeys, MergeQuery};
use crate::offsets::BatchId;
use crate::retry::Retry;
use crate::sink::doris::{Label, LabelScope};
use crate::sink::{LoadReceipt, LoadRequest, OffsetRange, Sink, SinkError};

/// What a worker needs; shared by all workers.
pub struct WorkerContext<S> {
    /// The merge query's key column (to name a rejected row's key).
    pub key_column: String,
    /// Set after each PostgreSQL query: whether it succeeded (for `/readyz`).
    pub pg_healthy: Arc<std::sync::atomic::AtomicBool>,
    /// PostgreSQL connections.
    pub pool: Pool,
    /// The merge query.
    pub merge: MergeQuery,
    /// Key type of the merge query's `$1`.
    pub key_type: KeyType,
    /// Resolve rules, by index.
    pub resolvers: Vec<Resolver>,
    /// Keys per merge query.
    pub chunk_size: usize,
    /// Merge queries run at once for one batch.
    pub parallel_chunks: usize,
    /// A load's body ends with the merge chunk that makes it this long (`batch.max_load_bytes`).
    pub max_load_bytes: usize,
    /// Where rows go.
    pub sink: S,
    /// How loads are labelled.
    pub labels: LabelScope,
    /// Where rejected loads go.
    pub dead_letter: Arc<DeadLetter>,
    /// Cancelled when the shutdown deadline passed: give up retrying.
    pub abandon: CancellationToken,
}

/// A sealed batch handed to a worker.
#[derive(Debug)]
pub struct SealedBatch {
    /// Tracker id.
    pub id: BatchId,
    /// For logs and `/debug/state`: the batch id and its offset ranges (each load's label is made from its body).
    pub name: String,
    /// Offset ranges.
    pub ranges: Vec<OffsetRange>,
    /// Keys.
    pub keys: HashSet<KeyValue>,
    /// Values per resolve rule.
    pub resolve: Vec<(usize, HashSet<KeyValue>)>,
    /// Transaction ids of the batch's events (sorted, distinct), as the events carry them: the merge waits until
    /// PostgreSQL shows each of them ([`crate::merge::visibility`]).
    pub txids: Vec<u64>,
}

/// How a batch ended.
#[derive(Debug)]
pub enum BatchOutcome {
    /// Doris committed it (or it had nothing to load).
    Loaded {
        /// The receipt, when a load happened.
        receipt: Option<LoadReceipt>,
        /// Keys refreshed.
        keys: usize,
        /// Rows upserted and deleted.
        rows: usize,
        /// Delete rows.
        deletes: usize,
        /// Merge queries run.
        queries: usize,
        /// Rows Doris refused, each sent to the dead-letter destination.
        rejected: usize,
        /// Stream Loads committed: one per `max_load_bytes` of rows, more when rejected rows were isolated.
        loads: usize,
        /// Body bytes of the batch.
        bytes: usize,
        /// How long the batch waited for its transactions to become visible.
        visibility_wait: Duration,
    },
    /// Shutdown came before the batch finished; it is not acknowledged.
    Abandoned,
    /// A problem that retrying cannot fix and that is not the data's fault (bad merge query,
    /// access denied, unknown table): the pipeline stops without acknowledging.
    Fatal(BatchError),
}

/// Why a batch failed in a way retrying cannot fix. Each wraps the stage's own error.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// PostgreSQL's snapshot cannot be read.
    #[error("{0}")]
    Snapshot(#[source] MergeError),
    /// A resolve query fails for every value (not one value's data).
    #[error("the resolve query of topic {topic} failed: {source}; fix keys.rules[].resolve_query")]
    Resolve {
        /// The topic of the rule.
        topic: String,
        /// The query's error.
        #[source]
        source: ResolveError,
    },
    /// A key cannot be bound as the merge query's `$1`.
    #[error(transparent)]
    KeyType(#[from] KeyTypeError),
    /// The merge query fails for every key (not one key's data).
    #[error("{0}; fix merge.query_file or merge.key_column")]
    Merge(#[source] MergeError),
    /// A merge task ended without an answer.
    #[error("a merge task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Doris refused the load for good (access denied, unknown table, a bad request).
    #[error(transparent)]
    Load(#[from] SinkError),
}

impl BatchError {
    /// The error without anything that may quote row data, for `/debug/state` and `/readyz`; the log has it whole.
    pub fn summary(&self) -> String {
        match self {
            BatchError::Snapshot(e) => e.summary(),
            BatchError::Resolve { topic, source } => format!(
                "the resolve query of topic {topic} failed: {}; fix keys.rules[].resolve_query",
                source.summary()
            ),
            BatchError::KeyType(_) => {
                "a key is not a 64-bit integer, the key type of the query it is bound to"
                    .to_string()
            }
            BatchError::Merge(e) => {
                format!("{}; fix merge.query_file or merge.key_column", e.summary())
            }
            BatchError::Task(_) => self.to_string(),
            BatchError::Load(e) => e.summary(),
        }
    }
}

/// A worker's report to the coordinator.
#[derive(Debug)]
pub struct BatchDone {
    /// Tracker id.
    pub id: BatchId,
    /// The batch's name (see [`SealedBatch::name`]).
    pub name: String,
    /// Outcome.
    pub outcome: BatchOutcome,
    /// Time from seal to outcome.
    pub elapsed: Duration,
}

enum StepError {
    Abandoned,
    Fatal(BatchError),
}

/// How resolving a set of values failed.
enum ResolveFailure {
    /// The batch cannot go on.
    Step(StepError),
    /// The query failed on the data of some value it was given ([`ResolveError::is_data_error`]).
    Data(ResolveError),
}

/// One try of a resolve query.
enum Attempt {
    Pool(deadpool_postgres::PoolError),
    Query(ResolveError),
}

/// Runs a resolve query, retrying transient failures.
async fn resolve<S>(
    ctx: &WorkerContext<S>,
    r: &Resolver,
    values: &[KeyValue],
) -> Result<Vec<KeyValue>, ResolveFailure> {
    let mut retry = Retry::new(&ctx.abandon);
    loop {
        let attempt = match ctx.pool.get().await {
            Ok(client) => r
                .run(&client, values, ctx.key_type)
                .await
                .map_err(Attempt::Query),
            Err(e) => Err(Attempt::Pool(e)),
        };
        match attempt {
            Ok(keys) => return Ok(keys),
            Err(Attempt::Query(e)) if e.is_data_error() => return Err(ResolveFailure::Data(e)),
            Err(Attempt::Query(e)) if e.class() == ErrorClass::Permanent => {
                return Err(ResolveFailure::Step(StepError::Fatal(
                    BatchError::Resolve {
                        topic: r.topic.clone(),
                        source: e,
                    },
                )))
            }
            Err(e) => {
                let msg = match &e {
                    Attempt::Pool(e) => crate::merge::pool::describe_pool_error(e),
                    Attempt::Query(e) => e.to_string(),
                };
                tracing::warn!(topic = %r.topic, "resolve query failed, retrying: {msg}");
                if !retry.pause().await {
                    return Err(ResolveFailure::Step(StepError::Abandoned));
                }
            }
        }
    }
}

/// A value a resolve query fails on by itself.
struct PoisonValue {
    value: KeyValue,
    reason: ResolveError,
}

/// Runs a resolve query over `values`; when it fails on some value's data, splits the values in halves until the
/// failing ones stand alone (they are returned as poison) and resolves the others.
async fn resolve_isolating<S>(
    ctx: &WorkerContext<S>,
    r: &Resolver,
    name: &str,
    values: Vec<KeyValue>,
) -> Result<(Vec<KeyValue>, Vec<PoisonValue>), StepError> {
    let mut keys = Vec::new();
    let mut poison = Vec::new();
    let mut todo = vec![values];
    while let Some(mut part) = todo.pop() {
        match resolve(ctx, r, &part).await {
            Ok(k) => keys.extend(k),
            Err(ResolveFailure::Step(e)) => return Err(e),
            Err(ResolveFailure::Data(reason)) => {
                if part.len() <= 1 {
                    if let Some(value) = part.pop() {
                        poison.push(PoisonValue { value, reason });
                    }
                } else {
                    tracing::warn!(batch = %name, topic = %r.topic, values = part.len(), "the resolve query failed on the data of some value; splitting the values to isolate it: {reason}");
                    let right = part.split_off(part.len() / 2);
                    todo.push(right);
                    todo.push(part);
                }
            }
        }
    }
    Ok((keys, poison))
}

/// After this long waiting for a transaction to become visible, and as often again, a warning names it.
const VISIBILITY_WARN_EVERY: Duration = Duration::from_secs(5);

/// Waits until a snapshot of PostgreSQL sees every transaction in `txids` ([`crate::merge::visibility`]); returns
/// how long it waited. Ids PostgreSQL says cannot be awaited (aborted, in the future) are counted and skipped.
async fn wait_visible<S>(
    ctx: &WorkerContext<S>,
    name: &str,
    txids: &[u64],
) -> Result<Duration, StepError> {
    use crate::merge::visibility::{status, Snapshot, TxStatus};
    if txids.is_empty() {
        return Ok(Duration::ZERO);
    }
    let started = Instant::now();
    let mut retry = Retry::new(&ctx.abandon);
    let mut pause = Duration::from_millis(10);
    let mut checked: HashSet<u64> = HashSet::new();
    let mut impossible: HashSet<u64> = HashSet::new();
    let mut next_warning = started + VISIBILITY_WARN_EVERY;
    let mut waited = false;
    loop {
        let client = match ctx.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "no PostgreSQL connection, retrying: {}",
                    crate::merge::pool::describe_pool_error(&e)
                );
                if !retry.pause().await {
                    return Err(StepError::Abandoned);
                }
                continue;
            }
        };
        let snapshot = match Snapshot::current(&client).await {
            Ok(s) => s,
            Err(e) if e.class() == ErrorClass::Permanent => {
                return Err(StepError::Fatal(BatchError::Snapshot(e)))
            }
            Err(e) => {
                tracing::warn!("cannot read the current snapshot, retrying: {e}");
                if !retry.pause().await {
                    return Err(StepError::Abandoned);
                }
                continue;
            }
        };
        if snapshot.in_recovery {
            // The connection goes: the pool may reach the primary next time (multi-host URL after a failover).
            drop(deadpool_postgres::Object::take(client));
            tracing::error!(
                "PostgreSQL is in recovery (a hot standby): merge reads must go to the primary; with several hosts \
                 in postgres.url add target_session_attrs=read-write. Retrying"
            );
            ctx.pg_healthy
                .store(false, std::sync::atomic::Ordering::Relaxed);
            if !retry.pause().await {
                return Err(StepError::Abandoned);
            }
            continue;
        }
        let mut waiting: Vec<u64> = snapshot
            .invisible(txids)
            .into_iter()
            .filter(|x| !impossible.contains(x))
            .collect();
        waiting.sort_unstable();
        waiting.dedup();
        // Ids listed as running are real transactions: wait. Any other id is asked about once, in ascending order;
        // ids at or above one PostgreSQL calls "in the future" are in the future too, and are not asked about.
        let mut still: Vec<u64> = Vec::with_capacity(waiting.len());
        let mut future_from: Option<u64> = None;
        let mut newly_impossible: Vec<(u64, &'static str)> = Vec::new();
        for x in waiting {
            if future_from.is_some_and(|f| x >= f) {
                newly_impossible.push((x, "in the future for this server"));
                continue;
            }
            if snapshot.xip.binary_search(&x).is_err() && checked.insert(x) {
                match status(&client, x).await {
                    Ok(TxStatus::Impossible(why)) => {
                        if why.starts_with("in the future") {
                            future_from = Some(x);
                        }
                        newly_impossible.push((x, why));
                        continue;
                    }
                    Ok(TxStatus::Pending) => {}
                    Err(e) => tracing::warn!(txid = x, "cannot read a transaction's status: {e}"),
                }
            }
            still.push(x);
        }
        if !newly_impossible.is_empty() {
            metrics::counter!("cdc2doris_visibility_impossible_txids_total")
                .increment(newly_impossible.len() as u64);
            tracing::warn!(
                batch = %name,
                count = newly_impossible.len(),
                first = ?newly_impossible.iter().take(3).collect::<Vec<_>>(),
                "events carry transaction ids this PostgreSQL server cannot show (aborted, or beyond its next id: \
                 events of another server, or written by hand); not waiting for them"
            );
            impossible.extend(newly_impossible.iter().map(|(x, _)| *x));
        }
        drop(client);
        if still.is_empty() {
            if !waited {
                return Ok(Duration::ZERO);
            }
            let wait = started.elapsed();
            metrics::counter!("cdc2doris_visibility_waits_total").increment(1);
            metrics::histogram!("cdc2doris_visibility_wait_seconds").record(wait.as_secs_f64());
            return Ok(wait);
        }
        if Instant::now() >= next_warning {
            next_warning += VISIBILITY_WARN_EVERY;
            tracing::warn!(
                batch = %name,
                txids = ?still.iter().take(5).collect::<Vec<_>>(),
                waiting = still.len(),
                seconds = started.elapsed().as_secs_f64(),
                "waiting for transactions whose events arrived before PostgreSQL shows them (a synchronous standby \
                 not confirming, or a commit still in progress); the batch merges once they are visible"
            );
        }
        waited = true;
        tokio::select! {
            _ = ctx.abandon.cancelled() => return Err(StepError::Abandoned),
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Reads one chunk, retrying transient failures.
async fn merge_chunk(
    pool: Pool,
    merge: MergeQuery,
    keys: MergeKeys,
    abandon: CancellationToken,
    healthy: Arc<std::sync::atomic::AtomicBool>,
) -> Result<crate::merge::MergeChunk, ChunkError> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut retry = Retry::new(&abandon);
    loop {
        let started = Instant::now();
        let result = match pool.get().await {
            Ok(mut client) => merge.read_chunk(&mut client, &keys).await,
            Err(e) => {
                healthy.store(false, Relaxed);
                tracing::warn!(
                    "no PostgreSQL connection, retrying: {}",
                    crate::merge::pool::describe_pool_error(&e)
                );
                if !retry.pause().await {
                    return Err(ChunkError::Step(StepError::Abandoned));
                }
                continue;
            }
        };
        metrics::histogram!("cdc2doris_merge_query_seconds")
            .record(started.elapsed().as_secs_f64());
        healthy.store(
            result.is_ok()
                || result
                    .as_ref()
                    .is_err_and(|e| e.class() == ErrorClass::Permanent),
            Relaxed,
        );
        match result {
            Ok(chunk) => return Ok(chunk),
            Err(e) if e.is_data_error() => return Err(ChunkError::Data(e)),
            Err(e) if e.class() == ErrorClass::Permanent => {
                return Err(ChunkError::Step(StepError::Fatal(BatchError::Merge(e))))
            }
            Err(e) => {
                metrics::counter!("cdc2doris_merge_retries_total").increment(1);
                tracing::warn!("merge query failed, retrying: {e}");
                if !retry.pause().await {
                    return Err(ChunkError::Step(StepError::Abandoned));
                }
            }
        }
    }
}

/// How reading a chunk failed.
enum ChunkError {
    /// The batch cannot go on.
    Step(StepError),
    /// The merge query failed on the data of some key of the chunk ([`crate::merge::MergeError::is_data_error`]).
    Data(MergeError),
}

/// A key the merge query fails on by itself.
struct PoisonKey {
    key: KeyValue,
    reason: MergeError,
}

/// Processes one batch to its end.
pub async fn run_batch<S: Sink + 'static>(
    ctx: Arc<WorkerContext<S>>,
    batch: SealedBatch,
) -> BatchDone {
    let started = Instant::now();
    let id = batch.id;
    let name = batch.name.clone();
    let outcome = match process(&ctx, batch).await {
        Ok(o) => o,
        Err(StepError::Abandoned) => BatchOutcome::Abandoned,
        Err(StepError::Fatal(msg)) => BatchOutcome::Fatal(msg),
    };
    BatchDone {
        id,
        name,
        outcome,
        elapsed: started.elapsed(),
    }
}

async fn process<S: Sink + 'static>(
    ctx: &Arc<WorkerContext<S>>,
    batch: SealedBatch,
) -> Result<BatchOutcome, StepError> {
    let SealedBatch {
        name,
        ranges,
        mut keys,
        resolve: to_resolve,
        txids,
        ..
    } = batch;
    let visibility_wait = wait_visible(ctx, &name, &txids).await?;
    for (rule, values) in to_resolve {
        let Some(r) = ctx.resolvers.get(rule) else {
            continue;
        };
        let mut values: Vec<KeyValue> = values.into_iter().collect();
        values.sort_unstable();
        let (resolved, poison) = resolve_isolating(ctx, r, &name, values).await?;
        keys.extend(resolved);
        for p in &poison {
            tracing::error!(batch = %name, topic = %r.topic, value = %p.value, "the resolve query fails on this value's data; it goes to the dead-letter destination and the other values are resolved: {}", p.reason);
            let rec = LoadRejection {
                stage: "resolve",
                label: &name,
                offsets: ranges.iter().map(ToString::to_string).collect(),
                reason: format!(
                    "the resolve query of topic {} failed on value {}: {}",
                    r.topic, p.value, p.reason
                ),
                keys: vec![p.value.to_json_value()],
                error_url_excerpt: None,
            };
            write_dead_letter(ctx, &rec).await?;
        }
    }
    let key_count = keys.len();
    if key_count == 0 {
        return Ok(BatchOutcome::Loaded {
            receipt: None,
            keys: 0,
            rows: 0,
            deletes: 0,
            queries: 0,
            rejected: 0,
            loads: 0,
            bytes: 0,
            visibility_wait,
        });
    }
    let mut all: Vec<KeyValue> = keys.into_iter().collect();
    all.sort_unstable();

    // Merge, then load. Chunks are read in parallel, up to `parallel_chunks` at once, and their rows join the load
    // body in key order. A body that reaches `max_load_bytes` is loaded while the next one fills; reading pauses
    // while a full body waits for the load before it, so a batch holds at most two bodies whatever its size. A chunk
    // the merge query fails on because of some key's data is split in halves until the keys that raise the error
    // stand alone; those go to the dead-letter destination and every other key is loaded.
    let size = ctx.chunk_size.max(1);
    let parallel = ctx.parallel_chunks.max(1);
    let mut todo: VecDeque<(usize, Vec<KeyValue>)> = all
        .chunks(size)
        .enumerate()
        .map(|(i, c)| (i * size, c.to_vec()))
        .collect();
    // Chunks read, by the position of their first key, with their key count, until the body reaches them (`None`:
    // the key was poison).
    let mut read: BTreeMap<usize, (usize, Option<crate::merge::MergeChunk>)> = BTreeMap::new();
    // The position of the first key whose rows are not in a body yet.
    let mut next = 0usize;
    let mut body: Vec<u8> = Vec::new();
    let mut loading: Option<PartFuture<'_>> = None;
    let mut loaded = PartResult::default();
    let mut poison: Vec<PoisonKey> = Vec::new();
    let mut set = JoinSet::new();
    let mut queries = 0usize;
    let mut rows = 0usize;
    let mut deletes = 0usize;
    let mut bytes = 0usize;
    loop {
        // A body ends with the chunk that makes it reach `max_load_bytes`.
        while body.len() < ctx.max_load_bytes {
            let Some(entry) = read.first_entry().filter(|e| *e.key() == next) else {
                break;
            };
            let (len, chunk) = entry.remove();
            next += len;
            if let Some(chunk) = chunk {
                body.extend_from_slice(&chunk.body);
            }
        }
        let all_read = todo.is_empty() && set.is_empty();
        if loading.is_none() && !body.is_empty() && (all_read || body.len() >= ctx.max_load_bytes) {
            bytes += body.len();
            loading = Some(load_part(
                ctx,
                &ranges,
                Bytes::from(std::mem::take(&mut body)),
            ));
        }
        if all_read && loading.is_none() {
            break;
        }
        while body.len() < ctx.max_load_bytes && set.len() + read.len() < parallel {
            let Some((start, chunk)) = todo.pop_front() else {
                break;
            };
            let keys = MergeKeys::from_keys(chunk.iter().cloned(), ctx.key_type)
                .map_err(|e| StepError::Fatal(e.into()))?;
            let (pool, merge, abandon) = (ctx.pool.clone(), ctx.merge.clone(), ctx.abandon.clone());
            let healthy = ctx.pg_healthy.clone();
            queries += 1;
            set.spawn(async move {
                let r = merge_chunk(pool, merge, keys, abandon, healthy).await;
                (start, chunk, r)
            });
        }
        tokio::select! {
            joined = set.join_next(), if !set.is_empty() => match joined {
                Some(Ok((start, chunk_keys, Ok(chunk)))) => {
                    rows += chunk.rows;
                    deletes += chunk.deletes;
                    if chunk.duplicate_keys > 0 {
                        tracing::warn!(batch = %name, duplicates = chunk.duplicate_keys, "the merge query returned some keys twice; Doris keeps one row per key");
                    }
                    read.insert(start, (chunk_keys.len(), Some(chunk)));
                }
                Some(Ok((start, mut chunk, Err(ChunkError::Data(reason))))) => {
                    if chunk.len() <= 1 {
                        read.insert(start, (chunk.len(), None));
                        if let Some(key) = chunk.pop() {
                            poison.push(PoisonKey { key, reason });
                        }
                    } else {
                        tracing::warn!(batch = %name, keys = chunk.len(), "the merge query failed on the data of some key; splitting the chunk to isolate it: {reason}");
                        let right = chunk.split_off(chunk.len() / 2);
                        todo.push_front((start + chunk.len(), right));
                        todo.push_front((start, chunk));
                    }
                }
                Some(Ok((_, _, Err(ChunkError::Step(e))))) => return Err(e),
                Some(Err(e)) => return Err(StepError::Fatal(e.into())),
                None => {}
            },
            part = async {
                match loading.as_mut() {
                    Some(load) => load.await,
                    None => std::future::pending().await,
                }
            }, if loading.is_some() => {
                let part = part?;
                loaded.loads += part.loads;
                loaded.rejected.extend(part.rejected);
                if part.last_receipt.is_some() {
                    loaded.last_receipt = part.last_receipt;
                }
                loading = None;
            }
        }
    }
    if !poison.is_empty() {
        let offsets: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        for p in &poison {
            tracing::error!(batch = %name, key = %p.key, "the merge query fails on this key's data; it goes to the dead-letter destination and the other keys are loaded: {}", p.reason);
            let rec = LoadRejection {
                stage: "merge",
                label: &name,
                offsets: offsets.clone(),
                reason: format!("the merge query failed on key {}: {}", p.key, p.reason),
                keys: vec![p.key.to_json_value()],
                error_url_excerpt: None,
            };
            write_dead_letter(ctx, &rec).await?;
        }
    }
    metrics::counter!("cdc2doris_merge_rows_total").increment(rows as u64);
    metrics::counter!("cdc2doris_merge_deletes_total").increment(deletes as u64);
    let rejected = loaded.rejected.len();
    for r in &loaded.rejected {
        let rec = LoadRejection {
            stage: "load",
            label: r.label.as_str(),
            offsets: ranges.iter().map(ToString::to_string).collect(),
            reason: r.reason.clone(),
            keys: vec![r.key.clone()],
            error_url_excerpt: r.excerpt.clone(),
        };
        write_dead_letter(ctx, &rec).await?;
    }
    if rejected > 0 {
        tracing::error!(
            batch = %name, rejected,
            "Doris rejected {rejected} row(s) of this batch; each went to the dead-letter destination with its key and Doris' reason, the other rows are loaded"
        );
    }
    Ok(BatchOutcome::Loaded {
        receipt: loaded.last_receipt,
        keys: key_count,
        rows,
        deletes,
        queries,
        rejected,
        loads: loaded.loads,
        bytes,
        visibility_wait,
    })
}

/// Writes a load record, retrying until it is written or the batch is abandoned.
async fn write_dead_letter<S>(
    ctx: &WorkerContext<S>,
    rec: &LoadRejection<'_>,
) -> Result<(), StepError> {
    let mut retry = Retry::new(&ctx.abandon);
    while let Err(e) = ctx.dead_letter.write_load(rec).await {
        tracing::warn!("cannot write the dead letter, retrying: {e}");
        if !retry.pause().await {
            return Err(StepError::Abandoned);
        }
    }
    Ok(())
}

/// The number of lines of a JSON-lines body (a last line without `\n` counts).
fn line_count(body: &[u8]) -> usize {
    let newlines = memchr::memchr_iter(b'\n', body).count();
    newlines + usize::from(body.last().is_some_and(|&b| b != b'\n'))
}

/// Where line `n` (from 0) of a JSON-lines body starts; the body's length when it has fewer lines.
fn line_start(body: &[u8], n: usize) -> usize {
    match n.checked_sub(1) {
        None => 0,
        Some(k) => memchr::memchr_iter(b'\n', body)
            .nth(k)
            .map_or(body.len(), |at| at + 1),
    }
}

/// A row Doris refused, isolated by splitting.
struct RejectedRow {
    label: Label,
    key: serde_json::Value,
    reason: String,
    excerpt: Option<String>,
}

#[derive(Default)]
struct PartResult {
    last_receipt: Option<LoadReceipt>,
    loads: usize,
    rejected: Vec<RejectedRow>,
}

type PartFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<PartResult, StepError>> + Send + 'a>>;

/// Loads `body` (JSON lines) as one Stream Load. When Doris filters rows (strict mode, a value too long, …) the
/// part is split in halves, each loaded under a label of its own (labels are made from the body), until every
/// rejected row stands alone; those rows are returned for the dead-letter destination and every other row
/// is loaded. A retry of a part carries the same body, hence the same label, and is idempotent.
fn load_part<'a, S: Sink + 'static>(
    ctx: &'a WorkerContext<S>,
    ranges: &'a [OffsetRange],
    body: Bytes,
) -> PartFuture<'a> {
    Box::pin(async move {
        // Halves are slices of the load's body: nothing is copied, however often Doris filters rows.
        let rows = line_count(&body);
        let request = LoadRequest {
            label: ctx.labels.label(ranges, &body),
            ranges: ranges.to_vec(),
            body: body.clone(),
            row_count: rows as u64,
        };
        // The sink retries within its deadline; past it, the same request (same label) is tried again.
        let mut retry = Retry::starting_at(Duration::from_secs(1), &ctx.abandon);
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                _ = ctx.abandon.cancelled() => return Err(StepError::Abandoned),
                r = ctx.sink.load(request.clone()) => r,
            };
            metrics::histogram!("cdc2doris_load_seconds").record(started.elapsed().as_secs_f64());
            match result {
                Ok(receipt) => {
                    return Ok(PartResult {
                        last_receipt: Some(receipt),
                        loads: 1,
                        rejected: Vec::new(),
                    });
                }
                Err(SinkError::FilteredRows {
                    filtered,
                    total,
                    excerpt,
                    message,
                    ..
                }) => {
                    if rows <= 1 {
                        let key = serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v.get(&ctx.key_column).cloned())
                            .unwrap_or(serde_json::Value::Null);
                        let reason = format!("Doris rejected the row: {message}");
                        return Ok(PartResult {
                            last_receipt: None,
                            loads: 0,
                            rejected: vec![RejectedRow {
                                label: request.label.clone(),
                                key,
                                reason,
                                excerpt,
                            }],
                        });
                    }
                    tracing::warn!(
                        label = %request.label, filtered, total,
                        "Doris filtered rows; loading the batch in halves to isolate them"
                    );
                    let mid = line_start(&body, rows / 2);
                    let mut left = load_part(ctx, ranges, body.slice(..mid)).await?;
                    let right = load_part(ctx, ranges, body.slice(mid..)).await?;
                    left.loads += right.loads;
                    left.rejected.extend(right.rejected);
                    if right.last_receipt.is_some() {
                        left.last_receipt = right.last_receipt;
                    }
                    return Ok(left);
                }
                Err(e) if e.class() == ErrorClass::Permanent => {
                    return Err(StepError::Fatal(e.into()));
                }
                Err(e) => {
                    tracing::warn!("load not committed yet, retrying with the same label: {e}");
                    if !retry.pause().await {
                        return Err(StepError::Abandoned);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_and_found_without_copying() {
        assert_eq!(line_count(b""), 0);
        assert_eq!(line_count(b"a\n"), 1);
        assert_eq!(line_count(b"a\nb"), 2);
        assert_eq!(line_count(b"a\nb\nc\n"), 3);
        let body = b"a\nbb\nccc\n";
        assert_eq!(line_start(body, 0), 0);
        assert_eq!(line_start(body, 1), 2);
        assert_eq!(line_start(body, 2), 5);
        assert_eq!(line_start(body, 3), body.len());
        assert_eq!(line_start(body, 9), body.len());
    }
}
