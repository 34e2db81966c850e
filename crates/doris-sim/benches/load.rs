//! Load throughput on the `merged_job_data` row shape (JSON lines), target ≥ 300k rows/s on one core.
//! `parse_and_apply`: body → typed rows → Unique/sequence merge, no HTTP. `http_end_to_end`: a full Stream Load
//! through the BE listener on a current-thread runtime.

use divan::counter::ItemsCount;
use divan::Bencher;
use doris_sim::ddl::{parse_into, Catalog};
use doris_sim::load::{parse_headers, Plan};
use doris_sim::table::TableData;
use doris_sim::value::LoadTz;

const DDL: &str = include_str!("../tests/fixtures/merged_job_data.sql");
const ROWS: usize = 20_000;

fn body(rows: usize, offset: usize) -> String {
    let mut s = String::with_capacity(rows * 620);
    for i in 0..rows {
        let id = i + offset;
        s.push_str(&format!(
            r#"{{"job_id":{id},"client_id":{},"title":"Senior Rust Engineer {id}","category":"engineering","status":"open","location":"Berlin, DE","salary_min":"85000.00","salary_max":"120000.50","created_at":"2024-03-01 10:00:00.123456","updated_at":"2024-03-02 11:30:00.654321","view_count":{},"apply_count":{},"click_count":{},"last_activity_at":"2024-03-05 08:15:00","client_excluded":false,"exclusion_reason":null,"revenue_total":"1234.56","revenue_entries":7,"last_booked_on":"2024-03-04","source_version":{}}}"#,
            id % 1000,
            id * 3,
            id % 50,
            id * 2,
            1_000_000 + id
        ));
        s.push('\n');
    }
    s
}

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 10)]
fn parse_and_apply(bencher: Bencher) {
    let mut catalog = Catalog::default();
    parse_into(&mut catalog, "bench", DDL).expect("ddl");
    let def = catalog.tables.remove(0);
    let mut headers = hyper::HeaderMap::new();
    headers.insert("format", "json".parse().expect("header"));
    headers.insert("read_json_by_line", "true".parse().expect("header"));
    let params = parse_headers(&headers, LoadTz::default(), Default::default()).expect("params");
    let data = body(ROWS, 0);
    bencher.counter(ItemsCount::new(ROWS)).bench(|| {
        let plan = Plan::new(&def, &params).expect("plan");
        let prepared = plan.prepare(data.as_bytes());
        assert_eq!(prepared.ops.len(), ROWS);
        let mut table = TableData::default();
        table.apply(&def, prepared.ops);
        // Returned so divan drops it outside the timed region.
        table
    });
}

#[divan::bench(sample_count = 10)]
fn http_end_to_end(bencher: Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt
        .block_on(doris_sim::Sim::start(doris_sim::SimOptions {
            ddl: vec![DDL.to_string()],
            ..Default::default()
        }))
        .expect("sim");
    let data = body(ROWS, 0);
    let addr = sim.be_addr();
    let request = format!(
        "PUT /api/job_analytics/merged_job_data/_stream_load HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic cm9vdDo=\r\nformat: json\r\nread_json_by_line: true\r\nContent-Length: {}\r\n\r\n{data}",
        data.len()
    );
    bencher.counter(ItemsCount::new(ROWS)).bench(|| {
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(request.as_bytes()).await.expect("write");
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.expect("read");
            assert!(
                out.windows(9).any(|w| w == b"\"Success\""),
                "{}",
                String::from_utf8_lossy(&out)
            );
        })
    });
    drop(sim);
}
