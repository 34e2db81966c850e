//! Conformance suite: one test per C-item of `docs/doris-stream-load.md` §9 that doris-sim implements,
//! driven through a raw HTTP client so redirects and headers are seen as sent.

mod common;

use common::*;
use serde_json::json;

const ROW1: &str = r#"{"job_id": 1, "client_id": 10, "title": "Engineer", "salary_min": "100.50", "created_at": "2024-01-02 03:04:05.123456", "client_excluded": true, "last_booked_on": "2024-05-06", "source_version": 5}"#;

#[tokio::test]
async fn c01_fe_redirects_with_location_to_the_be() {
    let sim = sim().await;
    let auth = basic("root", "");
    let r = send(
        sim.fe_addr(),
        "PUT",
        "/api/job_analytics/merged_job_data/_stream_load?x=1",
        &[
            ("Authorization", &auth),
            ("Expect", "100-continue"),
            ("label", "l1"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 307);
    assert_eq!(r.body, "");
    let expected = format!(
        "http://root:@127.0.0.1:{}/api/job_analytics/merged_job_data/_stream_load?x=1",
        sim.be_addr().port()
    );
    assert_eq!(r.header("Location"), Some(expected.as_str()));
    // `?` is always present, even without a query.
    let r = send(
        sim.fe_addr(),
        "PUT",
        "/api/job_analytics/merged_job_data/_stream_load",
        &[("Authorization", &auth), ("Expect", "100-continue")],
        b"",
    )
    .await;
    assert!(
        r.header("Location")
            .is_some_and(|l| l.ends_with("/_stream_load?")),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn c02_fe_redirects_without_reading_the_body_or_sending_100_continue() {
    use tokio::io::AsyncWriteExt;
    let sim = sim().await;
    let mut s = tokio::net::TcpStream::connect(sim.fe_addr()).await.unwrap();
    let auth = basic("root", "");
    // Announce a 1 MB body and send none of it: the FE must still answer 307 at once.
    let req = format!(
        "PUT /api/job_analytics/merged_job_data/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), read_response(&mut s))
        .await
        .expect("FE answered before the body")
        .unwrap();
    assert_eq!(r.status, 307);
    assert!(r.interim.is_empty(), "FE sent interim {:?}", r.interim);
}

#[tokio::test]
async fn c03_fe_without_expect_fails_with_exact_message() {
    let sim = sim().await;
    let auth = basic("root", "");
    let r = send(
        sim.fe_addr(),
        "PUT",
        "/api/job_analytics/merged_job_data/_stream_load",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"status": "FAILED", "msg": "There is no 100-continue header"})
    );
    assert_eq!(r.header("Location"), None);
}

#[tokio::test]
async fn c04_fe_bad_or_missing_auth_is_401_envelope_without_redirect() {
    let sim = sim().await;
    let path = "/api/job_analytics/merged_job_data/_stream_load";
    let r = send(
        sim.fe_addr(),
        "PUT",
        path,
        &[("Expect", "100-continue")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"msg": "Unauthorized", "code": 401, "data": "Need auth information.", "count": 0})
    );
    let bad = basic("root", "wrong");
    let r = send(
        sim.fe_addr(),
        "PUT",
        path,
        &[("Authorization", &bad), ("Expect", "100-continue")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["code"], 401);
    assert_eq!(j["data"], "Access denied for root@127.0.0.1");
    assert_eq!(r.header("Location"), None);
}

#[tokio::test]
async fn c05_c06_following_location_with_userinfo_stripped_and_auth_readded_loads() {
    let sim = sim().await;
    let auth = basic("root", "");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Expect", "100-continue"),
        ("label", "via_fe"),
        ("format", "json"),
    ];
    let r = send(
        sim.fe_addr(),
        "PUT",
        "/api/job_analytics/merged_job_data/_stream_load",
        &headers,
        ROW1.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 307);
    let loc = r.header("Location").unwrap().to_string();
    // Strip `http://user:pw@host:port`, keep path + query; re-send with a fresh Authorization.
    let after_scheme = loc.strip_prefix("http://").unwrap();
    let (authority, path) = after_scheme.split_at(after_scheme.find('/').unwrap());
    let hostport = authority.rsplit_once('@').unwrap().1;
    let addr: std::net::SocketAddr = hostport.parse().unwrap();
    let r = send(addr, "PUT", path, &headers, ROW1.as_bytes()).await;
    assert_eq!(r.json()["Status"], "Success", "{}", r.body);
    assert_eq!(
        rows(&sim, "job_analytics", "merged_job_data").await.len(),
        1
    );
}

#[tokio::test]
async fn c07_be_accepts_direct_load_without_expect_and_sends_100_when_expected() {
    let sim = sim().await;
    let r = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("format", "json")],
        ROW1,
    )
    .await;
    assert_eq!(r.json()["Status"], "Success", "{}", r.body);
    assert!(r.interim.is_empty());
    let r = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("format", "json"), ("Expect", "100-continue")],
        ROW1,
    )
    .await;
    assert_eq!(r.json()["Status"], "Success", "{}", r.body);
    assert_eq!(r.interim, vec![100]);
}

#[tokio::test]
async fn c08_be_answers_http_200_with_pretty_json_and_newline_for_every_outcome() {
    let sim = sim().await;
    let ok = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("format", "json")],
        ROW1,
    )
    .await;
    let bad_table = be_load(&sim, "job_analytics", "nope", &[("format", "json")], ROW1).await;
    let garbage = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("format", "json")],
        "{{{{ not json",
    )
    .await;
    let bad_header = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("strict_mode", "maybe")],
        "",
    )
    .await;
    for r in [ok, bad_table, garbage, bad_header] {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.starts_with("{\n    \"TxnId\": "), "{}", r.body);
        assert!(r.body.ends_with("\n}\n"), "{:?}", r.body);
        assert_ne!(
            r.header("Content-Type"),
            Some("application/json"),
            "clients must not rely on it"
        );
        r.json();
    }
}

const SUCCESS_FIELDS: [&str; 17] = [
    "TxnId",
    "Label",
    "Comment",
    "TwoPhaseCommit",
    "Status",
    "Message",
    "NumberTotalRows",
    "NumberLoadedRows",
    "NumberFilteredRows",
    "NumberUnselectedRows",
    "LoadBytes",
    "LoadTimeMs",
    "BeginTxnTimeMs",
    "StreamLoadPutTimeMs",
    "ReadDataTimeMs",
    "WriteDataTimeMs",
    "CommitAndPublishTimeMs",
];

