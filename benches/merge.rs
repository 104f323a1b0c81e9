//! Criterion benches on the merge hot path, each beside a reference measured in the same run:
//! the `crdts` baseline for merges and ingestion, the parse-only floor for the IoT Hub pipeline.
//! The 1% delta also has the memory's floor beside it: one random read per key it holds.
//!
//! One seeded workload for every merge group, so figures compare: `support/workload.rs`, which
//! the memory bench shares, describes it.
//!
//! Sizes: `FAILBACK_BENCH_SIZES=10000,100000` limits the sizes run (default: all documented
//! sizes, up to 1M, which needs a few GiB and several minutes; the IoT Hub pipeline runs at
//! 1M only with `FAILBACK_BENCH_IOTHUB_1M=1`, since generating its exports takes 15 GB). Run with
//! `cargo bench --bench merge`, or one group with `cargo bench --bench merge -- registry_merge/full`.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Duration;

use crdts::{CmRDT, CvRDT};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use failback::iothub::{ExportReader, Failback, Generate, Plan, Side, parse_line};
use failback::{Event, EventId, Ingest, Policy, ReplicaId, VersionVector};

mod support;
use support::rng::Rng;
use support::workload::{
    Baseline, BaselineOp, BaselineWorkload, Record, baseline, baseline_with, workload,
    workload_with,
};
use support::{label, sizes};

/// `ops` applied to a clone of `map`.
fn applied<'o>(map: &Baseline, ops: impl IntoIterator<Item = &'o BaselineOp>) -> Baseline {
    let mut map = map.clone();
    for op in ops {
        map.apply(op.clone());
    }
    map
}

/// What a reader of `map` sees: its clock, and each key's values. (Ops and a merge leave
/// different clocks on the entries themselves, which no read shows.)
fn observed(map: &Baseline) -> (crdts::VClock<ReplicaId>, Vec<(String, Vec<Record>)>) {
    let entries = map
        .keys()
        .map(|key| {
            let values = map
                .get(key.val)
                .val
                .map_or_else(Vec::new, |reg| reg.read().val);
            (key.val.clone(), values)
        })
        .collect();
    (map.read_ctx().add_clock, entries)
}

/// `other` merged into a clone of `map`.
fn merged(map: &Baseline, other: &Baseline) -> Baseline {
    let mut map = map.clone();
    map.merge(other.clone());
    map
}

