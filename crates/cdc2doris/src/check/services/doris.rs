//! Doris: `GET /api/{db}/get_load_state` on each FE with the service's credentials, loading nothing. The reply tells
//! accepted credentials (`code` 0), refused ones (`code` 401) and an unknown database (`code` 1) apart (docs/doris-stream-load.md §5; an
//! FE answers HTTP 200 in all three cases). A follower FE 307s the request to the master; the redirect is followed
//! under the sink's own credential policy. Each BE of `doris.be_urls` must answer HTTP.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::{line, password_source};
use crate::check::report::{CheckLine, Outcome};
use crate::config::Config;
use crate::error::error_chain;
use crate::sink::doris::redirect::RedirectPolicy;
use crate::sink::doris::tls::{certificate_refusal, http_client};

/// The label asked about in the Doris check. `get_load_state` answers `UNKNOWN` for a label never used.
pub const DORIS_CHECK_LABEL: &str = "cdc2doris-check";

/// What one FE said.
enum FeAnswer {
    /// Credentials accepted, database known; `via` is the URL that answered when the FE redirected (a follower FE
    /// sends `get_load_state` to the master).
    Accepted { via: Option<String> },
    /// No HTTP answer at all.
    Unreachable(String),
    /// An answer that fails the check: the line to print.
    Refused(CheckLine),
}

/// The part of a Doris FE REST reply the check reads.
#[derive(serde::Deserialize)]
struct FeReply {
    code: Option<i64>,
    msg: Option<String>,
    data: Option<serde_json::Value>,
}

pub(super) async fn check_doris(config: &Config, timeout: Duration) -> Vec<CheckLine> {
    let doris = &config.file.doris;
    // Redirects are followed by hand, under the sink's own credential policy (see sink::doris::redirect): reqwest
    // would drop the Authorization header on a change of port, and must not send it to a host the service would not.
    // The sink's client: the same trusted CAs (doris.tls_ca_file), the same certificate checks.
    let http = match http_client(
        doris.tls_ca_file.as_deref(),
        doris.connect_timeout.min(timeout),
        timeout,
    ) {
        Ok(c) => c,
        Err(e) => {
            return vec![line(
                Outcome::Fail,
                "doris.tls_ca_file",
                format!("cannot build an HTTP client: {}", error_chain(&e)),
            )]
        }
    };
    let parse_all = |urls: &[String]| -> Vec<reqwest::Url> {
        urls.iter()
            .filter_map(|u| reqwest::Url::parse(u).ok())
            .collect()
    };
    let policy = RedirectPolicy::new(
        &parse_all(&doris.fe_urls),
        &parse_all(&doris.be_urls),
        &doris.trusted_hosts,
        &doris.be_host_rewrite,
        doris.allow_https_downgrade,
        doris.max_redirects,
    );
    let mut answers = Vec::with_capacity(doris.fe_urls.len());
    for (i, fe) in doris.fe_urls.iter().enumerate() {
        let subject = format!("doris.fe_urls[{i}]");
        answers.push(ask_fe(&http, &policy, config, fe, &subject).await);
    }
    let any_answered = answers
        .iter()
        .any(|a| !matches!(a, FeAnswer::Unreachable(_)));
    let mut lines = Vec::new();
    for (i, (fe, answer)) in doris.fe_urls.iter().zip(answers).enumerate() {
        let subject = format!("doris.fe_urls[{i}]");
        lines.push(match answer {
            FeAnswer::Accepted { via } => line(
                Outcome::Pass,
                subject,
                format!(
                    "{fe} answered{}; user {:?} accepted, database {:?} exists (asked get_load_state, nothing \
                     loaded)",
                    via.map(|v| format!(" (through a redirect to {v})"))
                        .unwrap_or_default(),
                    doris.user,
                    doris.database
                ),
            ),
            FeAnswer::Unreachable(why) if any_answered => line(
                Outcome::Warn,
                subject,
                format!("{fe} unreachable ({why}); loads fail over to the other FE(s), but fix or remove it"),
            ),
            FeAnswer::Unreachable(why) => line(
                Outcome::Fail,
                subject,
                format!(
                    "{fe} unreachable ({why}); check the URL (the FE HTTP port, 8030 by default) and that the FE is \
                     up and reachable from here"
                ),
            ),
            FeAnswer::Refused(l) => l,
        });
    }
    if doris.fe_urls.is_empty() {
        lines.push(line(
            Outcome::Skip,
            "doris.fe_urls",
            "none: loads go straight to doris.be_urls, and a BE cannot check credentials without a load, so the \
             user, password and database are not checked",
        ));
    }
    for (i, be) in doris.be_urls.iter().enumerate() {
        lines.push(check_be(&http, doris, be, format!("doris.be_urls[{i}]")).await);
    }
    if any_answered || !doris.be_urls.is_empty() {
        lines.push(check_delete_row(config, timeout).await);
    }
    lines
}

