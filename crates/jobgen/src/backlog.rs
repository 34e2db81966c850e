//! A synthetic backlog for the end-to-end benchmark (`bench/pipeline`): N Debezium row events about a database
//! seeded in bulk (`bench/seed.sql`), generated in memory as fast as they can be rendered.
//!
//! The database is not changed: the events stand for changes whose outcome the seeded database already holds.
//! cdc2doris only takes *keys* from an event (`jobs.id`, `job_activity.job_id`, `standard_revenue.job_id`,
//! `clients_to_exclude.client_id`) and re-reads every refreshed job from PostgreSQL, so those key fields name rows
//! that exist ([`Seeded`] reads them); the other fields of the row images are plausible filler, sized like
//! Debezium's.
//!
//! The mix ([`Mix`], exact counts per kind, drawn in a seeded random order):
//! - `job_activity` inserts and updates, the bulk, on a Zipf-skewed hot set of jobs (a hot job gets thousands of
//!   events, which batching collapses into one key);
//! - `jobs` updates that walk a seeded permutation of every job before repeating one, so every job is refreshed at
//!   least once when there are at least as many of them as jobs (then Doris must end up holding every job, which is
//!   what `cdc2doris verify` checks at the end of `bench/pipeline`);
//! - `standard_revenue` inserts on uniformly drawn jobs;
//! - a few `clients_to_exclude` inserts naming excluded clients, each refreshing every job of its client through
//!   the resolve query (fan-out).

use std::time::{Duration, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde_json::{json, Value};

use crate::pg::{RowEvent, RowOp};

/// Why a backlog cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum BacklogError {
    /// The database holds no job to name.
    #[error("the database has no jobs; seed it first (bench/seed.sql)")]
    NoJobs,
    /// A share is not a fraction.
    #[error("--{name} must be between 0 and 1, not {value}")]
    BadShare {
        /// The option's name.
        name: &'static str,
        /// What was given.
        value: f64,
    },
    /// The shares leave nothing, or less than nothing, for activity.
    #[error("--jobs-share + --revenue-share must not exceed 1 (got {0})")]
    SharesAboveOne(f64),
    /// The Zipf exponent is unusable.
    #[error("--zipf-exponent {value}: {reason}")]
    Zipf {
        /// What was given.
        value: f64,
        /// rand_distr's reason.
        reason: String,
    },
}

/// What the seeded database holds, as far as the backlog needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seeded {
    /// Every job as (id, client_id), by id.
    pub jobs: Vec<(i64, i64)>,
    /// Highest `job_activity.id` (new activity rows are numbered after it; updates name ids up to it).
    pub max_activity_id: i64,
    /// Highest `standard_revenue.id` (new revenue rows are numbered after it).
    pub max_revenue_id: i64,
    /// `clients_to_exclude.client_id`, ascending.
    pub excluded_clients: Vec<i64>,
    /// A transaction id every event carries as `source.txId`: one PostgreSQL already finished when the backlog was
    /// made (below its snapshot's xmin), as the transactions of events in a real backlog are. The pipeline waits
    /// until an event's transaction is visible; an id PostgreSQL has not reached yet would not be waited for, but
    /// counted as impossible.
    pub committed_txid: i64,
}

