//! Which Doris release the sim behaves like (`--doris-version`). Only load behaviours that changed between releases
//! and that are confirmed from Doris's own sources are switched here; everything else is the same in every profile.
//!
//! | Behaviour | 2.1, 3.0 | 3.1 | 4.0 |
//! |---|---|---|---|
//! | JSON with neither `read_json_by_line` nor `strip_outer_array` | one sequence of documents | read line by line | line by line |
//! | non-strict load: number out of the column's range | row filtered | filtered | NULL |
//! | non-strict load: string longer than CHAR/VARCHAR(n) | row filtered | filtered | cut to n bytes |
//! | `NumberLoadedRows` of a load failed for too many filtered rows | rows that would have loaded | same | 0 |
//!
//! Sources (github.com/apache/doris):
//! - JSON line by line by default: `be/src/http/action/stream_load.cpp` (`_process_put`: with both headers empty,
//!   `read_json_by_line` is set and `strip_outer_array` cleared), PR #55861, on branch-3.1 as 659a502a; asserted by
//!   `regression-test/suites/load_p0/stream_load/test_json_load_default_behavior.groovy` @ 139fddd2 (case 2).
//! - Out-of-range → NULL, too long → cut, `NumberLoadedRows` 0: `regression-test/suites/load_p0/stream_load/
//!   test_stream_load_strict_mode_and_filter_ratio.groovy` @ 8b5f7f81 with its `.out` @ 861b7102 (sections
//!   `sql_number_overflow_non_strict`, `sql_string_exceed_len_non_strict0`; every failed case asserts
//!   `NumberLoadedRows` 0). The older behaviour: `test_stream_load.groovy` @ 17e3a183 asserts the would-be count on
//!   failure. That older releases filter out-of-range and over-long values outside strict mode is the sim's earlier
//!   behaviour, not confirmed against a 2.1–3.1 BE; which 4.x release first behaves the new way is not confirmed
//!   either (the profile says 4.0).

use std::fmt;
use std::str::FromStr;

/// A Doris release line. Ordered: a later release compares greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum DorisVersion {
    V2_1,
    V3_0,
    V3_1,
    /// The newest profile, the default.
    #[default]
    V4_0,
}

impl DorisVersion {
    pub const ALL: [DorisVersion; 4] = [Self::V2_1, Self::V3_0, Self::V3_1, Self::V4_0];

    /// JSON without `read_json_by_line` and `strip_outer_array` is read line by line.
    pub fn json_by_line_by_default(self) -> bool {
        self >= Self::V3_1
    }

    /// Outside strict mode an out-of-range number becomes NULL and an over-long string is cut to the column's
    /// length, instead of filtering the row.
    pub fn lenient_non_strict_casts(self) -> bool {
        self >= Self::V4_0
    }

    /// A load that fails for too many filtered rows reports `NumberLoadedRows` 0.
    pub fn failed_load_reports_zero_loaded(self) -> bool {
        self >= Self::V4_0
    }
}

impl fmt::Display for DorisVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V2_1 => "2.1",
            Self::V3_0 => "3.0",
            Self::V3_1 => "3.1",
            Self::V4_0 => "4.0",
        })
    }
}

/// An unknown `--doris-version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Doris version {0:?}: use 2.1, 3.0, 3.1 or 4.0 (a patch level like 3.0.7 is accepted)"
)]
pub struct UnknownVersion(pub String);

impl FromStr for DorisVersion {
    type Err = UnknownVersion;

    /// `2.1`, `3.0`, `3.1`, `4.0`, optionally with a patch level (`3.0.7`) or a leading `v`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let mut parts = t.split('.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next().unwrap_or_default();
        let patch_ok = parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        match (major, minor, patch_ok) {
            ("2", "1", true) => Ok(Self::V2_1),
            ("3", "0", true) => Ok(Self::V3_0),
            ("3", "1", true) => Ok(Self::V3_1),
            ("4", "0", true) => Ok(Self::V4_0),
            _ => Err(UnknownVersion(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_lines_and_patch_levels() {
        for v in DorisVersion::ALL {
            assert_eq!(v.to_string().parse::<DorisVersion>(), Ok(v));
        }
        assert_eq!("3.0.7".parse::<DorisVersion>(), Ok(DorisVersion::V3_0));
        assert_eq!("v2.1".parse::<DorisVersion>(), Ok(DorisVersion::V2_1));
        for bad in ["", "3", "1.2", "3.2", "4.0.", "4.0.x", "latest"] {
            assert!(bad.parse::<DorisVersion>().is_err(), "{bad}");
        }
        assert_eq!(DorisVersion::default(), DorisVersion::V4_0);
    }
}
