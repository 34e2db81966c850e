//! The `[doris]` section of the configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::error::Problem;
use crate::validation::SectionContext;

/// Where and how rows are loaded into Doris.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DorisConfig {
    /// FE HTTP URLs, e.g. `["http://127.0.0.1:8030"]`; tried in order (failover). Credentials are sent to them
    /// and to the BE each one redirects to. Required unless `be_urls` is set.
    #[serde(default)]
    pub fe_urls: Vec<String>,
    /// BE HTTP URLs (e.g. `http://10.0.0.2:8040`) to load into directly, round-robin, skipping the FE redirect.
    /// Default: none (load through the FEs).
    #[serde(default)]
    pub be_urls: Vec<String>,
    /// Target database.
    pub database: String,
    /// Target table.
    pub table: String,
    /// Doris user. Default `root`.
    #[serde(default = "default_user")]
    pub user: String,
    /// Name of the environment variable holding the password. Default: none (empty password).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (trailing newline trimmed). Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Name of the table's sequence column; every row carries the PostgreSQL snapshot version in it.
    pub sequence_column: String,
    /// Table columns present in each JSON row, in order; sent as the `columns` header together with
    /// `__DORIS_DELETE_SIGN__` and `sequence_column` (appended when missing). Default: empty, then no `columns`
    /// header is sent, JSON keys map to columns by name and `hidden_columns: __DORIS_DELETE_SIGN__` is sent.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Prefix of every Stream Load label: 1–32 characters of `[-_A-Za-z0-9]`. Default `cdc2doris`.
    #[serde(default = "default_label_prefix")]
    pub label_prefix: String,
    /// Per-load Doris `timeout` header (whole seconds, 1 s – 259200 s). Default 600 s.
    #[serde(default = "default_load_timeout", with = "humantime_serde")]
    pub load_timeout: Duration,
    /// HTTP timeout of one request (connect to last response byte). Default: `load_timeout` + 30 s.
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
    /// TCP connect timeout. Default 5 s.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Doris `strict_mode`: a value that fails conversion filters its row instead of becoming NULL. Default true.
    #[serde(default = "default_true")]
    pub strict_mode: bool,
    /// Doris `max_filter_ratio`: must stay 0.0. A load Doris commits with rows filtered out (a ratio above 0) would
    /// lose those rows without a word; with 0.0 any bad row fails the load, and cdc2doris isolates it and dead-letters it.
    #[serde(default)]
    pub max_filter_ratio: f64,
    /// Doris group commit mode. Default: none (header not sent). With `sync_mode`/`async_mode` no label is sent,
    /// so a retry after an ambiguous failure can load twice (harmless on a Unique Key table with a sequence
    /// column); incompatible with `two_phase_commit`.
    #[serde(default)]
    pub group_commit: Option<GroupCommitMode>,
    /// Load with `two_phase_commit: true`, then commit through `_stream_load_2pc`. A PRECOMMITTED label found
    /// again (e.g. after a restart) is committed. Default false.
    #[serde(default)]
    pub two_phase_commit: bool,
    /// Redirects followed per request (follower FE → master FE → BE). 0–3. Default 3.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u8,
    /// Follow a redirect from https to http (credentials then travel in clear). Default false.
    #[serde(default)]
    pub allow_https_downgrade: bool,
    /// PEM file of the CA certificates (one or more) that sign the HTTPS certificates of the FEs and BEs; only
    /// they are trusted then. Certificates and host names are always verified. Default: none (the system's roots).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Extra hosts (`host` or `host:port`) treated like FEs: they receive credentials and may redirect, e.g. an
    /// FE master not listed in `fe_urls`. Default: none.
    #[serde(default)]
    pub trusted_hosts: Vec<String>,
    /// Rewrites of BE addresses found in redirects and error-log URLs, `"internal[:port]" = "reachable[:port]"`,
    /// for FEs that advertise BE addresses unreachable from here (k8s, NAT). Default: none.
    #[serde(default)]
    pub be_host_rewrite: BTreeMap<String, String>,
    /// Ask the FE where to load with an empty-bodied request first, then send the body once, to the BE
    /// (no client here implements a real `Expect: 100-continue` wait). Off: the body also goes to the FE, which
    /// discards it. Default true.
    #[serde(default = "default_true")]
    pub probe_fe: bool,
    /// Total time one batch may spend in retries before the error is returned to the pipeline. Default 10 min.
    #[serde(default = "default_retry_deadline", with = "humantime_serde")]
    pub retry_deadline: Duration,
    /// First retry delay; doubles per retry, with jitter. Default 500 ms.
    #[serde(default = "default_retry_min_delay", with = "humantime_serde")]
    pub retry_min_delay: Duration,
    /// Longest delay between two retries. Default 30 s.
    #[serde(default = "default_retry_max_delay", with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// Shortest delay after a `[E-235]` (too many versions) failure, to let compaction catch up. Default 10 s.
    #[serde(default = "default_version_pressure_delay", with = "humantime_serde")]
    pub version_pressure_delay: Duration,
    /// Interval between `get_load_state` polls while a label is RUNNING. Default 1 s.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Bytes of the Doris error log kept in a filtered-rows error (for dead-lettering). Default 65536.
    #[serde(default = "default_error_log_excerpt_bytes")]
    pub error_log_excerpt_bytes: usize,
    /// FE MySQL protocol port (Doris `query_port`), where `cdc2doris verify` reads the table's rows. Default 9030.
    #[serde(default = "default_query_port")]
    pub query_port: u16,
    /// Host of the FE query port. Default: the host of the first of `fe_urls` (else of `be_urls`).
    #[serde(default)]
    pub query_host: Option<String>,
}

