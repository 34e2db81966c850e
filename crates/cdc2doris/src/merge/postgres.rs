//! Run the merge query for one chunk of keys, in one `REPEATABLE READ READ ONLY` transaction.
//!
//! Output: JSON lines ready for a Doris Stream Load body. Each row the query returns carries the
//! snapshot's version in the sequence column and `__DORIS_DELETE_SIGN__ = 0`; each requested key the
//! query no longer returns becomes a delete row (`__DORIS_DELETE_SIGN__ = 1`) with the same version.
//! Doris keeps, per key, the row with the greatest sequence value (ties: the later load), so an
//! older read can never overwrite a newer one, whatever order the loads arrive in.
//!
//! Values are rendered by PostgreSQL (`to_jsonb` of the row), except `json`/`jsonb` columns, which are written as
//! their text: Doris reads a JSON string into a JSON column as JSON text, so a nested document that is itself a
//! string (`'"abc"'::jsonb`) would be refused or re-read as the JSON its text spells (docs/types.md).

use std::collections::HashSet;
use std::fmt::Write as _;

use deadpool_postgres::ClientWrapper;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::IsolationLevel;

use crate::error::ErrorClass;
use crate::keys::{KeyType, KeyValue};
use crate::sink::doris::DELETE_SIGN_COLUMN;

/// The version of the snapshot the current transaction reads in.
///
/// Why `xmax - count(xip)` and not `xmax` alone. A snapshot S is (xmin, xmax, xip): transactions
/// with an id below xmax that are not listed in xip are finished (committed or aborted) and, when
/// committed, visible; ids ≥ xmax are invisible. Define
/// `v(S) = xmax(S) − |xip(S)|` = the number of transaction ids below xmax that are finished in S.
///
/// 1. *A later snapshot never gets a smaller value.* Take S1 before S2. xmax is
///    `latestCompletedXid + 1`, which only grows, so xmax1 ≤ xmax2. An id below xmax1 was assigned
///    before S1; if it is still running at S2 it was running at S1 too, so
///    `|xip2 ∩ [0, xmax1)| ≤ |xip1|`, and `|xip2 ∩ [xmax1, xmax2)| ≤ xmax2 − xmax1`. Hence
///    `v2 = xmax2 − |xip2| ≥ xmax2 − |xip1| − (xmax2 − xmax1) = v1`.
/// 2. *A snapshot that sees more gets a strictly greater value.* If S2 sees a transaction T that S1
///    does not, then either T ≥ xmax1 and is finished in S2 (the second bound above is strict), or
///    T < xmax1 was in xip1 and is not in xip2 (the first bound is strict). So v2 > v1.
///    With `xmax` alone, a transaction that was in progress at S1 and committed before S2 can leave
///    both snapshots with the same xmax: equal versions, and Doris' "ties go to the later load"
///    would let S1's stale rows overwrite S2's if S1's load arrives last.
///
/// The ids are PostgreSQL's 64-bit `xid8` (epoch included), so the value never wraps around.
/// This holds for snapshots taken on the primary; a hot standby's snapshots list no xip, so
/// merge reads must go to the primary.
const VERSION_SQL: &str =
    "SELECT (pg_snapshot_xmax(s)::text::int8 - (SELECT count(*) FROM pg_snapshot_xip(s)))::int8 \
     FROM pg_current_snapshot() AS s";

/// The keys of one chunk, typed as the merge query's `$1` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeKeys {
    /// `$1` is an `int8[]`.
    Int(Vec<i64>),
    /// `$1` is a `text[]`.
    Str(Vec<String>),
}

/// A key that cannot be bound as the `$1` of its query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key} is not a 64-bit integer, the key type of the query it is bound to")]
pub struct KeyTypeError {
    /// The key, as JSON.
    pub key: String,
}

