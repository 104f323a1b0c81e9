//! Temporary files a killed run leaves (`.{name}.tmp-{pid}-{n}`, a partial output, keys in
//! clear): the next run removes them before writing and says so on stderr, by name only; a
//! run stopped by SIGINT or SIGTERM removes its own. Linux only: elsewhere no `/proc` tells
//! that a writer is gone, and nothing is removed.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// `pid_max`: every process id is below it, so no process has it.
fn pid_never_used() -> u32 {
    let max = fs::read_to_string("/proc/sys/kernel/pid_max").expect("pid_max");
    max.trim().parse().expect("a number")
}

/// Writes a partial file, with a secret in it, as the temporary `name` in `dir`.
fn leave_temporary(dir: &Path, name: &str) {
    fs::create_dir_all(dir).expect("a directory");
    fs::write(dir.join(name), "{\"primaryKey\":\"c2VjcmV0LWtleQ==\"").expect("a temporary");
}

/// The hidden entries left in `dir`, sorted.
fn hidden(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Each removed temporary is named on stderr, its content never shown; one of a live process
/// (pid 1) is kept.
#[track_caller]
fn assert_removed_and_told(output: &Output, dir: &Path, abandoned: &[String], live: &str) {
    assert_exit(output, 0);
    for name in abandoned {
        assert_stderr_contains(output, name);
    }
    assert!(!stderr(output).contains("c2VjcmV0"), "{}", stderr(output));
    assert_eq!(hidden(dir), [live]);
}

#[test]
fn merge_removes_the_temporaries_a_killed_run_left() {
    let scratch = Scratch::new("abandoned-merge");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    let gone = pid_never_used();
    let abandoned: Vec<String> = OUTPUTS
        .iter()
        .enumerate()
        .map(|(n, name)| format!(".{name}.tmp-{gone}-{n}"))
        .collect();
    let live = ".merged.jsonl.tmp-1-0";
    for name in abandoned.iter().map(String::as_str).chain([live]) {
        leave_temporary(&out, name);
    }
    let output = merge(&inputs, &out, &[]);
    assert_removed_and_told(&output, &out, &abandoned, live);
    for name in OUTPUTS {
        assert!(out.join(name).is_file(), "{name} written");
    }
}

/// A killed run's temporary given as an input (to salvage it, say) is read, not removed first:
/// inputs are never touched (found in review: it was removed, and the run failed reading it).
#[test]
fn merge_keeps_an_abandoned_temporary_it_is_given_to_read() {
    let scratch = Scratch::new("abandoned-input");
    let [base, primary, secondary] = scratch.shipped();
    let out = scratch.path("out");
    fs::create_dir_all(&out).expect("a directory");
    let salvaged = out.join(format!(".merged.jsonl.tmp-{}-0", pid_never_used()));
    fs::copy(&primary, &salvaged).expect("a copy");
    let before = fingerprint(&salvaged);
    let output = merge(&[base, salvaged.clone(), secondary], &out, &[]);
    assert_exit(&output, 0);
    assert_eq!(fingerprint(&salvaged), before, "the input is untouched");
    assert!(!stderr(&output).contains("removed"), "{}", stderr(&output));
}

#[test]
fn generate_removes_the_temporaries_a_killed_run_left() {
    let scratch = Scratch::new("abandoned-generate");
    let data = scratch.path("data");
    let gone = pid_never_used();
    let abandoned: Vec<String> = ["base.jsonl", "primary.jsonl", "secondary.jsonl"]
        .iter()
        .enumerate()
        .map(|(n, name)| format!(".{name}.tmp-{gone}-{n}"))
        .collect();
    let live = ".base.jsonl.tmp-1-0";
    for name in abandoned.iter().map(String::as_str).chain([live]) {
        leave_temporary(&data, name);
    }
    let output = generate("10", None, &data);
    assert_removed_and_told(&output, &data, &abandoned, live);
}

/// Whether `dir` holds a temporary file (`.{name}.tmp-{pid}-{n}`).
fn holds_temporary(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(".tmp-"))
    })
}

/// What a `generate` run that got `signal` (a `kill` name) while writing a file did: `None`
/// when it had finished before a temporary file was seen, or before the signal came.
fn generate_stopped_by(signal: &str, devices: &str) -> Option<(Output, Vec<String>)> {
    let scratch = Scratch::new("stopped");
    let data = scratch.path("data");
    let mut child = Command::new(tool())
        .args(["generate", "--devices", devices, "--out-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool runs");
    // Polled: the triple is built in memory first, then each file written through a
    // temporary one, a fraction of a second each.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !holds_temporary(&data) {
        if child.try_wait().expect("the tool's status").is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "generate --devices {devices} never wrote"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} failed");
    let output = child.wait_with_output().expect("the tool ends");
    if output.status.success() {
        // The last file was put in place before the signal came.
        return None;
    }
    let left = fs::read_dir(&data)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    Some((output, left))
}

/// A run stopped while writing a file (an operator's Ctrl-C, a service manager's SIGTERM)
/// removes its temporary file before it exits, and fails: the default action of either
/// signal left the partial file, keys in clear.
#[test]
fn a_run_stopped_by_sigint_or_sigterm_removes_its_temporaries() {
    for signal in ["TERM", "INT"] {
        // A run that finishes before it is stopped is tried again, larger.
        let stopped = ["20000", "60000"]
            .into_iter()
            .find_map(|devices| generate_stopped_by(signal, devices));
        let Some((output, left)) = stopped else {
            eprintln!("skipped SIG{signal}: each run finished before it could be stopped");
            continue;
        };
        assert_exit(&output, 130);
        assert!(
            left.iter().all(|name| !name.contains(".tmp-")),
            "SIG{signal} left {left:?}"
        );
    }
}
