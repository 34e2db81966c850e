//! Shared emulator state: tables, labels and transactions per database (spec §5), queued faults, version pressure,
//! rejected-row logs, and the append-only commit log that makes `--data-dir` survive a restart.
//!
//! One mutex guards it all; loads parse their body outside the lock and only take it to begin, commit or abort.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ddl::{Catalog, TableDef};
use crate::table::{RowOp, TableData};
use crate::value::{parse_text, LoadTz, Value};

/// Transaction states of spec §5 (`PREPARE` = a load still running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TxnState {
    Prepare,
    Precommitted,
    Committed,
    Visible,
    Aborted,
}

impl TxnState {
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Prepare => "PREPARE",
            TxnState::Precommitted => "PRECOMMITTED",
            TxnState::Committed => "COMMITTED",
            TxnState::Visible => "VISIBLE",
            TxnState::Aborted => "ABORTED",
        }
    }
    /// `ExistingJobStatus` of a `Label Already Exists` reply.
    pub fn existing_job_status(self) -> &'static str {
        match self {
            TxnState::Prepare => "RUNNING",
            TxnState::Precommitted => "PRECOMMITTED",
            _ => "FINISHED",
        }
    }
}

#[derive(Debug)]
pub struct Txn {
    pub id: i64,
    pub db: String,
    pub table: usize,
    pub label: String,
    pub state: TxnState,
    /// Rows of a pre-committed (2PC) load, applied on commit.
    pub ops: Vec<RowOp>,
    /// Unix ms when the txn finished (label expiry) or was pre-committed.
    pub finished_ms: u64,
    /// `Publish Timeout`: reported COMMITTED until this instant, VISIBLE after.
    pub visible_at: Option<Instant>,
}

/// Per-table runtime counters (`/api/_sim/stats`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct TableStats {
    pub loads: u64,
    /// Body bytes of every Stream Load received for the table, whatever its outcome.
    pub load_bytes: u64,
    /// The largest Stream Load body received for the table.
    pub largest_load_bytes: u64,
    pub failed_loads: u64,
    pub rows: u64,
    pub versions: u64,
    pub labels: u64,
}

#[derive(Debug, Default)]
pub struct TableRt {
    pub data: TableData,
    pub loads: u64,
    pub load_bytes: u64,
    pub largest_load_bytes: u64,
    pub failed_loads: u64,
    /// Versions not yet compacted (spec §7, `--max-versions`).
    pub pending_versions: f64,
}

/// A fault queued through `POST /api/_sim/faults` (sim-only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// How many loads it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// `fail`: the reply's `Message`; `http_500`: the body.
    #[serde(default)]
    pub message: Option<String>,
    /// `delay`: how long the load stays RUNNING; `publish_timeout`: how long until the data is reported VISIBLE.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Only loads into this database / table (default: any).
    #[serde(default)]
    pub db: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
}

fn one() -> u32 {
    1
}

impl FaultSpec {
    /// One use of `kind` on any table.
    pub fn new(kind: FaultKind) -> Self {
        FaultSpec {
            kind,
            count: 1,
            message: None,
            delay_ms: None,
            db: None,
            table: None,
        }
    }

    /// A `Status: Fail` reply with this `Message`, e.g. an `[E-235]…` or `MEM_LIMIT_EXCEEDED` text.
    pub fn fail(message: impl Into<String>) -> Self {
        FaultSpec {
            message: Some(message.into()),
            ..FaultSpec::new(FaultKind::Fail)
        }
    }

