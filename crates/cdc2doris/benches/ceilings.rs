//! The ceilings of a drain: how fast each stage goes alone, on the drain's own data, so the pipeline's rate can be
//! read against them (`bench/ceilings` runs it after `bench/pipeline --keep`; `bench/run` reports it).
//!
//! ```text
//! cargo bench -p cdc2doris --bench ceilings -- --config F --keys-query SQL [--max-messages N] [--chunk N]
//!     [--concurrency N] [--no-load]
//! ```
//!
//! 1. **decode**: the messages of the config's topics, read from Kafka into memory first (at most `--max-messages`,
//!    default 1,000,000), then decoded and their keys extracted with the config's key rules, on one core — the
//!    work the pipeline's decode stage does per message, without Kafka.
//! 2. **merge**: the keys of `--keys-query`, in chunks of `--chunk` (default `batch.max_keys`), read by
//!    `--concurrency` connections at once (default `batch.max_in_flight`): first the bare merge query (rows fetched,
//!    nothing rendered), then the pipeline's own read (one REPEATABLE READ snapshot per chunk, rows rendered as
//!    Doris JSON lines, missing keys as deletes).
//! 3. **load**: those JSON bodies loaded into the config's Doris table through the pipeline's sink, `--concurrency`
//!    at once, under labels of their own (the rows are the same as the table's; their versions are newer).
//!
//! Prints a line per stage and, last, one JSON object with every figure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a broken setup stops the run with its message"
)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cdc2doris::decode::{decode, Decoded, Format, MessageContext};
use cdc2doris::keys::{rule_for_table, KeyRule, KeyTuple, KeyType, TableMatch};
use cdc2doris::merge::postgres::{MergeKeys, MergeQuery};
use cdc2doris::offsets::TopicPartition;
use cdc2doris::sink::{LoadRequest, OffsetRange, Sink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

struct Args {
    config: PathBuf,
    keys_query: String,
    max_messages: usize,
    chunk: Option<usize>,
    concurrency: Option<usize>,
    load: bool,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut config = None;
    let mut keys_query = None;
    let mut max_messages = 1_000_000;
    let mut chunk = None;
    let mut concurrency = None;
    let mut load = true;
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match a.as_str() {
            "--config" => config = Some(PathBuf::from(value("--config"))),
            "--keys-query" => keys_query = Some(value("--keys-query")),
            "--max-messages" => max_messages = value("--max-messages").parse().unwrap(),
            "--chunk" => chunk = Some(value("--chunk").parse().unwrap()),
            "--concurrency" => concurrency = Some(value("--concurrency").parse().unwrap()),
            "--no-load" => load = false,
            // `cargo bench` adds it.
            "--bench" => {}
            other => panic!("unknown argument {other}; see the header of benches/ceilings.rs"),
        }
    }
    Args {
        config: config.expect("--config F is required"),
        keys_query: keys_query.expect("--keys-query SQL is required"),
        max_messages,
        chunk,
        concurrency,
        load,
    }
}

/// A topic's key rules, as the pipeline holds them.
struct TopicRules {
    format: Format,
    rules: Vec<(Option<TableMatch>, KeyRule)>,
}

