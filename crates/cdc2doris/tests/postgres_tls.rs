//! TLS to PostgreSQL against the stack's real server: `dev/stack up` makes it offer TLS with a certificate for
//! `localhost` and `127.0.0.1` signed by a local CA, whose PEM file `dev/stack env` exports as `CDC2DORIS_PG_TLS_CA`.
//!
//! Every connection here goes through what `cdc2doris run` uses: the pool of `pipeline::postgres_pool` or the
//! connector of `merge::tls`, and the server says whether the session is encrypted (`pg_stat_ssl`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdc2doris::check::{check_config, check_connectivity, CheckLine, CheckReport, Outcome};
use cdc2doris::config::{Config, TlsMode};
use cdc2doris::merge::tls::{tls_error, PgTls, TlsError};
use cdc2doris::pipeline::{postgres_pool, PipelineError};
use tokio_util::sync::CancellationToken;

const PASSWORD_VAR: &str = "TLS_TEST_PG_PASSWORD";
/// The password of the tests whose connection fails in the TLS handshake, before any password is sent: distinctive,
/// so that a message holding it would show (the stack's own password is its user name).
const UNUSED_PASSWORD: &str = "tls-test-password-5e0c9a";
/// A host name the stack's certificate does not hold; `hostaddr` sends the connection to 127.0.0.1 all the same,
/// while the certificate is checked against this name (as libpq does).
const UNNAMED_HOST: &str = "cdc2doris-tls-test.invalid";

fn pg_password() -> String {
    std::env::var("CDC2DORIS_PG_PASSWORD")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "cdc2doris".to_string())
}

/// The stack's URL (`CDC2DORIS_PG_URL`, default `postgres://cdc2doris@127.0.0.1:5432/postgres`).
fn stack_url() -> String {
    std::env::var("CDC2DORIS_PG_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://cdc2doris@127.0.0.1:5432/postgres".to_string())
}

/// The stack's URL with `host` as the host name and the connection sent to 127.0.0.1.
fn url_with_host_name(host: &str) -> String {
    let mut url = reqwest::Url::parse(&stack_url()).expect("CDC2DORIS_PG_URL is a URL");
    url.set_host(Some(host)).expect("a valid host name");
    url.query_pairs_mut().append_pair("hostaddr", "127.0.0.1");
    url.to_string()
}

/// A complete configuration whose `[postgres]` section is the stack's, with this TLS setting. Only the PostgreSQL side
/// matters here: the topic does not exist (`check` creates none) and Doris is a closed port.
struct TestConfig {
    dir: tempfile::TempDir,
    /// What `PASSWORD_VAR` holds.
    password: String,
}

impl TestConfig {
    /// With the stack's password.
    fn new() -> TestConfig {
        TestConfig::with_password(pg_password())
    }

    fn with_password(password: impl Into<String>) -> TestConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("merge.sql"),
            "SELECT k AS id FROM unnest($1::int8[]) AS k\n",
        )
        .expect("merge.sql");
        TestConfig {
            dir,
            password: password.into(),
        }
    }

    fn env(&self) -> impl Fn(&str) -> Result<String, std::env::VarError> + '_ {
        move |name: &str| match name {
            PASSWORD_VAR => Ok(self.password.clone()),
            _ => Err(std::env::VarError::NotPresent),
        }
    }

    fn write(&self, url: &str, tls_mode: &str, ca: Option<&Path>) -> PathBuf {
        let ca_line = ca.map_or(String::new(), |p| {
            format!("tls_ca_file = {:?}\n", p.display().to_string())
        });
        let text = format!(
            r#"
[kafka]
bootstrap_servers = ["{bootstrap}"]
group_id = "tls-test"
topics = ["tls_test"]

[postgres]
url = "{url}"
password_env = "{PASSWORD_VAR}"
connect_timeout = "5s"
tls_mode = "{tls_mode}"
{ca_line}
[[keys.rules]]
topic = "tls_test"
format = "debezium"
fields = ["id"]

[merge]
query_file = "merge.sql"
key_column = "id"

[doris]
fe_urls = ["http://127.0.0.1:1"]
database = "tls_test"
table = "t"
user = "root"
sequence_column = "source_version"

[dead_letter]
path = "dead-letter.jsonl"
"#,
            bootstrap = common::kafka_bootstrap(),
        );
        let path = self.dir.path().join("pipeline.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn load(&self, url: &str, tls_mode: &str, ca: Option<&Path>) -> Config {
        let path = self.write(url, tls_mode, ca);
        cdc2doris::config::load_with_env(&path, &self.env())
            .unwrap_or_else(|e| panic!("config: {e}"))
    }

    /// `cdc2doris check` of the file at `path`.
    async fn check(&self, path: &Path) -> CheckReport {
        let (mut report, config) = check_config(path, &self.env());
        let config = config.unwrap_or_else(|| panic!("config invalid:\n{}", report.render()));
        check_connectivity(&config, Duration::from_secs(5), &mut report).await;
        report
    }
}

