//! Per-partition commit watermarks: only offsets whose batches Doris acknowledged may be committed.
//!
//! This is the only module that decides what may be committed to Kafka.
//!
//! # Protocol
//!
//! - On assignment the consumer calls [`OffsetTracker::assign`] with the position it will resume from (the group's
//!   committed offset, when known).
//! - For every message it reads, in the order it reads them, it calls [`OffsetTracker::register`] with the batch the
//!   message's keys went into, or [`OffsetTracker::register_handled`] for a message that needs no batch (dead-lettered,
//!   ignored, a tombstone). Offsets must increase per partition but may have gaps: compacted topics and transaction
//!   markers skip offsets.
//! - When Doris acknowledged a batch, the pipeline calls [`OffsetTracker::ack_batch`].
//! - [`OffsetTracker::committable`] is then the **next offset to read**: (the highest offset `O` such that every
//!   registered offset `≤ O` is acknowledged) + 1. That is Kafka's convention for a committed offset.
//! - On revoke, [`OffsetTracker::revoke`] drops the partition's state and reports what was committable; acks of older
//!   batches for that partition are ignored from then on, even if it is assigned again.
//!
//! # The "+1" trap (librdkafka `rdkafka.h`, `rd_kafka_offset_store`)
//!
//! The value returned by [`OffsetTracker::committable`] is already "last acknowledged + 1". The pipeline must commit it
//! **unchanged** through a `TopicPartitionList` with `Offset::Offset(committable)` passed to
//! `rdkafka::consumer::Consumer::commit` (or `store_offsets`), which take the next offset as is. It must **not** use
//! `commit_message`, `store_offset` or `store_offset_from_message`: those add 1 themselves
//! (`rd_kafka_offset_store` stores "offset + 1"), which would skip one unacknowledged message.
//! [`commit_list`] builds the list; a unit test pins the convention.
//!
//! # Cost
//!
//! Each partition keeps a queue of *runs*: maximal sequences of consecutive registrations that belong to the same batch.
//! Registering a message extends the last run or pushes a new one (O(1)); acknowledging a batch finds each of its runs by
//! binary search (O(log n)); acknowledged runs at the front are popped (amortised O(1)).

use std::collections::{HashMap, VecDeque};

use rdkafka::{Offset, TopicPartitionList};

/// Identifies one batch for the tracker; allocated by [`OffsetTracker::open_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(u64);

impl BatchId {
    /// The number behind this id, for logs and labels.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch-{}", self.0)
    }
}

/// A Kafka topic partition: the one type for it in the service (messages, offsets, batches, loads). The topic is
/// shared, not copied per message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: std::sync::Arc<str>,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<std::sync::Arc<str>>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A misuse of the tracker by the pipeline. None of these is retryable: each means a message or an ack arrived that
/// the tracker cannot account for, and the caller must drop it (it will be read again after a restart).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OffsetError {
    /// A message arrived for a partition that is not assigned (e.g. it was revoked while the message sat in a queue).
    #[error(
        "{topic}/{partition} offset {offset}: partition is not assigned; drop the message, its new owner reads it again"
    )]
    NotAssigned {
        /// Topic of the message.
        topic: String,
        /// Partition of the message.
        partition: i32,
        /// Offset of the message.
        offset: i64,
    },
    /// A message offset did not increase, or lies below the position the partition was assigned at.
    #[error(
        "{topic}/{partition} offset {offset}: expected an offset >= {expected}; offsets must increase per partition \
         (a replayed or stale message?)"
    )]
    NotIncreasing {
        /// Topic of the message.
        topic: String,
        /// Partition of the message.
        partition: i32,
        /// Offset of the message.
        offset: i64,
        /// The lowest offset the tracker accepts next.
        expected: i64,
    },
    /// A negative offset: Kafka's logical offsets (beginning, end, stored) are not message offsets.
    #[error("{topic}/{partition} offset {offset}: not a message offset")]
    InvalidOffset {
        /// Topic of the message.
        topic: String,
        /// Partition of the message.
        partition: i32,
        /// The offset.
        offset: i64,
    },
    /// An ack or a registration for a batch that is not open (already acknowledged, forgotten, or never opened).
    #[error("{batch}: no such open batch")]
    UnknownBatch {
        /// The batch.
        batch: BatchId,
    },
}