    /// Applies to the next `count` loads instead of one.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// `delay`: how long the load stays RUNNING; `publish_timeout`: until the data is reported VISIBLE.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// Only loads into `db.table`.
    pub fn for_table(mut self, db: impl Into<String>, table: impl Into<String>) -> Self {
        self.db = Some(db.into());
        self.table = Some(table.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `Status: Fail` with the given message; nothing committed.
    Fail,
    /// Committed, `Status: Publish Timeout`.
    PublishTimeout,
    /// HTTP 500 from the BE; nothing committed.
    #[serde(rename = "http_500")]
    Http500,
    /// The BE resets the connection after reading the body; nothing committed.
    ResetBeforeCommit,
    /// The BE commits, then resets the connection instead of replying.
    ResetAfterCommit,
    /// The load stays RUNNING for `delay_ms` before it proceeds normally.
    Delay,
    /// The FE redirects to a BE address nobody listens on.
    RedirectUnreachable,
    /// The BE handler panics after its transaction began: shows that a panic becomes HTTP 500, the transaction is
    /// aborted and the sim keeps serving.
    Panic,
    /// Doris filters the first row of the load (`NumberFilteredRows` 1, the row in the error log); with
    /// `max_filter_ratio` 0 the load fails `[DATA_QUALITY_ERROR]too many filtered rows` with an `ErrorURL`. Used only
    /// by loads of at least 2 rows (it waits in the queue for one), so a row is never filtered when loaded alone:
    /// a client that loads the rows again apart (as Doris' filter is transient here) gets every row committed.
    FilterRows,
}

impl FaultKind {
    fn on_fe(self) -> bool {
        self == FaultKind::RedirectUnreachable
    }

    /// Taken once the load's rows are parsed (`take_filter_fault`), not when the load begins.
    fn after_parse(self) -> bool {
        self == FaultKind::FilterRows
    }
}

pub struct Inner {
    pub tables: Vec<TableRt>,
    /// db → label → txn id.
    pub labels: HashMap<String, HashMap<String, i64>>,
    pub txns: HashMap<i64, Txn>,
    pub next_txn: i64,
    pub faults: VecDeque<FaultSpec>,
    /// ErrorURL file → rejected rows text.
    pub error_logs: HashMap<String, String>,
    error_log_order: VecDeque<String>,
    log: Option<File>,
    /// Where `log` lives (for error messages and `reset`).
    log_path: Option<PathBuf>,
    /// Group-commit loads waiting for their internal commit: (due, txn, table, rows).
    delayed: Vec<(Instant, i64, usize, Vec<RowOp>)>,
    /// Open group-commit transaction per table: (txn, label, internal commit time).
    groups: HashMap<usize, (i64, String, Instant)>,
}

/// Knobs of the state that come from `SimOptions`.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub max_versions: Option<u64>,
    pub label_keep_max_ms: u64,
    pub default_tz: LoadTz,
    pub doris_version: crate::version::DorisVersion,
}

pub struct State {
    pub catalog: Catalog,
    pub knobs: Knobs,
    inner: Mutex<Inner>,
}

/// Why a transaction could not begin.
pub enum BeginError {
    LabelExists { state: TxnState, txn_id: i64 },
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Error-log files kept in memory (oldest dropped first).
const MAX_ERROR_LOGS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot open or write the commit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("commit log {path} line {line} does not match the DDL: {reason}")]
    Replay {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// One line of `<data-dir>/commits.log`.
#[derive(Serialize, Deserialize)]
struct LogRecord {
    /// `commit` (visible now), `precommit` (2PC), `commit2pc`, `abort2pc`.
    t: String,
    txn: i64,
    #[serde(default)]
    db: String,
    #[serde(default)]
    table: String,
    #[serde(default)]
    label: String,
    ts: u64,
    #[serde(default)]
    ops: Vec<LogOp>,
}

#[derive(Serialize, Deserialize)]
struct LogOp {
    v: Vec<Option<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    d: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Vec<bool>>,
}

impl State {
    pub fn new(
        catalog: Catalog,
        knobs: Knobs,
        data_dir: Option<&Path>,
    ) -> Result<Self, PersistError> {
        let tables = catalog.tables.iter().map(|_| TableRt::default()).collect();
        let state = State {
            catalog,
            knobs,
            inner: Mutex::new(Inner {
                tables,
                labels: HashMap::new(),
                txns: HashMap::new(),
                next_txn: 1000,
                faults: VecDeque::new(),
                error_logs: HashMap::new(),
                error_log_order: VecDeque::new(),
                log: None,
                log_path: None,
                delayed: Vec::new(),
                groups: HashMap::new(),
            }),
        };
        if let Some(dir) = data_dir {
            state.replay(dir)?;
        }
        Ok(state)
    }

    /// Locks the state; a panic in another handler must not wedge the sim, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn table_def(&self, idx: usize) -> &TableDef {
        &self.catalog.tables[idx]
    }

    /// Begins a load's transaction under `label`, or reports the label's existing job (spec §5).
    pub fn begin(&self, db: &str, table: usize, label: &str) -> Result<i64, BeginError> {
        let mut g = self.lock();
        let keep = self.knobs.label_keep_max_ms;
        let now = now_ms();
        let inner = &mut *g;
        if let Some(&id) = inner.labels.get(db).and_then(|m| m.get(label)) {
            if let Some(t) = inner.txns.get(&id) {
                let expired = matches!(t.state, TxnState::Visible | TxnState::Committed)
                    && now.saturating_sub(t.finished_ms) > keep;
                if t.state != TxnState::Aborted && !expired {
                    return Err(BeginError::LabelExists {
                        state: t.state,
                        txn_id: id,
                    });
                }
            }
        }
        let id = inner.next_txn;
        inner.next_txn += 1;
        inner.txns.insert(
            id,
            Txn {
                id,
                db: db.to_string(),
                table,
                label: label.to_string(),
                state: TxnState::Prepare,
                ops: Vec::new(),
                finished_ms: 0,
                visible_at: None,
            },
        );
        inner
            .labels
            .entry(db.to_string())
            .or_default()
            .insert(label.to_string(), id);
        Ok(id)
    }

    /// Joins the table's current group-commit transaction, opening one if none is open (spec §7): loads within one
    /// `group_commit_interval` share its `TxnId` and label and become visible together at `due`.
    pub fn join_group(&self, db: &str, table: usize, interval: Duration) -> (i64, String, Instant) {
        let mut g = self.lock();
        let inner = &mut *g;
        let now = Instant::now();
        if let Some((txn, label, due)) = inner.groups.get(&table) {
            if now < *due {
                return (*txn, label.clone(), *due);
            }
        }
        let id = inner.next_txn;
        inner.next_txn += 1;
        let label = format!("group_commit_{}", uuid::Uuid::new_v4().simple());
        let due = now + interval;
        inner.txns.insert(
            id,
            Txn {
                id,
                db: db.to_string(),
                table,
                label: label.clone(),
                // Internal txn: never "running" from a client's point of view, so no load aborts it.
                state: TxnState::Committed,
                ops: Vec::new(),
                finished_ms: now_ms(),
                visible_at: None,
            },
        );
        inner
            .labels
            .entry(db.to_string())
            .or_default()
            .insert(label.clone(), id);
        inner.groups.insert(table, (id, label.clone(), due));
        (id, label, due)
    }

    /// Aborts a load that is still running (any failure after begin); its label becomes reusable. A no-op once the
    /// load committed, pre-committed or was aborted.
    pub fn abort_running(&self, txn_id: i64) {
        let mut g = self.lock();
        if let Some(t) = g
            .txns
            .get_mut(&txn_id)
            .filter(|t| t.state == TxnState::Prepare)
        {
            t.state = TxnState::Aborted;
            t.finished_ms = now_ms();
            t.ops = Vec::new();
            let table = t.table;
            g.tables[table].failed_loads += 1;
        }
    }

    /// Counts the body of a Stream Load of transaction `txn_id` in its table's stats (sim-only).
    pub fn note_body(&self, txn_id: i64, bytes: u64) {
        let mut g = self.lock();
        let Some(table) = g.txns.get(&txn_id).map(|t| t.table) else {
            return;
        };
        let rt = &mut g.tables[table];
        rt.load_bytes += bytes;
        rt.largest_load_bytes = rt.largest_load_bytes.max(bytes);
    }

    /// The `[E-235]` message if the table has too many uncompacted versions (spec §7).
    pub fn version_pressure(&self, inner: &Inner, table: usize) -> Option<String> {
        let max = self.knobs.max_versions?;
        let pending = inner.tables[table].pending_versions.ceil() as u64;
        if pending > max {
            let def = self.table_def(table);
            let tablet = 10_000 + table as u64 * 100;
            return Some(format!(
                "[E-235]failed to init rowset builder. version count: {pending}, exceed limit: {max}, tablet: {tablet}. \
                 Please reduce the frequency of loading data or adjust the max_tablet_version_num or \
                 time_series_max_tablet_version_num in be.conf to a larger value. table: {}.{}",
                def.db, def.name
            ));
        }
        None
    }

    /// For each op: whether it is an upsert of a key the table does not hold (a new key of a partial update).
    pub fn new_key_ops(&self, table: usize, ops: &[RowOp]) -> Vec<bool> {
        let g = self.lock();
        let key_len = self.table_def(table).key_len;
        ops.iter()
            .map(|op| !op.delete && !g.tables[table].data.has_key(&op.values[..key_len]))
            .collect()
    }

    /// Commits a load (or pre-commits it for 2PC). `Err` is the `Message` of a failed commit (version pressure),
    /// in which case the txn is aborted. The commit log line is written before the data becomes visible.
    pub fn commit_with_visibility(
        &self,
        txn_id: i64,
        ops: Vec<RowOp>,
        precommit: bool,
        publish_delay: Option<Duration>,
        visible_from: Option<Instant>,
        new_keys: NewKeys,
    ) -> Result<(), String> {
        let mut g = self.lock();
        let inner = &mut *g;
        let Some(t) = inner.txns.get(&txn_id) else {
            return Err(format!("[INTERNAL_ERROR]transaction [{txn_id}] not found"));
        };
        let table = t.table;
        let def = self.table_def(table);
        let missing_key = match new_keys {
            NewKeys::Append => None,
            NewKeys::Error(why) => ops
                .iter()
                .find(|op| {
                    !op.delete && !inner.tables[table].data.has_key(&op.values[..def.key_len])
                })
                .map(|op| (why, op)),
        };
        let rejected = missing_key.map(|(why, op)| {
            let key: Vec<String> = op.values[..def.key_len]
                .iter()
                .zip(&def.columns)
                .map(|(v, c)| v.to_text(&c.ty).unwrap_or_else(|| "NULL".into()))
                .collect();
            format!(
                "[E-7003]Can't append new rows in partial update when {why}. Row with key=[{}] is not in table.",
                key.join(", ")
            )
        });
        if let Some(msg) = rejected.or_else(|| self.version_pressure(inner, table)) {
            if let Some(t) = inner.txns.get_mut(&txn_id) {
                t.state = TxnState::Aborted;
                t.finished_ms = now_ms();
            }
            inner.tables[table].failed_loads += 1;
            return Err(msg);
        }
        let now = now_ms();
        if let (Some(t), true) = (inner.txns.get(&txn_id), inner.log.is_some()) {
            let rec = LogRecord {
                t: if precommit { "precommit" } else { "commit" }.into(),
                txn: txn_id,
                db: t.db.clone(),
                table: self.table_def(table).name.clone(),
                label: t.label.clone(),
                ts: now,
                ops: encode_ops(self.table_def(table), &ops),
            };
            write_log(&mut inner.log, &rec)
                .map_err(|e| format!("[INTERNAL_ERROR]doris-sim commit log: {e}"))?;
        }
        let Some(t) = inner.txns.get_mut(&txn_id) else {
            return Err(format!("[INTERNAL_ERROR]transaction [{txn_id}] not found"));
        };
        t.finished_ms = now;
        if precommit {
            t.state = TxnState::Precommitted;
            t.ops = ops;
        } else if let Some(due) = visible_from {
            // Group commit (async): visible at the group's internal commit.
            t.state = TxnState::Committed;
            inner.delayed.push((due, txn_id, table, ops));
        } else {
            // A group-commit txn shared by several loads adds one version, not one per load.
            let new_version = t.state != TxnState::Visible;
            t.state = TxnState::Visible;
            t.visible_at = publish_delay.map(|d| Instant::now() + d);
            let rt = &mut inner.tables[table];
            rt.data.apply(&self.catalog.tables[table], ops);
            rt.loads += 1;
            if new_version {
                rt.pending_versions += 1.0;
            }
        }
        Ok(())
    }

    /// 2PC commit or abort of a pre-committed txn (spec §5). `Ok` is the success `msg`, `Err` the failure `msg`.
    pub fn finish_2pc(&self, db: &str, txn: TxnRef<'_>, commit: bool) -> Result<String, String> {
        let mut g = self.lock();
        let inner = &mut *g;
        let id = match txn {
            TxnRef::Id(id) => id,
            TxnRef::Label(l) => match inner.labels.get(db).and_then(|m| m.get(l)) {
                Some(&id) => id,
                None => {
                    return Err(format!(
                        "errCode = 2, detailMessage = label [{l}] not found"
                    ))
                }
            },
        };
        let subject = match txn {
            TxnRef::Id(id) => format!("transaction [{id}]"),
            TxnRef::Label(l) => format!("label [{l}]"),
        };
        let op = if commit { "commit" } else { "abort" };
        let Some(t) = inner.txns.get(&id).filter(|t| t.db == db) else {
            return Err(format!(
                "errCode = 2, detailMessage = transaction [{id}] not found"
            ));
        };
        match (t.state, commit) {
            (TxnState::Precommitted, _) => {}
            (TxnState::Visible | TxnState::Committed, true) => {
                return Err(format!(
                    "errCode = 2, detailMessage = transaction [{id}] is already visible, not pre-committed."
                ))
            }
            (TxnState::Visible | TxnState::Committed, false) => {
                return Err(format!(
                    "errCode = 2, detailMessage = transaction [{id}] is already {}, could not abort.",
                    t.state.name()
                ))
            }
            (TxnState::Aborted, _) => {
                return Err(format!(
                    "errCode = 2, detailMessage = transaction [{id}] is already aborted. abort reason: User Abort"
                ))
            }
            (TxnState::Prepare, _) => {
                return Err(format!(
                    "errCode = 2, detailMessage = transaction [{id}] is not pre-committed, its state is PREPARE"
                ))
            }
        }
        // No version-pressure check here: the rowset was written at pre-commit (where `[E-235]` can occur);
        // commit only publishes it.
        let rec = LogRecord {
            t: if commit { "commit2pc" } else { "abort2pc" }.into(),
            txn: id,
            db: String::new(),
            table: String::new(),
            label: String::new(),
            ts: now_ms(),
            ops: Vec::new(),
        };
        write_log(&mut inner.log, &rec).map_err(|e| format!("doris-sim commit log: {e}"))?;
        self.apply_2pc(inner, id, commit, rec.ts);
        Ok(format!("{subject} {op} successfully."))
    }

    fn apply_2pc(&self, inner: &mut Inner, id: i64, commit: bool, ts: u64) {
        let Some(t) = inner.txns.get_mut(&id) else {
            return;
        };
        let ops = std::mem::take(&mut t.ops);
        t.finished_ms = ts;
        if commit {
            t.state = TxnState::Visible;
            let table = t.table;
            let rt = &mut inner.tables[table];
            rt.data.apply(&self.catalog.tables[table], ops);
            rt.loads += 1;
            rt.pending_versions += 1.0;
        } else {
            t.state = TxnState::Aborted;
        }
    }

    /// `get_load_state` data for a label (UNKNOWN if absent or expired).
    pub fn load_state(&self, db: &str, label: &str) -> &'static str {
        let g = self.lock();
        let Some(t) = g
            .labels
            .get(db)
            .and_then(|m| m.get(label))
            .and_then(|id| g.txns.get(id))
        else {
            return "UNKNOWN";
        };
        if matches!(t.state, TxnState::Visible) {
            if now_ms().saturating_sub(t.finished_ms) > self.knobs.label_keep_max_ms {
                return "UNKNOWN";
            }
            if t.visible_at.is_some_and(|v| Instant::now() < v) {
                return "COMMITTED";
            }
        }
        t.state.name()
    }

