//! Doris' answers, parsed and classified.
//!
//! The outcome of a Stream Load is in the JSON `Status`, not in the HTTP code: the BE answers HTTP 200 for every
//! outcome (spec §4), and the FE answers its own errors (auth, missing `Expect`, no backend) with HTTP 200 and a
//! different envelope (`{"msg":…,"code":…}` or `{"status":"FAILED","msg":…}`, spec §1–2).

use serde::Deserialize;

use crate::sink::FailReason;

/// The BE's Stream Load answer (spec §4). Unknown fields are ignored; missing counters read as 0.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StreamLoadResponse {
    /// Transaction id; -1 when no transaction was begun.
    pub txn_id: i64,
    /// The label (generated `group_commit_<hex>` under group commit).
    pub label: String,
    /// `"true"`/`"false"` (a string in Doris; a bool is tolerated).
    pub two_phase_commit: Option<serde_json::Value>,
    /// `Success`, `Publish Timeout`, `Label Already Exists` or `Fail`.
    pub status: String,
    /// With `Label Already Exists`: `RUNNING`, `FINISHED` or `PRECOMMITTED`.
    pub existing_job_status: Option<String>,
    /// `OK` or the error, `[CODE]detail` in 2.x+.
    pub message: String,
    /// Rows read.
    pub number_total_rows: u64,
    /// Rows loaded.
    pub number_loaded_rows: u64,
    /// Rows filtered.
    pub number_filtered_rows: u64,
    /// Rows excluded by `where`.
    pub number_unselected_rows: u64,
    /// Bytes received.
    pub load_bytes: u64,
    /// Server-side load time.
    pub load_time_ms: u64,
    /// Where the filtered rows are logged.
    #[serde(rename = "ErrorURL")]
    pub error_url: Option<String>,
}

impl StreamLoadResponse {
    /// Whether the load ended PRECOMMITTED (two-phase commit).
    pub fn is_precommitted(&self) -> bool {
        match &self.two_phase_commit {
            Some(serde_json::Value::String(s)) => s == "true",
            Some(serde_json::Value::Bool(b)) => *b,
            _ => false,
        }
    }

    /// The transaction id, when Doris reported a real one.
    pub fn txn(&self) -> Option<i64> {
        (self.txn_id > 0).then_some(self.txn_id)
    }
}

/// The FE's own envelopes: `{"msg","code","data","count"}` (REST) or `{"status","msg"}` (load actions, 2PC).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FeEnvelope {
    /// REST envelope `msg`, or load-action `msg`.
    pub msg: String,
    /// REST envelope code: 0 ok, 1 error, 401 unauthorized, 403 bad request...
    pub code: Option<i64>,
    /// REST envelope payload (a load state, or the error detail).
    pub data: Option<serde_json::Value>,
    /// Load-action / 2PC status: `FAILED`, `Success`, an error-code name...
    pub status: Option<String>,
}

impl FeEnvelope {
    /// `data` as text (it is a string in every envelope the client reads).
    pub fn data_text(&self) -> String {
        match &self.data {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    /// All text of the envelope, for classification and error messages.
    pub fn text(&self) -> String {
        let data = self.data_text();
        if data.is_empty() {
            self.msg.clone()
        } else {
            format!("{}: {}", self.msg, data)
        }
    }
}

/// A parsed answer to a Stream Load request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The BE executed (or refused) the load.
    StreamLoad(StreamLoadResponse),
    /// The FE refused the request before redirecting.
    Fe(FeEnvelope),
}

/// Parses a 200 answer: a Stream Load object has `Status`, anything else is an FE envelope.
pub fn parse_reply(body: &[u8]) -> Result<Reply, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    if value.get("Status").is_some() {
        Ok(Reply::StreamLoad(serde_json::from_value(value)?))
    } else {
        Ok(Reply::Fe(serde_json::from_value(value)?))
    }
}

/// State of an existing label (`ExistingJobStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingJob {
    /// Committed (visible or about to be).
    Finished,
    /// Still loading: poll `get_load_state`.
    Running,
    /// Two-phase load waiting for commit/abort.
    Precommitted,
}

/// What a Stream Load answer means for the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Committed now: `Success` (`publish_timeout` false) or `Publish Timeout` (true).
    Committed {
        /// The answer said `Publish Timeout`.
        publish_timeout: bool,
    },
    /// The label was used before.
    LabelExists {
        /// State of the earlier load.
        job: ExistingJob,
        /// Its transaction, parsed from `relate to txn [N]`.
        txn_id: Option<i64>,
    },
    /// Not committed.
    Failed(FailReason),
    /// A `Status` this client does not know: treat as unknown outcome.
    UnknownStatus,
}

