//! TOML text to a [`ConfigFile`]: syntax first, then each section on its own, so one section's mistake does not
//! hide another's.

use std::path::Path;

use serde::Deserialize;

use super::{
    list, AdminConfig, BatchConfig, ConfigError, ConfigFile, DeadLetterConfig, DorisConfig,
    KafkaConfig, KeysConfig, LogConfig, MergeConfig, PostgresConfig, Problem,
};
use crate::validation::toml_key;

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
    pub(super) fn with_path(self, path: &Path) -> ConfigError {
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
