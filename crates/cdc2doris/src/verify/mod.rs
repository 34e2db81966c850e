//! `cdc2doris verify`: does the Doris table equal its merge query? And `--repair`: make it so.
//!
//! The keys come from `--keys-query` (the keys of the merged table, e.g. `SELECT id FROM jobs`), read in pages in
//! key order by keyset pagination (`WHERE k > last ORDER BY k LIMIT n`, one short statement per page, no snapshot
//! held for the run). Each page closes a key range: `(previous page's last key, this page's last key]`, the last one
//! open-ended, so the ranges cover every possible key and a Doris row the query does not name is still read. For
//! each range:
//! - Doris's rows of the range are read over the FE query port (MySQL protocol, `doris.query_port`);
//! - the merge query runs for the page's keys and the keys Doris holds in the range, chunk by chunk, each chunk in
//!   one snapshot whose version is known (the same read `run` and `backfill` do);
//! - each key is compared column by column with type-aware equality (`compare.rs`).
//!
//! A key is `missing` (the merge query returns a row, Doris has none), `extra` (Doris has a row, the merge query
//! none), `stale` (both, different, and Doris's row was read in an older snapshot than this one: a change that
//! never arrived, or a row edited in Doris), `different` (both, different, same snapshot version: the load stored
//! something else than the query returned). Under live traffic a Doris row whose sequence version is newer than the
//! snapshot of its chunk was loaded from a later read than ours: it is not drift. Every key that does not match is
//! checked once more at the end of the run (after `--recheck-after`, in a fresh snapshot), so a change the running
//! service had not loaded yet is not reported either; a key still wrong whose Doris row changed between the two looks
//! (the service is loading it as we watch: a hot key) is looked at again, up to three looks after the first. Only
//! what is still wrong then counts, and a row still newer than our read counts as `newer`.
//!
//! `--sample N` checks N keys drawn at random from the union of `--keys-query`'s keys and the keys the Doris table
//! holds (up to N from each side, then N of those at random), so a sample can find a missing row (a key only the
//! query returns) as well as an extra one (a key only Doris holds). The merge query itself cannot list its keys (it
//! is a function of the keys it is given), so without `--keys-query` a sample is drawn from Doris's keys alone:
//! stale, different and extra rows are found, missing ones are not looked for (the report says so); a full check
//! needs `--keys-query`. `--repair` sends every drifted key through the same merge and load as `backfill` (deletes
//! included) and verifies those keys again.

pub mod compare;
pub mod doris;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::keys::KeyType;
use crate::merge::postgres::{describe_pg_error, trim_query};
use crate::merge::{MergeKeys, MergeQuery};
use crate::sink::doris::DELETE_SIGN_COLUMN;
use doris::{DorisRange, DorisReader};

/// Arguments of `cdc2doris verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The configuration file (the same as `run`'s; Kafka is not used).
    #[arg(long, short, env = "CDC2DORIS_CONFIG")]
    pub config: PathBuf,
    /// SQL returning the keys of the merged table, one column of `merge.key_type`, e.g. `SELECT id FROM jobs`.
    /// Needed for a full check; optional with `--sample`.
    #[arg(long, required_unless_present = "sample")]
    pub keys_query: Option<String>,
    /// Check only this many keys, drawn at random from `--keys-query`'s keys and the Doris table's (without
    /// `--keys-query`: from the Doris table's alone, so missing rows are not looked for).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Keys per range (one Doris read, merge queries of `merge.chunk_size` keys). Default 10000.
    #[arg(long, default_value_t = 10_000)]
    pub range_keys: usize,
    /// Output: `text` (a summary and the first examples) or `json` (one object).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Examples of each kind of drift to print.
    #[arg(long, default_value_t = 5)]
    pub examples: usize,
    /// Reload every drifted key through the merge query (as `backfill` does), then verify those keys again.
    #[arg(long)]
    pub repair: bool,
    /// Wait before the keys that did not match are checked a second time (lets a running service catch up).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub recheck_after: std::time::Duration,
}

