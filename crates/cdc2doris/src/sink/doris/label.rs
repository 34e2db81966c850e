//! Stream Load labels: the idempotency key of a load.
//!
//! Doris loads a label at most once: a second load under a committed label answers `Label Already Exists`
//! (docs/doris-stream-load.md), and the sink then takes the load as done without sending it. So a label must name
//! **what the load carries**, not only where it came from: were it built from the Kafka offsets alone, a replay whose
//! body differs (the merge re-run on newer data; the halves of a split batch after a crash; a topic deleted and
//! created again, whose offsets start over) would be skipped as "already loaded" while its offsets get committed —
//! a change lost without a word.
//!
//! A label is therefore `{prefix}:{summary}:{hash}`: the hash is the first 40 hex digits (160 bits) of SHA-256 over
//! an unambiguous encoding of the target table, the offset ranges (sorted) and the body. A retry of the very same load
//! (same ranges, same bytes) — in this process or after a restart that happens to read the same snapshot — carries
//! the same label and is loaded once; any other content gets another label. Loading a body twice under two labels is
//! harmless: rows carry their snapshot version in the sequence column and Doris keeps the newest per key.
//! The summary (`{table}_p{partition}_{first}` of the first range, sanitised) is for humans only. Doris accepts
//! `^[-_A-Za-z0-9:]{1,128}$` (FE `label_regex_length`).

use sha2::{Digest, Sha256};

use crate::sink::OffsetRange;

/// Longest label Doris accepts.
pub const MAX_LABEL_LEN: usize = 128;
/// Longest configurable prefix, leaving room for the rest of a label.
pub const MAX_PREFIX_LEN: usize = 32;
/// Hex digits of SHA-256 kept in a label (160 bits).
const HASH_HEX_LEN: usize = 40;

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_label_char)
}

/// Whether `prefix` may start labels: 1–32 characters of `[-_A-Za-z0-9]` (no `:`, which separates fields).
pub fn is_valid_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_PREFIX_LEN && is_plain_name(prefix)
}

/// Whether Doris accepts `label`: `^[-_A-Za-z0-9:]{1,128}$`.
pub fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label.chars().all(|c| is_label_char(c) || c == ':')
}

/// Where loads go and how their labels start: built once from `[doris]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelScope {
    prefix: String,
    database: String,
    table: String,
}

impl LabelScope {
    /// Labels for loads into `database`.`table` starting with `prefix` (which should satisfy [`is_valid_prefix`],
    /// as the configuration checks; any other character is replaced).
    pub fn new(prefix: &str, database: &str, table: &str) -> LabelScope {
        LabelScope {
            prefix: sanitize(prefix, MAX_PREFIX_LEN),
            database: database.to_string(),
            table: table.to_string(),
        }
    }

    /// The label of a load of `body` covering `ranges` (their order does not matter).
    pub fn label(&self, ranges: &[OffsetRange], body: &[u8]) -> Label {
        let mut sorted: Vec<&OffsetRange> = ranges.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut hasher = Sha256::new();
        // Length-prefixed fields: no two different inputs encode the same way.
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(self.prefix.as_bytes());
        field(self.database.as_bytes());
        field(self.table.as_bytes());
        field(&(sorted.len() as u64).to_be_bytes());
        for r in &sorted {
            field(r.tp.topic.as_bytes());
            field(&r.tp.partition.to_be_bytes());
            field(&r.first.to_be_bytes());
            field(&r.last.to_be_bytes());
        }
        field(body);
        let digest = hasher.finalize();
        let hash: String = digest
            .iter()
            .flat_map(|b| [b >> 4, b & 0x0f])
            .take(HASH_HEX_LEN)
            .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
            .collect();
        let summary = match sorted.first() {
            Some(r) => format!("{}_p{}_{}", self.table, r.tp.partition, r.first),
            None => self.table.clone(),
        };
        let room = MAX_LABEL_LEN - self.prefix.len() - HASH_HEX_LEN - 2;
        let summary = sanitize(&summary, room);
        Label(format!("{}:{summary}:{hash}", self.prefix))
    }
}

