//! The `[postgres]` section: where the merge stage reads from, and how it connects.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[postgres]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL without a password, e.g. `postgres://cdc2doris@127.0.0.1:5432/app`. Required.
    pub url: String,
    /// Name of the environment variable holding the password. Default: none.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (one trailing newline trimmed). Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Connections in the pool; merge chunks run in parallel up to this many. Default 4.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Timeout to establish a connection. Default 10 s.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `statement_timeout` of every session; `0s` disables it. Default 60 s.
    #[serde(default = "default_statement_timeout", with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// TLS: `disable`; `prefer`, TLS if the server offers it and plain text otherwise, the certificate verified only
    /// when `tls_ca_file` is set (libpq's `prefer`); or `require`, TLS or fail, the certificate chain and the host
    /// name of `url` always verified (stricter than libpq's `require`: its `verify-full`). Default `prefer`.
    #[serde(default)]
    pub tls_mode: TlsMode,
    /// PEM file of the CA certificates (one or more, e.g. a cloud provider's bundle) that sign the server's
    /// certificate; with it, `prefer` verifies too. Default: none (`require` trusts the system's roots).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

/// How the PostgreSQL connection uses TLS (what each mode verifies: [`crate::merge::tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, plain otherwise; the certificate is verified only against `tls_ca_file`.
    #[default]
    Prefer,
    /// TLS or fail; the certificate chain and the host name are always verified (libpq's `verify-full`).
    Require,
}

pub(crate) fn default_pool_size() -> usize {
    4
}

pub(crate) fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

pub(crate) fn default_statement_timeout() -> Duration {
    Duration::from_secs(60)
}
