//! Kafka: a metadata request with the consumer's own properties proves the brokers answer (and that the SASL/SSL
//! settings work); each topic must exist, and its partition count is reported.
//!
//! When no broker answers, the request itself only says "timed out"; librdkafka reports why through the client's
//! error callback (a SASL refusal, a TLS handshake failure). [`Recorder`] keeps those reports, and [`diagnose`] turns
//! them into what to fix — naming properties, the SASL user and where the password comes from, never a value.

use std::time::Duration;

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::MetadataTopic;
use rdkafka::types::RDKafkaErrorCode;

use super::line;
use crate::check::report::{CheckLine, Outcome};
use crate::config::Config;
use crate::dead_letter::DeadLetterTarget;

pub(super) fn check_kafka(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let kafka = &config.file.kafka;
    let mut lines = Vec::new();
    // The consumer configuration `cdc2doris run` uses, secrets included.
    let mut client = crate::source::kafka::consumer_config(
        config.file.kafka.consumer_properties(),
        &config.kafka_secret_properties,
    );
    // A metadata request for a topic that does not exist must not create it, whatever kafka.properties says.
    client.set("allow.auto.create.topics", "false");
    let consumer: BaseConsumer<Recorder> = match client.create_with_context(Recorder::default()) {
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
            // The error callback runs only when the client is polled: serve what librdkafka has queued.
            for _ in 0..5 {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            let reports = consumer.context().reports();
            let message = match diagnose(config, &reports) {
                Some((subject, what)) => {
                    lines.push(line(Outcome::Fail, subject, what));
                    None
                }
                None => Some(format!(
                    "no broker of {servers} answered a metadata request within {} ({}{}); check the addresses, that \
                     the brokers are up and reachable from here, and the security settings in kafka.properties \
                     (security.protocol, sasl.*, ssl.*)",
                    humantime::format_duration(timeout),
                    describe_kafka_error(&e),
                    reports
                        .last()
                        .map(|r| format!("; librdkafka: {r}"))
                        .unwrap_or_default()
                )),
            };
            if let Some(message) = message {
                lines.push(line(Outcome::Fail, "kafka.bootstrap_servers", message));
            }
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
    if let DeadLetterTarget::Kafka { topic, .. } = &config.dead_letter {
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

/// The consumer context of the check: keeps librdkafka's error reports (and warnings), which say why no broker
/// answered. Nothing else differs from the default context.
#[derive(Default)]
struct Recorder {
    reports: Mutex<Vec<String>>,
}

impl Recorder {
    fn reports(&self) -> Vec<String> {
        self.reports.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn keep(&self, report: String) {
        if let Ok(mut reports) = self.reports.lock() {
            // A failing broker repeats itself on every reconnect.
            if reports.len() < 50 && !reports.contains(&report) {
                reports.push(report);
            }
        }
    }
}

impl ClientContext for Recorder {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.keep(format!("{fac}: {log_message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.keep(format!("{}: {reason}", describe_kafka_error(&error)));
    }
}

impl ConsumerContext for Recorder {}

/// What librdkafka's reports say to fix, as (TOML path, message), or `None` when they do not tell (the broker is
/// simply unreachable). The messages name properties, the user and the password's variable, never a value.
fn diagnose(config: &Config, reports: &[String]) -> Option<(String, String)> {
    let kafka = &config.file.kafka;
    let property = |name: &str| {
        kafka
            .properties
            .get(name)
            .map(|v| format!("{:?}", v.to_string()))
            .unwrap_or_else(|| "unset".to_string())
    };
    let secret_source = |name: &str| match kafka.properties_from_env.get(name) {
        Some(var) => format!("the environment variable {var} (kafka.properties_from_env.{name:?})"),
        None => format!("kafka.properties_from_env.{name:?} (unset)"),
    };
    let said = |fragments: &[&str]| {
        reports.iter().find(|r| {
            let lower = r.to_ascii_lowercase();
            fragments.iter().any(|f| lower.contains(f))
        })
    };
    let quote = |r: &String| format!(" (librdkafka: {r})");
    if let Some(r) = said(&[
        "unsupported sasl mechanism",
        "not supported by broker",
        "mechanism",
    ]) {
        if !r.to_ascii_lowercase().contains("invalid credentials") {
            return Some((
                "kafka.properties.\"sasl.mechanisms\"".to_string(),
                format!(
                    "the brokers do not offer SASL mechanism {}{}; set sasl.mechanisms to one they enable (e.g. \
                     SCRAM-SHA-512)",
                    property("sasl.mechanisms"),
                    quote(r)
                ),
            ));
        }
    }
    if let Some(r) = said(&[
        "authentication failed",
        "invalid credentials",
        "sasl authentication error",
    ]) {
        return Some((
            "kafka.properties_from_env.\"sasl.password\"".to_string(),
            format!(
                "the brokers refused the SASL credentials of user {} (kafka.properties.\"sasl.username\"){}; check \
                 the user name and the password in {}",
                property("sasl.username"),
                quote(r),
                secret_source("sasl.password")
            ),
        ));
    }
    if let Some(r) = said(&[
        "certificate verify failed",
        "could not be verified",
        "unable to get local issuer",
    ]) {
        return Some((
            "kafka.properties.\"ssl.ca.location\"".to_string(),
            format!(
                "the brokers' TLS certificate is not signed by a trusted CA (ssl.ca.location is {}){}; set \
                 ssl.ca.location to the PEM file of the CA that signed the brokers' certificates",
                property("ssl.ca.location"),
                quote(r)
            ),
        ));
    }
    if let Some(r) = said(&[
        "alert bad certificate",
        "alert certificate required",
        "alert unknown ca",
        "alert certificate unknown",
        "alert certificate expired",
        "alert handshake failure",
    ]) {
        let fix = if r.to_ascii_lowercase().contains("expired") {
            "renew the client certificate (or check the clocks)"
        } else {
            // A Java broker answers "certificate unknown" for an expired certificate too.
            "give a client certificate that has not expired, signed by a CA the brokers trust (their \
             ssl.truststore), and its key"
        };
        return Some((
            "kafka.properties.\"ssl.certificate.location\"".to_string(),
            format!(
                "the brokers refused this client's TLS certificate (ssl.certificate.location is {}, \
                 ssl.key.location {}){}; {fix}",
                property("ssl.certificate.location"),
                property("ssl.key.location"),
                quote(r)
            ),
        ));
    }
    if let Some(r) = said(&["ssl handshake failed"]) {
        return Some((
            "kafka.properties.\"security.protocol\"".to_string(),
            format!(
                "the TLS handshake with the brokers failed (security.protocol is {}){}; check that the listener \
                 speaks TLS, and ssl.ca.location / ssl.certificate.location",
                property("security.protocol"),
                quote(r)
            ),
        ));
    }
    None
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

/// A Kafka error without property values (they may be secrets).
fn describe_kafka_error(e: &KafkaError) -> String {
    crate::source::kafka::describe_error(e)
}

#[cfg(test)]
mod tests {
    use super::*;
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
            "property \"sasl.password\": Invalid value \"***\" for configuration property \"sasl.password\""
        );
        // A secret under a name that does not look like one (a typo, or a property that holds a key).
        let misspelt = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
            "No such configuration property: \"sasl.pasword\"".to_string(),
            "sasl.pasword".to_string(),
            "hunter22".to_string(),
        );
        assert!(!describe_kafka_error(&misspelt).contains("hunter22"));
        assert!(describe_kafka_error(&misspelt).contains("No such configuration property"));
        let plain = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"x\" for configuration property \"linger.ms\"".to_string(),
            "linger.ms".to_string(),
            "x".to_string(),
        );
        assert_eq!(
            describe_kafka_error(&plain),
            "property \"linger.ms\": Invalid value \"***\" for configuration property \"linger.ms\""
        );
    }
}
