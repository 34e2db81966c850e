//! Integration tests of the Doris Stream Load sink.
//!
//! They run against an in-process `doris-sim`, or against a real Doris when `DORIS_FE_URL` is set (with
//! `DORIS_USER`, `DORIS_PASSWORD`; the table `job_analytics.merged_job_data` must exist, DDL in `SIM_DDL`). Tests
//! that need an injected fault only exist on the simulator and are skipped, with a message, on a real Doris.
//!
//! The credential tests use tiny TCP listeners of their own: they play a host a redirect points at and record
//! whether an `Authorization` header reached it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cdc2doris::sink::doris::{DorisConfig, DorisSink};
use cdc2doris::sink::{ErrorClass, LoadRequest, OffsetRange, RedirectRefusal, Sink, SinkError};
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
    LoadRequest {
        ranges: vec![OffsetRange {
            topic: topic.to_string(),
            partition,
            first,
            last,
        }],
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
    // The FE embeds the request's credentials in Location (spec §1); here they are wrong on purpose, to prove
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
        Some(
            sink.label_for(&request("jobs", 0, 1, 3, Bytes::new()).ranges)
                .as_str()
        )
    );
    assert!(be_seen[0]
        .request_line
        .starts_with(&format!("PUT /api/{DB}/{TABLE}/_stream_load")));
}
