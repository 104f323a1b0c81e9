//! States as tests compare and carry them: a state's bytes, two states compared by them, and
//! a delta carried as an event.

use failback::{Event, EventId, Registry};
use proptest::test_runner::TestCaseError;

/// The event `id` carrying `delta`, which a writer made (or `delta_since` did): such a delta is
/// always an event.
pub fn event(id: impl Into<String>, delta: Registry) -> Event {
    Event::new(EventId::new(id), delta).expect("a writer's or a sync's delta is an event")
}

/// `serde_json` text of a registry: what "byte-identical" compares.
pub fn bytes(registry: &Registry) -> String {
    serde_json::to_string(registry).expect("a registry serializes")
}

/// Fails unless both registries serialize to the same bytes; the message shows where the
/// pretty-printed forms first part.
pub fn same_bytes(left: &Registry, right: &Registry) -> Result<(), TestCaseError> {
    if bytes(left) == bytes(right) {
        return Ok(());
    }
    let pretty = |r: &Registry| serde_json::to_string_pretty(r).expect("a registry serializes");
    let (l, r) = (pretty(left), pretty(right));
    let (l, r): (Vec<&str>, Vec<&str>) = (l.lines().collect(), r.lines().collect());
    let at = l
        .iter()
        .zip(&r)
        .position(|(a, b)| a != b)
        .unwrap_or(l.len().min(r.len()));
    let from = at.saturating_sub(12);
    let window =
        |lines: &[&str]| lines[from.min(lines.len())..(at + 8).min(lines.len())].join("\n");
    Err(TestCaseError::fail(format!(
        "states differ at line {at}\n--- left\n{}\n--- right\n{}",
        window(&l),
        window(&r)
    )))
}
