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
//! The structs below are the documentation: every field's `///` line, with its unit and default, is also the comment
//! above it in `default-config.toml` (printed by `cdc2doris print-default-config`) and in `docs/configuration.md`;
//! a test keeps the three in step.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use crate::dead_letter::DeadLetterTarget;
use crate::decode::Format;
pub use crate::error::Problem;
use crate::keys::{KeyType, TableMatch};
pub use crate::merge::config::{PostgresConfig, TlsMode};
use crate::secret::{read_secret, EnvLookup};
pub use crate::sink::doris::config::DorisConfig;

/// The complete, commented configuration printed by `cdc2doris print-default-config`. It parses, and validates once
/// the merge query file it names exists.
pub const DEFAULT_CONFIG: &str = include_str!("../../default-config.toml");

// ---------------------------------------------------------------------------------------------------------------
// The file, as written.
// ---------------------------------------------------------------------------------------------------------------

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

/// The `[kafka]` section.
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

/// The `[keys]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// At least one rule per topic in `kafka.topics`. Required.
    pub rules: Vec<KeyRuleConfig>,
}

/// One `[[keys.rules]]` entry: how a topic's events (or one table's events on it) yield keys of the merged table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRuleConfig {
    /// The topic this rule applies to. Required.
    pub topic: String,
    /// Only the events of this table, as `table` (any schema or database) or `schema.table`, for a topic that
    /// carries several tables (Maxwell's and Canal's default, a Debezium topic router). Events of a table that no
    /// rule of the topic names are ignored, and counted, unless the topic also has a rule without `table`.
    /// Default: every table of the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Message format: `auto`, `debezium`, `debezium-unwrapped`, `maxwell` or `canal`; the same for every rule of a
    /// topic. Default `auto`.
    #[serde(default)]
    pub format: Format,
    /// The field whose value identifies what to refresh, e.g. `["job_id"]`, read from the row after the change
    /// and, when it differs, before it. One field for now: the merge query takes one key column. Required.
    pub fields: Vec<String>,
    /// Type of the fields' values: `integer` or `string`. Default `integer`.
    #[serde(default)]
    pub key_type: KeyType,
    /// SQL mapping the fields' values (`$1`, an array) to keys of the merged table, e.g.
    /// `SELECT id FROM jobs WHERE client_id = ANY($1)`. Default: none (the values are the keys).
    #[serde(default)]
    pub resolve_query: Option<String>,
}

/// The `[merge]` section.
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

/// The `[batch]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch closes once it holds this many distinct keys. Default 10000.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// A batch closes once the Kafka messages it covers reach this many bytes. Default 16777216 (16 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// A batch closes at the latest this long after its first message. Default 1 s.
    #[serde(default = "default_max_wait", with = "humantime_serde")]
    pub max_wait: Duration,
    /// Batches being merged or loaded at once; more overlap PostgreSQL and Doris work. Default 2.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// On shutdown, how long to flush the open batch and wait for in-flight loads. Default 30 s.
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_keys: default_max_keys(),
            max_bytes: default_max_bytes(),
            max_wait: default_max_wait(),
            max_in_flight: default_max_in_flight(),
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

/// The `[dead_letter]` section.
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

/// The `[admin]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin HTTP server. Default `127.0.0.1:9464`.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}

/// The `[log]` section.
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

