//! The planner: what planning reads, shared by every block, and the one walk over the keys, in
//! order, that settles each device and hands it to the plan's line decisions.
//!
//! Apart from [`Plan`] because the walk is where the concepts meet: the limit on identities
//! decides its creations beforehand, the edge parents its lines' scopes, the blocks which keys
//! it walks at a time.

use std::collections::BTreeSet;

use super::lines::{Known, primary_scope_stale};
use super::parent::{Parent, stands_as_parent};
use super::scopes::Scopes;
use super::{Blocked, Plan, device_of, is_live};
use crate::error::Result;
use crate::iothub::lift::{Failback, PrimaryLine, Side};
use crate::iothub::line::ExportLine;
use crate::key::{DeviceId, DeviceKey};
use crate::view::Device;

/// What planning reads, shared by every block.
pub(super) struct Planner<'f> {
    pub(super) failback: &'f Failback,
    policy: &'f crate::policy::Policy,
    pub(super) merged: &'f crate::registry::Registry,
    primary: &'f crate::registry::Registry,
    /// Each edge device the primary's export names, and its scope there.
    pub(super) scopes: Scopes,
    /// Device ids whose creations the plan blocks, lest the primary hold more identities than
    /// IoT Hub allows (see [`Planner::over_limit`]), and why.
    pub(super) capped: BTreeSet<DeviceId>,
    pub(super) capped_reason: String,
}

impl<'f> Planner<'f> {
    /// The planner for `failback`, keeping the primary within `limit` identities; a plan run
    /// to find which creations the limit blocks, if any, runs on `workers` threads.
    pub(super) fn new(failback: &'f Failback, limit: u64, workers: usize) -> Self {
        let mut planner = Planner {
            failback,
            policy: failback.policy(),
            merged: failback.merged(),
            primary: failback.replica(Side::Primary),
            scopes: Scopes::of(&failback.primary_lines),
            capped: BTreeSet::new(),
            capped_reason: String::new(),
        };
        let (capped, reason) = planner.over_limit(limit, workers);
        (planner.capped, planner.capped_reason) = (capped, reason);
        planner
    }

    /// Every key of the merged registry or of the primary's export, in order, once.
    pub(super) fn keys(&self) -> impl Iterator<Item = &'f DeviceKey> + 'f {
        let mut keys = self.merged.keys().peekable();
        let mut was_keys = self.failback.primary_lines.keys().peekable();
        std::iter::from_fn(move || match (keys.peek(), was_keys.peek()) {
            (None, None) => None,
            (Some(a), Some(b)) if a <= b => {
                let key = *a;
                keys.next();
                was_keys.next_if(|b| *b == key);
                Some(key)
            }
            (Some(_), Some(_)) | (None, Some(_)) => was_keys.next(),
            (Some(_), None) => keys.next(),
        })
    }