/// Who a run of offsets is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    /// Waiting for this batch to be acknowledged.
    Pending(BatchId),
    /// Acknowledged (or handled without a batch).
    Acked,
}

/// Consecutive registrations (in reading order, gaps allowed) that share a state.
#[derive(Debug, Clone)]
struct Run {
    /// First registered offset of the run.
    first: i64,
    /// Last registered offset of the run.
    last: i64,
    state: RunState,
}

/// The state of one assigned partition.
#[derive(Debug)]
struct PartitionState {
    /// Which assignment of this partition this is; acks recorded under an older epoch are ignored.
    epoch: u64,
    /// Runs not yet committable, oldest first. The front run, if any, is pending.
    runs: VecDeque<Run>,
    /// The lowest offset accepted next: last registered + 1, or the assigned position.
    next_offset: Option<i64>,
    /// Committable when `runs` is empty: the assigned position, or last registered + 1.
    settled: Option<i64>,
    /// The last offset Kafka confirmed as committed (see [`OffsetTracker::mark_committed`]).
    committed: Option<i64>,
    /// The last offset a commit was asked for (see [`OffsetTracker::mark_requested`]); at least `committed`.
    requested: Option<i64>,
}

impl PartitionState {
    fn committable(&self) -> Option<i64> {
        match self.runs.front() {
            Some(run) => Some(run.first),
            None => self.settled,
        }
    }

    /// Pops acknowledged runs off the front.
    fn settle(&mut self) {
        while let Some(run) = self.runs.front() {
            if run.state != RunState::Acked {
                break;
            }
            self.settled = Some(run.last + 1);
            self.runs.pop_front();
        }
    }
}

/// Where one run of one batch lives, so that acknowledging the batch finds it.
#[derive(Debug, Clone)]
struct RunRef {
    topic: String,
    partition: i32,
    epoch: u64,
    first: i64,
}

/// Commit watermarks of every assigned partition, and the open batches that hold them back.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// Assigned partitions by topic, then partition number (two levels so lookups take a `&str`).
    partitions: HashMap<String, HashMap<i32, PartitionState>>,
    /// Open batches and the runs they cover.
    batches: HashMap<BatchId, Vec<RunRef>>,
    next_batch: u64,
    next_epoch: u64,
}

impl OffsetTracker {
    /// An empty tracker: no partition assigned, no batch open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracking a partition afresh, resuming from `position` (the next offset to read, i.e. the group's
    /// committed offset) when known. Any previous state of the partition is dropped.
    pub fn assign(&mut self, topic: &str, partition: i32, position: Option<i64>) {
        self.next_epoch += 1;
        let position = position.filter(|p| *p >= 0);
        let state = PartitionState {
            epoch: self.next_epoch,
            runs: VecDeque::new(),
            next_offset: position,
            settled: position,
            committed: position,
            requested: position,
        };
        self.partitions
            .entry(topic.to_string())
            .or_default()
            .insert(partition, state);
    }

