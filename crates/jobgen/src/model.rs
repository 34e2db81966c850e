//! The workload model: which change comes next.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// Shape of the workload.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// RNG seed: the same seed gives the same stream.
    pub seed: u64,
    /// Number of clients (ids 1..=clients).
    pub clients: i64,
    /// Zipf exponent of activity over jobs (higher = hotter hot jobs).
    pub zipf_exponent: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            seed: 42,
            clients: 50,
            zipf_exponent: 1.2,
        }
    }
}

/// One change to the source database.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A new job.
    NewJob {
        /// Job id.
        id: i64,
        /// Owning client.
        client_id: i64,
        /// Title (sometimes long, to exercise TOAST).
        title: String,
        /// Category.
        category: String,
        /// Location.
        location: String,
        /// Salary range.
        salary_min: i64,
        /// Salary range.
        salary_max: i64,
    },
    /// A status change.
    SetStatus {
        /// Job id.
        id: i64,
        /// New status.
        status: String,
    },
    /// A salary edit.
    SetSalary {
        /// Job id.
        id: i64,
        /// New minimum.
        salary_min: i64,
        /// New maximum.
        salary_max: i64,
    },
    /// The job moves to another client.
    MoveJob {
        /// Job id.
        id: i64,
        /// New client.
        client_id: i64,
    },
    /// A burst of activity rows on one job.
    Activity {
        /// First activity id.
        first_id: i64,
        /// Job id.
        job_id: i64,
        /// `view`, `apply` or `click`, one per row.
        types: Vec<String>,
    },
    /// A revenue booking.
    Revenue {
        /// Revenue row id.
        id: i64,
        /// Job id.
        job_id: i64,
        /// Amount in cents.
        amount_cents: i64,
        /// Days before today it was booked.
        days_ago: i32,
    },
    /// A client is excluded.
    ExcludeClient {
        /// Client id.
        client_id: i64,
        /// Why.
        reason: String,
    },
    /// A client is included again.
    IncludeClient {
        /// Client id.
        client_id: i64,
    },
    /// A job is deleted with its activity and revenue.
    DeleteJob {
        /// Job id.
        id: i64,
    },
    /// One activity row is re-attributed to another job.
    MoveActivity {
        /// Activity id.
        id: i64,
        /// New job.
        to_job_id: i64,
    },
}

impl Change {
    /// A short name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::NewJob { .. } => "new_job",
            Change::SetStatus { .. } => "set_status",
            Change::SetSalary { .. } => "set_salary",
            Change::MoveJob { .. } => "move_job",
            Change::Activity { .. } => "activity",
            Change::Revenue { .. } => "revenue",
            Change::ExcludeClient { .. } => "exclude_client",
            Change::IncludeClient { .. } => "include_client",
            Change::DeleteJob { .. } => "delete_job",
            Change::MoveActivity { .. } => "move_activity",
        }
    }
}

const CATEGORIES: &[&str] = &[
    "engineering",
    "sales",
    "support",
    "design",
    "finance",
    "operations",
];
const LOCATIONS: &[&str] = &[
    "Berlin",
    "Lisbon",
    "Austin",
    "Toronto",
    "Remote",
    "Singapore",
    "Nairobi",
];
const STATUSES: &[&str] = &["open", "paused", "closed", "filled"];
const WORDS: &[&str] = &[
    "kotlin", "rust", "sql", "kafka", "doris", "flink", "spark", "etl", "dbt", "airflow", "go",
];
const ACTIVITY: &[&str] = &["view", "view", "view", "view", "click", "click", "apply"];

/// The generator's view of the database: which ids exist.
#[derive(Debug)]
pub struct Model {
    rng: StdRng,
    cfg: ModelConfig,
    next_job: i64,
    next_activity: i64,
    next_revenue: i64,
    /// Live jobs, oldest first (Zipf rank 1 = the oldest live job: the hot ones stay hot).
    jobs: Vec<i64>,
    /// A sample of live activity rows (id, job) to move.
    activity: Vec<(i64, i64)>,
    excluded: BTreeSet<i64>,
}

impl Model {
    /// A model of an empty database.
    pub fn new(cfg: ModelConfig) -> Model {
        Model {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            next_job: 1,
            next_activity: 1,
            next_revenue: 1,
            jobs: Vec::new(),
            activity: Vec::new(),
            excluded: BTreeSet::new(),
        }
    }

    /// Live job ids.
    pub fn jobs(&self) -> &[i64] {
        &self.jobs
    }

