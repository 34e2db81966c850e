//! Schema fit: the merge query's result columns (names and PostgreSQL types from the prepared statement's
//! description) against the Doris table as the FE's query port describes it (`DESC`, `SHOW CREATE TABLE`).
//!
//! Table lines (subject `schema`): the key is `merge.key_column` alone, the model is `UNIQUE KEY`, the sequence
//! column is `doris.sequence_column` and wide enough for a snapshot version. Column lines (subject
//! `schema.<column>`): a merge column Doris lacks, a Doris column the query never writes, a type that cannot hold
//! the values ([`crate::schema::fit`]). Each says what to change; a summary line counts the columns that fit.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::line;
use crate::check::report::{CheckLine, Outcome};
use crate::config::Config;
use crate::error::error_chain;
use crate::schema::ddl::describe_merge_query;
use crate::schema::{doris_type_for, fit, DorisType, Fit, PgColumn};
use crate::sink::doris::DELETE_SIGN_COLUMN;
use crate::verify::doris::{query_port_opts, table_name};

/// One column of `DESC`.
struct DorisColumn {
    name: String,
    type_text: String,
    ty: DorisType,
    nullable: bool,
    key: bool,
    has_default: bool,
}

/// What `SHOW CREATE TABLE` says about the model and the sequence column.
struct TableShape {
    /// `UNIQUE`, `DUPLICATE`, `AGGREGATE` (or empty when not found).
    model: String,
    merge_on_write: Option<bool>,
    sequence_col: Option<String>,
    sequence_type: Option<String>,
}

pub(super) async fn check_schema(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let table = table_name(config);
    let pg = match tokio::time::timeout(timeout, describe_merge_query(config)).await {
        Ok(Ok(columns)) => columns,
        Ok(Err(e)) => {
            return vec![line(
                Outcome::Skip,
                "schema",
                format!(
                    "the merge query's columns are not compared with {table}: {}",
                    error_chain(&e)
                ),
            )]
        }
        Err(_) => {
            return vec![line(
                Outcome::Skip,
                "schema",
                format!("the merge query's columns are not compared with {table}: PostgreSQL did not answer in time"),
            )]
        }
    };
    let (opts, where_) = match query_port_opts(config) {
        Ok(o) => o,
        Err(e) => return vec![line(Outcome::Warn, "doris.query_host", e.to_string())],
    };
    let conn = tokio::time::timeout(timeout, mysql_async::Conn::new(opts)).await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        other => {
            let why = match other {
                Ok(Err(e)) => error_chain(&e),
                _ => "no answer in time".to_string(),
            };
            return vec![line(
                Outcome::Warn,
                "doris.query_port",
                format!(
                    "cannot connect to the FE query port {where_} as {:?} ({why}): the table's schema is not \
                     compared with the merge query (and `cdc2doris verify` reads there); check doris.query_port and \
                     doris.query_host",
                    config.file.doris.user
                ),
            )];
        }
    };
    let lines = match tokio::time::timeout(timeout, read_table(&mut conn, &table)).await {
        Ok(Ok((columns, shape))) => compare(config, &table, &pg, &columns, &shape),
        Ok(Err(e)) => vec![line(
            Outcome::Fail,
            "schema",
            format!(
                "cannot describe {table} over the query port {where_} ({e}); create it (`cdc2doris ddl` prints a \
                 CREATE TABLE for the merge query) or fix doris.database / doris.table"
            ),
        )],
        Err(_) => vec![line(
            Outcome::Warn,
            "schema",
            format!("{table} not compared: DESC got no answer in time"),
        )],
    };
    let _ = conn.disconnect().await;
    lines
}

async fn read_table(
    conn: &mut mysql_async::Conn,
    table: &str,
) -> Result<(Vec<DorisColumn>, TableShape), mysql_async::Error> {
    let desc: Vec<mysql_async::Row> = conn.query(format!("DESC {table}")).await?;
    let mut columns = Vec::with_capacity(desc.len());
    for mut row in desc {
        let text = |row: &mut mysql_async::Row, i: usize| -> Option<String> {
            row.take::<Option<String>, _>(i).flatten()
        };
        let (Some(name), Some(type_text)) = (text(&mut row, 0), text(&mut row, 1)) else {
            continue;
        };
        let nullable = text(&mut row, 2).is_none_or(|n| n.eq_ignore_ascii_case("yes"));
        let key = text(&mut row, 3).is_some_and(|k| k.eq_ignore_ascii_case("true"));
        let has_default = text(&mut row, 4).is_some();
        columns.push(DorisColumn {
            ty: DorisType::parse(&type_text),
            name,
            type_text,
            nullable,
            key,
            has_default,
        });
    }
    let create: Vec<mysql_async::Row> = conn.query(format!("SHOW CREATE TABLE {table}")).await?;
    let text = create
        .into_iter()
        .next()
        .and_then(|mut r| r.take::<Option<String>, _>(1).flatten())
        .unwrap_or_default();
    Ok((columns, shape_of(&text)))
}

