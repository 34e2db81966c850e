//! cdc2doris keeps an Apache Doris table in sync with PostgreSQL, driven by Kafka CDC events.
//!
//! The modules follow the data path of one Kafka message to one Doris row:
//!
//! - [`decode`] turns a Kafka message (Debezium, Maxwell or Canal JSON) into a change event.
//! - [`keys`] takes the keys whose merged rows must be refreshed out of a change event.
//! - [`merge`] re-reads the merged rows of a chunk of keys from PostgreSQL, with the snapshot version.
//! - [`sink`] loads rows into Doris over HTTP Stream Load and returns a receipt.
//! - [`offsets`] decides, per partition, which Kafka offsets may be committed.
//! - [`config`] is the one TOML file that drives the service; [`secret`] reads passwords.
//! - [`inspect`] is the `cdc2doris inspect` command: what the service makes of one message.
//! - [`backfill`] is the `cdc2doris backfill` command: every key of a query or a file through the merge and load
//!   path of [`pipeline`], without Kafka (keyset pages, `--rate`, `--resume`).
//! - [`verify`] is the `cdc2doris verify` command: the Doris table compared with the merge query, and repaired.
//! - [`schema`] maps the merge query's columns to Doris types: `cdc2doris ddl`, and the schema checks of `check`.

pub mod admin;
pub mod backfill;
pub mod batch;
pub mod check;
pub mod config;
pub mod dead_letter;
pub mod decode;
pub mod error;
pub mod inspect;
pub mod keys;
pub mod merge;
pub mod offsets;
pub mod panic_report;
pub mod pipeline;
pub mod retry;
pub mod schema;
pub mod secret;
pub mod sink;
pub mod source;
pub mod validation;
pub mod verify;
