//! Sinks: where merged rows are loaded, and the receipt that lets offsets be committed.
//!
//! A [`LoadRequest`] is one batch: the JSON-lines body plus the Kafka offset ranges it covers. A sink loads it
//! exactly once (idempotently, through a label derived from its content and those ranges) and answers with a [`LoadReceipt`];
//! only a receipt may lead `offsets.rs` to commit the ranges. Failures are [`SinkError`]s whose
//! [`class`](SinkError::class) tells the pipeline whether to retry, dead-letter or stop.

pub mod doris;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

pub use doris::{DorisConfig, DorisSink};

pub use crate::error::ErrorClass;

/// A contiguous range of Kafka offsets covered by a batch, both ends included.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetRange {
    /// The topic partition.
    pub tp: crate::offsets::TopicPartition,
    /// First offset in the batch.
    pub first: i64,
    /// Last offset in the batch (inclusive).
    pub last: i64,
}

impl std::fmt::Display for OffsetRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}-{}", self.tp, self.first, self.last)
    }
}

/// A batch's name for logs and `/debug/state`: its id and the offset ranges it covers (the first eight, then how
/// many more).
pub fn describe_ranges(batch: crate::offsets::BatchId, ranges: &[OffsetRange]) -> String {
    use std::fmt::Write as _;
    let mut s = batch.to_string();
    for (i, r) in ranges.iter().enumerate() {
        if i == 8 {
            let _ = write!(s, " +{} more", ranges.len() - 8);
            break;
        }
        let _ = write!(s, " {r}");
    }
    s
}

/// One load: the rows as JSON lines, the Kafka offsets they come from, and the label that names both.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The load's label, made from its table, ranges and body ([`doris::LabelScope::label`]).
    pub label: doris::Label,
    /// Offset ranges the load covers (for logs; part of the label).
    pub ranges: Vec<OffsetRange>,
    /// Rows as JSON lines (one object per line), each with the delete-sign and sequence columns.
    /// `Bytes`, so that a retry resends a cheap clone.
    pub body: Bytes,
    /// Number of rows (lines) in `body`, for logs and metrics.
    pub row_count: u64,
}

/// How a committed load was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStatus {
    /// `Status: Success`: committed and visible.
    Success,
    /// `Status: Publish Timeout`: committed, visible a little later.
    PublishTimeout,
    /// An earlier attempt with the same label had already committed it (`Label Already Exists` + FINISHED,
    /// or `get_load_state` VISIBLE/COMMITTED). Row counters are then unknown (0).
    AlreadyCommitted,
}

/// Proof that Doris committed a batch; the pipeline may acknowledge its offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReceipt {
    /// The label the batch was committed under (with group commit: the label Doris generated).
    pub label: String,
    /// Doris transaction id, when Doris reported one.
    pub txn_id: Option<i64>,
    /// How the commit was recognised.
    pub status: LoadStatus,
    /// Rows Doris loaded.
    pub rows_loaded: u64,
    /// Rows Doris filtered out (within `max_filter_ratio`).
    pub rows_filtered: u64,
    /// Rows excluded by a `where` filter.
    pub rows_unselected: u64,
    /// Bytes Doris received.
    pub bytes_loaded: u64,
    /// Server-side load time (`LoadTimeMs`).
    pub load_time: Duration,
    /// Wall time in the sink, all attempts and backoff included.
    pub elapsed: Duration,
    /// Number of load attempts (1 when the first try committed).
    pub attempts: u32,
}

