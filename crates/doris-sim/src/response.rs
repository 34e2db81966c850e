//! The BE's Stream Load reply: one JSON object, fields in the order of `StreamLoadContext::to_json`, pretty-printed
//! with 4 spaces and a trailing `\n` (spec §4).

use std::fmt::Write as _;

use crate::value::write_json_string;

/// `Status` values of a reply.
pub const SUCCESS: &str = "Success";
pub const PUBLISH_TIMEOUT: &str = "Publish Timeout";
pub const LABEL_ALREADY_EXISTS: &str = "Label Already Exists";
pub const FAIL: &str = "Fail";

#[derive(Debug, Clone, Default)]
pub struct LoadReply {
    /// -1 when no transaction was begun.
    pub txn_id: i64,
    pub label: String,
    pub comment: String,
    pub two_phase_commit: bool,
    /// Group commit replaces `TwoPhaseCommit` by `GroupCommit: true` and drops the begin/commit timings.
    pub group_commit: bool,
    pub status: &'static str,
    /// Only with `Label Already Exists`.
    pub existing_job_status: Option<&'static str>,
    pub message: String,
    pub total_rows: u64,
    pub loaded_rows: u64,
    pub filtered_rows: u64,
    pub unselected_rows: u64,
    pub load_bytes: u64,
    pub load_time_ms: u64,
    pub begin_txn_time_ms: u64,
    pub stream_load_put_time_ms: u64,
    pub read_data_time_ms: u64,
    pub write_data_time_ms: u64,
    pub commit_and_publish_time_ms: u64,
    /// Only when rejected rows were logged.
    pub error_url: Option<String>,
}

impl LoadReply {
    /// A reply for a load refused before any row was read.
    pub fn fail(label: String, message: String) -> Self {
        LoadReply {
            txn_id: -1,
            label,
            status: FAIL,
            message,
            ..Default::default()
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(640);
        s.push_str("{\n");
        let field = |name: &str, value: &dyn Fn(&mut String), s: &mut String, first: bool| {
            if !first {
                s.push_str(",\n");
            }
            let _ = write!(s, "    \"{name}\": ");
            value(s);
        };
        let num = |n: i64| {
            move |s: &mut String| {
                let _ = write!(s, "{n}");
            }
        };
        let text = |t: &str| {
            let t = t.to_string();
            move |s: &mut String| write_json_string(&t, s)
        };
        field("TxnId", &num(self.txn_id), &mut s, true);
        field("Label", &text(&self.label), &mut s, false);
        field("Comment", &text(&self.comment), &mut s, false);
        if self.group_commit {
            field(
                "GroupCommit",
                &|s: &mut String| s.push_str("true"),
                &mut s,
                false,
            );
        } else {
            field(
                "TwoPhaseCommit",
                &text(if self.two_phase_commit {
                    "true"
                } else {
                    "false"
                }),
                &mut s,
                false,
            );
        }
        field("Status", &text(self.status), &mut s, false);
        if let Some(e) = self.existing_job_status {
            field("ExistingJobStatus", &text(e), &mut s, false);
        }
        field("Message", &text(&self.message), &mut s, false);
        field(
            "NumberTotalRows",
            &num(self.total_rows as i64),
            &mut s,
            false,
        );
        field(
            "NumberLoadedRows",
            &num(self.loaded_rows as i64),
            &mut s,
            false,
        );
        field(
            "NumberFilteredRows",
            &num(self.filtered_rows as i64),
            &mut s,
            false,
        );
        field(
            "NumberUnselectedRows",
            &num(self.unselected_rows as i64),
            &mut s,
            false,
        );
        field("LoadBytes", &num(self.load_bytes as i64), &mut s, false);
        field("LoadTimeMs", &num(self.load_time_ms as i64), &mut s, false);
        if !self.group_commit {
            field(
                "BeginTxnTimeMs",
                &num(self.begin_txn_time_ms as i64),
                &mut s,
                false,
            );
        }
        field(
            "StreamLoadPutTimeMs",
            &num(self.stream_load_put_time_ms as i64),
            &mut s,
            false,
        );
        field(
            "ReadDataTimeMs",
            &num(self.read_data_time_ms as i64),
            &mut s,
            false,
        );
        field(
            "WriteDataTimeMs",
            &num(self.write_data_time_ms as i64),
            &mut s,
            false,
        );
        if !self.group_commit {
            field(
                "CommitAndPublishTimeMs",
                &num(self.commit_and_publish_time_ms as i64),
                &mut s,
                false,
            );
        }
        if let Some(u) = &self.error_url {
            field("ErrorURL", &text(u), &mut s, false);
        }
        s.push_str("\n}\n");
        s
    }
}

/// The FE's REST envelope `{"msg":…,"code":…,"data":…,"count":0}` (compact, as Jackson writes it).
pub fn fe_envelope(msg: &str, code: i32, data: &str) -> String {
    let mut s = String::from("{\"msg\":");
    write_json_string(msg, &mut s);
    let _ = write!(s, ",\"code\":{code},\"data\":");
    write_json_string(data, &mut s);
    s.push_str(",\"count\":0}");
    s
}

/// `{"status":…,"msg":…}` replies (FE pre-redirect checks, BE 2PC results).
pub fn status_msg(status: &str, msg: &str) -> String {
    let mut s = String::from("{\"status\":");
    write_json_string(status, &mut s);
    s.push_str(",\"msg\":");
    write_json_string(msg, &mut s);
    s.push('}');
    s
}

/// `{"status":…,"msg":…}` pretty-printed by rapidjson's PrettyWriter (BE `Status::to_json`, 2PC replies).
pub fn status_msg_pretty(status: &str, msg: &str) -> String {
    let mut s = String::from("{\n    \"status\": ");
    write_json_string(status, &mut s);
    s.push_str(",\n    \"msg\": ");
    write_json_string(msg, &mut s);
    s.push_str("\n}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_order_and_layout() {
        let r = LoadReply {
            txn_id: 7,
            label: "l".into(),
            status: SUCCESS,
            message: "OK".into(),
            ..Default::default()
        };
        let j = r.to_json();
        assert!(j.starts_with("{\n    \"TxnId\": 7,\n    \"Label\": \"l\",\n    \"Comment\": \"\",\n    \"TwoPhaseCommit\": \"false\",\n"));
        assert!(j.ends_with("\"CommitAndPublishTimeMs\": 0\n}\n"));
    }
}
