//! Planning in blocks on worker threads: the keys cut into blocks of whole device ids, each
//! block planned from an empty plan on a worker and handed back in key order.
//!
//! Apart from the line decisions, which never know they run in a block: why the blocks' plans
//! add up to the sequential plan is said at [`Plan::stream_json_on`].

use super::Plan;
use super::planner::Planner;
use crate::error::Result;
use crate::key::DeviceKey;

/// Keys in a block of a parallel plan: a block's text (about 2 MB at the 520 bytes of a
/// generated export's line) and its planning (about 25 ms) are large beside a hand-over, and
/// small beside a run that parallelism pays for. Chosen by that reasoning, not tuned.
pub(super) const BLOCK: usize = 4096;

/// At most this many threads plan one registry.
pub(super) const WORKERS: usize = 8;

/// Consecutive blocks of about `size` keys, none splitting a device id (a module's decisions
/// read its device's, see [`Plan::stream_json_on`]).
pub(super) fn blocks<'k>(
    keys: &'k [&'k DeviceKey],
    size: usize,
) -> impl Iterator<Item = &'k [&'k DeviceKey]> + 'k {
    let mut rest = keys;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.clamp(1, rest.len());
        while end < rest.len() && rest[end].device == rest[end - 1].device {
            end += 1;
        }
        let (block, after) = rest.split_at(end);
        rest = after;
        Some(block)
    })
}

