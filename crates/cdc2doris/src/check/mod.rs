//! `cdc2doris check --config F`: is this configuration usable? One `pass`/`warn`/`fail`/`skip` line per check; the
//! exit code is non-zero when any check fails.
//!
//! First the file: parsed and validated, every problem on its own `fail` line ([`check_config`]). Then, if it is
//! valid, the services it names ([`check_connectivity`], implemented in [`services`]): Kafka brokers and
//! topics, PostgreSQL (the merge and resolve queries prepare, the key column exists, replica identities), Doris
//! (FE reachable, credentials accepted, database known; nothing is loaded), and the schema fit of the merge query's
//! columns with the Doris table (`schema` lines; docs/types.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod report;
mod services;

pub use report::{CheckLine, CheckReport, Outcome};

use crate::config::{Config, ConfigError};
use crate::secret::EnvLookup;

/// Arguments of `cdc2doris check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// How long each network step may take: the Kafka metadata request, each PostgreSQL statement, each Doris
    /// request (the PostgreSQL connection itself is bounded by `postgres.connect_timeout`).
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// A positive humantime duration, e.g. `10s`.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be positive, e.g. \"10s\"".to_string()),
        Err(e) => Err(format!("{e}; e.g. \"10s\"")),
    }
}

/// Parses and validates the file, one line per problem; returns the configuration when it is valid.
pub fn check_config(path: &Path, env: EnvLookup<'_>) -> (CheckReport, Option<Config>) {
    let mut report = CheckReport::default();
    match crate::config::load_with_env(path, env) {
        Ok(config) => {
            crate::panic_report::mask_in_panics(config.secrets());
            report.push(
                Outcome::Pass,
                "config",
                format!("{} parses", path.display()),
            );
            let file = &config.file;
            report.push(
                Outcome::Pass,
                "config",
                format!(
                    "valid: {} topic(s), {} key rule(s), merge query {}",
                    file.kafka.topics.len(),
                    file.keys.rules.len(),
                    file.merge.query_file.display()
                ),
            );
            for warning in config.warnings() {
                report.push(Outcome::Warn, warning.path, warning.message);
            }
            (report, Some(config))
        }
        Err(e @ (ConfigError::Read { .. } | ConfigError::Syntax { .. })) => {
            report.push(Outcome::Fail, "config", e.to_string());
            (report, None)
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            for problem in problems {
                report.push(Outcome::Fail, problem.path, problem.message);
            }
            (report, None)
        }
    }
}

/// Checks the services the configuration names (Kafka, PostgreSQL, Doris), adding one line per check. `timeout`
/// bounds each network step.
pub async fn check_connectivity(config: &Config, timeout: Duration, report: &mut CheckReport) {
    report
        .lines
        .extend(services::check_services(config, timeout).await);
}

/// Runs `check`; returns the process exit code (1 if any check failed).
pub fn run(args: &CheckArgs) -> i32 {
    let (mut report, config) = check_config(&args.config, &crate::secret::process_env);
    if let Some(config) = &config {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                runtime.block_on(check_connectivity(config, args.timeout, &mut report));
            }
            Err(e) => report.push(
                Outcome::Fail,
                "check",
                format!("cannot start the async runtime ({e}); connectivity not checked"),
            ),
        }
    }
    print!("{}", report.render());
    i32::from(report.failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Result<String, std::env::VarError> {
        Err(std::env::VarError::NotPresent)
    }

    #[test]
    fn default_config_passes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("merge.sql"),
            "SELECT id FROM t WHERE id = ANY($1)",
        )
        .unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, crate::config::DEFAULT_CONFIG).unwrap();
        let (report, config) = check_config(&path, &no_env);
        assert!(config.is_some());
        assert!(!report.failed(), "{}", report.render());
        let text = report.render();
        assert!(text.starts_with("pass  config: "), "{text}");
    }

    #[test]
    fn warnings_do_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("merge.sql"), "SELECT $1").unwrap();
        let path = dir.path().join("c.toml");
        let text = crate::config::DEFAULT_CONFIG
            .replace("chunk_size = 1000", "chunk_size = 20000")
            .replace("max_in_flight = 2", "max_in_flight = 8")
            .replace(
                "# \"max.poll.interval.ms\" = 600000",
                "\"max.poll.interval.ms\" = 10000",
            );
        std::fs::write(&path, text).unwrap();
        let (report, config) = check_config(&path, &no_env);
        assert!(config.is_some());
        assert!(!report.failed());
        let text = report.render();
        assert!(
            text.contains("warn  merge.chunk_size: 20000 is above batch.max_keys (10000)"),
            "{text}"
        );
        assert!(
            text.contains("warn  batch.max_in_flight: 8 batches in flight share 4"),
            "{text}"
        );
        assert!(
            text.contains("warn  kafka.properties.\"max.poll.interval.ms\": 10000 ms is not above"),
            "{text}"
        );
    }

    #[test]
    fn one_fail_line_per_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let broken = crate::config::DEFAULT_CONFIG
            .replace("\nmax_keys = 10000\n", "\nmax_keys = 0\n")
            .replace("fields = [\"id\"]", "fields = []");
        std::fs::write(&path, broken).unwrap();
        let (report, config) = check_config(&path, &no_env);
        assert!(config.is_none());
        assert!(report.failed());
        let text = report.render();
        assert!(
            text.contains("fail  keys.rules[0].fields: empty; name the key field(s)\n"),
            "{text}"
        );
        assert!(text.contains("fail  merge.query_file: "), "{text}");
        assert!(
            text.contains("fail  batch.max_keys: 0; must be at least 1\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3, "{text}");

        let (report, _) = check_config(&dir.path().join("absent.toml"), &no_env);
        assert!(report.render().starts_with("fail  config: "));
    }
}
