//! What the bench targets share: the sizes a run covers and how a size is named.

/// Sizes to run, from `FAILBACK_BENCH_SIZES` (a comma-separated list, `10000,100000`) or the
/// documented defaults: a listed size runs only if it is one of the defaults, so every figure
/// printed is one BENCHMARKS.md documents.
pub fn sizes(defaults: &[usize]) -> Vec<usize> {
    match std::env::var("FAILBACK_BENCH_SIZES") {
        Ok(list) => {
            let allowed: Vec<usize> = list
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            defaults
                .iter()
                .copied()
                .filter(|n| allowed.contains(n))
                .collect()
        }
        Err(_) => defaults.to_vec(),
    }
}

/// A size as the bench names it: `10k`, `1M`.
pub fn label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The tests' seeded generator (SplitMix64), so benches and tests draw alike.
#[path = "../../tests/support/rng.rs"]
pub mod rng;
pub mod workload;
