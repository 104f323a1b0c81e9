//! Plan, apply, run again, against the import simulator: a full import leaves nothing to do, an
//! interrupted one leaves the rest of the plan, and no input order changes a byte; and a
//! disable the merge decides is applied, or its blocked entry says it is not. The checks, run
//! here on the shipped data and the hand-written edge cases (`edge_cases.rs`), and by
//! `generated.rs` on generated data.

use std::collections::{BTreeMap, BTreeSet};

use failback::iothub::{ExportLine, Generate, ImportMode, Side};
use failback::{AuthType, Authentication, Capabilities, DeviceId, DeviceKey, Rule, Status};
use serde_json::{Value, json};

use super::data::{Rng, shipped};
use super::edge_cases::{edge_case, edge_cases};
use super::hub::Hub;
use super::*;

/// The rerun comparison rule: two merged lines are the same when they agree on everything but
/// what the hub assigns on its own — `eTag`, `twinETag` and the `deviceScope` string (it embeds
/// the gateway's generation id, new on every creation). The parent a scope names is compared,
/// by device id (`to_json` writes only the scope, so it is appended); an edge device's scope
/// names itself and is not a parent.
fn comparable(line: &ExportLine) -> String {
    comparable_with(line, parent_of(line))
}

fn parent_of(line: &ExportLine) -> Option<DeviceId> {
    let own = line.parent.as_ref() == Some(&line.key.device);
    line.parent
        .clone()
        .filter(|_| !own && line.key.module.is_none())
}

fn comparable_with(line: &ExportLine, parent: Option<DeviceId>) -> String {
    let stripped = ExportLine {
        e_tag: None,
        twin_e_tag: None,
        device_scope: None,
        parent: None,
        ..line.clone()
    };
    match parent {
        Some(parent) => format!("{} parent={parent}", stripped.to_json()),
        None => stripped.to_json(),
    }
}

/// What an import can set of a line, for comparing a hub with a merged registry: the
/// [`comparable`] line without reported properties, an empty section read as none, and no
/// capabilities read as not an edge device.
fn as_written(line: &ExportLine, parent: Option<DeviceId>) -> String {
    let non_empty =
        |m: &Option<serde_json::Map<String, Value>>| m.clone().filter(|m| !m.is_empty());
    let line = ExportLine {
        reported: None,
        tags: non_empty(&line.tags),
        desired: non_empty(&line.desired),
        capabilities: line.capabilities.filter(|c| c.iot_edge),
        ..line.clone()
    };
    comparable_with(&line, parent)
}

/// The merged lines of a first run as they should read once complete, with their parents: a
/// device whose parent was pending (its gateway was new to the primary) has that parent.
fn completed(run: &Run) -> Vec<(ExportLine, Option<DeviceId>)> {
    let pending: BTreeSet<&DeviceKey> = run.plan.pending_parent.iter().collect();
    let gone: BTreeSet<&DeviceKey> = run.plan.parent_gone.iter().collect();
    run.plan
        .merged
        .iter()
        .map(|line| {
            let parent = if pending.contains(&line.key) {
                // Pending and gone: the merged parent cannot stand, and the device waits for
                // the secondary's.
                let registry = if gone.contains(&line.key) {
                    run.failback.replica(Side::Secondary)
                } else {
                    run.failback.merged()
                };
                let device = registry.device(&line.key, run.failback.policy());
                device.and_then(|d| d.parent)
            } else {
                parent_of(line)
            };
            (line.clone(), parent)
        })
        .collect()
}

/// The primary hub: the import simulator, and what IoT Hub does beside an import. Creating an
/// edge device creates its system modules (`$edgeAgent`, `$edgeHub`) with keys of the hub's own
/// making, and deleting a device deletes them with it. An import line naming a system module is
/// refused: the plan must never write one (the edge runtime and the hub manage them).
#[derive(Clone, Debug)]
struct Primary {
    hub: Hub,
    /// The system modules the hub created beside the import, by key.
    runtime: BTreeMap<DeviceKey, ExportLine>,
    /// Source of the runtime modules' ETags.
    made: u64,
}

impl Primary {
    fn new(export: &[ExportLine]) -> Primary {
        Primary {
            hub: Hub::new(export),
            runtime: BTreeMap::new(),
            made: 0,
        }
    }

    /// Applies every line in order; the first refused line fails with its index.
    fn import(&mut self, lines: &[ExportLine]) -> Result<(), String> {
        for (at, line) in lines.iter().enumerate() {
            self.apply(line)
                .map_err(|e| format!("import line {} ({}): {e}", at + 1, line.to_json()))?;
        }
        Ok(())
    }

    fn apply(&mut self, line: &ExportLine) -> Result<(), String> {
        if line.key.module.as_ref().is_some_and(|m| m.is_system()) {
            return Err("writes an IoT Edge system module, which the edge runtime manages".into());
        }
        self.hub.apply(line)?;
        let device = &line.key.device;
        match line.import_mode {
            Some(ImportMode::Create)
                if line.key.module.is_none() && line.capabilities.is_some_and(|c| c.iot_edge) =>
            {
                // Keys of the hub's making: none of the edge cases' exports holds them.
                for (module, [primary, secondary]) in
                    [("$edgeAgent", [K[6], K[7]]), ("$edgeHub", [K[7], K[6]])]
                {
                    self.made += 1;
                    let key = DeviceKey::module(device.as_str(), module).expect("a valid key");
                    let text = json!({
                        "id": device.as_str(),
                        "moduleId": module,
                        "eTag": format!("runtime-etag-{}", self.made),
                        "status": "enabled",
                        "authentication": {
                            "symmetricKey": {"primaryKey": primary, "secondaryKey": secondary},
                            "type": "sas"
                        },
                        "twinETag": format!("runtime-twin-{}", self.made),
                    });
                    self.runtime.insert(key, line_of(&text));
                }
            }
            Some(ImportMode::DeleteIfMatchETag) if line.key.module.is_none() => {
                self.runtime.retain(|k, _| k.device != *device);
            }
            _ => {}
        }
        Ok(())
    }

    /// The hub's export now, system modules the hub created included.
    fn export(&self) -> Vec<ExportLine> {
        let mut lines: BTreeMap<DeviceKey, ExportLine> = self
            .hub
            .export()
            .into_iter()
            .map(|l| (l.key.clone(), l))
            .collect();
        lines.extend(self.runtime.clone());
        lines.into_values().collect()
    }
}

fn is_system(key: &DeviceKey) -> bool {
    key.module.as_ref().is_some_and(|m| m.is_system())
}

/// Asserts two multi-line texts are equal, showing only the lines that differ.
#[track_caller]
fn assert_same_lines(actual: &str, expected: &str, context: &str) {
    if actual == expected {
        return;
    }
    let a: BTreeSet<&str> = actual.lines().collect();
    let e: BTreeSet<&str> = expected.lines().collect();
    let mut diff = String::new();
    for line in e.difference(&a) {
        diff += &format!("- {line}\n");
    }
    for line in a.difference(&e) {
        diff += &format!("+ {line}\n");
    }
    if diff.is_empty() {
        diff = "(the same lines in another order)".into();
    }
    panic!("{context} (- expected, + actual):\n{diff}");
}

