//! A deleted device stays deleted: no stale state brings a deleted incarnation back (the
//! property), a delete wins over every update made without seeing it, in both merge orders,
//! and the updates it lost are named alike whichever side merges, by a state or a delta, once
//! each and in dot order; a re-create after the delete stands as a new device.

use crate::common::{self, bytes, fork_plan};
use failback::{
    Capabilities, DeviceKey, Dot, Identity, Policy, Registry, ReplicaId, Rule, Section, Stale,
    Stamp, Status, StatusValue,
};
use proptest::prelude::*;
use serde_json::json;

use super::*;

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn stale_replica_never_resurrects_deleted_device(plan in fork_plan()) {
        let fork = plan.run(|w, key| w.delete(key));
        let key = &fork.key;
        let deleted = &fork.acted_on;
        let stays_deleted = |state: &Registry| {
            for record in state.records(key) {
                prop_assert!(
                    !deleted.contains(&record.incarnation()),
                    "deleted incarnation {} is live again", record.incarnation()
                );
            }
            Ok(())
        };
        combinations(&fork, stays_deleted)?;

        // Every merge that brings a deleted incarnation back reports the refusal.
        let mut target = fork.after.clone();
        for stale in &fork.stale {
            let already_included = target.context().includes(stale.context());
            let report = target.merge(stale);
            if already_included {
                prop_assert!(report.is_unchanged());
                continue;
            }
            for record in stale.records(key).iter().filter(|r| deleted.contains(&r.incarnation())) {
                let (kind, dot) = (Stale::Resurrection, record.incarnation());
                prop_assert!(
                    report.rejected.iter().any(|r| (&r.key, r.kind, r.dot) == (key, kind, dot)),
                    "{key} {kind} {dot} missing from {:?}", report.rejected
                );
            }
        }
    }
}

/// The values every delete-wins conflict of `report` names, in its order.
fn delete_win_values(report: &failback::Report) -> Vec<&str> {
    report
        .conflicts
        .iter()
        .filter(|c| c.rule == Rule::DeleteWins)
        .flat_map(|c| c.values.iter().map(|v| v.value.as_str()))
        .collect()
}

#[test]
fn delete_wins_over_a_concurrent_update_in_both_merge_orders() {
    let (mut a, mut b) = base(Identity::default());
    a.writer(A, Stamp::new(2, 0)).delete(&key()).expect("live");
    // A later stamp does not help a concurrent update.
    b.writer(B, Stamp::new(9, 0))
        .set_twin(&key(), Section::Desired, "fw", Some(json!("2.0")))
        .expect("live");

    let mut a_then_b = a.clone();
    let report = a_then_b.merge(&b);
    assert!(a_then_b.device(&key(), &Policy::prefer(B)).is_none());
    let incarnation = b.records(&key())[0].incarnation();
    assert!(
        report
            .rejected
            .iter()
            .any(|r| (&r.key, r.kind, r.dot) == (&key(), Stale::Resurrection, incarnation))
    );

    let on_deleter = report.conflicts;

    let mut b_then_a = b.clone();
    let report = b_then_a.merge(&a);
    assert!(b_then_a.device(&key(), &Policy::prefer(B)).is_none());
    assert_eq!(report.deleted, 1);
    let conflict = report
        .conflicts
        .iter()
        .find(|c| c.field == "existence")
        .expect("reported");
    assert_eq!((conflict.rule, conflict.security), (Rule::DeleteWins, true));
    assert_eq!(bytes(&a_then_b), bytes(&b_then_a));
    // Merged on the deleter's side, the lost update is named alike.
    assert_eq!(on_deleter, report.conflicts);
}