impl Seeded {
    /// Reads the ids from the seeded database.
    pub async fn read(client: &tokio_postgres::Client) -> Result<Seeded, tokio_postgres::Error> {
        let jobs = client
            .query(
                "SELECT id, coalesce(client_id, 0) FROM jobs ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(i64, i64)>, tokio_postgres::Error>>()?;
        let max = |table: &'static str| async move {
            let sql = format!("SELECT coalesce(max(id), 0)::bigint FROM {table}");
            client.query_one(&sql, &[]).await?.try_get::<_, i64>(0)
        };
        let max_activity_id = max("job_activity").await?;
        let max_revenue_id = max("standard_revenue").await?;
        let excluded_clients = client
            .query(
                "SELECT client_id FROM clients_to_exclude ORDER BY client_id",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<i64>, tokio_postgres::Error>>()?;
        let xmin: i64 = client
            .query_one(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8",
                &[],
            )
            .await?
            .try_get(0)?;
        Ok(Seeded {
            jobs,
            max_activity_id,
            max_revenue_id,
            excluded_clients,
            // 3 is PostgreSQL's first normal transaction id.
            committed_txid: (xmin - 1).max(3),
        })
    }
}

/// Shape of the backlog.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Events in all.
    pub events: u64,
    /// RNG seed: the same seed and database give the same events.
    pub seed: u64,
    /// Share of `jobs` updates (raised to one per job when the events allow).
    pub jobs_share: f64,
    /// Share of `standard_revenue` inserts.
    pub revenue_share: f64,
    /// Number of `clients_to_exclude` inserts (0 when no client is excluded in the database).
    pub exclusions: u64,
    /// Share of updates among the `job_activity` events (the rest are inserts).
    pub activity_update_share: f64,
    /// Zipf exponent of activity over jobs (higher: hotter hot jobs).
    pub zipf_exponent: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            events: 1_000_000,
            seed: 42,
            jobs_share: 0.10,
            revenue_share: 0.05,
            exclusions: 20,
            activity_update_share: 0.3,
            zipf_exponent: 1.1,
        }
    }
}

/// Events per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// `jobs` updates.
    pub jobs_updates: u64,
    /// `job_activity` inserts.
    pub activity_inserts: u64,
    /// `job_activity` updates.
    pub activity_updates: u64,
    /// `standard_revenue` inserts.
    pub revenue_inserts: u64,
    /// `clients_to_exclude` inserts.
    pub exclusions: u64,
}

impl Counts {
    /// Every event.
    pub fn total(&self) -> u64 {
        self.jobs_updates
            + self.activity_inserts
            + self.activity_updates
            + self.revenue_inserts
            + self.exclusions
    }

    fn as_array(&self) -> [u64; 5] {
        [
            self.jobs_updates,
            self.activity_inserts,
            self.activity_updates,
            self.revenue_inserts,
            self.exclusions,
        ]
    }
}

impl Mix {
    fn validate(&self) -> Result<(), BacklogError> {
        for (name, value) in [
            ("jobs-share", self.jobs_share),
            ("revenue-share", self.revenue_share),
            ("activity-update-share", self.activity_update_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(BacklogError::BadShare { name, value });
            }
        }
        let sum = self.jobs_share + self.revenue_share;
        if sum > 1.0 {
            return Err(BacklogError::SharesAboveOne(sum));
        }
        Ok(())
    }

    /// Exact events per kind for this database.
    pub fn counts(&self, seeded: &Seeded) -> Counts {
        let n = self.events;
        let share = |s: f64| ((n as f64) * s).round() as u64;
        let exclusions = if seeded.excluded_clients.is_empty() {
            0
        } else {
            self.exclusions.min(n)
        };
        let left = n - exclusions;
        // At least one update per job when the events allow it: every job then reaches Doris.
        let jobs_updates = share(self.jobs_share)
            .max(seeded.jobs.len() as u64)
            .min(left);
        let left = left - jobs_updates;
        let revenue_inserts = share(self.revenue_share).min(left);
        let activity = left - revenue_inserts;
        let activity_updates = if seeded.max_activity_id > 0 {
            ((activity as f64) * self.activity_update_share).round() as u64
        } else {
            0
        };
        Counts {
            jobs_updates,
            activity_inserts: activity - activity_updates,
            activity_updates,
            revenue_inserts,
            exclusions,
        }
    }
}

/// The backlog's events, one [`RowEvent`] per call of `next`.
#[derive(Debug)]
pub struct Backlog {
    rng: StdRng,
    seeded: Seeded,
    /// Events of each kind still to emit (order of [`Counts::as_array`]).
    remaining: [u64; 5],
    left: u64,
    /// Indexes into `seeded.jobs`: the order the `jobs` updates walk them in.
    sweep: Vec<usize>,
    sweep_at: usize,
    /// Indexes into `seeded.jobs` by Zipf rank (rank 1 = `hot[0]`, the hottest).
    hot: Vec<usize>,
    zipf: Zipf<f64>,
    next_activity_id: i64,
    next_revenue_id: i64,
    exclusions_done: usize,
    txid: i64,
}

