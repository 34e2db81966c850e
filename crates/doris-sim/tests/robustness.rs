//! Bad requests never crash the sim and get the spec's replies; data types; table models; DDL refusal;
//! persistence across restarts (including `kill -9` of the binary); the command line.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on a broken assumption"
)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn garbage_and_malformed_requests_get_replies_and_the_sim_keeps_serving() {
    let sim = sim().await;
    let bodies: [&[u8]; 4] = [
        b"\xff\xfe\x00garbage",
        b"{\"k\": ",
        b"[1, 2, 3]",
        b"\"just a string\"",
    ];
    for b in bodies {
        let auth = basic("root", "");
        let r = send(
            sim.be_addr(),
            "PUT",
            "/api/d1/u/_stream_load",
            &[("Authorization", &auth), ("format", "json")],
            b,
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["Status"], "Fail", "{}", r.body);
    }
    let r = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load",
        &[("Authorization", &basic("root", ""))],
        b"\xff\xfe\t1\t2\n",
    )
    .await;
    assert_eq!(r.json()["NumberFilteredRows"], 1);
    // Not HTTP at all.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(sim.be_addr()).await.unwrap();
        s.write_all(b"\x00\x01\x02 NOT HTTP\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    }
    let r = send(sim.be_addr(), "GET", "/api/d1/u/_stream_load", &[], b"").await;
    assert_eq!(r.status, 405);
    let r = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load",
        &[("Authorization", "Basic !!!")],
        b"",
    )
    .await;
    assert_eq!(
        r.json()["Message"],
        "[INTERNAL_ERROR]no valid Basic authorization"
    );
    let r = send(sim.be_addr(), "PUT", "/api/d1/u/_stream_load", &[], b"").await;
    assert_eq!(
        r.json()["Message"],
        "[INTERNAL_ERROR]no valid Basic authorization"
    );
    let bad = basic("root", "x");
    let j = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load",
        &[("Authorization", &bad)],
        b"",
    )
    .await
    .json();
    assert!(
        j["Message"].as_str().unwrap().contains("Access denied"),
        "{j}"
    );
    let j = be_load(&sim, "d1", "u", &[("columns", "k,v,n=upper(v)")], "")
        .await
        .json();
    assert!(
        j["Message"].as_str().unwrap().contains("not supported"),
        "{j}"
    );
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("format", "json"), ("jsonpaths", "not json")],
        "",
    )
    .await
    .json();
    assert_eq!(j["Status"], "Fail");
    // Still alive and loading.
    assert_eq!(
        be_load(&sim, "d1", "u", &[], "1\ta\t1\n").await.json()["Status"],
        "Success"
    );
}

#[tokio::test]
async fn oversized_bodies_get_the_size_cap_messages() {
    let sim = sim_opts(doris_sim::SimOptions {
        max_body_bytes: 64,
        max_json_body_bytes: 32,
        ..Default::default()
    })
    .await;
    let big = "1\ta\t1\n".repeat(20);
    let j = be_load(&sim, "d1", "u", &[], &big).await.json();
    assert_eq!(
        j["Message"],
        format!(
            "[INTERNAL_ERROR]body exceed max size: 64, data: {}",
            big.len()
        )
    );
    assert_eq!(j["TxnId"], -1);
    let body = r#"[{"k": 1}, {"k": 2}, {"k": 3}, {"k": 4}]"#;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("format", "json"), ("strip_outer_array", "true")],
        body,
    )
    .await
    .json();
    let m = j["Message"].as_str().unwrap();
    assert!(m.contains("The size of this batch exceed the max size [32]  of json type data  data [ 40 ]. Split the file, or use 'read_json_by_line'"), "{m}");
    // Without either JSON header a 3.1+ BE reads the body line by line, but its size check in `_on_header` still
    // tests the `read_json_by_line` header (a stream_load.cpp with the 3.1 default in `_process_put`, read in a
    // public fork of apache/doris; the upstream file at that commit is not in the index): the JSON cap applies.
    let lines = "{\"k\": 1}\n{\"k\": 2}\n{\"k\": 3}\n{\"k\": 4}\n";
    let j = be_load(&sim, "d1", "u", &[("format", "json")], lines)
        .await
        .json();
    let m = j["Message"].as_str().unwrap_or_default();
    assert!(
        m.contains("max size [32]  of json type data  data [ 36 ]"),
        "{j}"
    );
    // Chunked bodies are capped while reading.
    let auth = basic("root", "");
    let chunk = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let r = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/u/_stream_load",
        &[("Authorization", &auth), ("Transfer-Encoding", "chunked")],
        chunk.as_bytes(),
    )
    .await;
    assert!(
        r.json()["Message"]
            .as_str()
            .unwrap()
            .contains("body exceed max size: 64"),
        "{}",
        r.body
    );
    assert!(rows(&sim, "d1", "u").await.is_empty());
}

