//! Support for integration tests that run against the real local stack (`dev/stack up`).
//!
//! Tests read where the services are from the variables `dev/stack env` prints and fall back to the stack's
//! default ports, so a plain `cargo test` works after `dev/stack up`. A service that cannot be reached fails the
//! test with a message that names `dev/stack up`; tests never skip silently.
//!
//! Every test gets its own names ([`unique_name`]): its own topics, consumer groups and PostgreSQL database
//! ([`TestDatabase`]), so test binaries and the tests inside them can run in parallel against one stack.
//!
//! Use from a test file with `mod common;`.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::time::Duration;

pub mod standby;
pub mod world;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

/// How long a test waits for a stack service before it fails.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(30);

const HOW_TO_START: &str =
    "start the local stack with `dev/stack up` (or run everything with `dev/test`)";

/// Reads an environment variable set by `eval "$(dev/stack env)"`, or returns the stack's default.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A name no other test (or earlier run) uses: `<prefix>_<32 hex digits>`; valid as a Kafka topic, a consumer
/// group and an unquoted PostgreSQL identifier when `prefix` is lowercase.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka

/// Kafka bootstrap servers: `CDC2DORIS_KAFKA_BOOTSTRAP`, default `127.0.0.1:9092`.
pub fn kafka_bootstrap() -> String {
    env_or("CDC2DORIS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
}

/// A client config with the bootstrap servers and timeouts short enough that an absent broker fails the test
/// quickly.
pub fn kafka_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", kafka_bootstrap())
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000");
    config
}

/// An admin client for the stack's broker; panics (fails the test) when the broker does not answer.
pub fn kafka_admin() -> AdminClient<DefaultClientContext> {
    let admin: AdminClient<DefaultClientContext> = kafka_config()
        .create()
        .unwrap_or_else(|e| panic!("cannot create a Kafka admin client: {e}"));
    if let Err(e) = admin.inner().fetch_metadata(None, Duration::from_secs(15)) {
        panic!(
            "Kafka at {} is not reachable ({e}); {HOW_TO_START}",
            kafka_bootstrap()
        );
    }
    admin
}

/// Creates a topic with `partitions` partitions (replication factor 1) and returns its name, which is
/// `unique_name(prefix)`.
pub async fn create_topic(prefix: &str, partitions: i32) -> String {
    let name = unique_name(prefix);
    create_topic_named(&name, partitions).await;
    name
}

/// Creates the topic `name` with `partitions` partitions (replication factor 1), e.g. a topic a connector will
/// write to, so that a consumer can subscribe before the first record exists.
pub async fn create_topic_named(name: &str, partitions: i32) {
    let admin = kafka_admin();
    let opts = AdminOptions::new().operation_timeout(Some(SERVICE_TIMEOUT));
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap_or_else(|e| panic!("creating topic {name} failed: {e}; {HOW_TO_START}"));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("creating topic {topic} failed: {code}");
        }
    }
}

/// Deletes a topic; errors are ignored (cleanup only).
pub async fn delete_topic(name: &str) {
    let admin = kafka_admin();
    let _ = admin
        .delete_topics(
            &[name],
            &AdminOptions::new().operation_timeout(Some(SERVICE_TIMEOUT)),
        )
        .await;
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka Connect

/// The Kafka Connect REST API: `CDC2DORIS_CONNECT_URL`, default `http://127.0.0.1:8083` (`dev/stack up
/// --with-debezium`).
pub fn connect_url() -> String {
    env_or("CDC2DORIS_CONNECT_URL", "http://127.0.0.1:8083")
}

/// Message for a test that cannot reach Kafka Connect.
pub fn connect_unreachable(e: &dyn std::fmt::Display) -> String {
    format!(
        "Kafka Connect at {} is not reachable ({e}); start it with `dev/stack up --with-debezium` (or run `dev/test`)",
        connect_url()
    )
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

/// Connection settings for the stack's PostgreSQL: `CDC2DORIS_PG_URL` (default
/// `postgres://cdc2doris@127.0.0.1:5432/postgres`) with the password from `CDC2DORIS_PG_PASSWORD` (default: the
/// stack's local-dev password), kept out of the URL so it never shows up in a log line.
pub fn pg_config() -> tokio_postgres::Config {
    let url = env_or(
        "CDC2DORIS_PG_URL",
        "postgres://cdc2doris@127.0.0.1:5432/postgres",
    );
    let mut config: tokio_postgres::Config = url
        .parse()
        .unwrap_or_else(|e| panic!("CDC2DORIS_PG_URL={url} is not a PostgreSQL URL: {e}"));
    config.password(env_or("CDC2DORIS_PG_PASSWORD", "cdc2doris"));
    config.connect_timeout(SERVICE_TIMEOUT);
    config
}

/// Where [`pg_config`] points, for messages (no password).
fn pg_target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// Connects to `dbname` (or the URL's database when `None`) and drives the connection on a task of the current
/// runtime. Panics with a message that names `dev/stack up` when PostgreSQL cannot be reached.
pub async fn pg_connect(dbname: Option<&str>) -> tokio_postgres::Client {
    let mut config = pg_config();
    if let Some(db) = dbname {
        config.dbname(db);
    }
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is not reachable ({e}); {HOW_TO_START}",
                pg_target(&config)
            )
        });
    tokio::spawn(async move {
        // The connection ends with an error when the test drops its database under it; nothing to report.
        let _ = connection.await;
    });
    client
}

/// A throwaway database that belongs to one test. [`TestDatabase::drop_now`] removes it; if a test panics before
/// that, `Drop` removes it on a separate thread.
pub struct TestDatabase {
    /// The database name, `unique_name(prefix)`.
    pub name: String,
    /// Set once the database is gone, so `Drop` does nothing.
    dropped: bool,
}

impl TestDatabase {
    /// Creates a fresh database named `unique_name(prefix)`; `prefix` must be a lowercase identifier.
    pub async fn create(prefix: &str) -> TestDatabase {
        let name = unique_name(prefix);
        let admin = pg_connect(None).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        TestDatabase {
            name,
            dropped: false,
        }
    }

    /// A new connection to this database.
    pub async fn connect(&self) -> tokio_postgres::Client {
        pg_connect(Some(&self.name)).await
    }

    /// Drops the database now, closing the connections that are still open to it.
    pub async fn drop_now(mut self) {
        drop_database(&self.name).await;
        self.dropped = true;
    }
}

async fn drop_database(name: &str) {
    let admin = pg_connect(None).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE {name} failed: {e}"));
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Async cleanup cannot run inside Drop on the test's runtime, so give it a thread and a runtime of its own.
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(drop_database(&name));
        });
        if cleanup.join().is_err() {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// The stack's PostgreSQL CA: `CDC2DORIS_PG_TLS_CA` (from `dev/stack env`), default `<repo>/.stack/pg-tls/ca.pem`,
/// where `dev/stack up` writes it when it sets up TLS.
pub fn stack_ca() -> std::path::PathBuf {
    let path = std::env::var("CDC2DORIS_PG_TLS_CA")
        .ok()
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.stack/pg-tls/ca.pem")
        });
    assert!(
        path.is_file(),
        "the stack's PostgreSQL CA {} is missing; run `dev/stack up` (it sets up TLS) and `eval \"$(dev/stack env)\"`",
        path.display()
    );
    path
}