/// The updater's merge names the update the delete lost (`B:1`, though its stamp is later
/// than the delete's); the deleter's merge named none, only the incarnation as a resurrection, so
/// whether a lost update was named depended on which side merged (2026-11-23, found in review).
#[test]
fn a_lost_update_is_named_whichever_side_merges() {
    let (mut updater, mut deleter) = base(Identity::default());
    updater
        .writer(B, Stamp::new(5, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("oslo")))
        .expect("live");
    deleter
        .writer(A, Stamp::new(4, 0))
        .delete(&key())
        .expect("live");
    let update = format!("update {}", Dot::new(B, 1));

    let (mut on_updater, mut on_deleter) = (updater.clone(), deleter.clone());
    let (from_deleter, from_updater) = (on_updater.merge(&deleter), on_deleter.merge(&updater));
    assert_eq!(bytes(&on_updater), bytes(&on_deleter));
    let named: Vec<&str> = from_updater.conflicts[0]
        .values
        .iter()
        .map(|v| v.value.as_str())
        .collect();
    assert_eq!(named, ["deleted", update.as_str()]); // A:2, then B:1: in dot order
    assert_eq!(from_updater.conflicts[0].winner, 0);
    assert_eq!(from_updater.conflicts, from_deleter.conflicts);
    // The refusal of the incarnation is the deleter's merge's, as `Report::rejected` says.
    let incarnation = Dot::new(A, 1);
    assert_eq!(from_updater.rejected.len(), 1);
    assert_eq!(
        (from_updater.rejected[0].kind, from_updater.rejected[0].dot),
        (Stale::Resurrection, incarnation)
    );
    assert!(from_deleter.rejected.is_empty());

    // A stale replica resending the incarnation with nothing the deleter had not seen is no
    // conflict, only the refused resurrection (it wrote elsewhere, or its state would be one
    // the deleter's includes, and the merge would read no record).
    let (mut stale, _) = base(Identity::default());
    stale
        .writer(ReplicaId::from_u128(3), Stamp::new(6, 0))
        .create(&DeviceKey::device("n").expect("valid"), Identity::default())
        .expect("fresh");
    let mut deleted = deleter.clone();
    let report = deleted.merge(&stale);
    assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
    assert_eq!(report.rejected.len(), 1);
    let mut stale_side = stale.clone();
    assert!(stale_side.merge(&deleter).conflicts.is_empty());
}

/// The deleter merged the update after its delete, so its context holds the update; its
/// tombstone's `seen` does not. Merged whole into the updater, the deleter's state named no
/// lost update, where its delta named it (2026-11-23, found in review).
#[test]
fn a_lost_update_is_named_alike_by_the_deleters_state_and_delta_after_it_merged_the_update() {
    let (mut deleter, mut updater) = base(Identity::default());
    deleter
        .writer(A, Stamp::new(2, 0))
        .delete(&key())
        .expect("live");
    updater
        .writer(B, Stamp::new(3, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("oslo")))
        .expect("live");
    deleter.merge(&updater);
    let update = format!("update {}", Dot::new(B, 1));

    let (mut by_state, mut by_delta) = (updater.clone(), updater.clone());
    let from_state = by_state.merge(&deleter);
    let from_delta = by_delta.merge(&deleter.delta_since(updater.context().vector()));
    assert_eq!(bytes(&by_state), bytes(&by_delta));
    assert_eq!(from_state.conflicts, from_delta.conflicts);
    let named: Vec<&str> = from_state.conflicts[0]
        .values
        .iter()
        .map(|v| v.value.as_str())
        .collect();
    assert_eq!(named, ["deleted", update.as_str()]);
}

