//! `cdc2doris check` against the real services of `dev/stack up`: each test gets its own PostgreSQL database (the
//! job-analytics schema) and its own Kafka topics, so the tests run in parallel.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdc2doris::check::{check_config, check_connectivity, CheckLine, CheckReport, Outcome};
use common::standby::Standby;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_postgres::NoTls;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/job-analytics");
/// The tables the job-analytics topics capture, in `kafka.topics` order.
const TABLES: [&str; 4] = [
    "jobs",
    "job_activity",
    "clients_to_exclude",
    "standard_revenue",
];
/// An address nothing listens on: connections are refused at once.
const UNREACHABLE_FE: &str = "http://127.0.0.1:1";
const TIMEOUT: Duration = Duration::from_secs(10);
/// The schema lines `check` warns on for the example pipeline: text columns into bounded VARCHARs, and a sum of
/// numerics (no declared precision) into DECIMAL(18,2).
const EXAMPLE_SCHEMA_WARNINGS: [&str; 5] = [
    "schema.category",
    "schema.status",
    "schema.location",
    "schema.exclusion_reason",
    "schema.revenue_total",
];

fn bootstrap() -> String {
    std::env::var("CDC2DORIS_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn pg_url() -> String {
    std::env::var("CDC2DORIS_PG_URL")
        .unwrap_or_else(|_| "postgres://cdc2doris@127.0.0.1:5432/postgres".to_string())
}

fn pg_password() -> String {
    std::env::var("CDC2DORIS_PG_PASSWORD").unwrap_or_else(|_| "cdc2doris".to_string())
}

/// `CDC2DORIS_PG_URL` pointing at another database.
fn pg_url_for(dbname: &str) -> String {
    let mut url = reqwest::Url::parse(&pg_url()).expect("CDC2DORIS_PG_URL is a URL");
    url.set_path(&format!("/{dbname}"));
    url.to_string()
}

async fn connect(dbname: &str) -> tokio_postgres::Client {
    let mut cfg: tokio_postgres::Config = pg_url().parse().expect("CDC2DORIS_PG_URL");
    cfg.password(pg_password());
    cfg.dbname(dbname);
    let (client, conn) = cfg
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL ({e}); run `dev/stack up` first"));
    tokio::spawn(conn);
    client
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client")
}

/// Waits until every partition of `topics` has a leader: right after CreateTopics, metadata may still show
/// partitions without one, which `check` reports as a warning.
async fn wait_for_leaders(topics: &[String]) {
    let topics = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .expect("metadata client");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        for topic in &topics {
            loop {
                let ready = consumer
                    .fetch_metadata(Some(topic), Duration::from_secs(5))
                    .ok()
                    .and_then(|m| {
                        m.topics().iter().find(|t| t.name() == topic).map(|t| {
                            t.error().is_none()
                                && !t.partitions().is_empty()
                                && t.partitions()
                                    .iter()
                                    .all(|p| p.leader() >= 0 && p.error().is_none())
                        })
                    })
                    .unwrap_or(false);
                if ready {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "topic {topic} has no leader after 15 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
    .await
    .expect("wait for leaders");
}

/// One test's world: a database holding the job-analytics schema, Debezium-named topics
/// `<prefix>.public.<table>`, and a config directory with `merge.sql`.
struct World {
    database: String,
    prefix: String,
    created_topics: Vec<String>,
    dir: tempfile::TempDir,
}

impl World {
    /// Creates the database with `examples/job-analytics/postgres.sql` and the topics of `tables` (2 partitions
    /// each).
    async fn create(tables: &[&str]) -> World {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("t_check_{id}");
        connect("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create database");
        let schema =
            std::fs::read_to_string(format!("{EXAMPLE}/postgres.sql")).expect("postgres.sql");
        connect(&database)
            .await
            .batch_execute(&schema)
            .await
            .expect("job-analytics schema");
        let prefix = format!("chk_{id}");
        let created_topics: Vec<String> = tables
            .iter()
            .map(|t| format!("{prefix}.public.{t}"))
            .collect();
        let new: Vec<NewTopic<'_>> = created_topics
            .iter()
            .map(|t| NewTopic::new(t, 2, TopicReplication::Fixed(1)))
            .collect();
        let results = admin()
            .create_topics(
                &new,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach Kafka at {} ({e}); run `dev/stack up` first",
                    bootstrap()
                )
            });
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
        wait_for_leaders(&created_topics).await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(format!("{EXAMPLE}/merge.sql"), dir.path().join("merge.sql"))
            .expect("merge.sql");
        World {
            database,
            prefix,
            created_topics,
            dir,
        }
    }

    fn topic(&self, table: &str) -> String {
        format!("{}.public.{table}", self.prefix)
    }

    /// A config for the job-analytics pipeline over this world, with the given merge key column and Doris FE.
    fn config(&self, key_column: &str, doris: &Doris) -> PathBuf {
        let topics: Vec<String> = TABLES
            .iter()
            .map(|t| format!("{:?}", self.topic(t)))
            .collect();
        let text = format!(
            r#"
[kafka]
bootstrap_servers = ["{bootstrap}"]
group_id = "check-{prefix}"
topics = [{topics}]

[postgres]
url = "{url}"
password_env = "CHECK_PG_PASSWORD"
connect_timeout = "5s"
tls_mode = "disable"

[[keys.rules]]
topic = "{jobs}"
format = "debezium"
fields = ["id"]

[[keys.rules]]
topic = "{job_activity}"
format = "debezium"
fields = ["job_id"]

[[keys.rules]]
topic = "{clients_to_exclude}"
format = "debezium"
fields = ["client_id"]
resolve_query = "SELECT id FROM jobs WHERE client_id = ANY($1)"

[[keys.rules]]
topic = "{standard_revenue}"
format = "debezium"
fields = ["job_id"]

[merge]
query_file = "merge.sql"
key_column = "{key_column}"

[doris]
fe_urls = ["{fe}"]
query_host = "127.0.0.1"
query_port = {query_port}
database = "{doris_db}"
table = "merged_job_data"
user = "root"
password_env = "CHECK_DORIS_PASSWORD"
sequence_column = "source_version"

[dead_letter]
path = "dead-letter.jsonl"
"#,
            bootstrap = bootstrap(),
            prefix = self.prefix,
            topics = topics.join(", "),
            url = pg_url_for(&self.database),
            jobs = self.topic("jobs"),
            job_activity = self.topic("job_activity"),
            clients_to_exclude = self.topic("clients_to_exclude"),
            standard_revenue = self.topic("standard_revenue"),
            fe = doris.fe_url,
            query_port = doris.query_port,
            doris_db = doris.database,
        );
        let path = self.dir.path().join("check.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    async fn drop_all(self) {
        connect("postgres")
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .await
            .expect("drop database");
        let names: Vec<&str> = self.created_topics.iter().map(String::as_str).collect();
        let _ = admin().delete_topics(&names, &AdminOptions::new()).await;
    }
}

/// Where the config's `[doris]` section points, and the password its environment variable holds.
struct Doris {
    fe_url: String,
    /// The FE query port (MySQL protocol); 1 when unreachable.
    query_port: u16,
    database: String,
    password: String,
}

impl Doris {
    fn unreachable() -> Doris {
        Doris {
            fe_url: UNREACHABLE_FE.to_string(),
            query_port: 1,
            database: "job_analytics".to_string(),
            password: "doris-secret".to_string(),
        }
    }
}

/// Runs `check` in process: validation, then connectivity.
async fn run_check(path: &Path, doris: &Doris) -> CheckReport {
    run_check_with_pg_password(path, doris, pg_password()).await
}

/// [`run_check`] with this PostgreSQL password in `CHECK_PG_PASSWORD`.
async fn run_check_with_pg_password(
    path: &Path,
    doris: &Doris,
    pg_password: String,
) -> CheckReport {
    let doris_password = doris.password.clone();
    let env = move |name: &str| match name {
        "CHECK_PG_PASSWORD" => Ok(pg_password.clone()),
        "CHECK_DORIS_PASSWORD" => Ok(doris_password.clone()),
        _ => Err(std::env::VarError::NotPresent),
    };
    let (mut report, config) = check_config(path, &env);
    let config = config.unwrap_or_else(|| panic!("config invalid:\n{}", report.render()));
    check_connectivity(&config, TIMEOUT, &mut report).await;
    report
}

/// Rewrites the config file at `path`.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read config");
    assert!(text.contains(from), "{from:?} not in the config");
    std::fs::write(path, text.replace(from, to)).expect("write config");
}

/// The lines about `subject`.
fn about<'r>(report: &'r CheckReport, subject: &str) -> Vec<&'r CheckLine> {
    report
        .lines
        .iter()
        .filter(|l| l.subject == subject)
        .collect()
}