/// What the server says of this session: (encrypted, protocol).
async fn session_tls(client: &tokio_postgres::Client) -> (bool, Option<String>) {
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    (row.get(0), row.get(1))
}

/// Connects through the service's pool; the error as the pool reports it.
async fn pool_connect(
    config: &Config,
) -> Result<deadpool_postgres::Object, deadpool_postgres::PoolError> {
    let pool = postgres_pool(config).unwrap_or_else(|e| panic!("pool: {e}"));
    pool.get().await
}

/// The TLS error behind a failed pool connection, and its text (what `run` and `check` print).
fn refusal(e: &deadpool_postgres::PoolError) -> (&TlsError, String) {
    let deadpool_postgres::PoolError::Backend(backend) = e else {
        panic!("expected a connection error, got {e}");
    };
    let tls = tls_error(backend).unwrap_or_else(|| panic!("expected a TLS error, got {e:?}"));
    (tls, tls.to_string())
}

#[tokio::test]
async fn require_with_the_stack_ca_runs_queries_over_tls() {
    let ca = common::stack_ca();
    let t = TestConfig::new();
    let config = t.load(&stack_url(), "require", Some(&ca));
    let client = pool_connect(&config)
        .await
        .unwrap_or_else(|e| panic!("require + the stack's CA must connect: {e}"));
    let (ssl, version) = session_tls(&client).await;
    assert!(ssl, "the session must be encrypted");
    let version = version.expect("a TLS session has a protocol version");
    assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");
    let sum: i64 = client
        .query_one(
            "SELECT sum(k)::int8 FROM unnest($1::int8[]) AS k",
            &[&vec![1i64, 2, 3]],
        )
        .await
        .expect("a query over TLS")
        .get(0);
    assert_eq!(sum, 6);
}

#[tokio::test]
async fn require_with_localhost_checks_the_dns_name() {
    let ca = common::stack_ca();
    let t = TestConfig::new();
    // The certificate names localhost (a DNS name) and 127.0.0.1 (an IP address); both verify.
    let config = t.load(&url_with_host_name("localhost"), "require", Some(&ca));
    let client = pool_connect(&config)
        .await
        .unwrap_or_else(|e| panic!("require + the stack's CA via localhost must connect: {e}"));
    assert!(session_tls(&client).await.0);
}

#[tokio::test]
async fn require_without_a_ca_file_refuses_the_unknown_ca() {
    let _ = common::stack_ca();
    let t = TestConfig::with_password(UNUSED_PASSWORD);
    // The system's roots do not hold the stack's local CA.
    let config = t.load(&stack_url(), "require", None);
    let e = pool_connect(&config).await.expect_err(
        "the stack's certificate is not signed by a system root: the connection must fail",
    );
    let (tls, text) = refusal(&e);
    assert!(matches!(tls, TlsError::UnknownCa { .. }), "{text}");
    assert!(text.contains("unknown CA"), "{text}");
    assert!(text.contains("the system's root certificates"), "{text}");
    assert!(
        text.contains(
            "set postgres.tls_ca_file to the PEM file of the CA that signed the server certificate"
        ),
        "{text}"
    );
    assert!(
        !text.contains(UNUSED_PASSWORD),
        "the password leaked: {text}"
    );
}

