//! The primary's scopes: each edge device the primary's export names, and its scope there where
//! the export tells it ([`Scopes`]).
//!
//! Apart from the scope decisions (`parent.rs`) because it is read once, across every line of
//! the primary's export, before any device is planned: which devices the primary holds as edge
//! devices (a scope names one), and which scope a line may carry for each.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::key_of;
use crate::iothub::lift::PrimaryLine;
use crate::key::{DeviceId, DeviceKey};

/// Each edge device a line of the primary's export names (by its own scope, a child's or a
/// module's), and its scope in the primary where the lines tell it: from its own line, or, when
/// that line has none, from the other lines naming it, where they agree. The own line wins
/// because it is the device's scope as the hub holds it now, while a child's line can carry a
/// scope the device no longer has.
///
/// A scope embeds the gateway's `generationId` (IOTHUB.md), so two children carrying two scopes
/// for one gateway (`gw-1`, `gw-5`) mean that at most one is its own: the other is an older
/// generation's, kept on a leaf since the gateway was deleted and created again. Where the
/// gateway's own line carries none, which is stale is not in the export, and the scope is
/// unknown (see [`Scopes::scope`]): taking one child's would write it on the other children's
/// lines, replacing the scope the hub holds for them, and on a new leaf's create, and the hub
/// refuses a stale one on every run. The device is still named, and so held as an edge device
/// ([`Scopes::names`]).
///
/// Only devices the primary's export holds, and does not state plain: a child's scope naming one
/// it does not hold is a deleted gateway's (a gateway of that id created again, by this plan or
/// later, has another scope). Taken as the device's, it would be written on the new gateway's
/// create line, and on its leaves, naming no edge device. And one naming a device the export
/// states plain is of an edge device made plain since: IoT Hub refuses a scope naming no edge
/// device, and IOTHUB.md does not say that a device made an edge device again gets the scope it
/// had; so its leaves wait for the one the hub gives it, where this plan makes it one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Scopes {
    /// By edge device: its scope, or `None` where the lines naming it disagree.
    named: BTreeMap<DeviceId, Option<String>>,
}

/// A scope read from the lines naming an edge device, while they are read.
enum Read {
    /// From the device's own line: final.
    Own(String),
    /// From other lines, all carrying this one so far.
    Children(String),
    /// From other lines carrying different scopes.
    Contradicted,
}

impl Scopes {
    /// The scopes of the primary's export `lines`.
    pub(super) fn of(lines: &BTreeMap<DeviceKey, PrimaryLine>) -> Scopes {
        let mut read: BTreeMap<DeviceId, Read> = BTreeMap::new();
        for (key, line) in lines {
            let (Some(owner), Some(scope)) = (&line.scope_owner, &line.device_scope) else {
                continue;
            };
            let own = key.module.is_none() && key.device == *owner;
            match read.entry(owner.clone()) {
                Entry::Vacant(entry) if own => {
                    entry.insert(Read::Own(scope.clone()));
                }
                Entry::Vacant(entry) => {
                    entry.insert(Read::Children(scope.clone()));
                }
                Entry::Occupied(mut entry) => match entry.get() {
                    Read::Own(_) => {}
                    _ if own => {
                        entry.insert(Read::Own(scope.clone()));
                    }
                    Read::Children(agreed) if agreed == scope => {}
                    Read::Children(_) | Read::Contradicted => {
                        entry.insert(Read::Contradicted);
                    }
                },
            }
        }
        let held = |owner: &DeviceId| lines.get(&key_of(owner)).is_some_and(|l| !l.stated_plain);
        let named = read
            .into_iter()
            .filter(|(owner, _)| held(owner))
            .map(|(owner, read)| {
                let scope = match read {
                    Read::Own(scope) | Read::Children(scope) => Some(scope),
                    Read::Contradicted => None,
                };
                (owner, scope)
            })
            .collect();
        Scopes { named }
    }

    /// Whether a line of the primary's export names `owner` as an edge device the primary holds
    /// (its scope is `owner`'s, and `owner`'s own line does not state it plain): the hub refuses
    /// a scope naming no edge device, so the primary holds it as one, known scope or not.
    pub(super) fn names(&self, owner: &DeviceId) -> bool {
        self.named.contains_key(owner)
    }

