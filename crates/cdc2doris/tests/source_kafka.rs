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
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
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
    let mut c = ClientConfig::new();
    for (k, v) in owned_properties(group, &bootstrap()) {
        c.set(k, v);
    }
    c.set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
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

async fn next_event(rx: &mut mpsc::Receiver<SourceEvent>) -> SourceEvent {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("no event from the source within 30 s")
        .expect("source channel closed")
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
            assert_eq!(parts, vec![(topic.clone(), 0), (topic.clone(), 1)]);
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
                let (t, p) = partitions[0].clone();
                // The pipeline answers after "its batches were acknowledged": commit offset 2.
                tokio::time::sleep(Duration::from_millis(300)).await;
                reply.send(vec![(tp(&t, p), 2)]).expect("reply");
                break p;
            }
            SourceEvent::Message(_) | SourceEvent::Assigned(_) => {}
        }
    };
    let moved = loop {
        match next_event(&mut rx_b).await {
            SourceEvent::Assigned(parts) => break parts,
            SourceEvent::Message(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(moved, vec![(topic.clone(), revoked)]);
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
