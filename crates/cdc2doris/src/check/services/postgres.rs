//! PostgreSQL: connect as the service would; the merge query and the resolve queries prepare with `$1` typed as the
//! service binds it; the merge output holds `merge.key_column`; each captured table's replica identity lets a delete
//! yield its key.

use std::time::Duration;

use tokio_postgres::types::Type;

use super::{line, password_source};
use crate::check::report::{CheckLine, Outcome};
use crate::config::{Config, TlsMode};
use crate::decode::Format;
use crate::error::error_chain;
use crate::keys::{KeyType, TableMatch};
use crate::merge::resolve::Resolver;
use crate::merge::tls::{tls_error, PgTls, TlsError, Verification};
use crate::merge::{MergeError, MergeQuery};

pub(super) async fn check_postgres(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let Some(client) = connect_postgres(config, timeout, &mut lines).await else {
        lines.push(line(
            Outcome::Skip,
            "postgres",
            "merge query, resolve queries and replica identities not checked: no PostgreSQL connection",
        ));
        return lines;
    };
    check_merge_query(config, &client, timeout, &mut lines).await;
    check_resolve_queries(config, &client, timeout, &mut lines).await;
    check_replica_identities(config, &client, timeout, &mut lines).await;
    check_transaction_ids(config, &mut lines);
    lines
}

/// Names the rules whose events carry no PostgreSQL transaction id: for those the merge cannot wait until a change is
/// visible (docs/operations.md, Guarantees).
fn check_transaction_ids(config: &Config, lines: &mut Vec<CheckLine>) {
    for (i, rule) in config.file.keys.rules.iter().enumerate() {
        let detail = match rule.format {
            Format::Maxwell | Format::Canal => format!(
                "topic {:?} ({}): events carry no PostgreSQL transaction id, so a change read before its transaction \
                 is visible cannot be waited for (see docs/operations.md, Guarantees); use Debezium where that matters",
                rule.topic,
                rule.format.as_str()
            ),
            Format::DebeziumUnwrapped => format!(
                "topic {:?} (unwrapped): the merge waits for a change's transaction only when records carry `__txId`; \
                 add txId to the ExtractNewRecordState transform's add.fields",
                rule.topic
            ),
            Format::Debezium | Format::Auto => continue,
        };
        lines.push(line(
            Outcome::Warn,
            format!("keys.rules[{i}].format"),
            detail,
        ));
    }
}

/// Awaits `fut` for at most `timeout`; `None` when it took longer.
async fn bounded<F: std::future::Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    tokio::time::timeout(timeout, fut).await.ok()
}