/// Why a Stream Load failed, from the Doris answer (`docs/doris-stream-load.md` §4, the error table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// `too many filtered rows`: the data is bad; see the error log excerpt.
    FilteredRows,
    /// `[E-235]` too many tablet versions: loads come too often; back off longer.
    VersionPressure,
    /// `[E-238]` too many segments in one rowset (bucket skew).
    TooManySegments,
    /// Database or table does not exist.
    UnknownTable,
    /// Wrong or missing credentials, or no LOAD privilege.
    Auth,
    /// The load timed out or was cancelled in Doris.
    Timeout,
    /// `MEM_LIMIT_EXCEEDED`.
    MemoryLimit,
    /// Too many running transactions on the database.
    TxnLimit,
    /// The FE has no master or no backend available.
    NotReady,
    /// A schema change blocks the load.
    SchemaChange,
    /// Doris received fewer bytes than announced.
    ShortBody,
    /// The body exceeds a Doris size cap.
    BodyTooLarge,
    /// The request itself is wrong (headers, format, sequence column, disabled 2PC...).
    BadRequest,
    /// The transaction of an earlier attempt was aborted or expired; the load must be sent again.
    TxnAborted,
    /// A failure message this client does not know.
    Unclassified,
}

impl FailReason {
    /// Whether retrying the same load (same label) may succeed.
    pub fn class(self) -> ErrorClass {
        match self {
            FailReason::FilteredRows
            | FailReason::TooManySegments
            | FailReason::UnknownTable
            | FailReason::Auth
            | FailReason::BodyTooLarge
            | FailReason::BadRequest => ErrorClass::Permanent,
            // Unclassified failures are retried until the deadline: a retry with the same label cannot
            // duplicate data, while giving up on an unknown message could drop a batch.
            FailReason::VersionPressure
            | FailReason::Timeout
            | FailReason::MemoryLimit
            | FailReason::TxnLimit
            | FailReason::NotReady
            | FailReason::SchemaChange
            | FailReason::ShortBody
            | FailReason::TxnAborted
            | FailReason::Unclassified => ErrorClass::Transient,
        }
    }

    /// Short stable name, used as the `reason` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::FilteredRows => "filtered_rows",
            FailReason::VersionPressure => "version_pressure",
            FailReason::TooManySegments => "too_many_segments",
            FailReason::UnknownTable => "unknown_table",
            FailReason::Auth => "auth",
            FailReason::Timeout => "timeout",
            FailReason::MemoryLimit => "memory_limit",
            FailReason::TxnLimit => "txn_limit",
            FailReason::NotReady => "not_ready",
            FailReason::SchemaChange => "schema_change",
            FailReason::ShortBody => "short_body",
            FailReason::BodyTooLarge => "body_too_large",
            FailReason::BadRequest => "bad_request",
            FailReason::TxnAborted => "txn_aborted",
            FailReason::Unclassified => "unclassified",
        }
    }
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectRefusal {
    /// More than `max_redirects` hops.
    TooManyHops,
    /// `Location` missing or not a URL.
    BadLocation,
    /// The target is neither `http` nor `https`.
    UnsupportedScheme,
    /// https → http while `allow_https_downgrade` is off.
    SchemeDowngrade,
    /// The redirect came from a host that may not send credentials elsewhere (not a configured FE).
    UntrustedRedirector,
}

impl std::fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedirectRefusal::TooManyHops => "too many redirects (see doris.max_redirects)",
            RedirectRefusal::BadLocation => "the Location header is missing or not a URL",
            RedirectRefusal::UnsupportedScheme => "the target scheme is neither http nor https",
            RedirectRefusal::SchemeDowngrade => {
                "https to http downgrade (set doris.allow_https_downgrade to permit it)"
            }
            RedirectRefusal::UntrustedRedirector => {
                "the redirecting host is not a configured FE; credentials are not forwarded \
                 (add it to doris.fe_urls or doris.trusted_hosts)"
            }
        })
    }
}