/// What the plan's disable paths promise, checked on the primary hub once the first plan is
/// applied (`held`, its export; `primary`, its export before). `check_plan_then_rerun` leaves
/// blocked devices out of its comparisons, so this is where a withheld disable is caught.
///
/// - Every device the merge disables and the primary held enabled is disabled in the hub,
///   unless its blocked entry says the disable is not applied: a disable is written whole,
///   alone over the primary's line (`the disable alone is written`), or detached from a
///   gateway that is going away. IOTHUB.md: disabling is the way to block a compromised device.
/// - Nothing written for a blocked device restores anything: its twin and capabilities in the
///   hub are the primary's, as before the import, its status is the primary's or the merge's
///   disable, and its credentials the primary's or, where its entry says they were written
///   alone, the merge's. A blocked device the primary lacks is not created, and one it holds is
///   not deleted (but a module, with its device).
fn check_disables_applied(first: &Run, primary: &[ExportLine], held: &[ExportLine], prefer: Side) {
    let by_key = |lines: &'_ [ExportLine]| -> BTreeMap<DeviceKey, ExportLine> {
        lines.iter().map(|l| (l.key.clone(), l.clone())).collect()
    };
    let (was, now) = (by_key(primary), by_key(held));
    let blocked = blocked_reasons(first);
    let mut disabled = BTreeSet::new();
    for merged in &first.plan.merged {
        let enabled = was.get(&merged.key).map(|w| w.status) == Some(Status::Enabled);
        if merged.status != Status::Disabled || !enabled {
            continue;
        }
        disabled.insert(&merged.key);
        let reason = blocked.get(&merged.key).copied();
        if reason.is_some_and(|r| r.contains("disable not applied")) {
            continue;
        }
        assert_eq!(
            now.get(&merged.key).map(|l| l.status),
            Some(Status::Disabled),
            "prefer {prefer:?}: the merge disables {}, which the primary held enabled, and the \
             import leaves it enabled; blocked: {reason:?}",
            merged.key
        );
    }
    for (&key, reason) in &blocked {
        let context = format!("prefer {prefer:?}: {key}, blocked ({reason})");
        let (was, now) = match (was.get(key), now.get(key)) {
            (None, now) => {
                assert!(now.is_none(), "{context}: created");
                continue;
            }
            (Some(_), None) => {
                let device = DeviceKey {
                    device: key.device.clone(),
                    module: None,
                };
                assert!(
                    key.module.is_some() && !held.iter().any(|l| l.key == device),
                    "{context}: deleted"
                );
                continue;
            }
            (Some(was), Some(now)) => (was, now),
        };
        let merged = first.plan.merged.iter().find(|l| l.key == *key);
        let rotated = merged.map(|l| credentials(l.authentication.as_ref()));
        let written_alone = reason.contains("the new credentials alone are written")
            || reason.contains("the disable and the new credentials alone are written");
        let held = credentials(now.authentication.as_ref());
        assert!(
            held == credentials(was.authentication.as_ref())
                || (written_alone && Some(&held) == rotated.as_ref()),
            "{context}: its credentials are neither the primary's nor the merge's written alone"
        );
        let non_empty =
            |m: &Option<serde_json::Map<String, Value>>| m.clone().filter(|m| !m.is_empty());
        assert_eq!(
            (non_empty(&now.tags), non_empty(&now.desired)),
            (non_empty(&was.tags), non_empty(&was.desired)),
            "{context}: its twin is not the primary's"
        );
        if was.capabilities.is_some() {
            assert_eq!(now.capabilities, was.capabilities, "{context}");
        }
        assert!(
            now.status == was.status || (now.status == Status::Disabled && disabled.contains(key)),
            "{context}: its status is {:?}",
            now.status
        );
    }
}

/// What the plan promises of credentials, checked as [`check_disables_applied`] checks disables:
/// every device whose credentials the merge changes from those the primary's export held is
/// written with them by the first import, unless it is blocked or waits for a new gateway's
/// scope; and one of those whose credentials the merge rotates (a credential the primary
/// accepted is not among the merged: [`rotated_out`]) is written with them too (alone, or
/// detached from its gateway), unless its entry says `rotation not applied` (a leaf whose next
/// run would lose its gateway, credentials no rule settled, a line without an eTag). A key or
/// thumbprint rotated out may have leaked: it must not stay valid in the primary for a run
/// more, as it did while such a leaf waited whole, or unsaid while its device was blocked for
/// another reason.
fn check_rotations_applied(first: &Run, primary: &[ExportLine], held: &[ExportLine], prefer: Side) {
    let by_key = |lines: &'_ [ExportLine]| -> BTreeMap<DeviceKey, Option<Authentication>> {
        let credentials = |l: &ExportLine| credentials(l.authentication.as_ref());
        lines
            .iter()
            .map(|l| (l.key.clone(), credentials(l)))
            .collect()
    };
    let (was, now) = (by_key(primary), by_key(held));
    let blocked = blocked_reasons(first);
    let pending: BTreeSet<&DeviceKey> = first.plan.pending_parent.iter().collect();
    for merged in &first.plan.merged {
        if is_system(&merged.key) {
            continue;
        }
        let Some(was) = was.get(&merged.key) else {
            continue;
        };
        let merged_credentials = credentials(merged.authentication.as_ref());
        if *was == merged_credentials {
            continue;
        }
        // A blocked device, and a leaf waiting for a new gateway's scope, need only have its
        // rotation written (a credential the merge only adds waits with the rest).
        let said = blocked.get(&merged.key);
        if said.is_some() || pending.contains(&merged.key) {
            let rotated = rotated_out(was.as_ref(), merged_credentials.as_ref());
            if !rotated || said.is_some_and(|r| r.contains("rotation not applied")) {
                continue;
            }
        }
        // Keys and thumbprints are compared, never shown.
        assert!(
            now.get(&merged.key) == Some(&merged_credentials),
            "prefer {prefer:?}: the merge changes {}'s credentials, and the import leaves the \
             primary's",
            merged.key
        );
    }
}

/// Whether `merged` no longer accepts a credential `held` accepts: a key or thumbprint it
/// holds that `merged` does not (a change of type drops them all), or the certificate
/// authority of a device the merge makes another type. Unknown credentials (exported without
/// keys) are never rotated out, nor rotate anything out. Written apart from the plan's own
/// reading, from the hub's rules: what a line's type lets a device in with.
fn rotated_out(held: Option<&Authentication>, merged: Option<&Authentication>) -> bool {
    let (Some(held), Some(merged)) = (held, merged) else {
        return false;
    };
    // What `auth` lets a device in with, `None` where its export did not say.
    let accepts = |auth: &Authentication| -> Option<BTreeSet<String>> {
        match auth.kind {
            AuthType::Sas => auth
                .keys
                .as_ref()
                .map(|keys| keys.iter().map(|k| k.expose().to_owned()).collect()),
            AuthType::SelfSigned => auth
                .thumbprints
                .as_ref()
                .map(|t| t.iter().map(|t| t.as_str().to_owned()).collect()),
            AuthType::CertificateAuthority => Some(BTreeSet::from(["authority".to_owned()])),
            AuthType::None => Some(BTreeSet::new()),
        }
    };
    match (accepts(held), accepts(merged)) {
        (Some(held), Some(merged)) => !held.is_subset(&merged),
        _ => false,
    }
}

/// The first run's blocked devices, each with its entry's reason.
fn blocked_reasons(first: &Run) -> BTreeMap<&DeviceKey, &str> {
    let blocked = first.plan.blocked.iter();
    blocked.map(|b| (&b.key, b.reason.as_str())).collect()
}

/// The credentials `auth`'s type authenticates with: an export writes the other kind as
/// nulls, and a line read back may hold them as an empty pair or none.
pub(crate) fn credentials(auth: Option<&Authentication>) -> Option<Authentication> {
    auth.map(|auth| Authentication {
        kind: auth.kind,
        keys: auth.keys.clone().filter(|_| auth.kind == AuthType::Sas),
        thumbprints: auth
            .thumbprints
            .clone()
            .filter(|_| auth.kind == AuthType::SelfSigned),
    })
}

