//! What of a leaf waiting for a new gateway's scope cannot wait for the next run, where its full
//! update can carry no parent now: this plan deletes its current gateway or makes it plain (or
//! the scope it holds in the primary is stale), and the new gateway has no scope until this
//! import gives it one. Such a leaf would otherwise wait whole, every change with it.
//!
//! Apart from the line decisions because it is one of the two places the plan writes a device
//! other than as merged (the other, `disable.rs`, writes a disable alone): here the merged full
//! update goes ahead without its parent. Two changes must not wait a run:
//!
//! - a disable: IOTHUB.md says disabling is *the* way to block a compromised device (no CRL
//!   checks for X.509);
//! - a credential change (a rotation): a key or thumbprint the merge rotated out, perhaps
//!   leaked, would stay valid in the primary until the next run.
//!
//! What the line carries is the full update the plan would write once the scope is known, but
//! for the parent: the merged status, credentials, capabilities and twin, with the primary's
//! `eTag`, and it has passed the checks of any full update ([`updatable`]: an `eTag` to match,
//! credentials written only over those the primary's export held, so that none is restored).
//! So it writes nothing the merge did not decide, but the missing parent, and never a stale
//! scope. The missing parent is what the next run must not misread (see
//! [`Plan::write_detached`]); where it would, the leaf waits whole, and its blocked entry says
//! what is not applied (`disable not applied`, `rotation not applied`).
//!
//! [`updatable`]: super::lines::updatable

use super::Plan;
use super::disable::disables;
use super::lines::Known;
use crate::iothub::lift::PrimaryLine;
use crate::iothub::line::ExportLine;
use crate::view::Device;

/// Why a waiting leaf cannot be written without a parent where the preference would undo its
/// new parent (see [`Plan::write_detached`]); the caller says what to do by hand.
pub(super) const DETACHED_UNDONE: &str = "it waits for the scope of its new edge parent, which \
     this import gives it, while the scope it holds names a gateway this import deletes (or \
     makes plain), or one the primary no longer holds with that scope, so no scope can be \
     written now; written without a parent, it would read on the next run as the primary's own \
     change of parent, which --prefer primary keeps, losing the new one";

/// The changes of a waiting leaf that cannot wait for the next run, found among the
/// differences between the merged device and the primary's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Urgent {
    /// The merge disables a device the primary holds enabled.
    disable: bool,
    /// The merge changes the device's credentials (the primary's export held them: a full
    /// update is written only over those).
    rotation: bool,
}

impl Urgent {
    /// What cannot wait of the merged `device` over the primary's `now` (its line `was`).
    pub(super) fn of(device: &Device, now: &Device, was: &PrimaryLine) -> Urgent {
        Urgent {
            disable: disables(device, was),
            rotation: device.authentication != now.authentication,
        }
    }

    /// Whether anything cannot wait.
    fn any(self) -> bool {
        self.disable || self.rotation
    }

    /// What a blocked entry says is not applied, each change named apart, so that a reader
    /// searching for one (`disable not applied`) finds it whatever else is withheld.
    fn not_applied(self) -> String {
        let mut said = Vec::new();
        if self.disable {
            said.push("disable not applied");
        }
        if self.rotation {
            said.push("rotation not applied");
        }
        said.join("; ")
    }

    /// What the merge does that is not applied, and what an operator can do by hand instead (a
    /// sentence). Keys and thumbprints are never named: the merged registry holds them.
    fn decided_and_by_hand(self) -> (&'static str, &'static str) {
        match (self.disable, self.rotation) {
            (true, true) => (
                "disables it and changes its credentials",
                "Disable it and set its credentials from the merged registry",
            ),
            (true, false) => ("disables it", "Disable it"),
            _ => (
                "changes its credentials (a key or thumbprint the primary holds is rotated out)",
                "Set its credentials from the merged registry",
            ),
        }
    }
}

impl Plan {
    /// Writes the full update `update` of `device` (the primary's `now`, its line `was`), a leaf
    /// waiting for its new gateway's scope while no scope can be written now, without a parent
    /// where a change among its own cannot wait ([`Urgent`]); else it waits whole, and the next
    /// run writes it with the new gateway's scope.
    ///
    /// Only where the secondary is preferred: the next run reads the missing parent as the
    /// primary's change, concurrent with the secondary's move (the only side that can have
    /// chosen a gateway this plan gives its scope), and the preference keeps the secondary's,
    /// so that run completes the leaf. Preferring the primary, it would keep the leaf detached
    /// for good: the leaf waits whole, and is listed as blocked, saying what is not applied.
    /// Detached for a run, the leaf loses nothing it could use: the gateway it names is going
    /// away with this import (or is gone), and the new one has no scope to name yet.
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
        if known.secondary_preferred {
            update.device_scope = None;
            update.parent = None;
            self.import.push(update);
        } else {
            let (decided, by_hand) = urgent.decided_and_by_hand();
            self.block(
                &device.key,
                format!(
                    "{}: the merge {decided}, but {DETACHED_UNDONE}. {by_hand} by hand now, or \
                     run again once this import is done (the next run writes it whole)",
                    urgent.not_applied(),
                ),
            );
        }
    }
}
