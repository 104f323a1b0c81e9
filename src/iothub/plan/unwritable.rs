//! Parents no import line can carry: the entries of [`Plan::parent_unwritable`], each with why
//! and the parent the merge wants, for an operator to set by hand.
//!
//! Apart from the scope decisions (`parent.rs`) because a reason reads more than what became of
//! the parent: which side created the device, and what the primary holds it as.

use serde::{Deserialize, Serialize};

use super::Plan;
use super::parent::Parent;
use super::planner::{MergedLine, Planner};
use crate::iothub::lift::{Change, Side};
use crate::key::{DeviceId, DeviceKey};

/// A device whose edge parent no import line can carry, why, and the parent the merge wants:
/// an entry of [`Plan::parent_unwritable`] (`parentUnwritable` in `report.json`), for an
/// operator to set by hand.
///
/// In `report.json`: `{"device": "leaf", "reason": "made-edge-device", "parent": "gw"}`, with
/// `parent` `null` where the merge wants none or does not know one (see [`UnwritableReason`]).
/// Device ids are not secrets; no key appears.
///
/// # Examples
///
/// ```
/// use failback::DeviceKey;
/// use failback::iothub::{read_export_from, Failback, Plan, Side, UnwritableReason};
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let base = export(r#"{"id":"gw","eTag":"G","status":"enabled","capabilities":{"iotEdge":true},"deviceScope":"ms-azure-iot-edge://gw-1"}
/// {"id":"leaf","eTag":"L","status":"enabled","capabilities":{"iotEdge":false},"deviceScope":"ms-azure-iot-edge://gw-1"}"#)?;
/// // The secondary made the leaf an IoT Edge device, and created another one.
/// let secondary = export(r#"{"id":"gw","status":"enabled","capabilities":{"iotEdge":true},"deviceScope":"ms-azure-iot-edge://gw-2"}
/// {"id":"leaf","status":"enabled","capabilities":{"iotEdge":true},"deviceScope":"ms-azure-iot-edge://leaf-2"}
/// {"id":"new-gw","status":"enabled","capabilities":{"iotEdge":true},"deviceScope":"ms-azure-iot-edge://new-gw-2"}"#)?;
/// let plan = Plan::new(&Failback::lift(&base, &base, &secondary, Side::Secondary)?);
///
/// let [leaf, new_gw] = &plan.parent_unwritable[..] else { panic!("two entries") };
/// // The update making `leaf` an edge device carries its own scope, not `gw`'s.
/// assert_eq!(leaf.key, DeviceKey::device("leaf")?);
/// assert_eq!(leaf.reason, UnwritableReason::MadeEdgeDevice);
/// assert_eq!(leaf.parent.as_ref().map(|p| p.as_str()), Some("gw"));
/// // No export line says an edge device's parent: whether the secondary nested `new-gw` is unknown.
/// assert_eq!((new_gw.reason, &new_gw.parent), (UnwritableReason::ParentUnknown, &None));
///
/// let json = serde_json::to_value(leaf).expect("serializable");
/// assert_eq!(json, serde_json::json!({"device": "leaf", "reason": "made-edge-device", "parent": "gw"}));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParentUnwritable {
    /// The device (never a module: a module's scope is its device's).
    #[serde(flatten)]
    pub key: DeviceKey,
    /// Why no line carries its parent.
    pub reason: UnwritableReason,
    /// The edge parent the merged registry holds for the device, which an operator should set;
    /// `None` where it holds none: for [`UnwritableReason::EdgeDevice`], the parent the primary
    /// may hold is to be removed; for [`UnwritableReason::ParentUnknown`], no export tells one.
    pub parent: Option<DeviceId>,
}

/// Why no import line can carry a device's edge parent (see [`ParentUnwritable`]).
///
/// Written in `report.json` in kebab case (`"made-edge-device"`), as [`Rule`](crate::Rule)s are.
///
/// # Examples
///
/// ```
/// use failback::iothub::UnwritableReason;
/// let json = serde_json::to_value(UnwritableReason::ParentUnknown).expect("serializable");
/// assert_eq!(json, "parent-unknown");
/// assert_eq!(UnwritableReason::MadeEdgeDevice.as_str(), "made-edge-device");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UnwritableReason {
    /// An IoT Edge device the primary holds as one (or this plan creates), with a parent, merged
    /// or in the primary's replica: an edge device's parent travels in `parentScopes`, which the
    /// line format leaves out (its line carries its own scope). Either one side put it behind
    /// another edge device, or the merge leaves it without the parent the primary may hold (the
    /// base's, as far as the exports tell: the primary's line says nothing of it), which no
    /// line can remove either.
    EdgeDevice,
    /// A leaf the primary holds plain that the merge makes an IoT Edge device: the update doing
    /// it carries the device's own scope, not its gateway's, and the hub may drop the gateway
    /// then. The merge keeps the gateway as far as the exports tell (an edge device's line says
    /// nothing of its parent).
    MadeEdgeDevice,
    /// The parent is an IoT Edge device in the primary, but the primary's export gives no scope
    /// for it (neither its own line nor a child's), or two (its children's lines disagree, and
    /// which is stale is not in the export): no line can name the hub's scope.
    ParentWithoutScope,
    /// The parent's own line is blocked by this plan (new to the primary, or plain there and
    /// made an edge device): no scope comes until an operator resolves the parent's entry in
    /// [`Plan::blocked`]. (A device new to the primary is blocked with its parent instead.)
    ParentBlocked,
    /// An IoT Edge device the secondary created since the base (and holds as one): no export
    /// line of an edge device says its parent, so whether the secondary put it behind another
    /// edge device is unknown: the plan creates it without one (or, where both sides created
    /// it, leaves the primary's as it is). The parent the secondary gave it, if any, is the
    /// operator's to set.
    ParentUnknown,
}

