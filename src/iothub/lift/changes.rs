//! Each side read against the base: the base plus the side's differences from it, written by
//! the side's replica ([`read_side`]), the devices it created ([`create_side`]), and the
//! capabilities the two sides know differently over a base that does not state them
//! ([`settle_unknown_capabilities`]).
//!
//! Apart from `lift.rs`, which reads the base and puts the sides together: what a side changed
//! is decided here, line by line and field by field, and [`Change`] records it for the summary.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::capabilities::ScopeOwners;
use super::{PRIMARY, PrimaryLine, SECONDARY, Side, base_creation, twice};
use super::{holds_credentials, known_over, stated_capabilities};
use crate::clock::ReplicaId;
use crate::device::Creation;
use crate::error::Result;
use crate::identity::{Capabilities, StatusValue};
use crate::iothub::line::ExportLine;
use crate::iothub::line::{parent_of, twin_of};
use crate::key::{DeviceId, DeviceKey};
use crate::registry::Registry;
use crate::stamp::Stamp;
use crate::twin::TwinPath;
use crate::twin_text::TwinText;

/// How one side changed one device relative to the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Unchanged,
    Created,
    Updated,
    Deleted,
}

/// What lifting one side produced.
pub(super) struct SideOutcome {
    pub(super) registry: Registry,
    pub(super) changes: BTreeMap<DeviceKey, Change>,
    /// Lines of devices the base does not hold: created after both sides are read, since a
    /// device created on both needs the other side's line.
    pub(super) created: BTreeMap<DeviceKey, ExportLine>,
    pub(super) primary_lines: BTreeMap<DeviceKey, PrimaryLine>,
    /// The edge devices the side's scopes name, for the devices it created.
    pub(super) scope_owners: ScopeOwners,
    /// What the side knows (states, or its scopes say) of the capabilities of each base
    /// device whose base capabilities are unknown.
    over_unknown: BTreeMap<DeviceKey, Capabilities>,
    /// The side's lines that hold none of the credentials their authentication type uses
    /// ([`holds_credentials`]): read as unknown, never as a change.
    pub(super) credentials_unknown: u64,
}

/// Reads one side: the base plus the side's differences from it, written by the side's
/// replica. Devices the base lacks are kept aside for [`create_side`].
pub(super) fn read_side(
    (base, base_unknown): (&Registry, &BTreeSet<DeviceKey>),
    lines: impl Iterator<Item = Result<ExportLine>>,
    side: Side,
) -> Result<SideOutcome> {
    let mut registry = base.clone();
    let mut changes = BTreeMap::new();
    let mut created = BTreeMap::new();
    let mut primary_lines = BTreeMap::new();
    // Only looked up, never iterated: its order cannot reach an output.
    let mut seen = std::collections::HashSet::new();
    let mut scope_owners = ScopeOwners::default();
    // Base devices whose lines left their capabilities out, in the order read.
    let mut unstated = Vec::new();
    let mut over_unknown = BTreeMap::new();
    let mut credentials_unknown = 0;
    // Base devices whose lines state neither capabilities nor a scope: whether they say
    // anything of the parent waits for the side's scopes (see `stated_parent`).
    let mut undecided_parents = Vec::new();
    let mut writer = registry.writer(side.replica(), Stamp::default());
    for line in lines {
        let line = line?;
        if !seen.insert(line.key.clone()) {
            return Err(twice(&line.key, side));
        }
        // Counted here, where the side's lines are read one by one on the side's own thread:
        // whatever the other side's thread does, the count is this side's lines alone.
        if !holds_credentials(line.authentication.as_ref()) {
            credentials_unknown += 1;
        }
        if side == Side::Primary {
            primary_lines.insert(line.key.clone(), PrimaryLine::of(&line));
        }
        scope_owners.note(&line);
        let Some(was) = base_creation(base, &line.key) else {
            created.insert(line.key.clone(), line);
            continue;
        };
        if write_changes(&mut writer, &line, was)? {
            changes.insert(line.key.clone(), Change::Updated);
        }
        let stated = stated_capabilities(&line);
        // A line stating neither capabilities nor a scope: decided once the scopes are read.
        if stated.is_none() && stated_parent(&line).is_none() {
            undecided_parents.push(line.key.clone());
        }
        match stated {
            None if line.key.module.is_none() => unstated.push(line.key),
            None => {}
            Some(stated) if base_unknown.contains(&line.key) => {
                over_unknown.insert(line.key, stated);
            }
            Some(_) => {}
        }
    }
    // Left out of its line but named by the side's scopes, a device the base holds plain was
    // made an IoT Edge device on that side: a change, as if its line had said so. Read as no
    // change, the side's gateway would be written back plain by nothing and stay plain in the
    // merge, its leaves' new parent gone.
    for key in unstated {
        let was = base_creation(base, &key);
        let plain = was.is_some_and(|was| !was.identity.capabilities.iot_edge);
        if plain && scope_owners.names(&key) {
            writer.set_capabilities(&key, Capabilities { iot_edge: true })?;
            if base_unknown.contains(&key) {
                over_unknown.insert(key.clone(), Capabilities { iot_edge: true });
            }
            changes.insert(key, Change::Updated);
        }
    }
    // Such a line is a plain device's, without a parent, unless the side holds the device as
    // an IoT Edge device (the base's capabilities kept, or the side's scopes name it): then it
    // says nothing of the parent, as any edge device's line.
    for key in undecided_parents {
        let Some(was) = base_creation(base, &key) else {
            continue;
        };
        let edge = was.identity.capabilities.iot_edge || scope_owners.names(&key);
        if !edge && was.identity.parent.is_some() {
            writer.set_parent(&key, None)?;
            changes.insert(key, Change::Updated);
        }
    }
    for key in base.keys() {
        if !seen.contains(key) {
            writer.delete(key)?;
            changes.insert(key.clone(), Change::Deleted);
        }
    }
    Ok(SideOutcome {
        registry,
        changes,
        created,
        primary_lines,
        scope_owners,
        over_unknown,
        credentials_unknown,
    })
}

