//! The two HTTP listeners: the FE (`http_port`, 8030) that authenticates and redirects, and the BE
//! (`webserver_port`, 8040) that executes loads (spec §1). Both also serve the sim-only `/api/_sim/` endpoints.
//!
//! Every handler runs in its own task so a panic becomes an HTTP 500 instead of taking the listener down, and no
//! handler unwraps anything derived from the request.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::load::{label_is_valid, parse_headers, Format, GroupCommit, Plan};
use crate::response::{
    fe_envelope, status_msg, LoadReply, FAIL, LABEL_ALREADY_EXISTS, PUBLISH_TIMEOUT, SUCCESS,
};
use crate::state::{BeginError, FaultKind, FaultSpec, NewKeys, State, TxnRef};
use crate::value::write_json_string;

/// Listener-independent settings shared by all handlers.
pub struct Ctx {
    pub state: Arc<State>,
    pub user: String,
    pub password: String,
    /// Host the FE puts in `Location` and the BE in `ErrorURL` (the BE's "registered host").
    pub be_host: String,
    pub be_port: u16,
    /// `streaming_load_max_mb` in bytes (CSV and JSON lines).
    pub max_body_bytes: u64,
    /// `streaming_load_json_max_mb` in bytes (JSON without `read_json_by_line`).
    pub max_json_body_bytes: u64,
    /// Group commit: delay before an async/sync group commit becomes visible.
    pub group_commit_interval: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Fe,
    Be,
}

type Resp = Response<Full<Bytes>>;

enum Outcome {
    Reply(Resp),
    /// Reset the connection instead of replying (faults).
    Reset,
}

#[derive(Debug)]
struct ResetRequested;

impl std::fmt::Display for ResetRequested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("doris-sim fault: connection reset")
    }
}
impl std::error::Error for ResetRequested {}

