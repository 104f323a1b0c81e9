//! The limit on identities: which creations the plan leaves out so that the primary holds no
//! more devices plus modules than IoT Hub allows.
//!
//! Apart from the line decisions because it is decided over the whole plan, once, before any
//! block is planned: a creation's own checks read one device, the limit counts every creation
//! the plan makes. The module doc of [the plan](super) says how they are counted.

use std::collections::BTreeSet;

use super::Plan;
use super::blocks::{BLOCK, blocks};
use super::planner::Planner;
use crate::iothub::import_mode::ImportMode;
use crate::key::{DeviceId, DeviceKey};

/// The IoT Edge system modules (`$edgeAgent`, `$edgeHub`) the hub creates with an edge device.
const SYSTEM_MODULES: u64 = 2;

/// The most identities (devices plus modules) an IoT hub holds. The plan keeps the primary
/// within it: creations that would take the primary past it are blocked, the last in id order
/// first ([`Plan`] says how they are counted).
///
/// # Examples
///
/// ```
/// assert_eq!(failback::iothub::IDENTITY_LIMIT, 1_000_000);
/// ```
pub const IDENTITY_LIMIT: u64 = 1_000_000;

impl<'f> Planner<'f> {
    /// The device ids whose creations this plan must leave out to keep the primary within
    /// `limit` identities (IOTHUB.md: "a hub holds at most 1,000,000 devices plus modules"),
    /// and why: the last in key order, each device id with every creation under it (the device
    /// and its modules), until what the primary holds plus what the plan creates fits.
    ///
    /// What the primary holds is its export's lines. What the plan creates is its `create`
    /// lines, and for each new IoT Edge device the two system modules the hub creates with it.
    /// Deletes are not counted as room: IOTHUB.md does not say that the hub applies an import's
    /// lines in order, and the plan's are sorted by id, so a create may come before the delete
    /// that would have made room for it. The next run, once this import's deletes are done,
    /// creates what fits then. An update making a device an IoT Edge device is not counted:
    /// IOTHUB.md does not say whether the hub then creates system modules; and it cannot be
    /// left out for the limit without leaving out the rest of the device's update.
    ///
    /// Which creations the plan makes depends on the whole plan (a blocked device, a leaf
    /// waiting for its gateway), so when neither a full primary nor a cheap bound settles it,
    /// the plan is run once without a limit, its lines not written. Leaving a creation out
    /// never adds another: a new leaf of a gateway left out was waiting and is blocked
    /// instead, a module of a device left out is blocked with it. So the run without a limit
    /// counts every creation the limited plan can make.
    pub(super) fn over_limit(&self, limit: u64, workers: usize) -> (BTreeSet<DeviceId>, String) {
        let held = u64::try_from(self.failback.primary_lines.len()).unwrap_or(u64::MAX);
        let reason = |kept: u64| {
            format!(
                "creating it (with its modules) would take the primary past IoT Hub's limit of \
                 {limit} devices plus modules: it holds {held}, and this plan creates {kept} \
                 before it in id order. Deletes are not counted as room (the order in which the \
                 hub applies an import's lines is not documented): run again once this import \
                 is done, or make room on the primary first"
            )
        };
        // Full already: every creation is left out, whichever the plan would make, without
        // planning twice (a generated export of a million devices holds more, with modules).
        if held >= limit {
            let capped = self.new_keys().map(|key| key.device.clone()).collect();
            return (capped, reason(0));
        }
        // At most: every merged key the primary lacks, a device with its system modules.
        let bound = self
            .new_keys()
            .map(|key| {
                if key.module.is_none() {
                    1 + SYSTEM_MODULES
                } else {
                    1
                }
            })
            .fold(held, u64::saturating_add);
        if bound <= limit {
            return (BTreeSet::new(), String::new());
        }
        let keys: Vec<&DeviceKey> = self.keys().collect();
        let blocks: Vec<&[&DeviceKey]> = blocks(&keys, BLOCK).collect();
        // The sink never fails, so neither does the plan.
        let unlimited = self
            .plan_blocks(&blocks, workers, false, |_| Ok(()))
            .unwrap_or_else(|_| Plan::empty());
        // Identities each device id's creations add, in key order.
        let mut created: Vec<(&DeviceId, u64)> = Vec::new();
        for line in &unlimited.import {
            if line.import_mode != Some(ImportMode::Create) {
                continue;
            }
            let edge = line.key.module.is_none() && line.capabilities.is_some_and(|c| c.iot_edge);
            let adds = if edge { 1 + SYSTEM_MODULES } else { 1 };
            match created.last_mut() {
                Some((device, count)) if **device == line.key.device => *count += adds,
                _ => created.push((&line.key.device, adds)),
            }
        }
        let mut total = created
            .iter()
            .fold(held, |total, (_, adds)| total.saturating_add(*adds));
        let mut capped = BTreeSet::new();
        while total > limit {
            let Some((device, adds)) = created.pop() else {
                break;
            };
            total -= adds;
            capped.insert(device.clone());
        }
        (capped, reason(total.saturating_sub(held)))
    }

