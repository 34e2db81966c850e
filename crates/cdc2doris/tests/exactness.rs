//! [doris-fidelity] Every value of a merge query reaches Doris exactly: the merge stage renders the rows
//! (PostgreSQL's `to_jsonb`), the sink loads them into doris-sim, and the stored values are compared with what was
//! written in PostgreSQL. Types: timestamp with microseconds, date, numeric(38,0) (beyond 2^63) into LARGEINT,
//! numeric(38,10), boolean, json/jsonb, and strings with every JSON escape, control characters, quotes,
//! backslashes and 4-byte UTF-8. Runs against the PostgreSQL of `dev/stack up` and an in-process doris-sim
//! (profile from `DORIS_SIM_VERSION`, default the newest).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken assumption"
)]

use cdc2doris::keys::KeyType;
use cdc2doris::merge::{MergeKeys, MergeQuery};
use cdc2doris::sink::doris::{DorisConfig, DorisSink, LabelScope};
use cdc2doris::sink::{LoadRequest, OffsetRange, Sink};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio_postgres::NoTls;

const DB: &str = "exact";
const TABLE: &str = "all_types";
const SEQ: &str = "source_version";

const DORIS_DDL: &str = r#"
CREATE DATABASE exact;
CREATE TABLE exact.all_types (
  id BIGINT NOT NULL,
  ts DATETIME(6),
  tstz DATETIME(6),
  d DATE,
  big LARGEINT,
  dec DECIMAL(38,10),
  flag BOOLEAN,
  doc JSON,
  js JSON,
  s STRING,
  vc VARCHAR(256),
  f8 DOUBLE,
  expr JSON,
  built JSON,
  source_version BIGINT NOT NULL
) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1
PROPERTIES ("replication_num" = "1", "enable_unique_key_merge_on_write" = "true",
            "function_column.sequence_col" = "source_version");
"#;

const PG_SCHEMA: &str = r#"
CREATE TABLE src (
  id bigint PRIMARY KEY,
  ts timestamp(6),
  tstz timestamptz(6),
  d date,
  big numeric(38,0),
  dec numeric(38,10),
  flag boolean,
  doc jsonb,
  js json,
  s text,
  vc varchar(64),
  f8 float8
);
"#;

/// The merge query as a user writes it: every column plain, JSON columns included.
const MERGE: &str =
    "SELECT id, ts, tstz, d, big, dec, flag, doc, js, s, vc, f8 FROM src WHERE id = ANY($1)";

/// Every character JSON must escape or may escape, control characters (U+0001…U+001F, DEL), quotes, backslashes,
/// `/`, and 2-, 3- and 4-byte UTF-8 (é, €, 😀, 𝄞). PostgreSQL text cannot hold U+0000.
fn tricky_string() -> String {
    let mut s = String::from("q\"uote\\back/slash\u{8}\u{c}\n\r\t|");
    s.extend((1u8..0x20).map(char::from));
    s.push('\u{7f}');
    s.push_str("|é€😀𝄞|'single'|\\u0041 stays literal|</script>");
    s
}

fn pg_config(dbname: &str) -> tokio_postgres::Config {
    let url = std::env::var("CDC2DORIS_PG_URL")
        .unwrap_or_else(|_| "postgres://cdc2doris@127.0.0.1:5432/postgres".to_string());
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .unwrap_or_else(|e| panic!("CDC2DORIS_PG_URL {url:?}: {e}"));
    cfg.password(
        std::env::var("CDC2DORIS_PG_PASSWORD").unwrap_or_else(|_| "cdc2doris".to_string()),
    );
    cfg.dbname(dbname);
    cfg
}

async fn connect(dbname: &str) -> tokio_postgres::Client {
    let (client, conn) = pg_config(dbname)
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL ({e}); run `dev/stack up` first"));
    tokio::spawn(conn);
    client
}

fn doris_sim_version() -> doris_sim::DorisVersion {
    match std::env::var("DORIS_SIM_VERSION") {
        Ok(v) if !v.trim().is_empty() => v
            .parse()
            .unwrap_or_else(|e| panic!("DORIS_SIM_VERSION: {e}")),
        _ => doris_sim::DorisVersion::default(),
    }
}

