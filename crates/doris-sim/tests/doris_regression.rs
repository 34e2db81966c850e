//! Cases ported from Apache Doris's own regression suites (github.com/apache/doris, `regression-test/`).
//!
//! Each test names its source: the suite (`.groovy`, which holds the DDL, the request headers and the assertions on
//! the reply) and, where table contents are checked, the `.out` section Doris produced, each with the commit it was
//! read at. Inputs and `.out` files are copied under `tests/fixtures/doris/` (the `.out` files trimmed to the
//! sections used). Expected values come only from those files. Where a case had to be adapted (e.g. an `INSERT`
//! replaced by a load of the same row, a table without the column types doris-sim refuses), the comment says how.
//!
//! The `.out` files print rows as Doris's MySQL client sees them: tab-separated, `\N` for NULL, DATETIME as
//! `2022-12-01T09:30:31`. Row order in a `.out` file follows the query's `ORDER BY`, which is not a load
//! behaviour, so rows are compared as sorted lists.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken assumption"
)]

mod common;

use common::*;
use doris_sim::DorisVersion;

const DB: &str = "regression_test";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/doris/", $name))
    };
}

/// The `n`-th (0-based) section named `name` of a Doris `.out` file, as lines.
fn out_section(out: &[u8], name: &str, n: usize) -> Vec<String> {
    let text = std::str::from_utf8(out).expect("utf-8 .out");
    let header = format!("-- !{name} --");
    let mut seen = 0;
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l == header {
            if seen == n {
                return lines
                    .take_while(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            seen += 1;
        }
    }
    panic!("no section {name} #{n}");
}

/// One stored value as Doris's client prints it in a `.out` file.
fn render(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "\\N".into(),
        serde_json::Value::String(s) => {
            let b = s.as_bytes();
            // DATETIME: `YYYY-MM-DD HH:MM:SS` is printed with a `T`.
            if b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' {
                // (Java's LocalDateTime: `12:00` when seconds and fraction are zero.)
                let time = if b.len() == 19 && s.ends_with(":00") {
                    &s[11..16]
                } else {
                    &s[11..]
                };
                format!("{}T{}", &s[..10], time)
            } else {
                // The framework prints a newline inside a value as `\n`.
                s.replace('\n', "\\n")
            }
        }
        serde_json::Value::Bool(b) => (if *b { "1" } else { "0" }).into(),
        other => other.to_string(),
    }
}

/// One row of `/api/_sim/{db}/{table}/rows` with its columns in the order sent (schema order).
struct OrderedRow(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for OrderedRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedRow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<OrderedRow, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(OrderedRow(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Table contents as sorted `.out` lines; `float_cols` are FLOAT columns (printed with f32 precision).
async fn table_lines(sim: &doris_sim::Sim, table: &str, float_cols: &[&str]) -> Vec<String> {
    let r = send(
        sim.fe_addr(),
        "GET",
        &format!("/api/_sim/{DB}/{table}/rows"),
        &[],
        b"",
    )
    .await;
    let rows: Vec<OrderedRow> = serde_json::from_str(&r.body).expect("rows JSON");
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            r.0.iter()
                .map(|(k, v)| match v.as_f64() {
                    Some(f) if float_cols.contains(&k.as_str()) => (f as f32).to_string(),
                    _ => render(v),
                })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn sim_for(ddl: &str) -> doris_sim::Sim {
    sim_with(&[&format!("CREATE DATABASE {DB};\nUSE {DB};\n{ddl}")]).await
}

/// `sim_for` with the profile of an older release, for a suite whose expectations predate a change (version.rs).
async fn sim_for_version(version: DorisVersion, ddl: &str) -> doris_sim::Sim {
    sim_version(
        version,
        &[&format!("CREATE DATABASE {DB};\nUSE {DB};\n{ddl}")],
    )
    .await
}

async fn load(
    sim: &doris_sim::Sim,
    table: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> serde_json::Value {
    let auth = basic("root", "");
    let mut h: Vec<(&str, &str)> = vec![("Authorization", auth.as_str())];
    h.extend_from_slice(headers);
    send(
        sim.be_addr(),
        "PUT",
        &format!("/api/{DB}/{table}/_stream_load"),
        &h,
        body,
    )
    .await
    .json()
}

fn status(j: &serde_json::Value) -> String {
    j["Status"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_json_load.groovy @ 02c2f646b813ab0d9f3cf02ce51efdfa9aa5b497
// expected: regression-test/data/load_p0/stream_load/test_json_load.out @ 43bf3b5c4277a215b7069ce04c8b5c8d845f1979
// inputs: simple_json.json @ 46dd93b2, simple_json_bom.json @ 4dbbd21d, simple_json2_lack_one_column.json
//         @ 8e66ac33, nest_json.json @ 46dd93b2, multi_line_json.json @ e1412922
// ------------------------------------------------------------------------------------------------------------------

const JSON_OUT: &[u8] = fixture!("test_json_load.out");

/// `create_test_table1`: no key clause and a SUM column, so Doris makes it an AGGREGATE KEY(id, city) table.
const JSON_TABLE1: &str = "CREATE TABLE IF NOT EXISTS test_json_load (
    id INT DEFAULT '10',
    city VARCHAR(32) DEFAULT '',
    code BIGINT SUM DEFAULT '0')
    DISTRIBUTED BY RANDOM BUCKETS 10
    PROPERTIES(\"replication_num\" = \"1\");";

const JSON_TABLE2: &str = "CREATE TABLE IF NOT EXISTS test_json_load (
    id INT DEFAULT '10',
    code BIGINT SUM DEFAULT '0')
    DISTRIBUTED BY RANDOM BUCKETS 10
    PROPERTIES(\"replication_num\" = \"1\");";

const JSON_TABLE3: &str = "CREATE TABLE IF NOT EXISTS test_json_load (
    id INT DEFAULT '10',
    city VARCHAR(32) NOT NULL,
    code BIGINT SUM DEFAULT '0')
    DISTRIBUTED BY RANDOM BUCKETS 10
    PROPERTIES(\"replication_num\" = \"1\");";

/// The suite's `INSERT INTO ... VALUES (...)` after creating the table, done here as a CSV load of the same row.
async fn json_table(ddl: &str, insert_csv: &str) -> doris_sim::Sim {
    let sim = sim_for(ddl).await;
    let j = load(
        &sim,
        "test_json_load",
        &[("column_separator", ",")],
        insert_csv.as_bytes(),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    sim
}

/// `load_json_data` of the suite: every header is sent, empty ones included; the check is
/// `NumberTotalRows == NumberLoadedRows + NumberUnselectedRows` and `NumberLoadedRows > 0`.
#[allow(clippy::too_many_arguments)]
async fn load_json_data(
    sim: &doris_sim::Sim,
    strip: &str,
    by_line: &str,
    exprs: &str,
    jsonpaths: &str,
    json_root: &str,
    where_: &str,
    fuzzy: &str,
    body: &[u8],
) -> serde_json::Value {
    let j = load(
        sim,
        "test_json_load",
        &[
            ("strip_outer_array", strip),
            ("read_json_by_line", by_line),
            ("format", "json"),
            ("columns", exprs),
            ("jsonpaths", jsonpaths),
            ("json_root", json_root),
            ("where", where_),
            ("fuzzy_parse", fuzzy),
            ("load_to_single_tablet", "true"),
        ],
        body,
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        j["NumberTotalRows"].as_u64().unwrap(),
        j["NumberLoadedRows"].as_u64().unwrap() + j["NumberUnselectedRows"].as_u64().unwrap(),
        "{j}"
    );
    assert!(j["NumberLoadedRows"].as_u64().unwrap() > 0, "{j}");
    j
}

/// case1: import simple json (strip_outer_array, other headers empty) → `select1`.
#[tokio::test]
async fn json_load_case1_simple_json() {
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    load_json_data(
        &sim,
        "true",
        "",
        "",
        "",
        "",
        "",
        "",
        fixture!("simple_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select1", 0))
    );
}

/// case2: `columns: id= id * 10` (only an expression: every table column is still read from the JSON) → `select2`.
#[tokio::test]
async fn json_load_case2_expression_only_columns() {
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    load_json_data(
        &sim,
        "true",
        "",
        "id= id * 10",
        "",
        "",
        "",
        "",
        fixture!("simple_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select2", 0))
    );
}

/// case3: jsonpaths `["$.id", "$.code"]` → `select3` (the suite's INSERT is `(200, 0755)`).
#[tokio::test]
async fn json_load_case3_jsonpaths() {
    let sim = json_table(JSON_TABLE2, "200,755\n").await;
    load_json_data(
        &sim,
        "true",
        "",
        "",
        r#"["$.id", "$.code"]"#,
        "",
        "",
        "",
        fixture!("simple_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select3", 0))
    );
}

/// case4: jsonpaths `["$.id"]` and `columns: code = id * 10 + 200` → `select4`.
#[tokio::test]
async fn json_load_case4_jsonpaths_and_expression() {
    let sim = json_table(JSON_TABLE2, "200,755\n").await;
    load_json_data(
        &sim,
        "true",
        "",
        "code = id * 10 + 200",
        r#"["$.id"]"#,
        "",
        "",
        "",
        fixture!("simple_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select4", 0))
    );
}

/// case5: read_json_by_line with one array per line and strip_outer_array → `select5`.
#[tokio::test]
async fn json_load_case5_array_per_line() {
    let sim = json_table(JSON_TABLE2, "200,755\n").await;
    load_json_data(
        &sim,
        "true",
        "true",
        "",
        r#"["$.id", "$.code"]"#,
        "",
        "",
        "",
        fixture!("multi_line_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select5", 0))
    );
}

/// case6: as case5 with `id= id * 10` → `select6`.
#[tokio::test]
async fn json_load_case6_array_per_line_with_expression() {
    let sim = json_table(JSON_TABLE2, "200,755\n").await;
    load_json_data(
        &sim,
        "true",
        "true",
        "id= id * 10",
        r#"["$.id", "$.code"]"#,
        "",
        "",
        "",
        fixture!("multi_line_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select6", 0))
    );
}

/// case7: as case6 with `where: id > 50` (the mapped value is filtered) → `select7`.
#[tokio::test]
async fn json_load_case7_where_on_mapped_value() {
    let sim = json_table(JSON_TABLE2, "200,755\n").await;
    let j = load_json_data(
        &sim,
        "true",
        "true",
        "id= id * 10",
        r#"["$.id", "$.code"]"#,
        "",
        "id > 50",
        "",
        fixture!("multi_line_json.json"),
    )
    .await;
    assert_eq!(j["NumberUnselectedRows"], 5, "{j}");
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select7", 0))
    );
}

/// case8: as case7 with `fuzzy_parse: true` → `select8`.
#[tokio::test]
async fn json_load_case8_fuzzy_parse() {
    let sim = json_table(JSON_TABLE2, "200,755\n").await;
    load_json_data(
        &sim,
        "true",
        "true",
        "id= id * 10",
        r#"["$.id", "$.code"]"#,
        "",
        "id > 50",
        "true",
        fixture!("multi_line_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select8", 0))
    );
}

