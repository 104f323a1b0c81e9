//! Security invariants: no stale state resurrects a deleted device, re-enables a disabled one,
//! or restores a rotated-out credential, whatever the merge order and the reader's policy.
//!
//! The properties run a [`common::ForkPlan`]: after a shared history one replica acts (delete,
//! disable, rotate) while the others, stale, keep writing among themselves without ever seeing
//! the action; then every stale state is merged with the actor's, one at a time in a random
//! order (each prefix checked) and all at once in both directions.
//!
//! One invariant per module, each with its property and the rules one at a time; the fork's
//! combinations and the device the rules are written on are shared, here.

mod common;

/// A rotated-out credential never returns, and one a merge keeps out is named.
#[path = "security/credentials.rs"]
mod credentials;
/// A deleted device stays deleted, and the updates a delete lost are named.
#[path = "security/deleted.rs"]
mod deleted;
/// A disabled device is never re-enabled by a stale state.
#[path = "security/disabled.rs"]
mod disabled;
/// A record whose creation has not arrived takes no write that would undo it unseen.
#[path = "security/pending.rs"]
mod pending;
/// Secrets are shown by their fingerprints, never whole.
#[path = "security/secrets.rs"]
mod secrets;

use common::{Fork, bytes};
use failback::{
    Authentication, Conflict, Device, DeviceKey, Dot, Identity, Pair, Policy, Registry, ReplicaId,
    Report, Stamp, SymmetricKey,
};
use proptest::prelude::*;

/// Every way to combine the fork: each stale state merged into the actor's state in turn
/// (every prefix), the stale states pre-joined and merged in, and the reverse direction.
/// `check` sees each result, and the report of the merge that produced it.
fn combinations(
    fork: &Fork,
    mut check: impl FnMut(&Registry) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    check(&fork.after)?;
    let mut target = fork.after.clone();
    let mut stale_join = Registry::new();
    for stale in &fork.stale {
        target.merge(stale);
        check(&target)?;
        stale_join.merge(stale);
    }
    let mut forward = fork.after.clone();
    forward.merge(&stale_join);
    check(&forward)?;
    let mut backward = stale_join;
    backward.merge(&fork.after);
    check(&backward)?;
    prop_assert_eq!(bytes(&forward), bytes(&backward));
    Ok(())
}

fn touches(incarnations: &[Dot], of: &[Dot]) -> bool {
    incarnations.iter().any(|i| of.contains(i))
}

/// Each of `fork`'s stale states merged in turn into the state after the action, where the
/// merge changed the device's records and both the stale state and the result show the device
/// the action applied to (a delete and re-create is a new device; a pending record shows
/// nothing yet): `check` sees the stale state's read, the read now, and the merge's report.
fn stale_merges_changing_the_device(
    fork: &Fork,
    policy: &Policy,
    mut check: impl FnMut(&Device, &Device, &Report) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let key = &fork.key;
    let mut target = fork.after.clone();
    for stale in &fork.stale {
        let before = target.records(key).to_vec();
        let report = target.merge(stale);
        if before == target.records(key) {
            continue;
        }
        let (Some(old), Some(now)) = (stale.device(key, policy), target.device(key, policy)) else {
            continue;
        };
        let same_device = touches(&old.incarnations, &fork.acted_on)
            && touches(&now.incarnations, &fork.acted_on);
        if !old.pending && same_device {
            check(&old, &now, &report)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The rules one at a time: a device and keys the tests share.

const A: ReplicaId = ReplicaId::from_u128(1);
const B: ReplicaId = ReplicaId::from_u128(2);

fn key() -> DeviceKey {
    DeviceKey::device("thermostat-1").expect("valid")
}

fn sas(primary: &str, secondary: &str) -> Authentication {
    let k = |s: &str| Some(SymmetricKey::new(s).expect("valid"));
    Authentication::sas(Pair::new(k(primary), k(secondary)))
}

/// `replica` writes `authentication` to the shared device ([`key`]) at `millis`.
fn rotate(
    registry: &mut Registry,
    replica: ReplicaId,
    millis: u64,
    authentication: Authentication,
) {
    registry
        .writer(replica, Stamp::new(millis, 0))
        .set_authentication(&key(), authentication)
        .expect("live");
}

const K0: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
const K1: &str = "YWJjZGVmZ2hpamtsbW5vcA==";
const K2: &str = "cXJzdHV2d3h5ejAxMjM0NQ==";
const K3: &str = "QUJDREVGR0hJSktMTU5PUA==";

/// The conflict over `authentication` among `conflicts`, which must list one.
fn authentication_conflict(conflicts: &[Conflict]) -> &Conflict {
    let found = conflicts.iter().find(|c| c.field == "authentication");
    found.expect("an authentication conflict is listed")
}

/// A registry holding one device created by A, and a copy of it for B.
fn base(identity: Identity) -> (Registry, Registry) {
    let mut a = Registry::new();
    a.writer(A, Stamp::new(1, 0))
        .create(&key(), identity)
        .expect("fresh");
    let b = a.clone();
    (a, b)
}
