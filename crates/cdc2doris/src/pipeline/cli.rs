//! `cdc2doris run --config F`: load the config, set up logs and metrics, run until a signal. And
//! `cdc2doris backfill --config F --keys-query SQL`: refresh every key the query returns, then exit.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::config::{self, LogFormat};

/// Arguments of `cdc2doris run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, short, env = "CDC2DORIS_CONFIG")]
    pub config: PathBuf,
    /// Log format, overriding `log.format`: `text` or `json`.
    #[arg(long, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// Arguments of `cdc2doris backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The configuration file (the same as `run`'s; Kafka is not used).
    #[arg(long, short, env = "CDC2DORIS_CONFIG")]
    pub config: PathBuf,
    /// SQL returning the keys to refresh, one column of `merge.key_type`, e.g. `SELECT id FROM jobs`.
    #[arg(
        long,
        required_unless_present = "keys_from",
        conflicts_with = "keys_from"
    )]
    pub keys_query: Option<String>,
    /// A file of keys instead: a dead-letter file (the keys of the rows Doris rejected, to refresh once the cause
    /// is fixed) or one key per line.
    #[arg(long)]
    pub keys_from: Option<PathBuf>,
    /// Keys per batch (one Stream Load each). Default: `batch.max_keys`.
    #[arg(long)]
    pub batch_keys: Option<usize>,
    /// With `--keys-query`: only keys from this one on (inclusive, in key order).
    #[arg(long, conflicts_with = "keys_from")]
    pub from: Option<String>,
    /// With `--keys-query`: only keys up to this one (inclusive).
    #[arg(long, conflicts_with = "keys_from")]
    pub to: Option<String>,
    /// At most this many keys per second (batches shrink to a second's keys), to spare PostgreSQL and Doris.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// With `--keys-query`: a checkpoint file, written after every loaded batch; when it exists, the backfill
    /// continues after the last key it names (run the same command again after an interruption).
    #[arg(long, conflicts_with = "keys_from")]
    pub resume: Option<PathBuf>,
    /// Log format, overriding `log.format`: `text` or `json`.
    #[arg(long, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// A positive number of keys per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("must be a positive number of keys per second, e.g. 5000".to_string()),
    }
}

/// Runs a backfill; prints its report as one JSON line on stdout. Exit code 0 when every key was refreshed, 1 on a
/// fatal error, 2 for a bad config, 130 when interrupted.
pub fn backfill(args: &BackfillArgs) -> i32 {
    let (cfg, runtime) = match prepare(&args.config, args.log_format.as_deref()) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let batch_keys = args.batch_keys.unwrap_or(cfg.file.batch.max_keys);
    let keys = match (&args.keys_query, &args.keys_from) {
        (Some(query), _) => super::backfill::Keys::Query(query.clone()),
        (None, Some(path)) => match super::backfill::keys_from_file(path) {
            Ok((keys, skipped)) => {
                tracing::info!(
                    keys = keys.len(),
                    skipped,
                    file = %path.display(),
                    "backfill: keys read (records without keys skipped)"
                );
                super::backfill::Keys::List(keys)
            }
            Err(e) => {
                eprintln!("cdc2doris backfill {e}");
                return 2;
            }
        },
        (None, None) => {
            eprintln!("cdc2doris backfill: give --keys-query or --keys-from");
            return 2;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        tracing::info!(config = %args.config.display(), version = env!("CARGO_PKG_VERSION"), "cdc2doris backfill starting");
        let options = super::backfill::BackfillOptions {
            batch_keys,
            from: args.from.clone(),
            to: args.to.clone(),
            rate: args.rate,
            checkpoint: args.resume.clone(),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        match super::backfill::run_with(cfg, keys, options, shutdown).await {
            Ok(report) => {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
                if report.interrupted {
                    tracing::warn!("backfill interrupted: run it again to finish (reloading is harmless)");
                    130
                } else {
                    tracing::info!(keys = report.keys, batches = report.batches, "backfill done");
                    0
                }
            }
            Err(e) => {
                tracing::error!("backfill {e}");
                1
            }
        }
    })
}

/// Loads the config (printing its problems), starts the logs and the runtime; else the exit code, after printing
/// why (2: the config, 1: the runtime).
fn prepare(
    path: &std::path::Path,
    log_format: Option<&str>,
) -> Result<(config::Config, tokio::runtime::Runtime), i32> {
    let cfg = crate::config::load_for_command(path)?;
    let format = match log_format {
        Some("json") => LogFormat::Json,
        Some(_) => LogFormat::Text,
        None => cfg.file.log.format,
    };
    init_logs(format, &cfg.file.log.filter);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Ok((cfg, r)),
        Err(e) => {
            eprintln!("cdc2doris: cannot start the async runtime: {e}");
            Err(1)
        }
    }
}

/// Starts the logs: `format` on stderr, `filter` unless `RUST_LOG` is set. Once per process.
pub fn init_logs(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log redirected to a file or a collector stays plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs the service; returns the process exit code (0 after a graceful shutdown).
pub fn run(args: &RunArgs) -> i32 {
    let (cfg, runtime) = match prepare(&args.config, args.log_format.as_deref()) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let metrics = match crate::admin::install_metrics() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("metrics disabled: {e}");
                None
            }
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        tracing::info!(config = %args.config.display(), version = env!("CARGO_PKG_VERSION"), "cdc2doris starting");
        match super::run(cfg, metrics, shutdown).await {
            Ok(()) => {
                tracing::info!("cdc2doris stopped");
                0
            }
            Err(e) => {
                tracing::error!("cdc2doris {e}");
                1
            }
        }
    })
}

/// First SIGINT/SIGTERM: graceful shutdown. Second: exit at once (nothing acknowledged is lost:
/// uncommitted messages are read again on restart).
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("signal received: shutting down gracefully (send it again to exit at once)");
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}