#[tokio::test]
async fn c09_fields_in_spec_order_two_phase_commit_is_a_string_error_url_only_when_filtered() {
    let sim = sim().await;
    let r = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("format", "json"), ("comment", "hi")],
        ROW1,
    )
    .await;
    assert_eq!(r.field_order(), SUCCESS_FIELDS);
    let j = r.json();
    assert_eq!(j["TwoPhaseCommit"], "false");
    assert_eq!(j["Comment"], "hi");
    assert_eq!(j["Message"], "OK");
    let body = format!("{ROW1}\n{{\"job_id\": 2}}\n");
    let r = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[
            ("format", "json"),
            ("read_json_by_line", "true"),
            ("max_filter_ratio", "0.5"),
        ],
        &body,
    )
    .await;
    let mut with_url: Vec<&str> = SUCCESS_FIELDS.to_vec();
    with_url.push("ErrorURL");
    assert_eq!(r.field_order(), with_url);
    assert_eq!(r.json()["NumberFilteredRows"], 1);
}

#[tokio::test]
async fn c10_no_label_gets_a_uuid() {
    let sim = sim().await;
    let j = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("format", "json")],
        ROW1,
    )
    .await
    .json();
    let label = j["Label"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(label).is_ok(), "{label}");
}

#[tokio::test]
async fn c11_bad_label_fails_before_a_transaction() {
    let sim = sim().await;
    let j = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[("format", "json"), ("label", "bad label!")],
        ROW1,
    )
    .await
    .json();
    assert_eq!(j["Status"], "Fail");
    assert_eq!(j["TxnId"], -1);
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("Label format error"),
        "{j}"
    );
    assert!(rows(&sim, "job_analytics", "merged_job_data")
        .await
        .is_empty());
}

#[tokio::test]
async fn c12_label_of_finished_load_already_exists_with_txn_minus_one_and_no_change() {
    let sim = sim().await;
    let first = json_load(&sim, "job_analytics", "merged_job_data", "lbl_a", ROW1).await;
    assert_eq!(first["Status"], "Success");
    let txn = first["TxnId"].as_i64().unwrap();
    let other = ROW1.replace("\"job_id\": 1", "\"job_id\": 99");
    let r = be_load(
        &sim,
        "job_analytics",
        "merged_job_data",
        &[
            ("label", "lbl_a"),
            ("format", "json"),
            ("read_json_by_line", "true"),
        ],
        &other,
    )
    .await;
    let order = r.field_order();
    assert_eq!(order[4..6], ["Status", "ExistingJobStatus"]);
    let j = r.json();
    assert_eq!(j["Status"], "Label Already Exists");
    assert_eq!(j["ExistingJobStatus"], "FINISHED");
    assert_eq!(j["TxnId"], -1);
    assert_eq!(j["NumberTotalRows"], 0);
    assert!(j["Message"].as_str().unwrap().contains(&format!(
        "Label [lbl_a] has already been used, relate to txn [{txn}]"
    )));
    let stored = rows(&sim, "job_analytics", "merged_job_data").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["job_id"], 1);
}

