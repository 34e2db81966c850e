//! The open batch: the distinct keys gathered from a window of Kafka messages, and the offset
//! ranges those messages cover (which name the batch's Stream Load label).
//!
//! Keys are de-duplicated here: ten thousand events on one job become one key, one merge row and
//! one Doris row.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::keys::KeyValue;
use crate::offsets::{BatchId, TopicPartition};
use crate::sink::OffsetRange;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Problem;

/// Keys gathered so far, and what they cover.
#[derive(Debug)]
pub struct Batch {
    /// The tracker's id: acknowledging it makes its offsets committable.
    pub id: BatchId,
    /// Keys of the merged table, taken directly from events.
    pub keys: HashSet<KeyValue>,
    /// Values to map to keys through a resolve query, per resolve rule (index into the rule list).
    pub resolve: BTreeMap<usize, HashSet<KeyValue>>,
    /// Per topic partition: first and last offset of the messages in the batch.
    pub ranges: BTreeMap<TopicPartition, (i64, i64)>,
    /// Messages that put keys into the batch.
    pub messages: u64,
    /// Bytes of those messages (key + value).
    pub bytes: usize,
    /// When the first message arrived.
    pub opened: Instant,
    /// Kafka timestamps (ms) of the messages, with how many messages carry each, for the event-to-acknowledgement
    /// latency. A backlog's messages share few milliseconds, so this stays small where a list would grow by one
    /// entry per message.
    pub event_times_ms: BTreeMap<i64, u64>,
    /// Whether the pipeline was behind while the batch was open: it was a backlog window.
    pub behind: bool,
    /// Transaction ids of the events (PostgreSQL's, as the events carry them), distinct.
    pub txids: HashSet<u64>,
}

impl Batch {
    /// An empty batch.
    pub fn new(id: BatchId) -> Batch {
        Batch {
            id,
            keys: HashSet::new(),
            resolve: BTreeMap::new(),
            ranges: BTreeMap::new(),
            messages: 0,
            bytes: 0,
            opened: Instant::now(),
            event_times_ms: BTreeMap::new(),
            txids: HashSet::new(),
            behind: false,
        }
    }

    /// Records that the message at `topic`/`partition`/`offset` contributed to the batch.
    pub fn cover(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        bytes: usize,
        timestamp_ms: Option<i64>,
    ) {
        let r = self
            .ranges
            .entry(TopicPartition {
                topic: topic.clone(),
                partition,
            })
            .or_insert((offset, offset));
        r.0 = r.0.min(offset);
        r.1 = r.1.max(offset);
        self.messages += 1;
        self.bytes += bytes;
        if let Some(ts) = timestamp_ms {
            *self.event_times_ms.entry(ts).or_insert(0) += 1;
        }
    }

    /// The transaction ids, sorted.
    pub fn sorted_txids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.txids.iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Distinct keys and resolve values held.
    pub fn distinct_keys(&self) -> usize {
        self.keys.len() + self.resolve.values().map(HashSet::len).sum::<usize>()
    }

    /// The offset ranges, as the sink wants them for the label.
    pub fn offset_ranges(&self) -> Vec<OffsetRange> {
        self.ranges
            .iter()
            .map(|(tp, (first, last))| OffsetRange {
                tp: tp.clone(),
                first: *first,
                last: *last,
            })
            .collect()
    }

    /// True when the batch covers this partition.
    pub fn covers(&self, topic: &str, partition: i32) -> bool {
        self.ranges
            .keys()
            .any(|tp| &*tp.topic == topic && tp.partition == partition)
    }
}

/// Why a batch was sealed (`cdc2doris_batches_sealed_total{reason}`, `/debug/state` `totals.sealed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealReason {
    /// The source handed over everything Kafka had and a worker was free: nothing to wait for.
    Idle,
    /// `max_keys` distinct keys (or `backlog_max_keys` while behind).
    Keys,
    /// `max_bytes` of messages (not while behind).
    Bytes,
    /// `max_wait` after its first message (`backlog_max_wait` while behind).
    MaxWait,
    /// A revoke of its partitions, or shutdown.
    Other,
}