    /// Drops expired finished labels (the FE's label cleaner).
    pub fn clean_labels(&self) {
        let keep = self.knobs.label_keep_max_ms;
        let now = now_ms();
        let mut g = self.lock();
        let inner = &mut *g;
        let expired: Vec<i64> = inner
            .txns
            .values()
            .filter(|t| {
                matches!(
                    t.state,
                    TxnState::Visible | TxnState::Committed | TxnState::Aborted
                ) && now.saturating_sub(t.finished_ms) > keep
            })
            .map(|t| t.id)
            .collect();
        for id in expired {
            if let Some(t) = inner.txns.remove(&id) {
                if let Some(m) = inner.labels.get_mut(&t.db) {
                    if m.get(&t.label) == Some(&id) {
                        m.remove(&t.label);
                    }
                }
            }
        }
    }

    /// Aborts pre-committed transactions older than `ttl_ms` (the emulator's stand-in for Doris's pre-commit
    /// timeout, spec §5); the abort is logged so a restart does not bring them back.
    pub fn expire_precommitted(&self, ttl_ms: u64) {
        let now = now_ms();
        let mut g = self.lock();
        let inner = &mut *g;
        let expired: Vec<i64> = inner
            .txns
            .values()
            .filter(|t| {
                t.state == TxnState::Precommitted && now.saturating_sub(t.finished_ms) > ttl_ms
            })
            .map(|t| t.id)
            .collect();
        for id in expired {
            let rec = LogRecord {
                t: "abort2pc".into(),
                txn: id,
                db: String::new(),
                table: String::new(),
                label: String::new(),
                ts: now,
                ops: Vec::new(),
            };
            if let Err(e) = write_log(&mut inner.log, &rec) {
                tracing::error!(txn = id, error = %e, "doris-sim: cannot log the expiry of a pre-committed txn");
                continue;
            }
            self.apply_2pc(inner, id, false, now);
        }
    }

