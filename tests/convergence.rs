//! Convergence: whatever the delivery (in order, pre-merged, shuffled with duplicates, split
//! across intermediate replicas), the deltas of a history end as the same bytes, equal to the
//! join of every replica's final state. Plus the cheap paths: `delta_since`, re-merging an
//! included state, and compaction; and what a merge reports: as a read shows it, whichever side
//! merges. Twin subtrees (a write above or below a concurrent one) are in `tests/twin.rs`.

mod common;

use common::{Rng, bytes, event, history, named};
use failback::{
    DeviceKey, Event, Identity, Ingest, Policy, Registry, ReplicaId, Rule, Section, Stamp,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

fn deliver<'a>(deltas: impl IntoIterator<Item = &'a Registry>) -> Registry {
    let mut fresh = Registry::new();
    deltas.into_iter().for_each(|d| {
        fresh.merge(d);
    });
    fresh
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn deltas_in_order_give_the_join_of_all_replicas(h in history()) {
        let expected = h.join();
        let in_order = deliver(h.deltas().iter().map(|d| &d.registry));
        common::same_bytes(&in_order, &expected)?;
        prop_assert_eq!(in_order, expected);
    }

    #[test]
    fn pre_merged_deltas_give_the_same_bytes(h in history()) {
        let folded = deliver(h.deltas().iter().map(|d| &d.registry));
        let mut fresh = Registry::new();
        fresh.merge(&folded);
        common::same_bytes(&fresh, &h.join())?;
    }

    #[test]
    fn converges_under_any_delivery_order_with_duplicates(h in history(), seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let mut deliveries: Vec<&Registry> = Vec::new();
        for d in h.deltas() {
            let copies = 1 + rng.below(3);
            deliveries.extend(std::iter::repeat_n(&d.registry, copies));
        }
        rng.shuffle(&mut deliveries);
        common::same_bytes(&deliver(deliveries), &h.join())?;
    }

    #[test]
    fn converges_when_split_across_intermediate_replicas(h in history(), seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let parts = 2 + rng.below(3);
        let mut intermediates = vec![Vec::new(); parts];
        for d in h.deltas() {
            intermediates[rng.below(parts)].push(&d.registry);
        }
        let mut merged: Vec<Registry> = intermediates
            .into_iter()
            .map(|mut part| {
                rng.shuffle(&mut part);
                deliver(part)
            })
            .collect();
        rng.shuffle(&mut merged);
        common::same_bytes(&deliver(&merged), &h.join())?;
    }

    #[test]
    fn replicas_that_exchange_states_converge_in_any_order(h in history(), seed in any::<u64>()) {
        // Full-state gossip between the history's own replicas: every one ends at the join.
        let mut rng = Rng(seed);
        let mut replicas = h.replicas().to_vec();
        let n = replicas.len();
        for _ in 0..2 {
            for to in 0..n {
                let mut order: Vec<usize> = (0..n).collect();
                rng.shuffle(&mut order);
                for from in order {
                    let incoming = replicas[from].clone();
                    replicas[to].merge(&incoming);
                }
            }
        }
        let expected = bytes(&h.join());
        for replica in &replicas {
            prop_assert_eq!(&bytes(replica), &expected);
        }
    }

    /// `report.is_unchanged() ⇔ a ⊔ b = a`, for whole states, deltas and the states between:
    /// a service that stores its registry when a merge changed it never misses a change, a
    /// delete of a device it never held included.
    #[test]
    fn a_merge_reports_a_change_exactly_when_the_state_changed(h in history()) {
        let mut incoming: Vec<Registry> = h.states();
        for peer in h.replicas() {
            incoming.extend(h.replicas().iter().map(|source| source.delta_since(peer.context().vector())));
        }
        for target in h.replicas().iter().chain(&h.states()) {
            for other in &incoming {
                let mut merged = target.clone();
                let report = merged.merge(other);
                prop_assert_eq!(report.is_unchanged(), bytes(&merged) == bytes(target), "{}", report);
            }
        }
    }

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

    #[test]
    fn merging_an_included_state_reports_unchanged_and_changes_nothing(h in history()) {
        let all = h.join();
        let before = bytes(&all);
        for state in h.states() {
            let mut again = all.clone();
            let report = again.merge(&state);
            prop_assert!(report.is_unchanged(), "{report}");
            prop_assert!(report.conflicts.is_empty() && report.rejected.is_empty(), "{report:?}");
            prop_assert_eq!(&bytes(&again), &before);
        }
        // And each replica re-merging itself.
        for replica in h.replicas() {
            let mut again = replica.clone();
            prop_assert!(again.merge(replica).is_unchanged());
            prop_assert_eq!(bytes(&again), bytes(replica));
        }
    }

    /// `compact(a) ⊔ b = b ⊔ compact(a) = compact(a ⊔ b)`, and the devices read are those of
    /// `a ⊔ b`, for `a` a final replica (which has reached what every replica has) and `b` any
    /// state of the history: a replica, an old snapshot (a restored backup), a delta. Every
    /// replica is `b` once, and a few other states (all of them took 24 s at 1,000 cases).
    #[test]
    fn compaction_commutes_with_merging_any_state(
        h in history(),
        picks in proptest::collection::vec(any::<Index>(), 8),
    ) {
        let states = h.states();
        let others = picks.iter().map(|i| &states[i.index(states.len())]);
        let bs: Vec<&Registry> = h.replicas().iter().chain(others).collect();
        let stable = h.stable();
        let policy = Policy::default();
        let devices = |r: &Registry| r.devices(&policy).collect::<Vec<_>>();
        for a in h.replicas() {
            let mut compacted = a.clone();
            compacted.compact(&stable);
            for &b in &bs {
                let mut merged = a.clone();
                merged.merge(b);
                let mut merged_then_compacted = merged.clone();
                merged_then_compacted.compact(&stable);

                let mut compacted_then_merged = compacted.clone();
                compacted_then_merged.merge(b);
                common::same_bytes(&compacted_then_merged, &merged_then_compacted)?;
                let mut merged_into_b = b.clone();
                merged_into_b.merge(&compacted);
                common::same_bytes(&merged_into_b, &merged_then_compacted)?;
                prop_assert_eq!(devices(&merged_then_compacted), devices(&merged));
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

    /// `report.is_unchanged() ⇔ a ⊔ b = a` (and `state_changed` its negation) for states
    /// compacted at different stable points too: merging a compacted state into one that still
    /// holds the tombstones it dropped changes nothing, or says what it changed.
    #[test]
    fn a_merge_reports_a_change_exactly_when_the_state_changed_with_compaction(
        h in history(),
        picks in proptest::collection::vec(any::<(Index, Index)>(), 6),
        pairs in proptest::collection::vec(any::<(Index, Index)>(), 8),
    ) {
        let states = h.states_compacted_at_different_points(&picks);
        for (i, j) in &pairs {
            let a = &states[i.index(states.len())];
            let mut merged = a.clone();
            let report = merged.merge(&states[j.index(states.len())]);
            let changed = bytes(&merged) != bytes(a);
            prop_assert_eq!(report.is_unchanged(), !changed, "{}", report);
            prop_assert_eq!(report.state_changed, changed, "{}", report);
        }
    }
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn a_merge_reports_what_a_read_of_each_device_it_changed_shows(
        h in history(),
        seed in any::<u64>(),
    ) {
        let states = h.states();
        let mut rng = Rng(seed);
        let (x, y) = (rng.below(states.len()), rng.below(states.len()));
        for policy in [Policy::default(), Policy::prefer(common::replica(x))] {
            let mut merged = states[x].clone();
            let report = merged.merge_with(&states[y], &policy);
            for key in merged.keys() {
                if states[x].records(key) == merged.records(key) {
                    continue;
                }
                let read = merged.device(key, &policy).map(|d| d.conflicts).unwrap_or_default();
                // A delete-wins "existence" conflict is the merge's: no read shows a device
                // that is gone (a live re-create beside it included).
                let reported: Vec<_> = report
                    .conflicts
                    .iter()
                    .filter(|c| &c.key == key && c.field != "existence")
                    .cloned()
                    .collect();
                prop_assert_eq!(reported, read, "device {}", key);
            }
        }
    }

    /// A conflict over a device field names as its winner the value a read shows: status,
    /// credentials, capabilities, parent, metadata and twin leaves. But for crossed rotations,
    /// whose winner a read shows blanked (`tests/security.rs`), and for twin paths a
    /// child-beats-scalar conflict touches, whose winner is the subtree below (`tests/twin.rs`).
    #[test]
    fn a_conflicts_winner_is_the_value_a_read_shows_for_every_field(
        h in history(),
        seed in any::<u64>(),
    ) {
        let states = h.states();
        let mut rng = Rng(seed);
        let (x, y) = (rng.below(states.len()), rng.below(states.len()));
        let mut merged = states[x].clone();
        merged.merge(&states[y]);
        let policies = [Policy::default(), Policy::prefer(common::replica(x)), Policy::prefer(common::replica(y))];
        for policy in policies {
            for key in merged.keys() {
                let Some(device) = merged.device(key, &policy) else { continue };
                let shapes: Vec<&str> = (device.conflicts.iter())
                    .filter(|c| c.rule == Rule::ChildBeatsScalar)
                    .map(|c| c.field.as_str())
                    .collect();
                let related = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."));
                let settled = (device.conflicts.iter()).filter(|c| {
                    c.rule != Rule::RetiredCredentialUnresolved
                        && !shapes.iter().any(|shape| related(&c.field, shape))
                });
                for conflict in settled {
                    let field = conflict.field.as_str();
                    let held = if let Some(name) = field.strip_prefix("metadata.") {
                        device.metadata.get(name).map_or_else(|| "removed".to_owned(), ToString::to_string)
                    } else if let Some(path) = field.strip_prefix("tags.") {
                        twin_leaf(&device.tags, path)
                    } else if let Some(path) = field.strip_prefix("properties.desired.") {
                        twin_leaf(&device.desired, path)
                    } else {
                        match field {
                            "status" => device.status.to_string(),
                            "authentication" => device.authentication.to_string(),
                            "capabilities" => device.capabilities.to_string(),
                            "parent" => device.parent.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string),
                            _ => continue,
                        }
                    };
                    let shown = &conflict.values[conflict.winner].value;
                    // A value that could be a secret is shown by its fingerprint.
                    let by_fingerprint = shown.starts_with("<sha256:");
                    prop_assert!(by_fingerprint || *shown == held, "{} under {:?}: a read shows {}", conflict, policy, held);
                }
            }
        }
    }

    /// A conflict lists its values in dot order, whichever incarnation each write came to (a
    /// value shows its dot's replica: replicas in order); child-beats-scalar, whose values are
    /// a path's and those below it, lists them by path (`Conflict::values`).
    #[test]
    fn a_conflicts_values_are_in_dot_order(h in history(), seed in any::<u64>()) {
        let states = h.states();
        let mut rng = Rng(seed);
        let (x, y) = (rng.below(states.len()), rng.below(states.len()));
        let mut merged = states[x].clone();
        let report = merged.merge(&states[y]);
        let read = merged
            .keys()
            .filter_map(|key| merged.device(key, &Policy::default()))
            .flat_map(|d| d.conflicts);
        for conflict in report.conflicts.iter().cloned().chain(read) {
            if conflict.rule == Rule::ChildBeatsScalar {
                continue;
            }
            let in_order = conflict.values.windows(2).all(|w| w[0].replica <= w[1].replica);
            prop_assert!(in_order, "{:?}", conflict);
        }
    }

    /// A record waits for its creation only while its state has not seen the creation: a
    /// writer's delta claims its own dots and those they overwrote, never the incarnation it
    /// wrote to, and a join that brings the creation's dot brings the creation or the delete
    /// that removed it. The registry's reader refuses any other such record, so this must hold
    /// for every state: those a history passes through, the delta each replica would send each
    /// other and what merging it leaves, joins of any two states, a compaction of the join
    /// with the deltas it sends and the replicas merging it, and an ingest of every delta
    /// shuffled with duplicates.
    #[test]
    fn no_state_holds_a_record_waiting_for_a_creation_it_has_seen(
        h in history(),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let replicas = h.replicas();
        let mut states = h.states();
        for from in replicas {
            for to in replicas {
                let delta = from.delta_since(to.context().vector());
                let mut merged = to.clone();
                merged.merge(&delta);
                states.extend([delta, merged]);
            }
        }
        for _ in 0..8 {
            let (x, y) = (rng.below(states.len()), rng.below(states.len()));
            let mut joined = states[x].clone();
            joined.merge(&states[y]);
            states.push(joined);
        }
        let mut stable = replicas[0].context().vector().clone();
        replicas.iter().for_each(|r| stable.meet(r.context().vector()));
        let mut compacted = h.join();
        compacted.compact(&stable);
        for replica in replicas {
            let mut merged = replica.clone();
            merged.merge(&compacted);
            states.extend([compacted.delta_since(replica.context().vector()), merged]);
        }
        states.push(compacted);
        let mut deliveries: Vec<Event> = Vec::new();
        for (i, d) in h.deltas().iter().enumerate() {
            let copies = 1 + rng.below(3);
            deliveries.extend(std::iter::repeat_n(event(format!("e{i}"), d.registry.clone()), copies));
        }
        rng.shuffle(&mut deliveries);
        let mut ingest = Ingest::new(Registry::new());
        for e in &deliveries {
            ingest.apply(e).expect("a writer's deltas ingest in any order");
        }
        states.push(ingest.registry().clone());
        for state in &states {
            for key in state.keys() {
                for record in state.records(key) {
                    prop_assert!(
                        record.is_created() || !state.context().contains(record.incarnation()),
                        "{key}: incarnation {} waits for a creation its state has seen",
                        record.incarnation()
                    );
                }
            }
        }
    }

    #[test]
    fn every_state_round_trips_through_serde(h in history()) {
        for state in h.states() {
            let text = bytes(&state);
            let back: Registry = serde_json::from_str(&text).expect("parses back");
            prop_assert_eq!(&back, &state);
            prop_assert_eq!(bytes(&back), text);
        }
    }
}

/// The twin leaf at dotted `path` of `section` as JSON text, or `removed`: as a conflict
/// shows a twin value.
fn twin_leaf(section: &serde_json::Map<String, serde_json::Value>, path: &str) -> String {
    let mut members = Some(section);
    let mut leaf = None;
    for name in path.split('.') {
        leaf = members.and_then(|m| m.get(name));
        members = leaf.and_then(serde_json::Value::as_object);
    }
    leaf.map_or_else(|| "removed".to_owned(), ToString::to_string)
}

fn key() -> DeviceKey {
    DeviceKey::device("d").expect("valid")
}

#[test]
fn a_write_overwritten_twice_stays_overwritten_when_delivered_last() {
    // One replica sets a value three times; the deltas arrive as op 3, op 1, op 2. Op 3 says
    // op 2 was overwritten, op 2 says op 1 was: op 1 must not come back, and op 2, by then
    // included, must change nothing.
    let r = ReplicaId::from_u128(1);
    let mut source = Registry::new();
    let create = source
        .writer(r, Stamp::new(1, 0))
        .create(&key(), Identity::default())
        .expect("fresh");
    let ops: Vec<Registry> = (1..=3)
        .map(|n| {
            source
                .writer(r, Stamp::new(n, 0))
                .set_metadata(&key(), "owner", Some(json!(n)))
                .expect("live")
        })
        .collect();
    let mut sink = Registry::new();
    sink.merge(&create);
    sink.merge(&ops[2]);
    sink.merge(&ops[0]);
    assert!(sink.merge(&ops[1]).is_unchanged());
    assert_eq!(sink, source);
    let device = sink.device(&key(), &Policy::default()).expect("live");
    assert_eq!(device.metadata["owner"], 3);
    assert!(device.conflicts.is_empty());
}

#[test]
fn compaction_then_merge_equals_merge_then_compaction_after_a_lost_update() {
    // C updates a device that A deletes; everyone sees the delete, B never sees the update
    // and re-creates the device. Compacting the stable delete must not make A's merge with B
    // differ from the merge compacted afterwards.
    let [a_id, b_id, c_id] = [1, 2, 3].map(ReplicaId::from_u128);
    let mut a = Registry::new();
    a.writer(a_id, Stamp::default())
        .create(&key(), Identity::default())
        .expect("fresh");
    let (mut b, mut c) = (a.clone(), a.clone());
    c.writer(c_id, Stamp::default())
        .set_metadata(&key(), "owner", Some(json!("c")))
        .expect("live");
    let delete = a
        .writer(a_id, Stamp::default())
        .delete(&key())
        .expect("live");
    a.merge(&c.clone());
    c.merge(&a.clone());
    b.merge(&delete);
    b.writer(b_id, Stamp::default())
        .create(&key(), Identity::default())
        .expect("deleted here");
    let mut stable = a.context().vector().clone();
    stable.meet(b.context().vector());
    stable.meet(c.context().vector());

    let mut compacted_then_merged = a.clone();
    compacted_then_merged.compact(&stable);
    compacted_then_merged.merge(&b);
    let mut merged_then_compacted = a.clone();
    merged_then_compacted.merge(&b);
    merged_then_compacted.compact(&stable);
    assert_eq!(bytes(&compacted_then_merged), bytes(&merged_then_compacted));
    assert!(compacted_then_merged.tombstones(&key()).is_empty());
}

/// Two replicas create one device concurrently, and a third writes to the first incarnation:
/// its write's dot (C's) follows the second creation's (B's), though it came to the first
/// incarnation. The values of a conflict were listed by incarnation, C's before B's, while
/// `Conflict::values` says dot order (2026-11-23, found in review).
#[test]
fn a_conflict_across_incarnations_lists_its_values_in_dot_order() {
    let (ra, rb, rc) = (
        ReplicaId::from_u128(1),
        ReplicaId::from_u128(2),
        ReplicaId::from_u128(3),
    );
    let key = key();
    let tagged = |site: &str| {
        Identity::default()
            .with_twin(Section::Tags, json!({"site": site}))
            .expect("a twin")
    };
    let mut a = Registry::new();
    a.writer(ra, Stamp::new(1, 0))
        .create(&key, tagged("oslo"))
        .expect("fresh");
    let mut b = Registry::new();
    b.writer(rb, Stamp::new(2, 0))
        .create(&key, tagged("bergen"))
        .expect("fresh");
    let mut c = a.clone();
    let mut w = c.writer(rc, Stamp::new(3, 0));
    w.set_status(
        &key,
        failback::StatusValue::new(failback::Status::Disabled, None),
    )
    .expect("live");
    w.set_twin(&key, Section::Tags, "site", Some(json!("tromso")))
        .expect("live");
    let mut merged = b.clone();
    let report = merged.merge(&c);
    let device = merged.device(&key, &Policy::default()).expect("live");
    assert_eq!(device.incarnations.len(), 2);
    for field in ["status", "tags.site"] {
        let conflict = device
            .conflicts
            .iter()
            .find(|c| c.field == field)
            .expect("a conflict");
        let replicas: Vec<ReplicaId> = conflict.values.iter().map(|v| v.replica).collect();
        assert_eq!(replicas, [rb, rc], "{field}");
        assert_eq!(conflict.values[conflict.winner].replica, rc, "{field}"); // the later stamp
    }
    assert_eq!(report.conflicts, device.conflicts);
}

// ---------------------------------------------------------------------------------------------
// Deltas merged with anything, and compacted states merged with a restored backup (review,
// 2026-11-22: a delta's context claimed every write its source had seen, and a merge read the
// devices it left out as deleted).

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

/// A replica restored from a backup taken before a delete, catching up from a peer that has
/// since compacted the delete's tombstone, loses the device as every other replica did
/// (whether it merges the peer's state or asks it for a delta).
#[test]
fn a_restored_backup_merged_with_a_compacted_peer_keeps_the_delete() {
    let x = named("x");
    let mut a = Registry::new();
    a.writer(A, Stamp::new(1, 0))
        .create(&x, Identity::default())
        .expect("fresh");
    let mut b = a.clone();
    let backup = b.clone();
    a.writer(A, Stamp::new(2, 0)).delete(&x).expect("live");
    b.merge(&a);
    let mut stable = a.context().vector().clone();
    stable.meet(b.context().vector());
    a.compact(&stable);
    assert!(a.tombstones(&x).is_empty(), "compacted");

    let mut by_delta = backup.clone();
    by_delta.merge(&a.delta_since(backup.context().vector()));
    let mut by_state = backup.clone();
    let report = by_state.merge(&a);
    assert_eq!(report.deleted, 1, "{report}");
    let mut other_way = a.clone();
    other_way.merge(&backup);
    for state in [&by_delta, &by_state, &other_way] {
        assert!(state.device(&x, &Policy::default()).is_none());
        assert_eq!(bytes(state), bytes(&a));
    }
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
