//! [`DorisSink`]: one body of rows → one Stream Load, committed exactly once through its label.
//!
//! One attempt: PUT to an FE (failing over along `fe_urls`) or straight to a BE (`be_urls`, round-robin), follow
//! the 307 by hand ([`super::redirect`]), read the JSON answer and judge it by `Status` ([`super::response`]):
//! - `Success` / `Publish Timeout` → committed (with 2PC: then commit the PRECOMMITTED transaction);
//! - `Label Already Exists` → FINISHED is committed; RUNNING → poll `get_load_state`; PRECOMMITTED → commit it;
//! - `Fail` → transient (retry) or permanent (return; filtered rows come with the error-log excerpt);
//! - no answer, non-200, unparsable → ambiguous: retry with the **same label**, which Doris deduplicates.
//!
//! Attempts are retried with exponential backoff and jitter (longer after `[E-235]`) under `retry_deadline`;
//! every retry is logged with the label and reason and counted in `cdc2doris_sink_retries_total{reason}`.
//! Outcomes are counted in `cdc2doris_sink_loads_total{outcome}`, `cdc2doris_sink_rows_total` and
//! `cdc2doris_sink_bytes_total`.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, EXPECT, LOCATION};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, info, warn, Instrument};

use super::config::{DorisConfig, GroupCommitMode};
use crate::error::Problem;

use super::label::LabelScope;
use super::redirect::RedirectPolicy;
use super::response::{
    classify_fe_refusal, classify_response, classify_two_phase, parse_reply, ExistingJob,
    FeEnvelope, LoadState, Outcome, Reply, StreamLoadResponse, TwoPhaseOutcome,
};
use crate::sink::{FailReason, LoadReceipt, LoadRequest, LoadStatus, Sink, SinkError};