    /// Makes due group-commit loads visible, in commit order.
    pub fn flush_due(&self) {
        let mut g = self.lock();
        let inner = &mut *g;
        if inner.delayed.is_empty() {
            return;
        }
        let now = Instant::now();
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.delayed)
            .into_iter()
            .partition(|d| d.0 <= now);
        inner.delayed = keep;
        for (_, txn, table, ops) in due {
            let new_version = match inner.txns.get_mut(&txn) {
                Some(t) if t.state == TxnState::Visible => false,
                Some(t) => {
                    t.state = TxnState::Visible;
                    true
                }
                None => true,
            };
            let rt = &mut inner.tables[table];
            rt.data.apply(&self.catalog.tables[table], ops);
            rt.loads += 1;
            if new_version {
                rt.pending_versions += 1.0;
            }
        }
    }

    /// Visible rows of a table as a JSON array of objects (columns in schema order), sorted by key.
    pub fn rows_json(&self, table: usize) -> String {
        let def = self.table_def(table);
        let rows = self.lock().tables[table].data.rows(def);
        let mut s = String::with_capacity(rows.len() * 256 + 2);
        s.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('{');
            for (j, (v, c)) in row.iter().zip(&def.columns).enumerate() {
                if j > 0 {
                    s.push(',');
                }
                crate::value::write_json_string(&c.name, &mut s);
                s.push(':');
                v.write_json(&c.ty, &mut s);
            }
            s.push('}');
        }
        s.push(']');
        s
    }

    /// Background compaction: drains `amount` pending versions from every table.
    pub fn compact(&self, amount: f64) {
        let mut g = self.lock();
        for t in &mut g.tables {
            t.pending_versions = (t.pending_versions - amount).max(0.0);
        }
    }

    pub fn push_faults(&self, faults: Vec<FaultSpec>) {
        self.lock().faults.extend(faults);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Takes one use of the first queued fault that applies to this stage and table.
    pub fn take_fault(&self, on_fe: bool, db: &str, table: &str) -> Option<FaultSpec> {
        let mut g = self.lock();
        let pos = g.faults.iter().position(|f| {
            f.kind.on_fe() == on_fe
                && !f.kind.after_parse()
                && f.db.as_deref().is_none_or(|d| d == db)
                && f.table.as_deref().is_none_or(|t| t == table)
        })?;
        Self::take_at(&mut g, pos)
    }

    /// Takes one use of the first queued `filter_rows` fault for this table, if the load has at least 2 rows.
    pub fn take_filter_fault(&self, db: &str, table: &str, rows: usize) -> Option<FaultSpec> {
        if rows < 2 {
            return None;
        }
        let mut g = self.lock();
        let pos = g.faults.iter().position(|f| {
            f.kind.after_parse()
                && f.db.as_deref().is_none_or(|d| d == db)
                && f.table.as_deref().is_none_or(|t| t == table)
        })?;
        Self::take_at(&mut g, pos)
    }

    fn take_at(g: &mut Inner, pos: usize) -> Option<FaultSpec> {
        let f = g.faults.get_mut(pos)?;
        f.count = f.count.saturating_sub(1);
        let taken = f.clone();
        if f.count == 0 {
            g.faults.remove(pos);
        }
        Some(taken)
    }

    pub fn store_error_log(&self, file: String, text: String) {
        let mut g = self.lock();
        g.error_logs.insert(file.clone(), text);
        g.error_log_order.push_back(file);
        while g.error_log_order.len() > MAX_ERROR_LOGS {
            if let Some(old) = g.error_log_order.pop_front() {
                g.error_logs.remove(&old);
            }
        }
    }

    pub fn error_log(&self, file: &str) -> Option<String> {
        self.lock().error_logs.get(file).cloned()
    }

    pub fn stats(&self) -> Vec<(String, String, TableStats)> {
        let g = self.lock();
        self.catalog
            .tables
            .iter()
            .enumerate()
            .map(|(i, def)| {
                let rt = &g.tables[i];
                let labels = g
                    .txns
                    .values()
                    .filter(|t| t.table == i && t.state != TxnState::Aborted)
                    .count() as u64;
                (
                    def.db.clone(),
                    def.name.clone(),
                    TableStats {
                        loads: rt.loads,
                        load_bytes: rt.load_bytes,
                        largest_load_bytes: rt.largest_load_bytes,
                        failed_loads: rt.failed_loads,
                        rows: rt.data.visible_rows() as u64,
                        versions: rt.pending_versions.ceil() as u64,
                        labels,
                    },
                )
            })
            .collect()
    }

    /// Replays `<dir>/commits.log`, then keeps it open for appending. A torn last line (crash mid-write) is cut off.
    fn replay(&self, dir: &Path) -> Result<(), PersistError> {
        let path = dir.join("commits.log");
        let io = |source| PersistError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut good_len: u64 = 0;
        let mut g = self.lock();
        let inner = &mut *g;
        {
            let mut reader = BufReader::new(&file);
            let mut line = String::new();
            let mut n = 0;
            loop {
                line.clear();
                let read = reader.read_line(&mut line).map_err(io)?;
                if read == 0 || !line.ends_with('\n') {
                    break;
                }
                n += 1;
                let replay_err = |reason: String| PersistError::Replay {
                    path: path.clone(),
                    line: n,
                    reason,
                };
                let rec: LogRecord =
                    serde_json::from_str(&line).map_err(|e| replay_err(e.to_string()))?;
                inner.next_txn = inner.next_txn.max(rec.txn + 1);
                match rec.t.as_str() {
                    "commit" | "precommit" => {
                        let table = self.catalog.table(&rec.db, &rec.table).ok_or_else(|| {
                            replay_err(format!("unknown table {}.{}", rec.db, rec.table))
                        })?;
                        let ops =
                            decode_ops(self.table_def(table), &rec.ops).map_err(replay_err)?;
                        let precommit = rec.t == "precommit";
                        inner.txns.insert(
                            rec.txn,
                            Txn {
                                id: rec.txn,
                                db: rec.db.clone(),
                                table,
                                label: rec.label.clone(),
                                state: if precommit {
                                    TxnState::Precommitted
                                } else {
                                    TxnState::Visible
                                },
                                ops: Vec::new(),
                                finished_ms: rec.ts,
                                visible_at: None,
                            },
                        );
                        inner
                            .labels
                            .entry(rec.db)
                            .or_default()
                            .insert(rec.label, rec.txn);
                        if precommit {
                            if let Some(t) = inner.txns.get_mut(&rec.txn) {
                                t.ops = ops;
                            }
                        } else {
                            let rt = &mut inner.tables[table];
                            rt.data.apply(&self.catalog.tables[table], ops);
                            rt.loads += 1;
                        }
                    }
                    "commit2pc" | "abort2pc" => {
                        self.apply_2pc(inner, rec.txn, rec.t == "commit2pc", rec.ts)
                    }
                    other => return Err(replay_err(format!("unknown record type {other}"))),
                }
                good_len += read as u64;
            }
        }
        file.set_len(good_len).map_err(io)?;
        file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        inner.log = Some(file);
        inner.log_path = Some(path);
        Ok(())
    }

    /// Sim-only (`POST /api/_sim/reset`): forgets every row, version, label, transaction, group commit, queued fault
    /// and rejected-row log, as if the sim had just started with its DDL; the schema stays. With `--data-dir` the
    /// commit log is truncated (and synced) first, so a restart also comes back empty. A load still running gets
    /// `transaction not found` at its commit. Transaction ids keep increasing.
    pub fn reset(&self) -> Result<(), PersistError> {
        let mut g = self.lock();
        let inner = &mut *g;
        if let (Some(log), Some(path)) = (&inner.log, &inner.log_path) {
            let io = |source| PersistError::Io {
                path: path.clone(),
                source,
            };
            log.set_len(0).map_err(io)?;
            log.sync_all().map_err(io)?;
        }
        inner.tables = self
            .catalog
            .tables
            .iter()
            .map(|_| TableRt::default())
            .collect();
        inner.labels.clear();
        inner.txns.clear();
        inner.faults.clear();
        inner.error_logs.clear();
        inner.error_log_order.clear();
        inner.delayed.clear();
        inner.groups.clear();
        Ok(())
    }
}

