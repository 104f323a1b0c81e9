//! The identity one export line describes ([`ExportLine::identity`]): what a lift creates for
//! each line of a snapshot, and what a caller seeds a live replica of its own with.
//!
//! Apart from `line.rs` because it reads a line as a device rather than as text: it is where
//! the lift's rules for what a line leaves out (capabilities, keys) and for what its scope
//! means (an edge device's own, a leaf's parent, a module's inherited one) are applied, once,
//! for the lift and for the caller alike.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::identity::{Identity, StatusValue};
use crate::iothub::lift::stated_capabilities;
use crate::iothub::line::ExportLine;
use crate::key::DeviceId;
use crate::twin::{self, Section, TwinPath};

impl ExportLine {
    /// The identity the line describes, to create the device in a registry of one's own:
    /// seeding a live replica from one hub's export, under the caller's own
    /// [`ReplicaId`](crate::ReplicaId), with one [`Writer`](crate::Writer). A lift creates
    /// its base from the same identities.
    ///
    /// Field by field:
    ///
    /// - **status** and **statusReason**, as the line holds them;
    /// - **authentication**: the line's, keeping only the credentials its type uses (an
    ///   X.509 line's null `symmetricKey` is dropped); no `authentication` reads as SAS. Keys
    ///   or thumbprints the line does not hold (an export taken with `excludeKeysInExport`)
    ///   stay `None`, **unknown**. In a registry, unknown is a value like any other: a later
    ///   write of known credentials replaces it, and a replica that wrote known ones
    ///   concurrently, or created the same device with them, meets it as a conflict that
    ///   [`Policy::credentials`](crate::Policy::credentials) settles, where it may win. A lift
    ///   instead never takes unknown credentials as a change; and no registry holding them
    ///   may be written to a hub, which would give the device new keys;
    /// - **capabilities**, as the line states them; a device line that leaves them out (null
    ///   or absent) reads as a plain device's, unless its scope is its own, which only an IoT
    ///   Edge device's is. A lift reads them so before weighing its other evidence: another
    ///   line whose scope names the device makes it an edge device, which this line alone
    ///   cannot tell (set it with [`Writer::set_capabilities`](crate::Writer::set_capabilities)
    ///   where you know it). A module has none;
    /// - **parent**: the edge device the line's scope names, for a leaf device. An edge
    ///   device's scope names the device itself, which is not its parent, and a module carries
    ///   its device's scope: neither has a parent here. A module has none; an edge device's,
    ///   if any, is in `parentScopes`, which export lines leave out, so it is unknown (set it
    ///   with [`Writer::set_parent`](crate::Writer::set_parent) where you know it). A lift never
    ///   takes an edge device's line as a change of its parent;
    /// - **twin**: tags, desired and reported properties, as leaves (the hub's `$metadata` and
    ///   `$version` were dropped when the line was read); no metadata, which no export holds.
    ///
    /// Seeding two replicas, each from its own hub's export under its own id, creates every
    /// device both exports hold twice, concurrently: merged, such a device holds two
    /// incarnations, and where their fields differ the [`Policy`](crate::Policy) settles them
    /// (a disable wins). Replicas meant to start from one registry are seeded once, and the
    /// others start from a copy of that state (or merge it in) before writing under their own
    /// ids. Never merge a seeded registry with a [`Failback`](crate::iothub::Failback)'s: those are
    /// written under the lift's fixed ids ([`BASE`](crate::iothub::BASE)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] naming the field and the device, for a value the line's reader
    /// refuses (a line built in code is held to the same rules, as a lift holds it: a
    /// disabled module, one key of two, a long `statusReason`, a [`parent`](Self::parent) its
    /// scope does not name, a twin key IoT Hub does not store), or an
    /// [`import_mode`](Self::import_mode): an import file's line is not a hub's export.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::read_export_from;
    /// use failback::{DeviceKey, Policy, Registry, ReplicaId, Stamp, Status};
    ///
    /// let text = concat!(
    ///     r#"{"id":"edge-1","status":"enabled","capabilities":{"iotEdge":true},"#,
    ///     r#""deviceScope":"ms-azure-iot-edge://edge-1-6379"}"#, "\n",
    ///     r#"{"id":"leaf-7","status":"disabled","deviceScope":"ms-azure-iot-edge://edge-1-6379"}"#, "\n",
    /// );
    /// let export = read_export_from("devices.txt".as_ref(), text.as_bytes())?;
    ///
    /// // This replica's own id: no other registry writes under it.
    /// let me = ReplicaId::from_u128(0xea57);
    /// let mut registry = Registry::new();
    /// let mut writer = registry.writer(me, Stamp::new(1_700_000_000_000, 0));
    /// for line in &export.lines {
    ///     writer.create(&line.key, line.identity()?)?; // each delta shipped to the peers
    /// }
    ///
    /// let policy = Policy::default();
    /// let edge = registry.device(&DeviceKey::device("edge-1")?, &policy).expect("live");
    /// assert!(edge.capabilities.iot_edge && edge.parent.is_none()); // its own scope
    /// let leaf = registry.device(&DeviceKey::device("leaf-7")?, &policy).expect("live");
    /// assert_eq!(leaf.parent.as_ref().map(|p| p.as_str()), Some("edge-1"));
    /// assert_eq!(leaf.status.status, Status::Disabled);
    /// assert!(leaf.authentication.keys.is_none()); // not exported: unknown
    /// assert_eq!(registry.context().vector().get(me), 2);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn identity(&self) -> Result<Identity> {
        self.check_as_export()
            .map_err(|(field, reason)| Error::InvalidValue {
                field: format!("{field} of {}", self.key),
                reason,
            })?;
        self.described_identity()
    }

    /// [`identity`](Self::identity) of a line already held to its reader's rules: a lift's,
    /// whose every line is checked as it is read (`check.rs`), once.
    pub(crate) fn described_identity(&self) -> Result<Identity> {
        let mut identity = Identity::default()
            .with_status(StatusValue::new(self.status, self.status_reason.clone()))
            .with_authentication(
                self.authentication
                    .clone()
                    .unwrap_or_default()
                    .without_unused(),
            )
            .with_capabilities(stated_capabilities(self).unwrap_or_default())
            .with_parent(parent_of(self));
        identity.twin = twin_of(self)?;
        Ok(identity)
    }
}

/// The edge parent a line names. An edge device's scope names the device itself (its own
/// scope, not a parent), and a module inherits its device's scope: neither is a parent.
pub(crate) fn parent_of(line: &ExportLine) -> Option<DeviceId> {
    if line.key.module.is_some() {
        return None;
    }
    line.parent.clone().filter(|p| *p != line.key.device)
}

/// The twin leaves of a line, by path.
pub(crate) fn twin_of(line: &ExportLine) -> Result<BTreeMap<TwinPath, Value>> {
    let sections = [
        (Section::Tags, &line.tags),
        (Section::Desired, &line.desired),
        (Section::Reported, &line.reported),
    ];
    let mut twin = BTreeMap::new();
    for (section, object) in sections {
        if let Some(object) = object {
            // The hub's counters skipped at the top of desired and reported properties, and
            // refused anywhere else, as the line's reader reads them.
            let leaves = twin::flatten(section, object);
            twin.extend(leaves.map_err(|e| e.of_device(&line.key))?);
        }
    }
    Ok(twin)
}