fn default_revoke_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_chunk_size() -> usize {
    1000
}
fn default_max_keys() -> usize {
    10_000
}
fn default_max_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_max_wait() -> Duration {
    Duration::from_secs(1)
}
fn default_max_in_flight() -> usize {
    2
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn default_log_filter() -> String {
    "info".to_string()
}
fn default_progress_interval() -> Duration {
    Duration::from_secs(10)
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

// ---------------------------------------------------------------------------------------------------------------
// Parsing.
// ---------------------------------------------------------------------------------------------------------------

/// Reads, parses and validates a configuration file, with secrets from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, &crate::secret::process_env)
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

/// A parse failure before the file's path is known ([`load`] turns it into a [`ConfigError`]).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not valid TOML.
    #[error("not valid TOML: {0}")]
    Syntax(String),
    /// Valid TOML, wrong shape: one problem per failing section.
    #[error("{} problem(s):{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

impl ParseError {
    fn with_path(self, path: &Path) -> ConfigError {
        match self {
            ParseError::Syntax(message) => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            ParseError::Invalid(problems) => ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            },
        }
    }
}

/// Parses a configuration file's text. Each section is deserialized separately, so a mistake in one does not hide
/// mistakes in the others.
pub fn parse(text: &str) -> Result<ConfigFile, ParseError> {
    let de = toml::Deserializer::parse(text)
        .map_err(|e| ParseError::Syntax(syntax_message(text, &e)))?;
    let mut table =
        toml::Table::deserialize(de).map_err(|e| ParseError::Syntax(syntax_message(text, &e)))?;
    let mut problems = Vec::new();
    let kafka = section::<KafkaConfig>(&mut table, "kafka", None, &mut problems);
    let postgres = section::<PostgresConfig>(&mut table, "postgres", None, &mut problems);
    let keys = section::<KeysConfig>(&mut table, "keys", None, &mut problems);
    let merge = section::<MergeConfig>(&mut table, "merge", None, &mut problems);
    let doris = section::<DorisConfig>(&mut table, "doris", None, &mut problems);
    let batch = section(
        &mut table,
        "batch",
        Some(BatchConfig::default),
        &mut problems,
    );
    let dead_letter = section::<DeadLetterConfig>(&mut table, "dead_letter", None, &mut problems);
    let admin = section(
        &mut table,
        "admin",
        Some(AdminConfig::default),
        &mut problems,
    );
    let log = section(&mut table, "log", Some(LogConfig::default), &mut problems);
    for key in table.keys() {
        problems.push(Problem::new(
            toml_key(key),
            "unknown section; expected kafka, postgres, keys, merge, doris, batch, dead_letter, admin or log",
        ));
    }
    match (
        kafka,
        postgres,
        keys,
        merge,
        doris,
        batch,
        dead_letter,
        admin,
        log,
    ) {
        (
            Some(kafka),
            Some(postgres),
            Some(keys),
            Some(merge),
            Some(doris),
            Some(batch),
            Some(dead_letter),
            Some(admin),
            Some(log),
        ) if problems.is_empty() => Ok(ConfigFile {
            kafka,
            postgres,
            keys,
            merge,
            doris,
            batch,
            dead_letter,
            admin,
            log,
        }),
        _ => Err(ParseError::Invalid(problems)),
    }
}

/// Deserializes one top-level section, recording a problem named by its full TOML path on failure.
fn section<T: serde::de::DeserializeOwned>(
    table: &mut toml::Table,
    name: &str,
    default: Option<fn() -> T>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let Some(value) = table.remove(name) else {
        return match default {
            Some(default) => Some(default()),
            None => {
                problems.push(Problem::new(
                    name,
                    format!("missing section; add a [{name}] table"),
                ));
                None
            }
        };
    };
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                name.to_string()
            } else {
                format!("{name}.{inner}")
            };
            problems.push(Problem::new(path, type_message(e.inner())));
            None
        }
    }
}

/// A TOML syntax error as `line L, column C: message` (the parser's own text spans several lines).
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

/// A deserialization error without the toml crate's ``in `key` `` suffix (the TOML path is shown already), and
/// with serde's message for an untagged enum made readable.
fn type_message(e: &toml::de::Error) -> String {
    let message = e.message().trim();
    let message = match message.rsplit_once(" in `") {
        Some((head, tail)) if tail.ends_with('`') && tail.matches('`').count() == 1 => head,
        _ => message,
    };
    if message.starts_with("data did not match any variant of untagged enum PropertyValue") {
        return "expected a string, an integer or a boolean".to_string();
    }
    message.to_string()
}

/// A key as written in a TOML path: bare if it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------------------------------------------

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

