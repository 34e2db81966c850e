//! No secret anywhere: the service, `check` and `inspect` run with distinctive passwords for PostgreSQL, Doris and
//! Kafka, through every error path a test can drive (wrong passwords, unreachable hosts, Doris failures, rejected
//! rows, poison messages, refused configuration), and none of the passwords may appear in what they print (text and
//! JSON logs, at debug level), in `/metrics`, `/debug/state`, the dead-letter records, a `Debug` rendering of the
//! loaded configuration, or a panic report.
//!
//! The passwords are made per run (`<kind>S3cret<hex>`), so any occurrence is a leak, not a coincidence. The same
//! goes for the wrong passwords of the error runs: a wrong password is often a real one with a typo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::world::{admin_get, binary, connect, pg_url, signal, wait_exit, World};

/// Every secret of the test, by what it is.
struct Secrets {
    pg: String,
    doris: String,
    kafka: String,
    pg_wrong: String,
    doris_wrong: String,
    kafka_wrong: String,
    in_url: String,
}

impl Secrets {
    /// `kafka`: the SASL password of the broker's user, when the test talks to the broker.
    fn new(kafka: Option<String>) -> Secrets {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let make = |kind: &str| format!("{kind}S3cret{id}");
        Secrets {
            pg: make("pg"),
            doris: make("doris"),
            kafka: kafka.unwrap_or_else(|| make("kafka")),
            pg_wrong: make("pgWrong"),
            doris_wrong: make("dorisWrong"),
            kafka_wrong: make("kafkaWrong"),
            in_url: make("url"),
        }
    }

    /// Every secret, with the forms it could leak in: itself, and a Basic `Authorization` value holding it.
    fn needles(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in [
            ("PostgreSQL password", &self.pg),
            ("Doris password", &self.doris),
            ("Kafka password", &self.kafka),
            ("wrong PostgreSQL password", &self.pg_wrong),
            ("wrong Doris password", &self.doris_wrong),
            ("wrong Kafka password", &self.kafka_wrong),
            ("password written into a URL", &self.in_url),
        ] {
            out.push((name.to_string(), value.clone()));
            // Long enough to be distinctive: the base64 of the password's middle part (any alignment shows up as
            // one of the three encodings of `user:password`).
            for user in [DORIS_USER, "root"] {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{value}"));
                out.push((format!("{name} as Basic auth of {user}"), basic));
            }
        }
        out
    }

    /// Fails the test, naming the secret and where it appeared, if any secret is in `text`.
    fn assert_absent(&self, what: &str, text: &str) {
        for (name, needle) in self.needles() {
            if let Some(at) = text.find(&needle) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(200)
                    .map_or(0, |(i, _)| i);
                let to = (at + needle.len() + 200).min(text.len());
                let context = text.get(from..to).unwrap_or(text);
                panic!("the {name} appears in {what}:\n…{context}…");
            }
        }
    }
}

/// A `dev/stack env` variable; fails the test when it is missing.
fn stack_env(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{name} is not set: run the tests with the environment of a dev/stack whose Kafka has the SASL_SSL \
             listener (eval \"$(dev/stack env)\"; restart Kafka with dev/stack if it predates it)"
        )
    })
}

const DORIS_USER: &str = "loader";
const PG_VAR: &str = "SEC_PG_PASSWORD";
const DORIS_VAR: &str = "SEC_DORIS_PASSWORD";
const KAFKA_VAR: &str = "SEC_KAFKA_PASSWORD";

/// The test's PostgreSQL role, with its own password, allowed to read the world's tables.
async fn create_role(w: &World, role: &str, password: &str) {
    let admin = connect("postgres").await;
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
        ))
        .await
        .expect("create role");
    w.pg.batch_execute(&format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; GRANT TEMPORARY ON DATABASE {db} TO {role}",
        db = w.db
    ))
    .await
    .expect("grant");
}

