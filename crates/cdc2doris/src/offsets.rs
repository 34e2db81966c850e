//! Per-partition commit watermarks: only offsets whose batches Doris acknowledged may be committed.