#[tokio::test]
async fn typed_values_are_checked_per_column_type() {
    // The 3.0 profile: out-of-range and over-long values are filtered outside strict mode (4.x: NULL / cut, tested
    // in doris_regression.rs `strict_mode_and_filter_ratio_*`).
    let sim = sim_version(doris_sim::DorisVersion::V3_0, &[MERGED_JOB_DATA, TEST_DDL]).await;
    let body = concat!(
        r#"{"k": 1, "li": "170141183460469231731687303715884105727", "d": "20240102", "dt": "2024-01-01 00:00:00.9996", "dec": 1.005, "b": 1, "j": {"a": [1, 2]}, "s": "abcd"}"#,
        "\n",
        r#"{"k": 2, "dec": "1000.00", "s": "x"}"#,
        "\n",
        r#"{"k": 3, "s": "toolong"}"#,
        "\n",
        r#"{"k": 4, "d": "2024-02-30", "dt": "2024-01-01T10:00:00+02:00", "b": "false", "s": "y"}"#,
    );
    let h = [
        ("format", "json"),
        ("read_json_by_line", "true"),
        ("max_filter_ratio", "1"),
    ];
    let j = be_load(&sim, "d1", "typed", &h, body).await.json();
    assert_eq!(
        (
            j["NumberLoadedRows"].as_u64(),
            j["NumberFilteredRows"].as_u64()
        ),
        (Some(2), Some(2)),
        "{j}"
    );
    let r = rows(&sim, "d1", "typed").await;
    assert_eq!(
        r[0],
        json!({"k": 1, "li": "170141183460469231731687303715884105727", "d": "2024-01-02", "dt": "2024-01-01 00:00:01.000",
               "dec": "1.01", "b": true, "j": {"a": [1, 2]}, "s": "abcd"})
    );
    // Invalid DATE → NULL when strict mode is off; offsets convert into the load time zone (UTC here).
    assert_eq!(
        r[1],
        json!({"k": 4, "li": null, "d": null, "dt": "2024-01-01 08:00:00.000", "dec": null, "b": false, "j": null, "s": "y"})
    );
    // A column not in `columns` gets its DEFAULT.
    let j = be_load(&sim, "d1", "typed", &[("columns", "k")], "9\n")
        .await
        .json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(rows(&sim, "d1", "typed").await[2]["s"], "x");
}

#[tokio::test]
async fn duplicate_and_aggregate_models() {
    let sim = sim().await;
    be_load(&sim, "d1", "dup", &[], "2\tb\n1\ta\n1\ta\n").await;
    assert_eq!(
        rows(&sim, "d1", "dup").await,
        vec![
            json!({"k": 1, "v": "a"}),
            json!({"k": 1, "v": "a"}),
            json!({"k": 2, "v": "b"})
        ]
    );
    be_load(&sim, "d1", "agg", &[], "1\t5\t3\tx\n1\t7\t2\ty\n").await;
    be_load(&sim, "d1", "agg", &[], "1\t1\t9\tz\n").await;
    assert_eq!(
        rows(&sim, "d1", "agg").await,
        vec![json!({"k": 1, "s": 13, "m": 9, "r": "z"})]
    );
}

#[tokio::test]
async fn ddl_refusals_name_the_source_line_and_reason() {
    let err = doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec!["CREATE DATABASE d;\nCREATE TABLE d.t (k INT)\nDUPLICATE KEY(k)\nPARTITION BY RANGE(k) ();".into()],
        ..Default::default()
    })
    .await
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("<ddl #1>:4") && text.contains("PARTITION BY"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sql");
    std::fs::write(&path, MERGED_JOB_DATA).unwrap();
    let sim = doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![path.display().to_string()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        sim.visible_rows("job_analytics", "merged_job_data"),
        Some(0)
    );
}