/// The one line about `subject`.
fn one<'r>(report: &'r CheckReport, subject: &str) -> &'r CheckLine {
    match about(report, subject).as_slice() {
        [line] => line,
        other => panic!(
            "expected one line about {subject}, got {}:\n{}",
            other.len(),
            report.render()
        ),
    }
}

/// An in-process doris-sim with the job-analytics table, user `root` and this password.
async fn doris_sim(password: &str) -> doris_sim::Sim {
    doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![format!("{EXAMPLE}/doris.sql")],
        user: "root".into(),
        password: password.into(),
        ..Default::default()
    })
    .await
    .expect("start doris-sim")
}

impl Doris {
    fn sim(sim: &doris_sim::Sim, password: &str) -> Doris {
        Doris {
            fe_url: sim.fe_url(),
            query_port: sim.query_addr().port(),
            database: "job_analytics".to_string(),
            password: password.to_string(),
        }
    }
}

#[tokio::test]
async fn everything_passes_on_the_example_pipeline() {
    let world = World::create(&TABLES).await;
    let sim = doris_sim("doris-secret").await;
    let doris = Doris::sim(&sim, "doris-secret");
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    for l in &report.lines {
        if EXAMPLE_SCHEMA_WARNINGS.contains(&l.subject.as_str()) {
            continue;
        }
        assert_eq!(
            l.outcome,
            Outcome::Pass,
            "{}: {}\n{text}",
            l.subject,
            l.detail
        );
    }
    // The example's table holds every value, except where it bounds what the query leaves unbounded.
    let warned: Vec<&str> = report
        .lines
        .iter()
        .filter(|l| l.outcome == Outcome::Warn)
        .map(|l| l.subject.as_str())
        .collect();
    assert_eq!(warned, EXAMPLE_SCHEMA_WARNINGS, "{text}");
    assert!(
        one(&report, "schema.status")
            .detail
            .starts_with("text into VARCHAR(32): values longer than 32 bytes are refused"),
        "{text}"
    );
    assert!(
        one(&report, "schema.revenue_total")
            .detail
            .contains("numeric without a declared precision"),
        "{text}"
    );
    assert_eq!(
        one(&report, "schema").detail,
        "`job_analytics`.`merged_job_data` is UNIQUE KEY(job_id) with sequence column \"source_version\"",
        "{text}"
    );
    assert!(
        one(&report, "kafka.bootstrap_servers")
            .detail
            .contains("answered"),
        "{text}"
    );
    for (i, table) in TABLES.iter().enumerate() {
        let topic = one(&report, &format!("kafka.topics[{i}]"));
        assert_eq!(
            topic.detail,
            format!("{:?} exists, 2 partition(s)", world.topic(table)),
            "{text}"
        );
        let identity = one(&report, &format!("keys.rules[{i}]"));
        assert!(identity.detail.contains("REPLICA IDENTITY FULL"), "{text}");
    }
    assert!(
        one(&report, "postgres.url")
            .detail
            .starts_with("connected to "),
        "{text}"
    );
    assert!(
        one(&report, "merge.query_file")
            .detail
            .contains("prepares with $1 as integer (bigint[]); 19 output column(s)"),
        "{text}"
    );
    assert!(
        one(&report, "merge.key_column")
            .detail
            .contains("\"job_id\" is an output column (int8)"),
        "{text}"
    );
    assert!(
        one(&report, "keys.rules[2].resolve_query")
            .detail
            .contains("returns \"id\" (int8)"),
        "{text}"
    );
    assert_eq!(
        one(&report, "doris.fe_urls[0]").detail,
        format!(
            "{} answered; user \"root\" accepted, database \"job_analytics\" exists (asked get_load_state, nothing \
             loaded)",
            sim.fe_url()
        )
    );
    assert!(!text.contains("doris-secret"), "{text}");
    assert!(
        one(&report, "doris.table")
            .detail
            .contains("accepts a delete row"),
        "{text}"
    );
    // The trial load was aborted: the table is still empty.
    assert!(sim
        .client()
        .rows("job_analytics", "merged_job_data")
        .await
        .expect("rows")
        .is_empty());
    sim.shutdown().await;
    world.drop_all().await;
}