/// Why verify could not run (drift is not an error: it is the report). Printed with its sources
/// ([`crate::error::error_chain`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The PostgreSQL pool cannot be built from `[postgres]`.
    #[error("cannot set up PostgreSQL")]
    Pool(#[source] crate::pipeline::PipelineError),
    /// The merge query file holds no statement.
    #[error("merge.query_file")]
    MergeQuery(#[source] crate::merge::MergeError),
    /// `--keys-query` is empty.
    #[error("--keys-query is empty; give a query returning the keys, e.g. SELECT id FROM jobs")]
    EmptyKeysQuery,
    /// Neither `--keys-query` nor `--sample`.
    #[error("give --keys-query (the keys of the merged table, e.g. SELECT id FROM jobs) to check every key, or --sample N")]
    NoKeys,
    /// Neither `doris.query_host` nor an FE/BE URL names a host.
    #[error("no host for the Doris query port: set doris.query_host")]
    NoQueryHost,
    /// The FE query port refused or did not answer.
    #[error("cannot connect to the Doris query port {address} as {user:?}; check doris.query_port / doris.query_host")]
    DorisConnect {
        address: String,
        user: String,
        #[source]
        source: mysql_async::Error,
    },
    /// The Doris table lacks the key column.
    #[error("the Doris table {table} has no column {column:?} (merge.key_column)")]
    NoKeyColumn { table: String, column: String },
    /// A statement on the FE query port failed.
    #[error("{statement} on {table}")]
    DorisQuery {
        statement: &'static str,
        table: String,
        #[source]
        source: mysql_async::Error,
    },
    /// Doris returned a key that is not of `merge.key_type`.
    #[error("the Doris table holds a key {text:?} that is not a 64-bit integer (merge.key_type = \"integer\")")]
    DorisKey { text: String },
    /// No PostgreSQL connection.
    #[error("cannot connect to PostgreSQL")]
    PgConnect(#[source] deadpool_postgres::PoolError),
    /// `--keys-query` failed.
    #[error("--keys-query: {}", describe_pg_error(.0))]
    KeysQuery(#[source] tokio_postgres::Error),
    /// `--keys-query` (or the merge query) returned a key that is not of `merge.key_type`.
    #[error("{source_name} returned {text:?}, which is not a 64-bit integer (merge.key_type = \"integer\")")]
    NotAKey {
        source_name: &'static str,
        text: String,
    },
    /// The merge query failed.
    #[error("the merge query")]
    Merge(#[source] crate::merge::MergeError),
    /// A merged row is not the JSON object the wrapped merge query renders.
    #[error("a merged row is not a JSON object")]
    MergedRow(#[source] serde_json::Error),
    /// A merge read task stopped (a panic or the runtime shutting down).
    #[error("a merge read stopped")]
    MergeTask(#[source] tokio::task::JoinError),
    /// `--repair`'s reload failed.
    #[error("repair")]
    Repair(#[source] crate::backfill::BackfillError),
}

/// A key of the merged table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A key of `key_type` from its text; `None` when an integer key does not parse.
fn parse_key(text: &str, key_type: KeyType) -> Option<Key> {
    match key_type {
        KeyType::String => Some(Key::Str(text.to_owned())),
        KeyType::Integer => text.trim().parse().map(Key::Int).ok(),
    }
}

/// What a key turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Match,
    Missing,
    Stale,
    Extra,
    Different,
    Newer,
}

/// One differing column of an example.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnDiff {
    pub column: String,
    pub postgres: Option<String>,
    pub doris: Option<String>,
}

/// A drifted key, with what differs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Example {
    pub key: String,
    pub verdict: Verdict,
    /// The snapshot version the merge query read in.
    pub snapshot_version: i64,
    /// The sequence value of Doris's row, if it has one.
    pub doris_version: Option<i64>,
    pub columns: Vec<ColumnDiff>,
}

/// Counts per verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub keys: u64,
    #[serde(rename = "match")]
    pub matched: u64,
    pub missing: u64,
    pub stale: u64,
    pub extra: u64,
    pub different: u64,
    /// Doris rows loaded from a read newer than ours, still newer at the re-check (not drift).
    pub newer: u64,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        self.keys += 1;
        match v {
            Verdict::Match => self.matched += 1,
            Verdict::Missing => self.missing += 1,
            Verdict::Stale => self.stale += 1,
            Verdict::Extra => self.extra += 1,
            Verdict::Different => self.different += 1,
            Verdict::Newer => self.newer += 1,
        }
    }

    /// Keys whose Doris row is wrong.
    pub fn drift(&self) -> u64 {
        self.missing + self.stale + self.extra + self.different
    }
}

/// What a verify run found (and repaired).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    #[serde(flatten)]
    pub counts: Counts,
    /// Key ranges (pages) read.
    pub ranges: u64,
    /// Merge query columns that the Doris table does not have (not compared).
    pub unchecked_columns: Vec<String>,
    /// The first examples of each kind of drift.
    pub examples: Vec<Example>,
    /// A sample drawn without `--keys-query` (from Doris's keys only): a key the merge query returns and Doris lacks
    /// cannot be drawn, so `missing` is not looked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing_not_checked: bool,
    /// After `--repair`: the drifted keys verified again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_repair: Option<Counts>,
    pub interrupted: bool,
}

impl VerifyReport {
    /// True when Doris holds what the merge query returns (after the repair, when there was one).
    pub fn clean(&self) -> bool {
        match &self.after_repair {
            Some(c) => c.drift() == 0,
            None => self.counts.drift() == 0,
        }
    }

    /// The text form: one summary line, then examples.
    pub fn render_text(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "verify: {} keys in {} ranges: {} match, {} missing, {} stale, {} extra, {} different",
            c.keys, self.ranges, c.matched, c.missing, c.stale, c.extra, c.different
        );
        if c.newer > 0 {
            s.push_str(&format!(
                " ({} newer in Doris than our read, not drift)",
                c.newer
            ));
        }
        if self.interrupted {
            s.push_str(" (interrupted)");
        }
        s.push('\n');
        for e in &self.examples {
            s.push_str(&format!(
                "  {:?} key {} (snapshot version {}, Doris version {})",
                e.verdict,
                e.key,
                e.snapshot_version,
                e.doris_version.map_or("-".into(), |v| v.to_string())
            ));
            for d in &e.columns {
                s.push_str(&format!(
                    "\n    {}: postgres {} / doris {}",
                    d.column,
                    d.postgres
                        .as_deref()
                        .map_or("NULL".into(), |v| format!("{v:?}")),
                    d.doris
                        .as_deref()
                        .map_or("NULL".into(), |v| format!("{v:?}"))
                ));
            }
            s.push('\n');
        }
        if self.missing_not_checked {
            s.push_str(
                "  missing rows not looked for: the sample was drawn from the Doris table's keys alone (give --keys-query)\n",
            );
        }
        if !self.unchecked_columns.is_empty() {
            s.push_str(&format!(
                "  not compared (no such Doris column): {}\n",
                self.unchecked_columns.join(", ")
            ));
        }
        if let Some(a) = &self.after_repair {
            s.push_str(&format!(
                "repair: {} keys reloaded; verified again: {} match, {} missing, {} stale, {} extra, {} different\n",
                a.keys, a.matched, a.missing, a.stale, a.extra, a.different
            ));
        }
        s
    }
}

