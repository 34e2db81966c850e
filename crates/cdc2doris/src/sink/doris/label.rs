//! Stream Load labels: the idempotency key of a batch.
//!
//! A label is derived only from what the batch covers (target table and Kafka offset ranges), so every retry of a
//! batch — in this process or after a restart — carries the same label, and Doris loads it at most once
//! (spec §5: a committed label answers `Label Already Exists`). Doris accepts `^[-_A-Za-z0-9:]{1,128}$`
//! (FE `label_regex_length`).
//!
//! Two shapes, told apart by their number of `:`-separated fields:
//! - readable, when every name is made of `[-_A-Za-z0-9]` and the result fits in 128 characters:
//!   `{prefix}:{db}:{table}` followed by `:{topic}:{partition}:{first}-{last}` per range (at least 6 fields);
//! - hashed otherwise: `{prefix}:{summary}:{sha256}` (exactly 3 fields), where the summary is a sanitised,
//!   truncated `{table}_p{partition}_{first}` for humans and the 40-hex-digit SHA-256 prefix of an unambiguous
//!   encoding of all inputs keeps distinct batches distinct.

use sha2::{Digest, Sha256};

use crate::sink::OffsetRange;

/// Longest label Doris accepts.
pub const MAX_LABEL_LEN: usize = 128;
/// Longest configurable prefix, leaving room for the rest of a hashed label.
pub const MAX_PREFIX_LEN: usize = 32;
/// Hex digits of SHA-256 kept in a hashed label (160 bits).
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

/// The label of a batch loading `ranges` into `db`.`table`: deterministic, valid for Doris, identical for the same
/// batch (range order does not matter) and distinct for distinct batches.
///
/// `prefix` should satisfy [`is_valid_prefix`] (the configuration checks it); any other character is replaced.
pub fn build_label(prefix: &str, db: &str, table: &str, ranges: &[OffsetRange]) -> String {
    let prefix = sanitize(prefix, MAX_PREFIX_LEN);
    let mut sorted: Vec<&OffsetRange> = ranges.iter().collect();
    sorted.sort();
    sorted.dedup();

    if let Some(label) = readable_label(&prefix, db, table, &sorted) {
        return label;
    }
    hashed_label(&prefix, db, table, &sorted)
}

/// The label of one part of a batch: `label:suffix` when it fits, else the batch label's prefix and a hash
/// of both. Deterministic, valid, and distinct from the batch's own label and from other suffixes.
pub fn label_with_suffix(label: &str, suffix: &str) -> String {
    let suffix = sanitize(suffix, 32);
    let joined = format!("{label}:{suffix}");
    if joined.len() <= MAX_LABEL_LEN {
        return joined;
    }
    let digest = Sha256::digest(joined.as_bytes());
    let hash: String = digest
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .take(HASH_HEX_LEN)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect();
    let prefix = sanitize(
        label.split(':').next().unwrap_or("cdc2doris"),
        MAX_PREFIX_LEN,
    );
    format!("{prefix}:part:{hash}")
}

fn readable_label(prefix: &str, db: &str, table: &str, ranges: &[&OffsetRange]) -> Option<String> {
    if ranges.is_empty()
        || !is_plain_name(db)
        || !is_plain_name(table)
        || !ranges.iter().all(|r| is_plain_name(&r.topic))
    {
        return None;
    }
    let mut label = format!("{prefix}:{db}:{table}");
    for r in ranges {
        label.push_str(&format!(
            ":{}:{}:{}-{}",
            r.topic, r.partition, r.first, r.last
        ));
        if label.len() > MAX_LABEL_LEN {
            return None;
        }
    }
    // Negative numbers would put a second '-' in the offset field; still unambiguous, and valid.
    is_valid_label(&label).then_some(label)
}