/// Applies the plan to the primary and runs again: nothing is left to do but completing the
/// devices whose parent was pending, and the merged registry is the same. One more round
/// (completing them) leaves nothing at all but the modules of the devices that round created,
/// which wait for them; once those are created, the hub holds the merged registry, except
/// what the plan must not write (reported properties, blocked devices, system modules).
///
/// System modules are compared nowhere: the hub makes its own for the edge devices the plan
/// creates, so their merged lines may change once it has (the preferred side's keys win), and
/// the simulator refuses any line for one.
pub(super) fn check_plan_then_rerun(
    base: &[ExportLine],
    primary: &[ExportLine],
    secondary: &[ExportLine],
    prefer: Side,
) {
    let first = run(base, primary, secondary, prefer);
    let pending: BTreeSet<DeviceKey> = first.plan.pending_parent.iter().cloned().collect();
    let mut hub = Primary::new(primary);
    hub.import(&first.plan.import)
        .unwrap_or_else(|e| panic!("first plan: {e}"));
    let primary2 = hub.export();
    check_disables_applied(&first, primary, &primary2, prefer);
    check_rotations_applied(&first, primary, &primary2, prefer);
    let second = run(base, &primary2, secondary, prefer);
    for line in &second.plan.import {
        assert!(
            pending.contains(&line.key),
            "prefer {prefer:?}: the rerun plans {} although its device was not pending",
            line.to_json()
        );
    }
    let text = |lines: &[ExportLine], keep: &dyn Fn(&DeviceKey) -> bool| -> String {
        let kept = lines.iter().filter(|l| keep(&l.key) && !is_system(&l.key));
        kept.map(|l| comparable(l) + "\n").collect()
    };
    let settled = |key: &DeviceKey| !pending.contains(key);
    assert_same_lines(
        &text(&second.plan.merged, &settled),
        &text(&first.plan.merged, &settled),
        &format!("prefer {prefer:?}: the rerun's merged registry differs"),
    );
    let completed_text: String = completed(&first)
        .iter()
        .filter(|(line, _)| !is_system(&line.key))
        .map(|(line, parent)| comparable_with(line, parent.clone()) + "\n")
        .collect();
    assert_same_lines(
        &text(&second.plan.merged, &|_| true),
        &completed_text,
        &format!("prefer {prefer:?}: pending parents are not kept"),
    );

    // The second round completes the pending parents; the third has nothing to do but
    // creating the modules of the devices the second created (a leaf behind a gateway the first
    // created), which waited for them; the fourth has nothing to do.
    hub.import(&second.plan.import)
        .unwrap_or_else(|e| panic!("second plan: {e}"));
    let mut third = run(base, &hub.export(), secondary, prefer);
    if !third.plan.import.is_empty() {
        let created_second: BTreeSet<&DeviceKey> = second
            .plan
            .import
            .iter()
            .filter(|l| l.key.module.is_none() && l.import_mode == Some(ImportMode::Create))
            .map(|l| &l.key)
            .collect();
        for line in &third.plan.import {
            let waited = second.plan.pending_parent.contains(&line.key)
                && created_second.contains(&device_key(&line.key))
                && line.key.module.is_some()
                && line.import_mode == Some(ImportMode::Create);
            assert!(
                waited,
                "prefer {prefer:?}: the third round plans {}",
                line.to_json()
            );
        }
        hub.import(&third.plan.import)
            .unwrap_or_else(|e| panic!("third plan: {e}"));
        third = run(base, &hub.export(), secondary, prefer);
    }
    assert!(
        third.plan.import.is_empty(),
        "prefer {prefer:?}: {}",
        json_lines(&third.plan.import)
    );
    assert!(
        third.plan.pending_parent.is_empty(),
        "prefer {prefer:?}: still pending: {:?}",
        third.plan.pending_parent
    );

    // The hub holds the merged registry, but for what the plan never writes.
    let unwritten: BTreeSet<&DeviceKey> = first
        .plan
        .blocked
        .iter()
        .map(|b| &b.key)
        .chain(&first.plan.system_modules)
        .collect();
    let without = |lines: Vec<(ExportLine, Option<DeviceId>)>| -> String {
        let kept = lines
            .into_iter()
            .filter(|(l, _)| !unwritten.contains(&l.key) && !is_system(&l.key));
        kept.map(|(l, parent)| as_written(&l, parent) + "\n")
            .collect()
    };
    // A scope naming a device the hub does not hold (its gateway was deleted) is no parent.
    // A device whose line leaves its capabilities out is an edge device where a scope names it:
    // the hub holds it as one (the simulator exports what it was given).
    let held = hub.export();
    let live: BTreeSet<DeviceId> = held.iter().map(|l| l.key.device.clone()).collect();
    let owners: BTreeSet<DeviceId> = held.iter().filter_map(|l| l.parent.clone()).collect();
    let held = held.into_iter().map(|mut l| {
        let parent = parent_of(&l).filter(|p| live.contains(p));
        if l.key.module.is_none() && l.capabilities.is_none() && owners.contains(&l.key.device) {
            l.capabilities = Some(Capabilities { iot_edge: true });
        }
        (l, parent)
    });
    assert_same_lines(
        &without(held.collect()),
        &without(completed(&first)),
        &format!("prefer {prefer:?}: the hub does not hold the merged registry"),
    );

    // Parents are compared by id above, and a scope is more: a leaf the plan writes, behind a
    // gateway the hub holds with a scope of its own, carries that scope, not a stale one (the
    // gateway's before the primary deleted it, or before the plan created it again).
    let held = hub.export();
    let own_scopes: BTreeMap<&DeviceId, &String> = held
        .iter()
        .filter(|l| l.key.module.is_none() && l.parent.as_ref() == Some(&l.key.device))
        .filter_map(|l| Some((&l.key.device, l.device_scope.as_ref()?)))
        .collect();
    let leaves = held.iter().filter(|l| !unwritten.contains(&l.key));
    for leaf in leaves {
        let Some(scope) = parent_of(leaf).and_then(|p| own_scopes.get(&p).copied()) else {
            continue;
        };
        assert_eq!(
            leaf.device_scope.as_ref(),
            Some(scope),
            "prefer {prefer:?}: {} keeps a stale scope",
            leaf.key
        );
    }
}

#[test]
fn shipped_plan_applied_then_rerun_is_empty() {
    let [b, p, s] = shipped();
    for prefer in BOTH {
        check_plan_then_rerun(&b, &p, &s, prefer);
    }
}

