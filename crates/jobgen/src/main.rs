//! `jobgen`: the job-analytics change generator and the demo's helpers.
//!
//! - `generate`: apply a seeded stream of changes to PostgreSQL at a given rate, optionally writing the matching
//!   Debezium events straight to Kafka (benchmarks; no Kafka Connect needed), optionally printing a progress line.
//! - `reset-kafka`: delete the demo's topics and consumer group, create the topics again.
//! - `backlog`: write N synthetic Debezium events about a bulk-seeded database to Kafka, as fast as the producer
//!   allows (the end-to-end benchmark, `bench/pipeline`).
//! - `wait`: wait until a running cdc2doris has loaded and committed everything captured, then summarize.
//!
//! Whether Doris holds what the merge query returns is `cdc2doris verify`'s job (the product's own check).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use jobgen::backlog::{Backlog, Mix, Seeded};
use jobgen::watch::{histogram_quantile, Sample, Watcher};
use jobgen::{apply, debezium, Change, Model, ModelConfig, RowOp};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message as _};
use rdkafka::producer::{
    BaseRecord, FutureProducer, FutureRecord, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

/// The four captured tables, in the order of `examples/job-analytics/postgres.sql`.
const TABLES: [&str; 4] = [
    "jobs",
    "job_activity",
    "clients_to_exclude",
    "standard_revenue",
];

#[derive(Debug, Parser)]
#[command(
    name = "jobgen",
    about = "Seeded change generator for the job-analytics reference database, and the demo's helpers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply a seeded stream of changes at a given rate; print a JSON summary last.
    Generate(GenerateArgs),
    /// Delete the topics and the consumer group, then create the topics again.
    ResetKafka(ResetKafkaArgs),
    /// Write N synthetic Debezium events about a seeded database to Kafka, as fast as the producer allows.
    Backlog(BacklogArgs),
    /// Wait until cdc2doris has loaded and committed every captured event, then print a summary.
    Wait(WaitArgs),
    /// Write poison messages (unusable input) into the topics; print where each landed, one JSON line each.
    Poison(PoisonArgs),
    /// Wait until the group committed every message the topics hold now; print the seconds it took (dev/chaos).
    CatchUp(CatchUpArgs),
}

#[derive(Debug, clap::Args)]
struct PoisonArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Topic prefix: the messages go to `<prefix>.public.<table>`, a table drawn from the seed.
    #[arg(long, default_value = "enhanced_job_server_v2")]
    topic_prefix: String,
    /// What is wrong with the messages.
    #[arg(long, value_enum)]
    kind: jobgen::chaos::PoisonKind,
    /// How many messages.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// RNG seed (tables, ids, where a message is cut).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct CatchUpArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Debezium topic prefix.
    #[arg(long, default_value = "enhanced_job_server_v2")]
    topic_prefix: String,
    /// cdc2doris's consumer group.
    #[arg(long)]
    group: String,
    /// Give up (exit 1) after this long.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, clap::Args)]
struct PgArgs {
    /// PostgreSQL URL of the enhanced_job_server_v2 database (no password in it).
    #[arg(long, env = "JOBGEN_PG_URL")]
    pg_url: String,
    /// Environment variable holding the PostgreSQL password.
    #[arg(long, default_value = "CDC2DORIS_PG_PASSWORD")]
    password_env: String,
}

/// Where the pipeline runs, for the progress line and `wait`.
#[derive(Debug, clap::Args)]
struct WatchArgs {
    /// cdc2doris admin address (its `/debug/state` and `/metrics`), e.g. http://127.0.0.1:9464.
    #[arg(long)]
    admin_url: Option<String>,
    /// Kafka cluster whose topics Debezium writes (end offsets = events captured).
    #[arg(long)]
    watch_kafka: Option<String>,
    /// cdc2doris's consumer group (committed offsets give the lag).
    #[arg(long, default_value = "cdc2doris-job-analytics")]
    group: String,
    /// Interval of the progress line.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
}

