//! `generate`: deterministic per seed, writing only new files, and every triple it writes
//! one `merge` accepts (or refuses under the mass-delete guard), giving the same bytes
//! whatever the order of the input lines.

use std::fs;
use std::path::Path;

use crate::data::Rng;

use super::*;

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
