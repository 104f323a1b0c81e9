//! The failback tool end to end: the example binary run on the shipped data (pinned by golden
//! files), on generated data, on malformed input of every kind, and on usage errors.
//!
//! Golden files: `tests/golden/{merged.jsonl,import.jsonl,report.json}` hold the tool's output on
//! `examples/data`. A change to the output format shows as a line-by-line diff; when the change
//! is deliberate, review it and rewrite the files with
//!
//! ```text
//! FAILBACK_BLESS=1 cargo test --release --test cli
//! ```
//!
//! then read the diff of `tests/golden/` against `examples/data/README.md` before committing.
//!
//! One concept per module; running the tool and a scratch directory for its files are here.

#[path = "support/data.rs"]
mod data;
#[path = "support/hub.rs"]
mod hub;

/// Temporary files of killed runs: removed by the next run.
#[cfg(target_os = "linux")]
#[path = "cli/abandoned.rs"]
mod abandoned;
/// Bad input: exit 2, `FILE:LINE:COLUMN: message`, no output.
#[path = "cli/bad_input.rs"]
mod bad_input;
/// `--fingerprint-key` and `fingerprint`: hidden values, keyed.
#[path = "cli/fingerprint_key.rs"]
mod fingerprint_key;
/// `generate`, and merging what it writes.
#[path = "cli/generated.rs"]
mod generated;
/// The tool on the shipped data, against the golden files.
#[path = "cli/golden.rs"]
mod golden;
/// Exports without keys: a warning per input on stderr.
#[path = "cli/keyless.rs"]
mod keyless;
/// A plan deleting more than `--max-deletes` of the primary: exit 2, no output.
#[path = "cli/max_deletes.rs"]
mod max_deletes;
/// The outputs are one set, left whole or not at all; the inputs are never touched.
#[path = "cli/outputs.rs"]
mod outputs;
/// Usage errors: exit 1.
#[path = "cli/usage.rs"]
mod usage;
/// The library walkthrough example.
#[path = "cli/walkthrough.rs"]
mod walkthrough;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use data::shipped_paths;

// ---------------------------------------------------------------------------------------------
// Running the tool

/// The example tool, built once per test run with this test's profile.
fn tool() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| example("failback"))
}

/// Builds the example `name` with this test's profile and returns its binary.
///
/// Cargo gives integration tests no `CARGO_BIN_EXE_` for examples, and `cargo test --test cli`
/// builds only this test. So the first test to need an example runs `cargo build --example`
/// for the profile this test was built with (a no-op when it is up to date, and it keeps a
/// stale binary from being tested), into the target directory this test runs from.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/cli-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("a target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => panic!("no profile in {}", profile_dir.display()),
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name, "--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the {name} example failed");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "{} was not built", binary.display());
    binary
}

/// Runs the tool with `args`.
fn failback<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(tool())
        .args(args)
        .output()
        .expect("the tool runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The run's stderr mentions `needle`; on failure, shows the whole of it.
#[track_caller]
fn assert_stderr_contains(output: &Output, needle: &str) {
    let err = stderr(output);
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status\nstdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// `merge` with the three inputs and `--out-dir out`, plus `extra` arguments.
fn merge(inputs: &[PathBuf; 3], out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<std::ffi::OsString> = vec!["merge".into()];
    for (flag, path) in ["--base", "--primary", "--secondary"].iter().zip(inputs) {
        args.push(flag.into());
        args.push(path.into());
    }
    args.push("--out-dir".into());
    args.push(out.into());
    args.extend(extra.iter().map(Into::into));
    failback(args)
}

/// Runs `generate --devices DEVICES [--seed SEED] --out-dir OUT`.
fn generate(devices: &str, seed: Option<&str>, out: &Path) -> Output {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["generate".as_ref(), "--devices".as_ref(), devices.as_ref()];
    if let Some(seed) = seed {
        args.extend::<[&std::ffi::OsStr; 2]>(["--seed".as_ref(), seed.as_ref()]);
    }
    args.extend::<[&std::ffi::OsStr; 2]>(["--out-dir".as_ref(), out.as_os_str()]);
    failback(args)
}

/// A fresh directory under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("failback-cli-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Copies the shipped triple in as base.jsonl, primary.jsonl and secondary.jsonl.
    fn shipped(&self) -> [PathBuf; 3] {
        let out = ["base.jsonl", "primary.jsonl", "secondary.jsonl"].map(|n| self.path(n));
        for (from, to) in shipped_paths().iter().zip(&out) {
            fs::copy(from, to).expect("copy shipped data");
        }
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file's content and modification time, to show it was neither changed nor rewritten.
fn fingerprint(path: &Path) -> (Vec<u8>, SystemTime) {
    let bytes = fs::read(path).expect("readable");
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    (bytes, modified)
}

const OUTPUTS: [&str; 3] = ["merged.jsonl", "import.jsonl", "report.json"];
