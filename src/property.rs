//! The configuration of the crate's own property tests: the same case count as the
//! integration tests' (`tests/common`), so that `PROPTEST_CASES` and its default of 1,000 mean
//! the same everywhere (proptest's own default, used otherwise, is 256).

/// Cases per property: `PROPTEST_CASES` when set, else 1,000 (CI's floor).
pub(crate) fn config() -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    proptest::prelude::ProptestConfig::with_cases(cases)
}