#[test]
fn a_parent_no_line_can_carry_is_listed_for_an_operator_not_written_on_every_run() {
    let [leaf, old_leaf] = ["leaf", "old-leaf"].map(|id| DeviceKey::device(id).expect("valid"));
    let [b, p, s] =
        edge_case("leaf made an edge device on one side, moved behind a gateway on the other");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        // The primary already holds the leaf as an edge device: nothing to write.
        assert!(
            run.plan.import.iter().all(|l| l.key != leaf),
            "prefer {prefer:?}: {}",
            json_lines(&run.plan.import)
        );
        let merged = run.failback.merged().device(&leaf, run.failback.policy());
        let parent = merged.and_then(|d| d.parent).map(|p| p.to_string());
        // The primary's edge line says nothing of the parent: the secondary's move is the only
        // change, whichever side is preferred, and needs a hand.
        assert_eq!(parent.as_deref(), Some("gw-b"), "prefer {prefer:?}");
        // An edge device in the primary: its parent travels in `parentScopes`.
        assert_eq!(
            unwritable(&run.plan),
            [entry("leaf", UnwritableReason::EdgeDevice, Some("gw-b"))],
            "prefer {prefer:?}"
        );
    }
    let [b, p, s] = edge_case("leaf moved behind a gateway the primary exports without a scope");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert!(run.plan.pending_parent.is_empty(), "prefer {prefer:?}");
        assert_eq!(
            unwritable(&run.plan),
            [entry(
                "leaf",
                UnwritableReason::ParentWithoutScope,
                Some("gw")
            )]
        );
        // Its disable is written, without a parent.
        let update = run.plan.import.iter().find(|l| l.key == leaf);
        let update = update.expect("updated");
        assert_eq!(update.status, Status::Disabled);
        assert_eq!(update.device_scope, None);
    }
    let [b, p, s] = edge_case("leaves behind a device the secondary made a gateway");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert_eq!(run.plan.pending_parent, [leaf.clone(), old_leaf.clone()]);
        assert!(run.plan.parent_unwritable.is_empty(), "prefer {prefer:?}");
    }
    let [b, p, s] = edge_case("leaves behind a new gateway the plan blocks");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert!(run.plan.pending_parent.is_empty(), "prefer {prefer:?}");
        let blocked: Vec<String> = run.plan.blocked.iter().map(|b| b.key.to_string()).collect();
        assert_eq!(blocked, ["gw", "leaf", "leaf/probe"], "prefer {prefer:?}");
        assert!(
            run.plan.blocked[1]
                .reason
                .contains("edge parent \"gw\" is blocked")
        );
        // The existing leaf's disable is written, keeping its place. The new gateway, an edge
        // device the secondary created, has no parent the exports show.
        assert_eq!(
            unwritable(&run.plan),
            [
                entry("gw", UnwritableReason::ParentUnknown, None),
                entry("old-leaf", UnwritableReason::ParentBlocked, Some("gw")),
            ]
        );
        let update = run.plan.import.iter().find(|l| l.key == old_leaf);
        assert_eq!(update.map(|l| l.status), Some(Status::Disabled));
    }
}

#[test]
fn a_leaf_whose_merged_gateway_cannot_be_a_parent_is_listed_and_written_without_it() {
    let [leaf, new_leaf] = ["leaf", "new-leaf"].map(|id| DeviceKey::device(id).expect("valid"));
    // Made plain: the leaf stays without a parent.
    let [b, p, s] = edge_case("leaf moved behind a gateway the other side made plain");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert_eq!(run.plan.parent_gone, std::slice::from_ref(&leaf));
        let update = run.plan.import.iter().find(|l| l.key == leaf);
        let update = update.expect("updated");
        assert_eq!(update.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert_eq!(update.status, Status::Disabled);
        assert_eq!(update.device_scope, None);
    }
    // Moved by the primary, the gateway deleted by the secondary: both listed, whichever side
    // moved them; the one with another change written without a parent.
    let leaf_2 = DeviceKey::device("leaf-2").expect("valid");
    let [b, p, s] = edge_case("leaves the primary moved behind a gateway the other side deleted");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert_eq!(run.plan.parent_gone, [leaf.clone(), leaf_2.clone()]);
        let update = run.plan.import.iter().find(|l| l.key == leaf_2);
        let update = update.expect("updated");
        assert_eq!(update.status, Status::Disabled);
        assert_eq!(update.device_scope, None);
        assert!(run.plan.import.iter().all(|l| l.key != leaf));
    }
    // Deleted: the leaf keeps the primary's gateway, and the new one is created without one.
    let [b, p, s] = edge_case("leaf moved behind a gateway the other side deleted");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert_eq!(run.plan.parent_gone, [leaf.clone(), new_leaf.clone()]);
        let line = |key: &DeviceKey| run.plan.import.iter().find(|l| l.key == *key);
        let update = line(&leaf).expect("updated");
        assert_eq!(update.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert_eq!(update.status, Status::Disabled);
        assert_eq!(
            parent_of(update).map(|p| p.to_string()),
            Some("gw-a".into())
        );
        let create = line(&new_leaf).expect("created");
        assert_eq!(create.import_mode, Some(ImportMode::Create));
        assert_eq!(create.device_scope, None);
    }
}

/// Preferring the primary, whose gateway the secondary deleted or made plain, the leaf's
/// line carries the secondary's gateway rather than none, and is listed for an operator;
/// preferring the secondary, its gateway is the merged parent, written as any other. Not the
/// base's gateway, which the secondary only kept; and where the plan creates the secondary's
/// gateway, the leaf waits for it.
#[test]
fn a_leaf_whose_preferred_gateway_is_gone_takes_the_other_sides_that_stands() {
    let leaf = DeviceKey::device("leaf").expect("valid");
    // Listed as gone where the merged parent is the primary's.
    let gone = |prefer: Side| {
        if prefer == Side::Primary {
            vec![leaf.clone()]
        } else {
            vec![]
        }
    };
    for name in [
        "leaf each side moved, the primary behind a gateway the other side deleted",
        "leaf each side moved, the primary behind a gateway the other side made plain",
    ] {
        let [b, p, s] = edge_case(name);
        for prefer in BOTH {
            let run = run(&b, &p, &s, prefer);
            let update = run.line("leaf");
            assert_eq!(update.import_mode, Some(ImportMode::UpdateIfMatchETag));
            assert_eq!(update.status, Status::Disabled);
            assert_eq!(
                update.device_scope.as_deref(),
                Some("ms-azure-iot-edge://gw-1"),
                "{name}, prefer {prefer:?}: {}",
                update.to_json()
            );
            assert_eq!(
                run.plan.parent_gone,
                gone(prefer),
                "{name}, prefer {prefer:?}"
            );
        }
    }
    let name = "leaf the primary moved off a gateway, behind one the other side deleted";
    let [b, p, s] = edge_case(name);
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        let update = run.line("leaf");
        assert_eq!(update.status, Status::Disabled);
        assert_eq!(update.device_scope, None, "prefer {prefer:?}");
        assert_eq!(
            run.plan.parent_gone,
            std::slice::from_ref(&leaf),
            "prefer {prefer:?}"
        );
    }
    let name = "leaf each side moved, the primary behind a gateway the other side deleted, the \
                secondary behind a new one";
    let [b, p, s] = edge_case(name);
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        // Its gateway deleted by the plan, the leaf cannot keep it. Its disable is written
        // without a parent, whichever side is preferred: the base gave it none, so the next
        // run reads the missing one as no change of the primary's, and the secondary's new
        // gateway stands.
        let update = run.line("leaf");
        assert_eq!(update.status, Status::Disabled);
        assert_eq!(update.device_scope, None, "prefer {prefer:?}");
        assert!(run.plan.blocked.is_empty(), "prefer {prefer:?}");
        assert_eq!(run.plan.pending_parent, std::slice::from_ref(&leaf));
        assert_eq!(run.plan.parent_gone, gone(prefer), "prefer {prefer:?}");
    }
}

