//! Debezium JSON-converter messages (schemas off) for row events, as the PostgreSQL connector
//! writes them: key `{"id": …}`, value `{"before", "after", "source", "op", "ts_ms"}`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::pg::{RowEvent, RowOp};

/// The topic Debezium writes a table's events to: `<prefix>.public.<table>`.
pub fn topic(prefix: &str, table: &str) -> String {
    format!("{prefix}.public.{table}")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Renders one row event as (message key, message value), both JSON text.
pub fn message(prefix: &str, database: &str, ev: &RowEvent, lsn: i64) -> (String, String) {
    let ts = now_ms();
    let op = match ev.op {
        RowOp::Insert => "c",
        RowOp::Update => "u",
        RowOp::Delete => "d",
    };
    let value = json!({
        "before": ev.before,
        "after": ev.after,
        "source": {
            "version": "3.6.1.Final",
            "connector": "postgresql",
            "name": prefix,
            "ts_ms": ts,
            "snapshot": "false",
            "db": database,
            "sequence": Value::Null,
            "schema": "public",
            "table": ev.table,
            "txId": ev.txid,
            "lsn": lsn,
            "xmin": Value::Null,
        },
        "transaction": Value::Null,
        "op": op,
        "ts_ms": ts,
    });
    (ev.key.to_string(), value.to_string())
}