    /// The keys of the merged registry the primary's export lacks, in order: those the plan
    /// may create. One walk over both sorted maps, no lookups.
    fn new_keys(&self) -> impl Iterator<Item = &'f DeviceKey> + 'f {
        let mut held = self.failback.primary_lines.keys().peekable();
        self.merged.keys().filter(move |key| {
            while held.next_if(|was| was < key).is_some() {}
            held.peek() != Some(key)
        })
    }

    /// Why the creation of `key` is left out for the limit on identities, if it is.
    pub(super) fn capped(&self, key: &DeviceKey) -> Option<&str> {
        self.capped
            .contains(&key.device)
            .then_some(self.capped_reason.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iothub::ExportLine;
    use crate::iothub::lift::{Failback, Side};
    use crate::iothub::plan::Plan;

    /// Export lines from their JSON texts.
    fn parsed(texts: &[String]) -> Vec<ExportLine> {
        texts
            .iter()
            .map(
                |text| match crate::iothub::parse_line(std::path::Path::new("t"), 1, text) {
                    Ok(crate::iothub::Parsed::Device(line)) => line,
                    other => panic!("{text}: {other:?}"),
                },
            )
            .collect()
    }

    /// A primary holding 8 identities (the base's), and a secondary that deletes one and
    /// creates 9 more: a module of an existing device (1), a device (1) with a module (waiting
    /// for its device: not created by this plan), a new gateway (1, and 2 system modules the
    /// hub creates with it), a leaf of that gateway with a module (waiting for its scope: not
    /// created by this plan) and a plain device (1).
    fn near_the_limit() -> Failback {
        let keys = r#""authentication":{"symmetricKey":{"primaryKey":"MDEyMzQ1Njc4OWFiY2RlZg==","secondaryKey":"ZmVkY2JhOTg3NjU0MzIxMA=="},"type":"sas"}"#;
        let device = |id: &str| {
            format!(r#"{{"id":"{id}","eTag":"e","status":"enabled",{keys},"twinETag":"t"}}"#)
        };
        let module = |id: &str, m: &str| {
            format!(
                r#"{{"id":"{id}","moduleId":"{m}","eTag":"e","status":"enabled",{keys},"twinETag":"t"}}"#
            )
        };
        let mut base = vec![
            device("d1"),
            module("d1", "m1"),
            device("d2"),
            module("d2", "m1"),
        ];
        base.extend(["d3", "d4", "d5", "d6"].map(device));
        let mut secondary: Vec<String> =
            base.iter().filter(|l| !l.contains("d5")).cloned().collect();
        secondary.extend([
            module("d1", "new"),
            device("n1"),
            module("n1", "m"),
            format!(
                r#"{{"id":"n2-gw","status":"enabled",{keys},"capabilities":{{"iotEdge":true}},"deviceScope":"ms-azure-iot-edge://n2-gw-1"}}"#
            ),
            format!(
                r#"{{"id":"n3","status":"enabled",{keys},"deviceScope":"ms-azure-iot-edge://n2-gw-1"}}"#
            ),
            module("n3", "m"),
            device("n4"),
        ]);
        let base = parsed(&base);
        Failback::lift(&base, &base, &parsed(&secondary), Side::Secondary).expect("lifts")
    }

    fn ids(keys: impl IntoIterator<Item = DeviceKey>) -> Vec<String> {
        keys.into_iter().map(|k| k.to_string()).collect()
    }

    fn limited(failback: &Failback, limit: u64) -> Plan {
        Plan::stream_limited(failback, limit, |_| Ok(())).expect("the sink never fails")
    }

    #[test]
    fn creations_past_the_identity_limit_are_blocked_last_first_a_device_with_its_modules() {
        let failback = near_the_limit();
        let creates = |plan: &Plan| {
            let lines = plan.import.iter();
            let created = lines.filter(|l| l.import_mode == Some(ImportMode::Create));
            ids(created.map(|l| l.key.clone()))
        };
        let blocked = |plan: &Plan| ids(plan.blocked.iter().map(|b| b.key.clone()));
        // 8 held, 6 created with the gateway's system modules: 14 fits; the delete is no room.
        for limit in [14, IDENTITY_LIMIT] {
            let plan = limited(&failback, limit);
            assert_eq!(creates(&plan), ["d1/new", "n1", "n2-gw", "n4"]);
            assert!(plan.blocked.is_empty(), "{:?}", plan.blocked);
            assert_eq!(ids(plan.pending_parent.clone()), ["n1/m", "n3", "n3/m"]);
            assert!(
                plan.import
                    .iter()
                    .any(|l| l.import_mode == Some(ImportMode::DeleteIfMatchETag))
            );
        }
        assert_eq!(
            limited(&failback, IDENTITY_LIMIT),
            Plan::stream(&failback, |_| Ok(())).expect("plans")
        );
        let plan = limited(&failback, 13);
        assert_eq!(creates(&plan), ["d1/new", "n1", "n2-gw"]);
        assert_eq!(blocked(&plan), ["n4"]);
        // The gateway goes with its system modules; its leaf cannot wait for a scope that will
        // not come, and is blocked with its module.
        let plan = limited(&failback, 12);
        assert_eq!(creates(&plan), ["d1/new", "n1"]);
        assert_eq!(blocked(&plan), ["n2-gw", "n3", "n3/m", "n4"]);
        assert_eq!(ids(plan.pending_parent.clone()), ["n1/m"]);
        let reason = &plan.blocked[0].reason;
        assert!(
            reason
                .contains("limit of 12 devices plus modules: it holds 8, and this plan creates 2"),
            "{reason}"
        );
        assert!(
            plan.blocked[1]
                .reason
                .contains("its edge parent \"n2-gw\" is blocked")
        );
        assert_eq!(plan.blocked[3].reason, *reason);
        // A device left out goes with its module, which waited for it.
        let plan = limited(&failback, 9);
        assert_eq!(creates(&plan), ["d1/new"]);
        assert_eq!(blocked(&plan), ["n1", "n1/m", "n2-gw", "n3", "n3/m", "n4"]);
        assert!(plan.pending_parent.is_empty(), "{:?}", plan.pending_parent);
        // Over the limit already, or at it: nothing is created, a module of an existing device
        // included, and nothing panics.
        for limit in [8, 7, 0] {
            let plan = limited(&failback, limit);
            assert_eq!(creates(&plan), Vec::<String>::new(), "limit {limit}");
            assert_eq!(
                blocked(&plan),
                ["d1/new", "n1", "n1/m", "n2-gw", "n3", "n3/m", "n4"]
            );
            assert_eq!(
                plan.blocked[2].reason,
                format!("its device is blocked: {}", plan.blocked[1].reason)
            );
        }
    }

    #[test]
    fn the_identity_limit_gives_the_same_plan_on_any_number_of_threads() {
        let failback = near_the_limit();
        for limit in [0, 9, 12, 13, 14, 15] {
            let mut text = String::new();
            let expected = Plan::stream_limited(&failback, limit, |line| {
                text.push_str(&line.to_json());
                text.push('\n');
                Ok(())
            })
            .expect("plans");
            for workers in 1..=3 {
                for block in [1, 2, 3, 100] {
                    let mut written = String::new();
                    let plan = Plan::stream_json_on(&failback, limit, workers, block, |part| {
                        written.push_str(part);
                        Ok(())
                    })
                    .expect("plans");
                    let context = format!("limit {limit}, {workers} workers, blocks of {block}");
                    assert_eq!(
                        plan,
                        Plan {
                            merged: Vec::new(),
                            ..expected.clone()
                        },
                        "{context}"
                    );
                    assert!(written == text, "{context}");
                }
            }
        }
    }
}
