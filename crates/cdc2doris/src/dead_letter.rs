//! The dead-letter path: where input the service cannot use goes, with the reason and where it
//! came from, so that nothing blocks a partition forever and nothing is dropped silently.
//!
//! Two kinds of record:
//! - a **message** that could not be decoded or whose key could not be extracted: the raw key and
//!   value, the error, and the source topic/partition/offset;
//! - a **load** record: keys whose merged rows could not be loaded — a row Doris rejected (stage `load`: the
//!   load's label, Doris' reason and the ErrorURL excerpt) or a key whose merge query fails on its own data (stage
//!   `merge`: a data error such as a failed cast, raised by that key's rows alone), or a value a resolve query fails
//!   on by itself (stage `resolve`: `keys` then holds the value, not a key of the merged table) — with the offset
//!   ranges of the batch that asked for them. `cdc2doris backfill --keys-from` refreshes the keys of `load` and
//!   `merge` records once the cause is fixed.
//!
//! A record is written durably (file: `fsync`; Kafka: `acks=all` and the delivery awaited) before
//! the caller acknowledges the message, so a crash re-reads it rather than losing it.
//!
//! On a Kafka dead-letter topic a message record keeps the original key and value as they were and
//! puts the context in headers (`cdc2doris.error`, `cdc2doris.stage`, `cdc2doris.topic`,
//! `cdc2doris.partition`, `cdc2doris.offset`), the convention of Kafka Connect's
//! `errors.deadletterqueue.context.headers.enable`; a load record is a JSON value keyed by the label. A message
//! record too large for the topic goes without its value (`cdc2doris.value_dropped` says so): retrying it would
//! block the partition for ever.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::error::ErrorClass;
use serde::Deserialize;

use crate::error::Problem;
use crate::validation::SectionContext;

/// Where dead letters go (`[dead_letter]`, validated).
#[derive(Debug, Clone)]
pub enum DeadLetterTarget {
    /// A local JSON-lines file (an absolute path; created if missing, appended to).
    File(PathBuf),
    /// A Kafka topic, produced with these client properties.
    Kafka {
        /// The topic.
        topic: String,
        /// Producer properties (bootstrap servers, security), without secrets.
        properties: Vec<(String, String)>,
        /// Secret producer properties (e.g. `sasl.password`), kept out of `Debug`.
        secret_properties: Vec<(String, secrecy::SecretString)>,
    },
}

impl DeadLetterTarget {
    /// A Kafka topic on the source's cluster: the producer takes the bootstrap servers and, of the consumer's
    /// `properties` and `secrets`, the security ones (`security.*`, `sasl.*`, `ssl.*`, and every secret); the
    /// consumer-only ones are left out.
    pub fn kafka_topic<'a>(
        topic: &str,
        bootstrap_servers: &[String],
        properties: impl IntoIterator<Item = (&'a str, String)>,
        secrets: &[(String, secrecy::SecretString)],
    ) -> DeadLetterTarget {
        let mut all: Vec<(String, String)> =
            vec![("bootstrap.servers".to_string(), bootstrap_servers.join(","))];
        all.extend(
            properties
                .into_iter()
                .filter(|(k, _)| {
                    k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.")
                })
                .map(|(k, v)| (k.to_string(), v)),
        );
        DeadLetterTarget::Kafka {
            topic: topic.to_string(),
            properties: all,
            secret_properties: secrets.to_vec(),
        }
    }
}

/// A message the pipeline could not use.
#[derive(Debug, Clone)]
pub struct MessageRejection<'a> {
    /// The stage that rejected it (`decode`, `keys`, `resolve`).
    pub stage: &'static str,
    /// Why, with the field and what to do.
    pub reason: String,
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The Kafka message key, raw.
    pub key: Option<&'a [u8]>,
    /// The Kafka message value, raw (`None`: tombstone).
    pub value: Option<&'a [u8]>,
}

/// Keys whose merged rows could not be loaded.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRejection<'a> {
    /// `load` (Doris rejected the row), `merge` (the merge query failed on the key's own data) or `resolve` (a
    /// resolve query failed on the value's own data; `keys` holds the value).
    pub stage: &'static str,
    /// The Stream Load label (stage `load`) or the batch's name (stages `merge` and `resolve`).
    pub label: &'a str,
    /// The offset ranges of the batch (`topic/partition:first-last`): the messages that asked for the keys.
    pub offsets: Vec<String>,
    /// Why (the Doris message).
    pub reason: String,
    /// The keys the batch refreshed, as JSON values.
    pub keys: Vec<serde_json::Value>,
    /// The first lines of Doris' ErrorURL, when it gave one.
    pub error_url_excerpt: Option<String>,
}