impl SealReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SealReason::Idle => "idle",
            SealReason::Keys => "keys",
            SealReason::Bytes => "bytes",
            SealReason::MaxWait => "max_wait",
            SealReason::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch closes once it holds this many distinct keys. Default 10000.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// A batch closes once the Kafka messages it covers reach this many bytes. Default 16777216 (16 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// A batch closes at the latest this long after its first message. Default 1 s.
    #[serde(default = "default_max_wait", with = "humantime_serde")]
    pub max_wait: Duration,
    /// When the source has handed over everything Kafka had (the pipeline is caught up) and a worker is free, a
    /// batch at least this old is sealed at once instead of waiting for `max_wait` (a `linger` of `max_wait` or more
    /// turns this off). Default 20 ms.
    #[serde(default = "default_linger", with = "humantime_serde")]
    pub linger: Duration,
    /// While the pipeline is behind (messages queue up before the coordinator), a batch ignores `max_keys`,
    /// `max_bytes` and `max_wait` and closes at this many distinct keys, so that a backlog refreshes each key about
    /// once. The batch holds keys, not messages; its merged rows go to Doris in loads of `max_load_bytes`. At least
    /// `max_keys` (a smaller value counts as `max_keys`). Default 100000.
    #[serde(default = "default_backlog_max_keys")]
    pub backlog_max_keys: usize,
    /// While the pipeline is behind, a batch closes at the latest this long after its first message. At least
    /// `max_wait` (a shorter value counts as `max_wait`). Default 10 s.
    #[serde(default = "default_backlog_max_wait", with = "humantime_serde")]
    pub backlog_max_wait: Duration,
    /// A batch's merged rows go to Doris in Stream Loads of about this many bytes: a load ends with the merge chunk
    /// (`merge.chunk_size` keys) that makes it reach this size and is sent while the next one is read, so a batch's rows
    /// are never all in memory at once. A worker holds at most two such bodies (one loading, one filling). Smaller loads
    /// bound memory tighter but make more Doris versions. Default 8388608 (8 MiB).
    #[serde(default = "default_max_load_bytes")]
    pub max_load_bytes: usize,
    /// Batches being merged or loaded at once; more overlap PostgreSQL and Doris work. Default 2.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// On shutdown, how long to flush the open batch and wait for in-flight loads. Default 30 s.
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_keys: default_max_keys(),
            max_bytes: default_max_bytes(),
            max_wait: default_max_wait(),
            linger: default_linger(),
            backlog_max_keys: default_backlog_max_keys(),
            backlog_max_wait: default_backlog_max_wait(),
            max_load_bytes: default_max_load_bytes(),
            max_in_flight: default_max_in_flight(),
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

fn default_max_keys() -> usize {
    10_000
}
fn default_max_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_max_wait() -> Duration {
    Duration::from_secs(1)
}
fn default_linger() -> Duration {
    Duration::from_millis(20)
}
fn default_backlog_max_keys() -> usize {
    100_000
}
fn default_backlog_max_wait() -> Duration {
    Duration::from_secs(10)
}
fn default_max_load_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_max_in_flight() -> usize {
    2
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

impl BatchConfig {
    /// Checks the `[batch]` section.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        let batch = self;
        for (value, path) in [
            (batch.max_keys, "batch.max_keys"),
            (batch.max_bytes, "batch.max_bytes"),
            (batch.max_in_flight, "batch.max_in_flight"),
            (batch.max_load_bytes, "batch.max_load_bytes"),
        ] {
            if value == 0 {
                p.push(Problem::new(path, "0; must be at least 1"));
            }
        }
        if batch.max_wait.is_zero() {
            p.push(Problem::new(
                "batch.max_wait",
                "0; give a positive duration, e.g. \"1s\"",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::OffsetTracker;

    #[test]
    fn ranges_and_dedup() {
        let mut tracker = OffsetTracker::new();
        let mut b = Batch::new(tracker.open_batch());
        let t: Arc<str> = Arc::from("t");
        for (p, o) in [(0, 5), (0, 6), (1, 9), (0, 8)] {
            b.cover(&t, p, o, 10, Some(1));
            b.keys.insert(KeyValue::Int(7));
        }
        assert_eq!(b.distinct_keys(), 1);
        assert_eq!(b.messages, 4);
        assert_eq!(b.bytes, 40);
        let r = b.offset_ranges();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].tp.partition, r[0].first, r[0].last), (0, 5, 8));
        assert_eq!((r[1].tp.partition, r[1].first, r[1].last), (1, 9, 9));
        assert!(b.covers("t", 1) && !b.covers("t", 2));
    }
}