/// The `[dead_letter]` destination as the file names it, before the producer settings are known.
enum DeadLetterChoice {
    Topic(String),
    File(PathBuf),
}

impl Config {
    /// librdkafka consumer properties without secrets: the service-owned ones, the defaults (unless overridden), then
    /// `kafka.properties`. Secrets from `kafka_secret_properties` are added by the caller.
    pub fn kafka_consumer_properties(&self) -> BTreeMap<String, String> {
        let kafka = &self.file.kafka;
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

impl Config {
    /// Settings that work but deserve a look; `cdc2doris check` prints them as `warn` lines.
    pub fn warnings(&self) -> Vec<Problem> {
        let file = &self.file;
        let mut w = Vec::new();
        if let Some(v) = file.kafka.properties.get("max.poll.interval.ms") {
            let revoke_ms = file.kafka.revoke_timeout.as_millis();
            let ms = v.to_string().parse::<u128>().ok();
            if let Some(ms) = ms.filter(|ms| *ms <= revoke_ms) {
                w.push(Problem::new(
                    "kafka.properties.\"max.poll.interval.ms\"",
                    format!(
                        "{ms} ms is not above kafka.revoke_timeout ({revoke_ms} ms): a slow revoke makes this member \
                         leave the group; raise it"
                    ),
                ));
            }
        }
        if file.merge.chunk_size > file.batch.max_keys {
            w.push(Problem::new(
                "merge.chunk_size",
                format!(
                    "{} is above batch.max_keys ({}), so a chunk never fills; lower it or raise batch.max_keys",
                    file.merge.chunk_size, file.batch.max_keys
                ),
            ));
        }
        w.extend(crate::admin::exposure_warning(file.admin.listen));
        if file.batch.max_in_flight > file.postgres.pool_size {
            w.push(Problem::new(
                "batch.max_in_flight",
                format!(
                    "{} batches in flight share {} PostgreSQL connections (postgres.pool_size); raise the pool \
                     size so batches do not wait for each other",
                    file.batch.max_in_flight, file.postgres.pool_size
                ),
            ));
        }
        w
    }
}

impl ConfigFile {
    /// Checks everything that can be checked without connecting anywhere, and reports every problem at once.
    /// Relative paths resolve against `base_dir` (the config file's directory).
    pub fn validate(mut self, base_dir: &Path, env: EnvLookup<'_>) -> Result<Config, Vec<Problem>> {
        let mut p = Vec::new();
        let kafka_secret_properties = validate_kafka(&self.kafka, env, &mut p);
        let postgres_password = validate_postgres(&mut self.postgres, base_dir, env, &mut p);
        validate_keys(&self.keys, &self.kafka, &self.merge, &mut p);
        let merge_query = validate_merge(&mut self.merge, base_dir, &mut p);
        let doris_password = validate_doris(&mut self.doris, base_dir, env, &mut p);
        validate_batch(&self.batch, &mut p);
        let dead_letter = validate_dead_letter(&mut self.dead_letter, base_dir, &mut p).map(
            |choice| match choice {
                DeadLetterChoice::File(path) => DeadLetterTarget::File(path),
                // The source's cluster, with its security settings.
                DeadLetterChoice::Topic(topic) => DeadLetterTarget::kafka_topic(
                    &topic,
                    &self.kafka.bootstrap_servers,
                    self.kafka
                        .properties
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.to_string())),
                    &kafka_secret_properties,
                ),
            },
        );
        validate_log(&self.log, &mut p);
        match (merge_query, dead_letter) {
            (Some(merge_query), Some(dead_letter)) if p.is_empty() => Ok(Config {
                file: self,
                postgres_password,
                doris_password,
                kafka_secret_properties,
                merge_query,
                dead_letter,
            }),
            _ => Err(p),
        }
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn require_nonempty(value: &str, path: &str, what: &str, p: &mut Vec<Problem>) {
    if value.trim().is_empty() {
        p.push(Problem::new(path, format!("empty; {what}")));
    }
}

fn validate_kafka(
    kafka: &KafkaConfig,
    env: EnvLookup<'_>,
    p: &mut Vec<Problem>,
) -> Vec<(String, SecretString)> {
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

/// Whether a librdkafka property holds a secret (`sasl.password`, `ssl.key.password`, `sasl.oauthbearer.client.secret`…).
pub(crate) fn is_secret_property(name: &str) -> bool {
    name.contains("password") || name.contains("secret")
}

fn validate_postgres(
    pg: &mut PostgresConfig,
    base: &Path,
    env: EnvLookup<'_>,
    p: &mut Vec<Problem>,
) -> Option<SecretString> {
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
    pg.password_file = pg.password_file.as_deref().map(|f| resolve(base, f));
    let password = match read_secret(pg.password_env.as_deref(), pg.password_file.as_deref(), env) {
        Ok(pw) => pw,
        Err(e) => {
            p.push(Problem::new(
                secret_path("postgres", pg.password_env.is_some()),
                e.to_string(),
            ));
            None
        }
    };
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
        let ca = resolve(base, ca);
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

/// The TOML path to blame for a secret error: `password_env` if set, else `password_file`.
fn secret_path(section: &str, env_set: bool) -> String {
    if env_set {
        format!("{section}.password_env")
    } else {
        format!("{section}.password_file")
    }
}

fn validate_keys(
    keys: &KeysConfig,
    kafka: &KafkaConfig,
    merge: &MergeConfig,
    p: &mut Vec<Problem>,
) {
    if keys.rules.is_empty() {
        p.push(Problem::new(
            "keys.rules",
            "empty; add a [[keys.rules]] entry per topic",
        ));
    }
    // The first rule of each topic, and of each (topic, table).
    let mut first_rule: BTreeMap<&str, usize> = BTreeMap::new();
    let mut first_for_table: BTreeMap<(&str, Option<&str>), usize> = BTreeMap::new();
    for (i, rule) in keys.rules.iter().enumerate() {
        let at = |field: &str| format!("keys.rules[{i}].{field}");
        require_nonempty(&rule.topic, &at("topic"), "name the topic", p);
        if let Some(table) = &rule.table {
            if let Err(why) = TableMatch::parse(table) {
                p.push(Problem::new(at("table"), why));
            }
        }
        let table_key = rule.table.as_deref().map(str::trim);
        if let Some(j) = first_for_table.get(&(rule.topic.as_str(), table_key)) {
            let what = match table_key {
                Some(t) => format!("table {t:?} of {:?}", rule.topic),
                None => format!("{:?} (every table)", rule.topic),
            };
            p.push(Problem::new(
                at(if table_key.is_some() { "table" } else { "topic" }),
                format!("{what} already has a rule (keys.rules[{j}]); keep one rule per topic and table"),
            ));
        } else {
            first_for_table.insert((rule.topic.as_str(), table_key), i);
        }
        if let Some(&j) = first_rule.get(rule.topic.as_str()) {
            let first_format = keys.rules.get(j).map_or(rule.format, |r| r.format);
            if first_format != rule.format {
                p.push(Problem::new(
                    at("format"),
                    format!(
                        "{} but keys.rules[{j}] reads topic {:?} as {}; a topic has one format",
                        rule.format, rule.topic, first_format
                    ),
                ));
            }
        } else {
            first_rule.insert(rule.topic.as_str(), i);
        }
        if !rule.topic.is_empty() && !kafka.topics.contains(&rule.topic) {
            p.push(Problem::new(
                at("topic"),
                format!(
                    "{:?} is not in kafka.topics; add it there or remove the rule",
                    rule.topic
                ),
            ));
        }
        if rule.fields.is_empty() {
            p.push(Problem::new(at("fields"), "empty; name the key field(s)"));
        } else if rule.fields.len() > 1 {
            // The decoder can extract composite keys, but the merge query binds one array of single keys.
            p.push(Problem::new(
                at("fields"),
                format!(
                    "{} fields; composite keys are not supported yet (the merge query takes one key column): name \
                     one field",
                    rule.fields.len()
                ),
            ));
        }
        for (k, field) in rule.fields.iter().enumerate() {
            require_nonempty(
                field,
                &format!("keys.rules[{i}].fields[{k}]"),
                "name a field",
                p,
            );
        }
        match &rule.resolve_query {
            Some(query) => {
                if !query.contains("$1") {
                    p.push(Problem::new(
                        at("resolve_query"),
                        "does not use $1; it receives the fields' values as an array, e.g. \
                         SELECT id FROM jobs WHERE client_id = ANY($1)",
                    ));
                }
            }
            None => {
                if rule.key_type != merge.key_type {
                    p.push(Problem::new(
                        at("key_type"),
                        format!(
                            "{} but merge.key_type is {}; the values are keys of the merged table, so the types \
                             must match (or add a resolve_query)",
                            key_type_name(rule.key_type),
                            key_type_name(merge.key_type)
                        ),
                    ));
                }
            }
        }
    }
    for (i, topic) in kafka.topics.iter().enumerate() {
        if !topic.is_empty() && !first_rule.contains_key(topic.as_str()) {
            p.push(Problem::new(
                format!("kafka.topics[{i}]"),
                format!("{topic:?} has no rule in keys.rules; add a [[keys.rules]] entry for it"),
            ));
        }
    }
}

fn key_type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Integer => "integer",
        KeyType::String => "string",
    }
}

fn validate_merge(merge: &mut MergeConfig, base: &Path, p: &mut Vec<Problem>) -> Option<String> {
    require_nonempty(
        &merge.key_column,
        "merge.key_column",
        "name the merge query's key output column",
        p,
    );
    if merge.chunk_size == 0 {
        p.push(Problem::new("merge.chunk_size", "0; must be at least 1"));
    }
    merge.query_file = resolve(base, &merge.query_file);
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

/// Checks the `[doris]` section ([`DorisConfig::validate`]); resolves its password file and reads the password.
pub fn validate_doris(
    doris: &mut DorisConfig,
    base: &Path,
    env: EnvLookup<'_>,
    p: &mut Vec<Problem>,
) -> Option<SecretString> {
    // The section's own rules live beside the sink that uses it; here only what needs the file: the password.
    p.extend(doris.validate());
    p.extend(doris.resolve_files(base));
    doris.password_file = doris.password_file.as_deref().map(|f| resolve(base, f));
    match read_secret(
        doris.password_env.as_deref(),
        doris.password_file.as_deref(),
        env,
    ) {
        Ok(pw) => pw,
        Err(e) => {
            p.push(Problem::new(
                secret_path("doris", doris.password_env.is_some()),
                e.to_string(),
            ));
            None
        }
    }
}

fn validate_batch(batch: &BatchConfig, p: &mut Vec<Problem>) {
    for (value, path) in [
        (batch.max_keys, "batch.max_keys"),
        (batch.max_bytes, "batch.max_bytes"),
        (batch.max_in_flight, "batch.max_in_flight"),
    ] {
        if value == 0 {
            p.push(Problem::new(path, "0; must be at least 1"));
        }
    }
    if batch.max_wait.is_zero() {
        p.push(Problem::new(
            "batch.max_wait",
            "0; give a positive duration, e.g. \"1s\"",
        ));
    }
}

fn validate_dead_letter(
    dl: &mut DeadLetterConfig,
    base: &Path,
    p: &mut Vec<Problem>,
) -> Option<DeadLetterChoice> {
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
            let path = resolve(base, path);
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

fn validate_log(log: &LogConfig, p: &mut Vec<Problem>) {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log.filter) {
        p.push(Problem::new(
            "log.filter",
            format!("{:?}: {e}; e.g. \"info,cdc2doris=debug\"", log.filter),
        ));
    }
    if log.progress_interval.is_zero() {
        p.push(Problem::new(
            "log.progress_interval",
            "0; give a positive duration, e.g. \"10s\"",
        ));
    }
}

#[cfg(test)]
mod tests;