/// Dead-letter write failures. Retry: the message stays unacknowledged until it is written.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The file could not be opened or written.
    #[error("cannot write the dead-letter file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Kafka producer could not be created.
    /// Shown without property values, and not exposed as a source (see [`crate::source::kafka::describe_error`]).
    #[error("cannot create the dead-letter producer: {}", crate::source::kafka::describe_error(.0))]
    Producer(rdkafka::error::KafkaError),
    /// The dead-letter topic did not take the record.
    #[error("cannot produce to dead-letter topic {topic}: {source}")]
    Produce {
        /// The topic.
        topic: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl DeadLetterError {
    /// Whether retrying can help.
    pub fn class(&self) -> ErrorClass {
        match self {
            DeadLetterError::Producer(_) => ErrorClass::Permanent,
            DeadLetterError::File { .. } | DeadLetterError::Produce { .. } => ErrorClass::Transient,
        }
    }
}

enum Writer {
    File {
        path: PathBuf,
        file: Mutex<tokio::fs::File>,
    },
    Kafka {
        topic: String,
        producer: FutureProducer,
    },
}

/// An open dead-letter destination.
pub struct DeadLetter {
    writer: Writer,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.writer {
            Writer::File { path, .. } => f.debug_struct("DeadLetter").field("file", path).finish(),
            Writer::Kafka { topic, .. } => {
                f.debug_struct("DeadLetter").field("topic", topic).finish()
            }
        }
    }
}

/// The JSON-lines form of a message record.
#[derive(Serialize)]
struct MessageRecord<'a> {
    kind: &'static str,
    at: String,
    stage: &'static str,
    reason: &'a str,
    topic: &'a str,
    partition: i32,
    offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Bytes<'a>>,
    value: Option<Bytes<'a>>,
}

/// Raw bytes in JSON: the text when it is UTF-8, else base64.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Bytes<'a> {
    Text(&'a str),
    Base64(String),
}

impl<'a> Bytes<'a> {
    fn of(b: &'a [u8]) -> Self {
        match std::str::from_utf8(b) {
            Ok(s) => Bytes::Text(s),
            Err(_) => Bytes::Base64(base64::engine::general_purpose::STANDARD.encode(b)),
        }
    }
}

