//! The connectivity checks of `cdc2doris check`: the configuration against the services it names.
//!
//! - **Kafka**: a metadata request with the consumer's own properties proves the brokers answer (and that SASL/SSL
//!   settings work); each topic must exist, and its partition count is reported.
//! - **PostgreSQL**: connect as the service would; the merge query and every resolve query must prepare with `$1`
//!   typed as the service binds it; the merge output must hold `merge.key_column`; and each captured table's replica
//!   identity must let a delete yield its key (Debezium's before image of a delete holds only the replica identity's
//!   columns).
//! - **Doris**: `GET /api/{db}/get_load_state` on each FE, with the service's credentials. It answers for any
//!   label, loads nothing, and its reply tells accepted credentials (`code` 0), refused ones (`code` 401) and an
//!   unknown database (`code` 1) apart (spec §5; an FE answers HTTP 200 in all three cases). A follower FE
//!   307s it to the master; the redirect is followed under the sink's own credential policy. Each BE of
//!   `doris.be_urls` must answer HTTP.
//!
//! Every check yields one line: what was checked, what was found, and what to do about a failure. No line may hold a
//! secret: messages are built from names (variables, files, users), and [`redact`] masks any secret value that a
//! server error might echo anyway.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::MetadataTopic;
use rdkafka::types::RDKafkaErrorCode;
use secrecy::ExposeSecret;
use tokio_postgres::types::Type;

use super::check::{CheckLine, Outcome};
use super::{Config, DeadLetterTarget, TlsMode};
use crate::decode::Format;
use crate::keys::KeyType;
use crate::merge::{MergeError, MergeQuery};
use crate::sink::doris::redirect::RedirectPolicy;

/// The label asked about in the Doris check. `get_load_state` answers `UNKNOWN` for a label never used.
pub const DORIS_CHECK_LABEL: &str = "cdc2doris-check";

/// Runs the Kafka, PostgreSQL and Doris checks concurrently; returns their lines in that order, secrets masked.
/// `timeout` bounds each network step (Kafka metadata, each PostgreSQL statement, each Doris request); the
/// PostgreSQL connection itself is bounded by `postgres.connect_timeout`.
pub async fn check_services(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let kafka = async {
        let config = config.clone();
        // librdkafka's metadata call blocks its thread until the brokers answer or the timeout passes.
        match tokio::task::spawn_blocking(move || check_kafka(&config, timeout)).await {
            Ok(lines) => lines,
            Err(e) => vec![line(
                Outcome::Fail,
                "kafka",
                format!("the Kafka check stopped unexpectedly ({e}); run check again"),
            )],
        }
    };
    let (kafka, postgres, doris) = tokio::join!(
        kafka,
        check_postgres(config, timeout),
        check_doris(config, timeout)
    );
    let secrets = secret_values(config);
    kafka
        .into_iter()
        .chain(postgres)
        .chain(doris)
        .map(|l| CheckLine {
            outcome: l.outcome,
            subject: redact(&l.subject, &secrets),
            detail: redact(&l.detail, &secrets),
        })
        .collect()
}

fn line(outcome: Outcome, subject: impl Into<String>, detail: impl Into<String>) -> CheckLine {
    CheckLine {
        outcome,
        subject: subject.into(),
        detail: detail.into(),
    }
}