/// Classifies a Stream Load answer by its `Status` (spec §4).
pub fn classify_response(resp: &StreamLoadResponse) -> Outcome {
    match resp.status.as_str() {
        "Success" => Outcome::Committed {
            publish_timeout: false,
        },
        "Publish Timeout" => Outcome::Committed {
            publish_timeout: true,
        },
        "Label Already Exists" => Outcome::LabelExists {
            // Older versions omit ExistingJobStatus: polling the label is the safe reading.
            job: match resp
                .existing_job_status
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("FINISHED") | Some("VISIBLE") | Some("COMMITTED") => ExistingJob::Finished,
                Some("PRECOMMITTED") => ExistingJob::Precommitted,
                _ => ExistingJob::Running,
            },
            txn_id: related_txn(&resp.message),
        },
        "Fail" => Outcome::Failed(classify_fail_message(&resp.message)),
        _ => Outcome::UnknownStatus,
    }
}

/// `Label [L] has already been used, relate to txn [N]` → N (substring search, any prefix).
pub fn related_txn(message: &str) -> Option<i64> {
    let rest = &message[message.find("relate to txn [")? + "relate to txn [".len()..];
    rest[..rest.find(']')?].trim().parse().ok()
}

/// Case-insensitive fragments of the spec §4 error table, most specific first.
const FAIL_PATTERNS: &[(&str, FailReason)] = &[
    ("too many filtered rows", FailReason::FilteredRows),
    ("[e-235]", FailReason::VersionPressure),
    (
        "failed to init rowset builder. version count",
        FailReason::VersionPressure,
    ),
    ("[e-238]", FailReason::TooManySegments),
    ("too many segments", FailReason::TooManySegments),
    ("access denied", FailReason::Auth),
    ("no valid basic authorization", FailReason::Auth),
    ("need auth information", FailReason::Auth),
    ("unauthorized", FailReason::Auth),
    ("unknown database", FailReason::UnknownTable),
    ("unknown table", FailReason::UnknownTable),
    (
        "has sequence column, need to specify",
        FailReason::BadRequest,
    ),
    (
        "two phase commit (2pc) for stream load was disabled",
        FailReason::BadRequest,
    ),
    ("label and group_commit", FailReason::BadRequest),
    ("there is no 100-continue header", FailReason::BadRequest),
    ("unknown data format", FailReason::BadRequest),
    ("invalid timeout format", FailReason::BadRequest),
    ("invalid strict mode format", FailReason::BadRequest),
    ("invalid merge type", FailReason::BadRequest),
    ("label format", FailReason::BadRequest),
    ("invalid label", FailReason::BadRequest),
    // Doris 2.x+ status codes of request errors: a retry sends the same headers, so it cannot help.
    ("[invalid_argument]", FailReason::BadRequest),
    ("[data_file_type_error]", FailReason::BadRequest),
    ("[not_implemented_error]", FailReason::BadRequest),
    ("content_length is empty", FailReason::BadRequest),
    ("body exceed max size", FailReason::BodyTooLarge),
    ("exceed the max size", FailReason::BodyTooLarge),
    ("receive body don't equal", FailReason::ShortBody),
    ("mem_limit_exceeded", FailReason::MemoryLimit),
    ("memory limit", FailReason::MemoryLimit),
    ("current running txns on db", FailReason::TxnLimit),
    ("have not get fe master heartbeat", FailReason::NotReady),
    ("no backend load available", FailReason::NotReady),
    ("is blocked on schema change", FailReason::SchemaChange),
    ("timeout", FailReason::Timeout),
    ("timed out", FailReason::Timeout),
    ("cancelled", FailReason::Timeout),
];

/// Classifies a `Fail` message (or an FE refusal) by the spec §4 table; unknown messages are `Unclassified`.
pub fn classify_fail_message(message: &str) -> FailReason {
    let lower = message.to_ascii_lowercase();
    FAIL_PATTERNS
        .iter()
        .find(|(fragment, _)| lower.contains(fragment))
        .map_or(FailReason::Unclassified, |(_, reason)| *reason)
}

/// A `get_load_state` answer's state (spec §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadState {
    /// No such label (never loaded, expired, or evicted).
    Unknown,
    /// Loading.
    Prepare,
    /// Two-phase load waiting for commit.
    Precommitted,
    /// Committed, not yet visible.
    Committed,
    /// Visible.
    Visible,
    /// Aborted: the label may be reused at once.
    Aborted,
}