/// Connects through the pool the service builds ([`crate::merge::pool`]): same URL, password,
/// `connect_timeout`, `statement_timeout` and TLS. The line says whether the session runs over TLS, as the server sees
/// it (`pg_stat_ssl`), and what was verified.
async fn connect_postgres(
    config: &Config,
    timeout: Duration,
    lines: &mut Vec<CheckLine>,
) -> Option<deadpool_postgres::Object> {
    let pg = &config.file.postgres;
    let target = match pg.url.parse::<tokio_postgres::Config>() {
        Ok(c) => describe_pg_target(&c),
        Err(e) => {
            lines.push(line(
                Outcome::Fail,
                "postgres.url",
                format!("cannot be parsed ({e})"),
            ));
            return None;
        }
    };
    // The TLS set-up on its own first, so that a CA file problem is blamed on the CA file.
    if let Err(e) = PgTls::new(pg.tls_mode, pg.tls_ca_file.as_deref()) {
        let subject = match e {
            TlsError::NoSystemRoots { .. } | TlsError::Setup(_) => "postgres.tls_mode",
            _ => "postgres.tls_ca_file",
        };
        lines.push(line(Outcome::Fail, subject, e.to_string()));
        return None;
    }
    let pool = match crate::merge::pool::pool(pg, config.postgres_password.as_ref(), 0) {
        Ok(pool) => pool,
        Err(e) => {
            lines.push(line(Outcome::Fail, "postgres.url", e.to_string()));
            return None;
        }
    };
    let source = password_source(pg.password_env.as_deref(), pg.password_file.as_deref());
    // connect_timeout bounds each address tried; the outer bound covers a server that accepts the TCP connection
    // but never answers the startup.
    let client = match bounded(pg.connect_timeout + timeout, pool.get()).await {
        Some(Ok(client)) => client,
        Some(Err(e)) => {
            if let Some(tls) = match &e {
                deadpool_postgres::PoolError::Backend(e) => tls_error(e),
                _ => None,
            } {
                let subject = match tls {
                    TlsError::UnknownCa { .. } => "postgres.tls_ca_file",
                    TlsError::HostMismatch { .. } | TlsError::InvalidHostName { .. } => {
                        "postgres.url"
                    }
                    _ => "postgres.tls_mode",
                };
                lines.push(line(
                    Outcome::Fail,
                    subject,
                    format!("cannot connect to {target}: {tls}"),
                ));
                return None;
            }
            let why = match &e {
                deadpool_postgres::PoolError::Backend(e) => describe_pg_error(e),
                other => error_chain(other),
            };
            // tokio-postgres' words when the server answers the SSLRequest with "no".
            if pg.tls_mode == TlsMode::Require && why.contains("server does not support TLS") {
                lines.push(line(
                    Outcome::Fail,
                    "postgres.tls_mode",
                    format!(
                        "\"require\": {target} does not offer TLS; turn on ssl in the server's configuration, or set \
                         tls_mode = \"prefer\" on a network you trust"
                    ),
                ));
                return None;
            }
            lines.push(line(
                Outcome::Fail,
                "postgres.url",
                format!(
                    "cannot connect to {target}: {why}; check postgres.url, the password ({source}) and that the \
                     server accepts connections from here (pg_hba.conf)"
                ),
            ));
            return None;
        }
        None => {
            lines.push(line(
                Outcome::Fail,
                "postgres.url",
                format!(
                    "no answer from {target} within {}; check postgres.url and the network",
                    humantime::format_duration(pg.connect_timeout + timeout)
                ),
            ));
            return None;
        }
    };
    let version = match bounded(timeout, client.query_one("SHOW server_version", &[])).await {
        Some(Ok(row)) => row
            .try_get::<_, String>(0)
            .map(|v| format!("PostgreSQL {v}"))
            .unwrap_or_else(|_| "PostgreSQL".to_string()),
        _ => "PostgreSQL".to_string(),
    };
    let tls = describe_session_tls(config, &client, timeout).await;
    if let Some(Ok(row)) =
        bounded(timeout, client.query_one("SELECT pg_is_in_recovery()", &[])).await
    {
        if row.try_get::<_, bool>(0).unwrap_or(false) {
            lines.push(line(
                Outcome::Fail,
                "postgres.url",
                format!(
                    "{target} ({version}) is a hot standby (in recovery): its snapshots do not list running \
                     transactions, so neither the row versions nor the wait for a change's transaction hold there; \
                     point postgres.url at the primary (with several hosts, add target_session_attrs=read-write)"
                ),
            ));
            return None;
        }
    }
    lines.push(line(
        Outcome::Pass,
        "postgres.url",
        format!("connected to {target} ({version}) {tls}"),
    ));
    Some(client)
}

/// `with TLS 1.3 (what was verified)` or `without TLS (why)`, as the server reports the session.
async fn describe_session_tls(
    config: &Config,
    client: &deadpool_postgres::ClientWrapper,
    timeout: Duration,
) -> String {
    let pg = &config.file.postgres;
    let sql = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let (ssl, version) = match bounded(timeout, client.query_opt(sql, &[])).await {
        Some(Ok(Some(row))) => (
            row.try_get::<_, bool>(0).ok(),
            row.try_get::<_, Option<String>>(1).ok().flatten(),
        ),
        Some(Ok(None)) => (None, None),
        Some(Err(e)) => return format!("(TLS not known: pg_stat_ssl: {})", describe_pg_error(&e)),
        None => return "(TLS not known: pg_stat_ssl did not answer)".to_string(),
    };
    match (ssl, pg.tls_mode) {
        (Some(true), mode) => {
            // PostgreSQL says `TLSv1.3`.
            let protocol =
                version.map_or_else(|| "TLS".to_string(), |v| v.replacen("TLSv", "TLS ", 1));
            format!(
                "with {protocol} ({})",
                Verification::of(mode, pg.tls_ca_file.as_deref())
            )
        }
        (Some(false), TlsMode::Disable) => "without TLS (tls_mode = \"disable\")".to_string(),
        (Some(false), TlsMode::Prefer) => {
            "without TLS (the server offers none; tls_mode = \"prefer\" goes on in plain text)"
                .to_string()
        }
        // The driver never goes on without TLS under `require`.
        (Some(false), TlsMode::Require) => "without TLS".to_string(),
        (None, _) => "(TLS not known: pg_stat_ssl has no row for this session)".to_string(),
    }
}