/// case9: json_root `$.item`, read_json_by_line, strip_outer_array empty → `select9`.
#[tokio::test]
async fn json_load_case9_json_root() {
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    load_json_data(
        &sim,
        "",
        "true",
        "id= id * 10",
        "",
        "$.item",
        "",
        "true",
        fixture!("nest_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select9", 0))
    );
}

/// case12: keys out of order, `city` (nullable, DEFAULT '') missing from some objects → its DEFAULT; `select12`.
#[tokio::test]
async fn json_load_case12_missing_key_takes_default() {
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    load_json_data(
        &sim,
        "true",
        "",
        "",
        "",
        "",
        "",
        "",
        fixture!("simple_json2_lack_one_column.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select12", 0))
    );
}

/// case13: `city` NOT NULL without default missing from 4 objects: those are filtered (max_filter_ratio 1),
/// 6 loaded → `select13` (the suite's INSERT is `(200, 'hangzhou', 12345)`).
#[tokio::test]
async fn json_load_case13_missing_not_null_key_is_filtered() {
    let sim = json_table(JSON_TABLE3, "200,hangzhou,12345\n").await;
    let j = load(
        &sim,
        "test_json_load",
        &[
            ("strip_outer_array", "true"),
            ("format", "json"),
            ("max_filter_ratio", "1"),
        ],
        fixture!("simple_json2_lack_one_column.json"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(j["NumberFilteredRows"], 4, "{j}");
    assert_eq!(j["NumberLoadedRows"], 6, "{j}");
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select13", 0))
    );
}

/// case15: `columns: id, code, city,id= id * 10` with jsonpaths and json_root → `select15`.
#[tokio::test]
async fn json_load_case15_jsonpaths_columns_and_root() {
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    load_json_data(
        &sim,
        "",
        "true",
        "id, code, city,id= id * 10",
        r#"["$.id", "$.code", "$.city"]"#,
        "$.item",
        "",
        "true",
        fixture!("nest_json.json"),
    )
    .await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select15", 0))
    );
}