/// A deleter that received a creation beyond a gap (ahead of an earlier write of the same
/// replica) saw a vector without the incarnation, or an empty one. Merging its delete named
/// the creation itself as a lost update; and an empty `seen`, read as one written before it
/// was kept, fell back to the deleter's context, which holds what it merged after the delete,
/// so its state named nothing where its delta named the update (2026-11-23, both found in
/// review). `seen` is now a context, holding the creation beyond the gap.
#[test]
fn a_delete_by_a_replica_that_saw_the_creation_beyond_a_gap_names_only_lost_updates() {
    let (d, other) = (
        ReplicaId::from_u128(4),
        DeviceKey::device("other").expect("valid"),
    );
    let mut origin = Registry::new();
    let first = origin
        .writer(A, Stamp::new(1, 0))
        .create(&other, Identity::default())
        .expect("fresh");
    let created = origin
        .writer(A, Stamp::new(2, 0))
        .create(&key(), Identity::default())
        .expect("fresh");
    let mut updater = origin.clone();
    let update = updater
        .writer(B, Stamp::new(3, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("oslo")))
        .expect("live");
    let named_update = format!("update {}", Dot::new(B, 1));

    // Its vector not empty (it wrote before): no update lost, none named.
    let mut deleter = Registry::new();
    deleter
        .writer(d, Stamp::new(1, 0))
        .create(
            &DeviceKey::device("own").expect("valid"),
            Identity::default(),
        )
        .expect("fresh");
    deleter.merge(&created);
    let delete = deleter
        .writer(d, Stamp::new(4, 0))
        .delete(&key())
        .expect("live");
    let mut peer = first.clone();
    peer.merge(&created);
    for incoming in [&delete, &deleter] {
        let report = peer.clone().merge(incoming);
        assert_eq!(report.deleted, 1);
        assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
    }

    // Its vector empty, and the update merged after the delete: named alike by its state and
    // its delta.
    let mut deleter = created.clone();
    deleter
        .writer(d, Stamp::new(4, 0))
        .delete(&key())
        .expect("live");
    assert!(
        deleter.tombstones(&key())[0]
            .seen
            .as_deref()
            .is_some_and(|s| s.vector().is_empty() && s.contains(Dot::new(A, 2)))
    );
    deleter.merge(&update);
    let from_state = updater.clone().merge(&deleter);
    let from_delta = updater
        .clone()
        .merge(&deleter.delta_since(updater.context().vector()));
    assert_eq!(from_state.conflicts, from_delta.conflicts);
    let named: Vec<&str> = from_state.conflicts[0]
        .values
        .iter()
        .map(|v| v.value.as_str())
        .collect();
    assert_eq!(named, [named_update.as_str(), "deleted"]);
}

/// A credential write holds its dot in two registers (the credentials, and what they retired):
/// the lost rotation was named twice, and `deleted` listed last though its dot (A's) comes
/// first (2026-11-23, found in review).
#[test]
fn a_delete_wins_conflict_names_each_lost_update_once_in_dot_order() {
    let c = ReplicaId::from_u128(3);
    let mut b = Registry::new();
    b.writer(B, Stamp::new(1, 0))
        .create(&key(), Identity::default().with_authentication(sas(K0, K0)))
        .expect("fresh");
    let mut a = b.clone();
    let mut rotating = b.clone();
    rotating
        .writer(c, Stamp::new(2, 0))
        .set_authentication(&key(), sas(K1, K1))
        .expect("live");
    rotating
        .writer(c, Stamp::new(3, 0))
        .set_metadata(&key(), "owner", Some(json!("c")))
        .expect("live");
    a.writer(A, Stamp::new(4, 0)).delete(&key()).expect("live");
    for (mut merged, incoming) in [(rotating.clone(), &a), (a.clone(), &rotating)] {
        let report = merged.merge(incoming);
        let conflict = report
            .conflicts
            .iter()
            .find(|c| c.rule == Rule::DeleteWins)
            .expect("delete wins");
        let named: Vec<&str> = conflict.values.iter().map(|v| v.value.as_str()).collect();
        let (rotation, patch) = (
            format!("update {}", Dot::new(c, 1)),
            format!("update {}", Dot::new(c, 2)),
        );
        assert_eq!(named, ["deleted", rotation.as_str(), patch.as_str()]);
        assert_eq!(conflict.values[conflict.winner].value, "deleted");
        assert_eq!(conflict.values[conflict.winner].replica, A);
    }
}

/// A delete's delta claims only the dots it removed, so the tombstone's `seen` is what
/// tells an update the deleter had seen overwritten from one made concurrently: merged through
/// the delta or whole, the report names only the second.
#[test]
fn delete_wins_names_only_the_updates_the_deleter_had_not_seen() {
    let (mut a, mut b) = base(Identity::default());
    let fw = |registry: &mut Registry, replica, stamp, value: &str| {
        registry
            .writer(replica, Stamp::new(stamp, 0))
            .set_twin(&key(), Section::Desired, "fw", Some(json!(value)))
            .expect("live");
    };
    fw(&mut b, B, 2, "1.0");
    a.merge(&b);
    // A overwrites B's write, then deletes; B, not seeing either, writes on.
    fw(&mut a, A, 3, "1.1");
    a.writer(A, Stamp::new(4, 0)).delete(&key()).expect("live");
    b.writer(B, Stamp::new(5, 0))
        .set_metadata(&key(), "owner", Some(json!("b")))
        .expect("live");
    let (seen_overwritten, concurrent) = (Dot::new(B, 1), Dot::new(B, 2));
    let seen = a.tombstones(&key())[0].seen.clone().expect("kept");
    assert!(seen.contains(seen_overwritten));

    for incoming in [a.delta_since(b.context().vector()), a.clone()] {
        let mut merged = b.clone();
        let report = merged.merge(&incoming);
        assert!(merged.records(&key()).is_empty());
        let named = delete_win_values(&report);
        // In dot order: A's delete before B's update.
        assert_eq!(
            named,
            ["deleted", format!("update {concurrent}").as_str()],
            "not {seen_overwritten}"
        );
    }
}

