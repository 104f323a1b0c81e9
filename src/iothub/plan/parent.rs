//! Edge parents: the scope a merged line carries for its device's parent, and what became of
//! a parent no line of this plan can name ([`Parent`]).
//!
//! Apart from the line decisions because whether a device can be a parent is read across the
//! registry (the primary's scopes, from any line naming the gateway, and the merged
//! capabilities), while a line decision reads one device and the fate of its parent.

use super::lines::{Known, carry_capabilities_and_twin, creatable, non_empty, settled, updatable};
use super::planner::Planner;
use super::scopes::Scopes;
use super::{is_live, key_of};
use crate::credentials::Authentication;
use crate::iothub::lift::{Failback, PrimaryLine, Side};
use crate::iothub::line::ExportLine;
use crate::iothub::writable::resolved;
use crate::key::DeviceId;
use crate::view::Device;

/// What became of a merged line's edge parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Parent {
    /// Its scope is in the line, or there is no parent.
    Written,
    /// The parent is created by this plan: the hub gives it a scope, and the next run writes
    /// it. So is a merged parent that is [`Gone`](Self::Gone) where the primary's own cannot
    /// stand either and the secondary's is created (or made an edge device) by this plan: the
    /// device waits for the secondary's.
    Pending,
    /// The parent is deleted from the merged registry or a plain device there (not one the
    /// primary holds as an edge device its export did not describe, which stays one: see
    /// [`stands_as_parent`]): no scope will come. The line carries the primary's parent while
    /// that one can still be a parent, else the secondary's, where the secondary moved it
    /// there, while that one can (with a scope the primary's export gives), else none.
    Gone,
    /// No line can carry the parent, though it stands: the device is an IoT Edge device with a
    /// parent, merged or in the primary (its line carries its own scope, and nothing of its
    /// parent), or the parent is an edge device in the primary without a scope in its export.
    /// The line carries what `Gone` carries.
    Unwritable,
    /// The parent is new to the primary (or plain there), and this plan blocks its line (the
    /// checks of its create, or of the full update making it an edge device): no scope will
    /// come until an operator resolves it. An existing device's line carries what `Gone`
    /// carries; a new device is blocked with its parent.
    Blocked,
}

