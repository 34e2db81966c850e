//! A tiny typed client of the sim-only endpoints (`/api/_sim/`), over plain HTTP/1.1 so the same test code can
//! drive a sim in this process or one started by `dev/stack`.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::state::FaultSpec;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("doris-sim at {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("doris-sim at {addr} answered HTTP {status}: {body}")]
    Status {
        addr: SocketAddr,
        status: u16,
        body: String,
    },
    #[error("doris-sim at {addr} sent an unparsable reply: {reason}")]
    Parse { addr: SocketAddr, reason: String },
}

#[derive(Debug, Clone)]
pub struct SimClient {
    addr: SocketAddr,
}

impl SimClient {
    /// A client of the FE (or BE) listener at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        SimClient { addr }
    }

    /// Visible rows of `db.table`, sorted by key, one JSON object per row.
    pub async fn rows(
        &self,
        db: &str,
        table: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ClientError> {
        let body = self
            .call("GET", &format!("/api/_sim/{db}/{table}/rows"), "")
            .await?;
        serde_json::from_str(&body).map_err(|e| self.parse_err(e))
    }

    /// Per-table loads, rows, versions and labels.
    pub async fn stats(&self) -> Result<serde_json::Value, ClientError> {
        let body = self.call("GET", "/api/_sim/stats", "").await?;
        serde_json::from_str(&body).map_err(|e| self.parse_err(e))
    }

    /// Queues faults for the next loads.
    pub async fn queue_faults(&self, faults: &[FaultSpec]) -> Result<(), ClientError> {
        let body = serde_json::to_string(faults).map_err(|e| self.parse_err(e))?;
        self.call("POST", "/api/_sim/faults", &body).await.map(drop)
    }

    pub async fn clear_faults(&self) -> Result<(), ClientError> {
        self.call("DELETE", "/api/_sim/faults", "").await.map(drop)
    }

    /// Drains all pending versions now (as if compaction caught up).
    pub async fn compact(&self) -> Result<(), ClientError> {
        self.call("POST", "/api/_sim/compact", "").await.map(drop)
    }

    /// Empties every table (rows, versions, labels; persisted with `--data-dir`), keeping the schema. Sim-only.
    pub async fn reset(&self) -> Result<(), ClientError> {
        self.call("POST", "/api/_sim/reset", "").await.map(drop)
    }

    fn parse_err(&self, e: serde_json::Error) -> ClientError {
        ClientError::Parse {
            addr: self.addr,
            reason: e.to_string(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> Result<String, ClientError> {
        let io = |source| ClientError::Io {
            addr: self.addr,
            source,
        };
        let mut s = TcpStream::connect(self.addr).await.map_err(io)?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(req.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.map_err(io)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| ClientError::Parse {
                addr: self.addr,
                reason: "no header terminator".into(),
            })?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ClientError::Parse {
                addr: self.addr,
                reason: format!("bad status line {:?}", head.lines().next()),
            })?;
        if status != 200 {
            return Err(ClientError::Status {
                addr: self.addr,
                status,
                body: body.to_string(),
            });
        }
        Ok(body.to_string())
    }
}
