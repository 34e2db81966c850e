//! Conformance suite: one test per C-item of `shared/specs/doris-stream-load.md` §9 that doris-sim implements,
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
