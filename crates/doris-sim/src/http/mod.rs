//! The two HTTP listeners: the FE (`http_port`, 8030) that authenticates and redirects, and the BE
//! (`webserver_port`, 8040) that executes loads (spec §1). Both also serve the sim-only `/api/_sim/` endpoints.
//!
//! Every handler runs in its own task so a panic becomes an HTTP 500 instead of taking the listener down, and no
//! handler unwraps anything derived from the request.
//!
//! With TLS (`SimOptions::tls`) the FE and BE listeners speak HTTPS only, the FE redirects to `https://` (unless told
//! to send plain `http://` redirects, a misconfigured cluster), and a third, plain listener (an ephemeral port of the
//! same bind address) serves the sim-only `/api/_sim/` endpoints (the [`crate::SimClient`] of tests speaks plain HTTP).

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
    fe_envelope, status_msg, status_msg_pretty, LoadReply, FAIL, LABEL_ALREADY_EXISTS,
    PUBLISH_TIMEOUT, SUCCESS,
};
use crate::state::{BeginError, FaultKind, FaultSpec, NewKeys, State, TxnRef};
use crate::value::write_json_string;

mod be;
mod fe;
mod raw_head;
mod sim_api;

use be::{be_2pc, be_stream_load};
use fe::{fe_2pc, fe_backends, fe_get_load_state, fe_schema, fe_stream_load};
use sim_api::sim_api;

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
    /// Scheme of the BE URLs the FE and BE write (`Location`, `ErrorURL`): `https` when the BE serves TLS.
    pub be_scheme: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Fe,
    Be,
    /// Only `/api/_sim/` (the plain control listener beside TLS FE and BE).
    Control,
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

/// Accepts connections until `cancel` fires; with `tls`, each connection's TLS handshake first.
pub async fn serve(
    listener: TcpListener,
    role: Role,
    ctx: Arc<Ctx>,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
        let tls = tls.clone();
        tracker.spawn(async move {
            let stream = match tls {
                None => Conn::Plain(stream),
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => Conn::Tls(Box::new(s)),
                    Err(e) => {
                        // A client that refused our certificate, or spoke plain HTTP to the TLS port.
                        tracing::debug!(error = %e, %peer, "doris-sim TLS handshake failed");
                        return;
                    }
                },
            };
            let reset = Arc::new(AtomicBool::new(false));
            let heads = raw_head::HeadRecorder::default();
            let io = TokioIo::new(ResetOnDrop {
                inner: stream,
                reset: reset.clone(),
                heads: heads.clone(),
            });
            let svc = service_fn(move |mut req: Request<Incoming>| {
                let ctx = ctx.clone();
                let reset = reset.clone();
                if let Some(head) = heads.take() {
                    req.extensions_mut().insert(head);
                }
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

/// A connection: plain TCP, or TLS over TCP.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// A connection that, when a fault asked for a reset, closes with `SO_LINGER 0` so the peer sees a RST rather than
/// an orderly FIN. It also shows every byte read to the connection's `HeadRecorder`.
struct ResetOnDrop {
    inner: Conn,
    reset: Arc<AtomicBool>,
    heads: raw_head::HeadRecorder,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = socket2::SockRef::from(self.inner.tcp()).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.heads.feed(&buf.filled()[before..]);
        }
        polled
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
    if role == Role::Control {
        return Outcome::Reply(plain(
            StatusCode::NOT_FOUND,
            "not found (control listener: /api/_sim/ only)\n",
        ));
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
        (Role::Fe, [db, table, "_schema"]) if method == Method::GET => {
            Outcome::Reply(fe_schema(&ctx, &req, db, table, peer))
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
