//! Which line the plan writes, with which mode and ETags (none it lacks: a line matching an
//! ETag the primary's export lacks is blocked), sections the merge emptied written empty,
//! outputs sorted by id then module id, and every line reading back as an export line.

use failback::iothub::{ExportLine, Generate, ImportMode, Parsed, Side, parse_line};
use failback::{DeviceKey, Status};
use serde_json::{Value, json};

use crate::data::shipped;
use crate::*;

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