/// Options of one run (the command line without the config).
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The keys of the merged table; required without `sample`.
    pub keys_query: Option<String>,
    pub sample: Option<u64>,
    pub range_keys: usize,
    pub examples: usize,
    pub repair: bool,
    /// Wait before the keys that did not match are checked again.
    pub recheck_after: std::time::Duration,
    /// Redraw a progress line on stderr after each range (a terminal).
    pub progress: bool,
}

/// The checker: PostgreSQL, the merge query and Doris.
struct Verifier {
    pool: deadpool_postgres::Pool,
    pg: Arc<MergeReader>,
    doris: DorisReader,
    key_type: KeyType,
    judge: Judge,
}

/// Judges keys: the Doris table's columns and what was seen.
struct Judge {
    /// Every Doris column, in table order, with its type.
    columns: Vec<(String, compare::DorisType)>,
    /// Doris column index of the sequence column.
    seq_index: Option<usize>,
    /// Merge query columns seen without a Doris column.
    unchecked: BTreeSet<String>,
    /// Doris column index by name.
    column_index: std::collections::HashMap<String, usize>,
}

/// Both sides of a range, read.
struct Fetched {
    /// The keys to judge, in order: the given ones and those only Doris holds.
    keys: BTreeSet<Key>,
    doris_rows: BTreeMap<Key, Vec<Option<String>>>,
    pg: BTreeMap<Key, PgSide>,
}

/// Runs the merge query for chunks of keys; shared by the chunk reads of a range, which run in parallel.
struct MergeReader {
    pool: deadpool_postgres::Pool,
    chunk_size: usize,
    /// Merge chunks read at once (`postgres.pool_size`).
    parallel_chunks: usize,
    /// Doris column index of the key.
    key_index: usize,
    merge: MergeQuery,
    key_type: KeyType,
    key_column: String,
    sequence_column: String,
}

/// One key's merge-query side: its row (raw JSON members) or none, and the snapshot version.
struct PgSide {
    row: Option<BTreeMap<String, Box<RawValue>>>,
    version: i64,
}