/// Accepts connections until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    role: Role,
    ctx: Arc<Ctx>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "doris-sim accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        let inner_tracker = tracker.clone();
        tracker.spawn(async move {
            let reset = Arc::new(AtomicBool::new(false));
            let io = TokioIo::new(ResetOnDrop {
                inner: stream,
                reset: reset.clone(),
            });
            let svc = service_fn(move |req: Request<Incoming>| {
                let ctx = ctx.clone();
                let reset = reset.clone();
                let tracker = inner_tracker.clone();
                async move {
                    // A separate task: a panic in the handler is caught here and becomes a 500.
                    let handle = tracker.spawn(route(ctx, role, req, peer));
                    match handle.await {
                        Ok(Outcome::Reply(r)) => Ok(r),
                        Ok(Outcome::Reset) => {
                            reset.store(true, Ordering::SeqCst);
                            Err(ResetRequested)
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "doris-sim handler panicked");
                            Ok(plain(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "doris-sim: internal error (handler panicked)\n",
                            ))
                        }
                    }
                }
            });
            let conn = http1::Builder::new().serve_connection(io, svc);
            tokio::select! {
                _ = conn => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// A TCP stream that, when a fault asked for a reset, closes with `SO_LINGER 0` so the peer sees a RST rather than
/// an orderly FIN.
struct ResetOnDrop {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(body: String) -> Resp {
    respond(StatusCode::OK, "application/json", body)
}

fn plain(status: StatusCode, body: &str) -> Resp {
    respond(status, "text/plain; charset=utf-8", body.to_string())
}

fn sim_error(status: StatusCode, msg: &str) -> Resp {
    let mut s = String::from("{\"error\":");
    write_json_string(msg, &mut s);
    s.push('}');
    respond(status, "application/json", s)
}

/// Percent-decodes a query component (`+` is a space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Percent-encodes what Java's multi-argument `URI` constructor quotes in userinfo when the FE builds `Location`:
/// everything but RFC 2396 unreserved characters and `;:&=+$,` (so a `:` inside the password stays literal and a
/// client must split userinfo at the first `:`).
fn encode_userinfo(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'();:&=+$,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

enum Auth {
    Ok(String),
    Missing,
    Denied { user: String, with_password: bool },
}

/// HTTP Basic, split at the first `:`; `user@cluster` is accepted as `user` (spec §2).
fn check_auth(ctx: &Ctx, headers: &HeaderMap) -> Auth {
    let Some(v) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Auth::Missing;
    };
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return Auth::Missing;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return Auth::Missing;
    };
    let Ok(text) = String::from_utf8(raw) else {
        return Auth::Missing;
    };
    let Some((user, password)) = text.split_once(':') else {
        return Auth::Missing;
    };
    let name = user.split_once('@').map(|(u, _)| u).unwrap_or(user);
    if name == ctx.user && password == ctx.password {
        Auth::Ok(name.to_string())
    } else {
        Auth::Denied {
            user: name.to_string(),
            with_password: !password.is_empty(),
        }
    }
}

/// Path segments after `/api/`.
fn api_segments(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix("/api/")?;
    Some(rest.split('/').filter(|s| !s.is_empty()).collect())
}

async fn route(ctx: Arc<Ctx>, role: Role, req: Request<Incoming>, peer: SocketAddr) -> Outcome {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let Some(seg) = api_segments(&path) else {
        return Outcome::Reply(plain(StatusCode::NOT_FOUND, "not found\n"));
    };
    let seg: Vec<String> = seg.into_iter().map(str::to_string).collect();
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    if s.first() == Some(&"_sim") {
        return Outcome::Reply(sim_api(&ctx, &method, &s[1..], req).await);
    }
    match (role, s.as_slice()) {
        (Role::Fe, [db, table, "_stream_load"]) if method == Method::PUT => {
            Outcome::Reply(fe_stream_load(&ctx, &req, db, table, peer))
        }
        (Role::Fe, [db, "_stream_load_2pc"] | [db, _, "_stream_load_2pc"])
            if method == Method::PUT =>
        {
            Outcome::Reply(fe_2pc(&ctx, &req, db, peer))
        }
        (Role::Fe, [db, "get_load_state"]) if method == Method::GET => {
            Outcome::Reply(fe_get_load_state(&ctx, &req, db, peer))
        }
        (Role::Fe, ["backends"]) if method == Method::GET => {
            Outcome::Reply(fe_backends(&ctx, &req, peer))
        }
        (Role::Be, [db, table, "_stream_load"]) if method == Method::PUT => {
            be_stream_load(ctx.clone(), req, db.to_string(), table.to_string(), peer).await
        }
        (Role::Be, [db, "_stream_load_2pc"] | [db, _, "_stream_load_2pc"])
            if method == Method::PUT =>
        {
            Outcome::Reply(be_2pc(&ctx, &req, db))
        }
        (Role::Be, ["_load_error_log"]) if method == Method::GET => {
            let file = query_param(req.uri().query(), "file").unwrap_or_default();
            Outcome::Reply(match ctx.state.error_log(&file) {
                Some(text) => respond(StatusCode::OK, "text/plain; charset=utf-8", text),
                None => plain(StatusCode::NOT_FOUND, "file not found\n"),
            })
        }
        (_, [_, _, "_stream_load"])
        | (_, [_, "_stream_load_2pc"])
        | (_, [_, _, "_stream_load_2pc"]) => Outcome::Reply(plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
        )),
        _ => Outcome::Reply(plain(StatusCode::NOT_FOUND, "not found\n")),
    }
}

/// The FE's reply when Basic auth is missing or wrong: HTTP 200 with the REST envelope (spec §2).
fn fe_auth(ctx: &Ctx, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Box<Resp>> {
    match check_auth(ctx, headers) {
        Auth::Ok(_) => Ok(()),
        Auth::Missing => Err(Box::new(json(fe_envelope(
            "Unauthorized",
            401,
            "Need auth information.",
        )))),
        Auth::Denied { user, .. } => Err(Box::new(json(fe_envelope(
            "Unauthorized",
            401,
            &format!("Access denied for {user}@{}", peer.ip()),
        )))),
    }
}

fn redirect(
    ctx: &Ctx,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
    unreachable: bool,
) -> Resp {
    let (user, password) = match check_auth(ctx, headers) {
        Auth::Ok(u) => (u, ctx.password.clone()),
        _ => (ctx.user.clone(), ctx.password.clone()),
    };
    // An unreachable BE: port 1 on the loopback refuses connections.
    let (host, port) = if unreachable {
        ("127.0.0.1".to_string(), 1)
    } else {
        (ctx.be_host.clone(), ctx.be_port)
    };
    // Credentials as userinfo, always http, path kept, `?` always present (spec §1 step 6).
    let location = format!(
        "http://{}:{}@{host}:{port}{path}?{}",
        encode_userinfo(&user),
        encode_userinfo(&password),
        query.unwrap_or("")
    );
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers_mut().insert(LOCATION, v);
        }
        Err(_) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "doris-sim: unencodable Location\n",
            )
        }
    }
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// FE `_stream_load`: auth, `Expect` check, 307 to the BE. The body is never read (spec §1, C2).
fn fe_stream_load(
    ctx: &Ctx,
    req: &Request<Incoming>,
    db: &str,
    table: &str,
    peer: SocketAddr,
) -> Resp {
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    if !req.headers().contains_key(hyper::header::EXPECT) {
        return json(status_msg("FAILED", "There is no 100-continue header"));
    }
    let unreachable = ctx
        .state
        .take_fault(true, db, table)
        .is_some_and(|f| f.kind == FaultKind::RedirectUnreachable);
    redirect(
        ctx,
        req.headers(),
        req.uri().path(),
        req.uri().query(),
        unreachable,
    )
}