/// [integrity] A delete line carries only the key and the sequence column; a NOT NULL column without a default makes
/// Doris filter every delete. `check` finds it with a trial load (two-phase commit, aborted) and says what to change.
#[tokio::test]
async fn a_table_that_refuses_delete_rows_fails_the_check() {
    let world = World::create(&TABLES).await;
    let ddl = std::fs::read_to_string(format!("{EXAMPLE}/doris.sql"))
        .expect("doris.sql")
        .replace(
            "title            STRING,",
            "title            STRING NOT NULL,",
        );
    assert!(ddl.contains("STRING NOT NULL"));
    let sim = doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![ddl],
        user: "root".into(),
        password: "pw".into(),
        ..Default::default()
    })
    .await
    .expect("start doris-sim");
    let doris = Doris::sim(&sim, "pw");
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    let l = one(&report, "doris.table");
    assert_eq!(l.outcome, Outcome::Fail, "{text}");
    assert!(
        l.detail.contains("refuses a delete row") && l.detail.contains("nullable"),
        "{text}"
    );
    sim.shutdown().await;
    world.drop_all().await;
}

#[tokio::test]
async fn a_wrong_doris_password_fails_naming_the_user_not_the_password() {
    let world = World::create(&TABLES).await;
    let sim = doris_sim("right-password").await;
    let doris = Doris::sim(&sim, "wrong-password");
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    assert!(report.failed());
    let user = one(&report, "doris.user");
    assert_eq!(user.outcome, Outcome::Fail, "{text}");
    assert!(
        user.detail.starts_with(&format!(
            "{} refused the credentials of user \"root\" (Unauthorized",
            sim.fe_url()
        )),
        "{text}"
    );
    assert!(
        user.detail
            .contains("environment variable CHECK_DORIS_PASSWORD"),
        "{text}"
    );
    assert!(about(&report, "doris.fe_urls[0]").is_empty(), "{text}");
    assert!(
        !text.contains("wrong-password") && !text.contains("right-password"),
        "{text}"
    );
    sim.shutdown().await;
    world.drop_all().await;
}

