//! An IoT Hub import simulator: applies import lines to a hub's registry the way IoT Hub's
//! bulk import job does, strictly. Every line the failback plan may write is checked against
//! the hub's rules; anything IoT Hub would refuse, or would silently do differently from what
//! the plan intends (generate keys, detach a leaf from its gateway), is an error.
//!
//! What it models (IoT Hub facts from /work/shared/IOTHUB.md):
//! - `create`: an error if the identity exists; new `eTag` and `twinETag`. An edge device gets
//!   its own new scope `ms-azure-iot-edge://{id}-{generation}`; a module inherits nothing from
//!   its device. A module needs its device; `$` system modules cannot be imported.
//! - `updateIfMatchETag`: the `eTag` must match; replaces the identity (status, reason,
//!   authentication, capabilities, scope), tags and desired properties; keeps reported
//!   properties; new `eTag` and `twinETag`. An edge device keeps its scope (a device becoming
//!   edge gets a new one).
//! - `updateTwinIfMatchETag`: the `twinETag` must match; replaces tags and desired properties;
//!   new `twinETag`, same `eTag`.
//! - `deleteIfMatchETag`: the `eTag` must match; deleting a device deletes its modules.
//!
//! A line that would make the hub generate credentials (SAS with unknown or empty keys, a
//! self-signed device without thumbprints), a line that writes reported properties, a leaf
//! scope that is not the current scope of an edge device in this hub, and every other import
//! mode are errors too, and so is a plain device line whose scope names the device itself (it
//! would be its own parent). A device line stating no capabilities is an edge device where its
//! scope names itself, and, stating no scope either, where a line of the hub carries a scope
//! naming it: that scope is its own (the hub gives it to no other device), kept while the device
//! is, whatever becomes of the lines that showed it. Where lines of the export an import was
//! planned from carry two scopes naming it, one is stale (a scope embeds the gateway's
//! generation), and which is its own the simulator cannot tell: a line of that import may carry
//! either only where its device already holds it (the line changes nothing of its parent;
//! IOTHUB.md does not say that the hub checks a scope a line leaves as it is), even once an
//! earlier line of the import has described the gateway (an update does not change an edge
//! device's scope, so that line changes nothing of what the hub checks), and no other line may
//! carry either. The scope stays unknown until an export shows one alone (the import moved the
//! other's leaves away, say): from the next import on, that one is the gateway's, as it would be
//! for a hub starting from that export, which is all the plan reads. A module line may carry its
//! device's scope as the hub holds it, or none: a module has no scope of its own (the lift reads
//! a module's as its device's), so another (a stale one, say) is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use failback::iothub::{ExportLine, ImportMode, Parsed, parse_line};
use failback::{AuthType, DeviceKey, Status};

const SCOPE_PREFIX: &str = "ms-azure-iot-edge://";

/// One hub's registry, as its export would show it.
#[derive(Clone, Debug)]
pub struct Hub {
    lines: BTreeMap<DeviceKey, ExportLine>,
    /// The scope of each edge device whose line states no capabilities and no scope, as the
    /// lines of an export show it: the first export showing one alone settles it, and it is
    /// `None` while each has shown two.
    hidden_scopes: BTreeMap<DeviceKey, Option<String>>,
    /// The scopes naming each such device whose scope is not settled, where the export the
    /// current import was planned from shows two or more: a line of this import may keep one
    /// its device holds, and carry none otherwise.
    contradicted: BTreeMap<DeviceKey, BTreeSet<String>>,
    /// Source of fresh ETags and generation ids.
    counter: u64,
}

impl Hub {
    /// A hub holding `export`'s lines.
    pub fn new(export: &[ExportLine]) -> Hub {
        let mut lines = BTreeMap::new();
        for line in export {
            let previous = lines.insert(line.key.clone(), line.clone());
            assert!(previous.is_none(), "{} twice in the export", line.key);
        }
        let mut hub = Hub {
            lines,
            hidden_scopes: BTreeMap::new(),
            contradicted: BTreeMap::new(),
            counter: 0,
        };
        hub.read_hidden_scopes();
        hub
    }

