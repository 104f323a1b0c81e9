//! A disable the rest of a device's line cannot go with: the merge disables a device the
//! primary holds enabled, but the plan blocks the device's line (for its credentials or another
//! check). A leaf whose line waits for a new gateway's scope instead is `detached.rs`'s.
//!
//! Apart from the line decisions because it is one of the two places the plan writes less than
//! the merged device (the other, `detached.rs`, writes a waiting leaf's update without its
//! parent): IOTHUB.md says disabling is *the* way to block a compromised device (no CRL checks
//! for X.509), so a disable must not wait for an operator to settle credentials. Withheld, the
//! device would keep connecting with a credential the other side had rotated out, and the report
//! would speak only of credentials. The disable is written alone wherever a line can carry it
//! without writing anything the merge did not decide and without restoring anything: the
//! primary's own line, disabled. Where none can, the device's blocked entry says the disable is
//! not applied.

use super::Plan;
use super::detached::DETACHED_UNDONE;
use super::lines::{Known, carry_capabilities_and_twin};
use super::parent::Parent;
use crate::identity::Status;
use crate::iothub::import_mode::ImportMode;
use crate::iothub::lift::PrimaryLine;
use crate::iothub::line::ExportLine;
use crate::iothub::writable::{fits, has_etag, keeps_edge, replaces_known, usable};
use crate::view::Device;

/// Whether the merge disables `device` while the primary's line `was` holds it enabled.
pub(super) fn disables(device: &Device, was: &PrimaryLine) -> bool {
    device.status.status == Status::Disabled && was.status == Status::Enabled
}

impl Plan {
    /// Blocks `device` for `reason`, writing its disable alone where the merge disables it
    /// and a line can carry that ([`disable_line`]); the blocked entry says which.
    pub(super) fn block_update(
        &mut self,
        (device, now): (&Device, &Device),
        (was, line): (&PrimaryLine, &ExportLine),
        parent: Parent,
        known: Known,
        reason: String,
    ) {
        if !disables(device, was) {
            self.block(&device.key, reason);
            return;
        }
        let reason = match disable_line(device, now, (was, line), parent, known) {
            Ok(disable) => {
                self.import.push(disable);
                format!(
                    "{reason}; the disable alone is written now, over the credentials, twin and \
                     capabilities the primary holds"
                )
            }
            Err(why) if why == reason => format!("{reason}; disable not applied, for that reason"),
            Err(why) => format!("{reason}; disable not applied: {why}"),
        };
        self.block(&device.key, reason);
    }
}

/// The line disabling `device` over the primary's line `was`, all else as the primary holds it
/// (`now`: its credentials, capabilities and twin), if a line can carry that: the status and
/// reason are the merge's, nothing is restored, and the checks of a full update hold of it.
///
/// The parent stays the primary's while that one can still be a parent; else (this plan
/// deletes it or makes it plain, or the primary's scope for it is stale) it is the one the
/// merged line `line` carries, or none, as a full update of the device would have it. None is
/// refused only where the device waits for a new gateway's scope and the next run would not
/// give it that gateway (see [`Plan::write_detached`]).
fn disable_line(
    device: &Device,
    now: &Device,
    (was, line): (&PrimaryLine, &ExportLine),
    parent: Parent,
    known: Known,
) -> Result<ExportLine, String> {
    // The primary's credentials are in `now` only where its export held them (elsewhere the
    // lift filled them in from the base): only then is writing them back no change.
    replaces_known(was)?;
    usable(now)?;
    keeps_edge(now, was, known.named_parent)?;
    has_etag(was.e_tag.as_ref(), "eTag", ImportMode::UpdateIfMatchETag)?;
    let mut disable = ExportLine::new(device.key.clone(), device.status.status);
    disable.import_mode = Some(ImportMode::UpdateIfMatchETag);
    disable.e_tag.clone_from(&was.e_tag);
    disable.status_reason.clone_from(&device.status.reason);
    disable.authentication = Some(now.authentication.clone());
    carry_capabilities_and_twin(&mut disable, now);
    if known.primary_parent_stays {
        disable.device_scope.clone_from(&was.device_scope);
        disable.parent.clone_from(&was.scope_owner);
    } else if line
        .parent
        .as_ref()
        .is_some_and(|p| *p != device.key.device)
    {
        disable.device_scope.clone_from(&line.device_scope);
        disable.parent.clone_from(&line.parent);
    } else if parent == Parent::Pending && !known.detached_kept {
        return Err(format!(
            "{DETACHED_UNDONE}. Disable it by hand now, or run again once this import is done"
        ));
    }
    fits(&disable)?;
    Ok(disable)
}
