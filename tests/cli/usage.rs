//! Usage errors exit 1 and write nothing: bad arguments, an output that is an input (left as
//! it was), and one file given for two inputs. Help is no error.

use std::fs;

use super::*;

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
