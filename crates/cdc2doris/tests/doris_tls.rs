//! Doris over HTTPS: doris-sim serving TLS on its FE and BE (the FE redirecting to an https BE) with certificates of
//! the local CA `dev/stack` makes. The sink verifies the chain against `doris.tls_ca_file` and the host name, follows
//! https redirects, refuses an https → http redirect unless `allow_https_downgrade`, and stops on a certificate it
//! cannot trust (unknown CA, another host's, expired) with a message that says what to change; `check` says the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cdc2doris::check::{check_config, check_connectivity, Outcome};
use cdc2doris::sink::doris::{DorisConfig, DorisSink, LabelScope};
use cdc2doris::sink::{LoadRequest, OffsetRange, RedirectRefusal, Sink, SinkError};
use secrecy::SecretString;

const DB: &str = "job_analytics";
const TABLE: &str = "merged_job_data";
const PASSWORD: &str = "doris-tls-test";

/// A certificate file of the local CA's set (`dev/stack env` exports its directory); fails when missing.
fn tls_file(name: &str) -> PathBuf {
    let dir = std::env::var("CDC2DORIS_TLS_DIR").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "CDC2DORIS_TLS_DIR is not set: run the tests with the environment of dev/stack (eval \"$(dev/stack env)\"), \
             which makes the local CA's certificates"
        )
    });
    let path = Path::new(&dir).join(name);
    assert!(
        path.exists(),
        "{} is missing: run dev/stack up to make the local CA's certificates",
        path.display()
    );
    path
}

/// A doris-sim with the job-analytics table serving HTTPS with `cert` (and its key).
async fn tls_sim(cert: &str, plain_be: bool) -> doris_sim::Sim {
    let ddl = common::world::repo().join("examples/job-analytics/doris.sql");
    doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![ddl.display().to_string()],
        password: PASSWORD.into(),
        tls: Some(doris_sim::SimTls {
            cert_file: tls_file(&format!("{cert}.pem")),
            key_file: tls_file(&format!("{cert}.key")),
            plain_be,
        }),
        ..Default::default()
    })
    .await
    .expect("start doris-sim with TLS")
}

fn config(fe_url: &str, ca: Option<&str>) -> DorisConfig {
    let mut cfg = DorisConfig::new(fe_url, DB, TABLE, "source_version");
    cfg.tls_ca_file = ca.map(tls_file);
    cfg.retry_min_delay = Duration::from_millis(20);
    cfg.retry_max_delay = Duration::from_millis(200);
    cfg.retry_deadline = Duration::from_secs(5);
    cfg.poll_interval = Duration::from_millis(50);
    cfg
}

fn one_row(id: i64) -> LoadRequest {
    let body = Bytes::from(format!(
        r#"{{"job_id":{id},"client_id":1,"title":"Job {id}","category":"eng","status":"open","salary_min":"1000.00","salary_max":"2000.50","created_at":"2026-11-25 10:00:00.000001","view_count":1,"client_excluded":false,"last_booked_on":"2026-11-01","source_version":1,"__DORIS_DELETE_SIGN__":0}}
"#
    ));
    let ranges = vec![OffsetRange {
        tp: cdc2doris::offsets::TopicPartition::new("tls", 0),
        first: id,
        last: id,
    }];
    LoadRequest {
        label: LabelScope::new("cdc2doris", DB, TABLE).label(&ranges, &body),
        ranges,
        body,
        row_count: 1,
    }
}

fn sink(cfg: &DorisConfig) -> DorisSink {
    DorisSink::new(cfg, SecretString::from(PASSWORD)).expect("sink")
}

