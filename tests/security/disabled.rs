//! A disabled device is never re-enabled by a stale state: while the disabled incarnation
//! lives it reads disabled under every policy (the property), a stale enable is refused or
//! settled by disable-wins and listed either way, a disable wins over a concurrent enable
//! whatever the stamps, and only an enable that saw the disable stands. A creation delivered
//! after its own writes is no stale value.

use crate::common::{self, event, fork_plan};
use failback::{
    Authentication, Identity, Ingest, Policy, Registry, Rule, Section, Stale, Stamp, Status,
    StatusValue,
};
use proptest::prelude::*;
use serde_json::json;

use super::*;

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn stale_replica_never_reenables_device(plan in fork_plan()) {
        let disable = StatusValue::new(Status::Disabled, Some("compromised".into()));
        let fork = plan.run_on_a_device(|w, key| w.set_status(key, disable));
        let disabled = &fork.acted_on;
        let policies = fork.policies();
        combinations(&fork, |state| {
            for policy in &policies {
                let Some(device) = state.device(&fork.key, policy) else { continue };
                // A stale delete can remove the disabled incarnation, and a re-create after it
                // stands as a new device; while the disabled incarnation lives, it is disabled.
                if touches(&device.incarnations, disabled) {
                    prop_assert_eq!(device.status.status, Status::Disabled, "{:?} under {:?}", device, policy);
                }
            }
            Ok(())
        })?;
    }

    /// README: a stale enable is "refused and listed in the report (... whether a write set it
    /// or the device was created with it, for the devices a merge changes)". A stale state
    /// showing the disabled incarnation enabled, merged into the disabled state so that the
    /// device's records change, is named: its write refused as a re-enable, or the enable
    /// settled by disable-wins.
    #[test]
    fn a_stale_enable_a_merge_refuses_is_listed(plan in fork_plan()) {
        let disable = StatusValue::new(Status::Disabled, Some("compromised".into()));
        let fork = plan.run_on_a_device(|w, key| w.set_status(key, disable));
        let key = &fork.key;
        let policy = Policy::default();
        // A device enabled now was re-enabled by a write that saw the disable.
        stale_merges_changing_the_device(&fork, &policy, |old, now, report| {
            if old.status.status != Status::Enabled || now.status.status != Status::Disabled {
                return Ok(());
            }
            let refused = report
                .rejected
                .iter()
                .any(|r| &r.key == key && r.kind == Stale::Reenable);
            let settled = (report.conflicts.iter())
                .any(|c| &c.key == key && c.rule == Rule::DisableWins);
            prop_assert!(
                refused || settled,
                "stale enable of {} not listed: {:?}\nstale {:?}\nnow {:?}",
                key, report, old, now
            );
            Ok(())
        })?;
    }
}

#[test]
fn disable_wins_over_a_concurrent_enable_whatever_the_stamps_and_policy() {
    let (mut a, mut b) =
        base(Identity::default().with_status(StatusValue::new(Status::Disabled, None)));
    a.writer(A, Stamp::new(2, 0))
        .set_status(
            &key(),
            StatusValue::new(Status::Disabled, Some("lost".into())),
        )
        .expect("live");
    b.writer(B, Stamp::new(9, 0))
        .set_status(&key(), StatusValue::new(Status::Enabled, None))
        .expect("live");

    for (mut into, from) in [(a.clone(), &b), (b.clone(), &a)] {
        let report = into.merge(from);
        for policy in [Policy::default(), Policy::prefer(A), Policy::prefer(B)] {
            let device = into.device(&key(), &policy).expect("live");
            assert_eq!(device.status.status, Status::Disabled);
        }
        let conflict = report
            .conflicts
            .iter()
            .find(|c| c.field == "status")
            .expect("reported");
        assert_eq!(
            (conflict.rule, conflict.security),
            (Rule::DisableWins, true)
        );
    }
}

