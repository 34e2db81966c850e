//! Kafka: a metadata request with the consumer's own properties proves the brokers answer (and that the SASL/SSL
//! settings work); each topic must exist, and its partition count is reported.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
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
            if crate::source::config::is_secret_property(key) {
                format!("property {key:?} is invalid")
            } else {
                format!("property {key:?}: {desc}")
            }
        }
        other => other.to_string(),
    }
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
}
