//! What the macros reject at compile time, with the compiler's messages checked in
//! (`tests/ui/*.stderr`). After a deliberate change of a message, regenerate them with
//! `TRYBUILD=overwrite cargo test --test macros_ui` and review the diff.

#[test]
fn rejected_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
