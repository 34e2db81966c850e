//! Apache Doris Stream Load sink.

pub mod config;
