//! Deltas: what `delta_since` sends a peer is the peer's catch-up. Merged into the peer, it gives
//! what the source's whole state gives (but for compaction, which the peer catches up with by
//! compacting at the source's stable vector), for any two states a history passed through. A
//! delta merged with its own peer, in either order, keeps every device; a write joined into a
//! delta before it is sent reaches the peer and stays; and a delta from a compacted registry
//! reads back, and catches up its own peer, not a replica further behind, which is sent the
//! whole state: a compacted delete travels in deltas as the protocol sends them, and each
//! grouping of merges agrees. Compaction merged with any state is in `tests/compaction.rs`.

mod common;

use common::{bytes, event, history, named};
use failback::{
    DeviceKey, Event, Identity, Policy, Registry, ReplicaId, Section, Stamp, Status, StatusValue,
};
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

/// Review 65's registries: `a` created `d`; `c` deleted it while `a` disabled it; `a` merged
/// the delete (which removed the disable) and compacted at what both had reached. Returns `a`,
/// `c`, a backup `b` taken before either write, `x` holding only the disable's delta, and `d`.
fn compacted_delete_with_a_lost_disable() -> (Registry, Registry, Registry, Registry, DeviceKey) {
    const C: ReplicaId = ReplicaId::from_u128(3);
    let d = named("d");
    let mut a = Registry::new();
    a.writer(A, Stamp::new(1, 0))
        .create(&d, Identity::default())
        .expect("fresh");
    let b = a.clone();
    let mut c = a.clone();
    c.writer(C, Stamp::new(2, 0)).delete(&d).expect("live");
    let disabled = StatusValue::new(Status::Disabled, Some("stolen".into()));
    let x = a
        .writer(A, Stamp::new(3, 0))
        .set_status(&d, disabled)
        .expect("live");
    a.merge(&c);
    let mut stable = a.context().vector().clone();
    stable.meet(c.context().vector());
    a.compact(&stable);
    assert!(a.tombstones(&d).is_empty(), "compacted");
    (a, c, b, x, d)
}

/// `(x ⊔ r) ⊔ δ` and `x ⊔ (r ⊔ δ)`, as bytes.
fn both_groupings(x: &Registry, r: &Registry, delta: &Registry) -> (String, String) {
    let mut left = x.clone();
    left.merge(r);
    left.merge(delta);
    let mut r_delta = r.clone();
    r_delta.merge(delta);
    let mut right = x.clone();
    right.merge(&r_delta);
    (bytes(&left), bytes(&right))
}

/// A delta from a registry that compacted a delete claims the write the delete removed,
/// without the tombstone. Sent as the protocol sends it, to replicas that have seen the
/// peer's vector, it groups either way; a backup behind the compaction is sent the whole
/// state, and loses the device in both groupings. (Merged into that backup, the peer's delta
/// would keep the disable in one grouping and drop it in the other: the case the module docs
/// of `registry.rs` leave out of the laws.)
#[test]
fn a_compacted_delete_travels_in_deltas_as_the_protocol_sends_them() {
    let (a, c, b, x, d) = compacted_delete_with_a_lost_disable();
    let policy = Policy::default();

    let for_c = a.delta_since(c.context().vector());
    assert!(for_c.keys().next().is_none(), "the claim alone");
    let (left, right) = both_groupings(&x, &c, &for_c);
    assert_eq!(left, right);
    let mut at_c = x.clone();
    at_c.merge(&c);
    at_c.merge(&for_c);
    assert!(at_c.device(&d, &policy).is_none(), "deleted at c");

    let for_b = a.delta_since(b.context().vector());
    assert_eq!(for_b, a, "behind the stable vector: the whole state");
    let (left, right) = both_groupings(&x, &b, &for_b);
    assert_eq!(left, right);
    let mut at_b = b.clone();
    at_b.merge(&for_b);
    assert!(
        at_b.device(&d, &policy).is_none(),
        "the backup loses the device too"
    );
}