/// A follower FE: answers every request with a 307 to `target` (path and query kept), with credentials as userinfo,
/// as Doris does (here a made-up password, so the test shows the check strips it rather than masks it).
async fn follower_fe(target: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind follower");
    let addr = listener.local_addr().expect("follower address");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let target = target.replacen("http://", "http://root:echoed-by-follower@", 1);
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_follower_fe_redirect_to_the_master_is_followed() {
    let world = World::create(&TABLES).await;
    let sim = doris_sim("doris-secret").await;
    let doris = Doris {
        fe_url: follower_fe(sim.fe_url()).await,
        ..Doris::sim(&sim, "doris-secret")
    };
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    let fe = one(&report, "doris.fe_urls[0]");
    assert_eq!(fe.outcome, Outcome::Pass, "{text}");
    assert!(
        fe.detail.starts_with(&format!(
            "{} answered (through a redirect to {}); user \"root\" accepted",
            doris.fe_url,
            sim.fe_url()
        )),
        "{text}"
    );
    assert!(!text.contains("doris-secret"), "{text}");
    assert!(!text.contains("echoed-by-follower"), "{text}");
    sim.shutdown().await;
    world.drop_all().await;
}

#[tokio::test]
async fn an_unknown_doris_database_fails_naming_the_field() {
    let world = World::create(&TABLES).await;
    let sim = doris_sim("doris-secret").await;
    let doris = Doris {
        database: "no_such_db".to_string(),
        ..Doris::sim(&sim, "doris-secret")
    };
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    assert!(report.failed());
    let database = one(&report, "doris.database");
    assert_eq!(database.outcome, Outcome::Fail, "{text}");
    assert!(
        database.detail.starts_with(&format!(
            "\"no_such_db\" does not exist on {}",
            sim.fe_url()
        )),
        "{text}"
    );
    assert!(
        database
            .detail
            .contains("unknown databases, dbName=no_such_db"),
        "{text}"
    );
    assert!(
        database
            .detail
            .ends_with("create it, or fix doris.database"),
        "{text}"
    );
    sim.shutdown().await;
    world.drop_all().await;
}

#[tokio::test]
async fn a_missing_topic_fails_naming_it() {
    // The standard_revenue topic is not created.
    let world = World::create(&TABLES[..3]).await;
    let doris = Doris::unreachable();
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    assert!(report.failed());
    assert_eq!(
        one(&report, "kafka.topics[2]").outcome,
        Outcome::Pass,
        "{text}"
    );
    let missing = one(&report, "kafka.topics[3]");
    assert_eq!(missing.outcome, Outcome::Fail, "{text}");
    assert_eq!(
        missing.detail,
        format!(
            "{:?} does not exist; create it, or fix kafka.topics",
            world.topic("standard_revenue")
        )
    );
    // Asking about it did not create it, even on a broker with auto.create.topics.enable.
    let topic = world.topic("standard_revenue");
    let exists = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .expect("metadata client");
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("metadata");
        metadata.topics().iter().any(|t| t.name() == topic)
    })
    .await
    .expect("metadata task");
    assert!(!exists, "check created the missing topic");
    world.drop_all().await;
}

#[tokio::test]
async fn a_wrong_merge_key_column_fails_naming_the_field() {
    let world = World::create(&TABLES).await;
    let doris = Doris::unreachable();
    let report = run_check(&world.config("jobid", &doris), &doris).await;
    let text = report.render();
    let line = one(&report, "merge.key_column");
    assert_eq!(line.outcome, Outcome::Fail, "{text}");
    assert!(
        line.detail
            .starts_with("\"jobid\" is not an output column of the merge query"),
        "{text}"
    );
    assert!(line.detail.contains("job_id, client_id, title"), "{text}");
    assert!(line.detail.contains("set merge.key_column"), "{text}");
    world.drop_all().await;
}

#[tokio::test]
async fn a_resolve_query_that_does_not_prepare_fails_naming_the_rule() {
    let world = World::create(&TABLES).await;
    let doris = Doris::unreachable();
    let config = world.config("job_id", &doris);
    edit(
        &config,
        "SELECT id FROM jobs WHERE",
        "SELECT id FROM jobz WHERE",
    );
    let report = run_check(&config, &doris).await;
    let text = report.render();
    let resolve = one(&report, "keys.rules[2].resolve_query");
    assert_eq!(resolve.outcome, Outcome::Fail, "{text}");
    assert!(
        resolve
            .detail
            .starts_with("does not prepare with $1 as integer (bigint[]) (keys.rules[2].key_type): relation \"jobz\" does not exist"),
        "{text}"
    );
    assert_eq!(
        one(&report, "merge.query_file").outcome,
        Outcome::Pass,
        "{text}"
    );
    world.drop_all().await;
}