    /// Reads, as the plan reads the hub's export now, the scopes its lines show for each edge
    /// device whose line states no capabilities and no scope: one alone settles the device's
    /// (kept from then on, whatever becomes of the lines), and two or more are contradicted for
    /// the import planned from this export. A settled scope is not read again: the hub knows it.
    fn read_hidden_scopes(&mut self) {
        let mut shown: BTreeMap<DeviceKey, BTreeSet<String>> = BTreeMap::new();
        for scope in self.lines.values().filter_map(|l| l.device_scope.as_ref()) {
            let Some(owner) = scope_owner(scope).and_then(|id| DeviceKey::device(id).ok()) else {
                continue;
            };
            if self.lines.get(&owner).is_some_and(undescribed) {
                shown.entry(owner).or_default().insert(scope.clone());
            }
        }
        self.contradicted.clear();
        for (owner, scopes) in shown {
            let settled = self.hidden_scopes.entry(owner.clone()).or_insert(None);
            if settled.is_some() {
                continue;
            }
            if scopes.len() == 1 {
                *settled = scopes.into_iter().next();
            } else {
                self.contradicted.insert(owner, scopes);
            }
        }
    }

    /// Applies every line in order, as one import job planned from the hub's export now; the
    /// first refused line fails with its index.
    pub fn import(&mut self, lines: &[ExportLine]) -> Result<(), String> {
        self.read_hidden_scopes();
        for (at, line) in lines.iter().enumerate() {
            self.apply(line)
                .map_err(|e| format!("import line {} ({}): {e}", at + 1, line.to_json()))?;
        }
        Ok(())
    }

    /// The hub's export now: every line written and read back as a new export job would.
    pub fn export(&self) -> Vec<ExportLine> {
        self.lines
            .values()
            .map(
                |line| match parse_line(Path::new("export"), 1, &line.to_json()) {
                    Ok(Parsed::Device(line)) => line,
                    other => panic!("the hub exported an unreadable line: {other:?}"),
                },
            )
            .collect()
    }