/// Writes `rows_sql` into a fresh database, runs the merge stage for keys 1..=n and loads the chunk into a fresh
/// doris-sim through the sink; returns the rows doris-sim holds.
async fn round_trip(
    test: &str,
    merge: &str,
    rows_sql: &str,
    n: i64,
) -> Vec<serde_json::Map<String, Value>> {
    let name = format!("t_{test}_{}", uuid::Uuid::new_v4().simple());
    let admin = connect("postgres").await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    // Session time zone UTC, so timestamptz renders with +00:00, which the sim's default load time zone keeps.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} SET timezone TO 'UTC'"))
        .await
        .expect("set timezone");
    let c = connect(&name).await;
    c.batch_execute(PG_SCHEMA).await.expect("schema");
    c.batch_execute(rows_sql).await.expect("rows");
    let pool = Pool::builder(Manager::from_config(
        pg_config(&name),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    ))
    .max_size(1)
    .build()
    .expect("pool");
    let q = MergeQuery::new(merge, "id", KeyType::Integer, SEQ).expect("merge query");
    let chunk = {
        let mut client = pool.get().await.expect("pool get");
        q.read_chunk(&mut client, &MergeKeys::Int((1..=n).collect()))
            .await
            .expect("merge read")
    };
    assert_eq!(
        chunk.rows as i64,
        n,
        "{}",
        String::from_utf8_lossy(&chunk.body)
    );

    let sim = doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![DORIS_DDL.to_string()],
        doris_version: doris_sim_version(),
        ..Default::default()
    })
    .await
    .expect("doris-sim");
    let mut cfg = DorisConfig::new(&sim.fe_url(), DB, TABLE, SEQ);
    cfg.label_prefix = format!("t{}", &name[name.len() - 12..]);
    let sink = DorisSink::new(&cfg, SecretString::from(String::new())).expect("sink");
    let body = bytes::Bytes::from(chunk.body.clone());
    let ranges = vec![OffsetRange {
        tp: cdc2doris::offsets::TopicPartition::new(test, 0),
        first: 0,
        last: n - 1,
    }];
    let receipt = sink
        .load(LoadRequest {
            label: LabelScope::new("cdc2doris", DB, TABLE).label(&ranges, &body),
            ranges,
            body,
            row_count: n as u64,
        })
        .await
        .unwrap_or_else(|e| panic!("load: {e}\n{}", String::from_utf8_lossy(&chunk.body)));
    assert_eq!(receipt.rows_loaded, n as u64);
    let rows = sim.client().rows(DB, TABLE).await.expect("sim rows");
    drop(pool);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop database");
    rows
}