#[tokio::test]
async fn a_resolve_query_is_checked_as_the_service_wraps_it() {
    let world = World::create(&TABLES).await;
    let doris = Doris::unreachable();
    let config = world.config("job_id", &doris);
    // Prepares on its own, but not inside `SELECT (r.k)::text FROM (<query>) AS r(k)`: a data-modifying
    // CTE must be at the top level. (A comment after the final `;` is stripped, so it no longer breaks.)
    edit(
        &config,
        "SELECT id FROM jobs WHERE client_id = ANY($1)\"",
        "WITH t AS (UPDATE jobs SET status = status WHERE false RETURNING id) SELECT id FROM jobs WHERE client_id = ANY($1); -- by client\"",
    );
    let report = run_check(&config, &doris).await;
    let text = report.render();
    let resolve = one(&report, "keys.rules[2].resolve_query");
    assert_eq!(resolve.outcome, Outcome::Fail, "{text}");
    assert!(
        resolve
            .detail
            .starts_with("prepares, but not as the service wraps it"),
        "{text}"
    );
    world.drop_all().await;
}

#[tokio::test]
async fn tls_mode_require_checks_everything_over_a_verified_tls_session() {
    let world = World::create(&TABLES).await;
    let doris = Doris::unreachable();
    let config = world.config("job_id", &doris);
    edit(
        &config,
        "tls_mode = \"disable\"",
        &format!(
            "tls_mode = \"require\"\ntls_ca_file = {:?}",
            common::stack_ca().display().to_string()
        ),
    );
    let report = run_check(&config, &doris).await;
    let text = report.render();
    let pg = one(&report, "postgres.url");
    assert_eq!(pg.outcome, Outcome::Pass, "{text}");
    assert!(pg.detail.contains(" with TLS 1."), "{text}");
    assert!(
        pg.detail.contains("certificate and host name verified"),
        "{text}"
    );
    assert_eq!(
        one(&report, "merge.query_file").outcome,
        Outcome::Pass,
        "{text}"
    );
    assert_eq!(
        one(&report, "merge.key_column").outcome,
        Outcome::Pass,
        "{text}"
    );
    world.drop_all().await;
}

#[tokio::test]
async fn a_wrong_postgres_password_fails_naming_its_variable_not_its_value() {
    let world = World::create(&TABLES).await;
    let doris = Doris::unreachable();
    let report = run_check_with_pg_password(
        &world.config("job_id", &doris),
        &doris,
        "not-the-pg-password".to_string(),
    )
    .await;
    let text = report.render();
    let url = one(&report, "postgres.url");
    assert_eq!(url.outcome, Outcome::Fail, "{text}");
    assert!(
        url.detail.contains("password authentication failed"),
        "{text}"
    );
    assert!(
        url.detail
            .contains("environment variable CHECK_PG_PASSWORD"),
        "{text}"
    );
    assert_eq!(one(&report, "postgres").outcome, Outcome::Skip, "{text}");
    assert!(!text.contains("not-the-pg-password"), "{text}");
    world.drop_all().await;
}

#[tokio::test]
async fn replica_identity_default_without_the_key_in_the_primary_key_warns() {
    let world = World::create(&TABLES).await;
    connect(&world.database)
        .await
        .batch_execute(
            "ALTER TABLE job_activity REPLICA IDENTITY DEFAULT;
             ALTER TABLE jobs REPLICA IDENTITY DEFAULT;
             ALTER TABLE standard_revenue REPLICA IDENTITY NOTHING;",
        )
        .await
        .expect("alter replica identity");
    let doris = Doris::unreachable();
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    // jobs is keyed by its primary key: a delete's before image holds it.
    let jobs = one(&report, "keys.rules[0]");
    assert_eq!(jobs.outcome, Outcome::Pass, "{text}");
    assert!(
        jobs.detail
            .contains("REPLICA IDENTITY DEFAULT: a delete's old row holds the primary key (id)"),
        "{text}"
    );
    // job_activity is keyed by job_id, not its primary key.
    let activity = one(&report, "keys.rules[1]");
    assert_eq!(activity.outcome, Outcome::Warn, "{text}");
    assert!(
        activity
            .detail
            .contains("holds only the primary key (id), not the key field job_id"),
        "{text}"
    );
    assert!(
        activity
            .detail
            .ends_with("run ALTER TABLE public.job_activity REPLICA IDENTITY FULL"),
        "{text}"
    );
    let revenue = one(&report, "keys.rules[3]");
    assert_eq!(revenue.outcome, Outcome::Fail, "{text}");
    assert!(
        revenue.detail.contains("REPLICA IDENTITY NOTHING"),
        "{text}"
    );
    world.drop_all().await;
}

#[tokio::test]
async fn an_unreachable_doris_fe_fails() {
    let world = World::create(&TABLES).await;
    let doris = Doris::unreachable();
    let report = run_check(&world.config("job_id", &doris), &doris).await;
    let text = report.render();
    assert!(report.failed());
    let fe = one(&report, "doris.fe_urls[0]");
    assert_eq!(fe.outcome, Outcome::Fail, "{text}");
    assert!(
        fe.detail.starts_with("http://127.0.0.1:1 unreachable ("),
        "{text}"
    );
    assert!(fe.detail.contains("check the URL"), "{text}");
    assert!(!text.contains("doris-secret"), "{text}");
    world.drop_all().await;
}

