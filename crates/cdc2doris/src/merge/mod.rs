//! The merge stage: re-read the merged rows of a set of keys from PostgreSQL, with the snapshot's version.
//!
//! The rows come out of PostgreSQL as JSON text (`to_jsonb(row)::text`) and go to Doris unparsed
//! (research/rust-stack.md A2: per-type conversion in Rust is a trap for numerics and timestamps).

pub mod postgres;

pub use postgres::{MergeChunk, MergeError, MergeKeys, MergeQuery};
