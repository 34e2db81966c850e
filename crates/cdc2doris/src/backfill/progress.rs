//! The progress line a backfill redraws on a terminal.

use std::time::Duration;

/// `backfill: 120000/1000000 keys (12%), 20345 keys/s, ETA 43s`.
pub(super) fn progress_line(keys: u64, total: Option<u64>, per_second: f64) -> String {
    match total.filter(|t| *t > 0) {
        Some(total) => {
            let left = total.saturating_sub(keys) as f64 / per_second.max(1e-3);
            format!(
                "backfill: {keys}/{total} keys ({}%), {} keys/s, ETA {}   ",
                keys.saturating_mul(100) / total,
                per_second.round(),
                humantime::format_duration(Duration::from_secs(left.round() as u64))
            )
        }
        None => format!("backfill: {keys} keys, {} keys/s   ", per_second.round()),
    }
}