    /// A new generation id: digits only, as IoT Hub's (a scope's device id ends at its last `-`).
    fn generation(&mut self) -> u64 {
        self.counter += 1;
        637_000_000_000_000_000 + self.counter
    }

    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("sim-{what}-{}", self.counter)
    }

    /// Applies one import line.
    pub fn apply(&mut self, line: &ExportLine) -> Result<(), String> {
        let key = &line.key;
        if line.reported.is_some() {
            return Err("writes reported properties, which only the device may write".into());
        }
        let mode = line.import_mode.unwrap_or_default();
        match mode {
            ImportMode::Create => {
                if self.lines.contains_key(key) {
                    return Err("create: the identity already exists".into());
                }
                if key.module.as_ref().is_some_and(|m| m.is_system()) {
                    return Err("an import cannot create IoT Edge system modules".into());
                }
                self.check_identity(line)?;
                let mut created = ExportLine {
                    import_mode: None,
                    e_tag: Some(self.fresh("etag")),
                    twin_e_tag: Some(self.fresh("twin")),
                    ..line.clone()
                };
                created.device_scope = match &key.module {
                    Some(_) => None,
                    None if is_edge(line) => Some(format!(
                        "{SCOPE_PREFIX}{}-{}",
                        key.device,
                        self.generation()
                    )),
                    None => line.device_scope.clone(),
                };
                created.parent = None;
                self.lines.insert(key.clone(), created);
            }
            ImportMode::UpdateIfMatchETag => {
                let was = self.existing(key)?.clone();
                if line.e_tag.is_none() || line.e_tag != was.e_tag {
                    return Err(format!(
                        "updateIfMatchETag: eTag {:?} does not match the hub's {:?}",
                        line.e_tag, was.e_tag
                    ));
                }
                self.check_identity(line)?;
                // An edge device keeps its scope, the one its own line carries or, where its
                // line left capabilities and scope out, the one its leaves carry.
                let held = match (is_edge(&was), &was.device_scope) {
                    (true, Some(own)) => Some(own.clone()),
                    _ => self.undescribed_scope_of(&was),
                };
                let scope = match &key.module {
                    Some(_) => line.device_scope.clone(),
                    None if is_edge(line) => held.or_else(|| {
                        Some(format!(
                            "{SCOPE_PREFIX}{}-{}",
                            key.device,
                            self.generation()
                        ))
                    }),
                    None => line.device_scope.clone(),
                };
                let updated = ExportLine {
                    import_mode: None,
                    e_tag: Some(self.fresh("etag")),
                    twin_e_tag: Some(self.fresh("twin")),
                    reported: was.reported.clone(),
                    device_scope: scope,
                    parent: None,
                    ..line.clone()
                };
                self.lines.insert(key.clone(), updated);
            }
            ImportMode::UpdateTwinIfMatchETag => {
                let was = self.existing(key)?;
                if line.twin_e_tag.is_none() || line.twin_e_tag != was.twin_e_tag {
                    return Err(format!(
                        "updateTwinIfMatchETag: twinETag {:?} does not match the hub's {:?}",
                        line.twin_e_tag, was.twin_e_tag
                    ));
                }
                let twin = self.fresh("twin");
                let was = self.lines.get_mut(key).expect("checked above");
                was.tags.clone_from(&line.tags);
                was.desired.clone_from(&line.desired);
                was.twin_e_tag = Some(twin);
            }
            ImportMode::DeleteIfMatchETag => {
                let was = self.existing(key)?;
                if line.e_tag.is_none() || line.e_tag != was.e_tag {
                    return Err(format!(
                        "deleteIfMatchETag: eTag {:?} does not match the hub's {:?}",
                        line.e_tag, was.e_tag
                    ));
                }
                self.lines.remove(key);
                self.hidden_scopes.remove(key);
                self.contradicted.remove(key);
                if key.module.is_none() {
                    self.lines.retain(|k, _| k.device != key.device);
                }
            }
            other => return Err(format!("the plan never writes {other}")),
        }
        Ok(())
    }

    fn existing(&self, key: &DeviceKey) -> Result<&ExportLine, String> {
        self.lines
            .get(key)
            .ok_or_else(|| "the identity does not exist".to_string())
    }

    /// What IoT Hub would refuse in a line that sets an identity, or do differently from what
    /// the line says.
    fn check_identity(&self, line: &ExportLine) -> Result<(), String> {
        let key = &line.key;
        if key.module.is_some() {
            if line.status == Status::Disabled {
                return Err("modules cannot be disabled".into());
            }
            let device = DeviceKey {
                device: key.device.clone(),
                module: None,
            };
            let Some(device) = self.lines.get(&device) else {
                return Err("a module's device must exist".into());
            };
            if line.device_scope.is_some() && line.device_scope != device.device_scope {
                return Err(format!(
                    "a module's deviceScope {:?} is not its device's {:?}",
                    line.device_scope, device.device_scope
                ));
            }
        }
        let Some(auth) = &line.authentication else {
            return Err("no authentication: the hub would generate keys".into());
        };
        match auth.kind {
            AuthType::Sas => match &auth.keys {
                Some(keys) if keys.primary.is_some() && keys.secondary.is_some() => {}
                _ => return Err("SAS without both keys: the hub would generate keys".into()),
            },
            AuthType::SelfSigned => match &auth.thumbprints {
                Some(t) if t.primary.is_some() => {}
                _ => return Err("self-signed without a primary thumbprint".into()),
            },
            AuthType::CertificateAuthority | AuthType::None => {}
        }
        if key.module.is_none() && !is_edge(line) {
            if let Some(scope) = &line.device_scope {
                // A scope names its edge device; on a plain device's line, its own id would make
                // it its own parent, and no edge device holds that scope once the line is in.
                if scope_owner(scope) == Some(key.device.as_str()) {
                    return Err(format!("deviceScope {scope} names the plain device itself"));
                }
                let owner = self.lines.values().find(|l| {
                    l.key.module.is_none() && is_edge(l) && l.device_scope.as_ref() == Some(scope)
                });
                let accepted = || {
                    self.undescribed_edge_scope(scope) || self.kept_contradicted_scope(scope, key)
                };
                if owner.is_none() && !accepted() {
                    return Err(format!(
                        "deviceScope {scope} is not the scope of an edge device in this hub"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The scope of `was`, an edge device whose line states no capabilities and no scope (an
    /// export that left them out), as the lines of an export settled it. Where each has shown
    /// two, the first in key order among the lines now stands for the one the hub knows.
    fn undescribed_scope_of(&self, was: &ExportLine) -> Option<String> {
        if !undescribed(was) {
            return None;
        }
        match self.hidden_scopes.get(&was.key)? {
            Some(scope) => Some(scope.clone()),
            None => {
                let names_it = |scope: &String| scope_owner(scope) == Some(was.key.device.as_str());
                let mut scopes = self.lines.values().filter_map(|l| l.device_scope.as_ref());
                scopes.find(|scope| names_it(scope)).cloned()
            }
        }
    }

    /// Whether `scope` is the settled scope of an edge device whose line here states no
    /// capabilities and no scope (an export that left them out), as the lines of an export
    /// showed it.
    fn undescribed_edge_scope(&self, scope: &str) -> bool {
        let Some(owner) = scope_owner(scope).and_then(|id| DeviceKey::device(id).ok()) else {
            return false;
        };
        self.lines.get(&owner).is_some_and(undescribed)
            && self.hidden_scopes.get(&owner).and_then(Option::as_deref) == Some(scope)
    }

    /// Whether `scope`, on a line of `key`, is one of two or more the export this import was
    /// planned from showed for an edge device whose line stated no capabilities and no scope,
    /// `key` holds it, and that device is still an edge device: the line leaves the scope as it
    /// is. So too where an earlier line of this import described the device (an update keeps an
    /// edge device's scope, whichever the simulator took for it), but not once it is deleted or
    /// made plain.
    fn kept_contradicted_scope(&self, scope: &str, key: &DeviceKey) -> bool {
        let Some(owner) = scope_owner(scope).and_then(|id| DeviceKey::device(id).ok()) else {
            return false;
        };
        let shown = self
            .contradicted
            .get(&owner)
            .is_some_and(|s| s.contains(scope));
        let edge = self
            .lines
            .get(&owner)
            .is_some_and(|l| undescribed(l) || is_edge(l));
        let held = self.lines.get(key).and_then(|l| l.device_scope.as_deref()) == Some(scope);
        shown && edge && held
    }
}

/// Whether `line` is a device's that states no capabilities and no scope (an export that left
/// them out).
fn undescribed(line: &ExportLine) -> bool {
    line.key.module.is_none() && line.capabilities.is_none() && line.device_scope.is_none()
}

/// The id of the edge device `scope` names (`ms-azure-iot-edge://{id}-{generation}`).
fn scope_owner(scope: &str) -> Option<&str> {
    let rest = scope.strip_prefix(SCOPE_PREFIX)?;
    rest.rsplit_once('-').map(|(id, _)| id)
}

/// Whether `line` is an IoT Edge device's: its capabilities say so, or, stating none, its scope
/// names the device itself (a scope is an edge device's own, as the lift reads it too).
fn is_edge(line: &ExportLine) -> bool {
    let own_scope = || {
        let owner = line.device_scope.as_deref().and_then(scope_owner);
        line.key.module.is_none() && owner == Some(line.key.device.as_str())
    };
    line.capabilities.is_some_and(|c| c.iot_edge) || (line.capabilities.is_none() && own_scope())
}
