//! Capabilities an export leaves out are unknown, never a plain device: a gateway is never
//! demoted by a full update, one a side created is a gateway where that side's scopes name it,
//! and capabilities two sides state differently over a base that does not are a conflict.

use failback::Status;
use failback::iothub::{ImportMode, Side};
use serde_json::{Value, json};

use crate::hub::Hub;
use crate::*;

#[test]
fn capabilities_an_export_leaves_out_are_unknown_never_a_plain_device() {
    // A gateway's line with `capabilities` null or absent, but its own scope: only an IoT Edge
    // device's scope names itself. Read as `iotEdge: false`, it was a change on that side; the
    // plan then wrote the gateway back as a plain device and stranded its leaf, unreported.
    let scoped = |v: Value, generation: u64| {
        let scope = format!("ms-azure-iot-edge://gw-{generation}");
        set(v, "/deviceScope", json!(scope))
    };
    let base = [edge("gw", 637), scoped(device("leaf"), 637)];
    let omitted = [
        set(edge("gw", 637), "/capabilities", Value::Null),
        without(edge("gw", 637), "capabilities"),
        set(edge("gw", 637), "/capabilities", json!({"iotEdge": null})),
        set(edge("gw", 637), "/capabilities", json!({})),
    ];
    for gw in omitted {
        // The primary leaves them out; then the secondary, the primary stating them.
        let primary = [gw.clone(), scoped(device("leaf"), 637)];
        let disabled = set(gw.clone(), "/status", json!("disabled"));
        let secondary = [
            scoped(set(edge("gw", 900), "/status", json!("disabled")), 900),
            scoped(device("leaf"), 900),
        ];
        let secondary_omitting = [scoped(disabled, 900), scoped(device("leaf"), 900)];
        for (primary, secondary) in [
            (&primary[..], &secondary[..]),
            (&base[..], &secondary_omitting[..]),
        ] {
            for prefer in BOTH {
                let run = merge(&base, primary, secondary, prefer);
                assert!(run.device("gw").capabilities.iot_edge, "prefer {prefer:?}");
                assert_eq!(run.device("leaf").parent, Some(parse_key("gw").device));
                assert!(run.plan.blocked.is_empty(), "{:?}", run.plan.blocked);
                let line = run.line("gw");
                assert_eq!(line.import_mode, Some(ImportMode::UpdateIfMatchETag));
                assert_eq!(line.status, Status::Disabled);
                assert!(
                    line.capabilities.is_some_and(|c| c.iot_edge),
                    "{}",
                    line.to_json()
                );
                assert_eq!(
                    line.device_scope.as_deref(),
                    Some("ms-azure-iot-edge://gw-637")
                );
                assert!(run.lines("leaf").is_empty());
                // The hub as it is: its export left the gateway's capabilities out.
                let mut hub = Hub::new(&export(&base));
                hub.import(&run.plan.import).expect("the plan applies");
                let after = hub.export();
                let leaf = after.iter().find(|l| l.key == parse_key("leaf"));
                let gw = after.iter().find(|l| l.key == parse_key("gw"));
                assert!(gw.is_some_and(|l| l.capabilities.is_some_and(|c| c.iot_edge)));
                assert_eq!(
                    leaf.and_then(|l| l.device_scope.clone()),
                    gw.and_then(|l| l.device_scope.clone())
                );
            }
        }
    }
}

