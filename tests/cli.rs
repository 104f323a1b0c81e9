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

#[path = "support/data.rs"]
mod data;
#[path = "support/hub.rs"]
mod hub;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use data::{Rng, shipped_paths};
use failback::iothub::{Export, read_export, read_import};

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

/// The library walkthrough runs to its end: each of its steps asserts what it shows.
#[test]
fn the_library_walkthrough_holds() {
    let output = Command::new(example("walkthrough"))
        .output()
        .expect("the walkthrough runs");
    assert_exit(&output, 0);
    let out = String::from_utf8_lossy(&output.stdout);
    let steps: Vec<&str> = out
        .lines()
        .filter_map(|line| line.split_once(". ").map(|(step, _)| step))
        .filter(|step| step.parse::<u8>().is_ok())
        .collect();
    assert_eq!(steps, ["1", "2", "3", "4", "5", "6"], "{out}");
    assert!(out.contains("valve-9 status: disable-wins"), "{out}");
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

// ---------------------------------------------------------------------------------------------
// Golden files

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name` line by line; with `FAILBACK_BLESS=1`,
/// rewrites the golden file instead.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("FAILBACK_BLESS").is_some_and(|v| v == "1") {
        fs::create_dir_all(golden_dir()).expect("tests/golden");
        fs::write(&path, actual).expect("write golden file");
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run FAILBACK_BLESS=1 cargo test --release --test cli to create it",
            path.display()
        )
    });
    if actual == expected {
        return;
    }
    let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
    let mut diff = String::new();
    let mut shown = 0;
    for i in 0..a.len().max(e.len()) {
        let (got, want) = (a.get(i), e.get(i));
        if got != want && shown < 12 {
            shown += 1;
            diff += &format!(
                "line {}:\n  golden: {}\n  actual: {}\n",
                i + 1,
                want.copied().unwrap_or("(none)"),
                got.copied().unwrap_or("(none)")
            );
        }
    }
    if diff.is_empty() {
        diff = "(line endings or the final newline differ)\n".into();
    }
    panic!(
        "{name} differs from {} ({} lines golden, {} actual):\n{diff}\
         If the change is intended, review it and run FAILBACK_BLESS=1 cargo test --release --test cli",
        path.display(),
        e.len(),
        a.len()
    );
}

#[test]
fn merge_on_the_shipped_data_matches_the_golden_files() {
    let scratch = Scratch::new("golden");
    let out = scratch.path("out");
    let output = merge(&shipped_paths(), &out, &[]);
    assert_exit(&output, 0);
    let summary = stdout(&output);
    let lines: Vec<&str> = summary.lines().collect();
    assert!(
        lines[0].starts_with(
            "merged 37 devices (base 32, primary 32, secondary 38 lines; 3 hub warnings skipped)"
        ),
        "{summary}"
    );
    assert!(lines[1].starts_with("plan: "), "{summary}");
    assert!(
        lines[2].starts_with("conflicts: ") && lines[2].contains("preferring the secondary"),
        "{summary}"
    );
    for name in OUTPUTS {
        assert!(
            summary.contains(&format!("wrote {}", out.join(name).display())),
            "{summary}"
        );
    }
    // Only the three outputs: no temporary file left beside them.
    let mut written: Vec<String> = fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["import.jsonl", "merged.jsonl", "report.json"]);
    for name in OUTPUTS {
        check_golden(name, &read(&out.join(name)));
    }
    // Keys appear in report.json and on stdout only as fingerprints (thumbprints, which name
    // public certificates, in clear).
    let report = read(&out.join("report.json")).to_ascii_lowercase();
    let all: Vec<_> = data::shipped().into_iter().flatten().collect();
    for secret in data::secrets(&all) {
        let secret = secret.to_ascii_lowercase();
        assert!(!report.contains(&secret), "a secret in report.json");
        assert!(
            !summary.to_ascii_lowercase().contains(&secret),
            "a secret on stdout"
        );
    }
    // Both line files are exports the strict reader takes back (the next failback's input,
    // an import job's file).
    if let Err(err) = read_export(&out.join("merged.jsonl")) {
        panic!("merged.jsonl does not read back as an export: {err}");
    }
    if let Err(err) = read_import(&out.join("import.jsonl")) {
        panic!("import.jsonl does not read back as an import file: {err}");
    }
}

#[test]
fn the_report_is_the_summary_the_tool_prints() {
    // stdout's counts and report.json's agree, with either preference.
    for prefer in ["primary", "secondary"] {
        let scratch = Scratch::new("summary");
        let out = scratch.path("out");
        let output = merge(&shipped_paths(), &out, &["--prefer", prefer]);
        assert_exit(&output, 0);
        let report: serde_json::Value =
            serde_json::from_str(&read(&out.join("report.json"))).expect("report.json is JSON");
        assert_eq!(report["prefer"], prefer);
        let plan = &report["plan"];
        let expected = format!(
            "plan: {} create, {} update, {} update twin, {} delete; {} blocked",
            plan["create"],
            plan["update"],
            plan["updateTwin"],
            plan["delete"],
            report["blocked"].as_array().map_or(0, Vec::len)
        );
        assert!(
            stdout(&output).contains(&expected),
            "{expected}\n{}",
            stdout(&output)
        );
        let import = read(&out.join("import.jsonl"));
        let counted: u64 = ["create", "update", "updateTwin", "delete"]
            .iter()
            .map(|k| plan[k].as_u64().expect("a count"))
            .sum();
        assert_eq!(import.lines().count() as u64, counted);
    }
}

#[test]
fn applying_the_written_plan_and_merging_again_converges() {
    // The files themselves, end to end: import.jsonl applied to primary.jsonl by the import
    // simulator, the hub exported again, and the tool run on that. Two rounds (the second
    // completes devices whose gateway the first created), then nothing is left to do.
    let scratch = Scratch::new("converge");
    let inputs = scratch.shipped();
    let read_lines = |read: fn(&Path) -> failback::Result<Export>, path: &Path| match read(path) {
        Ok(export) => export.lines,
        Err(err) => panic!("{err}"),
    };
    let mut hub = hub::Hub::new(&read_lines(read_export, &inputs[1]));
    let mut planned = Vec::new();
    for round in 0..3 {
        let out = scratch.path(&format!("out-{round}"));
        assert_exit(&merge(&inputs, &out, &[]), 0);
        let import = read_lines(read_import, &out.join("import.jsonl"));
        planned.push(import.len());
        hub.import(&import)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let primary: String = hub.export().iter().map(|l| l.to_json() + "\n").collect();
        fs::write(&inputs[1], primary).expect("write the hub's export");
    }
    // The shipped data has one device waiting for its new gateway: it is the second round.
    assert_eq!(planned, [20, 1, 0]);
}

// ---------------------------------------------------------------------------------------------
// Generated data

/// Writes `lines` of `from` to `to` in a seeded random order.
fn shuffle_file(from: &Path, to: &Path, rng: &mut Rng) {
    let text = read(from);
    let mut lines: Vec<&str> = text.lines().collect();
    rng.shuffle(&mut lines);
    let shuffled: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(to, shuffled).expect("write shuffled input");
}

#[test]
fn generate_then_merge_gives_the_same_bytes_whatever_the_line_order() {
    let scratch = Scratch::new("generated");
    let data = scratch.path("data");
    let output = generate("2000", Some("7"), &data);
    assert_exit(&output, 0);
    let inputs = ["base.jsonl", "primary.jsonl", "secondary.jsonl"].map(|n| data.join(n));
    for input in &inputs {
        assert!(read(input).lines().count() >= 2000, "{}", input.display());
    }

    let out = scratch.path("out");
    assert_exit(&merge(&inputs, &out, &[]), 0);
    let mut rng = Rng(42);
    for round in 0..2 {
        let shuffled_dir = scratch.path(&format!("shuffled-{round}"));
        fs::create_dir_all(&shuffled_dir).expect("dir");
        let shuffled =
            ["base.jsonl", "primary.jsonl", "secondary.jsonl"].map(|n| shuffled_dir.join(n));
        for (from, to) in inputs.iter().zip(&shuffled) {
            shuffle_file(from, to, &mut rng);
        }
        let out2 = scratch.path(&format!("out-{round}"));
        assert_exit(&merge(&shuffled, &out2, &[]), 0);
        for name in OUTPUTS {
            assert!(
                fs::read(out.join(name)).ok() == fs::read(out2.join(name)).ok(),
                "{name} depends on the order of input lines"
            );
        }
    }
    // The generated data gives the plan work of every kind.
    let report: serde_json::Value =
        serde_json::from_str(&read(&out.join("report.json"))).expect("JSON");
    for kind in ["create", "update", "updateTwin", "delete"] {
        assert!(
            report["plan"][kind].as_u64() > Some(0),
            "no {kind}: {report}"
        );
    }
}

#[test]
fn generate_is_deterministic_per_seed() {
    let scratch = Scratch::new("seeded");
    let run = |dir: &str, seed: &str| {
        let out = scratch.path(dir);
        let output = generate("200", Some(seed), &out);
        assert_exit(&output, 0);
        read(&out.join("secondary.jsonl"))
    };
    assert_eq!(run("a", "3"), run("b", "3"));
    assert_ne!(run("c", "3"), run("d", "4"));
}

/// `generate` writes only new files: a directory of real exports is never replaced.
#[test]
fn generate_never_replaces_a_file() {
    let scratch = Scratch::new("generate-existing");
    let inputs = scratch.shipped();
    let before = read(&inputs[1]);
    let output = generate("10", None, &scratch.0);
    assert_exit(&output, 1);
    assert_stderr_contains(&output, "exists");
    assert_eq!(read(&inputs[1]), before);
}

/// A link in the way, even one pointing nowhere, is not a new file either: it was followed,
/// found missing, and replaced (found in review).
#[cfg(unix)]
#[test]
fn generate_never_replaces_a_dangling_link() {
    let scratch = Scratch::new("generate-link");
    let link = scratch.path("base.jsonl");
    std::os::unix::fs::symlink(scratch.path("nowhere"), &link).expect("a link");
    let output = generate("10", None, &scratch.0);
    assert_exit(&output, 1);
    assert_stderr_contains(&output, "exists");
    let still = fs::symlink_metadata(&link).expect("the link stays");
    assert!(still.file_type().is_symlink());
    assert!(!scratch.path("primary.jsonl").exists());
}

/// One export given for two hubs merges as a hub that changed nothing, and plans away every
/// change of the other without a word: refused before anything is read or written (found in
/// review).
#[test]
fn the_same_file_for_two_inputs_is_refused_with_exit_1() {
    for (i, j, flags) in [
        (0, 1, "--base and --primary"),
        (0, 2, "--base and --secondary"),
        (1, 2, "--primary and --secondary"),
    ] {
        let scratch = Scratch::new("same-input");
        let mut inputs = scratch.shipped();
        inputs[j] = inputs[i].clone();
        let output = merge(&inputs, &scratch.path("out"), &[]);
        assert_exit(&output, 1);
        assert_stderr_contains(&output, &format!("{flags} name the same file"));
        assert!(!scratch.path("out").exists(), "{flags}: wrote something");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit 2, `FILE:LINE:COLUMN: message`, no output

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

// ---------------------------------------------------------------------------------------------
// Usage errors: exit 1

#[test]
fn usage_errors_exit_1() {
    let scratch = Scratch::new("usage");
    let inputs = scratch.shipped();
    let out = scratch.path("out");
    let unknown_flag = merge(&inputs, &out, &["--frobnicate"]);
    assert_exit(&unknown_flag, 1);
    assert_stderr_contains(&unknown_flag, "--frobnicate");
    let bad_prefer = merge(&inputs, &out, &["--prefer", "both"]);
    assert_exit(&bad_prefer, 1);
    let missing_base = failback([
        "merge".as_ref(),
        "--primary".as_ref(),
        inputs[1].as_os_str(),
        "--secondary".as_ref(),
        inputs[2].as_os_str(),
        "--out-dir".as_ref(),
        out.as_os_str(),
    ]);
    assert_exit(&missing_base, 1);
    assert_stderr_contains(&missing_base, "--base");
    assert_exit(&failback(["frobnicate"]), 1);
    assert_exit(&failback::<[&str; 0], &str>([]), 1);
    assert!(!out.exists(), "a usage error wrote output");
    // Help is not an error.
    assert_exit(&failback(["--help"]), 0);
}

#[test]
fn an_output_that_is_an_input_is_refused_with_exit_1() {
    for (i, name) in OUTPUTS.iter().enumerate() {
        let scratch = Scratch::new("clobber");
        // The inputs live in the out dir, one of them under an output's name.
        let shipped = scratch.shipped();
        let mut inputs = shipped.clone();
        inputs[i] = scratch.path(name);
        fs::rename(&shipped[i], &inputs[i]).expect("rename");
        let before: Vec<_> = inputs.iter().map(|p| fingerprint(p)).collect();
        let output = merge(&inputs, &scratch.0, &[]);
        assert_exit(&output, 1);
        assert_stderr_contains(&output, "refusing to overwrite an input");
        let after: Vec<_> = inputs.iter().map(|p| fingerprint(p)).collect();
        assert!(before == after, "{name}: an input was modified");
        for other in OUTPUTS.iter().filter(|o| *o != name) {
            assert!(!scratch.path(other).exists(), "{other} was written");
        }
    }
    // The same file under another path (`dir/../dir/...`) is refused too.
    let scratch = Scratch::new("clobber-relative");
    let mut inputs = scratch.shipped();
    let renamed = scratch.path("report.json");
    fs::rename(&inputs[2], &renamed).expect("rename");
    inputs[2] = renamed;
    let detour = scratch
        .0
        .join("..")
        .join(scratch.0.file_name().expect("name"));
    let output = merge(&inputs, &detour, &[]);
    assert_exit(&output, 1);
}

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

/// Every triple `generate` writes is one `merge` accepts, down to a single device; fewer is a
/// usage error, not a panic, and so are more than a hub holds (the triple, built in memory,
/// aborted the tool when the allocator gave up). In a triple of one to three devices the
/// secondary deletes one, a third or more of the primary unless the primary deleted it too,
/// which the default `--max-deletes` refuses: accepted with the guard raised.
#[test]
fn generate_writes_a_triple_merge_accepts_or_refuses_too_few_or_too_many_devices() {
    let scratch = Scratch::new("generate-small");
    let none = scratch.path("none");
    let output = generate("0", None, &none);
    assert_exit(&output, 1);
    assert_stderr_contains(&output, "--devices must be at least 1");
    assert!(!none.exists(), "a refused generate wrote output");
    for devices in ["1000001", "4000000000", "18446744073709551615"] {
        let output = generate(devices, None, &none);
        assert_exit(&output, 1);
        assert_stderr_contains(&output, "--devices must be at most 1000000");
        assert!(!none.exists(), "a refused generate wrote output");
    }
    for devices in ["1", "2", "3"] {
        let dir = scratch.path(&format!("in-{devices}"));
        assert_exit(&generate(devices, None, &dir), 0);
        let inputs = ["base.jsonl", "primary.jsonl", "secondary.jsonl"].map(|n| dir.join(n));
        let out = scratch.path(&format!("out-{devices}"));
        let default = merge(&inputs, &out, &[]);
        if default.status.code() != Some(0) {
            assert_exit(&default, 2);
            assert_stderr_contains(&default, "more than --max-deletes 10% allows");
        }
        assert_exit(&merge(&inputs, &out, &["--max-deletes", "100"]), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// A plan deleting more than --max-deletes of the primary: exit 2, no output

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

// ---------------------------------------------------------------------------------------------
// Exports without keys: a warning per input on stderr

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