/// What a partial update does with keys that are not in the table yet (spec §6 Partial update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKeys {
    Append,
    /// Reject the load; the text says why (`strict mode is on` / `partial_update_new_key_behavior is ERROR`).
    Error(&'static str),
}

/// Names a 2PC transaction by id or label.
#[derive(Debug, Clone, Copy)]
pub enum TxnRef<'a> {
    Id(i64),
    Label(&'a str),
}

fn write_log(log: &mut Option<File>, rec: &LogRecord) -> std::io::Result<()> {
    let Some(f) = log else { return Ok(()) };
    let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    line.push(b'\n');
    // One write of the whole line, then fsync: an acknowledged load survives kill -9 and power loss.
    f.write_all(&line)?;
    f.sync_data()
}

fn encode_ops(def: &TableDef, ops: &[RowOp]) -> Vec<LogOp> {
    let seq_ty = def.sequence_type();
    ops.iter()
        .map(|op| LogOp {
            v: op
                .values
                .iter()
                .zip(&def.columns)
                .map(|(v, c)| v.to_text(&c.ty))
                .collect(),
            d: op.delete,
            s: seq_ty.and_then(|t| op.seq.to_text(t)),
            p: op.present.as_ref().map(|p| p.to_vec()),
        })
        .collect()
}

fn decode_ops(def: &TableDef, ops: &[LogOp]) -> Result<Vec<RowOp>, String> {
    let tz = LoadTz::default();
    ops.iter()
        .map(|op| {
            if op.v.len() != def.columns.len() {
                return Err(format!(
                    "row has {} values, table has {} columns",
                    op.v.len(),
                    def.columns.len()
                ));
            }
            let values =
                op.v.iter()
                    .zip(&def.columns)
                    .map(|(v, c)| match v {
                        None => Ok(Value::Null),
                        Some(t) => parse_text(&c.ty, t, tz)
                            .map_err(|e| format!("column {}: {e:?} for {t}", c.name)),
                    })
                    .collect::<Result<Box<[Value]>, String>>()?;
            let seq = match (def.sequence_type(), &op.s) {
                (Some(t), Some(s)) => {
                    parse_text(t, s, tz).map_err(|e| format!("sequence: {e:?}"))?
                }
                _ => Value::Null,
            };
            Ok(RowOp {
                values,
                delete: op.d,
                seq,
                present: op.p.as_ref().map(|p| p.clone().into_boxed_slice()),
            })
        })
        .collect()
}