/// Events arrive out of order, so a deleter may have received an update beyond a gap in its
/// context: it saw that update removed, and only the update it never saw is named, through
/// the delete's delta or its whole state (a version vector named both).
#[test]
fn delete_wins_does_not_name_an_update_its_deleter_received_out_of_order() {
    let mut b = Registry::new();
    let create = b
        .writer(B, Stamp::new(1, 0))
        .create(&key(), Identity::default())
        .expect("fresh");
    let other = DeviceKey::device("other").expect("valid");
    let gap = b
        .writer(B, Stamp::new(2, 0))
        .create(&other, Identity::default())
        .expect("fresh");
    let metadata = |registry: &mut Registry, stamp, name: &str| {
        registry
            .writer(B, Stamp::new(stamp, 0))
            .set_metadata(&key(), name, Some(json!("b")))
            .expect("live")
    };
    let received = metadata(&mut b, 3, "owner");
    let mut a = Registry::new();
    a.merge(&create);
    a.merge(&received);
    assert!(
        !a.context().vector().contains(Dot::new(B, 3)),
        "beyond the gap"
    );
    a.writer(A, Stamp::new(4, 0)).delete(&key()).expect("live");
    metadata(&mut b, 5, "site");
    let (unseen, seen) = (Dot::new(B, 4), Dot::new(B, 3));

    for incoming in [a.delta_since(b.context().vector()), a.clone()] {
        let report = b.clone().merge(&incoming);
        let named = delete_win_values(&report);
        assert_eq!(
            named,
            ["deleted", format!("update {unseen}").as_str()],
            "not {seen}"
        );
    }
    // The gap's write reaches A later; nothing changes in what the delete saw.
    a.merge(&gap);
    assert!(
        a.tombstones(&key())[0]
            .seen
            .as_deref()
            .is_some_and(|s| s.contains(seen))
    );
}

/// States written while a delete kept only its version vector read with it as their context.
#[test]
fn a_delete_that_kept_only_its_vector_still_reads() {
    let (mut a, _) = base(Identity::default());
    a.writer(A, Stamp::new(2, 0)).delete(&key()).expect("live");
    let mut wire = serde_json::to_value(&a).expect("serialises");
    let text = wire.to_string();
    let seen = a.tombstones(&key())[0].seen.clone().expect("kept");
    assert!(text.contains(r#""seen":{"vector":"#), "{text}");
    // Rewrite every `seen` as the bare vector it was.
    fn as_vector(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(seen) = map.get_mut("seen") {
                    *seen = seen["vector"].take();
                }
                map.values_mut().for_each(as_vector);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(as_vector),
            _ => {}
        }
    }
    as_vector(&mut wire);
    assert!(!wire.to_string().contains("cloud"));
    let read: Registry = serde_json::from_value(wire).expect("reads");
    assert_eq!(read, a);
    assert_eq!(read.tombstones(&key())[0].seen, Some(seen));
    let bad = r#"{"incarnation":"x"}"#;
    assert!(serde_json::from_str::<failback::Tombstone>(bad).is_err());
}

#[test]
fn a_delete_win_beside_other_conflicts_on_the_device_is_reported_in_order() {
    // B's incarnation is updated by B while A, who saw it, deletes it; C and D meanwhile
    // create their own incarnations with different capabilities. One merge then reports an
    // `existence` conflict (found while joining) and a `capabilities` one (found when the
    // device is read): the report lists them in `Ord` order, as `combine` would.
    let (c, d) = (ReplicaId::from_u128(3), ReplicaId::from_u128(4));
    let edge = |iot_edge| Identity::default().with_capabilities(Capabilities { iot_edge });
    let mut b = Registry::new();
    b.writer(B, Stamp::new(1, 0))
        .create(&key(), Identity::default())
        .expect("fresh");
    let mut a = b.clone();
    a.writer(A, Stamp::new(2, 0)).delete(&key()).expect("live");
    b.writer(B, Stamp::new(3, 0))
        .set_metadata(&key(), "owner", Some(json!("b")))
        .expect("live");
    for (replica, iot_edge) in [(c, true), (d, false)] {
        let mut other = Registry::new();
        other
            .writer(replica, Stamp::new(4, 0))
            .create(&key(), edge(iot_edge))
            .expect("fresh");
        b.merge(&other);
    }

    let report = b.merge(&a);
    let fields: Vec<&str> = report.conflicts.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["capabilities", "existence"]);
    assert_eq!(
        (report.conflicts[1].rule, report.conflicts[1].security),
        (Rule::DeleteWins, true)
    );
    assert_eq!(report.clone().combine(Default::default()), report);
}