/// case16: strip_outer_array with json_root `$.item` (looked up in each element), jsonpaths with an array index
/// `$.city[2]`; elements without a usable root are filtered (7 loaded, max_filter_ratio 1) → `select16`.
#[tokio::test]
async fn json_load_case16_json_root_per_element_and_array_index() {
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    let j = load(
        &sim,
        "test_json_load",
        &[
            ("strip_outer_array", "true"),
            ("read_json_by_line", ""),
            ("format", "json"),
            ("columns", "id, code, city"),
            ("jsonpaths", r#"["$.id", "$.code", "$.city[2]"]"#),
            ("json_root", "$.item"),
            ("where", ""),
            ("fuzzy_parse", "true"),
            ("load_to_single_tablet", "true"),
            ("max_filter_ratio", "1"),
        ],
        fixture!("nest_json_array.json"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(j["NumberLoadedRows"], 7, "{j}");
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select16", 0))
    );
}

/// case19: `columns: Id, cIty, CodE` match the JSON keys `Id`, `cIty`, `CodE` and the table's `id`, `city`,
/// `code` (2 loaded) → `select19`.
#[tokio::test]
async fn json_load_case19_column_names_case_insensitive() {
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    let j = load(
        &sim,
        "test_json_load",
        &[
            ("strip_outer_array", "false"),
            ("read_json_by_line", "true"),
            ("format", "json"),
            ("columns", "Id, cIty, CodE"),
            ("max_filter_ratio", "1"),
        ],
        fixture!("case_sensitive_json.json"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(j["NumberLoadedRows"], 2, "{j}");
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select19", 0))
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_json_load_behavior_and_error_msg.groovy @ 95b94e3629a76265392f05582f214b236e114f82
// inputs: case_sensitive_json.json @ aa24c44f, multi_line_json2.json @ 95b94e36
// ------------------------------------------------------------------------------------------------------------------

/// case1: the default behaviour (no read_json_by_line, no strip_outer_array) reads the two objects of the file;
/// `columns: Id, cIty, CodE` → 2 loaded.
#[tokio::test]
async fn json_behavior_case1_default_reader_and_mixed_case_columns() {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_table1 (
            id INT DEFAULT '10',
            city VARCHAR(32) DEFAULT '',
            code BIGINT SUM DEFAULT '0'
        )
        DISTRIBUTED BY RANDOM BUCKETS 10
        PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");",
    )
    .await;
    let j = load(
        &sim,
        "test_table1",
        &[
            ("label", "behavior_check_1"),
            ("format", "json"),
            ("columns", "Id, cIty, CodE"),
        ],
        fixture!("case_sensitive_json.json"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(j["NumberLoadedRows"], 2, "{j}");
}

/// case2: two JSON objects on one line with read_json_by_line → the load fails with
/// `[DATA_QUALITY_ERROR]Multiple JSON objects in a single line`.
#[tokio::test]
async fn json_behavior_case2_multiple_objects_in_one_line_fail() {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_table2 (
            user_id INT,
            name VARCHAR(32),
            age INT
        ) ENGINE=OLAP
        DUPLICATE KEY(user_id)
        DISTRIBUTED BY RANDOM BUCKETS 10
        PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");",
    )
    .await;
    let j = load(
        &sim,
        "test_table2",
        &[
            ("label", "error_check_1"),
            ("format", "json"),
            ("read_json_by_line", "true"),
            ("columns", "user_id, name, age"),
        ],
        fixture!("multi_line_json2.json"),
    )
    .await;
    assert_eq!(status(&j), "fail", "{j}");
    assert!(
        j["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("[DATA_QUALITY_ERROR]Multiple JSON objects in a single line"),
        "{j}"
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/load_json_with_jsonpath.groovy @ 29ce8f9853a749545b2edaebf8b0521948856fe7
// expected: regression-test/data/load_p0/stream_load/load_json_with_jsonpath.out @ 59907871a3dc9e1a1dc8766e088250b19fad928b
// input: test_load_with_jsonpath.json @ ed82b0aa
// ------------------------------------------------------------------------------------------------------------------

/// jsonpaths `["$.k1", "$.v1"]` over objects where `v1` is missing or every path misses (that object is
/// filtered, max_filter_ratio 1) → `select`.
#[tokio::test]
async fn json_with_jsonpath_missing_paths() {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS tbl_test_load_json_with_jsonpath (
          `k1` INT NULL COMMENT \"\",
          `v1` DOUBLE NULL COMMENT \"\"
        ) ENGINE=OLAP
        DUPLICATE KEY(`k1`)
        DISTRIBUTED BY HASH(`k1`) BUCKETS 1
        PROPERTIES (
        \"replication_allocation\" = \"tag.location.default: 1\",
        \"storage_format\" = \"V2\"
        )",
    )
    .await;
    let j = load(
        &sim,
        "tbl_test_load_json_with_jsonpath",
        &[
            ("strip_outer_array", "true"),
            ("read_json_by_line", ""),
            ("format", "json"),
            ("columns", ""),
            ("jsonpaths", r#"["$.k1", "$.v1"]"#),
            ("json_root", ""),
            ("where", ""),
            ("fuzzy_parse", ""),
            ("column_separator", ""),
            ("max_filter_ratio", "1"),
        ],
        fixture!("test_load_with_jsonpath.json"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        j["NumberTotalRows"].as_u64().unwrap(),
        j["NumberLoadedRows"].as_u64().unwrap()
            + j["NumberUnselectedRows"].as_u64().unwrap()
            + j["NumberFilteredRows"].as_u64().unwrap(),
        "{j}"
    );
    assert_eq!(
        table_lines(&sim, "tbl_test_load_json_with_jsonpath", &[]).await,
        sorted(out_section(
            fixture!("load_json_with_jsonpath.out"),
            "select",
            0
        ))
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/load_json_null_to_nullable.groovy @ 263ce14bb3f4a1e0b3b68cd56aa2b5248be4d358
// expected: regression-test/data/load_p0/stream_load/load_json_null_to_nullable.out @ 46dd93b24fe1e1f84fabf413b6ee161a7e19e659
// input: test_char.json @ 4dbbd21d
// ------------------------------------------------------------------------------------------------------------------

/// CHAR (one byte) columns: longer strings (also 3-byte UTF-8 characters) are filtered, "" stays "", JSON null is
/// NULL → `select`. With the 3.0 profile: the suite predates 4.x cutting over-long strings outside strict mode.
#[tokio::test]
async fn json_null_to_nullable_char_columns() {
    let sim = sim_for_version(
        DorisVersion::V3_0,
        "CREATE TABLE IF NOT EXISTS tbl_test_json_load (
          `k1` CHAR NULL COMMENT \"\",
          `v1` CHAR NULL COMMENT \"\"
        ) ENGINE=OLAP
        DUPLICATE KEY(`k1`)
        DISTRIBUTED BY HASH(`k1`) BUCKETS 1
        PROPERTIES (
        \"replication_allocation\" = \"tag.location.default: 1\",
        \"storage_format\" = \"V2\"
        )",
    )
    .await;
    let j = load(
        &sim,
        "tbl_test_json_load",
        &[
            ("strip_outer_array", "true"),
            ("read_json_by_line", ""),
            ("format", "json"),
            ("columns", ""),
            ("jsonpaths", ""),
            ("json_root", ""),
            ("where", ""),
            ("fuzzy_parse", ""),
            ("column_separator", ""),
            ("max_filter_ratio", "1"),
        ],
        fixture!("test_char.json"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "tbl_test_json_load", &[]).await,
        sorted(out_section(
            fixture!("load_json_null_to_nullable.out"),
            "select",
            0
        ))
    );
}

/// case20: the same array behind a UTF-8 BOM loads like case1 → the second `select1`.
#[tokio::test]
async fn json_load_case20_utf8_bom() {
    let body = fixture!("simple_json_bom.json");
    assert_eq!(&body[..3], b"\xEF\xBB\xBF");
    let sim = json_table(JSON_TABLE1, "200,changsha,3456789\n").await;
    load_json_data(&sim, "true", "", "", "", "", "", "", body).await;
    assert_eq!(
        table_lines(&sim, "test_json_load", &[]).await,
        sorted(out_section(JSON_OUT, "select1", 1))
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_json_load_default_value.groovy @ 2a168d03288a2961e3bd91ea1a33be28033fba87
// expected: regression-test/data/load_p0/stream_load/test_json_load_default_value.out @ 6c898631d8fea27f6471baf0518fcd71636ea8e0
// ------------------------------------------------------------------------------------------------------------------

const DEFAULT_OUT: &[u8] = fixture!("test_json_load_default_value.out");
const DEFAULT_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_json_load_default_value (
    id INT NOT NULL DEFAULT '0',
    country VARCHAR(32) NULL DEFAULT 'default_country',
    city VARCHAR(32) NULL DEFAULT 'default_city',
    code BIGINT DEFAULT '1111')
    DISTRIBUTED BY RANDOM BUCKETS 10
    PROPERTIES(\"replication_num\" = \"1\");";

async fn default_value_load(body: &[u8]) -> doris_sim::Sim {
    let sim = sim_for(DEFAULT_TABLE).await;
    // `load_json_data.call('true', '', 'json', '', file)`: empty read_json_by_line and jsonpaths headers are sent.
    let j = load(
        &sim,
        "test_json_load_default_value",
        &[
            ("strip_outer_array", "true"),
            ("read_json_by_line", ""),
            ("format", "json"),
            ("jsonpaths", ""),
        ],
        body,
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    sim
}

/// case1: `country` is in no object → its DEFAULT; `select1`.
#[tokio::test]
async fn json_default_value_case1_column_absent_from_all_rows() {
    let sim = default_value_load(fixture!("simple_json.json")).await;
    assert_eq!(
        table_lines(&sim, "test_json_load_default_value", &[]).await,
        sorted(out_section(DEFAULT_OUT, "select1", 0))
    );
}

/// case2: `city` missing from some objects → its DEFAULT there; `select2`.
#[tokio::test]
async fn json_default_value_case2_key_missing_from_some_rows() {
    let sim = default_value_load(fixture!("simple_json2_lack_one_column.json")).await;
    assert_eq!(
        table_lines(&sim, "test_json_load_default_value", &[]).await,
        sorted(out_section(DEFAULT_OUT, "select2", 0))
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_csv_with_skip_lines.groovy @ 2eb35cb5a9e14ad812ae4543827304a9c21af9f2
// expected: regression-test/data/load_p0/stream_load/test_csv_with_skip_lines.out @ 22ea203b4513067e75f634d86ad09a35cdc34831
// input: csv_with_skip_lines.csv @ 99b2846f
// ------------------------------------------------------------------------------------------------------------------

const SKIP_OUT: &[u8] = fixture!("test_csv_with_skip_lines.out");
/// Integer display widths (`int(20)`, `tinyint(4)`) as the suite writes them.
const SKIP_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_csv_with_skip_lines (
    `k1` int(20) NULL,
    `k2` bigint(20) NULL,
    `v1` tinyint(4)  NULL,
    `v2` string  NULL,
    `v3` date  NULL,
    `v4` datetime  NULL
) ENGINE=OLAP
DUPLICATE KEY(`k1`, `k2`)
COMMENT 'OLAP'
DISTRIBUTED BY HASH(`k1`, `k2`) BUCKETS 3
PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");";

async fn skip_lines_case(format: Option<&str>, skip: &str, section: usize) {
    let sim = sim_for(SKIP_TABLE).await;
    let mut h = vec![("column_separator", ","), ("skip_lines", skip)];
    if let Some(f) = format {
        h.push(("format", f));
    }
    let j = load(
        &sim,
        "test_csv_with_skip_lines",
        &h,
        fixture!("csv_with_skip_lines.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_csv_with_skip_lines", &[]).await,
        sorted(out_section(SKIP_OUT, "sql", section))
    );
}

#[tokio::test]
async fn csv_skip_lines_3_of_4() {
    skip_lines_case(None, "3", 0).await;
}

#[tokio::test]
async fn csv_skip_lines_4_of_4() {
    skip_lines_case(None, "4", 1).await;
}

#[tokio::test]
async fn csv_skip_lines_5_of_4() {
    skip_lines_case(None, "5", 2).await;
}

/// `skip_lines` is ignored with `csv_with_names`: one header line is skipped.
#[tokio::test]
async fn csv_skip_lines_ignored_with_csv_with_names() {
    skip_lines_case(Some("csv_with_names"), "3", 3).await;
}

/// `skip_lines` is ignored with `csv_with_names_and_types`: two header lines are skipped.
#[tokio::test]
async fn csv_skip_lines_ignored_with_csv_with_names_and_types() {
    skip_lines_case(Some("csv_with_names_and_types"), "3", 4).await;
}

#[tokio::test]
async fn csv_skip_lines_with_format_csv() {
    skip_lines_case(Some("csv"), "3", 5).await;
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_stream_load.groovy @ 17e3a183489bbc81f42894705499dba51b41d554
// expected: regression-test/data/load_p0/stream_load/test_stream_load.out @ 0b2dda6f47ccb63b1bd05a5189268ab748de2640
// inputs: num_as_string.json @ ff3b1041, unique_key_with_delete.csv @ 46070fdb, trim_double_quotes.csv @ eaf208b8,
//         test_chunked_transfer.json @ dddf471c
// ------------------------------------------------------------------------------------------------------------------

const SL_OUT: &[u8] = fixture!("test_stream_load.out");

/// `test_chunked_transfer` (also used for the Content-Length / chunked checks).
const CHUNKED_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_chunked_transfer (
    `k1` bigint(20) NULL DEFAULT \"1\",
    `k2` bigint(20) NULL ,
    `v1` tinyint(4) NULL,
    `v2` tinyint(4) NULL,
    `v3` tinyint(4) NULL,
    `v4` DATETIME NULL
) ENGINE=OLAP
DISTRIBUTED BY HASH(`k1`) BUCKETS 3
PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");";

const NUM_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_num_as_string (
  `k1` int(11) NULL,
  `k2` float NULL,
  `k3` double NULL
) ENGINE=OLAP
DUPLICATE KEY(`k1`)
DISTRIBUTED BY HASH(`k1`) BUCKETS 3
PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");";

async fn num_as_string_case(flag: &str, section: &str) {
    let sim = sim_for(NUM_TABLE).await;
    let j = load(
        &sim,
        "test_num_as_string",
        &[
            ("format", "JSON"),
            ("num_as_string", flag),
            ("strip_outer_array", "true"),
        ],
        fixture!("num_as_string.json"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_num_as_string", &["k2"]).await,
        sorted(out_section(SL_OUT, section, 0))
    );
}

#[tokio::test]
async fn stream_load_num_as_string_true() {
    num_as_string_case("true", "num_as_string").await;
}

#[tokio::test]
async fn stream_load_num_as_string_false() {
    num_as_string_case("false", "num_as_string_false").await;
}

/// `test_unique_key_with_delete`: merge_type MERGE, `delete: del=1`, `function_column.sequence_col: seq` into a
/// `sequence_type` table → 6 loaded, `all91` (one row left).
#[tokio::test]
async fn stream_load_unique_merge_delete_with_sequence() {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_unique_key_with_delete (
      `k1` int(11) NULL,
      `k2` tinyint(4) NULL,
      `v1` varchar(1024)
    ) ENGINE=OLAP
    UNIQUE KEY(k1, k2)
    DISTRIBUTED BY HASH(`k1`) BUCKETS 3
    PROPERTIES (
    \"function_column.sequence_type\" = \"int\",
    \"replication_allocation\" = \"tag.location.default: 1\"
    );",
    )
    .await;
    let j = load(
        &sim,
        "test_unique_key_with_delete",
        &[
            ("column_separator", ","),
            ("columns", "k1,k2,v1,del,seq"),
            ("delete", "del=1"),
            ("merge_type", "merge"),
            ("function_column.sequence_col", "seq"),
        ],
        fixture!("unique_key_with_delete.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        (
            &j["NumberTotalRows"],
            &j["NumberLoadedRows"],
            &j["NumberFilteredRows"],
            &j["NumberUnselectedRows"]
        ),
        (&6.into(), &6.into(), &0.into(), &0.into()),
        "{j}"
    );
    let count = rows(&sim, DB, "test_unique_key_with_delete").await.len();
    assert_eq!(vec![count.to_string()], out_section(SL_OUT, "all91", 0));
}

/// Chunked JSON lines without a `columns` header; the unknown key `k4` is ignored → `sql_chunked_transfer_json`.
#[tokio::test]
async fn stream_load_chunked_json() {
    let sim = sim_for(CHUNKED_TABLE).await;
    let body = fixture!("test_chunked_transfer.json");
    let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
    chunked.extend_from_slice(body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let j = load(
        &sim,
        "test_chunked_transfer",
        &[
            ("Transfer-Encoding", "chunked"),
            ("format", "json"),
            ("read_json_by_line", "true"),
        ],
        &chunked,
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_chunked_transfer", &[]).await,
        sorted(out_section(SL_OUT, "sql_chunked_transfer_json", 0))
    );
}

/// `Content-Length: 0` together with `Transfer-Encoding: chunked` sent to the BE (curl `-H Content-Length:0
/// -H Transfer-Encoding:chunked -T file`) → refused with the `[INTERNAL_ERROR]` message, nothing loaded. Sent on a
/// raw connection in both header orders, after a normal load on the same connection (the raw head is matched to its
/// request), since the HTTP library under doris-sim drops `Content-Length` from a chunked request.
#[tokio::test]
async fn stream_load_content_length_with_chunked_refused() {
    use tokio::io::AsyncWriteExt;
    let sim = sim_for(CHUNKED_TABLE).await;
    let auth = basic("root", "");
    let path = format!("/api/{DB}/test_chunked_transfer/_stream_load");
    for (first, second) in [
        ("Content-Length: 0", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 0"),
    ] {
        let mut s = tokio::net::TcpStream::connect(sim.be_addr()).await.unwrap();
        // A plain load first, on the same connection.
        let ok_body = "7|8|1|2|3\n";
        let req = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\ncolumn_separator: |\r\n\
             columns: k1,k2,v1,v2,v3\r\nContent-Length: {}\r\n\r\n{ok_body}",
            ok_body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let j = read_response(&mut s).await.unwrap().json();
        assert_eq!(status(&j), "success", "{j}");
        let body = "1|2|3|4|5\n";
        let req = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\ncolumn_separator: |\r\n\
             columns: k1,k2,v1,v2,v3\r\n{first}\r\n{second}\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let j = read_response(&mut s).await.unwrap().json();
        assert_eq!(status(&j), "fail", "{j}");
        assert!(
            j["Message"].as_str().unwrap_or_default().contains(
                "[INTERNAL_ERROR]please do not set both content_length and transfer-encoding"
            ),
            "{j}"
        );
    }
    assert_eq!(
        table_lines(&sim, "test_chunked_transfer", &[]).await,
        vec!["7\t8\t1\t2\t3\t\\N".to_string(); 2]
    );
}

/// Neither `Content-Length` nor chunked encoding sent to the BE → refused with the `[INTERNAL_ERROR]` message.
#[tokio::test]
async fn stream_load_no_length_and_no_chunked_refused() {
    use tokio::io::AsyncWriteExt;
    let sim = sim_for(CHUNKED_TABLE).await;
    let mut s = tokio::net::TcpStream::connect(sim.be_addr()).await.unwrap();
    let req = format!(
        "PUT /api/{DB}/test_chunked_transfer/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         column_separator: |\r\nConnection: close\r\n\r\n",
        basic("root", "")
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let j = read_response(&mut s).await.unwrap().json();
    assert_eq!(status(&j), "fail", "{j}");
    assert!(
        j["Message"].as_str().unwrap_or_default().contains(
            "[INTERNAL_ERROR]content_length is empty and transfer-encoding!=chunked, please set content_length or transfer-encoding=chunked"
        ),
        "{j}"
    );
}

const TRIM_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_trim_double_quotes (
  `k1` int(11) NULL,
  `k2` VARCHAR(20) NULL
) ENGINE=OLAP
DUPLICATE KEY(`k1`)
DISTRIBUTED BY HASH(`k1`) BUCKETS 3
PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");";

async fn trim_case(flag: &str, section: &str) {
    let sim = sim_for(TRIM_TABLE).await;
    let j = load(
        &sim,
        "test_trim_double_quotes",
        &[("column_separator", "|"), ("trim_double_quotes", flag)],
        fixture!("trim_double_quotes.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_trim_double_quotes", &[]).await,
        sorted(out_section(SL_OUT, section, 0))
    );
}

#[tokio::test]
async fn stream_load_trim_double_quotes_true() {
    trim_case("true", "trim_double_quotes").await;
}

#[tokio::test]
async fn stream_load_trim_double_quotes_false() {
    trim_case("false", "trim_double_quotes_false").await;
}

/// `merge_type: other` → `[INVALID_ARGUMENT]Invalid merge type other` (table adapted: `test_default_value` has a
/// `DEFAULT CURRENT_TIMESTAMP` column doris-sim refuses; the check happens before any row is read).
#[tokio::test]
async fn stream_load_invalid_merge_type() {
    let sim = sim_for(CHUNKED_TABLE).await;
    let j = load(
        &sim,
        "test_chunked_transfer",
        &[("merge_type", "other")],
        b"1|2\n",
    )
    .await;
    assert_eq!(j["Message"], "[INVALID_ARGUMENT]Invalid merge type other");
}

/// `format: txt` → fail, "unknown data format" (table adapted from the ARRAY table `test_array`).
#[tokio::test]
async fn stream_load_unknown_format() {
    let sim = sim_for(CHUNKED_TABLE).await;
    let j = load(&sim, "test_chunked_transfer", &[("format", "txt")], b"1\n").await;
    assert_eq!(status(&j), "fail", "{j}");
    assert!(
        j["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown data format"),
        "{j}"
    );
}

/// `comment` is echoed in the reply's `Comment` (table adapted from the ARRAY table `test_array`).
#[tokio::test]
async fn stream_load_comment_echoed() {
    let sim = sim_for(CHUNKED_TABLE).await;
    let j = load(
        &sim,
        "test_chunked_transfer",
        &[("comment", "test comment"), ("column_separator", "|")],
        b"1|2|3|4|5|\\N\n",
    )
    .await;
    assert_eq!(j["Comment"], "test comment", "{j}");
}

/// `send_batch_parallelism`: `a` and `21474836471` refused with Doris's messages, `-1` and `1` accepted (table
/// adapted from the ARRAY table `test_array`; only the header handling is ported).
#[tokio::test]
async fn stream_load_send_batch_parallelism() {
    let sim = sim_for(CHUNKED_TABLE).await;
    let body = b"1|2|3|4|5|\\N\n";
    let run = |v: &'static str| {
        let sim = &sim;
        async move {
            load(
                sim,
                "test_chunked_transfer",
                &[("send_batch_parallelism", v), ("column_separator", "|")],
                body,
            )
            .await
        }
    };
    assert_eq!(
        run("a").await["Message"],
        "[INVALID_ARGUMENT]send_batch_parallelism must be an integer, stoi"
    );
    assert_eq!(
        run("21474836471").await["Message"],
        "[INVALID_ARGUMENT]send_batch_parallelism out of range, stoi"
    );
    let j = run("-1").await;
    assert_eq!(status(&j), "success", "{j}");
    let j = run("1").await;
    assert_eq!(status(&j), "success", "{j}");
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/data_model_p0/unique/test_unique_table_sequence.groovy @ 02c2f646b813ab0d9f3cf02ce51efdfa9aa5b497
// expected: regression-test/data/data_model_p0/unique/test_unique_table_sequence.out @ 02d005227a34deceffcb64740f30563aff7ed89a
// input: regression-test/data/data_model_p0/unique/unique_key_data1.csv @ ddd12e08
// ------------------------------------------------------------------------------------------------------------------

const SEQ_OUT: &[u8] = fixture!("test_unique_table_sequence.out");
const SEQ_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_uniq_sequence (
  `k1` int NULL,
  `v1` tinyint NULL,
  `v2` int,
  `v3` int,
  `v4` int
) ENGINE=OLAP
UNIQUE KEY(k1)
DISTRIBUTED BY HASH(`k1`) BUCKETS 3
PROPERTIES (
\"function_column.sequence_type\" = \"int\",
\"replication_allocation\" = \"tag.location.default: 1\"
);";

/// First load with `function_column.sequence_col: v2`: key 2 keeps the row with the larger v2 → first `all`.
#[tokio::test]
async fn unique_sequence_type_load_with_sequence_col_header() {
    let sim = sim_for(SEQ_TABLE).await;
    let j = load(
        &sim,
        "test_uniq_sequence",
        &[
            ("column_separator", ","),
            ("columns", "k1,v1,v2,v3,v4"),
            ("function_column.sequence_col", "v2"),
        ],
        fixture!("unique_key_data1.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        (&j["NumberTotalRows"], &j["NumberLoadedRows"]),
        (&4.into(), &4.into())
    );
    assert_eq!(
        table_lines(&sim, "test_uniq_sequence", &[]).await,
        sorted(out_section(SEQ_OUT, "all", 0))
    );
}

/// Without the sequence column the load is refused ("Table ... has sequence column, need to specify the sequence
/// column", asserted for INSERT in the same suite; Doris plans Stream Load with the same check).
#[tokio::test]
async fn unique_sequence_type_load_without_sequence_refused() {
    let sim = sim_for(SEQ_TABLE).await;
    let j = load(
        &sim,
        "test_uniq_sequence",
        &[("column_separator", ","), ("columns", "k1,v1,v2,v3,v4")],
        b"15,8,19,20,21\n",
    )
    .await;
    assert_eq!(status(&j), "fail", "{j}");
    assert!(
        j["Message"].as_str().unwrap_or_default().contains(
            "Table test_uniq_sequence has sequence column, need to specify the sequence column"
        ),
        "{j}"
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_csv_with_enclose_and_escape.groovy @ ea21260aa191c445c4e4eaa300badc50da777bc3
// expected: regression-test/data/load_p0/stream_load/test_csv_with_enclose_and_escape.out @ 417e630bcdccc5e7973a8a2874b90b088a9c7afb
// inputs: enclose_normal.csv @ 0f919712, enclose_with_escape.csv @ 2dd250b8, enclose_wrong_position.csv @ a73eef81,
//         enclose_empty_values.csv @ aa24c44f, enclose_incomplete.csv @ 421df8b3, enclose_without_escape.csv
//         @ f53aa038, enclose_multi_char_delimiter.csv @ 27f6ab12, enclose_not_trim_quotes.csv @ 27f6ab12
// The suite loads every file into one table and checks the table once; each load here gets its own table and is
// compared with the `.out` rows of the keys that load writes (each file writes keys no other file writes, except
// key 10, written by two files and told apart by content).
// ------------------------------------------------------------------------------------------------------------------

const ENCLOSE_OUT: &[u8] = fixture!("test_csv_with_enclose_and_escape.out");
const ENCLOSE_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_csv_with_enclose_and_escape (
    `k1` int(20) NULL,
    `k2` string NULL,
    `v1` date  NULL,
    `v2` string  NULL,
    `v3` datetime  NULL,
    `v4` string  NULL
) ENGINE=OLAP
DUPLICATE KEY(`k1`)
COMMENT 'OLAP'
DISTRIBUTED BY HASH(`k1`) BUCKETS 3
PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");";

/// Loads `body` with the suite's enclose headers (plus `extra`) into a fresh table; returns the reply and the rows.
async fn enclose_load(body: &[u8], extra: &[(&str, &str)]) -> (serde_json::Value, Vec<String>) {
    let sim = sim_for(ENCLOSE_TABLE).await;
    let mut h = vec![
        ("column_separator", ","),
        ("trim_double_quotes", "true"),
        ("enclose", "\""),
        ("escape", "\\"),
    ];
    for (k, v) in extra {
        h.retain(|(hk, _)| hk != k);
        h.push((k, v));
    }
    let j = load(&sim, "test_csv_with_enclose_and_escape", &h, body).await;
    let rows = table_lines(&sim, "test_csv_with_enclose_and_escape", &[]).await;
    (j, rows)
}

/// The `.out` rows whose first column is one of `keys` and that satisfy `keep`.
fn enclose_expected(keys: &[&str], keep: impl Fn(&str) -> bool) -> Vec<String> {
    sorted(
        out_section(ENCLOSE_OUT, "select", 0)
            .into_iter()
            .filter(|l| keys.contains(&l.split('\t').next().unwrap_or_default()) && keep(l))
            .collect(),
    )
}

/// Enclosed fields holding the separator and line breaks; `2023-07-20:05:48:31` as a DATETIME.
#[tokio::test]
async fn csv_enclose_normal() {
    let (j, rows) = enclose_load(fixture!("enclose_normal.csv"), &[]).await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(rows, enclose_expected(&["1", "2"], |_| true));
}

#[tokio::test]
async fn csv_enclose_with_escape() {
    let (j, rows) = enclose_load(fixture!("enclose_with_escape.csv"), &[]).await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(rows, enclose_expected(&["3"], |_| true));
}

#[tokio::test]
async fn csv_enclose_in_the_middle_of_a_field_is_literal() {
    let (j, rows) = enclose_load(fixture!("enclose_wrong_position.csv"), &[]).await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(rows, enclose_expected(&["6"], |_| true));
}

#[tokio::test]
async fn csv_enclose_empty_values() {
    let (j, rows) = enclose_load(fixture!("enclose_empty_values.csv"), &[]).await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(rows, enclose_expected(&["7"], |_| true));
}

/// An enclose that never closes swallows the rest of the file: the load fails even with max_filter_ratio 0.5.
#[tokio::test]
async fn csv_enclose_incomplete_fails() {
    let (j, _) = enclose_load(
        fixture!("enclose_incomplete.csv"),
        &[("max_filter_ratio", "0.5")],
    )
    .await;
    assert_eq!(j["Status"], "Fail", "{j}");
}

#[tokio::test]
async fn csv_enclose_without_escape() {
    let (j, rows) = enclose_load(fixture!("enclose_without_escape.csv"), &[]).await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(rows, enclose_expected(&["8", "9"], |_| true));
}

#[tokio::test]
async fn csv_enclose_multi_char_separator_and_delimiter() {
    let (j, rows) = enclose_load(
        fixture!("enclose_multi_char_delimiter.csv"),
        &[("column_separator", "@@"), ("line_delimiter", "$$$")],
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(rows, enclose_expected(&["10"], |l| l.contains("@@")));
}

/// With trim_double_quotes false the enclosing quotes stay in the value (a quoted DATE/DATETIME becomes NULL).
#[tokio::test]
async fn csv_enclose_without_trim_double_quotes() {
    let (j, rows) = enclose_load(
        fixture!("enclose_not_trim_quotes.csv"),
        &[("trim_double_quotes", "false")],
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(rows, enclose_expected(&["10", "11"], |l| !l.contains("@@")));
}

/// A mapped sequence column (`function_column.sequence_col`) left out of `columns` → refused like the hidden one
/// (message asserted in regression-test/suites/data_model_p0/unique/test_unique_table_sequence.groovy @ 02c2f646).
#[tokio::test]
async fn unique_sequence_col_left_out_is_refused() {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_uniq_new_sequence (
      `k1` int NULL,
      `v1` tinyint NULL,
      `v2` int
    ) ENGINE=OLAP
    UNIQUE KEY(k1)
    DISTRIBUTED BY HASH(`k1`) BUCKETS 3
    PROPERTIES (
    \"function_column.sequence_col\" = \"v2\",
    \"replication_allocation\" = \"tag.location.default: 1\"
    );",
    )
    .await;
    let j = load(
        &sim,
        "test_uniq_new_sequence",
        &[("column_separator", ","), ("columns", "k1,v1")],
        b"1,4\n",
    )
    .await;
    assert_eq!(status(&j), "fail", "{j}");
    assert!(
        j["Message"].as_str().unwrap_or_default().contains(
            "Table test_uniq_new_sequence has sequence column, need to specify the sequence column"
        ),
        "{j}"
    );
}

// ------------------------------------------------------------------------------------------------------------------
// Partial updates: regression-test/suites/unique_with_mow_p0/partial_update/ (suite commits per test), expected
// values from regression-test/data/unique_with_mow_p0/partial_update/*.out. Where a suite starts from rows written
// by INSERT (or by a load whose input is not in the index), the table is seeded with the rows of the `.out` section
// that shows that state, by a plain CSV load of those lines.
// ------------------------------------------------------------------------------------------------------------------

macro_rules! pu_fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/doris/partial_update/", $name))
    };
}

/// Loads `.out` lines (tab-separated, `\N` for NULL) as whole rows.
async fn seed(sim: &doris_sim::Sim, table: &str, lines: &[String]) {
    let body = lines.join("\n");
    let j = load(sim, table, &[], body.as_bytes()).await;
    assert_eq!(status(&j), "success", "{j}");
}

fn csv_partial(columns: &str) -> Vec<(&str, &str)> {
    vec![
        ("column_separator", ","),
        ("format", "csv"),
        ("partial_columns", "true"),
        ("columns", columns),
    ]
}

// test_partial_update_seq_col.groovy @ 8db0fc986d41260ad9034edea6e51fb2a5b98fee,
// test_partial_update_seq_col.out @ 24216b2ae71d3f7e5e792308c2bbd5a8975c4dfe, basic_with_seq.csv @ 27f6ab12.
const PU_SEQ_OUT: &[u8] = pu_fixture!("test_partial_update_seq_col.out");
const PU_SEQ_TABLE: &str = "CREATE TABLE test_primary_key_partial_update_seq_col (
    `id` int(11) NOT NULL COMMENT \"用户 ID\",
    `name` varchar(65533) DEFAULT \"unknown\" COMMENT \"用户姓名\",
    `score` int(11) NOT NULL COMMENT \"用户得分\",
    `test` int(11) NULL COMMENT \"null test\",
    `dft` int(11) DEFAULT \"4321\",
    `update_time` date NULL)
UNIQUE KEY(`id`) DISTRIBUTED BY HASH(`id`) BUCKETS 1
PROPERTIES(
    \"replication_num\" = \"1\",
    \"enable_unique_key_merge_on_write\" = \"true\",
    \"function_column.sequence_col\" = \"update_time\"
)";

/// A row-update load (no partial_columns) without the sequence mapping column fails: "need to specify the sequence
/// column". (The suite sends basic.csv, which is not in the index; the load fails before its body is read.)
#[tokio::test]
async fn partial_update_seq_col_row_update_without_sequence_fails() {
    let sim = sim_for(PU_SEQ_TABLE).await;
    let j = load(
        &sim,
        "test_primary_key_partial_update_seq_col",
        &[
            ("column_separator", ","),
            ("format", "csv"),
            ("columns", "id,score"),
        ],
        b"",
    )
    .await;
    assert_eq!(status(&j), "fail", "{j}");
    assert!(
        j["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("need to specify the sequence column"),
        "{j}"
    );
}

/// Partial update giving the sequence column: per key the largest sequence wins, older ones are ignored, a new key
/// gets its columns' defaults → `partial_update_with_seq` (seeded with `partial_update_without_seq`).
#[tokio::test]
async fn partial_update_seq_col_with_sequence() {
    let sim = sim_for(PU_SEQ_TABLE).await;
    let t = "test_primary_key_partial_update_seq_col";
    seed(
        &sim,
        t,
        &out_section(PU_SEQ_OUT, "partial_update_without_seq", 0),
    )
    .await;
    let j = load(
        &sim,
        t,
        &csv_partial("id,score,update_time"),
        pu_fixture!("basic_with_seq.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, t, &[]).await,
        sorted(out_section(PU_SEQ_OUT, "partial_update_with_seq", 0))
    );
}

// test_partial_update_upsert.groovy @ 171ee457e6e9c5c2f7271300c16dca96651e049b,
// test_partial_update_upsert.out @ 45f4505e853c436e9c4d5b478db598a4546a3902, upsert.csv @ ff3b1041;
// test_partial_update_strict_mode.groovy @ 186a059ee6a45533a8a6d1a59fc65b220999143c,
// test_partial_update_strict_mode.out @ 27f6ab12099ecb198ac97e1b10907635554b67dd.
const PU_UPSERT_TABLE: &str = "CREATE TABLE test_partial_update_upsert1 (
    `id` int(11) NULL,
    `name` varchar(10) NULL,
    `age` int(11) NULL DEFAULT \"20\",
    `city` varchar(10) NOT NULL DEFAULT \"beijing\",
    `balance` decimalv3(9, 0) NULL,
    `last_access_time` datetime NULL
) ENGINE = OLAP UNIQUE KEY(`id`)
COMMENT 'OLAP' DISTRIBUTED BY HASH(`id`)
BUCKETS AUTO PROPERTIES (
    \"replication_allocation\" = \"tag.location.default: 1\",
    \"storage_format\" = \"V2\",
    \"enable_unique_key_merge_on_write\" = \"true\",
    \"light_schema_change\" = \"true\",
    \"disable_auto_compaction\" = \"false\",
    \"enable_single_replica_compaction\" = \"false\"
);";

async fn upsert_table() -> doris_sim::Sim {
    let sim = sim_for(PU_UPSERT_TABLE).await;
    // The suite's INSERT, as shown by its first `sql` section.
    seed(
        &sim,
        "test_partial_update_upsert1",
        &out_section(pu_fixture!("test_partial_update_upsert.out"), "sql", 0),
    )
    .await;
    sim
}

/// Non-strict partial update: existing key updated, new keys appended with defaults (age 20, city beijing) and
/// NULLs; a DATETIME with a trailing space is read → second `sql`.
#[tokio::test]
async fn partial_update_upsert_appends_new_keys() {
    let sim = upsert_table().await;
    let mut h = csv_partial("id,balance,last_access_time");
    h.push(("strict_mode", "false"));
    let j = load(
        &sim,
        "test_partial_update_upsert1",
        &h,
        pu_fixture!("upsert.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_partial_update_upsert1", &[]).await,
        sorted(out_section(
            pu_fixture!("test_partial_update_upsert.out"),
            "sql",
            1
        ))
    );
}

/// Strict partial update: the rows of new keys are filtered; without max_filter_ratio the load fails.
#[tokio::test]
async fn partial_update_upsert_strict_mode_fails() {
    let sim = upsert_table().await;
    let mut h = csv_partial("id,balance,last_access_time");
    h.push(("strict_mode", "true"));
    let j = load(
        &sim,
        "test_partial_update_upsert1",
        &h,
        pu_fixture!("upsert.csv"),
    )
    .await;
    assert_eq!(status(&j), "fail", "{j}");
}

/// Strict partial update with max_filter_ratio 1: 3 rows, 1 loaded, the 2 new keys filtered → second `sql`; with
/// 0.5 the load fails, 2 of 3 filtered, the table unchanged (fourth `sql`). The suite also asserts the message
/// `[INTERNAL_ERROR]too many filtered rows`, the wording of that release; newer suites assert
/// `[DATA_QUALITY_ERROR]too many filtered rows` (test_partial_update.groovy below), which doris-sim gives.
#[tokio::test]
async fn partial_update_strict_mode_filters_new_keys() {
    let out = pu_fixture!("test_partial_update_strict_mode.out");
    for (ratio, ok, section) in [("1", true, 1), ("0.5", false, 3)] {
        let sim = upsert_table().await;
        let mut h = csv_partial("id,balance,last_access_time");
        h.push(("strict_mode", "true"));
        h.push(("max_filter_ratio", ratio));
        let j = load(
            &sim,
            "test_partial_update_upsert1",
            &h,
            pu_fixture!("upsert.csv"),
        )
        .await;
        assert_eq!(j["Status"], if ok { "Success" } else { "Fail" }, "{j}");
        assert_eq!(
            (&j["NumberTotalRows"], &j["NumberFilteredRows"]),
            (&3.into(), &2.into()),
            "{j}"
        );
        if ok {
            assert_eq!(j["NumberLoadedRows"], 1, "{j}");
        }
        assert_eq!(
            table_lines(&sim, "test_partial_update_upsert1", &[]).await,
            sorted(out_section(out, "sql", section))
        );
    }
}

// test_partial_update_new_key_policy.groovy @ 10b15bcf29ced162790a55dc7867fce037835885,
// test_partial_update_new_key_policy.out @ 29434cc48fdc097daffd65cec9eed4ed36e4e138 (stream load part; the table is
// seeded with `insert3`, the state the suite's INSERT statements leave), row_policy{1,2,3}.csv.
const PU_POLICY_OUT: &[u8] = pu_fixture!("test_partial_update_new_key_policy.out");

async fn policy_table(seed_section: &str) -> doris_sim::Sim {
    let sim = sim_for(
        "CREATE TABLE test_partial_update_new_key_policy (
            `k` BIGINT NOT NULL,
            `c1` int,
            `c2` int,
            `c3` int)
            UNIQUE KEY(`k`) DISTRIBUTED BY HASH(`k`) BUCKETS 1
            PROPERTIES(
                \"replication_num\" = \"1\",
                \"enable_unique_key_merge_on_write\" = \"true\");",
    )
    .await;
    seed(
        &sim,
        "test_partial_update_new_key_policy",
        &out_section(PU_POLICY_OUT, seed_section, 0),
    )
    .await;
    sim
}

#[tokio::test]
async fn partial_update_new_key_policy_append() {
    let sim = policy_table("insert3").await;
    let mut h = csv_partial("k,c3");
    h.push(("partial_update_new_key_behavior", "append"));
    let j = load(
        &sim,
        "test_partial_update_new_key_policy",
        &h,
        pu_fixture!("row_policy1.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_partial_update_new_key_policy", &[]).await,
        sorted(out_section(PU_POLICY_OUT, "stream_load_append", 0))
    );
}

#[tokio::test]
async fn partial_update_new_key_policy_error() {
    let sim = policy_table("stream_load_append").await;
    let mut h = csv_partial("k,c3");
    h.push(("partial_update_new_key_behavior", "error"));
    let j = load(
        &sim,
        "test_partial_update_new_key_policy",
        &h,
        pu_fixture!("row_policy2.csv"),
    )
    .await;
    assert_eq!(j["Status"], "Fail", "{j}");
    assert!(
        j["Message"].as_str().unwrap_or_default().contains(
            "[E-7003]Can't append new rows in partial update when partial_update_new_key_behavior is ERROR. Row with key=[13] is not in table."
        ),
        "{j}"
    );
    assert_eq!(
        table_lines(&sim, "test_partial_update_new_key_policy", &[]).await,
        sorted(out_section(PU_POLICY_OUT, "stream_load_error", 0))
    );
}

/// `partial_update_new_key_behavior` is ignored by a load that is not a partial update.
#[tokio::test]
async fn partial_update_new_key_policy_ignored_without_partial_columns() {
    let sim = policy_table("stream_load_error").await;
    let j = load(
        &sim,
        "test_partial_update_new_key_policy",
        &[
            ("column_separator", ","),
            ("format", "csv"),
            ("columns", "k,c1,c2,c3"),
            ("partial_columns", "false"),
            ("partial_update_new_key_behavior", "error"),
        ],
        pu_fixture!("row_policy3.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_partial_update_new_key_policy", &[]).await,
        sorted(out_section(PU_POLICY_OUT, "stream_load_ignore_property", 0))
    );
}

// test_partial_update.groovy @ 1b61247b5943592e365dc6928ec2e79602e9cd29, test_partial_update.out
// @ 23531e5b385bed956ef952c85f0aa4f6b65073f1, basic_with_duplicate.csv @ 434a6b73, basic_with_new_keys.csv
// @ d3c5b021, basic_invalid.csv @ d57c4f6c. (basic.csv is not in the index: the table is seeded with
// `select_default`; the basic_with_duplicate2.csv step is left out because the stored file does not give the
// `.out` values.)
const PU_OUT: &[u8] = pu_fixture!("test_partial_update.out");

async fn pu_table(section: &str, n: usize) -> doris_sim::Sim {
    let sim = sim_for(
        "CREATE TABLE test_primary_key_partial_update (
            `id` int(11) NOT NULL COMMENT \"用户 ID\",
            `name` varchar(65533) NOT NULL COMMENT \"用户姓名\",
            `score` int(11) NOT NULL COMMENT \"用户得分\",
            `test` int(11) NULL COMMENT \"null test\",
            `dft` int(11) DEFAULT \"4321\")
            UNIQUE KEY(`id`) DISTRIBUTED BY HASH(`id`) BUCKETS 1
            PROPERTIES(\"replication_num\" = \"1\", \"enable_unique_key_merge_on_write\" = \"true\")",
    )
    .await;
    seed(
        &sim,
        "test_primary_key_partial_update",
        &out_section(PU_OUT, section, n),
    )
    .await;
    sim
}

/// A key updated twice in one partial load: the later row wins.
#[tokio::test]
async fn partial_update_same_key_twice_in_one_load() {
    let sim = pu_table("select_default", 0).await;
    let j = load(
        &sim,
        "test_primary_key_partial_update",
        &csv_partial("id,score"),
        pu_fixture!("basic_with_duplicate.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_primary_key_partial_update", &[]).await,
        sorted(out_section(PU_OUT, "partial_update_in_one_stream_load", 0))
    );
}

/// New keys in a partial load get NULL / DEFAULT for the other columns; the same file as a whole-row load gives
/// the same rows.
#[tokio::test]
async fn partial_update_new_keys_then_row_update() {
    let sim = pu_table("partial_update_in_one_stream_load", 1).await;
    let t = "test_primary_key_partial_update";
    let j = load(
        &sim,
        t,
        &csv_partial("id,name,score"),
        pu_fixture!("basic_with_new_keys.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, t, &[]).await,
        sorted(out_section(PU_OUT, "partial_update_in_one_stream_load", 2))
    );
    let j = load(
        &sim,
        t,
        &[
            ("column_separator", ","),
            ("format", "csv"),
            ("partial_columns", "false"),
            ("columns", "id,name,score"),
        ],
        pu_fixture!("basic_with_new_keys.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, t, &[]).await,
        sorted(out_section(PU_OUT, "partial_update_in_one_stream_load", 3))
    );
}

/// Lines with too few columns are filtered; the load fails with `[DATA_QUALITY_ERROR]too many filtered rows`
/// (3 rows, 2 filtered) and the table is unchanged.
#[tokio::test]
async fn partial_update_invalid_lines_fail_the_load() {
    let sim = pu_table("partial_update_in_one_stream_load", 5).await;
    let t = "test_primary_key_partial_update";
    let j = load(
        &sim,
        t,
        &csv_partial("id,score"),
        pu_fixture!("basic_invalid.csv"),
    )
    .await;
    assert_eq!(j["Status"], "Fail", "{j}");
    assert!(
        j["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("[DATA_QUALITY_ERROR]too many filtered rows"),
        "{j}"
    );
    assert_eq!(
        (&j["NumberTotalRows"], &j["NumberFilteredRows"]),
        (&3.into(), &2.into()),
        "{j}"
    );
    assert_eq!(
        table_lines(&sim, t, &[]).await,
        sorted(out_section(PU_OUT, "partial_update_in_one_stream_load", 5))
    );
}

async fn pu_small_table() -> doris_sim::Sim {
    // `test_primary_key_partial_update_1` of the same suite, with its three INSERTed rows.
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_primary_key_partial_update_1 (
            `k1` int NOT NULL,
            `c1` int,
            `c2` int,
            `c3` int,
            `c4` int
            )UNIQUE KEY(k1)
        DISTRIBUTED BY HASH(k1) BUCKETS 1
        PROPERTIES (
            \"disable_auto_compaction\" = \"true\",
            \"replication_num\" = \"1\");",
    )
    .await;
    let j = load(
        &sim,
        "test_primary_key_partial_update_1",
        &[("column_separator", ",")],
        b"1,1,1,1,1\n2,2,2,2,2\n3,3,3,3,3\n",
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    sim
}

/// MERGE with `delete: c3=1` where c3 is not among the loaded columns → "unknown reference column in DELETE ON
/// clause:c3".
#[tokio::test]
async fn partial_update_delete_on_column_not_loaded_is_refused() {
    let sim = pu_small_table().await;
    let mut h = csv_partial("k1,c2");
    h.push(("merge_type", "MERGE"));
    h.push(("delete", "c3=1"));
    let j = load(&sim, "test_primary_key_partial_update_1", &h, b"1,99,1").await;
    assert_eq!(j["Status"], "Fail", "{j}");
    assert!(
        j["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown reference column in DELETE ON clause:c3"),
        "{j}"
    );
}

/// `where: c5=1` naming no column → "Unknown column 'c5'".
#[tokio::test]
async fn partial_update_where_on_unknown_column_is_refused() {
    let sim = pu_small_table().await;
    let mut h = csv_partial("k1,c4");
    h.push(("where", "c5=1"));
    let j = load(
        &sim,
        "test_primary_key_partial_update_1",
        &h,
        b"1,99\n2,88,",
    )
    .await;
    assert_eq!(j["Status"], "Fail", "{j}");
    assert!(
        j["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("Unknown column 'c5'"),
        "{j}"
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_csv_with_double_quotes.groovy @ 088ebfe81c4348e07de25ee7e9a5240c357a64dd
// expected: regression-test/data/load_p0/stream_load/test_csv_with_double_quotes.out @ 6171c1d5ae9b4caf0146c966e2bbd57468021559
// input: csv_with_double_quotes.csv @ df01007f (the version with the eight lines the `.out` shows)
// ------------------------------------------------------------------------------------------------------------------

const DQ_OUT: &[u8] = fixture!("test_csv_with_double_quotes.out");

async fn double_quotes_case(trim: Option<&str>, section: usize) {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_csv_with_double_quotes (
            `k1` int(20) NULL,
            `k2` bigint(20) NULL,
            `v1` tinyint(4)  NULL,
            `v2` string  NULL,
            `v3` date  NULL,
            `v4` datetime  NULL
        ) ENGINE=OLAP
        DUPLICATE KEY(`k1`, `k2`)
        COMMENT 'OLAP'
        DISTRIBUTED BY HASH(`k1`, `k2`) BUCKETS 3
        PROPERTIES (\"replication_allocation\" = \"tag.location.default: 1\");",
    )
    .await;
    let mut h = vec![("column_separator", ",")];
    if let Some(t) = trim {
        h.push(("trim_double_quotes", t));
    }
    let j = load(
        &sim,
        "test_csv_with_double_quotes",
        &h,
        fixture!("csv_with_double_quotes.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_csv_with_double_quotes", &[]).await,
        sorted(out_section(DQ_OUT, "sql", section))
    );
}

/// Without trim_double_quotes, quoted numbers and dates are not numbers or dates (NULL, not strict), quoted
/// strings keep their quotes.
#[tokio::test]
async fn csv_double_quotes_kept_without_trim() {
    double_quotes_case(None, 0).await;
}

#[tokio::test]
async fn csv_double_quotes_trimmed() {
    double_quotes_case(Some("true"), 1).await;
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_csv_special_seperator.groovy @ f0a5ac2393548ccc6489a0918e62b1073140f603
// expected: regression-test/data/load_p0/stream_load/test_csv_special_seperator.out @ 20d27527e834335f8badbe356c78ed52474da1c0
// input: special_seperator.csv @ 20d27527, first of its two records (and the `.out` row of that record)
// ------------------------------------------------------------------------------------------------------------------

/// Multi-byte separator `|@|`, line delimiter given as `|@|\n` (backslash-n in the header: a newline), enclose `"`
/// with escape `\`: only an escape before the enclose byte is dropped, `\\` and `\u…` inside the JSON text stay;
/// UTF-8 values; `""` is an empty string.
#[tokio::test]
async fn csv_special_separator_escape_and_multibyte_delimiters() {
    let sim = sim_for(
        "CREATE TABLE if not exists `test_csv_special_seperator` (
            `id` bigint(20) NOT NULL,
            `developerid` varchar(64) DEFAULT NULL COMMENT '',
            `epoiid` varchar(64) DEFAULT NULL COMMENT '',
            `orderjson` string COMMENT '',
            `addtime` datetime NOT NULL,
            `syn` tinyint(1) DEFAULT '0' COMMENT '',
            `shopid` varchar(16) DEFAULT NULL COMMENT '',
            `shopname` varchar(255) DEFAULT NULL COMMENT '',
            `orderid` varchar(32) DEFAULT NULL COMMENT '',
            `orderindex` varchar(16) DEFAULT NULL COMMENT '',
            `ordervid` varchar(32) DEFAULT NULL COMMENT '',
            `totalprice` varchar(8) DEFAULT NULL COMMENT '',
            `sn` string COMMENT '打印机',
            `printtype` int(1) DEFAULT NULL COMMENT '',
            `is_print` int(1) DEFAULT '0' COMMENT '',
            `is_cancel` tinyint(1) DEFAULT '0' COMMENT '',
            `p_data` string COMMENT '',
            `c_code` varchar(5) DEFAULT NULL COMMENT '',
            `c_data` string COMMENT '',
            `c_confirmtimes` int(2) DEFAULT '0' COMMENT ''
        )
        ENGINE=OLAP
        DUPLICATE KEY(`id`)
        COMMENT ''
        DISTRIBUTED BY HASH(`orderid`) BUCKETS 100
        PROPERTIES (
        \"replication_num\" = \"1\",
            \"compression\" = \"ZSTD\"
        );",
    )
    .await;
    let j = load(
        &sim,
        "test_csv_special_seperator",
        &[
            ("column_separator", "|@|"),
            ("line_delimiter", "|@|\\n"),
            ("trim_double_quotes", "true"),
            ("enclose", "\""),
            ("escape", "\\"),
            ("max_filter_ratio", "0"),
        ],
        fixture!("special_seperator_first_record.csv"),
    )
    .await;
    if status(&j) != "success" {
        let url = j["ErrorURL"].as_str().unwrap_or_default();
        let path = url
            .split_once("/api/")
            .map(|(_, p)| format!("/api/{p}"))
            .unwrap_or_default();
        let log = send(sim.be_addr(), "GET", &path, &[], b"").await.body;
        panic!("{j}\n{log}");
    }
    let expected = out_section(fixture!("test_csv_special_seperator.out"), "select1", 0);
    assert_eq!(
        table_lines(&sim, "test_csv_special_seperator", &[]).await,
        sorted(expected)
    );
}

// test_partial_update_delete_sign.groovy @ 05cfa1286554b1baad09dcd3d386248309a7152b (first table),
// test_partial_update_delete_sign.out @ 2c370a4e5e94f123922a84bad6ebebcfc3ed035a, delete_sign.csv @ 421df8b3.

/// A partial load of only the key and `__DORIS_DELETE_SIGN__` deletes those keys → `after_delete` (seeded with the
/// suite's INSERT, the first `sql` section).
#[tokio::test]
async fn partial_update_delete_sign_only() {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_partial_update_delete_sign1 (
            `k1` int NOT NULL,
            `c1` int,
            `c2` int,
            `c3` int,
            `c4` int
            )UNIQUE KEY(k1)
        DISTRIBUTED BY HASH(k1) BUCKETS 1
        PROPERTIES (
            \"enable_unique_key_merge_on_write\" = \"true\",
            \"disable_auto_compaction\" = \"true\",
            \"replication_num\" = \"1\");",
    )
    .await;
    let out = pu_fixture!("test_partial_update_delete_sign.out");
    let t = "test_partial_update_delete_sign1";
    seed(&sim, t, &out_section(out, "sql", 0)).await;
    let j = load(
        &sim,
        t,
        &csv_partial("k1,__DORIS_DELETE_SIGN__"),
        pu_fixture!("delete_sign.csv"),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, t, &[]).await,
        sorted(out_section(out, "after_delete", 0))
    );
}

// test_partial_update_seq_col_delete.groovy @ 0afe2ccc6a082b77077ac14dd8170e244d7dea0d,
// test_partial_update_seq_col_delete.out @ 15469e73ff5360443c5941b48682e2d2edb74e84, basic_with_seq.csv @ 27f6ab12.

/// `merge_type: DELETE` with partial columns and the sequence column, on keys already deleted (the state of
/// `partial_update_without_seq_hidden_columns`: delete sign 1, sequence 2023-01-01, loaded here with the delete
/// sign as a column): a delete with an older sequence leaves the tombstone, new keys are deleted too, nothing is
/// visible → `partial_update_with_seq` (empty).
#[tokio::test]
async fn partial_update_seq_col_delete_with_sequence() {
    let sim = sim_for(&PU_SEQ_TABLE.replace(
        "test_primary_key_partial_update_seq_col",
        "test_primary_key_partial_update_seq_col_delete",
    ))
    .await;
    let out = pu_fixture!("test_partial_update_seq_col_delete.out");
    let t = "test_primary_key_partial_update_seq_col_delete";
    // Hidden-column rows: id, name, score, test, dft, update_time, delete sign, version, sequence.
    let tombstones: Vec<String> = out_section(out, "partial_update_without_seq_hidden_columns", 0)
        .iter()
        .map(|l| l.split('\t').take(7).collect::<Vec<_>>().join("\t"))
        .collect();
    let j = load(
        &sim,
        t,
        &[(
            "columns",
            "id,name,score,test,dft,update_time,__DORIS_DELETE_SIGN__",
        )],
        tombstones.join("\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert!(table_lines(&sim, t, &[]).await.is_empty());
    let mut h = csv_partial("id,score,update_time");
    h.push(("merge_type", "DELETE"));
    let j = load(&sim, t, &h, pu_fixture!("basic_with_seq.csv")).await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, t, &[]).await,
        sorted(out_section(out, "partial_update_with_seq", 0))
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/data_model_p0/unique/test_sequence_column.groovy @ 1e82af2adaa652d53a53f0eba0e4fb6ef73d7456
// expected: regression-test/data/data_model_p0/unique/test_sequence_column.out @ aa24c44fc8cf2015dfc03a1f63532af533dbbfc8
// ------------------------------------------------------------------------------------------------------------------

/// One key three times in one batch with sequence values 5, 4, 3 (the suite's multi-row INSERT, sent here as one
/// load): the largest sequence wins, not the last row → `select1`.
#[tokio::test]
async fn unique_sequence_col_same_key_in_one_batch() {
    let sim = sim_for(
        "CREATE TABLE IF NOT EXISTS test_sequence_column (
            `user_id` bigint,
            `group_id` bigint,
            `id` bigint,
            `keyword` VARCHAR(128),
            INDEX idx_col1 (user_id) USING INVERTED
            ) ENGINE=OLAP
        UNIQUE KEY(user_id, group_id)
        DISTRIBUTED BY HASH (user_id) BUCKETS 1
        PROPERTIES(
                \"function_column.sequence_col\" = 'id',
                \"replication_num\" = \"1\"
                );",
    )
    .await;
    let j = load(
        &sim,
        "test_sequence_column",
        &[("column_separator", ",")],
        b"1,1,5,a\n1,1,4,a\n1,1,3,a\n",
    )
    .await;
    assert_eq!(status(&j), "success", "{j}");
    assert_eq!(
        table_lines(&sim, "test_sequence_column", &[]).await,
        sorted(out_section(
            fixture!("test_sequence_column.out"),
            "select1",
            0
        ))
    );
}

// ------------------------------------------------------------------------------------------------------------------
// regression-test/suites/load_p0/stream_load/test_stream_load_strict_mode_and_filter_ratio.groovy @ 8b5f7f81b02ec7592c54037c7482fb0a2d939a5f
// expected: regression-test/data/load_p0/stream_load/test_stream_load_strict_mode_and_filter_ratio.out @ 861b7102e5110c637d0d769d2e013e42c86fbbee
// inputs: test_decimal_overflow.csv @ a73eef81, test_null_number.csv @ 68000ce8, test_no_partition.csv @ 57607941
// Not ported: case 2 (its input test_not_number.csv is not in the index) and case 4 (PARTITION BY, refused).
// The suite asserts the 4.x behaviour (src/version.rs): the default profile; the older profile is checked against
// the same data where the releases differ.
// ------------------------------------------------------------------------------------------------------------------

const SMFR_OUT: &[u8] = fixture!("test_stream_load_strict_mode_and_filter_ratio.out");

const SMFR_DECIMAL: &str = "CREATE TABLE test_stream_load_strict_mode_and_filter_ratio
    (
        k00 DECIMALV3(10,0)
    )
    PROPERTIES (\"replication_num\" = \"1\");";
const SMFR_DECIMAL_NOT_NULL: &str =
    "CREATE TABLE IF NOT EXISTS test_stream_load_strict_mode_and_filter_ratio
    (
        k00 DECIMALV3(10,0) NOT NULL
    )
    PROPERTIES (\"replication_num\" = \"1\");";
const SMFR_CHAR: &str = "create table test_stream_load_strict_mode_and_filter_ratio(
          id int,
          name char(10)
        ) properties ('replication_num' = '1');";
const SMFR: &str = "test_stream_load_strict_mode_and_filter_ratio";

/// One case: load `body` with `strict_mode` and `max_filter_ratio`; the reply's status and
/// (total, loaded, filtered) counters, and the table afterwards.
async fn smfr_case(
    sim: &doris_sim::Sim,
    body: &[u8],
    strict: &str,
    ratio: &str,
) -> (String, (u64, u64, u64), Vec<String>) {
    let j = load(
        sim,
        SMFR,
        &[
            ("column_separator", "|"),
            ("strict_mode", strict),
            ("max_filter_ratio", ratio),
        ],
        body,
    )
    .await;
    let n = |f: &str| j[f].as_u64().unwrap_or(u64::MAX);
    if status(&j) == "fail" {
        assert!(
            j["Message"]
                .as_str()
                .unwrap_or_default()
                .contains("too many filtered rows"),
            "{j}"
        );
        assert!(j["ErrorURL"].is_string(), "{j}");
    }
    (
        status(&j),
        (
            n("NumberTotalRows"),
            n("NumberLoadedRows"),
            n("NumberFilteredRows"),
        ),
        table_lines(sim, SMFR, &[]).await,
    )
}

/// 1.1–1.3 DECIMAL(10,0) overflow: outside strict mode the three 11-digit values load as NULL
/// (`sql_number_overflow_non_strict`); in strict mode they are filtered (0.3 passes, 0.2 fails with
/// `NumberLoadedRows` 0).
#[tokio::test]
async fn strict_mode_and_filter_ratio_decimal_overflow() {
    let body = fixture!("test_decimal_overflow.csv");
    for (strict, ratio, want_status, counts, section) in [
        (
            "false",
            "0",
            "success",
            (10, 10, 0),
            "sql_number_overflow_non_strict",
        ),
        (
            "true",
            "0.3",
            "success",
            (10, 7, 3),
            "sql_number_overflow_strict0",
        ),
        (
            "true",
            "0.2",
            "fail",
            (10, 0, 3),
            "sql_number_overflow_strict1",
        ),
    ] {
        let sim = sim_for(SMFR_DECIMAL).await;
        let (st, got, table) = smfr_case(&sim, body, strict, ratio).await;
        assert_eq!(
            (st.as_str(), got),
            (want_status, counts),
            "{strict} {ratio}"
        );
        assert_eq!(
            table,
            sorted(out_section(SMFR_OUT, section, 0)),
            "{section}"
        );
    }
}

/// 3.1–3.4 `\N` into a NOT NULL DECIMAL column is filtered in both modes; a failed load reports
/// `NumberLoadedRows` 0.
#[tokio::test]
async fn strict_mode_and_filter_ratio_null_to_not_null() {
    let body = fixture!("test_null_number.csv");
    for (strict, ratio, want_status, counts, section) in [
        (
            "false",
            "0.2",
            "fail",
            (10, 0, 3),
            "sql_null_to_not_null_non_strict0",
        ),
        (
            "false",
            "0.3",
            "success",
            (10, 7, 3),
            "sql_null_to_not_null_non_strict1",
        ),
        (
            "true",
            "0.3",
            "success",
            (10, 7, 3),
            "sql_null_to_not_null_strict0",
        ),
        (
            "true",
            "0.2",
            "fail",
            (10, 0, 3),
            "sql_null_to_not_null_strict1",
        ),
    ] {
        let sim = sim_for(SMFR_DECIMAL_NOT_NULL).await;
        let (st, got, table) = smfr_case(&sim, body, strict, ratio).await;
        assert_eq!(
            (st.as_str(), got),
            (want_status, counts),
            "{strict} {ratio}"
        );
        assert_eq!(
            table,
            sorted(out_section(SMFR_OUT, section, 0)),
            "{section}"
        );
    }
}

/// 5.1–5.3 strings longer than CHAR(10): outside strict mode they are cut to 10 bytes and every row loads
/// (`sql_string_exceed_len_non_strict0`); in strict mode the three rows are filtered.
#[tokio::test]
async fn strict_mode_and_filter_ratio_string_exceeds_length() {
    let body = fixture!("test_no_partition.csv");
    for (strict, ratio, want_status, counts, section) in [
        (
            "false",
            "0",
            "success",
            (10, 10, 0),
            "sql_string_exceed_len_non_strict0",
        ),
        (
            "true",
            "0.2",
            "fail",
            (10, 0, 3),
            "sql_string_exceed_len_strict0",
        ),
        (
            "true",
            "0.3",
            "success",
            (10, 7, 3),
            "sql_string_exceed_len_strict1",
        ),
    ] {
        let sim = sim_for(SMFR_CHAR).await;
        let (st, got, table) = smfr_case(&sim, body, strict, ratio).await;
        assert_eq!(
            (st.as_str(), got),
            (want_status, counts),
            "{strict} {ratio}"
        );
        assert_eq!(
            table,
            sorted(out_section(SMFR_OUT, section, 0)),
            "{section}"
        );
    }
}

/// The same inputs with a pre-4.x profile: out-of-range and over-long values are filtered outside strict mode too,
/// and a failed load reports the rows that would have loaded (test_stream_load.groovy @ 17e3a183 asserts that
/// count; the filtering is the sim's pre-4.x behaviour, not confirmed against a 2.1–3.1 BE).
#[tokio::test]
async fn strict_mode_and_filter_ratio_before_4_0() {
    for v in [DorisVersion::V2_1, DorisVersion::V3_0, DorisVersion::V3_1] {
        let sim = sim_for_version(v, SMFR_DECIMAL).await;
        let (st, got, table) =
            smfr_case(&sim, fixture!("test_decimal_overflow.csv"), "false", "0").await;
        assert_eq!((st.as_str(), got), ("fail", (10, 7, 3)), "{v}");
        assert!(table.is_empty(), "{v}: {table:?}");
        let sim = sim_for_version(v, SMFR_CHAR).await;
        let (st, got, table) =
            smfr_case(&sim, fixture!("test_no_partition.csv"), "false", "0.3").await;
        assert_eq!((st.as_str(), got), ("success", (10, 7, 3)), "{v}");
        assert_eq!(
            table,
            sorted(out_section(SMFR_OUT, "sql_string_exceed_len_strict1", 0)),
            "{v}"
        );
    }
}

// ------------------------------------------------------------------------------------------------------------------
// JSON read line by line by default from 3.1: apache/doris be/src/http/action/stream_load.cpp (`_process_put`
// sets read_json_by_line when neither it nor strip_outer_array is given; PR #55861, branch-3.1 659a502a) and
// regression-test/suites/load_p0/stream_load/test_json_load_default_behavior.groovy @ 139fddd2c137c3658e8f18a74395d6246e610908
// ------------------------------------------------------------------------------------------------------------------

const DEFAULT_BEHAVIOR_TABLE: &str = "CREATE TABLE IF NOT EXISTS test_table2 (
                a INT,
                b INT
            ) ENGINE=OLAP
            DUPLICATE KEY(a)
            DISTRIBUTED BY RANDOM BUCKETS 10
            PROPERTIES (
                \"replication_allocation\" = \"tag.location.default: 1\"
            );";

/// Case 2: four objects on four lines, neither header → 4 rows, in every profile. Two objects on one line tell
/// the profiles apart: before 3.1 the body is a sequence of documents (2 rows); from 3.1 it is read by line and
/// the line fails the load (`Multiple JSON objects in a single line`, as with an explicit `read_json_by_line`).
#[tokio::test]
async fn json_default_behavior_by_line_from_3_1() {
    let by_line = b"{\"a\": 1, \"b\": 11}\n{\"a\": 2, \"b\": 12}\n{\"a\": 3, \"b\": 13}\n{\"a\": 4, \"b\": 14}\n";
    let one_line = b"{\"a\": 1, \"b\": 11} {\"a\": 2, \"b\": 12}\n";
    for v in DorisVersion::ALL {
        let sim = sim_for_version(v, DEFAULT_BEHAVIOR_TABLE).await;
        let h = [("format", "json"), ("columns", "a,b")];
        let j = load(&sim, "test_table2", &h, by_line).await;
        assert_eq!(
            (status(&j).as_str(), &j["NumberLoadedRows"]),
            ("success", &4.into()),
            "{v}: {j}"
        );
        let j = load(&sim, "test_table2", &h, one_line).await;
        if v.json_by_line_by_default() {
            assert_eq!(status(&j), "fail", "{v}: {j}");
            assert!(
                j["Message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Multiple JSON objects in a single line"),
                "{v}: {j}"
            );
        } else {
            assert_eq!(
                (status(&j).as_str(), &j["NumberLoadedRows"]),
                ("success", &2.into()),
                "{v}: {j}"
            );
        }
    }
}
