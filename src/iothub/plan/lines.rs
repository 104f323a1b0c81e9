//! The line each device gets in the import: a create, a guarded delete, a full update, a twin
//! update, or none and an entry saying why (blocked, or left to the edge runtime), and the
//! checks each line must pass.
//!
//! Apart from `plan.rs` because these are the decisions about one device, made once the walk
//! (`planner.rs`) has settled its merged line and its parent: `plan.rs` holds the public plan and
//! how it is made and streamed, and the other files the decisions that span devices (edge
//! parents, the identity limit, blocks on worker threads) or the changes that cannot wait
//! (`urgent.rs`), written less than whole (`alone.rs`, `detached.rs`).

use super::detached::detached_kept;
use super::parent::{Parent, stands_as_parent};
use super::scopes::Scopes;
use super::{Blocked, Plan, device_of, is_live, key_of};
use crate::iothub::import_mode::ImportMode;
use crate::iothub::lift::{BaseCredentials, Failback, PrimaryLine};
use crate::iothub::line::ExportLine;
use crate::iothub::writable::{
    base_decides_credentials, fits, has_etag, keeps_edge, replaces_known, resolved, usable,
};
use crate::key::{DeviceId, DeviceKey};
use crate::view::Device;

impl Plan {
    /// Plans the creation (`create`) of `device`, live in the merged registry and absent from
    /// the primary, from its merged line `line`; `capped` is why the identity limit leaves no
    /// room for it, if it does not. Whether a create line was written: a system module is left
    /// to the edge runtime, a device that cannot be created or does not fit is blocked, and
    /// one whose parent has no scope yet waits for the next run.
    pub(super) fn create(
        &mut self,
        device: &Device,
        line: &ExportLine,
        parent: Parent,
        capped: Option<&str>,
    ) -> bool {
        if device.key.module.as_ref().is_some_and(|m| m.is_system()) {
            self.system_modules.push(device.key.clone());
            return false;
        }
        if let Err(reason) = creatable(device, line) {
            self.block(&device.key, reason);
            return false;
        }
        // Created without its parent, the device would read on the next run as the primary's
        // own parentless creation, a concurrent write that the preference could let win over
        // the parent for good. The next run creates it whole, once the parent has its scope.
        if parent == Parent::Pending {
            return false;
        }
        if let Some(reason) = capped {
            self.block(&device.key, reason.to_owned());
            return false;
        }
        self.import.push(ExportLine {
            import_mode: Some(ImportMode::Create),
            e_tag: None,
            twin_e_tag: None,
            reported: None,
            ..line.clone()
        });
        true
    }

    /// Plans the delete (`deleteIfMatchETag`, guarded by the primary's eTag so that a device
    /// changed on the primary since its export is not deleted) of `key`, which the primary's
    /// line `was` holds and the merged registry does not, or its block where that line has no
    /// eTag. A module goes with its deleted device, so it gets no line of its own; a system
    /// module is left to the edge runtime.
    pub(super) fn delete(&mut self, key: &DeviceKey, was: &PrimaryLine, failback: &Failback) {
        // Deleting a device deletes its modules with it; a separate line would fail.
        if key.module.is_some() {
            let device = device_of(key);
            if failback.primary_lines.contains_key(&device) && !is_live(failback, &device) {
                return;
            }
        }
        // The runtime's: taken from under a running edge device, it would break the device.
        // (The hub deletes system modules with their device, which returned above.)
        if key.module.as_ref().is_some_and(|m| m.is_system()) {
            self.system_modules.push(key.clone());
            return;
        }
        if was.e_tag.is_none() {
            let reason = "the merged registry deletes it, but the primary's export has no eTag \
                          for deleteIfMatchETag: re-export the primary, or delete it by hand";
            self.block(key, reason.into());
            return;
        }
        let mut line = ExportLine::new(key.clone(), was.status);
        line.e_tag.clone_from(&was.e_tag);
        line.import_mode = Some(ImportMode::DeleteIfMatchETag);
        self.import.push(line);
    }

    /// Writes no line for `key` and says why: the operator decides.
    pub(super) fn block(&mut self, key: &DeviceKey, reason: String) {
        self.blocked.push(Blocked {
            key: key.clone(),
            reason,
        });
    }

