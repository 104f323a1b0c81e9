//! `merge --fingerprint-key FILE` shows the values report.json hides by their HMAC-SHA-256
//! under the file's bytes, the same on every run; `fingerprint` prints the one a value shows.
//! Without a key those values show as `<hidden>`, never by a plain fingerprint, which a
//! dictionary reverses for a password (review 70).

use std::fs;
use std::io::Write;
use std::process::Stdio;

use failback::{Fingerprint, FingerprintKey};

use super::*;

/// A device whose Wi-Fi password each hub changed during the outage.
const PASSWORDS: [&str; 3] = ["base-wifi-pass", "primary-wifi-pass", "secondary-wifi-pass"];

/// Writes the three exports, each holding `d` with its password, and returns their paths.
fn exports(scratch: &Scratch) -> [PathBuf; 3] {
    let names = ["base.jsonl", "primary.jsonl", "secondary.jsonl"];
    let paths = names.map(|name| scratch.path(name));
    for ((path, password), side) in paths.iter().zip(PASSWORDS).zip(["b", "p", "s"]) {
        let line = format!(
            r#"{{"id":"d","eTag":"e-{side}","twinETag":"t-{side}","status":"enabled","properties":{{"desired":{{"wifi":{{"password":"{password}"}}}}}}}}"#
        );
        fs::write(path, format!("{line}\n")).expect("writes");
    }
    paths
}

/// The report's values of the password conflict, primary's first.
fn password_values(out: &Path) -> Vec<String> {
    let report: serde_json::Value =
        serde_json::from_str(&read(&out.join("report.json"))).expect("JSON");
    let conflicts = report["conflicts"].as_array().expect("a list");
    let conflict = conflicts
        .iter()
        .find(|c| c["field"] == "properties.desired.wifi.password")
        .unwrap_or_else(|| panic!("no password conflict: {report}"));
    let values = conflict["values"].as_array().expect("a list");
    values
        .iter()
        .map(|v| v["value"].as_str().expect("text").to_owned())
        .collect()
}

/// Runs `fingerprint --fingerprint-key KEY` with `value` on stdin.
fn fingerprint_of(key: &Path, value: &str) -> Output {
    fingerprint_with(key, &[], value)
}

/// Runs `fingerprint --fingerprint-key KEY ARGS…` with `value` on stdin.
fn fingerprint_with(key: &Path, args: &[&str], value: &str) -> Output {
    let mut child = Command::new(tool())
        .arg("fingerprint")
        .arg("--fingerprint-key")
        .arg(key)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool runs");
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(value.as_bytes()).expect("writes");
    drop(stdin);
    child.wait_with_output().expect("the tool ends")
}

#[test]
fn without_a_key_a_hidden_value_shows_as_hidden() {
    let scratch = Scratch::new("unkeyed");
    let out = scratch.path("out");
    let output = merge(&exports(&scratch), &out, &[]);
    assert_exit(&output, 0);
    assert_eq!(password_values(&out), ["<hidden>", "<hidden>"]);
    let report = read(&out.join("report.json"));
    for password in PASSWORDS {
        assert!(!report.contains(password), "{report}");
        let plain = Fingerprint::of(password).to_string();
        assert!(
            !report.contains(&plain),
            "{password}'s plain fingerprint: {report}"
        );
    }
}

/// Keyed, the two sides' passwords show apart, as the library computes them, the same on a
/// second run; `fingerprint` prints the one a value shows (a trailing newline dropped).
#[test]
fn a_key_shows_each_hidden_value_by_its_keyed_fingerprint() {
    let scratch = Scratch::new("keyed");
    let inputs = exports(&scratch);
    let key_file = scratch.path("fingerprint.key");
    let material = b"0123456789abcdef0123456789abcdef\n";
    fs::write(&key_file, material).expect("writes");
    let key = FingerprintKey::new(material).expect("33 bytes");

    let (first, second) = (scratch.path("first"), scratch.path("second"));
    for out in [&first, &second] {
        let output = merge(
            &inputs,
            out,
            &["--fingerprint-key", key_file.to_str().expect("UTF-8")],
        );
        assert_exit(&output, 0);
    }
    let expected = [PASSWORDS[1], PASSWORDS[2]].map(|p| format!("<{}>", key.fingerprint(p)));
    assert_eq!(password_values(&first), expected);
    for name in OUTPUTS {
        assert_eq!(
            fs::read(first.join(name)).expect("written"),
            fs::read(second.join(name)).expect("written"),
            "{name} differs between two runs with one key"
        );
    }
    let report = read(&first.join("report.json"));
    assert!(
        !report.contains("0123456789abcdef"),
        "the key is shown: {report}"
    );

    for typed in [
        "primary-wifi-pass",
        "primary-wifi-pass\n",
        "primary-wifi-pass\r\n",
    ] {
        let output = fingerprint_of(&key_file, typed);
        assert_exit(&output, 0);
        assert_eq!(
            stdout(&output),
            format!("{}\n", key.fingerprint(PASSWORDS[1]))
        );
    }
    // Another key shows other fingerprints: a report is read with the key it was made with.
    let other = scratch.path("other.key");
    fs::write(&other, b"another key of thirty-two bytes!").expect("writes");
    let output = fingerprint_of(&other, PASSWORDS[1]);
    assert_exit(&output, 0);
    assert_ne!(
        stdout(&output),
        format!("{}\n", key.fingerprint(PASSWORDS[1]))
    );
}

