//! Smoke test: the local Kafka Connect with Debezium (`dev/stack up --with-debezium`) turns PostgreSQL changes
//! into Kafka records in the shape cdc2doris decodes: a snapshot read (`op: "r"`), then an update (`op: "u"`)
//! with the whole old row (REPLICA IDENTITY FULL), JSON without schemas, decimals as strings.

mod common;

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::{json, Value};

/// Debezium needs a few seconds to start a task and snapshot; a busy machine needs more.
const EVENT_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn debezium_streams_snapshot_and_update_to_kafka() {
    let db = common::TestDatabase::create("dbz").await;
    let client = db.connect().await;
    client
        .batch_execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(10,2));
             ALTER TABLE orders REPLICA IDENTITY FULL;
             INSERT INTO orders VALUES (1, 9.99);",
        )
        .await
        .expect("creating the captured table");

    // One name for the connector, its slot, its publication and its topic prefix: nothing shared with other tests.
    let name = db.name.clone();
    let topic = format!("{name}.public.orders");
    common::create_topic_named(&topic, 1).await;
    let consumer: StreamConsumer = common::kafka_config()
        .set("group.id", common::unique_name("dbz_group"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a Kafka consumer");
    consumer.subscribe(&[&topic]).expect("subscribing");

    let pg = common::pg_config();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let http = reqwest::Client::new();
    let connectors = format!("{}/connectors", common::connect_url());
    let response = http
        .post(&connectors)
        .json(&json!({
            "name": name,
            "config": {
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "tasks.max": "1",
                "database.hostname": "127.0.0.1",
                "database.port": port.to_string(),
                "database.user": pg.get_user().unwrap_or("cdc2doris"),
                "database.password": std::env::var("CDC2DORIS_PG_PASSWORD").unwrap_or_else(|_| "cdc2doris".into()),
                "database.dbname": name,
                "topic.prefix": name,
                "plugin.name": "pgoutput",
                "slot.name": name,
                "slot.drop.on.stop": "true",
                "publication.name": name,
                "publication.autocreate.mode": "filtered",
                "table.include.list": "public.orders",
                "snapshot.mode": "initial",
                "decimal.handling.mode": "string",
                "tombstones.on.delete": "false",
            }
        }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", common::connect_unreachable(&e)));
    let status = response.status();
    assert!(
        status.is_success(),
        "registering connector {name} failed: {status} {}",
        response.text().await.unwrap_or_default()
    );

    let snapshot = next_event(&consumer, &topic).await;
    assert_eq!(
        snapshot["op"], "r",
        "first event is the snapshot read: {snapshot}"
    );
    assert_eq!(snapshot["after"], json!({"id": 1, "amount": "9.99"}));

    client
        .execute("UPDATE orders SET amount = 19.99 WHERE id = 1", &[])
        .await
        .expect("updating the row");
    let update = next_event(&consumer, &topic).await;
    assert_eq!(update["op"], "u", "second event is the update: {update}");
    assert_eq!(update["before"], json!({"id": 1, "amount": "9.99"}));
    assert_eq!(update["after"], json!({"id": 1, "amount": "19.99"}));
    assert_eq!(update["source"]["table"], "orders");

    // Cleanup: the connector drops its slot on stop (slot.drop.on.stop); the database can go once it has.
    drop(consumer);
    let _ = http.delete(format!("{connectors}/{name}")).send().await;
    drop_slot_when_released(&name).await;
    drop(client);
    db.drop_now().await;
    common::delete_topic(&topic).await;
}

/// The next record's value on `topic` as JSON; fails the test after [`EVENT_TIMEOUT`].
async fn next_event(consumer: &StreamConsumer, topic: &str) -> Value {
    let message = tokio::time::timeout(EVENT_TIMEOUT, consumer.recv())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no Debezium event on {topic} within {EVENT_TIMEOUT:?}; see the Connect log (dev/stack status)"
            )
        })
        .unwrap_or_else(|e| panic!("consuming {topic} failed: {e}"));
    let payload = message
        .payload()
        .unwrap_or_else(|| panic!("a record without value on {topic}"));
    serde_json::from_slice(payload).expect("a Debezium event is JSON")
}

/// Waits (bounded) until the connector's replication slot is gone, and drops it if it stays behind inactive.
async fn drop_slot_when_released(slot: &str) {
    let admin = common::pg_connect(None).await;
    for _ in 0..30 {
        let row = admin
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .expect("reading replication slots");
        match row {
            None => return,
            Some(row) if !row.get::<_, bool>(0) => {
                let _ = admin
                    .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                    .await;
                return;
            }
            Some(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    panic!("replication slot {slot} still active 30s after deleting its connector");
}