impl WatchArgs {
    fn watcher(&self, topic_prefix: &str) -> Option<Watcher> {
        Some(Watcher {
            admin_url: self.admin_url.clone()?,
            bootstrap: self.watch_kafka.clone()?,
            topics: topics(topic_prefix),
            group: self.group.clone(),
        })
    }
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    #[command(flatten)]
    pg: PgArgs,
    /// Run this schema file first (examples/job-analytics/postgres.sql) in the (empty) database.
    #[arg(long)]
    create_schema: Option<PathBuf>,
    /// RNG seed: the same seed gives the same stream.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of clients.
    #[arg(long, default_value_t = 50)]
    clients: i64,
    /// Jobs created before the stream starts.
    #[arg(long, default_value_t = 200)]
    initial_jobs: usize,
    /// Changes per second (each change is one transaction).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long to run, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many changes (besides the initial jobs), whatever the duration.
    #[arg(long)]
    max_changes: Option<u64>,
    /// Also write Debezium JSON events for every row change to this Kafka cluster.
    #[arg(long)]
    kafka_bootstrap: Option<String>,
    /// Debezium topic prefix (`<prefix>.public.<table>`).
    #[arg(long, default_value = "enhanced_job_server_v2")]
    topic_prefix: String,
    /// Write every change applied (JSON lines) to this file.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    summary_file: Option<PathBuf>,
    /// On a failed change (PostgreSQL restarted, say) reconnect for up to 120 s and go on with the next change
    /// instead of stopping; the summary counts them as `failed_changes`. Commits are then durable
    /// (`synchronous_commit` stays on), so a crash loses no change counted as made (dev/chaos).
    #[arg(long)]
    keep_going: bool,
    /// Print a progress line while generating (needs --admin-url and --watch-kafka).
    #[command(flatten)]
    watch: WatchArgs,
}

#[derive(Debug, clap::Args)]
struct ResetKafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Debezium topic prefix: the topics are `<prefix>.public.{jobs,job_activity,clients_to_exclude,standard_revenue}`.
    #[arg(long, default_value = "enhanced_job_server_v2")]
    topic_prefix: String,
    /// Consumer group to delete.
    #[arg(long)]
    group: String,
    /// Partitions of the topics created afterwards (0: do not create them).
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// The created topics' `max.message.bytes` (default: the broker's, 1 MiB); dev/chaos raises it for its 5 MB
    /// poison message.
    #[arg(long)]
    max_message_bytes: Option<u32>,
    /// How long deleting and creating may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, clap::Args)]
struct BacklogArgs {
    /// The seeded database the events are about (its ids are read, nothing is written).
    #[command(flatten)]
    pg: PgArgs,
    /// Kafka bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Topic prefix: events go to `<prefix>.public.<table>`; create the topics first (reset-kafka).
    #[arg(long, default_value = "bench")]
    topic_prefix: String,
    /// Events to write.
    #[arg(long, default_value_t = Mix::default().events)]
    events: u64,
    /// RNG seed: the same seed and database give the same events.
    #[arg(long, default_value_t = Mix::default().seed)]
    seed: u64,
    /// Share of `jobs` updates; raised to one per job when --events allows, so every job reaches Doris.
    #[arg(long, default_value_t = Mix::default().jobs_share)]
    jobs_share: f64,
    /// Share of `standard_revenue` inserts.
    #[arg(long, default_value_t = Mix::default().revenue_share)]
    revenue_share: f64,
    /// Number of `clients_to_exclude` inserts (each refreshes every job of its client).
    #[arg(long, default_value_t = Mix::default().exclusions)]
    exclusions: u64,
    /// Share of updates among the `job_activity` events (the rest are inserts).
    #[arg(long, default_value_t = Mix::default().activity_update_share)]
    activity_update_share: f64,
    /// Zipf exponent of activity over jobs (higher: hotter hot jobs).
    #[arg(long, default_value_t = Mix::default().zipf_exponent)]
    zipf_exponent: f64,
    /// Producer compression (librdkafka `compression.type`: none, gzip, snappy, lz4, zstd).
    #[arg(long, default_value = "lz4")]
    compression: String,
    /// Interval of the progress line.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    summary_file: Option<PathBuf>,
    /// Write at this many events per second instead of as fast as possible (a steady stream, `bench/steady`); the
    /// producer then fills its batches for 5 ms instead of 20 ms. Each message's Kafka timestamp is when it was
    /// sent.
    #[arg(long)]
    rate: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct WaitArgs {
    #[command(flatten)]
    watch: WatchArgs,
    /// Debezium topic prefix.
    #[arg(long, default_value = "enhanced_job_server_v2")]
    topic_prefix: String,
    /// Messages the topics must hold before the pipeline counts as caught up (row events + delete tombstones).
    #[arg(long, default_value_t = 0)]
    expect_messages: i64,
    /// Give up after this long.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn topics(prefix: &str) -> Vec<String> {
    TABLES.iter().map(|t| debezium::topic(prefix, t)).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate(a) => generate(a).await,
        Command::ResetKafka(a) => reset_kafka(a).await,
        Command::Backlog(a) => backlog(a).await,
        Command::Wait(a) => wait(a).await,
        Command::Poison(a) => {
            let placed =
                jobgen::chaos::write_poison(&a.bootstrap, &a.topic_prefix, a.kind, a.count, a.seed)
                    .await?;
            for p in placed {
                println!("{}", serde_json::to_string(&p)?);
            }
            Ok(())
        }
        Command::CatchUp(a) => {
            let w = Watcher {
                admin_url: String::new(),
                bootstrap: a.bootstrap,
                topics: topics(&a.topic_prefix),
                group: a.group,
            };
            let took = jobgen::chaos::catch_up(&w, a.timeout).await?;
            println!("{:.3}", took.as_secs_f64());
            Ok(())
        }
    }
}

