//! Watching a running pipeline from outside, for the demo: how many events Debezium captured (the topics' end
//! offsets), how far the consumer group committed (its lag), and what cdc2doris reports on its admin endpoints
//! (`/debug/state` totals and in-flight batches, the `/metrics` latency histogram).
//!
//! The group's committed offsets are read with an `OffsetFetch` from a consumer that never subscribes, so the
//! watcher does not join the group and never triggers a rebalance of the service it watches.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Kafka did not answer (metadata, watermarks or the group's offsets).
    #[error("Kafka at {bootstrap}: {what}: {source}")]
    Kafka {
        bootstrap: String,
        what: String,
        /// Boxed: librdkafka's error is large.
        source: Box<rdkafka::error::KafkaError>,
    },
    /// The admin endpoint did not answer with JSON / text.
    #[error("cdc2doris admin endpoint {url}: {source}")]
    Admin { url: String, source: reqwest::Error },
    /// The blocking Kafka call panicked or was cancelled.
    #[error("the Kafka sampling task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Where to look.
#[derive(Debug, Clone)]
pub struct Watcher {
    /// cdc2doris admin base URL, e.g. `http://127.0.0.1:9464`.
    pub admin_url: String,
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// The topics Debezium writes and cdc2doris reads.
    pub topics: Vec<String>,
    /// cdc2doris's consumer group.
    pub group: String,
}

/// One look at the pipeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Messages in the topics (end − start offsets): the events Debezium captured, tombstones included.
    pub captured: i64,
    /// Messages the group has not committed yet (end − committed), summed over partitions.
    pub lag: i64,
    /// `/debug/state` `totals`, when the service answered.
    pub totals: Option<Value>,
    /// Batches being merged or loaded (`/debug/state` `in_flight`).
    pub in_flight: usize,
    /// Messages in the batch being filled.
    pub open_messages: u64,
}

