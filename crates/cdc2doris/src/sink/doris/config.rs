//! The `[doris]` section of the configuration.

use std::path::PathBuf;
use std::time::Duration;

/// Where and how rows are loaded into Doris.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DorisConfig {
    /// FE HTTP URLs, e.g. `["http://127.0.0.1:8030"]`; tried in order (failover).
    pub fe_urls: Vec<String>,
    /// Optional BE HTTP URLs to load into directly, skipping the FE redirect. Default: none.
    #[serde(default)]
    pub be_urls: Vec<String>,
    /// Target database.
    pub database: String,
    /// Target table.
    pub table: String,
    /// Doris user. Default `root`.
    #[serde(default = "default_user")]
    pub user: String,
    /// Name of the environment variable holding the password. Default: none (empty password).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (trailing newline trimmed). Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Name of the table's sequence column; every row carries the PostgreSQL snapshot version in it.
    pub sequence_column: String,
    /// Prefix of every Stream Load label. Default `cdc2doris`.
    #[serde(default = "default_label_prefix")]
    pub label_prefix: String,
    /// Per-load Doris `timeout`. Default 600 s.
    #[serde(default = "default_load_timeout", with = "humantime_serde")]
    pub load_timeout: Duration,
}

fn default_user() -> String {
    "root".to_string()
}

fn default_label_prefix() -> String {
    "cdc2doris".to_string()
}

fn default_load_timeout() -> Duration {
    Duration::from_secs(600)
}
