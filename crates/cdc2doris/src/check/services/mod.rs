//! The connectivity checks of `cdc2doris check`: the configuration against the services it names.
//!
//! - `kafka.rs`: the brokers answer, each topic exists (with its partition count).
//! - `postgres.rs`: the connection, the merge and resolve queries prepare, the key column exists, each captured
//!   table's replica identity lets a delete yield its key.
//! - `doris.rs`: each FE answers `get_load_state` with the service's credentials (nothing loaded); BEs answer.
//! - `schema.rs`: the merge query's result columns against the Doris table (`DESC` over the FE query port): key,
//!   model, sequence column, missing and extra columns, types that cannot hold the values.
//!
//! The four run concurrently; their lines come out in that order.
//!
//! Every check yields one line: what was checked, what was found, and what to do about a failure. No line may hold a
//! secret: messages are built from names (variables, files, users), and [`redact`] masks any secret value that a
//! server error might echo anyway.

mod doris;
mod kafka;
mod postgres;
mod schema;

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::check::report::{CheckLine, Outcome};
use crate::config::Config;

/// Runs the Kafka, PostgreSQL, Doris and schema checks concurrently; returns their lines in that order, secrets masked.
/// `timeout` bounds each network step (Kafka metadata, each PostgreSQL statement, each Doris request); the
/// PostgreSQL connection itself is bounded by `postgres.connect_timeout`.
pub async fn check_services(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let kafka = async {
        let config = config.clone();
        // librdkafka's metadata call blocks its thread until the brokers answer or the timeout passes.
        match tokio::task::spawn_blocking(move || kafka::check_kafka(&config, timeout)).await {
            Ok(lines) => lines,
            Err(e) => vec![line(
                Outcome::Fail,
                "kafka",
                format!("the Kafka check stopped unexpectedly ({e}); run check again"),
            )],
        }
    };
    let (kafka, postgres, doris, schema) = tokio::join!(
        kafka,
        postgres::check_postgres(config, timeout),
        doris::check_doris(config, timeout),
        schema::check_schema(config, timeout)
    );
    let secrets = secret_values(config);
    kafka
        .into_iter()
        .chain(postgres)
        .chain(doris)
        .chain(schema)
        .map(|l| CheckLine {
            outcome: l.outcome,
            subject: redact(&l.subject, &secrets),
            detail: redact(&l.detail, &secrets),
        })
        .collect()
}

/// One report line.
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

/// Where the password comes from, for messages: never the password itself.
fn password_source(env: Option<&str>, file: Option<&std::path::Path>) -> String {
    match (env, file) {
        (Some(var), _) => format!("environment variable {var}"),
        (None, Some(path)) => format!("file {}", path.display()),
        (None, None) => "none configured".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn secrets_are_masked() {
        let secrets = vec!["hunter22".to_string(), "pw".to_string()];
        assert_eq!(
            redact("FATAL: bad password hunter22 (pw)", &secrets),
            "FATAL: bad password *** (***)"
        );
    }
}
