//! What every module's error says about retrying.

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