/// The model and the sequence properties out of `SHOW CREATE TABLE`'s text.
fn shape_of(create: &str) -> TableShape {
    let upper = create.to_ascii_uppercase();
    let model = ["UNIQUE KEY", "DUPLICATE KEY", "AGGREGATE KEY"]
        .iter()
        .find(|m| upper.contains(&format!("\n{m}(")) || upper.contains(&format!(" {m}(")))
        .map(|m| m.trim_end_matches(" KEY").to_owned())
        .unwrap_or_default();
    TableShape {
        model,
        merge_on_write: property(create, "enable_unique_key_merge_on_write")
            .map(|v| v.eq_ignore_ascii_case("true")),
        sequence_col: property(create, "function_column.sequence_col"),
        sequence_type: property(create, "function_column.sequence_type"),
    }
}

/// The value of `"name" = "value"` in a PROPERTIES list.
fn property(create: &str, name: &str) -> Option<String> {
    let at = create.find(&format!("\"{name}\""))? + name.len() + 2;
    let rest = create[at..].trim_start().strip_prefix('=')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    rest.find('"').map(|end| rest[..end].to_owned())
}

fn compare(
    config: &Config,
    table: &str,
    pg: &[PgColumn],
    doris: &[DorisColumn],
    shape: &TableShape,
) -> Vec<CheckLine> {
    let key = &config.file.merge.key_column;
    let seq = &config.file.doris.sequence_column;
    let recreate =
        "recreate it (`cdc2doris ddl` prints a CREATE TABLE for the merge query), then backfill";
    let mut lines = Vec::new();
    let mut table_ok = true;
    let mut fail = |lines: &mut Vec<CheckLine>, subject: &str, detail: String| {
        table_ok = false;
        lines.push(line(Outcome::Fail, subject, detail));
    };
    // The model: one row per key, deletes applied.
    match shape.model.as_str() {
        "UNIQUE" => {}
        "" => lines.push(line(
            Outcome::Warn,
            "schema",
            format!("the key model of {table} is not known (SHOW CREATE TABLE names none); it must be UNIQUE KEY({key})"),
        )),
        other => fail(
            &mut lines,
            "schema",
            format!(
                "{table} is a {other} KEY table: {}; a UNIQUE KEY({key}) table keeps one row per key; {recreate}",
                if other == "DUPLICATE" {
                    "every load adds rows and deletes are not applied"
                } else {
                    "loads are aggregated instead of replacing the row, and deletes are not applied"
                }
            ),
        ),
    }
    // The key: merge.key_column, alone.
    let keys: Vec<&str> = doris
        .iter()
        .filter(|c| c.key)
        .map(|c| c.name.as_str())
        .collect();
    if !doris.iter().any(|c| &c.name == key) {
        fail(
            &mut lines,
            "schema",
            format!("{table} has no column {key:?} (merge.key_column); {recreate}, or fix merge.key_column"),
        );
    } else if keys != [key.as_str()] {
        fail(
            &mut lines,
            "schema",
            format!(
                "the key of {table} is ({}), not ({key}) (merge.key_column): rows are not replaced per {key}; {recreate}",
                keys.join(", ")
            ),
        );
    }
    // The sequence column: Doris keeps the row from the newest read.
    match (&shape.sequence_col, &shape.sequence_type) {
        (Some(col), _) if col == seq => {
            if let Some(c) = doris.iter().find(|c| &c.name == seq) {
                if !matches!(c.ty, DorisType::Int(64) | DorisType::Int(128)) {
                    fail(
                        &mut lines,
                        "schema",
                        format!(
                            "the sequence column {seq:?} is {}: snapshot versions are 64-bit and do not fit; make it \
                             BIGINT ({recreate})",
                            c.type_text
                        ),
                    );
                }
            }
        }
        (Some(col), _) => fail(
            &mut lines,
            "doris.sequence_column",
            format!(
                "{table}'s sequence column is {col:?} but doris.sequence_column is {seq:?}: set doris.sequence_column \
                 = {col:?}"
            ),
        ),
        (None, Some(ty)) => fail(
            &mut lines,
            "schema",
            format!(
                "{table} has a hidden sequence column (function_column.sequence_type = {ty:?}), but cdc2doris loads \
                 the version into a column {seq:?}: add {seq} BIGINT NOT NULL with \"function_column.sequence_col\" \
                 = {seq:?}; {recreate}"
            ),
        ),
        (None, None) if shape.model == "UNIQUE" => fail(
            &mut lines,
            "schema",
            format!(
                "{table} has no sequence column: a load from an older read can overwrite a newer row; add {seq} BIGINT \
                 NOT NULL with \"function_column.sequence_col\" = {seq:?}; {recreate}"
            ),
        ),
        (None, None) => {}
    }
    if shape.model == "UNIQUE" && shape.merge_on_write == Some(false) {
        lines.push(line(
            Outcome::Warn,
            "schema",
            format!(
                "{table} is merge-on-read (enable_unique_key_merge_on_write = false): correct, but queries merge \
                 versions as they read; merge-on-write is faster to query"
            ),
        ));
    }
    if table_ok {
        lines.insert(
            0,
            line(
                Outcome::Pass,
                "schema",
                format!("{table} is UNIQUE KEY({key}) with sequence column {seq:?}"),
            ),
        );
    }
    // The columns, both ways.
    let written: Vec<&PgColumn> = pg
        .iter()
        .filter(|c| &c.name != seq && c.name != DELETE_SIGN_COLUMN)
        .collect();
    let mut fitting = 0;
    for c in &written {
        let subject = format!("schema.{}", c.name);
        let Some(d) = doris.iter().find(|d| d.name == c.name) else {
            lines.push(line(
                Outcome::Fail,
                subject,
                format!(
                    "the merge query returns {:?} but {table} has no such column, so its values are not stored: \
                     ALTER TABLE {table} ADD COLUMN `{}` {}, or drop it from the query",
                    c.name,
                    c.name,
                    doris_type_for(&c.kind).0.sql()
                ),
            ));
            continue;
        };
        match fit(c, &d.ty) {
            Fit::Holds => fitting += 1,
            Fit::Risky(why) => lines.push(line(Outcome::Warn, subject, why)),
            Fit::Wrong(why) => lines.push(line(Outcome::Fail, subject, why)),
        }
    }
    for d in doris {
        if d.name == *seq || d.name == *key || written.iter().any(|c| c.name == d.name) {
            continue;
        }
        let subject = format!("schema.{}", d.name);
        if !d.nullable && !d.has_default {
            lines.push(line(
                Outcome::Fail,
                subject,
                format!(
                    "{table} has a NOT NULL column {:?} without a default that the merge query does not return: \
                     every load is refused; add it to the query, or ALTER TABLE {table} DROP COLUMN `{}`",
                    d.name, d.name
                ),
            ));
        } else {
            lines.push(line(
                Outcome::Warn,
                subject,
                format!(
                    "{table} has a column {:?} that the merge query does not return: it is never written (stays {}); \
                     add it to the query, or drop it",
                    d.name,
                    if d.has_default { "at its default" } else { "NULL" }
                ),
            ));
        }
    }
    if fitting == written.len() {
        lines.push(line(
            Outcome::Pass,
            "schema.columns",
            format!("the merge query's {fitting} column(s) are columns of {table} that hold their values"),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_model_from_show_create() {
        let text = "CREATE TABLE `t` (\n  `k` BIGINT NOT NULL\n) ENGINE=OLAP\nUNIQUE KEY(`k`)\nDISTRIBUTED BY \
                    HASH(`k`) BUCKETS 8\nPROPERTIES (\n\"enable_unique_key_merge_on_write\" = \"true\",\n\
                    \"function_column.sequence_col\" = \"v\"\n);";
        let shape = shape_of(text);
        assert_eq!(shape.model, "UNIQUE");
        assert_eq!(shape.merge_on_write, Some(true));
        assert_eq!(shape.sequence_col.as_deref(), Some("v"));
        assert_eq!(shape.sequence_type, None);
        assert_eq!(shape_of("...\nDUPLICATE KEY(`k`)\n").model, "DUPLICATE");
    }
}