/// Doris `group_commit` header values (Doris 2.1+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupCommitMode {
    /// `off_mode`: group commit explicitly off (a label is sent).
    OffMode,
    /// `sync_mode`: the load returns after the group's commit (about `group_commit_interval_ms`).
    SyncMode,
    /// `async_mode`: the load returns after the WAL write.
    AsyncMode,
}

impl GroupCommitMode {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupCommitMode::OffMode => "off_mode",
            GroupCommitMode::SyncMode => "sync_mode",
            GroupCommitMode::AsyncMode => "async_mode",
        }
    }
}

impl DorisConfig {
    /// A configuration with every default, for the given FE, table and sequence column.
    pub fn new(fe_url: &str, database: &str, table: &str, sequence_column: &str) -> Self {
        DorisConfig {
            fe_urls: vec![fe_url.to_string()],
            be_urls: Vec::new(),
            database: database.to_string(),
            table: table.to_string(),
            user: default_user(),
            password_env: None,
            password_file: None,
            sequence_column: sequence_column.to_string(),
            columns: Vec::new(),
            label_prefix: default_label_prefix(),
            load_timeout: default_load_timeout(),
            request_timeout: None,
            connect_timeout: default_connect_timeout(),
            strict_mode: true,
            max_filter_ratio: 0.0,
            group_commit: None,
            two_phase_commit: false,
            max_redirects: default_max_redirects(),
            allow_https_downgrade: false,
            tls_ca_file: None,
            trusted_hosts: Vec::new(),
            be_host_rewrite: BTreeMap::new(),
            probe_fe: true,
            retry_deadline: default_retry_deadline(),
            retry_min_delay: default_retry_min_delay(),
            retry_max_delay: default_retry_max_delay(),
            version_pressure_delay: default_version_pressure_delay(),
            poll_interval: default_poll_interval(),
            error_log_excerpt_bytes: default_error_log_excerpt_bytes(),
            query_port: default_query_port(),
            query_host: None,
        }
    }