/// A load that did not (provably) commit.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The batch cannot be loaded as given (e.g. it covers no offset range, so it has no label).
    #[error("batch rejected before sending: {problem}")]
    InvalidRequest {
        /// What is wrong with the request.
        problem: &'static str,
    },
    /// Doris answered `Status: Fail` (or the FE refused the request).
    #[error("load {label} failed in Doris ({reason}): {message}")]
    Rejected {
        /// Label of the load.
        label: String,
        /// Classified cause.
        reason: FailReason,
        /// Doris' own message.
        message: String,
    },
    /// Too many rows were filtered; nothing was committed. The excerpt lists the rejected rows for dead-lettering.
    #[error(
        "load {label} failed: {filtered} of {total} rows filtered (too many filtered rows); \
         fix the data or raise doris.max_filter_ratio; error log: {}",
        error_url.as_deref().unwrap_or("none")
    )]
    FilteredRows {
        /// Label of the load.
        label: String,
        /// Rows in the load.
        total: u64,
        /// Rows filtered.
        filtered: u64,
        /// Doris' `ErrorURL` (on a BE; kept about as long as the load's label).
        error_url: Option<String>,
        /// The first bytes of the error log, fetched from `error_url` (None if it could not be fetched).
        excerpt: Option<String>,
        /// Doris' message.
        message: String,
    },
    /// No usable answer: connection failure, timeout, reset. The load may or may not have committed.
    #[error("load {label}: no answer from {url}: {source}")]
    Transport {
        /// Label of the load.
        label: String,
        /// URL the request went to (never with credentials).
        url: String,
        /// The HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// The server's HTTPS certificate was refused (unknown CA, host name mismatch, expired): nothing was sent, and
    /// retrying cannot help until someone acts.
    #[error("load {label}: {url}: {reason}")]
    Certificate {
        /// Label of the load.
        label: String,
        /// URL the request went to (never with credentials).
        url: String,
        /// What was refused and what to change.
        reason: String,
    },
    /// An HTTP status or body Doris never sends for a final answer (proxy error, HTTP 500, garbage).
    #[error("load {label}: unexpected answer from {url}: HTTP {status}: {body_excerpt}")]
    UnexpectedAnswer {
        /// Label of the load.
        label: String,
        /// URL the request went to.
        url: String,
        /// HTTP status code.
        status: u16,
        /// First bytes of the body.
        body_excerpt: String,
    },
    /// A redirect was not followed (security policy or hop limit).
    #[error("load {label}: redirect from {from} to {to} refused: {refusal}")]
    RedirectRefused {
        /// Label of the load.
        label: String,
        /// URL that answered 307.
        from: String,
        /// Target of the redirect (credentials stripped).
        to: String,
        /// Why.
        refusal: RedirectRefusal,
    },
    /// A label stayed unresolved (RUNNING / PREPARE) until the deadline.
    #[error("load {label}: label still in state {state} when the retry deadline passed")]
    Unresolved {
        /// Label of the load.
        label: String,
        /// Last state `get_load_state` reported.
        state: String,
    },
    /// Retries ran out of time; `last` is the final attempt's error and gives the class.
    #[error("load {label} not committed after {attempts} attempts in {elapsed:?}: {last}")]
    RetriesExhausted {
        /// Label of the load.
        label: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last error.
        #[source]
        last: Box<SinkError>,
    },
}

impl SinkError {
    /// The error without what may quote row data (Doris' message, an unexpected body): label, URL, status and
    /// counts only.
    pub fn summary(&self) -> String {
        match self {
            SinkError::Rejected { label, reason, .. } => {
                format!("load {label} failed in Doris ({reason}); Doris' message is in the log")
            }
            SinkError::UnexpectedAnswer {
                label, url, status, ..
            } => format!("load {label}: unexpected answer from {url}: HTTP {status}"),
            SinkError::RetriesExhausted {
                label,
                attempts,
                elapsed,
                last,
            } => format!(
                "load {label} not committed after {attempts} attempts in {elapsed:?}: {}",
                last.summary()
            ),
            SinkError::InvalidRequest { .. }
            | SinkError::FilteredRows { .. }
            | SinkError::Transport { .. }
            | SinkError::Certificate { .. }
            | SinkError::RedirectRefused { .. }
            | SinkError::Unresolved { .. } => self.to_string(),
        }
    }