impl UnwritableReason {
    /// The reason's name as written in `report.json`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::UnwritableReason;
    /// assert_eq!(UnwritableReason::ParentBlocked.as_str(), "parent-blocked");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdgeDevice => "edge-device",
            Self::MadeEdgeDevice => "made-edge-device",
            Self::ParentWithoutScope => "parent-without-scope",
            Self::ParentBlocked => "parent-blocked",
            Self::ParentUnknown => "parent-unknown",
        }
    }
}

impl std::fmt::Display for UnwritableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Planner<'_> {
    /// Lists in [`Plan::parent_unwritable`] a device whose merged edge parent its line does not
    /// carry, or an edge device the secondary created, whose parent no export shows, with why
    /// and the merged parent. Keys come in order, each once: the list is sorted.
    pub(super) fn list_parent_unwritable(&self, merged: &MergedLine<'_>, plan: &mut Plan) {
        let Some(reason) = self.unwritable_reason(merged) else {
            return;
        };
        let MergedLine { key, device, .. } = merged;
        let parent = device.parent.clone().filter(|owner| *owner != key.device);
        plan.parent_unwritable.push(ParentUnwritable {
            key: (*key).clone(),
            reason,
            parent,
        });
    }

    /// Why `merged`'s parent is unwritable, if it is.
    fn unwritable_reason(&self, merged: &MergedLine<'_>) -> Option<UnwritableReason> {
        let MergedLine {
            key,
            device,
            line,
            parent,
            was,
        } = merged;
        let edge = key.module.is_none() && device.capabilities.iot_edge;
        // A new device behind a blocked parent is blocked with it: its entry says so.
        let blocked_with_parent = *parent == Parent::Blocked && was.is_none();
        if matches!(parent, Parent::Unwritable | Parent::Blocked) && !blocked_with_parent {
            // Listed where the line does not carry the merged parent: what the merge asks for,
            // no line can write. An edge device is listed whenever its parent is unwritable,
            // which is only where it has one, merged or in the primary: a line without one
            // carries nothing either way (the hub's `parentScopes` are not in it), and claims
            // nothing of it.
            let carried = line.parent.as_ref().filter(|owner| **owner != key.device);
            if !edge && carried == device.parent.as_ref() {
                return None;
            }
            return Some(match parent {
                _ if edge && self.made_edge_device(merged) => UnwritableReason::MadeEdgeDevice,
                _ if edge => UnwritableReason::EdgeDevice,
                Parent::Blocked => UnwritableReason::ParentBlocked,
                _ => UnwritableReason::ParentWithoutScope,
            });
        }
        // An edge device's line carries its own scope, so its parent is `Written` (none to
        // write) unless it has one: the one the secondary created has none known.
        (edge && *parent == Parent::Written && self.secondary_created_edge(key))
            .then_some(UnwritableReason::ParentUnknown)
    }

    /// Whether the merged edge device `merged` is one the primary holds plain: the update
    /// writing it makes a leaf an edge device.
    fn made_edge_device(&self, merged: &MergedLine<'_>) -> bool {
        let failback = self.failback;
        let held = failback
            .replica(Side::Primary)
            .device(merged.key, failback.policy());
        merged.was.is_some() && held.is_some_and(|held| !held.capabilities.iot_edge)
    }

    /// Whether the secondary created `key` since the base and holds it as an IoT Edge device,
    /// whose export line then said nothing of its parent. (One it created as a leaf stated its
    /// parent, or none; one only the primary created was never the secondary's to nest.)
    fn secondary_created_edge(&self, key: &DeviceKey) -> bool {
        let failback = self.failback;
        let created =
            failback.changes.get(key).map(|(_, secondary)| *secondary) == Some(Change::Created);
        created
            && failback
                .replica(Side::Secondary)
                .device(key, failback.policy())
                .is_some_and(|held| held.capabilities.iot_edge)
    }
}