#[tokio::test]
async fn data_and_labels_survive_a_restart_with_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || doris_sim::SimOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let sim = sim_opts(opts()).await;
    assert_eq!(
        json_load(
            &sim,
            "d1",
            "u",
            "p1",
            "{\"k\": 1, \"v\": \"a\"}\n{\"k\": 2}"
        )
        .await["Status"],
        "Success"
    );
    let txn = be_load(
        &sim,
        "d1",
        "u",
        &[("label", "p2"), ("two_phase_commit", "true")],
        "3\tc\t3\n",
    )
    .await
    .json()["TxnId"]
        .as_i64()
        .unwrap();
    json_load(&sim, "job_analytics", "merged_job_data", "m1", r#"{"job_id": 1, "created_at": "2024-01-01 00:00:00.5", "salary_min": "1.5", "client_excluded": false, "source_version": 9}"#).await;
    let before = rows(&sim, "job_analytics", "merged_job_data").await;
    sim.shutdown().await;
    // A torn last line (crash mid-write) is cut off at replay.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("commits.log"))
        .unwrap()
        .write_all(b"{\"t\":\"commit\",\"txn\":")
        .unwrap();
    let sim = sim_opts(opts()).await;
    assert_eq!(rows(&sim, "d1", "u").await.len(), 2);
    assert_eq!(rows(&sim, "job_analytics", "merged_job_data").await, before);
    assert_eq!(
        json_load(&sim, "d1", "u", "p1", r#"{"k": 9}"#).await["ExistingJobStatus"],
        "FINISHED"
    );
    assert_eq!(load_state(&sim, "d1", "p2").await["data"], "PRECOMMITTED");
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &txn.to_string()), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(r.json()["status"], "Success", "{}", r.body);
    let next = json_load(&sim, "d1", "u", "p3", r#"{"k": 4}"#).await["TxnId"]
        .as_i64()
        .unwrap();
    assert!(next > txn, "txn ids keep increasing across restarts");
    sim.shutdown().await;
    let sim = sim_opts(opts()).await;
    assert_eq!(rows(&sim, "d1", "u").await.len(), 4);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(port: u16) {
    for _ in 0..100 {
        if let Ok(r) = try_send(
            ([127, 0, 0, 1], port).into(),
            "GET",
            "/api/_sim/stats",
            &[],
            b"",
        )
        .await
        {
            if r.status == 200 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("doris-sim did not become ready on {port}");
}

#[tokio::test]
async fn cli_version_and_an_acknowledged_load_survives_kill_9() {
    let bin = env!("CARGO_BIN_EXE_doris-sim");
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("doris-sim "));
    let dir = tempfile::tempdir().unwrap();
    let ddl = dir.path().join("schema.sql");
    std::fs::write(&ddl, MERGED_JOB_DATA).unwrap();
    let data = dir.path().join("data");
    let (fe, be) = (free_port(), free_port());
    let spawn = || {
        std::process::Command::new(bin)
            .args([
                "--fe-port",
                &fe.to_string(),
                "--be-port",
                &be.to_string(),
                // An ephemeral MySQL port: the stack's doris-sim holds the default one.
                "--query-port",
                "0",
                "--ddl",
            ])
            .arg(&ddl)
            .arg("--data-dir")
            .arg(&data)
            .args(["--password-env", "DORIS_SIM_TEST_PW"])
            .env("DORIS_SIM_TEST_PW", "s3cret:x")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    wait_ready(fe).await;
    let auth = basic("root", "s3cret:x");
    let r = send(
        ([127, 0, 0, 1], fe).into(),
        "PUT",
        "/api/job_analytics/merged_job_data/_stream_load",
        &[("Authorization", &auth), ("Expect", "100-continue")],
        b"",
    )
    .await;
    assert_eq!(
        r.header("Location"),
        Some(format!("http://root:s3cret:x@127.0.0.1:{be}/api/job_analytics/merged_job_data/_stream_load?").as_str())
    );
    let r = send(
        ([127, 0, 0, 1], be).into(),
        "PUT",
        "/api/job_analytics/merged_job_data/_stream_load",
        &[
            ("Authorization", &auth),
            ("label", "k9"),
            ("format", "json"),
        ],
        br#"{"job_id": 5, "source_version": 1}"#,
    )
    .await;
    assert_eq!(r.json()["Status"], "Success", "{}", r.body);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut child = spawn();
    wait_ready(fe).await;
    let c = doris_sim::SimClient::new(([127, 0, 0, 1], fe).into());
    let rows = c.rows("job_analytics", "merged_job_data").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["job_id"], 5);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `--doris-version` picks the profile: an unknown release is refused at start with the accepted ones; with 3.0 a
/// JSON body without `read_json_by_line` is a sequence of documents (two on one line load), while the default
/// (4.0) reads it line by line and refuses that line.
#[tokio::test]
async fn cli_doris_version_selects_the_profile() {
    let bin = env!("CARGO_BIN_EXE_doris-sim");
    let dir = tempfile::tempdir().unwrap();
    let ddl = dir.path().join("schema.sql");
    std::fs::write(&ddl, MERGED_JOB_DATA).unwrap();
    let out = std::process::Command::new(bin)
        .args(["--doris-version", "2.0", "--ddl"])
        .arg(&ddl)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use 2.1, 3.0, 3.1 or 4.0"), "{err}");
    let body = br#"{"job_id": 1, "source_version": 1} {"job_id": 2, "source_version": 1}"#;
    for (version, loaded) in [(Some("3.0.6"), Some(2)), (None, None)] {
        let (fe, be) = (free_port(), free_port());
        let mut cmd = std::process::Command::new(bin);
        cmd.args([
            "--fe-port",
            &fe.to_string(),
            "--be-port",
            &be.to_string(),
            "--query-port",
            "0",
            "--ddl",
        ])
        .arg(&ddl)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        if let Some(v) = version {
            cmd.args(["--doris-version", v]);
        }
        let mut child = cmd.spawn().unwrap();
        wait_ready(fe).await;
        let r = send(
            ([127, 0, 0, 1], be).into(),
            "PUT",
            "/api/job_analytics/merged_job_data/_stream_load",
            &[("Authorization", &basic("root", "")), ("format", "json")],
            body,
        )
        .await;
        let j = r.json();
        match loaded {
            Some(n) => assert_eq!(
                (&j["Status"], &j["NumberLoadedRows"]),
                (&json!("Success"), &json!(n)),
                "{j}"
            ),
            None => assert_eq!(j["Status"], "Fail", "{j}"),
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[tokio::test]
async fn a_panicking_handler_becomes_http_500_and_the_sim_keeps_serving() {
    let sim = sim().await;
    queue_fault(&sim, json!({"kind": "panic"})).await;
    let r = be_load(&sim, "d1", "u", &[("label", "boom")], "1\ta\t1\n").await;
    assert_eq!(r.status, 500);
    let j = be_load(&sim, "d1", "u", &[("label", "boom")], "1\ta\t1\n")
        .await
        .json();
    assert_eq!(j["Status"], "Success", "{j}");
}

#[tokio::test]
async fn http_500_fail_and_redirect_faults() {
    let sim = sim().await;
    queue_fault(&sim, json!([{"kind": "http_500", "message": "boom"}, {"kind": "fail", "message": "[MEM_LIMIT_EXCEEDED]x", "table": "u"}])).await;
    let r = be_load(&sim, "d1", "u", &[("label", "f1")], "1\ta\t1\n").await;
    assert_eq!((r.status, r.body.as_str()), (500, "boom"));
    let j = be_load(&sim, "d1", "dup", &[("label", "f2")], "1\ta\n")
        .await
        .json();
    assert_eq!(
        j["Status"], "Success",
        "table filter: the fail fault is for `u` only"
    );
    let j = be_load(&sim, "d1", "u", &[("label", "f1")], "1\ta\t1\n")
        .await
        .json();
    assert_eq!(
        (j["Status"].as_str(), j["Message"].as_str()),
        (Some("Fail"), Some("[MEM_LIMIT_EXCEEDED]x"))
    );
    assert!(j["TxnId"].as_i64().unwrap() > 0);
    assert_eq!(
        be_load(&sim, "d1", "u", &[("label", "f1")], "1\ta\t1\n")
            .await
            .json()["Status"],
        "Success"
    );
    queue_fault(&sim, json!({"kind": "redirect_unreachable"})).await;
    let auth = basic("root", "");
    let h = [("Authorization", auth.as_str()), ("Expect", "100-continue")];
    let r = send(sim.fe_addr(), "PUT", "/api/d1/u/_stream_load", &h, b"").await;
    assert!(
        r.header("Location")
            .unwrap()
            .starts_with("http://root:@127.0.0.1:1/"),
        "{:?}",
        r.headers
    );
    let r = send(sim.fe_addr(), "PUT", "/api/d1/u/_stream_load", &h, b"").await;
    assert!(r
        .header("Location")
        .unwrap()
        .contains(&format!(":{}/", sim.be_addr().port())));
    let r = send(sim.fe_addr(), "POST", "/api/_sim/faults", &[], b"{nope").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn precommitted_transactions_expire_with_the_ttl_knob() {
    let sim = sim_opts(doris_sim::SimOptions {
        precommit_ttl_secs: Some(0),
        ..Default::default()
    })
    .await;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("label", "ttl"), ("two_phase_commit", "true")],
        "1\ta\t1\n",
    )
    .await
    .json();
    assert_eq!(j["Status"], "Success");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(load_state(&sim, "d1", "ttl").await["data"], "ABORTED");
    let txn = j["TxnId"].to_string();
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &txn), ("txn_operation", "commit")],
    )
    .await
    .json();
    assert!(
        r["msg"].as_str().unwrap().contains("is already aborted"),
        "{r}"
    );
}

#[tokio::test]
async fn jsonpaths_json_root_csv_with_names_derived_columns_and_backends() {
    let sim = sim().await;
    let h = [
        ("format", "json"),
        ("jsonpaths", r#"["$.id", "$.data.name"]"#),
        ("columns", "k,v"),
    ];
    let j = be_load(
        &sim,
        "d1",
        "u",
        &h,
        r#"{"id": 1, "data": {"name": "deep"}}"#,
    )
    .await
    .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    let h = [
        ("format", "json"),
        ("json_root", "$.payload"),
        ("strip_outer_array", "true"),
    ];
    let j = be_load(
        &sim,
        "d1",
        "u",
        &h,
        r#"{"payload": [{"k": 2, "v": "root"}]}"#,
    )
    .await
    .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    let h = [("format", "csv_with_names"), ("column_separator", ",")];
    let j = be_load(&sim, "d1", "u", &h, "k,v,n\n3,named,3\n")
        .await
        .json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    let h = [("column_separator", ","), ("columns", "k,tmp,n,v=tmp")];
    let j = be_load(&sim, "d1", "u", &h, "4,derived,4\n").await.json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    let r = rows(&sim, "d1", "u").await;
    let vs: Vec<&str> = r.iter().map(|r| r["v"].as_str().unwrap()).collect();
    assert_eq!(vs, ["deep", "root", "named", "derived"]);
    let auth = basic("root", "");
    let j = send(
        sim.fe_addr(),
        "GET",
        "/api/backends?is_alive=true",
        &[("Authorization", &auth)],
        b"",
    )
    .await
    .json();
    assert_eq!(j["data"]["backends"][0]["http_port"], sim.be_addr().port());
}

#[tokio::test]
async fn csv_enclose_escape_trim_double_quotes_and_skip_lines() {
    let sim = sim().await;
    // Enclosed fields keep their quotes unless trim_double_quotes is set; a doubled quote is no escape (the first
    // closing quote ends the enclosure, the rest runs to the separator), as in apache/doris
    // test_csv_with_enclose_and_escape.groovy.
    let body = "ignored,line,0\n1,\"a,b\",1\n2,\"x\ny\",2\n3,\"q\\\"q\",3\n4,\"dd\"\"\",4\n";
    for (trim, want) in [
        ("true", ["a,b", "x\ny", "q\"q", "dd\"\""]),
        ("false", ["\"a,b\"", "\"x\ny\"", "\"q\"q\"", "\"dd\"\"\""]),
    ] {
        let h = [
            ("column_separator", ","),
            ("enclose", "\""),
            ("escape", "\\"),
            ("skip_lines", "1"),
            ("trim_double_quotes", trim),
        ];
        let j = be_load(&sim, "d1", "u", &h, body).await.json();
        assert_eq!(j["NumberLoadedRows"], 4, "{j}");
        let vs: Vec<String> = rows(&sim, "d1", "u")
            .await
            .iter()
            .map(|r| r["v"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(vs, want);
    }
    let h = [("column_separator", ","), ("trim_double_quotes", "true")];
    let j = be_load(&sim, "d1", "u", &h, "5,\"t\",5\n").await.json();
    assert_eq!(j["NumberLoadedRows"], 1, "{j}");
    assert_eq!(rows(&sim, "d1", "u").await[4]["v"], "t");
    let j = be_load(&sim, "d1", "u", &[("enclose", "ab")], "")
        .await
        .json();
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("enclose only support single char"),
        "{j}"
    );
}

#[tokio::test]
async fn fe_answers_307_even_when_the_client_streams_the_body_without_waiting() {
    use tokio::io::AsyncWriteExt;
    let sim = sim().await;
    let auth = basic("root", "");
    for size in [10_000usize, 3_000_000] {
        let mut s = tokio::net::TcpStream::connect(sim.fe_addr()).await.unwrap();
        let head = format!(
            "PUT /api/d1/u/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nExpect: 100-continue\r\nContent-Length: {size}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let writer = tokio::spawn(async move {
            let body = vec![b'x'; size];
            wr.write_all(&body).await
        });
        let mut rd_stream = tokio::io::BufReader::new(&mut rd);
        let mut line = String::new();
        use tokio::io::AsyncBufReadExt;
        rd_stream.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("HTTP/1.1 307"), "size {size}: {line:?}");
        let _ = writer.await;
    }
}

#[tokio::test]
async fn reset_empties_every_table_keeps_the_schema_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || doris_sim::SimOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let sim = sim_opts(opts()).await;
    json_load(&sim, "d1", "u", "r1", "{\"k\": 1}\n{\"k\": 2}").await;
    json_load(&sim, "d2", "u", "r1", "{\"k\": 1}").await;
    let txn = be_load(
        &sim,
        "d1",
        "u",
        &[("label", "r2"), ("two_phase_commit", "true")],
        "3\tc\t3\n",
    )
    .await
    .json()["TxnId"]
        .as_i64()
        .unwrap();
    sim.client()
        .queue_faults(&[doris_sim::FaultSpec::fail("x")])
        .await
        .unwrap();

    sim.client().reset().await.unwrap();
    assert!(rows(&sim, "d1", "u").await.is_empty());
    assert!(rows(&sim, "d2", "u").await.is_empty());
    let stats = sim.client().stats().await.unwrap();
    for t in stats["tables"].as_array().unwrap() {
        assert_eq!(
            (&t["loads"], &t["rows"], &t["versions"], &t["labels"]),
            (&json!(0), &json!(0), &json!(0), &json!(0)),
            "{t}"
        );
    }
    // The labels are free again, the queued fault is gone, the pre-committed txn is forgotten.
    let r = json_load(&sim, "d1", "u", "r1", "{\"k\": 7}").await;
    assert_eq!(r["Status"], "Success", "{r}");
    assert!(
        r["TxnId"].as_i64().unwrap() > txn,
        "txn ids keep increasing"
    );
    let r = two_pc(
        sim.be_addr(),
        "d1",
        &[("txn_id", &txn.to_string()), ("txn_operation", "commit")],
    )
    .await;
    assert!(r.body.contains("not found"), "{}", r.body);
    assert_eq!(load_state(&sim, "d1", "r2").await["data"], "UNKNOWN");

    // Persisted: a restart replays only what came after the reset.
    sim.shutdown().await;
    let sim = sim_opts(opts()).await;
    assert_eq!(
        rows(&sim, "d1", "u").await,
        vec![json!({"k": 7, "v": null, "n": null})]
    );
    assert!(rows(&sim, "d2", "u").await.is_empty());
    sim.client().reset().await.unwrap();
    sim.shutdown().await;
    let sim = sim_opts(opts()).await;
    assert!(rows(&sim, "d1", "u").await.is_empty());
}

#[tokio::test]
async fn stats_count_loads_bytes_rows_versions_and_labels_per_table() {
    let sim = sim().await;
    json_load(&sim, "d1", "u", "s1", "{\"k\": 1}\n{\"k\": 2}").await;
    json_load(&sim, "d1", "u", "s2", "{\"k\": 2}").await;
    json_load(&sim, "d1", "u", "s3", "{\"v\": 1}").await; // fails
    let stats = sim.client().stats().await.unwrap();
    let t = stats["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["db"] == "d1" && t["table"] == "u")
        .unwrap()
        .clone();
    assert_eq!(
        t,
        // Bytes count every body received, the failed load's too: 17 + 8 + 8.
        json!({"db": "d1", "table": "u", "loads": 2, "load_bytes": 33, "largest_load_bytes": 17,
               "failed_loads": 1, "rows": 2, "versions": 2, "labels": 2})
    );
}

#[tokio::test]
async fn typed_client_queues_faults_and_reads_rows() {
    use doris_sim::{FaultKind, FaultSpec};
    let sim = sim().await;
    let c = sim.client();
    c.queue_faults(&[
        FaultSpec::fail("[MEM_LIMIT_EXCEEDED]memory exceed")
            .times(2)
            .for_table("d1", "u"),
        FaultSpec::new(FaultKind::PublishTimeout).delay_ms(10),
    ])
    .await
    .unwrap();
    for _ in 0..2 {
        let j = be_load(&sim, "d1", "u", &[], "1\ta\t1\n").await.json();
        assert_eq!(j["Message"], "[MEM_LIMIT_EXCEEDED]memory exceed");
    }
    assert_eq!(
        be_load(&sim, "d1", "u", &[], "1\ta\t1\n").await.json()["Status"],
        "Publish Timeout"
    );
    c.queue_faults(&[FaultSpec::fail("x")]).await.unwrap();
    c.clear_faults().await.unwrap();
    assert_eq!(
        be_load(&sim, "d1", "u", &[], "2\tb\t2\n").await.json()["Status"],
        "Success"
    );
    assert_eq!(c.rows("d1", "u").await.unwrap().len(), 2);
    assert!(c.rows("d1", "nope").await.is_err());
}

#[tokio::test]
async fn a_load_without_content_length_or_chunked_is_refused() {
    use tokio::io::AsyncWriteExt;
    let sim = sim().await;
    let mut s = tokio::net::TcpStream::connect(sim.be_addr()).await.unwrap();
    let auth = basic("root", "");
    let req = format!("PUT /api/d1/u/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nlabel: nolen\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let j = read_response(&mut s).await.unwrap().json();
    assert_eq!(j["Status"], "Fail");
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("content_length is empty and transfer-encoding!=chunked"),
        "{j}"
    );
    assert_eq!(j["TxnId"], -1);
}

#[tokio::test]
async fn a_load_outliving_its_timeout_is_aborted() {
    let sim = sim().await;
    queue_fault(&sim, json!({"kind": "delay", "delay_ms": 1200})).await;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("label", "slowpoke"), ("timeout", "1")],
        "1\ta\t1\n",
    )
    .await
    .json();
    assert_eq!(j["Status"], "Fail");
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("timeout by txn manager"),
        "{j}"
    );
    assert!(rows(&sim, "d1", "u").await.is_empty());
    assert_eq!(load_state(&sim, "d1", "slowpoke").await["data"], "ABORTED");
}

