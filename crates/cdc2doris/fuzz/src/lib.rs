//! What every fuzz target does with one input: decode it, extract keys three ways, and check what must hold —
//! including that the Debezium fast path agrees with the serde decoder.
//!
//! An input is a message value, optionally followed by a NUL byte and the Kafka message key. Its first byte picks
//! the key rule, so that composite keys and keys that exist only in the message key are reached too.

use cdc2doris::decode::{debezium, decode, Decoded, Format, MessageContext};
use cdc2doris::keys::{exact_tuples, KeyRule, KeyType};

const RULES: [&[&str]; 4] = [
    &["id"],
    &["id", "job_id"],
    &["d_w_id", "d_id"],
    &["entry_no"],
];

/// Runs one input through `format`; panics only when an invariant is broken.
pub fn check(format: Format, data: &[u8]) {
    let (value, key) = match data.iter().position(|&b| b == 0) {
        Some(at) => (data.get(..at).unwrap_or_default(), data.get(at + 1..)),
        None => (data, None),
    };
    let fields = RULES[usize::from(data.first().copied().unwrap_or(0)) % RULES.len()];
    let ctx = MessageContext::new("srv.public.jobs", 0, 1);
    // The Debezium fast path decodes only what serde decodes, and the same way.
    if let Ok(text) = std::str::from_utf8(value) {
        if let Some(fast) = debezium::decode_fast(text) {
            let slow = debezium::decode_with_serde(&ctx, text);
            assert_eq!(Ok(fast), slow.map_err(|e| e.to_string()), "{text}");
        }
    }
    let Ok(decoded) = decode(format, &ctx, key, Some(value)) else {
        return;
    };
    if format == Format::Auto {
        // Detection then decoding must agree with decoding in the detected format.
        let again =
            decode(decoded.format(), &ctx, key, Some(value)).expect("the detected format decodes");
        assert_eq!(summary(&again), summary(&decoded));
    } else if !value.trim_ascii().is_empty() && value != b"null" {
        assert_eq!(decoded.format(), format);
    }
    for key_type in [KeyType::Integer, KeyType::String] {
        let rule = KeyRule::new(fields.iter().copied(), key_type).expect("valid rule");
        let _ = rule.extract(&decoded, key, &ctx);
    }
    if let Ok(tuples) = exact_tuples(fields, &decoded, key, &ctx) {
        for tuple in tuples {
            assert_eq!(tuple.len(), fields.len());
            for token in tuple {
                // Valid JSON grammar (serde_json's Value would also refuse numbers beyond f64, which are kept).
                let raw: &serde_json::value::RawValue =
                    serde_json::from_str(token).expect("a key token is JSON");
                assert_eq!(raw.get(), token);
                assert!(
                    matches!(token.as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9')),
                    "key token {token}"
                );
                let placeholder = format!("\"{}\"", cdc2doris::keys::TOAST_PLACEHOLDER);
                assert_ne!(token, placeholder);
            }
        }
    }
    let _ = cdc2doris::inspect::describe(
        format,
        "srv.public.jobs",
        Some(&["id".to_owned()]),
        value,
        key,
    );
}

fn summary(decoded: &Decoded<'_>) -> String {
    match decoded {
        Decoded::Change(c) => format!(
            "{:?} {:?} {:?} {}",
            c.format,
            c.table,
            c.op,
            c.rows.as_slice().len()
        ),
        Decoded::Ignore(i) => format!("{:?} {:?} {:?}", i.format, i.table, i.reason),
    }
}