/// Makes the two sides' different capabilities for a device whose base capabilities are
/// unknown (its line left them out, and no scope of the base named it) meet as a conflict.
///
/// The base's unknown value reads as a plain device's, so a side holding the device plain writes
/// nothing, and left at that the other side's edge value would win unreported, though either side
/// may have made the change: the base does not say which (the credentials' counterpart, keys over a
/// base exported without them, is a conflict). Where the sides know different values, the side
/// holding it plain writes that too, and the preference settles the two writes as for any field,
/// reported. Sides that agree, or where one side knows nothing, write nothing more.
pub(super) fn settle_unknown_capabilities(
    base: &Registry,
    primary: &mut SideOutcome,
    secondary: &mut SideOutcome,
) -> Result<()> {
    let differing: Vec<(DeviceKey, Capabilities, Capabilities)> = primary
        .over_unknown
        .iter()
        .filter_map(|(key, &in_primary)| {
            let in_secondary = *secondary.over_unknown.get(key)?;
            (in_primary != in_secondary).then(|| (key.clone(), in_primary, in_secondary))
        })
        .collect();
    for (side, replica) in [(primary, PRIMARY), (secondary, SECONDARY)] {
        let mut writer = side.registry.writer(replica, Stamp::default());
        for (key, in_primary, in_secondary) in &differing {
            let value = if replica == PRIMARY {
                in_primary
            } else {
                in_secondary
            };
            let was = base_creation(base, key);
            // The side holding the base's value wrote nothing; the other wrote its own.
            if was.is_some_and(|was| was.identity.capabilities == *value) {
                writer.set_capabilities(key, *value)?;
                side.changes.insert(key.clone(), Change::Updated);
            }
        }
    }
    Ok(())
}

/// Creates the devices one side has and the base lacks, in key order.
pub(super) fn create_side(
    side: &mut SideOutcome,
    other: (&BTreeMap<DeviceKey, ExportLine>, &ScopeOwners),
    replica: ReplicaId,
) -> Result<()> {
    let (other_created, other_owners) = other;
    let mut writer = side.registry.writer(replica, Stamp::default());
    for (key, line) in &side.created {
        let mut created = line.described_identity()?;
        // Created on both sides, there is no base to take unknown credentials from; the
        // other side's line is the only evidence. Unknown is not a value: it must not
        // compete with (and, preferred, replace) the keys the other side knows.
        let other = other_created.get(key);
        if let Some(known) = other.and_then(|l| l.authentication.as_ref()) {
            created.authentication = known_over(
                line.authentication.as_ref(),
                &known.clone().without_unused(),
            );
        }
        // Capabilities too: unknown ones must not read as a plain device beside the other
        // side's edge device.
        let known = side.scope_owners.capabilities(line);
        if let Some(known) = known.or_else(|| other.and_then(|l| other_owners.capabilities(l))) {
            created.capabilities = known;
        }
        // And the parent: an edge device's line says nothing of it, so the other side's line,
        // where it states one (a leaf's scope), is the only evidence; else none is known.
        if stated_parent(line).is_none() && created.capabilities.iot_edge {
            created.parent = other.and_then(stated_parent).flatten();
        }
        writer.create(key, created)?;
        side.changes.insert(key.clone(), Change::Created);
    }
    Ok(())
}