/// `GET /api/{db}/{table}/_schema` on the FE: Basic auth, the REST envelope and the fields of the FE's
/// TableSchemaAction (no nullability or default: Doris does not give them there).
#[tokio::test]
async fn fe_schema_endpoint_answers_like_table_schema_action() {
    let sim = sim().await;
    let get = |path: &'static str, auth: Option<String>| {
        let addr = sim.fe_addr();
        async move {
            let h: Vec<(&str, &str)> = match &auth {
                Some(a) => vec![("Authorization", a.as_str())],
                None => vec![],
            };
            send(addr, "GET", path, &h, b"").await
        }
    };
    let r = get("/api/d1/typed/_schema", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["code"], 401, "{}", r.body);
    let j = get("/api/d1/typed/_schema", Some(basic("root", "")))
        .await
        .json();
    assert_eq!(
        (&j["msg"], &j["code"]),
        (&json!("success"), &json!(0)),
        "{j}"
    );
    let d = &j["data"];
    assert_eq!(d["status"], 200);
    assert_eq!(d["tableType"], "OLAP");
    assert_eq!(d["keysType"], "UNIQUE_KEYS");
    let props = d["properties"].as_array().unwrap();
    let names: Vec<&str> = props.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["k", "li", "d", "dt", "dec", "b", "j", "s"]);
    assert_eq!(
        props[0],
        json!({"name": "k", "type": "INT", "comment": "", "aggregation_type": ""})
    );
    assert_eq!(
        props[4],
        json!({"name": "dec", "type": "DECIMAL32", "comment": "", "aggregation_type": "REPLACE",
               "precision": "5", "scale": "2"})
    );
    let types: Vec<&str> = props.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "INT",
            "LARGEINT",
            "DATEV2",
            "DATETIMEV2",
            "DECIMAL32",
            "BOOLEAN",
            "JSON",
            "VARCHAR"
        ]
    );
    let agg = get("/api/d1/agg/_schema", Some(basic("root", "")))
        .await
        .json();
    assert_eq!(agg["data"]["keysType"], "AGG_KEYS");
    let aggs: Vec<&str> = agg["data"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["aggregation_type"].as_str().unwrap())
        .collect();
    assert_eq!(aggs, ["", "SUM", "MAX", "REPLACE"]);
    let dup = get("/api/d1/dup/_schema", Some(basic("root", "")))
        .await
        .json();
    assert_eq!(dup["data"]["keysType"], "DUP_KEYS");
    assert_eq!(dup["data"]["properties"][1]["aggregation_type"], "NONE");
    let missing = get("/api/d1/nope/_schema", Some(basic("root", "")))
        .await
        .json();
    assert_eq!(
        (&missing["msg"], &missing["code"]),
        (&json!("Error"), &json!(1)),
        "{missing}"
    );
}

