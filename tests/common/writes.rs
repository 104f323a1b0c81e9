//! How an abstract write ([`Op`]) lands on a replica's current state: redirected to a key it
//! is valid for ([`choose`], [`write`]), a rotation made the credential value it writes
//! ([`concrete`]), then performed ([`perform`]).

use failback::{
    AuthType, Authentication, Capabilities, DeviceKey, Pair, Registry, Stamp, Status, StatusValue,
    Writer,
};

use super::history::Op;
use super::pools::{KEYS, SECRETS, THUMBPRINTS, key, replica, symmetric, thumbprint};

/// Where `op` lands for a replica whose live keys are `live`, and what it becomes there: a
/// create goes to a key that is not live (or, every key being live, becomes a delete of the
/// wanted key so that re-creates follow); any other write goes to a live key (or, none being
/// live, becomes a create of the wanted key). A disable of a module becomes an enable.
pub fn choose(live: &[DeviceKey], k: usize, op: &Op) -> (DeviceKey, Op) {
    let wanted = key(k);
    let (target, op) = match op {
        Op::Create(_) => match (0..KEYS).map(|i| key(k + i)).find(|c| !live.contains(c)) {
            Some(free) => (free, op.clone()),
            None => (wanted, Op::Delete),
        },
        _ if live.is_empty() => (wanted, Op::Create(Box::default())),
        _ if live.contains(&wanted) => (wanted, op.clone()),
        _ => (live[k % live.len()].clone(), op.clone()),
    };
    let op = enabled_if_module(&target, op);
    (target, op)
}

/// `op` for `key`, a disable turned into an enable (reason kept) when `key` is a module: IoT
/// Hub modules cannot be disabled, and the writer refuses it.
pub fn enabled_if_module(key: &DeviceKey, op: Op) -> Op {
    match op {
        Op::Status(value) => Op::Status(status_for(key, value)),
        Op::Create(mut identity) => {
            identity.status = status_for(key, identity.status);
            Op::Create(identity)
        }
        op => op,
    }
}

/// `value` as `key`'s status: a module's disable becomes an enable with the same reason.
pub fn status_for(key: &DeviceKey, value: StatusValue) -> StatusValue {
    match value.status {
        Status::Disabled if key.module.is_some() => StatusValue::new(Status::Enabled, value.reason),
        _ => value,
    }
}

/// Applies `op` at replica `r`, redirected by [`choose`]; returns the delta.
/// A write that needs the creation it follows (any but a create, a delete, a disable and a
/// credential change: `Error::PendingDevice`) on a pending key (a later write arrived before
/// its creation) goes to a key that is not pending, or becomes that key's delete when every
/// live key is pending.
pub fn write(registry: &mut Registry, r: usize, k: usize, stamp: Stamp, op: &Op) -> Registry {
    let live: Vec<DeviceKey> = registry.keys().cloned().collect();
    let (mut target, mut op) = choose(&live, k, op);
    let over_pending = match &op {
        Op::Create(_) | Op::Delete | Op::Authentication(_) | Op::Rotate { .. } => true,
        Op::Status(value) => value.status == failback::Status::Disabled,
        _ => false,
    };
    if !over_pending && is_pending(registry, &target) {
        let writable = writable_keys(registry);
        match writable.get(k % writable.len().max(1)) {
            Some(other) => target = other.clone(),
            None => op = Op::Delete,
        }
    }
    let op = concrete(registry, &target, op);
    perform(&mut registry.writer(replica(r), stamp), &target, &op)
        .expect("a write chosen for the replica's current state is valid")
}

