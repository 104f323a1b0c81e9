//! Lifting three exports (base, primary, secondary) into three replicas, and merging them.
//!
//! The base is the registry both sides started from, so it is written first, by its own
//! replica: every base device is one create. Each side is then the base plus that side's
//! differences from it, written by the side's replica; writes on different sides are
//! therefore concurrent, and the core's rules decide. Field by field: a value changed on one
//! side only takes that side's value, the same change on both is no conflict, and different
//! changes are a conflict settled by the rule for that field.
//!
//! Unknown credentials (an export taken without keys) never count as a change: a side whose
//! keys are unknown keeps the base's, and a known value is never overwritten by an unknown one.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::clock::ReplicaId;
use crate::credentials::{AuthType, Authentication};
use crate::device::Identity;
use crate::error::{Error, Result};
use crate::identity::StatusValue;
use crate::iothub::line::ExportLine;
use crate::key::{DeviceId, DeviceKey};
use crate::policy::{Policy, Preference};
use crate::registry::Registry;
use crate::report::Report;
use crate::stamp::Stamp;
use crate::twin::{self, Section, TwinPath};

/// The replica that writes the base snapshot.
pub const BASE: ReplicaId = ReplicaId::from_u128(0xba5e);
/// The replica that writes the primary's changes.
pub const PRIMARY: ReplicaId = ReplicaId::from_u128(0x9c1);
/// The replica that writes the secondary's changes.
pub const SECONDARY: ReplicaId = ReplicaId::from_u128(0x5ec);

/// Which hub a value came from.
///
/// # Examples
///
/// ```
/// use failback::iothub::Side;
/// assert_eq!(Side::of(failback::iothub::SECONDARY), Some(Side::Secondary));
/// assert_eq!(Side::Primary.as_str(), "primary");
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// The backup both sides started from.
    Base,
    /// The primary hub, now back.
    Primary,
    /// The secondary hub devices used during the outage.
    Secondary,
}

impl Side {
    /// The side a replica id stands for.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Side, BASE};
    /// assert_eq!(Side::of(BASE), Some(Side::Base));
    /// ```
    pub fn of(replica: ReplicaId) -> Option<Side> {
        match replica {
            BASE => Some(Side::Base),
            PRIMARY => Some(Side::Primary),
            SECONDARY => Some(Side::Secondary),
            _ => None,
        }
    }

    /// The side's replica.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Side, PRIMARY};
    /// assert_eq!(Side::Primary.replica(), PRIMARY);
    /// ```
    pub fn replica(self) -> ReplicaId {
        match self {
            Side::Base => BASE,
            Side::Primary => PRIMARY,
            Side::Secondary => SECONDARY,
        }
    }

    /// Its name in reports.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::iothub::Side::Base.as_str(), "base");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Base => "base",
            Side::Primary => "primary",
            Side::Secondary => "secondary",
        }
    }

    /// The [`Policy`] that prefers this side for every conflict no security rule settles.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Preference, iothub::{Side, SECONDARY}};
    /// assert_eq!(Side::Secondary.policy().credentials, Preference::Replica(SECONDARY));
    /// ```
    pub fn policy(self) -> Policy {
        Policy {
            fields: Preference::Replica(self.replica()),
            credentials: Preference::Replica(self.replica()),
        }
    }
}

/// How one side changed one device relative to the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Unchanged,
    Created,
    Updated,
    Deleted,
}

/// Three exports lifted into replicas and merged.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Status, iothub::{ExportLine, Failback, Side}};
///
/// let d = DeviceKey::device("d1")?;
/// let base = [ExportLine::new(d.clone(), Status::Enabled)];
/// let primary = base.clone();
/// let secondary = [ExportLine::new(d.clone(), Status::Disabled)];
/// let failback = Failback::lift(&base, &primary, &secondary, Side::Secondary)?;
/// let device = failback.merged().device(&d, failback.policy()).expect("live");
/// assert_eq!(device.status.status, Status::Disabled);
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Failback {
    base: Registry,
    primary: Registry,
    secondary: Registry,
    merged: Registry,
    merge_report: Report,
    policy: Policy,
    /// Per key, what each side did: (primary, secondary).
    pub(crate) changes: BTreeMap<DeviceKey, (Change, Change)>,
}