fn registry_merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_merge/full");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for n in sizes(&[10_000, 100_000, 1_000_000]) {
        let w = workload(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("failback", label(n)), &w, |b, w| {
            b.iter_batched(
                || w.primary.clone(),
                // The merged state is returned, as the baseline's is, so that dropping it is
                // not timed as part of the merge.
                |mut primary| {
                    let report = primary.merge_with(&w.secondary, &Policy::default());
                    black_box((primary, report))
                },
                BatchSize::LargeInput,
            );
        });
        drop(w);
        crdts_merge(&mut group, BenchmarkId::new("crdts", label(n)), n, false);
    }
    group.finish();

    let mut group = c.benchmark_group("registry_merge/delta");
    group.sample_size(10);
    for n in sizes(&[1_000_000]) {
        // The documented workload (11.5% of the keys changed by the secondary), and one where
        // the secondary changed 1% of the devices.
        let mut one_percent_keys = 0;
        for (name, updates) in [("failback", 100), ("failback-1pct", 10)] {
            let w = workload_with(n, updates);
            let delta = w.secondary.delta_since(w.primary.context().vector());
            if updates == 10 {
                // Every key it holds, live or deleted (`len` counts only the live ones).
                one_percent_keys = delta
                    .keys()
                    .chain(delta.deleted().map(|(key, _)| key))
                    .collect::<BTreeSet<_>>()
                    .len();
            }
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(
                BenchmarkId::new(name, label(n)),
                &(w, delta),
                |b, (w, delta)| {
                    b.iter_batched(
                        || w.primary.clone(),
                        // The merged state is returned, as in the full group, so that
                        // dropping it is not timed as part of the merge.
                        |mut primary| {
                            let report = primary.merge_with(delta, &Policy::default());
                            black_box((primary, report))
                        },
                        BatchSize::LargeInput,
                    );
                },
            );
            // `crdts` has no delta of a map: an op-based replica catches up by applying the
            // ops it has not seen, here the secondary's, to a clone of its primary.
            // Checked at 10k: four maps of a million records do not fit beside each other.
            let small = baseline_with(10_000, updates);
            assert_eq!(
                observed(&applied(&small.primary, &small.secondary_ops)),
                observed(&merged(&small.primary, &small.secondary)),
                "the baseline's ops reach the state its merge does"
            );
            drop(small);
            let BaselineWorkload {
                primary,
                secondary_ops,
                ..
            } = baseline_with(n, updates);
            group.bench_with_input(
                BenchmarkId::new(name.replace("failback", "crdts-ops"), label(n)),
                &(primary, secondary_ops),
                |b, (primary, ops)| {
                    b.iter_batched(
                        || (primary.clone(), ops.clone()),
                        |(mut primary, ops)| {
                            for op in ops {
                                primary.apply(op);
                            }
                            black_box(primary)
                        },
                        BatchSize::LargeInput,
                    );
                },
            );
        }
        // The memory's floor under the 1% delta, in the same run: one read for each of its
        // keys at a random place in a gibibyte (the merged registry's heap at 1M is about
        // that). Each key's merge reads at least its map entry and its slot, which lie
        // anywhere in it. Throughput here counts reads.
        let memory = Memory::new(1 << 27);
        group.throughput(Throughput::Elements(one_percent_keys as u64));
        for (name, dependent) in [
            ("memory-floor-dependent", true),
            ("memory-floor-independent", false),
        ] {
            group.bench_function(BenchmarkId::new(name, label(n)), |b| {
                // A new walk each iteration: the same one again would find its lines cached.
                let mut seed = 0;
                b.iter(|| {
                    seed += 1;
                    black_box(memory.read(one_percent_keys, seed, dependent))
                });
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("registry_merge/remerge");
    group.sample_size(10);
    for n in sizes(&[10_000, 1_000_000]) {
        let w = workload(n);
        let mut merged = w.primary.clone();
        merged.merge(&w.secondary);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("failback", label(n)),
            &(merged, w.secondary),
            |b, (m, s)| {
                let mut m = m.clone();
                b.iter(|| black_box(m.merge_with(s, &Policy::default())));
            },
        );
        crdts_merge(&mut group, BenchmarkId::new("crdts", label(n)), n, true);
    }
    group.finish();
}

/// Random words to read, for the delta's memory floor.
struct Memory {
    words: Vec<u64>,
}

impl Memory {
    /// `len` words (a power of two), seeded.
    fn new(len: usize) -> Self {
        assert!(len.is_power_of_two(), "addresses are masked");
        let mut rng = Rng(7);
        Memory {
            words: (0..len).map(|_| rng.next()).collect(),
        }
    }

    /// Reads `count` words at random places from `seed`. `dependent`: each word read is the
    /// next one's address, so the reads wait for each other, as a lookup's steps do. Else the
    /// addresses come from the seed alone, and the core keeps as many reads in flight as it
    /// can.
    ///
    /// Two loops, not one choosing the next address: a conditional move would make every
    /// address wait for the word read before it.
    fn read(&self, count: usize, seed: u64, dependent: bool) -> u64 {
        let mask = self.words.len() - 1;
        let mut rng = Rng(seed);
        if dependent {
            let mut at = rng.next();
            for _ in 0..count {
                at = self.words[at as usize & mask];
            }
            at
        } else {
            (0..count).fold(0, |sum: u64, _| {
                sum.wrapping_add(self.words[rng.next() as usize & mask])
            })
        }
    }
}

/// The baseline's merge: `crdts` merging the secondary's state into the primary's, or with
/// `again`, into a map that merged it already (`registry_merge/remerge`, `ingest/resync`).
fn crdts_merge(group: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, n: usize, again: bool) {
    let BaselineWorkload {
        primary: mut p,
        secondary: s,
        ..
    } = baseline(n);
    if again {
        p.merge(s.clone());
    }
    group.bench_function(id, |b| {
        b.iter_batched(
            || (p.clone(), s.clone()),
            |(mut p, s)| {
                p.merge(s);
                black_box(p)
            },
            BatchSize::LargeInput,
        );
    });
}

/// Whether the `i`-th write is delivered twice: three in seven, so that duplicates are 30% of
/// the stream (10 deliveries for 7 writes).
fn redelivered(i: usize) -> bool {
    i % 7 < 3
}

/// Events with 30% duplicates, shuffled: the secondary's writes as an event stream.
fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    let w = workload(20_000);
    let mut events: Vec<Event> = w
        .secondary_deltas
        .iter()
        .enumerate()
        .map(|(i, d)| Event::new(EventId::new(format!("evt-{i}")), d.clone()).expect("non-empty"))
        .collect();
    let extra: Vec<Event> = events
        .iter()
        .enumerate()
        .filter(|&(i, _)| redelivered(i))
        .map(|(_, event)| event.clone())
        .collect();
    events.extend(extra);
    let mut rng = Rng(99);
    rng.shuffle(&mut events);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("events", |b| {
        b.iter_batched(
            || Ingest::new(w.primary.clone()),
            |mut ingest| {
                for event in &events {
                    black_box(ingest.apply(event).expect("consistent stream"));
                }
                ingest
            },
            BatchSize::LargeInput,
        );
    });
    // The baseline: `crdts` applies ops in causal order only (an op beyond a gap moves its
    // clock past the ops missing before it, which are then dropped as seen), so it gets the
    // same writes in the order they were made, the same three in seven delivered again at a
    // random later point, where its clock drops it. Shuffled delivery, and telling a redelivery
    // from an id reused with another payload, have no equivalent there.
    let BaselineWorkload {
        primary,
        secondary,
        secondary_ops,
    } = baseline(20_000);
    let len = secondary_ops.len();
    let mut stream: Vec<(usize, BaselineOp)> = secondary_ops.iter().cloned().enumerate().collect();
    stream.extend(
        secondary_ops
            .iter()
            .enumerate()
            .filter(|&(i, _)| redelivered(i))
            .map(|(i, op)| {
                let at = i + 1 + rng.below(len - i);
                (at, op.clone())
            }),
    );
    // Stable: at each point the write made there comes before the redeliveries.
    stream.sort_by_key(|&(at, _)| at);
    assert_eq!(
        observed(&applied(&primary, stream.iter().map(|(_, op)| op))),
        observed(&merged(&primary, &secondary)),
        "the baseline's stream reaches the state its merge does"
    );
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.bench_function("crdts-ops", |b| {
        b.iter_batched(
            || (primary.clone(), stream.clone()),
            |(mut map, stream)| {
                for (_, op) in stream {
                    map.apply(op);
                }
                map
            },
            BatchSize::LargeInput,
        );
    });
    resync(&mut group);
    group.finish();
}

/// A sync repeating every write an earlier one held: the secondary's whole state sent twice as
/// events (`delta_since(⊥)`), the second applied to an ingest that applied the first. Each
/// repeated dot is checked for another write under it (`same_write`), a check that walked
/// both deltas for every dot until review 67 (1.6 s at 8,000 devices, hours at 1M). Beside
/// it, `crdts` merging the same state into a map that merged it already.
fn resync(group: &mut BenchmarkGroup<'_, WallTime>) {
    for n in sizes(&[100_000]) {
        let w = workload(n);
        let sync = |id: &str| {
            let whole = w.secondary.delta_since(&VersionVector::new());
            Event::new(EventId::new(id), whole).expect("non-empty")
        };
        let second = sync("sync-2");
        let mut synced = Ingest::new(w.primary.clone());
        synced.apply(&sync("sync-1")).expect("a first sync");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("resync", label(n)), |b| {
            b.iter_batched(
                || synced.clone(),
                |mut ingest| {
                    black_box(ingest.apply(&second).expect("the same writes again"));
                    ingest
                },
                BatchSize::LargeInput,
            );
        });
        crdts_merge(group, BenchmarkId::new("resync-crdts", label(n)), n, true);
    }
}

