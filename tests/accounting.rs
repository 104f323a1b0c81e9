//! No change is lost silently: every write a merge drops was either overwritten or deleted by
//! a write whose writer had seen it, or is named in a report (a refusal, or a delete-wins
//! conflict naming the update). And the converse for delete-wins: an update it names as lost
//! is one a delete of its incarnation had not seen.
//!
//! Writes are told apart by their dots, read from the states' JSON (independently of the
//! crate's reading). "Seen by the writer of what replaced it" is read from the histories
//! themselves: a write's delta claims, in its context, the dots it overwrote (or deleted),
//! which its writer held when it wrote.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Rng, context_dots, history};
use failback::{
    CausalContext, Conflict, DeviceKey, Dot, Identity, Policy, Registry, ReplicaId, Report, Rule,
    Stale, Stamp, VersionVector,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

/// A write held in a state: its device (as JSON text), its incarnation, its dot.
type Held = (String, Dot, Dot);

/// Every write `registry` holds: each live record's creation and register entries, and each
/// tombstone's delete.
fn held(registry: &Registry) -> BTreeSet<Held> {
    fn dots_in(value: &Value, out: &mut Vec<Dot>) {
        match value {
            Value::Object(map) => {
                if let Some(dot) = map.get("dot") {
                    out.push(serde_json::from_value(dot.clone()).expect("a dot"));
                }
                map.values().for_each(|v| dots_in(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| dots_in(v, out)),
            _ => {}
        }
    }
    let wire = serde_json::to_value(registry).expect("serializes");
    let mut out = BTreeSet::new();
    for device in wire["devices"].as_array().expect("a list") {
        let key = device["key"].to_string();
        for record in device["live"].as_array().into_iter().flatten() {
            let incarnation: Dot =
                serde_json::from_value(record["incarnation"].clone()).expect("a dot");
            if record.get("created").is_some() {
                out.insert((key.clone(), incarnation, incarnation));
            }
            let mut dots = Vec::new();
            dots_in(record, &mut dots);
            out.extend(dots.into_iter().map(|d| (key.clone(), incarnation, d)));
        }
        for tombstone in device["tombstones"].as_array().into_iter().flatten() {
            let incarnation: Dot =
                serde_json::from_value(tombstone["incarnation"].clone()).expect("a dot");
            let deleted: Dot = serde_json::from_value(tombstone["deleted"].clone()).expect("a dot");
            out.insert((key.clone(), incarnation, deleted));
        }
    }
    out
}

/// One write of a history: its own dots, what its writer had seen, and the dots its delta
/// claims it overwrote or deleted.
struct Write {
    own: Vec<Dot>,
    past: CausalContext,
    claimed: BTreeSet<Dot>,
}

fn writes(h: &common::History) -> Vec<Write> {
    h.deltas()
        .iter()
        .map(|d| Write {
            own: d.own.clone(),
            past: d.past.clone(),
            claimed: context_dots(d.registry.context())
                .into_iter()
                .filter(|dot| !d.own.contains(dot))
                .collect(),
        })
        .collect()
}

/// What a report names as lost: refused writes (an incarnation refused as a resurrection
/// names every write under it) and the updates of delete-wins conflicts.
#[derive(Default)]
struct Named {
    dots: BTreeSet<(String, Dot)>,
    incarnations: BTreeSet<(String, Dot)>,
    updates: BTreeSet<(String, String)>,
}

impl Named {
    /// What every merge of `h` named.
    fn of(h: &common::History) -> Self {
        let mut named = Self::default();
        h.world.reports.iter().for_each(|r| named.add(r));
        named
    }

    fn add(&mut self, report: &Report) {
        for r in &report.rejected {
            let key = serde_json::to_value(&r.key).expect("a key").to_string();
            if r.kind == Stale::Resurrection {
                self.incarnations.insert((key.clone(), r.dot));
            }
            self.dots.insert((key, r.dot));
        }
        for c in &report.conflicts {
            if c.rule == Rule::DeleteWins {
                let key = serde_json::to_value(&c.key).expect("a key").to_string();
                for v in &c.values {
                    self.updates.insert((key.clone(), v.value.clone()));
                }
            }
        }
    }

    fn names(&self, (key, incarnation, dot): &Held) -> bool {
        self.dots.contains(&(key.clone(), *dot))
            || self.incarnations.contains(&(key.clone(), *incarnation))
            || self
                .updates
                .contains(&(key.clone(), format!("update {dot}")))
    }
}

/// The writes `held` lost in `merged` that no write seen by `seen` overwrote and `named` does
/// not name.
fn unaccounted(
    before: &BTreeSet<Held>,
    merged: &Registry,
    seen: &CausalContext,
    writes: &[Write],
    named: &Named,
) -> Vec<Held> {
    let after = held(merged);
    // Everything the merged sides have seen: their contexts, and the causal past of each
    // write they saw.
    let mut known = seen.clone();
    for w in writes {
        if w.own.iter().any(|&d| seen.contains(d)) {
            known.join(&w.past);
        }
    }
    let overwritten: BTreeSet<Dot> = writes
        .iter()
        .filter(|w| w.own.iter().any(|&d| known.contains(d)))
        .flat_map(|w| w.claimed.iter().copied())
        .collect();
    before
        .iter()
        .filter(|w| !after.contains(w))
        .filter(|w| !overwritten.contains(&w.2))
        .filter(|w| !named.names(w))
        .cloned()
        .collect()
}

/// One merge of two states, in the order `seed` picks: the two sides as merged (into the
/// first), the result, its report (added to `named`), and what the two had seen together.
struct OneMerge {
    sides: [Registry; 2],
    merged: Registry,
    report: Report,
    seen: CausalContext,
}

fn merge_in_either_order(x: Registry, y: Registry, seed: u64, named: &mut Named) -> OneMerge {
    let [a, b] = if Rng(seed).below(2) == 0 {
        [x, y]
    } else {
        [y, x]
    };
    let mut merged = a.clone();
    let report = merged.merge(&b);
    named.add(&report);
    let mut seen = a.context().clone();
    seen.join(b.context());
    OneMerge {
        sides: [a, b],
        merged,
        report,
        seen,
    }
}

fn pick(states: &[Registry], i: &Index) -> Registry {
    states[i.index(states.len())].clone()
}

proptest! {
    #![proptest_config(common::config())]

    /// Joined whole, a history keeps every write ever made, but those overwritten or deleted
    /// by a writer that had seen them and those its merges named.
    #[test]
    fn the_join_of_a_history_loses_no_write_silently(h in history()) {
        let writes = writes(&h);
        let mut named = Named::of(&h);
        let mut all = Registry::new();
        let mut before = BTreeSet::new();
        for state in h.states() {
            before.extend(held(&state));
            let report = all.merge(&state);
            named.add(&report);
        }
        let lost = unaccounted(&before, &all, all.context(), &writes, &named);
        prop_assert!(lost.is_empty(), "lost silently: {:?}", lost);
    }

    /// One merge of any two states of a history: what it drops was overwritten by a write one
    /// of them had seen, or is named by its report (or by an earlier merge's, which the side
    /// that no longer holds it went through).
    #[test]
    fn a_merge_loses_no_write_silently(
        h in history(),
        (i, j) in any::<(Index, Index)>(),
        seed in any::<u64>(),
    ) {
        let writes = writes(&h);
        let mut states = h.states();
        for from in h.replicas() {
            for to in h.replicas() {
                states.push(from.delta_since(to.context().vector()));
            }
        }
        let mut earlier = Named::of(&h);
        let OneMerge { sides: [a, b], merged, report, seen } =
            merge_in_either_order(pick(&states, &i), pick(&states, &j), seed, &mut earlier);
        let before: BTreeSet<Held> = held(&a).union(&held(&b)).cloned().collect();
        let lost = unaccounted(&before, &merged, &seen, &writes, &earlier);
        prop_assert!(lost.is_empty(), "lost silently: {:?}\nreport {:?}", lost, report);
    }

    /// The same with compaction: states compacted against what every replica has reached,
    /// merged with any state of the history (an older one is a replica restored from a
    /// backup). A compacted delete's tombstone is gone on purpose; every other write is kept,
    /// overwritten by a write seen, or named.
    #[test]
    fn a_merge_with_a_compacted_state_loses_no_write_silently(
        h in history(),
        (i, j) in any::<(Index, Index)>(),
        seed in any::<u64>(),
    ) {
        let writes = writes(&h);
        let states = h.states();
        let mut stable = h.replicas()[0].context().vector().clone();
        h.replicas().iter().for_each(|r| stable.meet(r.context().vector()));
        let mut earlier = Named::of(&h);
        let mut compacted = pick(&states, &i);
        compacted.compact(&stable);
        let OneMerge { sides: [a, b], merged, report, seen } =
            merge_in_either_order(compacted, pick(&states, &j), seed, &mut earlier);
        // Tombstones under the stable vector are what compaction drops.
        let compactable: BTreeSet<Held> = [&a, &b]
            .into_iter()
            .flat_map(|s| s.deleted())
            .flat_map(|(key, tombstones)| {
                let key = serde_json::to_value(key).expect("a key").to_string();
                tombstones.iter().map(move |t| (key.clone(), t.incarnation, t.deleted))
            })
            .filter(|(_, incarnation, deleted)| stable.contains(*incarnation) && stable.contains(*deleted))
            .collect();
        let before: BTreeSet<Held> = held(&a)
            .union(&held(&b))
            .filter(|w| !compactable.contains(*w))
            .cloned()
            .collect();
        let lost = unaccounted(&before, &merged, &seen, &writes, &earlier);
        prop_assert!(lost.is_empty(), "lost silently: {:?}\nreport {:?}", lost, report);
    }

    /// Every update a delete-wins conflict names, in the history's merges and in one more
    /// merge of any two of its states (`delta_since` ones among them), is one that a delete of
    /// its incarnation had not seen: named by the delete's writer's version vector when it
    /// wrote, read from the history rather than from the tombstone. (A write that writer saw
    /// only beyond a gap may be named: the report errs towards naming.)
    #[test]
    fn a_delete_wins_conflict_names_no_update_its_deleter_had_seen(
        h in history(),
        (i, j) in any::<(Index, Index)>(),
        seed in any::<u64>(),
    ) {
        let mut states = h.states();
        for from in h.replicas() {
            for to in h.replicas() {
                states.push(from.delta_since(to.context().vector()));
            }
        }
        // Where each update is held: its key and incarnation, by the text a report names it by.
        let place: BTreeMap<(String, String), (Dot, Dot)> = states
            .iter()
            .flat_map(held)
            .map(|(key, incarnation, dot)| ((key, format!("update {dot}")), (incarnation, dot)))
            .collect();
        // What each delete's writer had seen, by key and incarnation.
        let mut deletes: BTreeMap<(String, Dot), Vec<&VersionVector>> = BTreeMap::new();
        for d in h.deltas() {
            for (key, tombstones) in d.registry.deleted() {
                let key = serde_json::to_value(key).expect("a key").to_string();
                for t in tombstones.iter().filter(|t| d.own.contains(&t.deleted)) {
                    deletes.entry((key.clone(), t.incarnation)).or_default().push(d.past.vector());
                }
            }
        }
        let mut reports = h.world.reports.clone();
        let mut ignored = Named::default();
        reports.push(
            merge_in_either_order(pick(&states, &i), pick(&states, &j), seed, &mut ignored).report,
        );
        for c in reports.iter().flat_map(|r| &r.conflicts).filter(|c| c.rule == Rule::DeleteWins) {
            let key = serde_json::to_value(&c.key).expect("a key").to_string();
            for v in c.values.iter().filter(|v| v.value.starts_with("update ")) {
                let Some(&(incarnation, dot)) = place.get(&(key.clone(), v.value.clone())) else {
                    return Err(TestCaseError::fail(format!("{key} {} named, held in no state", v.value)));
                };
                let unseen = deletes
                    .get(&(key.clone(), incarnation))
                    .is_some_and(|seen| seen.iter().any(|s| !s.contains(dot)));
                prop_assert!(unseen, "{} {} named, though every delete of {} had seen it", key, v.value, incarnation);
            }
        }
    }

    /// Which of two states merges the other does not decide what a delete-wins conflict
    /// names: `x ⊔ y` and `y ⊔ x` report the same ones, for every two states of a history
    /// (`delta_since` ones among them) where neither includes the other. Each names a lost update once, lists its values in dot
    /// order, and the delete is the winner. The deleter's merge had named no update, only the
    /// incarnation, as a resurrection (2026-11-23, found in review).
    #[test]
    fn a_delete_wins_conflict_is_reported_alike_in_both_merge_directions(h in history()) {
        let mut states = h.states();
        for from in h.replicas() {
            for to in h.replicas() {
                states.push(from.delta_since(to.context().vector()));
            }
        }
        let delete_wins = |into: &Registry, from: &Registry| -> (bool, Vec<Conflict>) {
            let report = into.clone().merge(from);
            let conflicts = report.conflicts.into_iter().filter(|c| c.rule == Rule::DeleteWins);
            (report.state_changed, conflicts.collect())
        };
        // Only a side holding a tombstone can report a delete that won.
        let deletes = |s: &Registry| s.deleted().next().is_some();
        for (at, x) in states.iter().enumerate() {
            for y in states[at + 1..].iter().filter(|y| deletes(x) || deletes(y)) {
                let ((x_changed, xy), (y_changed, yx)) = (delete_wins(x, y), delete_wins(y, x));
                // A side that already includes the other reads no record merging it, and
                // reports nothing: its own merge that brought the update in named what it lost.
                if x_changed && y_changed {
                    prop_assert_eq!(&xy, &yx);
                }
                for c in xy.iter().chain(&yx) {
                    in_dot_order_each_once(c)?;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(common::config())]

    /// A report's counts are what the merge did to each key's live records: `added` (none
    /// before, some after), `deleted` (the reverse), `updated` (some before and after, and
    /// they differ). A key that only gains a tombstone is not updated (review 59: it was
    /// counted as updated). Merged with states of a history, its deltas, and states compacted
    /// against what every replica reached.
    #[test]
    fn a_reports_counts_are_what_the_merge_did_to_the_live_records(
        h in history(),
        (i, j) in any::<(Index, Index)>(),
        compact in any::<bool>(),
    ) {
        let mut states = h.states();
        for from in h.replicas() {
            for to in h.replicas() {
                states.push(from.delta_since(to.context().vector()));
            }
        }
        let a = pick(&states, &i);
        let mut b = pick(&states, &j);
        if compact {
            let mut stable = h.replicas()[0].context().vector().clone();
            h.replicas().iter().for_each(|r| stable.meet(r.context().vector()));
            if b.context().vector().includes(&stable) {
                b.compact(&stable);
            }
        }
        let mut merged = a.clone();
        let report = merged.merge(&b);
        let keys: BTreeSet<&DeviceKey> = a.keys().chain(b.keys()).chain(merged.keys()).collect();
        let (mut added, mut deleted, mut updated) = (0, 0, 0);
        for key in keys {
            let (before, after) = (a.records(key), merged.records(key));
            match (before.is_empty(), after.is_empty()) {
                (true, false) => added += 1,
                (false, true) => deleted += 1,
                (false, false) if before != after => updated += 1,
                _ => {}
            }
        }
        prop_assert_eq!(
            (report.added, report.deleted, report.updated),
            (added, deleted, updated),
            "{}", report
        );
    }
}

/// A device here gains the tombstone of an incarnation it never held (created and deleted by
/// another replica): its records and its read stay as they were, so it is not updated, but
/// the merge still stores the delete (`state_changed`), or a stale copy of that incarnation
/// could later stand. Checked through the general slot join (the tombstone comes alone) and
/// through the shortcut that takes the incoming slot whole (it holds this side's record too).
#[test]
fn a_device_gaining_only_a_foreign_tombstone_is_not_updated() {
    let (a, d) = (ReplicaId::from_u128(1), ReplicaId::from_u128(4));
    let key = DeviceKey::device("pump").expect("valid");
    let mut at_a = Registry::new();
    at_a.writer(a, Stamp::new(1, 0))
        .create(&key, Identity::default())
        .expect("fresh");
    let mut at_d = Registry::new();
    at_d.writer(d, Stamp::new(1, 0))
        .create(&key, Identity::default())
        .expect("fresh");
    at_d.writer(d, Stamp::new(2, 0)).delete(&key).expect("live");
    // C holds A's device and D's delete: its slot absorbs A's.
    let mut at_c = Registry::new();
    at_c.merge(&at_a);
    at_c.merge(&at_d);
    for from in [&at_d, &at_c] {
        let mut merged = at_a.clone();
        let report = merged.merge(from);
        assert_eq!(merged.records(&key), at_a.records(&key));
        assert_eq!(
            merged.device(&key, &Policy::default()),
            at_a.device(&key, &Policy::default())
        );
        assert_eq!(
            merged.tombstones(&key),
            at_d.tombstones(&key),
            "the delete is kept"
        );
        assert!(report.state_changed, "{report}");
        assert_eq!(
            (
                report.added,
                report.updated,
                report.deleted,
                report.unchanged
            ),
            (0, 0, 0, 1),
            "{report}"
        );
    }
}

/// A report counts per key of the incoming state, and also the keys held here alone that the
/// incoming state's compacted deletes remove: a replica restored from a backup older than
/// those deletes learns of them from the incoming context alone, and the devices it loses are
/// counted as deleted, or as updated where another incarnation stays live. Keys held here
/// alone that nothing removes are not counted, not even as unchanged (review 59: the report's
/// docs said the counts were per key of the incoming state only).
#[test]
fn a_merge_with_compacted_deletes_counts_the_devices_they_remove_here() {
    let (a, c) = (ReplicaId::from_u128(1), ReplicaId::from_u128(3));
    let [kept, gone, split, own] =
        ["kept", "gone", "split", "own"].map(|id| DeviceKey::device(id).expect("valid"));
    let mut at_a = Registry::new();
    let mut writer = at_a.writer(a, Stamp::new(1, 0));
    for key in [&kept, &gone, &split] {
        writer.create(key, Identity::default()).expect("fresh");
    }
    // C creates `split` too, concurrently (a second incarnation), and a device of its own.
    let mut at_c = Registry::new();
    let mut writer = at_c.writer(c, Stamp::new(2, 0));
    for key in [&split, &own] {
        writer.create(key, Identity::default()).expect("fresh");
    }
    at_c.merge(&at_a);
    let backup = at_c.clone();
    // A deletes `gone`, and `split` as it knows it (its own incarnation only); C takes the
    // deletes, so every replica has reached A's vector, and A compacts against it.
    let mut writer = at_a.writer(a, Stamp::new(3, 0));
    for key in [&gone, &split] {
        writer.delete(key).expect("live");
    }
    at_c.merge(&at_a);
    let stable = at_a.context().vector().clone();
    assert!(at_c.context().vector().includes(&stable));
    at_a.compact(&stable);
    assert!(at_a.keys().eq([&kept]), "A holds `kept` alone");

    let mut restored = backup.clone();
    let report = restored.merge(&at_a);
    assert!(restored.device(&gone, &Policy::default()).is_none());
    assert_eq!(restored.records(&split).len(), 1, "C's incarnation stays");
    assert!(restored.device(&own, &Policy::default()).is_some());
    assert_eq!(
        (
            report.added,
            report.updated,
            report.deleted,
            report.unchanged
        ),
        (0, 1, 1, 1),
        "`split` updated and `gone` deleted, though A holds neither; `kept` unchanged; `own` \
         not counted: {report}"
    );
}

/// A delete-wins conflict names each lost update once, in dot order, with the delete, the
/// winner, at its own dot among them.
fn in_dot_order_each_once(c: &Conflict) -> Result<(), TestCaseError> {
    prop_assert_eq!(c.values[c.winner].value.as_str(), "deleted", "{:?}", c);
    let mut once: Vec<&str> = c.values.iter().map(|v| v.value.as_str()).collect();
    once.sort_unstable();
    once.dedup();
    prop_assert_eq!(once.len(), c.values.len(), "named twice: {:?}", c);
    // A value shows its dot's replica; an update's counter is in its text.
    let dot_of = |v: &failback::ConflictValue| {
        let counter = v
            .value
            .rsplit(':')
            .next()
            .and_then(|c| c.parse::<u64>().ok());
        (
            v.replica,
            counter.filter(|_| v.value.starts_with("update ")),
        )
    };
    let updates: Vec<_> = c
        .values
        .iter()
        .map(dot_of)
        .filter(|d| d.1.is_some())
        .collect();
    prop_assert!(updates.windows(2).all(|w| w[0] < w[1]), "{:?}", c);
    prop_assert!(
        c.values.windows(2).all(|w| w[0].replica <= w[1].replica),
        "{:?}",
        c
    );
    Ok(())
}