/// A delete line carries only the key, the sequence column and the delete sign: Doris filters it when another column
/// is NOT NULL without a default (in strict mode), and every delete of the pipeline would then fail. Tried for real:
/// a trial load of one delete row with two-phase commit, aborted, so the table does not change.
async fn check_delete_row(config: &Config, timeout: Duration) -> CheckLine {
    use crate::keys::KeyType;
    use crate::sink::doris::DELETE_SIGN_COLUMN;
    use crate::sink::doris::{DorisSink, Trial};
    let file = &config.file;
    let mut cfg = file.doris.clone();
    cfg.two_phase_commit = true;
    cfg.group_commit = None;
    cfg.retry_deadline = timeout;
    let password = config
        .doris_password
        .clone()
        .unwrap_or_else(|| secrecy::SecretString::from(String::new()));
    let sink = match DorisSink::new(&cfg, password) {
        Ok(s) => s,
        Err(e) => {
            return line(
                Outcome::Skip,
                "doris.table",
                format!("delete rows not checked: {e}"),
            )
        }
    };
    let key = match file.merge.key_type {
        KeyType::Integer => i64::MIN.to_string(),
        KeyType::String => "\"cdc2doris-check\"".to_string(),
    };
    let body = format!(
        "{{{}:{key},{}:0,\"{DELETE_SIGN_COLUMN}\":1}}\n",
        serde_json::Value::from(file.merge.key_column.as_str()),
        serde_json::Value::from(cfg.sequence_column.as_str()),
    );
    let label = format!(
        "{}:check:{}-{}",
        cfg.label_prefix,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        std::process::id()
    );
    let table = format!("{}.{}", cfg.database, cfg.table);
    match tokio::time::timeout(timeout, sink.trial_load(&label, bytes::Bytes::from(body))).await {
        Ok(Ok(Trial::Accepted)) => line(
            Outcome::Pass,
            "doris.table",
            format!(
                "{table} accepts a delete row ({} + {} + {DELETE_SIGN_COLUMN}; a trial load, aborted)",
                file.merge.key_column, cfg.sequence_column
            ),
        ),
        Ok(Ok(Trial::Refused {
            message,
            excerpt: log,
        })) => line(
            Outcome::Fail,
            "doris.table",
            format!(
                "{table} refuses a delete row, which carries only {} and {}: {message}{}; make every other column \
                 nullable or give it a DEFAULT (ALTER TABLE {table} MODIFY COLUMN … NULL)",
                file.merge.key_column,
                cfg.sequence_column,
                log.map(|e| format!(" ({})", excerpt(&e)))
                    .unwrap_or_default()
            ),
        ),
        Ok(Err(e)) => line(
            Outcome::Warn,
            "doris.table",
            format!("delete rows not checked: a trial load failed: {e}"),
        ),
        Err(_) => line(
            Outcome::Warn,
            "doris.table",
            "delete rows not checked: the trial load did not finish in time".to_string(),
        ),
    }
}

/// A BE is reachable if it answers HTTP at all; `/api/health` needs no credentials, so none are sent.
async fn check_be(
    http: &reqwest::Client,
    doris: &crate::config::DorisConfig,
    be: &str,
    subject: String,
) -> CheckLine {
    let url = match reqwest::Url::parse(be) {
        Ok(mut u) => {
            if let Ok(mut segments) = u.path_segments_mut() {
                segments.pop_if_empty().extend(["api", "health"]);
            }
            u
        }
        Err(e) => return line(Outcome::Fail, subject, format!("{be} is not a URL: {e}")),
    };
    match http.get(url).send().await {
        Ok(r) => line(
            Outcome::Pass,
            subject,
            format!("{be} answered (HTTP {} on /api/health)", r.status()),
        ),
        Err(e) => match certificate_refusal(&e, &host_of(be), doris.tls_ca_file.as_deref()) {
            Some(reason) => line(Outcome::Fail, subject, format!("{be}: {reason}")),
            None => line(
                Outcome::Fail,
                subject,
                format!(
                    "{be} unreachable ({}); check the URL (the BE webserver port, 8040 by default) and that the BE \
                     is up and reachable from here",
                    error_chain(&e.without_url())
                ),
            ),
        },
    }
}

