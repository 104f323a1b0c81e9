//! Parents no line can carry: each entry of `parentUnwritable` says why and which parent the
//! merge wants, and an IoT Edge device the secondary created, whose parent no export shows, is
//! listed rather than created without it unsaid.

use failback::iothub::{ImportMode, Side, Summary, UnwritableReason};
use serde_json::{Value, json};

use crate::hub::Hub;
use crate::*;

/// The report's `parentUnwritable`, as `report.json` holds it.
fn reported(run: &Run) -> Value {
    let report: Value = serde_json::from_str(&run.report_json()).expect("json");
    report["parentUnwritable"].clone()
}

#[test]
fn each_entry_says_why_and_which_parent_the_merge_wants() {
    // One failback holding every reason, each on its own device.
    let base = [
        edge("gw", 1),
        edge("gw2", 1),
        edge("gw-hidden", 1),
        behind(device("promoted"), "gw", 1),
        edge("nested", 1),
        device("moved"),
    ];
    let primary = [
        edge("gw", 1),
        edge("gw2", 1),
        // An edge device the primary's export holds without a scope, and no child names.
        set(edge("gw-hidden", 1), "/deviceScope", Value::Null),
        behind(device("promoted"), "gw", 1),
        edge("nested", 1),
        device("moved"),
    ];
    let secondary = [
        edge("gw", 2),
        edge("gw2", 2),
        edge("gw-hidden", 2),
        // A new gateway exported without keys: its create is blocked.
        set(edge("gw-new", 2), "/authentication", Value::Null),
        // A leaf the secondary made an edge device.
        edge("promoted", 2),
        // A leaf moved behind the hidden gateway, and an existing one behind the blocked one.
        behind(
            set(device("moved"), "/tags/site", json!("oslo")),
            "gw-hidden",
            2,
        ),
        behind(device("old-leaf"), "gw-new", 2),
        edge("nested", 2),
        // An edge device created during the outage.
        edge("born", 2),
    ];
    let primary = [&primary[..], &[device("old-leaf")]].concat();
    let base = [&base[..], &[device("old-leaf")]].concat();
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let expected = [
            entry("born", UnwritableReason::ParentUnknown, None),
            entry("gw-new", UnwritableReason::ParentUnknown, None),
            entry(
                "moved",
                UnwritableReason::ParentWithoutScope,
                Some("gw-hidden"),
            ),
            entry("old-leaf", UnwritableReason::ParentBlocked, Some("gw-new")),
            entry("promoted", UnwritableReason::MadeEdgeDevice, Some("gw")),
        ];
        // Sorted by device, one entry each; the summary and report.json show the same.
        assert_eq!(unwritable(&run.plan), expected, "prefer {prefer:?}");
        assert_eq!(run.summary.parent_unwritable, run.plan.parent_unwritable);
        assert_eq!(
            reported(&run),
            json!([
                {"device": "born", "reason": "parent-unknown", "parent": null},
                {"device": "gw-new", "reason": "parent-unknown", "parent": null},
                {"device": "moved", "reason": "parent-without-scope", "parent": "gw-hidden"},
                {"device": "old-leaf", "reason": "parent-blocked", "parent": "gw-new"},
                {"device": "promoted", "reason": "made-edge-device", "parent": "gw"},
            ]),
            "prefer {prefer:?}"
        );
        // report.json reads back as the summary it was written from.
        let read: Summary = serde_json::from_str(&run.report_json()).expect("reads back");
        assert_eq!(read, run.summary);
        for e in &run.plan.parent_unwritable {
            assert_eq!(e.reason.to_string(), e.reason.as_str());
        }
        // `nested`, an edge device since the base, is not listed: the exports no more show a
        // parent the secondary gave it than one they gave `born`, but the base's edge devices
        // would all be listed alike (see the plan's docs).
        assert!(run.lines("nested").is_empty());
    }
}

