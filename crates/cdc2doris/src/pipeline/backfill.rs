//! `cdc2doris backfill`: refresh every key a query returns, without Kafka — the first load of a new Doris table, or
//! a re-sync after the table was recreated or events expired from the topics.
//!
//! The keys come from `--keys-query` (one column: keys of the merged table, e.g. `SELECT id FROM jobs`), read through
//! a cursor in batches of `--batch-keys`, or from `--keys-from FILE`: a dead-letter file, whose load records hold the
//! keys of rows Doris rejected (refresh them once the cause is fixed), or one key per line. Each batch goes through the service's own merge and load: chunks of
//! `merge.chunk_size` keys, each read in one snapshot whose version is the sequence column, keys the merge query no
//! longer returns loaded as deletes, rows Doris rejects isolated and dead-lettered. So a backfill may run while
//! `cdc2doris run` does: whichever read is older never overwrites the newer one.
//!
//! Each batch loads under a label of its own (made from its body and the run's start time, process and the batch number), so a retried
//! load never loads twice; running the backfill again loads again, which the sequence column makes harmless. The cursor's
//! transaction stays open for the whole run (its snapshot holds back VACUUM on a busy database meanwhile).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::worker::{run_batch, BatchOutcome, SealedBatch, WorkerContext};

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
}
use super::{Parts, PipelineError};
use crate::config::Config;
use crate::keys::{KeyType, KeyValue};
use crate::merge::pool::describe_pool_error;
use crate::merge::postgres::{describe_pg_error, trim_query};
use crate::offsets::{OffsetTracker, TopicPartition};
use crate::sink::OffsetRange;

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
}

/// Where the keys to refresh come from.
#[derive(Debug, Clone)]
pub enum Keys {
    /// A query returning them (one column), read through a cursor.
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
) -> Result<BackfillReport, PipelineError> {
    let file = &config.file;
    let batch_keys = batch_keys.max(1);
    // One more connection than the merge chunks use: a cursor holds one for the whole run.
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
        labels: sink.label_scope(),
        sink,
        dead_letter,
        abandon: shutdown.clone(),
    });
    let mut feeder = match keys {
        Keys::Query(query) => Feeder::cursor(&pool, &query, batch_keys).await?,
        Keys::List(list) => Feeder::List(list.into_iter(), batch_keys),
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
    let mut report = BackfillReport::default();
    let started = Instant::now();
    tracing::info!(batch_keys, "backfill: reading keys");
    loop {
        if shutdown.is_cancelled() {
            report.interrupted = true;
            break;
        }
        let texts = feeder.next().await?;
        if texts.is_empty() {
            break;
        }
        let mut keys = HashSet::with_capacity(texts.len());
        for text in &texts {
            keys.insert(key_value(text, file.merge.key_type)?);
        }
        report.keys += keys.len() as u64;
        let id = tracker.open_batch();
        let number = i64::try_from(id.get()).unwrap_or(i64::MAX);
        let ranges = vec![OffsetRange {
            tp: TopicPartition::new(format!("backfill-{run_id}"), 0),
            first: number,
            last: number,
        }];
        let name = crate::sink::describe_ranges(id, &ranges);
        let done = run_batch(
            ctx.clone(),
            SealedBatch {
                id,
                name,
                ranges,
                keys,
                resolve: Vec::new(),
                txids: Vec::new(),
            },
        )
        .await;
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
                tracing::info!(
                    batch = %done.name,
                    keys = report.keys,
                    rows = report.rows,
                    deletes = report.deletes,
                    seconds = started.elapsed().as_secs_f64(),
                    "backfill: batch loaded"
                );
            }
            BatchOutcome::Abandoned => {
                report.interrupted = true;
                break;
            }
            BatchOutcome::Fatal(source) => {
                return Err(PipelineError::Fatal {
                    batch: done.name,
                    source: Box::new(source),
                })
            }
        }
    }
    feeder.close().await;
    Ok(report)
}

/// Hands out the keys batch by batch.
enum Feeder {
    /// A cursor over `--keys-query` on a connection of its own, in a transaction kept open until the end.
    Cursor {
        client: Box<deadpool_postgres::Object>,
        fetch: String,
    },
    /// A list, and the batch size.
    List(std::vec::IntoIter<String>, usize),
}

impl Feeder {
    async fn cursor(
        pool: &deadpool_postgres::Pool,
        query: &str,
        batch_keys: usize,
    ) -> Result<Feeder, KeysError> {
        let body = trim_query(query);
        if body.is_empty() {
            return Err(KeysError::EmptyQuery);
        }
        let client = pool.get().await.map_err(KeysError::Connection)?;
        client
            .batch_execute(&format!(
                "BEGIN READ ONLY; DECLARE cdc2doris_backfill NO SCROLL CURSOR FOR \
                 SELECT (r.k)::text FROM (\n{body}\n) AS r(k)"
            ))
            .await
            .map_err(KeysError::Query)?;
        Ok(Feeder::Cursor {
            client: Box::new(client),
            fetch: format!("FETCH {batch_keys} FROM cdc2doris_backfill"),
        })
    }

    /// The next batch of keys, as text; empty at the end.
    async fn next(&mut self) -> Result<Vec<String>, KeysError> {
        match self {
            Feeder::List(list, n) => Ok(list.by_ref().take(*n).collect()),
            Feeder::Cursor { client, fetch } => {
                let rows = client
                    .query(fetch.as_str(), &[])
                    .await
                    .map_err(KeysError::Read)?;
                rows.iter()
                    .map(|row| {
                        let text: Option<String> = row.try_get(0).map_err(KeysError::Read)?;
                        text.ok_or(KeysError::NullKey)
                    })
                    .collect()
            }
        }
    }

    /// Ends the cursor's transaction (it only read).
    async fn close(self) {
        if let Feeder::Cursor { client, .. } = self {
            let _ = client.batch_execute("ROLLBACK").await;
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
