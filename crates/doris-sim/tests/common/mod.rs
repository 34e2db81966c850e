//! A raw HTTP/1.1 client for the conformance tests: requests are written by hand and redirects are never followed,
//! so status lines, `Location`, `100 Continue` and bodies are seen exactly as the sim sends them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const MERGED_JOB_DATA: &str = include_str!("../fixtures/merged_job_data.sql");

/// A small second schema: a Unique table without sequence, a Duplicate table, a sequence_type table, an Aggregate
/// table, and a typed table for value checks.
pub const TEST_DDL: &str = r#"
CREATE DATABASE IF NOT EXISTS d1;
CREATE DATABASE IF NOT EXISTS d2;
CREATE TABLE d1.u (k BIGINT NOT NULL, v VARCHAR(8), n INT) UNIQUE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1
PROPERTIES ("replication_num" = "1");
CREATE TABLE d2.u (k BIGINT NOT NULL, v VARCHAR(8), n INT) UNIQUE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
CREATE TABLE d1.dup (k INT NOT NULL, v STRING) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
CREATE TABLE d1.st (k BIGINT NOT NULL, v STRING) UNIQUE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1
PROPERTIES ("function_column.sequence_type" = "BIGINT");
CREATE TABLE d1.agg (k INT NOT NULL, s BIGINT SUM, m INT MAX, r STRING REPLACE) AGGREGATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
CREATE TABLE d1.typed (k INT NOT NULL, li LARGEINT, d DATE, dt DATETIME(3), dec DECIMAL(5,2), b BOOLEAN, j JSON, s VARCHAR(4) NOT NULL DEFAULT 'x')
UNIQUE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
"#;

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Interim responses seen before the final one (e.g. 100).
    pub interim: Vec<u16>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    /// Field names of the JSON object, in the order sent.
    pub fn field_order(&self) -> Vec<String> {
        let mut out = Vec::new();
        for line in self.body.lines() {
            if let Some(rest) = line.strip_prefix("    \"") {
                if let Some((k, _)) = rest.split_once("\": ") {
                    out.push(k.to_string());
                }
            }
        }
        out
    }
}

/// Reads one final response (skipping interim 1xx), body by Content-Length or to EOF.
pub async fn read_response(s: &mut TcpStream) -> std::io::Result<RawResponse> {
    let mut buf = Vec::new();
    let mut interim = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("EOF in headers: {:?}", String::from_utf8_lossy(&buf)),
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if (100..200).contains(&status) {
            interim.push(status);
            continue;
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        match len {
            Some(len) => {
                while buf.len() < len {
                    let mut chunk = [0u8; 8192];
                    let n = s.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                buf.truncate(len);
            }
            None => {
                s.read_to_end(&mut buf).await?;
            }
        }
        return Ok(RawResponse {
            interim,
            status,
            headers,
            body: String::from_utf8_lossy(&buf).into_owned(),
        });
    }
}

/// Sends one request with `Connection: close` and the given headers; adds `Content-Length` unless a
/// `Transfer-Encoding` or `Content-Length` header is given.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    try_send(addr, method, path, headers, body)
        .await
        .expect("request failed")
}

pub async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawResponse> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let explicit_len = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !explicit_len {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    s.write_all(body).await?;
    tokio::time::timeout(Duration::from_secs(20), read_response(&mut s))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no response"))?
}

/// Starts a sim with the given DDL texts.
pub async fn sim_with(ddl: &[&str]) -> doris_sim::Sim {
    sim_version(doris_sim::DorisVersion::default(), ddl).await
}

/// A sim behaving like Doris `version` where releases differ (`--doris-version`).
pub async fn sim_version(version: doris_sim::DorisVersion, ddl: &[&str]) -> doris_sim::Sim {
    doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: ddl.iter().map(|s| s.to_string()).collect(),
        doris_version: version,
        ..Default::default()
    })
    .await
    .expect("sim starts")
}

pub async fn sim() -> doris_sim::Sim {
    sim_with(&[MERGED_JOB_DATA, TEST_DDL]).await
}

/// A Stream Load sent straight to the BE as `root` with an empty password.
pub async fn be_load(
    sim: &doris_sim::Sim,
    db: &str,
    table: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    let auth = basic("root", "");
    let mut h: Vec<(&str, &str)> = vec![("Authorization", auth.as_str())];
    h.extend_from_slice(headers);
    send(
        sim.be_addr(),
        "PUT",
        &format!("/api/{db}/{table}/_stream_load"),
        &h,
        body.as_bytes(),
    )
    .await
}

/// JSON-lines load into `db.table` with a label.
pub async fn json_load(
    sim: &doris_sim::Sim,
    db: &str,
    table: &str,
    label: &str,
    body: &str,
) -> serde_json::Value {
    be_load(
        sim,
        db,
        table,
        &[
            ("label", label),
            ("format", "json"),
            ("read_json_by_line", "true"),
        ],
        body,
    )
    .await
    .json()
}

pub async fn rows(sim: &doris_sim::Sim, db: &str, table: &str) -> Vec<serde_json::Value> {
    sim.client()
        .rows(db, table)
        .await
        .expect("rows")
        .into_iter()
        .map(serde_json::Value::Object)
        .collect()
}

/// Starts a sim with the test schemas and custom options.
pub async fn sim_opts(opts: doris_sim::SimOptions) -> doris_sim::Sim {
    doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![MERGED_JOB_DATA.to_string(), TEST_DDL.to_string()],
        ..opts
    })
    .await
    .expect("sim starts")
}

/// `PUT /api/{db}/_stream_load_2pc` on the given listener with Basic auth and extra headers.
pub async fn two_pc(addr: SocketAddr, db: &str, headers: &[(&str, &str)]) -> RawResponse {
    let auth = basic("root", "");
    let mut h: Vec<(&str, &str)> =
        vec![("Authorization", auth.as_str()), ("Expect", "100-continue")];
    h.extend_from_slice(headers);
    send(addr, "PUT", &format!("/api/{db}/_stream_load_2pc"), &h, b"").await
}

pub async fn load_state(sim: &doris_sim::Sim, db: &str, label: &str) -> serde_json::Value {
    let auth = basic("root", "");
    send(
        sim.fe_addr(),
        "GET",
        &format!("/api/{db}/get_load_state?label={label}"),
        &[("Authorization", &auth)],
        b"",
    )
    .await
    .json()
}

pub async fn queue_fault(sim: &doris_sim::Sim, fault: serde_json::Value) {
    let r = send(
        sim.fe_addr(),
        "POST",
        "/api/_sim/faults",
        &[],
        fault.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