fn hashed_label(prefix: &str, db: &str, table: &str, ranges: &[&OffsetRange]) -> String {
    let mut hasher = Sha256::new();
    // Length-prefixed fields: no two different input lists encode the same way.
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(prefix.as_bytes());
    field(db.as_bytes());
    field(table.as_bytes());
    field(&(ranges.len() as u64).to_be_bytes());
    for r in ranges {
        field(r.topic.as_bytes());
        field(&r.partition.to_be_bytes());
        field(&r.first.to_be_bytes());
        field(&r.last.to_be_bytes());
    }
    let digest = hasher.finalize();
    let hash: String = digest
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .take(HASH_HEX_LEN)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect();

    let summary = match ranges.first() {
        Some(r) => format!("{table}_p{}_{}", r.partition, r.first),
        None => table.to_string(),
    };
    let room = MAX_LABEL_LEN - prefix.len() - HASH_HEX_LEN - 2;
    let summary = sanitize(&summary, room);
    format!("{prefix}:{summary}:{hash}")
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
            topic: topic.to_string(),
            partition,
            first,
            last,
        }
    }

    #[test]
    fn plain_names_give_a_readable_label() {
        let label = build_label(
            "cdc2doris",
            "job_analytics",
            "merged_job_data",
            &[range("jobs", 3, 100, 199)],
        );
        assert_eq!(
            label,
            "cdc2doris:job_analytics:merged_job_data:jobs:3:100-199"
        );
    }

    #[test]
    fn dotted_topics_and_long_batches_are_hashed() {
        let label = build_label(
            "cdc2doris",
            "job_analytics",
            "merged_job_data",
            &[range("dbserver1.public.jobs", 0, 5, 9)],
        );
        assert!(
            label.starts_with("cdc2doris:merged_job_data_p0_5:"),
            "{label}"
        );
        assert_eq!(label.split(':').count(), 3);
        assert!(is_valid_label(&label));

        let many: Vec<OffsetRange> = (0..20).map(|p| range("jobs", p, 0, 1_000_000)).collect();
        let label = build_label("cdc2doris", "job_analytics", "merged_job_data", &many);
        assert!(
            is_valid_label(&label) && label.split(':').count() == 3,
            "{label}"
        );
    }

    #[test]
    fn range_order_does_not_matter() {
        let a = [range("jobs", 0, 1, 2), range("clients", 1, 7, 9)];
        let b = [a[1].clone(), a[0].clone()];
        assert_eq!(
            build_label("p", "d", "t", &a),
            build_label("p", "d", "t", &b)
        );
    }

    #[test]
    fn suffixed_labels_are_valid_and_distinct() {
        let base = build_label("p", "db", "t", &[range("topic", 0, 1, 2)]);
        let a = label_with_suffix(&base, "b0");
        let b = label_with_suffix(&base, "b1");
        assert!(is_valid_label(&a) && is_valid_label(&b));
        assert_ne!(a, b);
        assert_ne!(a, base);
        assert_eq!(a, label_with_suffix(&base, "b0"));
        let long = "x".repeat(127);
        let h = label_with_suffix(&long, "b0");
        assert!(is_valid_label(&h), "{h}");
        assert_ne!(h, label_with_suffix(&long, "b1"));
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
            1..6,
        )
    }

    proptest! {
        #[test]
        fn labels_are_valid_and_deterministic(
            prefix in "[-_A-Za-z0-9]{1,32}", db in name(), table in name(), rs in ranges()
        ) {
            let label = build_label(&prefix, &db, &table, &rs);
            prop_assert!(is_valid_label(&label), "{}", label);
            prop_assert_eq!(&label, &build_label(&prefix, &db, &table, &rs));
            let start = format!("{}:", prefix);
            prop_assert!(label.starts_with(&start));
        }

        #[test]
        fn distinct_batches_get_distinct_labels(
            db in name(), table in name(), rs in ranges(), other in ranges(),
            bump in 1i64..1000, which in 0usize..6
        ) {
            let base = build_label("cdc", &db, &table, &rs);
            // A different range list...
            let mut a = rs.clone(); a.sort(); a.dedup();
            let mut b = other.clone(); b.sort(); b.dedup();
            if a != b {
                prop_assert_ne!(&base, &build_label("cdc", &db, &table, &other));
            }
            // ...one offset moved...
            let mut moved = rs.clone();
            let i = which % moved.len();
            moved[i].last += bump;
            let mut m = moved.clone(); m.sort(); m.dedup();
            if m != a {
                prop_assert_ne!(&base, &build_label("cdc", &db, &table, &moved));
            }
            // ...another table.
            prop_assert_ne!(&base, &build_label("cdc", &db, &format!("{table}x"), &rs));
        }
    }

    #[test]
    fn readable_and_hashed_shapes_never_collide_by_separator_tricks() {
        // Names that would collide if joined with '_' stay distinct.
        let a = build_label("p", "a_b", "c", &[range("t", 0, 1, 2)]);
        let b = build_label("p", "a", "b_c", &[range("t", 0, 1, 2)]);
        assert_ne!(a, b);
        // A topic that differs only by '.' vs '_' (Kafka's own collision) is distinct too.
        let a = build_label("p", "d", "t", &[range("a.b", 0, 1, 2)]);
        let b = build_label("p", "d", "t", &[range("a_b", 0, 1, 2)]);
        assert_ne!(a, b);
    }
}
