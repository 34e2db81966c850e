//! Apache Doris Stream Load sink. "spec §N" in this module and below is section N of `docs/doris-stream-load.md`.
//!
//! Read in this order:
//! - [`label`]: the idempotency key of a load, derived from its table, offset ranges and body;
//! - [`client`]: [`DorisSink`], one Stream Load per body of rows, retried under the same label until Doris says it is
//!   committed, permanently refused, or the deadline passes;
//! - [`redirect`]: the hand-made FE → BE redirect and who may receive the credentials;
//! - [`response`]: Doris' JSON answers and their classification;
//! - [`tls`]: HTTPS: the trusted CAs (`doris.tls_ca_file`) and what a refused certificate means;
//! - [`config`]: the `[doris]` configuration section.

pub mod client;
pub mod config;
pub mod label;
pub mod redirect;
pub mod response;
pub mod tls;

pub use client::{BuildError, DorisSink, Trial, DELETE_SIGN_COLUMN};
pub use config::{DorisConfig, GroupCommitMode};
pub use label::{Label, LabelScope};