/// JSON numbers into DECIMAL: without `num_as_string` a non-integer number goes through a double (the BE's JSON
/// reader prints it with `fmt::format("{}", double)`), so digits beyond a double's precision are lost; with
/// `num_as_string` (and for JSON strings) every digit is kept.
#[tokio::test]
async fn json_numbers_into_decimal_go_through_a_double_unless_num_as_string() {
    let sim = sim_with(&[
        "CREATE DATABASE p; CREATE TABLE p.t (k INT NOT NULL, d DECIMAL(38,10), i BIGINT) \
         DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;",
    ])
    .await;
    let body = r#"{"k": 1, "d": 12345678901234567.123456789, "i": 9007199254740993}
{"k": 2, "d": "12345678901234567.123456789"}
{"k": 3, "d": 0.1}
{"k": 4, "d": 123456789012345678901234567}"#;
    let load = |num_as_string: &'static str| {
        let sim = &sim;
        async move {
            be_load(
                sim,
                "p",
                "t",
                &[
                    ("format", "json"),
                    ("read_json_by_line", "true"),
                    ("num_as_string", num_as_string),
                ],
                body,
            )
            .await
            .json()
        }
    };
    let j = load("false").await;
    assert_eq!(j["Status"], "Success", "{j}");
    let got: Vec<(serde_json::Value, serde_json::Value)> = rows(&sim, "p", "t")
        .await
        .iter()
        .map(|r| (r["d"].clone(), r["i"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                json!("12345678901234568.0000000000"),
                json!(9007199254740993i64)
            ),
            (json!("12345678901234567.1234567890"), json!(null)),
            (json!("0.1000000000"), json!(null)),
            (json!("123456789012345680000000000.0000000000"), json!(null)),
        ]
    );
    sim.client().reset().await.unwrap();
    let j = load("true").await;
    assert_eq!(j["Status"], "Success", "{j}");
    let d: Vec<serde_json::Value> = rows(&sim, "p", "t")
        .await
        .iter()
        .map(|r| r["d"].clone())
        .collect();
    assert_eq!(
        d,
        [
            json!("12345678901234567.1234567890"),
            json!("12345678901234567.1234567890"),
            json!("0.1000000000"),
            json!("123456789012345678901234567.0000000000"),
        ]
    );
}

