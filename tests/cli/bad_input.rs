//! Bad input: exit 2 with `FILE:LINE:COLUMN: message`, and no output written; malformed
//! lines of every kind, a device twice in one export, a missing input, and an empty export
//! not declared so.

use std::fs;
use std::path::Path;
use std::process::Output;

use super::*;

/// The 1-based byte column of the first `needle` in `text`.
fn column(text: &str, needle: &str) -> usize {
    text.find(needle).expect("needle in text") + 1
}

struct Malformed {
    what: &'static str,
    line: String,
    column: usize,
    message: &'static str,
}

fn malformed_lines() -> Vec<Malformed> {
    let key = "ZmFpbGJhY2sta2V5LTAwMQ==";
    let bad_key = format!(
        r#"{{"id":"short-key","status":"enabled","authentication":{{"symmetricKey":{{"primaryKey":"{key}","secondaryKey":"c2VjcmV0"}},"type":"sas"}}}}"#
    );
    let bad_thumbprint = r#"{"id":"cam","status":"enabled","authentication":{"x509Thumbprint":{"primaryThumbprint":"XYZ0123456789ABCDEF0123456789ABCDEF01234","secondaryThumbprint":null},"type":"selfSigned"}}"#;
    let unknown_status = r#"{"id":"s","status":"active"}"#;
    let duplicate = r#"{"id":"dup","status":"enabled","status":"disabled"}"#;
    let invalid_json = r#"{"id":"j","status":"enabled",}"#;
    let bad_id = r#"{"id":"has space","status":"enabled"}"#;
    let long = format!(
        r#"{{"id":"long","status":"enabled","tags":{{"x":"{}"}}}}"#,
        "a".repeat(1 << 20)
    );
    let deep = format!(
        r#"{{"id":"deep","status":"enabled","tags":{{"x":{}{}}}}}"#,
        "[".repeat(63),
        "]".repeat(63)
    );
    vec![
        Malformed {
            what: "a key of 8 bytes",
            column: column(&bad_key, r#""c2VjcmV0""#),
            line: bad_key,
            message: "invalid authentication.symmetricKey.secondaryKey",
        },
        Malformed {
            what: "a thumbprint that is not hex",
            column: column(bad_thumbprint, r#""XYZ"#),
            line: bad_thumbprint.into(),
            message: "invalid authentication.x509Thumbprint.primaryThumbprint",
        },
        Malformed {
            what: "an unknown status",
            column: column(unknown_status, r#""active""#),
            line: unknown_status.into(),
            message: "status",
        },
        Malformed {
            what: "a duplicate security key",
            column: duplicate.rfind(r#""status""#).expect("second status") + 1,
            line: duplicate.into(),
            message: r#"duplicate key "status""#,
        },
        Malformed {
            what: "invalid JSON",
            column: invalid_json.len(),
            line: invalid_json.into(),
            message: "invalid JSON",
        },
        Malformed {
            what: "an id against the rules",
            column: column(bad_id, r#""has space""#),
            line: bad_id.into(),
            message: "invalid device id",
        },
        Malformed {
            what: "a line over 1 MiB",
            column: (1 << 20) + 1,
            line: long,
            message: "longer than 1048576 bytes",
        },
        Malformed {
            what: "nesting deeper than 64",
            // The line is level 1, tags 2, so the 63rd bracket opens level 65.
            column: column(&deep, "[") + 62,
            line: deep,
            message: "deeper than 64 levels",
        },
    ]
}

#[track_caller]
fn assert_bad_input(output: &Output, file: &Path, line: usize, column: usize, message: &str) {
    assert_exit(output, 2);
    let err = stderr(output);
    let prefix = format!("{}:{line}:{column}: ", file.display());
    assert!(
        err.starts_with(&prefix),
        "expected stderr to start with {prefix:?}, got {err:?}"
    );
    assert!(err.contains(message), "expected {message:?} in {err:?}");
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(stdout(output).is_empty(), "stdout: {}", stdout(output));
}

/// `text`'s lines with `bad` inserted as line `at` (1-based).
fn with_line(text: &str, bad: &str, at: usize) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(at - 1, bad);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn malformed_input_exits_2_at_its_line_and_column_and_writes_nothing() {
    for case in malformed_lines() {
        // In the primary with no out dir (it stays absent), then in the secondary with an
        // existing, empty out dir (it stays empty).
        for (input, at, existing) in [(1, 3, false), (2, 20, true)] {
            let scratch = Scratch::new("malformed");
            let inputs = scratch.shipped();
            let text = with_line(&read(&inputs[input]), &case.line, at);
            fs::write(&inputs[input], text).expect("write");
            let out = scratch.path("out");
            if existing {
                fs::create_dir_all(&out).expect("out dir");
            }
            let output = merge(&inputs, &out, &[]);
            assert_bad_input(&output, &inputs[input], at, case.column, case.message);
            if existing {
                let left = fs::read_dir(&out).expect("out dir").count();
                assert_eq!(left, 0, "{}: something was written", case.what);
            } else {
                assert!(!out.exists(), "{}: the out dir was created", case.what);
            }
        }
    }
}

#[test]
fn parse_counts_each_files_lines_and_stops_at_a_malformed_one() {
    let scratch = Scratch::new("parse");
    let inputs = scratch.shipped();
    let output = failback([
        "parse".as_ref(),
        inputs[0].as_os_str(),
        inputs[2].as_os_str(),
    ]);
    assert_exit(&output, 0);
    // The counts merge reads from the same files (its report's `inputs`).
    let out = scratch.path("out");
    assert_exit(&merge(&inputs, &out, &[]), 0);
    let report: serde_json::Value =
        serde_json::from_str(&read(&out.join("report.json"))).expect("a JSON report");
    let expected: String = [0, 2]
        .iter()
        .map(|&i| {
            let counts = &report["inputs"][i];
            format!(
                "{}: {} device lines ({} hub warnings skipped)\n",
                inputs[i].display(),
                counts["devices"],
                counts["skipped"]
            )
        })
        .collect();
    assert_eq!(stdout(&output), expected);

    let case = &malformed_lines()[0];
    let text = with_line(&read(&inputs[1]), &case.line, 4);
    fs::write(&inputs[1], text).expect("write");
    let output = failback([
        "parse".as_ref(),
        inputs[0].as_os_str(),
        inputs[1].as_os_str(),
    ]);
    assert_bad_input(&output, &inputs[1], 4, case.column, case.message);
    let output = failback(["parse"]);
    assert_exit(&output, 1);
}

#[test]
fn a_device_twice_in_one_export_exits_2_at_its_second_line() {
    let scratch = Scratch::new("twice");
    let inputs = scratch.shipped();
    let text = read(&inputs[2]);
    let lines: Vec<&str> = text.lines().collect();
    // Line 1 again as line 6, and a module line again as the last line.
    let mut twice = lines.clone();
    twice.insert(5, lines[0]);
    fs::write(&inputs[2], twice.join("\n") + "\n").expect("write");
    let out = scratch.path("out");
    let output = merge(&inputs, &out, &[]);
    assert_bad_input(
        &output,
        &inputs[2],
        6,
        1,
        "appears twice in this export (first at line 1)",
    );
    assert!(!out.exists());

    let module = lines
        .iter()
        .position(|l| l.contains(r#""moduleId""#))
        .expect("a module line");
    let mut twice = lines.clone();
    twice.push(lines[module]);
    fs::write(&inputs[2], twice.join("\n") + "\n").expect("write");
    let output = merge(&inputs, &out, &[]);
    assert_bad_input(
        &output,
        &inputs[2],
        twice.len(),
        1,
        &format!("first at line {}", module + 1),
    );
    assert!(!out.exists());
}

#[test]
fn a_missing_input_exits_2_and_writes_nothing() {
    let scratch = Scratch::new("missing");
    let mut inputs = scratch.shipped();
    inputs[0] = scratch.path("nope.jsonl");
    let out = scratch.path("out");
    let output = merge(&inputs, &out, &[]);
    assert_exit(&output, 2);
    assert_stderr_contains(&output, "nope.jsonl");
    assert!(!out.exists());
}

/// A primary recreated empty after the disaster, with an empty base: refused unless both are
/// declared empty, and then every device of the secondary is created.
#[test]
fn an_empty_export_is_merged_only_when_declared_so() {
    let scratch = Scratch::new("allow-empty");
    let inputs = scratch.shipped();
    for empty in &inputs[..2] {
        fs::write(empty, "").expect("empty the export");
    }
    let out = scratch.path("out");
    let refused = merge(&inputs, &out, &[]);
    assert_exit(&refused, 2);
    assert_stderr_contains(&refused, "base.jsonl:1:1: no device lines");
    let one = merge(&inputs, &out, &["--allow-empty", "base"]);
    assert_exit(&one, 2);
    assert_stderr_contains(&one, "primary.jsonl:1:1: no device lines");
    let both = ["--allow-empty", "base", "--allow-empty", "primary"];
    assert_exit(&merge(&inputs, &out, &both), 0);
    let secondary = fs::read_to_string(&inputs[2]).expect("read");
    let devices = secondary.lines().filter(|l| l.contains("\"id\"")).count();
    let import = fs::read_to_string(out.join("import.jsonl")).expect("read");
    assert!(
        import
            .lines()
            .all(|l| l.contains(r#""importMode":"create""#)),
        "{import}"
    );
    // Every device and module is created but those the plan may not write yet or at all.
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("report.json")).expect("read"))
            .expect("json");
    let listed = |name: &str| report[name].as_array().map_or(0, Vec::len);
    let left_out = listed("blocked") + listed("systemModules") + listed("pendingParent");
    assert_eq!(import.lines().count() + left_out, devices, "{report}");
}
