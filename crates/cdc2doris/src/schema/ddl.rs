//! `cdc2doris ddl --config F`: a `CREATE TABLE` for Doris derived from the merge query's result columns (their
//! PostgreSQL types from the prepared statement's description), ready to review and run over the FE's MySQL port.
//!
//! The table is what the service needs: a `UNIQUE KEY` table (merge-on-write) keyed by `merge.key_column` (first,
//! `NOT NULL`), every other column nullable (a delete row carries only the key and the sequence column), and
//! `doris.sequence_column` as a `BIGINT NOT NULL` sequence column, so Doris keeps the row from the newest read.

use std::path::PathBuf;

use tokio_postgres::types::Type;

use super::{doris_key_type_for, doris_type_for, PgColumn};
use crate::config::Config;
use crate::keys::KeyType;
use crate::sink::doris::DELETE_SIGN_COLUMN;

/// Arguments of `cdc2doris ddl`.
#[derive(Debug, clap::Args)]
pub struct DdlArgs {
    /// The configuration file (the same as `run`'s; its PostgreSQL prepares the merge query, nothing else is used).
    #[arg(long, short, env = "CDC2DORIS_CONFIG")]
    pub config: PathBuf,
}

/// Why the merge query could not be described.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("cannot set up the PostgreSQL pool")]
    Pool(#[source] crate::merge::pool::PoolSetupError),
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] deadpool_postgres::PoolError),
    #[error("the merge query (merge.query_file) does not prepare with $1 as {key_array}")]
    Prepare {
        key_array: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "merge.key_column {key_column:?} is not an output column of the merge query (it returns {columns}); set \
         merge.key_column or add the column to the query"
    )]
    NoKeyColumn { key_column: String, columns: String },
}

/// The `$1` type the service binds.
pub fn key_array_type(key_type: KeyType) -> Type {
    match key_type {
        KeyType::Integer => Type::INT8_ARRAY,
        KeyType::String => Type::TEXT_ARRAY,
    }
}

