//! The device's JSON values: twin leaves and metadata keys, each a register of its own,
//! settled write by write by the field preference; then the twin's shape rule.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Resolver;
use crate::clock::{Dot, ReplicaId};
use crate::device::DeviceRecord;
use crate::policy::{Candidate, Rule, by_preference};
use crate::report::{Conflict, ConflictValue};
use crate::stamp::Stamp;
use crate::twin::{self, TwinPath};

/// A write competing for a twin leaf or metadata key `K`; `None` is a removal.
type Write<'a, K> = (K, Dot, Stamp, Option<&'a Value>);

/// Sorts writes by key, then dot, and yields each key's run: in dot order, as a conflict lists
/// them (in record order, a write to one incarnation would come before another incarnation's
/// earlier creation). A flat sorted vector rather than a map of vectors:
/// settling a device is on the merge's path for every conflicting key, and this is one
/// allocation instead of one per leaf.
fn by_key<'w, 'a, K: Ord + Copy>(
    writes: &'w mut [Write<'a, K>],
) -> impl Iterator<Item = &'w [Write<'a, K>]> {
    writes.sort_by_key(|w| (w.0, w.1));
    let writes: &'w [Write<'a, K>] = writes;
    writes.chunk_by(|a, b| a.0 == b.0)
}

impl Resolver<'_> {
    /// Settles the writes competing for one twin leaf or metadata key by the field preference
    /// and returns the winner (whose value is `None` for a removal).
    fn json<'b, 'a, K>(
        &mut self,
        field: impl FnOnce() -> String,
        path: &str,
        raw: &'b [Write<'a, K>],
    ) -> Candidate<'b, Option<&'a Value>> {
        let candidates: Vec<_> = raw
            .iter()
            .map(|(_, dot, stamp, value)| Candidate {
                dot: *dot,
                stamp: *stamp,
                value,
            })
            .collect();
        let outcome = by_preference(&candidates, |_| true, self.policy.fields);
        let key = self.fingerprint_key();
        let show = |value: &Option<&Value>| twin::shown_value(path, *value, key);
        let i = self.settle(field, &candidates, outcome, false, show);
        candidates[i]
    }
}