impl Sample {
    fn total(&self, name: &str) -> u64 {
        self.totals
            .as_ref()
            .and_then(|t| t.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// `captured 1850 | consumed 1790 | keys refreshed 1120 | loads 13 | lag 60`.
    pub fn progress(&self) -> String {
        let service = if self.totals.is_some() {
            format!(
                "consumed {} | keys refreshed {} | loads {}",
                self.total("messages"),
                self.total("keys_refreshed"),
                self.total("loads")
            )
        } else {
            "cdc2doris not answering".to_string()
        };
        format!("captured {} | {service} | lag {}", self.captured, self.lag)
    }

    /// Everything captured was loaded and committed: at least `expected` messages in the topics, no lag, nothing
    /// in flight or waiting in the open batch.
    pub fn caught_up(&self, expected: i64) -> bool {
        self.captured >= expected
            && self.lag == 0
            && self.totals.is_some()
            && self.in_flight == 0
            && self.open_messages == 0
    }
}

impl Watcher {
    /// Takes one sample; the Kafka part runs on a blocking thread (librdkafka's calls block).
    pub async fn sample(&self, http: &reqwest::Client) -> Result<Sample, WatchError> {
        // The service first, then Kafka: what it consumed was captured before, so consumed ≤ captured.
        let state = self.debug_state(http).await.ok();
        let me = self.clone();
        let (captured, lag) = tokio::task::spawn_blocking(move || me.kafka_offsets()).await??;
        let mut s = Sample {
            captured,
            lag,
            ..Sample::default()
        };
        if let Some(state) = state {
            s.in_flight = state
                .get("in_flight")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            s.open_messages = state
                .get("open_batch")
                .and_then(|b| b.get("messages"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            s.totals = state.get("totals").cloned();
        }
        Ok(s)
    }

    /// `GET /debug/state`.
    pub async fn debug_state(&self, http: &reqwest::Client) -> Result<Value, WatchError> {
        let url = format!("{}/debug/state", self.admin_url.trim_end_matches('/'));
        let err = |source| WatchError::Admin {
            url: url.clone(),
            source,
        };
        http.get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(err)?
            .json()
            .await
            .map_err(err)
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics(&self, http: &reqwest::Client) -> Result<String, WatchError> {
        let url = format!("{}/metrics", self.admin_url.trim_end_matches('/'));
        let err = |source| WatchError::Admin {
            url: url.clone(),
            source,
        };
        http.get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(err)?
            .text()
            .await
            .map_err(err)
    }

    /// (messages in the topics, group lag), summed over every partition of every topic. A topic that does not
    /// exist yet counts as empty.
    fn kafka_offsets(&self) -> Result<(i64, i64), WatchError> {
        let mut captured = 0;
        let mut lag = 0;
        for p in self.partition_offsets()?.values() {
            captured += p.high - p.low;
            lag += (p.high - p.committed.unwrap_or(p.low)).max(0);
        }
        Ok((captured, lag))
    }

    /// Per partition of every topic: its low and high watermarks and the group's committed offset (`None` when
    /// the group committed nothing there). A topic that does not exist yet has no partitions. Blocking.
    pub fn partition_offsets(
        &self,
    ) -> Result<BTreeMap<(String, i32), PartitionOffsets>, WatchError> {
        let err = |what: &str| {
            let what = what.to_string();
            let bootstrap = self.bootstrap.clone();
            move |source| WatchError::Kafka {
                bootstrap,
                what,
                source: Box::new(source),
            }
        };
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(err("creating a consumer"))?;
        let timeout = Duration::from_secs(5);
        let mut ends = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        for topic in &self.topics {
            let md = consumer
                .fetch_metadata(Some(topic), timeout)
                .map_err(err(&format!("metadata of {topic}")))?;
            for t in md.topics() {
                if t.error().is_some() {
                    continue;
                }
                for p in t.partitions() {
                    let (low, high) = consumer
                        .fetch_watermarks(topic, p.id(), timeout)
                        .map_err(err(&format!("end offsets of {topic}/{}", p.id())))?;
                    ends.insert((topic.clone(), p.id()), (low, high));
                    tpl.add_partition(topic, p.id());
                }
            }
        }
        let committed = if tpl.count() == 0 {
            TopicPartitionList::new()
        } else {
            consumer
                .committed_offsets(tpl, timeout)
                .map_err(err(&format!("committed offsets of group {}", self.group)))?
        };
        Ok(ends
            .into_iter()
            .map(|((topic, partition), (low, high))| {
                let committed =
                    committed
                        .find_partition(&topic, partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                (
                    (topic, partition),
                    PartitionOffsets {
                        low,
                        high,
                        committed,
                    },
                )
            })
            .collect())
    }
}

/// One partition as [`Watcher::partition_offsets`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Low watermark (first offset still in the log).
    pub low: i64,
    /// High watermark (offset of the next message).
    pub high: i64,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
}

/// The `q` quantile (0–1) of a Prometheus histogram in `metrics` text, interpolated linearly inside the bucket
/// like PromQL's `histogram_quantile`; buckets of every label set are summed. `None` when it has no observations.
pub fn histogram_quantile(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let (buckets, count) = histogram_buckets(metrics, name);
    if count <= 0.0 {
        return None;
    }
    let rank = q * count;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for (bound, cum) in &buckets {
        if *cum >= rank {
            if bound.is_infinite() {
                return Some(prev_bound);
            }
            let in_bucket = cum - prev_count;
            let frac = if in_bucket > 0.0 {
                (rank - prev_count) / in_bucket
            } else {
                1.0
            };
            return Some(prev_bound + (bound - prev_bound) * frac);
        }
        prev_bound = *bound;
        prev_count = *cum;
    }
    Some(prev_bound)
}

/// Cumulative buckets (upper bound, count) sorted by bound, and the total count.
fn histogram_buckets(metrics: &str, name: &str) -> (Vec<(f64, f64)>, f64) {
    let prefix = format!("{name}_bucket{{");
    let mut by_bound: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(le) = labels
            .split(',')
            .find_map(|l| l.trim().strip_prefix("le=\""))
            .map(|l| l.trim_end_matches('"'))
        else {
            continue;
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(b) => b,
                Err(_) => continue,
            }
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        // Total order of non-negative floats (and +Inf) through their bits.
        by_bound.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += v;
    }
    let buckets: Vec<(f64, f64)> = by_bound.into_values().collect();
    let count = buckets.last().map_or(0.0, |b| b.1);
    (buckets, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# TYPE x_seconds histogram
x_seconds_bucket{le=\"0.1\"} 0
x_seconds_bucket{le=\"0.5\"} 50
x_seconds_bucket{le=\"1\"} 90
x_seconds_bucket{le=\"2.5\"} 100
x_seconds_bucket{le=\"+Inf\"} 100
x_seconds_sum 55
x_seconds_count 100
";

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let p50 = histogram_quantile(METRICS, "x_seconds", 0.5).unwrap();
        assert!((p50 - 0.5).abs() < 1e-9, "{p50}");
        let p99 = histogram_quantile(METRICS, "x_seconds", 0.99).unwrap();
        assert!((p99 - (1.0 + 1.5 * 0.9)).abs() < 1e-9, "{p99}");
        let p25 = histogram_quantile(METRICS, "x_seconds", 0.25).unwrap();
        assert!((p25 - 0.3).abs() < 1e-9, "{p25}");
        assert_eq!(histogram_quantile(METRICS, "y_seconds", 0.5), None);
    }

    #[test]
    fn label_sets_are_summed_and_inf_returns_the_last_bound() {
        let m = "h_bucket{topic=\"a\",le=\"1\"} 1\nh_bucket{topic=\"b\",le=\"1\"} 1\n\
                 h_bucket{topic=\"a\",le=\"+Inf\"} 2\nh_bucket{topic=\"b\",le=\"+Inf\"} 4\n";
        assert_eq!(histogram_quantile(m, "h", 0.99), Some(1.0));
        assert_eq!(histogram_quantile(m, "h", 0.25), Some(0.75));
    }

    #[test]
    fn caught_up_needs_everything_captured_committed_and_loaded() {
        let s = Sample {
            captured: 10,
            lag: 0,
            totals: Some(serde_json::json!({"messages": 10, "keys_refreshed": 4, "loads": 2})),
            in_flight: 0,
            open_messages: 0,
        };
        assert!(s.caught_up(10));
        assert!(!s.caught_up(11));
        assert!(!Sample {
            lag: 1,
            ..s.clone()
        }
        .caught_up(10));
        assert!(!Sample {
            in_flight: 1,
            ..s.clone()
        }
        .caught_up(10));
        assert_eq!(
            s.progress(),
            "captured 10 | consumed 10 | keys refreshed 4 | loads 2 | lag 0"
        );
    }
}
