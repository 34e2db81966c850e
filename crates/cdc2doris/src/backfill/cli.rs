//! `cdc2doris backfill --config F (--keys-query SQL | --keys-from FILE)`: refresh every key, then exit.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

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
    /// Keys per batch (loaded in Stream Loads of `batch.max_load_bytes`). Default: `batch.max_keys`.
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
pub fn run(args: &BackfillArgs) -> i32 {
    let (cfg, runtime) =
        match crate::pipeline::cli::prepare(&args.config, args.log_format.as_deref()) {
            Ok(ready) => ready,
            Err(code) => return code,
        };
    let batch_keys = args.batch_keys.unwrap_or(cfg.file.batch.max_keys);
    let keys = match (&args.keys_query, &args.keys_from) {
        (Some(query), _) => super::Keys::Query(query.clone()),
        (None, Some(path)) => match super::keys_from_file(path) {
            Ok((keys, skipped)) => {
                tracing::info!(
                    keys = keys.len(),
                    skipped,
                    file = %path.display(),
                    "backfill: keys read (records without keys skipped)"
                );
                super::Keys::List(keys)
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
        tokio::spawn(crate::pipeline::cli::watch_signals(shutdown.clone()));
        tracing::info!(config = %args.config.display(), version = env!("CARGO_PKG_VERSION"), "cdc2doris backfill starting");
        let options = super::BackfillOptions {
            batch_keys,
            from: args.from.clone(),
            to: args.to.clone(),
            rate: args.rate,
            checkpoint: args.resume.clone(),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        match super::run_with(cfg, keys, options, shutdown).await {
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
