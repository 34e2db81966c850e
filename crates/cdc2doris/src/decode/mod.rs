//! CDC event decoding: one Kafka message value (and key) → one change event.

/// The wire format of a topic's messages.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Detect the format from the message itself.
    #[default]
    Auto,
    /// Debezium envelope from the JSON converter, with or without schemas.
    Debezium,
    /// Debezium after the ExtractNewRecordState transform.
    DebeziumUnwrapped,
    /// Maxwell's daemon JSON.
    Maxwell,
    /// Canal JSON (flat message).
    Canal,
}