/// Runs verify (and the repair) until done or `shutdown`.
pub async fn run_verify(
    config: &Config,
    opts: &VerifyOptions,
    shutdown: CancellationToken,
) -> Result<VerifyReport, VerifyError> {
    let file = &config.file;
    let pool = crate::pipeline::postgres_pool(config).map_err(VerifyError::Pool)?;
    let merge = MergeQuery::new(
        &config.merge_query,
        &file.merge.key_column,
        file.merge.key_type,
        &file.doris.sequence_column,
    )
    .map_err(VerifyError::MergeQuery)?;
    let doris = DorisReader::connect(config).await?;
    let key_index = doris
        .columns
        .iter()
        .position(|(c, _)| *c == file.merge.key_column)
        .ok_or_else(|| VerifyError::NoKeyColumn {
            table: doris::table_name(config),
            column: file.merge.key_column.clone(),
        })?;
    let seq_index = doris
        .columns
        .iter()
        .position(|(c, _)| *c == file.doris.sequence_column);
    let mut v = Verifier {
        pool: pool.clone(),
        pg: Arc::new(MergeReader {
            pool,
            chunk_size: file.merge.chunk_size.max(1),
            parallel_chunks: file.postgres.pool_size.max(1),
            key_index,
            merge,
            key_type: file.merge.key_type,
            key_column: file.merge.key_column.clone(),
            sequence_column: file.doris.sequence_column.clone(),
        }),
        doris,
        key_type: file.merge.key_type,
        judge: Judge {
            columns: Vec::new(),
            seq_index,
            unchecked: BTreeSet::new(),
            column_index: std::collections::HashMap::new(),
        },
    };
    v.judge.columns = v.doris.columns.clone();
    v.judge.column_index = v
        .judge
        .columns
        .iter()
        .enumerate()
        .map(|(i, (c, _))| (c.clone(), i))
        .collect();
    let mut report = VerifyReport::default();
    // Keys to look at again, with the sequence version of their Doris row when first seen.
    let mut recheck: Vec<(Key, Option<i64>)> = Vec::new();
    let mut drifted: Vec<Key> = Vec::new();
    let mut examples: BTreeMap<String, usize> = BTreeMap::new();
    let mut record = |report: &mut VerifyReport,
                      key: &Key,
                      verdict: Verdict,
                      ex: Option<Example>,
                      drifted: &mut Vec<Key>| {
        report.counts.add(verdict);
        if !matches!(verdict, Verdict::Match | Verdict::Newer) {
            drifted.push(key.clone());
            if let Some(e) = ex {
                let n = examples.entry(format!("{verdict:?}")).or_default();
                if *n < opts.examples {
                    *n += 1;
                    report.examples.push(e);
                }
            }
        }
    };
    let range_keys = opts.range_keys.max(1);
    if let Some(n) = opts.sample {
        let keys = v.sample_keys(opts.keys_query.as_deref(), n).await?;
        report.missing_not_checked = opts.keys_query.is_none();
        for page in keys.chunks(range_keys) {
            if shutdown.is_cancelled() {
                report.interrupted = true;
                break;
            }
            report.ranges += 1;
            for (key, verdict, ex) in v.check(page, DorisRange::Points(page)).await? {
                if verdict != Verdict::Match {
                    recheck.push((key, doris_version_of(ex.as_ref())));
                    continue;
                }
                record(&mut report, &key, verdict, ex, &mut drifted);
            }
        }
    } else {
        let keys_query = opts.keys_query.as_deref().ok_or(VerifyError::NoKeys)?;
        let mut after: Option<Key> = None;
        // Range N+1's reads run while range N is judged (the merge reads on other tasks meanwhile).
        let mut pending: Option<Fetched> = None;
        loop {
            if shutdown.is_cancelled() {
                report.interrupted = true;
                if let Some(f) = pending.take() {
                    for (key, verdict, ex) in v.judge.judge_fetched(&f) {
                        if verdict != Verdict::Match {
                            recheck.push((key, doris_version_of(ex.as_ref())));
                            continue;
                        }
                        record(&mut report, &key, verdict, ex, &mut drifted);
                    }
                }
                break;
            }
            let page = v.key_page(keys_query, after.as_ref(), range_keys).await?;
            let last_page = page.len() < range_keys;
            let up_to = if last_page {
                None
            } else {
                page.last().cloned()
            };
            report.ranges += 1;
            let range = DorisRange::Between {
                after: after.as_ref(),
                up_to: up_to.as_ref(),
            };
            let previous = pending.take();
            let Verifier {
                doris, pg, judge, ..
            } = &mut v;
            let reads = fetch(doris, pg, &page, range);
            let judged = async { previous.map(|f| judge.judge_fetched(&f)) };
            let (fetched, judged) = tokio::join!(reads, judged);
            for (key, verdict, ex) in judged.into_iter().flatten() {
                if verdict != Verdict::Match {
                    recheck.push((key, doris_version_of(ex.as_ref())));
                    continue;
                }
                record(&mut report, &key, verdict, ex, &mut drifted);
            }
            pending = Some(fetched?);
            if last_page {
                for (key, verdict, ex) in pending
                    .take()
                    .map(|f| v.judge.judge_fetched(&f))
                    .into_iter()
                    .flatten()
                {
                    if verdict != Verdict::Match {
                        recheck.push((key, doris_version_of(ex.as_ref())));
                        continue;
                    }
                    record(&mut report, &key, verdict, ex, &mut drifted);
                }
            }
            if opts.progress {
                eprint!(
                    "\rverify: {} keys checked in {} ranges, {} to look at again",
                    report.counts.keys + recheck.len() as u64,
                    report.ranges,
                    recheck.len()
                );
            }
            if last_page {
                break;
            }
            after = up_to;
        }
    }
    if opts.progress {
        eprintln!();
    }
    // Every key that did not match is looked at again, in a fresh snapshot, after `recheck_after`: a Doris row
    // from a newer read than ours may match now, and so may a change the running service had not loaded yet.
    // A key still wrong whose Doris row changed since the previous look is being loaded as we watch (a hot key
    // under live traffic): it gets another look, up to RECHECK_ROUNDS in all. What is still wrong then is drift.
    let mut round = 0;
    while !recheck.is_empty() {
        round += 1;
        if !report.interrupted {
            tokio::select! {
                _ = tokio::time::sleep(opts.recheck_after) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        let last_round = round >= RECHECK_ROUNDS || shutdown.is_cancelled();
        let seen: std::collections::HashMap<Key, Option<i64>> = recheck.drain(..).collect();
        let keys: Vec<Key> = seen
            .keys()
            .cloned()
            .collect::<BTreeSet<Key>>()
            .into_iter()
            .collect();
        for page in keys.chunks(range_keys) {
            for (key, verdict, ex) in v.check(page, DorisRange::Points(page)).await? {
                let now = doris_version_of(ex.as_ref());
                let moved = seen.get(&key).is_some_and(|before| *before != now);
                if !last_round && moved && !matches!(verdict, Verdict::Match | Verdict::Newer) {
                    recheck.push((key, now));
                    continue;
                }
                record(&mut report, &key, verdict, ex, &mut drifted);
            }
        }
    }
    report.unchecked_columns = v.judge.unchecked.iter().cloned().collect();
    if opts.repair && !drifted.is_empty() && !report.interrupted {
        let texts: Vec<String> = drifted
            .iter()
            .map(|k| match k {
                Key::Int(i) => i.to_string(),
                Key::Str(s) => s.clone(),
            })
            .collect();
        let batch_keys = file.batch.max_keys.max(1);
        let repaired = crate::backfill::run(
            config.clone(),
            crate::backfill::Keys::List(texts),
            batch_keys,
            shutdown.clone(),
        )
        .await
        .map_err(VerifyError::Repair)?;
        tracing::info!(
            keys = repaired.keys,
            rows = repaired.rows,
            deletes = repaired.deletes,
            "verify: drifted keys reloaded"
        );
        let mut after = Counts::default();
        drifted.sort();
        drifted.dedup();
        for page in drifted.chunks(range_keys) {
            for (_, verdict, _) in v.check(page, DorisRange::Points(page)).await? {
                after.add(verdict);
            }
        }
        report.after_repair = Some(after);
    }
    v.doris.close().await;
    Ok(report)
}

impl Verifier {
    /// The next page of `--keys-query`'s keys after `after`, in key order (byte order for strings, as Doris sorts).
    async fn key_page(
        &self,
        keys_query: &str,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<Vec<Key>, VerifyError> {
        let body = keys_body(keys_query)?;
        let order = self.key_order();
        let client = self.client().await?;
        let rows = match after {
            None => client
                .query(
                    &format!("SELECT (r.k)::text FROM (\n{body}\n) AS r(k) WHERE r.k IS NOT NULL ORDER BY {order} LIMIT {limit}"),
                    &[],
                )
                .await,
            Some(Key::Int(i)) => client
                .query(
                    &format!("SELECT (r.k)::text FROM (\n{body}\n) AS r(k) WHERE {order} > $1 ORDER BY {order} LIMIT {limit}"),
                    &[i],
                )
                .await,
            Some(Key::Str(s)) => client
                .query(
                    &format!("SELECT (r.k)::text FROM (\n{body}\n) AS r(k) WHERE {order} > $1 ORDER BY {order} LIMIT {limit}"),
                    &[s],
                )
                .await,
        }
        .map_err(VerifyError::KeysQuery)?;
        self.keys_of(&rows)
    }

    /// `n` keys drawn at random from the union of `--keys-query`'s keys and the Doris table's, sorted: up to `n` from
    /// each side (PostgreSQL's `random()`, a reservoir over Doris's key column), then `n` of those at random. So a
    /// sample finds missing rows (keys only the query has) as well as extra ones (keys only Doris has). Without
    /// `--keys-query`, from Doris's keys alone.
    async fn sample_keys(
        &mut self,
        keys_query: Option<&str>,
        n: u64,
    ) -> Result<Vec<Key>, VerifyError> {
        let mut rng = SplitMix::new();
        let mut candidates: BTreeSet<Key> = BTreeSet::new();
        if let Some(keys_query) = keys_query {
            let body = keys_body(keys_query)?;
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("SELECT (r.k)::text FROM (\n{body}\n) AS r(k) WHERE r.k IS NOT NULL ORDER BY random() LIMIT {n}"),
                    &[],
                )
                .await
                .map_err(VerifyError::KeysQuery)?;
            candidates.extend(self.keys_of(&rows)?);
        }
        let limit = usize::try_from(n).unwrap_or(usize::MAX);
        let mut reservoir: Vec<String> = Vec::new();
        let mut seen: u64 = 0;
        self.doris
            .for_each_key(|text| {
                seen += 1;
                if reservoir.len() < limit {
                    reservoir.push(text);
                } else {
                    let j = rng.below(seen);
                    if let Some(slot) = usize::try_from(j).ok().and_then(|j| reservoir.get_mut(j)) {
                        *slot = text;
                    }
                }
            })
            .await?;
        for text in reservoir {
            let key = parse_key(&text, self.key_type).ok_or(VerifyError::DorisKey { text })?;
            candidates.insert(key);
        }
        let mut keys: Vec<Key> = candidates.into_iter().collect();
        // A partial Fisher-Yates shuffle: the first `n` are a uniform draw of the candidates.
        let take = keys.len().min(limit);
        for i in 0..take {
            let remaining = (keys.len() - i) as u64;
            let j = i + usize::try_from(rng.below(remaining)).unwrap_or(0);
            keys.swap(i, j);
        }
        keys.truncate(take);
        keys.sort();
        Ok(keys)
    }

    fn key_order(&self) -> &'static str {
        match self.key_type {
            KeyType::Integer => "(r.k)::int8",
            // Byte order, which is Doris's string order.
            KeyType::String => "((r.k)::text COLLATE \"C\")",
        }
    }

    fn keys_of(&self, rows: &[tokio_postgres::Row]) -> Result<Vec<Key>, VerifyError> {
        rows.iter()
            .map(|row| {
                let text: String = row.try_get(0).map_err(VerifyError::KeysQuery)?;
                parse_key(&text, self.key_type).ok_or(VerifyError::NotAKey {
                    source_name: "--keys-query",
                    text,
                })
            })
            .collect()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, VerifyError> {
        self.pool.get().await.map_err(VerifyError::PgConnect)
    }

    /// Verdicts for `keys` and the keys Doris holds in `range`.
    async fn check(
        &mut self,
        keys: &[Key],
        range: DorisRange<'_>,
    ) -> Result<Vec<(Key, Verdict, Option<Example>)>, VerifyError> {
        let fetched = fetch(&mut self.doris, &self.pg, keys, range).await?;
        Ok(self.judge.judge_fetched(&fetched))
    }
}

/// Reads both sides of a range: the merge queries of the given keys start at once, `postgres.pool_size` chunks at a
/// time (each chunk one snapshot), while Doris's rows are read; the keys only Doris holds follow.
async fn fetch(
    doris: &mut DorisReader,
    pg: &Arc<MergeReader>,
    keys: &[Key],
    range: DorisRange<'_>,
) -> Result<Fetched, VerifyError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(pg.parallel_chunks));
    let mut reads = tokio::task::JoinSet::new();
    let spawn_chunks = |reads: &mut tokio::task::JoinSet<_>, keys: &[Key]| {
        for chunk in keys.chunks(pg.chunk_size) {
            let reader = pg.clone();
            let permits = permits.clone();
            let keys = chunk.to_vec();
            reads.spawn(async move {
                // The semaphore is never closed.
                let _permit = permits.acquire_owned().await.ok();
                reader.merge_rows(&keys).await
            });
        }
    };
    spawn_chunks(&mut reads, keys);
    let mut doris_rows: BTreeMap<Key, Vec<Option<String>>> = BTreeMap::new();
    for row in doris.rows(range).await? {
        let Some(text) = row.get(pg.key_index).cloned().flatten() else {
            continue;
        };
        let key = parse_key(&text, pg.key_type).ok_or(VerifyError::DorisKey { text })?;
        doris_rows.insert(key, row);
    }
    let given: BTreeSet<&Key> = keys.iter().collect();
    let doris_only: Vec<Key> = doris_rows
        .keys()
        .filter(|k| !given.contains(k))
        .cloned()
        .collect();
    spawn_chunks(&mut reads, &doris_only);
    let mut pg_rows: BTreeMap<Key, PgSide> = BTreeMap::new();
    while let Some(done) = reads.join_next().await {
        let rows = done.map_err(VerifyError::MergeTask)??;
        pg_rows.extend(rows);
    }
    let mut all: BTreeSet<Key> = keys.iter().cloned().collect();
    all.extend(doris_only);
    Ok(Fetched {
        keys: all,
        doris_rows,
        pg: pg_rows,
    })
}