#[test]
fn a_full_update_never_demotes_a_gateway_whose_capabilities_the_primary_left_out() {
    // No scope of its own in the primary's line and no capabilities, but the primary's leaf
    // names it as its gateway: the primary holds it as an IoT Edge device, made one during the
    // outage (the base states it plain). Read as the base's plain device, the secondary's
    // disable was blocked, or a full update would have demoted it; it is the primary's change,
    // and the update keeps it an edge device, with the scope its leaf names.
    let scope = "ms-azure-iot-edge://gw-637";
    let base = [device("gw"), device("leaf")];
    let primary = [
        without(device("gw"), "capabilities"),
        set(device("leaf"), "/deviceScope", json!(scope)),
    ];
    let secondary = [
        set(device("gw"), "/status", json!("disabled")),
        device("leaf"),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert!(
            run.plan.blocked.is_empty(),
            "prefer {prefer:?}: {:?}",
            run.plan.blocked
        );
        let line = run.line("gw");
        assert_eq!(line.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert_eq!(line.status, Status::Disabled);
        assert!(
            line.capabilities.is_some_and(|c| c.iot_edge),
            "{}",
            line.to_json()
        );
        assert_eq!(line.device_scope.as_deref(), Some(scope));
        assert!(run.lines("leaf").is_empty(), "prefer {prefer:?}");
        let mut hub = Hub::new(&export(&primary));
        hub.import(&run.plan.import).expect("the plan applies");
    }
    // Stated plain, it is written as such.
    let primary = [device("gw"), primary[1].clone()];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    assert_eq!(run.line("gw").status, Status::Disabled);
}

#[test]
fn a_device_created_on_both_sides_takes_the_capabilities_one_side_states() {
    let secondary = [set(edge("gw", 900), "/deviceScope", Value::Null)];
    let primary = [without(
        set(edge("gw", 637), "/deviceScope", Value::Null),
        "capabilities",
    )];
    for prefer in BOTH {
        let run = merge(&[], &primary, &secondary, prefer);
        assert!(run.device("gw").capabilities.iot_edge, "prefer {prefer:?}");
        assert!(run.conflicts("gw").is_empty(), "{:?}", run.conflicts("gw"));
    }
}

#[test]
fn different_capabilities_over_a_base_that_does_not_state_them_are_a_conflict() {
    // The base left the gateway's capabilities out and no base scope names it: unknown. One
    // side holds it as an edge device (stated, or its leaf's scope names it), the other
    // states it plain: either may have changed it. Read against a base taken as plain, the
    // plain side's statement was no change, and the edge value won unreported.
    let scoped = set(
        device("leaf"),
        "/deviceScope",
        json!("ms-azure-iot-edge://gw-1"),
    );
    let unknown = without(device("gw"), "capabilities");
    let base = [unknown.clone(), device("leaf")];
    let edge_sides = [
        vec![unknown.clone(), scoped.clone()],
        vec![edge("gw", 1), device("leaf")],
    ];
    for edge_side in edge_sides {
        let plain_side = vec![device("gw"), device("leaf")];
        for (primary, secondary) in [(&edge_side, &plain_side), (&plain_side, &edge_side)] {
            for prefer in BOTH {
                let run = merge(&base, primary, secondary, prefer);
                let conflicts = run.conflicts("gw");
                assert_eq!(conflicts.len(), 1, "prefer {prefer:?}: {conflicts:?}");
                let preferred_edge = match prefer {
                    Side::Primary => primary == &edge_side,
                    _ => secondary == &edge_side,
                };
                assert_eq!(run.device("gw").capabilities.iot_edge, preferred_edge);
            }
        }
    }
    // Sides that agree, or one that knows nothing, meet no conflict.
    let run = merge(
        &base,
        &[unknown.clone(), scoped.clone()],
        &[unknown, scoped],
        Side::Primary,
    );
    assert!(run.conflicts("gw").is_empty(), "{:?}", run.conflicts("gw"));
    assert!(run.device("gw").capabilities.iot_edge);
    let run = merge(&base, &base, &[device("gw"), device("leaf")], Side::Primary);
    assert!(run.conflicts("gw").is_empty(), "{:?}", run.conflicts("gw"));
}

#[test]
fn a_device_one_side_created_is_a_gateway_where_that_sides_scopes_name_it() {
    // Created during the outage with a leaf behind it, the gateway's own line stating no
    // capabilities: read as plain, the plan created a plain device, and the leaf's parent was
    // gone.
    let leaf = set(
        device("leaf"),
        "/deviceScope",
        json!("ms-azure-iot-edge://gw-900"),
    );
    let secondary = [
        without(
            set(device("gw"), "/deviceScope", Value::Null),
            "capabilities",
        ),
        leaf,
    ];
    for prefer in BOTH {
        let run = merge(&[], &[], &secondary, prefer);
        assert!(run.device("gw").capabilities.iot_edge, "prefer {prefer:?}");
        let line = run.line("gw");
        assert_eq!(line.import_mode, Some(ImportMode::Create));
        assert!(
            line.capabilities.is_some_and(|c| c.iot_edge),
            "{}",
            line.to_json()
        );
        assert_eq!(
            shown(&run.plan.pending_parent),
            ["leaf"],
            "prefer {prefer:?}"
        );
        assert!(run.plan.parent_gone.is_empty(), "prefer {prefer:?}");
    }
}
