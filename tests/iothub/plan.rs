//! One test per rule of the import plan: which line, with which ETags, what is never written,
//! what is blocked or waits, order, and what the report may show. Last, the import simulator's
//! own check: it must refuse what IoT Hub refuses, or the rerun properties prove nothing.

use failback::iothub::{
    ExportLine, Generate, ImportMode, InputStats, Parsed, PlanCounts, Side, parse_line, read_export,
};
use failback::{AuthType, Authentication, DeviceKey, Rule, Status};
use serde_json::{Value, json};
use std::path::Path;

use super::data::{secrets, shipped, shipped_paths};
use super::hub::Hub;
use super::*;

#[test]
fn plan_lines_have_the_right_mode_and_etags() {
    let base = [
        device("twin"),
        device("identity"),
        device("gone"),
        device("same"),
    ];
    let primary = base.clone();
    let secondary = [
        set(device("twin"), "/tags/floor", json!(4)),
        set(device("identity"), "/status", json!("disabled")),
        device("same"),
        set(device("fresh"), "/tags/site", json!("oslo")),
    ];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    let modes: Vec<(String, ImportMode)> = run
        .plan
        .import
        .iter()
        .map(|l| (l.key.to_string(), l.import_mode.expect("a mode")))
        .collect();
    assert_eq!(
        modes,
        [
            ("fresh".to_owned(), ImportMode::Create),
            ("gone".to_owned(), ImportMode::DeleteIfMatchETag),
            ("identity".to_owned(), ImportMode::UpdateIfMatchETag),
            ("twin".to_owned(), ImportMode::UpdateTwinIfMatchETag),
        ]
    );
    let create = run.line("fresh");
    assert_eq!(
        (create.e_tag.as_deref(), create.twin_e_tag.as_deref()),
        (None, None)
    );
    assert!(
        create
            .authentication
            .as_ref()
            .is_some_and(|a| a.keys.is_some())
    );
    assert_eq!(
        create.tags.clone().map(Value::Object),
        Some(json!({"site": "oslo"}))
    );
    assert_eq!(
        create.desired.clone().map(Value::Object),
        Some(json!({"interval": 60}))
    );
    let delete = run.line("gone");
    assert_eq!(
        (delete.e_tag.as_deref(), delete.twin_e_tag.as_deref()),
        (Some("e-gone"), None)
    );
    // A full update carries the whole merged identity, tags and desired properties.
    let update = run.line("identity");
    assert_eq!(
        (update.e_tag.as_deref(), update.twin_e_tag.as_deref()),
        (Some("e-identity"), None)
    );
    assert_eq!(update.status, Status::Disabled);
    assert!(update.to_json().contains(K[0]) && update.to_json().contains(K[1]));
    assert_eq!(
        update.tags.clone().map(Value::Object),
        Some(json!({"site": "berlin"}))
    );
    assert_eq!(
        update.desired.clone().map(Value::Object),
        Some(json!({"interval": 60}))
    );
    // A twin update carries the twin only.
    let twin = run.line("twin");
    assert_eq!(
        (twin.e_tag.as_deref(), twin.twin_e_tag.as_deref()),
        (None, Some("t-twin"))
    );
    assert_eq!(twin.authentication, None);
    assert_eq!(
        twin.tags.clone().map(Value::Object),
        Some(json!({"site": "berlin", "floor": 4}))
    );
    for line in &run.plan.import {
        assert_eq!(line.reported, None);
        assert!(
            !line.to_json().contains("sec-"),
            "the secondary's ETag in {}",
            line.to_json()
        );
    }
}

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
fn devices_whose_credentials_are_unknown_are_blocked_not_imported() {
    let unknown = |v: Value| set(v, "/authentication", Value::Null);
    // Exported without keys everywhere: a disable would need a full update (new keys): blocked.
    // A twin change needs no keys: written. A device created without known keys: blocked.
    let base = [unknown(device("disable")), unknown(device("twin"))];
    let primary = base.clone();
    let secondary = [
        unknown(set(device("disable"), "/status", json!("disabled"))),
        unknown(set(device("twin"), "/tags/floor", json!(2))),
        unknown(device("created")),
        set(
            unknown(device("x509-created")),
            "/authentication",
            json!({"type": "selfSigned"}),
        ),
    ];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    let blocked = run.blocked_ids();
    assert_eq!(blocked, ["created", "disable", "x509-created"]);
    run.assert_each_blocked_for("unknown");
    assert_eq!(
        run.line("twin").import_mode,
        Some(ImportMode::UpdateTwinIfMatchETag)
    );
    assert_eq!(run.summary.blocked, run.plan.blocked);
}

#[test]
fn crossed_key_rotations_are_blocked() {
    // The primary rotates the secondary key out, the secondary rotates the primary key out:
    // each side holds a key the other retired. No rule can pick; an operator must, even where
    // the primary already holds the preferred value.
    let base = [device("crossed")];
    let primary = [keys(device("crossed"), K[0], K[2])];
    let secondary = [keys(device("crossed"), K[3], K[1])];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let conflict = run.conflict("crossed", "authentication");
        assert_eq!(
            (conflict.rule, conflict.security),
            (Rule::RetiredCredentialUnresolved, true)
        );
        assert_eq!(run.plan.blocked.len(), 1, "{:?}", run.plan.blocked);
        assert!(run.plan.import.is_empty(), "{:?}", run.plan.import);
    }
}