impl LoadState {
    /// Parses the `data` of a `get_load_state` envelope.
    pub fn parse(state: &str) -> Option<LoadState> {
        Some(match state.trim().to_ascii_uppercase().as_str() {
            "UNKNOWN" => LoadState::Unknown,
            "PREPARE" => LoadState::Prepare,
            "PRECOMMITTED" => LoadState::Precommitted,
            "COMMITTED" => LoadState::Committed,
            "VISIBLE" => LoadState::Visible,
            "ABORTED" => LoadState::Aborted,
            _ => return None,
        })
    }
}

/// What a `_stream_load_2pc` commit answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwoPhaseOutcome {
    /// Committed now, or it already was (`is already visible/committed, not pre-committed`).
    Committed,
    /// The transaction is gone (`not found`, aborted): the batch must be loaded again under the same label.
    Gone,
    /// Refused for another reason.
    Failed(FailReason),
}

/// Classifies a `_stream_load_2pc` commit answer (spec §5).
pub fn classify_two_phase(env: &FeEnvelope) -> TwoPhaseOutcome {
    let status = env.status.as_deref().unwrap_or_default();
    let text = env.text().to_ascii_lowercase();
    if status.eq_ignore_ascii_case("success") || env.code == Some(0) && status.is_empty() {
        return TwoPhaseOutcome::Committed;
    }
    let already_done = ["is already visible", "is already committed"]
        .iter()
        .any(|f| text.contains(f));
    if already_done {
        return TwoPhaseOutcome::Committed;
    }
    if text.contains("not found") || text.contains("is already aborted") {
        return TwoPhaseOutcome::Gone;
    }
    TwoPhaseOutcome::Failed(classify_fail_message(&env.text()))
}

