//! Test data shared by the IoT Hub tests: the shipped example exports, a seeded shuffle, and the
//! secrets an input holds.

#![allow(dead_code)] // each test crate uses part of it

use std::path::{Path, PathBuf};

use failback::iothub::{ExportLine, read_export};

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

/// SplitMix64, so shuffles are the same on every machine and every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Every symmetric key and thumbprint in `lines`, as written in the file.
pub fn secrets(lines: &[ExportLine]) -> Vec<String> {
    let mut out = Vec::new();
    for auth in lines.iter().filter_map(|l| l.authentication.as_ref()) {
        if let Some(keys) = &auth.keys {
            out.extend(keys.iter().map(|k| k.expose().to_owned()));
        }
        if let Some(thumbprints) = &auth.thumbprints {
            out.extend(thumbprints.iter().map(|t| t.as_str().to_owned()));
        }
    }
    out.sort();
    out.dedup();
    out
}
