//! Decode + key extraction throughput over a realistic mix of ~1 KB Debezium messages, with and without the
//! JsonConverter schema block. Run with `cargo bench -p cdc2doris --bench decode`; the items/s column is messages
//! per second on one core, and the allocation profiler shows what one batch of messages allocates (one key tuple per
//! message, nothing else). Targets: ≥ 1,000,000 messages/s schemaless, ≥ 300,000/s with schemas.
//!
//! The mix: 60% updates without an old row (REPLICA IDENTITY DEFAULT), 10% updates with a full old row whose
//! `job_id` changed, 20% inserts, 10% deletes with a full old row (REPLICA IDENTITY FULL, which a foreign-key rule needs); a TOASTed column now and then.

#![allow(
    clippy::unwrap_used,
    reason = "the benchmark input is built in code; a broken one stops the run"
)]

use cdc2doris::decode::{decode, Format, MessageContext};
use cdc2doris::keys::{KeyRule, KeyTuple, KeyType};
use divan::counter::{BytesCount, ItemsCount};
use divan::{AllocProfiler, Bencher};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

const MESSAGES: usize = 1000;

fn main() {
    divan::main();
}

/// A small deterministic generator, so every run measures the same messages.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn row(rng: &mut Lcg, id: u64, job_id: u64) -> String {
    let note = if rng.next().is_multiple_of(20) {
        "\"__debezium_unavailable_value\"".to_owned()
    } else {
        format!(
            "\"Followed up by phone, customer asked for a quote on item {} \\\"priority\\\"\"",
            rng.next() % 10_000
        )
    };
    format!(
        r#"{{"id":{id},"job_id":{job_id},"account_id":{},"kind":"call","status":"done","title":"Activity {id} for job {job_id}","owner_email":"user{}@example.org","duration_s":{},"amount":"{}.{:02}","created_at":1714566896789012,"updated_at":"2024-05-01T12:34:56.789012Z","note":{note}}}"#,
        rng.next() % 100_000,
        rng.next() % 1000,
        rng.next() % 7200,
        rng.next() % 10_000,
        rng.next() % 100,
    )
}

fn envelope(rng: &mut Lcg, i: u64) -> String {
    let id = 1_000_000 + i;
    let job_id = rng.next() % 50_000;
    let lsn = 412_877_584 + i * 368;
    let (op, before, after) = match rng.next() % 10 {
        0..=5 => ("u", "null".to_owned(), row(rng, id, job_id)),
        6 => ("u", row(rng, id, job_id + 1), row(rng, id, job_id)),
        7 | 8 => ("c", "null".to_owned(), row(rng, id, job_id)),
        _ => ("d", row(rng, id, job_id), "null".to_owned()),
    };
    format!(
        r#"{{"before":{before},"after":{after},"source":{{"version":"2.7.3.Final","connector":"postgresql","name":"shop","ts_ms":1714566896801,"snapshot":"false","db":"shopdb","sequence":"[\"{}\",\"{lsn}\"]","ts_us":1714566896801000,"ts_ns":1714566896801000000,"schema":"public","table":"job_activity","txId":{},"lsn":{lsn},"xmin":null}},"transaction":null,"op":"{op}","ts_ms":1714566897020,"ts_us":1714566897020548,"ts_ns":1714566897020548117}}"#,
        lsn - 368,
        90_000 + i,
    )
}