#[test]
fn a_leaf_keeps_the_scope_of_a_gateway_the_primary_exports_without_capabilities() {
    let [leaf, gw] = ["leaf", "gw"].map(|id| DeviceKey::device(id).expect("valid"));
    let own = Some("ms-azure-iot-edge://gw-1");
    // The leaf's disable is a full update: it carries the scope the primary holds, and the
    // report has nothing for an operator. Neither side moved the leaf, and the gateway is
    // unchanged: its capabilities stated nowhere, and every export's scopes name it.
    {
        let name = "leaf disabled behind a gateway no export gives capabilities";
        let [b, p, s] = edge_case(name);
        for prefer in BOTH {
            let run = run(&b, &p, &s, prefer);
            let merged = run.failback.merged().device(&leaf, run.failback.policy());
            assert_eq!(
                merged.and_then(|d| d.parent).map(|p| p.to_string()),
                Some("gw".into())
            );
            let update = run.line("leaf");
            assert_eq!(update.import_mode, Some(ImportMode::UpdateIfMatchETag));
            assert_eq!(update.status, Status::Disabled);
            assert_eq!(
                update.device_scope.as_deref(),
                own,
                "{name}, prefer {prefer:?}: the update detaches the leaf: {}",
                update.to_json()
            );
            assert!(run.lines("gw").is_empty(), "{name}, prefer {prefer:?}");
            assert!(run.plan.parent_gone.is_empty(), "{name}, prefer {prefer:?}");
            assert!(
                run.plan.parent_unwritable.is_empty(),
                "{name}, prefer {prefer:?}"
            );
            assert!(run.plan.blocked.is_empty(), "{name}, prefer {prefer:?}");
        }
    }
    // A real demotion by the secondary, against a base stating the gateway an edge device or
    // leaving that to the scope its leaf carries: the merge holds it, and the gateway's update
    // is blocked (it would demote an edge device the primary's export did not describe), so
    // the primary keeps it as one, and the leaf keeps its scope rather than being detached
    // from a gateway that stays.
    for name in [
        "leaf disabled behind a gateway the secondary made plain, the primary unstated",
        "leaf disabled behind a gateway only the secondary states plain",
    ] {
        let [b, p, s] = edge_case(name);
        for prefer in BOTH {
            let run = run(&b, &p, &s, prefer);
            let merged = run.failback.merged().device(&gw, run.failback.policy());
            assert!(merged.is_some_and(|d| !d.capabilities.iot_edge), "{name}");
            assert_eq!(run.blocked_ids(), ["gw"], "{name}, prefer {prefer:?}");
            assert!(run.plan.blocked[0].reason.contains("gives no capabilities"));
            let update = run.line("leaf");
            assert_eq!(update.status, Status::Disabled);
            assert_eq!(update.device_scope.as_deref(), own, "prefer {prefer:?}");
        }
    }
    // Moved behind it: the scope another leaf's line in the primary carries.
    let [b, p, s] = edge_case("leaf moved behind a gateway no export gives capabilities");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        let update = run.line("leaf");
        assert_eq!(update.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert_eq!(update.device_scope.as_deref(), own, "prefer {prefer:?}");
        assert_eq!(parent_of(update), Some(gw.device.clone()));
        assert!(run.plan.parent_gone.is_empty(), "prefer {prefer:?}");
    }
    // Made a gateway by the secondary, whose export states it only through the leaf's scope:
    // the plan makes it an edge device, and the leaf waits for the scope the hub gives it.
    let [b, p, s] =
        edge_case("leaf moved behind a gateway the secondary made one, its line unstated");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        let merged = run.failback.merged().device(&gw, run.failback.policy());
        assert!(
            merged.is_some_and(|d| d.capabilities.iot_edge),
            "prefer {prefer:?}"
        );
        let update = run.line("gw");
        assert_eq!(update.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert!(update.capabilities.is_some_and(|c| c.iot_edge));
        assert_eq!(run.plan.pending_parent, std::slice::from_ref(&leaf));
        assert!(run.plan.blocked.is_empty(), "prefer {prefer:?}");
    }
    // Deleted by either side, it is no parent: the leaf's disable names no scope.
    for name in [
        "gateway without capabilities deleted by the primary, leaf disabled",
        "gateway without capabilities deleted by the secondary, leaf disabled",
    ] {
        let [b, p, s] = edge_case(name);
        for prefer in BOTH {
            let run = run(&b, &p, &s, prefer);
            let update = run.line("leaf");
            assert_eq!(update.status, Status::Disabled);
            assert_eq!(update.device_scope, None, "{name}, prefer {prefer:?}");
        }
    }
}

#[test]
fn a_pending_leaf_never_keeps_the_scope_of_a_gateway_the_plan_deletes() {
    let leaf = DeviceKey::device("leaf").expect("valid");
    let [b, p, s] = edge_case("leaf disabled and moved from a deleted gateway to a new one");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert_eq!(run.plan.pending_parent, std::slice::from_ref(&leaf));
        let deleted = run
            .plan
            .import
            .iter()
            .find(|l| l.key.device.as_str() == "gw-old");
        assert_eq!(
            deleted.and_then(|l| l.import_mode),
            Some(ImportMode::DeleteIfMatchETag)
        );
        // IoT Hub refuses a scope naming no edge device: the leaf's line, written with the
        // old gateway's scope, would fail and its disable with it.
        for line in &run.plan.import {
            assert_ne!(
                line.device_scope.as_deref(),
                Some("ms-azure-iot-edge://gw-old-1"),
                "prefer {prefer:?}: {}",
                line.to_json()
            );
        }
    }
}

#[test]
fn a_pending_leaf_the_merge_disables_is_disabled_now_or_its_entry_says_why_not() {
    // The secondary replaced the leaf's gateway and disabled the leaf (stolen, say). The new
    // gateway's scope comes once this import creates it, and this import deletes the old one:
    // no scope can be written now. The disable waited for the next run, listed only as
    // pending, while the primary kept the leaf enabled.
    let leaf = DeviceKey::device("leaf").expect("valid");
    let [b, p, s] = edge_case("leaf disabled and moved from a deleted gateway to a new one");

    // Preferring the secondary, it is written disabled now, without a parent: the next run
    // reads that as the primary's change of parent, the preference keeps the secondary's new
    // gateway, and the leaf gets its scope then.
    let first = run(&b, &p, &s, Side::Secondary);
    assert_eq!(first.plan.pending_parent, std::slice::from_ref(&leaf));
    assert!(first.plan.blocked.is_empty(), "{:?}", first.plan.blocked);
    let line = first.line("leaf");
    assert_eq!(
        (line.import_mode, line.status, line.device_scope.as_deref()),
        (Some(ImportMode::UpdateIfMatchETag), Status::Disabled, None)
    );
    let mut hub = Primary::new(&p);
    hub.import(&first.plan.import).expect("the plan applies");
    let held = hub.export();
    let scope_of = |id: &str| {
        let line = held.iter().find(|l| l.key == parse_key(id));
        line.and_then(|l| l.device_scope.clone())
    };
    assert_eq!(scope_of("leaf"), None);
    let next = run(&b, &held, &s, Side::Secondary);
    let conflict = next.conflict("leaf", "parent");
    assert_eq!(
        (conflict.winner, conflict.rule),
        (Side::Secondary, Rule::PreferredReplica)
    );
    let line = next.line("leaf");
    assert_eq!(line.status, Status::Disabled);
    assert_eq!(line.device_scope, scope_of("gw-new"));
    assert!(line.device_scope.is_some());

    // Preferring the primary, the next run would keep the primary's leaf without a parent:
    // the leaf waits whole, and is listed as blocked for now, saying the disable is not
    // applied, so that an operator can disable it by hand.
    let first = run(&b, &p, &s, Side::Primary);
    assert_eq!(first.plan.pending_parent, std::slice::from_ref(&leaf));
    assert!(
        first.lines("leaf").is_empty(),
        "{}",
        json_lines(&first.plan.import)
    );
    let blocked = first.blocked();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].0, "leaf");
    assert!(
        blocked[0].1.starts_with("disable not applied"),
        "{}",
        blocked[0].1
    );
}

