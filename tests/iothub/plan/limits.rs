//! Limits: a status reason or twin section over IoT Hub's limits is refused before planning or
//! blocked, as the hub would refuse its line on every run; a plan deleting more of the primary
//! than a limit allows is named with its counts.

use failback::Status;
use failback::iothub::{ExportLine, ImportMode, PlanCounts, Side, read_export};
use serde_json::{Value, json};

use crate::data::shipped_paths;
use crate::*;

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