/// A Stream Load label, valid for Doris (see the module doc); built once per load by [`LabelScope::label`] and
/// carried with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    /// The label's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keeps label characters, replaces others by `_`, cuts to `max` characters; never empty.
fn sanitize(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .map(|c| if is_label_char(c) { c } else { '_' })
        .take(max)
        .collect();
    if out.is_empty() {
        "_".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(topic: &str, partition: i32, first: i64, last: i64) -> OffsetRange {
        OffsetRange {
            tp: crate::offsets::TopicPartition::new(topic, partition),
            first,
            last,
        }
    }

    fn scope() -> LabelScope {
        LabelScope::new("cdc2doris", "job_analytics", "merged_job_data")
    }

    #[test]
    fn a_label_names_table_first_range_and_content() {
        let label = scope().label(&[range("jobs", 3, 100, 199)], b"{\"id\":1}\n");
        let fields: Vec<&str> = label.as_str().split(':').collect();
        assert_eq!(fields.len(), 3, "{label}");
        assert_eq!(fields[0], "cdc2doris");
        assert_eq!(fields[1], "merged_job_data_p3_100");
        assert_eq!(fields[2].len(), HASH_HEX_LEN);
        assert!(is_valid_label(label.as_str()));
    }

    #[test]
    fn the_same_offsets_with_other_content_get_another_label() {
        let ranges = [range("jobs", 0, 0, 9)];
        let a = scope().label(&ranges, b"{\"id\":1,\"status\":\"open\"}\n");
        let b = scope().label(&ranges, b"{\"id\":1,\"status\":\"closed\"}\n");
        assert_ne!(a, b);
        assert_eq!(
            a,
            scope().label(&ranges, b"{\"id\":1,\"status\":\"open\"}\n")
        );
    }

    #[test]
    fn range_order_does_not_matter() {
        let a = [range("jobs", 0, 1, 2), range("clients", 1, 7, 9)];
        let b = [a[1].clone(), a[0].clone()];
        assert_eq!(scope().label(&a, b"x"), scope().label(&b, b"x"));
    }

    #[test]
    fn prefix_rules() {
        assert!(is_valid_prefix("cdc2doris"));
        assert!(is_valid_prefix("a-b_C9"));
        assert!(!is_valid_prefix(""));
        assert!(!is_valid_prefix("a:b"));
        assert!(!is_valid_prefix("a.b"));
        assert!(!is_valid_prefix(&"x".repeat(33)));
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{1,12}",
            "[a-zA-Z0-9._-]{1,40}",
            "[a-z]{1,10}\\.[a-z]{1,10}",
            "\\PC{1,60}",
        ]
    }

    fn ranges() -> impl Strategy<Value = Vec<OffsetRange>> {
        prop::collection::vec(
            (name(), 0i32..64, 0i64..i64::MAX / 2, 0i64..1_000_000).prop_map(
                |(topic, partition, first, len)| range(&topic, partition, first, first + len),
            ),
            0..6,
        )
    }

    proptest! {
        #[test]
        fn labels_are_valid_and_deterministic(
            prefix in "[-_A-Za-z0-9]{1,32}", db in name(), table in name(), rs in ranges(),
            body in prop::collection::vec(any::<u8>(), 0..64)
        ) {
            let s = LabelScope::new(&prefix, &db, &table);
            let label = s.label(&rs, &body);
            prop_assert!(is_valid_label(label.as_str()), "{}", label);
            prop_assert_eq!(&label, &s.label(&rs, &body));
            let start = format!("{}:", prefix);
            prop_assert!(label.as_str().starts_with(&start));
        }

        #[test]
        fn distinct_loads_get_distinct_labels(
            db in name(), table in name(), rs in ranges(), other in ranges(),
            body in prop::collection::vec(any::<u8>(), 0..64), flip in any::<u8>(), at in any::<usize>()
        ) {
            let s = LabelScope::new("cdc", &db, &table);
            let base = s.label(&rs, &body);
            // Other ranges...
            let mut a = rs.clone(); a.sort(); a.dedup();
            let mut b = other.clone(); b.sort(); b.dedup();
            if a != b {
                prop_assert_ne!(&base, &s.label(&other, &body));
            }
            // ...another body...
            let mut changed = body.clone();
            if changed.is_empty() { changed.push(flip); } else {
                let i = at % changed.len();
                changed[i] ^= flip.max(1);
            }
            prop_assert_ne!(&base, &s.label(&rs, &changed));
            // ...another table.
            prop_assert_ne!(&base, &LabelScope::new("cdc", &db, &format!("{table}x")).label(&rs, &body));
        }
    }

    #[test]
    fn names_that_would_collide_when_joined_stay_distinct() {
        let r = [range("t", 0, 1, 2)];
        assert_ne!(
            LabelScope::new("p", "a_b", "c").label(&r, b"x"),
            LabelScope::new("p", "a", "b_c").label(&r, b"x")
        );
        // A topic that differs only by '.' vs '_' (Kafka's own collision) is distinct too.
        let s = LabelScope::new("p", "d", "t");
        assert_ne!(
            s.label(&[range("a.b", 0, 1, 2)], b"x"),
            s.label(&[range("a_b", 0, 1, 2)], b"x")
        );
    }
}