/// `host:port, database D, as user U`, without the password.
fn describe_pg_target(c: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = c.get_ports().get(i).or(c.get_ports().first()).copied();
            match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "{}, database {:?}, as user {:?}",
        hosts.join(","),
        c.get_dbname().unwrap_or(""),
        c.get_user().unwrap_or("")
    )
}

/// The server's message with SQLSTATE, detail and hint; the driver's text for an I/O or protocol error.
fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str("; detail: ");
                s.push_str(d);
            }
            if let Some(h) = db.hint() {
                s.push_str("; hint: ");
                s.push_str(h);
            }
            s
        }
        None => error_chain(e),
    }
}

fn key_array_type(key_type: KeyType) -> Type {
    match key_type {
        KeyType::Integer => Type::INT8_ARRAY,
        KeyType::String => Type::TEXT_ARRAY,
    }
}

fn key_type_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::Integer => "integer (bigint[])",
        KeyType::String => "string (text[])",
    }
}

/// Whether a column of this type reads back as an integer key.
fn is_integer_type(t: &Type) -> bool {
    [Type::INT2, Type::INT4, Type::INT8].contains(t)
}

async fn check_merge_query(
    config: &Config,
    client: &deadpool_postgres::ClientWrapper,
    timeout: Duration,
    lines: &mut Vec<CheckLine>,
) {
    let merge = &config.file.merge;
    let file = merge.query_file.display();
    let sequence_column = &config.file.doris.sequence_column;
    let query = match MergeQuery::new(
        &config.merge_query,
        &merge.key_column,
        merge.key_type,
        sequence_column,
    ) {
        Ok(q) => q,
        Err(e) => {
            lines.push(line(
                Outcome::Fail,
                "merge.query_file",
                format!("{file}: {e}"),
            ));
            return;
        }
    };
    // The query as written first: its errors are the user's own, and its output columns tell whether the key
    // column is there.
    let key_array = key_array_type(merge.key_type);
    let statement = match bounded(
        timeout,
        client.prepare_typed(&config.merge_query, std::slice::from_ref(&key_array)),
    )
    .await
    {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            lines.push(line(
                Outcome::Fail,
                "merge.query_file",
                format!(
                    "{file} does not prepare with $1 as {}: {}; fix the query (or merge.key_type)",
                    key_type_name(merge.key_type),
                    describe_pg_error(&e)
                ),
            ));
            return;
        }
        None => {
            lines.push(timeout_line("merge.query_file", "preparing", timeout));
            return;
        }
    };
    let columns = statement.columns();
    let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
    let Some(key) = columns.iter().find(|c| c.name() == merge.key_column) else {
        lines.push(line(
            Outcome::Fail,
            "merge.key_column",
            format!(
                "{:?} is not an output column of the merge query ({file} returns {}); set merge.key_column to \
                 the column holding the key, or add it to the query",
                merge.key_column,
                names.join(", ")
            ),
        ));
        return;
    };
    // Then the statement the service runs, wrapped to render JSON lines with the version.
    match bounded(timeout, query.prepare(client)).await {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            let key_column_error = matches!(
                &e,
                MergeError::Postgres { source, .. }
                    if source.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN)
            );
            let (subject, hint) = if key_column_error {
                ("merge.key_column", "fix merge.key_column")
            } else {
                ("merge.query_file", "fix the query")
            };
            lines.push(line(
                Outcome::Fail,
                subject,
                format!(
                    "the merge query wrapped for Doris does not prepare: {e}; {hint} (the wrapped statement is \
                     SELECT to_jsonb(m) …, (m.\"{}\")::text FROM (<query>) AS m)",
                    merge.key_column
                ),
            ));
            return;
        }
        None => {
            lines.push(timeout_line("merge.query_file", "preparing", timeout));
            return;
        }
    }
    lines.push(line(
        Outcome::Pass,
        "merge.query_file",
        format!(
            "{file} prepares with $1 as {}; {} output column(s)",
            key_type_name(merge.key_type),
            columns.len()
        ),
    ));
    if merge.key_type == KeyType::Integer && !is_integer_type(key.type_()) {
        lines.push(line(
            Outcome::Warn,
            "merge.key_column",
            format!(
                "{:?} is of type {} but merge.key_type is \"integer\"; a value that is not a 64-bit integer fails \
                 the batch: cast the column to bigint or set merge.key_type = \"string\"",
                merge.key_column,
                key.type_().name()
            ),
        ));
    } else {
        lines.push(line(
            Outcome::Pass,
            "merge.key_column",
            format!(
                "{:?} is an output column ({})",
                merge.key_column,
                key.type_().name()
            ),
        ));
    }
    if names.contains(&sequence_column.as_str()) {
        lines.push(line(
            Outcome::Warn,
            "doris.sequence_column",
            format!(
                "the merge query returns a column {sequence_column:?}; cdc2doris overwrites it with the snapshot \
                 version, so drop it from the query"
            ),
        ));
    }
}