#[tokio::test]
async fn c16_labels_are_scoped_per_database() {
    let sim = sim().await;
    let a = json_load(&sim, "d1", "u", "same", r#"{"k": 1, "v": "a"}"#).await;
    let b = json_load(&sim, "d2", "u", "same", r#"{"k": 1, "v": "b"}"#).await;
    assert_eq!(a["Status"], "Success");
    assert_eq!(b["Status"], "Success", "{b}");
    let c = json_load(&sim, "d1", "dup", "same", r#"{"k": 1, "v": "c"}"#).await;
    assert_eq!(
        c["Status"], "Label Already Exists",
        "same db, other table: {c}"
    );
}

#[tokio::test]
async fn c33_unique_upsert_by_key_later_load_wins_whole_row_replaced() {
    let sim = sim().await;
    json_load(
        &sim,
        "d1",
        "u",
        "a",
        "{\"k\": 1, \"v\": \"old\", \"n\": 5}\n{\"k\": 2, \"v\": \"two\"}",
    )
    .await;
    let j = json_load(&sim, "d1", "u", "b", r#"{"k": 1, "v": "new"}"#).await;
    assert_eq!(j["Status"], "Success");
    let r = rows(&sim, "d1", "u").await;
    assert_eq!(
        r,
        vec![
            json!({"k": 1, "v": "new", "n": null}),
            json!({"k": 2, "v": "two", "n": null})
        ]
    );
}

#[tokio::test]
async fn c34_sequence_replaces_iff_new_ge_stored_deletes_too() {
    let sim = sim().await;
    let t = ("job_analytics", "merged_job_data");
    let row = |v: i64, title: &str| {
        format!(r#"{{"job_id": 7, "title": "{title}", "source_version": {v}}}"#)
    };
    assert_eq!(
        json_load(&sim, t.0, t.1, "s1", &row(5, "five")).await["Status"],
        "Success"
    );
    json_load(&sim, t.0, t.1, "s2", &row(3, "three")).await;
    assert_eq!(
        rows(&sim, t.0, t.1).await[0]["title"],
        "five",
        "smaller sequence ignored"
    );
    json_load(&sim, t.0, t.1, "s3", &row(5, "five-again")).await;
    assert_eq!(
        rows(&sim, t.0, t.1).await[0]["title"],
        "five-again",
        "equal sequence replaces"
    );
    // A delete with a smaller sequence is ignored; with a greater one it removes the key.
    let del =
        |v: i64| format!(r#"{{"job_id": 7, "source_version": {v}, "__DORIS_DELETE_SIGN__": 1}}"#);
    let hidden = [
        ("format", "json"),
        ("read_json_by_line", "true"),
        ("hidden_columns", "__DORIS_DELETE_SIGN__"),
    ];
    be_load(&sim, t.0, t.1, &hidden, &del(4)).await;
    assert_eq!(rows(&sim, t.0, t.1).await.len(), 1);
    be_load(&sim, t.0, t.1, &hidden, &del(6)).await;
    assert!(rows(&sim, t.0, t.1).await.is_empty());
    // The delete's sequence is remembered: an older upsert does not resurrect the key.
    json_load(&sim, t.0, t.1, "s4", &row(5, "late")).await;
    assert!(rows(&sim, t.0, t.1).await.is_empty());
    json_load(&sim, t.0, t.1, "s5", &row(6, "back")).await;
    assert_eq!(rows(&sim, t.0, t.1).await[0]["title"], "back");
}

#[tokio::test]
async fn c35_delete_sign_removes_key() {
    let sim = sim().await;
    json_load(
        &sim,
        "d1",
        "u",
        "a",
        "{\"k\": 1, \"v\": \"x\"}\n{\"k\": 2, \"v\": \"y\"}",
    )
    .await;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("format", "json"), ("columns", "k,__DORIS_DELETE_SIGN__")],
        r#"{"k": 1, "__DORIS_DELETE_SIGN__": 1}"#,
    )
    .await
    .json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(
        rows(&sim, "d1", "u").await,
        vec![json!({"k": 2, "v": "y", "n": null})]
    );
}

#[tokio::test]
async fn reference_row_types_render_in_rows_endpoint() {
    let sim = sim().await;
    let j = json_load(&sim, "job_analytics", "merged_job_data", "t", ROW1).await;
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    let r = rows(&sim, "job_analytics", "merged_job_data").await;
    assert_eq!(r[0]["salary_min"], "100.50");
    assert_eq!(r[0]["created_at"], "2024-01-02 03:04:05.123456");
    assert_eq!(r[0]["client_excluded"], true);
    assert_eq!(r[0]["last_booked_on"], "2024-05-06");
    assert_eq!(r[0]["source_version"], 5);
    assert_eq!(r[0]["salary_max"], serde_json::Value::Null);
}

#[tokio::test]
async fn c13_label_of_running_load_reports_running() {
    let sim = sim().await;
    queue_fault(&sim, json!({"kind": "delay", "delay_ms": 1500})).await;
    let be = sim.be_addr();
    let first = tokio::spawn(async move {
        let auth = basic("root", "");
        send(
            be,
            "PUT",
            "/api/d1/u/_stream_load",
            &[
                ("Authorization", &auth),
                ("label", "slow"),
                ("format", "json"),
            ],
            br#"{"k": 1}"#,
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(load_state(&sim, "d1", "slow").await["data"], "PREPARE");
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("label", "slow"), ("format", "json")],
        r#"{"k": 2}"#,
    )
    .await
    .json();
    assert_eq!(j["Status"], "Label Already Exists");
    assert_eq!(j["ExistingJobStatus"], "RUNNING");
    assert_eq!(first.await.unwrap().json()["Status"], "Success");
    assert_eq!(
        rows(&sim, "d1", "u").await,
        vec![json!({"k": 1, "v": null, "n": null})]
    );
}

async fn precommit(sim: &doris_sim::Sim, label: &str, body: &str) -> serde_json::Value {
    be_load(
        sim,
        "d1",
        "u",
        &[
            ("label", label),
            ("format", "json"),
            ("two_phase_commit", "true"),
        ],
        body,
    )
    .await
    .json()
}

#[tokio::test]
async fn c14_label_of_precommitted_txn_reports_precommitted_and_txn() {
    let sim = sim().await;
    let j = precommit(&sim, "p1", r#"{"k": 1}"#).await;
    let txn = j["TxnId"].as_i64().unwrap();
    let again = precommit(&sim, "p1", r#"{"k": 1}"#).await;
    assert_eq!(again["Status"], "Label Already Exists");
    assert_eq!(again["ExistingJobStatus"], "PRECOMMITTED");
    assert_eq!(again["TwoPhaseCommit"], "true");
    assert!(again["Message"]
        .as_str()
        .unwrap()
        .contains(&format!("has already been used, relate to txn [{txn}]")));
}

#[tokio::test]
async fn c15_label_of_aborted_txn_is_reusable() {
    let sim = sim().await;
    // Fails (a filtered row with ratio 0) → aborted.
    let j = json_load(&sim, "d1", "u", "again", r#"{"v": "no key"}"#).await;
    assert_eq!(j["Status"], "Fail");
    assert_eq!(load_state(&sim, "d1", "again").await["data"], "ABORTED");
    let j = json_load(&sim, "d1", "u", "again", r#"{"k": 1}"#).await;
    assert_eq!(j["Status"], "Success", "{j}");
    // And a 2PC abort frees the label too.
    let p = precommit(&sim, "again2", r#"{"k": 2}"#).await;
    let id = p["TxnId"].to_string();
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &id), ("txn_operation", "abort")],
    )
    .await;
    assert_eq!(r.json()["status"], "Success");
    assert_eq!(
        precommit(&sim, "again2", r#"{"k": 2}"#).await["Status"],
        "Success"
    );
}

#[tokio::test]
async fn c17_finished_labels_expire_after_the_keep_knob() {
    let sim = sim_opts(doris_sim::SimOptions {
        label_keep_max_secs: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(
        json_load(&sim, "d1", "u", "exp", r#"{"k": 1}"#).await["Status"],
        "Success"
    );
    assert_eq!(
        json_load(&sim, "d1", "u", "exp", r#"{"k": 1}"#).await["Status"],
        "Label Already Exists"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(load_state(&sim, "d1", "exp").await["data"], "UNKNOWN");
    assert_eq!(
        json_load(&sim, "d1", "u", "exp", r#"{"k": 1}"#).await["Status"],
        "Success"
    );
    assert_eq!(doris_sim::SimOptions::default().label_keep_max_secs, 43_200);
}

#[tokio::test]
async fn c18_publish_timeout_is_committed_and_visible_later() {
    let sim = sim().await;
    queue_fault(&sim, json!({"kind": "publish_timeout", "delay_ms": 500})).await;
    let j = json_load(&sim, "d1", "u", "pt", r#"{"k": 1}"#).await;
    assert_eq!(j["Status"], "Publish Timeout");
    assert!(j["Message"]
        .as_str()
        .unwrap()
        .contains("Transaction commit successfully, BUT data will be visible later"));
    assert_eq!(load_state(&sim, "d1", "pt").await["data"], "COMMITTED");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(load_state(&sim, "d1", "pt").await["data"], "VISIBLE");
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
    assert_eq!(
        json_load(&sim, "d1", "u", "pt", r#"{"k": 1}"#).await["ExistingJobStatus"],
        "FINISHED"
    );
}

/// The `filter_rows` fault (dev/chaos' `sim_filter`): a load of 2 rows or more fails as a real Doris fails a load
/// with a filtered row under `max_filter_ratio` 0 (Status Fail, `too many filtered rows`, an ErrorURL naming the
/// row); a 1-row load does not take it, and the same rows loaded apart then commit.
#[tokio::test]
async fn c18b_filter_rows_fault_fails_a_load_of_two_rows_or_more() {
    let sim = sim().await;
    queue_fault(&sim, json!({"kind": "filter_rows", "count": 1})).await;
    let one = json_load(&sim, "d1", "u", "f0", r#"{"k": 9, "v": "a"}"#).await;
    assert_eq!(one["Status"], "Success", "{one}");
    let j = json_load(
        &sim,
        "d1",
        "u",
        "f1",
        "{\"k\": 1, \"v\": \"a\"}\n{\"k\": 2, \"v\": \"b\"}",
    )
    .await;
    assert_eq!(j["Status"], "Fail", "{j}");
    assert_eq!(j["Message"], "[DATA_QUALITY_ERROR]too many filtered rows");
    assert_eq!(
        (
            j["NumberTotalRows"].as_u64(),
            j["NumberFilteredRows"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let url = j["ErrorURL"].as_str().unwrap();
    let path = url
        .split_once(&format!(":{}", sim.be_addr().port()))
        .unwrap()
        .1;
    let log = send(sim.be_addr(), "GET", path, &[], b"").await;
    assert!(log.body.contains("key=[1]"), "{}", log.body);
    assert_eq!(
        rows(&sim, "d1", "u").await.len(),
        1,
        "nothing of the failed load is committed"
    );
    // The fault is used up: the same rows load.
    let j = json_load(
        &sim,
        "d1",
        "u",
        "f2",
        "{\"k\": 1, \"v\": \"a\"}\n{\"k\": 2, \"v\": \"b\"}",
    )
    .await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(rows(&sim, "d1", "u").await.len(), 3);
}

#[tokio::test]
async fn c19_ambiguous_outcome_retry_with_same_label_proves_success() {
    let sim = sim().await;
    let auth = basic("root", "");
    let headers = [
        ("Authorization", auth.as_str()),
        ("label", "amb"),
        ("format", "json"),
    ];
    // Reset after commit: the client sees a transport error, the data is committed.
    queue_fault(&sim, json!({"kind": "reset_after_commit"})).await;
    let r = try_send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load",
        &headers,
        br#"{"k": 1}"#,
    )
    .await;
    assert!(r.is_err(), "expected a transport error, got {r:?}");
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("label", "amb"), ("format", "json")],
        r#"{"k": 1}"#,
    )
    .await
    .json();
    assert_eq!(
        (j["Status"].as_str(), j["ExistingJobStatus"].as_str()),
        (Some("Label Already Exists"), Some("FINISHED"))
    );
    // Reset before commit: nothing committed, the same label then succeeds.
    queue_fault(&sim, json!({"kind": "reset_before_commit"})).await;
    let h2 = [
        ("Authorization", auth.as_str()),
        ("label", "amb2"),
        ("format", "json"),
    ];
    assert!(try_send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load",
        &h2,
        br#"{"k": 2}"#
    )
    .await
    .is_err());
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("label", "amb2"), ("format", "json")],
        r#"{"k": 2}"#,
    )
    .await
    .json();
    assert_eq!(j["Status"], "Success", "{j}");
}

#[tokio::test]
async fn c20_two_phase_commit_exact_true_precommits_invisibly() {
    let sim = sim().await;
    let j = precommit(&sim, "tp", r#"{"k": 1}"#).await;
    assert_eq!(j["Status"], "Success");
    assert_eq!(j["TwoPhaseCommit"], "true");
    assert!(rows(&sim, "d1", "u").await.is_empty());
    assert_eq!(load_state(&sim, "d1", "tp").await["data"], "PRECOMMITTED");
    // Only exactly `true` turns 2PC on.
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[
            ("label", "tp2"),
            ("format", "json"),
            ("two_phase_commit", "TRUE"),
        ],
        r#"{"k": 2}"#,
    )
    .await
    .json();
    assert_eq!(j["TwoPhaseCommit"], "false");
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
}

#[tokio::test]
async fn c21_two_pc_commit_by_txn_id_via_fe_and_abort_by_label() {
    let sim = sim().await;
    let txn = precommit(&sim, "c21", r#"{"k": 1}"#).await["TxnId"]
        .as_i64()
        .unwrap();
    let id = txn.to_string();
    let r = two_pc(
        sim.fe_addr(),
        "d1",
        &[("txn_id", &id), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(r.status, 307);
    let loc = r.header("Location").unwrap();
    assert!(loc.ends_with("/api/d1/_stream_load_2pc?"), "{loc}");
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &id), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"status": "Success", "msg": format!("transaction [{txn}] commit successfully.")})
    );
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
    assert_eq!(load_state(&sim, "d1", "c21").await["data"], "VISIBLE");
    precommit(&sim, "c21b", r#"{"k": 2}"#).await;
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[("label", "c21b"), ("txn_operation", "abort")],
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"status": "Success", "msg": "label [c21b] abort successfully."})
    );
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
    // The table segment of the URL is accepted and ignored.
    let txn = precommit(&sim, "c21c", r#"{"k": 3}"#).await["TxnId"].to_string();
    let auth = basic("root", "");
    let r = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load_2pc",
        &[
            ("Authorization", &auth),
            ("txn_id", &txn),
            ("txn_operation", "commit"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.json()["status"], "Success");
}

#[tokio::test]
async fn c22_double_commit_is_already_visible() {
    let sim = sim().await;
    let txn = precommit(&sim, "c22", r#"{"k": 1}"#).await["TxnId"]
        .as_i64()
        .unwrap();
    let id = txn.to_string();
    two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &id), ("txn_operation", "commit")],
    )
    .await;
    let j = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &id), ("txn_operation", "commit")],
    )
    .await
    .json();
    assert_ne!(j["status"], "Success");
    let msg = j["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "transaction [{txn}] is already visible, not pre-committed."
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn c23_abort_of_aborted_unknown_or_committed_fails() {
    let sim = sim().await;
    let txn = precommit(&sim, "c23", r#"{"k": 1}"#).await["TxnId"]
        .as_i64()
        .unwrap();
    let id = txn.to_string();
    assert_eq!(
        two_pc(
            sim.be_addr(),
            "d1",
            &[("txn_id", &id), ("txn_operation", "abort")]
        )
        .await
        .json()["status"],
        "Success"
    );
    let j = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &id), ("txn_operation", "abort")],
    )
    .await
    .json();
    assert!(
        j["msg"]
            .as_str()
            .unwrap()
            .contains(&format!("transaction [{txn}] is already")),
        "{j}"
    );
    let j = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", "987654"), ("txn_operation", "abort")],
    )
    .await
    .json();
    assert!(
        j["msg"]
            .as_str()
            .unwrap()
            .contains("transaction [987654] not found"),
        "{j}"
    );
    let txn = precommit(&sim, "c23b", r#"{"k": 1}"#).await["TxnId"].to_string();
    two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &txn), ("txn_operation", "commit")],
    )
    .await;
    let j = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &txn), ("txn_operation", "abort")],
    )
    .await
    .json();
    assert_ne!(j["status"], "Success", "{j}");
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
}

#[tokio::test]
async fn c24_two_pc_without_id_label_or_operation_fails_on_fe() {
    let sim = sim().await;
    let j = two_pc(sim.fe_addr(), "d1", &[("txn_operation", "commit")])
        .await
        .json();
    assert_eq!(
        j,
        json!({"status": "FAILED", "msg": "No transaction id or label selected."})
    );
    let j = two_pc(sim.fe_addr(), "d1", &[("txn_id", "1")]).await.json();
    assert_eq!(
        j,
        json!({"status": "FAILED", "msg": "No transaction operation('commit' or 'abort') selected."})
    );
    let j = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", "x1"), ("txn_operation", "commit")],
    )
    .await
    .json();
    assert_eq!(j["status"], "INTERNAL_ERROR");
    assert!(
        j["msg"]
            .as_str()
            .unwrap()
            .starts_with("convert txn_id [x1] failed"),
        "{j}"
    );
    let j = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", "1"), ("txn_operation", "maybe")],
    )
    .await
    .json();
    assert_eq!(
        j["msg"],
        "transaction operation should be 'commit' or 'abort'"
    );
}