#[test]
fn a_disable_of_a_device_blocked_for_its_credentials_is_written_over_the_primarys_own() {
    // IOTHUB.md: disabling is the way to block a compromised X.509 device. The secondary
    // disabled a stolen one and rotated its secondary thumbprint out (T2 to T3), while the
    // primary rotated its primary one (T1 to T4): crossed rotations, blocked for an operator,
    // and with them the disable, so the primary kept accepting T2. The disable is no
    // credential to settle: it is written now, over the credentials and twin the primary
    // holds, and the rest waits for the operator. So for a device both hubs hold and the base
    // lacks, keys rotated on the primary (blocked: the base cannot say which side changed
    // them). Over a primary exported without keys, no line can carry its own: the disable is
    // not applied, and its entry says so.
    let x509 = |v: Value, primary: &str, secondary: &str| {
        let thumbprints = json!({"primaryThumbprint": primary, "secondaryThumbprint": secondary});
        let auth = json!({"x509Thumbprint": thumbprints, "type": "selfSigned"});
        set(v, "/authentication", auth)
    };
    let stolen = |v: Value| {
        let v = set(v, "/status", json!("disabled"));
        set(v, "/statusReason", json!("stolen"))
    };
    let base = [x509(device("x509"), T1, T2), device("keyless")];
    let primary = [
        x509(device("x509"), T4, T2),
        keys(device("new"), K[0], K[2]),
        set(device("keyless"), "/authentication", Value::Null),
    ];
    let secondary = [
        stolen(set(
            x509(device("x509"), T1, T3),
            "/tags/site",
            json!("paris"),
        )),
        stolen(keys(device("new"), K[0], K[1])),
        stolen(device("keyless")),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert_eq!(run.device("x509").status.status, Status::Disabled);
        assert_eq!(
            run.blocked_ids(),
            ["keyless", "new", "x509"],
            "prefer {prefer:?}"
        );
        let blocked = run.blocked();
        assert!(blocked[0].1.contains("re-export the primary with keys"));
        assert!(
            blocked[0].1.contains("disable not applied"),
            "{}",
            blocked[0].1
        );
        assert!(run.lines("keyless").is_empty());
        for ((id, reason), (was, why)) in blocked[1..].iter().zip([
            (&primary[1], "the base has no line for it"),
            (&primary[0], "rotations"),
        ]) {
            assert!(reason.contains(why), "{id}: {reason}");
            assert!(reason.contains("the disable alone is written"), "{reason}");
            // The primary's own line, disabled: its ETag, credentials, twin and capabilities.
            let line = run.line(id);
            let was = line_of(was);
            assert_eq!(line.import_mode, Some(ImportMode::UpdateIfMatchETag));
            assert_eq!(
                (line.status, line.status_reason.as_deref()),
                (Status::Disabled, Some("stolen"))
            );
            assert_eq!(line.e_tag, was.e_tag);
            // Those its type uses: an export writes the other kind as nulls.
            let credentials = |auth: &Option<Authentication>| {
                auth.clone().map(|a| match a.kind {
                    AuthType::Sas => Authentication {
                        thumbprints: None,
                        ..a
                    },
                    _ => Authentication { keys: None, ..a },
                })
            };
            assert_eq!(
                credentials(&line.authentication),
                credentials(&was.authentication)
            );
            assert_eq!((&line.tags, &line.desired), (&was.tags, &was.desired));
            assert_eq!(
                (line.capabilities, &line.device_scope),
                (was.capabilities, &None)
            );
        }
        // Applied, the hub refuses nothing, and the next run writes nothing more: the devices
        // are still blocked for their credentials, and disabled.
        let mut hub = Hub::new(&export(&primary));
        hub.import(&run.plan.import).expect("the plan applies");
        let next = run_lines(&base, &hub.export(), &secondary, prefer);
        assert!(
            next.plan.import.is_empty(),
            "{}",
            json_lines(&next.plan.import)
        );
        assert_eq!(next.blocked_ids(), ["keyless", "new", "x509"]);
    }
}

