//! The world a pipeline test runs in: its own PostgreSQL database with the job-analytics schema, its own topics,
//! consumer group and in-process doris-sim; helpers to apply changes, run the pipeline (in process or as the binary),
//! register a real Debezium connector, and compare Doris with the merge query.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdc2doris::pipeline;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

pub const TABLES: [&str; 4] = [
    "jobs",
    "job_activity",
    "clients_to_exclude",
    "standard_revenue",
];

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn bootstrap() -> String {
    std::env::var("CDC2DORIS_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

pub fn pg_url(db: &str) -> String {
    let base = std::env::var("CDC2DORIS_PG_URL")
        .unwrap_or_else(|_| "postgres://cdc2doris@127.0.0.1:5432/postgres".into());
    match base.rfind('/') {
        Some(i) => format!("{}/{db}", &base[..i]),
        None => base,
    }
}

pub fn pg_password() -> String {
    std::env::var("CDC2DORIS_PG_PASSWORD").unwrap_or_else(|_| "cdc2doris".to_string())
}

pub async fn connect(db: &str) -> tokio_postgres::Client {
    let mut cfg: tokio_postgres::Config = pg_url(db).parse().expect("pg url");
    cfg.password(pg_password());
    let (c, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL ({e}); run `dev/stack up` first"));
    tokio::spawn(conn);
    c
}

/// The doris-sim profile tests run against: `DORIS_SIM_VERSION` (2.1, 3.0, 3.1, 4.0), else the newest.
/// `dev/test` runs the sink and pipeline tests a second time with the oldest.
pub fn doris_sim_version() -> doris_sim::DorisVersion {
    match std::env::var("DORIS_SIM_VERSION") {
        Ok(v) if !v.trim().is_empty() => v
            .parse()
            .unwrap_or_else(|e| panic!("DORIS_SIM_VERSION: {e}")),
        _ => doris_sim::DorisVersion::default(),
    }
}

/// One test's world: its own database, topics, consumer group and doris-sim.
pub struct World {
    pub db: String,
    pub prefix: String,
    pub group: String,
    pub dir: tempfile::TempDir,
    pub sim: doris_sim::Sim,
    pub pg: tokio_postgres::Client,
    pub producer: FutureProducer,
    pub admin_port: u16,
}

impl World {
    pub async fn new(name: &str, partitions: i32) -> World {
        World::with_sim(name, partitions, |_| {}).await
    }

    /// [`World::new`] with doris-sim's options adjusted by `sim_options` (a password, TLS…).
    pub async fn with_sim(
        name: &str,
        partitions: i32,
        sim_options: impl FnOnce(&mut doris_sim::SimOptions),
    ) -> World {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,cdc2doris=info".into()),
            )
            .try_init();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db = format!("t_{name}_{}", &id[..12]);
        let admin = connect("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .expect("create database");
        let pg = connect(&db).await;
        let schema = std::fs::read_to_string(repo().join("examples/job-analytics/postgres.sql"))
            .expect("postgres.sql");
        pg.batch_execute(&schema).await.expect("schema");
        let prefix = format!("{name}_{}", &id[..12]);
        let client: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .expect("admin");
        let topics: Vec<String> = TABLES
            .iter()
            .map(|t| jobgen::debezium::topic(&prefix, t))
            .collect();
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
            .collect();
        for r in client
            .create_topics(&new, &AdminOptions::new())
            .await
            .expect("create topics")
        {
            r.expect("topic");
        }
        let ddl = std::fs::read_to_string(repo().join("examples/job-analytics/doris.sql"))
            .expect("doris.sql");
        let mut options = doris_sim::SimOptions {
            fe_port: 0,
            be_port: 0,
            ddl: vec![ddl],
            user: "root".into(),
            password: "".into(),
            doris_version: doris_sim_version(),
            ..Default::default()
        };
        sim_options(&mut options);
        let sim = doris_sim::Sim::start(options).await.expect("doris-sim");
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        World {
            db,
            prefix,
            group: format!("g-{id}"),
            dir: tempfile::tempdir().expect("tempdir"),
            sim,
            pg,
            producer,
            admin_port,
        }
    }

    pub fn topic(&self, table: &str) -> String {
        jobgen::debezium::topic(&self.prefix, table)
    }

    /// The example pipeline.toml, pointed at this world.
    pub fn write_config(&self, extra_batch: &str) -> PathBuf {
        self.write_config_at(extra_batch, self.admin_port, "pipeline.toml")
    }

    /// [`World::write_config`] with `doris.query_host`/`query_port` pointing at this world's doris-sim, for
    /// `verify` and the schema check.
    pub fn write_config_with_query_port(&self) -> PathBuf {
        let path = self.write_config("");
        replace_in_config(
            &path,
            "label_prefix = \"t\"\n",
            &format!(
                "label_prefix = \"t\"\nquery_host = \"127.0.0.1\"\nquery_port = {}\n",
                self.sim.query_addr().port()
            ),
        );
        path
    }

    /// A config for one more instance in the same consumer group, with its own admin port.
    pub fn write_config_at(&self, extra_batch: &str, admin_port: u16, file: &str) -> PathBuf {
        let merge = repo().join("examples/job-analytics/merge.sql");
        let rules: String = [("jobs", "id", ""), ("job_activity", "job_id", ""), ("standard_revenue", "job_id", ""),
            ("clients_to_exclude", "client_id", "resolve_query = \"SELECT id FROM jobs WHERE client_id = ANY($1)\"")]
            .iter()
            .map(|(t, f, extra)| format!("[[keys.rules]]\ntopic = \"{}\"\nformat = \"debezium\"\nfields = [\"{f}\"]\n{extra}\n", self.topic(t)))
            .collect();
        let text = format!(
            r#"[kafka]
bootstrap_servers = ["{bootstrap}"]
group_id = "{group}"
topics = [{topics}]
revoke_timeout = "20s"

[postgres]
url = "{url}"
password_env = "CDC2DORIS_TEST_PG_PASSWORD"
pool_size = 4

[keys]
{rules}
[merge]
query_file = "{merge}"
key_column = "job_id"
key_type = "integer"
chunk_size = 500

[doris]
fe_urls = ["{fe}"]
database = "job_analytics"
table = "merged_job_data"
sequence_column = "source_version"
label_prefix = "t"
retry_min_delay = "50ms"

[batch]
max_wait = "300ms"
{extra_batch}

[dead_letter]
path = "{dl}"

[admin]
listen = "127.0.0.1:{port}"

[log]
progress_interval = "5s"
"#,
            bootstrap = bootstrap(),
            group = self.group,
            topics = TABLES
                .iter()
                .map(|t| format!("\"{}\"", self.topic(t)))
                .collect::<Vec<_>>()
                .join(", "),
            url = pg_url(&self.db),
            merge = merge.display(),
            fe = self.sim.fe_url(),
            dl = self.dir.path().join("dead.jsonl").display(),
            port = admin_port,
        );
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).expect("write config");
        path
    }

    pub fn start(
        &self,
        config: &Path,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<Result<(), pipeline::PipelineError>>,
    ) {
        // SAFETY-free: set the password variable the config names (tests share it; same value).
        unsafe_env_set("CDC2DORIS_TEST_PG_PASSWORD", &pg_password());
        let cfg = cdc2doris::config::load(config)
            .unwrap_or_else(|e| panic!("config: {e}: {:?}", e.problems()));
        let stop = CancellationToken::new();
        let handle = tokio::spawn(pipeline::run(cfg, None, stop.clone()));
        (stop, handle)
    }

    /// Applies changes in PostgreSQL and writes their Debezium events to Kafka.
    pub async fn apply(&mut self, changes: &[jobgen::Change]) -> usize {
        let mut events = 0;
        let mut pending = Vec::new();
        for change in changes {
            let evs = jobgen::apply(&mut self.pg, change)
                .await
                .unwrap_or_else(|e| panic!("apply {change:?}: {e}"));
            for ev in &evs {
                let (key, value) = jobgen::debezium::message(&self.prefix, &self.db, ev, 0);
                let topic = self.topic(ev.table);
                pending.push(
                    self.producer
                        .send_result(FutureRecord::to(&topic).key(&key).payload(&value))
                        .map_err(|(e, _)| e)
                        .expect("enqueue"),
                );
                events += 1;
            }
        }
        for p in pending {
            p.await
                .expect("delivery")
                .map_err(|(e, _)| e)
                .expect("delivered");
        }
        events
    }

    /// `cdc2doris verify` (the product's own, over doris-sim's MySQL query port) of the keys `ids` against the merge
    /// query; its ranges are open-ended, so a Doris row outside `ids` is found too (as `extra`). Keys that differ are
    /// re-checked at once (`recheck_after` 0); every example is kept.
    pub async fn verify(&self, ids: std::ops::Range<i64>) -> cdc2doris::verify::VerifyReport {
        let path = self.dir.path().join("verify.toml");
        if !path.exists() {
            self.write_config_at("", self.admin_port, "verify.toml");
            replace_in_config(
                &path,
                "label_prefix = \"t\"\n",
                &format!(
                    "label_prefix = \"t\"\nquery_host = \"127.0.0.1\"\nquery_port = {}\n",
                    self.sim.query_addr().port()
                ),
            );
        }
        unsafe_env_set("CDC2DORIS_TEST_PG_PASSWORD", &pg_password());
        let config = cdc2doris::config::load(&path)
            .unwrap_or_else(|e| panic!("config: {e}: {:?}", e.problems()));
        let opts = cdc2doris::verify::VerifyOptions {
            keys_query: Some(format!(
                "SELECT g FROM generate_series({}::int8, {}::int8) AS g",
                ids.start,
                ids.end - 1
            )),
            sample: None,
            range_keys: 10_000,
            examples: usize::MAX,
            repair: false,
            recheck_after: Duration::ZERO,
            progress: false,
        };
        cdc2doris::verify::run_verify(&config, &opts, CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("verify: {e:?}"))
    }

    /// Waits until Doris matches PostgreSQL over `ids`; panics with the last report after `within`.
    pub async fn converge(
        &self,
        ids: std::ops::Range<i64>,
        within: Duration,
    ) -> cdc2doris::verify::VerifyReport {
        let start = Instant::now();
        loop {
            let r = self.verify(ids.clone()).await;
            if r.clean() {
                return r;
            }
            if start.elapsed() > within {
                panic!("Doris did not converge in {within:?}: {}", r.render_text());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Committed offsets of the group and end offsets, per topic partition.
    pub fn committed_vs_end(&self, partitions: i32) -> Vec<(String, i32, i64, i64)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", &self.group)
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for t in TABLES {
            for p in 0..partitions {
                tpl.add_partition(&self.topic(t), p);
            }
        }
        let committed = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed");
        committed
            .elements()
            .iter()
            .map(|e| {
                let (_, high) = c
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
                    .expect("watermarks");
                let got = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                (e.topic().to_string(), e.partition(), got, high)
            })
            .collect()
    }

    pub async fn debug_state(&self) -> serde_json::Value {
        debug_state_at(self.admin_port).await
    }
}

pub async fn debug_state_at(port: u16) -> serde_json::Value {
    let body = admin_get(port, "/debug/state").await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The body of `GET path` on the admin endpoint.
pub async fn admin_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("admin port");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    buf.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

impl World {
    pub async fn cleanup(self) {
        self.sim.shutdown().await;
        drop(self.pg);
        let admin = connect("postgres").await;
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .await;
    }
}

/// Cancels a pipeline started by [`World::start`] and checks it drained and returned `Ok`.
pub async fn stop_gracefully(
    stop: CancellationToken,
    run: tokio::task::JoinHandle<Result<(), pipeline::PipelineError>>,
) {
    stop.cancel();
    run.await.expect("join").expect("graceful shutdown");
}

impl World {
    /// Waits (bounded) until the running pipeline committed every partition to its end: it read every
    /// message and Doris acknowledged them (or they were handled). Call before stopping it.
    pub async fn wait_all_committed(&self, partitions: i32) {
        let start = Instant::now();
        loop {
            let behind: Vec<_> = self
                .committed_vs_end(partitions)
                .into_iter()
                .filter(|(_, _, c, e)| c != e)
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "not committed to the end after 60 s: {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Every partition's committed offset is its end offset: every message was acknowledged or handled.
    pub fn assert_all_committed(&self, partitions: i32, why: &str) {
        for (t, p, committed, end) in self.committed_vs_end(partitions) {
            assert_eq!(committed, end, "{t}/{p}: {why}");
        }
    }
}

#[allow(
    unsafe_code,
    reason = "set_var is unsafe in edition 2024; these tests set one constant value before reading it"
)]
pub fn unsafe_env_set(k: &str, v: &str) {
    // Tests in this file set one variable to one constant value; no test reads a different value.
    if std::env::var(k).ok().as_deref() != Some(v) {
        unsafe { std::env::set_var(k, v) };
    }
}

pub fn model() -> jobgen::Model {
    jobgen::Model::new(jobgen::ModelConfig {
        seed: 7,
        clients: 8,
        zipf_exponent: 1.2,
    })
}

/// The binary, run as a child process with the test's config.
/// The binary the tests spawn: this build's, or another one named by `CDC2DORIS_TEST_BIN` (to show that a test
/// fails against an older build).
pub fn binary() -> PathBuf {
    std::env::var_os("CDC2DORIS_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cdc2doris")))
}

pub fn spawn_binary(config: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    std::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(config)
        .env("CDC2DORIS_TEST_PG_PASSWORD", pg_password())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn cdc2doris")
}

pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

pub fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            start.elapsed() < within,
            "cdc2doris did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Real CDC: Debezium's PostgreSQL connector (Kafka Connect of `dev/stack up --with-debezium`) captures the changes.

pub fn connect_url() -> String {
    std::env::var("CDC2DORIS_CONNECT_URL").unwrap_or_else(|_| "http://127.0.0.1:8083".to_string())
}

/// A Debezium connector for one World's database; deleted (and its slot dropped) by `remove`.
pub struct Debezium {
    pub name: String,
    pub slot: String,
    pub http: reqwest::Client,
}

impl Debezium {
    pub async fn register(w: &World) -> Debezium {
        let name = format!("dbz-{}", w.prefix);
        let slot = format!("slot_{}", w.prefix).to_lowercase();
        let mut cfg: tokio_postgres::Config = pg_url(&w.db).parse().expect("pg url");
        cfg.password(pg_password());
        let host = "127.0.0.1";
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let config = serde_json::json!({
            "name": name,
            "config": {
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "tasks.max": "1",
                "plugin.name": "pgoutput",
                "database.hostname": host,
                "database.port": port.to_string(),
                "database.user": cfg.get_user().unwrap_or("cdc2doris"),
                "database.password": pg_password(),
                "database.dbname": w.db,
                "topic.prefix": w.prefix,
                "slot.name": slot,
                "publication.name": "cdc2doris_job_analytics",
                "publication.autocreate.mode": "disabled",
                "table.include.list": "public.jobs,public.job_activity,public.clients_to_exclude,public.standard_revenue",
                "snapshot.mode": "initial",
                "decimal.handling.mode": "string",
                "tombstones.on.delete": "true",
            }
        });
        // Slots of earlier runs of this test that failed before their cleanup hold back WAL: drop them.
        let admin = connect("postgres").await;
        let _ = admin
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name LIKE 'slot\\_dbz\\_%' AND NOT active",
                &[],
            )
            .await;
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{}/connectors", connect_url()))
            .json(&config)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Kafka Connect at {} is not reachable ({e}); run `dev/stack up --with-debezium`", connect_url()));
        assert!(
            resp.status().is_success(),
            "register connector: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        let start = Instant::now();
        loop {
            let status: serde_json::Value = http
                .get(format!("{}/connectors/{name}/status", connect_url()))
                .send()
                .await
                .expect("status")
                .json()
                .await
                .unwrap_or_default();
            let running = status["connector"]["state"] == "RUNNING"
                && status["tasks"][0]["state"] == "RUNNING";
            if running {
                break;
            }
            assert!(
                status["tasks"][0]["state"] != "FAILED",
                "connector failed: {status}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "connector not RUNNING after 60 s: {status}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Debezium { name, slot, http }
    }

    pub async fn remove(self) {
        let _ = self
            .http
            .delete(format!("{}/connectors/{}", connect_url(), self.name))
            .send()
            .await;
        let admin = connect("postgres").await;
        let start = Instant::now();
        // The slot stays active until the task has stopped.
        while start.elapsed() < Duration::from_secs(30) {
            let r = admin
                .execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", &[&self.slot])
                .await;
            let left = admin
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&self.slot],
                )
                .await
                .map(|r| r.get::<_, i64>(0))
                .unwrap_or(0);
            if r.is_ok() && left == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl World {
    /// Applies changes in PostgreSQL only: Debezium captures them.
    pub async fn apply_pg(&mut self, changes: &[jobgen::Change]) {
        for change in changes {
            jobgen::apply(&mut self.pg, change)
                .await
                .unwrap_or_else(|e| panic!("apply {change:?}: {e}"));
        }
    }
}

impl World {
    /// Deletes the world's topics and creates them again, empty (offsets start at 0 again), with a new producer.
    pub async fn recreate_topics(&mut self, partitions: i32) {
        for t in TABLES {
            super::delete_topic(&self.topic(t)).await;
        }
        let client: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .expect("admin");
        for t in TABLES {
            let name = self.topic(t);
            let start = Instant::now();
            // A deleted topic's name is free again once the controller finished deleting it.
            loop {
                let r = client
                    .create_topics(
                        &[NewTopic::new(&name, partitions, TopicReplication::Fixed(1))],
                        &AdminOptions::new(),
                    )
                    .await
                    .expect("create topics");
                if r.iter().all(Result::is_ok) {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "cannot recreate {name}: {r:?}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        self.producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
    }

    /// The rows doris-sim holds, by key.
    pub async fn doris_rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.sim
            .client()
            .rows("job_analytics", "merged_job_data")
            .await
            .expect("sim rows")
    }
}

/// A new job of client 1 with default fields.
pub fn plain_job(id: i64) -> jobgen::Change {
    job_with(id, &format!("job {id}"), "sales")
}

/// A new job of client 1 with this title and category.
pub fn job_with(id: i64, title: &str, category: &str) -> jobgen::Change {
    jobgen::Change::NewJob {
        id,
        client_id: 1,
        title: title.to_string(),
        category: category.to_string(),
        location: "Remote".into(),
        salary_min: 1000,
        salary_max: 2000,
    }
}

/// Points the config at `path` as the merge query: the example query wrapped by `wrap` (which gets its text without
/// the final `;`).
pub fn use_merge_query(config: &Path, path: &Path, wrap: impl FnOnce(&str) -> String) {
    let example = repo().join("examples/job-analytics/merge.sql");
    let merge = std::fs::read_to_string(&example).expect("merge.sql");
    std::fs::write(path, wrap(merge.trim_end().trim_end_matches(';'))).expect("write merge");
    replace_in_config(
        config,
        &example.display().to_string(),
        &path.display().to_string(),
    );
}

/// Replaces every `from` in the config file with `to`; panics when `from` is not there (the edit would be lost).
pub fn replace_in_config(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).expect("read config");
    assert!(
        text.contains(from),
        "{from:?} not found in {}",
        config.display()
    );
    std::fs::write(config, text.replace(from, to)).expect("write config");
}

/// Appends TOML (e.g. a `[kafka.properties]` table) to the config file.
pub fn append_to_config(config: &Path, toml: &str) {
    let text = std::fs::read_to_string(config).expect("read config");
    std::fs::write(
        config,
        format!(
            "{text}
{toml}"
        ),
    )
    .expect("write config");
}

impl World {
    /// Writes one message to a topic and waits for its delivery.
    /// The dead-letter file of the world's config: its text (for messages) and its records.
    pub fn dead_letters(&self) -> (String, Vec<serde_json::Value>) {
        let text = std::fs::read_to_string(self.dir.path().join("dead.jsonl")).unwrap_or_default();
        let records = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        (text, records)
    }

    pub async fn produce(&self, topic: &str, key: &str, value: &str) {
        self.producer
            .send(
                FutureRecord::to(topic).key(key).payload(value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
}