    /// Plans what brings the primary's `now` (its line `was`) to the merged `device` (its
    /// merged line `line`): a full update where the identity differs, a twin update where only
    /// the twin does, nothing where neither does, or a block where no rule settled the
    /// credentials or the update cannot be written safely.
    pub(super) fn update(
        &mut self,
        device: &Device,
        now: &Device,
        was: &PrimaryLine,
        line: &ExportLine,
        parent: Parent,
        known: Known,
    ) {
        let differs = Differences::between(device, now, parent, known);
        // The runtime's: an update would put the secondary's keys over those the hub made for
        // the primary's runtime, and the edge device would stop connecting.
        if device.key.module.as_ref().is_some_and(|m| m.is_system()) {
            if differs.identity || differs.twin || resolved(device).is_err() {
                self.system_modules.push(device.key.clone());
            }
            return;
        }
        // Crossed rotations leave the device to an operator whichever side won: even when the
        // primary already holds the winner, it holds a key the other side rotated out. So do
        // credentials the two sides hold differently over a base exported without them, or
        // without a line for the device.
        // A disable or a rotation among the withheld changes is written alone where it can be
        // (see `alone.rs`), and the blocked entry says whether it is. (A rotation of credentials
        // no rule settled never is: the entry says it is not applied.)
        if let Err(reason) = settled(device, known) {
            self.block_update((device, now), (was, line), parent, known, reason);
            return;
        }
        if differs.identity {
            self.full_update((device, now), (was, line), parent, known);
        } else if differs.twin {
            self.twin_update(device, was, line);
        }
    }

    /// Plans the full update (`updateIfMatchETag`) of `device` over the primary's `now` (its
    /// line `was`), from the merged line `line`, or its block.
    fn full_update(
        &mut self,
        (device, now): (&Device, &Device),
        (was, line): (&PrimaryLine, &ExportLine),
        parent: Parent,
        known: Known,
    ) {
        if let Err(reason) = updatable(device, was, line, known) {
            self.block_update((device, now), (was, line), parent, known, reason);
            return;
        }
        let mut update = ExportLine {
            import_mode: Some(ImportMode::UpdateIfMatchETag),
            twin_e_tag: None,
            reported: None,
            ..line.clone()
        };
        // The merged line leaves an empty section out. IOTHUB.md says an update overwrites,
        // not whether an absent section is cleared or kept: one the merge emptied is written
        // empty, so that the primary's is cleared either way.
        if device.tags.is_empty() && !now.tags.is_empty() {
            update.tags = Some(serde_json::Map::new());
        }
        if device.desired.is_empty() && !now.desired.is_empty() {
            update.desired = Some(serde_json::Map::new());
        }
        // Detached now, the device would read on the next run as the primary's own move to
        // no parent, which the preference could let win over the new parent for good.
        if parent == Parent::Pending {
            // Nor can it keep a gateway this plan deletes or makes plain, nor a stale scope (one
            // of a gateway the primary deleted, which this plan creates again): the hub refuses a
            // scope naming no edge device, and the line, its other changes with it, would fail
            // (a leaf moved off a replaced gateway and disabled, say). It waits whole, as a
            // creation does, and the next run writes it with the new gateway's scope. But for a
            // disable or a credential rotation, which must not wait for a second run: the update
            // is written now without a parent where the next run still completes it
            // (`detached.rs`).
            if !known.primary_parent_stays {
                self.write_detached((device, now), was, update, known);
                return;
            }
            // Only a parent that is another device: a gateway the merge demotes (and moves
            // behind the new gateway) has its own scope in the primary, and a plain device whose
            // scope names itself would be its own parent, a scope the hub holds for no edge
            // device once the line is imported. It is written without one, its other changes
            // (a disable among them) with it, and the next run gives it the new gateway's scope.
            let other = |owner: &DeviceId| *owner != device.key.device;
            if was.scope_owner.as_ref().is_some_and(other) {
                update.device_scope.clone_from(&was.device_scope);
                update.parent.clone_from(&was.scope_owner);
            } else {
                update.device_scope = None;
                update.parent = None;
            }
        }
        self.import.push(update);
    }