/// The world's config with the test's role, the Doris user and password, and Kafka over the SASL_SSL listener (with
/// librdkafka's own debug logging of its configuration and security steps on).
fn secured_config(w: &World, role: &str) -> PathBuf {
    let path = w.write_config("");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let url = pg_url(&w.db);
    let with_role = url.replacen("://cdc2doris@", &format!("://{role}@"), 1);
    assert_ne!(url, with_role, "the stack's URL names user cdc2doris");
    text = text
        .replace(&url, &with_role)
        .replace("CDC2DORIS_TEST_PG_PASSWORD", PG_VAR)
        .replace(
            "table = \"merged_job_data\"\n",
            &format!(
                "table = \"merged_job_data\"\nuser = \"{DORIS_USER}\"\npassword_env = \"{DORIS_VAR}\"\n"
            ),
        )
        .replace(
            &format!("bootstrap_servers = [\"{}\"]", common::world::bootstrap()),
            &format!(
                "bootstrap_servers = [\"{}\"]",
                stack_env("CDC2DORIS_KAFKA_SASL_BOOTSTRAP")
            ),
        )
        .replace(
            "revoke_timeout = \"20s\"\n",
            &format!(
                "revoke_timeout = \"20s\"\n\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\
                 \"sasl.mechanisms\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"{}\"\n\
                 \"ssl.ca.location\" = \"{}/ca.pem\"\n\"debug\" = \"conf,security,broker\"\n\n\
                 [kafka.properties_from_env]\n\"sasl.password\" = \"{KAFKA_VAR}\"\n",
                stack_env("CDC2DORIS_KAFKA_SCRAM_USER"),
                stack_env("CDC2DORIS_TLS_DIR"),
            ),
        )
        .replace(
            "[doris]\n",
            &format!(
                "[doris]\nrequest_timeout = \"10s\"\nretry_max_delay = \"1s\"\nquery_port = {}\n",
                w.sim.query_addr().port()
            ),
        );
    std::fs::write(&path, text).unwrap();
    path
}

/// Environment of a child process: the three passwords (right or wrong) and the log filter.
fn env(pg: &str, doris: &str, kafka: &str) -> Vec<(&'static str, String)> {
    vec![
        (PG_VAR, pg.to_string()),
        (DORIS_VAR, doris.to_string()),
        (KAFKA_VAR, kafka.to_string()),
        ("RUST_LOG", "debug".to_string()),
    ]
}