/// Per-leaf resolution of the twin, then the shape rule: where a value and a deeper leaf are
/// both live (concurrent writes), the deeper leaf wins so that no child write is lost.
///
/// Returns the settled leaves when `whole`; else none (a report needs the conflicts only),
/// and a lone creation's leaves are weighed only where they can conflict.
pub(super) fn resolve_twin(
    resolver: &mut Resolver<'_>,
    records: &[DeviceRecord],
    whole: bool,
) -> Vec<(TwinPath, Value)> {
    // The creations' leaves, parsed once (they are kept as text): the writes borrow them.
    let created: Vec<BTreeMap<TwinPath, Value>> = records
        .iter()
        .map(|r| match r.creation() {
            Some(c) if whole || records.len() > 1 || c.twin.is_nested() => c.twin.leaves(),
            _ => BTreeMap::new(),
        })
        .collect();
    let mut writes: Vec<Write<'_, &TwinPath>> = Vec::new();
    for (record, leaves) in records.iter().zip(&created) {
        let twin = &record.written().twin;
        // A register cleared by a related write holds no value, only a past: no candidate.
        for (path, reg) in twin.iter().filter(|(_, reg)| !reg.is_empty()) {
            let entries = reg
                .entries()
                .iter()
                .map(|e| (path, e.dot, e.stamp, e.value.as_ref()));
            writes.extend(entries);
        }
        let Some(creation) = record.creation() else {
            continue;
        };
        for (path, value) in leaves {
            // A register at the path, an ancestor or a descendant was written after the
            // creation and so overwrote this leaf (a register cleared by a related write
            // included: it counts as written).
            let (lo, hi) = path.descendant_bounds();
            let overwritten = twin.contains_key(path)
                || path.ancestors().any(|a| twin.contains_key(&a))
                || twin.range(&lo, &hi).next().is_some();
            if !overwritten {
                writes.push((path, record.incarnation, creation.stamp, Some(value)));
            }
        }
    }
    let mut winners: Vec<(&TwinPath, Candidate<'_, Option<&Value>>)> = Vec::new();
    for run in by_key(&mut writes) {
        let path = run[0].0;
        winners.push((path, resolver.json(|| path.to_string(), &path.path, run)));
    }
    // Shape rule. Winners are in path order, so a path's descendants lie in the run of paths
    // it starts, right after it: not necessarily first in that run, since a sibling key can
    // sort between (`a` < `a-b` < `a.b`: `-` and a few other key characters sort below `.`).
    let mut out = Vec::new();
    for (at, (path, winner)) in winners.iter().enumerate() {
        let children: Vec<_> = winners[at + 1..]
            .iter()
            .take_while(|(p, _)| p.section == path.section && p.path.starts_with(&*path.path))
            .filter(|(p, _)| path.is_ancestor_of(p))
            .filter(|(_, c)| c.value.is_some())
            .collect();
        if children.is_empty() {
            // A report needs only the conflicts: the leaves are copied out for a read.
            if let Some(value) = winner.value.filter(|_| whole) {
                out.push(((*path).clone(), value.clone()));
            }
            continue;
        }
        // Not in dot order, as `Conflict::values` says: these are settled values of different
        // paths, not one field's writes, and the order shows which was overwritten.
        let at_path = ConflictValue {
            replica: winner.dot.replica,
            stamp: winner.stamp,
            value: twin::shown_value(&path.path, *winner.value, resolver.fingerprint_key()),
        };
        let below = children.iter().map(|(p, c)| (*p, c));
        push_child_beats_scalar(resolver, path, at_path, below);
    }
    report_cleared_above(resolver, records, &winners);
    out
}

/// The shape rule for a write above a path that is no longer held: a write below it that had
/// not seen it stands as it would beside it held, so the subtree the write above replaced
/// (removed, or overwritten by a value) has a concurrent child again, and the write above is
/// lost as a held one is under [`Rule::ChildBeatsScalar`]. Its register was cleared by a later
/// write at or below its path, made by its own side or by one that saw it, which leaves it a
/// past and no value ([`DeviceRecord::set_twin`](crate::device::DeviceRecord::set_twin)).
///
/// Weighing only held values would miss it: a side deletes `a` (reported, alone, against the
/// other side's concurrent `a.x`) and then sets `a.y`, which clears the delete, and the same
/// lost delete would be reported nowhere.
///
/// Its value is not held any more, so the conflict shows it as `overwritten`, from the first
/// replica (in replica order) whose write there a write below had not seen, at the default
/// stamp (a register's past keeps counters, not stamps); then, as the shape rule does, each
/// value below that had not seen it. A path whose value is held is left to the shape rule,
/// which already lists every value below it.
fn report_cleared_above(
    resolver: &mut Resolver<'_>,
    records: &[DeviceRecord],
    winners: &[(&TwinPath, Candidate<'_, Option<&Value>>)],
) {
    let winner = |path: &TwinPath| {
        winners
            .binary_search_by(|(p, _)| (*p).cmp(path))
            .ok()
            .map(|i| &winners[i].1)
    };
    // Per path above: the first replica whose write there was not seen, and the paths below.
    let mut lost: BTreeMap<&TwinPath, (ReplicaId, BTreeSet<&TwinPath>)> = BTreeMap::new();
    for record in records {
        for unseen in record.written().twin_writes_unseen_below() {
            let below_holds_value = winner(unseen.below).is_some_and(|c| c.value.is_some());
            if winner(unseen.above).is_some() || !below_holds_value {
                continue;
            }
            let (replica, below) = lost
                .entry(unseen.above)
                .or_insert_with(|| (unseen.replica, BTreeSet::new()));
            *replica = (*replica).min(unseen.replica);
            below.insert(unseen.below);
        }
    }
    for (path, (replica, below)) in lost {
        let at_path = ConflictValue {
            replica,
            stamp: Stamp::default(),
            value: OVERWRITTEN.to_owned(),
        };
        let below = below.into_iter().filter_map(|p| Some((p, winner(p)?)));
        push_child_beats_scalar(resolver, path, at_path, below);
    }
}

/// Reports the shape rule's conflict at `path`: `at_path`, the value written there, then each
/// settled value `below` it as `PATH = VALUE`, the first of which is the winner.
fn push_child_beats_scalar<'c, 'v: 'c>(
    resolver: &mut Resolver<'_>,
    path: &TwinPath,
    at_path: ConflictValue,
    below: impl Iterator<Item = (&'c TwinPath, &'c Candidate<'c, Option<&'v Value>>)>,
) {
    let key = resolver.fingerprint_key();
    let mut values = vec![at_path];
    values.extend(below.map(|(p, c)| ConflictValue {
        replica: c.dot.replica,
        stamp: c.stamp,
        value: format!("{p} = {}", twin::shown_value(&p.path, *c.value, key)),
    }));
    resolver.conflicts.push(Conflict {
        key: resolver.key.clone(),
        field: path.to_string(),
        winner: 1,
        values,
        rule: Rule::ChildBeatsScalar,
        security: false,
    });
}

/// How a conflict shows a write no register holds any more ([`report_cleared_above`]).
const OVERWRITTEN: &str = "overwritten";

pub(super) fn resolve_metadata<'a>(
    resolver: &mut Resolver<'_>,
    records: &'a [DeviceRecord],
) -> Vec<(&'a str, &'a Value)> {
    let mut writes: Vec<Write<'a, &'a str>> = Vec::new();
    for record in records {
        let metadata = &record.written().metadata;
        for (key, reg) in metadata.iter().filter(|(_, reg)| !reg.is_empty()) {
            let entries = reg
                .entries()
                .iter()
                .map(|e| (key.as_str(), e.dot, e.stamp, e.value.as_ref()));
            writes.extend(entries);
        }
        let Some(created) = record.created.as_deref() else {
            continue;
        };
        for (key, value) in &created.identity.metadata {
            if !metadata.contains_key(key) {
                writes.push((key, record.incarnation, created.stamp, Some(value)));
            }
        }
    }
    let mut out = Vec::new();
    for run in by_key(&mut writes) {
        let key = run[0].0;
        if let Some(value) = resolver.json(|| format!("metadata.{key}"), key, run).value {
            out.push((key, *value));
        }
    }
    out
}