impl Judge {
    /// The verdict of every key of a fetched range, in key order.
    fn judge_fetched(&mut self, f: &Fetched) -> Vec<(Key, Verdict, Option<Example>)> {
        let mut out = Vec::with_capacity(f.keys.len());
        for key in &f.keys {
            let Some(side) = f.pg.get(key) else {
                continue;
            };
            let (verdict, ex) = self.judge(key, side, f.doris_rows.get(key));
            out.push((key.clone(), verdict, ex));
        }
        out
    }
}

impl MergeReader {
    async fn client(&self) -> Result<deadpool_postgres::Object, VerifyError> {
        self.pool.get().await.map_err(VerifyError::PgConnect)
    }

    /// The merge query's rows for `keys`, read in one snapshot; a key without a row maps to `row: None`.
    async fn merge_rows(&self, keys: &[Key]) -> Result<BTreeMap<Key, PgSide>, VerifyError> {
        let merge_keys = match self.key_type {
            KeyType::Integer => MergeKeys::Int(
                keys.iter()
                    .filter_map(|k| match k {
                        Key::Int(i) => Some(*i),
                        Key::Str(_) => None,
                    })
                    .collect(),
            ),
            KeyType::String => MergeKeys::Str(
                keys.iter()
                    .map(|k| match k {
                        Key::Int(i) => i.to_string(),
                        Key::Str(s) => s.clone(),
                    })
                    .collect(),
            ),
        };
        let mut client = self.client().await?;
        let chunk = self
            .merge
            .read_chunk(&mut client, &merge_keys)
            .await
            .map_err(VerifyError::Merge)?;
        let mut out = BTreeMap::new();
        for line in chunk.body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut members: BTreeMap<String, Box<RawValue>> =
                serde_json::from_slice(line).map_err(VerifyError::MergedRow)?;
            let deleted = members
                .get(DELETE_SIGN_COLUMN)
                .is_some_and(|v| v.get().trim() == "1");
            let Some(key_text) = members
                .get(&self.key_column)
                .and_then(|v| compare::json_text(v))
            else {
                continue;
            };
            let key = parse_key(&key_text, self.key_type).ok_or(VerifyError::NotAKey {
                source_name: "the merge query",
                text: key_text.clone(),
            })?;
            members.remove(DELETE_SIGN_COLUMN);
            members.remove(&self.sequence_column);
            out.insert(
                key,
                PgSide {
                    row: (!deleted).then_some(members),
                    version: chunk.version,
                },
            );
        }
        Ok(out)
    }
}

