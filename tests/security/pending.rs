//! A record whose creation has not arrived (pending) takes no write that would replace what
//! the creation set unseen, so no silent re-enable: a disable, a delete and a rotation are
//! taken, and win over the creation or retire its keys whatever the delivery order.

use crate::common::event;
use failback::{
    Capabilities, Identity, Ingest, Policy, Registry, ReplicaId, Rule, Section, Stamp, Status,
    StatusValue, SymmetricKey,
};
use serde_json::json;

use super::*;

/// The creation of a device disabled with keys `K0`, and a later tag write to it, made by A;
/// and B's registry, which received the tag first: its record is pending.
fn pending_at_b() -> (Registry, Registry, Registry) {
    let mut origin = Registry::new();
    let disabled = StatusValue::new(Status::Disabled, Some("stolen".into()));
    let create = origin
        .writer(A, Stamp::new(1, 0))
        .create(
            &key(),
            Identity::default()
                .with_authentication(sas(K0, K0))
                .with_status(disabled),
        )
        .expect("fresh");
    let tag = origin
        .writer(A, Stamp::new(2, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("x")))
        .expect("live");
    let mut ingest = Ingest::new(Registry::new());
    ingest.apply(&event("tag", tag.clone())).expect("applies");
    let b = ingest.into_registry();
    assert!(b.device(&key(), &Policy::default()).expect("live").pending);
    (create, tag, b)
}

#[test]
fn a_write_to_a_record_whose_creation_has_not_arrived_is_refused() {
    // Written over a pending record, B's enable would replace the creation's `disabled`,
    // which it never saw, as if it followed it: a silent re-enable (found in review).
    let (create, _, mut b) = pending_at_b();
    let before = b.clone();
    let enabled = StatusValue::new(Status::Enabled, None);
    let mut w = b.writer(B, Stamp::new(3, 0));
    let refusals = [
        w.set_status(&key(), enabled.clone()),
        w.set_capabilities(&key(), Capabilities { iot_edge: true }),
        w.set_parent(&key(), None),
        w.set_twin(&key(), Section::Desired, "mode", Some(json!("on"))),
        w.patch_twin(
            &key(),
            Section::Desired,
            json!({"mode": "on"}).as_object().expect("object"),
        ),
        w.set_metadata(&key(), "owner", Some(json!("ops"))),
    ];
    for refused in refusals {
        assert!(
            matches!(&refused, Err(failback::Error::PendingDevice { key: k }) if *k == key()),
            "{refused:?}"
        );
    }
    // Refused whole: no dot taken, nothing written.
    assert_eq!(b, before);
    // A disable is taken: it wins whatever it replaces, so blocking a device need not wait.
    let mut disabled = b.clone();
    let disable = disabled
        .writer(B, Stamp::new(3, 0))
        .set_status(
            &key(),
            StatusValue::new(Status::Disabled, Some("lost".into())),
        )
        .expect("a disable needs no creation");
    let mut merged = create.clone();
    merged.merge(&disable);
    let device = merged.device(&key(), &Policy::default()).expect("live");
    assert_eq!(device.status.status, Status::Disabled);

    // Once the creation is in, B sees the disable, and its enable stands as a decision.
    b.merge(&create);
    let enable = b
        .writer(B, Stamp::new(3, 0))
        .set_status(&key(), enabled)
        .expect("created");
    let mut merged = create.clone();
    merged.merge(&enable);
    let device = merged.device(&key(), &Policy::default()).expect("live");
    assert_eq!(device.status.status, Status::Enabled);
}

#[test]
fn a_delete_of_a_record_whose_creation_has_not_arrived_wins_over_it() {
    let (create, tag, mut b) = pending_at_b();
    let delete = b.writer(B, Stamp::new(3, 0)).delete(&key()).expect("live");
    for deltas in [[&create, &tag, &delete], [&delete, &tag, &create]] {
        let mut merged = Registry::new();
        deltas.iter().for_each(|d| {
            merged.merge(d);
        });
        assert!(merged.records(&key()).is_empty(), "{merged:?}");
    }
}

#[test]
fn a_rotation_on_a_record_whose_creation_had_not_arrived_still_replaces_its_keys() {
    // A rotation is taken over a pending record (it must not wait for the creation), though
    // its writer never saw the creation's keys and so retired none of them: the read retires
    // them all the same.
    const C: ReplicaId = ReplicaId::from_u128(3);
    let (create, tag, mut b) = pending_at_b();
    let rotation = b
        .writer(B, Stamp::new(3, 0))
        .set_authentication(&key(), sas(K1, K1))
        .expect("a rotation needs no creation");
    // C has only the creation and, later by the clock, changes the secondary key only.
    let mut c = Registry::new();
    c.merge(&create);
    let stale = c
        .writer(C, Stamp::new(4, 0))
        .set_authentication(&key(), sas(K0, K3))
        .expect("live");

    let old = SymmetricKey::new(K0).expect("valid").fingerprint();
    let deltas = [&create, &tag, &rotation, &stale];
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 3, 0, 1]] {
        let mut merged = Registry::new();
        order.iter().for_each(|&i| {
            merged.merge(deltas[i]);
        });
        for policy in [Policy::default(), Policy::prefer(B), Policy::prefer(C)] {
            let device = merged.device(&key(), &policy).expect("live");
            assert_eq!(device.authentication, sas(K1, K1), "{order:?} {policy:?}");
            assert!(!device.authentication.fingerprints().contains(&old));
            let conflict = authentication_conflict(&device.conflicts);
            assert_eq!(conflict.rule, Rule::RetiredCredentialExcluded);
        }
    }
}