impl Planner<'_> {
    /// The merged line of `device`, with the primary's line `primary` where it has one, and what
    /// became of its edge parent.
    pub(super) fn merged_line(
        &self,
        device: &Device,
        primary: Option<&PrimaryLine>,
    ) -> (ExportLine, Parent) {
        let mut line = line_of(device, primary);
        let mut parent = match scope_owner(device) {
            Some(owner) => self.write_scope(&mut line, device, primary, owner),
            None => Parent::Written,
        };
        // An edge device's line carries its own scope, so a parent one side gave it (making it
        // an edge device while the other put it behind a gateway, say, or promoting a leaf,
        // which keeps its gateway as far as the merge knows) cannot be written, nor can a parent
        // the primary holds be removed: compared with the primary's, it would be written again,
        // unchanged, on every run.
        if self.edge_with_parent(device) {
            parent = Parent::Unwritable;
        }
        // A module's line carries no scope ([`scope_owner`]), not even the one its line in the
        // primary carries: that is its device's (a module has none of its own), which can be
        // stale, and the device's own line writes the current one where it changes.
        (line, parent)
    }

    /// Whether `device` is an IoT Edge device with a parent other than itself, in the merged
    /// registry or in the primary's replica (where a device the primary made an edge device keeps
    /// the base's parent, its line saying nothing of it): no line can write the one nor remove
    /// the other.
    fn edge_with_parent(&self, device: &Device) -> bool {
        if device.key.module.is_some() || !device.capabilities.iot_edge {
            return false;
        }
        let other = |p: &DeviceId| *p != device.key.device;
        // The primary's replica is read only for the merged edge devices without a parent.
        device.parent.as_ref().is_some_and(other)
            || self
                .failback
                .replica(Side::Primary)
                .device(&device.key, self.failback.policy())
                .and_then(|held| held.parent)
                .is_some_and(|p| other(&p))
    }

    /// Writes into `line` the scope of `owner`, the edge device that gives `device` its scope
    /// (itself, for an edge device), where it can, and says what became of that parent.
    fn write_scope(
        &self,
        line: &mut ExportLine,
        device: &Device,
        primary: Option<&PrimaryLine>,
        owner: DeviceId,
    ) -> Parent {
        let (failback, scopes) = (self.failback, &self.scopes);
        let mut parent = Parent::Written;
        let own = owner == device.key.device;
        // A parent deleted from the merged registry, or a plain device there, has no scope to
        // give and none will come: a scope its children still carry in the primary names a
        // device the import removes or makes plain (or the primary already did), and IoT Hub
        // refuses a scope of no edge device. Unless the primary holds it as an edge device
        // its export did not describe, which the plan never demotes ([`stands_as_parent`]).
        let can_parent = own || stands_as_parent(failback, scopes, &owner);
        // A creation gets its scope from the hub (IOTHUB.md: derive scopes for the target hub):
        // none from another line, whatever `scopes` holds.
        let created = own && primary.is_none();
        match scopes.scope(&owner, primary).filter(|_| !created) {
            Some(scope) if can_parent => {
                line.device_scope = Some(scope.clone());
                line.parent = Some(owner);
            }
            // A new edge device gets its scope from the hub on creation: nothing to wait for.
            // A leaf's parent whose scope the primary's export does not tell (or tells two of)
            // waits for the hub to give it one, or no line can carry it.
            None if can_parent => {
                if !own {
                    parent = self.parent_without_scope(&owner);
                }
            }
            _ => parent = Parent::Gone,
        }
        if matches!(parent, Parent::Gone | Parent::Unwritable | Parent::Blocked) {
            parent = self.write_fallback_scope(line, device, primary, parent);
        }
        parent
    }

    /// Writes into `line`, for `device` whose merged parent no line can name (`parent`), the
    /// scope of the parent it keeps instead, if any, and says what became of its parent then.
    fn write_fallback_scope(
        &self,
        line: &mut ExportLine,
        device: &Device,
        primary: Option<&PrimaryLine>,
        parent: Parent,
    ) -> Parent {
        let (failback, scopes) = (self.failback, &self.scopes);
        // The primary's own parent while it can still be one, rather than none:
        // detached, the device would lose the parent both sides still agree on. Else
        // the secondary's, where the secondary moved it there and the merge set that
        // aside for the one that cannot stand: detached, the next run would read the
        // primary's choice as gone from the hub and write the secondary's then, so the
        // plan would not settle. Not the base's parent, which the secondary merely kept:
        // neither side chose it during the outage, and the primary moved away from it.
        let stands = |owner: &DeviceId| stands_as_parent(failback, scopes, owner);
        let base = failback.base_identity(&device.key);
        let secondary = failback
            .replica(Side::Secondary)
            .device(&device.key, failback.policy())
            .and_then(|d| d.parent)
            .filter(|owner| base.is_none_or(|b| b.parent.as_ref() != Some(owner)))
            .filter(|owner| stands(owner));
        let kept = primary
            .and_then(|p| p.scope_owner.as_ref())
            .filter(|owner| stands(owner))
            .into_iter()
            .chain(secondary.as_ref())
            .find_map(|owner| Some((owner, scopes.scope(owner, primary)?)));
        if let Some((owner, scope)) = kept {
            line.device_scope = Some(scope.clone());
            line.parent = Some(owner.clone());
        } else if let Some(owner) = secondary.filter(|_| parent == Parent::Gone) {
            // The secondary's has no scope yet: where this plan gives it one (creates
            // it, or makes it an edge device), the device waits for it as for a merged
            // parent that does, for the same reason.
            if self.parent_without_scope(&owner) == Parent::Pending {
                return Parent::Pending;
            }
        }
        parent
    }

    /// What becomes of a device's parent `owner`, an edge device the primary's export gives no
    /// scope (or two, its children's, for a line that carries neither: [`Scopes::scope`]): it
    /// waits for the scope the hub gives the parent when this plan's line for it is written, a
    /// create or a full update making it an edge device. A parent the primary already
    /// holds as an edge device (its line without a scope) gets no line that gives it one, and one
    /// whose line this plan blocks gets none until an operator acts: waiting for either would last
    /// for ever (a parent held plain whose update is blocked would keep its leaves waiting on
    /// every run). So the checks are those the parent's own line meets.
    fn parent_without_scope(&self, owner: &DeviceId) -> Parent {
        let failback = self.failback;
        let key = key_of(owner);
        // Held as an edge device, the parent has a scope the export left out, which no line can
        // name. Held as a plain device, it is made an edge device by this plan, and the hub gives
        // it a scope then, as on a creation.
        let policy = failback.policy();
        let held = failback.replica(Side::Primary).device(&key, policy);
        if held.is_some_and(|held| held.capabilities.iot_edge) {
            return Parent::Unwritable;
        }
        let Some(parent) = failback.merged().device(&key, policy) else {
            return Parent::Blocked;
        };
        // The parent is an edge device, whose line names its own scope, so this does not come back
        // here.
        let was = failback.primary_lines.get(&key);
        let (line, _) = self.merged_line(&parent, was);
        let written = match was {
            // A creation the limit on identities blocks gives no scope either.
            None if self.capped.contains(owner) => Err(String::new()),
            None => creatable(&parent, &line),
            // Plain in the primary and an edge device merged: its capabilities differ, so the plan
            // writes a full update, if its checks pass.
            Some(was) => {
                let known = Known::of(failback, &self.scopes, (&key, parent.parent.as_ref()), was);
                settled(&parent, known).and_then(|()| updatable(&parent, was, &line, known))
            }
        };
        if written.is_ok() {
            Parent::Pending
        } else {
            Parent::Blocked
        }
    }
}

