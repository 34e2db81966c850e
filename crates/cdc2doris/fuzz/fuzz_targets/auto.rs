#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cdc2doris_fuzz::check(cdc2doris::decode::Format::Auto, data);
});
