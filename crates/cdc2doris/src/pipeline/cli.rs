//! `cdc2doris run --config F`: load the config, set up logs and metrics, run until a signal. Its start (config,
//! logs, runtime) and signal handling serve `cdc2doris backfill` too.

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

/// Loads the config (printing its problems), starts the logs and the runtime; else the exit code, after printing
/// why (2: the config, 1: the runtime).
pub(crate) fn prepare(
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
pub(crate) async fn watch_signals(shutdown: CancellationToken) {
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
