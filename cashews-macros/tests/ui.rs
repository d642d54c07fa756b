//! Compile errors of the attribute macros, as users see them (trybuild snapshots in
//! `tests/ui`; regenerate with `TRYBUILD=overwrite` after a deliberate wording change).
//!
//! The cases live in the macro crate, whose dev-dependency on `cashews` has the `macros`
//! feature only: trybuild builds the cases against that (one build for every case), not
//! against every optional backend, so a cold run compiles a fraction of the workspace.

#[test]
fn macro_misuse_gives_errors_that_name_the_fix() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