    /// Plans the twin update (`updateTwinIfMatchETag`) of `device` over the primary's line
    /// `was`, its merged line being `line`, or its block.
    fn twin_update(&mut self, device: &Device, was: &PrimaryLine, line: &ExportLine) {
        let mut twin = ExportLine::new(line.key.clone(), line.status);
        twin.import_mode = Some(ImportMode::UpdateTwinIfMatchETag);
        twin.twin_e_tag.clone_from(&was.twin_e_tag);
        twin.tags = Some(device.tags.clone());
        twin.desired = Some(device.desired.clone());
        let writable = has_etag(
            was.twin_e_tag.as_ref(),
            "twinETag",
            ImportMode::UpdateTwinIfMatchETag,
        )
        .and_then(|()| fits(&twin));
        match writable {
            Ok(()) => self.import.push(twin),
            Err(reason) => self.block(&device.key, reason),
        }
    }
}

/// What differs between the merged device and the primary's, for [`Plan::update`].
struct Differences {
    /// Status, credentials, capabilities, or a parent the line can write: a full update.
    identity: bool,
    /// Tags or desired properties: a twin update, where the identity is the same.
    twin: bool,
}

impl Differences {
    /// What differs between the merged `device` and the primary's `now`, the merged parent
    /// having become `parent`, and what else is `known` of it.
    fn between(device: &Device, now: &Device, parent: Parent, known: Known) -> Differences {
        // Only a parent the line can write is a reason to write the device. While the merged
        // parent's scope is pending, the line keeps the primary's (written back unchanged
        // below). Once it is gone, the line keeps the primary's if that one can still be a
        // parent, else none: compared with the merged parent, it would differ on every run and
        // be written again on every run, and a leaf whose gateway is deleted is left to the hub
        // unless something else of it changed (a full update then carries no scope, since the
        // hub refuses one naming no edge device).
        // Parents are compared by device id, and a scope is more: one naming the same id can be
        // stale (its gateway deleted and created again), and then the line writes the current.
        let parent_differs = match parent {
            Parent::Written => device.parent != now.parent || known.primary_scope_stale,
            Parent::Pending | Parent::Gone | Parent::Unwritable | Parent::Blocked => false,
        };
        // `now` is the primary's replica: its own line, with credentials its export left out
        // taken from the base (unknown is never a change).
        let identity = device.status != now.status
            || device.authentication != now.authentication
            || device.capabilities != now.capabilities
            || parent_differs;
        let twin = device.tags != now.tags || device.desired != now.desired;
        Differences { identity, twin }
    }
}

/// Why the plan cannot create `device` (its merged line `line`), if it cannot: the checks
/// [`Plan::create`] makes, which [`Planner::parent_without_scope`] makes of a new gateway too.
///
/// [`Planner::parent_without_scope`]: super::planner::Planner::parent_without_scope
pub(super) fn creatable(device: &Device, line: &ExportLine) -> std::result::Result<(), String> {
    usable(device).and_then(|()| fits(line))
}

/// Why no rule settled `device`'s credentials, if none did: [`Plan::update`] then writes no
/// line at all for it.
pub(super) fn settled(device: &Device, known: Known) -> std::result::Result<(), String> {
    resolved(device).and_then(|()| base_decides_credentials(device, known.base_credentials))
}

/// Why the plan cannot write `device`'s full update (`updateIfMatchETag`, its merged line
/// `line`) over the primary's line `was`, if it cannot: the checks [`Plan::update`] makes once
/// the credentials are [`settled`], which [`Planner::parent_without_scope`] makes of a gateway the plan
/// makes an edge device too.
///
/// [`Planner::parent_without_scope`]: super::planner::Planner::parent_without_scope
pub(super) fn updatable(
    device: &Device,
    was: &PrimaryLine,
    line: &ExportLine,
    known: Known,
) -> std::result::Result<(), String> {
    usable(device)
        .and_then(|()| replaces_known(was))
        .and_then(|()| keeps_edge(device, was, known.named_parent))
        .and_then(|()| has_etag(was.e_tag.as_ref(), "eTag", ImportMode::UpdateIfMatchETag))
        .and_then(|()| fits(line))
}