#[tokio::test]
async fn c25_get_load_state_envelope_and_unknown() {
    let sim = sim().await;
    json_load(&sim, "d1", "u", "gls", r#"{"k": 1}"#).await;
    assert_eq!(
        load_state(&sim, "d1", "gls").await,
        json!({"msg": "success", "code": 0, "data": "VISIBLE", "count": 0})
    );
    assert_eq!(load_state(&sim, "d1", "nope").await["data"], "UNKNOWN");
    assert_eq!(
        load_state(&sim, "nodb", "gls").await,
        json!({"msg": "Error", "code": 1, "data": "unknown databases, dbName=nodb", "count": 0})
    );
    let auth = basic("root", "");
    let r = send(
        sim.fe_addr(),
        "GET",
        "/api/d1/get_load_state",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"msg": "Bad Request", "code": 403, "data": "No label selected", "count": 0})
    );
    let r = send(
        sim.fe_addr(),
        "GET",
        "/api/d1/get_load_state?label=gls",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.json()["code"], 401);
}

#[tokio::test]
async fn c26_too_many_filtered_rows_fails_with_error_url_and_commits_nothing() {
    let sim = sim().await;
    let body = "{\"k\": 1, \"v\": \"ok\"}\n{\"k\": 2, \"v\": \"too long value\"}\n{\"k\": 3}";
    let h = [
        ("format", "json"),
        ("read_json_by_line", "true"),
        ("max_filter_ratio", "0.3"),
        ("label", "r1"),
        // Strict: outside it a 4.x BE cuts the over-long value instead of filtering the row.
        ("strict_mode", "true"),
    ];
    let r = be_load(&sim, "d1", "u", &h, body).await;
    let j = r.json();
    assert_eq!(j["Status"], "Fail");
    assert_eq!(j["Message"], "[DATA_QUALITY_ERROR]too many filtered rows");
    assert_eq!(
        (
            j["NumberTotalRows"].as_u64(),
            j["NumberFilteredRows"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(
        j["NumberLoadedRows"], 0,
        "a 4.x BE reports no loaded rows for a failed load (the 2.1–3.1 profiles: the 2 it would have loaded)"
    );
    assert!(j["TxnId"].as_i64().unwrap() > 0);
    assert!(rows(&sim, "d1", "u").await.is_empty());
    let url = j["ErrorURL"].as_str().unwrap();
    let path = url
        .split_once(&format!(":{}", sim.be_addr().port()))
        .unwrap()
        .1;
    let log = send(sim.be_addr(), "GET", path, &[], b"").await;
    assert_eq!(log.status, 200);
    assert!(log.body.contains("too long"), "{}", log.body);
    assert!(log.body.contains("\"k\": 2"), "{}", log.body);
    // Ratio 1/3 ≤ 0.34 passes: the good rows commit, the ErrorURL is still reported.
    let h = [
        ("format", "json"),
        ("read_json_by_line", "true"),
        ("max_filter_ratio", "0.34"),
        ("label", "r1"),
        ("strict_mode", "true"),
    ];
    let j = be_load(&sim, "d1", "u", &h, body).await.json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert!(j["ErrorURL"].is_string());
    assert_eq!(rows(&sim, "d1", "u").await.len(), 2);
}

#[tokio::test]
async fn c27_where_rejections_count_as_unselected_only() {
    let sim = sim().await;
    let body = "1\ta\t1\n2\tb\t2\n3\tc\t3\n";
    let j = be_load(&sim, "d1", "u", &[("where", "n >= 2")], body)
        .await
        .json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(
        (
            j["NumberUnselectedRows"].as_u64(),
            j["NumberFilteredRows"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(j["NumberLoadedRows"], 2);
    assert!(j.get("ErrorURL").is_none());
}

#[tokio::test]
async fn c28_strict_mode_filters_conversion_failures_off_makes_null() {
    let sim = sim().await;
    let body = "1\ta\tnot_a_number\n";
    let j = be_load(&sim, "d1", "u", &[("strict_mode", "false")], body)
        .await
        .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    assert_eq!(rows(&sim, "d1", "u").await[0]["n"], serde_json::Value::Null);
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("strict_mode", "true"), ("max_filter_ratio", "1")],
        "2\tb\tnope\n",
    )
    .await
    .json();
    assert_eq!(j["NumberFilteredRows"], 1, "{j}");
    // Over-long strings: filtered in strict mode; outside it a 4.x BE cuts them to the column's length, older
    // releases filter them too (src/version.rs).
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("strict_mode", "true"), ("max_filter_ratio", "1")],
        "3\tnine char\t1\n",
    )
    .await
    .json();
    assert_eq!(j["NumberFilteredRows"], 1, "{j}");
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
    let j = be_load(&sim, "d1", "u", &[], "3\tnine char\t1\n")
        .await
        .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    assert_eq!(rows(&sim, "d1", "u").await[1]["v"], "nine cha");
    let old = sim_version(doris_sim::DorisVersion::V3_0, &[MERGED_JOB_DATA, TEST_DDL]).await;
    let j = be_load(
        &old,
        "d1",
        "u",
        &[("max_filter_ratio", "1")],
        "3\tnine char\t1\n",
    )
    .await
    .json();
    assert_eq!(j["NumberFilteredRows"], 1, "{j}");
    assert!(rows(&old, "d1", "u").await.is_empty());
}

#[tokio::test]
async fn c29_null_into_not_null_is_filtered() {
    let sim = sim().await;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("max_filter_ratio", "1")],
        "\\N\ta\t1\n5\tb\t2\n",
    )
    .await
    .json();
    assert_eq!(
        (
            j["NumberFilteredRows"].as_u64(),
            j["NumberLoadedRows"].as_u64()
        ),
        (Some(1), Some(1)),
        "{j}"
    );
    let j = json_load(&sim, "d1", "u", "nn", r#"{"k": null, "v": "x"}"#).await;
    assert_eq!(j["Status"], "Fail");
}

#[tokio::test]
async fn c30_json_keys_match_exactly_extras_ignored_missing_null_or_filtered() {
    let sim = sim().await;
    let body = "{\"k\": 1, \"v\": \"a\", \"extra\": [1, 2]}\n{\"K\": 2, \"v\": \"b\"}\n{\"v\": \"c\"}\n{\"other\": 1}";
    let h = [
        ("format", "json"),
        ("read_json_by_line", "true"),
        ("max_filter_ratio", "1"),
    ];
    let r = be_load(&sim, "d1", "u", &h, body).await;
    let j = r.json();
    assert_eq!(
        (
            j["NumberLoadedRows"].as_u64(),
            j["NumberFilteredRows"].as_u64()
        ),
        (Some(1), Some(3)),
        "{j}"
    );
    assert_eq!(
        rows(&sim, "d1", "u").await,
        vec![json!({"k": 1, "v": "a", "n": null})]
    );
    let url = j["ErrorURL"].as_str().unwrap();
    let path = url
        .split_once(&format!(":{}", sim.be_addr().port()))
        .unwrap()
        .1;
    let log = send(sim.be_addr(), "GET", path, &[], b"").await.body;
    assert!(
        log.contains("The column `k` is not nullable, but it's not found in jsondata."),
        "{log}"
    );
    assert!(
        log.contains("All fields is null, this is a invalid row."),
        "{log}"
    );
}

#[tokio::test]
async fn c31_strip_outer_array_and_read_json_by_line() {
    let sim = sim().await;
    let arr = r#"[{"k": 1}, {"k": 2}]"#;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("format", "json"), ("strip_outer_array", "true")],
        arr,
    )
    .await
    .json();
    assert_eq!(j["NumberLoadedRows"], 2, "{j}");
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("format", "json"), ("max_filter_ratio", "1")],
        arr,
    )
    .await
    .json();
    assert_eq!(
        j["NumberLoadedRows"], 0,
        "array without strip_outer_array: {j}"
    );
    let lines = "[{\"k\": 3}]\n[{\"k\": 4}, {\"k\": 5}]\n";
    let h = [
        ("format", "json"),
        ("strip_outer_array", "true"),
        ("read_json_by_line", "true"),
    ];
    let j = be_load(&sim, "d1", "u", &h, lines).await.json();
    assert_eq!(j["NumberLoadedRows"], 3, "{j}");
    let j = be_load(&sim, "d1", "u", &[("format", "json")], "{\"k\": 6}")
        .await
        .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    assert_eq!(rows(&sim, "d1", "u").await.len(), 6);
}