    /// Transient / Permanent / Ambiguous: drives retries here and in the pipeline.
    pub fn class(&self) -> ErrorClass {
        match self {
            SinkError::InvalidRequest { .. }
            | SinkError::FilteredRows { .. }
            | SinkError::Certificate { .. }
            | SinkError::RedirectRefused { .. } => ErrorClass::Permanent,
            SinkError::Rejected { reason, .. } => reason.class(),
            SinkError::Transport { .. }
            | SinkError::UnexpectedAnswer { .. }
            | SinkError::Unresolved { .. } => ErrorClass::Ambiguous,
            SinkError::RetriesExhausted { last, .. } => last.class(),
        }
    }

    /// Short stable name of the cause, used as the `reason` label of the retry counter.
    pub fn reason(&self) -> &'static str {
        match self {
            SinkError::InvalidRequest { .. } => "invalid_request",
            SinkError::Rejected { reason, .. } => reason.as_str(),
            SinkError::FilteredRows { .. } => "filtered_rows",
            SinkError::Transport { source, .. } if source.is_timeout() => "http_timeout",
            SinkError::Transport { .. } => "transport",
            SinkError::Certificate { .. } => "tls_certificate",
            SinkError::UnexpectedAnswer { .. } => "unexpected_answer",
            SinkError::RedirectRefused { .. } => "redirect_refused",
            SinkError::Unresolved { .. } => "unresolved_label",
            SinkError::RetriesExhausted { last, .. } => last.reason(),
        }
    }

    /// Whether the same load may be retried (same label) by the sink's retry loop.
    pub fn is_retryable(&self) -> bool {
        self.class() != ErrorClass::Permanent
    }
}

/// Where batches go. A seam for tests and for a second target (StarRocks).
pub trait Sink: Send + Sync {
    /// Loads one batch exactly once and returns the receipt, retrying internally within the sink's deadline.
    fn load(
        &self,
        batch: LoadRequest,
    ) -> impl Future<Output = Result<LoadReceipt, SinkError>> + Send;
}

/// A shared sink is a sink (concurrent loads hold an `Arc`).
impl<S: Sink> Sink for std::sync::Arc<S> {
    fn load(
        &self,
        batch: LoadRequest,
    ) -> impl Future<Output = Result<LoadReceipt, SinkError>> + Send {
        S::load(self, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_drive_retries() {
        let rejected = |reason| SinkError::Rejected {
            label: "l".into(),
            reason,
            message: String::new(),
        };
        let cases = [
            (
                rejected(FailReason::VersionPressure),
                ErrorClass::Transient,
                "version_pressure",
            ),
            (rejected(FailReason::Auth), ErrorClass::Permanent, "auth"),
            (
                SinkError::UnexpectedAnswer {
                    label: "l".into(),
                    url: "http://be:8040".into(),
                    status: 500,
                    body_excerpt: String::new(),
                },
                ErrorClass::Ambiguous,
                "unexpected_answer",
            ),
            (
                SinkError::Unresolved {
                    label: "l".into(),
                    state: "PREPARE".into(),
                },
                ErrorClass::Ambiguous,
                "unresolved_label",
            ),
            (
                SinkError::RedirectRefused {
                    label: "l".into(),
                    from: "http://be:8040/".into(),
                    to: "http://x:1/".into(),
                    refusal: RedirectRefusal::UntrustedRedirector,
                },
                ErrorClass::Permanent,
                "redirect_refused",
            ),
            (
                SinkError::InvalidRequest {
                    problem: "no ranges",
                },
                ErrorClass::Permanent,
                "invalid_request",
            ),
        ];
        for (error, class, reason) in cases {
            assert_eq!(error.class(), class, "{error}");
            assert_eq!(error.reason(), reason);
            assert_eq!(error.is_retryable(), class != ErrorClass::Permanent);
            let exhausted = SinkError::RetriesExhausted {
                label: "l".into(),
                attempts: 3,
                elapsed: Duration::from_secs(1),
                last: Box::new(error),
            };
            assert_eq!((exhausted.class(), exhausted.reason()), (class, reason));
        }
    }
}