#[test]
fn a_pending_leaf_whose_credentials_the_merge_changes_has_them_now_or_its_entry_says_why_not() {
    // The secondary replaced the leaf's gateway and gave the leaf new credentials (a key or a
    // thumbprint leaked with the old box, say). The new gateway's scope comes once this import
    // creates it, and this import deletes the old gateway (or makes it plain): no scope can be
    // written now. The leaf waited whole for the next run, the credentials the merge rotated out
    // still valid in the primary, and its entry said nothing of them.
    let leaf = DeviceKey::device("leaf").expect("valid");
    for (name, status) in [
        (
            "leaf rotated and moved from a deleted gateway to a new one",
            Status::Enabled,
        ),
        (
            "leaf with a new thumbprint, moved from a gateway made plain to a new one",
            Status::Enabled,
        ),
        (
            "leaf disabled and rotated, moved from a deleted gateway to a new one",
            Status::Disabled,
        ),
    ] {
        let [b, p, s] = edge_case(name);
        let primary_leaf = p
            .iter()
            .find(|l| l.key == leaf)
            .expect("the primary's leaf");
        let rotated_out = credentials(primary_leaf.authentication.as_ref());

        // Preferring the secondary, its update is written now, without a parent: the next run
        // reads that as the primary's change of parent, the preference keeps the secondary's
        // new gateway, and the leaf gets its scope then.
        let first = run(&b, &p, &s, Side::Secondary);
        let merged = credentials(Some(&first.device("leaf").authentication));
        assert!(merged != rotated_out, "{name}");
        assert_eq!(first.plan.pending_parent, std::slice::from_ref(&leaf));
        assert!(
            first.plan.blocked.is_empty(),
            "{name}: {:?}",
            first.plan.blocked
        );
        let line = first.line("leaf");
        assert_eq!(
            (
                line.import_mode,
                line.status,
                &line.device_scope,
                &line.parent
            ),
            (Some(ImportMode::UpdateIfMatchETag), status, &None, &None),
            "{name}"
        );
        // Guarded as every update is, by the primary's eTag.
        assert_eq!(line.e_tag.as_deref(), Some("e-leaf"), "{name}");
        assert!(
            credentials(line.authentication.as_ref()) == merged,
            "{name}"
        );
        let mut hub = Primary::new(&p);
        hub.import(&first.plan.import)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let held = hub.export();
        let held_line = |id: &str| held.iter().find(|l| l.key == parse_key(id)).cloned();
        let now = held_line("leaf").expect("kept");
        assert!(credentials(now.authentication.as_ref()) == merged, "{name}");
        assert_eq!(now.device_scope, None, "{name}");
        let next = run(&b, &held, &s, Side::Secondary);
        let conflict = next.conflict("leaf", "parent");
        assert_eq!(
            (conflict.winner, conflict.rule),
            (Side::Secondary, Rule::PreferredReplica),
            "{name}"
        );
        let line = next.line("leaf");
        let scope = held_line("gw-new").and_then(|l| l.device_scope);
        assert!(scope.is_some(), "{name}");
        assert_eq!(line.device_scope, scope, "{name}");
        assert!(
            credentials(line.authentication.as_ref()) == merged,
            "{name}"
        );

        // Preferring the primary, the next run would keep the leaf without a parent: it waits
        // whole, and is listed as blocked for now, saying what is not applied, so that an
        // operator can apply it by hand. The entry names no key or thumbprint of any side.
        let first = run(&b, &p, &s, Side::Primary);
        assert_eq!(first.plan.pending_parent, std::slice::from_ref(&leaf));
        assert!(first.lines("leaf").is_empty(), "{name}");
        let blocked = first.blocked();
        assert_eq!(blocked.len(), 1, "{name}: {blocked:?}");
        let (id, reason) = &blocked[0];
        assert_eq!(id, "leaf");
        assert!(reason.contains("rotation not applied"), "{name}: {reason}");
        assert_eq!(
            reason.contains("disable not applied"),
            status == Status::Disabled,
            "{name}: {reason}"
        );
        for secret in K.iter().chain(&[T1, T2, T3]) {
            assert!(!reason.contains(secret), "{name}: {reason}");
        }
    }
}

#[test]
fn a_credential_the_merge_only_adds_to_a_pending_leaf_waits_with_it() {
    // The secondary replaced the leaf's gateway and gave the X.509 leaf a secondary thumbprint,
    // removing none. Nothing the primary accepts is rotated out, so nothing cannot wait: the
    // leaf waits whole for the new gateway's scope, as for any other change, whichever side is
    // preferred. It was written detached (preferring the secondary) or listed as blocked with
    // its rotation not applied (preferring the primary), any difference of credentials read
    // as a rotation.
    let leaf = DeviceKey::device("leaf").expect("valid");
    let [b, p, s] =
        edge_case("leaf given a second thumbprint, moved from a deleted gateway to a new one");
    for prefer in BOTH {
        let first = run(&b, &p, &s, prefer);
        assert_eq!(first.plan.pending_parent, std::slice::from_ref(&leaf));
        assert!(first.plan.blocked.is_empty(), "{:?}", first.plan.blocked);
        assert!(
            first.lines("leaf").is_empty(),
            "prefer {prefer:?}: {}",
            json_lines(&first.plan.import)
        );
        // The next run writes it whole: the new gateway's scope and both thumbprints.
        let mut hub = Primary::new(&p);
        hub.import(&first.plan.import).expect("the plan applies");
        let held = hub.export();
        let scope = held.iter().find(|l| l.key == parse_key("gw-new"));
        let scope = scope.and_then(|l| l.device_scope.clone());
        assert!(scope.is_some());
        let next = run(&b, &held, &s, prefer);
        let line = next.line("leaf");
        assert_eq!(line.device_scope, scope, "prefer {prefer:?}");
        let merged = credentials(Some(&first.device("leaf").authentication));
        assert!(credentials(line.authentication.as_ref()) == merged);
    }
    // Made self-signed, the SAS leaf's keys are rotated out with the type: they cannot wait.
    let [b, p, s] = edge_case("leaf made self-signed, moved from a deleted gateway to a new one");
    let detached = run(&b, &p, &s, Side::Secondary);
    let line = detached.line("leaf");
    assert_eq!(
        (line.import_mode, &line.device_scope),
        (Some(ImportMode::UpdateIfMatchETag), &None)
    );
    assert_eq!(
        line.authentication.as_ref().map(|a| a.kind),
        Some(AuthType::SelfSigned)
    );
    let blocked = run(&b, &p, &s, Side::Primary);
    let entries = blocked.blocked();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].1.starts_with("rotation not applied"),
        "{entries:?}"
    );
}

#[test]
fn a_gateway_demoted_behind_a_new_gateway_never_names_itself_as_its_parent() {
    // The secondary made `gw` a plain device behind `gw-new`, which this plan creates: `gw`
    // waits for that scope, keeping its current parent. The scope its primary line carries is
    // its own: written on a plain device, it would name the device as its own parent, a scope
    // no edge device holds once the line is imported. The demotion (and a disable with it) is
    // written now without a scope, and the next run gives `gw` the new gateway's.
    let gw = DeviceKey::device("gw").expect("valid");
    for (name, status) in [
        (
            "gateway demoted and moved behind a new gateway",
            Status::Enabled,
        ),
        (
            "gateway demoted, disabled and moved behind a new gateway",
            Status::Disabled,
        ),
    ] {
        let [b, p, s] = edge_case(name);
        for prefer in BOTH {
            let first = run(&b, &p, &s, prefer);
            assert_eq!(first.plan.pending_parent, std::slice::from_ref(&gw));
            assert!(first.plan.blocked.is_empty(), "{:?}", first.plan.blocked);
            let line = first.line("gw");
            assert_eq!(
                (line.import_mode, line.status, line.capabilities),
                (
                    Some(ImportMode::UpdateIfMatchETag),
                    status,
                    Some(Capabilities { iot_edge: false })
                ),
                "{name}, prefer {prefer:?}"
            );
            assert_eq!(
                (&line.device_scope, &line.parent),
                (&None, &None),
                "{name}, prefer {prefer:?}: {}",
                line.to_json()
            );

            let mut hub = Primary::new(&p);
            hub.import(&first.plan.import)
                .unwrap_or_else(|e| panic!("{name}, prefer {prefer:?}: {e}"));
            let held = hub.export();
            let scope_of = |id: &str| {
                let line = held.iter().find(|l| l.key == parse_key(id));
                line.and_then(|l| l.device_scope.clone())
            };
            let next = run(&b, &held, &s, prefer);
            let line = next.line("gw");
            assert!(scope_of("gw-new").is_some());
            assert_eq!(
                line.device_scope,
                scope_of("gw-new"),
                "{name}, prefer {prefer:?}"
            );
        }
    }
}

