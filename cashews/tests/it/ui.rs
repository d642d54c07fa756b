//! Compile errors of the attribute macros, as users see them (trybuild snapshots in
//! `tests/ui`; regenerate with `TRYBUILD=overwrite` after a deliberate wording change).

#[test]
fn macro_misuse_gives_errors_that_name_the_fix() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
