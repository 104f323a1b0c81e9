//! Deltas: what `delta_since` sends a peer is the peer's catch-up. Merged into the peer, it gives
//! what the source's whole state gives (but for compaction, which the peer catches up with by
//! compacting at the source's stable vector), for any two states a history passed through. A
//! delta merged with its own peer, in either order, keeps every device; a write joined into a
//! delta before it is sent reaches the peer and stays; and a delta from a compacted registry
//! reads back, and catches up its own peer, not a replica further behind. Compaction merged
//! with any state is in `tests/compaction.rs`.

mod common;

use common::{bytes, event, history, named};
use failback::{Event, Identity, Policy, Registry, ReplicaId, Section, Stamp};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn delta_since_a_peer_vector_equals_merging_the_full_state(h in history()) {
        for peer in h.replicas() {
            for source in h.replicas() {
                let mut by_state = peer.clone();
                by_state.merge(source);
                let mut by_delta = peer.clone();
                by_delta.merge(&source.delta_since(peer.context().vector()));
                common::same_bytes(&by_delta, &by_state)?;
            }
        }
    }

    /// `peer ⊔ source.delta_since(peer) = peer ⊔ source` but for compaction (which the peer
    /// catches up with by compacting at the source's stable vector), for any two states a
    /// history passed through, each possibly compacted at a stable point it reached (above,
    /// final replicas only).
    #[test]
    fn delta_since_equals_the_whole_state_for_any_peer_and_source(
        h in history(),
        picks in proptest::collection::vec(any::<(Index, Index)>(), 4),
        pairs in proptest::collection::vec(any::<(Index, Index)>(), 8),
    ) {
        let states = h.states_compacted_at_different_points(&picks);
        for (i, j) in &pairs {
            let peer = &states[i.index(states.len())];
            let source = &states[j.index(states.len())];
            let mut by_state = peer.clone();
            by_state.merge(source);
            by_state.compact(source.stable());
            let mut by_delta = peer.clone();
            by_delta.merge(&source.delta_since(peer.context().vector()));
            by_delta.compact(source.stable());
            common::same_bytes(&by_delta, &by_state)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deltas merged with anything (review, 2026-11-22: a delta's context claimed every write its
// source had seen, and a merge read the devices it left out as deleted).

const A: ReplicaId = ReplicaId::from_u128(1);
const P: ReplicaId = ReplicaId::from_u128(2);

/// A holds `x`, which its peer P has seen, and `y`, which P has not; `outbox` is what A would
/// send P, `A.delta_since(P's vector)`.
fn outbox() -> (Registry, Registry, Registry) {
    let mut a = Registry::new();
    a.writer(A, Stamp::new(1, 0))
        .create(&named("x"), Identity::default())
        .expect("fresh");
    let p = a.clone();
    a.writer(A, Stamp::new(2, 0))
        .create(&named("y"), Identity::default())
        .expect("fresh");
    let outbox = a.delta_since(p.context().vector());
    (a, p, outbox)
}

/// A write joined into a delta before it is sent (a delta group) reaches the peer, and the
/// peer's state, merged back, never undoes it.
#[test]
fn a_disable_joined_into_an_outbox_delta_reaches_the_peer_and_stays() {
    use failback::{Status, StatusValue};
    let (mut a, mut p, mut outbox) = outbox();
    let disable = a
        .writer(A, Stamp::new(3, 0))
        .set_status(&named("x"), StatusValue::new(Status::Disabled, None))
        .expect("live");
    let joined = outbox.merge(&disable);
    assert!(joined.rejected.is_empty(), "{joined:?}");
    p.merge(&outbox);
    p.writer(P, Stamp::new(4, 0))
        .set_twin(&named("y"), Section::Tags, "owner", Some(json!("ops")))
        .expect("live");
    let status = |r: &Registry| {
        r.device(&named("x"), &Policy::default())
            .map(|d| d.status.status)
    };
    assert_eq!(status(&p), Some(Status::Disabled));
    let report = a.merge(&p);
    assert_eq!(status(&a), Some(Status::Disabled), "{report}");
}

/// `D ⊔ P = P ⊔ D` for the very peer the delta was made for, and nothing the delta left out
/// is lost.
#[test]
fn a_delta_merged_with_its_peer_in_either_order_keeps_every_device() {
    let (a, p, delta) = outbox();
    let mut p_d = p.clone();
    p_d.merge(&delta);
    let mut d_p = delta.clone();
    d_p.merge(&p);
    assert_eq!(bytes(&d_p), bytes(&p_d));
    assert_eq!(bytes(&p_d), bytes(&a));
    assert_eq!(d_p.keys().count(), 2);
}

/// A creates and deletes `k`, every replica sees it, then A creates `l` and compacts against
/// what everyone reached. Returns A compacted, A uncompacted, a backup taken before the
/// delete, and a peer that saw the delete.
fn compacted_source() -> (Registry, Registry, Registry, Registry) {
    let mut a = Registry::new();
    a.writer(A, Stamp::new(1, 0))
        .create(&named("k"), Identity::default())
        .expect("fresh");
    let backup = a.clone();
    a.writer(A, Stamp::new(2, 0))
        .delete(&named("k"))
        .expect("live");
    let peer = a.clone();
    let stable = a.context().vector().clone();
    a.writer(A, Stamp::new(3, 0))
        .create(&named("l"), Identity::default())
        .expect("fresh");
    let uncompacted = a.clone();
    a.compact(&stable);
    assert!(a.tombstones(&named("k")).is_empty(), "compacted");
    (a, uncompacted, backup, peer)
}

/// A delta from a compacted registry is a state like any other: it reads back, alone or in
/// an event, and so does a replica that merged it. It carried the stable vector its context
/// does not reach, which the reader refuses, and every replica merging it took that vector on
/// (2026-11-22, found in review).
#[test]
fn a_delta_from_a_compacted_registry_and_its_receivers_read_back() {
    let (a, _, _, peer) = compacted_source();
    let delta = a.delta_since(peer.context().vector());
    let text = serde_json::to_string(&delta).expect("serializable");
    assert_eq!(
        serde_json::from_str::<Registry>(&text).expect("a state"),
        delta
    );

    let event = event("sync", delta.clone());
    let text = serde_json::to_string(&event).expect("serializable");
    assert_eq!(
        serde_json::from_str::<Event>(&text).expect("an event"),
        event
    );

    let mut fresh = Registry::new();
    fresh.merge(&delta);
    let text = serde_json::to_string(&fresh).expect("serializable");
    assert_eq!(
        serde_json::from_str::<Registry>(&text).expect("a state"),
        fresh
    );
}

/// Merged into its peer, a delta from a compacted registry gives what the whole state gives
/// but for the compaction, which the peer catches up with by compacting itself.
#[test]
fn a_compacted_delta_gives_its_peer_the_whole_state_less_the_compaction() {
    let (a, _, _, peer) = compacted_source();
    let k = named("k");
    let mut by_delta = peer.clone();
    by_delta.merge(&a.delta_since(peer.context().vector()));
    let mut by_state = peer.clone();
    by_state.merge(&a);
    assert!(
        !by_delta.tombstones(&k).is_empty(),
        "kept until the peer compacts"
    );
    assert!(by_state.tombstones(&k).is_empty());
    by_delta.compact(a.stable());
    assert_eq!(bytes(&by_delta), bytes(&by_state));
}

/// A delta is its peer's catch-up, not a replica's that is further behind: a backup from
/// before a delete compacted at the source gets no word of the delete from a delta made for a
/// peer that saw it (an uncompacted source still sends the tombstone), and loses the device
/// when it merges the source's whole state.
#[test]
fn a_compacted_delta_is_no_catch_up_for_a_replica_behind_its_peer() {
    let (a, uncompacted, backup, peer) = compacted_source();
    let (k, v) = (named("k"), peer.context().vector());

    let mut with_uncompacted = backup.clone();
    with_uncompacted.merge(&uncompacted.delta_since(v));
    assert!(with_uncompacted.device(&k, &Policy::default()).is_none());

    let mut with_compacted = backup.clone();
    with_compacted.merge(&a.delta_since(v));
    assert!(with_compacted.device(&k, &Policy::default()).is_some());
    assert!(
        with_compacted
            .device(&named("l"), &Policy::default())
            .is_some()
    );
    let report = with_compacted.merge(&a);
    assert_eq!(report.deleted, 1, "{report}");
    assert!(with_compacted.device(&k, &Policy::default()).is_none());
    assert_eq!(bytes(&with_compacted), bytes(&a));
}