/// jsonpaths: `$."a.b"` names the key `a.b` (not `a` → `b`), `$.arr[1]` an array element.
#[tokio::test]
async fn jsonpaths_quoted_keys_and_array_indexes() {
    let sim = sim().await;
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[
            ("format", "json"),
            ("read_json_by_line", "true"),
            ("jsonpaths", r#"["$.k", "$.\"a.b\"", "$.arr[1]"]"#),
            ("columns", "k, v, n"),
        ],
        r#"{"k": 1, "a.b": "dot", "a": {"b": "nested"}, "arr": [5, 6]}"#,
    )
    .await
    .json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(
        rows(&sim, "d1", "u").await,
        [json!({"k": 1, "v": "dot", "n": 6})]
    );
}

/// `where` and `delete` naming a column that is neither in the table nor in `columns` are refused before a row is
/// read (nothing is counted).
#[tokio::test]
async fn where_and_delete_with_unknown_columns_are_refused() {
    let sim = sim().await;
    let j = be_load(&sim, "d1", "u", &[("where", "nope > 1")], "1\ta\t1\n")
        .await
        .json();
    assert_eq!(j["Status"], "Fail", "{j}");
    assert!(j["Message"].as_str().unwrap().contains("nope"), "{j}");
    assert_eq!(j["NumberTotalRows"], 0, "{j}");
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("merge_type", "MERGE"), ("delete", "gone = 1")],
        "1\ta\t1\n",
    )
    .await
    .json();
    assert_eq!(j["Status"], "Fail", "{j}");
    assert!(j["Message"].as_str().unwrap().contains("gone"), "{j}");
    // A temporary source field may be used.
    let j = be_load(
        &sim,
        "d1",
        "u",
        &[("columns", "k, v, n, tmp"), ("where", "tmp = 'x'")],
        "1\ta\t1\tx\n2\tb\t2\ty\n",
    )
    .await
    .json();
    assert_eq!(
        (&j["Status"], &j["NumberLoadedRows"]),
        (&json!("Success"), &json!(1)),
        "{j}"
    );
}

/// read_json_by_line: a line with a second complete JSON value fails the load; a line with other trailing bytes is
/// one rejected row.
#[tokio::test]
async fn json_lines_with_trailing_bytes() {
    let sim = sim().await;
    let h = [
        ("format", "json"),
        ("read_json_by_line", "true"),
        ("max_filter_ratio", "1"),
    ];
    let j = be_load(
        &sim,
        "d1",
        "u",
        &h,
        "{\"k\": 1}\n{\"k\": 2}\"}\n{\"k\": 3} }\n",
    )
    .await
    .json();
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(
        (&j["NumberLoadedRows"], &j["NumberFilteredRows"]),
        (&json!(1), &json!(2)),
        "{j}"
    );
    let j = be_load(&sim, "d1", "u", &h, "{\"k\": 4}\n{\"k\": 5} {\"k\": 6}\n")
        .await
        .json();
    assert_eq!(j["Status"], "Fail", "{j}");
    assert_eq!(
        j["Message"],
        "[DATA_QUALITY_ERROR]Multiple JSON objects in a single line"
    );
}
