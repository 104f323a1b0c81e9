//! Temporary files a killed run leaves (`.{name}.tmp-{pid}-{n}`, a partial output, keys in
//! clear): the next run removes them before writing and says so on stderr, by name only,
//! whatever id the run has (a container's entrypoint is PID 1 on every run); a run stopped
//! by SIGINT or SIGTERM removes its own, and only those. Linux only: elsewhere no `/proc`
//! tells that a writer is gone, and nothing is removed.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

/// Starts the tool with `args` under a process id known before it runs, as a container's
/// entrypoint has (PID 1, every run): a shell prints its id, reads a line, then becomes the
/// tool, which keeps the id. `before` is given the id first, to leave what a killed run of that
/// id left, and returns the tool's last argument (a path that may hold the id).
fn spawn_with_known_id(args: &[&OsStr], before: impl FnOnce(u32) -> PathBuf) -> Child {
    let mut child = Command::new("sh")
        .args(["-c", r#"echo $$; read -r last; exec "$@" "$last""#, "sh"])
        .arg(tool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the shell's id");
    // The shell writes nothing more before the tool runs: nothing of the tool's is buffered.
    assert!(stdout.buffer().is_empty(), "{:?}", stdout.buffer());
    child.stdout = Some(stdout.into_inner());
    let last = before(line.trim().parse().expect("a process id"));
    let last = last.to_str().expect("a UTF-8 path");
    assert!(!last.contains('\n'), "{last:?}");
    let mut stdin = child.stdin.take().expect("piped");
    writeln!(stdin, "{last}").expect("the shell reads");
    child
}

/// `merge` with `base`, `secondary` and `--out-dir out`, its `--primary` given by the
/// shell of [`spawn_with_known_id`].
fn merge_with_primary_last<'a>(
    base: &'a Path,
    secondary: &'a Path,
    out: &'a Path,
) -> [&'a OsStr; 8] {
    [
        "merge".as_ref(),
        "--base".as_ref(),
        base.as_os_str(),
        "--secondary".as_ref(),
        secondary.as_os_str(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        "--primary".as_ref(),
    ]
}

/// A killed run's temporary bearing the id of the run after it, as a container's entrypoint
/// has the same on every run, is removed and named as any other (found in review: taken as
/// the run's own by its id, it was never removed).
#[test]
fn merge_removes_a_killed_runs_temporary_that_bears_its_own_process_id() {
    let scratch = Scratch::new("abandoned-same-id");
    let [base, primary, secondary] = scratch.shipped();
    let out = scratch.path("out");
    let mut left = String::new();
    let child = spawn_with_known_id(&merge_with_primary_last(&base, &secondary, &out), |pid| {
        left = format!(".merged.jsonl.tmp-{pid}-0");
        leave_temporary(&out, &left);
        primary.clone()
    });
    let output = child.wait_with_output().expect("the tool ends");
    assert_exit(&output, 0);
    assert_stderr_contains(&output, &left);
    assert!(!stderr(&output).contains("c2VjcmV0"), "{}", stderr(&output));
    assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));
}

/// What a `merge` of the triple in `data` did, given as its primary a copy under the name of a
/// killed run's temporary bearing the run's own id, and stopped by SIGINT once it wrote: that
/// input's name and the run's output, or `None` when it finished before it wrote, or before
/// the signal came.
fn merge_of_a_same_id_input_stopped(data: &Path, out: &Path) -> Option<(PathBuf, Output)> {
    let [base, primary, secondary] =
        ["base.jsonl", "primary.jsonl", "secondary.jsonl"].map(|n| data.join(n));
    let mut input = PathBuf::new();
    let mut child = spawn_with_known_id(&merge_with_primary_last(&base, &secondary, out), |pid| {
        fs::create_dir_all(out).expect("a directory");
        input = out.join(format!(".merged.jsonl.tmp-{pid}-0"));
        fs::copy(&primary, &input).expect("a copy");
        input.clone()
    });
    let input_name = input.file_name().expect("a name").to_owned();
    // Its own temporary (the input has the name it would take first), which it writes after
    // its handler of SIGINT is in place.
    let writes = || {
        fs::read_dir(out).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                e.file_name() != input_name && e.file_name().to_string_lossy().contains(".tmp-")
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writes() {
        if child.try_wait().expect("the tool's status").is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "merge never wrote");
        std::thread::sleep(Duration::from_millis(1));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -INT failed");
    let output = child.wait_with_output().expect("the tool ends");
    (!output.status.success()).then_some((input, output))
}

/// A stop removes what the run was writing and nothing else, not an input that bears the
/// run's id though the run never wrote it (found in review: removed with the run's own).
#[test]
fn a_stopped_merge_keeps_an_input_that_bears_its_own_process_id() {
    let scratch = Scratch::new("stopped-same-id");
    let data = scratch.path("data");
    // A run that finishes before it is stopped is tried again, larger.
    let stopped = ["20000", "60000"]
        .into_iter()
        .enumerate()
        .find_map(|(n, devices)| {
            let _ = fs::remove_dir_all(&data);
            assert_exit(&generate(devices, None, &data), 0);
            let before = fingerprint(&data.join("primary.jsonl"));
            let stopped =
                merge_of_a_same_id_input_stopped(&data, &scratch.path(&format!("out-{n}")));
            stopped.map(|(input, output)| (input, output, before))
        });
    let Some((input, output, before)) = stopped else {
        eprintln!("skipped: each run finished before it could be stopped");
        return;
    };
    assert_exit(&output, 130);
    assert!(input.is_file(), "the input was removed");
    assert_eq!(fingerprint(&input).0, before.0, "the input is untouched");
    let out = input.parent().expect("its directory");
    let input_name = input.file_name().expect("a name").to_string_lossy();
    assert_eq!(hidden(out), [input_name.as_ref()]);
}
