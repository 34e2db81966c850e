//! The service configuration: one TOML file.
//!
//! Loading has two steps, so that a user sees every mistake of a file at once:
//!
//! 1. [`parse`]: TOML syntax, then each section deserialized on its own through `serde_path_to_error`, so a type error
//!    names its TOML path (`batch.max_keys: invalid type: string "x", expected usize`). Unknown keys are refused.
//!    One error per section at most (serde stops at the first), but every section is tried.
//! 2. [`ConfigFile::validate`]: every semantic problem (empty lists, bad URLs, missing files and secrets, rules that
//!    do not match the topics) collected into one list, each naming its TOML path and what to do. Relative file paths
//!    resolve against the config file's directory. Secrets are read here, into [`secrecy::SecretString`].
//!
//! The section structs are the documentation: every field's `///` line, with its unit and default, is also the comment
//! above it in `default-config.toml` (printed by `cdc2doris print-default-config`) and in `docs/configuration.md`;
//! a test keeps the three in step.

//!
//! The files: `schema.rs` (the file's shape: [`ConfigFile`], which holds each stage's section), `parse.rs` (TOML to
//! [`ConfigFile`]), `validate.rs` (every section's checks, called where each section lives, to [`Config`]).

mod parse;
mod schema;
mod validate;

use std::path::{Path, PathBuf};

use secrecy::SecretString;

pub use self::parse::{parse, ParseError};
pub use self::schema::{ConfigFile, LogConfig, LogFormat};
pub use crate::admin::AdminConfig;
pub use crate::batch::BatchConfig;
pub use crate::dead_letter::{DeadLetterConfig, DeadLetterTarget};
pub use crate::error::Problem;
pub use crate::keys::config::{KeyRuleConfig, KeysConfig};
pub use crate::merge::config::{MergeConfig, PostgresConfig, TlsMode};
use crate::secret::EnvLookup;
pub use crate::sink::doris::config::DorisConfig;
pub use crate::source::config::{
    is_secret_property, KafkaConfig, PropertyValue, DEFAULT_KAFKA_PROPERTIES,
    RESERVED_KAFKA_PROPERTIES,
};

/// The complete, commented configuration printed by `cdc2doris print-default-config`. It parses, and validates once
/// the merge query file it names exists.
pub const DEFAULT_CONFIG: &str = include_str!("../../default-config.toml");

/// A validated configuration: paths absolute, secrets read, the merge query loaded.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file as written, with every relative path resolved against the config file's directory.
    pub file: ConfigFile,
    /// The PostgreSQL password, if configured.
    pub postgres_password: Option<SecretString>,
    /// The Doris password, if configured.
    pub doris_password: Option<SecretString>,
    /// Values of `kafka.properties_from_env`, property name → value.
    pub kafka_secret_properties: Vec<(String, SecretString)>,
    /// The merge query's text.
    pub merge_query: String,
    /// Where dead letters go.
    pub dead_letter: DeadLetterTarget,
}

impl Config {
    /// Every secret the configuration holds: the PostgreSQL and Doris passwords, the secret Kafka properties.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.postgres_password
            .iter()
            .chain(self.doris_password.iter())
            .chain(self.kafka_secret_properties.iter().map(|(_, v)| v))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------------------------

/// Why a configuration could not be loaded. Never retryable: the file must be fixed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}: not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file is TOML but its content is wrong: every problem found.
    #[error("{}: {} problem(s):{}", path.display(), problems.len(), list(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem, in file order as far as possible.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl ConfigError {
    /// The individual problems (one for a read or syntax error).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { path, source } => {
                vec![Problem::new(
                    "(file)",
                    format!("{}: {source}", path.display()),
                )]
            }
            ConfigError::Syntax { message, .. } => vec![Problem::new("(syntax)", message.clone())],
            ConfigError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

/// Reads, parses and validates a configuration file, with secrets from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, &crate::secret::process_env)
}

/// [`load`] for a command (`run`, `backfill`, `verify`, `ddl`): on failure prints the file and every problem once to
/// stderr and gives the exit status of a bad configuration, 2.
pub fn load_for_command(path: &Path) -> Result<Config, i32> {
    let config = load(path).map_err(|e| {
        eprintln!("cdc2doris: {e}");
        2
    })?;
    crate::panic_report::mask_in_panics(config.secrets());
    Ok(config)
}

/// [`load`] with an explicit environment (tests).
pub fn load_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = parse(&text).map_err(|e| e.with_path(path))?;
    // Relative paths in the file resolve against its directory, made absolute so they survive a working-directory
    // change.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = match absolute.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    file.validate(base, env)
        .map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
}

#[cfg(test)]
mod tests;