async fn connect(pg: &PgArgs) -> anyhow::Result<(tokio_postgres::Client, String)> {
    let mut cfg: tokio_postgres::Config = pg
        .pg_url
        .parse()
        .context("--pg-url is not a PostgreSQL URL")?;
    if let Ok(p) = std::env::var(&pg.password_env) {
        cfg.password(p);
    }
    let database = cfg
        .get_dbname()
        .unwrap_or("enhanced_job_server_v2")
        .to_string();
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", pg.pg_url))?;
    tokio::spawn(conn);
    Ok((client, database))
}

/// Prints `[  12s] <line>` every `every` forever (the caller drops it when done).
async fn progress_loop(
    watcher: &Watcher,
    every: Duration,
    start: Instant,
    prefix: impl Fn() -> String,
) {
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let line = match watcher.sample(&http).await {
            Ok(s) => s.progress(),
            Err(e) => format!("(no sample: {e})"),
        };
        println!("[{:>4}s] {}{line}", start.elapsed().as_secs(), prefix());
    }
}

async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let (mut client, database) = connect_generator(&args.pg, args.keep_going).await?;
    if let Some(schema) = &args.create_schema {
        let sql = std::fs::read_to_string(schema)
            .with_context(|| format!("cannot read {}", schema.display()))?;
        client
            .batch_execute(&sql)
            .await
            .context("creating the schema")?;
    }
    let producer: Option<FutureProducer> = match &args.kafka_bootstrap {
        Some(b) => Some(
            ClientConfig::new()
                .set("bootstrap.servers", b)
                .set("linger.ms", "5")
                .set("enable.idempotence", "true")
                .create()
                .context("cannot create the Kafka producer")?,
        ),
        None => None,
    };
    let mut record = match &args.record {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };

    let start = Instant::now();
    let changes_done = AtomicU64::new(0);
    let events_done = AtomicU64::new(0);
    let run = run_changes(
        &args,
        &mut client,
        &database,
        producer.as_ref(),
        record.as_mut(),
        start,
        (&changes_done, &events_done),
    );
    let summary = match args.watch.watcher(&args.topic_prefix) {
        Some(w) => {
            let prefix = || {
                format!(
                    "changes {} ({} row events) | ",
                    changes_done.load(Ordering::Relaxed),
                    events_done.load(Ordering::Relaxed)
                )
            };
            tokio::select! {
                r = run => r?,
                () = progress_loop(&w, args.watch.progress_every, start, prefix) => unreachable!("the progress loop never ends"),
            }
        }
        None => run.await?,
    };
    if let Some(r) = record.as_mut() {
        r.flush().context("writing the record file")?;
    }
    emit_summary(&summary, args.summary_file.as_deref())
}