const CATEGORIES: &[&str] = &[
    "engineering",
    "sales",
    "support",
    "design",
    "marketing",
    "operations",
];
const LOCATIONS: &[&str] = &["Berlin", "Paris", "Remote", "London", "Lisbon", "Warsaw"];
const ACTIVITY: &[&str] = &["view", "view", "view", "click", "apply"];
/// 2024-01-01 00:00:00 UTC in ms since the epoch.
const EPOCH_2024_MS: i64 = 1_704_067_200_000;

/// Debezium's rendering of a `timestamptz` (ZonedTimestamp), `ms` after the epoch.
fn timestamp(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_micros(t).to_string()
}

impl Backlog {
    /// The backlog `mix` describes over `seeded`'s rows.
    pub fn new(mix: &Mix, seeded: Seeded) -> Result<Backlog, BacklogError> {
        mix.validate()?;
        if seeded.jobs.is_empty() {
            return Err(BacklogError::NoJobs);
        }
        let zipf = Zipf::new(seeded.jobs.len() as f64, mix.zipf_exponent).map_err(|e| {
            BacklogError::Zipf {
                value: mix.zipf_exponent,
                reason: e.to_string(),
            }
        })?;
        let counts = mix.counts(&seeded);
        let mut rng = StdRng::seed_from_u64(mix.seed);
        let mut sweep: Vec<usize> = (0..seeded.jobs.len()).collect();
        sweep.shuffle(&mut rng);
        let mut hot = sweep.clone();
        hot.shuffle(&mut rng);
        Ok(Backlog {
            rng,
            remaining: counts.as_array(),
            left: counts.total(),
            sweep,
            sweep_at: 0,
            hot,
            zipf,
            next_activity_id: seeded.max_activity_id + 1,
            next_revenue_id: seeded.max_revenue_id + 1,
            exclusions_done: 0,
            txid: 1_000,
            seeded,
        })
    }

    fn hot_job(&mut self) -> (i64, i64) {
        let rank = self.zipf.sample(&mut self.rng) as usize;
        let i = rank.saturating_sub(1).min(self.hot.len() - 1);
        self.seeded.jobs[self.hot[i]]
    }

    fn any_job(&mut self) -> (i64, i64) {
        let i = self.rng.random_range(0..self.seeded.jobs.len());
        self.seeded.jobs[i]
    }

    fn event(
        &self,
        table: &'static str,
        op: RowOp,
        key: Value,
        before: Option<Value>,
        after: Option<Value>,
    ) -> RowEvent {
        RowEvent {
            table,
            op,
            key,
            before,
            after,
            txid: self.seeded.committed_txid,
        }
    }

    fn jobs_update(&mut self) -> RowEvent {
        let (id, client_id) = self.seeded.jobs[self.sweep[self.sweep_at]];
        self.sweep_at = (self.sweep_at + 1) % self.sweep.len();
        let category = CATEGORIES[id as usize % CATEGORIES.len()];
        let row = |status: &str, updated_ms: i64| {
            json!({
                "id": id,
                "client_id": client_id,
                "title": format!("{category} position #{id}"),
                "category": category,
                "status": status,
                "location": LOCATIONS[id as usize % LOCATIONS.len()],
                "salary_min": format!("{}.00", 30_000 + (id % 50) * 1_000),
                "salary_max": format!("{}.00", 60_000 + (id % 50) * 1_500),
                "created_at": timestamp(EPOCH_2024_MS + id * 17_000),
                "updated_at": timestamp(updated_ms),
            })
        };
        let t = EPOCH_2024_MS + self.txid * 1_000;
        let (before, after) = (row("open", t - 60_000), row("paused", t));
        self.event(
            "jobs",
            RowOp::Update,
            json!({"id": id}),
            Some(before),
            Some(after),
        )
    }

