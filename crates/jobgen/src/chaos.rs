//! Helpers of `dev/chaos`, the randomized fault soak: poison messages written into the CDC topics (each must end
//! up in the dead-letter destination, and nothing else may), and the "caught up again" test that times the
//! recovery after a fault.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;

use crate::watch::{PartitionOffsets, WatchError, Watcher};

/// The kinds of poison message, each a message the service cannot use and must dead-letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoisonKind {
    /// Not JSON at all.
    Malformed,
    /// A Debezium event cut in the middle.
    Truncated,
    /// A Debezium event whose key field holds a word where the key type is integer.
    WrongType,
    /// A Debezium event whose key field is an integer beyond 64 bits.
    KeyOverflow,
    /// About 900 KB of unterminated JSON (the broker's default message size cap is 1 MiB).
    Big,
    /// 5 MiB of unterminated JSON: beyond the broker's default cap, so its topic needs a higher `max.message.bytes`
    /// (`reset-kafka --max-message-bytes`; dev/chaos creates its topics with [`HUGE_TOPIC_MAX_BYTES`]), and beyond a
    /// consumer's default `fetch.message.max.bytes` (1 MiB), which since KIP-74 still returns a first message bigger
    /// than it.
    Huge,
}

/// The size of a [`PoisonKind::Huge`] message.
pub const HUGE_BYTES: usize = 5 * 1024 * 1024;
/// The producer's `message.max.bytes` for poison, and the `max.message.bytes` a topic needs for a huge poison.
pub const HUGE_TOPIC_MAX_BYTES: u32 = 6 * 1024 * 1024;

/// Where a poison message landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    pub kind: PoisonKind,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The message key and value of one poison message of `kind` for `table`, drawn from `rng`.
pub fn poison_message(kind: PoisonKind, table: &str, rng: &mut StdRng) -> (String, Vec<u8>) {
    let id: i64 = rng.random_range(1..1_000_000);
    let key = format!("{{\"id\":{id}}}");
    // The key field of each table's rule (examples/job-analytics/pipeline.toml).
    let field = match table {
        "jobs" => "id",
        "clients_to_exclude" => "client_id",
        _ => "job_id",
    };
    let event = |value: &str| {
        format!(
            "{{\"before\":null,\"after\":{{\"{field}\":{value},\"note\":\"chaos poison\"}},\
             \"source\":{{\"connector\":\"postgresql\",\"db\":\"chaos\",\"schema\":\"public\",\
             \"table\":\"{table}\",\"txId\":null,\"lsn\":1}},\"op\":\"c\",\"ts_ms\":1}}"
        )
    };
    let value = match kind {
        PoisonKind::Malformed => format!("chaos poison {id}: not JSON {{[").into_bytes(),
        PoisonKind::Truncated => {
            let full = event(&id.to_string());
            let cut = rng.random_range(5..full.len() - 5);
            full.as_bytes()[..cut].to_vec()
        }
        PoisonKind::WrongType => event("\"not-a-number\"").into_bytes(),
        PoisonKind::KeyOverflow => event("123456789012345678901234567890").into_bytes(),
        PoisonKind::Big | PoisonKind::Huge => {
            let mut v =
                format!("{{\"before\":null,\"after\":{{\"{field}\":{id},\"note\":\"").into_bytes();
            let size = if kind == PoisonKind::Big {
                900 * 1024
            } else {
                HUGE_BYTES
            };
            v.resize(size, b'x');
            v
        }
    };
    (key, value)
}

/// The tables a poison of `kind` may go to: decoding failures anywhere; key failures only where the rule reads the
/// key straight from the row (the client table's values go through a resolve query, a different path).
pub fn poison_tables(kind: PoisonKind) -> &'static [&'static str] {
    match kind {
        PoisonKind::WrongType | PoisonKind::KeyOverflow => {
            &["jobs", "job_activity", "standard_revenue"]
        }
        _ => &[
            "jobs",
            "job_activity",
            "clients_to_exclude",
            "standard_revenue",
        ],
    }
}

/// Writes `count` poison messages of `kind` (drawn from `seed`) into the topics `<prefix>.public.<table>`;
/// returns where each landed.
pub async fn write_poison(
    bootstrap: &str,
    prefix: &str,
    kind: PoisonKind,
    count: u32,
    seed: u64,
) -> anyhow::Result<Vec<Placed>> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", HUGE_TOPIC_MAX_BYTES.to_string())
        .set("message.timeout.ms", "120000")
        .create()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut placed = Vec::new();
    for _ in 0..count {
        let tables = poison_tables(kind);
        let table = tables[rng.random_range(0..tables.len())];
        let topic = crate::debezium::topic(prefix, table);
        let (key, value) = poison_message(kind, table, &mut rng);
        let delivery = producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(120),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing poison to {topic}: {e}"))?;
        placed.push(Placed {
            kind,
            topic,
            partition: delivery.partition,
            offset: delivery.offset,
        });
    }
    Ok(placed)
}