#[test]
fn an_edge_device_the_secondary_created_is_listed_its_parent_unknown() {
    // The secondary created `gw2` and, as far as anyone can tell, may have put it behind `gw`
    // (a nested edge device): its export line carries its own scope, never its parent.
    let base = [edge("gw", 1)];
    let secondary = [
        edge("gw", 2),
        edge("gw2", 2),
        behind(device("leaf"), "gw2", 2),
    ];
    for prefer in BOTH {
        let run = merge(&base, &base, &secondary, prefer);
        assert_eq!(run.line("gw2").import_mode, Some(ImportMode::Create));
        assert_eq!(run.device("gw2").parent, None);
        // Listed, not created without a parent unsaid; its leaf's parent is known (it waits
        // for `gw2`'s scope), so the leaf is not.
        assert_eq!(
            unwritable(&run.plan),
            [entry("gw2", UnwritableReason::ParentUnknown, None)],
            "prefer {prefer:?}"
        );
        assert_eq!(shown(&run.plan.pending_parent), ["leaf"]);

        // Applied, the primary holds `gw2`; every later run against this base lists it again
        // (created on both sides, the primary's line says no more than the secondary's), with
        // nothing more to write.
        let mut hub = Hub::new(&export(&base));
        hub.import(&run.plan.import).expect("first plan");
        let next = run_lines(&base, &hub.export(), &secondary, prefer);
        hub.import(&next.plan.import).expect("second plan");
        let last = run_lines(&base, &hub.export(), &secondary, prefer);
        assert!(last.plan.import.is_empty(), "{:?}", last.plan.import);
        assert_eq!(last.plan.parent_unwritable, run.plan.parent_unwritable);
    }
}

#[test]
fn a_blocked_new_edge_device_is_listed_too() {
    // Its create waits for keys; once an operator has them, the device is created without a
    // parent all the same: listed now, so nothing is lost unsaid whichever comes first.
    let secondary = [set(edge("gw", 2), "/authentication", Value::Null)];
    for prefer in BOTH {
        let run = merge(&[], &[], &secondary, prefer);
        assert_eq!(run.blocked_ids(), ["gw"]);
        assert_eq!(
            unwritable(&run.plan),
            [entry("gw", UnwritableReason::ParentUnknown, None)]
        );
    }
}

#[test]
fn an_edge_device_created_on_both_sides_is_listed_where_the_secondary_holds_an_edge_device() {
    // Both created `gw2` as an edge device: the primary holds some parent, the secondary
    // maybe another, and no export shows either.
    let base = [edge("gw", 1)];
    let primary = [edge("gw", 1), edge("gw2", 1)];
    let secondary = [edge("gw", 2), edge("gw2", 2)];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert!(run.lines("gw2").is_empty(), "prefer {prefer:?}");
        assert_eq!(
            unwritable(&run.plan),
            [entry("gw2", UnwritableReason::ParentUnknown, None)]
        );
    }

    // The primary created it as a leaf behind `gw`, which its line shows: that parent is known,
    // and where the secondary's edge device wins, the update making the primary's leaf an edge
    // device cannot carry it.
    let primary = [edge("gw", 1), behind(device("gw2"), "gw", 1)];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    assert!(run.device("gw2").capabilities.iot_edge);
    assert_eq!(
        run.line("gw2").import_mode,
        Some(ImportMode::UpdateIfMatchETag)
    );
    assert_eq!(
        unwritable(&run.plan),
        [entry("gw2", UnwritableReason::MadeEdgeDevice, Some("gw"))]
    );
    // Preferring the primary, it stays the primary's leaf: nothing to carry.
    let run = merge(&base, &primary, &secondary, Side::Primary);
    assert!(!run.device("gw2").capabilities.iot_edge);
    assert!(
        run.plan.parent_unwritable.is_empty(),
        "{:?}",
        run.plan.parent_unwritable
    );
}

#[test]
fn an_edge_device_only_the_primary_created_is_not_listed() {
    // The secondary never held it, so it had no nesting to lose: the primary keeps its own.
    let base = [edge("gw", 1)];
    let primary = [edge("gw", 1), edge("gw2", 1)];
    for prefer in BOTH {
        let run = merge(&base, &primary, &base, prefer);
        assert!(run.plan.import.is_empty(), "{:?}", run.plan.import);
        assert!(run.plan.parent_unwritable.is_empty(), "prefer {prefer:?}");
    }
    // Nor is a device the secondary created as a leaf: its line states the parent.
    let secondary = [edge("gw", 2), behind(device("leaf"), "gw", 2)];
    for prefer in BOTH {
        let run = merge(&base, &base, &secondary, prefer);
        assert_eq!(run.line("leaf").import_mode, Some(ImportMode::Create));
        assert!(run.plan.parent_unwritable.is_empty(), "prefer {prefer:?}");
    }
}
