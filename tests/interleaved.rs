//! Compaction in the middle of a history: replicas compact against what every replica has
//! reached so far, then keep writing, merging whole states and deltas, and receiving old
//! deltas late. Compaction only drops tombstones every replica has seen, so each replica ends
//! as the same history without compaction leaves it, compacted to its own stable vector.
//!
//! Syncs among events: an ingest takes each write's event and, interleaved with their
//! repeats, syncs (`delta_since` of states the history passed through, for the vectors of
//! others), which carry again writes it has applied; every one is accepted and the ingest
//! ends at the join of the history.

mod common;

use common::{Plan, Rng, World, event, history, plan, same_bytes};
use failback::{Event, EventId, Ingest, Policy, Registry, VersionVector};
use proptest::prelude::*;

/// Runs `plan`, and after some steps (drawn from `seed`) compacts some replicas against the
/// meet of every replica's vector at that point.
fn run(plan: &Plan, seed: Option<u64>) -> World {
    let mut world = World::new(plan.replicas);
    let everyone: Vec<usize> = (0..plan.replicas).collect();
    let mut rng = seed.map(Rng);
    for step in &plan.steps {
        world.apply(step, &everyone);
        let Some(rng) = rng.as_mut() else { continue };
        if rng.below(3) != 0 {
            continue;
        }
        let mut stable: VersionVector = world.replicas[0].context().vector().clone();
        world
            .replicas
            .iter()
            .for_each(|r| stable.meet(r.context().vector()));
        for replica in &mut world.replicas {
            if rng.below(2) == 0 {
                replica.compact(&stable);
            }
        }
    }
    world
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn compacting_along_the_way_changes_nothing_but_the_tombstones_dropped(
        p in plan(25),
        seed in any::<u64>(),
    ) {
        let plain = run(&p, None);
        let compacted = run(&p, Some(seed));
        let policy = Policy::default();
        let devices = |r: &Registry| r.devices(&policy).collect::<Vec<_>>();
        for (with, without) in compacted.replicas.iter().zip(&plain.replicas) {
            let mut expected = without.clone();
            expected.compact(with.stable());
            same_bytes(with, &expected)?;
            prop_assert_eq!(devices(with), devices(without));
        }
        // And their join, against the join compacted to the furthest stable vector reached.
        let join = |w: &World| {
            let mut all = Registry::new();
            w.replicas.iter().for_each(|r| {
                all.merge(r);
            });
            all
        };
        let mut expected = join(&plain);
        let got = join(&compacted);
        expected.compact(got.stable());
        same_bytes(&got, &expected)?;
    }
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn syncs_repeating_applied_writes_are_taken_and_converge(h in history(), seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let writes: Vec<Event> = h
            .deltas()
            .iter()
            .enumerate()
            .map(|(i, d)| event(format!("w{i}"), d.registry.clone()))
            .collect();
        let states = h.states();
        let mut syncs = Vec::new();
        for i in 0..6 {
            let from = &states[rng.below(states.len())];
            let to = &states[rng.below(states.len())];
            let sync = from.delta_since(to.context().vector());
            if let Ok(event) = Event::new(EventId::new(format!("s{i}")), sync) {
                syncs.push(event);
            }
        }
        let mut first: Vec<&Event> = writes.iter().collect();
        rng.shuffle(&mut first);
        let mut then: Vec<&Event> = syncs.iter().chain(syncs.iter()).collect();
        for _ in 0..writes.len() {
            then.push(&writes[rng.below(writes.len().max(1))]);
        }
        rng.shuffle(&mut then);
        let mut ingest = Ingest::new(Registry::new());
        for event in first.into_iter().chain(then) {
            let applied = ingest.apply(event);
            prop_assert!(applied.is_ok(), "{} refused: {:?}", event.id(), applied);
        }
        same_bytes(ingest.registry(), &h.join())?;
    }
}