/// A session for the generator. Each change is a transaction; waiting for its WAL flush would cap the rate at the
/// disk's fsync rate, and a generator's changes need no durability guarantee — unless `durable` (--keep-going, for
/// dev/chaos): a crash of PostgreSQL would then lose changes the generator counted as made.
async fn connect_generator(
    pg: &PgArgs,
    durable: bool,
) -> anyhow::Result<(tokio_postgres::Client, String)> {
    let (client, database) = connect(pg).await?;
    if !durable {
        client
            .batch_execute("SET synchronous_commit TO off")
            .await
            .context("configuring the session")?;
    }
    Ok((client, database))
}

/// Connects again after a failed change, trying for up to 120 s.
async fn reconnect(pg: &PgArgs) -> anyhow::Result<tokio_postgres::Client> {
    let start = Instant::now();
    loop {
        match connect_generator(pg, true).await {
            Ok((c, _)) => return Ok(c),
            Err(e) if start.elapsed() >= Duration::from_secs(120) => {
                return Err(e.context("reconnecting after a failed change"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The generation loop: the initial jobs as fast as possible, then one change per period. Returns the summary.
async fn run_changes(
    args: &GenerateArgs,
    client: &mut tokio_postgres::Client,
    database: &str,
    producer: Option<&FutureProducer>,
    mut record: Option<&mut std::io::BufWriter<std::fs::File>>,
    start: Instant,
    (changes_done, events_done): (&AtomicU64, &AtomicU64),
) -> anyhow::Result<serde_json::Value> {
    let mut model = Model::new(ModelConfig {
        seed: args.seed,
        clients: args.clients,
        ..ModelConfig::default()
    });
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut events = 0u64;
    let mut deletes = 0u64;
    let mut lsn = 0i64;
    let mut changes = 0u64;
    let mut failed = 0u64;
    let mut initial = args.initial_jobs;
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut next_at = tokio::time::Instant::now();
    loop {
        let change: Change = if initial > 0 {
            initial -= 1;
            model.new_job()
        } else {
            if start.elapsed() >= args.duration || args.max_changes.is_some_and(|m| changes >= m) {
                break;
            }
            next_at += period;
            tokio::time::sleep_until(next_at).await;
            changes += 1;
            model.next_change()
        };
        let evs = match apply(client, &change).await {
            Ok(evs) => evs,
            Err(e) if args.keep_going => {
                failed += 1;
                eprintln!("jobgen: change {change:?} failed ({e}); going on");
                if client.is_closed() {
                    *client = reconnect(&args.pg).await?;
                }
                continue;
            }
            Err(e) => return Err(anyhow::Error::from(e).context(format!("applying {change:?}"))),
        };
        *counts.entry(change.kind()).or_default() += 1;
        events += evs.len() as u64;
        deletes += evs.iter().filter(|e| e.op == RowOp::Delete).count() as u64;
        changes_done.fetch_add(1, Ordering::Relaxed);
        events_done.fetch_add(evs.len() as u64, Ordering::Relaxed);
        if let Some(p) = producer {
            for ev in &evs {
                lsn += 1;
                let topic = debezium::topic(&args.topic_prefix, ev.table);
                let (key, value) = debezium::message(&args.topic_prefix, database, ev, lsn);
                p.send(
                    FutureRecord::to(&topic).key(&key).payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
            }
        }
        if let Some(r) = record.as_mut() {
            let line = serde_json::json!({"change": change, "events": evs.len()});
            writeln!(r, "{line}").context("writing the record file")?;
        }
    }
    Ok(serde_json::json!({
        "changes": counts,
        "row_events": events,
        "delete_events": deletes,
        "jobs_ever": model.all_job_ids().end - 1,
        "jobs_live": model.jobs().len(),
        "failed_changes": failed,
        "seconds": start.elapsed().as_secs_f64(),
    }))
}

async fn reset_kafka(args: ResetKafkaArgs) -> anyhow::Result<()> {
    let topics = topics(&args.topic_prefix);
    let r = jobgen::kafka_reset::reset(
        &args.bootstrap,
        &topics,
        &args.group,
        args.partitions,
        args.max_message_bytes,
        args.timeout,
    )
    .await?;
    println!(
        "Kafka: deleted {} topic(s){}, created {} topic(s) with {} partitions",
        r.deleted_topics.len(),
        if r.deleted_group {
            format!(" and group {}", args.group)
        } else {
            String::new()
        },
        r.created_topics.len(),
        args.partitions
    );
    Ok(())
}

/// Counts delivery reports; keeps the first failure's reason.
#[derive(Default)]
struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| format!("producing to {}: {e}", m.topic()));
                }
            }
        }
    }
}

impl DeliveryCounter {
    fn failure(&self) -> Option<String> {
        if self.failed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let first = self.first_error.lock().ok().and_then(|f| f.clone());
        Some(format!(
            "{} event(s) not delivered; first: {}",
            self.failed.load(Ordering::Relaxed),
            first.unwrap_or_default()
        ))
    }
}

async fn backlog(args: BacklogArgs) -> anyhow::Result<()> {
    let (client, database) = connect(&args.pg).await?;
    let seeded = Seeded::read(&client)
        .await
        .with_context(|| format!("reading the seeded ids from {database}"))?;
    drop(client);
    let mix = Mix {
        events: args.events,
        seed: args.seed,
        jobs_share: args.jobs_share,
        revenue_share: args.revenue_share,
        exclusions: args.exclusions,
        activity_update_share: args.activity_update_share,
        zipf_exponent: args.zipf_exponent,
    };
    let counts = mix.counts(&seeded);
    let jobs = seeded.jobs.len();
    let events = Backlog::new(&mix, seeded)?;
    let rate = match args.rate {
        Some(r) if r.is_finite() && r > 0.0 => Some(r),
        Some(r) => anyhow::bail!("--rate must be a number of events per second above 0, not {r}"),
        None => None,
    };
    let producer: ThreadedProducer<DeliveryCounter> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("compression.type", &args.compression)
        // Large batches, filled for up to 20 ms: throughput over latency (5 ms for a steady stream, whose latency
        // is measured from the send).
        .set("linger.ms", if rate.is_some() { "5" } else { "20" })
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(DeliveryCounter::default())
        .context("cannot create the Kafka producer")?;
    // Rendering and sending never wait for the network; a blocking thread keeps them off the runtime.
    let prefix = args.topic_prefix.clone();
    let every = args.progress_every;
    let (producer, written, bytes, seconds) = tokio::task::spawn_blocking(move || {
        produce(producer, events, &prefix, &database, every, rate)
    })
    .await
    .context("the producing thread failed")??;
    let per_second = written as f64 / seconds.max(1e-9);
    let summary = serde_json::json!({
        "events": written,
        "counts": counts,
        "jobs": jobs,
        "topic_prefix": args.topic_prefix,
        "bytes": bytes,
        "seconds": seconds,
        "events_per_second": per_second.round() as u64,
        "mib_per_second": (bytes as f64 / seconds.max(1e-9) / 1_048_576.0 * 10.0).round() / 10.0,
    });
    drop(producer);
    emit_summary(&summary, args.summary_file.as_deref())
}

/// Renders and sends every event, then waits until each is acknowledged. Returns the producer, the events and the
/// bytes (keys + values) written, and the seconds it took.
fn produce(
    producer: ThreadedProducer<DeliveryCounter>,
    events: Backlog,
    prefix: &str,
    database: &str,
    progress_every: Duration,
    rate: Option<f64>,
) -> anyhow::Result<(ThreadedProducer<DeliveryCounter>, u64, u64, f64)> {
    let topics: Vec<(&str, String)> = TABLES
        .iter()
        .map(|t| (*t, debezium::topic(prefix, t)))
        .collect();
    let start = Instant::now();
    let mut last_print = Instant::now();
    let (mut written, mut bytes) = (0u64, 0u64);
    for (lsn, ev) in (1i64..).zip(events) {
        let Some((_, topic)) = topics.iter().find(|(t, _)| *t == ev.table) else {
            anyhow::bail!("no topic for table {}", ev.table);
        };
        let (key, value) = debezium::message(prefix, database, &ev, lsn);
        if let Some(rate) = rate {
            // Paced: event n leaves at n / rate seconds (in bursts of at most a millisecond's worth).
            let due = start + Duration::from_secs_f64(written as f64 / rate);
            let now = Instant::now();
            if due > now + Duration::from_millis(1) {
                std::thread::sleep(due - now);
            }
        }
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // The local queue is full: librdkafka drains it in the background.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => anyhow::bail!("producing to {topic}: {e}"),
            }
        }
        written += 1;
        bytes += (key.len() + value.len()) as u64;
        if last_print.elapsed() >= progress_every {
            last_print = Instant::now();
            if let Some(f) = producer.context().failure() {
                anyhow::bail!(f);
            }
            let s = start.elapsed().as_secs_f64();
            println!(
                "[{:>4.0}s] {written} events queued ({:.0}/s), {} delivered",
                s,
                written as f64 / s,
                producer.context().delivered.load(Ordering::Relaxed)
            );
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the producer (not every event was acknowledged within 120 s)")?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(f) = producer.context().failure() {
        anyhow::bail!(f);
    }
    let delivered = producer.context().delivered.load(Ordering::Relaxed);
    if delivered != written {
        anyhow::bail!("{written} events sent but {delivered} acknowledged by Kafka");
    }
    Ok((producer, written, bytes, seconds))
}