#[tokio::test]
async fn c32_csv_null_marker_and_multichar_and_hex_separators() {
    let sim = sim().await;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("column_separator", "||")],
        "1||\\N||7\n2||||8\n",
    )
    .await
    .json();
    assert_eq!(j["NumberLoadedRows"], 2, "{j}");
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("column_separator", "\\x01")],
        "3\x01c\x019\n",
    )
    .await
    .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("column_separator", ","), ("line_delimiter", "\\x0d0a")],
        "4,d,1\r\n",
    )
    .await
    .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    let r = rows(&sim, "d1", "u").await;
    assert_eq!(r[0], json!({"k": 1, "v": null, "n": 7}));
    assert_eq!(
        r[1],
        json!({"k": 2, "v": "", "n": 8}),
        "empty field = empty string"
    );
    assert_eq!(r[2]["v"], "c");
    assert_eq!(r[3]["v"], "d");
}

#[tokio::test]
async fn c36_merge_type_semantics_and_validation_messages() {
    let sim = sim().await;
    be_load(&sim, "d1", "u", &[], "1\ta\t1\n2\tb\t2\n3\tc\t3\n").await;
    let j = be_load(&sim, "d1", "u", &[("merge_type", "delete")], "1\tx\t0\n")
        .await
        .json();
    assert_eq!(j["Status"], "Success", "{j}");
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("merge_type", "MERGE"), ("delete", "n=0")],
        "2\tx\t0\n4\td\t4\n",
    )
    .await
    .json();
    assert_eq!(j["Status"], "Success", "{j}");
    let keys: Vec<i64> = rows(&sim, "d1", "u")
        .await
        .iter()
        .map(|r| r["k"].as_i64().unwrap())
        .collect();
    assert_eq!(keys, vec![3, 4]);
    let msg = |j: serde_json::Value| j["Message"].as_str().unwrap().to_string();
    let m = msg(be_load(&sim, "d1", "u", &[("merge_type", "MERGE")], "")
        .await
        .json());
    assert!(
        m.contains("Excepted DELETE ON clause when merge type is MERGE."),
        "{m}"
    );
    let m = msg(be_load(&sim, "d1", "u", &[("delete", "n=0")], "")
        .await
        .json());
    assert!(
        m.contains("Not support DELETE ON clause when merge type is not MERGE."),
        "{m}"
    );
    let m = msg(be_load(&sim, "d1", "u", &[("merge_type", "upsert")], "")
        .await
        .json());
    assert!(m.contains("Invalid merge type upsert"), "{m}");
    let m = msg(be_load(&sim, "d1", "dup", &[("merge_type", "DELETE")], "")
        .await
        .json());
    assert!(
        m.contains("load by MERGE or DELETE is only supported in unique tables."),
        "{m}"
    );
}

