//! `cdc2doris backfill` for big tables, checked with the product's own `verify`: key ranges into an empty table,
//! a backfill beside `run` and live changes, and a backfill killed mid-way that resumes from its checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use cdc2doris::backfill::{self, BackfillOptions, Keys};
use cdc2doris::verify::{run_verify, VerifyOptions, VerifyReport};
use common::world::{model, pg_password, stop_gracefully, unsafe_env_set, World};
use tokio_util::sync::CancellationToken;

/// The world's config, with the doris-sim query port for verify.
fn config(world: &World) -> (std::path::PathBuf, cdc2doris::config::Config) {
    let path = world.write_config_with_query_port();
    unsafe_env_set("CDC2DORIS_TEST_PG_PASSWORD", &pg_password());
    let cfg = cdc2doris::config::load(&path)
        .unwrap_or_else(|e| panic!("config: {e}: {:?}", e.problems()));
    (path, cfg)
}

async fn verify(cfg: &cdc2doris::config::Config) -> VerifyReport {
    run_verify(
        cfg,
        &VerifyOptions {
            keys_query: Some("SELECT id FROM jobs".into()),
            sample: None,
            range_keys: 50,
            examples: 5,
            repair: false,
            recheck_after: Duration::from_millis(500),
            progress: false,
        },
        CancellationToken::new(),
    )
    .await
    .expect("verify runs")
}

/// `n` jobs in PostgreSQL only (no events), with activity and revenue.
async fn seed(world: &mut World, n: usize) -> std::ops::Range<i64> {
    let mut m = model();
    let jobs: Vec<jobgen::Change> = (0..n).map(|_| m.new_job()).collect();
    world.apply_pg(&jobs).await;
    let changes: Vec<jobgen::Change> = (0..n).map(|_| m.next_change()).collect();
    world.apply_pg(&changes).await;
    m.all_job_ids()
}

