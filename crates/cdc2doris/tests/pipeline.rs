//! `cdc2doris run` end to end on the real local stack: Debezium-format events for changes applied
//! to PostgreSQL go through Kafka; doris-sim must end up holding exactly the merge query's rows.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::world::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seeded_change_stream_converges_and_every_offset_is_committed() {
    let mut w = World::new("conv", 2).await;
    let config = w.write_config("");
    let (stop, run) = w.start(&config);
    let mut m = model();
    let mut changes: Vec<jobgen::Change> = (0..40).map(|_| m.new_job()).collect();
    changes.extend((0..600).map(|_| m.next_change()));
    let mut kinds = BTreeMap::<&str, usize>::new();
    for c in &changes {
        *kinds.entry(c.kind()).or_default() += 1;
    }
    for k in [
        "delete_job",
        "move_activity",
        "exclude_client",
        "move_job",
        "activity",
        "revenue",
    ] {
        assert!(
            kinds.contains_key(k),
            "the stream must exercise {k}: {kinds:?}"
        );
    }
    let events = w.apply(&changes).await;
    assert!(events > 600);
    let report = w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    assert!(report.counts.matched > 30, "{}", report.render_text());

    // Committed to the end: every batch is acknowledged, and /debug/state was refreshed with the same flush.
    w.wait_all_committed(2).await;
    let state = w.debug_state().await;
    assert_eq!(state["totals"]["dead_lettered"], 0, "{state}");
    assert!(
        state["totals"]["deletes"].as_u64().unwrap_or(0) > 0,
        "deleted jobs become Doris deletes: {state}"
    );
    stop_gracefully(stop, run).await;
    w.assert_all_committed(
        2,
        "every message was acknowledged, so the committed offset is the end",
    );
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_keys_collapse_into_few_queries_and_poison_goes_to_the_dead_letter_file() {
    let mut w = World::new("hot", 1).await;
    let config = w.write_config("max_keys = 10000");
    let mut m = model();
    let jobs: Vec<jobgen::Change> = (0..3).map(|_| m.new_job()).collect();
    w.apply(&jobs).await;
    // 10,000 activity events on one job, written before the pipeline starts.
    let burst: Vec<jobgen::Change> = (0..2000)
        .map(|i| jobgen::Change::Activity {
            first_id: 1_000_000 + i * 5,
            job_id: 1,
            types: vec!["view".into(); 5],
        })
        .collect();
    let events = w.apply(&burst).await;
    assert_eq!(events, 10_000);
    // Poison: not JSON, and a Debezium event without the key field.
    let topic = w.topic("job_activity");
    for payload in [
        "{not json",
        r#"{"before":null,"after":{"id":5},"source":{"schema":"public","table":"job_activity"},"op":"c","ts_ms":1}"#,
    ] {
        w.producer
            .send(
                FutureRecord::to(&topic).key("{}").payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("poison");
    }
    let (stop, run) = w.start(&config);
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    // Wait for the poison to be handled too (it comes after the burst).
    let dl = w.dir.path().join("dead.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&dl)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "poison messages not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
        .expect("dead letters")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["stage"], "decode");
    assert_eq!(lines[0]["offset"], 10_000);
    assert_eq!(lines[0]["value"]["text"], "{not json");
    assert_eq!(lines[1]["stage"], "keys");
    assert!(
        lines[1]["reason"].as_str().unwrap_or("").contains("job_id"),
        "{}",
        lines[1]
    );

    let state = w.debug_state().await;
    let queries = state["totals"]["queries"].as_u64().unwrap_or(u64::MAX);
    assert!(
        queries <= 20,
        "10,000 events on one job must take a handful of merge queries, took {queries}: {state}"
    );
    let views = w
        .sim
        .client()
        .rows("job_analytics", "merged_job_data")
        .await
        .expect("rows");
    let job1 = views
        .iter()
        .find(|r| r["job_id"] == 1)
        .expect("job 1 in Doris");
    assert_eq!(job1["view_count"], 10_000);

    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;
    w.assert_all_committed(1, "dead-lettered messages count as handled");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_read_that_lands_last_never_overwrites_a_newer_one() {
    let mut w = World::new("order", 1).await;
    let config = w.write_config("max_in_flight = 2");
    let (stop, run) = w.start(&config);
    let mut m = model();
    let job = m.new_job();
    w.apply(std::slice::from_ref(&job)).await;
    w.converge(m.all_job_ids(), Duration::from_secs(30)).await;

    // The next load (batch A, status "paused") stays RUNNING for 3 s; batch B ("closed") is read
    // later, with a greater version, and commits first. When A finally commits, Doris must keep B.
    w.sim
        .client()
        .queue_faults(&[doris_sim::FaultSpec {
            kind: doris_sim::FaultKind::Delay,
            count: 1,
            message: None,
            delay_ms: Some(3000),
            db: None,
            table: None,
        }])
        .await
        .expect("fault");
    w.apply(&[jobgen::Change::SetStatus {
        id: 1,
        status: "paused".into(),
    }])
    .await;
    // Wait until batch A (offset 1 of the jobs topic alone) is in flight, its load held RUNNING by the fault, before
    // B's change. The batch of the first job may still show in `/debug/state` for up to 100 ms after it loaded.
    let a_name = format!("{}/0:1-1", w.topic("jobs"));
    let start = Instant::now();
    while !w.debug_state().await["in_flight"]
        .as_array()
        .is_some_and(|a| {
            a.iter().any(|b| {
                b["batch_name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&a_name))
            })
        })
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "batch A never went in flight"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.apply(&[jobgen::Change::SetStatus {
        id: 1,
        status: "closed".into(),
    }])
    .await;
    let start = Instant::now();
    loop {
        let state = w.debug_state().await;
        let loads = state["totals"]["loads"].as_u64().unwrap_or(0);
        if loads >= 3 && state["in_flight"].as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "loads did not finish: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = w
        .sim
        .client()
        .rows("job_analytics", "merged_job_data")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["status"], "closed",
        "the delayed older load must not win: {:?}",
        rows[0]
    );
    w.converge(m.all_job_ids(), Duration::from_secs(10)).await;
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_restart_and_kill_9_mid_stream_both_converge() {
    let mut w = World::new("crash", 2).await;
    let config = w.write_config("max_keys = 50");
    let mut m = model();
    let seed: Vec<jobgen::Change> = (0..30).map(|_| m.new_job()).collect();
    w.apply(&seed).await;

    // Run 1: SIGTERM mid-stream → exit code 0.
    let mut child = spawn_binary(&config, &w.dir.path().join("run1.log"));
    let part: Vec<jobgen::Change> = (0..200).map(|_| m.next_change()).collect();
    w.apply(&part).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(40));
    let log1 = std::fs::read_to_string(w.dir.path().join("run1.log")).unwrap_or_default();
    assert!(
        status.success(),
        "graceful shutdown must exit 0: {status:?}\n{log1}"
    );

    // Run 2: kill -9 mid-stream, while changes keep coming.
    let mut child = spawn_binary(&config, &w.dir.path().join("run2.log"));
    let part: Vec<jobgen::Change> = (0..200).map(|_| m.next_change()).collect();
    w.apply(&part).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&child, "-KILL");
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    let part: Vec<jobgen::Change> = (0..200).map(|_| m.next_change()).collect();
    w.apply(&part).await;

    // Run 3: picks up from the committed offsets; everything converges and ends committed.
    let mut child = spawn_binary(&config, &w.dir.path().join("run3.log"));
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    // Let the last acknowledgements be committed, then stop.
    w.wait_all_committed(2).await;
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(40));
    assert!(status.success(), "{status:?}");
    w.assert_all_committed(2, "every message was acknowledged");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_doris_rejects_is_isolated_and_dead_lettered_while_the_rest_loads() {
    let mut w = World::new("reject", 1).await;
    let config = w.write_config("");
    let (stop, run) = w.start(&config);
    // Ten new jobs in one batch; job 7's category is longer than Doris' VARCHAR(128).
    let jobs: Vec<jobgen::Change> = (1..=10)
        .map(|id| jobgen::Change::NewJob {
            id,
            client_id: 1,
            title: format!("job {id}"),
            category: if id == 7 {
                "c".repeat(200)
            } else {
                "sales".into()
            },
            location: "Remote".into(),
            salary_min: 1000,
            salary_max: 2000,
        })
        .collect();
    w.apply(&jobs).await;
    let dl = w.dir.path().join("dead.jsonl");
    let start = Instant::now();
    let lines: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(&dl).unwrap_or_default();
        if !text.is_empty() {
            break text
                .lines()
                .map(|l| serde_json::from_str(l).expect("json line"))
                .collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no dead letter for the rejected row"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["kind"], "load");
    assert_eq!(lines[0]["keys"], serde_json::json!([7]));
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("rejected"),
        "{}",
        lines[0]
    );
    let rows = w
        .sim
        .client()
        .rows("job_analytics", "merged_job_data")
        .await
        .expect("rows");
    let ids: Vec<i64> = rows.iter().filter_map(|r| r["job_id"].as_i64()).collect();
    assert_eq!(
        ids,
        vec![1, 2, 3, 4, 5, 6, 8, 9, 10],
        "every other row is loaded"
    );
    // The dead letter is written before the batch is acknowledged; the totals follow (refreshed every 100 ms).
    let start = Instant::now();
    loop {
        let state = w.debug_state().await;
        if state["totals"]["rows_rejected"] == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;
    w.assert_all_committed(1, "the rejected row is handled, not blocking");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_debezium_cdc_converges_with_deletes_toast_and_client_fan_out() {
    let mut w = World::new("dbz", 1).await;
    let mut m = model();
    // Rows that exist before the connector starts arrive as snapshot reads (op "r").
    let mut changes: Vec<jobgen::Change> = (0..12).map(|_| m.new_job()).collect();
    changes.push(jobgen::Change::NewJob {
        id: 100,
        client_id: 3,
        title: (0..600)
            .map(|i| format!("w{}", (i * 7919) % 1000))
            .collect::<Vec<_>>()
            .join(" "),
        category: "engineering".into(),
        location: "Remote".into(),
        salary_min: 1000,
        salary_max: 2000,
    });
    w.apply_pg(&changes).await;
    let dbz = Debezium::register(&w).await;
    let config = w.write_config("");
    let (stop, run) = w.start(&config);
    let ids = || (1..13).chain(100..101);
    w.converge(1..101, Duration::from_secs(90)).await;

    // A TOASTed title left unchanged by an update: Debezium sends `__debezium_unavailable_value` for it,
    // but cdc2doris re-reads the row, so Doris keeps the full title.
    let title: String =
        w.pg.query_one("SELECT title FROM jobs WHERE id = 100", &[])
            .await
            .expect("title")
            .get(0);
    assert!(title.len() > 2000);
    w.apply_pg(&[jobgen::Change::SetStatus {
        id: 100,
        status: "paused".into(),
    }])
    .await;
    // Client 3 is excluded: every job of client 3 is refreshed through the resolve query.
    w.apply_pg(&[jobgen::Change::ExcludeClient {
        client_id: 3,
        reason: "fraud review".into(),
    }])
    .await;
    // A delete (REPLICA IDENTITY FULL: the before image carries job_id for the activity rows too).
    let activity: Vec<jobgen::Change> = (0..40).map(|_| m.next_change()).collect();
    w.apply_pg(&activity).await;
    w.apply_pg(&[
        jobgen::Change::Activity {
            first_id: 900_000,
            job_id: 2,
            types: vec!["view".into(), "click".into()],
        },
        jobgen::Change::DeleteJob { id: 2 },
    ])
    .await;
    w.converge(1..101, Duration::from_secs(90)).await;
    let _ = ids;

    let rows = w
        .sim
        .client()
        .rows("job_analytics", "merged_job_data")
        .await
        .expect("rows");
    let job100 = rows.iter().find(|r| r["job_id"] == 100).expect("job 100");
    assert_eq!(job100["status"], "paused");
    assert_eq!(
        job100["title"].as_str().map(str::len),
        Some(title.len()),
        "the TOASTed title stays whole"
    );
    assert_eq!(job100["client_excluded"], true);
    assert_eq!(job100["exclusion_reason"], "fraud review");
    // Tombstones follow every delete (tombstones.on.delete=true); those of job_activity rows carry only
    // the activity id, not job_id: they are ignored, not dead-lettered (the delete events gave the keys).
    // /debug/state is refreshed every 100 ms: wait for the tombstones to be counted.
    let start = Instant::now();
    let state = loop {
        let state = w.debug_state().await;
        if state["totals"]["ignored"].as_u64().unwrap_or(0) > 0
            || start.elapsed() > Duration::from_secs(30)
        {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state["totals"]["dead_lettered"], 0, "{state}");
    assert!(
        state["totals"]["ignored"].as_u64().unwrap_or(0) > 0,
        "{state}"
    );
    assert!(
        rows.iter().all(|r| r["job_id"] != 2),
        "deleted job 2 is deleted in Doris"
    );

    // Re-included: the fan-out clears the flag again.
    w.apply_pg(&[jobgen::Change::IncludeClient { client_id: 3 }])
        .await;
    w.converge(1..101, Duration::from_secs(60)).await;
    let rows = w
        .sim
        .client()
        .rows("job_analytics", "merged_job_data")
        .await
        .expect("rows");
    let job100 = rows.iter().find(|r| r["job_id"] == 100).expect("job 100");
    assert_eq!(job100["client_excluded"], false);

    stop_gracefully(stop, run).await;
    dbz.remove().await;
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_the_partitions_and_one_takes_over_when_the_other_stops() {
    let mut w = World::new("scale", 4).await;
    let first = w.write_config("");
    let other_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let second = w.write_config_at("", other_port, "second.toml");
    let (stop_a, run_a) = w.start(&first);
    let (stop_b, run_b) = w.start(&second);
    let mut m = model();
    let mut changes: Vec<jobgen::Change> = (0..30).map(|_| m.new_job()).collect();
    changes.extend((0..300).map(|_| m.next_change()));
    w.apply(&changes).await;
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    // Both members get partitions (cooperative-sticky spreads the 16 partitions).
    let start = Instant::now();
    loop {
        let a = w.debug_state().await["partitions"]
            .as_array()
            .map_or(0, Vec::len);
        let b = debug_state_at(other_port).await["partitions"]
            .as_array()
            .map_or(0, Vec::len);
        if a > 0 && b > 0 && a + b == 16 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "partitions not shared: A {a}, B {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let more: Vec<jobgen::Change> = (0..100).map(|_| m.next_change()).collect();
    w.apply(&more).await;
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;

    // A stops gracefully mid-stream; B takes over its partitions from what A committed.
    let more: Vec<jobgen::Change> = (0..300).map(|_| m.next_change()).collect();
    let apply = w.apply(&more);
    stop_a.cancel();
    apply.await;
    run_a.await.expect("join").expect("A shuts down gracefully");
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    w.wait_all_committed(4).await;
    stop_gracefully(stop_b, run_b).await;
    w.assert_all_committed(4, "B committed everything");
    w.cleanup().await;
}

/// A Maxwell event for a row change jobgen applied: `data` is the row (the deleted one for a delete), `old` the
/// previous values of the columns an update changed.
fn maxwell_event(database: &str, ev: &jobgen::RowEvent) -> (String, String) {
    let kind = match ev.op {
        jobgen::RowOp::Insert => "insert",
        jobgen::RowOp::Update => "update",
        jobgen::RowOp::Delete => "delete",
    };
    let data = match ev.op {
        jobgen::RowOp::Delete => ev.before.clone(),
        _ => ev.after.clone(),
    };
    let mut value = serde_json::json!({
        "database": database, "table": ev.table, "type": kind, "ts": 1_700_000_000, "xid": ev.txid,
        "commit": true, "data": data,
    });
    if let (Some(serde_json::Value::Object(before)), Some(serde_json::Value::Object(after))) =
        (&ev.before, &ev.after)
    {
        let old: serde_json::Map<String, serde_json::Value> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        value["old"] = serde_json::Value::Object(old);
    }
    let mut key = serde_json::json!({"database": database, "table": ev.table});
    if let serde_json::Value::Object(pk) = &ev.key {
        for (k, v) in pk {
            key[format!("pk.{k}")] = v.clone();
        }
    }
    (key.to_string(), value.to_string())
}

/// Maxwell writes every table to one topic: one rule per table picks each table's key field, and a table no rule
/// names is ignored (counted, committed), even when its rows would not yield a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_maxwell_topic_for_every_table_routes_events_by_table() {
    let mut w = World::new("maxwell", 1).await;
    let topic = format!("{}.maxwell", w.prefix);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    for r in admin
        .create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic")
    {
        r.expect("topic");
    }
    // The example config, with the four Debezium topics replaced by the one Maxwell topic.
    let text = std::fs::read_to_string(w.write_config("")).expect("config");
    let topics_line = text
        .lines()
        .find(|l| l.starts_with("topics = "))
        .expect("topics line");
    let (head, rest) = text.split_once("[keys]").expect("[keys]");
    let (_, tail) = rest.split_once("[merge]").expect("[merge]");
    let rules: String = [
        ("jobs", "id", ""),
        ("public.job_activity", "job_id", ""),
        ("standard_revenue", "job_id", ""),
        (
            "clients_to_exclude",
            "client_id",
            "resolve_query = \"SELECT id FROM jobs WHERE client_id = ANY($1)\"",
        ),
    ]
    .iter()
    .map(|(table, field, extra)| {
        format!(
            "[[keys.rules]]\ntopic = \"{topic}\"\ntable = \"{table}\"\nformat = \"maxwell\"\nfields = [\"{field}\"]\n{extra}\n"
        )
    })
    .collect();
    let text = format!(
        "{}[keys]\n{rules}[merge]{tail}",
        head.replace(topics_line, &format!("topics = [\"{topic}\"]"))
    );
    let config = w.dir.path().join("maxwell.toml");
    std::fs::write(&config, text).expect("write config");

    let mut m = model();
    let mut changes: Vec<jobgen::Change> = (0..30).map(|_| m.new_job()).collect();
    changes.extend((0..300).map(|_| m.next_change()));
    let mut sent = 0;
    for change in &changes {
        let evs = jobgen::apply(&mut w.pg, change)
            .await
            .unwrap_or_else(|e| panic!("apply {change:?}: {e}"));
        for ev in &evs {
            // Maxwell's schema is the MySQL database; here, PostgreSQL's `public` stands in for it.
            let (key, value) = maxwell_event("public", ev);
            w.producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce");
            sent += 1;
        }
    }
    // A table no rule names, whose `job_id` would not even be a key: ignored, not dead-lettered.
    let stranger = r#"{"database":"public","table":"audit_log","type":"insert","ts":1,"data":{"id":1,"job_id":"n/a"}}"#;
    w.producer
        .send(
            FutureRecord::to(&topic).key("{}").payload(stranger),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
    assert!(sent > 300);

    let (stop, run) = w.start(&config);
    let report = w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    assert!(report.counts.matched > 20, "{}", report.render_text());
    // Every message handled: the stranger counts as ignored, and nothing was dead-lettered.
    let start = Instant::now();
    loop {
        let state = w.debug_state().await;
        let totals = &state["totals"];
        let handled = totals["messages"].as_u64().unwrap_or(0);
        if handled == sent + 1 {
            assert_eq!(totals["dead_lettered"], 0, "{state}");
            assert_eq!(totals["no_rule"], 1, "the audit_log event: {state}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{handled} of {} messages read: {state}",
            sent + 1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead = std::fs::read_to_string(w.dir.path().join("dead.jsonl")).unwrap_or_default();
    assert_eq!(dead, "", "nothing is dead-lettered");
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

/// `backfill` refreshes every key a query returns, without Kafka: a first load, then after jobs were deleted and
/// changed in PostgreSQL a second run that also turns the deleted jobs into Doris deletes, then a run on the keys of
/// a dead-letter file. The binary reports a key of the wrong type and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_loads_every_key_of_a_query_and_deletes_the_missing_ones() {
    let mut w = World::new("backfill", 1).await;
    let config = w.write_config("");
    unsafe_env_set("CDC2DORIS_TEST_PG_PASSWORD", &pg_password());
    // One backfill run on `keys`, in batches of `batch_keys`, with the world's config.
    let backfill = |keys, batch_keys| {
        let config = cdc2doris::config::load(&config)
            .unwrap_or_else(|e| panic!("config: {e}: {:?}", e.problems()));
        cdc2doris::backfill::run(config, keys, batch_keys, CancellationToken::new())
    };
    // Every job id so far, as a keys query.
    let all_ids = |ids: &std::ops::Range<i64>| {
        cdc2doris::backfill::Keys::Query(format!(
            "SELECT g FROM generate_series({}, {}) AS g",
            ids.start,
            ids.end - 1
        ))
    };
    let mut m = model();
    let jobs: Vec<jobgen::Change> = (0..30).map(|_| m.new_job()).collect();
    w.apply_pg(&jobs).await;
    let ids = m.all_job_ids();
    let first = backfill(all_ids(&ids), 7).await.expect("first backfill");
    assert_eq!(first.keys, 30, "{first:?}");
    assert_eq!(first.batches, 5, "30 keys in batches of 7: {first:?}");
    assert_eq!((first.rows, first.deletes), (30, 0), "{first:?}");
    assert!(!first.interrupted);
    let report = w.verify(ids.clone()).await;
    assert!(report.clean(), "{}", report.render_text());

    // Changes (activity, moves, deleted jobs) that no event announces; the second run catches Doris up.
    let changes: Vec<jobgen::Change> = (0..150).map(|_| m.next_change()).collect();
    assert!(
        changes.iter().any(|c| c.kind() == "delete_job"),
        "the stream must delete a job"
    );
    w.apply_pg(&changes).await;
    let ids = m.all_job_ids();
    let second = backfill(all_ids(&ids), 1000)
        .await
        .expect("second backfill");
    assert!(
        second.deletes > 0,
        "deleted jobs become Doris deletes: {second:?}"
    );
    let report = w.verify(ids.clone()).await;
    assert!(report.clean(), "{}", report.render_text());

    // Keys from a dead-letter file (its load records) and plain lines, after more changes no event announced.
    let changes: Vec<jobgen::Change> = (0..100).map(|_| m.next_change()).collect();
    w.apply_pg(&changes).await;
    let ids = m.all_job_ids();
    let all: Vec<i64> = ids.clone().collect();
    let (half, rest) = all.split_at(all.len() / 2);
    let mut text =
        serde_json::json!({"kind": "load", "label": "l", "reason": "r", "keys": half}).to_string();
    text.push_str("\n{\"kind\":\"message\",\"stage\":\"decode\",\"reason\":\"x\"}\n");
    for id in rest {
        text.push_str(&format!("{id}\n"));
    }
    let keys_file = w.dir.path().join("dead-letters.jsonl");
    std::fs::write(&keys_file, text).expect("keys file");
    let (keys, skipped) = cdc2doris::backfill::keys_from_file(&keys_file).expect("keys from file");
    assert_eq!((keys.len(), skipped), (all.len(), 1));
    let third = backfill(cdc2doris::backfill::Keys::List(keys), 1000)
        .await
        .expect("backfill from a file");
    assert_eq!(third.keys, all.len() as u64, "{third:?}");
    let report = w.verify(ids.clone()).await;
    assert!(report.clean(), "{}", report.render_text());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["backfill", "--keys-query", "SELECT 'x1'", "--config"])
        .arg(&config)
        .env("CDC2DORIS_TEST_PG_PASSWORD", pg_password())
        .output()
        .expect("run cdc2doris backfill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a 64-bit integer"), "{stderr}");
    w.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// [integrity] Each test below failed on the code before its fix (see the commit that added it).

/// A label must name what a load carries, not only the offsets it covers. A topic deleted and created again starts
/// at offset 0: its first batch covers the very ranges an earlier batch covered, with other content. Doris answers
/// "label already exists" for a label built from the ranges, the pipeline takes the batch as loaded, commits its
/// offsets, and the change never reaches Doris.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recreated_topic_repeating_offset_ranges_with_other_content_still_loads() {
    let mut w = World::new("relabel", 1).await;
    // Ten distinct keys seal a batch (max_keys), so both runs load exactly `jobs` offsets 0-9 in one batch.
    let config = w.write_config("max_keys = 10");
    let jobs: Vec<jobgen::Change> = (1..=10).map(plain_job).collect();
    w.apply(&jobs).await;
    let (stop, run) = w.start(&config);
    w.converge(1..11, Duration::from_secs(30)).await;
    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;

    // The topics start over; a new consumer group reads them from the beginning.
    w.recreate_topics(1).await;
    w.group = format!("{}-2", w.group);
    let config = w.write_config("max_keys = 10");
    let closed: Vec<jobgen::Change> = (1..=10)
        .map(|id| jobgen::Change::SetStatus {
            id,
            status: "closed".into(),
        })
        .collect();
    assert_eq!(w.apply(&closed).await, 10, "ten events, offsets 0-9 again");
    let (stop, run) = w.start(&config);
    w.wait_all_committed(1).await;
    w.converge(1..11, Duration::from_secs(30)).await;
    assert!(w.doris_rows().await.iter().all(|r| r["status"] == "closed"));
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

/// A key the merge cannot take (2^70 where `merge.key_type = "integer"`) is poison: it goes to the dead-letter
/// destination with its message's offset, and the rest of its batch loads. Before, the whole batch failed as fatal
/// and every restart failed on it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_beyond_the_key_type_is_dead_lettered_and_the_batch_loads() {
    let mut w = World::new("poisonkey", 1).await;
    let config = w.write_config("");
    let jobs: Vec<jobgen::Change> = (1..=5).map(plain_job).collect();
    w.apply(&jobs).await;
    // An event about job 2^70 (no such row: the key itself is the poison).
    let (key, mut value) = {
        let ev = jobgen::RowEvent {
            table: "jobs",
            op: jobgen::RowOp::Update,
            key: serde_json::json!({"id": 1}),
            before: Some(serde_json::json!({"id": 1})),
            after: Some(serde_json::json!({"id": 1})),
            txid: 1,
        };
        jobgen::debezium::message(&w.prefix, &w.db, &ev, 0)
    };
    value = value.replace(
        "\"after\":{\"id\":1}",
        "\"after\":{\"id\":1180591620717411303424}",
    );
    assert!(value.contains("1180591620717411303424"), "{value}");
    w.produce(&w.topic("jobs"), &key, &value).await;
    w.apply(&[plain_job(6)]).await;
    let (stop, run) = w.start(&config);
    w.converge(1..7, Duration::from_secs(30)).await;
    w.wait_all_committed(1).await;
    let (dl, lines) = w.dead_letters();
    assert_eq!(lines.len(), 1, "{dl}");
    assert_eq!(lines[0]["offset"], 5, "{dl}");
    assert!(
        lines[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("1180591620717411303424")),
        "{dl}"
    );
    assert!(!run.is_finished(), "the pipeline keeps running");
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

/// A dead letter that cannot be written keeps its message unacknowledged (retried), but must not hold up a shutdown:
/// SIGTERM ends the retries, commits what was acknowledged before the message, and exits 0. Before, the retry loop
/// ignored the shutdown and the process never exited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_that_cannot_be_written_does_not_block_shutdown() {
    let mut w = World::new("dlfull", 1).await;
    let config = w.write_config("");
    let dl = w.dir.path().join("dead.jsonl");
    // Every write to /dev/full fails (ENOSPC).
    replace_in_config(&config, &dl.display().to_string(), "/dev/full");
    w.apply(&[plain_job(1)]).await;
    w.produce(&w.topic("jobs"), "{\"id\":2}", "not json").await;
    let log = w.dir.path().join("run.log");
    let mut child = spawn_binary(&config, &log);
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("cannot write the dead letter")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no dead-letter failure: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    // The batch before the poison message was flushed on the way out.
    w.converge(1..2, Duration::from_secs(10)).await;
    for (t, _, committed, end) in w.committed_vs_end(1) {
        if t == w.topic("jobs") {
            assert_eq!(
                (committed, end),
                (1, 2),
                "the poison message stays uncommitted"
            );
        }
    }
    w.cleanup().await;
}

/// An event whose transaction id PostgreSQL has not reached (an event of another server, or written by hand) must
/// not stall the pipeline waiting for it to become visible: it is counted and the batch merges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_id_from_the_future_is_not_waited_for() {
    let mut w = World::new("futurexid", 1).await;
    let config = w.write_config("");
    jobgen::apply(&mut w.pg, &plain_job(1))
        .await
        .expect("insert job 1");
    let ev = jobgen::RowEvent {
        table: "jobs",
        op: jobgen::RowOp::Insert,
        key: serde_json::json!({"id": 1}),
        before: None,
        after: Some(serde_json::json!({"id": 1})),
        txid: 1 << 40,
    };
    let (key, value) = jobgen::debezium::message(&w.prefix, &w.db, &ev, 0);
    w.produce(&w.topic("jobs"), &key, &value).await;
    // An id of this epoch that PostgreSQL has not handed out yet ("in the future").
    jobgen::apply(&mut w.pg, &plain_job(2))
        .await
        .expect("insert job 2");
    let ahead: i64 =
        w.pg.query_one(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8 + 100000",
            &[],
        )
        .await
        .expect("xmax")
        .get(0);
    let ev = jobgen::RowEvent {
        key: serde_json::json!({"id": 2}),
        after: Some(serde_json::json!({"id": 2})),
        txid: ahead,
        ..ev
    };
    let (key, value) = jobgen::debezium::message(&w.prefix, &w.db, &ev, 0);
    w.produce(&w.topic("jobs"), &key, &value).await;
    let (stop, run) = w.start(&config);
    w.converge(1..3, Duration::from_secs(30)).await;
    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

/// A merge query that fails on one key's data (a data exception, SQLSTATE class 22) must not stop the pipeline: the
/// chunk is split until that key stands alone, the key goes to the dead-letter destination with the batch's
/// offsets, and every other key loads. Before, the batch was fatal and every restart failed on it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_the_merge_query_fails_on_is_dead_lettered_and_the_rest_loads() {
    let mut w = World::new("poisonmerge", 1).await;
    let config = w.write_config("");
    // Division by zero (SQLSTATE 22012) for the job titled "boom" only (a divisor PostgreSQL cannot fold into a
    // constant when it plans the query).
    use_merge_query(&config, &w.dir.path().join("merge-boom.sql"), |merge| {
        format!("SELECT m.* FROM (\n{merge}\n) AS m WHERE 1 / (1 - (m.title = 'boom')::int) = 1\n")
    });
    let jobs: Vec<jobgen::Change> = (1..=6)
        .map(|id| {
            if id == 3 {
                job_with(id, "boom", "sales")
            } else {
                plain_job(id)
            }
        })
        .collect();
    w.apply(&jobs).await;
    let (stop, run) = w.start(&config);
    let start = Instant::now();
    loop {
        let ids: Vec<i64> = w
            .doris_rows()
            .await
            .iter()
            .filter_map(|r| r["job_id"].as_i64())
            .collect();
        if ids == vec![1, 2, 4, 5, 6] {
            break;
        }
        assert!(!run.is_finished(), "the pipeline stopped: {:?}", run.await);
        assert!(start.elapsed() < Duration::from_secs(30), "{ids:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.wait_all_committed(1).await;
    let (dl, lines) = w.dead_letters();
    assert_eq!(lines.len(), 1, "{dl}");
    assert_eq!(lines[0]["stage"], "merge", "{dl}");
    assert_eq!(lines[0]["keys"], serde_json::json!([3]), "{dl}");
    assert!(
        lines[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("22012")),
        "{dl}"
    );
    assert!(
        lines[0]["offsets"]
            .as_array()
            .is_some_and(|o| !o.is_empty()),
        "{dl}"
    );
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

/// The halves of a split batch carry labels of their own content. The interleaving: Doris rejects one row, the
/// batch is loaded in halves, the process dies (kill -9) after the first half committed and while the second is
/// loading, a key of the first half is deleted in PostgreSQL, and the restart replays the batch. Its first half now
/// holds other rows; with labels made from the offsets (plus a `b0` suffix) Doris answered "label already exists"
/// for it, so a row that had moved into it (job 6) never reached Doris. Failed on 5bf17ad.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_half_with_other_rows_is_loaded_not_taken_as_done() {
    let mut w = World::new("halves", 1).await;
    let config = w.write_config("max_keys = 10");
    // The merge query's rows in key order, so that the halves are jobs 1-5 and 6-10.
    use_merge_query(&config, &w.dir.path().join("merge-sorted.sql"), |merge| {
        format!("SELECT m.* FROM (\n{merge}\n) AS m ORDER BY m.job_id\n")
    });
    // A member killed with -9 holds its partitions until its session times out: keep that short.
    append_to_config(
        &config,
        "[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n",
    );
    // Job 7's category is longer than Doris' VARCHAR(128): Doris filters its row.
    let jobs: Vec<jobgen::Change> = (1..=10)
        .map(|id| {
            if id == 7 {
                job_with(id, "job 7", &"c".repeat(200))
            } else {
                plain_job(id)
            }
        })
        .collect();
    w.apply(&jobs).await;
    // Load 1 (the whole batch, filtered) and load 2 (rows 1-5) go through; load 3 (rows 6-10) stays RUNNING.
    w.sim
        .client()
        .queue_faults(&[
            doris_sim::FaultSpec::new(doris_sim::FaultKind::Delay).delay_ms(1),
            doris_sim::FaultSpec::new(doris_sim::FaultKind::Delay).delay_ms(1),
            doris_sim::FaultSpec::new(doris_sim::FaultKind::Delay).delay_ms(60_000),
        ])
        .await
        .expect("faults");
    let log = w.dir.path().join("run1.log");
    let mut child = spawn_binary(&config, &log);
    let start = Instant::now();
    loop {
        let ids: Vec<i64> = w
            .doris_rows()
            .await
            .iter()
            .filter_map(|r| r["job_id"].as_i64())
            .collect();
        if ids == vec![1, 2, 3, 4, 5] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the first half did not load: {ids:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&child, "-KILL");
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    w.sim.client().clear_faults().await.expect("clear faults");
    // Job 2 goes; no event tells of it, the replay's merge finds it gone.
    w.apply_pg(&[jobgen::Change::DeleteJob { id: 2 }]).await;

    let mut child = spawn_binary(&config, &w.dir.path().join("run2.log"));
    let start = Instant::now();
    loop {
        let ids: Vec<i64> = w
            .doris_rows()
            .await
            .iter()
            .filter_map(|r| r["job_id"].as_i64())
            .collect();
        if ids == vec![1, 3, 4, 5, 6, 8, 9, 10] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Doris holds {ids:?}, expected every job but 2 (deleted) and 7 (rejected)\n{}",
            std::fs::read_to_string(w.dir.path().join("run2.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    w.cleanup().await;
}

/// [integrity] A partition that goes away and comes back while the pipeline is held full (slow Doris) must resume at
/// the committed offset: messages fetched before the revoke are not processed after the re-assignment, and the first
/// offset after it is never above the committed one. Then `kill -9` and a restart: whatever was committed must have
/// been loaded, so Doris ends equal to the merge query over every key.
async fn a_partition_that_comes_back_under_load_loses_nothing(assignor: &str, name: &str) {
    let mut w = World::new(name, 2).await;
    let config = w.write_config("max_keys = 40\nmax_in_flight = 2");
    append_to_config(
        &config,
        &format!(
            "[kafka.properties]\n\"partition.assignment.strategy\" = \"{assignor}\"\n\
             \"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n"
        ),
    );
    let mut m = model();
    let seed: Vec<jobgen::Change> = (0..40).map(|_| m.new_job()).collect();
    w.apply(&seed).await;
    // Doris is slow: each load stays RUNNING for a second, so the pipeline fills and the source waits for room.
    let slow: Vec<doris_sim::FaultSpec> = (0..40)
        .map(|_| doris_sim::FaultSpec::new(doris_sim::FaultKind::Delay).delay_ms(1000))
        .collect();
    w.sim.client().queue_faults(&slow).await.expect("faults");
    let log = w.dir.path().join("run1.log");
    let mut child = spawn_binary(&config, &log);
    let part: Vec<jobgen::Change> = (0..400).map(|_| m.next_change()).collect();
    w.apply(&part).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A second member joins (taking partitions away from the first) and leaves again (giving them back), while the
    // first one's pipeline is full and changes keep coming.
    let topics: Vec<String> = TABLES.iter().map(|t| w.topic(t)).collect();
    let group = w.group.clone();
    let assignor_owned = assignor.to_string();
    let member = tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", &assignor_owned)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .create()
            .expect("second member");
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        c.subscribe(&names).expect("subscribe");
        let start = Instant::now();
        let mut got = 0usize;
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
                got += 1;
            }
        }
        let had = c.assignment().map(|a| a.count()).unwrap_or(0);
        c.unsubscribe();
        drop(c);
        (got, had)
    });
    let more: Vec<jobgen::Change> = (0..300).map(|_| m.next_change()).collect();
    w.apply(&more).await;
    let (read, had) = member.await.expect("member");
    assert!(
        had > 0,
        "the second member never got a partition (read {read})"
    );
    // The partitions come back to the first member; it keeps loading slowly. Then kill -9 while loads run.
    let more: Vec<jobgen::Change> = (0..300).map(|_| m.next_change()).collect();
    w.apply(&more).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    signal(&child, "-KILL");
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    let log1 = std::fs::read_to_string(&log).unwrap_or_default();
    w.sim.client().clear_faults().await.expect("clear faults");

    // The restart resumes from the committed offsets: everything converges and ends committed.
    let log2 = w.dir.path().join("run2.log");
    let mut child = spawn_binary(&config, &log2);
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        w.converge(m.all_job_ids(), Duration::from_secs(110)),
    )
    .await;
    if report.is_err() {
        signal(&child, "-KILL");
        panic!(
            "no convergence\n--- run 1 ---\n{log1}\n--- run 2 ---\n{}",
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
    }
    w.wait_all_committed(2).await;
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(40));
    assert!(status.success(), "{status:?}");
    // The first member lost partitions and got them back before the kill.
    assert!(
        log1.contains("partitions revoked") && log1.matches("partitions assigned").count() >= 2,
        "run 1 saw no revoke and re-assignment:\n{log1}"
    );
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_that_comes_back_under_load_loses_nothing_eager() {
    a_partition_that_comes_back_under_load_loses_nothing("range", "back_eager").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_that_comes_back_under_load_loses_nothing_cooperative() {
    a_partition_that_comes_back_under_load_loses_nothing("cooperative-sticky", "back_coop").await;
}

/// [integrity] With several hosts in `postgres.url`, the pool may land on a hot standby after a failover or a
/// reconnect. Its snapshots list no running transactions and its data may lag: a merge there can load an old row
/// and commit the offset of the change that made it old. The worker must refuse a server in recovery (log it, turn
/// `/readyz` red, retry) and merge only on the primary. Here the standby is the first host, its replay is paused (its
/// data lags), and the pool's connections are cut after a change: before, the change was merged on the standby,
/// loaded stale and committed, so Doris stayed stale after the standby went away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_reached_through_a_multi_host_url_is_never_merged_from() {
    use common::standby::{free_port, Standby};
    let mut w = World::new("failover", 1).await;
    let config = w.write_config("");
    let standby_port = free_port();
    let primary_url = pg_url(&w.db);
    let hosts = reqwest::Url::parse(&primary_url).expect("url");
    let primary_at = format!(
        "{}:{}",
        hosts.host_str().unwrap_or("127.0.0.1"),
        hosts.port().unwrap_or(5432)
    );
    replace_in_config(
        &config,
        &format!("@{primary_at}/"),
        &format!("@127.0.0.1:{standby_port},{primary_at}/"),
    );
    let jobs: Vec<jobgen::Change> = (1..=5).map(plain_job).collect();
    w.apply(&jobs).await;
    let log = w.dir.path().join("run.log");
    let mut child = spawn_binary(&config, &log);
    w.converge(1..6, Duration::from_secs(60)).await;

    // The first host comes up as a standby whose replay stands still.
    let standby = Standby::start(&pg_url("postgres"), &pg_password(), Some(standby_port)).await;
    let (replica, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(standby_port)
        .user(hosts.username())
        .password(pg_password())
        .dbname(&w.db)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the standby");
    tokio::spawn(conn);
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .expect("pause replay");
    // The pool's connections to the primary go; the next ones reach the standby first.
    w.pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend' AND application_name NOT LIKE 'pg_basebackup%'",
        &[&w.db],
    )
    .await
    .expect("terminate the service's connections");
    w.apply(&[jobgen::Change::SetStatus {
        id: 3,
        status: "closed".into(),
    }])
    .await;
    // Time for the change to be consumed and merged (on the standby, before).
    tokio::time::sleep(Duration::from_secs(8)).await;
    // The standby goes away (immediate stop): the pool reaches the primary again, and the change arrives.
    drop(replica);
    drop(standby);
    w.converge(1..6, Duration::from_secs(60)).await;
    let row = w
        .doris_rows()
        .await
        .into_iter()
        .find(|r| r["job_id"].as_i64() == Some(3))
        .expect("job 3");
    assert_eq!(row["status"], "closed", "{row:?}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("PostgreSQL is in recovery"),
        "the service never met the standby:\n{text}"
    );
    // A log written to a file (not a terminal) carries no terminal colour codes.
    assert!(
        !text.contains('\u{1b}'),
        "the log file holds ANSI escape codes:\n{text}"
    );
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(40));
    assert!(status.success(), "{status:?}");
    w.cleanup().await;
}

/// [integrity] A resolve query that fails on one value's data (SQLSTATE class 22: here a division by zero for client
/// 7) must not stop the pipeline: the values are split until the failing one stands alone, it goes to the
/// dead-letter destination with the batch's offsets, and the other values' keys are refreshed. Before, the batch was
/// fatal, the pipeline stopped, and every restart hit the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_the_resolve_query_fails_on_is_dead_lettered_and_the_rest_loads() {
    let mut w = World::new("poisonresolve", 1).await;
    let config = w.write_config("");
    replace_in_config(
        &config,
        "SELECT id FROM jobs WHERE client_id = ANY($1)",
        "SELECT id FROM jobs WHERE client_id = ANY($1) AND 1 / (client_id - 7) IS NOT NULL",
    );
    let mut jobs: Vec<jobgen::Change> = Vec::new();
    for (id, client_id) in [(1, 1), (2, 2), (3, 7), (4, 3)] {
        jobs.push(jobgen::Change::NewJob {
            id,
            client_id,
            title: format!("job {id}"),
            category: "sales".into(),
            location: "Remote".into(),
            salary_min: 1000,
            salary_max: 2000,
        });
    }
    w.apply(&jobs).await;
    let (stop, run) = w.start(&config);
    w.converge(1..5, Duration::from_secs(30)).await;
    // Clients 2, 7 and 3 are excluded in one transaction each; their events form one batch.
    let excluded: Vec<jobgen::Change> = [2, 7, 3]
        .into_iter()
        .map(|client_id| jobgen::Change::ExcludeClient {
            client_id,
            reason: "test".into(),
        })
        .collect();
    w.apply(&excluded).await;
    // Jobs 2 and 4 are refreshed (their clients are excluded now); job 3 of client 7 cannot be resolved, so its row
    // stays as it was: verify the others only.
    let start = Instant::now();
    loop {
        let r = w.verify(1..5).await;
        let others_drifted = r.examples.iter().any(|e| e.key != "3");
        if !others_drifted && r.counts.missing == 0 && r.counts.extra == 0 {
            break;
        }
        assert!(
            !run.is_finished(),
            "the pipeline stopped: {:?}",
            run.await.map(|r| r.map_err(|e| e.to_string()))
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no convergence: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.wait_all_committed(1).await;
    let (dl, lines) = w.dead_letters();
    assert_eq!(lines.len(), 1, "{dl}");
    assert_eq!(lines[0]["stage"], "resolve", "{dl}");
    assert_eq!(lines[0]["keys"], serde_json::json!([7]), "{dl}");
    assert!(
        lines[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("division by zero")),
        "{dl}"
    );
    assert!(!run.is_finished(), "the pipeline keeps running");
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

/// A poison message too large for the dead-letter topic (the topic's `max.message.bytes`, or the producer's
/// `message.max.bytes`) goes there without its value, `cdc2doris.value_dropped` saying so, and its offset is
/// committed. It was retried for ever before: the pipeline stopped for good (seen while dev/chaos got its 5 MiB poison).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_too_large_for_the_dead_letter_topic_goes_there_without_its_value() {
    use rdkafka::message::{Headers, Message};
    let mut w = World::new("dlqbig", 1).await;
    let config = w.write_config("");
    let dlq = format!("{}.dead-letters", w.prefix);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    for r in
        admin
            .create_topics(
                &[NewTopic::new(&dlq, 1, TopicReplication::Fixed(1))
                    .set("max.message.bytes", "20000")],
                &AdminOptions::new(),
            )
            .await
            .expect("create topic")
    {
        r.expect("topic");
    }
    let dl_path = w.dir.path().join("dead.jsonl");
    replace_in_config(
        &config,
        &format!("path = \"{}\"", dl_path.display()),
        &format!("topic = \"{dlq}\""),
    );
    w.apply(&[plain_job(1)]).await;
    let big = format!("{{not json {}", "x".repeat(100_000));
    w.produce(&w.topic("jobs"), "{\"id\":2}", &big).await;
    w.apply(&[plain_job(3)]).await;
    let (stop, run) = w.start(&config);
    w.converge(1..4, Duration::from_secs(60)).await;
    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;

    let m = first_dead_letter(&w, &dlq);
    assert_eq!(m.payload(), None, "the value is left out");
    assert_eq!(m.key(), Some(&b"{\"id\":2}"[..]));
    let headers: BTreeMap<String, String> = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(headers.get("cdc2doris.topic"), Some(&w.topic("jobs")));
    assert_eq!(
        headers.get("cdc2doris.offset").map(String::as_str),
        Some("1")
    );
    assert!(
        headers
            .get("cdc2doris.value_dropped")
            .is_some_and(|v| v.contains(&format!("{} bytes", big.len()))),
        "{headers:?}"
    );
    w.cleanup().await;
}

/// A dead-letter Kafka topic (`dead_letter.topic`) on the source's cluster: the poison message arrives there as it
/// was read (key and value untouched), with its context in the `cdc2doris.*` headers, and its offset is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_goes_to_the_dead_letter_topic_raw_with_its_context_in_headers() {
    use rdkafka::message::{Headers, Message};
    let mut w = World::new("dlqtopic", 1).await;
    let config = w.write_config("");
    let dlq = format!("{}.dead-letters", w.prefix);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin");
    for r in admin
        .create_topics(
            &[NewTopic::new(&dlq, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic")
    {
        r.expect("topic");
    }
    let dl_path = w.dir.path().join("dead.jsonl");
    replace_in_config(
        &config,
        &format!("path = \"{}\"", dl_path.display()),
        &format!("topic = \"{dlq}\""),
    );
    w.apply(&[plain_job(1)]).await;
    w.produce(&w.topic("jobs"), "{\"id\":2}", "{not json").await;
    w.apply(&[plain_job(3)]).await;
    let (stop, run) = w.start(&config);
    w.converge(1..4, Duration::from_secs(30)).await;
    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;

    let m = first_dead_letter(&w, &dlq);
    assert_eq!(m.payload(), Some(&b"{not json"[..]));
    assert_eq!(m.key(), Some(&b"{\"id\":2}"[..]));
    let headers: BTreeMap<String, String> = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        headers.get("cdc2doris.topic"),
        Some(&w.topic("jobs")),
        "{headers:?}"
    );
    assert_eq!(
        headers.get("cdc2doris.partition").map(String::as_str),
        Some("0")
    );
    assert_eq!(
        headers.get("cdc2doris.offset").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        headers.get("cdc2doris.stage").map(String::as_str),
        Some("decode")
    );
    assert!(
        headers
            .get("cdc2doris.error")
            .is_some_and(|e| !e.is_empty()),
        "{headers:?}"
    );
    w.cleanup().await;
}

/// A quiet stream is loaded as soon as the pipeline has caught up with Kafka, not after `max_wait`: with `max_wait`
/// at a minute, each of three single changes reaches Doris within the convergence bound (far below the minute), and
/// every batch was sealed because the source was idle, none because it reached `max_wait`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quiet_stream_is_loaded_when_caught_up_not_after_max_wait() {
    let mut w = World::new("quiet", 1).await;
    let config = w.write_config("");
    replace_in_config(&config, "max_wait = \"300ms\"", "max_wait = \"60s\"");
    let (stop, run) = w.start(&config);
    let mut m = model();
    for round in 1..=3u64 {
        let job = m.new_job();
        w.apply(&[job]).await;
        w.converge(m.all_job_ids(), Duration::from_secs(20)).await;
        // /debug/state is refreshed every 100 ms: it may lag the load that was just seen.
        let start = Instant::now();
        let state = loop {
            let state = w.debug_state().await;
            let idle = state["totals"]["sealed"]["idle"].as_u64().unwrap_or(0);
            if idle >= round || start.elapsed() > Duration::from_secs(5) {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let sealed = &state["totals"]["sealed"];
        assert!(
            sealed["idle"].as_u64().unwrap_or(0) >= round,
            "round {round}: the batch must be sealed as idle: {state}"
        );
        assert_eq!(sealed["max_wait"], 0, "round {round}: {state}");
    }
    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;
    w.assert_all_committed(1, "every quiet batch was acknowledged");
    w.cleanup().await;
}

/// A backlog is read as one de-duplication window: written before the pipeline starts, thousands of events over a
/// few hundred jobs are refreshed about once per job, in a few large batches, although `max_bytes` alone would close
/// a batch every ~30 messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_refreshes_each_key_about_once_in_few_large_batches() {
    const JOBS: i64 = 400;
    const ROUNDS: i64 = 4;
    let mut w = World::new("window", 1).await;
    let config = w.write_config("max_keys = 1000\nmax_bytes = 16384\nbacklog_max_keys = 5000");
    let mut m = model();
    let jobs: Vec<jobgen::Change> = (0..JOBS).map(|_| m.new_job()).collect();
    let mut events = w.apply(&jobs).await;
    let activity: Vec<jobgen::Change> = (0..ROUNDS)
        .flat_map(|round| {
            (1..=JOBS).map(move |job_id| jobgen::Change::Activity {
                first_id: 2_000_000 + (round * JOBS + job_id) * 4,
                job_id,
                types: vec!["view".into(); 4],
            })
        })
        .collect();
    events += w.apply(&activity).await;
    assert!(events as i64 >= JOBS + ROUNDS * JOBS * 4, "{events}");
    let (stop, run) = w.start(&config);
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    w.wait_all_committed(1).await;
    let state = w.debug_state().await;
    let totals = &state["totals"];
    let refreshed = totals["keys_refreshed"].as_u64().unwrap_or(u64::MAX);
    assert!(
        refreshed as i64 <= JOBS * 3 / 2,
        "{events} events over {JOBS} jobs must refresh at most 1.5 × {JOBS} keys, refreshed {refreshed}: {state}"
    );
    let sealed = &totals["sealed"];
    let batches: u64 = ["idle", "keys", "bytes", "max_wait", "other"]
        .iter()
        .map(|r| sealed[r].as_u64().unwrap_or(0))
        .sum();
    assert!(
        batches > 0 && (batches as i64) < events as i64 / JOBS,
        "fewer batches than events per key ({}), got {batches}: {state}",
        events as i64 / JOBS
    );
    assert!(
        sealed["behind"].as_u64().unwrap_or(0) >= 1,
        "the backlog is seen as such: {state}"
    );
    stop_gracefully(stop, run).await;
    w.cleanup().await;
}

/// A batch's rows go to Doris in loads of about `max_load_bytes`, read and loaded one after the other, never as one
/// body: with `max_load_bytes` at 4 KiB and 5-key merge chunks, 300 jobs arrive in many loads, none larger than 4 KiB
/// plus one chunk, and every row is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_is_loaded_in_loads_of_max_load_bytes() {
    const JOBS: usize = 300;
    const MAX_LOAD: u64 = 4096;
    let mut w = World::new("loadsize", 1).await;
    let config = w.write_config(&format!("max_load_bytes = {MAX_LOAD}"));
    replace_in_config(&config, "chunk_size = 500", "chunk_size = 5");
    let mut m = model();
    let jobs: Vec<jobgen::Change> = (0..JOBS).map(|_| m.new_job()).collect();
    w.apply(&jobs).await;
    let (stop, run) = w.start(&config);
    w.converge(m.all_job_ids(), Duration::from_secs(90)).await;
    w.wait_all_committed(1).await;
    stop_gracefully(stop, run).await;
    let stats = w.sim.client().stats().await.expect("doris-sim stats");
    let table = stats["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "merged_job_data"))
        .unwrap_or_else(|| panic!("no merged_job_data in {stats}"))
        .clone();
    let (loads, bytes, largest) = (
        table["loads"].as_u64().unwrap_or(0),
        table["load_bytes"].as_u64().unwrap_or(0),
        table["largest_load_bytes"].as_u64().unwrap_or(u64::MAX),
    );
    // A row of the merged table is well under 2 KiB, so a chunk of 5 keys under 10 KiB.
    let bound = MAX_LOAD + 5 * 2048;
    assert!(
        bytes > 4 * bound,
        "{JOBS} jobs make more than a few loads' worth: {table}"
    );
    assert!(
        largest <= bound,
        "no load above max_load_bytes plus one chunk ({bound} bytes): {table}"
    );
    assert!(
        loads >= bytes / bound,
        "{bytes} bytes in loads of at most {bound} bytes: {table}"
    );
    w.cleanup().await;
}

/// The first record of the dead-letter topic `dlq`, read by a group of its own; fails the test after 30 s without one.
fn first_dead_letter(w: &World, dlq: &str) -> rdkafka::message::OwnedMessage {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("{}-reader", w.group))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&[dlq]).expect("subscribe");
    let start = Instant::now();
    loop {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            return m.detach();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "nothing on the dead-letter topic"
        );
    }
}