/// `op` as written to `key` of `registry`: an [`Op::Rotate`] becomes the credential value it
/// writes there ([`rotation`] of what a default reader sees, [`carrying_unused`] if it
/// carries), any other op is itself.
pub fn concrete(registry: &Registry, key: &DeviceKey, op: Op) -> Op {
    match op {
        Op::Rotate { keep, with, carry } => {
            let current = registry
                .device(key, &failback::Policy::default())
                .map(|d| d.authentication)
                .unwrap_or_default();
            let rotated = rotation(&current, keep, with);
            Op::Authentication(match carry {
                true => carrying_unused(rotated, with),
                false => rotated,
            })
        }
        op => op,
    }
}

/// `current` rotated: keeps the credential in slot `keep` of its keys (of its thumbprints if
/// it is self-signed; unknown counts as empty) and puts in the other slot the first pool
/// credential from `with` on that `current` does not hold, retiring what that slot held.
pub fn rotation(current: &Authentication, keep: usize, with: usize) -> Authentication {
    fn rotate<T: Clone + PartialEq>(
        pair: Option<&Pair<T>>,
        keep: usize,
        fresh: impl Iterator<Item = T>,
    ) -> Pair<T> {
        let pair = pair.cloned().unwrap_or_default();
        let mut fresh = fresh.filter(|c| pair.iter().all(|held| held != c));
        let new = fresh.next().expect("a pool larger than a pair");
        if keep % 2 == 0 {
            Pair::new(pair.primary, Some(new))
        } else {
            Pair::new(Some(new), pair.secondary)
        }
    }
    if current.kind == AuthType::SelfSigned {
        let pool = (with..with + THUMBPRINTS).map(thumbprint);
        Authentication::self_signed(rotate(current.thumbprints.as_ref(), keep, pool))
    } else {
        let pool = (with..with + SECRETS.len()).map(symmetric);
        Authentication::sas(rotate(current.keys.as_ref(), keep, pool))
    }
}

/// `rotated` (a [`rotation`]: SAS or self-signed) also writing both pool credentials from
/// `with` on of the kind its type does not use: thumbprints beside SAS keys, keys beside
/// thumbprints. A device never holds them (`held`), so the rotation retires them wherever a
/// reader saw them, as it retires what its own kind no longer holds.
pub fn carrying_unused(rotated: Authentication, with: usize) -> Authentication {
    match rotated.kind {
        AuthType::SelfSigned => Authentication {
            keys: Some(Pair::new(Some(symmetric(with)), Some(symmetric(with + 1)))),
            ..rotated
        },
        _ => Authentication {
            thumbprints: Some(Pair::new(
                Some(thumbprint(with)),
                Some(thumbprint(with + 1)),
            )),
            ..rotated
        },
    }
}

/// Whether a live incarnation of `key` has not received its creation.
pub fn is_pending(registry: &Registry, key: &DeviceKey) -> bool {
    registry.records(key).iter().any(|r| !r.is_created())
}

/// The live keys every write can address: none of their incarnations is pending.
pub fn writable_keys(registry: &Registry) -> Vec<DeviceKey> {
    registry
        .keys()
        .filter(|k| !is_pending(registry, k))
        .cloned()
        .collect()
}

/// Applies `op` to `key` as it is (no redirection).
pub fn perform(w: &mut Writer<'_>, key: &DeviceKey, op: &Op) -> failback::Result<Registry> {
    match op {
        Op::Create(identity) => w.create(key, (**identity).clone()),
        Op::Delete => w.delete(key),
        Op::Status(v) => w.set_status(key, v.clone()),
        Op::Authentication(a) => w.set_authentication(key, a.clone()),
        Op::Rotate { .. } => unreachable!("a rotation is made concrete first (`concrete`)"),
        Op::Capabilities(edge) => w.set_capabilities(key, Capabilities { iot_edge: *edge }),
        Op::Parent(p) => w.set_parent(key, p.clone()),
        Op::Twin(section, path, value) => w.set_twin(key, *section, path, value.clone()),
        Op::Patch(section, patch) => w.patch_twin(key, *section, patch),
        Op::Metadata(name, value) => w.set_metadata(key, name, value.clone()),
    }
}