fn field(kind: &str, name: &str, optional: bool, logical: Option<&str>) -> String {
    match logical {
        Some(logical) => format!(
            r#"{{"type":"{kind}","optional":{optional},"name":"{logical}","version":1,"field":"{name}"}}"#
        ),
        None => format!(r#"{{"type":"{kind}","optional":{optional},"field":"{name}"}}"#),
    }
}

/// The JsonConverter schema of the envelope above, as Debezium 2.7 writes it.
fn schema() -> String {
    let columns = [
        field("int64", "id", false, None),
        field("int64", "job_id", true, None),
        field("int64", "account_id", true, None),
        field("string", "kind", true, None),
        field("string", "status", true, None),
        field("string", "title", true, None),
        field("string", "owner_email", true, None),
        field("int32", "duration_s", true, None),
        field("string", "amount", true, None),
        field(
            "int64",
            "created_at",
            true,
            Some("io.debezium.time.MicroTimestamp"),
        ),
        field(
            "string",
            "updated_at",
            true,
            Some("io.debezium.time.ZonedTimestamp"),
        ),
        field("string", "note", true, None),
    ]
    .join(",");
    let value = |side: &str| {
        format!(
            r#"{{"type":"struct","fields":[{columns}],"optional":true,"name":"shop.public.job_activity.Value","field":"{side}"}}"#
        )
    };
    let source = [
        field("string", "version", false, None),
        field("string", "connector", false, None),
        field("string", "name", false, None),
        field("int64", "ts_ms", false, None),
        r#"{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"}"#.to_owned(),
        field("string", "db", false, None),
        field("string", "sequence", true, None),
        field("int64", "ts_us", true, None),
        field("int64", "ts_ns", true, None),
        field("string", "schema", false, None),
        field("string", "table", false, None),
        field("int64", "txId", true, None),
        field("int64", "lsn", true, None),
        field("int64", "xmin", true, None),
    ]
    .join(",");
    format!(
        r#"{{"type":"struct","fields":[{},{},{{"type":"struct","fields":[{source}],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"}},{{"type":"struct","fields":[{},{},{}],"optional":true,"name":"event.block","version":1,"field":"transaction"}},{},{},{},{}],"optional":false,"name":"shop.public.job_activity.Envelope","version":2}}"#,
        value("before"),
        value("after"),
        field("string", "id", false, None),
        field("int64", "total_order", false, None),
        field("int64", "data_collection_order", false, None),
        field("string", "op", false, None),
        field("int64", "ts_ms", true, None),
        field("int64", "ts_us", true, None),
        field("int64", "ts_ns", true, None),
    )
}

fn messages(with_schema: bool) -> Vec<Vec<u8>> {
    let mut rng = Lcg(42);
    let schema = schema();
    (0..MESSAGES as u64)
        .map(|i| {
            let payload = envelope(&mut rng, i);
            let text = if with_schema {
                format!(r#"{{"schema":{schema},"payload":{payload}}}"#)
            } else {
                payload
            };
            text.into_bytes()
        })
        .collect()
}

fn run(bencher: Bencher, format: Format, with_schema: bool, fields: &[&str]) {
    let messages = messages(with_schema);
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let rule = KeyRule::new(fields.iter().copied(), KeyType::Integer).unwrap();
    let ctx = MessageContext::new("shop.public.job_activity", 0, 0);
    let mut keys: Vec<KeyTuple> = Vec::with_capacity(4);
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .counter(BytesCount::new(bytes))
        .bench_local(|| {
            let mut total = 0;
            for value in &messages {
                let decoded = decode(format, &ctx, None, Some(value)).unwrap();
                keys.clear();
                rule.extract_into(&decoded, None, &ctx, &mut keys).unwrap();
                total += keys.len();
            }
            total
        });
}

/// Mean message size, printed once so the figures can be read as bytes too.
#[divan::bench]
fn sizes() -> (usize, usize) {
    let mean = |m: Vec<Vec<u8>>| m.iter().map(Vec::len).sum::<usize>() / m.len();
    (mean(messages(false)), mean(messages(true)))
}

#[divan::bench]
fn debezium_schemaless(bencher: Bencher) {
    run(bencher, Format::Debezium, false, &["id"]);
}

#[divan::bench]
fn debezium_with_schema(bencher: Bencher) {
    run(bencher, Format::Debezium, true, &["id"]);
}

/// Keyed on a foreign key, so updates that move a row also refresh the old key.
#[divan::bench]
fn debezium_schemaless_fk(bencher: Bencher) {
    run(bencher, Format::Debezium, false, &["job_id"]);
}

#[divan::bench]
fn debezium_with_schema_fk(bencher: Bencher) {
    run(bencher, Format::Debezium, true, &["job_id"]);
}

#[divan::bench]
fn auto_schemaless(bencher: Bencher) {
    run(bencher, Format::Auto, false, &["id"]);
}

#[divan::bench]
fn auto_with_schema(bencher: Bencher) {
    run(bencher, Format::Auto, true, &["id"]);
}

/// Decoding alone, to tell its cost from key extraction's.
#[divan::bench(args = [false, true])]
fn decode_only(bencher: Bencher, with_schema: bool) {
    let messages = messages(with_schema);
    let ctx = MessageContext::new("shop.public.job_activity", 0, 0);
    bencher.counter(ItemsCount::new(MESSAGES)).bench_local(|| {
        for value in &messages {
            divan::black_box(decode(Format::Debezium, &ctx, None, Some(value)).unwrap());
        }
    });
}

/// The floor: serde_json validating each message without building anything.
#[divan::bench(args = [false, true])]
fn baseline_validate_only(bencher: Bencher, with_schema: bool) {
    let messages = messages(with_schema);
    bencher.counter(ItemsCount::new(MESSAGES)).bench_local(|| {
        for value in &messages {
            serde_json::from_slice::<serde::de::IgnoredAny>(value).unwrap();
        }
    });
}