    fn activity(&mut self, update: bool) -> RowEvent {
        let (job_id, _) = self.hot_job();
        let kind = ACTIVITY[self.rng.random_range(0..ACTIVITY.len())];
        let occurred_at = timestamp(EPOCH_2024_MS + self.txid * 1_000);
        let id = if update {
            self.rng.random_range(1..=self.seeded.max_activity_id)
        } else {
            self.next_activity_id += 1;
            self.next_activity_id - 1
        };
        let row = |activity_type: &str| {
            json!({
                "id": id,
                "job_id": job_id,
                "activity_type": activity_type,
                "occurred_at": occurred_at,
            })
        };
        let (op, before) = if update {
            (RowOp::Update, Some(row("view")))
        } else {
            (RowOp::Insert, None)
        };
        self.event(
            "job_activity",
            op,
            json!({"id": id}),
            before,
            Some(row(kind)),
        )
    }

    fn revenue(&mut self) -> RowEvent {
        let (job_id, _) = self.any_job();
        let id = self.next_revenue_id;
        self.next_revenue_id += 1;
        let cents = self.rng.random_range(1_000..500_000);
        let after = json!({
            "id": id,
            "job_id": job_id,
            "amount_usd": format!("{}.{:02}", cents / 100, cents % 100),
            // Debezium's io.debezium.time.Date: days since the epoch.
            "booked_on": 19_723 + (id % 365),
        });
        self.event(
            "standard_revenue",
            RowOp::Insert,
            json!({"id": id}),
            None,
            Some(after),
        )
    }

    fn exclusion(&mut self) -> RowEvent {
        let clients = &self.seeded.excluded_clients;
        let client_id = clients[self.exclusions_done % clients.len()];
        self.exclusions_done += 1;
        let after = json!({
            "client_id": client_id,
            "reason": "bench: excluded client",
            "excluded_at": timestamp(EPOCH_2024_MS + self.txid * 1_000),
        });
        self.event(
            "clients_to_exclude",
            RowOp::Insert,
            json!({"client_id": client_id}),
            None,
            Some(after),
        )
    }
}

impl Iterator for Backlog {
    type Item = RowEvent;

