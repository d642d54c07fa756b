//! Fuzz target `url`: see `cashews_testkit::fuzz::url` for the property it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cashews_testkit::fuzz::url(data));