fn timeout_line(subject: &str, what: &str, timeout: Duration) -> CheckLine {
    line(
        Outcome::Fail,
        subject,
        format!(
            "no answer from PostgreSQL within {} while {what}; a lock may block it (ALTER TABLE in progress?) or the \
             server is overloaded; run check again",
            humantime::format_duration(timeout)
        ),
    )
}

async fn check_resolve_queries(
    config: &Config,
    client: &deadpool_postgres::ClientWrapper,
    timeout: Duration,
    lines: &mut Vec<CheckLine>,
) {
    let merge_key_type = config.file.merge.key_type;
    for (i, rule) in config.file.keys.rules.iter().enumerate() {
        let Some(sql) = &rule.resolve_query else {
            continue;
        };
        let subject = format!("keys.rules[{i}].resolve_query");
        let param = key_array_type(rule.key_type);
        let statement = match bounded(
            timeout,
            client.prepare_typed(sql, std::slice::from_ref(&param)),
        )
        .await
        {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                lines.push(line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "does not prepare with $1 as {} (keys.rules[{i}].key_type): {}; fix the query or the \
                         rule's key_type",
                        key_type_name(rule.key_type),
                        describe_pg_error(&e)
                    ),
                ));
                continue;
            }
            None => {
                lines.push(timeout_line(&subject, "preparing", timeout));
                continue;
            }
        };
        let Some(first) = statement.columns().first() else {
            lines.push(line(
                Outcome::Fail,
                subject,
                "returns no column; it must return the keys of the merged table, e.g. SELECT id FROM jobs WHERE \
                 client_id = ANY($1)",
            ));
            continue;
        };
        // Then the statement the service runs: the first column read back as text.
        let resolver = Resolver::new(&rule.topic, sql, rule.key_type);
        match bounded(
            timeout,
            client.prepare_typed(&resolver.sql, std::slice::from_ref(&param)),
        )
        .await
        {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                lines.push(line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "prepares, but not as the service wraps it (SELECT (r.k)::text FROM (<query>) AS r(k)): {}; \
                         remove anything after the query's last statement (a trailing comment after ';')",
                        describe_pg_error(&e)
                    ),
                ));
                continue;
            }
            None => {
                lines.push(timeout_line(&subject, "preparing", timeout));
                continue;
            }
        }
        if merge_key_type == KeyType::Integer && !is_integer_type(first.type_()) {
            lines.push(line(
                Outcome::Warn,
                subject,
                format!(
                    "prepares, but returns {:?} of type {} while merge.key_type is \"integer\": a value that is not \
                     a 64-bit integer fails the batch; cast it to bigint",
                    first.name(),
                    first.type_().name()
                ),
            ));
        } else {
            lines.push(line(
                Outcome::Pass,
                subject,
                format!(
                    "prepares with $1 as {}; returns {:?} ({})",
                    key_type_name(rule.key_type),
                    first.name(),
                    first.type_().name()
                ),
            ));
        }
    }
}

