//! Event ingest: duplicates are no-ops, any order with any duplicates converges to the
//! in-order result, a reused id with another payload and a reused dot are refused without
//! touching the registry. Includes the two histories `crdts` gets wrong (`delivery.rs` and
//! `refusals.rs`; see tests/differential.rs for `crdts` itself).
//!
//! One concept per module; the events of a history, their deliveries and the checks they
//! share are here.

mod common;

/// Any delivery, in any order with any duplicates, converges to the in-order result.
#[path = "ingest/delivery.rs"]
mod delivery;
/// What an ingest may forget or compact half-way, and still converge.
#[path = "ingest/forgetting.rs"]
mod forgetting;
/// A reused id or dot is refused, changing nothing, and named safely.
#[path = "ingest/refusals.rs"]
mod refusals;
/// A sync repeats writes, whole or in part: the same write again is no reuse.
#[path = "ingest/syncs.rs"]
mod syncs;

use common::{History, Rng, event};
use failback::{DeviceKey, Event, Identity, Ingest, Registry, ReplicaId, Stamp};
use proptest::prelude::*;

/// One event per write of the history, with ids `e0`, `e1`, … in write order.
fn events(h: &History) -> Vec<Event> {
    h.deltas()
        .iter()
        .enumerate()
        .map(|(i, d)| event(format!("e{i}"), d.registry.clone()))
        .collect()
}

fn ingest_all<'a>(events: impl IntoIterator<Item = &'a Event>) -> Ingest {
    let mut ingest = Ingest::new(Registry::new());
    for event in events {
        ingest.apply(event).expect("a consistent stream");
    }
    ingest
}

/// Every event delivered one to three times, shuffled.
fn deliveries(events: &[Event], seed: u64) -> Vec<&Event> {
    let mut rng = Rng(seed);
    let mut out: Vec<&Event> = Vec::new();
    for e in events {
        out.extend(std::iter::repeat_n(e, 1 + rng.below(3)));
    }
    rng.shuffle(&mut out);
    out
}

/// Restored from its text, which lists the events by id, not in the order applied, `ingest`
/// is the same.
fn restores(ingest: &Ingest) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(ingest).expect("serializable");
    let restored = serde_json::from_str::<Ingest>(&text);
    prop_assert!(restored.as_ref().is_ok_and(|r| r == ingest), "{restored:?}");
    Ok(())
}

/// A source that created `key` as `r`'s first write, and that creation's delta.
fn created(r: ReplicaId, key: &DeviceKey) -> (Registry, Registry) {
    let mut source = Registry::new();
    let create = source
        .writer(r, Stamp::new(1, 0))
        .create(key, Identity::default())
        .expect("fresh");
    (source, create)
}