async fn wait(args: WaitArgs) -> anyhow::Result<()> {
    let w = args
        .watch
        .watcher(&args.topic_prefix)
        .context("wait needs --admin-url and --watch-kafka")?;
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut last_print = Instant::now();
    let sample: Sample = loop {
        let s = w.sample(&http).await;
        if let Ok(s) = &s {
            if s.caught_up(args.expect_messages) {
                println!("[{:>4}s] {}", start.elapsed().as_secs(), s.progress());
                break s.clone();
            }
        }
        if last_print.elapsed() >= args.watch.progress_every {
            last_print = Instant::now();
            let line = match &s {
                Ok(s) => s.progress(),
                Err(e) => format!("(no sample: {e})"),
            };
            println!("[{:>4}s] {line}", start.elapsed().as_secs());
        }
        if start.elapsed() >= args.timeout {
            let why = match &s {
                Ok(s) if s.captured < args.expect_messages => format!(
                    "Debezium captured {} of the {} expected messages",
                    s.captured, args.expect_messages
                ),
                Ok(s) => format!(
                    "lag {}, {} batch(es) in flight, {} message(s) in the open batch",
                    s.lag, s.in_flight, s.open_messages
                ),
                Err(e) => e.to_string(),
            };
            anyhow::bail!("not caught up after {}s: {why}", args.timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let metrics = w.metrics(&http).await.unwrap_or_default();
    print_summary(&sample, &metrics);
    Ok(())
}

fn print_summary(s: &Sample, metrics: &str) {
    let t = |name: &str| {
        s.totals
            .as_ref()
            .and_then(|t| t.get(name))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let loads = t("loads");
    let rows = t("rows");
    let per_load = if loads > 0 {
        rows as f64 / loads as f64
    } else {
        0.0
    };
    let name = "cdc2doris_pipeline_event_to_ack_seconds";
    let q = |q| {
        histogram_quantile(metrics, name, q)
            .map_or("n/a".to_string(), |v| format!("{:.0} ms", v * 1000.0))
    };
    println!("summary:");
    println!(
        "  events          {} captured by Debezium, {} consumed ({} ignored, {} dead-lettered)",
        s.captured,
        t("messages"),
        t("ignored"),
        t("dead_lettered")
    );
    println!("  keys refreshed  {}", t("keys_refreshed"));
    println!("  PostgreSQL      {} merge queries", t("queries"));
    println!(
        "  Doris           {loads} loads, {rows} rows ({} deletes), {per_load:.1} rows per load, {:.1} KiB",
        t("deletes"),
        t("bytes") as f64 / 1024.0
    );
    println!(
        "  event -> Doris  p50 {}, p99 {} (Kafka message time to Doris ack)",
        q(0.5),
        q(0.99)
    );
}

/// Prints the JSON summary on stdout, and writes it to `file` too when given.
fn emit_summary(summary: &serde_json::Value, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let summary = summary.to_string();
    if let Some(p) = file {
        std::fs::write(p, format!("{summary}\n"))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    println!("{summary}");
    Ok(())
}