#[test]
fn recreate_after_delete_stands_against_stale_updates() {
    let (mut a, mut b) = base(Identity::default().with_metadata("owner", json!("old")));
    a.writer(A, Stamp::new(2, 0)).delete(&key()).expect("live");
    a.writer(A, Stamp::new(3, 0))
        .create(
            &key(),
            Identity::default().with_metadata("owner", json!("new")),
        )
        .expect("deleted");
    b.writer(B, Stamp::new(9, 0))
        .set_metadata(&key(), "owner", Some(json!("stale")))
        .expect("live");

    for (mut into, from) in [(a.clone(), &b), (b.clone(), &a)] {
        into.merge(from);
        let device = into.device(&key(), &Policy::prefer(B)).expect("re-created");
        assert_eq!(device.incarnations, [a.records(&key())[0].incarnation()]);
        assert_eq!(device.metadata["owner"], "new");
    }
}

/// A replica restored from a backup writes, under a new id, to a device deleted meanwhile,
/// then merges the state where the delete was compacted: the delete wins, and the lost write
/// is reported. With the tombstone gone the report had said nothing (2026-11-22, found in
/// review); the incarnation is refused as a resurrection, as the other direction reports it.
#[test]
fn an_update_lost_to_a_compacted_delete_is_reported() {
    let mut a = Registry::new();
    a.writer(A, Stamp::new(1, 0))
        .create(&key(), Identity::default())
        .expect("fresh");
    let mut backup = a.clone();
    a.writer(A, Stamp::new(2, 0)).delete(&key()).expect("live");
    let incarnation = a.tombstones(&key())[0].incarnation;
    let everyone = a.context().vector().clone();
    a.compact(&everyone);
    backup
        .writer(B, Stamp::new(3, 0))
        .set_status(
            &key(),
            StatusValue::new(Status::Disabled, Some("stolen".into())),
        )
        .expect("live");

    let mut restored = backup.clone();
    let report = restored.merge(&a);
    assert!(restored.device(&key(), &Policy::default()).is_none());
    assert_eq!(report.deleted, 1, "{report}");
    let lost = |report: &failback::Report| {
        report
            .rejected
            .iter()
            .any(|r| (&r.key, r.kind, r.dot) == (&key(), Stale::Resurrection, incarnation))
    };
    assert!(lost(&report), "{:?}", report.rejected);
    let mut other_way = a.clone();
    assert!(lost(&other_way.merge(&backup)));
    assert_eq!(bytes(&restored), bytes(&other_way));

    // A backup that wrote nothing since lost nothing: the delete alone, no refusal.
    let mut quiet = a.clone();
    quiet
        .writer(A, Stamp::new(4, 0))
        .create(&DeviceKey::device("n").expect("valid"), Identity::default())
        .expect("fresh");
    let mut untouched = Registry::new();
    untouched
        .writer(A, Stamp::new(1, 0))
        .create(&key(), Identity::default())
        .expect("fresh");
    let report = untouched.merge(&quiet);
    assert_eq!((report.deleted, report.rejected.len()), (1, 0), "{report}");
}
