//! Test data shared by the IoT Hub tests: the shipped example exports, a seeded shuffle, and the
//! secrets an input holds.

#![allow(dead_code)] // each test crate uses part of it

use std::path::{Path, PathBuf};

use failback::iothub::{ExportLine, read_export};

#[path = "rng.rs"]
mod rng;
pub use rng::Rng;

/// `examples/data`, where the shipped triple lives.
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data")
}

/// The shipped base, primary and secondary exports, in that order.
pub fn shipped_paths() -> [PathBuf; 3] {
    ["base.jsonl", "primary.jsonl", "secondary.jsonl"].map(|name| shipped_dir().join(name))
}

/// The shipped exports, read.
pub fn shipped() -> [Vec<ExportLine>; 3] {
    shipped_paths().map(|path| match read_export(&path) {
        Ok(export) => export.lines,
        Err(err) => panic!("shipped data must read: {err}"),
    })
}

/// Every symmetric key in `lines`, as written in the file. Thumbprints are not secrets: they
/// name public certificates, and reports show them in clear (`Thumbprint`'s docs).
pub fn secrets(lines: &[ExportLine]) -> Vec<String> {
    let mut out = Vec::new();
    for auth in lines.iter().filter_map(|l| l.authentication.as_ref()) {
        if let Some(keys) = &auth.keys {
            out.extend(keys.iter().map(|k| k.expose().to_owned()));
        }
    }
    out.sort();
    out.dedup();
    out
}