fn main() {
    let args = args();
    let config = cdc2doris::config::load(&args.config).unwrap_or_else(|e| panic!("{e}"));
    let file = &config.file;
    let mut report = serde_json::Map::new();

    // 1. decode ------------------------------------------------------------------------------------------------
    let messages = read_topics(&config, args.max_messages);
    let bytes: usize = messages
        .iter()
        .map(|m| m.1.as_ref().map_or(0, Vec::len))
        .sum();
    let mut rules: HashMap<String, TopicRules> = HashMap::new();
    for r in &file.keys.rules {
        let rule = KeyRule::new(r.fields.iter().cloned(), r.key_type).unwrap();
        let table = r.table.as_deref().map(|t| TableMatch::parse(t).unwrap());
        rules
            .entry(r.topic.clone())
            .or_insert_with(|| TopicRules {
                format: r.format,
                rules: Vec::new(),
            })
            .rules
            .push((table, rule));
    }
    let mut keys: Vec<KeyTuple> = Vec::with_capacity(8);
    let mut tuples = 0usize;
    let mut failed = 0usize;
    let started = Instant::now();
    for (topic, value, key) in &messages {
        let Some(topic_rules) = rules.get(topic.as_str()) else {
            continue;
        };
        let ctx = MessageContext::new(topic, 0, 0);
        match decode(topic_rules.format, &ctx, key.as_deref(), value.as_deref()) {
            Ok(decoded) => {
                if let Decoded::Change(c) = &decoded {
                    if let Some(rule) = rule_for_table(&topic_rules.rules, &c.table) {
                        keys.clear();
                        if rule
                            .extract_into(&decoded, key.as_deref(), &ctx, &mut keys)
                            .is_ok()
                        {
                            tuples += keys.len();
                        } else {
                            failed += 1;
                        }
                    }
                }
            }
            Err(_) => failed += 1,
        }
    }
    let decode_time = started.elapsed();
    let per_s = messages.len() as f64 / decode_time.as_secs_f64();
    println!(
        "decode: {} messages ({:.0} MiB) in {:.2}s on one core: {per_s:.0} messages/s, {tuples} key tuples, {failed} \
         not decodable",
        messages.len(),
        bytes as f64 / 1048576.0,
        decode_time.as_secs_f64()
    );
    report.insert("decode_messages".into(), messages.len().into());
    report.insert("decode_seconds".into(), decode_time.as_secs_f64().into());
    report.insert("decode_messages_per_s".into(), per_s.into());
    drop(messages);

    // 2. merge ------------------------------------------------------------------------------------------------
    let chunk = args.chunk.unwrap_or(file.batch.max_keys).max(1);
    let concurrency = args.concurrency.unwrap_or(file.batch.max_in_flight).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key_type = file.merge.key_type;
    let pool = cdc2doris::merge::pool::pool(&file.postgres, config.postgres_password.as_ref(), 0)
        .unwrap_or_else(|e| panic!("{e}"));
    let all_keys: Vec<String> = runtime.block_on(async {
        let client = pool.get().await.unwrap_or_else(|e| panic!("{e}"));
        client
            .query(
                &format!("SELECT k::text FROM ({}) AS q(k)", args.keys_query),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("--keys-query: {e}"))
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    });
    let chunks: Vec<MergeKeys> = all_keys
        .chunks(chunk)
        .map(|c| match key_type {
            KeyType::Integer => MergeKeys::Int(c.iter().map(|k| k.parse().unwrap()).collect()),
            KeyType::String => MergeKeys::Str(c.to_vec()),
        })
        .collect();
    let chunks = Arc::new(chunks);
    let query = Arc::new(
        MergeQuery::new(
            &config.merge_query,
            &file.merge.key_column,
            key_type,
            &file.doris.sequence_column,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let inner = cdc2doris::merge::postgres::trim_query(&config.merge_query).to_string();

    let (bare_time, bare_rows) = runtime.block_on(in_parallel(concurrency, chunks.len(), {
        let pool = pool.clone();
        let chunks = chunks.clone();
        move |i| {
            let pool = pool.clone();
            let chunks = chunks.clone();
            let inner = inner.clone();
            async move {
                let client = pool.get().await.unwrap();
                let rows = match &chunks[i] {
                    MergeKeys::Int(k) => client.query(&inner, &[k]).await,
                    MergeKeys::Str(k) => client.query(&inner, &[k]).await,
                }
                .unwrap_or_else(|e| panic!("the merge query: {e}"));
                (rows.len(), Bytes::new())
            }
        }
    }));
    let line = |what: &str, time: Duration, rows: usize| {
        println!(
            "merge ({what}): {} keys in {} chunks of {chunk}, {concurrency} at once: {:.2}s, {:.0} keys/s, {rows} rows",
            all_keys.len(),
            chunks.len(),
            time.as_secs_f64(),
            all_keys.len() as f64 / time.as_secs_f64()
        );
    };
    line("bare query", bare_time, bare_rows.iter().map(|r| r.0).sum());
    report.insert("merge_keys".into(), all_keys.len().into());
    report.insert("merge_bare_seconds".into(), bare_time.as_secs_f64().into());
    report.insert(
        "merge_bare_keys_per_s".into(),
        (all_keys.len() as f64 / bare_time.as_secs_f64()).into(),
    );

    let (read_time, bodies) = runtime.block_on(in_parallel(concurrency, chunks.len(), {
        let pool = pool.clone();
        let chunks = chunks.clone();
        let query = query.clone();
        move |i| {
            let pool = pool.clone();
            let chunks = chunks.clone();
            let query = query.clone();
            async move {
                let mut client = pool.get().await.unwrap();
                let read = query
                    .read_chunk(&mut client, &chunks[i])
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                (read.rows + read.deletes, Bytes::from(read.body))
            }
        }
    }));
    let rows: usize = bodies.iter().map(|b| b.0).sum();
    line("cdc2doris read, rendered", read_time, rows);
    report.insert("merge_read_seconds".into(), read_time.as_secs_f64().into());
    report.insert(
        "merge_read_keys_per_s".into(),
        (all_keys.len() as f64 / read_time.as_secs_f64()).into(),
    );

    // 3. load -------------------------------------------------------------------------------------------------
    if args.load {
        let password = config
            .doris_password
            .clone()
            .unwrap_or_else(|| secrecy::SecretString::from(String::new()));
        let sink = Arc::new(
            cdc2doris::sink::DorisSink::new(&file.doris, password)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let scope = sink.label_scope();
        let run = format!(
            "ceilings-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        let requests: Arc<Vec<LoadRequest>> = Arc::new(
            bodies
                .iter()
                .enumerate()
                .map(|(i, (rows, body))| {
                    let ranges = vec![OffsetRange {
                        tp: TopicPartition::new(run.as_str(), 0),
                        first: i as i64,
                        last: i as i64,
                    }];
                    LoadRequest {
                        label: scope.label(&ranges, body),
                        ranges,
                        body: body.clone(),
                        row_count: *rows as u64,
                    }
                })
                .collect(),
        );
        let body_bytes: usize = bodies.iter().map(|b| b.1.len()).sum();
        let (load_time, _) = runtime.block_on(in_parallel(concurrency, requests.len(), {
            let requests = requests.clone();
            move |i| {
                let requests = requests.clone();
                let sink = sink.clone();
                async move {
                    sink.load(requests[i].clone())
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    (0, Bytes::new())
                }
            }
        }));
        println!(
            "load: {rows} rows ({:.0} MiB) in {} loads, {concurrency} at once: {:.2}s, {:.0} rows/s, {:.1} MiB/s",
            body_bytes as f64 / 1048576.0,
            requests.len(),
            load_time.as_secs_f64(),
            rows as f64 / load_time.as_secs_f64(),
            body_bytes as f64 / 1048576.0 / load_time.as_secs_f64()
        );
        report.insert("load_rows".into(), rows.into());
        report.insert("load_seconds".into(), load_time.as_secs_f64().into());
        report.insert(
            "load_rows_per_s".into(),
            (rows as f64 / load_time.as_secs_f64()).into(),
        );
    }
    println!("{}", serde_json::Value::Object(report));
}

/// Runs `task(0..n)` with at most `concurrency` at once (each worker takes the next index); the wall time and each
/// task's result, in index order.
async fn in_parallel<F, Fut>(
    concurrency: usize,
    n: usize,
    task: F,
) -> (Duration, Vec<(usize, Bytes)>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (usize, Bytes)> + Send + 'static,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let task = Arc::new(task);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let task = task.clone();
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break out;
                }
                out.push((i, task(i).await));
            }
        }));
    }
    let mut results = Vec::with_capacity(n);
    for w in workers {
        results.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    results.sort_by_key(|r| r.0);
    (elapsed, results.into_iter().map(|r| r.1).collect())
}