    /// Resolves `tls_ca_file` against `base` (the config file's directory) and checks that it holds a certificate.
    pub fn resolve_files(&mut self, base: &std::path::Path) -> Vec<Problem> {
        let Some(ca) = &self.tls_ca_file else {
            return Vec::new();
        };
        let ca = base.join(ca);
        let problems = match super::tls::ca_certificates(&ca) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem {
                path: "doris.tls_ca_file".into(),
                message: e.to_string(),
            }],
        };
        self.tls_ca_file = Some(ca);
        problems
    }

    /// HTTP timeout of one request: `request_timeout`, else `load_timeout` + 30 s.
    pub fn effective_request_timeout(&self) -> Duration {
        self.request_timeout
            .unwrap_or(self.load_timeout + Duration::from_secs(30))
    }

    /// Checks the `[doris]` section ([`DorisConfig::problems`]), resolves `password_file` and reads the password.
    pub fn validate(
        &mut self,
        ctx: SectionContext<'_>,
        p: &mut Vec<Problem>,
    ) -> Option<SecretString> {
        p.extend(self.problems());
        p.extend(self.resolve_files(ctx.base_dir));
        let password_env = self.password_env.clone();
        ctx.password("doris", password_env.as_deref(), &mut self.password_file, p)
    }

    /// Every problem in the section at once; empty when the section is usable.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| problems.push(Problem { path, message });

        if self.fe_urls.is_empty() && self.be_urls.is_empty() {
            problem(
                "doris.fe_urls".into(),
                "empty; list at least one FE HTTP URL, e.g. \"http://127.0.0.1:8030\" (or set doris.be_urls to \
                 load into BEs directly)"
                    .into(),
            );
        }
        for (key, urls) in [("fe_urls", &self.fe_urls), ("be_urls", &self.be_urls)] {
            for (i, url) in urls.iter().enumerate() {
                if let Err(message) = check_base_url(url) {
                    problem(format!("doris.{key}[{i}]"), message);
                }
            }
        }
        for (key, value, what) in [
            ("database", &self.database, "name the target database"),
            ("table", &self.table, "name the target table"),
            ("user", &self.user, "name the Doris user"),
            (
                "sequence_column",
                &self.sequence_column,
                "name the table's sequence column (function_column.sequence_col)",
            ),
        ] {
            if value.trim().is_empty() {
                problem(format!("doris.{key}"), format!("empty; {what}"));
            }
        }
        if self.password_env.is_some() && self.password_file.is_some() {
            problem(
                "doris.password_file".into(),
                "set either password_env or password_file, not both".into(),
            );
        }
        if !super::label::is_valid_prefix(&self.label_prefix) {
            problem(
                "doris.label_prefix".into(),
                format!(
                    "{:?}: use 1 to {} letters, digits, '-' or '_' (Doris label syntax)",
                    self.label_prefix,
                    super::label::MAX_PREFIX_LEN
                ),
            );
        }
        let timeout = self.load_timeout.as_secs();
        if !(1..=259_200).contains(&timeout) {
            problem(
                "doris.load_timeout".into(),
                "must be between 1 s and 259200 s (72 h)".into(),
            );
        }
        if self.max_filter_ratio != 0.0 {
            problem(
                "doris.max_filter_ratio".into(),
                "must be 0.0: Doris would commit a load without the rows it filters, and they would be lost; with \
                 0.0 every row Doris rejects is isolated and dead-lettered with its key (remove the setting)"
                    .into(),
            );
        }
        if self.max_redirects > 3 {
            problem("doris.max_redirects".into(), "must be 0 to 3".into());
        }
        if self.two_phase_commit
            && matches!(
                self.group_commit,
                Some(GroupCommitMode::SyncMode | GroupCommitMode::AsyncMode)
            )
        {
            problem(
                "doris.group_commit".into(),
                "group commit cannot be combined with two_phase_commit".into(),
            );
        }
        for (i, column) in self.columns.iter().enumerate() {
            if column.is_empty() || column.contains(',') {
                problem(
                    format!("doris.columns[{i}]"),
                    "must be a non-empty column name without ','".into(),
                );
            }
        }
        for (from, to) in &self.be_host_rewrite {
            for value in [from, to] {
                if super::redirect::HostPattern::parse(value).is_none() {
                    problem(
                        format!("doris.be_host_rewrite.\"{from}\""),
                        format!("`{value}` is not host or host:port"),
                    );
                }
            }
        }
        for (i, host) in self.trusted_hosts.iter().enumerate() {
            if super::redirect::HostPattern::parse(host).is_none() {
                problem(
                    format!("doris.trusted_hosts[{i}]"),
                    "must be host or host:port".into(),
                );
            }
        }
        if self.retry_min_delay.is_zero() || self.retry_min_delay > self.retry_max_delay {
            problem(
                "doris.retry_min_delay".into(),
                "must be > 0 and <= retry_max_delay".into(),
            );
        }
        if self.poll_interval.is_zero() {
            problem("doris.poll_interval".into(), "must be > 0".into());
        }
        problems
    }
}

