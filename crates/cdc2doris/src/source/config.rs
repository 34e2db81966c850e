//! The `[kafka]` section: where the source reads the CDC topics, as which consumer group, with which librdkafka
//! properties.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::Problem;
use crate::secret::read_secret;
use crate::validation::{require_nonempty, toml_key, SectionContext};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Brokers to bootstrap from, as `host:port`. Required.
    pub bootstrap_servers: Vec<String>,
    /// Consumer group id; instances with the same id share the partitions. Required.
    pub group_id: String,
    /// CDC topics to consume; each needs a rule in `keys.rules`. Required.
    pub topics: Vec<String>,
    /// librdkafka properties passed through as is (SASL, SSL, tuning), e.g. `"security.protocol" = "SASL_SSL"`.
    /// Values may be strings, integers or booleans. The service owns `enable.auto.commit`,
    /// `enable.auto.offset.store`, `enable.partition.eof`, `group.id` and `bootstrap.servers`; secrets go in
    /// `properties_from_env`. Default: none.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyValue>,
    /// librdkafka properties read from environment variables, property name → variable name, e.g.
    /// `"sasl.password" = "KAFKA_PASSWORD"`. Default: none.
    #[serde(default)]
    pub properties_from_env: BTreeMap<String, String>,
    /// On a rebalance, how long to wait for the in-flight batches of revoked partitions (to commit their offsets)
    /// before releasing the partitions anyway. Keep it well below `max.poll.interval.ms`. Default 30 s.
    #[serde(default = "default_revoke_timeout", with = "humantime_serde")]
    pub revoke_timeout: Duration,
}

/// A librdkafka property value as written in TOML; librdkafka takes them all as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropertyValue {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Boolean(bool),
}

impl std::fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropertyValue::String(s) => f.write_str(s),
            PropertyValue::Integer(i) => write!(f, "{i}"),
            PropertyValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// librdkafka properties the service sets itself and refuses in `kafka.properties`, with the reason.
pub const RESERVED_KAFKA_PROPERTIES: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "cdc2doris commits offsets itself, only after Doris acknowledged the batch that covers them",
    ),
    (
        "enable.auto.offset.store",
        "cdc2doris commits offsets itself, only after Doris acknowledged the batch that covers them",
    ),
    (
        "enable.partition.eof",
        "the consumer loop does not expect end-of-partition events",
    ),
    ("group.id", "set kafka.group_id instead"),
    ("bootstrap.servers", "set kafka.bootstrap_servers instead"),
];

/// librdkafka properties the service sets unless `kafka.properties` overrides them (why: `source/kafka.rs`).
pub const DEFAULT_KAFKA_PROPERTIES: &[(&str, &str)] = &[
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("auto.offset.reset", "earliest"),
];

impl KafkaConfig {
    /// librdkafka consumer properties without secrets: the service-owned ones, the defaults (unless overridden), then
    /// `kafka.properties`. Secrets from `kafka_secret_properties` are added by the caller.
    pub fn consumer_properties(&self) -> BTreeMap<String, String> {
        let kafka = self;
        let mut props: BTreeMap<String, String> = DEFAULT_KAFKA_PROPERTIES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &kafka.properties {
            props.insert(k.clone(), v.to_string());
        }
        props.insert(
            "bootstrap.servers".to_string(),
            kafka.bootstrap_servers.join(","),
        );
        props.insert("group.id".to_string(), kafka.group_id.clone());
        props.insert("enable.auto.commit".to_string(), "false".to_string());
        props.insert("enable.auto.offset.store".to_string(), "false".to_string());
        props.insert("enable.partition.eof".to_string(), "false".to_string());
        props
    }
}

/// The least librdkafka may prefetch, whatever the batch budget (1 MiB: one partition's fetch, `message.max.bytes`).
const MIN_PREFETCH_BYTES: usize = 1024 * 1024;
/// The most the derived prefetch bound grants (librdkafka's own default for `queued.max.messages.kbytes`).
const MAX_PREFETCH_BYTES: usize = 64 * 1024 * 1024;

