//! What every module's error says about retrying, and the one type of a configuration problem.

/// How the caller should react to an error. Every module's error enum has a `class()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Temporary (a connection dropped, a server busy): retry the same thing after a backoff.
    Transient,
    /// Retrying cannot help (bad data, bad configuration, access denied): report it or dead-letter it.
    Permanent,
    /// The outcome is unknown (a load may or may not have committed): retry idempotently, e.g. with the same label.
    Ambiguous,
}

/// One thing wrong with a configuration: where (a TOML path) and what to do. Each section's validation (beside
/// the stage that uses it) and `config` report with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// TOML path, e.g. `keys.rules[2].fields`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// An error and its causes, `a: b: c`, each cause once (reqwest, hyper and deadpool repeat their sources' text).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