/// The merge query's output columns: prepared (not run) on a connection of the service's pool.
pub async fn describe_merge_query(config: &Config) -> Result<Vec<PgColumn>, DescribeError> {
    let pool =
        crate::merge::pool::pool(&config.file.postgres, config.postgres_password.as_ref(), 0)
            .map_err(DescribeError::Pool)?;
    let client = pool.get().await.map_err(DescribeError::Connect)?;
    let key_type = config.file.merge.key_type;
    let statement = client
        .prepare_typed(
            crate::merge::postgres::trim_query(&config.merge_query),
            &[key_array_type(key_type)],
        )
        .await
        .map_err(|source| DescribeError::Prepare {
            key_array: match key_type {
                KeyType::Integer => "bigint[]",
                KeyType::String => "text[]",
            },
            source,
        })?;
    let columns: Vec<PgColumn> = statement
        .columns()
        .iter()
        .map(PgColumn::from_column)
        .collect();
    let key_column = &config.file.merge.key_column;
    if !columns.iter().any(|c| &c.name == key_column) {
        return Err(DescribeError::NoKeyColumn {
            key_column: key_column.clone(),
            columns: columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(columns)
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The `CREATE DATABASE` and `CREATE TABLE` statements for the merge query's `columns`.
pub fn render(
    database: &str,
    table: &str,
    key_column: &str,
    sequence_column: &str,
    query_file: &str,
    columns: &[PgColumn],
) -> String {
    // The key first (Doris's key columns are a prefix of the schema); the columns cdc2doris adds are skipped.
    let ordered = columns
        .iter()
        .filter(|c| c.name == key_column)
        .take(1)
        .chain(columns.iter().filter(|c| {
            c.name != key_column && c.name != sequence_column && c.name != DELETE_SIGN_COLUMN
        }));
    let mut lines: Vec<(String, Option<String>)> = Vec::new();
    for c in ordered {
        let is_key = c.name == key_column;
        let (ty, note) = if is_key {
            doris_key_type_for(&c.kind)
        } else {
            doris_type_for(&c.kind)
        };
        let null = if is_key { " NOT NULL" } else { "" };
        let note = note.map(|n| format!("{} {}: {n}", c.name, super::pg_type_text(c)));
        lines.push((format!("    {} {}{null}", quote(&c.name), ty.sql()), note));
    }
    lines.push((
        format!("    {} BIGINT NOT NULL", quote(sequence_column)),
        Some("the snapshot version each row was read in (cdc2doris writes it)".into()),
    ));
    let width = lines.iter().map(|(l, _)| l.len() + 1).max().unwrap_or(0);
    let mut out = format!(
        "-- Doris table for the merge query {query_file}, from its result columns (cdc2doris ddl).\n\
         -- Review the types (docs/types.md), the bucket count and the replication before running it.\n\
         CREATE DATABASE IF NOT EXISTS {db};\n\n\
         CREATE TABLE IF NOT EXISTS {db}.{table} (\n",
        db = quote(database),
        table = quote(table),
    );
    let last = lines.len().saturating_sub(1);
    for (i, (line, note)) in lines.iter().enumerate() {
        let line = if i < last {
            format!("{line},")
        } else {
            line.clone()
        };
        match note {
            Some(n) => out.push_str(&format!("{line:<width$} -- {n}\n")),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    out.push_str(&format!(
        ")\nUNIQUE KEY({key})\nDISTRIBUTED BY HASH({key}) BUCKETS AUTO\nPROPERTIES (\n    \
         \"enable_unique_key_merge_on_write\" = \"true\",\n    \
         \"function_column.sequence_col\" = \"{seq}\"\n);\n",
        key = quote(key_column),
        seq = sequence_column.replace('"', "\\\""),
    ));
    out
}

/// `cdc2doris ddl`: prints the statements; exit 0, 1 when the merge query cannot be described, 2 for a bad config.
pub fn run(args: &DdlArgs) -> i32 {
    let config = match crate::config::load_for_command(&args.config) {
        Ok(c) => c,
        Err(status) => return status,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cdc2doris: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(describe_merge_query(&config)) {
        Ok(columns) => {
            let file = &config.file;
            print!(
                "{}",
                render(
                    &file.doris.database,
                    &file.doris.table,
                    &file.merge.key_column,
                    &file.doris.sequence_column,
                    &file.merge.query_file.display().to_string(),
                    &columns,
                )
            );
            0
        }
        Err(e) => {
            eprintln!("cdc2doris ddl: {}", crate::error::error_chain(&e));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PgKind;

    fn col(name: &str, kind: PgKind) -> PgColumn {
        PgColumn {
            name: name.into(),
            type_name: "numeric".into(),
            kind,
        }
    }

    #[test]
    fn key_first_sequence_last_notes_as_comments() {
        let text = render(
            "db",
            "t",
            "id",
            "v",
            "merge.sql",
            &[
                col("amount", PgKind::Numeric(None)),
                col("id", PgKind::Int(64)),
                col("v", PgKind::Int(64)),
                col("name", PgKind::Text(Some(10))),
            ],
        );
        let body: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("CREATE TABLE"))
            .collect();
        assert_eq!(body[1], "    `id` BIGINT NOT NULL,");
        assert!(body[2].starts_with("    `amount` DECIMAL(38,9),"), "{text}");
        assert!(body[2].contains("-- amount numeric: numeric without a declared precision"));
        assert_eq!(body[3], "    `name` VARCHAR(40),");
        assert!(body[4].starts_with("    `v` BIGINT NOT NULL "), "{text}");
        assert!(text.contains("UNIQUE KEY(`id`)\nDISTRIBUTED BY HASH(`id`) BUCKETS AUTO"));
        assert!(text.contains("\"function_column.sequence_col\" = \"v\""));
    }
}