#[tokio::test]
async fn c37_sequence_type_table_needs_the_sequence_header() {
    let sim = sim().await;
    let j = be_load(&sim, "d1", "st", &[], "1\ta\n").await.json();
    assert_eq!(j["Status"], "Fail");
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("Table st has sequence column, need to specify the sequence column"),
        "{j}"
    );
    let h = [
        ("columns", "k,v,ver"),
        ("function_column.sequence_col", "ver"),
    ];
    assert_eq!(
        be_load(&sim, "d1", "st", &h, "1\tnew\t5\n").await.json()["Status"],
        "Success"
    );
    be_load(&sim, "d1", "st", &h, "1\told\t4\n").await;
    assert_eq!(rows(&sim, "d1", "st").await[0]["v"], "new");
}

#[tokio::test]
async fn c38_partial_update_keeps_other_columns_and_error_mode_rejects_new_keys() {
    let sim = sim().await;
    be_load(&sim, "d1", "u", &[], "1\ta\t10\n").await;
    let h = [("partial_columns", "true"), ("columns", "k,v")];
    let j = be_load(&sim, "d1", "u", &h, "1\tb\n2\tnew\n").await.json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(
        rows(&sim, "d1", "u").await,
        vec![
            json!({"k": 1, "v": "b", "n": 10}),
            json!({"k": 2, "v": "new", "n": null})
        ]
    );
    let h = [
        ("partial_columns", "true"),
        ("columns", "k,v"),
        ("partial_update_new_key_behavior", "ERROR"),
    ];
    let j = be_load(&sim, "d1", "u", &h, "1\tc\n3\tx\n").await.json();
    assert_eq!(j["Status"], "Fail");
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("[E-7003]Can't append new rows in partial update"),
        "{j}"
    );
    assert_eq!(
        rows(&sim, "d1", "u").await[0]["v"],
        "b",
        "atomic: nothing applied"
    );
}