fn options(batch_keys: usize) -> BackfillOptions {
    BackfillOptions {
        batch_keys,
        ..BackfillOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_ranges_into_an_empty_table_then_verify_clean() {
    let mut world = World::new("bf_range", 1).await;
    let ids = seed(&mut world, 120).await;
    let (_, cfg) = config(&world);
    let keys = || Keys::Query("SELECT id FROM jobs".into());
    let mid = ids.start + 50;

    // The first keys only: verify finds the others missing.
    let first = backfill::run_with(
        cfg.clone(),
        keys(),
        BackfillOptions {
            to: Some(mid.to_string()),
            ..options(16)
        },
        CancellationToken::new(),
    )
    .await
    .expect("backfill to");
    let live: i64 = world
        .pg
        .query_one("SELECT count(*) FROM jobs", &[])
        .await
        .unwrap()
        .get(0);
    let below: i64 = world
        .pg
        .query_one("SELECT count(*) FROM jobs WHERE id <= $1", &[&mid])
        .await
        .unwrap()
        .get(0);
    assert_eq!(first.keys, below as u64, "{first:?}");
    let partial = verify(&cfg).await;
    assert_eq!(
        partial.counts.missing,
        (live - below) as u64,
        "{}",
        partial.render_text()
    );
    assert_eq!(partial.counts.matched, below as u64);

    // The rest: from the next key on.
    let rest = backfill::run_with(
        cfg.clone(),
        keys(),
        BackfillOptions {
            from: Some((mid + 1).to_string()),
            ..options(16)
        },
        CancellationToken::new(),
    )
    .await
    .expect("backfill from");
    assert_eq!(rest.keys, (live - below) as u64, "{rest:?}");
    let clean = verify(&cfg).await;
    assert!(clean.clean(), "{}", clean.render_text());
    assert_eq!(clean.counts.matched, live as u64, "{}", clean.render_text());

    // A bound that is not a key of merge.key_type is refused before anything runs.
    let err = backfill::run_with(
        cfg.clone(),
        keys(),
        BackfillOptions {
            from: Some("x".into()),
            ..options(16)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--from \"x\" is not a 64-bit integer"),
        "{err}"
    );
    world.cleanup().await;
}

/// A backfill killed mid-way (SIGKILL: nothing runs on the way out) continues after the last key its checkpoint
/// names, loads only the rest, and Doris ends equal to the merge query. A third run finds the checkpoint complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backfill_resumes_from_its_checkpoint() {
    let mut world = World::new("bf_resume", 1).await;
    let ids = seed(&mut world, 150).await;
    let (path, cfg) = config(&world);
    let checkpoint = world.dir.path().join("backfill.checkpoint");
    let log = std::fs::File::create(world.dir.path().join("backfill.log")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["backfill", "--config"])
        .arg(&path)
        .args([
            "--keys-query",
            "SELECT id FROM jobs",
            "--batch-keys",
            "10",
            "--rate",
            "40",
            "--resume",
        ])
        .arg(&checkpoint)
        .env("CDC2DORIS_TEST_PG_PASSWORD", pg_password())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn backfill");
    // Wait (bounded) for a few batches' checkpoint, then kill it.
    let started = Instant::now();
    loop {
        let saved: Option<serde_json::Value> = std::fs::read_to_string(&checkpoint)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if saved
            .as_ref()
            .is_some_and(|s| s["keys"].as_u64() >= Some(30))
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backfill ended before it was killed: {}",
            std::fs::read_to_string(world.dir.path().join("backfill.log")).unwrap_or_default()
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    assert_eq!(saved["done"], false, "{saved}");
    let loaded = saved["keys"].as_u64().unwrap();
    let after = saved["after"].as_str().unwrap().to_string();
    let live: i64 = world
        .pg
        .query_one("SELECT count(*) FROM jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(loaded < live as u64, "killed before the end: {saved}");
    let drift = verify(&cfg).await;
    assert!(!drift.clean(), "{}", drift.render_text());

    let resumed = backfill::run_with(
        cfg.clone(),
        Keys::Query("SELECT id FROM jobs".into()),
        BackfillOptions {
            checkpoint: Some(checkpoint.clone()),
            ..options(10)
        },
        CancellationToken::new(),
    )
    .await
    .expect("resumed backfill");
    assert_eq!(resumed.resumed_after.as_deref(), Some(after.as_str()));
    let rest: i64 = world
        .pg
        .query_one(
            "SELECT count(*) FROM jobs WHERE id > $1",
            &[&after.parse::<i64>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(resumed.keys, rest as u64, "{resumed:?}");
    assert_eq!(loaded + resumed.keys, live as u64);
    let clean = verify(&cfg).await;
    assert!(clean.clean(), "{}", clean.render_text());
    assert_eq!(clean.counts.matched, live as u64);
    assert!(ids.end > ids.start);

    let again = backfill::run_with(
        cfg.clone(),
        Keys::Query("SELECT id FROM jobs".into()),
        BackfillOptions {
            checkpoint: Some(checkpoint.clone()),
            ..options(10)
        },
        CancellationToken::new(),
    )
    .await
    .expect("complete checkpoint");
    assert_eq!(again.keys, 0, "{again:?}");
    // Another query on the same checkpoint is refused.
    let err = backfill::run_with(
        cfg,
        Keys::Query("SELECT id FROM jobs WHERE id > 3".into()),
        BackfillOptions {
            checkpoint: Some(checkpoint),
            ..options(10)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("the checkpoint is of a backfill of"), "{err}");
    world.cleanup().await;
}

/// A backfill beside a running service while changes keep coming (in PostgreSQL and as events): whichever read is
/// newer wins in Doris, so once the service caught up verify finds no drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_beside_run_and_live_changes_ends_clean() {
    let mut world = World::new("bf_live", 2).await;
    let mut m = model();
    let jobs: Vec<jobgen::Change> = (0..150).map(|_| m.new_job()).collect();
    world.apply_pg(&jobs).await;
    let (path, cfg) = config(&world);
    let (stop, run) = world.start(&path);
    let filler = tokio::spawn(backfill::run_with(
        cfg.clone(),
        Keys::Query("SELECT id FROM jobs".into()),
        BackfillOptions {
            rate: Some(300.0),
            ..options(20)
        },
        CancellationToken::new(),
    ));
    // Live changes while the backfill runs, announced by events the service consumes.
    for _ in 0..6 {
        let changes: Vec<jobgen::Change> = (0..25).map(|_| m.next_change()).collect();
        world.apply(&changes).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let filled = filler.await.expect("join").expect("backfill");
    assert!(filled.keys >= 150, "{filled:?}");
    world.wait_all_committed(2).await;
    world
        .converge(m.all_job_ids(), Duration::from_secs(60))
        .await;
    let clean = verify(&cfg).await;
    assert!(clean.clean(), "{}", clean.render_text());
    stop_gracefully(stop, run).await;
    world.cleanup().await;
}
