//! The Kafka source against the real broker of `dev/stack up`: delivery in order, pause/resume
//! under backpressure, commits of the next offset, and the revoke handshake.

use std::time::Duration;

use cdc2doris::offsets::TopicPartition;
use cdc2doris::source::kafka::{owned_properties, KafkaSource, SourceEvent, SourceSettings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn bootstrap() -> String {
    std::env::var("CDC2DORIS_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client");
    let res = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach Kafka at {} ({e}); run `dev/stack up` first",
                bootstrap()
            )
        });
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

async fn produce(topic: &str, partition: i32, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("producer");
    for i in 0..count {
        let payload = format!("{{\"p\":{partition},\"i\":{i}}}");
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key(&key)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    }
}

fn consumer_config(group: &str) -> ClientConfig {
    consumer_config_with(group, "cooperative-sticky")
}

fn consumer_config_with(group: &str, assignor: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in owned_properties(group, &bootstrap()) {
        c.set(k, v);
    }
    c.set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", assignor)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    c
}

fn committed(group: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    let c: BaseConsumer = consumer_config(group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements().iter().map(|e| e.offset()).collect()
}

/// The next event other than `Idle` (which says when the source caught up, at moments the tests do not depend on).
async fn next_event(rx: &mut mpsc::Receiver<SourceEvent>) -> SourceEvent {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("no event from the source within 30 s")
            .expect("source channel closed")
        {
            SourceEvent::Idle => {}
            e => return e,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_order_pauses_when_full_and_commits_the_next_offset() {
    let topic = unique("src-order");
    let group = unique("g");
    create_topic(&topic, 2).await;
    produce(&topic, 0, 30).await;
    produce(&topic, 1, 5).await;

    let (tx, mut rx) = mpsc::channel(4);
    let settings = SourceSettings {
        topics: vec![topic.clone()],
        revoke_timeout: Duration::from_secs(10),
        channel_capacity: 4,
    };
    let source = KafkaSource::start(&consumer_config(&group), settings, tx).expect("start");
    match next_event(&mut rx).await {
        SourceEvent::Assigned(mut parts) => {
            parts.sort();
            // A new group: no committed offset yet.
            assert_eq!(parts, vec![(tp(&topic, 0), None), (tp(&topic, 1), None)]);
        }
        other => panic!("expected Assigned, got {other:?}"),
    }
    // Let the channel fill up so the thread has to pause.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut next = [0i64, 0i64];
    let mut received = 0;
    while received < 35 {
        match next_event(&mut rx).await {
            SourceEvent::Message(m) => {
                assert_eq!(&*m.topic, topic.as_str());
                let p = m.partition as usize;
                assert_eq!(m.offset, next[p], "partition {p} out of order");
                assert_eq!(m.key.as_deref(), Some(format!("k{}", m.offset).as_bytes()));
                next[p] += 1;
                received += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(next, [30, 5]);
    assert!(
        source
            .stats()
            .pauses
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "a full channel must pause"
    );

    source.commit(vec![(tp(&topic, 0), 30), (tp(&topic, 1), 3)]);
    drop(rx);
    source.stop().await;
    assert_eq!(
        committed(&group, &topic, 2),
        vec![Offset::Offset(30), Offset::Offset(3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_waits_for_the_pipeline_and_commits_its_answer() {
    let topic = unique("src-revoke");
    let group = unique("g");
    create_topic(&topic, 2).await;
    produce(&topic, 0, 3).await;
    produce(&topic, 1, 3).await;
    let settings = SourceSettings {
        topics: vec![topic.clone()],
        revoke_timeout: Duration::from_secs(20),
        channel_capacity: 64,
    };

    let (tx_a, mut rx_a) = mpsc::channel(64);
    let a = KafkaSource::start(&consumer_config(&group), settings.clone(), tx_a).expect("start a");
    let mut seen = 0;
    while seen < 7 {
        match next_event(&mut rx_a).await {
            SourceEvent::Assigned(parts) => assert_eq!(parts.len(), 2),
            SourceEvent::Message(_) => seen += 1,
            other => panic!("unexpected {other:?}"),
        }
        if seen == 6 {
            break;
        }
    }

    // A second member joins: cooperative-sticky takes one partition away from the first.
    let (tx_b, mut rx_b) = mpsc::channel(64);
    let b = KafkaSource::start(&consumer_config(&group), settings, tx_b).expect("start b");
    let revoked = loop {
        match next_event(&mut rx_a).await {
            SourceEvent::Revoked {
                partitions,
                lost,
                reply,
            } => {
                assert!(!lost);
                assert_eq!(partitions.len(), 1);
                let revoked = partitions[0].clone();
                // The pipeline answers after "its batches were acknowledged": commit offset 2.
                tokio::time::sleep(Duration::from_millis(300)).await;
                reply.send(vec![(revoked.clone(), 2)]).expect("reply");
                break revoked.partition;
            }
            SourceEvent::Message(_) | SourceEvent::Assigned(_) | SourceEvent::Idle => {}
        }
    };
    let moved = loop {
        match next_event(&mut rx_b).await {
            SourceEvent::Assigned(parts) => break parts,
            SourceEvent::Message(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    // The new owner hears where reading resumes: the offset committed on revoke.
    assert_eq!(moved, vec![(tp(&topic, revoked), Some(2))]);
    // The new owner starts from the offset committed on revoke.
    match next_event(&mut rx_b).await {
        SourceEvent::Message(m) => assert_eq!((m.partition, m.offset), (revoked, 2)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        committed(&group, &topic, 2)[revoked as usize],
        Offset::Offset(2)
    );
    drop(rx_a);
    drop(rx_b);
    a.stop().await;
    b.stop().await;
}

/// [integrity] Messages the poll thread read before a revoke but had not handed over yet (the pipeline was full) must
/// not come out after the partition is assigned again: the pipeline would take the first of them as the start of the
/// new assignment, drop the re-read earlier messages as "not increasing", and commit past them. After a revoke, the
/// first message of the partition is the one at the committed offset, announced after the assignment with that
/// offset. Eager (range) and cooperative assignors both.
async fn stale_prefetch_is_dropped_when_a_partition_comes_back(assignor: &str, partitions: i32) {
    let topic = unique("src-stale");
    let group = unique("g");
    create_topic(&topic, partitions).await;
    for p in 0..partitions {
        produce(&topic, p, 200).await;
    }
    let settings = SourceSettings {
        topics: vec![topic.clone()],
        revoke_timeout: Duration::from_secs(20),
        channel_capacity: 4,
    };
    // A tiny channel: most of what the thread fetches waits in its pending queue.
    let (tx_a, mut rx_a) = mpsc::channel(4);
    let a = KafkaSource::start(
        &consumer_config_with(&group, assignor),
        settings.clone(),
        tx_a,
    )
    .expect("start a");
    let mut next_seen = vec![0i64; partitions as usize];
    let mut assigned = false;
    while next_seen.iter().sum::<i64>() < 6 {
        match next_event(&mut rx_a).await {
            SourceEvent::Assigned(_) => assigned = true,
            SourceEvent::Message(m) => next_seen[m.partition as usize] = m.offset + 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(assigned);
    // Let the thread fill its pending queue.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A second member joins; whatever A loses, it "acknowledged" only offset 1 of it.
    let (tx_b, mut rx_b) = mpsc::channel(1024);
    let b = KafkaSource::start(&consumer_config_with(&group, assignor), settings, tx_b)
        .expect("start b");
    let mut revoked_all: Vec<TopicPartition> = Vec::new();
    let b_reader = tokio::spawn(async move {
        // B reads what it gets and never commits; its channel closes when the test drops it.
        while let Some(e) = rx_b.recv().await {
            if let SourceEvent::Revoked { reply, .. } = e {
                let _ = reply.send(Vec::new());
            }
        }
    });
    // Until the group settles: a cooperative assignor revokes what moves and assigns nothing new to A; an eager one
    // revokes everything and assigns A its share again.
    let mut kept: Vec<TopicPartition> = Vec::new();
    let mut resumed: std::collections::HashSet<TopicPartition> = Default::default();
    // Read nothing for a while: the revoke comes while A's pipeline is full, so A's poll thread still holds a message
    // it fetched before (its hand-over waits for room) when the revoke callback runs.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let start = std::time::Instant::now();
    loop {
        let wait = if revoked_all.is_empty() {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(5)
        };
        let Ok(event) = tokio::time::timeout(wait, rx_a.recv()).await else {
            break;
        };
        match event.expect("source channel closed") {
            SourceEvent::Revoked {
                partitions, reply, ..
            } => {
                reply
                    .send(partitions.iter().map(|p| (p.clone(), 1)).collect())
                    .expect("reply");
                kept.retain(|p| !partitions.contains(p));
                revoked_all.extend(partitions);
            }
            SourceEvent::Assigned(parts) => {
                for (p, at) in &parts {
                    if revoked_all.contains(p) {
                        assert_eq!(*at, Some(1), "{parts:?}");
                        resumed.remove(p);
                    }
                    kept.push(p.clone());
                }
            }
            SourceEvent::Idle => {}
            SourceEvent::Message(m) => {
                let p = tp(&m.topic, m.partition);
                assert!(
                    !revoked_all.contains(&p) || kept.contains(&p),
                    "a message of {p} read before its revoke came out after it (offset {})",
                    m.offset
                );
                // A partition given back at once (eager) resumes at the committed offset.
                if revoked_all.contains(&p) && resumed.insert(p.clone()) {
                    assert_eq!(
                        m.offset, 1,
                        "{p} given back: reading resumes at the committed offset, not at a message fetched before the revoke"
                    );
                }
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no rebalance");
    }
    assert!(!revoked_all.is_empty(), "B's arrival revoked nothing");
    // B leaves: A gets the partitions back and must resume at the committed offset 1.
    b.stop().await;
    let _ = b_reader.await;
    let lost: Vec<TopicPartition> = {
        let mut l: Vec<TopicPartition> = revoked_all
            .iter()
            .filter(|p| !kept.contains(p))
            .cloned()
            .collect();
        l.sort();
        l.dedup();
        l
    };
    if lost.is_empty() {
        // Every revoked partition came straight back to A (checked above).
        drop(rx_a);
        a.stop().await;
        return;
    }
    let mut first_after: std::collections::HashMap<TopicPartition, i64> = Default::default();
    let mut reassigned = false;
    let start = std::time::Instant::now();
    while first_after.len() < lost.len() {
        match next_event(&mut rx_a).await {
            SourceEvent::Assigned(parts) => {
                for (p, at) in &parts {
                    if lost.contains(p) {
                        assert_eq!(*at, Some(1), "{parts:?}");
                        reassigned = true;
                    }
                }
            }
            SourceEvent::Revoked {
                partitions, reply, ..
            } => {
                let _ = reply.send(Vec::new());
                let _ = partitions;
            }
            SourceEvent::Idle => {}
            SourceEvent::Message(m) => {
                let p = tp(&m.topic, m.partition);
                if lost.contains(&p) {
                    assert!(
                        reassigned,
                        "a message of {p} came before its re-assignment (offset {})",
                        m.offset
                    );
                    first_after.entry(p).or_insert(m.offset);
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "partitions not back: {first_after:?}"
        );
    }
    for (p, first) in &first_after {
        assert_eq!(
            *first, 1,
            "{p}: reading resumes at the committed offset, not at a message fetched before the revoke"
        );
    }
    drop(rx_a);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_prefetch_is_dropped_on_revoke_cooperative() {
    // Which partition moves is the assignor's choice: the message waiting in A's queue belongs to the moved one in
    // about half of the runs.
    stale_prefetch_is_dropped_when_a_partition_comes_back("cooperative-sticky", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_prefetch_is_dropped_on_revoke_eager() {
    // One partition: an eager rebalance revokes it, and either gives it straight back to A (which must resume at the
    // committed offset) or to B (then A must never see its stale message, and gets it back when B leaves).
    stale_prefetch_is_dropped_when_a_partition_comes_back("range", 1).await;
}

/// [integrity] A revoke while the pipeline reads nothing (its channel full: a Doris outage holds every batch) must
/// not hold the poll thread, hence the whole group, for longer than `revoke_timeout`: the partitions are released
/// uncommitted, and the pipeline hears of the revoke later, in order, as lost. Before, the hand-over waited for room
/// as long as the pipeline read nothing, and the new member got nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_the_pipeline_cannot_hear_is_bounded_by_the_revoke_timeout() {
    let topic = unique("src-bounded");
    let group = unique("g");
    create_topic(&topic, 2).await;
    produce(&topic, 0, 50).await;
    produce(&topic, 1, 50).await;
    let settings = SourceSettings {
        topics: vec![topic.clone()],
        revoke_timeout: Duration::from_secs(3),
        channel_capacity: 1,
    };
    let (tx_a, mut rx_a) = mpsc::channel(1);
    let a = KafkaSource::start(&consumer_config(&group), settings.clone(), tx_a).expect("start a");
    match next_event(&mut rx_a).await {
        SourceEvent::Assigned(parts) => assert_eq!(parts.len(), 2),
        other => panic!("expected Assigned, got {other:?}"),
    }
    // From here on A's pipeline reads nothing: its channel fills with one message.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (tx_b, mut rx_b) = mpsc::channel(1024);
    let b = KafkaSource::start(&consumer_config(&group), settings, tx_b).expect("start b");
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx_b.recv().await {
                Some(SourceEvent::Assigned(parts)) => break parts,
                Some(SourceEvent::Revoked { reply, .. }) => {
                    let _ = reply.send(Vec::new());
                }
                Some(SourceEvent::Idle) => {}
                Some(SourceEvent::Message(_)) => {}
                None => panic!("b's source stopped"),
            }
        }
    })
    .await
    .expect("the new member got partitions while the old one's pipeline stayed full");
    assert_eq!(got.len(), 1, "{got:?}");
    let moved = got[0].0.clone();

    // A's pipeline reads again: it hears that the partition is gone, and never sees a message of it after that.
    let mut gone = false;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) || !gone {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "A never heard of the revoke"
        );
        let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), rx_a.recv()).await
        else {
            continue;
        };
        match e {
            SourceEvent::Revoked {
                partitions,
                lost,
                reply,
            } => {
                if partitions.contains(&moved) {
                    assert!(
                        lost,
                        "a revoke heard after its timeout is lost: nothing to commit"
                    );
                    gone = true;
                }
                let _ = reply.send(Vec::new());
            }
            SourceEvent::Idle => {}
            SourceEvent::Message(m) => assert!(
                !(gone && tp(&m.topic, m.partition) == moved),
                "a message of {moved} after its revoke (offset {})",
                m.offset
            ),
            SourceEvent::Assigned(_) => {}
        }
    }
    drop(rx_a);
    drop(rx_b);
    a.stop().await;
    b.stop().await;
}

/// Waits until the other member reports holding `want` partitions.
async fn wait_holds(want: usize, held: &mut mpsc::UnboundedReceiver<usize>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, held.recv()).await {
            Ok(Some(n)) if n == want => return,
            Ok(Some(_)) => {}
            _ => panic!("the other member never held {want} partition(s)"),
        }
    }
}

/// Writes `count` messages to each partition of `topic`, all in flight at once.
async fn produce_many(topic: &str, partitions: i32, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let payload = "x".repeat(200);
    let mut pending = Vec::new();
    for p in 0..partitions {
        for i in 0..count {
            let key = format!("k{i}");
            pending.push(
                producer
                    .send_result(
                        FutureRecord::to(topic)
                            .partition(p)
                            .key(&key)
                            .payload(&payload),
                    )
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
    }
    for d in pending {
        d.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
}

/// [integrity] While the pipeline has no room, the source pauses its partitions and what it fetched waits. A
/// partition assigned during the pause (another member leaves: scale-in during a Doris outage) must be paused too:
/// otherwise it is fetched from its committed offset to its end into the waiting queue, and memory grows with the
/// backlog. Before, the pause was applied only to the assignment of the moment it was taken. (librdkafka keeps the
/// pause of a partition this member paused itself across a rebalance; the partition here was never paused by it.)
async fn what_waits_for_the_pipeline_stays_bounded_across_a_rebalance(assignor: &str) {
    const PER_PARTITION: usize = 20_000;
    let topic = unique("src-paused");
    let group = unique("g");
    create_topic(&topic, 2).await;
    produce_many(&topic, 2, PER_PARTITION).await;
    let settings = SourceSettings {
        topics: vec![topic.clone()],
        revoke_timeout: Duration::from_secs(2),
        channel_capacity: 4,
    };
    // B comes first and reads whatever it gets; it never commits.
    let (tx_b, mut rx_b) = mpsc::channel(1024);
    let b = KafkaSource::start(
        &consumer_config_with(&group, assignor),
        settings.clone(),
        tx_b,
    )
    .expect("start b");
    let (b_parts_tx, mut b_parts) = mpsc::unbounded_channel::<usize>();
    let b_reader = tokio::spawn(async move {
        let mut held = std::collections::HashSet::new();
        while let Some(e) = rx_b.recv().await {
            match e {
                SourceEvent::Assigned(parts) => {
                    held.extend(parts.into_iter().map(|(p, _)| p));
                    let _ = b_parts_tx.send(held.len());
                }
                SourceEvent::Revoked {
                    partitions, reply, ..
                } => {
                    held.retain(|p| !partitions.contains(p));
                    let _ = b_parts_tx.send(held.len());
                    let _ = reply.send(Vec::new());
                }
                SourceEvent::Idle => {}
                SourceEvent::Message(_) => {}
            }
        }
    });
    wait_holds(2, &mut b_parts).await;
    // A joins and gets one partition; its pipeline never reads, so its channel fills and it pauses.
    let (tx_a, rx_a) = mpsc::channel(4);
    let a = KafkaSource::start(&consumer_config_with(&group, assignor), settings, tx_a)
        .expect("start a");
    let stats = a.stats();
    wait_holds(1, &mut b_parts).await;
    let start = std::time::Instant::now();
    while stats.pauses.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the source never paused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // B leaves: its partition goes to A, paused.
    b.stop().await;
    let _ = b_reader.await;
    // Let the group settle and A get B's partition; then what waits for A's pipeline must not grow. (The polling
    // thread waits a second for room before each new message it takes in, so an unpaused partition adds about one
    // event per second: an outage of hours would fill memory.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    let settled = stats.waiting.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let later = stats.waiting.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        later <= settled + 1,
        "what waits for the pipeline grew from {settled} to {later} in 10 s: the partition assigned during the pause is being fetched"
    );
    // Leaving the group with paused partitions must not hang (librdkafka's destroy waited forever for a broker
    // thread before the source resumed them on the way out).
    drop(rx_a);
    tokio::time::timeout(Duration::from_secs(30), a.stop())
        .await
        .expect("a paused source stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_waits_for_the_pipeline_stays_bounded_across_a_rebalance_eager() {
    what_waits_for_the_pipeline_stays_bounded_across_a_rebalance("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_waits_for_the_pipeline_stays_bounded_across_a_rebalance_cooperative() {
    what_waits_for_the_pipeline_stays_bounded_across_a_rebalance("cooperative-sticky").await;
}

/// An asynchronous commit must come back to the pipeline as confirmed. librdkafka reports the outcome of a manual
/// asynchronous commit only to an `offset_commit_cb`, which rust-rdkafka's event API never sets: before the fix no
/// answer ever came, so `/debug/state` never showed a commit, and a commit Kafka refused (during a rebalance) was
/// never asked for again on an idle partition, whose lag then stayed above 0 for good (found by `dev/chaos`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asynchronous_commit_is_confirmed_to_the_pipeline() {
    let topic = unique("src-confirm");
    let group = unique("g");
    create_topic(&topic, 1).await;
    produce(&topic, 0, 3).await;

    let (tx, mut rx) = mpsc::channel(16);
    let settings = SourceSettings {
        topics: vec![topic.clone()],
        revoke_timeout: Duration::from_secs(10),
        channel_capacity: 16,
    };
    let mut config = consumer_config(&group);
    config.set("statistics.interval.ms", "500");
    let mut source = KafkaSource::start(&config, settings, tx).expect("start");
    let mut results = source.take_commit_results().expect("the commit results");
    assert!(matches!(
        next_event(&mut rx).await,
        SourceEvent::Assigned(_)
    ));
    let mut received = 0;
    while received < 3 {
        if let SourceEvent::Message(_) = next_event(&mut rx).await {
            received += 1;
        }
    }
    source.commit(vec![(tp(&topic, 0), 3)]);
    let confirmed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(r) = results.recv().await {
            if r.ok && r.offsets.contains(&(tp(&topic, 0), 3)) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        confirmed,
        Ok(true),
        "the commit of offset 3 was not confirmed to the pipeline within 20 s"
    );
    assert_eq!(committed(&group, &topic, 1), vec![Offset::Offset(3)]);
    drop(rx);
    source.stop().await;
}