/// What the plan knows of a device beyond its merged value and the primary's line, for the
/// checks of an update.
#[derive(Clone, Copy, Debug)]
pub(super) struct Known {
    /// What the base's line said of the device's credentials, if it has one.
    pub(super) base_credentials: BaseCredentials,
    /// Whether a line of the primary's export names the device as an edge parent (its scope
    /// names it, and its own line does not state it plain), so that the primary holds it as an
    /// IoT Edge device.
    pub(super) named_parent: bool,
    /// Whether the edge parent the primary's line names (if any) can still be a parent once
    /// the plan is imported ([`stands_as_parent`]), so that a line may keep its scope: not one
    /// the plan deletes or makes plain, nor one whose scope there is stale.
    pub(super) primary_parent_stays: bool,
    /// Whether the scope the primary's line carries names another device but not as that device
    /// is now: one the primary's export does not hold (deleted there; IOTHUB.md: a gateway
    /// created again has another scope), one it states a plain device (made plain there), or a
    /// scope other than the one the device's own line carries. IoT Hub refuses a scope naming
    /// no edge device, so no line writes it back; and compared by parent id alone, the device
    /// would keep it for good. Unknown where the parent's own line states no capabilities and
    /// carries no scope (a child's is then the only evidence): not stale.
    pub(super) primary_scope_stale: bool,
    /// Whether the device, written now without a parent, gets on the next run the gateway it
    /// waits for ([`detached_kept`]). Read only where the primary's parent cannot stay (else
    /// false): only then does a waiting device's line lack a parent.
    pub(super) detached_kept: bool,
}

impl Known {
    /// What is known of `key`, whose line in the primary's export is `was` and whose merged
    /// parent is `merged_parent`.
    pub(super) fn of(
        failback: &Failback,
        scopes: &Scopes,
        (key, merged_parent): (&DeviceKey, Option<&DeviceId>),
        was: &PrimaryLine,
    ) -> Known {
        let parent = was
            .scope_owner
            .as_ref()
            .filter(|owner| **owner != key.device);
        let primary_scope_stale = primary_scope_stale(failback, key, was);
        let primary_parent_stays = !primary_scope_stale
            && parent.is_none_or(|owner| stands_as_parent(failback, scopes, owner));
        // Read from the secondary's replica, built for these few devices only.
        let detached_kept =
            !primary_parent_stays && detached_kept(failback, scopes, key, merged_parent);
        Known {
            base_credentials: failback.base_credentials(key),
            named_parent: key.module.is_none() && scopes.names(&key.device),
            primary_parent_stays,
            primary_scope_stale,
            detached_kept,
        }
    }
}

/// Whether the scope of the primary's line `was` for `key` names another device, but not as
/// that device is now ([`Known::primary_scope_stale`]).
pub(super) fn primary_scope_stale(failback: &Failback, key: &DeviceKey, was: &PrimaryLine) -> bool {
    // An edge device's scope names itself. A module's line in the primary carries its device's
    // scope, which the device's own line settles: the module's line carries none.
    let Some(owner) = was.scope_owner.as_ref() else {
        return false;
    };
    if key.module.is_some() || *owner == key.device {
        return false;
    }
    let owner_key = key_of(owner);
    match failback.primary_lines.get(&owner_key) {
        None => true,
        // Stated plain, the device is no edge device in the primary (IoT Hub refuses a scope
        // naming none): the scope is of one it was before being made plain there.
        Some(own) if own.stated_plain => true,
        Some(own) => {
            own.scope_owner.as_ref() == Some(owner)
                && own.device_scope.is_some()
                && own.device_scope != was.device_scope
        }
    }
}

/// Writes into `line` the capabilities (a device's; module lines carry none) and the tags and
/// desired properties of `device`, a section left out where it is empty. The fields every line
/// the plan builds from a device takes alike: the merged line, and the disable written over the
/// primary's own line.
pub(super) fn carry_capabilities_and_twin(line: &mut ExportLine, device: &Device) {
    if device.key.module.is_none() {
        line.capabilities = Some(device.capabilities);
    }
    line.tags = non_empty(&device.tags);
    line.desired = non_empty(&device.desired);
}

/// A twin section as a line carries it: `None` where it is empty.
pub(super) fn non_empty(
    section: &serde_json::Map<String, serde_json::Value>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    (!section.is_empty()).then(|| section.clone())
}