/// A configured FE/BE URL must be an absolute http(s) URL with a host, without credentials, query or fragment. A
/// refused URL is echoed without its userinfo, which may hold a password even when the rest does not parse.
fn check_base_url(url: &str) -> Result<(), String> {
    let shown = crate::secret::url_without_userinfo(url);
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("{shown:?} is not a URL ({e}); e.g. \"http://127.0.0.1:8030\""))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "embeds credentials; remove them and set doris.user and doris.password_env (or password_file)".into(),
        );
    }
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "{shown:?} is not an http:// or https:// URL with a host"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{shown:?} must not have a query or fragment"));
    }
    Ok(())
}

fn default_user() -> String {
    "root".to_string()
}

fn default_label_prefix() -> String {
    "cdc2doris".to_string()
}

fn default_load_timeout() -> Duration {
    Duration::from_secs(600)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_true() -> bool {
    true
}

fn default_max_redirects() -> u8 {
    3
}

fn default_retry_deadline() -> Duration {
    Duration::from_secs(600)
}

fn default_retry_min_delay() -> Duration {
    Duration::from_millis(500)
}

fn default_retry_max_delay() -> Duration {
    Duration::from_secs(30)
}

fn default_version_pressure_delay() -> Duration {
    Duration::from_secs(10)
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_error_log_excerpt_bytes() -> usize {
    65_536
}

fn default_query_port() -> u16 {
    9030
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal_toml() -> &'static str {
        r#"
            fe_urls = ["http://127.0.0.1:8030"]
            database = "job_analytics"
            table = "merged_job_data"
            sequence_column = "source_version"
        "#
    }

    #[test]
    fn minimal_section_gets_documented_defaults() {
        let cfg: DorisConfig = toml::from_str(minimal_toml()).unwrap();
        assert_eq!(
            cfg,
            DorisConfig::new(
                "http://127.0.0.1:8030",
                "job_analytics",
                "merged_job_data",
                "source_version"
            )
        );
        assert!(cfg.problems().is_empty());
        assert_eq!(cfg.effective_request_timeout(), Duration::from_secs(630));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = format!("{}\nlabel_prefx = \"x\"\n", minimal_toml());
        assert!(toml::from_str::<DorisConfig>(&text).is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        let mut cfg = DorisConfig::new("http://fe:8030", "db", "t", "seq");
        cfg.group_commit = Some(GroupCommitMode::AsyncMode);
        cfg.be_host_rewrite
            .insert("10.0.0.2".into(), "be.example.com:18040".into());
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(toml::from_str::<DorisConfig>(&text).unwrap(), cfg);
    }

    #[test]
    fn validate_reports_every_problem_with_its_path() {
        let mut cfg = DorisConfig::new("http://root:pw@fe:8030", "db", "", "seq");
        cfg.fe_urls.push("ftp://fe2".into());
        cfg.label_prefix = "bad.prefix".into();
        cfg.max_filter_ratio = 0.1;
        cfg.load_timeout = Duration::ZERO;
        cfg.two_phase_commit = true;
        cfg.group_commit = Some(GroupCommitMode::SyncMode);
        cfg.max_redirects = 9;
        let problems = cfg.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.path == "doris.max_filter_ratio" && p.message.contains("lost")),
            "{problems:?}"
        );
        let paths: Vec<String> = problems.into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            [
                "doris.fe_urls[0]",
                "doris.fe_urls[1]",
                "doris.table",
                "doris.label_prefix",
                "doris.load_timeout",
                "doris.max_filter_ratio",
                "doris.max_redirects",
                "doris.group_commit",
            ]
        );
    }
}
