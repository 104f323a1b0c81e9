//! The outputs are one set, and the inputs are never touched: a run that fails, for its input,
//! a full disk or an unwritable stdout or stderr, leaves no output, its own or an earlier
//! run's, and names the failed output once.

use std::fs;
use std::process::Command;

use super::*;

/// The outputs are one set: a run that fails leaves none of an earlier run's (an old import
/// plan beside a new merged registry is one an operator might submit). Here an earlier output
/// cannot be removed (a directory stands where the plan goes): the run fails before reading
/// its inputs, having removed the others. A run failing after its first output is written
/// removes its own: `an_unwritable_stdout_or_stderr_is_an_io_failure_leaving_no_output`.
#[test]
fn a_failed_run_leaves_no_earlier_output() {
    let scratch = Scratch::new("output-set");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    assert_exit(&merge(&inputs, &out, &[]), 0);
    let import = out.join("import.jsonl");
    fs::remove_file(&import).expect("remove the plan");
    fs::create_dir_all(import.join("in-the-way")).expect("a directory where the plan goes");
    let output = merge(&inputs, &out, &[]);
    assert_exit(&output, 2);
    assert_stderr_contains(&output, "import.jsonl");
    for name in ["merged.jsonl", "report.json"] {
        assert!(!out.join(name).exists(), "{name} left behind");
    }
}

/// A write that fails while the plan streams the merged registry names the file once (it was
/// wrapped twice: `…/merged.jsonl: …/merged.jsonl: No space left on device`). A full disk is
/// stood in for by a file size limit (`ulimit -f`, 1 KiB or 2 in the shell's blocks; the
/// shipped merged registry is 16 KB), with SIGXFSZ ignored so that the write fails with EFBIG
/// instead of killing the tool: an ignored signal stays ignored across `exec`.
#[cfg(unix)]
#[test]
fn a_failed_write_names_the_output_once_and_leaves_nothing() {
    let scratch = Scratch::new("write-fails");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    let mut args: Vec<std::ffi::OsString> = vec!["merge".into()];
    for (flag, path) in ["--base", "--primary", "--secondary"].iter().zip(&inputs) {
        args.push(flag.into());
        args.push(path.into());
    }
    args.push("--out-dir".into());
    args.push(out.clone().into());
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -f 2 && trap '' XFSZ && exec "$0" "$@""#)
        .arg(tool())
        .args(&args)
        .output()
        .expect("sh runs");
    assert_exit(&output, 2);
    let err = stderr(&output);
    let merged = out.join("merged.jsonl").display().to_string();
    assert_eq!(err.matches(&merged).count(), 1, "{err}");
    let entries: Vec<_> = fs::read_dir(&out)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "left behind: {entries:?}");
}

/// A stdout or stderr that cannot be written is an I/O failure, exit 2, with no output left:
/// `println!` panicked there (exit 101), after the outputs were in place. A closed pipe is
/// the same error (Rust ignores `SIGPIPE`); `/dev/full` stands in for both.
#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_stdout_or_stderr_is_an_io_failure_leaving_no_output() {
    let scratch = Scratch::new("full-stdout");
    let inputs = scratch.shipped();
    let full = || fs::File::create("/dev/full").expect("/dev/full");
    let run = |args: &[std::ffi::OsString], stdout_full: bool| {
        let mut command = Command::new(tool());
        command.args(args);
        match stdout_full {
            true => command.stdout(full()),
            false => command.stderr(full()),
        };
        command.output().expect("the tool runs")
    };
    let mut args: Vec<std::ffi::OsString> = vec!["merge".into()];
    for (flag, path) in ["--base", "--primary", "--secondary"].iter().zip(&inputs) {
        args.push(flag.into());
        args.push(path.into());
    }
    let out = scratch.path("out");
    args.extend(["--out-dir".into(), out.clone().into()]);
    let output = run(&args, true);
    assert_exit(&output, 2);
    assert_stderr_contains(&output, "<stdout>: No space left on device");
    let left: Vec<_> = fs::read_dir(&out)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");

    let demo = scratch.path("demo");
    let generate = ["generate", "--devices", "5", "--out-dir"].map(std::ffi::OsString::from);
    let mut generate = generate.to_vec();
    generate.push(demo.clone().into());
    assert_exit(&run(&generate, true), 2);
    let left: Vec<_> = fs::read_dir(&demo)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");

    let parse = ["parse".into(), inputs[0].clone().into()];
    assert_exit(&run(&parse, true), 2);
    // Bad input told to a full stderr: still exit 2, not a panic.
    fs::write(&inputs[2], "{\"id\":\"d\",\"status\":\"on\"}\n").expect("write");
    let parse = ["parse".into(), inputs[2].clone().into()];
    assert_exit(&run(&parse, false), 2);
}

/// A run refused for a bad input line leaves no output at all: the earlier run's plan, left
/// beside the error, is one an operator might submit believing it the new one.
#[test]
fn a_run_refused_for_its_input_leaves_no_earlier_output() {
    let scratch = Scratch::new("refused-input");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    assert_exit(&merge(&inputs, &out, &[]), 0);
    let mut secondary = fs::read_to_string(&inputs[2]).expect("read");
    secondary.push_str("{\"id\":\"late\",\"status\":\"enabled\",}\n");
    fs::write(&inputs[2], secondary).expect("write");
    let output = merge(&inputs, &out, &[]);
    assert_exit(&output, 2);
    assert_stderr_contains(&output, "invalid JSON");
    for name in ["merged.jsonl", "import.jsonl", "report.json"] {
        assert!(!out.join(name).exists(), "{name} left behind");
    }
}

#[test]
fn inputs_are_never_modified() {
    let scratch = Scratch::new("inputs");
    let inputs = scratch.shipped();
    let before: Vec<_> = inputs.iter().map(|p| fingerprint(p)).collect();
    for prefer in ["primary", "secondary"] {
        let out = scratch.path(&format!("out-{prefer}"));
        assert_exit(&merge(&inputs, &out, &["--prefer", prefer]), 0);
    }
    // Rerunning into the same out dir replaces the outputs and still leaves the inputs alone.
    assert_exit(&merge(&inputs, &scratch.path("out-primary"), &[]), 0);
    let after: Vec<_> = inputs.iter().map(|p| fingerprint(p)).collect();
    assert!(before == after, "an input was modified");
}