    fn next(&mut self) -> Option<RowEvent> {
        if self.left == 0 {
            return None;
        }
        // Sequential sampling: each kind comes next with probability (its remaining) / (all remaining), which
        // spreads every kind over the whole backlog and ends with the exact counts.
        let mut pick = self.rng.random_range(0..self.left);
        let mut kind = 0;
        for (k, r) in self.remaining.iter().enumerate() {
            if pick < *r {
                kind = k;
                break;
            }
            pick -= r;
        }
        self.remaining[kind] -= 1;
        self.left -= 1;
        self.txid += 1;
        Some(match kind {
            0 => self.jobs_update(),
            1 => self.activity(false),
            2 => self.activity(true),
            3 => self.revenue(),
            _ => self.exclusion(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn seeded(jobs: i64, clients: i64) -> Seeded {
        Seeded {
            jobs: (1..=jobs).map(|id| (id, 1 + id % clients)).collect(),
            max_activity_id: jobs * 10,
            max_revenue_id: jobs * 2,
            excluded_clients: (1..=clients).filter(|c| c % 10 == 0).collect(),
            committed_txid: 3,
        }
    }

    fn key_field(ev: &RowEvent) -> &'static str {
        match ev.table {
            "jobs" => "id",
            "clients_to_exclude" => "client_id",
            _ => "job_id",
        }
    }

    #[test]
    fn exact_counts_every_job_updated_and_keys_name_seeded_rows() {
        let s = seeded(1_000, 50);
        let mix = Mix {
            events: 20_000,
            ..Mix::default()
        };
        let counts = mix.counts(&s);
        assert_eq!(counts.total(), 20_000);
        assert_eq!(counts.jobs_updates, 2_000);
        assert_eq!(counts.revenue_inserts, 1_000);
        assert_eq!(counts.exclusions, 20);
        let events: Vec<RowEvent> = Backlog::new(&mix, s.clone()).unwrap().collect();
        assert_eq!(events.len(), 20_000);

        let mut per_table: BTreeMap<&str, u64> = BTreeMap::new();
        let mut updated_jobs = BTreeSet::new();
        let job_ids: BTreeSet<i64> = s.jobs.iter().map(|j| j.0).collect();
        for ev in &events {
            *per_table.entry(ev.table).or_default() += 1;
            let field = key_field(ev);
            let after = ev.after.as_ref().unwrap();
            let key = after[field].as_i64().unwrap();
            if let Some(b) = &ev.before {
                assert_eq!(b[field], after[field], "{ev:?}: the key stays put");
            }
            match ev.table {
                "clients_to_exclude" => assert!(s.excluded_clients.contains(&key)),
                _ => assert!(job_ids.contains(&key), "{ev:?}"),
            }
            if ev.table == "jobs" {
                updated_jobs.insert(key);
            }
            // The message key is the row's primary key, as Debezium writes it.
            let pk = if ev.table == "clients_to_exclude" {
                "client_id"
            } else {
                "id"
            };
            assert_eq!(ev.key[pk], after[pk]);
        }
        assert_eq!(updated_jobs.len(), 1_000, "every job updated at least once");
        assert_eq!(per_table["jobs"], counts.jobs_updates);
        assert_eq!(
            per_table["job_activity"],
            counts.activity_inserts + counts.activity_updates
        );
        assert_eq!(per_table["standard_revenue"], 1_000);
        assert_eq!(per_table["clients_to_exclude"], 20);
    }

    #[test]
    fn activity_is_skewed_and_the_same_seed_repeats() {
        let s = seeded(10_000, 100);
        let mix = Mix {
            events: 50_000,
            ..Mix::default()
        };
        let a: Vec<RowEvent> = Backlog::new(&mix, s.clone()).unwrap().collect();
        let b: Vec<RowEvent> = Backlog::new(&mix, s.clone()).unwrap().collect();
        assert_eq!(a, b);
        let mut per_job: BTreeMap<i64, u64> = BTreeMap::new();
        for ev in a.iter().filter(|e| e.table == "job_activity") {
            let job = ev.after.as_ref().unwrap()["job_id"].as_i64().unwrap();
            *per_job.entry(job).or_default() += 1;
        }
        let total: u64 = per_job.values().sum();
        let mut counts: Vec<u64> = per_job.values().copied().collect();
        counts.sort_unstable_by(|x, y| y.cmp(x));
        let top10: u64 = counts.iter().take(10).sum();
        assert!(
            top10 * 3 > total,
            "the 10 hottest jobs get over a third of the activity: {top10} of {total}"
        );
        assert!(
            per_job.len() < 10_000 / 2,
            "most jobs get no activity: {}",
            per_job.len()
        );
    }

    #[test]
    fn fewer_events_than_jobs_and_bad_input() {
        let s = seeded(1_000, 50);
        let mix = Mix {
            events: 500,
            ..Mix::default()
        };
        let c = mix.counts(&s);
        assert_eq!(
            (c.exclusions, c.jobs_updates, c.total()),
            (20, 480, 500),
            "jobs updates take what the exclusions leave"
        );
        let none = Seeded {
            excluded_clients: Vec::new(),
            max_activity_id: 0,
            ..s.clone()
        };
        let c = Mix {
            events: 5_000,
            ..Mix::default()
        }
        .counts(&none);
        assert_eq!((c.exclusions, c.activity_updates), (0, 0));
        assert_eq!(c.total(), 5_000);

        let bad = |m: Mix| Backlog::new(&m, s.clone()).unwrap_err().to_string();
        assert!(bad(Mix {
            jobs_share: 1.5,
            ..Mix::default()
        })
        .contains("--jobs-share"));
        assert!(bad(Mix {
            jobs_share: 0.6,
            revenue_share: 0.6,
            ..Mix::default()
        })
        .contains("must not exceed 1"));
        assert!(bad(Mix {
            zipf_exponent: -1.0,
            ..Mix::default()
        })
        .contains("--zipf-exponent"));
        assert!(matches!(
            Backlog::new(&Mix::default(), Seeded::default()),
            Err(BacklogError::NoJobs)
        ));
    }

    #[test]
    fn timestamps_look_like_debezium_ones() {
        assert_eq!(timestamp(EPOCH_2024_MS), "2024-01-01T00:00:00.000000Z");
        assert_eq!(
            timestamp(EPOCH_2024_MS + 86_400_000 + 3_723_004),
            "2024-01-02T01:02:03.004000Z"
        );
    }
}