/// librdkafka's prefetch bounded by the batch budget: messages fetched ahead wait in librdkafka's queue, up to
/// `queued.max.messages.kbytes` (librdkafka: 64 MiB), plus a fetch response in flight of up to `fetch.max.bytes`
/// (librdkafka: 50 MiB). Both are derived from `batch.max_bytes`, the most message bytes one batch covers in normal
/// flow: the queue holds half a batch's worth (8 MiB by default) and a fetch an eighth of the queue (1 MiB). The
/// queue counts messages as they are handed over, decompressed; a fetch counts the bytes on the wire, compressed,
/// and its messages all join the queue at once, whatever the queue holds: a 1 MiB fetch of LZ4-compressed Debezium
/// JSON is ~5 MiB of messages (with the earlier 8 MiB fetch and 16 MiB queue, librdkafka held ~145 MiB of
/// decompressed messages at the 1M-event drain's peak, two thirds of its RSS). A batch needs no more ahead of it,
/// because the coordinator takes messages as fast as it decodes them (the drain ran as fast with it). Each value is
/// clamped to 1–64 MiB, the fetch to at least `message.max.bytes` (librdkafka refuses less). With a queue that
/// small, librdkafka's `fetch.queue.backoff.ms` (1 s: how long the next fetch waits once the queue is full) would
/// let the queue run empty in the middle of a backlog, so it becomes 10 ms.
pub fn prefetch_properties(
    batch: &crate::batch::BatchConfig,
    message_max_bytes: usize,
) -> [(&'static str, String); 3] {
    let queued = (batch.max_bytes / 2).clamp(MIN_PREFETCH_BYTES, MAX_PREFETCH_BYTES);
    let fetch = (queued / 8).max(MIN_PREFETCH_BYTES).max(message_max_bytes);
    [
        ("queued.max.messages.kbytes", (queued / 1024).to_string()),
        ("fetch.max.bytes", fetch.to_string()),
        ("fetch.queue.backoff.ms", "10".to_string()),
    ]
}

impl KafkaConfig {
    /// The consumer properties of `cdc2doris run`: [`KafkaConfig::consumer_properties`] plus the prefetch bounds of
    /// [`prefetch_properties`], each unless `kafka.properties` sets it.
    pub fn run_consumer_properties(
        &self,
        batch: &crate::batch::BatchConfig,
    ) -> BTreeMap<String, String> {
        let mut props = self.consumer_properties();
        // librdkafka's default `message.max.bytes`.
        let message_max_bytes = props
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1_000_000);
        for (k, v) in prefetch_properties(batch, message_max_bytes) {
            props.entry(k.to_string()).or_insert(v);
        }
        props
    }
}