fn fe_2pc(ctx: &Ctx, req: &Request<Incoming>, _db: &str, peer: SocketAddr) -> Resp {
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    let h = req.headers();
    if !h.contains_key("txn_id") && !h.contains_key("label") {
        return json(status_msg("FAILED", "No transaction id or label selected."));
    }
    if !h.contains_key("txn_operation") {
        return json(status_msg(
            "FAILED",
            "No transaction operation('commit' or 'abort') selected.",
        ));
    }
    redirect(ctx, h, req.uri().path(), req.uri().query(), false)
}

fn fe_get_load_state(ctx: &Ctx, req: &Request<Incoming>, db: &str, peer: SocketAddr) -> Resp {
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    let Some(label) = query_param(req.uri().query(), "label").filter(|l| !l.is_empty()) else {
        return json(fe_envelope("Bad Request", 403, "No label selected"));
    };
    if !ctx.state.catalog.has_db(db) {
        return json(fe_envelope(
            "Error",
            1,
            &format!("unknown databases, dbName={db}"),
        ));
    }
    json(fe_envelope("success", 0, ctx.state.load_state(db, &label)))
}

fn fe_backends(ctx: &Ctx, req: &Request<Incoming>, peer: SocketAddr) -> Resp {
    if let Err(r) = fe_auth(ctx, req.headers(), peer) {
        return *r;
    }
    let mut s = String::from("{\"msg\":\"success\",\"code\":0,\"data\":{\"backends\":[{\"ip\":");
    write_json_string(&ctx.be_host, &mut s);
    s.push_str(&format!(
        ",\"http_port\":{},\"is_alive\":true}}]}},\"count\":0}}",
        ctx.be_port
    ));
    json(s)
}