impl MergeKeys {
    /// Types `keys` as the `$1` array of a query whose key type is `key_type`.
    pub fn from_keys(
        keys: impl IntoIterator<Item = KeyValue>,
        key_type: KeyType,
    ) -> Result<MergeKeys, KeyTypeError> {
        match key_type {
            KeyType::Integer => keys
                .into_iter()
                .map(|k| match k {
                    KeyValue::Int(i) => Ok(i),
                    other => Err(KeyTypeError {
                        key: other.to_json(),
                    }),
                })
                .collect::<Result<Vec<i64>, _>>()
                .map(MergeKeys::Int),
            KeyType::String => Ok(MergeKeys::Str(
                keys.into_iter()
                    .map(|k| match k {
                        KeyValue::Str(s) | KeyValue::BigInt(s) => s,
                        KeyValue::Int(i) => i.to_string(),
                    })
                    .collect(),
            )),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        match self {
            MergeKeys::Int(v) => v.len(),
            MergeKeys::Str(v) => v.len(),
        }
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The merged rows of one chunk of keys, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeChunk {
    /// The snapshot's version, loaded as the sequence column of every row.
    pub version: i64,
    /// JSON lines (each ends with `\n`): upsert rows first, then delete rows.
    pub body: Vec<u8>,
    /// Rows the merge query returned.
    pub rows: usize,
    /// Requested keys it did not return, sent as deletes.
    pub deletes: usize,
    /// Keys the query returned more than once (a bug in the merge query: Doris keeps one of them).
    pub duplicate_keys: usize,
}

/// A merge query, wrapped so that PostgreSQL renders each row as a Doris JSON line.
#[derive(Debug, Clone)]
pub struct MergeQuery {
    /// The wrapped statement: `$1` keys, `$2` version, `$3` sequence column name.
    sql: String,
    /// The merge query itself (prepared alone to learn its output columns' types).
    inner_sql: String,
    key_type: KeyType,
    /// The key column's name, JSON-quoted, for delete rows.
    key_column_json: String,
    /// The sequence column's name (bound as `$3`) and JSON-quoted (for delete rows).
    sequence_column: String,
    sequence_column_json: String,
}

/// What went wrong reading a chunk.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The merge query text is empty once comments and a trailing `;` are removed.
    #[error(
        "the merge query is empty; put a SELECT that takes the keys as $1 in merge.query_file"
    )]
    EmptyQuery,
    /// PostgreSQL refused or failed a statement.
    #[error("PostgreSQL failed while {stage}: {}", describe_pg_error(.source))]
    Postgres {
        /// What we were doing.
        stage: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The merge query returned a key that is not of the declared key type.
    #[error("the merge query returned key {value:?} in column {column:?}, which is not a 64-bit integer; declare merge.key_type = \"string\" or cast the column")]
    BadKey {
        /// The key column.
        column: String,
        /// The value as text.
        value: String,
    },
    /// The merge query returned a NULL key.
    #[error("the merge query returned a row whose key column {column:?} is NULL; it must return the key of every row")]
    NullKey {
        /// The key column.
        column: String,
    },
}

impl MergeError {
    /// The error without anything that may quote row data (see [`describe_pg_error_without_data`]).
    pub fn summary(&self) -> String {
        match self {
            MergeError::Postgres { stage, source } => format!(
                "PostgreSQL failed while {stage}: {}",
                describe_pg_error_without_data(source)
            ),
            MergeError::BadKey { column, .. } => format!(
                "the merge query returned a key in column {column:?} that is not a 64-bit integer; declare \
                 merge.key_type = \"string\" or cast the column"
            ),
            MergeError::EmptyQuery | MergeError::NullKey { .. } => self.to_string(),
        }
    }

    /// Whether the error comes from the data of the keys asked for rather than from the query or the server: a data
    /// exception (SQLSTATE class 22: a failed cast, a division by zero, a value out of range) or a key the query
    /// returned NULL or not of the key type. Such an error follows some key's rows, so the chunk can be split to
    /// find the keys that raise it and load the others.
    pub fn is_data_error(&self) -> bool {
        match self {
            MergeError::BadKey { .. } | MergeError::NullKey { .. } => true,
            MergeError::EmptyQuery => false,
            MergeError::Postgres { source, .. } => {
                source.code().is_some_and(|c| c.code().starts_with("22"))
            }
        }
    }

    /// Whether retrying can help.
    pub fn class(&self) -> ErrorClass {
        match self {
            MergeError::EmptyQuery | MergeError::BadKey { .. } | MergeError::NullKey { .. } => {
                ErrorClass::Permanent
            }
            MergeError::Postgres { source, .. } => classify_pg_error(source),
        }
    }
}

/// Transient for connection trouble, timeouts, serialization failures and resource limits;
/// permanent for errors in the query itself (syntax, unknown column, data exceptions).
pub(crate) fn classify_pg_error(e: &tokio_postgres::Error) -> ErrorClass {
    let Some(code) = e.code() else {
        // No SQLSTATE: an I/O error or a closed connection.
        return ErrorClass::Transient;
    };
    let c = code.code();
    let transient_class = ["08", "40", "53", "57", "58", "55"]
        .iter()
        .any(|p| c.starts_with(p));
    if transient_class || *code == SqlState::FEATURE_NOT_SUPPORTED {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

pub(crate) fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                let _ = write!(s, "; detail: {d}");
            }
            if let Some(h) = db.hint() {
                let _ = write!(s, "; hint: {h}");
            }
            s
        }
        None => e.to_string(),
    }
}

