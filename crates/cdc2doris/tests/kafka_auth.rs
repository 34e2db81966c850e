//! Kafka that demands authentication: the pipeline end to end over SASL_SSL (SCRAM-SHA-512) and over mTLS, against
//! the listeners `dev/stack` gives the local broker; `check` says what to fix when the password, the CA, the SASL
//! mechanism or the client certificate (another CA's, or expired) is wrong, without showing the password.
//!
//! The listeners and certificates come from `dev/stack env`. Without them (a broker started by an older dev/stack)
//! the tests fail saying so; they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdc2doris::check::{check_config, check_connectivity, CheckReport, Outcome};
use common::world::{plain_job, stop_gracefully, unsafe_env_set, World};

/// The local-dev SCRAM password's variable, as `dev/stack env` exports it.
const SCRAM_PASSWORD_VAR: &str = "CDC2DORIS_KAFKA_SCRAM_PASSWORD";

/// A `dev/stack env` variable; fails the test when it is missing.
fn stack_env(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{name} is not set: run the tests with the environment of a dev/stack whose Kafka has the SASL_SSL and \
             mTLS listeners (eval \"$(dev/stack env)\"; restart Kafka with dev/stack if it predates them)"
        )
    })
}

fn tls_file(name: &str) -> PathBuf {
    let path = Path::new(&stack_env("CDC2DORIS_TLS_DIR")).join(name);
    assert!(
        path.exists(),
        "{} is missing: run dev/stack up to make the local CA's certificates",
        path.display()
    );
    path
}

/// The `[kafka]` lines that reach the SASL_SSL listener.
fn sasl_ssl(mechanism: &str, ca: &Path) -> String {
    format!(
        "bootstrap_servers = [\"{}\"]\n\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\
         \"sasl.mechanisms\" = \"{mechanism}\"\n\"sasl.username\" = \"{}\"\n\"ssl.ca.location\" = \"{}\"\n\n\
         [kafka.properties_from_env]\n\"sasl.password\" = \"{SCRAM_PASSWORD_VAR}\"\n",
        stack_env("CDC2DORIS_KAFKA_SASL_BOOTSTRAP"),
        stack_env("CDC2DORIS_KAFKA_SCRAM_USER"),
        ca.display()
    )
}

/// The `[kafka]` lines that reach the mTLS listener with this client certificate.
fn mtls(ca: &Path, cert: &Path, key: &Path) -> String {
    format!(
        "bootstrap_servers = [\"{}\"]\n\n[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\
         \"ssl.ca.location\" = \"{}\"\n\"ssl.certificate.location\" = \"{}\"\n\"ssl.key.location\" = \"{}\"\n",
        stack_env("CDC2DORIS_KAFKA_MTLS_BOOTSTRAP"),
        ca.display(),
        cert.display(),
        key.display()
    )
}