#[tokio::test]
async fn require_with_a_host_name_the_certificate_does_not_hold_is_refused() {
    let ca = common::stack_ca();
    let t = TestConfig::new();
    let config = t.load(&url_with_host_name(UNNAMED_HOST), "require", Some(&ca));
    let e = pool_connect(&config)
        .await
        .expect_err("the certificate does not name the host: the connection must fail");
    let (tls, text) = refusal(&e);
    assert!(matches!(tls, TlsError::HostMismatch { .. }), "{text}");
    assert!(text.contains("host name mismatch"), "{text}");
    assert!(text.contains(UNNAMED_HOST), "{text}");
    assert!(
        text.contains("the certificate names localhost, 127.0.0.1)"),
        "names what the certificate holds: {text}"
    );
    assert!(text.contains("postgres.url"), "{text}");
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_server_certificate_is_refused() {
    let _ = common::stack_ca();
    let t = TestConfig::new();
    // A CA of our own, in a bundle of two: the stack's certificate chains to neither.
    let other = t.dir.path().join("other-ca.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-days", "1", "-subj", "/CN=not the stack CA", "-keyout"])
        .arg(t.dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (dev/stack uses it too)");
    assert!(status.success(), "openssl could not make a CA");
    let pem = std::fs::read_to_string(&other).expect("other CA");
    let bundle = t.dir.path().join("bundle.pem");
    std::fs::write(&bundle, format!("{pem}{pem}")).expect("bundle");
    let config = t.load(&stack_url(), "require", Some(&bundle));
    let e = pool_connect(&config)
        .await
        .expect_err("a CA that did not sign the certificate must not verify it");
    let (tls, text) = refusal(&e);
    assert!(matches!(tls, TlsError::UnknownCa { .. }), "{text}");
    assert!(
        text.contains(&bundle.display().to_string()),
        "names the CA file: {text}"
    );
}

#[tokio::test]
async fn prefer_uses_tls_when_the_server_offers_it() {
    let t = TestConfig::new();
    // Without a CA file the certificate is not verified (libpq's prefer), so the local CA need not be trusted.
    let config = t.load(&stack_url(), "prefer", None);
    let client = pool_connect(&config)
        .await
        .unwrap_or_else(|e| panic!("prefer must connect: {e}"));
    assert!(
        session_tls(&client).await.0,
        "prefer must use the TLS the server offers"
    );

    // With one, prefer verifies: the stack's CA passes, and a name the certificate lacks does not.
    let ca = common::stack_ca();
    let config = t.load(&stack_url(), "prefer", Some(&ca));
    let client = pool_connect(&config)
        .await
        .unwrap_or_else(|e| panic!("prefer + the stack's CA must connect: {e}"));
    assert!(session_tls(&client).await.0);
    let config = t.load(&url_with_host_name(UNNAMED_HOST), "prefer", Some(&ca));
    let e = pool_connect(&config)
        .await
        .expect_err("prefer with a CA file verifies the host name");
    assert!(
        matches!(refusal(&e).0, TlsError::HostMismatch { .. }),
        "{e}"
    );
}

#[tokio::test]
async fn disable_connects_without_tls() {
    let t = TestConfig::new();
    let config = t.load(&stack_url(), "disable", None);
    let client = pool_connect(&config)
        .await
        .unwrap_or_else(|e| panic!("disable must connect: {e}"));
    let (ssl, version) = session_tls(&client).await;
    assert!(!ssl, "disable must not use TLS");
    assert_eq!(version, None);
}

/// The stream's `tls-server-end-point` data is what the server computes: with channel binding required, SCRAM
/// authentication succeeds only if both ends hashed the same certificate the same way.
#[tokio::test]
async fn scram_channel_binding_works_over_tls() {
    let ca = common::stack_ca();
    let tls = PgTls::new(TlsMode::Require, Some(&ca)).expect("connector");
    let mut config: tokio_postgres::Config = stack_url().parse().expect("CDC2DORIS_PG_URL");
    config.password(pg_password());
    config.ssl_mode(tls.ssl_mode());
    config.channel_binding(tokio_postgres::config::ChannelBinding::Require);
    config.connect_timeout(common::SERVICE_TIMEOUT);
    let (client, connection) = config.connect(tls).await.unwrap_or_else(|e| {
        panic!(
            "SCRAM-SHA-256-PLUS over TLS failed ({e}); the stack's role must log in with a SCRAM password over TCP \
             (Debian's pg_hba.conf default)"
        )
    });
    tokio::spawn(connection);
    assert!(session_tls(&client).await.0);
}

#[tokio::test]
async fn run_stops_at_start_when_the_certificate_is_refused() {
    let _ = common::stack_ca();
    let t = TestConfig::with_password(UNUSED_PASSWORD);
    let config = t.load(&stack_url(), "require", None);
    // The PostgreSQL probe comes before anything touches Kafka or Doris.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        cdc2doris::pipeline::run(config, None, CancellationToken::new()),
    )
    .await
    .expect("run must stop at once, not retry");
    let Err(e @ PipelineError::PostgresRefused(_)) = result else {
        panic!("expected PostgreSQL's refusal, got {result:?}");
    };
    let message = e.to_string();
    assert!(message.contains("unknown CA"), "{message}");
    assert!(message.contains("postgres.tls_ca_file"), "{message}");
    assert!(
        !message.contains(UNUSED_PASSWORD),
        "the password leaked: {message}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// cdc2doris check

/// The one line about `subject`.
fn one<'r>(report: &'r CheckReport, subject: &str) -> &'r CheckLine {
    let lines: Vec<&CheckLine> = report
        .lines
        .iter()
        .filter(|l| l.subject == subject)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line about {subject}:\n{}",
        report.render()
    );
    lines[0]
}