#[test]
fn a_leaf_whose_scope_names_its_gateway_as_it_was_is_written_with_its_scope_now() {
    let leaf = DeviceKey::device("leaf").expect("valid");
    // The primary deleted its gateway and created it again: the parent id is the same on every
    // side, the scope is not, and the hub refuses the old one. Written with the gateway's own,
    // though the merge changed nothing else.
    let [b, p, s] = edge_case("leaf with the scope of a gateway the primary created again");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        let update = run.line("leaf");
        assert_eq!(update.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert_eq!(
            update.device_scope.as_deref(),
            Some("ms-azure-iot-edge://gw-5"),
            "prefer {prefer:?}"
        );
        assert!(run.plan.pending_parent.is_empty(), "prefer {prefer:?}");
    }
    // The gateway the primary deleted, created again by the secondary (so by this plan): the
    // leaf waits for its scope. A disable among its changes cannot keep the old scope either:
    // written without a parent, whichever side is preferred, since the base gave the leaf none
    // (see `a_waiting_leaf_is_written_without_a_parent_only_where_the_next_run_gives_it_back`).
    let name = "leaf with a stale scope, disabled, behind a gateway the secondary created again";
    let [b, p, s] = edge_case(name);
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        assert_eq!(run.plan.pending_parent, std::slice::from_ref(&leaf));
        for line in &run.plan.import {
            assert_ne!(
                line.device_scope.as_deref(),
                Some("ms-azure-iot-edge://gw-1"),
                "prefer {prefer:?}: {}",
                line.to_json()
            );
        }
        let update = run.line("leaf");
        assert_eq!(
            (update.status, &update.device_scope),
            (Status::Disabled, &None),
            "prefer {prefer:?}"
        );
        assert!(run.plan.blocked.is_empty(), "prefer {prefer:?}");
    }
}

#[test]
fn a_leaf_whose_scope_names_a_gateway_the_primary_states_plain_never_keeps_that_scope() {
    // The scope names a device the primary's export states plain: IoT Hub refuses a scope naming
    // no edge device. Read as current (compared by parent id), the leaf kept it where nothing
    // else changed, and its disable carried it, a line the hub refuses.
    let leaf = DeviceKey::device("leaf").expect("valid");
    let held_scope = "ms-azure-iot-edge://gw-1";
    for (name, status) in [
        (
            "leaf with the scope of a gateway the primary states plain, made one by the secondary",
            Status::Enabled,
        ),
        (
            "leaf with the scope of a gateway the primary states plain, disabled",
            Status::Disabled,
        ),
    ] {
        let [b, p, s] = edge_case(name);
        for prefer in BOTH {
            let context = format!("{name}, prefer {prefer:?}");
            let first = run(&b, &p, &s, prefer);
            // The plan makes the gateway an edge device again, and the leaf waits for its scope.
            let gw = first.line("gw");
            assert_eq!(
                (gw.import_mode, gw.capabilities.map(|c| c.iot_edge)),
                (Some(ImportMode::UpdateIfMatchETag), Some(true)),
                "{context}"
            );
            assert_eq!(
                first.plan.pending_parent,
                std::slice::from_ref(&leaf),
                "{context}"
            );
            for line in &first.plan.import {
                assert_ne!(
                    line.device_scope.as_deref(),
                    Some(held_scope),
                    "{context}: {}",
                    line.to_json()
                );
            }
            // Nothing else changed: the leaf waits whole. A disable is written now, without a
            // parent (the base gave it none, so the next run reads no change of the primary's).
            match status {
                Status::Disabled => {
                    let line = first.line("leaf");
                    assert_eq!((line.status, &line.device_scope), (status, &None));
                }
                _ => assert!(first.lines("leaf").is_empty(), "{context}"),
            }
            assert!(first.plan.blocked.is_empty(), "{context}");
            let mut hub = Primary::new(&p);
            hub.import(&first.plan.import)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            let held = hub.export();
            let scope_of = |id: &str| {
                let line = held.iter().find(|l| l.key == parse_key(id));
                line.and_then(|l| l.device_scope.clone())
            };
            let next = run(&b, &held, &s, prefer);
            let line = next.line("leaf");
            assert!(scope_of("gw").is_some(), "{context}");
            assert_eq!(line.device_scope, scope_of("gw"), "{context}");
            assert_eq!(line.status, status, "{context}");
        }
    }
}

/// A leaf waiting for a new gateway while no scope can be written now has its disable or
/// rotation written without a parent only where the next run still gives it that gateway: the
/// secondary moved it there, and either the base gave it no parent (the primary's missing one
/// is then no change) or the secondary is preferred (the missing one meets the secondary's
/// move as a conflict the preference settles). Elsewhere it waits whole, listed as blocked.
#[test]
fn a_waiting_leaf_is_written_without_a_parent_only_where_the_next_run_gives_it_back() {
    let leaf = DeviceKey::device("leaf").expect("valid");
    // The case, the gateway the leaf waits for, and whether the line goes ahead preferring
    // the primary, then the secondary.
    let cases = [
        (
            "leaf with a stale scope, disabled, behind a gateway the secondary created again",
            "gw",
            [true, true],
        ),
        (
            "leaf with a stale scope, rotated, behind a gateway the secondary created again",
            "gw",
            [true, true],
        ),
        (
            "leaf each side moved, the primary behind a gateway the other side deleted, the \
             secondary behind a new one",
            "gw-new",
            [true, true],
        ),
        (
            "leaf disabled and moved from a deleted gateway to a new one",
            "gw-new",
            [false, true],
        ),
        (
            "leaf both sides created behind a gateway the primary deleted, disabled",
            "gw",
            [false, true],
        ),
        (
            "leaf behind a gateway the primary deleted and the secondary created, disabled",
            "gw",
            [false, false],
        ),
    ];
    for (name, gateway, written) in cases {
        let [b, p, s] = edge_case(name);
        let base_parent = b.iter().find(|l| l.key == leaf).map(|l| l.parent.clone());
        for (prefer, written) in BOTH.into_iter().zip(written) {
            let context = format!("{name}, prefer {prefer:?}");
            let first = run(&b, &p, &s, prefer);
            assert_eq!(
                first.plan.pending_parent,
                std::slice::from_ref(&leaf),
                "{context}"
            );
            let merged = first.device("leaf");
            if written {
                let line = first.line("leaf");
                assert_eq!(
                    (line.import_mode, &line.device_scope, &line.parent),
                    (Some(ImportMode::UpdateIfMatchETag), &None, &None),
                    "{context}"
                );
                assert_eq!(line.status, merged.status.status, "{context}");
                assert!(first.plan.blocked.is_empty(), "{context}");
            } else {
                assert!(first.lines("leaf").is_empty(), "{context}");
                let blocked = first.blocked();
                assert_eq!(blocked.len(), 1, "{context}: {blocked:?}");
                assert!(blocked[0].1.contains("not applied"), "{context}");
            }
            // Applied: the next run gives the leaf the gateway it waited for, with the scope
            // the hub gave it, and a parent conflict only where the base gave it a parent (the
            // missing one is the primary's change then, which the secondary's move wins).
            let mut hub = Primary::new(&p);
            hub.import(&first.plan.import)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            let held = hub.export();
            let scope = held.iter().find(|l| l.key == parse_key(gateway));
            let scope = scope.and_then(|l| l.device_scope.clone());
            assert!(scope.is_some(), "{context}");
            let next = run(&b, &held, &s, prefer);
            let line = next.line("leaf");
            assert_eq!(line.device_scope, scope, "{context}: {}", line.to_json());
            assert_eq!(line.status, merged.status.status, "{context}");
            assert!(next.plan.blocked.is_empty(), "{context}");
            let parent_conflicts = next.conflicts("leaf");
            let parent_conflicts = parent_conflicts.iter().filter(|c| c.field == "parent");
            if written && base_parent == Some(None) {
                assert_eq!(parent_conflicts.count(), 0, "{context}");
            }
        }
    }
}