/// Every message of the config's topics, from the beginning to the end offsets of when it starts (at most `max`):
/// (topic, value, key).
#[allow(clippy::type_complexity)]
fn read_topics(
    config: &cdc2doris::config::Config,
    max: usize,
) -> Vec<(String, Option<Vec<u8>>, Option<Vec<u8>>)> {
    let kafka = &config.file.kafka;
    let mut client = ClientConfig::new();
    for (k, v) in kafka.consumer_properties() {
        client.set(k, v);
    }
    use secrecy::ExposeSecret;
    for (k, v) in &config.kafka_secret_properties {
        client.set(k, v.expose_secret());
    }
    client
        .set(
            "group.id",
            format!("cdc2doris-ceilings-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    let consumer: BaseConsumer = client.create().unwrap_or_else(|e| panic!("{e}"));
    let mut assignment = TopicPartitionList::new();
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    for topic in &kafka.topics {
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
        for t in md.topics() {
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                    .unwrap();
                if high > low {
                    ends.insert((topic.clone(), p.id()), high);
                    assignment
                        .add_partition_offset(topic, p.id(), Offset::Offset(low))
                        .unwrap();
                }
            }
        }
    }
    consumer.assign(&assignment).unwrap();
    let mut done: HashSet<(String, i32)> = HashSet::new();
    let mut out = Vec::new();
    let started = Instant::now();
    while done.len() < ends.len() && out.len() < max {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                let tp = (m.topic().to_string(), m.partition());
                if m.offset() + 1 >= ends.get(&tp).copied().unwrap_or(0) {
                    done.insert(tp);
                }
                out.push((
                    m.topic().to_string(),
                    m.payload().map(<[u8]>::to_vec),
                    m.key().map(<[u8]>::to_vec),
                ));
            }
            Some(Err(e)) => panic!("reading the topics: {e}"),
            None if started.elapsed() > Duration::from_secs(600) => {
                panic!("reading the topics: nothing for 5 s and 10 min in all")
            }
            None => {}
        }
    }
    out
}