#[tokio::test]
async fn check_says_whether_the_session_is_encrypted_and_what_was_verified() {
    let ca = common::stack_ca();
    let t = TestConfig::new();

    let report = t.check(&t.write(&stack_url(), "require", Some(&ca))).await;
    let text = report.render();
    let pg = one(&report, "postgres.url");
    assert_eq!(pg.outcome, Outcome::Pass, "{text}");
    assert!(pg.detail.contains(" with TLS 1."), "{text}");
    assert!(
        pg.detail.contains(&format!(
            "certificate and host name verified against tls_ca_file {}",
            ca.display()
        )),
        "{text}"
    );
    // The queries were checked over that session.
    assert_eq!(
        one(&report, "merge.query_file").outcome,
        Outcome::Pass,
        "{text}"
    );

    let report = t.check(&t.write(&stack_url(), "prefer", None)).await;
    let text = report.render();
    let pg = one(&report, "postgres.url");
    assert_eq!(pg.outcome, Outcome::Pass, "{text}");
    assert!(pg.detail.contains(" with TLS 1."), "{text}");
    assert!(pg.detail.contains("certificate not verified"), "{text}");

    let report = t.check(&t.write(&stack_url(), "disable", None)).await;
    let text = report.render();
    let pg = one(&report, "postgres.url");
    assert_eq!(pg.outcome, Outcome::Pass, "{text}");
    assert!(
        pg.detail.ends_with("without TLS (tls_mode = \"disable\")"),
        "{text}"
    );
}

#[tokio::test]
async fn check_fails_a_refused_certificate_on_the_setting_to_change() {
    let ca = common::stack_ca();
    let t = TestConfig::with_password(UNUSED_PASSWORD);

    let report = t.check(&t.write(&stack_url(), "require", None)).await;
    let text = report.render();
    let line = one(&report, "postgres.tls_ca_file");
    assert_eq!(line.outcome, Outcome::Fail, "{text}");
    assert!(line.detail.contains("unknown CA"), "{text}");
    assert_eq!(one(&report, "postgres").outcome, Outcome::Skip, "{text}");

    let report = t
        .check(&t.write(&url_with_host_name(UNNAMED_HOST), "require", Some(&ca)))
        .await;
    let text = report.render();
    let line = one(&report, "postgres.url");
    assert_eq!(line.outcome, Outcome::Fail, "{text}");
    assert!(line.detail.contains("host name mismatch"), "{text}");
    assert!(
        !text.contains(UNUSED_PASSWORD),
        "the password leaked:\n{text}"
    );

    let empty = t.dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("empty CA file");
    let report = t
        .check(&t.write(&stack_url(), "require", Some(&empty)))
        .await;
    let text = report.render();
    let line = one(&report, "postgres.tls_ca_file");
    assert_eq!(line.outcome, Outcome::Fail, "{text}");
    assert!(line.detail.contains("holds no PEM certificate"), "{text}");
}

/// A server that answers every SSLRequest with "N" (no TLS) and every startup message with a FATAL error naming
/// itself; serves until the test's runtime ends. Returns its port.
async fn server_without_tls() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Each message of the startup phase: a 4-byte length (itself included), then a 4-byte code.
                loop {
                    let mut header = [0u8; 8];
                    if socket.read_exact(&mut header).await.is_err() {
                        return;
                    }
                    let len =
                        u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
                    let code = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                    const SSL_REQUEST: u32 = 80_877_103;
                    if code == SSL_REQUEST {
                        if socket.write_all(b"N").await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let mut rest = vec![0u8; len.saturating_sub(8)];
                    let _ = socket.read_exact(&mut rest).await;
                    let fields = b"SFATAL\0C28000\0Mfake server without TLS\0\0";
                    let mut reply = vec![b'E'];
                    reply.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                    reply.extend_from_slice(fields);
                    let _ = socket.write_all(&reply).await;
                    return;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_server_without_tls_fails_require_and_gets_plain_text_under_prefer() {
    let port = server_without_tls().await;
    let url = format!("postgres://cdc2doris@127.0.0.1:{port}/postgres");
    let t = TestConfig::with_password(UNUSED_PASSWORD);

    let report = t.check(&t.write(&url, "require", None)).await;
    let text = report.render();
    let line = one(&report, "postgres.tls_mode");
    assert_eq!(line.outcome, Outcome::Fail, "{text}");
    assert!(line.detail.contains("does not offer TLS"), "{text}");

    // prefer goes on without TLS: the server's answer to the plain startup message comes back.
    let report = t.check(&t.write(&url, "prefer", None)).await;
    let text = report.render();
    let line = one(&report, "postgres.url");
    assert_eq!(line.outcome, Outcome::Fail, "{text}");
    assert!(line.detail.contains("fake server without TLS"), "{text}");
}
