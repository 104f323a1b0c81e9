//! The library walkthrough example runs to its end, each of its steps asserting what it
//! shows.

use std::process::Command;

use super::*;

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