/// The partitions whose committed offset has not reached `targets` yet: (topic, partition, target, committed).
pub fn behind(
    targets: &BTreeMap<(String, i32), i64>,
    now: &BTreeMap<(String, i32), PartitionOffsets>,
) -> Vec<(String, i32, i64, Option<i64>)> {
    targets
        .iter()
        .filter_map(|((t, p), target)| {
            let o = now.get(&(t.clone(), *p));
            let committed = o.and_then(|o| o.committed);
            let low = o.map_or(0, |o| o.low);
            // An empty partition (or one whose messages all expired) needs no commit.
            let done = committed.unwrap_or(low) >= *target;
            (!done).then(|| (t.clone(), *p, *target, committed))
        })
        .collect()
}

/// Waits until the group has committed, in every partition, at least the end offset it had when called: every
/// message written before the call was loaded (or ignored, or dead-lettered). Returns how long that took.
pub async fn catch_up(watcher: &Watcher, timeout: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let sample = |w: Watcher| async move {
        tokio::task::spawn_blocking(move || w.partition_offsets())
            .await
            .map_err(WatchError::from)?
    };
    // Kafka itself may be down (the fault being a broker restart): retry the first look too.
    let targets: BTreeMap<(String, i32), i64> = loop {
        match sample(watcher.clone()).await {
            Ok(now) => break now.into_iter().map(|(k, o)| (k, o.high)).collect(),
            Err(e) if start.elapsed() >= timeout => {
                anyhow::bail!("no end offsets within {}s: {e}", timeout.as_secs())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    loop {
        let last = match sample(watcher.clone()).await {
            Ok(now) => {
                let b = behind(&targets, &now);
                if b.is_empty() {
                    return Ok(start.elapsed());
                }
                b.iter()
                    .take(3)
                    .map(|(t, p, target, c)| format!("{t}/{p} committed {c:?} < {target}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= timeout {
            anyhow::bail!("not caught up within {}s: {last}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_poison_kind_is_unusable_json_or_a_bad_key() {
        let mut rng = StdRng::seed_from_u64(7);
        for kind in [
            PoisonKind::Malformed,
            PoisonKind::Truncated,
            PoisonKind::Big,
            PoisonKind::Huge,
        ] {
            for table in poison_tables(kind) {
                let (_, v) = poison_message(kind, table, &mut rng);
                assert!(
                    serde_json::from_slice::<serde_json::Value>(&v).is_err(),
                    "{kind:?} {table}"
                );
            }
        }
        let (_, v) = poison_message(PoisonKind::Big, "jobs", &mut rng);
        assert_eq!(v.len(), 900 * 1024);
        let (_, v) = poison_message(PoisonKind::Huge, "jobs", &mut rng);
        assert_eq!(v.len(), 5 * 1024 * 1024);
        assert!((v.len() as u32) < HUGE_TOPIC_MAX_BYTES);
        let (_, v) = poison_message(PoisonKind::WrongType, "job_activity", &mut rng);
        let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(v["after"]["job_id"], "not-a-number");
        let (_, v) = poison_message(PoisonKind::KeyOverflow, "jobs", &mut rng);
        let text = String::from_utf8(v).unwrap();
        assert!(
            text.contains("\"id\":123456789012345678901234567890"),
            "{text}"
        );
    }

    #[test]
    fn behind_lists_partitions_whose_commit_is_short_of_the_target() {
        let po = |low, high, committed| PartitionOffsets {
            low,
            high,
            committed,
        };
        let targets = BTreeMap::from([
            (("a".to_string(), 0), 10),
            (("a".to_string(), 1), 5),
            (("b".to_string(), 0), 0),
        ]);
        let now = BTreeMap::from([
            (("a".to_string(), 0), po(0, 12, Some(10))),
            (("a".to_string(), 1), po(0, 6, Some(4))),
            (("b".to_string(), 0), po(0, 3, None)),
        ]);
        assert_eq!(
            behind(&targets, &now),
            vec![("a".to_string(), 1, 5, Some(4))]
        );
        let now = BTreeMap::from([
            (("a".to_string(), 0), po(0, 12, None)),
            (("a".to_string(), 1), po(5, 6, None)),
        ]);
        assert_eq!(behind(&targets, &now), vec![("a".to_string(), 0, 10, None)]);
    }
}
