//! Every input the fuzz targets ever crashed on (`fuzz/regressions/<target>/`), replayed with the same checks as
//! `fuzz/src/lib.rs`: decoding and key extraction must not panic, a key is a number or a string, and the Debezium
//! fast path decodes only what serde decodes, the same way.

use std::path::Path;

use cdc2doris::decode::{debezium, decode, Format, MessageContext};
use cdc2doris::keys::{exact_tuples, KeyRule, KeyType};

const RULES: [&[&str]; 4] = [
    &["id"],
    &["id", "job_id"],
    &["d_w_id", "d_id"],
    &["entry_no"],
];

fn check(format: Format, data: &[u8]) {
    let (value, key) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let fields = RULES[usize::from(data.first().copied().unwrap_or(0)) % RULES.len()];
    let ctx = MessageContext::new("srv.public.jobs", 0, 1);
    if let Ok(text) = std::str::from_utf8(value) {
        if let Some(fast) = debezium::decode_fast(text) {
            let slow = debezium::decode_with_serde(&ctx, text);
            assert_eq!(Ok(fast), slow.map_err(|e| e.to_string()), "{text}");
        }
    }
    let Ok(decoded) = decode(format, &ctx, key, Some(value)) else {
        return;
    };
    for key_type in [KeyType::Integer, KeyType::String] {
        let _ = KeyRule::new(fields.iter().copied(), key_type)
            .unwrap()
            .extract(&decoded, key, &ctx);
    }
    if let Ok(tuples) = exact_tuples(fields, &decoded, key, &ctx) {
        for token in tuples.into_iter().flatten() {
            assert!(
                matches!(token.as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9')),
                "key token {token}"
            );
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

#[test]
fn crash_inputs_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (target, format) in [
        ("debezium", Format::Debezium),
        ("debezium_unwrapped", Format::DebeziumUnwrapped),
        ("maxwell", Format::Maxwell),
        ("canal", Format::Canal),
        ("auto", Format::Auto),
    ] {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            check(format, &std::fs::read(&path).unwrap());
            check(Format::Auto, &std::fs::read(&path).unwrap());
            replayed += 1;
        }
    }
    assert!(
        replayed >= 2,
        "the regression inputs are missing from {}",
        dir.display()
    );
}