#[test]
fn the_binary_prints_one_line_per_check_and_exits_1_on_failure() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let world = runtime.block_on(World::create(&TABLES[..3]));
    let doris = Doris::unreachable();
    let config = world.config("job_id", &doris);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["check", "--config"])
        .arg(&config)
        .args(["--timeout", "5s"])
        .env("CHECK_PG_PASSWORD", pg_password())
        .env("CHECK_DORIS_PASSWORD", &doris.password)
        .output()
        .expect("run cdc2doris");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("pass  config: "), "{stdout}");
    for l in &lines {
        assert!(
            ["pass  ", "warn  ", "fail  ", "skip  "]
                .iter()
                .any(|p| l.starts_with(p)),
            "{l}"
        );
    }
    assert!(
        stdout.contains("\npass  kafka.bootstrap_servers: "),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "\nfail  kafka.topics[3]: {:?} does not exist",
            world.topic("standard_revenue")
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\npass  merge.query_file: "), "{stdout}");
    assert!(stdout.contains("\nfail  doris.fe_urls[0]: "), "{stdout}");
    assert!(!stdout.contains(&doris.password), "{stdout}");
    runtime.block_on(world.drop_all());
}

#[tokio::test]
async fn the_binary_exits_0_when_everything_passes() {
    let world = World::create(&TABLES).await;
    let sim = doris_sim("doris-secret").await;
    let doris = Doris::sim(&sim, "doris-secret");
    let config = world.config("job_id", &doris);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["check", "--config"])
        .arg(&config)
        .env("CHECK_PG_PASSWORD", pg_password())
        .env("CHECK_DORIS_PASSWORD", &doris.password)
        .output()
        .await
        .expect("run cdc2doris");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.lines().all(|l| l.starts_with("pass  ")
            || EXAMPLE_SCHEMA_WARNINGS
                .iter()
                .any(|s| l.starts_with(&format!("warn  {s}: ")))),
        "{stdout}"
    );
    assert!(stdout.contains("\npass  doris.fe_urls[0]: "), "{stdout}");
    assert!(!stdout.contains("doris-secret"), "{stdout}");
    sim.shutdown().await;
    world.drop_all().await;
}

/// [integrity] A hot standby's snapshots list no running transactions, so neither the row versions nor the wait for
/// a change's transaction hold there: `check` fails naming it, and `run` refuses to start. Before, both took it.
#[tokio::test]
async fn a_hot_standby_is_refused_by_check_and_run() {
    let world = World::create(&TABLES).await;
    let sim = doris_sim("pw").await;
    let doris = Doris::sim(&sim, "pw");
    let standby = Standby::start(&pg_url(), &pg_password(), None).await;
    let path = world.config("job_id", &doris);
    let primary = reqwest::Url::parse(&pg_url()).expect("url");
    edit(
        &path,
        &format!("127.0.0.1:{}/", primary.port().unwrap_or(5432)),
        &format!("127.0.0.1:{}/", standby.port),
    );
    let report = run_check(&path, &doris).await;
    let text = report.render();
    let l = one(&report, "postgres.url");
    assert_eq!(l.outcome, Outcome::Fail, "{text}");
    assert!(l.detail.contains("hot standby"), "{text}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["run", "--config"])
        .arg(&path)
        .env("CHECK_PG_PASSWORD", pg_password())
        .env("CHECK_DORIS_PASSWORD", "pw")
        .output()
        .expect("run cdc2doris");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("hot standby"), "{stderr}");
    drop(standby);
    sim.shutdown().await;
    world.drop_all().await;
}