#[test]
fn a_leaf_whose_new_gateway_the_plan_creates_waits_for_the_next_run() {
    let behind = |v: Value, gw: &str, generation: u64| {
        let scope = format!("ms-azure-iot-edge://{gw}-{generation}");
        set(v, "/deviceScope", json!(scope))
    };
    for prefer in BOTH {
        let base = [edge("gw-old", 1), behind(device("moved"), "gw-old", 1)];
        let secondary = [
            edge("gw-old", 2),
            edge("gw-new", 2),
            behind(
                set(device("moved"), "/status", json!("disabled")),
                "gw-new",
                2,
            ),
            behind(device("born"), "gw-new", 2),
        ];
        let run = merge(&base, &base, &secondary, prefer);
        let pending = shown(&run.plan.pending_parent);
        assert_eq!(pending, ["born", "moved"]);
        // Not created yet; updated (disabled) but kept behind its current gateway for now.
        assert!(run.lines("born").is_empty());
        let moved = run.line("moved");
        assert_eq!(moved.status, Status::Disabled);
        assert_eq!(
            moved.device_scope.as_deref(),
            Some("ms-azure-iot-edge://gw-old-1")
        );
        assert_eq!(run.line("gw-new").import_mode, Some(ImportMode::Create));

        // Once the import has created the gateway, the next run completes both with its scope.
        let mut hub = Hub::new(&export(&base));
        hub.import(&run.plan.import).expect("first plan");
        let primary = hub.export();
        let scope = primary
            .iter()
            .find(|l| l.key == parse_key("gw-new"))
            .and_then(|l| l.device_scope.clone())
            .expect("the hub gave gw-new a scope");
        let next = run_lines(&base, &primary, &secondary, prefer);
        assert!(next.plan.pending_parent.is_empty());
        for (id, mode) in [
            ("born", ImportMode::Create),
            ("moved", ImportMode::UpdateIfMatchETag),
        ] {
            let line = next.line(id);
            assert_eq!(
                (line.import_mode, line.device_scope.as_deref()),
                (Some(mode), Some(scope.as_str()))
            );
        }
    }
}

