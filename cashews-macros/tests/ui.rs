//! Compile errors of the attribute macros, as users see them (trybuild snapshots in
//! `tests/ui`; regenerate with `TRYBUILD=overwrite` after a deliberate wording change), and in
//! `tests/ui-pass` uses that must compile (the attributes on axum handlers).
//!
//! The cases live in the macro crate, whose dev-dependency on `cashews` has the `macros` and
//! `axum` features only: trybuild builds the cases against that (one build for every case), not
//! against every optional backend, so a cold run compiles a fraction of the workspace.

#[test]
fn macro_misuse_gives_errors_that_name_the_fix() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    // Uses that must compile (and run): the attributes on axum handlers.
    cases.pass("tests/ui-pass/*.rs");
}
