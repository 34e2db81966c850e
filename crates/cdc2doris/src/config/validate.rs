//! A parsed [`ConfigFile`] to a [`Config`]: each section's own checks (beside the stage that uses it), every
//! problem collected at once, then the settings that work but deserve a look.

use std::path::Path;

use super::{Config, ConfigFile, DeadLetterTarget, LogConfig, Problem};
use crate::dead_letter::DeadLetterChoice;
use crate::secret::EnvLookup;
use crate::validation::SectionContext;

impl Config {
    /// Settings that work but deserve a look; `cdc2doris check` prints them as `warn` lines.
    pub fn warnings(&self) -> Vec<Problem> {
        let file = &self.file;
        let mut w = Vec::new();
        if let Some(v) = file.kafka.properties.get("max.poll.interval.ms") {
            let revoke_ms = file.kafka.revoke_timeout.as_millis();
            let ms = v.to_string().parse::<u128>().ok();
            if let Some(ms) = ms.filter(|ms| *ms <= revoke_ms) {
                w.push(Problem::new(
                    "kafka.properties.\"max.poll.interval.ms\"",
                    format!(
                        "{ms} ms is not above kafka.revoke_timeout ({revoke_ms} ms): a slow revoke makes this member \
                         leave the group; raise it"
                    ),
                ));
            }
        }
        if file.merge.chunk_size > file.batch.max_keys {
            w.push(Problem::new(
                "merge.chunk_size",
                format!(
                    "{} is above batch.max_keys ({}), so a chunk never fills; lower it or raise batch.max_keys",
                    file.merge.chunk_size, file.batch.max_keys
                ),
            ));
        }
        w.extend(crate::admin::exposure_warning(file.admin.listen));
        if file.batch.max_in_flight > file.postgres.pool_size {
            w.push(Problem::new(
                "batch.max_in_flight",
                format!(
                    "{} batches in flight share {} PostgreSQL connections (postgres.pool_size); raise the pool \
                     size so batches do not wait for each other",
                    file.batch.max_in_flight, file.postgres.pool_size
                ),
            ));
        }
        w
    }
}

impl ConfigFile {
    /// Checks everything that can be checked without connecting anywhere, and reports every problem at once.
    /// Relative paths resolve against `base_dir` (the config file's directory).
    pub fn validate(mut self, base_dir: &Path, env: EnvLookup<'_>) -> Result<Config, Vec<Problem>> {
        let ctx = SectionContext { base_dir, env };
        let mut p = Vec::new();
        let kafka_secret_properties = self.kafka.validate(ctx, &mut p);
        let postgres_password = self.postgres.validate(ctx, &mut p);
        self.keys
            .validate(&self.kafka.topics, self.merge.key_type, &mut p);
        let merge_query = self.merge.validate(ctx, &mut p);
        let doris_password = self.doris.validate(ctx, &mut p);
        self.batch.validate(&mut p);
        let dead_letter = self
            .dead_letter
            .validate(ctx, &mut p)
            .map(|choice| match choice {
                DeadLetterChoice::File(path) => DeadLetterTarget::File(path),
                // The source's cluster, with its security settings.
                DeadLetterChoice::Topic(topic) => DeadLetterTarget::kafka_topic(
                    &topic,
                    &self.kafka.bootstrap_servers,
                    self.kafka
                        .properties
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.to_string())),
                    &kafka_secret_properties,
                ),
            });
        self.log.validate(&mut p);
        match (merge_query, dead_letter) {
            (Some(merge_query), Some(dead_letter)) if p.is_empty() => Ok(Config {
                file: self,
                postgres_password,
                doris_password,
                kafka_secret_properties,
                merge_query,
                dead_letter,
            }),
            _ => Err(p),
        }
    }
}

impl LogConfig {
    /// Checks the `[log]` section.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        let log = self;
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log.filter) {
            p.push(Problem::new(
                "log.filter",
                format!("{:?}: {e}; e.g. \"info,cdc2doris=debug\"", log.filter),
            ));
        }
        if log.progress_interval.is_zero() {
            p.push(Problem::new(
                "log.progress_interval",
                "0; give a positive duration, e.g. \"10s\"",
            ));
        }
    }
}
