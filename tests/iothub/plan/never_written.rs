//! What the plan never writes: reported properties, IoT Edge system modules, and a scope on a
//! module's line.

use failback::iothub::{ImportMode, Side};
use serde_json::json;

use crate::*;

#[test]
fn reported_properties_are_never_written() {
    let base = [device("reports"), device("both")];
    let primary = base.clone();
    let secondary = [
        set(device("reports"), "/properties/reported/battery", json!(12)),
        set(
            set(device("both"), "/properties/reported/battery", json!(12)),
            "/tags/floor",
            json!(1),
        ),
        set(device("created"), "/properties/reported/battery", json!(50)),
    ];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    assert_eq!(
        run.device("reports").reported["battery"],
        12,
        "merged, just not written"
    );
    assert!(
        run.lines("reports").is_empty(),
        "{:?}",
        run.lines("reports")
    );
    assert_eq!(
        run.line("both").import_mode,
        Some(ImportMode::UpdateTwinIfMatchETag)
    );
    assert_eq!(run.line("created").import_mode, Some(ImportMode::Create));
    for line in &run.plan.import {
        assert_eq!(line.reported, None, "{}", line.to_json());
        assert!(!line.to_json().contains("reported"), "{}", line.to_json());
    }
}

#[test]
fn iot_edge_system_modules_are_never_written() {
    // Created: left to the hub, which creates them with the edge device.
    let secondary = [
        edge("gw-new", 5),
        module("gw-new", "$edgeAgent"),
        module("gw-new", "$edgeHub"),
        module("gw-new", "reader"),
    ];
    let run = merge(&[], &[], &secondary, Side::Secondary);
    let planned: Vec<String> = run.plan.import.iter().map(|l| l.key.to_string()).collect();
    assert_eq!(planned, ["gw-new"]);
    // Its own module waits for it, as any new device's (the next run creates it).
    assert_eq!(shown(&run.plan.pending_parent), ["gw-new/reader"]);
    let system = shown(&run.plan.system_modules);
    assert_eq!(system, ["gw-new/$edgeAgent", "gw-new/$edgeHub"]);
    // The new edge device is created without the secondary hub's scope: IoT Hub assigns it.
    assert_eq!(run.line("gw-new").device_scope, None);

    // Changed or gone on the secondary: the primary's runtime holds keys the primary hub made,
    // which an update would overwrite and a delete would take from a running edge device. Only
    // the user module and the gateway that stopped being an edge device are written.
    let base = [
        edge("gw", 1),
        module("gw", "$edgeAgent"),
        module("gw", "$edgeHub"),
        module("gw", "reader"),
        edge("was-edge", 1),
        module("was-edge", "$edgeAgent"),
        module("was-edge", "$edgeHub"),
    ];
    let secondary = [
        edge("gw", 2),
        keys(module("gw", "$edgeAgent"), K[4], K[5]),
        set(
            module("gw", "$edgeHub"),
            "/properties/desired/schemaVersion",
            json!("1.1"),
        ),
        keys(module("gw", "reader"), K[4], K[5]),
        device("was-edge"),
    ];
    for prefer in BOTH {
        let run = merge(&base, &base, &secondary, prefer);
        let planned = run.modes();
        let update = Some(ImportMode::UpdateIfMatchETag);
        assert_eq!(
            planned,
            [
                ("gw/reader".to_owned(), update),
                ("was-edge".to_owned(), update)
            ],
            "prefer {prefer:?}"
        );
        let system = shown(&run.plan.system_modules);
        assert_eq!(
            system,
            [
                "gw/$edgeAgent",
                "gw/$edgeHub",
                "was-edge/$edgeAgent",
                "was-edge/$edgeHub"
            ],
            "prefer {prefer:?}"
        );
        assert_eq!(run.summary.system_modules, run.plan.system_modules);
        assert!(run.plan.blocked.is_empty(), "{:?}", run.plan.blocked);
    }
}

/// Review 71: a module's line in an export carries its device's scope, which can be stale; the
/// module's update wrote it back as it was. Here the primary created `gw` again (`gw-5`) while
/// `leaf` and its module still carry `gw-1`, and the secondary re-keyed the module: the leaf's
/// update writes `gw-5`, and the module's wrote `gw-1`, the scope of no edge device, on every
/// run. A module has no scope of its own: its line carries none.
#[test]
fn a_modules_line_never_carries_a_scope() {
    let base = [
        edge("gw", 1),
        behind(device("leaf"), "gw", 1),
        behind(module("leaf", "m"), "gw", 1),
    ];
    let primary = [
        edge("gw", 5),
        behind(device("leaf"), "gw", 1),
        behind(module("leaf", "m"), "gw", 1),
    ];
    let secondary = [
        edge("gw", 2),
        behind(device("leaf"), "gw", 2),
        keys(behind(module("leaf", "m"), "gw", 2), K[4], K[5]),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let leaf = run.line("leaf");
        assert_eq!(
            leaf.device_scope.as_deref(),
            Some("ms-azure-iot-edge://gw-5"),
            "prefer {prefer:?}"
        );
        let module = run.line("leaf/m");
        assert_eq!(module.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert_eq!(
            (&module.device_scope, &module.parent),
            (&None, &None),
            "prefer {prefer:?}: {}",
            module.to_json()
        );
        let merged = run
            .plan
            .merged
            .iter()
            .find(|l| l.key == parse_key("leaf/m"));
        assert_eq!(merged.and_then(|l| l.device_scope.as_ref()), None);
    }
}