    /// Plans `keys`, in order, into `plan`, handing each merged line to `sink`. Every key of
    /// a device id must be among `keys` or none (see [`Plan::stream_json_on`]).
    pub(super) fn plan<'k>(
        &self,
        keys: impl Iterator<Item = &'k DeviceKey>,
        plan: &mut Plan,
        sink: &mut impl FnMut(ExportLine) -> Result<()>,
    ) -> Result<()> {
        // Devices this plan creates. Keys come in order, a device before its modules, so a
        // module's device is settled before the module.
        let mut created = BTreeSet::new();
        for key in keys {
            let was = self.failback.primary_lines.get(key);
            let Some(device) = self.live_device(key, plan) else {
                if let Some(was) = was {
                    plan.delete(key, was, self.failback);
                }
                continue;
            };
            let (line, parent) = self.merged_line(&device, was);
            let mut merged = MergedLine {
                key,
                device,
                line,
                parent,
                was,
            };
            plan.merged_devices += 1;
            if merged.parent == Parent::Pending {
                plan.pending_parent.push(key.clone());
            }
            self.list_parent_gone(&merged, plan);
            self.list_parent_unwritable(&merged, plan);
            if key.module.is_some() {
                if self.held_with_its_device(&merged, plan, &created) {
                    sink(merged.line)?;
                    continue;
                }
                if plan.pending_parent.binary_search(key).is_ok() {
                    merged.parent = Parent::Pending;
                }
            }
            self.create_or_update(&merged, plan, &mut created);
            sink(merged.line)?;
        }
        Ok(())
    }

    /// The merged device at `key`, its conflicts noted in `plan`, if it is live.
    fn live_device(&self, key: &DeviceKey, plan: &mut Plan) -> Option<Device> {
        let device = self.merged.device(key, self.policy);
        if let Some(device) = &device {
            plan.conflicts.extend(device.conflicts.iter().cloned());
        }
        // A module created on one side of a device the other side deleted is gone with
        // its device: IoT Hub deletes a device's modules with it and creates none without
        // it. (The report lists it as an existence conflict.)
        device.filter(|_| key.module.is_none() || is_live(self.failback, &device_of(key)))
    }

    /// Lists in [`Plan::parent_gone`] a device whose edge parent no run can write because it
    /// is gone, where a side moved the device there.
    fn list_parent_gone(&self, merged: &MergedLine<'_>, plan: &mut Plan) {
        let MergedLine {
            key,
            device,
            parent,
            ..
        } = merged;
        let failback = self.failback;
        // Listed where a side moved the device behind that parent (or created it there),
        // whichever side: what it asked for, the plan cannot write. Leaves the base already
        // had behind a gateway one side deleted are left to the hub, unlisted.
        let moved = || {
            let base = failback.base_identity(key);
            base.is_none_or(|base| base.parent != device.parent)
        };
        // A device waiting for the secondary's parent because the merged one is gone is
        // listed too: the parent it gets is not the one the merge chose.
        let merged_gone = || {
            let stands = |owner: &DeviceId| stands_as_parent(failback, &self.scopes, owner);
            device.parent.as_ref().is_some_and(|owner| !stands(owner))
        };
        let gone = *parent == Parent::Gone || (*parent == Parent::Pending && merged_gone());
        if gone && moved() {
            plan.parent_gone.push((*key).clone());
        }
    }

    /// Whether the module `merged.key`, of a device not in the primary, waits with its device
    /// (`created` by this plan, or waiting itself) or is blocked with it (listed so in `plan`):
    /// its line is then merged, and nothing more.
    fn held_with_its_device(
        &self,
        merged: &MergedLine<'_>,
        plan: &mut Plan,
        created: &BTreeSet<DeviceId>,
    ) -> bool {
        let key = merged.key;
        let device_key = device_of(key);
        // A module of a device that is not in the primary cannot be created: it waits with
        // its device, or is blocked with it. Even where this plan creates the device: IOTHUB.md
        // does not say that the hub applies an import's lines in order, so the module's create
        // could come before its device's and fail (into importErrors.log), and the plan would
        // rely on the order it refuses to rely on elsewhere (deletes are no room, the twin is
        // not split off). It waits for the next run, as a leaf of a new gateway does.
        let system = key.module.as_ref().is_some_and(|m| m.is_system());
        if system || self.failback.primary_lines.contains_key(&device_key) {
            return false;
        }
        if created.contains(&key.device) || plan.pending_parent.contains(&device_key) {
            plan.pending_parent.push(key.clone());
            return true;
        }
        // Blocked entries come in key order: the device's is among the last.
        let mut same_device = plan
            .blocked
            .iter()
            .rev()
            .take_while(|b| b.key.device == key.device);
        if let Some(blocked) = same_device.find(|b| b.key == device_key) {
            let reason = format!("its device is blocked: {}", blocked.reason);
            plan.blocked.push(Blocked {
                key: key.clone(),
                reason,
            });
            return true;
        }
        false
    }

    /// Plans the line that writes `merged` into the primary: a create where the primary lacks
    /// the device (noted in `created`), an update where it holds it otherwise, or its block.
    fn create_or_update(
        &self,
        merged: &MergedLine<'_>,
        plan: &mut Plan,
        created: &mut BTreeSet<DeviceId>,
    ) {
        let MergedLine {
            key,
            device,
            line,
            parent,
            was,
        } = merged;
        let (failback, policy, primary) = (self.failback, self.policy, self.primary);
        match was {
            // Created without it, the device would read on the next run as the primary's
            // own parentless creation (see `Parent::Pending`); it waits with its parent.
            None if *parent == Parent::Blocked => {
                let owner = device.parent.as_ref().map_or("", DeviceId::as_str);
                let reason = format!(
                    "its edge parent {owner:?} is blocked (see its entry), and the hub \
                     gives a leaf the scope of a parent it holds: resolve the parent first"
                );
                plan.block(key, reason);
            }
            None => {
                let capped = self.capped(key);
                if plan.create(device, line, *parent, capped) && key.module.is_none() {
                    created.insert(key.device.clone());
                }
            }
            // A slot the merge left shared with the primary's replica holds the primary's
            // device as it is: nothing to write. (A leaf whose gateway this plan deletes or
            // makes plain is left to the hub, like the children of a gateway deleted there.)
            // But for a stale scope, which the replica, knowing parents by id, cannot show.
            Some(was)
                if !self.merged.shares_slot(primary, key)
                    || primary_scope_stale(failback, key, was) =>
            {
                if let Some(now) = primary.device(key, policy) {
                    let known =
                        Known::of(failback, &self.scopes, (key, device.parent.as_ref()), was);
                    plan.update(device, &now, was, line, *parent, known);
                }
            }
            Some(_) => {}
        }
    }
}

/// A live key of the merged registry as the walk settles it: its device, its merged line,
/// what became of its edge parent, and the primary's line for it, if any.
pub(super) struct MergedLine<'a> {
    pub(super) key: &'a DeviceKey,
    pub(super) device: Device,
    pub(super) line: ExportLine,
    pub(super) parent: Parent,
    pub(super) was: Option<&'a PrimaryLine>,
}
