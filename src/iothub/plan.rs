//! The import plan: the lines that turn the primary into the merged registry, nothing more.
//!
//! | merged vs primary | line |
//! |---|---|
//! | missing from the primary | `create`, full identity, tags and desired properties |
//! | gone from the merged registry | `deleteIfMatchETag` with the primary's `eTag` |
//! | status, reason, credentials, capabilities or parent differ | `updateIfMatchETag` with the primary's `eTag`, full identity, tags and desired |
//! | only tags or desired properties differ | `updateTwinIfMatchETag` with the primary's `twinETag` |
//!
//! Reported properties are never written: devices own them. No line ever makes the hub
//! generate keys: where a line would need credentials the merge does not know (or a rotation
//! conflict no rule could settle), the device is left out and listed as blocked. IoT Edge
//! system modules (`$edgeAgent`, `$edgeHub`) are never created: the edge runtime makes them.
//! Lines are sorted by id, then module id, so an interrupted import resumes where it stopped:
//! run the merge again and the plan is what is left.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::credentials::{AuthType, Authentication};
use crate::iothub::lift::{Failback, identity, known_over, parent_of};
use crate::iothub::line::{ExportLine, ImportMode};
use crate::key::{DeviceId, DeviceKey};
use crate::policy::Rule;
use crate::view::Device;

/// A device the plan leaves out, and why.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, iothub::Blocked};
/// let b = Blocked { key: DeviceKey::device("d")?, reason: "keys unknown".into() };
/// assert_eq!(b.reason, "keys unknown");
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Blocked {
    /// The device.
    pub key: DeviceKey,
    /// Why no line was written, and what an operator should do.
    pub reason: String,
}

/// The merged registry as export lines, the import plan, and what the plan left out.
///
/// # Examples
///
/// ```
/// use failback::{Authentication, DeviceKey, Pair, Status, SymmetricKey};
/// use failback::iothub::{ExportLine, Failback, ImportMode, Plan, Side};
///
/// let d = DeviceKey::device("d1")?;
/// let key = SymmetricKey::new("MDEyMzQ1Njc4OWFiY2RlZg==")?;
/// let mut line = ExportLine::new(d.clone(), Status::Enabled);
/// line.authentication = Some(Authentication::sas(Pair::new(Some(key.clone()), Some(key))));
/// line.e_tag = Some("AAAA".into());
/// let base = [line.clone()];
/// let secondary = [ExportLine { status: Status::Disabled, ..line.clone() }];
/// let failback = Failback::lift(&base, &base, &secondary, Side::Secondary)?;
/// let plan = Plan::new(&failback, &base);
/// assert_eq!(plan.import[0].import_mode, Some(ImportMode::UpdateIfMatchETag));
/// assert_eq!(plan.import[0].e_tag.as_deref(), Some("AAAA"));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The merged registry in export format, canonical: sorted, no `importMode`, `eTag` and
    /// `twinETag` from the primary where it has the device.
    pub merged: Vec<ExportLine>,
    /// The import lines for the primary, sorted.
    pub import: Vec<ExportLine>,
    /// Devices left out of the import.
    pub blocked: Vec<Blocked>,
    /// System modules the plan will not create (the edge runtime does).
    pub system_modules: Vec<DeviceKey>,
    /// Devices whose edge parent has no scope in the primary yet (it is created by this
    /// plan): written without `deviceScope`; the next run adds it.
    pub pending_parent: Vec<DeviceKey>,
}

impl Plan {
    /// Plans the import of `failback`'s merged registry into the primary, whose current export
    /// is `primary`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Failback, Plan, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// assert!(Plan::new(&failback, &[]).import.is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn new(failback: &Failback, primary: &[ExportLine]) -> Plan {
        let primary: BTreeMap<&DeviceKey, &ExportLine> =
            primary.iter().map(|l| (&l.key, l)).collect();
        let scopes = scopes(primary.values().copied());
        let mut plan = Plan::default();
        let devices: BTreeMap<DeviceKey, Device> = failback
            .merged()
            .devices(failback.policy())
            .map(|d| (d.key.clone(), d))
            .collect();

        for device in devices.values() {
            let (line, pending) = merged_line(device, primary.get(&device.key).copied(), &scopes);
            if pending {
                plan.pending_parent.push(device.key.clone());
            }
            plan.merged.push(line);
        }