#[derive(Serialize)]
struct LoadRecord<'a> {
    kind: &'static str,
    at: String,
    #[serde(flatten)]
    load: &'a LoadRejection<'a>,
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl DeadLetter {
    /// Opens the destination: creates/appends the file, or creates the producer.
    pub async fn open(target: &DeadLetterTarget) -> Result<DeadLetter, DeadLetterError> {
        let writer = match target {
            DeadLetterTarget::File(path) => {
                let file = open_append(path).await?;
                Writer::File {
                    path: path.clone(),
                    file: Mutex::new(file),
                }
            }
            DeadLetterTarget::Kafka {
                topic,
                properties,
                secret_properties,
            } => {
                use secrecy::ExposeSecret;
                let mut cfg = ClientConfig::new();
                for (k, v) in properties {
                    cfg.set(k, v);
                }
                for (k, v) in secret_properties {
                    cfg.set(k, v.expose_secret());
                }
                cfg.set("acks", "all").set("enable.idempotence", "true");
                let producer: FutureProducer = cfg.create().map_err(DeadLetterError::Producer)?;
                Writer::Kafka {
                    topic: topic.clone(),
                    producer,
                }
            }
        };
        Ok(DeadLetter { writer })
    }

    /// Writes a message record durably.
    pub async fn write_message(&self, r: &MessageRejection<'_>) -> Result<(), DeadLetterError> {
        metrics::counter!("cdc2doris_dead_letters_total", "kind" => "message", "stage" => r.stage)
            .increment(1);
        match &self.writer {
            Writer::File { path, file } => {
                let rec = MessageRecord {
                    kind: "message",
                    at: now(),
                    stage: r.stage,
                    reason: &r.reason,
                    topic: r.topic,
                    partition: r.partition,
                    offset: r.offset,
                    key: r.key.map(Bytes::of),
                    value: r.value.map(Bytes::of),
                };
                append_line(path, file, &rec).await
            }
            Writer::Kafka { topic, producer } => {
                let full = produce(producer, topic, message_record(topic, r, None)).await;
                match full {
                    Err(DeadLetterError::Produce { source, .. }) if too_large(&source) => {
                        // The record is bigger than the producer's `message.max.bytes` or the topic's
                        // `max.message.bytes`: retrying it would block the partition forever. The context goes
                        // without the value (and, if that is not enough, without the key); the message itself
                        // stays readable at its source topic, partition and offset.
                        let size = r.value.map_or(0, <[u8]>::len);
                        let note = format!(
                            "value of {size} bytes left out: the record was too large for the dead-letter topic; \
                             read the message at its source offset"
                        );
                        tracing::warn!(topic = %r.topic, partition = r.partition, offset = r.offset,
                            "the dead-letter record is too large for {topic}: {source}; writing it without the value");
                        let rec = message_record(topic, r, Some((note.as_str(), true)));
                        match produce(producer, topic, rec).await {
                            Err(DeadLetterError::Produce { source, .. }) if too_large(&source) => {
                                let rec = message_record(topic, r, Some((note.as_str(), false)));
                                produce(producer, topic, rec).await
                            }
                            other => other,
                        }
                    }
                    other => other,
                }
            }
        }
    }

    /// Writes a load record durably.
    pub async fn write_load(&self, r: &LoadRejection<'_>) -> Result<(), DeadLetterError> {
        metrics::counter!("cdc2doris_dead_letters_total", "kind" => "load", "stage" => r.stage)
            .increment(1);
        let rec = LoadRecord {
            kind: "load",
            at: now(),
            load: r,
        };
        match &self.writer {
            Writer::File { path, file } => append_line(path, file, &rec).await,
            Writer::Kafka { topic, producer } => {
                let value = serde_json::to_vec(&rec).unwrap_or_default();
                let rec: FutureRecord<'_, str, [u8]> =
                    FutureRecord::to(topic).key(r.label).payload(&value);
                produce(producer, topic, rec).await
            }
        }
    }
}

async fn open_append(path: &Path) -> Result<tokio::fs::File, DeadLetterError> {
    let err = |source| DeadLetterError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(err)?;
    }
    // Owner-only when created: records hold raw messages and rows, which may be personal data (docs/security.md).
    // An existing file keeps the mode it was given.
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(err)
}

async fn append_line<T: Serialize>(
    path: &Path,
    file: &Mutex<tokio::fs::File>,
    rec: &T,
) -> Result<(), DeadLetterError> {
    let err = |source| DeadLetterError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_vec(rec).map_err(|e| err(std::io::Error::other(e)))?;
    line.push(b'\n');
    let mut f = file.lock().await;
    f.write_all(&line).await.map_err(err)?;
    f.sync_data().await.map_err(err)
}

/// Whether the producer or the broker refused a record for its size.
fn too_large(e: &rdkafka::error::KafkaError) -> bool {
    e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge)
}

/// A message record for a dead-letter topic: the original key and value, the context in headers. With `cut`
/// (`(note, keep_key)`) the value is left out, `cdc2doris.value_dropped` says why, and the key only if `keep_key`.
fn message_record<'a>(
    topic: &'a str,
    r: &'a MessageRejection<'a>,
    cut: Option<(&'a str, bool)>,
) -> FutureRecord<'a, [u8], [u8]> {
    let partition = r.partition.to_string();
    let offset = r.offset.to_string();
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: "cdc2doris.error",
            value: Some(r.reason.as_str()),
        })
        .insert(Header {
            key: "cdc2doris.stage",
            value: Some(r.stage),
        })
        .insert(Header {
            key: "cdc2doris.topic",
            value: Some(r.topic),
        })
        .insert(Header {
            key: "cdc2doris.partition",
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: "cdc2doris.offset",
            value: Some(offset.as_str()),
        });
    if let Some((note, _)) = cut {
        headers = headers.insert(Header {
            key: "cdc2doris.value_dropped",
            value: Some(note),
        });
    }
    let mut rec: FutureRecord<'a, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
    let (keep_key, keep_value) = match cut {
        Some((_, keep_key)) => (keep_key, false),
        None => (true, true),
    };
    if let Some(k) = r.key.filter(|_| keep_key) {
        rec = rec.key(k);
    }
    if let Some(v) = r.value.filter(|_| keep_value) {
        rec = rec.payload(v);
    }
    rec
}