/// Doris tables with the schema mistakes `check` must catch, each beside the example's table.
const WRONG_TABLES: &str = "
CREATE DATABASE job_analytics;
CREATE TABLE job_analytics.wrong_columns (
    job_id BIGINT NOT NULL, client_id INT, title STRING, status VARCHAR(32), location VARCHAR(256),
    salary_min INT, salary_max DECIMAL(12,1), created_at DATE, updated_at DATETIME(6), view_count BIGINT,
    apply_count BIGINT, click_count BIGINT, last_activity_at DATETIME(6), client_excluded BOOLEAN,
    exclusion_reason VARCHAR(512), revenue_total DECIMAL(18,2), revenue_entries BIGINT, last_booked_on DATE,
    note STRING NOT NULL, region VARCHAR(10), source_version BIGINT NOT NULL
) UNIQUE KEY(job_id) DISTRIBUTED BY HASH(job_id) BUCKETS 1
PROPERTIES (\"function_column.sequence_col\" = \"source_version\");
CREATE TABLE job_analytics.wrong_model (job_id BIGINT NOT NULL, client_id BIGINT, source_version BIGINT)
DUPLICATE KEY(job_id, client_id) DISTRIBUTED BY HASH(job_id) BUCKETS 1;
CREATE TABLE job_analytics.no_sequence (job_id BIGINT NOT NULL, source_version BIGINT)
UNIQUE KEY(job_id) DISTRIBUTED BY HASH(job_id) BUCKETS 1;
CREATE TABLE job_analytics.int_sequence (job_id BIGINT NOT NULL, source_version INT)
UNIQUE KEY(job_id) DISTRIBUTED BY HASH(job_id) BUCKETS 1
PROPERTIES (\"function_column.sequence_col\" = \"source_version\");
CREATE TABLE job_analytics.other_sequence (job_id BIGINT NOT NULL, v2 BIGINT)
UNIQUE KEY(job_id) DISTRIBUTED BY HASH(job_id) BUCKETS 1
PROPERTIES (\"function_column.sequence_col\" = \"v2\");
";

/// `check` against one of [`WRONG_TABLES`].
async fn check_table(world: &World, doris: &Doris, table: &str) -> CheckReport {
    let path = world.config("job_id", doris);
    edit(
        &path,
        "table = \"merged_job_data\"",
        &format!("table = \"{table}\""),
    );
    run_check(&path, doris).await
}

/// The detail of the line about `subject`, which must have this outcome.
fn detail<'r>(report: &'r CheckReport, subject: &str, outcome: Outcome) -> &'r str {
    let l = one(report, subject);
    assert_eq!(l.outcome, outcome, "{subject}\n{}", report.render());
    &l.detail
}

/// Each schema mistake is caught on its own line, saying what to change: columns the table lacks or the query does
/// not write, types that cannot hold the values (numeric → INT, a narrower DECIMAL, timestamptz → DATE, bigint →
/// INT, unbounded text → VARCHAR(32)), the key model, the key, the sequence column.
#[tokio::test]
async fn check_catches_each_schema_mistake() {
    let world = World::create(&TABLES).await;
    // The merge query with created_at as timestamptz (the example renders it as text for DATETIME).
    let merge = std::fs::read_to_string(world.dir.path().join("merge.sql")).expect("merge.sql");
    let raw_created_at = merge.replace(
        "to_char(j.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')        AS created_at",
        "j.created_at AS created_at",
    );
    assert_ne!(merge, raw_created_at);
    std::fs::write(world.dir.path().join("merge.sql"), raw_created_at).expect("merge.sql");
    let sim = doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![WRONG_TABLES.to_string()],
        password: "pw".into(),
        ..Default::default()
    })
    .await
    .expect("doris-sim");
    let doris = Doris::sim(&sim, "pw");

    let report = check_table(&world, &doris, "wrong_columns").await;
    let text = report.render();
    assert!(report.failed(), "{text}");
    assert_eq!(
        detail(&report, "schema", Outcome::Pass),
        "`job_analytics`.`wrong_columns` is UNIQUE KEY(job_id) with sequence column \"source_version\""
    );
    let d = detail(&report, "schema.category", Outcome::Fail);
    assert!(
        d.contains("has no such column") && d.contains("ADD COLUMN `category` STRING"),
        "{d}"
    );
    let d = detail(&report, "schema.salary_min", Outcome::Fail);
    assert!(
        d.starts_with("numeric(12,2) into INT: ") && d.ends_with("make it DECIMAL(12,2)"),
        "{d}"
    );
    let d = detail(&report, "schema.salary_max", Outcome::Fail);
    assert!(
        d.contains("rounded to 1") && d.ends_with("make it DECIMAL(12,2)"),
        "{d}"
    );
    let d = detail(&report, "schema.created_at", Outcome::Fail);
    assert!(
        d.starts_with("timestamptz into DATE: the time of day is lost")
            && d.ends_with("make it DATETIME(6)"),
        "{d}"
    );
    let d = detail(&report, "schema.client_id", Outcome::Fail);
    assert!(
        d.starts_with("int8 into INT: ") && d.ends_with("make it BIGINT"),
        "{d}"
    );
    let d = detail(&report, "schema.status", Outcome::Warn);
    assert!(d.contains("make it STRING"), "{d}");
    let d = detail(&report, "schema.note", Outcome::Fail);
    assert!(
        d.contains("NOT NULL") && d.contains("every load is refused"),
        "{d}"
    );
    let d = detail(&report, "schema.region", Outcome::Warn);
    assert!(d.contains("never written"), "{d}");
    // What fits is not mentioned.
    assert!(about(&report, "schema.title").is_empty(), "{text}");
    assert!(about(&report, "schema.updated_at").is_empty(), "{text}");
    assert!(about(&report, "schema.columns").is_empty(), "{text}");

    let report = check_table(&world, &doris, "wrong_model").await;
    let lines: Vec<&str> = about(&report, "schema")
        .iter()
        .map(|l| {
            assert_eq!(l.outcome, Outcome::Fail, "{}", report.render());
            l.detail.as_str()
        })
        .collect();
    assert!(lines[0].contains("is a DUPLICATE KEY table"), "{lines:?}");
    assert!(lines[0].contains("UNIQUE KEY(job_id)"), "{lines:?}");
    assert!(
        lines[1].contains(
            "the key of `job_analytics`.`wrong_model` is (job_id, client_id), not (job_id)"
        ),
        "{lines:?}"
    );

    let report = check_table(&world, &doris, "no_sequence").await;
    let d = detail(&report, "schema", Outcome::Fail);
    assert!(
        d.contains("has no sequence column")
            && d.contains("\"function_column.sequence_col\" = \"source_version\""),
        "{d}"
    );

    let report = check_table(&world, &doris, "int_sequence").await;
    let d = detail(&report, "schema", Outcome::Fail);
    assert!(d.contains("is INT") && d.contains("make it BIGINT"), "{d}");

    let report = check_table(&world, &doris, "other_sequence").await;
    let d = detail(&report, "doris.sequence_column", Outcome::Fail);
    assert!(d.contains("set doris.sequence_column = \"v2\""), "{d}");

    sim.shutdown().await;
    world.drop_all().await;
}