/// Every secret the configuration holds, longest first (so a secret containing another is masked whole).
fn secret_values(config: &Config) -> Vec<String> {
    let mut secrets: Vec<String> = config
        .postgres_password
        .iter()
        .chain(config.doris_password.iter())
        .chain(config.kafka_secret_properties.iter().map(|(_, v)| v))
        .map(|s| s.expose_secret().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// `text` with every occurrence of a secret replaced by `***`: a last line of defence against a server error
/// message that echoes what it was sent.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// An error and its causes, `a: b: c`, each cause once (reqwest and hyper repeat their sources' text).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka.
// ---------------------------------------------------------------------------------------------------------------

fn check_kafka(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let kafka = &config.file.kafka;
    let mut lines = Vec::new();
    let mut client = ClientConfig::new();
    for (name, value) in config.kafka_consumer_properties() {
        client.set(name, value);
    }
    for (name, value) in &config.kafka_secret_properties {
        client.set(name.as_str(), value.expose_secret());
    }
    // A metadata request for a topic that does not exist must not create it, whatever kafka.properties says.
    client.set("allow.auto.create.topics", "false");
    let consumer: BaseConsumer = match client.create() {
        Ok(c) => c,
        Err(e) => {
            lines.push(line(
                Outcome::Fail,
                "kafka.properties",
                format!(
                    "librdkafka refuses the consumer configuration: {}; fix kafka.properties / \
                     kafka.properties_from_env",
                    describe_kafka_error(&e)
                ),
            ));
            return lines;
        }
    };
    let servers = kafka.bootstrap_servers.join(",");
    let metadata = match consumer.fetch_metadata(None, timeout) {
        Ok(m) => m,
        Err(e) => {
            lines.push(line(
                Outcome::Fail,
                "kafka.bootstrap_servers",
                format!(
                    "no broker of {servers} answered a metadata request within {} ({}); check the addresses, that \
                     the brokers are up and reachable from here, and the security settings in kafka.properties \
                     (security.protocol, sasl.*, ssl.*)",
                    humantime::format_duration(timeout),
                    describe_kafka_error(&e)
                ),
            ));
            lines.push(line(
                Outcome::Skip,
                "kafka.topics",
                "not checked: no broker answered",
            ));
            return lines;
        }
    };
    lines.push(line(
        Outcome::Pass,
        "kafka.bootstrap_servers",
        format!(
            "{servers} answered; the cluster has {} broker(s)",
            metadata.brokers().len()
        ),
    ));
    for (i, topic) in kafka.topics.iter().enumerate() {
        let subject = format!("kafka.topics[{i}]");
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        lines.push(match found {
            Some(t) if t.error().is_none() => topic_line(subject, t),
            // Not listed, or listed with an error: ask for this topic alone, for its precise error (an all-topics
            // request leaves out topics this user may not describe).
            _ => match consumer.fetch_metadata(Some(topic), timeout) {
                Ok(m) => match m.topics().iter().find(|t| t.name() == topic) {
                    Some(t) if t.error().is_none() => topic_line(subject, t),
                    Some(t) => topic_error_line(subject, topic, t),
                    None => missing_topic_line(subject, topic),
                },
                Err(e) => line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "{topic:?}: metadata request failed ({}); check that the brokers are up",
                        describe_kafka_error(&e)
                    ),
                ),
            },
        });
    }
    if let DeadLetterTarget::Topic(topic) = &config.dead_letter {
        let subject = "dead_letter.topic".to_string();
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        lines.push(match found {
            Some(t) if t.error().is_none() => line(
                Outcome::Pass,
                subject,
                format!("{topic:?} exists, {} partition(s)", t.partitions().len()),
            ),
            _ => line(
                Outcome::Warn,
                subject,
                format!(
                    "{topic:?} does not exist (or this user may not describe it); create it before the first \
                     dead letter, or fix dead_letter.topic"
                ),
            ),
        });
    }
    lines
}

fn topic_line(subject: String, t: &MetadataTopic) -> CheckLine {
    let partitions = t.partitions();
    let leaderless: Vec<i32> = partitions
        .iter()
        .filter(|p| p.leader() < 0 || p.error().is_some())
        .map(|p| p.id())
        .collect();
    if leaderless.is_empty() {
        line(
            Outcome::Pass,
            subject,
            format!("{:?} exists, {} partition(s)", t.name(), partitions.len()),
        )
    } else {
        line(
            Outcome::Warn,
            subject,
            format!(
                "{:?} exists, {} partition(s), but partition(s) {leaderless:?} have no leader; consumption stalls \
                 there until the brokers recover",
                t.name(),
                partitions.len()
            ),
        )
    }
}

