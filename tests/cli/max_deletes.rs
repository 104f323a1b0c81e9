//! `--max-deletes`: a plan deleting more of the primary than the percentage allows is refused
//! with exit 2 and its counts, leaving no output; the shipped data passes the default, and a
//! value outside 0 to 100 is a usage error.

use std::fs;
use std::path::Path;

use super::*;

/// Keeps the first `keep` device lines of the export at `path` (its module lines and hub
/// warnings dropped): an export cut short, or filtered, reads as every other device deleted.
fn keep_first_devices(path: &Path, keep: usize) {
    let text = read(path);
    let kept: String = text
        .lines()
        .filter(|l| l.contains(r#""id""#) && !l.contains(r#""moduleId""#))
        .take(keep)
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(path, kept).expect("write the cut export");
}

/// The report's `plan.delete` and the primary's lines (`inputs[1].devices`).
fn deletes_and_primary_lines(out: &Path) -> (u64, u64) {
    let report: serde_json::Value =
        serde_json::from_str(&read(&out.join("report.json"))).expect("report.json is JSON");
    let count = |value: &serde_json::Value| value.as_u64().expect("a count");
    (
        count(&report["plan"]["delete"]),
        count(&report["inputs"][1]["devices"]),
    )
}

/// A secondary export missing most devices (cut short, filtered, another hub's) plans a
/// `deleteIfMatchETag` line for each: refused with exit 2 and the counts, leaving no output
/// (an earlier run's removed too); accepted once `--max-deletes` is raised past the share.
#[test]
fn a_plan_deleting_more_than_max_deletes_is_refused_and_leaves_no_output() {
    let scratch = Scratch::new("max-deletes");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    // An earlier run's outputs, which the refused run must not leave behind.
    assert_exit(&merge(&inputs, &out, &[]), 0);
    keep_first_devices(&inputs[2], 5);

    let refused = merge(&inputs, &out, &[]);
    assert_exit(&refused, 2);
    assert!(stdout(&refused).is_empty(), "{}", stdout(&refused));
    let left: Vec<_> = fs::read_dir(&out)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");

    // The same inputs, the guard raised: the deletes are written.
    let accepted = merge(&inputs, &out, &["--max-deletes", "100"]);
    assert_exit(&accepted, 0);
    let (deletes, primary) = deletes_and_primary_lines(&out);
    assert!(deletes * 10 > primary, "{deletes} of {primary}: too few");
    let import = read(&out.join("import.jsonl"));
    let delete_lines = import
        .lines()
        .filter(|l| l.contains(r#""importMode":"deleteIfMatchETag""#))
        .count() as u64;
    assert_eq!(delete_lines, deletes, "{import}");
    // The refusal names both counts, the share and the limit.
    let share = format!("{:.1}%", deletes as f64 * 100.0 / primary as f64);
    for needle in [
        format!("deletes {deletes} of the primary's {primary} devices and modules ({share})"),
        "--max-deletes 10%".into(),
        "secondary's export is complete".into(),
    ] {
        assert_stderr_contains(&refused, &needle);
    }

    // A limit just under the share refuses, one at it accepts: more than the limit is refused.
    let at = format!("{}", deletes as f64 * 100.0 / primary as f64);
    let under = format!("{}", (deletes as f64 - 0.5) * 100.0 / primary as f64);
    assert_exit(&merge(&inputs, &out, &["--max-deletes", &under]), 2);
    assert!(!out.join("report.json").exists());
    assert_exit(&merge(&inputs, &out, &["--max-deletes", &at]), 0);
    assert_eq!(deletes_and_primary_lines(&out), (deletes, primary));
}

/// The shipped triple deletes 2 of the primary's 32 lines: under the default, and refused
/// under `--max-deletes 0`, which allows none.
#[test]
fn the_shipped_data_passes_the_default_max_deletes_and_zero_refuses_any_delete() {
    let scratch = Scratch::new("max-deletes-shipped");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    assert_exit(&merge(&inputs, &out, &[]), 0);
    assert_eq!(deletes_and_primary_lines(&out), (2, 32));
    let none = merge(&inputs, &out, &["--max-deletes", "0"]);
    assert_exit(&none, 2);
    assert_stderr_contains(&none, "deletes 2 of the primary's 32 devices and modules (");
    assert_stderr_contains(&none, "--max-deletes 0%");
    for name in OUTPUTS {
        assert!(!out.join(name).exists(), "{name} left behind");
    }
}

/// `--max-deletes` is a percentage: negative, over 100, not a number or NaN is a usage error.
#[test]
fn max_deletes_outside_0_to_100_is_a_usage_error() {
    let scratch = Scratch::new("max-deletes-usage");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    for bad in ["-1", "100.5", "101", "NaN", "inf", "ten", ""] {
        let output = merge(&inputs, &out, &["--max-deletes", bad]);
        assert_exit(&output, 1);
        assert_stderr_contains(&output, "--max-deletes");
        assert!(!out.exists(), "{bad:?}: wrote output");
    }
}
