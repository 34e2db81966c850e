//! The FE query port (Doris `query_port`, 9030): the MySQL protocol, through `opensrv-mysql`, which does the
//! handshake and the packet encoding. This module checks the password (`mysql_native_password`, the same user and
//! password as the HTTP side) and hands each statement to `sql.rs`.
//!
//! Only the text protocol is served: a prepared statement is refused with an error (clients then fall back or say
//! why), as are TLS requests (not advertised).

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ErrorKind, InitWriter, IntermediaryOptions,
    OkResponse, ParamParser, QueryResultWriter, StatementMetaWriter,
};
use sha1::{Digest, Sha1};
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::State;

pub mod sql;

use sql::{Reply, Session};

/// What every connection shares.
pub struct QueryCtx {
    pub state: Arc<State>,
    pub user: String,
    pub password: String,
}

/// Accepts connections until `cancel` fires; each runs in its own task (a panic ends that connection only).
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<QueryCtx>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    static CONNECTIONS: AtomicU32 = AtomicU32::new(1);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "doris-sim query port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shim = Shim {
            ctx: ctx.clone(),
            salt: new_salt(),
            session: Session {
                db: None,
                user: String::new(),
                connection_id: CONNECTIONS.fetch_add(1, Ordering::Relaxed),
                show_hidden_columns: false,
            },
        };
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let (r, w) = stream.into_split();
            let opts = IntermediaryOptions {
                process_use_statement_on_query: true,
                reject_connection_on_dbname_absence: false,
            };
            tokio::select! {
                res = AsyncMysqlIntermediary::run_with_options(shim, r, w, &opts) => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "doris-sim query port: connection ended");
                    }
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// 20 printable bytes, fresh per connection (the scramble of mysql_native_password).
fn new_salt() -> [u8; 20] {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let mut salt = [0u8; 20];
    for (out, byte) in salt.iter_mut().zip(a.as_bytes().iter().chain(b.as_bytes())) {
        // 0x21..=0x7e, skipping '$' which some clients treat specially.
        let c = 0x21 + byte % 94;
        *out = if c == b'$' { b'%' } else { c };
    }
    salt
}

/// `mysql_native_password`: the client sends SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))), or nothing for
/// an empty password (MySQL manual, "Native Pluggable Authentication").
pub fn native_password_matches(password: &str, salt: &[u8], response: &[u8]) -> bool {
    if password.is_empty() {
        return response.is_empty();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(salt);
    h.update(stage2);
    let mix = h.finalize();
    let expected: Vec<u8> = stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
    expected == response
}

struct Shim {
    ctx: Arc<QueryCtx>,
    salt: [u8; 20],
    session: Session,
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Shim {
    type Error = io::Error;

    fn version(&self) -> String {
        sql::SERVER_VERSION.to_owned()
    }

    fn connect_id(&self) -> u32 {
        self.session.connection_id
    }

    fn salt(&self) -> [u8; 20] {
        self.salt
    }

    async fn authenticate(
        &self,
        _auth_plugin: &str,
        username: &[u8],
        salt: &[u8],
        auth_data: &[u8],
    ) -> bool {
        let user = String::from_utf8_lossy(username);
        // `user@cluster` is `user`, as on the HTTP side.
        let name = user.split_once('@').map_or(user.as_ref(), |(u, _)| u);
        name == self.ctx.user && native_password_matches(&self.ctx.password, salt, auth_data)
    }

    async fn on_prepare<'a>(
        &'a mut self,
        query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(
            ErrorKind::ER_NOT_SUPPORTED_YET,
            format!(
                "doris-sim does not support prepared statements (send the statement as text): {}",
                query.trim()
            )
            .as_bytes(),
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results
            .error(
                ErrorKind::ER_UNKNOWN_STMT_HANDLER,
                b"doris-sim does not support prepared statements",
            )
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_init<'a>(&'a mut self, db: &'a str, writer: InitWriter<'a, W>) -> io::Result<()> {
        match sql::use_db(&self.ctx.state, &mut self.session, db) {
            Ok(()) => writer.ok().await,
            Err(e) => writer.error(e.kind, e.msg.as_bytes()).await,
        }
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        if self.session.user.is_empty() {
            self.session.user = self.ctx.user.clone();
        }
        let reply = sql::execute(&self.ctx.state, &mut self.session, query);
        match reply {
            Reply::Ok { affected, info } => {
                results
                    .completed(OkResponse {
                        affected_rows: affected,
                        info,
                        ..Default::default()
                    })
                    .await
            }
            Reply::Err(e) => {
                tracing::debug!(query, error = %e.msg, "doris-sim query port: statement refused");
                results.error(e.kind, e.msg.as_bytes()).await
            }
            Reply::Rows { columns, rows } => {
                let cols: Vec<Column> = columns
                    .into_iter()
                    .map(|c| Column {
                        table: c.table,
                        column: c.name,
                        coltype: c.ty,
                        colflags: c.flags,
                    })
                    .collect();
                let mut w = results.start(&cols).await?;
                for row in &rows {
                    for cell in row {
                        w.write_col(cell.as_deref())?;
                    }
                    w.end_row().await?;
                }
                w.finish().await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_scramble() {
        // The client side of the exchange, computed independently: SHA1(pw) XOR SHA1(salt || SHA1(SHA1(pw))).
        let salt = b"abcdefghijklmnopqrst";
        let p1 = Sha1::digest(b"secret");
        let p2 = Sha1::digest(p1);
        let mut h = Sha1::new();
        h.update(salt);
        h.update(p2);
        let token: Vec<u8> = p1.iter().zip(h.finalize()).map(|(a, b)| a ^ b).collect();
        assert!(native_password_matches("secret", salt, &token));
        assert!(!native_password_matches("secreT", salt, &token));
        assert!(!native_password_matches(
            "secret",
            b"tsrqponmlkjihgfedcba",
            &token
        ));
        assert!(native_password_matches("", salt, b""));
        assert!(!native_password_matches("", salt, &token));
        assert!(!native_password_matches("secret", salt, b""));
    }
}
