//! Sources: where change events come from.

pub mod config;
pub mod kafka;