/// What a PostgreSQL error says without anything that may quote row data, for places that must not hold any
/// (`/debug/state`, `/readyz`): the SQLSTATE always; the message only for classes whose messages name schema objects
/// or the server's state, not for a data exception (22), a constraint violation (23), PL/pgSQL's `RAISE` (P0) or an
/// internal error (XX), whose messages may quote values; never the detail. The log keeps the whole error.
pub(crate) fn describe_pg_error_without_data(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            if ["22", "23", "P0", "XX"].iter().any(|c| code.starts_with(c)) {
                format!("SQLSTATE {code} (its message may quote row data: see the log)")
            } else {
                format!("{} (SQLSTATE {code})", db.message())
            }
        }
        None => e.to_string(),
    }
}

/// Removes what may follow the statement itself — whitespace, `;`, and `--` comments after the last
/// `;` or on lines of their own — so the query can be wrapped as a subquery.
pub fn trim_query(sql: &str) -> &str {
    let mut s = sql.trim_end();
    loop {
        let before = s.len();
        // A last line that is only a comment.
        if let Some((head, last)) = s.rsplit_once('\n') {
            if last.trim_start().starts_with("--") {
                s = head.trim_end();
            }
        } else if s.trim_start().starts_with("--") {
            s = "";
        }
        // `; -- comment` at the end of the last line.
        let line_start = s.rfind('\n').map_or(0, |i| i + 1);
        if let Some(semi) = s[line_start..].rfind(';') {
            let rest = s[line_start + semi + 1..].trim_start();
            if rest.is_empty() || rest.starts_with("--") {
                s = s[..line_start + semi].trim_end();
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

/// True when the text has something besides whitespace and `--` comments.
fn has_statement(sql: &str) -> bool {
    sql.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with("--")
    })
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn json_string(s: &str) -> String {
    // serde_json never fails to serialise a &str.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

impl MergeQuery {
    /// Wraps `merge_sql` (a SELECT taking the keys as `$1`) for chunks of `key_type` keys, whose rows
    /// carry the key in `key_column` and get the version in `sequence_column`.
    pub fn new(
        merge_sql: &str,
        key_column: &str,
        key_type: KeyType,
        sequence_column: &str,
    ) -> Result<Self, MergeError> {
        let body = trim_query(merge_sql);
        if !has_statement(body) {
            return Err(MergeError::EmptyQuery);
        }
        let sql = wrap(body, key_column, &[]);
        Ok(MergeQuery {
            sql,
            inner_sql: body.to_string(),
            key_type,
            key_column_json: json_string(key_column),
            sequence_column: sequence_column.to_string(),
            sequence_column_json: json_string(sequence_column),
        })
    }

    /// The wrapped statement text (for `check` and logs).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    fn param_types(&self) -> [Type; 3] {
        let keys = match self.key_type {
            KeyType::Integer => Type::INT8_ARRAY,
            KeyType::String => Type::TEXT_ARRAY,
        };
        [keys, Type::INT8, Type::TEXT]
    }

    /// Prepares the statement on this connection (through its statement cache), e.g. to check it.
    pub async fn prepare(&self, client: &ClientWrapper) -> Result<(), MergeError> {
        client
            .prepare_typed_cached(&self.sql, &self.param_types())
            .await
            .map(|_| ())
            .map_err(|source| MergeError::Postgres {
                stage: "preparing the merge query",
                source,
            })
    }

    /// Reads the merged rows of `keys` in one snapshot. A statement invalidated by a schema change
    /// (SQLSTATE 0A000) is re-prepared once.
    pub async fn read_chunk(
        &self,
        client: &mut ClientWrapper,
        keys: &MergeKeys,
    ) -> Result<MergeChunk, MergeError> {
        match self.read_chunk_once(client, keys).await {
            Err(MergeError::Postgres { source, .. })
                if source.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED) =>
            {
                tracing::warn!("the merge query's cached plan is stale after a schema change; re-preparing it once");
                client.statement_cache.clear();
                self.read_chunk_once(client, keys).await
            }
            other => other,
        }
    }

    async fn read_chunk_once(
        &self,
        client: &mut ClientWrapper,
        keys: &MergeKeys,
    ) -> Result<MergeChunk, MergeError> {
        let pg = |stage: &'static str| move |source| MergeError::Postgres { stage, source };
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg("starting the read transaction"))?;
        // The first statement of a REPEATABLE READ transaction takes its snapshot; the merge query
        // below reads in the same snapshot.
        let version_stmt = tx
            .prepare_cached(VERSION_SQL)
            .await
            .map_err(pg("preparing the snapshot version query"))?;
        let version: i64 = tx
            .query_one(&version_stmt, &[])
            .await
            .map_err(pg("reading the snapshot version"))?
            .try_get(0)
            .map_err(pg("reading the snapshot version"))?;
        // The output columns' types decide which columns are written as text (a cached statement; a schema change
        // that changes them raises 0A000 below and clears the cache).
        let json_columns: Vec<String> = tx
            .prepare_typed_cached(&self.inner_sql, &self.param_types()[..1])
            .await
            .map_err(pg("preparing the merge query"))?
            .columns()
            .iter()
            .filter(|c| matches!(*c.type_(), Type::JSON | Type::JSONB))
            .map(|c| c.name().to_string())
            .collect();
        let sql = if json_columns.is_empty() {
            std::borrow::Cow::Borrowed(self.sql.as_str())
        } else {
            std::borrow::Cow::Owned(wrap(
                &self.inner_sql,
                &self.key_column_name(),
                &json_columns,
            ))
        };
        let stmt = tx
            .prepare_typed_cached(&sql, &self.param_types())
            .await
            .map_err(pg("preparing the merge query"))?;
        let keys_param: &(dyn ToSql + Sync) = match keys {
            MergeKeys::Int(v) => v,
            MergeKeys::Str(v) => v,
        };
        let rows = tx
            .query(&stmt, &[keys_param, &version, &self.sequence_column])
            .await
            .map_err(pg("running the merge query"))?;
        tx.commit()
            .await
            .map_err(pg("ending the read transaction"))?;

        let mut body = Vec::with_capacity(rows.iter().map(|r| r.len() * 64).sum::<usize>() + 64);
        let mut chunk = MergeChunk {
            version,
            body: Vec::new(),
            rows: rows.len(),
            deletes: 0,
            duplicate_keys: 0,
        };
        match keys {
            MergeKeys::Int(requested) => {
                let mut seen: HashSet<i64> = HashSet::with_capacity(rows.len());
                for row in &rows {
                    let json: &str = row.try_get(0).map_err(pg("reading a merged row"))?;
                    let key_text: Option<&str> =
                        row.try_get(1).map_err(pg("reading a merged row"))?;
                    let key_text = key_text.ok_or_else(|| self.null_key())?;
                    let key: i64 = key_text.parse().map_err(|_| MergeError::BadKey {
                        column: self.key_column_name(),
                        value: key_text.to_string(),
                    })?;
                    if !seen.insert(key) {
                        chunk.duplicate_keys += 1;
                    }
                    push_line(&mut body, json);
                }
                for key in requested {
                    if seen.insert(*key) {
                        self.push_delete(&mut body, &key.to_string(), version);
                        chunk.deletes += 1;
                    }
                }
            }
            MergeKeys::Str(requested) => {
                let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
                for row in &rows {
                    let json: &str = row.try_get(0).map_err(pg("reading a merged row"))?;
                    let key: Option<&str> = row.try_get(1).map_err(pg("reading a merged row"))?;
                    let key = key.ok_or_else(|| self.null_key())?;
                    if !seen.insert(key.to_string()) {
                        chunk.duplicate_keys += 1;
                    }
                    push_line(&mut body, json);
                }
                for key in requested {
                    if !seen.contains(key) {
                        self.push_delete(&mut body, &json_string(key), version);
                        seen.insert(key.clone());
                        chunk.deletes += 1;
                    }
                }
            }
        }
        chunk.body = body;
        Ok(chunk)
    }

    fn key_column_name(&self) -> String {
        serde_json::from_str(&self.key_column_json).unwrap_or_default()
    }

    fn null_key(&self) -> MergeError {
        MergeError::NullKey {
            column: self.key_column_name(),
        }
    }

    /// A delete row: the key, the version and the delete sign. Other columns are left out (NULL).
    fn push_delete(&self, body: &mut Vec<u8>, key_json: &str, version: i64) {
        let _ = writeln!(
            Utf8Sink(body),
            "{{{}:{},{}:{},\"{DELETE_SIGN_COLUMN}\":1}}",
            self.key_column_json,
            key_json,
            self.sequence_column_json,
            version
        );
    }
}

/// The merge query wrapped so each row comes back as one JSON object (with the version and delete sign) and its key
/// as text. The newline before `) AS m` ends a trailing `--` comment. The outer SELECT's result type is always
/// (text, text), so a schema change under the merge query cannot raise "cached plan must not change result type";
/// the re-prepare in `read_chunk` is a second line of defence. `json_columns` are replaced by their text.
fn wrap(body: &str, key_column: &str, json_columns: &[String]) -> String {
    // jsonb_build_object takes at most 100 arguments: 50 columns per call.
    let as_text: String = json_columns
        .chunks(50)
        .map(|cols| {
            let pairs: Vec<String> = cols
                .iter()
                .map(|c| format!("{}, m.{}::text", sql_literal(c), quote_ident(c)))
                .collect();
            format!(" || jsonb_build_object({})", pairs.join(", "))
        })
        .collect();
    format!(
        "SELECT (to_jsonb(m){as_text} || jsonb_build_object($3::text, $2::int8, '{DELETE_SIGN_COLUMN}', 0))::text, \
         (m.{key})::text\nFROM (\n{body}\n) AS m",
        key = quote_ident(key_column),
    )
}

/// A SQL string literal of `s`, whatever `standard_conforming_strings` says.
fn sql_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn push_line(body: &mut Vec<u8>, json: &str) {
    body.extend_from_slice(json.as_bytes());
    body.push(b'\n');
}

/// `fmt::Write` into a byte buffer.
struct Utf8Sink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8Sink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_columns_are_replaced_by_their_text_in_calls_of_fifty() {
        let sql = wrap("SELECT 1", "k", &["doc".to_string(), "it's\\".to_string()]);
        assert!(
            sql.starts_with(
                "SELECT (to_jsonb(m) || jsonb_build_object('doc', m.\"doc\"::text, E'it''s\\\\', m.\"it's\\\"::text) \
                 || jsonb_build_object($3::text"
            ),
            "{sql}"
        );
        let many: Vec<String> = (0..51).map(|i| format!("c{i}")).collect();
        assert_eq!(
            wrap("SELECT 1", "k", &many)
                .matches("jsonb_build_object(")
                .count(),
            3
        );
        assert_eq!(
            wrap("SELECT 1", "k", &[])
                .matches("jsonb_build_object(")
                .count(),
            1
        );
    }

    #[test]
    fn wraps_the_query_as_a_subquery_and_strips_semicolons() {
        let q = MergeQuery::new(
            "SELECT id AS job_id FROM jobs WHERE id = ANY($1) -- trailing comment\n;\n",
            "job_id",
            KeyType::Integer,
            "source_version",
        )
        .map_err(|e| e.to_string());
        let q = match q {
            Ok(q) => q,
            Err(e) => panic!("{e}"),
        };
        assert!(
            q.sql().contains("-- trailing comment\n) AS m"),
            "{}",
            q.sql()
        );
        assert!(!q.sql().contains(';'));
        assert!(q.sql().contains("(m.\"job_id\")::text"));
    }

    #[test]
    fn trims_semicolons_and_trailing_comments() {
        assert_eq!(trim_query("SELECT 1;\n"), "SELECT 1");
        assert_eq!(trim_query("SELECT 1; -- done\n-- more\n\n"), "SELECT 1");
        assert_eq!(trim_query("SELECT 1 -- why\n;;"), "SELECT 1 -- why");
        assert_eq!(trim_query("SELECT ';' AS x"), "SELECT ';' AS x");
        assert_eq!(trim_query("-- only\n"), "");
    }

    #[test]
    fn refuses_an_empty_query() {
        for sql in ["", "  ;\n", "-- only a comment\n;"] {
            assert!(matches!(
                MergeQuery::new(sql, "k", KeyType::Integer, "v"),
                Err(MergeError::EmptyQuery)
            ));
        }
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn delete_rows_are_valid_json_with_the_delete_sign() {
        let q = match MergeQuery::new("SELECT 1", "job\"id", KeyType::String, "seq") {
            Ok(q) => q,
            Err(e) => panic!("{e}"),
        };
        let mut body = Vec::new();
        q.push_delete(&mut body, &json_string("a\"b"), 42);
        let v: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => panic!("{e}: {}", String::from_utf8_lossy(&body)),
        };
        assert_eq!(
            v,
            serde_json::json!({"job\"id": "a\"b", "seq": 42, "__DORIS_DELETE_SIGN__": 1})
        );
        assert!(body.ends_with(b"\n"));
    }
}
