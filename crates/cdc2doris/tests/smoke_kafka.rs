//! Smoke test: the local Kafka broker (`dev/stack up`) does what the service relies on: topics, a consumer
//! group, and a manual offset commit that reads back as "the next offset to read".

mod common;

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

#[tokio::test]
async fn produce_consume_and_commit_in_a_consumer_group() {
    let topic = common::create_topic("smoke", 1).await;
    let group = common::unique_name("smoke_group");

    let producer: FutureProducer = common::kafka_config().create().expect("a Kafka producer");
    let delivery = producer
        .send(
            FutureRecord::to(&topic)
                .key("k1")
                .payload("hello from cdc2doris"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("producing to {topic} failed: {e}"));
    assert_eq!(delivery.partition, 0);

    let consumer: StreamConsumer = common::kafka_config()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a Kafka consumer");
    consumer
        .subscribe(&[&topic])
        .expect("subscribing to the test topic");

    // The first poll also joins the group, which takes a few seconds on a fresh broker.
    let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .unwrap_or_else(|_| panic!("no message from {topic} within 60s (group {group})"))
        .unwrap_or_else(|e| panic!("consuming {topic} failed: {e}"));
    assert_eq!(message.payload(), Some(&b"hello from cdc2doris"[..]));
    assert_eq!(message.key(), Some(&b"k1"[..]));
    assert_eq!(message.offset(), delivery.offset);

    // A Kafka commit names the next offset to read: last processed + 1.
    let next = message.offset() + 1;
    // A borrowed message pins librdkafka state: dropping the consumer while one is alive makes
    // rd_kafka_destroy wait forever, so release it first.
    drop(message);
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(&topic, 0, Offset::Offset(next))
        .expect("a valid offset");
    consumer
        .commit(&commit, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("committing {topic}/0@{next} failed: {e}"));

    let mut query = TopicPartitionList::new();
    query.add_partition(&topic, 0);
    let committed = consumer
        .committed_offsets(query, common::SERVICE_TIMEOUT)
        .expect("reading the committed offsets back");
    let partition = committed
        .find_partition(&topic, 0)
        .expect("partition 0 in the committed offsets");
    assert_eq!(partition.offset(), Offset::Offset(next));

    drop(consumer);
    common::delete_topic(&topic).await;
}
