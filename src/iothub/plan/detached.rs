//! What of a leaf waiting for a new gateway's scope cannot wait for the next run, where its full
//! update can carry no parent now: this plan deletes its current gateway or makes it plain (or
//! the scope it holds in the primary is stale), and the new gateway has no scope until this
//! import gives it one. Such a leaf would otherwise wait whole, every change with it.
//!
//! Apart from the line decisions because it is one of the two places the plan writes a device
//! other than as merged (the other, `alone.rs`, writes a blocked device's disable or new
//! credentials alone): here the merged full update goes ahead without its parent. Two changes
//! must not wait a run ([`Urgent`]): a disable, and a rotation (a credential the primary
//! accepts that the merge rotated out, perhaps leaked). Any other change waits with the leaf,
//! a credential the merge only adds among them.
//!
//! What the line carries is the full update the plan would write once the scope is known, but
//! for the parent: the merged status, credentials, capabilities and twin, with the primary's
//! `eTag`, and it has passed the checks of any full update ([`updatable`]: an `eTag` to match,
//! credentials written only over those the primary's export held, so that none is restored).
//! So it writes nothing the merge did not decide, but the missing parent, and never a stale
//! scope. The missing parent is what the next run must not misread ([`detached_kept`]): it must
//! still give the leaf the gateway it waits for. Where it would not, the leaf waits whole, and
//! its blocked entry says what is not applied (`disable not applied`, `rotation not applied`).
//!
//! [`updatable`]: super::lines::updatable

use super::Plan;
use super::lines::Known;
use super::parent::stands_as_parent;
use super::scopes::Scopes;
use super::urgent::Urgent;
use crate::iothub::lift::{Failback, PrimaryLine, SECONDARY, Side};
use crate::iothub::line::ExportLine;
use crate::key::{DeviceId, DeviceKey};
use crate::policy::Preference;
use crate::view::Device;

/// Why a waiting leaf cannot be written without a parent where the next run would not give it
/// its new parent (see [`detached_kept`]); the caller says what to do by hand.
pub(super) const DETACHED_UNDONE: &str = "it waits for the scope of its new edge parent, which \
     this import gives it, while the scope it holds names a gateway this import deletes (or \
     makes plain), or one the primary no longer holds with that scope, so no scope can be \
     written now; and written without a parent it would lose the new one, since the next run \
     reads the missing parent as the primary's, and keeps the new gateway only where the \
     secondary moved the device there and either the base gave it no parent or --prefer \
     secondary settles the conflict";

/// Whether `key`, a leaf waiting for a gateway's scope, written now without a parent, gets that
/// gateway on the next run. That run reads the primary's missing parent against the base's (B)
/// and the secondary's (S), as the lift reads any field:
///
/// - B none: the primary changed nothing, and S stands, whichever side is preferred;
/// - B some, S ≠ B: the primary's none and S meet as a conflict, which the preference settles;
///   S stands only where the secondary is preferred (so too where the base lacks the device,
///   both sides having created it);
/// - S = B: the primary's none is the only change, and wins.
///
/// And S must be the gateway the leaf waits for: the merged parent `merged_parent`, or, where
/// that one cannot be a parent, the secondary's, which the leaf waits for instead
/// ([`Parent::Pending`](super::parent::Parent::Pending)). The secondary is not the only side
/// that can have chosen it: the primary may have put the leaf behind a gateway it then deleted,
/// one the secondary created again (the leaf's scope is then stale): detached, the leaf would
/// lose it for good, under either preference.
pub(super) fn detached_kept(
    failback: &Failback,
    scopes: &Scopes,
    key: &DeviceKey,
    merged_parent: Option<&DeviceId>,
) -> bool {
    let policy = failback.policy();
    let secondary = failback.replica(Side::Secondary).device(key, policy);
    let Some(secondary) = secondary.and_then(|device| device.parent) else {
        return false;
    };
    let waited_for = match merged_parent {
        Some(merged) if stands_as_parent(failback, scopes, merged) => *merged == secondary,
        _ => true,
    };
    let secondary_preferred = policy.fields == Preference::Replica(SECONDARY);
    let read_as_secondary = match failback.base_identity(key).map(|base| &base.parent) {
        Some(None) => true,
        Some(Some(base)) => secondary_preferred && *base != secondary,
        None => secondary_preferred,
    };
    waited_for && read_as_secondary
}

impl Plan {
    /// Writes the full update `update` of `device` (the primary's `now`, its line `was`), a leaf
    /// waiting for its new gateway's scope while no scope can be written now, without a parent
    /// where a change among its own cannot wait ([`Urgent`]); else it waits whole, and the next
    /// run writes it with the new gateway's scope.
    ///
    /// Only where the next run still gives it the gateway it waits for ([`detached_kept`]):
    /// preferring the secondary, which moved it there, the missing parent reads as the
    /// primary's change, concurrent with the secondary's move, and the preference keeps the
    /// secondary's; and where the base gave it no parent, the missing one is no change at all,
    /// whichever side is preferred. Else (preferring the primary, say, over a base that gave it
    /// the old gateway) that run would keep it detached for good: the leaf waits whole, and is
    /// listed as blocked, saying what is not applied. Detached for a run, the leaf loses
    /// nothing it could use: the gateway it names is going away with this import (or is gone),
    /// and the new one has no scope to name yet.
    pub(super) fn write_detached(
        &mut self,
        (device, now): (&Device, &Device),
        was: &PrimaryLine,
        mut update: ExportLine,
        known: Known,
    ) {
        let urgent = Urgent::of(device, now, was);
        if !urgent.any() {
            return;
        }
        if known.detached_kept {
            update.device_scope = None;
            update.parent = None;
            self.import.push(update);
        } else {
            let later = ", or run again once this import is done (the next run writes it whole)";
            let said = urgent.not_applied_because(Some(DETACHED_UNDONE), Some(later));
            self.block(&device.key, said);
        }
    }
}