    /// The scope a line for a device whose line in the primary is `primary` (if any) carries for
    /// `owner`, the edge device the line names: `owner`'s scope in the primary, where the lines
    /// tell it; else, where `owner`'s children disagree on it, the device's own scope, where
    /// `primary` carries one naming `owner`. That one changes nothing of the device's parent:
    /// it is the scope the hub holds for the device, stale or not, and a line carrying the other
    /// children's could replace its own scope with a stale one. Any other line (a new leaf's, or
    /// one moved there) has no scope to carry: `None`.
    pub(super) fn scope<'a>(
        &'a self,
        owner: &DeviceId,
        primary: Option<&'a PrimaryLine>,
    ) -> Option<&'a String> {
        match self.named.get(owner)? {
            Some(scope) => Some(scope),
            None => primary
                .filter(|line| line.scope_owner.as_ref() == Some(owner))
                .and_then(|line| line.device_scope.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Status;

    fn line(scope: Option<&str>, stated_plain: bool) -> PrimaryLine {
        PrimaryLine {
            e_tag: Some("e".into()),
            twin_e_tag: Some("t".into()),
            device_scope: scope.map(|s| format!("ms-azure-iot-edge://{s}")),
            scope_owner: scope.map(|s| id(s.rsplit_once('-').expect("a generation").0)),
            status: Status::Enabled,
            credentials_known: true,
            capabilities_known: !stated_plain && scope.is_some(),
            stated_plain,
        }
    }

    fn id(id: &str) -> DeviceId {
        DeviceId::new(id).expect("a valid id")
    }

    fn key(id: &str) -> DeviceKey {
        DeviceKey::device(id).expect("a valid id")
    }

    fn scopes(lines: &[(&str, PrimaryLine)]) -> Scopes {
        Scopes::of(&lines.iter().map(|(k, l)| (key(k), l.clone())).collect())
    }

    #[test]
    fn a_gateways_own_scope_wins_over_its_childrens() {
        let scopes = scopes(&[
            ("a", line(Some("gw-1"), false)),
            ("b", line(Some("gw-5"), false)),
            ("gw", line(Some("gw-5"), false)),
        ]);
        let gw = id("gw");
        let stale = line(Some("gw-1"), false);
        assert_eq!(
            scopes.scope(&gw, Some(&stale)).map(String::as_str),
            Some("ms-azure-iot-edge://gw-5")
        );
    }

    #[test]
    fn children_that_agree_give_an_unstated_gateway_its_scope() {
        let scopes = scopes(&[
            ("a", line(Some("gw-1"), false)),
            ("b", line(Some("gw-1"), false)),
            ("gw", line(None, false)),
        ]);
        let gw = id("gw");
        assert!(scopes.names(&gw));
        assert_eq!(
            scopes.scope(&gw, None).map(String::as_str),
            Some("ms-azure-iot-edge://gw-1")
        );
    }

    #[test]
    fn children_that_disagree_leave_each_its_own_scope_and_a_new_leaf_none() {
        let (a, b) = (line(Some("gw-1"), false), line(Some("gw-5"), false));
        let scopes = scopes(&[
            ("a", a.clone()),
            ("b", b.clone()),
            ("gw", line(None, false)),
        ]);
        let gw = id("gw");
        assert!(scopes.names(&gw), "still held as an edge device");
        assert_eq!(scopes.scope(&gw, Some(&a)), a.device_scope.as_ref());
        assert_eq!(scopes.scope(&gw, Some(&b)), b.device_scope.as_ref());
        assert_eq!(scopes.scope(&gw, None), None);
        assert_eq!(scopes.scope(&gw, Some(&line(Some("other-1"), false))), None);
    }

    #[test]
    fn a_scope_naming_a_device_not_held_as_an_edge_device_is_no_ones() {
        let scopes = scopes(&[
            ("a", line(Some("gone-1"), false)),
            ("b", line(Some("plain-1"), false)),
            ("plain", line(None, true)),
        ]);
        for owner in ["gone", "plain"] {
            assert!(!scopes.names(&id(owner)), "{owner}");
            assert_eq!(scopes.scope(&id(owner), None), None, "{owner}");
        }
    }
}