/// Writes how `line` differs from the base's creation `was`; returns whether it does.
fn write_changes(
    writer: &mut crate::writer::Writer<'_>,
    line: &ExportLine,
    was: &Creation,
) -> Result<bool> {
    let (key, twin_was, was) = (&line.key, &was.twin, &was.identity);
    let mut changed = false;
    let status = StatusValue::new(line.status, line.status_reason.clone());
    if status != was.status {
        writer.set_status(key, status)?;
        changed = true;
    }
    let authentication = known_over(line.authentication.as_ref(), &was.authentication);
    if authentication != was.authentication {
        writer.set_authentication(key, authentication)?;
        changed = true;
    }
    // Unknown capabilities are no change: the side keeps the base's.
    let capabilities = stated_capabilities(line).unwrap_or(was.capabilities);
    if capabilities != was.capabilities {
        writer.set_capabilities(key, capabilities)?;
        changed = true;
    }
    // An edge device's line says nothing of its parent: no change, the side keeps the base's.
    if let Some(parent) = stated_parent(line) {
        if parent != was.parent {
            writer.set_parent(key, parent)?;
            changed = true;
        }
    }
    // Compared as texts, which are canonical: the base's leaves are parsed only when they
    // differ, for the few devices whose twin changed.
    let now = twin_of(line)?;
    if TwinText::new(&now) != *twin_was {
        changed |= write_twin_diff(writer, key, &twin_was.leaves(), &now)?;
    }
    Ok(changed)
}

/// Writes the leaf differences between two twins: removals first (a later set at an ancestor
/// or descendant overwrites them anyway), then every leaf added or changed.
fn write_twin_diff(
    writer: &mut crate::writer::Writer<'_>,
    key: &DeviceKey,
    was: &BTreeMap<TwinPath, Value>,
    now: &BTreeMap<TwinPath, Value>,
) -> Result<bool> {
    let mut changed = false;
    for path in was.keys() {
        if now.contains_key(path) {
            continue;
        }
        let (lo, hi) = path.descendant_bounds();
        let reshaped =
            path.ancestors().any(|a| now.contains_key(&a)) || now.range(lo..hi).next().is_some();
        if !reshaped {
            writer.set_twin(key, path.section, &path.path, None)?;
            changed = true;
        }
    }
    for (path, value) in now {
        if was.get(path) != Some(value) {
            writer.set_twin(key, path.section, &path.path, Some(value.clone()))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// The edge parent `line` states, `None` where the line says nothing of it (unknown, never "no
/// parent").
///
/// IOTHUB.md: an IoT Edge device's parent travels in `parentScopes`, which export lines leave
/// out, and its `deviceScope` is its own. So what a line says of the parent depends on what the
/// device is in that hub:
///
/// - a leaf (capabilities stated plain, or a scope naming another device, which only a leaf
///   carries): its scope names its parent, or it has none. Known;
/// - an IoT Edge device (capabilities stated, or its own scope): unknown. A leaf one side
///   promoted keeps, on that side, the parent the base knew, and the other side's real move
///   stands unopposed; the plan lists an edge device with a parent, which no line carries,
///   and one the secondary created, whose parent is unknown (`parent_unwritable`);
/// - a module: none; its scope is its device's;
/// - a device line with neither capabilities nor a scope: a plain device without a parent, or an
///   edge device whose export left its capabilities out. Unknown here: [`read_side`] decides once
///   the side's scopes are read, and [`create_side`] from the capabilities it settles.
///
/// The base reads an edge device's parent as none (`ExportLine::identity`), which is unknown
/// too, but no side's edge line changes it. So, edge on one side and a leaf on the other: the
/// leaf's side states a parent (or none) and the edge side states nothing, so the leaf's side's
/// is the only write, and wins whichever side is preferred; edge on both, nothing is known
/// beyond the base's, and that stands; a leaf on both, both states are read and meet as any
/// field's.
fn stated_parent(line: &ExportLine) -> Option<Option<DeviceId>> {
    if line.key.module.is_some() {
        return Some(None);
    }
    match stated_capabilities(line) {
        Some(capabilities) if capabilities.iot_edge => None,
        Some(_) => Some(parent_of(line)),
        // Not its own scope, which states an edge device: a leaf's.
        None if line.parent.is_some() => Some(parent_of(line)),
        None => None,
    }
}
