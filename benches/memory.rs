//! Memory of a merged registry: the bytes it holds on the heap, beside the `crdts` baseline
//! holding the same merge, and beside the size of a failback's merged registry written out as
//! an IoT Hub export (the tool's `merged.jsonl`; issue 4's target: at most twice the export).
//!
//! Memory is counted, not timed, so this is no criterion group: a counting allocator
//! (`stats_alloc`) wraps the system's, and a figure is what is still allocated, of what a
//! step allocated, once everything but the merged state is dropped. It is the live heap, not
//! RSS: it leaves out what the allocator rounds up and what it keeps after a free.
//!
//! Rows, at each size:
//! - `memory/registry`: the merge bench's workload (`support/workload.rs`), the secondary
//!   merged into the primary, ours and the baseline's (`crdts::Map` of `MVReg`s).
//! - `memory/failback`: the three exports the example tool's `generate` writes (seed 1),
//!   lifted and merged as the tool reads them; the merged registry kept as a clone (a clone
//!   shares the slots, so dropping the failback leaves that registry's own heap).
//! - `memory/failback-lower-bound`: the merged export lifted as all three inputs, a registry
//!   holding only creations and none of the registers either side wrote.
//!
//! Sizes: `FAILBACK_BENCH_SIZES=100000` limits the sizes run (default 100k and 1M). At 1M a
//! run takes about five minutes and 16 GiB, most of it the generated exports. Run with
//! `cargo bench --bench memory`, or one group with `cargo bench --bench memory -- memory/registry`
//! (a filter is a part of the group's name, not a pattern).

use std::alloc::System;

use crdts::CvRDT;
use failback::iothub::{ExportLine, ExportReader, Failback, Generate, Plan, Side, Triple};
use failback::{Error, Registry};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

mod support;
use support::workload::{baseline, workload};
use support::{label, sizes};

#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What a step left allocated of what it allocated (negative had it freed more than it
/// allocated, which no step here does).
struct Held {
    bytes: i64,
    allocations: i64,
}

impl Held {
    fn since(region: &Region<'_, System>) -> Held {
        let change = region.change();
        let net = |up: usize, down: usize| up as i64 - down as i64;
        // A realloc counts its growth as allocated and its shrinking as freed, so the
        // difference is the live heap.
        Held {
            bytes: net(change.bytes_allocated, change.bytes_deallocated),
            allocations: net(change.allocations, change.deallocations),
        }
    }

    /// Per device, as the rows print it.
    fn per(&self, devices: usize) -> String {
        format!(
            "{} bytes ({:.0} a device) in {} allocations ({:.1} a device)",
            self.bytes,
            self.bytes as f64 / devices as f64,
            self.allocations,
            self.allocations as f64 / devices as f64
        )
    }
}

/// Runs `step` and measures what its result holds: everything else `step` allocated is
/// dropped before it returns.
fn held_by<T>(step: impl FnOnce() -> T) -> (Held, T) {
    let region = Region::new(HEAP);
    let kept = step();
    (Held::since(&region), kept)
}

/// The three exports of a generated failback, as the text of their files.
struct Exports {
    base: String,
    primary: String,
    secondary: String,
}

impl Exports {
    fn generate(devices: usize) -> Exports {
        let Triple {
            base,
            primary,
            secondary,
            ..
        } = Generate { devices, seed: 1 }.run();
        // Each export's lines are dropped once written: they take many times their text.
        let text = |lines: Vec<ExportLine>| {
            let mut text = String::new();
            for line in lines {
                text.push_str(&line.to_json());
                text.push('\n');
            }
            text
        };
        Exports {
            base: text(base),
            primary: text(primary),
            secondary: text(secondary),
        }
    }

    /// Each export read as a stream of lines, as the example tool reads its files.
    fn failback(&self) -> Result<Failback, Error> {
        lift([&self.base, &self.primary, &self.secondary])
    }
}

fn lift([base, primary, secondary]: [&str; 3]) -> Result<Failback, Error> {
    Failback::from_lines(
        ExportReader::new("base.jsonl", base.as_bytes()),
        ExportReader::new("primary.jsonl", primary.as_bytes()),
        ExportReader::new("secondary.jsonl", secondary.as_bytes()),
        Side::Secondary,
    )
}

/// The merged registry written out as the example tool writes `merged.jsonl`.
fn merged_export(failback: &Failback) -> Result<String, Error> {
    let mut text = String::new();
    Plan::stream_json(failback, |lines| {
        text.push_str(lines);
        Ok(())
    })?;
    Ok(text)
}

/// The merge bench's merged state, ours and the baseline's, side by side.
fn registry(n: usize) {
    let (ours, merged) = held_by(|| {
        let w = workload(n);
        let mut merged = w.primary;
        merged.merge(&w.secondary);
        merged
    });
    let devices = merged.live_count();
    drop(merged);
    let (theirs, merged) = held_by(|| {
        let b = baseline(n);
        let mut merged = b.primary;
        merged.merge(b.secondary);
        merged
    });
    drop(merged);
    println!(
        "memory/registry/{}: {devices} devices; failback {}; crdts {}; crdts/failback {:.2}x",
        label(n),
        ours.per(devices),
        theirs.per(devices),
        theirs.bytes as f64 / ours.bytes as f64,
    );
}

/// A failback's merged registry, and the lower bound, against the merged export.
fn failback(n: usize) -> Result<(), Error> {
    let exports = Exports::generate(n);
    let export = merged_export(&exports.failback()?)?;
    let row = |name: &str, lifted: Result<Registry, Error>, held: Held| {
        let devices = lifted?.live_count();
        println!(
            "memory/{name}/{}: {devices} devices, {}; {:.2}x the {}-byte export",
            label(n),
            held.per(devices),
            held.bytes as f64 / export.len() as f64,
            export.len(),
        );
        Ok::<(), Error>(())
    };
    let (held, merged) = held_by(|| exports.failback().map(|f| f.merged().clone()));
    row("failback", merged, held)?;
    let (held, merged) = held_by(|| lift([&export; 3]).map(|f| f.merged().clone()));
    row("failback-lower-bound", merged, held)
}

/// Whether a group runs: `cargo bench -- FILTER` passes the filter on (with `--bench`, a flag,
/// no filter), and a group runs when its name holds a filter, or when there is none. So
/// `cargo bench -- registry_merge` skips this bench, which takes minutes at 1M, and
/// `cargo bench -- memory/failback` runs its failback group alone.
fn wanted(group: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|filter| group.contains(filter.as_str()))
}

fn main() -> Result<(), Error> {
    for n in sizes(&[100_000, 1_000_000]) {
        if wanted("memory/registry") {
            registry(n);
        }
        if wanted("memory/failback") {
            failback(n)?;
        }
    }
    Ok(())
}