fn be_2pc(ctx: &Ctx, req: &Request<Incoming>, db: &str) -> Resp {
    let h = req.headers();
    match check_auth(ctx, h) {
        Auth::Ok(_) => {}
        Auth::Missing => return json(status_msg("INTERNAL_ERROR", "no valid Basic authorization")),
        Auth::Denied { user, .. } => {
            return json(status_msg(
                "ANALYSIS_ERROR",
                &format!("errCode = 2, detailMessage = Access denied for user '{user}'"),
            ))
        }
    }
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    let op = get("txn_operation").unwrap_or_default();
    let commit = if op.eq_ignore_ascii_case("commit") {
        true
    } else if op.eq_ignore_ascii_case("abort") {
        false
    } else {
        return json(status_msg(
            "INTERNAL_ERROR",
            "transaction operation should be 'commit' or 'abort'",
        ));
    };
    let txn = match (get("txn_id"), get("label")) {
        (Some(id), _) => match id.parse::<i64>() {
            Ok(n) => TxnRef::Id(n),
            Err(_) => {
                return json(status_msg(
                    "INTERNAL_ERROR",
                    &format!("convert txn_id [{id}] failed"),
                ))
            }
        },
        (None, Some(l)) if !l.is_empty() => TxnRef::Label(l),
        _ => {
            return json(status_msg(
                "INTERNAL_ERROR",
                "No transaction id or label selected.",
            ))
        }
    };
    if !ctx.state.catalog.has_db(db) {
        return json(status_msg(
            "ANALYSIS_ERROR",
            &format!("errCode = 2, detailMessage = unknown databases, dbName={db}"),
        ));
    }
    match ctx.state.finish_2pc(db, txn, commit) {
        Ok(msg) => json(status_msg("Success", &msg)),
        Err(msg) => json(status_msg("ANALYSIS_ERROR", &msg)),
    }
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

fn reply(r: LoadReply) -> Outcome {
    Outcome::Reply(json(r.to_json()))
}

enum BodyError {
    TooBig(u64),
    Short(u64),
}

/// Reads the whole body, refusing more than `cap` bytes; `size_hint` (Content-Length) pre-sizes the buffer.
async fn read_body(
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

/// BE `_stream_load`: the load itself (spec §3–§6).
async fn be_stream_load(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    db: String,
    table: String,
    peer: SocketAddr,
) -> Outcome {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
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
    let params = match parse_headers(&headers, ctx.state.knobs.default_tz) {
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
    let json_whole_body = params.format == Format::Json && !params.read_json_by_line;
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
    let fault = ctx.state.take_fault(false, &db, &table);
    if fault.as_ref().is_some_and(|f| f.kind == FaultKind::Panic) {
        panic!("doris-sim fault: handler panic requested");
    }
    let begin = Instant::now();
    let txn_id = match ctx.state.begin(&db, table_idx, &label) {
        Ok(id) => id,
        Err(BeginError::LabelExists { state, txn_id }) => {
            let mut r = fail(format!(
                "errCode = 2, detailMessage = Label [{label}] has already been used, relate to txn [{txn_id}]"
            ));
            r.status = LABEL_ALREADY_EXISTS;
            r.existing_job_status = Some(state.existing_job_status());
            return reply(r);
        }
    };
    let begin_ms = ms(begin);
    let mut base = base.clone();
    base.txn_id = txn_id;
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
        Err(BodyError::Short(n)) => {
            return reply(fail(
                format!(
                    "[INTERNAL_ERROR]receive body don't equal with body bytes, body_bytes={}, receive_bytes={n}",
                    declared.unwrap_or(0)
                ),
                &ctx.state,
            ))
        }
    };
    let read_ms = ms(read_start);
    let load_bytes = body.len() as u64;
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
            "http://{}:{}/api/_load_error_log?file={file}",
            ctx.be_host, ctx.be_port
        ));
    }
    let selected = prepared.total - prepared.unselected;
    if selected > 0 && prepared.filtered as f64 / selected as f64 > params.max_filter_ratio {
        ctx.state.abort_running(txn_id);
        r.loaded_rows = 0;
        r.message = "[DATA_QUALITY_ERROR]too many filtered rows".into();
        r.load_time_ms = ms(start);
        return reply(r);
    }
    if let Some(mode) = group_commit {
        // Group commit: the data becomes visible at the next internal commit (spec §7).
        if mode == GroupCommit::Sync {
            tokio::time::sleep(ctx.group_commit_interval).await;
        }
    }
    let commit_start = Instant::now();
    let publish_delay = match fault.as_ref() {
        Some(f) if f.kind == FaultKind::PublishTimeout => {
            Some(Duration::from_millis(f.delay_ms.unwrap_or(1000)))
        }
        _ => None,
    };
    let delayed_visibility = match group_commit {
        Some(GroupCommit::Async) => Some(ctx.group_commit_interval),
        _ => None,
    };
    let new_keys = match (
        params.partial_columns,
        params.partial_new_key_error,
        params.strict_mode,
    ) {
        (true, true, _) => NewKeys::Error("partial_update_new_key_behavior is ERROR"),
        (true, false, true) => NewKeys::Error("strict mode is on"),
        _ => NewKeys::Append,
    };
    if let Err(msg) = ctx.state.commit_with_visibility(
        txn_id,
        prepared.ops,
        params.two_phase_commit,
        publish_delay,
        delayed_visibility,
        new_keys,
    ) {
        r.loaded_rows = 0;
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

/// Sim-only endpoints (not part of Doris): inspection and fault injection.
async fn sim_api(ctx: &Ctx, method: &Method, seg: &[&str], req: Request<Incoming>) -> Resp {
    match (method, seg) {
        (&Method::GET, ["stats"]) => {
            ctx.state.flush_due();
            let mut s = String::from("{\"tables\":[");
            for (i, (db, table, st)) in ctx.state.stats().into_iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str("{\"db\":");
                write_json_string(&db, &mut s);
                s.push_str(",\"table\":");
                write_json_string(&table, &mut s);
                s.push_str(&format!(
                    ",\"loads\":{},\"failed_loads\":{},\"rows\":{},\"versions\":{},\"labels\":{}}}",
                    st.loads, st.failed_loads, st.rows, st.versions, st.labels
                ));
            }
            s.push_str("]}");
            json(s)
        }
        (&Method::GET, [db, table, "rows"]) => {
            ctx.state.flush_due();
            let Some(idx) = ctx.state.catalog.table(db, table) else {
                return sim_error(
                    StatusCode::NOT_FOUND,
                    &format!("unknown table {db}.{table}"),
                );
            };
            json(ctx.state.rows_json(idx))
        }
        (&Method::POST, ["faults"]) => {
            let body = match read_body(req.into_body(), 1 << 20, None).await {
                Ok(b) => b,
                Err(_) => {
                    return sim_error(
                        StatusCode::BAD_REQUEST,
                        "fault body too large or incomplete",
                    )
                }
            };
            let faults: Result<Vec<FaultSpec>, _> = if body.trim_ascii_start().starts_with(b"[") {
                serde_json::from_slice::<Vec<FaultSpec>>(&body)
            } else {
                serde_json::from_slice::<FaultSpec>(&body).map(|f| vec![f])
            };
            match faults {
                Ok(f) => {
                    let n = f.len();
                    ctx.state.push_faults(f);
                    json(format!("{{\"queued\":{n}}}"))
                }
                Err(e) => sim_error(StatusCode::BAD_REQUEST, &format!("bad fault JSON: {e}")),
            }
        }
        (&Method::DELETE, ["faults"]) => {
            ctx.state.clear_faults();
            json("{\"queued\":0}".into())
        }
        (&Method::POST, ["compact"]) => {
            ctx.state.compact(f64::MAX);
            json("{\"compacted\":true}".into())
        }
        (&Method::POST, ["clean_labels"]) => {
            ctx.state.clean_labels();
            json("{\"cleaned\":true}".into())
        }
        _ => sim_error(StatusCode::NOT_FOUND, "unknown /api/_sim/ endpoint"),
    }
}