/// `cdc2doris ddl` prints a table that Doris (here doris-sim) creates, that `check` finds fitting, and that a
/// backfill fills so that `verify` finds it equal to the merge query: the first deployment, end to end.
#[tokio::test]
async fn ddl_prints_a_table_that_fits_loads_and_verifies() {
    let world = World::create(&TABLES).await;
    let path = world.config("job_id", &Doris::unreachable());
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cdc2doris"))
        .args(["ddl", "--config"])
        .arg(&path)
        .env("CHECK_PG_PASSWORD", pg_password())
        .env("CHECK_DORIS_PASSWORD", "unused")
        .output()
        .await
        .expect("run cdc2doris ddl");
    let ddl = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{ddl}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(ddl.contains("CREATE TABLE IF NOT EXISTS `job_analytics`.`merged_job_data` (\n    `job_id` BIGINT NOT NULL,\n"), "{ddl}");
    assert!(ddl.contains("\n    `salary_min` DECIMAL(12,2),\n"), "{ddl}");
    assert!(ddl.contains("\n    `client_excluded` BOOLEAN,\n"), "{ddl}");
    assert!(ddl.contains("\n    `last_booked_on` DATE,\n"), "{ddl}");
    assert!(ddl.contains("UNIQUE KEY(`job_id`)"), "{ddl}");

    let sim = doris_sim::Sim::start(doris_sim::SimOptions {
        ddl: vec![ddl.clone()],
        password: "pw".into(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the printed DDL does not run: {e}\n{ddl}"));
    let doris = Doris::sim(&sim, "pw");
    let path = world.config("job_id", &doris);
    let report = run_check(&path, &doris).await;
    let text = report.render();
    // Every column fits, except the sum without a declared precision, which the DDL also notes for review.
    for l in report
        .lines
        .iter()
        .filter(|l| l.subject.starts_with("schema"))
    {
        let expected = if l.subject == "schema.revenue_total" {
            Outcome::Warn
        } else {
            Outcome::Pass
        };
        assert_eq!(l.outcome, expected, "{text}");
    }
    assert!(
        ddl.contains("-- revenue_total numeric: numeric without a declared precision"),
        "{ddl}"
    );
    assert_eq!(about(&report, "schema").len(), 1, "{text}");
    assert_eq!(about(&report, "schema.revenue_total").len(), 1, "{text}");

    connect(&world.database)
        .await
        .batch_execute(
            "INSERT INTO jobs (id, client_id, title, status, salary_min, created_at)
             SELECT i, i % 4, 'job ' || i, 'open', 100.25 * i, '2024-01-02 03:04:05.5+00' FROM generate_series(1, 30) i;
             INSERT INTO job_activity (id, job_id, activity_type) SELECT i, i % 9 + 1, 'view' FROM generate_series(1, 20) i;
             INSERT INTO standard_revenue (id, job_id, amount_usd, booked_on)
             SELECT i, i % 5 + 1, 3.5 * i, '2024-05-06' FROM generate_series(1, 12) i;
             INSERT INTO clients_to_exclude (client_id, reason) VALUES (2, 'test');",
        )
        .await
        .expect("seed");
    let pg = pg_password();
    let env = move |name: &str| match name {
        "CHECK_PG_PASSWORD" => Ok(pg.clone()),
        "CHECK_DORIS_PASSWORD" => Ok("pw".to_string()),
        _ => Err(std::env::VarError::NotPresent),
    };
    let config = check_config(&path, &env).1.expect("config");
    let done = cdc2doris::backfill::run(
        config.clone(),
        cdc2doris::backfill::Keys::Query("SELECT id FROM jobs".into()),
        100,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("backfill");
    assert_eq!(done.rows, 30);
    let verified = cdc2doris::verify::run_verify(
        &config,
        &cdc2doris::verify::VerifyOptions {
            keys_query: Some("SELECT id FROM jobs".into()),
            sample: None,
            range_keys: 8,
            examples: 5,
            repair: false,
            recheck_after: Duration::ZERO,
            progress: false,
        },
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("verify");
    assert!(verified.clean(), "{}", verified.render_text());
    assert_eq!(verified.counts.matched, 30, "{}", verified.render_text());
    assert!(verified.unchecked_columns.is_empty());
    sim.shutdown().await;
    world.drop_all().await;
}