/// Class of an FE refusal (auth and missing headers are permanent; "no backend" is transient).
pub fn classify_fe_refusal(env: &FeEnvelope) -> FailReason {
    match classify_fail_message(&env.text()) {
        FailReason::Unclassified if env.code == Some(401) => FailReason::Auth,
        reason => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::ErrorClass;

    const SUCCESS: &str = r#"{
    "TxnId": 1003,
    "Label": "cdc_t1_0_42",
    "Comment": "",
    "TwoPhaseCommit": "false",
    "Status": "Success",
    "Message": "OK",
    "NumberTotalRows": 3,
    "NumberLoadedRows": 3,
    "NumberFilteredRows": 0,
    "NumberUnselectedRows": 0,
    "LoadBytes": 118,
    "LoadTimeMs": 73,
    "BeginTxnTimeMs": 1,
    "StreamLoadPutTimeMs": 5,
    "ReadDataTimeMs": 0,
    "WriteDataTimeMs": 48,
    "CommitAndPublishTimeMs": 18
}
"#;

    fn stream_load(body: &str) -> StreamLoadResponse {
        match parse_reply(body.as_bytes()).unwrap() {
            Reply::StreamLoad(r) => r,
            Reply::Fe(e) => panic!("parsed as FE envelope: {e:?}"),
        }
    }

    fn fe(body: &str) -> FeEnvelope {
        match parse_reply(body.as_bytes()).unwrap() {
            Reply::Fe(e) => e,
            Reply::StreamLoad(r) => panic!("parsed as stream load: {r:?}"),
        }
    }

    fn fail(message: &str) -> String {
        format!(
            r#"{{"TxnId": 7, "Label": "l", "Status": "Fail", "Message": {message:?}, "NumberTotalRows": 0}}"#
        )
    }

    #[test]
    fn success_is_parsed_field_by_field() {
        let r = stream_load(SUCCESS);
        assert_eq!(r.txn(), Some(1003));
        assert_eq!(r.label, "cdc_t1_0_42");
        assert!(!r.is_precommitted());
        assert_eq!(
            (
                r.number_total_rows,
                r.number_loaded_rows,
                r.load_bytes,
                r.load_time_ms
            ),
            (3, 3, 118, 73)
        );
        assert_eq!(
            classify_response(&r),
            Outcome::Committed {
                publish_timeout: false
            }
        );
    }

    #[test]
    fn every_status_is_classified() {
        let cases: Vec<(String, Outcome)> = vec![
            (SUCCESS.to_string(), Outcome::Committed { publish_timeout: false }),
            (
                r#"{"TxnId": 9, "Status": "Publish Timeout", "Message": "Transaction commit successfully, BUT data will be visible later"}"#.into(),
                Outcome::Committed { publish_timeout: true },
            ),
            (
                r#"{"TxnId": -1, "Label": "x", "TwoPhaseCommit": "false", "Status": "Label Already Exists", "ExistingJobStatus": "FINISHED", "Message": "Label [x] has already been used, relate to txn [18036]"}"#.into(),
                Outcome::LabelExists { job: ExistingJob::Finished, txn_id: Some(18036) },
            ),
            (
                r#"{"TxnId": -1, "Status": "Label Already Exists", "ExistingJobStatus": "RUNNING", "Message": "[LABEL_ALREADY_EXISTS]Label [x] has already been used, relate to txn [5]"}"#.into(),
                Outcome::LabelExists { job: ExistingJob::Running, txn_id: Some(5) },
            ),
            (
                r#"{"TxnId": -1, "TwoPhaseCommit": "true", "Status": "Label Already Exists", "ExistingJobStatus": "PRECOMMITTED", "Message": "errCode = 2, detailMessage = Label [cdc_t1_0_42] has already been used, relate to txn [18036]"}"#.into(),
                Outcome::LabelExists { job: ExistingJob::Precommitted, txn_id: Some(18036) },
            ),
            (
                r#"{"Status": "Label Already Exists", "Message": "label used"}"#.into(),
                Outcome::LabelExists { job: ExistingJob::Running, txn_id: None },
            ),
            (fail("[DATA_QUALITY_ERROR]too many filtered rows"), Outcome::Failed(FailReason::FilteredRows)),
            (r#"{"Status": "Aborted"}"#.into(), Outcome::UnknownStatus),
        ];
        for (body, expected) in cases {
            assert_eq!(classify_response(&stream_load(&body)), expected, "{body}");
        }
    }

    #[test]
    fn fail_messages_follow_the_spec_table() {
        use FailReason::*;
        let cases = [
            ("[DATA_QUALITY_ERROR]too many filtered rows", FilteredRows, ErrorClass::Permanent),
            ("too many filtered rows", FilteredRows, ErrorClass::Permanent),
            ("[INTERNAL_ERROR]too many filtered rows", FilteredRows, ErrorClass::Permanent),
            (
                "[E-235]failed to init rowset builder. version count: 2001, exceed limit: 2000, tablet: 10086. Please reduce the frequency of loading data or adjust the max_tablet_version_num",
                VersionPressure,
                ErrorClass::Transient,
            ),
            ("[E-238]Too many segments in rowset", TooManySegments, ErrorClass::Permanent),
            ("errCode = 2, detailMessage = unknown databases, dbName=nope", UnknownTable, ErrorClass::Permanent),
            ("[ANALYSIS_ERROR]unknown table, tableName=nope", UnknownTable, ErrorClass::Permanent),
            ("[INTERNAL_ERROR]no valid Basic authorization", Auth, ErrorClass::Permanent),
            ("Access denied for user 'root'@'10.0.0.1'", Auth, ErrorClass::Permanent),
            ("[CANCELLED]timeout", Timeout, ErrorClass::Transient),
            ("[TIMEOUT]load timed out", Timeout, ErrorClass::Transient),
            ("[MEM_LIMIT_EXCEEDED]PreCatch error", MemoryLimit, ErrorClass::Transient),
            ("current running txns on db 10002 is 100, larger than limit 100", TxnLimit, ErrorClass::Transient),
            ("Have not get FE Master heartbeat yet", NotReady, ErrorClass::Transient),
            ("No backend load available", NotReady, ErrorClass::Transient),
            ("insert table merged_job_data is blocked on schema change", SchemaChange, ErrorClass::Transient),
            ("Table merged_job_data has sequence column, need to specify the sequence column", BadRequest, ErrorClass::Permanent),
            ("Two phase commit (2PC) for stream load was disabled", BadRequest, ErrorClass::Permanent),
            ("label and group_commit can't be set at the same time", BadRequest, ErrorClass::Permanent),
            ("Invalid timeout format, cause: For input string", BadRequest, ErrorClass::Permanent),
            ("[INTERNAL_ERROR]receive body don't equal with body bytes, body_bytes=10, receive_bytes=5", ShortBody, ErrorClass::Transient),
            ("body exceed max size: 10737418240, data: 10737418241", BodyTooLarge, ErrorClass::Permanent),
            ("[INVALID_ARGUMENT]compress data of JSON format is not supported.", BadRequest, ErrorClass::Permanent),
            ("[DATA_FILE_TYPE_ERROR]unknown data format, format=xml", BadRequest, ErrorClass::Permanent),
            ("[ANALYSIS_ERROR]errCode = 2, detailMessage = Label format error. regex: ^[-_A-Za-z0-9:]{1,128}$", BadRequest, ErrorClass::Permanent),
            ("[NETWORK_ERROR]receive body don't equal with body bytes, body_bytes=9, receive_bytes=3", ShortBody, ErrorClass::Transient),
            ("something nobody has seen", Unclassified, ErrorClass::Transient),
        ];
        for (message, reason, class) in cases {
            let got = classify_response(&stream_load(&fail(message)));
            assert_eq!(got, Outcome::Failed(reason), "{message}");
            assert_eq!(reason.class(), class, "{message}");
        }
    }

    #[test]
    fn filtered_rows_answer_carries_error_url() {
        let r = stream_load(
            r#"{"TxnId": 12, "Label": "l", "Status": "Fail", "Message": "[DATA_QUALITY_ERROR]too many filtered rows",
                "NumberTotalRows": 10, "NumberLoadedRows": 8, "NumberFilteredRows": 2, "NumberUnselectedRows": 0,
                "ErrorURL": "http://10.0.0.2:8040/api/_load_error_log?file=__shard_0/error_log_insert_stmt_1"}"#,
        );
        assert_eq!(r.number_filtered_rows, 2);
        assert_eq!(
            r.error_url.as_deref(),
            Some("http://10.0.0.2:8040/api/_load_error_log?file=__shard_0/error_log_insert_stmt_1")
        );
    }

    #[test]
    fn fe_refusals_are_envelopes() {
        let cases = [
            (
                r#"{"msg":"Unauthorized","code":401,"data":"Need auth information.","count":0}"#,
                FailReason::Auth,
            ),
            (
                r#"{"msg":"Unauthorized","code":401,"data":"Access denied for root@127.0.0.1","count":0}"#,
                FailReason::Auth,
            ),
            (
                r#"{"status":"FAILED","msg":"There is no 100-continue header"}"#,
                FailReason::BadRequest,
            ),
            (
                r#"{"status":"FAILED","msg":"Access denied; you need (at least one of) the LOAD privilege(s) for this operation"}"#,
                FailReason::Auth,
            ),
            (
                r#"{"status":"FAILED","msg":"No backend load available."}"#,
                FailReason::NotReady,
            ),
        ];
        for (body, reason) in cases {
            assert_eq!(classify_fe_refusal(&fe(body)), reason, "{body}");
        }
    }

    #[test]
    fn two_phase_answers() {
        let cases = [
            (
                r#"{"status":"Success","msg":"transaction [18036] commit successfully."}"#,
                TwoPhaseOutcome::Committed,
            ),
            (
                r#"{"status":"Success","msg":"label [L] commit successfully."}"#,
                TwoPhaseOutcome::Committed,
            ),
            (
                r#"{"status":"ANALYSIS_ERROR","msg":"errCode = 2, detailMessage = transaction [18036] is already visible, not pre-committed."}"#,
                TwoPhaseOutcome::Committed,
            ),
            (
                r#"{"status":"Fail","msg":"transaction [7] is already COMMITTED, not pre-committed."}"#,
                TwoPhaseOutcome::Committed,
            ),
            (
                r#"{"status":"ANALYSIS_ERROR","msg":"transaction [18036] not found"}"#,
                TwoPhaseOutcome::Gone,
            ),
            (
                r#"{"status":"ANALYSIS_ERROR","msg":"transaction [18036] is already aborted"}"#,
                TwoPhaseOutcome::Gone,
            ),
            (
                r#"{"status":"FAILED","msg":"No transaction id or label selected."}"#,
                TwoPhaseOutcome::Failed(FailReason::Unclassified),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(classify_two_phase(&fe(body)), expected, "{body}");
        }
    }

    #[test]
    fn load_states() {
        let env = fe(r#"{"msg":"success","code":0,"data":"VISIBLE","count":0}"#);
        assert_eq!(LoadState::parse(&env.data_text()), Some(LoadState::Visible));
        for (s, st) in [
            ("UNKNOWN", LoadState::Unknown),
            ("PREPARE", LoadState::Prepare),
            ("PRECOMMITTED", LoadState::Precommitted),
            ("COMMITTED", LoadState::Committed),
            ("ABORTED", LoadState::Aborted),
        ] {
            assert_eq!(LoadState::parse(s), Some(st));
        }
        assert_eq!(LoadState::parse("unknown databases, dbName=x"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_reply(b"<html>502 Bad Gateway</html>").is_err());
        assert!(parse_reply(b"").is_err());
        assert!(parse_reply(br#"{"Status": 5}"#).is_err());
    }
}
