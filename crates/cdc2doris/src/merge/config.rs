//! The `[postgres]` section: where the merge stage reads from, and how it connects.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use std::str::FromStr;

use secrecy::SecretString;

use crate::error::Problem;
use crate::keys::KeyType;
use crate::validation::{require_nonempty, SectionContext};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    /// File holding the merge query; `$1` is the array of keys, one output row per key still present. Required.
    pub query_file: PathBuf,
    /// The output column holding the key; requested keys missing from the output become Doris deletes. Required.
    pub key_column: String,
    /// Type of the keys: `integer` (bound as `bigint[]`) or `string` (`text[]`). Default `integer`.
    #[serde(default)]
    pub key_type: KeyType,
    /// Keys per merge query execution. Default 1000.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
}

pub(crate) fn default_chunk_size() -> usize {
    1000
}

impl MergeConfig {
    /// Checks the `[merge]` section and reads the merge query from `query_file` (resolved in place).
    pub fn validate(&mut self, ctx: SectionContext<'_>, p: &mut Vec<Problem>) -> Option<String> {
        let merge = self;
        require_nonempty(
            &merge.key_column,
            "merge.key_column",
            "name the merge query's key output column",
            p,
        );
        if merge.chunk_size == 0 {
            p.push(Problem::new("merge.chunk_size", "0; must be at least 1"));
        }
        merge.query_file = ctx.resolve(&merge.query_file);
        match std::fs::read_to_string(&merge.query_file) {
            Err(e) => {
                p.push(Problem::new(
                    "merge.query_file",
                    format!("{}: {e}", merge.query_file.display()),
                ));
                None
            }
            Ok(query) => {
                if !query.contains("$1") {
                    p.push(Problem::new(
                    "merge.query_file",
                    format!(
                        "{}: does not use $1; the query receives the keys as an array, e.g. WHERE id = ANY($1)",
                        merge.query_file.display()
                    ),
                ));
                }
                Some(query)
            }
        }
    }
}

impl PostgresConfig {
    /// Checks the `[postgres]` section, resolves `tls_ca_file` and `password_file`, and reads the password.
    pub fn validate(
        &mut self,
        ctx: SectionContext<'_>,
        p: &mut Vec<Problem>,
    ) -> Option<SecretString> {
        let pg = self;
        let url = pg.url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            // Not echoed: a malformed URL may still hold a password.
            p.push(Problem::new(
                "postgres.url",
                "not a postgres:// or postgresql:// URL; e.g. postgres://user@host:5432/database",
            ));
        } else {
            match tokio_postgres::Config::from_str(url) {
                Err(e) => p.push(Problem::new(
                    "postgres.url",
                    format!("cannot be parsed ({e}); e.g. postgres://user@host:5432/database"),
                )),
                Ok(parsed) => {
                    if parsed.get_password().is_some() {
                        p.push(Problem::new(
                        "postgres.url",
                        "embeds a password; remove it from the URL and set postgres.password_env or \
                         postgres.password_file",
                    ));
                    }
                    if parsed.get_user().is_none() {
                        p.push(Problem::new(
                            "postgres.url",
                            "names no user; e.g. postgres://user@host:5432/database",
                        ));
                    }
                    if parsed.get_dbname().is_none() {
                        p.push(Problem::new(
                            "postgres.url",
                            "names no database; e.g. postgres://user@host:5432/database",
                        ));
                    }
                }
            }
            if url.contains("sslmode=") {
                p.push(Problem::new(
                    "postgres.url",
                    "sets sslmode; remove it and set postgres.tls_mode instead",
                ));
            }
        }
        let password_env = pg.password_env.clone();
        let password = ctx.password(
            "postgres",
            password_env.as_deref(),
            &mut pg.password_file,
            p,
        );
        if pg.pool_size == 0 {
            p.push(Problem::new("postgres.pool_size", "0; must be at least 1"));
        }
        if pg.connect_timeout.is_zero() {
            p.push(Problem::new(
                "postgres.connect_timeout",
                "0; give a positive duration, e.g. \"10s\"",
            ));
        }
        if let Some(ca) = &pg.tls_ca_file {
            let ca = ctx.resolve(ca);
            if pg.tls_mode == TlsMode::Disable {
                p.push(Problem::new(
                    "postgres.tls_ca_file",
                    "set while tls_mode = \"disable\"; remove it or enable TLS",
                ));
            }
            if let Err(e) = std::fs::metadata(&ca) {
                p.push(Problem::new(
                    "postgres.tls_ca_file",
                    format!("{}: {e}", ca.display()),
                ));
            }
            pg.tls_ca_file = Some(ca);
        }
        password
    }
}