        let keys: std::collections::BTreeSet<&DeviceKey> =
            devices.keys().chain(primary.keys().copied()).collect();
        let merged = std::mem::take(&mut plan.merged);
        let mut merged_lines = merged.iter().peekable();
        for key in keys {
            let merged = merged_lines.next_if(|l| &l.key == key);
            match (primary.get(key), merged) {
                (None, Some(line)) => plan.create(&devices[key], line),
                (Some(was), None) => plan.delete(was, &devices, &primary),
                (Some(was), Some(line)) => plan.update(&devices[key], was, line),
                (None, None) => {}
            }
        }
        plan.merged = merged;
        plan
    }

    fn create(&mut self, device: &Device, line: &ExportLine) {
        if device.key.module.as_ref().is_some_and(|m| m.is_system()) {
            self.system_modules.push(device.key.clone());
            return;
        }
        if let Err(reason) = usable(device) {
            self.blocked.push(Blocked {
                key: device.key.clone(),
                reason,
            });
            return;
        }
        self.import.push(ExportLine {
            import_mode: Some(ImportMode::Create),
            e_tag: None,
            twin_e_tag: None,
            reported: None,
            ..line.clone()
        });
    }

    fn delete(
        &mut self,
        was: &ExportLine,
        devices: &BTreeMap<DeviceKey, Device>,
        primary: &BTreeMap<&DeviceKey, &ExportLine>,
    ) {
        // Deleting a device deletes its modules with it; a separate line would fail.
        if was.key.module.is_some() {
            let device = DeviceKey {
                device: was.key.device.clone(),
                module: None,
            };
            if primary.contains_key(&device) && !devices.contains_key(&device) {
                return;
            }
        }
        let mut line = ExportLine::new(was.key.clone(), was.status);
        line.e_tag.clone_from(&was.e_tag);
        line.import_mode = Some(ImportMode::DeleteIfMatchETag);
        self.import.push(line);
    }

    fn update(&mut self, device: &Device, was: &ExportLine, line: &ExportLine) {
        let Ok(now) = identity(was) else {
            return;
        };
        let authentication = known_over(was.authentication.as_ref(), &device.authentication);
        let identity_differs = device.status != now.status
            || device.authentication != authentication
            || device.capabilities != now.capabilities
            || device.parent != parent_of(was);
        let empty = serde_json::Map::new();
        let twin_differs = device.tags != *was.tags.as_ref().unwrap_or(&empty)
            || device.desired != *was.desired.as_ref().unwrap_or(&empty);
        if identity_differs {
            if let Err(reason) = usable(device) {
                self.blocked.push(Blocked {
                    key: device.key.clone(),
                    reason,
                });
                return;
            }
            self.import.push(ExportLine {
                import_mode: Some(ImportMode::UpdateIfMatchETag),
                twin_e_tag: None,
                reported: None,
                ..line.clone()
            });
        } else if twin_differs {
            let mut twin = ExportLine::new(line.key.clone(), line.status);
            twin.import_mode = Some(ImportMode::UpdateTwinIfMatchETag);
            twin.twin_e_tag.clone_from(&was.twin_e_tag);
            twin.tags = Some(device.tags.clone());
            twin.desired = Some(device.desired.clone());
            self.import.push(twin);
        }
    }
}

/// Why a create or full update of `device` cannot be written without making the hub generate
/// credentials or restore a rotated-out one.
fn usable(device: &Device) -> Result<(), String> {
    if device
        .conflicts
        .iter()
        .any(|c| c.field == "authentication" && c.rule == Rule::RetiredCredentialUnresolved)
    {
        return Err("concurrent credential rotations on both sides: every value holds a key or \
                    thumbprint the other side rotated out; choose the credentials and import by hand"
            .into());
    }
    let auth: &Authentication = &device.authentication;
    match auth.kind {
        AuthType::Sas => match &auth.keys {
            Some(keys) if keys.primary.is_some() && keys.secondary.is_some() => Ok(()),
            Some(_) => Err(
                "symmetric keys are empty: importing would make the hub generate new ones".into(),
            ),
            None => {
                Err("symmetric keys unknown (exported without keys): re-export with keys".into())
            }
        },
        AuthType::SelfSigned => match &auth.thumbprints {
            Some(t) if t.primary.is_some() => Ok(()),
            Some(_) => Err("no primary thumbprint: the device could not authenticate".into()),
            None => Err("thumbprints unknown (exported without keys): re-export with keys".into()),
        },
        AuthType::CertificateAuthority | AuthType::None => Ok(()),
    }
}

/// Each edge device's scope in the primary hub, by device id: an edge device's own line and
/// its children's lines both carry it.
fn scopes<'a>(lines: impl Iterator<Item = &'a ExportLine>) -> BTreeMap<DeviceId, String> {
    let mut out = BTreeMap::new();
    for line in lines {
        if let (Some(parent), Some(scope)) = (&line.parent, &line.device_scope) {
            out.entry(parent.clone()).or_insert_with(|| scope.clone());
        }
    }
    out
}

/// The merged line of `device`; also whether its parent's scope is unknown in the primary.
fn merged_line(
    device: &Device,
    primary: Option<&ExportLine>,
    scopes: &BTreeMap<DeviceId, String>,
) -> (ExportLine, bool) {
    let mut line = ExportLine::new(device.key.clone(), device.status.status);
    line.status_reason.clone_from(&device.status.reason);
    line.authentication = Some(device.authentication.clone());
    line.capabilities = Some(device.capabilities);
    let non_empty =
        |m: &serde_json::Map<String, serde_json::Value>| (!m.is_empty()).then(|| m.clone());
    line.tags = non_empty(&device.tags);
    line.desired = non_empty(&device.desired);
    line.reported = non_empty(&device.reported);
    if let Some(primary) = primary {
        line.e_tag.clone_from(&primary.e_tag);
        line.twin_e_tag.clone_from(&primary.twin_e_tag);
    }
    let mut pending = false;
    let scope_owner = if device.key.module.is_some() {
        None
    } else if device.capabilities.iot_edge {
        Some(device.key.device.clone())
    } else {
        device.parent.clone()
    };
    if let Some(owner) = scope_owner {
        match scopes.get(&owner) {
            Some(scope) => {
                line.device_scope = Some(scope.clone());
                line.parent = Some(owner);
            }
            // A new edge device gets its scope from the hub on creation: nothing to wait for.
            None => pending = device.parent.is_some(),
        }
    }
    if device.key.module.is_some() {
        if let Some(primary) = primary {
            line.device_scope.clone_from(&primary.device_scope);
            line.parent.clone_from(&primary.parent);
        }
    }
    (line, pending)
}
