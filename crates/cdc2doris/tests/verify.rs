//! `cdc2doris verify` against the stack's PostgreSQL and an in-process doris-sim read over its MySQL query port:
//! clean after a backfill; rows corrupted, deleted and added by hand (over MySQL) found, and healed by `--repair`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cdc2doris::backfill;
use cdc2doris::verify::{run_verify, Verdict, VerifyOptions, VerifyReport};
use common::world::{pg_password, unsafe_env_set, World};
use mysql_async::prelude::Queryable;
use tokio_util::sync::CancellationToken;

const JOBS: i64 = 40;

/// Jobs 1..=JOBS, with activity and revenue for some, and one excluded client.
async fn seed(world: &World) {
    world
        .pg
        .batch_execute(&format!(
            "INSERT INTO jobs (id, client_id, title, category, status, location, salary_min, salary_max, created_at, updated_at)
             SELECT i, i % 5, 'job ' || i, 'cat', 'open', NULL, 1000.5 + i, 2000, '2024-01-02 03:04:05.123456+00', '2024-02-03 04:05:06+00'
             FROM generate_series(1, {JOBS}) AS i;
             INSERT INTO job_activity (id, job_id, activity_type, occurred_at)
             SELECT i, i % 10 + 1, 'view', '2024-03-01 00:00:00.5+00' FROM generate_series(1, 30) AS i;
             INSERT INTO standard_revenue (id, job_id, amount_usd, booked_on)
             SELECT i, i % 7 + 1, 10.10 * i, '2024-05-06' FROM generate_series(1, 20) AS i;
             INSERT INTO clients_to_exclude (client_id, reason) VALUES (3, 'fraud');"
        ))
        .await
        .expect("seed");
}

fn config(world: &World) -> cdc2doris::config::Config {
    let path = world.write_config_with_query_port();
    unsafe_env_set("CDC2DORIS_TEST_PG_PASSWORD", &pg_password());
    cdc2doris::config::load(&path).unwrap_or_else(|e| panic!("config: {e}: {:?}", e.problems()))
}

fn options(repair: bool) -> VerifyOptions {
    VerifyOptions {
        keys_query: Some("SELECT id FROM jobs".into()),
        sample: None,
        // Small ranges so the test crosses several of them.
        range_keys: 7,
        examples: 10,
        repair,
        recheck_after: std::time::Duration::ZERO,
        progress: false,
    }
}

async fn verify(cfg: &cdc2doris::config::Config, repair: bool) -> VerifyReport {
    run_verify(cfg, &options(repair), CancellationToken::new())
        .await
        .expect("verify runs")
}

async fn doris(world: &World) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(world.sim.query_addr().port())
        .user(Some("root"))
        .pass(Some(""))
        .db_name(Some("job_analytics"))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .expect("doris-sim query port")
}

