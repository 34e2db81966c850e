//! Integration tests of the Doris Stream Load sink.
//!
//! They run against an in-process `doris-sim`, or against a real Doris when `DORIS_FE_URL` is set (with
//! `DORIS_USER`, `DORIS_PASSWORD`; the table `job_analytics.merged_job_data` must exist, DDL in `SIM_DDL`). Tests
//! that need an injected fault only exist on the simulator and are skipped, with a message, on a real Doris.
//!
//! The credential tests use tiny TCP listeners of their own: they play a host a redirect points at and record
//! whether an `Authorization` header reached it.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken assumption"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cdc2doris::sink::doris::{DorisConfig, DorisSink, LabelScope};
use cdc2doris::sink::{ErrorClass, LoadRequest, OffsetRange, RedirectRefusal, Sink, SinkError};
use doris_sim::{FaultKind, FaultSpec};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DB: &str = "job_analytics";
const TABLE: &str = "merged_job_data";
const SEQ: &str = "source_version";

/// One request as a listener saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body_len: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A TCP listener that records each HTTP request and answers it with `answer(port_of_peer_listener)`.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    async fn start(answer: String) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let log = log.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let request_line = lines.next().unwrap_or_default().to_string();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let want: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body_len = buf.len() - head_end;
                    while body_len < want {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body_len += n,
                        }
                    }
                    log.lock().unwrap().push(Seen {
                        request_line,
                        headers,
                        body_len,
                    });
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Recorder { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn redirect_to(location: &str) -> String {
    format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

fn json_answer(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn rows(ids: std::ops::Range<i64>, version: i64) -> Bytes {
    let mut out = String::new();
    for id in ids {
        out.push_str(&format!(
            r#"{{"job_id":{id},"client_id":{c},"title":"Job {id}","category":"eng","status":"open","salary_min":"1000.00","salary_max":"2000.50","created_at":"2026-11-25 10:00:00.000001","view_count":{id},"client_excluded":false,"last_booked_on":"2026-11-01","source_version":{version},"__DORIS_DELETE_SIGN__":0}}"#,
            c = id % 7
        ));
        out.push('\n');
    }
    Bytes::from(out)
}

fn request(topic: &str, partition: i32, first: i64, last: i64, body: Bytes) -> LoadRequest {
    let row_count = body.iter().filter(|b| **b == b'\n').count() as u64;
    let ranges = vec![OffsetRange {
        tp: cdc2doris::offsets::TopicPartition::new(topic, partition),
        first,
        last,
    }];
    LoadRequest {
        label: LabelScope::new("cdc2doris", DB, TABLE).label(&ranges, &body),
        ranges,
        body,
        row_count,
    }
}

fn fast_retries(cfg: &mut DorisConfig) {
    cfg.retry_min_delay = Duration::from_millis(20);
    cfg.retry_max_delay = Duration::from_millis(200);
    cfg.version_pressure_delay = Duration::from_millis(100);
    cfg.poll_interval = Duration::from_millis(50);
    cfg.retry_deadline = Duration::from_secs(20);
}

// ---------------------------------------------------------------------------------------------------------------
// Credentials: never to a host outside the allowed set.
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn credentials_never_follow_a_redirect_issued_by_a_non_fe_host() {
    let stranger = Recorder::start(json_answer(r#"{"Status":"Success","TxnId":1}"#)).await;
    // A configured BE (not an FE) that redirects elsewhere.
    let be = Recorder::start(redirect_to(&format!(
        "{}/api/{DB}/{TABLE}/_stream_load?",
        stranger.url()
    )))
    .await;
    let mut cfg = DorisConfig::new("http://127.0.0.1:1", DB, TABLE, SEQ);
    cfg.fe_urls.clear();
    cfg.be_urls = vec![be.url()];
    fast_retries(&mut cfg);
    let sink = DorisSink::new(&cfg, SecretString::from("pw-secret")).unwrap();

    let err = sink
        .load(request("jobs", 0, 1, 3, rows(1..4, 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::RedirectRefused {
                refusal: RedirectRefusal::UntrustedRedirector,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(!err.to_string().contains("pw-secret"));
    // The configured BE got the credentials; the stranger got nothing at all.
    assert_eq!(
        be.seen()[0].header("authorization"),
        Some(basic("root", "pw-secret").as_str())
    );
    assert!(stranger.seen().is_empty(), "{:?}", stranger.seen());
}

#[tokio::test]
async fn fe_redirect_gets_a_fresh_authorization_and_the_body_once() {
    let be = Recorder::start(json_answer(
        r#"{"TxnId": 5, "Label": "x", "TwoPhaseCommit": "false", "Status": "Success", "Message": "OK",
            "NumberTotalRows": 3, "NumberLoadedRows": 3, "NumberFilteredRows": 0, "NumberUnselectedRows": 0,
            "LoadBytes": 10, "LoadTimeMs": 7}"#,
    ))
    .await;
    // The FE embeds the request's credentials in Location (docs/doris-stream-load.md §1); here they are wrong on purpose, to prove
    // the client never reuses Location's userinfo.
    let fe = Recorder::start(redirect_to(&format!(
        "http://evil:stolen@127.0.0.1:{}/api/{DB}/{TABLE}/_stream_load?",
        be.port
    )))
    .await;
    let mut cfg = DorisConfig::new(&fe.url(), DB, TABLE, SEQ);
    fast_retries(&mut cfg);
    let sink = DorisSink::new(&cfg, SecretString::from("pw-secret")).unwrap();
    let body = rows(1..4, 1);
    let receipt = sink
        .load(request("jobs", 0, 1, 3, body.clone()))
        .await
        .unwrap();
    assert_eq!(receipt.rows_loaded, 3);

    let fe_seen = fe.seen();
    assert_eq!(fe_seen.len(), 1);
    // The FE is only probed: headers, no body, no label.
    assert_eq!(fe_seen[0].body_len, 0);
    assert_eq!(fe_seen[0].header("label"), None);
    assert_eq!(fe_seen[0].header("expect"), Some("100-continue"));
    let be_seen = be.seen();
    assert_eq!(be_seen.len(), 1, "{be_seen:?}");
    assert_eq!(
        be_seen[0].header("authorization"),
        Some(basic("root", "pw-secret").as_str())
    );
    assert_eq!(be_seen[0].body_len, body.len());
    assert_eq!(
        be_seen[0].header("label"),
        Some(request("jobs", 0, 1, 3, body.clone()).label.as_str())
    );
    assert!(be_seen[0]
        .request_line
        .starts_with(&format!("PUT /api/{DB}/{TABLE}/_stream_load")));
}

#[tokio::test]
async fn every_retry_carries_the_same_label_and_body() {
    let be = Recorder::start(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops"
            .to_string(),
    )
    .await;
    let mut cfg = DorisConfig::new("http://127.0.0.1:1", DB, TABLE, SEQ);
    cfg.fe_urls.clear();
    cfg.be_urls = vec![be.url()];
    fast_retries(&mut cfg);
    cfg.retry_deadline = Duration::from_millis(400);
    let sink = DorisSink::new(&cfg, SecretString::from("pw")).unwrap();
    let req = request("jobs", 2, 40, 42, rows(1..4, 1));
    let (label, body_len) = (req.label.to_string(), req.body.len());
    let err = sink.load(req).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Ambiguous, "{err}");
    let seen = be.seen();
    assert!(seen.len() >= 3, "{}", seen.len());
    for s in &seen {
        assert_eq!(s.header("label"), Some(label.as_str()));
        assert_eq!(s.body_len, body_len);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Against doris-sim (in process) or a real Doris (`DORIS_FE_URL`).
// ---------------------------------------------------------------------------------------------------------------

const SIM_DDL: &str = r#"
CREATE DATABASE IF NOT EXISTS job_analytics;
CREATE TABLE IF NOT EXISTS job_analytics.merged_job_data (
  job_id BIGINT NOT NULL, client_id BIGINT, title VARCHAR(512), category VARCHAR(128), status VARCHAR(32),
  location VARCHAR(256), salary_min DECIMAL(12,2), salary_max DECIMAL(12,2), created_at DATETIME(6), updated_at DATETIME(6),
  view_count BIGINT, apply_count BIGINT, click_count BIGINT, last_activity_at DATETIME(6),
  client_excluded BOOLEAN, exclusion_reason VARCHAR(512), revenue_total DECIMAL(18,2), revenue_entries BIGINT, last_booked_on DATE,
  source_version BIGINT NOT NULL
) UNIQUE KEY(job_id) DISTRIBUTED BY HASH(job_id) BUCKETS 8
PROPERTIES ("replication_num" = "1", "enable_unique_key_merge_on_write" = "true", "function_column.sequence_col" = "source_version");
"#;

const SIM_PASSWORD: &str = "pw:with-colon";

/// The doris-sim profile: `DORIS_SIM_VERSION` (2.1, 3.0, 3.1, 4.0), else the newest; `dev/test` also runs this
/// file with the oldest.
fn doris_sim_version() -> doris_sim::DorisVersion {
    match std::env::var("DORIS_SIM_VERSION") {
        Ok(v) if !v.trim().is_empty() => v
            .parse()
            .unwrap_or_else(|e| panic!("DORIS_SIM_VERSION: {e}")),
        _ => doris_sim::DorisVersion::default(),
    }
}

/// Where the tests load: an in-process sim, or a real Doris from the environment.
struct Target {
    sim: Option<doris_sim::Sim>,
    fe_url: String,
    user: String,
    password: String,
    prefix: String,
}

impl Target {
    /// The sim (started with `tweak` applied), or the real Doris of `DORIS_FE_URL`.
    async fn start(test: &str, tweak: impl FnOnce(&mut doris_sim::SimOptions)) -> Target {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("cdc2doris=debug")
            .with_test_writer()
            .try_init();
        let id = uuid::Uuid::new_v4().simple().to_string();
        // Doris keeps labels for hours: a real Doris needs a fresh prefix per run.
        let prefix = format!("t{}", &id[..12]);
        if let Ok(fe_url) = std::env::var("DORIS_FE_URL") {
            eprintln!("{test}: against the real Doris at {fe_url}");
            return Target {
                sim: None,
                fe_url,
                user: std::env::var("DORIS_USER").unwrap_or_else(|_| "root".into()),
                password: std::env::var("DORIS_PASSWORD").unwrap_or_default(),
                prefix,
            };
        }
        let mut opts = doris_sim::SimOptions {
            ddl: vec![SIM_DDL.to_string()],
            password: SIM_PASSWORD.to_string(),
            doris_version: doris_sim_version(),
            ..Default::default()
        };
        tweak(&mut opts);
        let sim = doris_sim::Sim::start(opts).await.unwrap();
        Target {
            fe_url: sim.fe_url(),
            sim: Some(sim),
            user: "root".into(),
            password: SIM_PASSWORD.into(),
            prefix,
        }
    }

    /// The sim, or None (and a message) on a real Doris, for tests that inject faults.
    async fn sim_only(
        test: &str,
        tweak: impl FnOnce(&mut doris_sim::SimOptions),
    ) -> Option<Target> {
        if std::env::var("DORIS_FE_URL").is_ok() {
            eprintln!("{test}: skipped against a real Doris (needs doris-sim fault injection)");
            return None;
        }
        Some(Target::start(test, tweak).await)
    }

    fn config(&self) -> DorisConfig {
        let mut cfg = DorisConfig::new(&self.fe_url, DB, TABLE, SEQ);
        cfg.user = self.user.clone();
        cfg.label_prefix = self.prefix.clone();
        fast_retries(&mut cfg);
        cfg
    }

    fn sink(&self, cfg: &DorisConfig) -> DorisSink {
        DorisSink::new(cfg, SecretString::from(self.password.clone())).unwrap()
    }

    fn sim(&self) -> &doris_sim::Sim {
        self.sim
            .as_ref()
            .expect("sim-only helper used against a real Doris")
    }

    async fn faults(&self, faults: Vec<FaultSpec>) {
        self.sim().client().queue_faults(&faults).await.unwrap();
    }

    async fn rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.sim().client().rows(DB, TABLE).await.unwrap()
    }

    async fn table_stats(&self) -> serde_json::Value {
        let stats = self.sim().client().stats().await.unwrap();
        let tables = stats.get("tables").cloned().unwrap_or(stats);
        tables
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|t| t.get("table").and_then(|v| v.as_str()) == Some(TABLE))
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no stats for {TABLE}: {tables}"))
    }

    /// Asks the FE for a label's state, as an operator would.
    async fn label_state(&self, label: &str) -> String {
        let url = format!("{}/api/{DB}/get_load_state?label={label}", self.fe_url);
        let resp: serde_json::Value = reqwest::Client::new()
            .get(url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["data"].as_str().unwrap_or_default().to_string()
    }
}

/// Offsets unique to one test call, so that runs against a real Doris never share labels.
fn batch(target: &Target, first: i64, ids: std::ops::Range<i64>, version: i64) -> LoadRequest {
    let count = ids.end - ids.start;
    request(
        &format!("{}_jobs", target.prefix),
        0,
        first,
        first + count - 1,
        rows(ids, version),
    )
}

/// Counts `metrics` counters in this thread (the tests run on a current-thread runtime).
#[derive(Default, Clone)]
struct CountingRecorder {
    counters: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
}

struct CountingCounter {
    key: String,
    counters: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl metrics::CounterFn for CountingCounter {
    fn increment(&self, value: u64) {
        *self
            .counters
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.counters
            .lock()
            .unwrap()
            .insert(self.key.clone(), value);
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        metrics::Counter::from_arc(Arc::new(CountingCounter {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            counters: self.counters.clone(),
        }))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

impl CountingRecorder {
    fn get(&self, key: &str) -> u64 {
        self.counters.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

#[tokio::test]
async fn loads_through_the_fe_redirect_with_credentials_at_the_be() {
    let t = Target::start("redirect", |_| {}).await;
    let sink = t.sink(&t.config());
    let req = batch(&t, 0, 1..4, 1);
    let body_len = req.body.len() as u64;
    let receipt = sink.load(req).await.unwrap();
    assert_eq!(receipt.status, cdc2doris::sink::LoadStatus::Success);
    assert_eq!((receipt.rows_loaded, receipt.rows_filtered), (3, 0));
    // The BE counted exactly the body's bytes: it got the body once, and it authenticated us (a BE without
    // Authorization answers `no valid Basic authorization`).
    assert_eq!(receipt.bytes_loaded, body_len);
    assert_eq!(receipt.attempts, 1);
    assert!(receipt.txn_id.is_some());
    if t.sim.is_some() {
        let rows = t.rows().await;
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["title"], "Job 1");
        let stats = t.table_stats().await;
        assert_eq!(
            (stats["loads"].as_u64(), stats["labels"].as_u64()),
            (Some(1), Some(1))
        );
    }
}

#[tokio::test]
async fn a_batch_loaded_twice_is_committed_once() {
    let t = Target::start("twice", |_| {}).await;
    let sink = t.sink(&t.config());
    let first = sink.load(batch(&t, 100, 1..4, 1)).await.unwrap();
    // The very same load again (a retry after an unknown outcome): the label says it is done.
    let again = sink.load(batch(&t, 100, 1..4, 1)).await.unwrap();
    assert_eq!(first.label, again.label);
    assert_eq!(again.status, cdc2doris::sink::LoadStatus::AlreadyCommitted);
    assert_eq!(t.label_state(&first.label).await, "VISIBLE");
    // Same offsets, other rows (the merge re-run in a newer snapshot after a restart): another label, loaded, and
    // the newer version wins.
    let newer = sink.load(batch(&t, 100, 1..4, 2)).await.unwrap();
    assert_ne!(newer.label, first.label);
    assert_eq!(newer.status, cdc2doris::sink::LoadStatus::Success);
    if t.sim.is_some() {
        let rows = t.rows().await;
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r["source_version"] == 2));
        assert_eq!(t.table_stats().await["labels"].as_u64(), Some(2));
    }
}

#[tokio::test]
async fn filtered_rows_fail_permanently_with_the_error_log_excerpt() {
    let t = Target::start("filtered", |_| {}).await;
    let sink = t.sink(&t.config());
    let mut body = rows(1..3, 1).to_vec();
    // NULL into the NOT NULL key: always filtered (docs/doris-stream-load.md §6).
    body.extend_from_slice(b"{\"job_id\":null,\"title\":\"bad row\",\"source_version\":1,\"__DORIS_DELETE_SIGN__\":0}\n");
    let mut req = batch(&t, 200, 1..3, 1);
    req.body = Bytes::from(body);
    let err = sink.load(req).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    let SinkError::FilteredRows {
        filtered,
        total,
        error_url,
        excerpt,
        ..
    } = &err
    else {
        panic!("expected FilteredRows, got {err}");
    };
    assert_eq!((*filtered, *total), (1, 3));
    assert!(error_url.is_some());
    let excerpt = excerpt.as_deref().unwrap_or_default();
    assert!(
        excerpt.contains("bad row") || excerpt.to_lowercase().contains("null"),
        "{excerpt}"
    );
    if t.sim.is_some() {
        assert!(t.rows().await.is_empty(), "nothing may be committed");
    }
}

#[tokio::test]
async fn unknown_table_and_wrong_password_are_permanent() {
    let t = Target::start("permanent", |_| {}).await;
    let mut cfg = t.config();
    cfg.table = "no_such_table".into();
    let err = t
        .sink(&cfg)
        .load(batch(&t, 300, 1..2, 1))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");

    let cfg = t.config();
    let sink = DorisSink::new(&cfg, SecretString::from("wrong-password")).unwrap();
    let err = sink.load(batch(&t, 301, 1..2, 1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::Rejected {
                reason: cdc2doris::sink::FailReason::Auth,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-password"));
}

#[tokio::test]
async fn two_phase_commit_loads_then_commits() {
    let t = Target::start("2pc", |_| {}).await;
    let mut cfg = t.config();
    cfg.two_phase_commit = true;
    let receipt = t.sink(&cfg).load(batch(&t, 400, 1..6, 1)).await.unwrap();
    assert_eq!(receipt.rows_loaded, 5);
    assert_eq!(t.label_state(&receipt.label).await, "VISIBLE");
    if t.sim.is_some() {
        assert_eq!(t.rows().await.len(), 5);
    }
}

#[tokio::test]
async fn a_precommitted_label_found_after_a_restart_is_committed() {
    let Some(t) = Target::sim_only("precommitted", |_| {}).await else {
        return;
    };
    let mut cfg = t.config();
    cfg.two_phase_commit = true;
    let sink = t.sink(&cfg);
    let req = batch(&t, 500, 1..4, 1);
    let label = req.label.to_string();
    // A previous run pre-committed this batch, then died before `_stream_load_2pc`.
    let answer: serde_json::Value = reqwest::Client::new()
        .put(format!(
            "{}/api/{DB}/{TABLE}/_stream_load",
            t.sim().be_url()
        ))
        .basic_auth("root", Some(SIM_PASSWORD))
        .header("label", &label)
        .header("format", "json")
        .header("read_json_by_line", "true")
        .header("two_phase_commit", "true")
        .body(req.body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["Status"], "Success", "{answer}");
    assert_eq!(t.label_state(&label).await, "PRECOMMITTED");
    assert!(t.rows().await.is_empty());

    let receipt = sink.load(req).await.unwrap();
    assert_eq!(
        receipt.status,
        cdc2doris::sink::LoadStatus::AlreadyCommitted
    );
    assert_eq!(t.label_state(&label).await, "VISIBLE");
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn publish_timeout_counts_as_committed() {
    let Some(t) = Target::sim_only("publish_timeout", |_| {}).await else {
        return;
    };
    t.faults(vec![FaultSpec::new(FaultKind::PublishTimeout).delay_ms(200)])
        .await;
    let receipt = t
        .sink(&t.config())
        .load(batch(&t, 600, 1..4, 1))
        .await
        .unwrap();
    assert_eq!(receipt.status, cdc2doris::sink::LoadStatus::PublishTimeout);
    assert_eq!(receipt.attempts, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn http_500_is_retried_with_the_same_label_logged_and_counted() {
    let Some(t) = Target::sim_only("http_500", |_| {}).await else {
        return;
    };
    let recorder = CountingRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    t.faults(vec![FaultSpec::new(FaultKind::Http500).times(2)])
        .await;
    let sink = t.sink(&t.config());
    let receipt = sink.load(batch(&t, 700, 1..4, 1)).await.unwrap();
    assert_eq!(receipt.attempts, 3);
    assert_eq!(receipt.status, cdc2doris::sink::LoadStatus::Success);
    assert_eq!(
        recorder.get("cdc2doris_sink_retries_total{reason=unexpected_answer}"),
        2
    );
    assert_eq!(
        recorder.get("cdc2doris_sink_loads_total{outcome=success}"),
        1
    );
    assert_eq!(recorder.get("cdc2doris_sink_rows_total{}"), 3);
    // One label for all three attempts.
    let stats = t.table_stats().await;
    assert_eq!(stats["labels"].as_u64(), Some(1), "{stats}");
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn reset_before_commit_is_retried_and_loads_once() {
    let Some(t) = Target::sim_only("reset_before", |_| {}).await else {
        return;
    };
    t.faults(vec![FaultSpec::new(FaultKind::ResetBeforeCommit)])
        .await;
    let receipt = t
        .sink(&t.config())
        .load(batch(&t, 800, 1..4, 1))
        .await
        .unwrap();
    assert_eq!(receipt.attempts, 2);
    assert_eq!(receipt.status, cdc2doris::sink::LoadStatus::Success);
    assert_eq!(t.rows().await.len(), 3);
    assert_eq!(t.table_stats().await["labels"].as_u64(), Some(1));
}

#[tokio::test]
async fn reset_after_commit_ends_committed_exactly_once_through_the_label() {
    let Some(t) = Target::sim_only("reset_after", |_| {}).await else {
        return;
    };
    t.faults(vec![FaultSpec::new(FaultKind::ResetAfterCommit)])
        .await;
    let sink = t.sink(&t.config());
    let req = batch(&t, 900, 1..4, 1);
    let label = req.label.to_string();
    let receipt = sink.load(req).await.unwrap();
    assert_eq!(receipt.label, label);
    assert_eq!(receipt.attempts, 2);
    // The retry met `Label Already Exists` + FINISHED: committed by the first attempt, not loaded again.
    assert_eq!(
        receipt.status,
        cdc2doris::sink::LoadStatus::AlreadyCommitted
    );
    assert_eq!(t.table_stats().await["labels"].as_u64(), Some(1));
    assert_eq!(t.label_state(&label).await, "VISIBLE");
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn version_pressure_bursts_back_off_longer_then_commit() {
    let Some(t) = Target::sim_only("e235", |_| {}).await else {
        return;
    };
    let recorder = CountingRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let message = "[E-235]failed to init rowset builder. version count: 2001, exceed limit: 2000, tablet: 10086. \
                   Please reduce the frequency of loading data or adjust the max_tablet_version_num";
    t.faults(vec![FaultSpec::fail(message).times(3)]).await;
    let mut cfg = t.config();
    cfg.version_pressure_delay = Duration::from_millis(150);
    let receipt = t.sink(&cfg).load(batch(&t, 1000, 1..4, 1)).await.unwrap();
    assert_eq!(receipt.attempts, 4);
    // Three retries, each waiting at least the version-pressure delay.
    assert!(
        receipt.elapsed >= Duration::from_millis(450),
        "{:?}",
        receipt.elapsed
    );
    assert_eq!(
        recorder.get("cdc2doris_sink_retries_total{reason=version_pressure}"),
        3
    );
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn real_version_pressure_from_the_sim_is_outlasted() {
    let Some(t) = Target::sim_only("e235_real", |o| {
        o.max_versions = Some(3);
        o.compaction_versions_per_sec = 20.0;
    })
    .await
    else {
        return;
    };
    let sink = t.sink(&t.config());
    let mut retried = 0;
    for i in 0..8 {
        let receipt = sink
            .load(batch(&t, 1100 + i * 10, 1..3, i + 1))
            .await
            .unwrap();
        retried += receipt.attempts - 1;
    }
    assert!(retried > 0, "the sim never pushed back");
    assert_eq!(t.table_stats().await["labels"].as_u64(), Some(8));
}

#[tokio::test]
async fn transient_failures_are_retried_permanent_ones_are_not() {
    let Some(t) = Target::sim_only("classes", |_| {}).await else {
        return;
    };
    t.faults(vec![
        FaultSpec::fail("[MEM_LIMIT_EXCEEDED]PreCatch error"),
        FaultSpec::fail("[CANCELLED]timeout"),
        FaultSpec::fail("No backend load available"),
    ])
    .await;
    let sink = t.sink(&t.config());
    let receipt = sink.load(batch(&t, 1200, 1..4, 1)).await.unwrap();
    assert_eq!(receipt.attempts, 4);

    t.faults(vec![FaultSpec::fail("[E-238]Too many segments in rowset")])
        .await;
    let err = sink.load(batch(&t, 1210, 1..4, 1)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
}

#[tokio::test]
async fn a_slow_answer_past_the_timeout_is_resolved_through_the_label() {
    let Some(t) = Target::sim_only("slow", |_| {}).await else {
        return;
    };
    // The load stays RUNNING for 1.5 s; the client gives up on each request after 500 ms.
    t.faults(vec![FaultSpec::new(FaultKind::Delay).delay_ms(1500)])
        .await;
    let mut cfg = t.config();
    cfg.request_timeout = Some(Duration::from_millis(500));
    let receipt = t.sink(&cfg).load(batch(&t, 1300, 1..4, 1)).await.unwrap();
    assert!(receipt.attempts >= 2);
    assert_eq!(t.rows().await.len(), 3);
    assert_eq!(t.table_stats().await["labels"].as_u64(), Some(1));
}

#[tokio::test]
async fn retries_stop_at_the_deadline_with_the_last_error() {
    let Some(t) = Target::sim_only("deadline", |_| {}).await else {
        return;
    };
    t.faults(vec![FaultSpec::new(FaultKind::Http500).times(1000)])
        .await;
    let mut cfg = t.config();
    cfg.retry_deadline = Duration::from_millis(600);
    let started = std::time::Instant::now();
    let err = t
        .sink(&cfg)
        .load(batch(&t, 1400, 1..4, 1))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let SinkError::RetriesExhausted { attempts, last, .. } = &err else {
        panic!("expected RetriesExhausted, got {err}");
    };
    assert!(*attempts >= 2);
    assert_eq!(last.class(), ErrorClass::Ambiguous);
    assert_eq!(err.class(), ErrorClass::Ambiguous);
}

#[tokio::test]
async fn a_redirect_to_an_unreachable_be_is_retried() {
    let Some(t) = Target::sim_only("unreachable", |_| {}).await else {
        return;
    };
    t.faults(vec![FaultSpec::new(FaultKind::RedirectUnreachable)])
        .await;
    let receipt = t
        .sink(&t.config())
        .load(batch(&t, 1500, 1..4, 1))
        .await
        .unwrap();
    assert_eq!(receipt.attempts, 2);
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn fe_failover_direct_be_and_be_host_rewrite() {
    let Some(t) = Target::sim_only("routing", |o| o.be_host = "be-0.doris.internal".into()).await
    else {
        return;
    };
    // The FE advertises an unresolvable BE host; the rewrite makes it reachable. A dead FE comes first.
    let mut cfg = t.config();
    cfg.fe_urls = vec!["http://127.0.0.1:1".into(), t.fe_url.clone()];
    cfg.be_host_rewrite
        .insert("be-0.doris.internal".into(), "127.0.0.1".into());
    let receipt = t.sink(&cfg).load(batch(&t, 1600, 1..4, 1)).await.unwrap();
    assert_eq!(receipt.attempts, 1);

    // Without the rewrite the BE cannot be reached: ambiguous, retried until the deadline.
    let mut cfg = t.config();
    cfg.retry_deadline = Duration::from_millis(300);
    let err = t
        .sink(&cfg)
        .load(batch(&t, 1610, 1..4, 1))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Ambiguous, "{err}");

    // Straight to the BE, no FE at all.
    let mut cfg = t.config();
    cfg.fe_urls.clear();
    cfg.be_urls = vec![t.sim().be_url()];
    let receipt = t.sink(&cfg).load(batch(&t, 1620, 4..6, 1)).await.unwrap();
    assert_eq!(receipt.rows_loaded, 2);
    assert_eq!(t.rows().await.len(), 5);
}

#[tokio::test]
async fn group_commit_loads_without_a_label() {
    let Some(t) = Target::sim_only("group_commit", |o| o.group_commit_interval_ms = 100).await
    else {
        return;
    };
    let mut cfg = t.config();
    cfg.group_commit = Some(cdc2doris::sink::doris::GroupCommitMode::SyncMode);
    let receipt = t.sink(&cfg).load(batch(&t, 1700, 1..4, 1)).await.unwrap();
    assert!(
        receipt.label.starts_with("group_commit_"),
        "{}",
        receipt.label
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn deletes_and_sequence_order_reach_doris() {
    let t = Target::start("delete_seq", |_| {}).await;
    let sink = t.sink(&t.config()).with_columns(&[
        "job_id".to_string(),
        "title".to_string(),
        "source_version".to_string(),
        "__DORIS_DELETE_SIGN__".to_string(),
    ]);
    sink.load(batch(&t, 1800, 1..4, 5)).await.unwrap();
    // An older snapshot of job 1 (ignored by the sequence column) and a delete of job 2.
    let body = Bytes::from_static(
        b"{\"job_id\":1,\"title\":\"stale\",\"source_version\":4,\"__DORIS_DELETE_SIGN__\":0}\n\
          {\"job_id\":2,\"title\":\"gone\",\"source_version\":6,\"__DORIS_DELETE_SIGN__\":1}\n",
    );
    let mut req = batch(&t, 1810, 1..3, 6);
    req.body = body;
    sink.load(req).await.unwrap();
    if t.sim.is_some() {
        let rows = t.rows().await;
        let ids: Vec<i64> = rows.iter().filter_map(|r| r["job_id"].as_i64()).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(rows[0]["title"], "Job 1");
    }
}

#[tokio::test]
async fn a_be_listed_as_fe_still_gets_the_body_under_the_label() {
    let Some(t) = Target::sim_only("be_as_fe", |_| {}).await else {
        return;
    };
    // Misconfiguration: the "FE" executes the empty-bodied, label-less probe itself; the client notices the
    // Stream Load answer and sends the real request there.
    let mut cfg = t.config();
    cfg.fe_urls = vec![t.sim().be_url()];
    let sink = t.sink(&cfg);
    let req = batch(&t, 1900, 1..4, 1);
    let label = req.label.to_string();
    let receipt = sink.load(req).await.unwrap();
    assert_eq!(
        (receipt.label.as_str(), receipt.rows_loaded),
        (label.as_str(), 3)
    );
    assert_eq!(t.label_state(&label).await, "VISIBLE");
    assert_eq!(t.rows().await.len(), 3);
}

#[tokio::test]
async fn without_the_probe_the_body_goes_to_the_fe_and_is_resent_to_the_be() {
    let t = Target::start("no_probe", |_| {}).await;
    let mut cfg = t.config();
    cfg.probe_fe = false;
    // Big enough that the FE answers 307 long before the body is through.
    let req = batch(&t, 2000, 1..5001, 1);
    let body_len = req.body.len() as u64;
    let receipt = t.sink(&cfg).load(req).await.unwrap();
    assert_eq!(
        (receipt.rows_loaded, receipt.bytes_loaded),
        (5000, body_len)
    );
    if t.sim.is_some() {
        assert_eq!(t.rows().await.len(), 5000);
    }
}

#[tokio::test]
async fn a_running_label_is_polled_until_it_is_visible() {
    let Some(t) = Target::sim_only("running", |_| {}).await else {
        return;
    };
    // The first load of the batch stays RUNNING for 800 ms; a second load of the same batch meets
    // `Label Already Exists` + RUNNING and must wait for the outcome instead of loading again.
    t.faults(vec![FaultSpec::new(FaultKind::Delay).delay_ms(800)])
        .await;
    let sink = Arc::new(t.sink(&t.config()));
    let first = tokio::spawn({
        let sink = sink.clone();
        let req = batch(&t, 2100, 1..4, 1);
        async move { sink.load(req).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = sink.load(batch(&t, 2100, 1..4, 1)).await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status, cdc2doris::sink::LoadStatus::Success);
    assert_eq!(second.status, cdc2doris::sink::LoadStatus::AlreadyCommitted);
    assert_eq!(
        second.attempts, 1,
        "polling is part of the attempt, not a reload"
    );
    assert!(
        second.elapsed >= Duration::from_millis(500),
        "{:?}",
        second.elapsed
    );
    assert_eq!(t.table_stats().await["labels"].as_u64(), Some(1));
    assert_eq!(t.rows().await.len(), 3);
}

/// The merge query renders numerics as JSON numbers with every digit (PostgreSQL's `to_jsonb`); Doris reads a JSON
/// number into a DECIMAL column through a double unless the load says `num_as_string`, which would round
/// 1234567890123456.78 (18 significant digits) to 1234567890123456.8. Failed before the sink sent `num_as_string`.
#[tokio::test]
async fn decimals_beyond_a_double_arrive_exact() {
    let t = Target::start("decimal", |_| {}).await;
    let sink = t.sink(&t.config());
    let body = Bytes::from(
        "{\"job_id\":1,\"revenue_total\":1234567890123456.78,\"salary_min\":9999999999.99,\"source_version\":1,\
         \"__DORIS_DELETE_SIGN__\":0}\n{\"job_id\":2,\"revenue_total\":-0.01,\"salary_min\":0.1,\"source_version\":1,\
         \"__DORIS_DELETE_SIGN__\":0}\n",
    );
    let req = request(&format!("{}_jobs", t.prefix), 0, 0, 1, body);
    let receipt = sink.load(req).await.unwrap();
    assert_eq!(receipt.rows_loaded, 2);
    if t.sim.is_some() {
        let rows = t.rows().await;
        assert_eq!(rows[0]["revenue_total"], "1234567890123456.78", "{rows:?}");
        assert_eq!(rows[0]["salary_min"], "9999999999.99");
        assert_eq!(rows[1]["revenue_total"], "-0.01");
        assert_eq!(rows[1]["salary_min"], "0.10");
    }
}
