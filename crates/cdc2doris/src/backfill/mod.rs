//! `cdc2doris backfill`: refresh every key a query returns, without Kafka — the first load of a new Doris table, or
//! a re-sync after the table was recreated or events expired from the topics.
//!
//! The keys come from `--keys-query` (one column: keys of the merged table, e.g. `SELECT id FROM jobs`), or from
//! `--keys-from FILE`: a dead-letter file, whose load records hold the keys of rows Doris rejected (refresh them once
//! the cause is fixed), or one key per line. Each batch goes through the service's own merge and load: chunks of
//! `merge.chunk_size` keys, each read in one snapshot whose version is the sequence column, keys the merge query no
//! longer returns loaded as deletes, rows Doris rejects isolated and dead-lettered. So a backfill may run while
//! `cdc2doris run` does: whichever read is older never overwrites the newer one.
//!
//! The query's keys are read by keyset pagination, in key order (`WHERE k > <last key> ORDER BY k LIMIT <batch>`),
//! one short statement per batch: no snapshot or cursor is held for the run (VACUUM is not held back), and memory
//! holds one batch whatever the table's size. `--from`/`--to` bound the keys (inclusive); `--rate` caps keys per
//! second; `--resume FILE` keeps a checkpoint (the last key of the last loaded batch) after every batch, so a run
//! interrupted (even killed) continues after it. Keys added behind the checkpoint meanwhile are `run`'s business.
//!
//! Each batch loads under a label of its own (made from its body and the run's start time, process and the batch
//! number), so a retried load never loads twice; running the backfill again loads again, which the sequence column
//! makes harmless.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::types::ToSql;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::keys::{KeyType, KeyValue};
use crate::merge::pool::describe_pool_error;
use crate::merge::postgres::{describe_pg_error, trim_query};
use crate::offsets::{OffsetTracker, TopicPartition};
use crate::pipeline::worker::{run_batch, BatchDone, BatchOutcome, SealedBatch, WorkerContext};
use crate::pipeline::{Parts, PipelineError};
use crate::sink::OffsetRange;
use checkpoint::Checkpoint;
use progress::progress_line;

mod checkpoint;
pub mod cli;
mod progress;