/// The world's config with its `bootstrap_servers` line replaced by `kafka` (which may add property tables).
fn secured(w: &World, kafka: &str, file: &str) -> PathBuf {
    let path = w.write_config_at("", w.admin_port, file);
    let text = std::fs::read_to_string(&path).unwrap();
    let line = format!("bootstrap_servers = [\"{}\"]\n", common::world::bootstrap());
    assert!(text.contains(&line));
    // The property tables must come after the plain keys of [kafka].
    let text = text.replace(&line, "").replace(
        "revoke_timeout = \"20s\"\n",
        &format!("revoke_timeout = \"20s\"\n{kafka}"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn end_to_end(name: &str, kafka: impl Fn() -> String) {
    let mut w = World::new(name, 1).await;
    unsafe_env_set(SCRAM_PASSWORD_VAR, &stack_env(SCRAM_PASSWORD_VAR));
    let config = secured(&w, &kafka(), "pipeline.toml");
    let (stop, run) = w.start(&config);
    let jobs: Vec<jobgen::Change> = (1..=5).map(plain_job).collect();
    w.apply(&jobs).await;
    w.converge(1..6, Duration::from_secs(60)).await;
    w.wait_all_committed(1).await;
    assert!(!run.is_finished(), "the pipeline keeps running");
    stop_gracefully(stop, run).await;
    w.assert_all_committed(
        1,
        "every message was acknowledged over the secured listener",
    );
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pipeline_runs_end_to_end_over_sasl_ssl_with_scram() {
    end_to_end("sasl", || sasl_ssl("SCRAM-SHA-512", &tls_file("ca.pem"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pipeline_runs_end_to_end_over_mtls() {
    end_to_end("mtls", || {
        mtls(
            &tls_file("ca.pem"),
            &tls_file("client.pem"),
            &tls_file("client.key"),
        )
    })
    .await;
}

/// `check` on a config, with the SASL password from `password`.
async fn check_with(config: &Path, password: &str) -> CheckReport {
    let password = password.to_string();
    let pg = common::world::pg_password();
    let env = move |name: &str| match name {
        SCRAM_PASSWORD_VAR => Ok(password.clone()),
        "CDC2DORIS_TEST_PG_PASSWORD" => Ok(pg.clone()),
        _ => Err(std::env::VarError::NotPresent),
    };
    let (mut report, config) = check_config(config, &env);
    let config = config.unwrap_or_else(|| panic!("config invalid:\n{}", report.render()));
    check_connectivity(&config, Duration::from_secs(8), &mut report).await;
    report
}

/// The one failing Kafka line of `report`: it names `subject` and says `fix`; the password is nowhere.
fn assert_kafka_fails(report: &CheckReport, subject: &str, fix: &str, password: &str) {
    let text = report.render();
    assert!(!text.contains(password), "the password is shown:\n{text}");
    let line = report
        .lines
        .iter()
        .find(|l| l.outcome == Outcome::Fail && l.subject.starts_with("kafka"))
        .unwrap_or_else(|| panic!("no failing Kafka line:\n{text}"));
    assert_eq!(line.subject, subject, "{text}");
    assert!(line.detail.contains(fix), "{fix:?} not in: {}", line.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_names_what_to_fix_when_kafka_refuses_the_client() {
    let w = World::new("kafkacheck", 1).await;
    let password = stack_env(SCRAM_PASSWORD_VAR);
    let ca = tls_file("ca.pem");

    // Right: every Kafka line passes.
    let good = secured(&w, &sasl_ssl("SCRAM-SHA-512", &ca), "good.toml");
    let report = check_with(&good, &password).await;
    let text = report.render();
    assert!(
        report
            .lines
            .iter()
            .filter(|l| l.subject.starts_with("kafka"))
            .all(|l| l.outcome == Outcome::Pass),
        "{text}"
    );
    assert!(!text.contains(&password), "{text}");

    // A wrong password: the user and the variable are named.
    let wrong = "kafkaWrongPassword-7d1c";
    let report = check_with(&good, wrong).await;
    assert_kafka_fails(
        &report,
        "kafka.properties_from_env.\"sasl.password\"",
        SCRAM_PASSWORD_VAR,
        wrong,
    );

    // A mechanism the broker does not enable.
    let path = secured(&w, &sasl_ssl("SCRAM-SHA-256", &ca), "mechanism.toml");
    let report = check_with(&path, &password).await;
    assert_kafka_fails(
        &report,
        "kafka.properties.\"sasl.mechanisms\"",
        "SCRAM-SHA-256",
        &password,
    );

    // A CA that did not sign the broker's certificate.
    let path = secured(
        &w,
        &sasl_ssl("SCRAM-SHA-512", &tls_file("other-ca.pem")),
        "ca.toml",
    );
    let report = check_with(&path, &password).await;
    assert_kafka_fails(
        &report,
        "kafka.properties.\"ssl.ca.location\"",
        "not signed by a trusted CA",
        &password,
    );

    // mTLS with a client certificate from a CA the broker does not trust.
    let path = secured(
        &w,
        &mtls(
            &ca,
            &tls_file("other-client.pem"),
            &tls_file("other-client.key"),
        ),
        "client.toml",
    );
    let report = check_with(&path, &password).await;
    assert_kafka_fails(
        &report,
        "kafka.properties.\"ssl.certificate.location\"",
        "refused this client's TLS certificate",
        &password,
    );

    // mTLS with an expired client certificate of the right CA.
    let path = secured(
        &w,
        &mtls(
            &ca,
            &tls_file("expired-client.pem"),
            &tls_file("expired-client.key"),
        ),
        "expired.toml",
    );
    let report = check_with(&path, &password).await;
    assert_kafka_fails(
        &report,
        "kafka.properties.\"ssl.certificate.location\"",
        "has not expired",
        &password,
    );
    w.cleanup().await;
}