#[tokio::test]
async fn c39_group_commit_has_no_label_group_commit_flag_no_txn_timings_delayed_visibility() {
    let sim = sim_opts(doris_sim::SimOptions {
        group_commit_interval_ms: 400,
        ..Default::default()
    })
    .await;
    let r = be_load(
        &sim,
        "d1",
        "u",
        &[("group_commit", "async_mode")],
        "1\ta\t1\n",
    )
    .await;
    let j = r.json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(j["GroupCommit"], true);
    assert!(j["Label"].as_str().unwrap().starts_with("group_commit_"));
    let order = r.field_order();
    assert!(!order.contains(&"TwoPhaseCommit".to_string()));
    assert!(!order.contains(&"BeginTxnTimeMs".to_string()));
    assert!(!order.contains(&"CommitAndPublishTimeMs".to_string()));
    assert!(rows(&sim, "d1", "u").await.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(rows(&sim, "d1", "u").await.len(), 1);
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("group_commit", "sync_mode"), ("label", "x")],
        "2\tb\t2\n",
    )
    .await
    .json();
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("label and group_commit can't be set at the same time"),
        "{j}"
    );
}

#[tokio::test]
async fn c40_version_limit_fails_with_e235_until_compaction() {
    let sim = sim_opts(doris_sim::SimOptions {
        max_versions: Some(2),
        compaction_versions_per_sec: 0.0,
        ..Default::default()
    })
    .await;
    for i in 0..3 {
        let j = be_load(&sim, "d1", "u", &[], &format!("{i}\ta\t1\n"))
            .await
            .json();
        assert_eq!(j["Status"], "Success", "{j}");
    }
    let j = be_load(&sim, "d1", "u", &[("label", "v4")], "9\ta\t1\n")
        .await
        .json();
    assert_eq!(j["Status"], "Fail");
    let msg = j["Message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "[E-235]failed to init rowset builder. version count: 3, exceed limit: 2, tablet: "
        ),
        "{msg}"
    );
    assert_eq!(rows(&sim, "d1", "u").await.len(), 3);
    sim.client().compact().await.unwrap();
    let j = be_load(&sim, "d1", "u", &[("label", "v4")], "9\ta\t1\n")
        .await
        .json();
    assert_eq!(
        j["Status"], "Success",
        "label of the failed load is reusable: {j}"
    );
}

#[tokio::test]
async fn c40_background_compaction_drains_versions_at_the_configured_rate() {
    let sim = sim_opts(doris_sim::SimOptions {
        max_versions: Some(1),
        compaction_versions_per_sec: 20.0,
        ..Default::default()
    })
    .await;
    for i in 0..2 {
        be_load(&sim, "d1", "u", &[], &format!("{i}\ta\t1\n")).await;
    }
    assert_eq!(
        be_load(&sim, "d1", "u", &[], "5\ta\t1\n").await.json()["Status"],
        "Fail"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        be_load(&sim, "d1", "u", &[], "5\ta\t1\n").await.json()["Status"],
        "Success"
    );
}

#[tokio::test]
async fn c41_unknown_db_or_table_fails_with_spec_text() {
    let sim = sim().await;
    let j = be_load(&sim, "nodb", "u", &[], "1\n").await.json();
    assert_eq!(j["Status"], "Fail");
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("unknown databases, dbName=nodb"),
        "{j}"
    );
    let j = be_load(&sim, "d1", "nope", &[], "1\n").await.json();
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("unknown table"),
        "{j}"
    );
    assert_eq!(j["TxnId"], -1);
}

