//! Convergence: whatever the delivery (in order, pre-merged, shuffled with duplicates, split
//! across intermediate replicas), the deltas of a history end as the same bytes, equal to the
//! join of every replica's final state. Plus the cheap path of re-merging an included state,
//! and what a merge reports: as a read shows it, whichever side merges. Twin subtrees (a write
//! above or below a concurrent one) are in `tests/twin.rs`, `delta_since` in `tests/deltas.rs`
//! and compaction in `tests/compaction.rs`.

mod common;

use common::{Rng, bytes, event, history};
use failback::{
    DeviceKey, Event, Identity, Ingest, Policy, Registry, ReplicaId, Rule, Section, Stamp,
};
use proptest::prelude::*;
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
    /// whose winner a read shows blanked (`tests/security/credentials.rs`), and for twin paths a
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