/// Parse, lift, merge and plan on generated exports, on one thread and through the streaming
/// pipeline; beside them the parse-only floor.
fn iothub(c: &mut Criterion) {
    let mut group = c.benchmark_group("iothub/failback");
    group.sample_size(10);
    // 1M only with `FAILBACK_BENCH_IOTHUB_1M=1` (BENCHMARKS.md measures it with the example
    // tool): generating it takes 15 GB and happens before criterion's filter is applied, so
    // any run at 1M of another group would pay for it.
    let mut documented = vec![100_000];
    if std::env::var_os("FAILBACK_BENCH_IOTHUB_1M").is_some() {
        documented.push(1_000_000);
    }
    for n in sizes(&documented) {
        let triple = Generate {
            devices: n,
            seed: 1,
        }
        .run();
        let text = |lines: &[failback::iothub::ExportLine]| {
            lines.iter().map(|l| l.to_json()).collect::<Vec<_>>()
        };
        let files = [
            text(&triple.base),
            text(&triple.primary),
            text(&triple.secondary),
        ];
        drop(triple);
        let parse = |lines: &Vec<String>| {
            lines
                .iter()
                .enumerate()
                .filter_map(|(i, l)| {
                    match parse_line("bench.jsonl".as_ref(), i as u64 + 1, l).expect("valid") {
                        failback::iothub::Parsed::Device(line) => Some(line),
                        failback::iothub::Parsed::Skipped => None,
                    }
                })
                .collect::<Vec<_>>()
        };
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("parse-only", label(n)),
            &files,
            |b, files| {
                b.iter(|| black_box(files.iter().map(parse).collect::<Vec<_>>()));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("failback", label(n)),
            &files,
            |b, files| {
                b.iter(|| {
                    let [base, primary, secondary] =
                        [parse(&files[0]), parse(&files[1]), parse(&files[2])];
                    let failback = Failback::lift(&base, &primary, &secondary, Side::Secondary)
                        .expect("valid");
                    black_box(Plan::new(&failback))
                });
            },
        );
        // The same failback through the library's streaming pipeline, as the example tool
        // runs it: the base parsed while its replica is built, then the primary and the
        // secondary parsed at once, one thread each, then the plan on every core, writing the
        // merged registry as JSON text (here counted, not stored).
        let texts = files.map(|lines| lines.join("\n"));
        group.bench_with_input(
            BenchmarkId::new("failback-streaming", label(n)),
            &texts,
            |b, [base, primary, secondary]| {
                b.iter(|| {
                    let failback = Failback::from_lines(
                        ExportReader::new("base.jsonl", base.as_bytes()),
                        ExportReader::new("primary.jsonl", primary.as_bytes()),
                        ExportReader::new("secondary.jsonl", secondary.as_bytes()),
                        Side::Secondary,
                    )
                    .expect("valid");
                    let mut bytes = 0;
                    let plan = Plan::stream_json(&failback, |text| {
                        bytes += black_box(text).len();
                        Ok(())
                    })
                    .expect("counting cannot fail");
                    black_box((plan, bytes))
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, registry_merge, ingest, iothub);
criterion_main!(benches);