#[test]
fn a_module_waits_or_is_blocked_with_its_device() {
    let secondary = [
        edge("gw", 2),
        set(
            device("leaf"),
            "/deviceScope",
            json!("ms-azure-iot-edge://gw-2"),
        ),
        module("leaf", "probe"),
        set(device("keyless"), "/authentication", Value::Null),
        module("keyless", "m"),
    ];
    let run = merge(&[], &[], &secondary, Side::Secondary);
    let planned: Vec<String> = run.plan.import.iter().map(|l| l.key.to_string()).collect();
    assert_eq!(planned, ["gw"]);
    let pending = shown(&run.plan.pending_parent);
    assert_eq!(pending, ["leaf", "leaf/probe"]);
    let blocked = run.blocked_ids();
    assert_eq!(blocked, ["keyless", "keyless/m"]);
    assert!(
        run.plan.blocked[1]
            .reason
            .starts_with("its device is blocked: symmetric keys unknown")
    );
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
    assert_eq!(planned, ["gw-new", "gw-new/reader"]);
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

#[test]
fn a_full_update_over_a_primary_exported_without_keys_is_blocked() {
    // The primary, exported without keys, may have rotated any of these during the outage:
    // the merge fills its unknown keys in from the base, and a full update would write them
    // back over whatever the primary holds now. A twin update carries no credentials, a delete
    // and a create replace none the primary holds: those are written.
    let unknown = |v: Value| set(v, "/authentication", Value::Null);
    let null_keys = |v: Value| set(v, "/authentication/symmetricKey", Value::Null);
    let ids = ["disabled", "null-keys", "rekeyed", "twin", "gone"];
    let base: Vec<Value> = ids.iter().map(|id| device(id)).collect();
    let primary = [
        unknown(device("disabled")),
        null_keys(device("null-keys")),
        unknown(device("rekeyed")),
        unknown(device("twin")),
        unknown(device("gone")),
    ];
    let secondary = [
        set(device("disabled"), "/status", json!("disabled")),
        set(device("null-keys"), "/status", json!("disabled")),
        keys(device("rekeyed"), K[4], K[5]),
        set(device("twin"), "/tags/floor", json!(3)),
        device("created"),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let blocked = run.blocked_ids();
        assert_eq!(
            blocked,
            ["disabled", "null-keys", "rekeyed"],
            "prefer {prefer:?}"
        );
        run.assert_each_blocked_for("re-export the primary with keys");
        let modes = run.modes();
        assert_eq!(
            modes,
            [
                ("created".to_owned(), Some(ImportMode::Create)),
                ("gone".to_owned(), Some(ImportMode::DeleteIfMatchETag)),
                ("twin".to_owned(), Some(ImportMode::UpdateTwinIfMatchETag)),
            ],
            "prefer {prefer:?}"
        );
    }
}

#[test]
fn credentials_two_sides_hold_differently_over_a_base_exported_without_keys_are_blocked() {
    // Against unknown base keys, both sides' keys read as changes: if the real base held
    // K0/K1 and the primary rotated K0 out, the secondary still holds it (and the other way
    // round), and the preference alone would decide whether it comes back or stays. Which side
    // changed them is not in the files.
    let no_keys = |v: Value| set(v, "/authentication/symmetricKey", Value::Null);
    let ids = ["rekeyed", "agreed", "disabled", "twin"];
    let base: Vec<Value> = ids.iter().map(|id| no_keys(device(id))).collect();
    let primary = [
        keys(device("rekeyed"), K[2], K[1]),
        device("agreed"),
        device("disabled"),
        device("twin"),
    ];
    let secondary = [
        keys(device("rekeyed"), K[0], K[1]),
        device("agreed"),
        set(device("disabled"), "/status", json!("disabled")),
        set(device("twin"), "/tags/floor", json!(3)),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let blocked = run.blocked_ids();
        // Preferring the primary too: its keys may be the ones the secondary rotated out.
        assert_eq!(blocked, ["rekeyed"], "prefer {prefer:?}");
        run.assert_each_blocked_for("the base was exported without keys");
        // Where both sides agree, or only other fields changed, the device is written.
        let modes = run.modes();
        assert_eq!(
            modes,
            [
                ("disabled".to_owned(), Some(ImportMode::UpdateIfMatchETag)),
                ("twin".to_owned(), Some(ImportMode::UpdateTwinIfMatchETag)),
            ],
            "prefer {prefer:?}"
        );
    }
}

#[test]
fn credentials_two_sides_hold_differently_for_a_device_the_base_lacks_are_blocked() {
    // Created after the backup and replicated to the secondary: the base has no line for it.
    // If the primary rotated K1 out (K0/K1 to K0/K2) during the outage, the secondary still
    // holds K1, and preferring it would write K1 back; which side changed the keys is not in
    // the files, as over a base exported without keys. Devices and modules both hold alike,
    // and a device only one side holds, are written as before.
    let primary = [
        keys(device("rekeyed"), K[0], K[2]),
        device("agreed"),
        module("agreed", "m"),
    ];
    let secondary = [
        keys(device("rekeyed"), K[0], K[1]),
        set(device("agreed"), "/tags/floor", json!(3)),
        keys(module("agreed", "m"), K[2], K[3]),
        device("created"),
    ];
    for prefer in BOTH {
        let run = merge(&[], &primary, &secondary, prefer);
        assert_eq!(run.blocked_ids(), ["rekeyed"], "prefer {prefer:?}");
        run.assert_each_blocked_for("the base has no line for it");
        assert_eq!(
            run.modes(),
            [
                ("agreed".to_owned(), Some(ImportMode::UpdateTwinIfMatchETag)),
                ("created".to_owned(), Some(ImportMode::Create)),
            ],
            "prefer {prefer:?}"
        );
        // The report still shows the conflict, as the preference settled it in the merge.
        let conflict = run.conflict("rekeyed", "authentication");
        assert!(conflict.security);
    }
}

#[test]
fn a_full_update_writes_a_section_the_merge_emptied_as_empty() {
    // Whether the hub keeps a section an update leaves out is not documented: written empty,
    // it is cleared either way.
    let emptied = |v: Value| {
        let v = set(v, "/status", json!("disabled"));
        let v = set(v, "/tags", json!({}));
        set(v, "/properties/desired", json!({}))
    };
    let run = merge(
        &[device("d"), device("kept")],
        &[device("d"), device("kept")],
        &[
            emptied(device("d")),
            set(device("kept"), "/status", json!("disabled")),
        ],
        Side::Secondary,
    );
    let lines = run.lines("d");
    let text = lines[0].to_json();
    assert!(
        text.contains(r#""tags":{},"properties":{"desired":{}}"#),
        "{text}"
    );
    // Sections the merge kept are written as they are.
    let text = run.lines("kept")[0].to_json();
    assert!(text.contains(r#""tags":{"site":"berlin"}"#), "{text}");
}

#[test]
fn a_status_reason_over_iot_hubs_limit_is_refused_before_planning() {
    // The reader refuses such a reason in an export, and lift one in a line built through the
    // library: the hub would refuse the plan's line on every run.
    let [base, primary] = [0, 1].map(|_| export(&[device("long"), device("at-limit")]));
    let mut secondary = export(&rehome(&[device("long"), device("at-limit")]));
    for (line, length) in secondary.iter_mut().zip([129, 128]) {
        line.status = Status::Disabled;
        line.status_reason = Some("é".repeat(length));
    }
    let lifted = Failback::lift(&base, &primary, &secondary, Side::Secondary);
    let err = lifted.map(|_| ()).expect_err("a reason of 129 characters");
    let expected = "invalid statusReason of long in the secondary export: statusReason is 129 \
                    characters long, but IoT Hub takes at most 128";
    assert!(err.to_string().starts_with(expected), "{err}");
    // At the limit, the line is planned.
    let run = run(&base[1..], &primary[1..], &secondary[1..], Side::Secondary);
    assert!(run.plan.blocked.is_empty());
    assert_eq!(run.lines("at-limit").len(), 1);
}

#[test]
fn twin_sections_over_iot_hub_limits_are_blocked() {
    // `{"big":"x…"}` as compact JSON is the string's length plus 10 bytes.
    let big = |bytes: usize| json!({"big": "x".repeat(bytes - 10)});
    let base = [
        device("tags-at-limit"),
        device("tags-over"),
        device("tags-merged-over"),
        device("disabled-over"),
    ];
    let primary = [
        device("tags-at-limit"),
        device("tags-over"),
        set(
            device("tags-merged-over"),
            "/tags/a",
            json!("x".repeat(5000)),
        ),
        device("disabled-over"),
    ];
    let secondary = [
        set(device("tags-at-limit"), "/tags", big(8192)),
        set(device("tags-over"), "/tags", big(8193)),
        // Each side under the limit, the two together over it.
        set(
            device("tags-merged-over"),
            "/tags/b",
            json!("x".repeat(5000)),
        ),
        // A full update carries the tags too: blocked, but for its disable, written alone
        // over the primary's twin.
        set(
            set(device("disabled-over"), "/tags", big(9000)),
            "/status",
            json!("disabled"),
        ),
        set(
            device("desired-at-limit"),
            "/properties/desired",
            big(32768),
        ),
        set(device("desired-over"), "/properties/desired", big(32769)),
    ];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    let blocked = run.blocked();
    let ids: Vec<&str> = blocked.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "desired-over",
            "disabled-over",
            "tags-merged-over",
            "tags-over"
        ]
    );
    for (id, reason) in &blocked {
        assert!(reason.contains("over IoT Hub's limit"), "{id}: {reason}");
        if id == "disabled-over" {
            assert!(reason.contains("the disable alone is written"), "{reason}");
            let line = run.line(id);
            let tags = line.tags.clone().map(Value::Object);
            assert_eq!(
                (line.status, tags),
                (Status::Disabled, Some(json!({"site": "berlin"})))
            );
        } else {
            assert!(run.lines(id).is_empty(), "{id}");
        }
    }
    assert!(blocked[0].1.contains("desired properties are 32769 bytes"));
    assert!(blocked[1].1.contains("tags are 9000 bytes"));
    assert!(blocked[3].1.contains("tags are 8193 bytes"));
    assert_eq!(
        run.line("tags-at-limit").import_mode,
        Some(ImportMode::UpdateTwinIfMatchETag)
    );
    assert_eq!(
        run.line("desired-at-limit").import_mode,
        Some(ImportMode::Create)
    );
}

#[test]
fn a_leaf_takes_its_gateways_scope_from_the_gateways_own_line() {
    let behind = |v: Value, gw: &str, generation: u64| {
        let scope = format!("ms-azure-iot-edge://{gw}-{generation}");
        set(v, "/deviceScope", json!(scope))
    };
    // `a-stale` sorts before `gw` and carries a scope the gateway no longer has.
    let base = [behind(device("a-stale"), "gw", 1), edge("gw", 1)];
    let primary = [behind(device("a-stale"), "gw", 0), edge("gw", 1)];
    let secondary = [
        behind(device("a-stale"), "gw", 2),
        edge("gw", 2),
        behind(device("new-leaf"), "gw", 2),
    ];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    let own = Some("ms-azure-iot-edge://gw-1");
    assert_eq!(run.line("new-leaf").device_scope.as_deref(), own);
    let merged = |id: &str| {
        let key = parse_key(id);
        let line = run.plan.merged.iter().find(|l| l.key == key);
        line.and_then(|l| l.device_scope.clone())
    };
    assert_eq!(merged("a-stale").as_deref(), own);

    // Only where the gateway's own line has no scope is a child's line the evidence.
    let primary = [
        behind(device("a-stale"), "gw", 1),
        set(edge("gw", 1), "/deviceScope", Value::Null),
    ];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    assert_eq!(run.line("new-leaf").device_scope.as_deref(), own);
}

#[test]
fn lines_whose_etag_the_primary_export_lacks_are_blocked() {
    let base = [
        device("update"),
        device("twin"),
        device("delete"),
        device("twin-only"),
    ];
    // Absent, or empty: no hub's ETag, and a line matching it would be refused on every run.
    let empty: fn(Value, &str) -> Value = |v, field| set(v, &format!("/{field}"), json!(""));
    for lacking in [without as fn(Value, &str) -> Value, empty] {
        let primary = [
            lacking(device("update"), "eTag"),
            lacking(device("twin"), "twinETag"),
            lacking(device("delete"), "eTag"),
            // A twin update needs the twinETag alone.
            lacking(device("twin-only"), "eTag"),
        ];
        let secondary = [
            set(device("update"), "/status", json!("disabled")),
            set(device("twin"), "/tags/floor", json!(2)),
            set(device("twin-only"), "/tags/floor", json!(2)),
        ];
        let run = merge(&base, &primary, &secondary, Side::Secondary);
        let blocked = run.blocked();
        let ids: Vec<&str> = blocked.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["delete", "twin", "update"]);
        for (id, reason) in &blocked {
            assert!(run.lines(id).is_empty(), "{id}");
            assert!(reason.contains("re-export the primary"), "{id}: {reason}");
        }
        assert!(blocked[0].1.contains("deletes it") && blocked[0].1.contains("eTag"));
        let twin = &blocked[1].1;
        assert!(twin.contains("no twinETag") && twin.contains("updateTwinIfMatchETag"));
        assert!(blocked[2].1.contains("no eTag") && blocked[2].1.contains("updateIfMatchETag"));
        assert!(
            run.live("delete").is_none(),
            "still deleted in the merged registry"
        );
        let line = run.line("twin-only");
        assert_eq!(
            (line.import_mode, line.twin_e_tag.as_deref()),
            (Some(ImportMode::UpdateTwinIfMatchETag), Some("t-twin-only"))
        );
    }
}

/// `(id, moduleId)` in byte order, a device before its modules.
fn sort_key(key: &DeviceKey) -> (String, Option<String>) {
    (
        key.device.as_str().to_owned(),
        key.module.as_ref().map(|m| m.as_str().to_owned()),
    )
}

fn assert_sorted(what: &str, keys: &[DeviceKey]) {
    for pair in keys.windows(2) {
        assert!(
            sort_key(&pair[0]) < sort_key(&pair[1]),
            "{what}: {} before {}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn outputs_are_sorted_by_id_then_module_id() {
    let [b, p, s] = shipped();
    let generated = Generate {
        devices: 300,
        seed: 11,
    }
    .run();
    for run in [
        run(&b, &p, &s, Side::Secondary),
        run(
            &generated.base,
            &generated.primary,
            &generated.secondary,
            Side::Primary,
        ),
    ] {
        let keys = |lines: &[ExportLine]| lines.iter().map(|l| l.key.clone()).collect::<Vec<_>>();
        assert_sorted("merged", &keys(&run.plan.merged));
        assert_sorted("import", &keys(&run.plan.import));
        assert_sorted(
            "blocked",
            &run.plan
                .blocked
                .iter()
                .map(|b| b.key.clone())
                .collect::<Vec<_>>(),
        );
        assert_sorted("system modules", &run.plan.system_modules);
        assert_sorted("pending", &run.plan.pending_parent);
        let conflicts: Vec<_> = run
            .summary
            .conflicts
            .iter()
            .map(|c| (sort_key(&c.key), c.field.clone()))
            .collect();
        assert!(
            conflicts.windows(2).all(|w| w[0] < w[1]),
            "conflicts unsorted: {conflicts:?}"
        );
        assert!(
            run.plan.merged.iter().all(|l| l.import_mode.is_none()),
            "importMode in merged"
        );
    }
}

#[test]
fn secrets_never_appear_in_the_report() {
    let mut triples = vec![shipped()];
    // Seed 10 holds an authentication conflict on an X.509 device, whose values the report
    // shows with their thumbprints beside the keys' fingerprints.
    for seed in [1, 2, 3, 10] {
        let g = Generate { devices: 300, seed }.run();
        triples.push([g.base, g.primary, g.secondary]);
    }
    let mut thumbprints_shown = false;
    for [b, p, s] in &triples {
        let all: Vec<ExportLine> = b.iter().chain(p).chain(s).cloned().collect();
        let secrets = secrets(&all);
        assert!(secrets.len() > 20, "the inputs hold keys");
        for prefer in BOTH {
            let run = run(b, p, s, prefer);
            assert!(
                run.summary.security_conflicts() > 0,
                "the data has security conflicts to show"
            );
            let report = run.report_json().to_ascii_lowercase();
            thumbprints_shown |= report.contains("thumbprints=[");
            for secret in &secrets {
                assert!(
                    !report.contains(&secret.to_ascii_lowercase()),
                    "a secret (fingerprint {}) is in the report",
                    failback::Fingerprint::of(secret)
                );
            }
        }
    }
    assert!(
        thumbprints_shown,
        "no conflict over an X.509 device's credentials reached"
    );
}

/// A plan's summary is the tool's report of the same failback, whichever way the plan was
/// made: the plan carries what the report says of its failback (the preferred side, the
/// conflicts a delete won, writes refused as stale, credentials the exports left out), so
/// `Summary::new` has no failback to be handed apart. Review 58: it took one beside the plan,
/// and a plan of another failback (its own docs used `Plan::default()`) gave a partial report
/// without a word, 2 conflicts, none blocked and no device merged where the tool reports 9, 2
/// and 37.
#[test]
fn a_plans_summary_is_the_tools_report_of_its_failback() {
    let exports = shipped_paths().map(|path| match read_export(&path) {
        Ok(export) => export,
        Err(err) => panic!("shipped data must read: {err}"),
    });
    let [b, p, s] = &exports;
    let failback = match Failback::lift(&b.lines, &p.lines, &s.lines, Side::Secondary) {
        Ok(failback) => failback,
        Err(err) => panic!("lift: {err}"),
    };
    let inputs = exports.each_ref().map(|export| InputStats {
        devices: export.lines.len() as u64,
        skipped: export.skipped,
    });
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.json");
    let golden = std::fs::read_to_string(&golden).expect("tests/golden/report.json");
    let streamed = Plan::stream_json(&failback, |_| Ok(())).expect("a sink that never fails");
    for plan in [Plan::new(&failback), streamed] {
        let summary = Summary::new(&plan, inputs);
        assert_eq!(
            (summary.conflicts.len(), summary.blocked.len()),
            (9, 2),
            "the shipped data's conflicts and blocked devices"
        );
        assert_eq!(summary.merged_devices, 37);
        let report = serde_json::to_string_pretty(&summary).expect("serializable") + "\n";
        assert!(
            report == golden,
            "the summary differs from the tool's report.json"
        );
    }
}

#[test]
fn merged_and_import_lines_read_back_as_export_lines() {
    // Both files are in export format: every line must pass the strict reader unchanged, or a
    // merged registry could not be the input of the next failback, nor the plan an import.
    let mut triples = vec![shipped()];
    let g = Generate {
        devices: 300,
        seed: 9,
    }
    .run();
    triples.push([g.base, g.primary, g.secondary]);
    for [b, p, s] in &triples {
        for prefer in BOTH {
            let run = run(b, p, s, prefer);
            for line in run.plan.merged.iter().chain(&run.plan.import) {
                let text = line.to_json();
                match parse_line("out.jsonl".as_ref(), 1, &text) {
                    Ok(Parsed::Device(read)) => assert_eq!(read.to_json(), text),
                    other => panic!("{text}\nreads back as {other:?}"),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The import simulator is itself checked: it must refuse what IoT Hub refuses.

#[test]
fn simulator_refuses_what_iot_hub_refuses() {
    let primary = export(&[device("a"), edge("gw", 7), module("gw", "$edgeAgent")]);
    let line = |v: Value, mode: &str| {
        let mut l = import(&[set(v, "/importMode", json!(mode))]).remove(0);
        l.reported = None;
        l
    };
    let refused = [
        line(device("a"), "create"),
        line(
            set(device("a"), "/eTag", json!("stale")),
            "updateIfMatchETag",
        ),
        line(
            set(device("a"), "/twinETag", json!("stale")),
            "updateTwinIfMatchETag",
        ),
        line(
            set(device("a"), "/eTag", json!("stale")),
            "deleteIfMatchETag",
        ),
        line(device("missing"), "updateIfMatchETag"),
        line(set(device("b"), "/authentication", Value::Null), "create"),
        line(module("gw", "$edgeHub"), "create"),
        line(module("nobody", "reader"), "create"),
        line(
            set(
                device("b"),
                "/deviceScope",
                json!("ms-azure-iot-edge://gw-8"),
            ),
            "create",
        ),
        line(device("a"), "createOrUpdate"),
        import(&[set(device("c"), "/importMode", json!("create"))]).remove(0), // writes reported
    ];
    for bad in refused {
        let mut hub = Hub::new(&primary);
        assert!(hub.apply(&bad).is_err(), "accepted {}", bad.to_json());
    }
    // Accepted: a leaf created behind the hub's own scope; deleting a device takes its modules.
    let mut hub = Hub::new(&primary);
    let leaf = line(
        set(
            device("leaf"),
            "/deviceScope",
            json!("ms-azure-iot-edge://gw-7"),
        ),
        "create",
    );
    hub.apply(&leaf).expect("a leaf behind an existing gateway");
    hub.apply(&line(edge("gw", 7), "deleteIfMatchETag"))
        .expect("delete");
    let left: Vec<String> = hub.export().iter().map(|l| l.key.to_string()).collect();
    assert_eq!(left, ["a", "leaf"]);

    // A gateway the export gives no capabilities and no scope, named by a leaf's scope: that
    // scope is its own, and only that one, while it exists.
    let behind = |v: Value, scope: &str| set(v, "/deviceScope", json!(scope));
    let undescribed = export(&[
        device("a"),
        without(device("u"), "capabilities"),
        behind(device("v"), "ms-azure-iot-edge://u-3"),
    ]);
    let refused = [
        line(behind(device("b"), "ms-azure-iot-edge://u-4"), "create"),
        line(behind(device("b"), "ms-azure-iot-edge://a-3"), "create"),
    ];
    for bad in refused {
        let mut hub = Hub::new(&undescribed);
        assert!(hub.apply(&bad).is_err(), "accepted {}", bad.to_json());
    }
    let mut hub = Hub::new(&undescribed);
    let leaf = line(behind(device("b"), "ms-azure-iot-edge://u-3"), "create");
    hub.apply(&leaf)
        .expect("a leaf behind a gateway its export does not describe");
    hub.apply(&line(
        without(device("u"), "capabilities"),
        "deleteIfMatchETag",
    ))
    .expect("delete");
    let kept = behind(
        set(device("v"), "/eTag", json!("e-v")),
        "ms-azure-iot-edge://u-3",
    );
    let kept = line(set(kept, "/status", json!("disabled")), "updateIfMatchETag");
    let refusal = hub.apply(&kept).expect_err("a scope of a deleted gateway");
    assert!(refusal.contains("deviceScope"), "{refusal}");
}

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

#[test]
fn leaves_wait_only_for_a_gateway_whose_line_this_plan_writes() {
    // A gateway plain in the primary, made an edge device by the secondary, gets a full update;
    // where a check blocks it, no scope comes, and its leaves waited on every run.
    let behind_new = |v: Value| set(v, "/deviceScope", json!("ms-azure-iot-edge://gw-900"));
    let unknown = |v: Value| set(v, "/authentication", Value::Null);
    // The primary's gateway line has no eTag: updateIfMatchETag cannot be written. The leaf
    // exists: it keeps its place, listed as one whose parent no line carries.
    let base = [device("gw"), device("leaf")];
    let primary = [without(device("gw"), "eTag"), device("leaf")];
    let secondary = [edge("gw", 900), behind_new(device("leaf"))];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert_eq!(run.blocked_ids(), ["gw"], "prefer {prefer:?}");
        assert!(run.plan.import.is_empty(), "{:?}", run.plan.import);
        assert!(run.plan.pending_parent.is_empty(), "prefer {prefer:?}");
        let unwritable = shown(&run.plan.parent_unwritable);
        assert_eq!(unwritable, ["leaf"], "prefer {prefer:?}");
        assert_eq!(run.summary.parent_unwritable, run.plan.parent_unwritable);
    }

    // The primary exported the gateway without keys: a full update would restore the base's.
    // The new leaf and its module are blocked with it, as behind a new gateway the plan blocks.
    let base = [device("gw")];
    let primary = [unknown(device("gw"))];
    let secondary = [
        edge("gw", 900),
        behind_new(device("leaf")),
        module("leaf", "m"),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert_eq!(
            run.blocked_ids(),
            ["gw", "leaf", "leaf/m"],
            "prefer {prefer:?}"
        );
        assert!(run.plan.pending_parent.is_empty(), "prefer {prefer:?}");
        assert!(run.plan.import.is_empty(), "{:?}", run.plan.import);
        for id in ["leaf", "leaf/m"] {
            let reason = run
                .blocked()
                .into_iter()
                .find(|(b, _)| b == id)
                .map(|(_, r)| r);
            assert!(
                reason.is_some_and(|r| r.contains("its edge parent \"gw\" is blocked")),
                "{id}: {reason:?}"
            );
        }
    }

    // With its eTag and keys, the update is written and the leaves wait for its scope.
    let primary = [device("gw")];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    let pending = shown(&run.plan.pending_parent);
    assert_eq!(pending, ["leaf", "leaf/m"]);
    assert_eq!(
        run.line("gw").import_mode,
        Some(ImportMode::UpdateIfMatchETag)
    );
}

/// The mass-delete guard is the library's, for a service running a failback to apply as the
/// tool does under `--max-deletes` (review 58: the rule lived in the tool alone). The shipped
/// data passes the tool's default of 10%; its secondary cut short to a quarter of its lines
/// reads as most of the hub deleted there, and is refused with the counts; a limit at the
/// share refused passes, a limit of 0 refuses any delete.
#[test]
fn a_plan_deleting_more_of_the_primary_than_a_limit_allows_is_named_with_its_counts() {
    let [b, p, s] = shipped_paths().map(|path| match read_export(&path) {
        Ok(export) => export,
        Err(err) => panic!("shipped data must read: {err}"),
    });
    let counts = |secondary: &[ExportLine]| {
        let failback = Failback::lift(&b.lines, &p.lines, secondary, Side::Secondary)
            .unwrap_or_else(|err| panic!("lift: {err}"));
        PlanCounts::of(&Plan::new(&failback))
    };
    let primary_lines = p.stats().devices;
    let whole = counts(&s.lines);
    assert!(whole.delete > 0, "the shipped data deletes");
    assert_eq!(whole.deletes_beyond(primary_lines, 10.0), None);
    let refusal = whole
        .deletes_beyond(primary_lines, 0.0)
        .expect("0% allows no delete");
    assert_eq!(
        (refusal.deletes, refusal.primary_lines, refusal.limit),
        (whole.delete, primary_lines, 0.0)
    );

    // A secondary export cut short: its devices' lines up to a quarter, modules with them.
    let kept: Vec<ExportLine> = s.lines[..s.lines.len() / 4].to_vec();
    let cut = counts(&kept);
    let refusal = cut
        .deletes_beyond(primary_lines, 10.0)
        .expect("a cut-short export reads as a mass delete");
    let share = cut.delete as f64 * 100.0 / primary_lines as f64;
    assert!(share > 10.0, "{share}");
    assert_eq!(
        (
            refusal.deletes,
            refusal.primary_lines,
            refusal.share,
            refusal.limit
        ),
        (cut.delete, primary_lines, share, 10.0)
    );
    assert_eq!(
        refusal.to_string(),
        format!(
            "the plan deletes {} of the primary's {primary_lines} devices and modules ({share:.1}%), \
             more than the 10% allowed",
            cut.delete
        )
    );
    // At the limit it passes: more than the limit is refused, not as much.
    assert_eq!(cut.deletes_beyond(primary_lines, refusal.share), None);
    // Nothing deleted is never refused, whatever the limit.
    assert_eq!(
        PlanCounts::default().deletes_beyond(primary_lines, 0.0),
        None
    );
}
