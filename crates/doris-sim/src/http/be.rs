//! BE listener handlers: the Stream Load itself and 2PC commit/abort (spec §3–§6).

use super::*;

pub(super) fn be_2pc(ctx: &Ctx, req: &Request<Incoming>, db: &str) -> Resp {
    // Same order and texts as the BE's StreamLoad2PCAction: label and txn_id name the transaction (both may be
    // given; the id wins), the operation is compared exactly, the success text names whatever was given.
    let h = req.headers();
    let get = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let reply = |status: &str, msg: &str| be_reply(status_msg_pretty(status, msg));
    let mut subject = String::new();
    if let Some(l) = get("label") {
        subject.push_str(&format!("label [{l}] "));
    }
    let mut txn = get("label").map(TxnRef::Label);
    if let Some(id) = get("txn_id") {
        subject.push_str(&format!("transaction [{id}] "));
        match id.parse::<i64>() {
            Ok(n) => txn = Some(TxnRef::Id(n)),
            Err(_) => {
                return reply(
                    "INTERNAL_ERROR",
                    &format!("convert txn_id [{id}] failed, reason=stoull"),
                )
            }
        }
    }
    let op = get("txn_operation").unwrap_or_default();
    let commit = match op {
        "commit" => true,
        "abort" => false,
        _ => {
            return reply(
                "INTERNAL_ERROR",
                "transaction operation should be 'commit' or 'abort'",
            )
        }
    };
    match check_auth(ctx, h) {
        Auth::Ok(_) => {}
        Auth::Missing => return reply("INTERNAL_ERROR", "no valid Basic authorization"),
        Auth::Denied { user, .. } => {
            return reply(
                "ANALYSIS_ERROR",
                &format!("errCode = 2, detailMessage = Access denied for user '{user}'"),
            )
        }
    }
    let Some(txn) = txn else {
        return reply("INTERNAL_ERROR", "No transaction id or label selected.");
    };
    if !ctx.state.catalog.has_db(db) {
        return reply(
            "ANALYSIS_ERROR",
            &format!("errCode = 2, detailMessage = unknown databases, dbName={db}"),
        );
    }
    match ctx.state.finish_2pc(db, txn, commit) {
        Ok(_) => reply("Success", &format!("{subject}{op} successfully.")),
        Err(msg) => reply("ANALYSIS_ERROR", &msg),
    }
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

fn reply(r: LoadReply) -> Outcome {
    Outcome::Reply(be_reply(r.to_json()))
}

/// The BE (libevent) sets no `Content-Type` of its own, so libevent's default goes out: clients must not rely on it
/// (spec §4), and a client that does fails here as it would against a real BE.
fn be_reply(body: String) -> Resp {
    respond(StatusCode::OK, "text/html; charset=ISO-8859-1", body)
}

pub(super) enum BodyError {
    TooBig(u64),
    Short(u64),
}

/// Reads the whole body, refusing more than `cap` bytes; `size_hint` (Content-Length) pre-sizes the buffer.
pub(super) async fn read_body(
    mut body: Incoming,
    cap: u64,
    size_hint: Option<u64>,
) -> Result<Vec<u8>, BodyError> {
    let mut buf = Vec::with_capacity(size_hint.unwrap_or(0).min(cap).min(256 << 20) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Short(buf.len() as u64))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > cap {
                return Err(BodyError::TooBig((buf.len() + data.len()) as u64));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// Aborts the load's transaction if it is still running when the handler ends.
struct AbortOnDrop {
    state: Arc<State>,
    txn_id: i64,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.state.abort_running(self.txn_id);
    }
}

/// BE `_stream_load`: the load itself (spec §3–§6).
pub(super) async fn be_stream_load(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    db: String,
    table: String,
    peer: SocketAddr,
) -> Outcome {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let raw_head = parts.extensions.get::<super::raw_head::RawHead>().copied();
    let headers = parts.headers;
    let given_label = headers
        .get("label")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let fallback_label = || {
        given_label
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    };
    match check_auth(&ctx, &headers) {
        Auth::Ok(_) => {}
        Auth::Missing => {
            return reply(LoadReply::fail(
                fallback_label(),
                "[INTERNAL_ERROR]no valid Basic authorization".into(),
            ))
        }
        Auth::Denied { user, with_password } => {
            return reply(LoadReply::fail(
                fallback_label(),
                format!(
                    "[ANALYSIS_ERROR]errCode = 2, detailMessage = Access denied for user '{user}'@'{}' (using password: {})",
                    peer.ip(),
                    if with_password { "YES" } else { "NO" }
                ),
            ))
        }
    }
    let params = match parse_headers(
        &headers,
        ctx.state.knobs.default_tz,
        ctx.state.knobs.doris_version,
    ) {
        Ok(p) => p,
        Err(msg) => return reply(LoadReply::fail(fallback_label(), msg)),
    };
    let group_commit = params.group_commit;
    let label = match (&params.label, group_commit) {
        (Some(l), _) => l.clone(),
        (None, Some(_)) => format!("group_commit_{}", uuid::Uuid::new_v4().simple()),
        (None, None) => uuid::Uuid::new_v4().to_string(),
    };
    let base = LoadReply {
        txn_id: -1,
        label: label.clone(),
        comment: params.comment.clone(),
        two_phase_commit: params.two_phase_commit,
        group_commit: group_commit.is_some(),
        status: FAIL,
        ..Default::default()
    };
    let fail = |msg: String| {
        let mut r = base.clone();
        r.message = msg;
        r.load_time_ms = ms(start);
        r
    };
    if params.label.is_some() && !label_is_valid(&label) {
        return reply(fail(format!(
            "[ANALYSIS_ERROR]errCode = 2, detailMessage = Label format error. regex: ^[-_A-Za-z0-9:]{{1,128}}$, label: {label}"
        )));
    }
    if !ctx.state.catalog.has_db(&db) {
        return reply(fail(format!(
            "[ANALYSIS_ERROR]errCode = 2, detailMessage = unknown databases, dbName={db}"
        )));
    }
    let Some(table_idx) = ctx.state.catalog.table(&db, &table) else {
        return reply(fail(format!(
            "[ANALYSIS_ERROR]errCode = 2, detailMessage = unknown table, tableName={table}"
        )));
    };
    let def = ctx.state.table_def(table_idx);
    if let Err(msg) = Plan::new(def, &params) {
        return reply(fail(msg));
    }
    // Size caps are checked on the headers, before the transaction begins (BE `_on_header`).
    // The BE looks at the `read_json_by_line` header itself here, not at the 3.1+ line-by-line default.
    let json_whole_body = params.format == Format::Json
        && !headers
            .get("read_json_by_line")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let cap = if json_whole_body {
        ctx.max_json_body_bytes
    } else {
        ctx.max_body_bytes
    };
    let declared: Option<u64> = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let too_big = |n: u64| {
        if json_whole_body {
            format!(
                "[INTERNAL_ERROR]The size of this batch exceed the max size [{cap}]  of json type data  data [ {n} ]. Split the file, or use 'read_json_by_line'"
            )
        } else {
            format!("[INTERNAL_ERROR]body exceed max size: {cap}, data: {n}")
        }
    };
    if let Some(n) = declared.filter(|n| *n > cap) {
        return reply(fail(too_big(n)));
    }
    let chunked = headers
        .get(hyper::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    // Messages as asserted by apache/doris regression-test/suites/load_p0/stream_load/test_stream_load.groovy.
    // hyper drops `Content-Length` from a chunked request; the raw head still shows it (`raw_head`).
    let has_length = headers
        .get(CONTENT_LENGTH)
        .is_some_and(|v| !v.as_bytes().trim_ascii().is_empty())
        || raw_head.is_some_and(|h| h.content_length);
    if !has_length && !chunked {
        return reply(fail(
            "[INTERNAL_ERROR]content_length is empty and transfer-encoding!=chunked, please set content_length or transfer-encoding=chunked"
                .into(),
        ));
    }
    if has_length && chunked {
        return reply(fail(
            "[INTERNAL_ERROR]please do not set both content_length and transfer-encoding".into(),
        ));
    }
    let begin = Instant::now();
    let group = group_commit.map(|_| {
        ctx.state
            .join_group(&db, table_idx, ctx.group_commit_interval)
    });
    let begun = match &group {
        Some((id, _, _)) => Ok(*id),
        None => ctx.state.begin(&db, table_idx, &label),
    };
    let txn_id = match begun {
        Ok(id) => id,
        Err(BeginError::LabelExists { state, txn_id }) => {
            let mut r = fail(format!(
                "[LABEL_ALREADY_EXISTS]errCode = 2, detailMessage = Label [{label}] has already been used, relate to txn [{txn_id}]"
            ));
            r.status = LABEL_ALREADY_EXISTS;
            r.existing_job_status = Some(state.existing_job_status());
            return reply(r);
        }
    };
    let begin_ms = ms(begin);
    // Whatever ends this handler early (an error path, a panic, a dropped connection) leaves no RUNNING label.
    let _abort_unless_finished = AbortOnDrop {
        state: ctx.state.clone(),
        txn_id,
    };
    let fault = ctx.state.take_fault(false, &db, &table);
    if fault.as_ref().is_some_and(|f| f.kind == FaultKind::Panic) {
        panic!("doris-sim fault: handler panic requested");
    }
    let mut base = base.clone();
    base.txn_id = txn_id;
    if let Some((_, group_label, _)) = &group {
        base.label = group_label.clone();
    }
    base.begin_txn_time_ms = begin_ms;
    let fail = |msg: String, state: &State| {
        state.abort_running(txn_id);
        let mut r = base.clone();
        r.message = msg;
        r.load_time_ms = ms(start);
        r
    };
    if let Some(f) = &fault {
        if f.kind == FaultKind::Delay {
            tokio::time::sleep(Duration::from_millis(f.delay_ms.unwrap_or(1000))).await;
        }
    }
    let read_start = Instant::now();
    let body = match read_body(body, cap, declared).await {
        Ok(b) => b,
        Err(BodyError::TooBig(n)) => return reply(fail(too_big(n), &ctx.state)),
        Err(BodyError::Short(received)) => {
            let mut r = fail(
                "[NETWORK_ERROR]receive body don't equal with body bytes".into(),
                &ctx.state,
            );
            r.load_bytes = received;
            return reply(r);
        }
    };
    let read_ms = ms(read_start);
    let load_bytes = body.len() as u64;
    ctx.state.note_body(txn_id, load_bytes);
    match fault.as_ref().map(|f| f.kind) {
        Some(FaultKind::ResetBeforeCommit) => {
            ctx.state.abort_running(txn_id);
            return Outcome::Reset;
        }
        Some(FaultKind::Http500) => {
            ctx.state.abort_running(txn_id);
            let msg = fault
                .as_ref()
                .and_then(|f| f.message.clone())
                .unwrap_or_else(|| "doris-sim fault: internal server error".into());
            return Outcome::Reply(plain(StatusCode::INTERNAL_SERVER_ERROR, &msg));
        }
        Some(FaultKind::Fail) => {
            let msg = fault
                .as_ref()
                .and_then(|f| f.message.clone())
                .unwrap_or_else(|| "[INTERNAL_ERROR]doris-sim fault".into());
            let mut r = fail(msg, &ctx.state);
            r.load_bytes = load_bytes;
            return reply(r);
        }
        _ => {}
    }
    // Parsing is CPU work: keep it off the async workers.
    let write_start = Instant::now();
    let state = ctx.state.clone();
    let params_owned = params.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let def = state.table_def(table_idx);
        Plan::new(def, &params_owned).map(|plan| plan.prepare(&body))
    })
    .await;
    let prepared = match prepared {
        Ok(Ok(p)) => p,
        Ok(Err(msg)) => return reply(fail(msg, &ctx.state)),
        Err(_) => {
            return reply(fail(
                "[INTERNAL_ERROR]doris-sim: load parser panicked".into(),
                &ctx.state,
            ))
        }
    };
    let mut prepared = prepared;
    // Partial update in strict mode: rows of keys the table does not hold are filtered rows (counted against
    // max_filter_ratio), as apache/doris test_partial_update_strict_mode.groovy shows.
    if params.partial_columns && params.strict_mode && !params.partial_new_key_error {
        let new_keys = ctx.state.new_key_ops(table_idx, &prepared.ops);
        if new_keys.iter().any(|n| *n) {
            let def = ctx.state.table_def(table_idx);
            let ops = std::mem::take(&mut prepared.ops);
            for (op, new) in ops.into_iter().zip(new_keys) {
                if !new {
                    prepared.ops.push(op);
                    continue;
                }
                prepared.filtered += 1;
                prepared.error_log.push(format!(
                    "Reason: [E-7003]Can't append new rows in partial update when strict mode is on. Row with key=[{}] is not in table.. src line []; ",
                    key_text(&op, def)
                ));
            }
        }
    }
    // The `filter_rows` fault: the first row is filtered, as Doris filters a row whose value does not fit.
    if ctx
        .state
        .take_filter_fault(&db, &table, prepared.ops.len())
        .is_some()
    {
        let def = ctx.state.table_def(table_idx);
        let op = prepared.ops.remove(0);
        prepared.filtered += 1;
        prepared.error_log.push(format!(
            "Reason: doris-sim fault filter_rows: the row with key=[{}] is filtered. src line []; ",
            key_text(&op, def)
        ));
    }
    let write_ms = ms(write_start);
    let mut r = base.clone();
    r.total_rows = prepared.total;
    r.filtered_rows = prepared.filtered;
    r.unselected_rows = prepared.unselected;
    r.loaded_rows = prepared.ops.len() as u64;
    r.load_bytes = load_bytes;
    r.read_data_time_ms = read_ms;
    r.write_data_time_ms = write_ms;
    if prepared.filtered > 0 {
        let file = format!(
            "__shard_{}/error_log_insert_stmt_{}",
            txn_id % 16,
            uuid::Uuid::new_v4().simple()
        );
        let mut text = prepared.error_log.join("\n");
        text.push('\n');
        ctx.state.store_error_log(file.clone(), text);
        r.error_url = Some(format!(
            "{}://{}:{}/api/_load_error_log?file={file}",
            ctx.be_scheme, ctx.be_host, ctx.be_port
        ));
    }
    if let Some(msg) = prepared.fatal {
        ctx.state.abort_running(txn_id);
        r.message = msg;
        r.load_time_ms = ms(start);
        return reply(r);
    }
    let selected = prepared.total - prepared.unselected;
    if selected > 0 && prepared.filtered as f64 / selected as f64 > params.max_filter_ratio {
        ctx.state.abort_running(txn_id);
        r.message = "[DATA_QUALITY_ERROR]too many filtered rows".into();
        if params.version.failed_load_reports_zero_loaded() {
            r.loaded_rows = 0;
        }
        r.load_time_ms = ms(start);
        return reply(r);
    }
    // Group commit: the data becomes visible at the group's internal commit (spec §7); sync mode replies after it.
    let mut visible_from = None;
    if let (Some(mode), Some((_, _, due))) = (group_commit, &group) {
        if mode == GroupCommit::Sync {
            tokio::time::sleep_until((*due).into()).await;
        } else {
            visible_from = Some(*due);
        }
    }
    // The FE's txn manager aborts a load that outlives its `timeout`; the commit then finds it aborted.
    if group.is_none() && begin.elapsed() > Duration::from_secs(params.timeout_secs) {
        ctx.state.abort_running(txn_id);
        r.message = format!(
            "[ANALYSIS_ERROR]errCode = 2, detailMessage = transaction [{txn_id}] is already aborted. abort reason: timeout by txn manager"
        );
        r.load_time_ms = ms(start);
        return reply(r);
    }
    let commit_start = Instant::now();
    let publish_delay = match fault.as_ref() {
        Some(f) if f.kind == FaultKind::PublishTimeout => {
            Some(Duration::from_millis(f.delay_ms.unwrap_or(1000)))
        }
        _ => None,
    };
    let new_keys = match (
        params.partial_columns,
        params.partial_new_key_error,
        params.strict_mode,
    ) {
        (true, true, _) => NewKeys::Error("partial_update_new_key_behavior is ERROR"),
        _ => NewKeys::Append,
    };
    if let Err(msg) = ctx.state.commit_with_visibility(
        txn_id,
        prepared.ops,
        params.two_phase_commit,
        publish_delay,
        visible_from,
        new_keys,
    ) {
        r.message = msg;
        r.load_time_ms = ms(start);
        return reply(r);
    }
    r.commit_and_publish_time_ms = ms(commit_start);
    if matches!(
        fault.as_ref().map(|f| f.kind),
        Some(FaultKind::ResetAfterCommit)
    ) {
        return Outcome::Reset;
    }
    if publish_delay.is_some() {
        r.status = PUBLISH_TIMEOUT;
        r.message =
            "[PUBLISH_TIMEOUT]Transaction commit successfully, BUT data will be visible later"
                .into();
    } else {
        r.status = SUCCESS;
        r.message = "OK".into();
    }
    r.load_time_ms = ms(start);
    reply(r)
}

/// A row's key as its error-log line shows it: the key columns' values as text, `NULL` for none.
fn key_text(op: &crate::table::RowOp, def: &crate::ddl::TableDef) -> String {
    op.values[..def.key_len]
        .iter()
        .zip(&def.columns)
        .map(|(v, c)| v.to_text(&c.ty).unwrap_or_else(|| "NULL".into()))
        .collect::<Vec<_>>()
        .join(", ")
}