impl Judge {
    fn judge(
        &mut self,
        key: &Key,
        pg: &PgSide,
        doris: Option<&Vec<Option<String>>>,
    ) -> (Verdict, Option<Example>) {
        let doris_version = doris
            .and_then(|r| self.seq_index.and_then(|i| r.get(i).cloned().flatten()))
            .and_then(|v| v.trim().parse::<i64>().ok());
        let example = |verdict, columns| Example {
            key: key.to_string(),
            verdict,
            snapshot_version: pg.version,
            doris_version,
            columns,
        };
        let newer = doris_version.is_some_and(|v| v > pg.version);
        match (&pg.row, doris) {
            (None, None) => (Verdict::Match, None),
            (Some(_), None) => (
                Verdict::Missing,
                Some(example(Verdict::Missing, Vec::new())),
            ),
            (None, Some(_)) if newer => (Verdict::Newer, None),
            (None, Some(_)) => (Verdict::Extra, Some(example(Verdict::Extra, Vec::new()))),
            (Some(row), Some(drow)) => {
                let mut diffs = Vec::new();
                for (column, value) in row {
                    // By name through a map: a linear search per cell showed in profiles.
                    let Some(&i) = self.column_index.get(column.as_str()) else {
                        self.unchecked.insert(column.clone());
                        continue;
                    };
                    let ty = &self.columns[i].1;
                    let cell = drow.get(i).and_then(|c| c.as_deref());
                    if !compare::same(ty, value, cell) {
                        diffs.push(ColumnDiff {
                            column: column.clone(),
                            postgres: compare::json_text(value),
                            doris: cell.map(str::to_owned),
                        });
                    }
                }
                if diffs.is_empty() {
                    (Verdict::Match, None)
                } else if newer {
                    (Verdict::Newer, None)
                } else {
                    let verdict = if doris_version.is_some_and(|v| v < pg.version) {
                        Verdict::Stale
                    } else {
                        Verdict::Different
                    };
                    (verdict, Some(example(verdict, diffs)))
                }
            }
        }
    }
}

