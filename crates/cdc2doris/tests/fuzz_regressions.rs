//! Every input the fuzz targets ever crashed on (`fuzz/regressions/<target>/`), replayed through the fuzz targets'
//! own checks (`fuzz/src/lib.rs`, compiled in here): decoding and key extraction must not panic, a key is a number or
//! a string and never the TOAST placeholder, `auto` agrees with the detected format, and the Debezium fast path
//! decodes only what serde decodes, the same way.

use std::path::Path;

use cdc2doris::decode::Format;

// The fuzz targets' own checks, shared as a source file (the fuzz crate lives outside the workspace).
#[path = "../fuzz/src/lib.rs"]
mod fuzz_check;

use fuzz_check::check;

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