/// Runs `cdc2doris <args>` to its end; returns its exit code and everything it printed (stdout, then stderr).
fn run_to_end(args: &[&str], env: &[(&'static str, String)], stdin: Option<&str>) -> (i32, String) {
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cdc2doris");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("cdc2doris output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Starts `cdc2doris run`, its stderr (the log) going to `log`.
fn spawn_run(
    config: &Path,
    json: bool,
    env: &[(&'static str, String)],
    log: &Path,
) -> std::process::Child {
    let file = std::fs::File::create(log).expect("log file");
    let mut args = vec!["run", "--config", config.to_str().unwrap()];
    if json {
        args.extend(["--log-format", "json"]);
    }
    Command::new(binary())
        .args(&args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn cdc2doris run")
}

/// Waits until the log holds `needle` (or the process exits); returns the log.
fn wait_for_log(
    child: &mut std::process::Child,
    log: &Path,
    needle: &str,
    within: Duration,
) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        if child.try_wait().expect("try_wait").is_some() {
            panic!("cdc2doris exited before logging {needle:?}:\n{text}");
        }
        assert!(
            start.elapsed() < within,
            "no {needle:?} in the log after {within:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(mut child: std::process::Child, log: &Path) -> String {
    signal(&child, "-TERM");
    let _ = wait_exit(&mut child, Duration::from_secs(40));
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_appears_in_output_logs_metrics_state_or_dead_letters() {
    // The broker's SCRAM user is made by dev/stack, with its local-dev password (distinctive too).
    let s = Secrets::new(Some(stack_env("CDC2DORIS_KAFKA_SCRAM_PASSWORD")));
    let doris_password = s.doris.clone();
    let mut w = World::with_sim("secrets", 1, |o| {
        o.user = DORIS_USER.into();
        o.password = doris_password;
    })
    .await;
    let role = format!("sec_{}", &w.group[2..14]);
    create_role(&w, &role, &s.pg).await;
    let config = secured_config(&w, &role);
    let cfg = config.to_str().unwrap();
    let right = env(&s.pg, &s.doris, &s.kafka);

    // `check`, all passwords right: it passes, and says nothing secret.
    let (code, out) = run_to_end(&["check", "--config", cfg], &right, None);
    assert_eq!(code, 0, "check fails with the right passwords:\n{out}");
    s.assert_absent("`check` output", &out);

    // `check` with wrong passwords: it fails, naming where the passwords come from, never them.
    let (code, out) = run_to_end(
        &["check", "--config", cfg],
        &env(&s.pg_wrong, &s.doris_wrong, &s.kafka_wrong),
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(PG_VAR) || out.contains("postgres."), "{out}");
    assert!(
        out.contains("doris.user") || out.contains(DORIS_VAR),
        "{out}"
    );
    s.assert_absent("`check` output with wrong passwords", &out);

    // `check` against hosts that do not answer.
    let unreachable = w.dir.path().join("unreachable.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&w.sim.fe_url(), "http://127.0.0.1:1")
        .replace(&stack_env("CDC2DORIS_KAFKA_SASL_BOOTSTRAP"), "127.0.0.1:1")
        .replacen("@127.0.0.1:", "@127.0.0.1:1", 1);
    std::fs::write(&unreachable, text).unwrap();
    let (code, out) = run_to_end(
        &[
            "check",
            "--config",
            unreachable.to_str().unwrap(),
            "--timeout",
            "3s",
        ],
        &right,
        None,
    );
    assert_eq!(code, 1, "{out}");
    s.assert_absent("`check` output with unreachable services", &out);

    // `inspect` with the config (which reads the secrets) on a good and on a poison message.
    let message = r#"{"before":null,"after":{"id":42},"op":"c","source":{"table":"jobs"}}"#;
    for input in [message, "{not json"] {
        let topic = w.topic("jobs");
        let (_, out) = run_to_end(
            &["inspect", "--config", cfg, "--topic", &topic],
            &right,
            Some(input),
        );
        s.assert_absent("`inspect` output", &out);
    }

    // The service, text logs at debug level: good rows, a row Doris rejects, a poison message, Doris failures.
    w.sim
        .client()
        .queue_faults(&[
            doris_sim::FaultSpec {
                message: Some("[TIMEOUT] load timed out".into()),
                ..doris_sim::FaultSpec::new(doris_sim::FaultKind::Fail)
            },
            doris_sim::FaultSpec::new(doris_sim::FaultKind::Http500),
            doris_sim::FaultSpec::new(doris_sim::FaultKind::ResetBeforeCommit),
            doris_sim::FaultSpec::new(doris_sim::FaultKind::RedirectUnreachable),
        ])
        .await
        .expect("faults");
    let log = w.dir.path().join("run-text.log");
    let mut child = spawn_run(&config, false, &right, &log);
    let mut jobs: Vec<jobgen::Change> = (1..=6).map(common::world::plain_job).collect();
    // Job 4's category is longer than Doris' VARCHAR(128): the row is rejected and dead-lettered.
    jobs[3] = common::world::job_with(4, "job 4", &"c".repeat(200));
    w.apply(&jobs).await;
    w.produce(&w.topic("jobs"), "poison", "{not json").await;
    w.wait_all_committed(1).await;
    let (dead, records) = w.dead_letters();
    assert!(
        records.len() >= 2,
        "a rejected row and a poison message:\n{dead}"
    );
    s.assert_absent("the dead-letter records", &dead);
    // They hold raw messages and rows (personal data, maybe): the file is created readable by its owner only.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(w.dir.path().join("dead.jsonl"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "dead-letter file mode {mode:o}");
    let metrics = admin_get(w.admin_port, "/metrics").await;
    assert!(metrics.contains("cdc2doris_"), "{metrics}");
    s.assert_absent("/metrics", &metrics);
    let state = admin_get(w.admin_port, "/debug/state").await;
    assert!(state.contains("totals"), "{state}");
    s.assert_absent("/debug/state", &state);
    // Row data stays out of /debug/state: job 5's title is in Doris, not in the state.
    assert!(
        !state.contains("job 5"),
        "/debug/state shows row data: {state}"
    );
    let text = stop(child, &log);
    assert!(text.contains("Stream Load"), "{text}");
    s.assert_absent("the text log", &text);

    // `verify` (Doris over the MySQL protocol, PostgreSQL), with the right and with wrong passwords.
    for (pg, doris) in [
        (&s.pg, &s.doris),
        (&s.pg, &s.doris_wrong),
        (&s.pg_wrong, &s.doris),
    ] {
        let (_, out) = run_to_end(
            &[
                "verify",
                "--config",
                cfg,
                "--keys-query",
                "SELECT id FROM jobs",
            ],
            &env(pg, doris, &s.kafka),
            None,
        );
        assert!(!out.is_empty());
        s.assert_absent("`verify` output", &out);
    }

    // JSON logs, wrong Doris password: every load is refused.
    let log = w.dir.path().join("run-json-doris.log");
    child = spawn_run(&config, true, &env(&s.pg, &s.doris_wrong, &s.kafka), &log);
    w.apply(&[common::world::plain_job(7)]).await;
    wait_for_log(&mut child, &log, DORIS_USER, Duration::from_secs(60));
    let text = stop(child, &log);
    s.assert_absent("the JSON log with a wrong Doris password", &text);

    // JSON logs, wrong PostgreSQL password.
    let log = w.dir.path().join("run-json-pg.log");
    child = spawn_run(&config, true, &env(&s.pg_wrong, &s.doris, &s.kafka), &log);
    w.apply(&[common::world::plain_job(8)]).await;
    wait_for_log(&mut child, &log, "password", Duration::from_secs(60));
    let text = stop(child, &log);
    s.assert_absent("the JSON log with a wrong PostgreSQL password", &text);

    // What a panic message or a `{:?}` would show of the loaded configuration.
    let lookup = |name: &str| match name {
        PG_VAR => Ok(s.pg.clone()),
        DORIS_VAR => Ok(s.doris.clone()),
        KAFKA_VAR => Ok(s.kafka.clone()),
        _ => Err(std::env::VarError::NotPresent),
    };
    let loaded = cdc2doris::config::load_with_env(&config, &lookup).expect("config");
    s.assert_absent("the configuration's Debug", &format!("{loaded:?}"));

    w.cleanup().await;
    let admin = connect("postgres").await;
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .expect("drop role");
}

/// A password written into a URL, or into `[kafka.properties]`, is refused at start by `run` and by `check`, and
/// the refusal does not repeat it, whether the URL is well-formed or not.
#[test]
fn a_password_in_the_config_file_is_refused_without_being_echoed() {
    let s = Secrets::new(None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("merge.sql"),
        "SELECT id FROM t WHERE id = ANY($1)",
    )
    .unwrap();
    let secret = &s.in_url;
    let base = |pg_url: &str, fe_url: &str, be_urls: &str, kafka_props: &str| {
        let brokers = if kafka_props == "@" {
            format!("cdc2doris:{secret}@127.0.0.1:9092")
        } else {
            "127.0.0.1:9092".to_string()
        };
        let kafka_props = kafka_props.trim_start_matches('@');
        format!(
            r#"[kafka]
bootstrap_servers = ["{brokers}"]
group_id = "g"
topics = ["t"]
{kafka_props}
[postgres]
url = "{pg_url}"

[keys]
[[keys.rules]]
topic = "t"
fields = ["id"]

[merge]
query_file = "merge.sql"
key_column = "id"

[doris]
fe_urls = ["{fe_url}"]
be_urls = [{be_urls}]
database = "d"
table = "t"
sequence_column = "v"

[dead_letter]
path = "dead.jsonl"
"#
        )
    };
    let good_pg = "postgres://app@127.0.0.1:5432/app";
    let good_fe = "http://127.0.0.1:8030";
    let cases = [
        (
            "postgres.url",
            base(
                &format!("postgres://app:{secret}@127.0.0.1:5432/app"),
                good_fe,
                "",
                "",
            ),
        ),
        (
            "postgres.url",
            base(
                &format!("postgres://app:{secret}@127.0.0.1:notaport/app"),
                good_fe,
                "",
                "",
            ),
        ),
        (
            "postgres.url",
            base(
                &format!("postgresql://app:{secret}@[::1/app"),
                good_fe,
                "",
                "",
            ),
        ),
        (
            "postgres.url",
            base(
                &format!("postgres://127.0.0.1/app?user=app&password={secret}"),
                good_fe,
                "",
                "",
            ),
        ),
        (
            "doris.fe_urls[0]",
            base(
                good_pg,
                &format!("http://root:{secret}@127.0.0.1:8030"),
                "",
                "",
            ),
        ),
        (
            "doris.fe_urls[0]",
            base(
                good_pg,
                &format!("http://root:{secret}@127.0.0.1:99999"),
                "",
                "",
            ),
        ),
        (
            "doris.be_urls[0]",
            base(
                good_pg,
                good_fe,
                &format!("\"https://root:{secret}@[::1:8040\""),
                "",
            ),
        ),
        (
            "kafka.bootstrap_servers[0]",
            base(good_pg, good_fe, "", "@"),
        ),
        (
            "kafka.properties",
            base(
                good_pg,
                good_fe,
                "",
                &format!("[kafka.properties]\n\"sasl.password\" = \"{secret}\"\n"),
            ),
        ),
    ];
    for (i, (path, text)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let file = file.to_str().unwrap();
        for command in ["run", "check"] {
            let (code, out) = run_to_end(&[command, "--config", file], &[], None);
            assert_ne!(code, 0, "case {i}: `{command}` accepted it:\n{out}");
            assert!(
                out.contains(path),
                "case {i}: `{command}` does not name {path}:\n{out}"
            );
            s.assert_absent(&format!("`{command}` refusing case {i} ({path})"), &out);
        }
    }
}

/// Set in the child process of the panic test: `text` (no log subscriber) or `json` (the service's JSON logs).
const PANIC_CHILD: &str = "CDC2DORIS_TEST_PANIC_CHILD";
/// The configuration the child loads.
const PANIC_CONFIG: &str = "CDC2DORIS_TEST_PANIC_CONFIG";

/// A panic is a bug, and its message is whatever the code that panicked (ours or a dependency's) put in it — here
/// every password of the loaded configuration. The service's panic report masks them, both when written before the
/// logs start and when it goes through the JSON logs. The test runs its own binary again as the child that loads
/// the configuration, installs the service's panic report and panics.
#[test]
fn a_panic_report_masks_every_password_of_the_configuration() {
    if let Ok(mode) = std::env::var(PANIC_CHILD) {
        panic_child(&mode);
        return;
    }
    let s = Secrets::new(None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("merge.sql"),
        "SELECT id FROM t WHERE id = ANY($1)",
    )
    .unwrap();
    let config = dir.path().join("cdc2doris.toml");
    std::fs::write(
        &config,
        format!(
            r#"[kafka]
bootstrap_servers = ["127.0.0.1:9092"]
group_id = "g"
topics = ["t"]
[kafka.properties]
"security.protocol" = "SASL_SSL"
"sasl.mechanisms" = "SCRAM-SHA-512"
"sasl.username" = "u"
[kafka.properties_from_env]
"sasl.password" = "{KAFKA_VAR}"

[postgres]
url = "postgres://app@127.0.0.1:5432/app"
password_env = "{PG_VAR}"

[keys]
[[keys.rules]]
topic = "t"
fields = ["id"]

[merge]
query_file = "merge.sql"
key_column = "id"

[doris]
fe_urls = ["http://127.0.0.1:8030"]
database = "d"
table = "t"
sequence_column = "v"
user = "{DORIS_USER}"
password_env = "{DORIS_VAR}"

[dead_letter]
path = "dead.jsonl"
"#
        ),
    )
    .unwrap();
    let name = "a_panic_report_masks_every_password_of_the_configuration";
    for mode in ["text", "json"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(PANIC_CHILD, mode)
            .env(PANIC_CONFIG, &config)
            .env(PG_VAR, &s.pg)
            .env(DORIS_VAR, &s.doris)
            .env(KAFKA_VAR, &s.kafka)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "the child did not panic:\n{text}");
        let report = text
            .lines()
            .find(|l| l.contains("connection state"))
            .unwrap_or_else(|| panic!("no panic report in the child's output ({mode}):\n{text}"));
        assert!(
            report.contains("tests/secrets.rs"),
            "the report names where it panicked: {report}"
        );
        assert_eq!(
            report.matches(cdc2doris::panic_report::MASK).count(),
            3,
            "each password is masked: {report}"
        );
        if mode == "json" {
            let event: serde_json::Value = serde_json::from_str(report)
                .unwrap_or_else(|e| panic!("the report is not a JSON log line ({e}): {report}"));
            assert_eq!(event["level"], "ERROR", "{report}");
        }
        s.assert_absent(&format!("the panic report ({mode})"), &text);
    }
}

/// The child of [`a_panic_report_masks_every_password_of_the_configuration`].
fn panic_child(mode: &str) {
    cdc2doris::panic_report::install();
    let path = PathBuf::from(std::env::var(PANIC_CONFIG).unwrap());
    let config = cdc2doris::config::load_for_command(&path).unwrap();
    if mode == "json" {
        cdc2doris::pipeline::cli::init_logs(cdc2doris::config::LogFormat::Json, "info");
    }
    use secrecy::ExposeSecret;
    let pg = config.postgres_password.as_ref().unwrap().expose_secret();
    let doris = config.doris_password.as_ref().unwrap().expose_secret();
    let kafka = config.kafka_secret_properties[0].1.expose_secret();
    panic!(
        "connection state: postgres password {pg}, doris password {doris}, sasl.password {kafka}"
    );
}