/// Why the keys of a backfill cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The `--keys-from` file cannot be read.
    #[error("--keys-from {}: {source}", path.display())]
    FileUnreadable {
        /// The file.
        path: std::path::PathBuf,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the `--keys-from` file starts like JSON but is not.
    #[error("--keys-from {} line {line}: not a JSON record ({source}); give a dead-letter file or one key per line", path.display())]
    FileLine {
        /// The file.
        path: std::path::PathBuf,
        /// The line number, from 1.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `--keys-query` is empty.
    #[error("--keys-query is empty; give a query returning the keys to refresh, e.g. SELECT id FROM jobs")]
    EmptyQuery,
    /// No connection to PostgreSQL for the key cursor.
    #[error("PostgreSQL: {}", describe_pool_error(.0))]
    Connection(#[source] deadpool_postgres::PoolError),
    /// `--keys-query` cannot be run.
    #[error("--keys-query: {}; it must return one column, the keys of the merged table", describe_pg_error(.0))]
    Query(#[source] tokio_postgres::Error),
    /// Reading the next keys failed.
    #[error("reading the keys of --keys-query: {}", describe_pg_error(.0))]
    Read(#[source] tokio_postgres::Error),
    /// `--keys-query` returned a NULL.
    #[error("--keys-query returned a NULL key; filter NULLs out (WHERE … IS NOT NULL)")]
    NullKey,
    /// `--keys-query` returned a key that is not of the merge query's key type.
    #[error("--keys-query returned {text:?}, which is not a 64-bit integer (merge.key_type = \"integer\")")]
    NotAKey {
        /// The key, as text.
        text: String,
    },
    /// `--keys-query` returned keys PostgreSQL cannot read as bigint, for the key order.
    #[error("--keys-query returned a key that is not a 64-bit integer (merge.key_type = \"integer\"): {}", describe_pg_error(.0))]
    NotIntegerKeys(#[source] tokio_postgres::Error),
    /// `--from`/`--to` is not of the merge query's key type.
    #[error("--{option} {text:?} is not a 64-bit integer (merge.key_type = \"integer\")")]
    BadBound {
        /// `from` or `to`.
        option: &'static str,
        /// The bound, as given.
        text: String,
    },
    /// The `--resume` checkpoint cannot be read or written.
    #[error("--resume {}: {source}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `--resume` checkpoint is not one this command wrote.
    #[error("--resume {}: not a backfill checkpoint ({source}); give another file, or delete it to start over", path.display())]
    CheckpointSyntax {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The `--resume` checkpoint belongs to a run with another query or range.
    #[error("--resume {}: the checkpoint is of a backfill of {other}; give the same --keys-query/--from/--to, another file, or delete it to start over", path.display())]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// What the checkpoint is of.
        other: String,
    },
}

/// Why a backfill stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The keys cannot be read (the query, the file, the bounds or the checkpoint).
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// The merge and load path (the same as `run`'s) failed to start or failed a batch for good.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A batch's task stopped without an outcome (a panic, or the runtime shutting down).
    #[error("a backfill batch stopped unexpectedly")]
    BatchTask(#[source] tokio::task::JoinError),
}

/// How a backfill runs, beside its keys.
#[derive(Debug, Clone, Default)]
pub struct BackfillOptions {
    /// Keys per batch (loaded in Stream Loads of `batch.max_load_bytes`); at most `rate` when a rate is set, so a
    /// batch takes about a second.
    pub batch_keys: usize,
    /// With `--keys-query`: only keys ≥ this (as text, of `merge.key_type`).
    pub from: Option<String>,
    /// With `--keys-query`: only keys ≤ this.
    pub to: Option<String>,
    /// At most this many keys per second.
    pub rate: Option<f64>,
    /// With `--keys-query`: the checkpoint file; resumes after its last key when it exists.
    pub checkpoint: Option<PathBuf>,
    /// Redraw a progress line on stderr after each batch (a terminal): keys, keys/s, ETA.
    pub progress: bool,
}

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackfillReport {
    /// Keys the query returned.
    pub keys: u64,
    /// Batches loaded.
    pub batches: u64,
    /// Rows upserted.
    pub rows: u64,
    /// Delete rows (keys the merge query did not return).
    pub deletes: u64,
    /// Merge queries run.
    pub queries: u64,
    /// Rows Doris rejected, each dead-lettered.
    pub rejected: u64,
    /// True when a shutdown stopped it before the last key.
    pub interrupted: bool,
    /// With `--resume`: the key the run continued after (none when it started from the first key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_after: Option<String>,
}

/// Where the keys to refresh come from.
#[derive(Debug, Clone)]
pub enum Keys {
    /// A query returning them (one column), read in key order by keyset pagination.
    Query(String),
    /// A list, e.g. from [`keys_from_file`].
    List(Vec<String>),
}

/// The keys of a file: a dead-letter file's load records (`"kind":"load"`: the keys of rows Doris rejected or the
/// merge query failed on) and any line that is not a JSON object, taken as one key. Message records (no key could be
/// read from those) and stage `resolve` records (they hold values of a resolve query, not keys) are skipped.
/// Returns the keys and the number of records skipped.
pub fn keys_from_file(path: &std::path::Path) -> Result<(Vec<String>, usize), KeysError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeysError::FileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut keys = Vec::new();
    let mut skipped = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('{') {
            keys.push(line.to_owned());
            continue;
        }
        let record: serde_json::Value =
            serde_json::from_str(line).map_err(|source| KeysError::FileLine {
                path: path.to_path_buf(),
                line: n + 1,
                source,
            })?;
        match (
            record.get("kind").and_then(|k| k.as_str()),
            record.get("keys"),
        ) {
            (Some("load"), Some(serde_json::Value::Array(list)))
                if record.get("stage").and_then(|s| s.as_str()) != Some("resolve") =>
            {
                keys.extend(list.iter().map(|k| match k {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }));
            }
            _ => skipped += 1,
        }
    }
    Ok((keys, skipped))
}

/// Refreshes `keys` in batches of `batch_keys`, until the last key or `shutdown`.
pub async fn run(
    config: Config,
    keys: Keys,
    batch_keys: usize,
    shutdown: CancellationToken,
) -> Result<BackfillReport, BackfillError> {
    let options = BackfillOptions {
        batch_keys,
        ..BackfillOptions::default()
    };
    run_with(config, keys, options, shutdown).await
}

/// Refreshes `keys` as `options` say, until the last key or `shutdown`.
pub async fn run_with(
    config: Config,
    keys: Keys,
    options: BackfillOptions,
    shutdown: CancellationToken,
) -> Result<BackfillReport, BackfillError> {
    let file = &config.file;
    let mut batch_keys = options.batch_keys.max(1);
    if let Some(rate) = options.rate.filter(|r| *r > 0.0) {
        // A batch of at most a second's keys, so the pace is even.
        batch_keys = batch_keys.min(rate.ceil() as usize).max(1);
    }
    // One more connection than the merge chunks use: the key pages read on it.
    let Parts {
        pool,
        merge,
        sink,
        dead_letter,
    } = Parts::new(&config, 1).await?;
    let ctx = Arc::new(WorkerContext {
        key_column: file.merge.key_column.clone(),
        pg_healthy: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        pool: pool.clone(),
        merge,
        key_type: file.merge.key_type,
        resolvers: Vec::new(),
        chunk_size: file.merge.chunk_size,
        parallel_chunks: file.postgres.pool_size.max(1),
        max_load_bytes: file.batch.max_load_bytes.max(1),
        labels: sink.label_scope(),
        sink,
        dead_letter,
        abandon: shutdown.clone(),
    });
    let mut report = BackfillReport::default();
    let mut checkpoint: Option<(PathBuf, Checkpoint)> = None;
    let mut feeder = match keys {
        Keys::Query(query) => {
            let key_type = file.merge.key_type;
            for (option, bound) in [("from", &options.from), ("to", &options.to)] {
                if let Some(text) = bound {
                    if key_type == KeyType::Integer && text.trim().parse::<i64>().is_err() {
                        return Err(KeysError::BadBound {
                            option,
                            text: text.clone(),
                        }
                        .into());
                    }
                }
            }
            let mut after = None;
            if let Some(path) = &options.checkpoint {
                let fresh = Checkpoint {
                    keys_query: query.clone(),
                    from: options.from.clone(),
                    to: options.to.clone(),
                    after: None,
                    keys: 0,
                    done: false,
                };
                let state = match Checkpoint::read(path)? {
                    Some(saved) => {
                        if (&saved.keys_query, &saved.from, &saved.to)
                            != (&fresh.keys_query, &fresh.from, &fresh.to)
                        {
                            return Err(KeysError::CheckpointMismatch {
                                path: path.clone(),
                                other: format!(
                                    "{:?} from {} to {}",
                                    saved.keys_query,
                                    saved.from.as_deref().unwrap_or("the first key"),
                                    saved.to.as_deref().unwrap_or("the last key")
                                ),
                            }
                            .into());
                        }
                        if saved.done {
                            tracing::info!(
                                checkpoint = %path.display(),
                                keys = saved.keys,
                                "backfill: the checkpoint says this backfill is complete; delete it to run again"
                            );
                            return Ok(report);
                        }
                        tracing::info!(
                            checkpoint = %path.display(),
                            after = saved.after.as_deref().unwrap_or("-"),
                            keys = saved.keys,
                            "backfill: resuming"
                        );
                        saved
                    }
                    None => fresh,
                };
                after = state.after.clone();
                report.resumed_after = state.after.clone();
                checkpoint = Some((path.clone(), state));
            }
            Feeder::Keyset(KeyPages {
                pool: pool.clone(),
                body: {
                    let body = trim_query(&query);
                    if body.trim().is_empty() {
                        return Err(KeysError::EmptyQuery.into());
                    }
                    body.to_owned()
                },
                key_type,
                after,
                from: options.from.clone(),
                to: options.to.clone(),
                limit: batch_keys,
                done: false,
            })
        }
        Keys::List(list) => Feeder::List(list.into_iter(), batch_keys),
    };
    let total = match (&feeder, options.progress) {
        (Feeder::Keyset(pages), true) => pages.count().await.ok(),
        (Feeder::List(list, _), _) => Some(list.len() as u64),
        _ => None,
    };
    // Labels are per run: Doris answers a label it already knows with "already exists" and loads nothing, so a
    // second run must not reuse the first one's.
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run_id = format!(
        "{}-{}-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let mut tracker = OffsetTracker::new();
    let started = Instant::now();
    tracing::info!(batch_keys, "backfill: reading keys");
    // Up to `batch.max_in_flight` batches at once (the next one merges while the previous one loads); they finish in
    // order, so the checkpoint only ever names a key whose batch and every earlier one loaded.
    let max_in_flight = file.batch.max_in_flight.max(1);
    let mut in_flight: std::collections::VecDeque<InFlight> = std::collections::VecDeque::new();
    let mut exhausted = false;
    loop {
        while !exhausted && in_flight.len() < max_in_flight && !shutdown.is_cancelled() {
            if let Some(rate) = options.rate.filter(|r| *r > 0.0) {
                let due = started + Duration::from_secs_f64(report.keys as f64 / rate);
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            let texts = feeder.next().await?;
            if texts.is_empty() {
                exhausted = true;
                break;
            }
            let mut keys = HashSet::with_capacity(texts.len());
            for text in &texts {
                keys.insert(key_value(text, file.merge.key_type)?);
            }
            report.keys += keys.len() as u64;
            let (after, last_page) = match &feeder {
                Feeder::Keyset(pages) => (pages.after.clone(), pages.done),
                Feeder::List(..) => (None, false),
            };
            exhausted = last_page;
            let id = tracker.open_batch();
            let number = i64::try_from(id.get()).unwrap_or(i64::MAX);
            let ranges = vec![OffsetRange {
                tp: TopicPartition::new(format!("backfill-{run_id}"), 0),
                first: number,
                last: number,
            }];
            let name = crate::sink::describe_ranges(id, &ranges);
            let task = tokio::spawn(run_batch(
                ctx.clone(),
                SealedBatch {
                    id,
                    name,
                    ranges,
                    keys,
                    resolve: Vec::new(),
                    txids: Vec::new(),
                },
            ));
            in_flight.push_back(InFlight {
                task,
                after,
                keys: texts.len() as u64,
                last_page,
            });
        }
        let Some(batch) = in_flight.pop_front() else {
            report.interrupted = !exhausted;
            break;
        };
        let done = batch.task.await.map_err(BackfillError::BatchTask)?;
        match done.outcome {
            BatchOutcome::Loaded {
                rows,
                deletes,
                queries,
                rejected,
                ..
            } => {
                report.batches += 1;
                report.rows += rows as u64;
                report.deletes += deletes as u64;
                report.queries += queries as u64;
                report.rejected += rejected as u64;
                let seconds = started.elapsed().as_secs_f64();
                let per_second = report.keys as f64 / seconds.max(1e-3);
                if let Some((path, state)) = &mut checkpoint {
                    state.after = batch.after;
                    state.keys += batch.keys;
                    state.done = batch.last_page;
                    state.write(path)?;
                }
                tracing::info!(
                    batch = %done.name,
                    keys = report.keys,
                    rows = report.rows,
                    deletes = report.deletes,
                    seconds,
                    keys_per_second = per_second.round(),
                    "backfill: batch loaded"
                );
                if options.progress {
                    eprint!("\r{}", progress_line(report.keys, total, per_second));
                }
            }
            BatchOutcome::Abandoned => {
                report.interrupted = true;
                break;
            }
            BatchOutcome::Fatal(source) => {
                return Err(PipelineError::Fatal {
                    batch: done.name,
                    source: Box::new(source),
                }
                .into())
            }
        }
    }
    if options.progress {
        eprintln!();
    }
    // The last page was short or empty: write `done` even when no batch followed it.
    if let (Some((path, state)), false) = (&mut checkpoint, report.interrupted) {
        state.done = true;
        state.write(path)?;
    }
    Ok(report)
}

/// A batch merging or loading, and what the checkpoint says once it loaded.
struct InFlight {
    task: tokio::task::JoinHandle<BatchDone>,
    /// The last key of its page (keyset pages only).
    after: Option<String>,
    keys: u64,
    last_page: bool,
}

/// Hands out the keys batch by batch.
enum Feeder {
    /// `--keys-query`, page by page in key order.
    Keyset(KeyPages),
    /// A list, and the batch size.
    List(std::vec::IntoIter<String>, usize),
}

/// The pages of `--keys-query`: `WHERE k > <last key> [AND k >= from] [AND k <= to] ORDER BY k LIMIT n`, each one
/// statement on a pool connection (no transaction or snapshot spans two pages).
struct KeyPages {
    pool: deadpool_postgres::Pool,
    body: String,
    key_type: KeyType,
    /// The last key handed out.
    after: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: usize,
    /// The last page was short.
    done: bool,
}

impl KeyPages {
    /// The key in order: as bigint, or as text in byte order (Doris's order for strings).
    fn order(&self) -> &'static str {
        match self.key_type {
            KeyType::Integer => "(r.k)::int8",
            KeyType::String => "((r.k)::text COLLATE \"C\")",
        }
    }

    /// ` AND`-joined conditions for the bounds given, with their parameters.
    fn conditions(&self, with_after: bool) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
        let order = self.order();
        let mut sql = String::from("r.k IS NOT NULL");
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let bounds = [
            (
                ">",
                if with_after {
                    self.after.as_ref()
                } else {
                    None
                },
            ),
            (">=", self.from.as_ref()),
            ("<=", self.to.as_ref()),
        ];
        for (op, bound) in bounds {
            let Some(text) = bound else { continue };
            let param: Box<dyn ToSql + Sync + Send> = match self.key_type {
                // Checked at the start (bounds) or read back from PostgreSQL (after): a parse error cannot happen,
                // and would only widen the page.
                KeyType::Integer => match text.trim().parse::<i64>() {
                    Ok(i) => Box::new(i),
                    Err(_) => continue,
                },
                KeyType::String => Box::new(text.clone()),
            };
            params.push(param);
            sql.push_str(&format!(" AND {order} {op} ${}", params.len()));
        }
        (sql, params)
    }

    async fn next(&mut self) -> Result<Vec<String>, KeysError> {
        if self.done {
            return Ok(Vec::new());
        }
        let (conds, params) = self.conditions(true);
        let sql = format!(
            "SELECT (r.k)::text FROM (\n{}\n) AS r(k) WHERE {conds} ORDER BY {} LIMIT {}",
            self.body,
            self.order(),
            self.limit
        );
        let client = self.pool.get().await.map_err(KeysError::Connection)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(sql.as_str(), &refs).await.map_err(|e| {
            if self.key_type == KeyType::Integer
                && e.code() == Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
            {
                KeysError::NotIntegerKeys(e)
            } else {
                KeysError::Query(e)
            }
        })?;
        let texts = rows
            .iter()
            .map(|row| {
                let text: Option<String> = row.try_get(0).map_err(KeysError::Read)?;
                text.ok_or(KeysError::NullKey)
            })
            .collect::<Result<Vec<String>, KeysError>>()?;
        self.done = texts.len() < self.limit;
        if let Some(last) = texts.last() {
            self.after = Some(last.clone());
        }
        Ok(texts)
    }

    /// How many keys are left (for the progress line's ETA).
    async fn count(&self) -> Result<u64, KeysError> {
        let (conds, params) = self.conditions(true);
        let sql = format!(
            "SELECT count(*) FROM (\n{}\n) AS r(k) WHERE {conds}",
            self.body
        );
        let client = self.pool.get().await.map_err(KeysError::Connection)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let row = client
            .query_one(sql.as_str(), &refs)
            .await
            .map_err(KeysError::Query)?;
        let n: i64 = row.try_get(0).map_err(KeysError::Read)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl Feeder {
    /// The next batch of keys, as text; empty at the end.
    async fn next(&mut self) -> Result<Vec<String>, KeysError> {
        match self {
            Feeder::List(list, n) => Ok(list.by_ref().take(*n).collect()),
            Feeder::Keyset(pages) => pages.next().await,
        }
    }
}

/// A key of `--keys-query` as the merge query's `$1` takes it.
fn key_value(text: &str, key_type: KeyType) -> Result<KeyValue, KeysError> {
    match key_type {
        KeyType::String => Ok(KeyValue::Str(text.to_owned())),
        KeyType::Integer => text
            .parse()
            .map(KeyValue::Int)
            .map_err(|_| KeysError::NotAKey {
                text: text.to_owned(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_as_the_merge_key_type() {
        assert_eq!(
            key_value("42", KeyType::Integer).unwrap(),
            KeyValue::Int(42)
        );
        assert_eq!(
            key_value("42", KeyType::String).unwrap(),
            KeyValue::Str("42".into())
        );
        let err = key_value("x1", KeyType::Integer).unwrap_err().to_string();
        assert!(
            err.contains("\"x1\", which is not a 64-bit integer"),
            "{err}"
        );
    }

    #[test]
    fn keys_from_a_dead_letter_file_or_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(
            &path,
            "{\"kind\":\"load\",\"label\":\"l\",\"keys\":[7,\"a b\"]}\n\n  12  \n{\"kind\":\"message\",\"stage\":\"decode\"}\n\
             {\"kind\":\"load\",\"stage\":\"resolve\",\"keys\":[99]}\n",
        )
        .unwrap();
        let (keys, skipped) = keys_from_file(&path).unwrap();
        assert_eq!(keys, ["7", "a b", "12"]);
        assert_eq!(skipped, 2);
        std::fs::write(&path, "{not json\n").unwrap();
        let err = keys_from_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 1: not a JSON record"), "{err}");
        let err = keys_from_file(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--keys-from"), "{err}");
    }
}