    /// Every job id ever created (live or deleted): the keys whose Doris rows must match PostgreSQL.
    pub fn all_job_ids(&self) -> std::ops::Range<i64> {
        1..self.next_job
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn hot_job(&mut self) -> Option<i64> {
        let n = self.jobs.len();
        if n == 0 {
            return None;
        }
        let rank = Zipf::new(n as f64, self.cfg.zipf_exponent)
            .map(|z| z.sample(&mut self.rng) as usize)
            .unwrap_or(1);
        self.jobs.get(rank.saturating_sub(1).min(n - 1)).copied()
    }

    fn any_job(&mut self) -> Option<i64> {
        if self.jobs.is_empty() {
            None
        } else {
            let i = self.rng.random_range(0..self.jobs.len());
            Some(self.jobs[i])
        }
    }

    /// A new job (used to seed and by the stream).
    pub fn new_job(&mut self) -> Change {
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.push(id);
        let client_id = self.rng.random_range(1..=self.cfg.clients);
        let category = self.pick(CATEGORIES).to_string();
        let location = self.pick(LOCATIONS).to_string();
        let base = self.rng.random_range(30..150) * 1000;
        // One job in 20 has a title long enough to be TOASTed out of line (> 2 kB even compressed).
        let title = if self.rng.random_range(0..20) == 0 {
            let mut t = format!("Senior {category} lead #{id}:");
            while t.len() < 3000 {
                let w = self.rng.random_range(0..WORDS.len());
                t.push(' ');
                t.push_str(WORDS[w]);
                t.push_str(&self.rng.random_range(0..1000u32).to_string());
            }
            t
        } else {
            format!(
                "{} {category} specialist #{id}",
                self.pick(&["Junior", "Senior", "Staff", "Principal"])
            )
        };
        Change::NewJob {
            id,
            client_id,
            title,
            category,
            location,
            salary_min: base,
            salary_max: base + 20_000,
        }
    }

    /// The next change of the stream.
    pub fn next_change(&mut self) -> Change {
        if self.jobs.len() < 5 {
            return self.new_job();
        }
        let roll = self.rng.random_range(0..1000);
        match roll {
            0..=99 => self.new_job(),
            100..=199 => match self.any_job() {
                Some(id) => Change::SetStatus {
                    id,
                    status: self.pick(STATUSES).to_string(),
                },
                None => self.new_job(),
            },
            200..=259 => match self.any_job() {
                Some(id) => {
                    let base = self.rng.random_range(30..150) * 1000;
                    Change::SetSalary {
                        id,
                        salary_min: base,
                        salary_max: base + self.rng.random_range(5..40) * 1000,
                    }
                }
                None => self.new_job(),
            },
            260..=279 => match self.any_job() {
                Some(id) => Change::MoveJob {
                    id,
                    client_id: self.rng.random_range(1..=self.cfg.clients),
                },
                None => self.new_job(),
            },
            280..=799 => match self.hot_job() {
                Some(job_id) => {
                    let n = self.rng.random_range(1..=8);
                    let first_id = self.next_activity;
                    self.next_activity += n;
                    let types: Vec<String> =
                        (0..n).map(|_| self.pick(ACTIVITY).to_string()).collect();
                    for i in 0..n {
                        if self.activity.len() < 4096 {
                            self.activity.push((first_id + i, job_id));
                        } else {
                            let slot = self.rng.random_range(0..self.activity.len());
                            self.activity[slot] = (first_id + i, job_id);
                        }
                    }
                    Change::Activity {
                        first_id,
                        job_id,
                        types,
                    }
                }
                None => self.new_job(),
            },
            800..=899 => match self.hot_job() {
                Some(job_id) => {
                    let id = self.next_revenue;
                    self.next_revenue += 1;
                    Change::Revenue {
                        id,
                        job_id,
                        amount_cents: self.rng.random_range(1_000..500_000),
                        days_ago: self.rng.random_range(0..90),
                    }
                }
                None => self.new_job(),
            },
            900..=929 => {
                let client_id = self.rng.random_range(1..=self.cfg.clients);
                if self.excluded.insert(client_id) {
                    Change::ExcludeClient {
                        client_id,
                        reason: self
                            .pick(&["fraud review", "unpaid invoices", "test account"])
                            .to_string(),
                    }
                } else {
                    self.excluded.remove(&client_id);
                    Change::IncludeClient { client_id }
                }
            }
            930..=959 => {
                // Delete a job that is not among the hottest, so hot keys stay hot.
                if self.jobs.len() > 20 {
                    let i = self.rng.random_range(10..self.jobs.len());
                    let id = self.jobs.remove(i);
                    self.activity.retain(|(_, j)| *j != id);
                    Change::DeleteJob { id }
                } else {
                    self.new_job()
                }
            }
            _ => {
                if self.activity.is_empty() {
                    return self.new_job();
                }
                let slot = self.rng.random_range(0..self.activity.len());
                let (id, from) = self.activity[slot];
                match self.any_job().filter(|j| *j != from) {
                    Some(to_job_id) => {
                        self.activity[slot] = (id, to_job_id);
                        Change::MoveActivity { id, to_job_id }
                    }
                    None => self.new_job(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_every_kind_appears() {
        let mut a = Model::new(ModelConfig::default());
        let mut b = Model::new(ModelConfig::default());
        let mut kinds = BTreeSet::new();
        for _ in 0..5000 {
            let ca = a.next_change();
            assert_eq!(ca, b.next_change());
            kinds.insert(ca.kind());
        }
        assert_eq!(kinds.len(), 10, "{kinds:?}");
    }

    #[test]
    fn activity_is_skewed_towards_hot_jobs() {
        let mut m = Model::new(ModelConfig::default());
        let mut per_job = std::collections::BTreeMap::<i64, usize>::new();
        for _ in 0..20000 {
            if let Change::Activity { job_id, .. } = m.next_change() {
                *per_job.entry(job_id).or_default() += 1;
            }
        }
        let mut counts: Vec<usize> = per_job.values().copied().collect();
        counts.sort_unstable_by(|x, y| y.cmp(x));
        let total: usize = counts.iter().sum();
        let top5: usize = counts.iter().take(5).sum();
        assert!(
            top5 * 4 > total,
            "the 5 hottest jobs should get over a quarter of activity: {top5}/{total}"
        );
    }
}