#[test]
fn reenable_after_disable_stands_and_stale_states_do_not_undo_it() {
    let (mut a, mut b) = base(Identity::default());
    let stale = a.clone();
    a.writer(A, Stamp::new(2, 0))
        .set_status(&key(), StatusValue::new(Status::Disabled, None))
        .expect("live");
    b.merge(&a);
    b.writer(B, Stamp::new(1, 0)) // an older stamp: causality, not clocks, decides
        .set_status(&key(), StatusValue::new(Status::Enabled, None))
        .expect("live");
    a.merge(&b);
    a.merge(&stale);
    let device = a.device(&key(), &Policy::prefer(A)).expect("live");
    assert_eq!(device.status.status, Status::Enabled);
    assert!(device.conflicts.is_empty());
}

/// A lagging replica that writes something else still shows the status and credentials it
/// last saw; merged with the disable and the rotation it missed, they are refused and listed
/// alike whether a write set them or the create did (2026-11-23, found in review: only a
/// write's were listed).
#[test]
fn a_stale_status_or_credential_is_listed_whether_a_write_or_the_create_set_it() {
    let set = |registry: &mut Registry, at: u64, status: Status, credentials: Authentication| {
        let mut writer = registry.writer(A, Stamp::new(at, 0));
        writer
            .set_status(&key(), StatusValue::new(status, None))
            .expect("live");
        writer
            .set_authentication(&key(), credentials)
            .expect("live");
    };
    for set_by_a_write in [false, true] {
        let (mut a, _) = base(Identity::default().with_authentication(sas(K0, K1)));
        if set_by_a_write {
            set(&mut a, 2, Status::Enabled, sas(K0, K1));
        }
        let mut lagging = a.clone();
        set(&mut a, 5, Status::Disabled, sas(K2, K3));
        lagging
            .writer(B, Stamp::new(9, 0))
            .set_twin(&key(), Section::Tags, "site", Some(json!("oslo")))
            .expect("live");

        let report = a.merge(&lagging);
        assert_eq!(report.updated, 1);
        let kinds: Vec<Stale> = report.rejected.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [Stale::Reenable, Stale::CredentialRestore],
            "set by a write: {set_by_a_write}"
        );
        let device = a.device(&key(), &Policy::prefer(B)).expect("live");
        assert_eq!(device.status.status, Status::Disabled);
        assert_eq!(device.authentication, sas(K2, K3));
        // The other way, the lagging side takes the writes it missed: nothing of its own is
        // refused.
        let mut other_way = lagging.clone();
        assert!(other_way.merge(&a).rejected.is_empty());
    }
}

/// A creation delivered after the writes that followed it (events out of order) is no lagging
/// replica's value: nothing is listed as refused, as when delivered in order; and the two
/// merge directions of the creation and a disable list the same (2026-11-23, found in review).
#[test]
fn a_creation_delivered_after_its_writes_is_no_stale_value() {
    let mut origin = Registry::new();
    let created = origin
        .writer(A, Stamp::new(1, 0))
        .create(&key(), Identity::default().with_authentication(sas(K0, K1)))
        .expect("fresh");
    let disabled = origin
        .writer(A, Stamp::new(2, 0))
        .set_status(&key(), StatusValue::new(Status::Disabled, None))
        .expect("live");
    let rotated = origin
        .writer(A, Stamp::new(3, 0))
        .set_authentication(&key(), sas(K2, K3))
        .expect("live");
    let mut late = Ingest::new(Registry::new());
    for (id, delta) in [("d", &disabled), ("r", &rotated), ("c", &created)] {
        let report = late.apply(&event(id, delta.clone())).expect("consistent");
        assert!(report.rejected.is_empty(), "{id}: {:?}", report.rejected);
    }
    assert_eq!(late.registry(), &origin);
    let (mut x, mut y) = (created.clone(), disabled.clone());
    let (xy, yx) = (x.merge(&disabled), y.merge(&created));
    assert_eq!(x, y);
    assert_eq!(xy.rejected, yx.rejected);
}