#[tokio::test]
async fn loads_over_https_through_the_fe_redirect_to_an_https_be() {
    let sim = tls_sim("server", false).await;
    assert!(sim.fe_url().starts_with("https://"), "{}", sim.fe_url());
    // By IP address and by name: the certificate holds both.
    let by_name = sim.fe_url().replace("127.0.0.1", "localhost");
    for (i, fe) in [sim.fe_url(), by_name].into_iter().enumerate() {
        let receipt = sink(&config(&fe, Some("ca.pem")))
            .load(one_row(i as i64 + 1))
            .await
            .unwrap_or_else(|e| panic!("load over {fe}: {e}"));
        assert_eq!(receipt.rows_loaded, 1);
    }
    let rows = sim.client().rows(DB, TABLE).await.expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_certificate_of_an_unknown_ca_stops_the_load_naming_tls_ca_file() {
    let sim = tls_sim("server", false).await;
    // The system's roots (no tls_ca_file), then a CA that did not sign the server's certificate.
    for ca in [None, Some("other-ca.pem")] {
        let err = sink(&config(&sim.fe_url(), ca))
            .load(one_row(1))
            .await
            .expect_err("an unknown CA must be refused");
        assert!(
            matches!(err, SinkError::Certificate { .. }),
            "a certificate refusal, not retried as a transport error: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("unknown CA"), "{text}");
        assert!(text.contains("doris.tls_ca_file"), "{text}");
    }
    assert!(sim.client().rows(DB, TABLE).await.expect("rows").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let sim = tls_sim("wrong-host", false).await;
    let err = sink(&config(&sim.fe_url(), Some("ca.pem")))
        .load(one_row(1))
        .await
        .expect_err("a certificate for another host must be refused");
    let text = err.to_string();
    assert!(matches!(err, SinkError::Certificate { .. }), "{err:?}");
    assert!(text.contains("host name mismatch"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let sim = tls_sim("expired-server", false).await;
    let err = sink(&config(&sim.fe_url(), Some("ca.pem")))
        .load(one_row(1))
        .await
        .expect_err("an expired certificate must be refused");
    let text = err.to_string();
    assert!(matches!(err, SinkError::Certificate { .. }), "{err:?}");
    assert!(text.contains("has expired"), "{text}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_https_fe_redirecting_to_http_is_refused_unless_allowed() {
    let sim = tls_sim("server", true).await;
    assert!(sim.be_url().starts_with("http://"), "{}", sim.be_url());
    let cfg = config(&sim.fe_url(), Some("ca.pem"));
    let err = sink(&cfg)
        .load(one_row(1))
        .await
        .expect_err("https -> http must be refused");
    match &err {
        SinkError::RedirectRefused { refusal, to, .. } => {
            assert_eq!(*refusal, RedirectRefusal::SchemeDowngrade);
            assert!(!to.contains(PASSWORD), "{to}");
        }
        other => panic!("expected a refused redirect, got {other:?}"),
    }
    assert!(sim.client().rows(DB, TABLE).await.expect("rows").is_empty());

    let mut allowed = cfg.clone();
    allowed.allow_https_downgrade = true;
    let receipt = sink(&allowed)
        .load(one_row(2))
        .await
        .expect("loads once the downgrade is allowed");
    assert_eq!(receipt.rows_loaded, 1);
    sim.shutdown().await;
}

/// `check` against HTTPS FEs: passes with the right CA, and fails naming `doris.tls_ca_file` or the host otherwise.
#[tokio::test]
async fn check_verifies_the_doris_certificate() {
    let good = tls_sim("server", false).await;
    let wrong_host = tls_sim("wrong-host", false).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("merge.sql"),
        "SELECT 1 AS id WHERE 1 = ANY($1)",
    )
    .unwrap();
    let write = |name: &str, fe: &str, ca: &Path| -> PathBuf {
        let text = format!(
            r#"[kafka]
bootstrap_servers = ["127.0.0.1:1"]
group_id = "g"
topics = ["t"]

[postgres]
url = "postgres://nobody@127.0.0.1:1/none"
connect_timeout = "1s"

[keys]
[[keys.rules]]
topic = "t"
fields = ["id"]

[merge]
query_file = "merge.sql"
key_column = "id"

[doris]
fe_urls = ["{fe}"]
database = "{DB}"
table = "{TABLE}"
sequence_column = "source_version"
password_env = "TLS_TEST_DORIS_PASSWORD"
tls_ca_file = "{ca}"

[dead_letter]
path = "dead.jsonl"
"#,
            ca = ca.display()
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let env = |name: &str| match name {
        "TLS_TEST_DORIS_PASSWORD" => Ok(PASSWORD.to_string()),
        _ => Err(std::env::VarError::NotPresent),
    };
    let doris_line = |path: PathBuf| async move {
        let (mut report, config) = check_config(&path, &env);
        let config = config.unwrap_or_else(|| panic!("config invalid:\n{}", report.render()));
        check_connectivity(&config, Duration::from_secs(3), &mut report).await;
        report
            .lines
            .into_iter()
            .find(|l| l.subject == "doris.fe_urls[0]")
            .expect("a doris.fe_urls[0] line")
    };
    let line = doris_line(write("good.toml", &good.fe_url(), &tls_file("ca.pem"))).await;
    assert_eq!(line.outcome, Outcome::Pass, "{line:?}");

    let line = doris_line(write("ca.toml", &good.fe_url(), &tls_file("other-ca.pem"))).await;
    assert_eq!(line.outcome, Outcome::Fail, "{line:?}");
    assert!(line.detail.contains("unknown CA"), "{line:?}");
    assert!(line.detail.contains("doris.tls_ca_file"), "{line:?}");

    let line = doris_line(write(
        "host.toml",
        &wrong_host.fe_url(),
        &tls_file("ca.pem"),
    ))
    .await;
    assert_eq!(line.outcome, Outcome::Fail, "{line:?}");
    assert!(line.detail.contains("host name mismatch"), "{line:?}");
    good.shutdown().await;
    wrong_host.shutdown().await;
}