/// A key file too short or missing is bad input: exit 2, the file named, its bytes never
/// shown, and nothing written. A key file in an output's place is refused before any work and
/// left as it was.
#[test]
fn a_bad_key_file_is_refused_before_anything_is_written() {
    let scratch = Scratch::new("bad-key");
    let inputs = exports(&scratch);
    let out = scratch.path("out");
    let short = scratch.path("short.key");
    fs::write(&short, b"hunter2").expect("writes");
    let output = merge(
        &inputs,
        &out,
        &["--fingerprint-key", short.to_str().expect("UTF-8")],
    );
    assert_exit(&output, 2);
    assert_stderr_contains(&output, &short.display().to_string());
    assert_stderr_contains(&output, "holds 7 bytes");
    assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
    assert!(!out.exists(), "an output directory was made");

    let missing = scratch.path("missing.key");
    let output = merge(
        &inputs,
        &out,
        &["--fingerprint-key", missing.to_str().expect("UTF-8")],
    );
    assert_exit(&output, 2);
    assert_stderr_contains(&output, &missing.display().to_string());
    assert!(!out.exists(), "an output directory was made");

    fs::create_dir_all(&out).expect("made");
    let in_place = out.join("report.json");
    fs::write(&in_place, b"0123456789abcdef0123456789abcdef").expect("writes");
    let before = super::fingerprint(&in_place);
    let output = merge(
        &inputs,
        &out,
        &["--fingerprint-key", in_place.to_str().expect("UTF-8")],
    );
    assert_exit(&output, 1);
    assert_eq!(
        super::fingerprint(&in_place),
        before,
        "the key file was touched"
    );

    let output = fingerprint_of(&short, "x");
    assert_exit(&output, 2);
    assert_stderr_contains(&output, "holds 7 bytes");
}

/// `--json` reads a JSON value and fingerprints it as the report does: an array or object by
/// its compact JSON text with members sorted by name, however the input spells it; a string by
/// its text (review 72: the report's fingerprint of an array could not be reproduced). Without
/// it, one trailing newline or CRLF is dropped, and a lone carriage return kept.
#[test]
fn fingerprint_reads_text_or_json_as_the_report_fingerprints_it() {
    let scratch = Scratch::new("fingerprint-json");
    let key_file = scratch.path("fingerprint.key");
    let material = b"0123456789abcdef0123456789abcdef";
    fs::write(&key_file, material).expect("writes");
    let key = FingerprintKey::new(material).expect("32 bytes");
    let run = |args: &[&str], input: &str| fingerprint_with(&key_file, args, input);
    let wifi = r#"[{"ssid":"home","password":"pw-p"}]"#;
    let sorted = r#"[{"password":"pw-p","ssid":"home"}]"#;
    for spelt in [
        wifi,
        "[ {\n  \"ssid\": \"home\",\n  \"password\": \"pw-p\"\n} ]\n",
    ] {
        let output = run(&["--json"], spelt);
        assert_exit(&output, 0);
        assert_eq!(stdout(&output), format!("{}\n", key.fingerprint(sorted)));
    }
    let output = run(&["--json"], r#""pw-p""#);
    assert_eq!(stdout(&output), format!("{}\n", key.fingerprint("pw-p")));
    let output = run(&["--json"], "not json");
    assert_exit(&output, 2);
    assert_stderr_contains(&output, "<stdin>:1:");

    let output = run(&[], "abc\r");
    assert_eq!(stdout(&output), format!("{}\n", key.fingerprint("abc\r")));
    let output = run(&[], "abc\r\n");
    assert_eq!(stdout(&output), format!("{}\n", key.fingerprint("abc")));
}

/// A key file that HMAC reads as short (zeros at its end are its padding: 32 zero bytes are
/// the empty key) or that repeats one byte is refused, and a device given by mistake is read
/// no further than a key file's limit (review 72: `/dev/urandom` grew without end).
#[test]
fn a_key_anyone_can_find_or_a_device_is_refused() {
    let scratch = Scratch::new("weak-key");
    let inputs = exports(&scratch);
    let out = scratch.path("out");
    let zeros = scratch.path("zero.key");
    fs::write(&zeros, [0; 32]).expect("writes");
    let output = merge(
        &inputs,
        &out,
        &["--fingerprint-key", zeros.to_str().expect("UTF-8")],
    );
    assert_exit(&output, 2);
    assert_stderr_contains(&output, "32 zero bytes at its end");
    assert!(!out.exists(), "an output directory was made");
    for device in ["/dev/zero", "/dev/urandom"] {
        if !Path::new(device).exists() {
            continue;
        }
        let output = merge(&inputs, &out, &["--fingerprint-key", device]);
        assert_exit(&output, 2);
        assert_stderr_contains(&output, "holds more than 4096 bytes");
        assert!(!out.exists(), "an output directory was made");
    }
}
