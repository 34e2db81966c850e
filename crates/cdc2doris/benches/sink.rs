//! Stream Load throughput of [`DorisSink`] into an in-process doris-sim: one load per iteration, through the FE
//! probe and the 307 to the BE, for 1 MiB and 16 MiB JSON-lines bodies of `merged_job_data` rows.
//! divan reports time per load, loads/s (items) and MB/s (bytes).
//!
//! `cargo bench -p cdc2doris --bench sink`

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;
use cdc2doris::sink::doris::{DorisConfig, DorisSink};
use cdc2doris::sink::{LoadRequest, OffsetRange, Sink};
use secrecy::SecretString;

const DDL: &str = r#"
CREATE DATABASE IF NOT EXISTS job_analytics;
CREATE TABLE IF NOT EXISTS job_analytics.merged_job_data (
  job_id BIGINT NOT NULL, client_id BIGINT, title VARCHAR(512), category VARCHAR(128), status VARCHAR(32),
  location VARCHAR(256), salary_min DECIMAL(12,2), salary_max DECIMAL(12,2), created_at DATETIME(6), updated_at DATETIME(6),
  view_count BIGINT, apply_count BIGINT, click_count BIGINT, last_activity_at DATETIME(6),
  client_excluded BOOLEAN, exclusion_reason VARCHAR(512), revenue_total DECIMAL(18,2), revenue_entries BIGINT, last_booked_on DATE,
  source_version BIGINT NOT NULL
) UNIQUE KEY(job_id) DISTRIBUTED BY HASH(job_id) BUCKETS 8
PROPERTIES ("replication_num" = "1", "enable_unique_key_merge_on_write" = "true", "function_column.sequence_col" = "source_version");
"#;

struct Fixture {
    rt: tokio::runtime::Runtime,
    // Kept alive for the whole run.
    _sim: doris_sim::Sim,
    /// Through the FE: probe, 307, body to the BE.
    sink: DorisSink,
    /// Straight to the BE (`be_urls`), for comparison.
    direct: DorisSink,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sim = rt
            .block_on(doris_sim::Sim::start(doris_sim::SimOptions {
                ddl: vec![DDL.to_string()],
                password: "bench".into(),
                ..Default::default()
            }))
            .expect("doris-sim");
        let cfg = DorisConfig::new(
            &sim.fe_url(),
            "job_analytics",
            "merged_job_data",
            "source_version",
        );
        let sink = DorisSink::new(&cfg, SecretString::from("bench")).expect("sink");
        let mut direct_cfg = cfg.clone();
        direct_cfg.fe_urls.clear();
        direct_cfg.be_urls = vec![sim.be_url()];
        let direct = DorisSink::new(&direct_cfg, SecretString::from("bench")).expect("sink");
        Fixture {
            rt,
            _sim: sim,
            sink,
            direct,
        }
    })
}

/// JSON lines of realistic rows, at least `bytes` long; job ids repeat per body so the table stays bounded.
fn body(bytes: usize) -> (Bytes, u64) {
    let mut out = String::with_capacity(bytes + 512);
    let mut rows = 0u64;
    while out.len() < bytes {
        let id = rows as i64;
        out.push_str(&format!(
            r#"{{"job_id":{id},"client_id":{c},"title":"Senior Backend Engineer {id}","category":"engineering","status":"open","location":"Berlin, DE","salary_min":"65000.00","salary_max":"85000.00","created_at":"2026-11-01 09:30:00.123456","updated_at":"2026-11-25 18:00:00.000001","view_count":{v},"apply_count":{a},"click_count":{k},"last_activity_at":"2026-11-25 17:59:59.999999","client_excluded":false,"exclusion_reason":null,"revenue_total":"1234.56","revenue_entries":7,"last_booked_on":"2026-11-20","source_version":{id},"__DORIS_DELETE_SIGN__":0}}"#,
            c = id % 997,
            v = id * 3,
            a = id % 50,
            k = id * 2,
        ));
        out.push('\n');
        rows += 1;
    }
    (Bytes::from(out), rows)
}

static NEXT_OFFSET: AtomicI64 = AtomicI64::new(0);

#[divan::bench(args = [1, 16], sample_count = 10, sample_size = 1)]
fn load_into_doris_sim(bencher: divan::Bencher, mib: usize) {
    run(bencher, mib, &fixture().sink);
}

#[divan::bench(args = [1, 16], sample_count = 10, sample_size = 1)]
fn load_direct_to_be(bencher: divan::Bencher, mib: usize) {
    run(bencher, mib, &fixture().direct);
}

fn run(bencher: divan::Bencher, mib: usize, sink: &DorisSink) {
    let f = fixture();
    let (body, rows) = body(mib << 20);
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .counter(divan::counter::ItemsCount::new(1usize))
        .bench(|| {
            // A fresh offset range per load: a fresh label, so every iteration really loads.
            let first = NEXT_OFFSET.fetch_add(rows as i64, Ordering::Relaxed);
            let ranges = vec![OffsetRange {
                tp: cdc2doris::offsets::TopicPartition::new("bench", 0),
                first,
                last: first + rows as i64 - 1,
            }];
            let req = LoadRequest {
                label: sink.label_scope().label(&ranges, &body),
                ranges,
                body: body.clone(),
                row_count: rows,
            };
            let receipt = f.rt.block_on(sink.load(req)).expect("load");
            assert_eq!(receipt.rows_loaded, rows);
        });
}

fn main() {
    divan::main();
}