impl Failback {
    /// Lifts the three snapshots and merges them, preferring `prefer` where no security rule
    /// settles a conflict.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] when a line holds a twin key IoT Hub does not allow, or
    /// [`Error::InvalidId`] naming a key that appears twice in one snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Failback, Side};
    /// let empty = Failback::lift(&[], &[], &[], Side::Primary)?;
    /// assert!(empty.merged().is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn lift(
        base: &[ExportLine],
        primary: &[ExportLine],
        secondary: &[ExportLine],
        prefer: Side,
    ) -> Result<Self> {
        let base_lines = index(base, Side::Base)?;
        let primary_lines = index(primary, Side::Primary)?;
        let secondary_lines = index(secondary, Side::Secondary)?;

        let mut base_registry = Registry::new();
        let mut base_identities = BTreeMap::new();
        {
            let mut writer = base_registry.writer(BASE, Stamp::default());
            for (key, line) in &base_lines {
                let identity = identity(line)?;
                writer.create(key, identity.clone())?;
                base_identities.insert(*key, identity);
            }
        }
        let (primary_registry, primary_changes) = apply_side(
            &base_registry,
            &base_identities,
            &primary_lines,
            &secondary_lines,
            PRIMARY,
        )?;
        let (secondary_registry, secondary_changes) = apply_side(
            &base_registry,
            &base_identities,
            &secondary_lines,
            &primary_lines,
            SECONDARY,
        )?;

        let policy = prefer.policy();
        let mut merged = primary_registry.clone();
        let merge_report = merged.merge_with(&secondary_registry, &policy);

        let mut changes = BTreeMap::new();
        let keys = base_lines
            .keys()
            .chain(primary_lines.keys())
            .chain(secondary_lines.keys());
        for key in keys {
            let p = primary_changes
                .get(*key)
                .copied()
                .unwrap_or(Change::Unchanged);
            let s = secondary_changes
                .get(*key)
                .copied()
                .unwrap_or(Change::Unchanged);
            changes.insert((*key).clone(), (p, s));
        }
        Ok(Self {
            base: base_registry,
            primary: primary_registry,
            secondary: secondary_registry,
            merged,
            merge_report,
            policy,
            changes,
        })
    }

    /// The merged registry.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::iothub::{Failback, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// assert_eq!(failback.merged().len(), 0);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn merged(&self) -> &Registry {
        &self.merged
    }

    /// A side's replica: the base, or the base plus that side's changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::iothub::{Failback, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// assert!(failback.replica(Side::Base).is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn replica(&self, side: Side) -> &Registry {
        match side {
            Side::Base => &self.base,
            Side::Primary => &self.primary,
            Side::Secondary => &self.secondary,
        }
    }

    /// What merging the secondary's replica into the primary's did.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::iothub::{Failback, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// assert!(failback.merge_report().is_unchanged());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn merge_report(&self) -> &Report {
        &self.merge_report
    }

    /// The policy conflicts are read with.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::iothub::{Failback, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Primary)?;
    /// assert_eq!(*failback.policy(), Side::Primary.policy());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Lines by key; a key twice in one snapshot is an error (which copy would be the device?).
fn index(lines: &[ExportLine], side: Side) -> Result<BTreeMap<&DeviceKey, &ExportLine>> {
    let mut out = BTreeMap::new();
    for line in lines {
        if out.insert(&line.key, line).is_some() {
            return Err(Error::InvalidId {
                kind: "device",
                id: line.key.to_string(),
                reason: format!("appears twice in the {} export", side.as_str()),
            });
        }
    }
    Ok(out)
}

/// The edge parent a line names. An edge device's scope names the device itself (its own
/// scope, not a parent), and a module inherits its device's scope: neither is a parent.
pub(crate) fn parent_of(line: &ExportLine) -> Option<DeviceId> {
    if line.key.module.is_some() {
        return None;
    }
    line.parent.clone().filter(|p| *p != line.key.device)
}

