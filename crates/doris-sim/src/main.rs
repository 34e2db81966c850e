//! `doris-sim` binary: parses the command line and runs the emulator until Ctrl-C / SIGTERM.

use std::path::PathBuf;

use clap::Parser;

/// An Apache Doris Stream Load emulator (not part of Doris). Readiness: `GET /api/_sim/stats` on the FE port → 200.
#[derive(Parser, Debug)]
#[command(name = "doris-sim", version, about)]
struct Args {
    /// FE http_port (redirects loads to the BE).
    #[arg(long, default_value_t = 8030)]
    fe_port: u16,
    /// BE webserver_port (executes loads).
    #[arg(long, default_value_t = 8040)]
    be_port: u16,
    /// FE query_port: the MySQL protocol (SELECT, SHOW, DESC … against the stored rows).
    #[arg(long, default_value_t = 9030)]
    query_port: u16,
    /// DDL file with CREATE DATABASE / CREATE TABLE statements; repeatable.
    #[arg(long, required = true)]
    ddl: Vec<PathBuf>,
    /// The user allowed to load.
    #[arg(long, default_value = "root")]
    user: String,
    /// Name of the environment variable holding the password (the password is empty without this flag).
    #[arg(long)]
    password_env: Option<String>,
    /// Directory for the commit log: data and labels survive a restart.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// max_tablet_version_num: loads fail with [E-235] while more versions are uncompacted.
    #[arg(long)]
    max_versions: Option<u64>,
    /// Compaction speed in versions per second per table.
    #[arg(long, default_value_t = 10.0)]
    compaction_rate: f64,
    /// streaming_label_keep_max_second: lifetime of finished labels.
    #[arg(long, default_value_t = 43_200)]
    label_keep_secs: u64,
    /// group_commit_interval_ms.
    #[arg(long, default_value_t = 10_000)]
    group_commit_interval_ms: u64,
    /// Interface to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Host advertised in Location / ErrorURL.
    #[arg(long, default_value = "127.0.0.1")]
    be_host: String,
    /// Default load time zone.
    #[arg(long, default_value = "+00:00")]
    timezone: String,
    /// Doris release to behave like where releases differ: 2.1, 3.0, 3.1 or 4.0 (default: the newest).
    #[arg(long, default_value_t = doris_sim::DorisVersion::default())]
    doris_version: doris_sim::DorisVersion,
    /// Abort pre-committed (2PC) transactions after this many seconds.
    #[arg(long)]
    precommit_ttl_secs: Option<u64>,
    /// PEM certificate chain: the FE and BE serve HTTPS with it (the sim-only endpoints then answer plain HTTP on
    /// a separate ephemeral port of the bind address, logged at start).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With --tls-cert: the BE serves plain HTTP and the FE redirects to http:// (a cluster whose BEs lack TLS).
    #[arg(long, requires = "tls_cert")]
    tls_plain_be: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "doris_sim=info".into()),
        )
        .init();
    let args = Args::parse();
    let password = match &args.password_env {
        Some(var) => std::env::var(var).map_err(|_| {
            anyhow::anyhow!(
                "--password-env {var}: the environment variable is not set (export it, even empty)"
            )
        })?,
        None => String::new(),
    };
    let sim = doris_sim::Sim::start(doris_sim::SimOptions {
        fe_port: args.fe_port,
        be_port: args.be_port,
        query_port: args.query_port,
        ddl: args.ddl.iter().map(|p| p.display().to_string()).collect(),
        user: args.user,
        password,
        data_dir: args.data_dir,
        max_versions: args.max_versions,
        compaction_versions_per_sec: args.compaction_rate,
        label_keep_max_secs: args.label_keep_secs,
        bind_host: args.bind,
        be_host: args.be_host,
        group_commit_interval_ms: args.group_commit_interval_ms,
        timezone: args.timezone,
        doris_version: args.doris_version,
        precommit_ttl_secs: args.precommit_ttl_secs,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert_file), Some(key_file)) => Some(doris_sim::SimTls {
                cert_file,
                key_file,
                plain_be: args.tls_plain_be,
            }),
            _ => None,
        },
        ..Default::default()
    })
    .await?;
    tracing::info!(fe = %sim.fe_url(), be = %sim.be_url(), query = %sim.query_addr(), sim_api = %sim.control_addr(), "doris-sim ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