/// Doris' hidden delete-sign column; every row carries it (0 upsert, 1 delete).
pub const DELETE_SIGN_COLUMN: &str = "__DORIS_DELETE_SIGN__";
/// Largest answer read from Doris; real answers are under 2 KiB.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Characters of an unexpected answer kept in an error.
const EXCERPT_CHARS: usize = 512;
/// HTTP timeout for control requests (`get_load_state`, 2PC commit, error log).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a [`DorisSink`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The `[doris]` section has problems (all of them listed).
    #[error("invalid [doris] configuration: {}", list(.0))]
    Config(Vec<Problem>),
    /// The HTTP client could not be created (`doris.tls_ca_file` unusable, or reqwest refused the settings).
    #[error(transparent)]
    Client(#[from] super::tls::ClientError),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The Doris Stream Load sink. Cheap to share (`Arc`) between concurrent loads.
#[derive(Debug)]
pub struct DorisSink {
    cfg: DorisConfig,
    user: String,
    password: SecretString,
    client: reqwest::Client,
    policy: RedirectPolicy,
    fe_urls: Vec<Url>,
    be_urls: Vec<Url>,
    /// `columns` header value, or None to send `hidden_columns` instead.
    columns_header: Option<String>,
    /// Index of the FE that answered last (failover starts there).
    preferred_fe: AtomicUsize,
    /// Round-robin cursor over `be_urls`.
    next_be: AtomicUsize,
}

/// Where an operation failed: at its first hop (an FE that may be skipped) or later.
struct HopError {
    first_hop: bool,
    error: SinkError,
}

/// A final (non-redirect) HTTP answer.
struct Answer {
    url: Url,
    status: StatusCode,
    body: Bytes,
}

impl DorisSink {
    /// Builds the sink; `password` is resolved by the caller from `password_env`/`password_file`.
    pub fn new(cfg: &DorisConfig, password: SecretString) -> Result<DorisSink, BuildError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(BuildError::Config(problems));
        }
        let parse = |urls: &[String], key: &str| -> Result<Vec<Url>, BuildError> {
            urls.iter()
                .enumerate()
                .map(|(i, u)| {
                    Url::parse(u).map_err(|e| {
                        BuildError::Config(vec![Problem {
                            path: format!("doris.{key}[{i}]"),
                            message: e.to_string(),
                        }])
                    })
                })
                .collect()
        };
        let fe_urls = parse(&cfg.fe_urls, "fe_urls")?;
        let be_urls = parse(&cfg.be_urls, "be_urls")?;
        let policy = RedirectPolicy::new(
            &fe_urls,
            &be_urls,
            &cfg.trusted_hosts,
            &cfg.be_host_rewrite,
            cfg.allow_https_downgrade,
            cfg.max_redirects,
        );
        // No automatic redirects: reqwest would drop Authorization on the FE → BE hop (port change, reqwest
        // #516; spec §1 "Redirect pitfall"). `follow` does it by hand.
        let client = super::tls::http_client(
            cfg.tls_ca_file.as_deref(),
            cfg.connect_timeout,
            cfg.effective_request_timeout(),
        )?;
        Ok(DorisSink {
            columns_header: columns_header(&cfg.columns, &cfg.sequence_column),
            cfg: cfg.clone(),
            user: cfg.user.clone(),
            password,
            client,
            policy,
            fe_urls,
            be_urls,
            preferred_fe: AtomicUsize::new(0),
            next_be: AtomicUsize::new(0),
        })
    }

    /// Sets the table columns each JSON row carries (the merge query's output columns), replacing
    /// `doris.columns`; `__DORIS_DELETE_SIGN__` and the sequence column are appended when missing.
    pub fn with_columns(mut self, columns: &[String]) -> DorisSink {
        self.columns_header = columns_header(columns, &self.cfg.sequence_column);
        self
    }

    /// How this sink's loads are labelled (`doris.label_prefix`, the target table).
    pub fn label_scope(&self) -> LabelScope {
        LabelScope::new(&self.cfg.label_prefix, &self.cfg.database, &self.cfg.table)
    }

    /// The configuration the sink runs with.
    pub fn config(&self) -> &DorisConfig {
        &self.cfg
    }

    /// Whether a label is sent (group commit forbids it).
    fn sends_label(&self) -> bool {
        matches!(self.cfg.group_commit, None | Some(GroupCommitMode::OffMode))
    }

    /// Loads one batch: attempts under the same label until committed, refused, or out of time.
    async fn load_batch(&self, req: LoadRequest) -> Result<LoadReceipt, SinkError> {
        let label = req.label.as_str();
        let started = Instant::now();
        let deadline = started + self.cfg.retry_deadline;
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.cfg.retry_min_delay)
            .with_max_delay(self.cfg.retry_max_delay)
            .with_jitter()
            .without_max_times()
            .with_total_delay(Some(self.cfg.retry_deadline));
        let version_pressure_delay = self.cfg.version_pressure_delay;

        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(label, &req.body, deadline).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e: &SinkError| e.is_retryable() && Instant::now() < deadline)
        .adjust(|e: &SinkError, delay: Option<Duration>| {
            let mut delay = delay?;
            if matches!(
                e,
                SinkError::Rejected {
                    reason: FailReason::VersionPressure,
                    ..
                }
            ) {
                // [E-235]: the tablet has too many versions; only compaction helps, so wait longer.
                delay += version_pressure_delay;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            (!remaining.is_zero()).then(|| delay.min(remaining))
        })
        .notify(|e: &SinkError, delay: Duration| {
            warn!(
                label = %label,
                reason = e.reason(),
                class = ?e.class(),
                attempt = attempts.load(Ordering::Relaxed),
                retry_in = ?delay,
                error = %e,
                "Stream Load not committed, retrying with the same label"
            );
            metrics::counter!("cdc2doris_sink_retries_total", "reason" => e.reason()).increment(1);
        })
        .await;

        let attempts = attempts.load(Ordering::Relaxed);
        match result {
            Ok(mut receipt) => {
                receipt.attempts = attempts;
                receipt.elapsed = started.elapsed();
                info!(
                    label = %receipt.label,
                    status = ?receipt.status,
                    rows = receipt.rows_loaded,
                    filtered = receipt.rows_filtered,
                    bytes = receipt.bytes_loaded,
                    attempts,
                    "Stream Load committed"
                );
                let status = match receipt.status {
                    LoadStatus::Success => "success",
                    LoadStatus::PublishTimeout => "publish_timeout",
                    LoadStatus::AlreadyCommitted => "already_committed",
                };
                metrics::counter!("cdc2doris_sink_loads_total", "outcome" => status).increment(1);
                metrics::counter!("cdc2doris_sink_rows_total").increment(receipt.rows_loaded);
                metrics::counter!("cdc2doris_sink_bytes_total").increment(receipt.bytes_loaded);
                Ok(receipt)
            }
            Err(error) => {
                metrics::counter!("cdc2doris_sink_loads_total", "outcome" => "failed").increment(1);
                warn!(label = %label, reason = error.reason(), class = ?error.class(), attempts, error = %error, "Stream Load failed");
                if error.is_retryable() {
                    Err(SinkError::RetriesExhausted {
                        label: label.to_string(),
                        attempts,
                        elapsed: started.elapsed(),
                        last: Box::new(error),
                    })
                } else {
                    Err(error)
                }
            }
        }
    }

    /// One attempt: send, then settle what the answer means.
    async fn attempt(
        &self,
        label: &str,
        body: &Bytes,
        deadline: Instant,
    ) -> Result<LoadReceipt, SinkError> {
        let (url, resp) = self.send_load(label, body).await?;
        let label = if self.sends_label() {
            label.to_string()
        } else {
            resp.label.clone()
        };
        match classify_response(&resp) {
            Outcome::Committed { publish_timeout } => {
                if resp.is_precommitted() {
                    self.commit_two_phase(&label, resp.txn()).await?;
                }
                let status = if publish_timeout {
                    LoadStatus::PublishTimeout
                } else {
                    LoadStatus::Success
                };
                Ok(receipt(&label, &resp, status))
            }
            Outcome::LabelExists {
                job: ExistingJob::Finished,
                txn_id,
            } => {
                debug!(label = %label, "label already committed by an earlier attempt");
                Ok(already_committed(&label, txn_id))
            }
            Outcome::LabelExists {
                job: ExistingJob::Precommitted,
                txn_id,
            } => {
                info!(label = %label, txn_id, "found a PRECOMMITTED load of this batch; committing it");
                self.commit_two_phase(&label, txn_id).await?;
                Ok(already_committed(&label, txn_id))
            }
            Outcome::LabelExists {
                job: ExistingJob::Running,
                txn_id,
            } => self.wait_for_label(&label, txn_id, deadline).await,
            Outcome::Failed(FailReason::FilteredRows) => {
                Err(self.filtered_rows_error(&label, &resp).await)
            }
            Outcome::Failed(reason) => Err(SinkError::Rejected {
                label,
                reason,
                message: resp.message,
            }),
            Outcome::UnknownStatus => Err(SinkError::UnexpectedAnswer {
                label,
                url: url.to_string(),
                status: 200,
                body_excerpt: format!("Status {:?}: {}", resp.status, resp.message),
            }),
        }
    }

    /// Sends the Stream Load (FE failover or direct BE) and parses the BE's answer.
    async fn send_load(
        &self,
        label: &str,
        body: &Bytes,
    ) -> Result<(Url, StreamLoadResponse), SinkError> {
        let mut headers = self.load_headers();
        if self.sends_label() {
            headers.insert("label", header_value(label));
        }
        let segments = [
            "api",
            self.cfg.database.as_str(),
            self.cfg.table.as_str(),
            "_stream_load",
        ];
        let answer = if self.be_urls.is_empty() {
            self.via_fe(label, &segments, Method::PUT, &headers, Some(body))
                .await?
        } else {
            let i = self.next_be.fetch_add(1, Ordering::Relaxed) % self.be_urls.len();
            let start = endpoint(&self.be_urls[i], &segments, None);
            self.follow(label, start, Method::PUT, &headers, Some(body), false)
                .await
                .map_err(|e| e.error)?
        };
        match parse_reply(&answer.body) {
            Ok(Reply::StreamLoad(resp)) => Ok((answer.url, resp)),
            Ok(Reply::Fe(env)) => Err(SinkError::Rejected {
                label: label.to_string(),
                reason: classify_fe_refusal(&env),
                message: env.text(),
            }),
            Err(_) => Err(unexpected(label, &answer)),
        }
    }

    /// Runs one request through the FEs, starting at the one that answered last; an FE that cannot be reached
    /// (or answers garbage) at the first hop is skipped — it never executes a load, so skipping is safe.
    async fn via_fe(
        &self,
        label: &str,
        segments: &[&str],
        method: Method,
        headers: &HeaderMap,
        body: Option<&Bytes>,
    ) -> Result<Answer, SinkError> {
        self.via_fe_query(label, segments, None, method, headers, body)
            .await
    }

    async fn via_fe_query(
        &self,
        label: &str,
        segments: &[&str],
        query: Option<(&str, &str)>,
        method: Method,
        headers: &HeaderMap,
        body: Option<&Bytes>,
    ) -> Result<Answer, SinkError> {
        let n = self.fe_urls.len();
        let first = self.preferred_fe.load(Ordering::Relaxed) % n.max(1);
        let mut last_error = None;
        for k in 0..n {
            let i = (first + k) % n;
            let start = endpoint(&self.fe_urls[i], segments, query);
            let probe = self.cfg.probe_fe && body.is_some();
            match self
                .follow(label, start, method.clone(), headers, body, probe)
                .await
            {
                Ok(answer) => {
                    self.preferred_fe.store(i, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(HopError {
                    first_hop: true,
                    error:
                        error @ (SinkError::Transport { .. }
                        | SinkError::Certificate { .. }
                        | SinkError::UnexpectedAnswer { .. }),
                }) if k + 1 < n => {
                    warn!(label = %label, fe = %self.fe_urls[i], error = %error, "FE unusable, trying the next one");
                    metrics::counter!("cdc2doris_sink_retries_total", "reason" => "fe_failover")
                        .increment(1);
                    last_error = Some(error);
                }
                Err(e) => return Err(e.error),
            }
        }
        Err(last_error.unwrap_or(SinkError::InvalidRequest {
            problem: "no FE configured (doris.fe_urls is empty)",
        }))
    }

    /// Sends `method` to `start` and follows 307s by hand, re-sending the same headers with a fresh
    /// `Authorization` and the same body to each hop.
    ///
    /// Why by hand (spec §1 "Redirect pitfall"; details in `super::redirect`): reqwest's own redirect handling
    /// strips `Authorization` when the port changes (FE :8030 → BE :8040; reqwest #516, maintainers advise
    /// following by hand), so the BE would refuse the load; and it cannot replay a body it does not hold.
    ///
    /// With `probe`, the first hop carries no body and no label: the FE only needs the headers to choose a BE
    /// (spec §1: it never reads the body), so the body crosses the network once, to the BE. If the first hop
    /// turns out to execute loads itself (a BE listed as FE), the request is re-sent there with the body.
    async fn follow(
        &self,
        label: &str,
        start: Url,
        method: Method,
        headers: &HeaderMap,
        body: Option<&Bytes>,
        probe: bool,
    ) -> Result<Answer, HopError> {
        let mut url = start;
        let mut hops = 0u8;
        let mut probing = probe;
        loop {
            let err = |error| HopError {
                first_hop: hops == 0,
                error,
            };
            let mut hop_headers = headers.clone();
            if probing {
                // The probe must not consume the label if the "FE" turns out to be a BE.
                hop_headers.remove("label");
            }
            hop_headers.insert(AUTHORIZATION, self.authorization());
            let hop_body = match body {
                Some(body) if !probing => body.clone(),
                _ => Bytes::new(),
            };
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(hop_headers);
            if method != Method::GET {
                request = request.body(hop_body);
            }
            let response = request.send().await.map_err(|source| {
                let host = url.host_str().unwrap_or_default();
                err(
                    match super::tls::certificate_refusal(
                        &source,
                        host,
                        self.cfg.tls_ca_file.as_deref(),
                    ) {
                        Some(reason) => SinkError::Certificate {
                            label: label.to_string(),
                            url: url.to_string(),
                            reason,
                        },
                        None => SinkError::Transport {
                            label: label.to_string(),
                            url: url.to_string(),
                            source,
                        },
                    },
                )
            })?;
            let status = response.status();
            if matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            ) {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok());
                match self.policy.next_hop(&url, location, hops) {
                    Ok(next) => {
                        debug!(label = %label, from = %url, to = %next.url, "following redirect");
                        url = next.url;
                        hops += 1;
                        probing = false;
                        continue;
                    }
                    Err((refusal, to)) => {
                        return Err(err(SinkError::RedirectRefused {
                            label: label.to_string(),
                            from: url.to_string(),
                            to,
                            refusal,
                        }))
                    }
                }
            }
            let body_bytes = read_capped(response, MAX_ANSWER_BYTES)
                .await
                .map_err(|source| {
                    err(SinkError::Transport {
                        label: label.to_string(),
                        url: url.to_string(),
                        source,
                    })
                })?;
            let answer = Answer {
                url: url.clone(),
                status,
                body: body_bytes,
            };
            if status != StatusCode::OK {
                return Err(err(unexpected(label, &answer)));
            }
            if probing && matches!(parse_reply(&answer.body), Ok(Reply::StreamLoad(_))) {
                debug!(label = %label, url = %url, "probe reached a BE; sending the body there");
                probing = false;
                continue;
            }
            return Ok(answer);
        }
    }

    /// Headers of every Stream Load request of this sink (label added per batch).
    fn load_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        // Doris' FE refuses a Stream Load without `Expect` (spec §1 step 3); no Rust client waits for the
        // `100 Continue` itself, which is why the FE is probed without the body (see `follow`).
        h.insert(EXPECT, HeaderValue::from_static("100-continue"));
        h.insert("format", HeaderValue::from_static("json"));
        h.insert("read_json_by_line", HeaderValue::from_static("true"));
        // Numbers keep every digit: without it Doris reads a JSON number into a DECIMAL column through a double
        // (17 significant digits), and the merge query's numerics are JSON numbers (docs/doris-stream-load.md).
        h.insert("num_as_string", HeaderValue::from_static("true"));
        h.insert(
            "strict_mode",
            HeaderValue::from_static(if self.cfg.strict_mode {
                "true"
            } else {
                "false"
            }),
        );
        h.insert(
            "timeout",
            HeaderValue::from(self.cfg.load_timeout.as_secs().max(1)),
        );
        h.insert(
            "max_filter_ratio",
            header_value(&self.cfg.max_filter_ratio.to_string()),
        );
        match &self.columns_header {
            Some(columns) => {
                h.insert("columns", header_value(columns));
            }
            None => {
                h.insert(
                    "hidden_columns",
                    HeaderValue::from_static(DELETE_SIGN_COLUMN),
                );
            }
        }
        if self.cfg.two_phase_commit {
            h.insert("two_phase_commit", HeaderValue::from_static("true"));
        }
        if let Some(mode) = self.cfg.group_commit {
            h.insert("group_commit", HeaderValue::from_static(mode.as_str()));
        }
        h
    }

    /// A fresh `Authorization: Basic …` for each hop, marked sensitive so it never shows in `Debug`.
    fn authorization(&self) -> HeaderValue {
        let credentials = format!("{}:{}", self.user, self.password.expose_secret());
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let mut value = header_value(&format!("Basic {encoded}"));
        value.set_sensitive(true);
        value
    }

    /// Polls `get_load_state` while an earlier attempt's load is still running.
    async fn wait_for_label(
        &self,
        label: &str,
        txn_id: Option<i64>,
        deadline: Instant,
    ) -> Result<LoadReceipt, SinkError> {
        let mut last_state = String::from("RUNNING");
        info!(label = %label, txn_id, "an earlier load of this label is still running; polling its state");
        loop {
            let state = self.load_state(label).await;
            debug!(label = %label, state = ?state, "get_load_state");
            match state {
                Ok(LoadState::Visible | LoadState::Committed) => {
                    return Ok(already_committed(label, txn_id))
                }
                Ok(LoadState::Precommitted) => {
                    self.commit_two_phase(label, txn_id).await?;
                    return Ok(already_committed(label, txn_id));
                }
                Ok(state @ (LoadState::Aborted | LoadState::Unknown)) => {
                    return Err(SinkError::Rejected {
                        label: label.to_string(),
                        reason: FailReason::TxnAborted,
                        message: format!("the earlier load of this label ended {state:?}"),
                    })
                }
                Ok(LoadState::Prepare) => last_state = String::from("PREPARE"),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    warn!(label = %label, error = %e, "get_load_state failed; polling again");
                }
            }
            if Instant::now() + self.cfg.poll_interval >= deadline {
                return Err(SinkError::Unresolved {
                    label: label.to_string(),
                    state: last_state,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    /// `GET /api/{db}/get_load_state?label=L` (spec §5). Needs an FE.
    async fn load_state(&self, label: &str) -> Result<LoadState, SinkError> {
        if self.fe_urls.is_empty() {
            // Direct-BE mode has no FE to ask: load again, the label answers for us.
            return Ok(LoadState::Unknown);
        }
        let segments = ["api", self.cfg.database.as_str(), "get_load_state"];
        let answer = self
            .via_fe_query(
                label,
                &segments,
                Some(("label", label)),
                Method::GET,
                &HeaderMap::new(),
                None,
            )
            .await?;
        let env: FeEnvelope =
            serde_json::from_slice(&answer.body).map_err(|_| unexpected(label, &answer))?;
        if env.code != Some(0) {
            return Err(SinkError::Rejected {
                label: label.to_string(),
                reason: classify_fe_refusal(&env),
                message: env.text(),
            });
        }
        LoadState::parse(&env.data_text()).ok_or_else(|| unexpected(label, &answer))
    }

    /// Loads `body` as a trial that never becomes visible: with two-phase commit, then aborted. Tells whether Doris
    /// accepts such rows (e.g. a delete row carrying only the key and the sequence column) without changing the
    /// table. Needs a sink built with `two_phase_commit = true`; `label` must be new.
    pub async fn trial_load(&self, label: &str, body: Bytes) -> Result<Trial, SinkError> {
        if !self.cfg.two_phase_commit || !self.sends_label() {
            return Err(SinkError::InvalidRequest {
                problem: "a trial load needs two-phase commit and a label",
            });
        }
        let (url, resp) = self.send_load(label, &body).await?;
        match classify_response(&resp) {
            Outcome::Committed { .. } if resp.is_precommitted() => {
                self.finish_two_phase(label, resp.txn(), "abort").await?;
                Ok(Trial::Accepted)
            }
            Outcome::Failed(FailReason::FilteredRows) => {
                match self.filtered_rows_error(label, &resp).await {
                    SinkError::FilteredRows {
                        message, excerpt, ..
                    } => Ok(Trial::Refused { message, excerpt }),
                    other => Err(other),
                }
            }
            Outcome::Failed(reason) => Err(SinkError::Rejected {
                label: label.to_string(),
                reason,
                message: resp.message,
            }),
            _ => Err(SinkError::UnexpectedAnswer {
                label: label.to_string(),
                url: url.to_string(),
                status: 200,
                body_excerpt: format!("Status {:?}: {}", resp.status, resp.message),
            }),
        }
    }

    /// Commits a PRECOMMITTED transaction: `PUT /api/{db}/_stream_load_2pc` with `txn_operation: commit` and
    /// `txn_id` (or `label` when the id is unknown). "Already visible" counts as committed (spec §5).
    async fn commit_two_phase(&self, label: &str, txn_id: Option<i64>) -> Result<(), SinkError> {
        self.finish_two_phase(label, txn_id, "commit").await
    }

    /// Ends a PRECOMMITTED transaction with `txn_operation` `commit` or `abort`.
    async fn finish_two_phase(
        &self,
        label: &str,
        txn_id: Option<i64>,
        operation: &'static str,
    ) -> Result<(), SinkError> {
        let mut headers = HeaderMap::new();
        headers.insert(EXPECT, HeaderValue::from_static("100-continue"));
        headers.insert("txn_operation", HeaderValue::from_static(operation));
        match txn_id {
            Some(id) => headers.insert("txn_id", HeaderValue::from(id)),
            None => headers.insert("label", header_value(label)),
        };
        let segments = ["api", self.cfg.database.as_str(), "_stream_load_2pc"];
        let answer = if self.fe_urls.is_empty() {
            let i = self.next_be.fetch_add(1, Ordering::Relaxed) % self.be_urls.len().max(1);
            let start = endpoint(&self.be_urls[i], &segments, None);
            self.follow(label, start, Method::PUT, &headers, None, false)
                .await
                .map_err(|e| e.error)?
        } else {
            self.via_fe(label, &segments, Method::PUT, &headers, None)
                .await?
        };
        let env: FeEnvelope =
            serde_json::from_slice(&answer.body).map_err(|_| unexpected(label, &answer))?;
        match classify_two_phase(&env) {
            TwoPhaseOutcome::Committed => {
                info!(label = %label, txn_id, operation, "two-phase load ended");
                Ok(())
            }
            TwoPhaseOutcome::Gone => Err(SinkError::Rejected {
                label: label.to_string(),
                reason: FailReason::TxnAborted,
                message: env.text(),
            }),
            TwoPhaseOutcome::Failed(reason) => Err(SinkError::Rejected {
                label: label.to_string(),
                reason,
                message: env.text(),
            }),
        }
    }

    /// A filtered-rows failure, with the first `error_log_excerpt_bytes` of Doris' error log.
    async fn filtered_rows_error(&self, label: &str, resp: &StreamLoadResponse) -> SinkError {
        let excerpt = match &resp.error_url {
            Some(url) => self.fetch_error_log(label, url).await,
            None => None,
        };
        SinkError::FilteredRows {
            label: label.to_string(),
            total: resp.number_total_rows,
            filtered: resp.number_filtered_rows,
            error_url: resp.error_url.clone(),
            excerpt,
            message: resp.message.clone(),
        }
    }

    /// GETs the error log (no credentials: the BE serves it without, and it is not a configured host).
    async fn fetch_error_log(&self, label: &str, error_url: &str) -> Option<String> {
        let mut url = Url::parse(error_url).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        self.policy.rewrite(&mut url);
        let fetched = async {
            let response = self
                .client
                .get(url.clone())
                .timeout(CONTROL_TIMEOUT)
                .send()
                .await?;
            read_capped(response, self.cfg.error_log_excerpt_bytes).await
        }
        .await;
        match fetched {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => {
                warn!(label = %label, url = %url, error = %e, "cannot fetch the Doris error log");
                None
            }
        }
    }
}

impl Sink for DorisSink {
    fn load(
        &self,
        batch: LoadRequest,
    ) -> impl std::future::Future<Output = Result<LoadReceipt, SinkError>> + Send {
        let span = tracing::info_span!(
            "doris_load",
            label = %batch.label,
            rows = batch.row_count,
            bytes = batch.body.len(),
        );
        self.load_batch(batch).instrument(span)
    }
}

/// What a [`DorisSink::trial_load`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trial {
    /// Doris took every row (and the trial was aborted).
    Accepted,
    /// Doris filtered rows: its message and the first lines of its error log.
    Refused {
        /// Doris' message.
        message: String,
        /// The error log's first lines.
        excerpt: Option<String>,
    },
}

/// The `columns` header: the given columns plus the delete sign and the sequence column when missing.
fn columns_header(columns: &[String], sequence_column: &str) -> Option<String> {
    if columns.is_empty() {
        return None;
    }
    let mut all: Vec<&str> = columns.iter().map(String::as_str).collect();
    for extra in [DELETE_SIGN_COLUMN, sequence_column] {
        if !all.iter().any(|c| c.eq_ignore_ascii_case(extra)) {
            all.push(extra);
        }
    }
    Some(all.join(","))
}

/// `base` with `segments` appended (percent-encoded) and an optional query pair.
fn endpoint(base: &Url, segments: &[&str], query: Option<(&str, &str)>) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    if let Some((key, value)) = query {
        url.query_pairs_mut().append_pair(key, value);
    }
    url
}

/// A header value from text we built; characters a header cannot carry are replaced.
fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| {
        let cleaned: String = s
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect();
        HeaderValue::from_str(&cleaned).unwrap_or(HeaderValue::from_static(""))
    })
}

