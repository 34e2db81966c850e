//! `jobgen`: apply a seeded stream of job-analytics changes to PostgreSQL at a given rate,
//! optionally writing the matching Debezium events straight to Kafka (no Kafka Connect needed).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use jobgen::{apply, debezium, Change, Model, ModelConfig};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Debug, Parser)]
#[command(
    name = "jobgen",
    about = "Seeded change generator for the job-analytics reference database"
)]
struct Args {
    /// PostgreSQL URL of the enhanced_job_server_v2 database (no password in it).
    #[arg(long, env = "JOBGEN_PG_URL")]
    pg_url: String,
    /// Environment variable holding the PostgreSQL password.
    #[arg(long, default_value = "CDC2DORIS_PG_PASSWORD")]
    password_env: String,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg: tokio_postgres::Config = args
        .pg_url
        .parse()
        .context("--pg-url is not a PostgreSQL URL")?;
    if let Ok(p) = std::env::var(&args.password_env) {
        cfg.password(p);
    }
    let database = cfg
        .get_dbname()
        .unwrap_or("enhanced_job_server_v2")
        .to_string();
    let (mut client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .context("cannot connect to PostgreSQL")?;
    tokio::spawn(conn);
    // Each change is a transaction; waiting for its WAL flush would cap the rate at the disk's
    // fsync rate, and a generator's changes need no durability guarantee.
    client
        .batch_execute("SET synchronous_commit TO off")
        .await
        .context("configuring the session")?;
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

    let mut model = Model::new(ModelConfig {
        seed: args.seed,
        clients: args.clients,
        ..ModelConfig::default()
    });
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut events = 0u64;
    let mut lsn = 0i64;
    let mut pending: Vec<rdkafka::producer::DeliveryFuture> = Vec::new();
    let start = Instant::now();
    let mut changes = 0u64;
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
        let evs = apply(&mut client, &change)
            .await
            .with_context(|| format!("applying {change:?}"))?;
        *counts.entry(change.kind()).or_default() += 1;
        events += evs.len() as u64;
        if let Some(p) = &producer {
            for ev in &evs {
                lsn += 1;
                let topic = debezium::topic(&args.topic_prefix, ev.table);
                let (key, value) = debezium::message(&args.topic_prefix, &database, ev, lsn);
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
    await_deliveries(&mut pending).await?;
    if let Some(r) = record.as_mut() {
        r.flush().context("writing the record file")?;
    }
    let summary = serde_json::json!({
        "changes": counts,
        "row_events": events,
        "jobs_ever": model.all_job_ids().end - 1,
        "jobs_live": model.jobs().len(),
        "seconds": start.elapsed().as_secs_f64(),
    });
    println!("{summary}");
    Ok(())
}

async fn await_deliveries(
    pending: &mut Vec<rdkafka::producer::DeliveryFuture>,
) -> anyhow::Result<()> {
    for d in pending.drain(..) {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => anyhow::bail!("a Debezium event was not delivered: {e}"),
            Err(_) => anyhow::bail!("the Kafka producer was dropped"),
        }
    }
    Ok(())
}
