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
    /// Kafka timestamps (ms) of the messages, for the event-to-acknowledgement latency.
    pub event_times_ms: Vec<i64>,
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
            event_times_ms: Vec::new(),
            txids: HashSet::new(),
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
            self.event_times_ms.push(ts);
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
