//! Temporary files a killed run leaves (`.{name}.tmp-{pid}-{n}`, a partial output, keys in
//! clear): the next run removes them before writing and says so on stderr, by name only.
//! Linux only: elsewhere no `/proc` tells that a writer is gone, and nothing is removed.

use std::fs;
use std::path::Path;

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
