//! What an export says of a device's capabilities: what its line states
//! ([`stated_capabilities`]), and, where it states none, the evidence of the export's scopes
//! ([`ScopeOwners`]).
//!
//! Apart from `lift.rs` because it is evidence, not a change: whether a device is an IoT Edge
//! device is read from its own line and from every other line's scope, for the base before any
//! side is compared with it, and for each side before what it created is written.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::identity::Capabilities;
use crate::iothub::line::ExportLine;
use crate::key::{DeviceId, DeviceKey};
use crate::registry::Registry;

/// The capabilities a device line states, `None` when they are unknown.
///
/// IOTHUB.md lists `capabilities` as `{iotEdge: bool}` and says nothing of a line where they are
/// null or absent; IoT Hub's own exports write them on every device line. As with keys left out of
/// an export, a missing value is read as unknown, never as `iotEdge: false`: read as false, a side
/// that merely omitted them would demote an IoT Edge gateway, and the plan would write it back as a
/// plain device, stranding its leaves. The line's scope is evidence, though: an edge device's scope
/// names the device itself (IOTHUB.md: `ms-azure-iot-edge://{edgeDeviceId}-{generationId}`), which
/// no other device's does, so such a line states an edge device. A stated `iotEdge: false` beside
/// such a scope is taken as stated: the scope is evidence only where the line says nothing.
///
/// A module line states none, whatever it holds: capabilities are a device's, and no import
/// line for a module carries them, so a module's, read as a change, would be planned again on
/// every run.
pub(crate) fn stated_capabilities(line: &ExportLine) -> Option<Capabilities> {
    if line.key.module.is_some() {
        return None;
    }
    if line.capabilities.is_some() {
        return line.capabilities;
    }
    let own_scope = line.key.module.is_none() && line.parent.as_ref() == Some(&line.key.device);
    own_scope.then_some(Capabilities { iot_edge: true })
}

/// The IoT Edge devices the scopes of one export name.
///
/// A scope is an edge device's (IOTHUB.md: `ms-azure-iot-edge://{edgeDeviceId}-{generationId}`),
/// carried by the device itself, by its leaves and by their modules, and IoT Hub refuses a
/// scope naming no edge device: a device its export's scopes name is an edge device in that
/// hub, whether or not its own line states capabilities. Without this, a gateway whose line
/// left them out would read as the base's plain device: a secondary that demoted such a
/// gateway would change nothing in the merge, and the demotion would be dropped unreported. A
/// stated value still wins, as in [`stated_capabilities`].
///
/// The evidence lasts as long as a scope names the device: in a later export where none does (the
/// plan deleted or moved its last leaf, say), a line leaving capabilities out reads as the base's
/// again, plain where the base said nothing, though the hub still holds an edge device. IoT Hub's
/// own exports state capabilities on every device line; one that leaves them out is best exported
/// again with them.
#[derive(Debug, Default)]
pub(super) struct ScopeOwners(BTreeSet<DeviceId>);

impl ScopeOwners {
    /// Notes the edge device `line`'s scope names, if any.
    pub(super) fn note(&mut self, line: &ExportLine) {
        if let Some(owner) = &line.parent {
            if !self.0.contains(owner) {
                self.0.insert(owner.clone());
            }
        }
    }

    /// Whether a scope names `key` as an edge device (never a module).
    pub(super) fn names(&self, key: &DeviceKey) -> bool {
        key.module.is_none() && self.0.contains(&key.device)
    }

    /// The capabilities `line` states, else an edge device's where a scope names it, else
    /// `None` (unknown).
    pub(super) fn capabilities(&self, line: &ExportLine) -> Option<Capabilities> {
        let named = || {
            self.names(&line.key)
                .then_some(Capabilities { iot_edge: true })
        };
        stated_capabilities(line).or_else(named)
    }
}

/// Makes the base's creation of `key` an IoT Edge device's: what the base's export said of it,
/// learned from a scope on a later line. Only while the base's registry is being built, before
/// any replica is cloned from it: no replica has seen the creation yet, so it is amended in
/// place rather than written over (a write would leave the creation plain, and each side's
/// changes are compared with the creation).
pub(super) fn state_edge_in_base(base: &mut Registry, key: &DeviceKey) {
    let slot = base.slot_mut(key);
    if let Some(creation) = slot.live.first_mut().and_then(|r| r.created.as_mut()) {
        Arc::make_mut(creation).identity.capabilities = Capabilities { iot_edge: true };
    }
}