impl KafkaConfig {
    /// Checks the `[kafka]` section and reads the secret properties of `properties_from_env`.
    pub fn validate(
        &self,
        ctx: SectionContext<'_>,
        p: &mut Vec<Problem>,
    ) -> Vec<(String, SecretString)> {
        let kafka = self;
        let env = ctx.env;
        if kafka.bootstrap_servers.is_empty() {
            p.push(Problem::new(
                "kafka.bootstrap_servers",
                "empty; list at least one broker as \"host:port\"",
            ));
        }
        for (i, server) in kafka.bootstrap_servers.iter().enumerate() {
            if server.contains('@') {
                // Not echoed: `user:password@host:port` holds a password.
                p.push(Problem::new(
                format!("kafka.bootstrap_servers[{i}]"),
                "holds '@' (credentials?); list brokers as \"host:port\", and put SASL credentials in \
                 kafka.properties (sasl.username) and kafka.properties_from_env (sasl.password)",
            ));
                continue;
            }
            let ok = server.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                p.push(Problem::new(
                    format!("kafka.bootstrap_servers[{i}]"),
                    format!("{server:?} is not \"host:port\""),
                ));
            }
        }
        require_nonempty(
            &kafka.group_id,
            "kafka.group_id",
            "name the consumer group",
            p,
        );
        if kafka.topics.is_empty() {
            p.push(Problem::new(
                "kafka.topics",
                "empty; list the CDC topics to consume",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, topic) in kafka.topics.iter().enumerate() {
            let path = format!("kafka.topics[{i}]");
            require_nonempty(topic, &path, "name a topic", p);
            if !seen.insert(topic.as_str()) {
                p.push(Problem::new(
                    path,
                    format!("{topic:?} is listed twice; remove one"),
                ));
            }
        }
        let check_name = |name: &str, table: &str, p: &mut Vec<Problem>| {
            let path = format!("kafka.{table}.{}", toml_key(name));
            if let Some((_, why)) = RESERVED_KAFKA_PROPERTIES.iter().find(|(k, _)| *k == name) {
                p.push(Problem::new(
                    path,
                    format!("owned by cdc2doris ({why}); remove it"),
                ));
                return false;
            }
            true
        };
        for (name, value) in &kafka.properties {
            if !check_name(name, "properties", p) {
                continue;
            }
            if is_secret_property(name) {
                p.push(Problem::new(
                format!("kafka.properties.{}", toml_key(name)),
                "a secret does not belong in the config file; name the environment variable holding it in \
                 [kafka.properties_from_env] instead",
            ));
            }
            if let PropertyValue::String(s) = value {
                if s.is_empty() {
                    p.push(Problem::new(
                        format!("kafka.properties.{}", toml_key(name)),
                        "empty; give a value or remove the property",
                    ));
                }
            }
        }
        if kafka.revoke_timeout.is_zero() {
            p.push(Problem::new(
                "kafka.revoke_timeout",
                "0; give a positive duration, e.g. \"30s\"",
            ));
        }
        let mut secrets = Vec::new();
        for (name, var) in &kafka.properties_from_env {
            if !check_name(name, "properties_from_env", p) {
                continue;
            }
            let path = format!("kafka.properties_from_env.{}", toml_key(name));
            if kafka.properties.contains_key(name) {
                p.push(Problem::new(
                    path.clone(),
                    "also set in kafka.properties; keep one",
                ));
            }
            match read_secret(Some(var), None, env) {
                Ok(Some(value)) => secrets.push((name.clone(), value)),
                Ok(None) => {}
                Err(e) => p.push(Problem::new(path, e.to_string())),
            }
        }
        secrets
    }
}

/// Whether a librdkafka property holds a secret (`sasl.password`, `ssl.key.password`, `sasl.oauthbearer.client.secret`…).
pub fn is_secret_property(name: &str) -> bool {
    name.contains("password") || name.contains("secret")
}

pub(crate) fn default_revoke_timeout() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchConfig;

    fn kafka(properties: &[(&str, PropertyValue)]) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: vec!["k:9092".into()],
            group_id: "g".into(),
            topics: vec!["t".into()],
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            properties_from_env: BTreeMap::new(),
            revoke_timeout: default_revoke_timeout(),
        }
    }

    #[test]
    fn the_prefetch_follows_the_batch_budget_unless_the_user_sets_it() {
        let default = kafka(&[]).run_consumer_properties(&BatchConfig::default());
        assert_eq!(default["queued.max.messages.kbytes"], "8192");
        assert_eq!(default["fetch.max.bytes"], "1048576");
        assert_eq!(default["fetch.queue.backoff.ms"], "10");
        assert_eq!(default["group.id"], "g", "the other properties stay");

        let small = BatchConfig {
            max_bytes: 4096,
            ..BatchConfig::default()
        };
        let p = kafka(&[]).run_consumer_properties(&small);
        assert_eq!(p["queued.max.messages.kbytes"], "1024", "at least 1 MiB");
        assert_eq!(p["fetch.max.bytes"], "1048576");
        let big_messages = kafka(&[("message.max.bytes", PropertyValue::Integer(5_000_000))])
            .run_consumer_properties(&BatchConfig::default());
        assert_eq!(
            big_messages["fetch.max.bytes"], "5000000",
            "librdkafka refuses a fetch.max.bytes below message.max.bytes"
        );
        let huge = BatchConfig {
            max_bytes: 1 << 30,
            ..BatchConfig::default()
        };
        let p = kafka(&[]).run_consumer_properties(&huge);
        assert_eq!(p["queued.max.messages.kbytes"], "65536", "at most 64 MiB");

        let user = kafka(&[
            ("queued.max.messages.kbytes", PropertyValue::Integer(200000)),
            ("fetch.max.bytes", PropertyValue::String("1000000".into())),
        ])
        .run_consumer_properties(&BatchConfig::default());
        assert_eq!(
            user["queued.max.messages.kbytes"], "200000",
            "the user's value wins"
        );
        assert_eq!(user["fetch.max.bytes"], "1000000");
        // `check` and the plain properties carry no prefetch bound of their own.
        assert!(!kafka(&[])
            .consumer_properties()
            .contains_key("queued.max.messages.kbytes"));
    }
}