/// The table a Debezium topic `<prefix>.<schema>.<table>` captures (the prefix may itself contain dots).
fn debezium_table(topic: &str) -> Option<(&str, &str)> {
    let mut parts = topic.rsplitn(3, '.');
    let table = parts.next().filter(|s| !s.is_empty())?;
    let schema = parts.next().filter(|s| !s.is_empty())?;
    parts.next().filter(|s| !s.is_empty())?;
    Some((schema, table))
}

/// An SQL identifier, quoted when it has to be.
fn sql_ident(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A table's replica identity and the columns of its primary key and replica identity index.
const REPLICA_IDENTITY_SQL: &str = "\
SELECT c.relreplident::text,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY a.attnum),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = c.oid AND i.indisreplident ORDER BY a.attnum)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')";

async fn check_replica_identities(
    config: &Config,
    client: &deadpool_postgres::ClientWrapper,
    timeout: Duration,
    lines: &mut Vec<CheckLine>,
) {
    let database = config
        .file
        .postgres
        .url
        .trim()
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|c| c.get_dbname().map(str::to_string))
        .unwrap_or_default();
    for (i, rule) in config.file.keys.rules.iter().enumerate() {
        let subject = format!("keys.rules[{i}]");
        if matches!(rule.format, Format::Maxwell | Format::Canal) {
            lines.push(line(
                Outcome::Skip,
                subject,
                format!(
                    "replica identity not checked: {} reads a MySQL binlog, whose deletes carry the whole row",
                    rule.format.as_str()
                ),
            ));
            continue;
        }
        // The rule's table when it names one (its schema, else the topic's, else `public`), else the topic's.
        let rule_table = rule
            .table
            .as_deref()
            .and_then(|t| TableMatch::parse(t).ok());
        let named = match &rule_table {
            Some(m) => Some((
                m.schema()
                    .or(debezium_table(&rule.topic).map(|(schema, _)| schema))
                    .unwrap_or("public"),
                m.table(),
            )),
            None => debezium_table(&rule.topic),
        };
        let Some((schema, table)) = named else {
            lines.push(line(
                Outcome::Skip,
                subject,
                format!(
                    "replica identity not checked: topic {:?} is not named <prefix>.<schema>.<table> (Debezium's \
                     naming), so its table is unknown; make sure a delete on it carries {}",
                    rule.topic,
                    rule.fields.join(", ")
                ),
            ));
            continue;
        };
        let qualified = format!("{}.{}", sql_ident(schema), sql_ident(table));
        let row = match bounded(
            timeout,
            client.query_opt(REPLICA_IDENTITY_SQL, &[&schema, &table]),
        )
        .await
        {
            Some(Ok(row)) => row,
            Some(Err(e)) => {
                lines.push(line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "cannot read the replica identity of {qualified}: {}",
                        describe_pg_error(&e)
                    ),
                ));
                continue;
            }
            None => {
                lines.push(timeout_line(
                    &subject,
                    "reading a replica identity",
                    timeout,
                ));
                continue;
            }
        };
        let Some(row) = row else {
            lines.push(line(
                Outcome::Warn,
                subject,
                format!(
                    "table {qualified} (from topic {:?}) not found in database {database:?}, so its replica \
                     identity is unknown; if it lives elsewhere make sure a delete on it carries {}, else fix the \
                     topic name",
                    rule.topic,
                    rule.fields.join(", ")
                ),
            ));
            continue;
        };
        let identity = row.try_get::<_, String>(0).unwrap_or_default();
        let primary_key = row.try_get::<_, Vec<String>>(1).unwrap_or_default();
        let index = row.try_get::<_, Vec<String>>(2).unwrap_or_default();
        lines.push(replica_identity_line(
            subject,
            &qualified,
            &identity,
            &primary_key,
            &index,
            &rule.fields,
        ));
    }
}