async fn produce<K, P>(
    producer: &FutureProducer,
    topic: &str,
    rec: FutureRecord<'_, K, P>,
) -> Result<(), DeadLetterError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    producer
        .send(rec, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(source, _)| DeadLetterError::Produce {
            topic: topic.to_string(),
            source,
        })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Kafka topic to produce dead letters to (same brokers and properties as `[kafka]`). Default: none.
    #[serde(default)]
    pub topic: Option<String>,
    /// Local file to append dead letters to, one JSON object per line. Default: none.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// The `[dead_letter]` destination as the file names it, before the producer settings are known.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadLetterChoice {
    /// A Kafka topic on the source's cluster.
    Topic(String),
    /// A local JSON-lines file (absolute path).
    File(PathBuf),
}

impl DeadLetterConfig {
    /// Checks the `[dead_letter]` section: exactly one destination, and a file's directory exists (the path is
    /// resolved in place).
    pub fn validate(
        &mut self,
        ctx: SectionContext<'_>,
        p: &mut Vec<Problem>,
    ) -> Option<DeadLetterChoice> {
        let dl = self;
        match (&dl.topic, &dl.path) {
            (Some(_), Some(_)) => {
                p.push(Problem::new(
                    "dead_letter",
                    "both topic and path are set; keep one",
                ));
                None
            }
            (None, None) => {
                p.push(Problem::new(
                    "dead_letter",
                    "neither topic nor path is set; name a Kafka topic or a local JSON-lines file",
                ));
                None
            }
            (Some(topic), None) => {
                if topic.trim().is_empty() {
                    p.push(Problem::new("dead_letter.topic", "empty; name a topic"));
                    return None;
                }
                Some(DeadLetterChoice::Topic(topic.clone()))
            }
            (None, Some(path)) => {
                let path = ctx.resolve(path);
                dl.path = Some(path.clone());
                let dir = match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir,
                    _ => Path::new("."),
                };
                if path.file_name().is_none() {
                    p.push(Problem::new(
                        "dead_letter.path",
                        format!("{}: not a file name", path.display()),
                    ));
                    return None;
                }
                match std::fs::metadata(dir) {
                    Ok(m) if m.is_dir() => Some(DeadLetterChoice::File(path)),
                    Ok(_) => {
                        p.push(Problem::new(
                            "dead_letter.path",
                            format!("{}: not a directory", dir.display()),
                        ));
                        None
                    }
                    Err(e) => {
                        p.push(Problem::new(
                            "dead_letter.path",
                            format!("{}: {e}; create the directory", dir.display()),
                        ));
                        None
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_records_keep_text_and_base64_bytes_and_context() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let path = dir.path().join("sub/dead.jsonl");
        let dl = match DeadLetter::open(&DeadLetterTarget::File(path.clone())).await {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let r = MessageRejection {
            stage: "decode",
            reason: "truncated JSON at line 1 column 5".into(),
            topic: "t",
            partition: 2,
            offset: 99,
            key: Some(b"{\"id\":1}"),
            value: Some(&[0xff, 0x00, 0x41]),
        };
        if let Err(e) = dl.write_message(&r).await {
            panic!("{e}");
        }
        let load = LoadRejection {
            stage: "load",
            label: "cdc2doris_x",
            offsets: vec!["jobs/0:1-9".into()],
            reason: "[DATA_QUALITY_ERROR]too many filtered rows".into(),
            keys: vec![serde_json::json!(7)],
            error_url_excerpt: Some("Reason: column(title) is too long".into()),
        };
        if let Err(e) = dl.write_load(&load).await {
            panic!("{e}");
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "message");
        assert_eq!(lines[0]["offset"], 99);
        assert_eq!(lines[0]["partition"], 2);
        assert_eq!(lines[0]["key"]["text"], "{\"id\":1}");
        assert_eq!(lines[0]["value"]["base64"], "/wBB");
        assert_eq!(lines[0]["reason"], "truncated JSON at line 1 column 5");
        assert_eq!(lines[1]["kind"], "load");
        assert_eq!(lines[1]["keys"], serde_json::json!([7]));
        assert_eq!(
            lines[1]["error_url_excerpt"],
            "Reason: column(title) is too long"
        );
    }
}