/// Reads at most `cap` bytes of a body.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Bytes, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    Ok(Bytes::from(out))
}

fn unexpected(label: &str, answer: &Answer) -> SinkError {
    SinkError::UnexpectedAnswer {
        label: label.to_string(),
        url: answer.url.to_string(),
        status: answer.status.as_u16(),
        body_excerpt: String::from_utf8_lossy(&answer.body)
            .chars()
            .take(EXCERPT_CHARS)
            .collect(),
    }
}

fn receipt(label: &str, resp: &StreamLoadResponse, status: LoadStatus) -> LoadReceipt {
    LoadReceipt {
        label: label.to_string(),
        txn_id: resp.txn(),
        status,
        rows_loaded: resp.number_loaded_rows,
        rows_filtered: resp.number_filtered_rows,
        rows_unselected: resp.number_unselected_rows,
        bytes_loaded: resp.load_bytes,
        load_time: Duration::from_millis(resp.load_time_ms),
        elapsed: Duration::ZERO,
        attempts: 0,
    }
}

fn already_committed(label: &str, txn_id: Option<i64>) -> LoadReceipt {
    LoadReceipt {
        label: label.to_string(),
        txn_id,
        status: LoadStatus::AlreadyCommitted,
        rows_loaded: 0,
        rows_filtered: 0,
        rows_unselected: 0,
        bytes_loaded: 0,
        load_time: Duration::ZERO,
        elapsed: Duration::ZERO,
        attempts: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(cfg: &DorisConfig) -> DorisSink {
        DorisSink::new(cfg, SecretString::from("hunter2-very-secret")).unwrap()
    }

    #[test]
    fn debug_never_shows_the_password() {
        let cfg = DorisConfig::new("http://127.0.0.1:8030", "db", "t", "seq");
        let s = sink(&cfg);
        let shown = format!("{s:?} {cfg:?} {:?}", s.authorization());
        assert!(!shown.contains("hunter2"), "{shown}");
        // Not even base64-encoded.
        let encoded = base64::engine::general_purpose::STANDARD.encode("root:hunter2-very-secret");
        assert!(!shown.contains(&encoded), "{shown}");
    }

    #[test]
    fn columns_header_appends_delete_sign_and_sequence() {
        let cols = vec!["job_id".to_string(), "title".to_string()];
        assert_eq!(
            columns_header(&cols, "source_version").as_deref(),
            Some("job_id,title,__DORIS_DELETE_SIGN__,source_version")
        );
        let cols = vec![
            "job_id".into(),
            "source_version".into(),
            DELETE_SIGN_COLUMN.into(),
        ];
        assert_eq!(
            columns_header(&cols, "source_version").as_deref(),
            Some("job_id,source_version,__DORIS_DELETE_SIGN__")
        );
        assert_eq!(columns_header(&[], "source_version"), None);
    }

    #[test]
    fn load_headers_follow_the_config() {
        let mut cfg = DorisConfig::new("http://127.0.0.1:8030", "db", "t", "seq");
        cfg.two_phase_commit = true;
        cfg.load_timeout = Duration::from_secs(120);
        let h = sink(&cfg).load_headers();
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(get("expect").as_deref(), Some("100-continue"));
        assert_eq!(get("format").as_deref(), Some("json"));
        assert_eq!(get("read_json_by_line").as_deref(), Some("true"));
        assert_eq!(get("num_as_string").as_deref(), Some("true"));
        assert_eq!(get("strict_mode").as_deref(), Some("true"));
        assert_eq!(get("timeout").as_deref(), Some("120"));
        assert_eq!(get("max_filter_ratio").as_deref(), Some("0"));
        assert_eq!(get("two_phase_commit").as_deref(), Some("true"));
        assert_eq!(get("hidden_columns").as_deref(), Some(DELETE_SIGN_COLUMN));
        assert_eq!(get("group_commit"), None);

        cfg.two_phase_commit = false;
        cfg.group_commit = Some(GroupCommitMode::AsyncMode);
        let s = sink(&cfg).with_columns(&["a".into(), "b".into()]);
        assert!(!s.sends_label());
        let h = s.load_headers();
        assert_eq!(h.get("group_commit").unwrap(), "async_mode");
        assert_eq!(h.get("columns").unwrap(), "a,b,__DORIS_DELETE_SIGN__,seq");
    }

    #[test]
    fn endpoints_are_percent_encoded() {
        let base = Url::parse("http://fe:8030").unwrap();
        assert_eq!(
            endpoint(&base, &["api", "db", "t", "_stream_load"], None).as_str(),
            "http://fe:8030/api/db/t/_stream_load"
        );
        let base = Url::parse("http://proxy/doris/").unwrap();
        assert_eq!(
            endpoint(
                &base,
                &["api", "d b", "get_load_state"],
                Some(("label", "a:b"))
            )
            .as_str(),
            "http://proxy/doris/api/d%20b/get_load_state?label=a%3Ab"
        );
    }

    #[test]
    fn invalid_config_is_refused_with_every_problem() {
        let mut cfg = DorisConfig::new("ftp://fe", "db", "", "seq");
        cfg.label_prefix = String::new();
        let err = DorisSink::new(&cfg, SecretString::from("x")).unwrap_err();
        let BuildError::Config(problems) = err else {
            panic!("expected a config error")
        };
        assert_eq!(problems.len(), 3);
    }
}
