//! The configuration file's shape: one section per stage, each defined beside the stage that uses it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    AdminConfig, BatchConfig, DeadLetterConfig, DorisConfig, KafkaConfig, KeysConfig, MergeConfig,
    PostgresConfig,
};

/// The configuration file as written: [`parse`] builds it, [`ConfigFile::validate`] checks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Kafka: where the CDC topics are read from, in a consumer group.
    pub kafka: KafkaConfig,
    /// PostgreSQL: where the merge query runs.
    pub postgres: PostgresConfig,
    /// Which keys of the merged table each topic's events refresh.
    pub keys: KeysConfig,
    /// The merge query: re-run for the changed keys, its rows are loaded into Doris.
    pub merge: MergeConfig,
    /// Apache Doris: where the merged rows are loaded over HTTP Stream Load.
    pub doris: DorisConfig,
    /// When a batch of keys is closed and how many are loaded at once. Optional section.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Where messages that cannot be processed go, with the error and their source position. Set exactly one of
    /// `topic` and `path`.
    pub dead_letter: DeadLetterConfig,
    /// The admin HTTP server: /metrics, /healthz, /readyz, /debug/state. Optional section.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Logging and progress reports. Optional section.
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (for people) or `json` (one object per line); `--log-format` overrides it. Default `text`.
    #[serde(default)]
    pub format: LogFormat,
    /// tracing filter directives, e.g. `info,cdc2doris=debug`; `RUST_LOG` overrides it. Default `info`.
    #[serde(default = "default_log_filter")]
    pub filter: String,
    /// Interval of the one-line progress summary. Default 10 s.
    #[serde(default = "default_progress_interval", with = "humantime_serde")]
    pub progress_interval: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            filter: default_log_filter(),
            progress_interval: default_progress_interval(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn default_log_filter() -> String {
    "info".to_string()
}
fn default_progress_interval() -> Duration {
    Duration::from_secs(10)
}
