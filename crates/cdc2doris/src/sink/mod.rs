//! Sinks: where merged rows are loaded.

pub mod doris;
