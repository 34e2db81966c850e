//! The FE query port (MySQL protocol) driven by real clients: the `mysql` command-line client (Debian's
//! `default-mysql-client`, which `dev/stack up` installs) and the `mysql_async` crate cdc2doris uses.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mysql_async::prelude::Queryable;

const PASSWORD: &str = "s3cr:et";

async fn sim_with_password() -> doris_sim::Sim {
    doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![MERGED_JOB_DATA.to_string(), TEST_DDL.to_string()],
        password: PASSWORD.into(),
        ..Default::default()
    })
    .await
    .expect("sim starts")
}

/// Runs statements through the `mysql` client in batch mode; stdout, or the client's error text.
async fn mysql_cli(
    sim: &doris_sim::Sim,
    password: &str,
    db: Option<&str>,
    sql: &str,
) -> Result<String, String> {
    let addr = sim.query_addr();
    // tokio's Command: the sim serves on this test's runtime, which a blocking wait would stall.
    let mut cmd = tokio::process::Command::new("mysql");
    cmd.args([
        "--no-defaults",
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-P",
        &addr.port().to_string(),
        "-u",
        "root",
        "--batch",
        "--raw",
        "-e",
        sql,
    ]);
    if !password.is_empty() {
        cmd.arg(format!("-p{password}"));
    }
    if let Some(db) = db {
        cmd.arg(db);
    }
    let out = cmd.output().await.unwrap_or_else(|e| {
        panic!("cannot run the mysql client ({e}); install it: apt-get install -y default-mysql-client (dev/stack up does)")
    });
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn stream_load_rows(sim: &doris_sim::Sim, password: &str, body: &str) {
    let auth = basic("root", password);
    let r = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/typed/_stream_load",
        &[
            ("Authorization", auth.as_str()),
            ("format", "json"),
            ("read_json_by_line", "true"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.json()["Status"], "Success", "{}", r.body);
}

const TYPED_ROWS: &str = concat!(
    r#"{"k": 1, "li": "170141183460469231731687303715884105727", "d": "2024-02-29", "dt": "2024-01-02 03:04:05.5", "dec": "1.5", "b": true, "j": {"a": [1, 2]}, "s": "ab"}"#,
    "\n",
    r#"{"k": 2, "dec": "-0.01", "b": false, "s": "x"}"#,
    "\n",
    r#"{"k": 3, "s": "gone"}"#,
    "\n",
);

#[tokio::test]
async fn mysql_cli_answers_the_documented_statements() {
    let sim = sim_with_password().await;
    stream_load_rows(&sim, PASSWORD, TYPED_ROWS).await;
    // k = 3 deleted by a delete-sign row: hidden from the query port as from the rows endpoint.
    let auth = basic("root", PASSWORD);
    let r = send(
        sim.be_addr(),
        "PUT",
        "/api/d1/typed/_stream_load",
        &[
            ("Authorization", auth.as_str()),
            ("format", "json"),
            ("read_json_by_line", "true"),
            ("hidden_columns", "__DORIS_DELETE_SIGN__"),
        ],
        br#"{"k": 3, "s": "gone", "__DORIS_DELETE_SIGN__": 1}"#,
    )
    .await;
    assert_eq!(r.json()["Status"], "Success", "{}", r.body);

    let cli = |db: Option<&'static str>, sql: &'static str| mysql_cli(&sim, PASSWORD, db, sql);

    // Values as Doris shows them: DECIMAL with its scale, DATETIME with the column's precision, 0/1, NULL, JSON.
    assert_eq!(
        cli(None, "SELECT * FROM d1.typed").await.unwrap(),
        "k\tli\td\tdt\tdec\tb\tj\ts\n\
         1\t170141183460469231731687303715884105727\t2024-02-29\t2024-01-02 03:04:05.500\t1.50\t1\t{\"a\":[1,2]}\tab\n\
         2\tNULL\tNULL\tNULL\t-0.01\t0\tNULL\tx\n"
    );
    // The same rows as the sim-only rows endpoint.
    assert_eq!(rows(&sim, "d1", "typed").await.len(), 2);
    assert_eq!(
        cli(Some("d1"), "SELECT k, s FROM typed WHERE k IN (2, 3, 9)")
            .await
            .unwrap(),
        "k\ts\n2\tx\n"
    );
    assert_eq!(
        cli(Some("d1"), "SELECT COUNT(*) FROM typed").await.unwrap(),
        "count(*)\n2\n"
    );
    // Key ranges, both bounds, ORDER BY, LIMIT.
    cli(
        Some("d1"),
        "INSERT INTO u (k, v, n) VALUES (10, 'a', 1), (20, 'b', 2), (30, 'c', NULL), (40, 'd', 4)",
    )
    .await
    .unwrap();
    assert_eq!(
        cli(
            Some("d1"),
            "SELECT k FROM u WHERE k > 10 ORDER BY k LIMIT 2"
        )
        .await
        .unwrap(),
        "k\n20\n30\n"
    );
    assert_eq!(
        cli(Some("d1"), "SELECT k, n FROM u WHERE k >= 20 AND k <= 30")
            .await
            .unwrap(),
        "k\tn\n20\t2\n30\tNULL\n"
    );
    assert_eq!(
        cli(
            Some("d1"),
            "SELECT k FROM u WHERE k < 30 ORDER BY k DESC LIMIT 1"
        )
        .await
        .unwrap(),
        "k\n20\n"
    );
    // Hand edits: UPDATE, DELETE.
    cli(
        Some("d1"),
        "UPDATE u SET v = 'zz' WHERE k = 20; DELETE FROM u WHERE k IN (10, 40)",
    )
    .await
    .unwrap();
    assert_eq!(
        cli(Some("d1"), "SELECT k, v FROM u").await.unwrap(),
        "k\tv\n20\tzz\n30\tc\n"
    );

    // The catalog.
    assert_eq!(
        cli(None, "SHOW DATABASES").await.unwrap(),
        "Database\nd1\nd2\ninformation_schema\njob_analytics\n"
    );
    assert_eq!(
        cli(Some("d1"), "SHOW TABLES").await.unwrap(),
        "Tables_in_d1\nagg\ndup\nst\ntyped\nu\n"
    );
    let desc = cli(None, "USE job_analytics; DESC merged_job_data")
        .await
        .unwrap();
    assert!(
        desc.starts_with(
            "Field\tType\tNull\tKey\tDefault\tExtra\njob_id\tBIGINT\tNo\ttrue\tNULL\t\n"
        ),
        "{desc}"
    );
    assert!(
        desc.contains("salary_min\tDECIMAL(12,2)\tYes\tfalse\tNULL\tREPLACE\n"),
        "{desc}"
    );
    let create = cli(None, "SHOW CREATE TABLE job_analytics.merged_job_data")
        .await
        .unwrap();
    assert!(create.contains("UNIQUE KEY(`job_id`)"), "{create}");
    assert!(create.contains("function_column.sequence_col"), "{create}");

    // What clients ask on connect.
    assert_eq!(
        cli(None, "SELECT VERSION()").await.unwrap(),
        "VERSION()\n5.7.99\n"
    );
    let comment = cli(None, "SELECT @@version_comment LIMIT 1").await.unwrap();
    assert!(
        comment.starts_with("@@version_comment\nDoris version"),
        "{comment}"
    );
    cli(
        None,
        "SET NAMES utf8mb4; SET autocommit = 1; SELECT @@max_allowed_packet",
    )
    .await
    .unwrap();

    // Refusals are MySQL errors naming the statement.
    let e = cli(None, "SELECT k FROM d1.u GROUP BY k")
        .await
        .unwrap_err();
    assert!(e.contains("ERROR 1235") && e.contains("GROUP BY"), "{e}");
    let e = cli(None, "SELECT * FROM d1.nope").await.unwrap_err();
    assert!(e.contains("ERROR 1146"), "{e}");
    let e = cli(Some("nodb"), "SELECT 1").await.unwrap_err();
    assert!(e.contains("ERROR 1049"), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_password_is_checked() {
    let sim = sim_with_password().await;
    // 1698 (ER_ACCESS_DENIED_NO_PASSWORD_ERROR) is what opensrv-mysql sends; Doris sends 1045. Both are 28000.
    let e = mysql_cli(&sim, "wrong", None, "SELECT 1")
        .await
        .unwrap_err();
    assert!(e.contains("(28000)") && e.contains("root"), "{e}");
    let e = mysql_cli(&sim, "", None, "SELECT 1").await.unwrap_err();
    assert!(e.contains("(28000)"), "{e}");
    assert_eq!(
        mysql_cli(&sim, PASSWORD, None, "SELECT 1").await.unwrap(),
        "1\n1\n"
    );
    sim.shutdown().await;
}

fn opts(sim: &doris_sim::Sim, password: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(sim.query_addr().port())
        .user(Some("root"))
        .pass(Some(password))
        .db_name(Some("d1"))
        .prefer_socket(false)
        .into()
}

#[tokio::test]
async fn mysql_async_reads_rows_and_the_catalog() {
    let sim = sim_with_password().await;
    stream_load_rows(&sim, PASSWORD, TYPED_ROWS).await;
    let mut conn = mysql_async::Conn::new(opts(&sim, PASSWORD)).await.unwrap();
    type Row = (i64, Option<String>, Option<String>, Option<String>);
    let got: Vec<Row> = conn
        .query("SELECT k, dec, dt, j FROM typed WHERE k > 0 ORDER BY k LIMIT 10")
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            (
                1,
                Some("1.50".into()),
                Some("2024-01-02 03:04:05.500".into()),
                Some(r#"{"a":[1,2]}"#.into())
            ),
            (2, Some("-0.01".into()), None, None),
            (3, None, None, None),
        ]
    );
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM d1.typed")
        .await
        .unwrap();
    assert_eq!(n, Some(3));
    let tables: Vec<String> = conn.query("SHOW TABLES").await.unwrap();
    assert_eq!(tables, ["agg", "dup", "st", "typed", "u"]);
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.unwrap();
    assert_eq!(version.as_deref(), Some("5.7.99"));
    // A hand edit.
    conn.query_drop("DELETE FROM typed WHERE k = 3")
        .await
        .unwrap();
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM typed")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    // A refused statement is an error with its code, and the connection stays usable.
    let e = conn
        .query_drop("SELECT k FROM typed UNION SELECT k FROM u")
        .await
        .unwrap_err();
    match e {
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1235, "{s:?}"),
        other => panic!("expected a server error, got {other:?}"),
    }
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM typed")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    conn.disconnect().await.unwrap();
    // A wrong password is refused at connect.
    assert!(mysql_async::Conn::new(opts(&sim, "nope")).await.is_err());
    sim.shutdown().await;
}