fn keys_of(report: &VerifyReport, verdict: Verdict) -> Vec<String> {
    let mut keys: Vec<String> = report
        .examples
        .iter()
        .filter(|e| e.verdict == verdict)
        .map(|e| e.key.clone())
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_after_backfill_then_hand_edits_found_and_repaired() {
    let world = World::new("verify", 1).await;
    seed(&world).await;
    let cfg = config(&world);
    let done = backfill::run(
        cfg.clone(),
        backfill::Keys::Query("SELECT id FROM jobs".into()),
        100,
        CancellationToken::new(),
    )
    .await
    .expect("backfill");
    assert_eq!(done.rows, JOBS as u64);

    // Clean: every key matches, every column compared (decimals, DATETIME(6), booleans, dates, NULLs).
    let clean = verify(&cfg, false).await;
    assert_eq!(clean.counts.keys, JOBS as u64, "{}", clean.render_text());
    assert_eq!(clean.counts.matched, JOBS as u64, "{}", clean.render_text());
    assert!(clean.clean());
    assert!(
        clean.unchecked_columns.is_empty(),
        "{:?}",
        clean.unchecked_columns
    );
    assert_eq!(
        clean.ranges,
        (JOBS as u64).div_ceil(7) + u64::from(JOBS % 7 == 0)
    );

    // Hand edits in Doris, over MySQL.
    let mut conn = doris(&world).await;
    conn.query_drop("UPDATE merged_job_data SET title = 'tampered' WHERE job_id = 3")
        .await
        .unwrap();
    conn.query_drop(
        "UPDATE merged_job_data SET salary_min = 1.00, client_excluded = 1 WHERE job_id = 12",
    )
    .await
    .unwrap();
    conn.query_drop("DELETE FROM merged_job_data WHERE job_id IN (5, 40)")
        .await
        .unwrap();
    conn.query_drop(
        "INSERT INTO merged_job_data (job_id, title, source_version) VALUES (1000, 'ghost', 1), (0, 'ghost', 1)",
    )
    .await
    .unwrap();
    // A row loaded from a read newer than any snapshot verify takes: not drift.
    conn.query_drop(
        "UPDATE merged_job_data SET title = 'from the future', source_version = 9000000000000000000 WHERE job_id = 20",
    )
    .await
    .unwrap();

    // Hand edits keep the row's version. When nothing committed in the PostgreSQL cluster since the load, verify
    // reads in a snapshot of the same version and the edited rows are `different`; the version is the cluster's, so
    // a commit in any other database (tests run in parallel) makes them `stale` instead.
    let drift = verify(&cfg, false).await;
    let text = drift.render_text();
    assert_eq!(drift.counts.missing, 2, "{text}");
    assert_eq!(drift.counts.extra, 2, "{text}");
    assert_eq!(drift.counts.different + drift.counts.stale, 2, "{text}");
    assert_eq!(drift.counts.newer, 1, "{text}");
    assert_eq!(drift.counts.matched, JOBS as u64 - 5, "{text}");
    assert!(!drift.clean());
    assert_eq!(keys_of(&drift, Verdict::Missing), ["40", "5"]);
    let mut edited = [
        keys_of(&drift, Verdict::Different),
        keys_of(&drift, Verdict::Stale),
    ]
    .concat();
    edited.sort();
    assert_eq!(edited, ["12", "3"], "{text}");
    assert_eq!(keys_of(&drift, Verdict::Extra), ["0", "1000"]);

    // A change in PostgreSQL that never reached Doris (no `run` here): every Doris row is now from an older
    // snapshot than verify's, so the differing rows are `stale`.
    world
        .pg
        .batch_execute("UPDATE jobs SET status = 'closed' WHERE id = 7")
        .await
        .unwrap();
    let drift = verify(&cfg, false).await;
    let text = drift.render_text();
    assert_eq!(drift.counts.missing, 2, "{text}");
    assert_eq!(drift.counts.stale, 3, "{text}");
    assert_eq!(drift.counts.extra, 2, "{text}");
    assert_eq!(drift.counts.different, 0, "{text}");
    assert_eq!(drift.counts.newer, 1, "{text}");
    assert_eq!(drift.counts.matched, JOBS as u64 - 6, "{text}");
    assert_eq!(keys_of(&drift, Verdict::Stale), ["12", "3", "7"]);
    let job3 = drift.examples.iter().find(|e| e.key == "3").unwrap();
    assert_eq!(job3.columns.len(), 1, "{text}");
    assert_eq!(job3.columns[0].column, "title");
    assert_eq!(job3.columns[0].postgres.as_deref(), Some("job 3"));
    assert_eq!(job3.columns[0].doris.as_deref(), Some("tampered"));
    let job12: Vec<&str> = drift
        .examples
        .iter()
        .find(|e| e.key == "12")
        .unwrap()
        .columns
        .iter()
        .map(|c| c.column.as_str())
        .collect();
    assert_eq!(job12, ["client_excluded", "salary_min"], "{text}");
    assert!(
        text.contains("title: postgres \"job 3\" / doris \"tampered\""),
        "{text}"
    );

    // --repair reloads the seven drifted keys and finds them healed.
    let repaired = verify(&cfg, true).await;
    let after = repaired.after_repair.clone().expect("repair ran");
    assert_eq!(after.keys, 7, "{}", repaired.render_text());
    assert_eq!(after.matched, 7, "{}", repaired.render_text());
    assert!(repaired.clean());
    let again = verify(&cfg, false).await;
    assert_eq!(again.counts.drift(), 0, "{}", again.render_text());
    assert_eq!(again.counts.matched, JOBS as u64 - 1);
    let ghosts: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM merged_job_data WHERE job_id IN (0, 1000)")
        .await
        .unwrap();
    assert_eq!(ghosts, Some(0));
    conn.disconnect().await.unwrap();
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_checks_that_many_keys() {
    let world = World::new("verify_sample", 1).await;
    seed(&world).await;
    let cfg = config(&world);
    backfill::run(
        cfg.clone(),
        backfill::Keys::Query("SELECT id FROM jobs".into()),
        100,
        CancellationToken::new(),
    )
    .await
    .expect("backfill");
    let mut conn = doris(&world).await;
    conn.query_drop("DELETE FROM merged_job_data WHERE job_id > 0")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let mut opts = options(false);
    opts.sample = Some(10);
    let report = run_verify(&cfg, &opts, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.counts.keys, 10, "{}", report.render_text());
    assert_eq!(report.counts.missing, 10, "{}", report.render_text());

    // The command: JSON on stdout, exit 1 on drift.
    let config_path = world.dir.path().join("pipeline.toml");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["verify", "--config"])
        .arg(&config_path)
        .args([
            "--keys-query",
            "SELECT id FROM jobs",
            "--sample",
            "5",
            "--format",
            "json",
            "--recheck-after",
            "0s",
        ])
        .env("CDC2DORIS_TEST_PG_PASSWORD", pg_password())
        .output()
        .await
        .expect("cdc2doris runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["keys"], 5);
    assert_eq!(json["missing"], 5);
    assert_eq!(json["examples"][0]["verdict"], "missing");
    world.cleanup().await;
}

/// A sample is drawn from both key sets: `--keys-query`'s (so a row Doris lacks can be drawn) and the Doris table's
/// (so a row only Doris has can be drawn). Without `--keys-query` it is drawn from Doris's keys alone, and the report
/// says that missing rows were not looked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_finds_missing_and_extra_rows() {
    let world = World::new("verify_sample_both", 1).await;
    seed(&world).await;
    let cfg = config(&world);
    backfill::run(
        cfg.clone(),
        backfill::Keys::Query("SELECT id FROM jobs".into()),
        100,
        CancellationToken::new(),
    )
    .await
    .expect("backfill");
    // Jobs 1..=20 gone from Doris (missing), 20 rows PostgreSQL never had (extra), jobs 21..=40 edited (stale).
    let mut conn = doris(&world).await;
    conn.query_drop("DELETE FROM merged_job_data WHERE job_id <= 20")
        .await
        .unwrap();
    let ghosts: Vec<String> = (1001..=1020)
        .map(|k| format!("({k}, 'ghost', 1)"))
        .collect();
    conn.query_drop(format!(
        "INSERT INTO merged_job_data (job_id, title, source_version) VALUES {}",
        ghosts.join(", ")
    ))
    .await
    .unwrap();
    conn.query_drop(
        "UPDATE merged_job_data SET title = 'tampered' WHERE job_id > 20 AND job_id <= 40",
    )
    .await
    .unwrap();
    conn.disconnect().await.unwrap();

    // A sample as large as both key sets together is all of them: 40 + 20 keys.
    let mut opts = options(false);
    opts.sample = Some(1000);
    let all = run_verify(&cfg, &opts, CancellationToken::new())
        .await
        .unwrap();
    let text = all.render_text();
    assert_eq!(all.counts.keys, 60, "{text}");
    assert_eq!(all.counts.missing, 20, "{text}");
    assert_eq!(all.counts.extra, 20, "{text}");
    assert_eq!(all.counts.stale + all.counts.different, 20, "{text}");
    assert!(!all.missing_not_checked);

    // 30 of the 60: at least 10 of the 30 keys drawn from each side are drifted only on that side, so both kinds
    // show up (the chance that a draw of 30 from the candidates misses one kind entirely is below 1e-8).
    opts.sample = Some(30);
    let some = run_verify(&cfg, &opts, CancellationToken::new())
        .await
        .unwrap();
    let text = some.render_text();
    assert_eq!(some.counts.keys, 30, "{text}");
    assert_eq!(some.counts.drift(), 30, "{text}");
    assert!(some.counts.missing > 0, "{text}");
    assert!(some.counts.extra > 0, "{text}");

    // Without --keys-query: Doris's 40 keys only; missing rows are not looked for, and the report says so.
    opts.keys_query = None;
    opts.sample = Some(1000);
    let doris_only = run_verify(&cfg, &opts, CancellationToken::new())
        .await
        .unwrap();
    let text = doris_only.render_text();
    assert_eq!(doris_only.counts.keys, 40, "{text}");
    assert_eq!(doris_only.counts.missing, 0, "{text}");
    assert_eq!(doris_only.counts.extra, 20, "{text}");
    assert!(doris_only.missing_not_checked);
    assert!(text.contains("missing rows not looked for"), "{text}");

    // The command: `--sample` alone works; neither `--sample` nor `--keys-query` is refused, naming both.
    let config_path = world.dir.path().join("pipeline.toml");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["verify", "--config"])
        .arg(&config_path)
        .args([
            "--sample",
            "10",
            "--format",
            "json",
            "--recheck-after",
            "0s",
        ])
        .env("CDC2DORIS_TEST_PG_PASSWORD", pg_password())
        .output()
        .await
        .expect("cdc2doris runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["keys"], 10, "{json}");
    assert_eq!(json["missing_not_checked"], true, "{json}");
    assert_eq!(json["missing"], 0, "{json}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["verify", "--config"])
        .arg(&config_path)
        .output()
        .await
        .expect("cdc2doris runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--keys-query"), "{stderr}");
    world.cleanup().await;
}

/// Verify while a `run` instance loads live changes: a Doris row older than verify's read (the change not loaded
/// yet) or newer (loaded after verify's read) is looked at again after `--recheck-after`, so the run reports no drift
/// although the table changed under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_false_drift_while_run_loads_live_changes() {
    let mut world = World::new("verify_live", 2).await;
    let cfg = config(&world);
    let path = world.dir.path().join("pipeline.toml");
    let (stop, run) = world.start(&path);
    let mut m = common::world::model();
    let jobs: Vec<jobgen::Change> = (0..200).map(|_| m.new_job()).collect();
    world.apply(&jobs).await;
    world
        .converge(m.all_job_ids(), std::time::Duration::from_secs(60))
        .await;
    let before = verify(&cfg, false).await;
    assert!(before.clean(), "{}", before.render_text());

    // Changes keep coming while verify walks the keys in small ranges.
    let mut opts = options(false);
    opts.range_keys = 5;
    opts.recheck_after = std::time::Duration::from_secs(5);
    let verifier = {
        let cfg = cfg.clone();
        tokio::spawn(async move { run_verify(&cfg, &opts, CancellationToken::new()).await })
    };
    let mut applied = 0;
    for _ in 0..20 {
        let changes: Vec<jobgen::Change> = (0..10).map(|_| m.next_change()).collect();
        applied += world.apply(&changes).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let report = verifier.await.expect("join").expect("verify runs");
    assert!(applied > 0);
    assert!(report.counts.keys >= 150, "{}", report.render_text());
    assert_eq!(report.counts.drift(), 0, "{}", report.render_text());
    assert!(report.clean());
    stop.cancel();
    run.await.expect("join").expect("graceful shutdown");
    world.cleanup().await;
}

/// Verify's failures are typed, with their cause as the error's source (the driver's own error).
#[tokio::test]
async fn an_unreachable_query_port_is_a_typed_error_with_its_cause() {
    let world = World::new("verify_err", 1).await;
    let mut cfg = config(&world);
    cfg.file.doris.query_port = 1;
    let err = run_verify(&cfg, &options(false), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, cdc2doris::verify::VerifyError::DorisConnect { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "cannot connect to the Doris query port 127.0.0.1:1 as \"root\"; check doris.query_port / doris.query_host"
    );
    assert!(std::error::Error::source(&err).is_some());
    world.cleanup().await;
}