/// A small random generator for sampling (splitmix64), seeded from the standard library's per-process random keys:
/// a sample need not be reproducible nor cryptographic, and this spares a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn new() -> SplitMix {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        SplitMix(h.finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; 0 for `n` = 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for sampling (bias below 2^-64 · n).
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// How many times a key that did not match is looked at again (while its Doris row keeps changing).
const RECHECK_ROUNDS: u32 = 3;

/// The sequence version of the Doris row in a drift example (none for a match, or no Doris row).
fn doris_version_of(example: Option<&Example>) -> Option<i64> {
    example.and_then(|e| e.doris_version)
}

fn keys_body(keys_query: &str) -> Result<&str, VerifyError> {
    let body = trim_query(keys_query);
    if body.trim().is_empty() {
        return Err(VerifyError::EmptyKeysQuery);
    }
    Ok(body)
}

/// `cdc2doris verify`: prints the report; exit 0 when Doris matches (after the repair, with `--repair`), 1 on
/// drift or a failure, 2 for a bad config, 130 when interrupted.
pub fn run(args: &VerifyArgs) -> i32 {
    let config = match crate::config::load_for_command(&args.config) {
        Ok(c) => c,
        Err(status) => return status,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.file.log.filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cdc2doris: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let opts = VerifyOptions {
        keys_query: args.keys_query.clone(),
        sample: args.sample,
        range_keys: args.range_keys,
        examples: args.examples,
        repair: args.repair,
        recheck_after: args.recheck_after,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let watcher = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    shutdown.cancel();
                }
            })
        };
        let result = run_verify(&config, &opts, shutdown).await;
        watcher.abort();
        match result {
            Ok(report) => {
                if args.format == "json" {
                    println!("{}", serde_json::to_string(&report).unwrap_or_default());
                } else {
                    print!("{}", report.render_text());
                }
                if report.interrupted {
                    130
                } else {
                    i32::from(!report.clean())
                }
            }
            Err(e) => {
                eprintln!("cdc2doris verify: {}", crate::error::error_chain(&e));
                1
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_text() {
        let mut r = VerifyReport::default();
        for v in [
            Verdict::Match,
            Verdict::Match,
            Verdict::Missing,
            Verdict::Stale,
            Verdict::Newer,
        ] {
            r.counts.add(v);
        }
        assert_eq!(r.counts.drift(), 2);
        assert!(!r.clean());
        r.ranges = 1;
        r.examples.push(Example {
            key: "7".into(),
            verdict: Verdict::Stale,
            snapshot_version: 20,
            doris_version: Some(10),
            columns: vec![ColumnDiff {
                column: "title".into(),
                postgres: Some("a".into()),
                doris: None,
            }],
        });
        let text = r.render_text();
        assert!(text.starts_with("verify: 5 keys in 1 ranges: 2 match, 1 missing, 1 stale, 0 extra, 0 different (1 newer"), "{text}");
        assert!(text.contains("Stale key 7 (snapshot version 20, Doris version 10)\n    title: postgres \"a\" / doris NULL"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["match"], 2);
        assert_eq!(json["examples"][0]["verdict"], "stale");
        r.after_repair = Some(Counts {
            keys: 2,
            matched: 2,
            ..Default::default()
        });
        assert!(r.clean());
    }

    #[test]
    fn sample_draws_cover_their_range_and_stay_in_it() {
        let mut rng = SplitMix::new();
        assert_eq!(rng.below(0), 0);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let x = rng.below(7);
            assert!(x < 7, "{x}");
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
    }

    #[test]
    fn keys_parse_by_type() {
        assert_eq!(parse_key(" 42", KeyType::Integer), Some(Key::Int(42)));
        assert!(parse_key("x", KeyType::Integer).is_none());
        assert_eq!(parse_key("x", KeyType::String), Some(Key::Str("x".into())));
    }
}