/// `device`'s merged line but for its scope: identity, credentials (where a rule settled them),
/// capabilities, twin, and the primary's ETags where the primary's line is `primary`.
fn line_of(device: &Device, primary: Option<&PrimaryLine>) -> ExportLine {
    let mut line = ExportLine::new(device.key.clone(), device.status.status);
    line.status_reason.clone_from(&device.status.reason);
    line.authentication = Some(match resolved(device) {
        Ok(()) => device.authentication.clone(),
        // No rule settled them, so the merged registry does not know them: what is left once
        // rotated-out values are blanked can be half a key pair, which no export line may hold.
        Err(_) => Authentication {
            kind: device.authentication.kind,
            keys: None,
            thumbprints: None,
        },
    });
    carry_capabilities_and_twin(&mut line, device);
    line.reported = non_empty(&device.reported);
    if let Some(primary) = primary {
        line.e_tag.clone_from(&primary.e_tag);
        line.twin_e_tag.clone_from(&primary.twin_e_tag);
    }
    line
}

/// The edge device whose scope `device`'s line carries: itself for an edge device, its parent
/// for a leaf, none for a module (which has no scope of its own: the one its export line carries
/// is its device's, as the lift reads it).
fn scope_owner(device: &Device) -> Option<DeviceId> {
    if device.key.module.is_some() {
        None
    } else if device.capabilities.iot_edge {
        Some(device.key.device.clone())
    } else {
        device.parent.clone()
    }
}

/// Whether `owner` is a live IoT Edge device in the merged registry: one that can be a parent
/// (so can one the primary holds as such, see [`stands_as_parent`]).
///
/// Read from its records' capabilities rather than from the whole device, which settling would
/// build with its twin parsed, for every leaf: the policy is asked only when they disagree.
fn is_edge(failback: &Failback, owner: &DeviceId) -> bool {
    let key = key_of(owner);
    let records = failback.merged().records(&key);
    let mut values = records.iter().flat_map(|record| {
        let written = &record.written().capabilities;
        let created = record.creation().filter(|_| written.is_empty());
        let created = created.map(|c| c.identity.capabilities.iot_edge);
        written
            .entries()
            .iter()
            .map(|e| e.value.iot_edge)
            .chain(created)
    });
    let Some(first) = values.next() else {
        return false;
    };
    if values.all(|edge| edge == first) {
        return first;
    }
    let settled = failback.merged().device(&key, failback.policy());
    settled.is_some_and(|device| device.capabilities.iot_edge)
}

/// Whether `owner` can be an edge parent once the plan is imported, so that a line may name
/// its scope: a live IoT Edge device in the merged registry ([`is_edge`]), or a live device
/// the primary holds as one though its export did not say so.
///
/// The second is a device whose line in the primary states no capabilities (null or absent, no
/// scope of its own) while a line of the primary's export names it as an edge parent
/// ([`Scopes::names`], from a leaf's scope, known or not): the hub refuses a scope naming no edge device, so the primary holds it as
/// one. The lift reads it as one too (its scopes name it), so the merge holds it plain only where
/// the secondary stated it plain, and [`is_edge`] alone would then take the gateway for gone: a
/// full update of a leaf behind it, for any other change, would write no scope and detach the leaf,
/// unlisted. The plan never demotes such a device: a full update writing it plain is blocked
/// ([`keeps_edge`]), a twin update carries no capabilities, and it is live, so not deleted. So it
/// stays an edge device in the primary, and its leaves keep its scope (the demotion is blocked
/// until the primary is exported with its capabilities).
///
/// [`keeps_edge`]: crate::iothub::writable::keeps_edge
pub(super) fn stands_as_parent(failback: &Failback, scopes: &Scopes, owner: &DeviceId) -> bool {
    if is_edge(failback, owner) {
        return true;
    }
    let key = key_of(owner);
    let unstated = failback
        .primary_lines
        .get(&key)
        .is_some_and(|was| !was.capabilities_known);
    unstated && scopes.names(owner) && is_live(failback, &key)
}
