//! [integrity] A change whose event reaches Kafka before its transaction is visible in PostgreSQL.
//!
//! With Debezium's walsender as the synchronous standby (`synchronous_standby_names`), a commit waits until Debezium
//! confirms it, and Debezium confirms after it has published the event. cdc2doris reads the event while the
//! transaction still looks in progress to every other session; a merge read then would load the old row, and no
//! later event would ever repair it. The merge must wait until the transaction is visible.
//!
//! The setting is server-wide, so this test is alone in its test binary (cargo runs test binaries one at a time, so
//! no other test commits while it is set), names only this test's walsender, and restores the setting whatever
//! happens.

mod common;

use std::time::{Duration, Instant};

use common::world::*;

/// Makes the walsender of `slot` the only synchronous standby and waits until the setting is in force.
async fn make_sync_standby(slot: &str) {
    let admin = connect("postgres").await;
    let start = Instant::now();
    let app: String = loop {
        let row = admin
            .query_opt(
                "SELECT r.application_name FROM pg_stat_replication r JOIN pg_replication_slots s \
                 ON s.active_pid = r.pid WHERE s.slot_name = $1",
                &[&slot],
            )
            .await
            .expect("pg_stat_replication");
        if let Some(row) = row {
            break row.get(0);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no walsender for slot {slot}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Every Debezium walsender has the same name: a walsender left by an earlier run would answer for ours.
    let same: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("walsenders")
        .get(0);
    assert_eq!(
        same, 1,
        "other walsenders named {app:?} are connected (connectors left by an earlier run?); remove them first"
    );
    let quoted = format!("\"{}\"", app.replace('"', "\"\""));
    admin
        .batch_execute(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = '{}'",
            quoted.replace('\'', "''")
        ))
        .await
        .expect("ALTER SYSTEM");
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload");
    // PostgreSQL waits for the named standby's confirmation from the moment the setting is loaded, whether or not
    // that walsender reported a position yet.
    let start = Instant::now();
    loop {
        let now = connect("postgres").await;
        let value: String = now
            .query_one("SHOW synchronous_standby_names", &[])
            .await
            .expect("show")
            .get(0);
        if value == quoted {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "synchronous_standby_names not loaded: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn restore_sync_standby() {
    let admin = connect("postgres").await;
    admin
        .batch_execute("ALTER SYSTEM RESET synchronous_standby_names")
        .await
        .expect("restore synchronous_standby_names");
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_published_before_its_transaction_is_visible_still_reaches_doris() {
    let mut w = World::new("visible", 1).await;
    let mut m = model();
    let jobs: Vec<jobgen::Change> = (0..5).map(|_| m.new_job()).collect();
    w.apply_pg(&jobs).await;
    let dbz = Debezium::register(&w).await;
    let config = w.write_config("");
    let (stop, run) = w.start(&config);
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;

    let slot = dbz.slot.clone();
    let port = w.admin_port;
    let scenario = tokio::spawn(async move {
        make_sync_standby(&slot).await;
        let read_before = debug_state_at(port).await["totals"]["messages"]
            .as_u64()
            .unwrap_or(0);
        // Committed with synchronous_commit = on: the commit returns only once Debezium confirmed it — after
        // Debezium published the event and cdc2doris read it.
        let db_name = w.db.clone();
        let change = [jobgen::Change::SetStatus {
            id: 1,
            status: "closed".into(),
        }];
        let commit = w.apply_pg(&change);
        // Debezium confirms the position of the last change it handled, which ends short of a commit record's end:
        // a later change in its database lets the first commit return. That change is committed without waiting
        // for the standby (synchronous_commit = local), once cdc2doris has read the first event and had time to
        // merge it.
        let nudge = async {
            let start = Instant::now();
            while debug_state_at(port).await["totals"]["messages"]
                .as_u64()
                .unwrap_or(0)
                <= read_before
            {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "cdc2doris never read the event"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            connect(&db_name)
                .await
                .batch_execute(
                    "SET synchronous_commit = local; \
                     UPDATE jobs SET salary_min = salary_min + 1 WHERE id = 5",
                )
                .await
                .expect("nudge");
        };
        tokio::join!(commit, nudge);
        restore_sync_standby().await;
        // Every event read and acknowledged; no event will come any more.
        w.wait_all_committed(1).await;
        w.converge(m.all_job_ids(), Duration::from_secs(30)).await;
        let state = w.debug_state().await;
        assert!(
            state["totals"]["visibility_waits"].as_u64().unwrap_or(0) >= 1,
            "the merge waited for the transaction to become visible: {state}"
        );
        w
    });
    // A commit waiting for a standby that never confirms would hang the suite: bounded, and the setting restored
    // (which releases a waiting commit) whatever happens.
    let outcome = tokio::time::timeout(Duration::from_secs(180), scenario).await;
    restore_sync_standby().await;
    let Ok(outcome) = outcome else {
        dbz.remove().await;
        panic!("the scenario did not end within 180 s");
    };
    let w = match outcome {
        Ok(w) => w,
        Err(e) => {
            dbz.remove().await;
            std::panic::resume_unwind(e.into_panic())
        }
    };
    stop.cancel();
    run.await.expect("join").expect("graceful shutdown");
    dbz.remove().await;
    w.cleanup().await;
}