#[tokio::test]
async fn c43_short_body_fails_and_chunked_is_accepted() {
    use tokio::io::AsyncWriteExt;
    let sim = sim().await;
    let mut s = tokio::net::TcpStream::connect(sim.be_addr()).await.unwrap();
    let auth = basic("root", "");
    let req = format!(
        "PUT /api/d1/u/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nlabel: short\r\nContent-Length: 100\r\n\r\n1\ta\t1\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let r = read_response(&mut s).await.unwrap();
    let j = r.json();
    assert_eq!(j["Status"], "Fail");
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("receive body don't equal with body bytes"),
        "{j}"
    );
    assert!(rows(&sim, "d1", "u").await.is_empty());
    let r = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load",
        &[("Authorization", &auth), ("Transfer-Encoding", "chunked")],
        b"6\r\n1\ta\t1\n\r\n6\r\n2\tb\t2\n\r\n0\r\n\r\n",
    )
    .await;
    let j = r.json();
    assert_eq!(j["NumberLoadedRows"], 2, "{j}");
    assert_eq!(j["LoadBytes"], 12);
}

#[tokio::test]
async fn c44_bad_timeout_strict_mode_merge_type_exact_messages() {
    let sim = sim().await;
    let msg = |h: &'static str, v: &'static str| {
        let sim = &sim;
        async move {
            be_load(sim, "d1", "u", &[(h, v)], "").await.json()["Message"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert!(msg("timeout", "abc")
        .await
        .contains("Invalid timeout format"));
    assert!(msg("strict_mode", "yes")
        .await
        .contains("Invalid strict mode format. Must be bool type"));
    assert!(msg("merge_type", "x")
        .await
        .contains("Invalid merge type x"));
    assert!(msg("format", "xml")
        .await
        .contains("unknown data format, format=xml"));
    assert!(
        msg("strict_mode", "TRUE").await.contains("OK"),
        "booleans are case-insensitive"
    );
}

#[tokio::test]
async fn c45_total_is_loaded_plus_filtered_plus_unselected_and_load_bytes_is_body_size() {
    let sim = sim().await;
    let body = "1\ta\t1\n2\ttoo long value\t2\n3\tc\t3\n4\td\t4\n";
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[
            ("where", "n > 1"),
            ("max_filter_ratio", "1"),
            ("strict_mode", "true"),
        ],
        body,
    )
    .await
    .json();
    let n = |f: &str| j[f].as_u64().unwrap();
    assert_eq!(n("NumberTotalRows"), 4);
    assert_eq!(
        n("NumberTotalRows"),
        n("NumberLoadedRows") + n("NumberFilteredRows") + n("NumberUnselectedRows")
    );
    assert_eq!(
        (
            n("NumberLoadedRows"),
            n("NumberFilteredRows"),
            n("NumberUnselectedRows")
        ),
        (2, 1, 1)
    );
    assert_eq!(n("LoadBytes"), body.len() as u64);
}

#[tokio::test]
async fn c39_fe_validates_group_commit_and_looks_the_table_up() {
    let sim = sim().await;
    let auth = basic("root", "");
    let fe = |gc: &'static str, path: &'static str| {
        let auth = auth.clone();
        let addr = sim.fe_addr();
        async move {
            send(
                addr,
                "PUT",
                path,
                &[
                    ("Authorization", &auth),
                    ("Expect", "100-continue"),
                    ("group_commit", gc),
                ],
                b"",
            )
            .await
        }
    };
    let r = fe("bogus", "/api/d1/u/_stream_load").await;
    assert_eq!(
        r.json(),
        json!({"status": "FAILED", "msg": "Header `group_commit` can only be `sync_mode`, `async_mode` or `off_mode`."})
    );
    assert_eq!(
        fe("async_mode", "/api/d1/nope/_stream_load").await.json()["msg"],
        "OlapTable not found."
    );
    assert_eq!(
        fe("sync_mode", "/api/nodb/u/_stream_load").await.json()["msg"],
        "Database not found."
    );
    assert_eq!(fe("async_mode", "/api/d1/u/_stream_load").await.status, 307);
    assert_eq!(
        fe("off_mode", "/api/d1/nope/_stream_load").await.status,
        307
    );
}

#[tokio::test]
async fn c21_be_2pc_replies_are_pretty_name_both_ids_and_compare_the_operation_exactly() {
    let sim = sim().await;
    let txn = precommit(&sim, "both", r#"{"k": 1}"#).await["TxnId"].to_string();
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &txn), ("txn_operation", "COMMIT")],
    )
    .await;
    assert_eq!(
        r.json()["msg"],
        "transaction operation should be 'commit' or 'abort'"
    );
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[
            ("label", "both"),
            ("txn_id", &txn),
            ("txn_operation", "commit"),
        ],
    )
    .await;
    assert_eq!(
        r.body,
        format!("{{\n    \"status\": \"Success\",\n    \"msg\": \"label [both] transaction [{txn}] commit successfully.\"\n}}")
    );
}

#[tokio::test]
async fn c39_group_commit_loads_in_one_interval_share_txn_label_and_one_version() {
    let sim = sim_opts(doris_sim::SimOptions {
        group_commit_interval_ms: 500,
        max_versions: Some(1),
        compaction_versions_per_sec: 0.0,
        ..Default::default()
    })
    .await;
    let a = be_load(
        &sim,
        "d1",
        "u",
        &[("group_commit", "async_mode")],
        "1\ta\t1\n",
    )
    .await
    .json();
    let b = be_load(
        &sim,
        "d1",
        "u",
        &[("group_commit", "async_mode")],
        "2\tb\t2\n",
    )
    .await
    .json();
    assert_eq!(a["TxnId"], b["TxnId"], "{a} {b}");
    assert_eq!(a["Label"], b["Label"]);
    let started = std::time::Instant::now();
    let c = be_load(
        &sim,
        "d1",
        "u",
        &[("group_commit", "sync_mode")],
        "3\tc\t3\n",
    )
    .await
    .json();
    assert_eq!(c["Status"], "Success", "{c}");
    assert_eq!(c["TxnId"], a["TxnId"], "sync load joins the open group");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "sync mode replies after the internal commit"
    );
    assert_eq!(rows(&sim, "d1", "u").await.len(), 3);
    let stats = sim.client().stats().await.unwrap();
    let u = stats["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["db"] == "d1" && t["table"] == "u")
        .unwrap()
        .clone();
    assert_eq!(
        (u["loads"].as_u64(), u["versions"].as_u64()),
        (Some(3), Some(1)),
        "{u}"
    );
}
