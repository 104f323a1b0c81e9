//! The tool on the shipped data, pinned by the golden files (`tests/golden/`): its outputs
//! line by line, the report it prints, and a second run over the applied plan converging.

use std::fs;
use std::path::{Path, PathBuf};

use crate::data::shipped_paths;
use failback::iothub::{Export, read_export, read_import};

use super::*;

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
    // completes devices whose gateway, and modules whose device, the first created), then
    // nothing is left to do.
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
    // The shipped data has one device waiting for its new gateway and one module waiting for
    // its new device: they are the second round.
    assert_eq!(planned, [19, 2, 0]);
}
