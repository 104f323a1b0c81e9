//! Parents no line can carry: each entry of `parentUnwritable` says why and which parent the
//! merge wants.

use failback::iothub::{Summary, UnwritableReason};
use serde_json::{Value, json};

use crate::*;

/// `value` behind the edge device `gw`, whose scope has generation id `generation`.
fn behind(value: Value, gw: &str, generation: u64) -> Value {
    let scope = format!("ms-azure-iot-edge://{gw}-{generation}");
    set(value, "/deviceScope", json!(scope))
}

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
    ];
    let primary = [&primary[..], &[device("old-leaf")]].concat();
    let base = [&base[..], &[device("old-leaf")]].concat();
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let expected = [
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
        // `nested`, an edge device in the base with no parent known, is not listed.
        assert!(run.lines("nested").is_empty());
    }
}
