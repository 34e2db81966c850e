//! Sources: where change events come from.

pub mod kafka;