#[test]
fn capabilities_on_a_module_line_are_no_change_to_write() {
    let [b, p, s] = edge_case("module line with capabilities");
    for prefer in BOTH {
        let run = run(&b, &p, &s, prefer);
        // A module line carries no capabilities: an update for them would change nothing in
        // the hub and be planned again on every run.
        assert!(
            run.plan.import.is_empty(),
            "prefer {prefer:?}: {}",
            json_lines(&run.plan.import)
        );
        assert!(run.summary.conflicts.is_empty(), "prefer {prefer:?}");
    }
}

#[test]
fn edge_case_plans_applied_then_rerun_are_empty() {
    for (name, [b, p, s]) in edge_cases() {
        for prefer in BOTH {
            eprintln!("{name}, prefer {prefer:?}");
            check_plan_then_rerun(&b, &p, &s, prefer);
        }
    }
}

#[test]
fn system_modules_the_hub_makes_for_a_new_gateway_are_never_written_on_rerun() {
    // Without desired properties, as the hub makes them: only the keys differ.
    let bare = |m: &str| set(module("gw", m), "/properties", json!({}));
    let secondary = export(&[edge("gw", 2), bare("$edgeAgent"), bare("$edgeHub")]);
    for prefer in BOTH {
        let first = run(&[], &[], &secondary, prefer);
        let mut hub = Primary::new(&[]);
        hub.import(&first.plan.import).expect("first plan");
        let held: Vec<String> = hub.export().iter().map(|l| l.key.to_string()).collect();
        assert_eq!(held, ["gw", "gw/$edgeAgent", "gw/$edgeHub"]);
        // The hub's keys and the secondary's now differ: listed while the secondary's are
        // preferred, agreed once the primary's are; never written either way.
        let second = run(&[], &hub.export(), &secondary, prefer);
        assert!(
            second.plan.import.is_empty(),
            "prefer {prefer:?}: {}",
            json_lines(&second.plan.import)
        );
        let listed = match prefer {
            Side::Primary => 0,
            _ => 2,
        };
        assert_eq!(
            second.plan.system_modules.len(),
            listed,
            "prefer {prefer:?}: {:?}",
            second.plan.system_modules
        );
    }
}

#[test]
fn edge_case_interrupted_imports_resume_with_the_rest() {
    for (name, [b, p, s]) in edge_cases() {
        for prefer in BOTH {
            eprintln!("{name}, prefer {prefer:?}");
            for k in 0..=run(&b, &p, &s, prefer).plan.import.len() {
                check_interrupted(&b, &p, &s, prefer, k);
            }
        }
    }
}

/// Applies the first `k` lines of the plan (an import job that stopped) and runs again: the new
/// plan is the rest of the old one, line for line. The ETags in the rest are those of devices
/// the prefix did not touch, so they are unchanged. Devices whose parent was pending are left
/// out: once the prefix created their gateway, their line carries its scope.
pub(super) fn check_interrupted(
    base: &[ExportLine],
    primary: &[ExportLine],
    secondary: &[ExportLine],
    prefer: Side,
    k: usize,
) {
    let first = run(base, primary, secondary, prefer);
    let k = k.min(first.plan.import.len());
    let pending: BTreeSet<&DeviceKey> = first.plan.pending_parent.iter().collect();
    let mut hub = Primary::new(primary);
    hub.import(&first.plan.import[..k])
        .unwrap_or_else(|e| panic!("prefix: {e}"));
    let second = run(base, &hub.export(), secondary, prefer);
    let settled = |lines: &[ExportLine]| -> String {
        json_lines(
            &lines
                .iter()
                .filter(|l| !pending.contains(&l.key))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    assert_same_lines(
        &settled(&second.plan.import),
        &settled(&first.plan.import[k..]),
        &format!(
            "prefer {prefer:?}: interrupted after {k} of {} lines, the rerun is not the rest",
            first.plan.import.len()
        ),
    );
    // What the rest still needs: the rerun's plan applies cleanly.
    hub.import(&second.plan.import)
        .unwrap_or_else(|e| panic!("rest: {e}"));
}

#[test]
fn shipped_interrupted_import_resumes_with_the_rest() {
    let [b, p, s] = shipped();
    for prefer in BOTH {
        let len = run(&b, &p, &s, prefer).plan.import.len();
        assert!(len > 10);
        for k in 0..=len {
            check_interrupted(&b, &p, &s, prefer, k);
        }
    }
}

/// The serializations a run writes: merged.jsonl, import.jsonl, report.json.
fn outputs(run: &Run) -> [String; 3] {
    [
        json_lines(&run.plan.merged),
        json_lines(&run.plan.import),
        run.report_json(),
    ]
}

fn shuffled(lines: &[ExportLine], rng: &mut Rng) -> Vec<ExportLine> {
    let mut lines = lines.to_vec();
    rng.shuffle(&mut lines);
    lines
}

pub(super) fn check_order_independent(
    base: &[ExportLine],
    primary: &[ExportLine],
    secondary: &[ExportLine],
    seed: u64,
) {
    let mut rng = Rng(seed);
    for prefer in BOTH {
        let expected = outputs(&run(base, primary, secondary, prefer));
        let actual = outputs(&run(
            &shuffled(base, &mut rng),
            &shuffled(primary, &mut rng),
            &shuffled(secondary, &mut rng),
            prefer,
        ));
        for (name, (a, e)) in ["merged", "import", "report"]
            .iter()
            .zip(actual.iter().zip(&expected))
        {
            assert!(
                a == e,
                "prefer {prefer:?}, seed {seed}: {name} depends on input order"
            );
        }
    }
}

#[test]
fn shipped_output_is_the_same_whatever_the_line_order() {
    let [b, p, s] = shipped();
    for seed in 0..20 {
        check_order_independent(&b, &p, &s, seed);
    }
}

#[test]
fn a_bad_base_line_past_many_hand_overs_is_reported_and_nothing_hangs() {
    // Over a few thousand lines the base goes through several hand-overs from the parsing
    // thread to the writing one, and its parsed lines back to be freed. An error from the
    // reader (which the parsing thread sees) and a key seen twice (which only the writing
    // thread does) each stop both threads, and the failback reports it.
    let g = Generate {
        devices: 3000,
        seed: 11,
    }
    .run();
    assert!(g.base.len() > 2500);
    let ok = |lines: &[ExportLine]| -> Vec<failback::Result<ExportLine>> {
        lines.iter().cloned().map(Ok).collect()
    };
    let refused = |base: Vec<failback::Result<ExportLine>>| {
        Failback::from_lines(base, ok(&g.primary), ok(&g.secondary), Side::Secondary)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let mut base = ok(&g.base);
    base.insert(
        2500,
        Err(failback::Error::InvalidValue {
            field: "line 2501".into(),
            reason: "not an export line".into(),
        }),
    );
    assert!(refused(base).contains("not an export line"));
    let mut base = ok(&g.base);
    base.insert(2500, Ok(g.base[10].clone()));
    let error = refused(base);
    assert!(
        error.contains("appears twice in the base export"),
        "{error}"
    );
}

/// The key of the device `key` belongs to (itself for a device).
fn device_key(key: &DeviceKey) -> DeviceKey {
    DeviceKey {
        device: key.device.clone(),
        module: None,
    }
}