/// Judges one table's replica identity for a rule keyed by `fields`. Debezium's before image of a deleted row, and
/// of an updated one whose identity columns did not change, holds only the replica identity's columns.
fn replica_identity_line(
    subject: String,
    table: &str,
    identity: &str,
    primary_key: &[String],
    index: &[String],
    fields: &[String],
) -> CheckLine {
    let fix = format!("run ALTER TABLE {table} REPLICA IDENTITY FULL");
    let fields_text = fields.join(", ");
    let covered = |columns: &[String]| fields.iter().all(|f| columns.contains(f));
    // `kind` as in `REPLICA IDENTITY DEFAULT`, `key` what its old rows hold.
    let judge = |kind: &str, key: &str, columns: &[String]| {
        if columns.is_empty() {
            line(
                Outcome::Fail,
                subject.clone(),
                format!(
                    "{table} has REPLICA IDENTITY {kind} but no {key}, so no old row is logged: a delete cannot \
                     yield its key (and PostgreSQL refuses UPDATE and DELETE on the table once it is published); \
                     {fix}"
                ),
            )
        } else if covered(columns) {
            line(
                Outcome::Pass,
                subject.clone(),
                format!(
                    "{table} has REPLICA IDENTITY {kind}: a delete's old row holds the {key} ({}), which includes \
                     the key field {fields_text}",
                    columns.join(", ")
                ),
            )
        } else {
            line(
                Outcome::Warn,
                subject.clone(),
                format!(
                    "{table} has REPLICA IDENTITY {kind}: a delete's old row holds only the {key} ({}), not the key \
                     field {fields_text}, so a delete (or an update that changes {fields_text}) cannot yield the old \
                     key and that merged row goes stale; {fix}",
                    columns.join(", ")
                ),
            )
        }
    };
    match identity {
        "f" => line(
            Outcome::Pass,
            subject,
            format!("{table} has REPLICA IDENTITY FULL: deletes carry the whole old row"),
        ),
        "d" => judge("DEFAULT", "primary key", primary_key),
        "i" => judge("USING INDEX", "replica identity index", index),
        "n" => line(
            Outcome::Fail,
            subject,
            format!(
                "{table} has REPLICA IDENTITY NOTHING: no old row is logged, so a delete cannot yield its key; \
                 {fix}"
            ),
        ),
        other => line(
            Outcome::Warn,
            subject,
            format!("{table} has an unknown replica identity {other:?}; make sure a delete carries {fields_text}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn debezium_topics_map_to_tables() {
        assert_eq!(
            debezium_table("enhanced_job_server_v2.public.jobs"),
            Some(("public", "jobs"))
        );
        assert_eq!(
            debezium_table("prod.eu.app.public.jobs"),
            Some(("public", "jobs"))
        );
        assert_eq!(debezium_table("public.jobs"), None);
        assert_eq!(debezium_table("jobs"), None);
        assert_eq!(debezium_table("a..jobs"), None);
    }

    #[test]
    fn identifiers_are_quoted_when_needed() {
        assert_eq!(sql_ident("job_activity"), "job_activity");
        assert_eq!(sql_ident("JobActivity"), "\"JobActivity\"");
        assert_eq!(sql_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(sql_ident("1x"), "\"1x\"");
    }

    fn judge(identity: &str, pk: &[&str], index: &[&str], field: &str) -> CheckLine {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        replica_identity_line(
            "keys.rules[0]".to_string(),
            "public.t",
            identity,
            &owned(pk),
            &owned(index),
            &[field.to_string()],
        )
    }

    #[test]
    fn replica_identity_verdicts() {
        assert_eq!(judge("f", &[], &[], "job_id").outcome, Outcome::Pass);
        assert_eq!(judge("d", &["id"], &[], "id").outcome, Outcome::Pass);
        let warn = judge("d", &["id"], &[], "job_id");
        assert_eq!(warn.outcome, Outcome::Warn);
        assert!(
            warn.detail
                .contains("ALTER TABLE public.t REPLICA IDENTITY FULL"),
            "{}",
            warn.detail
        );
        assert_eq!(judge("d", &[], &[], "id").outcome, Outcome::Fail);
        assert_eq!(
            judge("i", &["id"], &["job_id", "id"], "job_id").outcome,
            Outcome::Pass
        );
        assert_eq!(
            judge("i", &["job_id"], &["id"], "job_id").outcome,
            Outcome::Warn
        );
        assert_eq!(judge("n", &["id"], &[], "id").outcome, Outcome::Fail);
    }
}