fn missing_topic_line(subject: String, topic: &str) -> CheckLine {
    line(
        Outcome::Fail,
        subject,
        format!("{topic:?} does not exist; create it, or fix kafka.topics"),
    )
}

fn topic_error_line(subject: String, topic: &str, t: &MetadataTopic) -> CheckLine {
    let Some(err) = t.error() else {
        return topic_line(subject, t);
    };
    let code = RDKafkaErrorCode::from(err);
    match code {
        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
            missing_topic_line(subject, topic)
        }
        RDKafkaErrorCode::TopicAuthorizationFailed => line(
            Outcome::Fail,
            subject,
            format!(
                "{topic:?}: not authorized ({code}); grant this user Describe and Read on the topic (and Read on \
                 the consumer group), or fix kafka.topics"
            ),
        ),
        RDKafkaErrorCode::LeaderNotAvailable => line(
            Outcome::Warn,
            subject,
            format!("{topic:?}: {code}; the topic may have just been created, run check again"),
        ),
        _ => line(
            Outcome::Fail,
            subject,
            format!("{topic:?}: the brokers answered {code}; check the topic and the brokers"),
        ),
    }
}

/// A Kafka error without property values: librdkafka's configuration errors name the value, which may be a secret.
fn describe_kafka_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, key, _) => {
            if super::is_secret_property(key) {
                format!("property {key:?} is invalid")
            } else {
                format!("property {key:?}: {desc}")
            }
        }
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL.
// ---------------------------------------------------------------------------------------------------------------

async fn check_postgres(config: &Config, timeout: Duration) -> Vec<CheckLine> {
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
    lines
}

/// Awaits `fut` for at most `timeout`; `None` when it took longer.
async fn bounded<F: std::future::Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    tokio::time::timeout(timeout, fut).await.ok()
}

/// Where the password comes from, for messages: never the password itself.
fn password_source(env: Option<&str>, file: Option<&std::path::Path>) -> String {
    match (env, file) {
        (Some(var), _) => format!("environment variable {var}"),
        (None, Some(path)) => format!("file {}", path.display()),
        (None, None) => "none configured".to_string(),
    }
}