/// The host of a configured URL, for messages.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// `GET {fe}/api/{db}/get_load_state?label=cdc2doris-check` with Basic auth, following redirects as the sink would.
async fn ask_fe(
    http: &reqwest::Client,
    policy: &RedirectPolicy,
    config: &Config,
    fe: &str,
    subject: &str,
) -> FeAnswer {
    let doris = &config.file.doris;
    let mut url = match reqwest::Url::parse(fe) {
        Ok(u) => u,
        Err(e) => return FeAnswer::Unreachable(format!("not a URL: {e}")),
    };
    match url.path_segments_mut() {
        Ok(mut segments) => {
            segments
                .pop_if_empty()
                .extend(["api", doris.database.as_str(), "get_load_state"]);
        }
        Err(()) => return FeAnswer::Unreachable("not a base URL".to_string()),
    }
    url.query_pairs_mut()
        .append_pair("label", DORIS_CHECK_LABEL);
    let password = config
        .doris_password
        .as_ref()
        .map(|p| p.expose_secret().to_string())
        .unwrap_or_default();
    let mut via = None;
    let mut hops: u8 = 0;
    let response = loop {
        let response = match http
            .get(url.clone())
            .basic_auth(&doris.user, Some(&password))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                if let Some(reason) = certificate_refusal(
                    &e,
                    url.host_str().unwrap_or_default(),
                    doris.tls_ca_file.as_deref(),
                ) {
                    let at = url.origin().ascii_serialization();
                    return FeAnswer::Refused(line(
                        Outcome::Fail,
                        subject,
                        format!("{at}: {reason}"),
                    ));
                }
                if hops == 0 {
                    return FeAnswer::Unreachable(error_chain(&e.without_url()));
                }
                return FeAnswer::Refused(line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "{fe} redirected to {}, which is unreachable ({}); check doris.be_host_rewrite or the \
                         address the master FE advertises",
                        url.origin().ascii_serialization(),
                        error_chain(&e.without_url())
                    ),
                ));
            }
        };
        if !response.status().is_redirection() {
            break response;
        }
        // The FE writes the request's credentials into Location as userinfo; next_hop strips them.
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        match policy.next_hop(&url, location, hops) {
            Ok(next) => {
                url = next.url;
                via = Some(url.origin().ascii_serialization());
                hops += 1;
            }
            Err((refusal, shown)) => {
                return FeAnswer::Refused(line(
                    Outcome::Fail,
                    subject,
                    format!(
                        "{fe} answered HTTP {} to {shown}, which the service would not follow: {refusal}",
                        response.status()
                    ),
                ))
            }
        }
    };
    let status = response.status();
    let refused_credentials = |why: &str| {
        FeAnswer::Refused(line(
            Outcome::Fail,
            "doris.user",
            format!(
                "{fe} refused the credentials of user {:?} ({why}); check doris.user and the password \
                 (doris.password_env / doris.password_file: {})",
                doris.user,
                password_source(
                    doris.password_env.as_deref(),
                    doris.password_file.as_deref()
                )
            ),
        ))
    };
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return refused_credentials(&format!("HTTP {status}"));
    }
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => return FeAnswer::Unreachable(error_chain(&e.without_url())),
    };
    let reply: Option<FeReply> = serde_json::from_str(&body).ok();
    let Some(reply) = reply.filter(|_| status.is_success()) else {
        return FeAnswer::Refused(line(
            Outcome::Fail,
            subject,
            format!(
                "{fe} answered HTTP {status} with {}; is this a Doris FE HTTP port (8030 by default)?",
                excerpt(&body)
            ),
        ));
    };
    let msg = reply.msg.unwrap_or_default();
    let data = match reply.data {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let said = if data.is_empty() {
        msg.clone()
    } else {
        format!("{msg}: {}", excerpt(&data))
    };
    match reply.code {
        Some(0) => FeAnswer::Accepted { via },
        Some(401) => refused_credentials(&said),
        Some(_)
            if msg.to_ascii_lowercase().contains("unknown database")
                || data.to_ascii_lowercase().contains("unknown database") =>
        {
            FeAnswer::Refused(line(
                Outcome::Fail,
                "doris.database",
                format!(
                    "{:?} does not exist on {fe} ({said}); create it, or fix doris.database",
                    doris.database
                ),
            ))
        }
        code => FeAnswer::Refused(line(
            Outcome::Fail,
            subject,
            format!(
                "{fe} answered code {} ({said}) for user {:?} on database {:?}; check the user's privileges (LOAD \
                 on the database) and the FE's log",
                code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                doris.user,
                doris.database
            ),
        )),
    }
}

/// The start of a body, on one line.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CHARS)
        .collect();
    if text.chars().count() > MAX_CHARS {
        format!("{:?}…", one_line.trim())
    } else {
        format!("{:?}", one_line.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("a\nb"), "\"a b\"");
        let long = "x".repeat(500);
        assert!(excerpt(&long).ends_with('…'));
    }
}