impl Planner<'_> {
    /// Plans `blocks` (consecutive, none splitting a device id) on `workers` threads, handing
    /// `sink` each block's merged lines as JSON text, in order, when `text` is set (see
    /// [`Plan::stream_json_on`]).
    pub(super) fn plan_blocks(
        &self,
        blocks: &[&[&DeviceKey]],
        workers: usize,
        text: bool,
        mut sink: impl FnMut(&str) -> Result<()>,
    ) -> Result<Plan> {
        // One worker is the calling thread itself, which then needs no helper.
        let helpers = if workers > 1 && blocks.len() > 1 {
            workers
        } else {
            0
        };
        let mut plan = Plan::empty();
        std::thread::scope(|scope| {
            let planner = self;
            // A helper the OS refuses to start has no inbox, and with no helpers at all there
            // is one empty inbox: the calling thread plans those blocks itself, in turn
            // (`src/spawn.rs`).
            let mut inboxes: Vec<_> = (0..helpers)
                .map(|first| {
                    let (send, inbox) = std::sync::mpsc::sync_channel(1);
                    crate::spawn::try_spawn(scope, move || {
                        for keys in blocks.iter().skip(first).step_by(helpers) {
                            // The calling thread has stopped reading: a sink failed.
                            if send.send(planner.plan_block(keys, text)).is_err() {
                                break;
                            }
                        }
                    })
                    .map(|_| inbox)
                })
                .collect();
            if inboxes.is_empty() {
                inboxes.push(None);
            }
            for (inbox, keys) in inboxes.iter().cycle().zip(blocks.iter()) {
                let planned = match inbox {
                    Some(inbox) => inbox.recv(),
                    None => Ok(planner.plan_block(keys, text)),
                };
                // A helper gone without its block panicked: the scope rethrows it.
                let Ok((part, lines)) = planned else {
                    break;
                };
                if !lines.is_empty() {
                    sink(&lines)?;
                }
                plan.append(part);
            }
            Ok::<(), crate::Error>(())
        })?;
        Ok(plan)
    }

    /// Plans `keys` from an empty plan, writing their merged lines as JSON text when `text`
    /// is set.
    fn plan_block(&self, keys: &[&DeviceKey], text: bool) -> (Plan, String) {
        let mut plan = Plan::empty();
        let mut out = String::new();
        let written = self.plan(keys.iter().copied(), &mut plan, &mut |line| {
            if text {
                line.write_json(&mut out);
                out.push('\n');
            }
            Ok(())
        });
        // The sink above cannot fail.
        debug_assert!(written.is_ok());
        (plan, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iothub::Generate;
    use crate::iothub::lift::{Failback, Side};
    use crate::iothub::plan::IDENTITY_LIMIT;

    /// A generated failback, its secondary also holding what the plan decides across a
    /// device's keys: a new gateway with its system module, a leaf and its module waiting
    /// for that gateway's scope, and a device without keys blocked with its module.
    fn generated(devices: usize, seed: u64) -> Failback {
        let mut triple = Generate { devices, seed }.run();
        let keys = r#""authentication":{"symmetricKey":{"primaryKey":"MDEyMzQ1Njc4OWFiY2RlZg==","secondaryKey":"ZmVkY2JhOTg3NjU0MzIxMA=="},"type":"sas"}"#;
        let scope = r#""deviceScope":"ms-azure-iot-edge://zz-gw-1""#;
        for text in [
            format!(
                r#"{{"id":"zz-gw","status":"enabled",{keys},"capabilities":{{"iotEdge":true}},{scope}}}"#
            ),
            format!(r#"{{"id":"zz-gw","moduleId":"$edgeAgent","status":"enabled",{keys}}}"#),
            r#"{"id":"zz-keyless","status":"enabled","authentication":null}"#.to_owned(),
            format!(r#"{{"id":"zz-keyless","moduleId":"m","status":"enabled",{keys}}}"#),
            format!(r#"{{"id":"zz-leaf","status":"enabled",{keys},{scope}}}"#),
            format!(r#"{{"id":"zz-leaf","moduleId":"probe","status":"enabled",{keys}}}"#),
        ] {
            match crate::iothub::parse_line(std::path::Path::new("secondary.jsonl"), 1, &text) {
                Ok(crate::iothub::Parsed::Device(line)) => triple.secondary.push(line),
                other => panic!("{text}: {other:?}"),
            }
        }
        Failback::lift(
            &triple.base,
            &triple.primary,
            &triple.secondary,
            Side::Secondary,
        )
        .expect("generated exports lift")
    }

    /// The sequential plan, and its merged lines as JSON text.
    fn sequential(failback: &Failback) -> (Plan, String) {
        let mut text = String::new();
        let plan = Plan::stream(failback, |line| {
            text.push_str(&line.to_json());
            text.push('\n');
            Ok(())
        })
        .expect("collecting cannot fail");
        (plan, text)
    }

    #[test]
    fn blocks_never_split_a_device_and_cover_every_key_once() {
        let keys: Vec<DeviceKey> = ["a", "b", "b/m1", "b/m2", "c", "d/m", "e", "e/m"]
            .iter()
            .map(|k| match k.split_once('/') {
                Some((d, m)) => DeviceKey::module(d, m).expect("valid"),
                None => DeviceKey::device(*k).expect("valid"),
            })
            .collect();
        let keys: Vec<&DeviceKey> = keys.iter().collect();
        for size in 0..=keys.len() + 1 {
            let blocks: Vec<_> = blocks(&keys, size).collect();
            assert_eq!(blocks.concat(), keys, "size {size}");
            for pair in blocks.windows(2) {
                let (last, first) = (pair[0].last(), pair[1].first());
                assert_ne!(last.map(|k| &k.device), first.map(|k| &k.device));
                assert!(pair[0].len() >= size.max(1), "size {size}: {pair:?}");
            }
        }
        assert_eq!(
            blocks(&keys, 2).map(<[_]>::len).collect::<Vec<_>>(),
            [4, 2, 2]
        );
    }

    #[test]
    fn blocks_planned_on_any_number_of_threads_give_the_sequential_plan_and_text() {
        let failback = generated(400, 11);
        let (expected, text) = sequential(&failback);
        // The data exercises what crosses a block: modules with their devices, creations,
        // deletions, blocked devices.
        assert!(expected.merged_devices > 400 && !expected.import.is_empty());
        let keys = |keys: &[DeviceKey]| keys.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(keys(&expected.pending_parent), ["zz-leaf", "zz-leaf/probe"]);
        assert_eq!(keys(&expected.system_modules), ["zz-gw/$edgeAgent"]);
        let blocked: Vec<_> = expected.blocked.iter().map(|b| b.key.clone()).collect();
        assert_eq!(keys(&blocked), ["zz-keyless", "zz-keyless/m"]);
        assert!(failback.merged().keys().any(|k| k.module.is_some()));
        for workers in 1..=3 {
            // Each with its workers started, and with the OS refusing them all.
            let runs = [1, 2, 3, 7, 64, 100_000]
                .into_iter()
                .flat_map(|block| [(block, false), (block, true)]);
            for (block, refused) in runs {
                let mut written = String::new();
                let mut calls = 0;
                let mut run = || {
                    Plan::stream_json_on(&failback, IDENTITY_LIMIT, workers, block, |part| {
                        assert!(part.ends_with('\n'));
                        written.push_str(part);
                        calls += 1;
                        Ok(())
                    })
                };
                let plan = if refused {
                    crate::spawn::refused::with(run)
                } else {
                    run()
                }
                .expect("the sink never fails");
                let context = format!("{workers} workers, blocks of {block}, refused {refused}");
                assert_eq!(plan, expected, "{context}");
                assert!(written == text, "{context}: the text differs");
                assert!(
                    calls >= text.lines().count().div_ceil(block.max(1) * 3),
                    "{context}"
                );
            }
        }
    }

    #[test]
    fn a_failing_sink_stops_the_plan_with_its_error() {
        let failback = generated(200, 3);
        for workers in [1, 2, 3] {
            let mut calls = 0;
            let outcome = Plan::stream_json_on(&failback, IDENTITY_LIMIT, workers, 5, |_| {
                calls += 1;
                if calls == 3 {
                    return Err(crate::Error::Io {
                        path: "merged.jsonl".into(),
                        source: std::io::Error::other("disk full"),
                    });
                }
                Ok(())
            });
            assert!(
                matches!(&outcome, Err(crate::Error::Io { source, .. }) if source.to_string() == "disk full"),
                "{workers} workers: {outcome:?}"
            );
            assert_eq!(calls, 3, "{workers} workers");
        }
    }
}