/// Values at the edges of each type's range and precision arrive as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_of_a_merge_query_arrives_exactly() {
    let tricky = tricky_string();
    let rows_sql = format!(
        "INSERT INTO src VALUES
         (1, '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59.000001+00', '2024-02-29',
          99999999999999999999999999999999999999, 1234567890123456789012345678.0123456789, true,
          '{{\"k\": \"v\\\"q\\\\\\\\b\", \"n\": 1.5, \"e\": \"😀\", \"a\": [true, null, {{\"x\": -2}}]}}', '[1, \"two\"]',
          {lit}, {lit_vc}, 0.1),
         (2, '0001-01-01 00:00:00.000001', '9999-12-31 23:59:59.999999+00', '0001-01-01',
          -99999999999999999999999999999999999999, -0.0000000001, false, 'null', '{{}}', '', 'x', 1.7976931348623157e308),
         (3, '1970-01-01 00:00:00', NULL, '9999-12-31', 9223372036854775808, 9999999999999999999999999999.9999999999,
          NULL, '\"just a string\"', '3.25', NULL, NULL, -5e-324),
         (4, NULL, NULL, NULL, -9223372036854775809, 0, NULL, NULL, NULL, ' ', NULL, NULL);",
        lit = pg_literal(&tricky),
        lit_vc = pg_literal(&tricky.chars().take(64).collect::<String>()),
    );
    let rows = round_trip("exact_types", MERGE, &rows_sql, 4).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let r = |i: usize, col: &str| rows[i].get(col).cloned().unwrap_or(Value::Null);

    // DATETIME(6) keeps every microsecond, DATE the day; ranges to Doris's limits (0000/0001 … 9999).
    assert_eq!(r(0, "ts"), json!("2024-02-29 23:59:59.123456"));
    assert_eq!(r(0, "tstz"), json!("2024-02-29 23:59:59.000001"));
    assert_eq!(r(0, "d"), json!("2024-02-29"));
    assert_eq!(r(1, "ts"), json!("0001-01-01 00:00:00.000001"));
    assert_eq!(r(1, "tstz"), json!("9999-12-31 23:59:59.999999"));
    assert_eq!(r(1, "d"), json!("0001-01-01"));
    assert_eq!(r(2, "ts"), json!("1970-01-01 00:00:00.000000"));
    assert_eq!(r(2, "d"), json!("9999-12-31"));
    assert_eq!(r(3, "ts"), Value::Null);

    // numeric(38,0) into LARGEINT: its whole range, and just beyond 64 bits either way (the sim lists values beyond
    // 2^53 as strings).
    assert_eq!(r(0, "big"), json!("99999999999999999999999999999999999999"));
    assert_eq!(
        r(1, "big"),
        json!("-99999999999999999999999999999999999999")
    );
    assert_eq!(r(2, "big"), json!("9223372036854775808"));
    assert_eq!(r(3, "big"), json!("-9223372036854775809"));

    // DECIMAL(38,10): 38 significant digits survive, and the smallest step.
    assert_eq!(
        r(0, "dec"),
        json!("1234567890123456789012345678.0123456789")
    );
    assert_eq!(r(1, "dec"), json!("-0.0000000001"));
    assert_eq!(
        r(2, "dec"),
        json!("9999999999999999999999999999.9999999999")
    );
    assert_eq!(r(3, "dec"), json!("0.0000000000"));

    assert_eq!(r(0, "flag"), json!(true));
    assert_eq!(r(1, "flag"), json!(false));
    assert_eq!(r(2, "flag"), Value::Null);

    // JSON columns hold the document (jsonb and json alike); a JSON null document, a bare string and a number are
    // documents too.
    assert_eq!(
        r(0, "doc"),
        json!({"k": "v\"q\\\\b", "n": 1.5, "e": "😀", "a": [true, null, {"x": -2}]})
    );
    assert_eq!(r(0, "js"), json!([1, "two"]));
    assert_eq!(r(1, "doc"), Value::Null);
    assert_eq!(r(1, "js"), json!({}));
    assert_eq!(r(2, "doc"), json!("just a string"));
    assert_eq!(r(2, "js"), json!(3.25));

    // Strings: byte for byte, empty and blank kept apart from NULL.
    assert_eq!(r(0, "s"), json!(tricky));
    assert_eq!(
        r(0, "vc"),
        json!(tricky.chars().take(64).collect::<String>())
    );
    assert_eq!(r(1, "s"), json!(""));
    assert_eq!(r(2, "s"), Value::Null);
    assert_eq!(r(3, "s"), json!(" "));

    // DOUBLE: the nearest double to the text, extremes included.
    assert_eq!(r(0, "f8"), json!(0.1));
    assert_eq!(r(1, "f8"), json!(f64::MAX));
    assert_eq!(r(2, "f8"), json!(-5e-324));
}

/// A PostgreSQL string literal (`E'…'`) holding `s` exactly.
fn pg_literal(s: &str) -> String {
    let mut out = String::from("E'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A JSON document that is itself a string is a JSON string in the load, and Doris reads a string cell of a JSON
/// column as JSON *text*: `"just a string"` would be refused, `"[1, 2]"` silently become an array. The merge stage
/// writes json/jsonb columns as their text, so every document arrives as written, whatever the query's shape
/// (a plain column, an expression, a `json` column). Failed before the merge stage did so (the row was refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_documents_that_are_strings_arrive_as_written() {
    let rows_sql = r#"INSERT INTO src (id, doc, js) VALUES
        (1, '"just a string"', '"[1, 2]"'),
        (2, '"{\"a\": 1}"', '"true"'),
        (3, '{"nested": "\"[3]\""}', '[" spaced ",  "x"]'),
        (4, 'null', NULL);"#;
    let merge = "SELECT id, doc, js, doc -> 'nested' AS expr, jsonb_build_array(js) AS built \
                 FROM src WHERE id = ANY($1)";
    let rows = round_trip("exact_json", merge, rows_sql, 4).await;
    let r = |i: usize, col: &str| rows[i].get(col).cloned().unwrap_or(Value::Null);
    assert_eq!(r(0, "doc"), json!("just a string"));
    assert_eq!(r(0, "js"), json!("[1, 2]"));
    assert_eq!(r(1, "doc"), json!("{\"a\": 1}"));
    assert_eq!(r(1, "js"), json!("true"));
    assert_eq!(r(2, "doc"), json!({"nested": "\"[3]\""}));
    assert_eq!(r(2, "js"), json!([" spaced ", "x"]));
    assert_eq!(r(2, "expr"), json!("\"[3]\""));
    assert_eq!(r(0, "built"), json!(["[1, 2]"]));
    assert_eq!(r(3, "doc"), Value::Null);
    assert_eq!(r(3, "js"), Value::Null);
}