/// The identity a line describes.
pub(crate) fn identity(line: &ExportLine) -> Result<Identity> {
    let mut identity = Identity::default()
        .with_status(StatusValue::new(line.status, line.status_reason.clone()))
        .with_authentication(relevant(line.authentication.clone().unwrap_or_default()))
        .with_capabilities(line.capabilities.unwrap_or_default())
        .with_parent(parent_of(line));
    let sections = [
        (Section::Tags, &line.tags),
        (Section::Desired, &line.desired),
        (Section::Reported, &line.reported),
    ];
    for (section, object) in sections {
        if let Some(object) = object {
            identity
                .twin
                .extend(twin::flatten(section, object).map_err(|e| with_device(e, &line.key))?);
        }
    }
    Ok(identity)
}

fn with_device(error: Error, key: &DeviceKey) -> Error {
    match error {
        Error::InvalidValue { field, reason } => Error::InvalidValue {
            field: format!("{field} of {key}"),
            reason,
        },
        other => other,
    }
}

/// The side's credentials with what it does not know taken from the base: unknown is never a
/// change.
pub(crate) fn known_over(side: Option<&Authentication>, base: &Authentication) -> Authentication {
    match side {
        None => base.clone(),
        Some(side) => relevant(Authentication {
            kind: side.kind,
            keys: side.keys.clone().or_else(|| base.keys.clone()),
            thumbprints: side
                .thumbprints
                .clone()
                .or_else(|| base.thumbprints.clone()),
        }),
    }
}

/// Only the credentials the device's type authenticates with; the other kind is dropped (read
/// as unknown).
///
/// An export writes the kind a device does not use as nulls (an X.509 device's
/// `"symmetricKey":{"primaryKey":null,…}`), which reads as unknown. Filled in from the base, it
/// would give a side that switched a device from SAS to X.509 the keys it dropped; a key the
/// other side rotated out would then look held by it, and the retired-credential rule would
/// discard the switch whatever the preference. (2026-11-21)
pub(crate) fn relevant(auth: Authentication) -> Authentication {
    match auth.kind {
        AuthType::Sas => Authentication {
            thumbprints: None,
            ..auth
        },
        AuthType::SelfSigned => Authentication { keys: None, ..auth },
        AuthType::CertificateAuthority | AuthType::None => Authentication {
            keys: None,
            thumbprints: None,
            ..auth
        },
    }
}

/// The base plus one side's differences, written by `replica`; `other` is the other side's
/// snapshot.
fn apply_side(
    base: &Registry,
    base_identities: &BTreeMap<&DeviceKey, Identity>,
    side: &BTreeMap<&DeviceKey, &ExportLine>,
    other: &BTreeMap<&DeviceKey, &ExportLine>,
    replica: ReplicaId,
) -> Result<(Registry, BTreeMap<DeviceKey, Change>)> {
    let mut registry = base.clone();
    let mut changes = BTreeMap::new();
    let mut writer = registry.writer(replica, Stamp::default());
    for key in base_identities.keys() {
        if !side.contains_key(key) {
            writer.delete(key)?;
            changes.insert((*key).clone(), Change::Deleted);
        }
    }
    for (key, line) in side {
        let Some(was) = base_identities.get(key) else {
            let mut created = identity(line)?;
            // Created on both sides, there is no base to take unknown credentials from; the
            // other side's line is the only evidence. Unknown is not a value: it must not
            // compete with (and, preferred, replace) the keys the other side knows.
            if let Some(known) = other.get(key).and_then(|l| l.authentication.as_ref()) {
                created.authentication =
                    known_over(line.authentication.as_ref(), &relevant(known.clone()));
            }
            writer.create(key, created)?;
            changes.insert((*key).clone(), Change::Created);
            continue;
        };
        let now = identity(line)?;
        let mut changed = false;
        if now.status != was.status {
            writer.set_status(key, now.status.clone())?;
            changed = true;
        }
        let authentication = known_over(line.authentication.as_ref(), &was.authentication);
        if authentication != was.authentication {
            writer.set_authentication(key, authentication)?;
            changed = true;
        }
        if now.capabilities != was.capabilities {
            writer.set_capabilities(key, now.capabilities)?;
            changed = true;
        }
        if now.parent != was.parent {
            writer.set_parent(key, now.parent.clone())?;
            changed = true;
        }
        changed |= write_twin_diff(&mut writer, key, &was.twin, &now.twin)?;
        if changed {
            changes.insert((*key).clone(), Change::Updated);
        }
    }
    Ok((registry, changes))
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
