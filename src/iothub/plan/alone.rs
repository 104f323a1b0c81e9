//! What a blocked device's line must not hold back: the merge disables a device the primary
//! holds enabled, or rotates out a credential it accepts ([`Urgent`]), but the plan blocks the
//! device's line (for its credentials or another check). A leaf whose line waits for a new
//! gateway's scope instead is `detached.rs`'s.
//!
//! Apart from the line decisions because it is one of the two places the plan writes less than
//! the merged device (the other, `detached.rs`, writes a waiting leaf's update without its
//! parent). IOTHUB.md says disabling is *the* way to block a compromised device (no CRL checks
//! for X.509), so a disable must not wait for an operator to settle credentials or re-export a
//! hub; and a key, thumbprint or authority the merge rotated out, perhaps leaked, must not stay
//! valid in the primary while the device waits for the rest. Withheld, either would keep the
//! device connecting with a credential the other side had rotated out, and the report would
//! speak only of the block's own reason.
//!
//! Both are written alone wherever a line can carry them without writing anything the merge
//! did not decide and without restoring anything: the primary's own line (its credentials,
//! capabilities, twin and parent as its export holds them), with the merge's status where it
//! disables the device, and the merge's credentials where it rotates them. An
//! `updateIfMatchETag` line replaces the identity whole (IOTHUB.md), so the credentials go on it
//! only where a full update of the device could write them ([`credentials_writable`]): settled
//! by a rule, usable (no pair that would make the hub generate keys), and over credentials the
//! primary's export held. Then they are what any full update would write, guarded by the same
//! `eTag`, and restore nothing: a rotated-out credential comes back only through a value no
//! rule settled (crossed rotations, a base that cannot say which side changed them) or written
//! over credentials the export did not show, which the primary may have rotated since. The
//! checks the block was for besides (an `eTag` to match, capabilities the export states, twin
//! sizes) are made again of the line itself, which carries the primary's capabilities and
//! twin, not the merged ones the block refused.
//!
//! Where a change cannot be written, the device's blocked entry says so (`disable not applied`,
//! `rotation not applied`) with why, in the words `detached.rs` uses ([`Urgent`]), and what to do
//! by hand where the merged value can be applied so; no entry names a key.

use super::Plan;
use super::detached::DETACHED_UNDONE;
use super::lines::{Known, carry_capabilities_and_twin, settled};
use super::parent::Parent;
use super::urgent::Urgent;
use crate::iothub::import_mode::ImportMode;
use crate::iothub::lift::PrimaryLine;
use crate::iothub::line::ExportLine;
use crate::iothub::writable::{fits, has_etag, keeps_edge, replaces_known, usable};
use crate::view::Device;

/// Why a line written alone for a device cannot be.
enum Unwritten {
    /// A check the line fails, and its reason.
    Check(String),
    /// The device waits for a new gateway's scope, and written without a parent it would lose
    /// that gateway on the next run ([`DETACHED_UNDONE`]).
    Detached,
}

impl Plan {
    /// Blocks `device` for `reason`, writing alone its disable and its new credentials where the
    /// merge decides either ([`Urgent`]) and a line can carry it ([`alone_line`]); the blocked
    /// entry says what was written and what is not applied.
    pub(super) fn block_update(
        &mut self,
        (device, now): (&Device, &Device),
        (was, line): (&PrimaryLine, &ExportLine),
        parent: Parent,
        known: Known,
        reason: String,
    ) {
        let urgent = Urgent::of(device, now, was);
        if !urgent.any() {
            self.block(&device.key, reason);
            return;
        }
        // The reason first, then what was written, then what was not, each apart.
        let mut said = vec![reason.clone()];
        let because = |why: &str| (why != reason).then_some(why.to_owned());
        let credentials = if urgent.rotation {
            credentials_writable(device, was, known)
        } else {
            Ok(())
        };
        if let Err(why) = &credentials {
            // No rule settled them, or they cannot go on a line: not by hand from the merged
            // registry either, where the reason says what to do.
            let rotation = Urgent {
                disable: false,
                rotation: true,
            };
            said.push(rotation.not_applied_because(because(why).as_deref(), None));
        }
        let carried = Urgent {
            rotation: urgent.rotation && credentials.is_ok(),
            ..urgent
        };
        if carried.any() {
            match alone_line(device, now, (was, line), (parent, known), carried) {
                Ok(alone) => {
                    self.import.push(alone);
                    said.insert(1, carried.written_alone().to_owned());
                }
                Err(Unwritten::Check(why)) => {
                    said.push(carried.not_applied_because(because(&why).as_deref(), Some("")));
                }
                Err(Unwritten::Detached) => said.push(carried.not_applied_because(
                    Some(DETACHED_UNDONE),
                    Some(", or run again once this import is done"),
                )),
            }
        }
        self.block(&device.key, said.join("; "));
    }
}

/// Why `device`'s merged credentials cannot be written over the primary's line `was`, if they
/// cannot: the checks a full update makes of them (see the module docs).
fn credentials_writable(device: &Device, was: &PrimaryLine, known: Known) -> Result<(), String> {
    settled(device, known)?;
    usable(device)?;
    replaces_known(was)
}

/// The line writing over the primary's line `was` what of `device` cannot wait (`carried`): its
/// disable (the merged status and reason), its new credentials, or both, all else as the
/// primary holds it (`now`: its credentials, status, capabilities and twin), if a line can
/// carry that: nothing is restored, and the checks of a full update hold of it. The merged
/// credentials are carried only where [`credentials_writable`] allows.
///
/// The parent stays the primary's while that one can still be a parent; else (this plan
/// deletes it or makes it plain, or the primary's scope for it is stale) it is the one the
/// merged line `line` carries, or none, as a full update of the device would have it. None is
/// refused only where the device waits for a new gateway's scope and the next run would not
/// give it that gateway (see [`Plan::write_detached`]).
fn alone_line(
    device: &Device,
    now: &Device,
    (was, line): (&PrimaryLine, &ExportLine),
    (parent, known): (Parent, Known),
    carried: Urgent,
) -> Result<ExportLine, Unwritten> {
    let check = |checked: Result<(), String>| checked.map_err(Unwritten::Check);
    // The primary's credentials are in `now` only where its export held them (elsewhere the
    // lift filled them in from the base): only then is writing them back no change, and only
    // then are new ones written over credentials seen.
    check(replaces_known(was))?;
    let credentials = if carried.rotation { device } else { now };
    check(usable(credentials))?;
    check(keeps_edge(now, was, known.named_parent))?;
    check(has_etag(
        was.e_tag.as_ref(),
        "eTag",
        ImportMode::UpdateIfMatchETag,
    ))?;
    let status = if carried.disable { device } else { now };
    let mut alone = ExportLine::new(device.key.clone(), status.status.status);
    alone.import_mode = Some(ImportMode::UpdateIfMatchETag);
    alone.e_tag.clone_from(&was.e_tag);
    alone.status_reason.clone_from(&status.status.reason);
    alone.authentication = Some(credentials.authentication.clone());
    carry_capabilities_and_twin(&mut alone, now);
    if known.primary_parent_stays {
        alone.device_scope.clone_from(&was.device_scope);
        alone.parent.clone_from(&was.scope_owner);
    } else if line
        .parent
        .as_ref()
        .is_some_and(|p| *p != device.key.device)
    {
        alone.device_scope.clone_from(&line.device_scope);
        alone.parent.clone_from(&line.parent);
    } else if parent == Parent::Pending && !known.detached_kept {
        return Err(Unwritten::Detached);
    }
    check(fits(&alone))?;
    Ok(alone)
}