async fn connect_postgres(
    config: &Config,
    timeout: Duration,
    lines: &mut Vec<CheckLine>,
) -> Option<deadpool_postgres::ClientWrapper> {
    let pg = &config.file.postgres;
    // TLS is not wired into the service's PostgreSQL connections yet. `prefer` falls back to a plain connection,
    // as it would with a server that offers no TLS; `require` cannot be honoured, so nothing is checked.
    let tls_note = match pg.tls_mode {
        TlsMode::Disable => "",
        TlsMode::Prefer => {
            " (without TLS: tls_mode = \"prefer\" falls back to a plain connection, and this build does not \
             implement TLS yet)"
        }
        TlsMode::Require => {
            lines.push(line(
                Outcome::Warn,
                "postgres.tls_mode",
                "\"require\": TLS to PostgreSQL is not implemented in this build yet, so the PostgreSQL checks \
                 were not run; on a trusted network use \"prefer\" or \"disable\"",
            ));
            return None;
        }
    };
    let mut pg_config: tokio_postgres::Config = match pg.url.trim().parse() {
        Ok(c) => c,
        Err(e) => {
            lines.push(line(
                Outcome::Fail,
                "postgres.url",
                format!("cannot be parsed ({e})"),
            ));
            return None;
        }
    };
    if let Some(password) = &config.postgres_password {
        pg_config.password(password.expose_secret());
    }
    pg_config.connect_timeout(pg.connect_timeout);
    pg_config.application_name("cdc2doris-check");
    let target = describe_pg_target(&pg_config);
    let source = password_source(pg.password_env.as_deref(), pg.password_file.as_deref());
    // connect_timeout bounds each address tried; the outer bound covers a server that accepts the TCP connection
    // but never answers the startup.
    let attempt = bounded(
        pg.connect_timeout + timeout,
        pg_config.connect(tokio_postgres::NoTls),
    )
    .await;
    let (client, connection) = match attempt {
        Some(Ok(pair)) => pair,
        Some(Err(e)) => {
            lines.push(line(
                Outcome::Fail,
                "postgres.url",
                format!(
                    "cannot connect to {target}: {}{tls_note}; check postgres.url, the password ({source}) and that \
                     the server accepts connections from here (pg_hba.conf)",
                    describe_pg_error(&e)
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
    // The connection task is owned by the ClientWrapper, which aborts it when dropped.
    let conn_task = tokio::spawn(async move {
        let _ = connection.await;
    });
    let client = deadpool_postgres::ClientWrapper::new(client, conn_task);
    if !pg.statement_timeout.is_zero() {
        let set = format!(
            "SET statement_timeout = {}",
            pg.statement_timeout.as_millis()
        );
        if let Some(Err(e)) = bounded(timeout, client.batch_execute(&set)).await {
            lines.push(line(
                Outcome::Fail,
                "postgres.statement_timeout",
                format!("cannot be set: {}", describe_pg_error(&e)),
            ));
            return None;
        }
    }
    let version = match bounded(timeout, client.query_one("SHOW server_version", &[])).await {
        Some(Ok(row)) => row
            .try_get::<_, String>(0)
            .map(|v| format!("PostgreSQL {v}"))
            .unwrap_or_else(|_| "PostgreSQL".to_string()),
        _ => "PostgreSQL".to_string(),
    };
    lines.push(line(
        Outcome::Pass,
        "postgres.url",
        format!("connected to {target} ({version}){tls_note}"),
    ));
    Some(client)
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
        if merge_key_type == KeyType::Integer && !is_integer_type(first.type_()) {
            lines.push(line(
                Outcome::Warn,
                subject,
                format!(
                    "prepares, but returns {:?} of type {} while merge.key_type is \"integer\"; cast it to bigint",
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
        let Some((schema, table)) = debezium_table(&rule.topic) else {
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

// ---------------------------------------------------------------------------------------------------------------
// Doris.
// ---------------------------------------------------------------------------------------------------------------

/// What one FE said.
enum FeAnswer {
    /// Credentials accepted, database known; `via` is the URL that answered when the FE redirected (a follower FE
    /// sends `get_load_state` to the master).
    Accepted { via: Option<String> },
    /// No HTTP answer at all.
    Unreachable(String),
    /// An answer that fails the check: the line to print.
    Refused(CheckLine),
}

/// The part of a Doris FE REST reply the check reads.
#[derive(serde::Deserialize)]
struct FeReply {
    code: Option<i64>,
    msg: Option<String>,
    data: Option<serde_json::Value>,
}

async fn check_doris(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let doris = &config.file.doris;
    // Redirects are followed by hand, under the sink's own credential policy (see sink::doris::redirect): reqwest
    // would drop the Authorization header on a change of port, and must not send it to a host the service would not.
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(doris.connect_timeout.min(timeout))
        .timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return vec![line(
                Outcome::Fail,
                "doris.fe_urls",
                format!("cannot build an HTTP client: {}", error_chain(&e)),
            )]
        }
    };
    let parse_all = |urls: &[String]| -> Vec<reqwest::Url> {
        urls.iter()
            .filter_map(|u| reqwest::Url::parse(u).ok())
            .collect()
    };
    let policy = RedirectPolicy::new(
        &parse_all(&doris.fe_urls),
        &parse_all(&doris.be_urls),
        &doris.trusted_hosts,
        &doris.be_host_rewrite,
        doris.allow_https_downgrade,
        doris.max_redirects,
    );
    let mut answers = Vec::with_capacity(doris.fe_urls.len());
    for (i, fe) in doris.fe_urls.iter().enumerate() {
        let subject = format!("doris.fe_urls[{i}]");
        answers.push(ask_fe(&http, &policy, config, fe, &subject).await);
    }
    let any_answered = answers
        .iter()
        .any(|a| !matches!(a, FeAnswer::Unreachable(_)));
    let mut lines = Vec::new();
    for (i, (fe, answer)) in doris.fe_urls.iter().zip(answers).enumerate() {
        let subject = format!("doris.fe_urls[{i}]");
        lines.push(match answer {
            FeAnswer::Accepted { via } => line(
                Outcome::Pass,
                subject,
                format!(
                    "{fe} answered{}; user {:?} accepted, database {:?} exists (asked get_load_state, nothing \
                     loaded)",
                    via.map(|v| format!(" (through a redirect to {v})"))
                        .unwrap_or_default(),
                    doris.user,
                    doris.database
                ),
            ),
            FeAnswer::Unreachable(why) if any_answered => line(
                Outcome::Warn,
                subject,
                format!("{fe} unreachable ({why}); loads fail over to the other FE(s), but fix or remove it"),
            ),
            FeAnswer::Unreachable(why) => line(
                Outcome::Fail,
                subject,
                format!(
                    "{fe} unreachable ({why}); check the URL (the FE HTTP port, 8030 by default) and that the FE is \
                     up and reachable from here"
                ),
            ),
            FeAnswer::Refused(l) => l,
        });
    }
    if doris.fe_urls.is_empty() {
        lines.push(line(
            Outcome::Skip,
            "doris.fe_urls",
            "none: loads go straight to doris.be_urls, and a BE cannot check credentials without a load, so the \
             user, password and database are not checked",
        ));
    }
    for (i, be) in doris.be_urls.iter().enumerate() {
        lines.push(check_be(&http, be, format!("doris.be_urls[{i}]")).await);
    }
    lines
}

/// A BE is reachable if it answers HTTP at all; `/api/health` needs no credentials, so none are sent.
async fn check_be(http: &reqwest::Client, be: &str, subject: String) -> CheckLine {
    let url = match reqwest::Url::parse(be) {
        Ok(mut u) => {
            if let Ok(mut segments) = u.path_segments_mut() {
                segments.pop_if_empty().extend(["api", "health"]);
            }
            u
        }
        Err(e) => return line(Outcome::Fail, subject, format!("{be} is not a URL: {e}")),
    };
    match http.get(url).send().await {
        Ok(r) => line(
            Outcome::Pass,
            subject,
            format!("{be} answered (HTTP {} on /api/health)", r.status()),
        ),
        Err(e) => line(
            Outcome::Fail,
            subject,
            format!(
                "{be} unreachable ({}); check the URL (the BE webserver port, 8040 by default) and that the BE is \
                 up and reachable from here",
                error_chain(&e.without_url())
            ),
        ),
    }
}

/// `GET {fe}/api/{db}/get_load_state?label=cdc2doris-check` with Basic auth, following redirects as the sink would.
async fn ask_fe(
    http: &reqwest::Client,
    policy: &RedirectPolicy,
    config: &Config,
    fe: &str,
    subject: &str,
) -> FeAnswer {
    let doris = &config.file.doris;
    let mut url = match reqwest::Url::parse(fe) {
        Ok(u) => u,
        Err(e) => return FeAnswer::Unreachable(format!("not a URL: {e}")),
    };
    match url.path_segments_mut() {
        Ok(mut segments) => {
            segments
                .pop_if_empty()
                .extend(["api", doris.database.as_str(), "get_load_state"]);
        }
        Err(()) => return FeAnswer::Unreachable("not a base URL".to_string()),
    }
    url.query_pairs_mut()
        .append_pair("label", DORIS_CHECK_LABEL);
    let password = config
        .doris_password
        .as_ref()
        .map(|p| p.expose_secret().to_string())
        .unwrap_or_default();
    let mut via = None;
    let mut hops: u8 = 0;
    let response = loop {
        let response = match http
            .get(url.clone())
            .basic_auth(&doris.user, Some(&password))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if hops == 0 => return FeAnswer::Unreachable(error_chain(&e.without_url())),
            Err(e) => {
                return FeAnswer::Refused(line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "{fe} redirected to {}, which is unreachable ({}); check doris.be_host_rewrite or the \
                         address the master FE advertises",
                        url.origin().ascii_serialization(),
                        error_chain(&e.without_url())
                    ),
                ))
            }
        };
        if !response.status().is_redirection() {
            break response;
        }
        // The FE writes the request's credentials into Location as userinfo; next_hop strips them.
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        match policy.next_hop(&url, location, hops) {
            Ok(next) => {
                url = next.url;
                via = Some(url.origin().ascii_serialization());
                hops += 1;
            }
            Err((refusal, shown)) => {
                return FeAnswer::Refused(line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "{fe} answered HTTP {} to {shown}, which the service would not follow: {refusal}",
                        response.status()
                    ),
                ))
            }
        }
    };
    let status = response.status();
    let refused_credentials = |why: &str| {
        FeAnswer::Refused(line(
            Outcome::Fail,
            "doris.user",
            format!(
                "{fe} refused the credentials of user {:?} ({why}); check doris.user and the password \
                 (doris.password_env / doris.password_file: {})",
                doris.user,
                password_source(
                    doris.password_env.as_deref(),
                    doris.password_file.as_deref()
                )
            ),
        ))
    };
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return refused_credentials(&format!("HTTP {status}"));
    }
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => return FeAnswer::Unreachable(error_chain(&e.without_url())),
    };
    let reply: Option<FeReply> = serde_json::from_str(&body).ok();
    let Some(reply) = reply.filter(|_| status.is_success()) else {
        return FeAnswer::Refused(line(
            Outcome::Fail,
            subject,
            format!(
                "{fe} answered HTTP {status} with {}; is this a Doris FE HTTP port (8030 by default)?",
                excerpt(&body)
            ),
        ));
    };
    let msg = reply.msg.unwrap_or_default();
    let data = match reply.data {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let said = if data.is_empty() {
        msg.clone()
    } else {
        format!("{msg}: {}", excerpt(&data))
    };
    match reply.code {
        Some(0) => FeAnswer::Accepted { via },
        Some(401) => refused_credentials(&said),
        Some(_)
            if msg.to_ascii_lowercase().contains("unknown database")
                || data.to_ascii_lowercase().contains("unknown database") =>
        {
            FeAnswer::Refused(line(
                Outcome::Fail,
                "doris.database",
                format!(
                    "{:?} does not exist on {fe} ({said}); create it, or fix doris.database",
                    doris.database
                ),
            ))
        }
        code => FeAnswer::Refused(line(
            Outcome::Fail,
            subject,
            format!(
                "{fe} answered code {} ({said}) for user {:?} on database {:?}; check the user's privileges (LOAD \
                 on the database) and the FE's log",
                code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                doris.user,
                doris.database
            ),
        )),
    }
}

/// The start of a body, on one line.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CHARS)
        .collect();
    if text.chars().count() > MAX_CHARS {
        format!("{:?}…", one_line.trim())
    } else {
        format!("{:?}", one_line.trim())
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

    #[test]
    fn kafka_configuration_errors_never_show_a_secret_value() {
        use rdkafka::types::RDKafkaConfRes;
        let secret = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter22\" for configuration property \"sasl.password\"".to_string(),
            "sasl.password".to_string(),
            "hunter22".to_string(),
        );
        assert_eq!(
            describe_kafka_error(&secret),
            "property \"sasl.password\" is invalid"
        );
        let plain = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"x\" for configuration property \"linger.ms\"".to_string(),
            "linger.ms".to_string(),
            "x".to_string(),
        );
        assert!(describe_kafka_error(&plain).contains("Invalid value \"x\""));
    }

    #[test]
    fn secrets_are_masked() {
        let secrets = vec!["hunter22".to_string(), "pw".to_string()];
        assert_eq!(
            redact("FATAL: bad password hunter22 (pw)", &secrets),
            "FATAL: bad password *** (***)"
        );
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("a\nb"), "\"a b\"");
        let long = "x".repeat(500);
        assert!(excerpt(&long).ends_with('…'));
    }
}
