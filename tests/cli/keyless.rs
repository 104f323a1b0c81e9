//! Exports without keys: a warning per input on stderr, with counts and never a key, saying
//! what the plan does with those devices; exports holding every key give none.

use std::fs;
use std::path::Path;

use crate::data::shipped_paths;

use super::*;

/// The warning's opening for `input` exported without keys for `count` lines.
fn keyless_warning(input: &str, count: u64) -> String {
    format!(
        "failback: warning: the {input} was exported without keys for {count} of its device and \
         module lines"
    )
}

/// The shipped secondary holds two lines without keys (`keys-excluded-secondary`,
/// `created-keys-unknown`): a rotation there cannot be seen, and the tool says so on stderr,
/// with counts and never a key; stdout and the outputs stay as the golden files hold them.
#[test]
fn a_secondary_exported_without_keys_is_warned_of() {
    let scratch = Scratch::new("keyless-secondary");
    let out = scratch.path("out");
    let output = merge(&shipped_paths(), &out, &[]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    assert!(err.starts_with(&keyless_warning("secondary", 2)), "{err}");
    for needle in [
        "rotation made on the secondary",
        "cannot be seen",
        "the primary keeps its own credentials",
        "export the secondary again with keys",
    ] {
        assert_stderr_contains(&output, needle);
    }
    // One warning, for the secondary only: the base and the primary hold their keys.
    assert_eq!(err.lines().count(), 1, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&read(&out.join("report.json"))).expect("JSON");
    assert_eq!(report["credentialsUnknown"], serde_json::json!([0, 0, 2]));
    let all: Vec<_> = data::shipped().into_iter().flatten().collect();
    for secret in data::secrets(&all) {
        assert!(!err.contains(&secret), "a key on stderr");
    }
}

/// A base or a primary exported without keys is warned of too, saying what the plan does with
/// those devices: blocked where their credentials would be needed.
#[test]
fn a_base_or_primary_exported_without_keys_is_warned_of() {
    let scratch = Scratch::new("keyless-base-primary");
    let inputs = scratch.shipped();
    // `rekeyed-on-secondary` without keys in the base, `thermostat-001` and `thermostat-002`
    // in the primary.
    let strip = |path: &Path, ids: &[&str]| {
        let text: String = read(path)
            .lines()
            .map(|line| {
                let ours = ids
                    .iter()
                    .any(|id| line.starts_with(&format!(r#"{{"id":"{id}","#)));
                let mut line: serde_json::Value = serde_json::from_str(line).expect("JSON");
                if ours {
                    line["authentication"] = serde_json::Value::Null;
                }
                format!("{line}\n")
            })
            .collect();
        fs::write(path, text).expect("write");
    };
    strip(&inputs[0], &["rekeyed-on-secondary"]);
    strip(&inputs[1], &["thermostat-001", "thermostat-002"]);
    let out = scratch.path("out");
    let output = merge(&inputs, &out, &[]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with(&keyless_warning("base", 1)), "{err}");
    assert!(lines[0].contains("is blocked"), "{err}");
    assert!(
        lines[1].starts_with(&keyless_warning("primary", 2)),
        "{err}"
    );
    assert!(lines[1].contains("is blocked"), "{err}");
    assert!(
        lines[2].starts_with(&keyless_warning("secondary", 2)),
        "{err}"
    );
}

/// Exports that hold every key give no warning: stderr stays empty.
#[test]
fn exports_with_every_key_give_no_warning() {
    let scratch = Scratch::new("keyed");
    let data = scratch.path("data");
    assert_exit(&generate("300", Some("3"), &data), 0);
    let inputs = ["base.jsonl", "primary.jsonl", "secondary.jsonl"].map(|n| data.join(n));
    let output = merge(&inputs, &scratch.path("out"), &[]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let report: serde_json::Value =
        serde_json::from_str(&read(&scratch.path("out").join("report.json"))).expect("JSON");
    assert_eq!(report["credentialsUnknown"], serde_json::json!([0, 0, 0]));
}