    /// Stops tracking a partition and returns what was committable at that moment (commit it before releasing the
    /// partition). Acks of batches that covered it are ignored from now on, even if it is assigned again.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let parts = self.partitions.get_mut(topic)?;
        let state = parts.remove(&partition)?;
        if parts.is_empty() {
            self.partitions.remove(topic);
        }
        state.committable()
    }

    /// Opens a new batch; register the messages whose keys go into it, then acknowledge it once.
    pub fn open_batch(&mut self) -> BatchId {
        self.next_batch += 1;
        let id = BatchId(self.next_batch);
        self.batches.insert(id, Vec::new());
        id
    }

    /// Records that the message at `offset` belongs to `batch`: it is committable once the batch is acknowledged.
    pub fn register(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        batch: BatchId,
    ) -> Result<(), OffsetError> {
        let Some(refs) = self.batches.get_mut(&batch) else {
            return Err(OffsetError::UnknownBatch { batch });
        };
        let state = Self::check_next(&mut self.partitions, topic, partition, offset)?;
        state.next_offset = Some(offset + 1);
        let extends_last = state
            .runs
            .back()
            .is_some_and(|run| run.state == RunState::Pending(batch));
        match state.runs.back_mut() {
            Some(run) if extends_last => run.last = offset,
            _ => {
                state.runs.push_back(Run {
                    first: offset,
                    last: offset,
                    state: RunState::Pending(batch),
                });
                refs.push(RunRef {
                    topic: topic.to_string(),
                    partition,
                    epoch: state.epoch,
                    first: offset,
                });
            }
        }
        Ok(())
    }

    /// Records a message handled without a batch (dead-lettered, ignored): it is acknowledged at once.
    pub fn register_handled(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), OffsetError> {
        let state = Self::check_next(&mut self.partitions, topic, partition, offset)?;
        state.next_offset = Some(offset + 1);
        match state.runs.back_mut() {
            Some(run) if run.state == RunState::Acked => run.last = offset,
            Some(_) => state.runs.push_back(Run {
                first: offset,
                last: offset,
                state: RunState::Acked,
            }),
            // Nothing pending: the offset is committable at once.
            None => state.settled = Some(offset + 1),
        }
        Ok(())
    }

    /// Acknowledges a batch (Doris committed it): all its offsets become committable once the offsets before them
    /// are. Partitions revoked since registration are skipped.
    pub fn ack_batch(&mut self, batch: BatchId) -> Result<(), OffsetError> {
        let Some(refs) = self.batches.remove(&batch) else {
            return Err(OffsetError::UnknownBatch { batch });
        };
        for r in refs {
            let Some(state) = self
                .partitions
                .get_mut(&r.topic)
                .and_then(|parts| parts.get_mut(&r.partition))
            else {
                continue;
            };
            if state.epoch != r.epoch {
                continue;
            }
            if let Ok(i) = state.runs.binary_search_by_key(&r.first, |run| run.first) {
                if let Some(run) = state.runs.get_mut(i) {
                    run.state = RunState::Acked;
                }
            }
            state.settle();
        }
        Ok(())
    }

    /// Drops an open batch without acknowledging it (its partitions were revoked and its load abandoned). Its offsets
    /// stay unacknowledged, so an assigned partition it covered stays held back until revoked.
    pub fn forget_batch(&mut self, batch: BatchId) -> Result<(), OffsetError> {
        match self.batches.remove(&batch) {
            Some(_) => Ok(()),
            None => Err(OffsetError::UnknownBatch { batch }),
        }
    }

    /// The next offset to commit for a partition (last acknowledged + 1; see the module doc on the "+1" trap), or
    /// `None` if the partition is not assigned or nothing about its position is known yet.
    pub fn committable(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions.get(topic)?.get(&partition)?.committable()
    }

    /// The open batches still holding back this partition, oldest first (e.g. to wait for them on revoke).
    pub fn pending_batches(&self, topic: &str, partition: i32) -> Vec<BatchId> {
        let Some(state) = self.partitions.get(topic).and_then(|p| p.get(&partition)) else {
            return Vec::new();
        };
        let mut out: Vec<BatchId> = Vec::new();
        for run in &state.runs {
            if let RunState::Pending(b) = run.state {
                if !out.contains(&b) {
                    out.push(b);
                }
            }
        }
        out
    }

    /// Partitions whose committable offset moved past the last one a commit was asked for ([`Self::mark_requested`])
    /// or confirmed, with that offset, sorted. Commit them with [`commit_list`].
    pub fn commit_candidates(&self) -> Vec<(TopicPartition, i64)> {
        let mut out = Vec::new();
        for (topic, parts) in &self.partitions {
            for (partition, state) in parts {
                if let Some(next) = state.committable() {
                    if state.requested.is_none_or(|c| next > c) {
                        out.push((TopicPartition::new(topic.as_str(), *partition), next));
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Records that a commit of `offset` was asked for: [`Self::commit_candidates`] leaves the partition out until its
    /// committable offset moves further, or the commit fails ([`Self::commit_failed`]).
    pub fn mark_requested(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(state) = self.state_mut(topic, partition) {
            if state.requested.is_none_or(|c| offset > c) {
                state.requested = Some(offset);
            }
        }
    }

    /// Records that Kafka accepted a commit of `offset` for the partition (ignored if not assigned or not higher).
    pub fn mark_committed(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(state) = self.state_mut(topic, partition) {
            if state.committed.is_none_or(|c| offset > c) {
                state.committed = Some(offset);
            }
            if state.requested.is_none_or(|c| offset > c) {
                state.requested = Some(offset);
            }
        }
    }

    /// Records that Kafka refused a commit of `offset`: unless a later commit was asked for meanwhile, the partition
    /// is a commit candidate again.
    pub fn commit_failed(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(state) = self.state_mut(topic, partition) {
            if state.requested == Some(offset) {
                state.requested = state.committed;
            }
        }
    }

    /// Forgets the commits asked for that Kafka has not confirmed (yet): their partitions are commit candidates
    /// again. An asynchronous commit Kafka refuses (a rebalance bumped the generation) is never reported to the
    /// pipeline, only confirmations are (see the source's statistics); without this, a partition that receives
    /// nothing more would keep its refused commit, and its lag, for good. Returns how many partitions it reopened.
    pub fn retry_unconfirmed(&mut self) -> usize {
        let mut reopened = 0;
        for parts in self.partitions.values_mut() {
            for state in parts.values_mut() {
                if state.requested != state.committed {
                    state.requested = state.committed;
                    reopened += 1;
                }
            }
        }
        reopened
    }

    fn state_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionState> {
        self.partitions
            .get_mut(topic)
            .and_then(|p| p.get_mut(&partition))
    }

    /// Assigned partitions, sorted, with their committable and last committed offsets (for `/debug/state`).
    pub fn partitions(&self) -> Vec<PartitionView> {
        let mut out: Vec<PartitionView> = self
            .partitions
            .iter()
            .flat_map(|(topic, parts)| {
                parts.iter().map(|(partition, state)| PartitionView {
                    topic_partition: TopicPartition::new(topic.as_str(), *partition),
                    committable: state.committable(),
                    committed: state.committed,
                    pending_runs: state.runs.len(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.topic_partition.cmp(&b.topic_partition));
        out
    }

    /// Number of open batches.
    pub fn open_batches(&self) -> usize {
        self.batches.len()
    }

    fn check_next<'a>(
        partitions: &'a mut HashMap<String, HashMap<i32, PartitionState>>,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<&'a mut PartitionState, OffsetError> {
        if offset < 0 {
            return Err(OffsetError::InvalidOffset {
                topic: topic.to_string(),
                partition,
                offset,
            });
        }
        let Some(state) = partitions
            .get_mut(topic)
            .and_then(|p| p.get_mut(&partition))
        else {
            return Err(OffsetError::NotAssigned {
                topic: topic.to_string(),
                partition,
                offset,
            });
        };
        if let Some(expected) = state.next_offset {
            if offset < expected {
                return Err(OffsetError::NotIncreasing {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    expected,
                });
            }
        }
        Ok(state)
    }
}

/// One partition's watermark, for inspection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionView {
    /// The partition.
    #[serde(flatten)]
    pub topic_partition: TopicPartition,
    /// The next offset to commit, if known.
    pub committable: Option<i64>,
    /// The last offset reported committed.
    pub committed: Option<i64>,
    /// Runs of offsets not yet committable.
    pub pending_runs: usize,
}

/// The list to pass to `Consumer::commit`: each offset as is (already the next offset to read).
pub fn commit_list(
    candidates: &[(TopicPartition, i64)],
) -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
    let mut tpl = TopicPartitionList::with_capacity(candidates.len());
    for (tp, next) in candidates {
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next))?;
    }
    Ok(tpl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const T: &str = "topic";

    #[test]
    fn committable_is_next_offset_after_the_last_acked() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(10));
        assert_eq!(t.committable(T, 0), Some(10));
        let b = t.open_batch();
        for o in 10..15 {
            t.register(T, 0, o, b).unwrap();
        }
        assert_eq!(t.committable(T, 0), Some(10));
        t.ack_batch(b).unwrap();
        // Messages 10..=14 are done: the next offset to read, and so to commit, is 15.
        assert_eq!(t.committable(T, 0), Some(15));
    }

    /// Pins the "+1" convention of the module documentation: the list handed to `Consumer::commit` carries
    /// last acknowledged + 1 unchanged, since `commit(&tpl)` stores the offset as given.
    #[test]
    fn commit_list_carries_last_acked_plus_one() {
        let mut t = OffsetTracker::new();
        t.assign(T, 3, None);
        let b = t.open_batch();
        t.register(T, 3, 41, b).unwrap();
        t.register(T, 3, 42, b).unwrap();
        t.ack_batch(b).unwrap();
        let cands = t.commit_candidates();
        let tpl = commit_list(&cands).unwrap();
        let elem = tpl.find_partition(T, 3).unwrap();
        assert_eq!(elem.offset(), Offset::Offset(43));
        assert_eq!(tpl.count(), 1);
    }

    /// The same convention against a (mock) broker: committing `commit_list` after acknowledging messages 0..=2
    /// makes the group resume at message 3, the first unacknowledged one: nothing skipped, nothing acked re-read.
    #[test]
    fn mock_broker_resumes_at_the_first_unacknowledged_message() {
        use rdkafka::config::ClientConfig;
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        use rdkafka::mocking::MockCluster;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        use rdkafka::Message;
        use std::time::{Duration, Instant};

        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic(T, 1, 1).unwrap();
        let servers = cluster.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &servers)
            .create()
            .unwrap();
        for i in 0..5 {
            let payload = format!("m{i}");
            producer
                .send(BaseRecord::<(), str>::to(T).payload(&payload))
                .unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();

        let consumer = || -> BaseConsumer {
            ClientConfig::new()
                .set("bootstrap.servers", &servers)
                .set("group.id", "offsets-test")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .create()
                .unwrap()
        };
        let poll = |c: &BaseConsumer| -> Option<(i64, String)> {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Some(msg) = c.poll(Duration::from_millis(100)) {
                    let msg = msg.unwrap();
                    let payload =
                        String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned();
                    return Some((msg.offset(), payload));
                }
            }
            None
        };

        let first = consumer();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(T, 0, Offset::Beginning).unwrap();
        first.assign(&tpl).unwrap();
        let mut tracker = OffsetTracker::new();
        tracker.assign(T, 0, None);
        let loaded = tracker.open_batch();
        let in_flight = tracker.open_batch();
        for _ in 0..5 {
            let (offset, _) = poll(&first).unwrap();
            let batch = if offset < 3 { loaded } else { in_flight };
            tracker.register(T, 0, offset, batch).unwrap();
        }
        tracker.ack_batch(loaded).unwrap();
        let candidates = tracker.commit_candidates();
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].1, 3);
        first
            .commit(&commit_list(&candidates).unwrap(), CommitMode::Sync)
            .unwrap();
        drop(first);

        let second = consumer();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(T, 0);
        let committed = second
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            committed.find_partition(T, 0).unwrap().offset(),
            Offset::Offset(3)
        );
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(T, 0, Offset::Stored).unwrap();
        second.assign(&tpl).unwrap();
        assert_eq!(poll(&second), Some((3, "m3".to_string())));
    }

    #[test]
    fn gaps_and_out_of_order_acks() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, None);
        assert_eq!(t.committable(T, 0), None);
        let b1 = t.open_batch();
        let b2 = t.open_batch();
        t.register(T, 0, 5, b1).unwrap();
        t.register(T, 0, 7, b2).unwrap(); // 6 skipped (compaction)
        t.register_handled(T, 0, 9).unwrap(); // dead-lettered
        t.register(T, 0, 12, b1).unwrap();
        assert_eq!(t.committable(T, 0), Some(5));
        t.ack_batch(b2).unwrap();
        assert_eq!(t.committable(T, 0), Some(5));
        t.ack_batch(b1).unwrap();
        assert_eq!(t.committable(T, 0), Some(13));
    }

    #[test]
    fn handled_message_with_nothing_pending_is_committable_at_once() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(0));
        t.register_handled(T, 0, 0).unwrap();
        t.register_handled(T, 0, 4).unwrap();
        assert_eq!(t.committable(T, 0), Some(5));
    }

    #[test]
    fn batch_over_several_partitions() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(0));
        t.assign(T, 1, Some(100));
        t.assign("other", 0, Some(7));
        let b = t.open_batch();
        t.register(T, 0, 0, b).unwrap();
        t.register(T, 1, 100, b).unwrap();
        t.register("other", 0, 7, b).unwrap();
        t.register(T, 0, 1, b).unwrap();
        assert_eq!(t.pending_batches(T, 1), vec![b]);
        t.ack_batch(b).unwrap();
        assert_eq!(t.committable(T, 0), Some(2));
        assert_eq!(t.committable(T, 1), Some(101));
        assert_eq!(t.committable("other", 0), Some(8));
        assert_eq!(t.open_batches(), 0);
        assert_eq!(
            t.ack_batch(b),
            Err(OffsetError::UnknownBatch { batch: b }),
            "a batch is acknowledged once"
        );
    }

    #[test]
    fn revoke_reports_committable_and_ignores_later_acks() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(0));
        let b1 = t.open_batch();
        let b2 = t.open_batch();
        t.register(T, 0, 0, b1).unwrap();
        t.register(T, 0, 1, b2).unwrap();
        t.ack_batch(b1).unwrap();
        assert_eq!(t.revoke(T, 0), Some(1));
        assert_eq!(t.committable(T, 0), None);
        assert!(matches!(
            t.register(T, 0, 2, b2),
            Err(OffsetError::NotAssigned { .. })
        ));
        // Re-assigned from the committed position before b2's ack arrives: the old ack must not count.
        t.assign(T, 0, Some(1));
        let b3 = t.open_batch();
        t.register(T, 0, 1, b3).unwrap();
        t.ack_batch(b2).unwrap();
        assert_eq!(t.committable(T, 0), Some(1));
        t.ack_batch(b3).unwrap();
        assert_eq!(t.committable(T, 0), Some(2));
    }

    #[test]
    fn refuses_stale_and_decreasing_offsets() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(10));
        let b = t.open_batch();
        assert!(matches!(
            t.register(T, 0, 9, b),
            Err(OffsetError::NotIncreasing { expected: 10, .. })
        ));
        t.register(T, 0, 10, b).unwrap();
        assert!(matches!(
            t.register_handled(T, 0, 10),
            Err(OffsetError::NotIncreasing { expected: 11, .. })
        ));
        assert!(matches!(
            t.register(T, 0, -2, b),
            Err(OffsetError::InvalidOffset { .. })
        ));
        let unknown = BatchId(999);
        assert_eq!(
            t.register(T, 0, 11, unknown),
            Err(OffsetError::UnknownBatch { batch: unknown })
        );
        // A refused registration changes nothing.
        t.ack_batch(b).unwrap();
        assert_eq!(t.committable(T, 0), Some(11));
    }

    #[test]
    fn commit_candidates_only_report_progress() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(5));
        t.assign(T, 1, None);
        assert!(t.commit_candidates().is_empty());
        t.register_handled(T, 0, 5).unwrap();
        let tp0 = TopicPartition {
            topic: T.into(),
            partition: 0,
        };
        assert_eq!(t.commit_candidates(), vec![(tp0, 6)]);
        t.mark_committed(T, 0, 6);
        assert!(t.commit_candidates().is_empty());
        let views = t.partitions();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].committed, Some(6));
    }

    /// Found by dev/chaos: a refused asynchronous commit is never reported (only confirmations are); an idle
    /// partition's commit must be asked for again once it stayed unconfirmed.
    #[test]
    fn an_unconfirmed_commit_is_asked_for_again() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(0));
        t.assign(T, 1, Some(0));
        t.register_handled(T, 0, 0).unwrap();
        t.register_handled(T, 1, 0).unwrap();
        let c = t.commit_candidates();
        assert_eq!(c.len(), 2);
        t.mark_requested(T, 0, 1);
        t.mark_requested(T, 1, 1);
        assert!(t.commit_candidates().is_empty());
        // Partition 1's commit is confirmed; partition 0's is never answered.
        t.mark_committed(T, 1, 1);
        assert_eq!(t.retry_unconfirmed(), 1);
        assert_eq!(t.commit_candidates(), vec![(TopicPartition::new(T, 0), 1)]);
        t.mark_requested(T, 0, 1);
        t.mark_committed(T, 0, 1);
        assert_eq!(t.retry_unconfirmed(), 0);
        assert!(t.commit_candidates().is_empty());
    }

    /// A commit counts once Kafka confirmed it; a refused one (an idle partition included) is a candidate again.
    /// Before, a commit was marked done when it was asked for, and a failed commit of an idle partition was never
    /// retried.
    #[test]
    fn a_refused_commit_is_asked_for_again() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(0));
        let tp0 = TopicPartition {
            topic: T.into(),
            partition: 0,
        };
        t.register_handled(T, 0, 0).unwrap();
        assert_eq!(t.commit_candidates(), vec![(tp0.clone(), 1)]);
        t.mark_requested(T, 0, 1);
        // Asked for: not asked again while Kafka has not answered...
        assert!(t.commit_candidates().is_empty());
        // ...and not committed yet.
        assert_eq!(t.partitions()[0].committed, Some(0));
        // Kafka refuses it; nothing new arrives on the partition: it is asked for again.
        t.commit_failed(T, 0, 1);
        assert_eq!(t.commit_candidates(), vec![(tp0.clone(), 1)]);
        t.mark_requested(T, 0, 1);
        t.mark_committed(T, 0, 1);
        assert!(t.commit_candidates().is_empty());
        assert_eq!(t.partitions()[0].committed, Some(1));
        // A late refusal of an older commit changes nothing once a newer one was asked for.
        t.register_handled(T, 0, 1).unwrap();
        t.mark_requested(T, 0, 2);
        t.commit_failed(T, 0, 1);
        assert!(t.commit_candidates().is_empty());
    }

    #[test]
    fn forgotten_batch_holds_the_partition_until_revoked() {
        let mut t = OffsetTracker::new();
        t.assign(T, 0, Some(0));
        let b = t.open_batch();
        t.register(T, 0, 0, b).unwrap();
        t.register_handled(T, 0, 1).unwrap();
        t.forget_batch(b).unwrap();
        assert_eq!(t.committable(T, 0), Some(0));
        assert_eq!(t.revoke(T, 0), Some(0));
        assert_eq!(t.open_batches(), 0);
    }

    // ---- property tests against a brute-force model ----

    /// One step of a consumer's life, with indices resolved against the current state when applied.
    #[derive(Debug, Clone)]
    enum Op {
        /// Read the next message of a partition (`gap` offsets skipped) into open batch number `batch % open`,
        /// or handle it without a batch when `batch` is `None` or no batch is open.
        Read {
            partition: i32,
            gap: i64,
            batch: Option<usize>,
        },
        /// Open a new batch.
        Open,
        /// Acknowledge open batch number `i % open`.
        Ack(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..3i32, prop_oneof![4 => Just(0i64), 1 => 1..5i64], proptest::option::weighted(0.9, 0..8usize))
                .prop_map(|(partition, gap, batch)| Op::Read { partition, gap, batch }),
            1 => Just(Op::Open),
            2 => (0..8usize).prop_map(Op::Ack),
        ]
    }

    /// The naive model: every registered offset per partition with its batch (None = acked).
    #[derive(Default)]
    struct Model {
        offsets: BTreeMap<i32, BTreeMap<i64, Option<BatchId>>>,
        next: BTreeMap<i32, i64>,
    }

    impl Model {
        fn committable(&self, partition: i32, start: i64) -> i64 {
            let Some(offsets) = self.offsets.get(&partition) else {
                return start;
            };
            match offsets.iter().find(|(_, b)| b.is_some()) {
                Some((o, _)) => *o,
                None => offsets.keys().next_back().map_or(start, |o| o + 1),
            }
        }
    }

    const START: i64 = 100;

    /// Applies ops to a tracker and the model, checking invariants after each; returns the committable history.
    fn run(ops: &[Op]) -> Result<Vec<[i64; 3]>, TestCaseError> {
        let mut t = OffsetTracker::new();
        let mut m = Model::default();
        for p in 0..3 {
            t.assign(T, p, Some(START));
        }
        let mut open: Vec<BatchId> = Vec::new();
        let mut history = Vec::new();
        let mut prev = [START; 3];
        for op in ops {
            match op {
                Op::Open => open.push(t.open_batch()),
                Op::Read {
                    partition,
                    gap,
                    batch,
                } => {
                    let next = m.next.entry(*partition).or_insert(START);
                    let offset = *next + gap;
                    *next = offset + 1;
                    let chosen = batch.and_then(|i| open.get(i % open.len().max(1)).copied());
                    match chosen {
                        Some(b) => t.register(T, *partition, offset, b).unwrap(),
                        None => t.register_handled(T, *partition, offset).unwrap(),
                    }
                    m.offsets
                        .entry(*partition)
                        .or_default()
                        .insert(offset, chosen);
                }
                Op::Ack(i) => {
                    if open.is_empty() {
                        continue;
                    }
                    let b = open.remove(i % open.len());
                    t.ack_batch(b).unwrap();
                    for offsets in m.offsets.values_mut() {
                        for v in offsets.values_mut() {
                            if *v == Some(b) {
                                *v = None;
                            }
                        }
                    }
                }
            }
            let mut now = [0; 3];
            for p in 0..3 {
                let c = t.committable(T, p).unwrap();
                let expected = m.committable(p, START);
                prop_assert_eq!(c, expected, "partition {} differs from the model", p);
                // Never past an unacknowledged offset.
                if let Some(offsets) = m.offsets.get(&p) {
                    for (o, b) in offsets {
                        if b.is_some() {
                            prop_assert!(c <= *o, "committable {} passes unacked {}", c, o);
                        }
                    }
                }
                prop_assert!(c >= prev[p as usize], "committable went back");
                now[p as usize] = c;
            }
            prev = now;
            history.push(now);
        }
        // Acknowledge everything left: every partition's committable is then last + 1.
        for b in open.drain(..) {
            t.ack_batch(b).unwrap();
        }
        for p in 0..3 {
            let last = m
                .offsets
                .get(&p)
                .and_then(|o| o.keys().next_back().copied());
            prop_assert_eq!(
                t.committable(T, p),
                Some(last.map_or(START, |l| l + 1)),
                "partition {} after all acks",
                p
            );
        }
        Ok(history)
    }

    proptest! {
        #[test]
        fn matches_model_and_keeps_invariants(ops in proptest::collection::vec(op(), 0..200)) {
            run(&ops)?;
        }

        #[test]
        fn replay_gives_the_same_result(ops in proptest::collection::vec(op(), 0..200)) {
            prop_assert_eq!(run(&ops)?, run(&ops)?);
        }

        /// A restart replays from the committed offset: re-reading the rest and acknowledging it ends at the same
        /// offset as if nothing had happened, and never below what was committed.
        #[test]
        fn restart_from_committed_converges(
            offsets in proptest::collection::btree_set(0..500i64, 1..60),
            acked_prefix in 0usize..60,
        ) {
            let offsets: Vec<i64> = offsets.into_iter().collect();
            let mut t = OffsetTracker::new();
            t.assign(T, 0, Some(0));
            let batches: Vec<BatchId> = offsets.iter().map(|_| t.open_batch()).collect();
            for (o, b) in offsets.iter().zip(&batches) {
                t.register(T, 0, *o, *b).unwrap();
            }
            // Acknowledge a random subset: every other batch up to a prefix.
            for b in batches.iter().take(acked_prefix).step_by(2) {
                t.ack_batch(*b).unwrap();
            }
            let committed = t.revoke(T, 0).unwrap();
            // Restart from the committed offset: read again everything at or after it.
            let mut t2 = OffsetTracker::new();
            t2.assign(T, 0, Some(committed));
            let b = t2.open_batch();
            for o in offsets.iter().filter(|o| **o >= committed) {
                t2.register(T, 0, *o, b).unwrap();
            }
            t2.ack_batch(b).unwrap();
            let last = offsets.last().copied().unwrap_or(0);
            let end = t2.committable(T, 0).unwrap();
            prop_assert!(end >= committed);
            prop_assert_eq!(end, last + 1);
        }
    }
}
