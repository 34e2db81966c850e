//! The merge stage: re-read the merged rows of a set of keys from PostgreSQL, with the snapshot's version.
//!
//! The rows come out of PostgreSQL as JSON text (`to_jsonb(row)::text`, `json`/`jsonb` columns as their text) and
//! go to Doris unparsed
//! (tokio-postgres has no `numeric` decoder and would need a conversion per type; PostgreSQL's own JSON keeps every
//! digit of a numeric and renders timestamps itself).
//! [`resolve`] runs the resolve queries that map a change of another table to keys of the merged table.
//! [`visibility`] holds a batch back until PostgreSQL shows every transaction its events come from.
//! [`config`] is the `[postgres]` section, [`pool`] the connection pool built from it, and [`tls`] the TLS connector of the PostgreSQL connections (`postgres.tls_mode`, `postgres.tls_ca_file`).

pub mod config;
pub mod pool;
pub mod postgres;
pub mod resolve;
pub mod tls;
pub mod visibility;

pub use postgres::{MergeChunk, MergeError, MergeKeys, MergeQuery};
