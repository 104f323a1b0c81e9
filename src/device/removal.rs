//! Where a twin removal is written ([`DeviceRecord::removal_path`]): at the leaf it lies
//! under, and above that at a leaf that writes below it replaced, once it empties it.
//!
//! Apart from `device.rs` because it reads the record's twin as shapes (which paths hold a
//! leaf, which held one, which hold values below them), while the record writes registers.

use std::collections::BTreeMap;

use serde_json::Value;

use super::DeviceRecord;
use crate::register::MvRegister;
use crate::twin::TwinPath;

/// Whether a twin register holds a value (not only removals, or nothing but its past).
fn holds_value(reg: &MvRegister<Option<Value>>) -> bool {
    reg.entries().iter().any(|e| e.value.is_some())
}

/// The creation's twin leaves, parsed the first time one is asked for (a creation keeps its
/// twin as text).
struct CreatedLeaves<'r> {
    record: &'r DeviceRecord,
    leaves: Option<BTreeMap<TwinPath, Value>>,
}

impl CreatedLeaves<'_> {
    /// Whether the record's creation holds a leaf at `path`.
    fn contains(&mut self, path: &TwinPath) -> bool {
        let record = self.record;
        record.creation().is_some_and(|c| {
            self.leaves
                .get_or_insert_with(|| c.twin.leaves())
                .contains_key(path)
        })
    }
}

impl DeviceRecord {
    /// Where a removal of `path` is written, so that it meets every concurrent write of the
    /// leaf it removes at that leaf's path, where the field preference settles the two and
    /// the merge reports them:
    ///
    /// 1. At the ancestor of `path` that holds a leaf here (a register holding a value with no
    ///    value below it, or a creation leaf nothing has overwritten), if there is one, else at
    ///    `path`. A removal below a leaf removes the leaf
    ///    ([`Writer::set_twin`](crate::Writer::set_twin)); written below it, it would meet a
    ///    concurrent write of the leaf at another path, where the leaf always wins, silently
    ///    and whatever the policy, while the same removal written at the leaf's path is
    ///    settled by the field preference and reported. At the leaf's path
    ///    it is what RFC 7386 does, in a twin of leaves: `{"a": {"b": null}}` makes a scalar
    ///    `a` an empty object, which holds no leaf.
    /// 2. Then, when that removes a value and leaves none beside it under an ancestor that
    ///    held a leaf once (a path written here, whose register holds no value now, or a
    ///    creation leaf), at the highest such ancestor: the writes below it that replaced its
    ///    leaf are all gone, and with them the leaf, as a removal of it would have it. Written
    ///    where the value removed is, it would meet a concurrent write of the leaf nowhere: set
    ///    `a.b.x` over a scalar `a.b`, then remove it, on one side; write `a.b` on the other:
    ///    the value would stand, unreported, although the first side had removed the leaf
    ///    (`every_twin_change_a_merge_loses_is_named_by_a_conflict`).
    ///    The state keeps no trace of which write below replaced the leaf, so a write of the
    ///    leaf made after seeing that write meets the removal too: both are writes of the leaf,
    ///    neither having seen the other, and the merge reports them. And a concurrent write
    ///    below the leaf, at the path removed included, meets the removal as it meets a
    ///    removal of the leaf: it stands, by
    ///    [`Rule::ChildBeatsScalar`](crate::Rule::ChildBeatsScalar), and is reported there
    ///    (written at the path removed, the removal met a write of that path by the field
    ///    preference).
    ///
    /// A value at an ancestor, beside the one removed (a concurrent write below it made them
    /// both live), stops the second step: that value replaced no leaf, and the removal clears
    /// it where it is written, as it always has.
    pub(crate) fn removal_path(&self, path: &TwinPath) -> TwinPath {
        let mut created = CreatedLeaves {
            record: self,
            leaves: None,
        };
        let leaf = self.leaf_above(path, &mut created);
        self.replaced_leaf_emptied_by(&leaf, &mut created)
            .unwrap_or(leaf)
    }

    /// The first step of [`removal_path`](Self::removal_path): the ancestor of `path` that
    /// holds a leaf here, else `path`.
    fn leaf_above(&self, path: &TwinPath, created: &mut CreatedLeaves<'_>) -> TwinPath {
        let twin = &self.written().twin;
        for above in path.ancestors() {
            let (lo, hi) = above.descendant_bounds();
            if twin.range(&lo, &hi).any(|(_, reg)| holds_value(reg)) {
                // A value below: neither this path nor one above it holds a leaf.
                break;
            }
            let holds_leaf = match twin.get(&above) {
                Some(reg) => holds_value(reg),
                // A creation leaf shows unless a register at, above or below it overwrote it.
                None => {
                    let overwritten = twin.range(&lo, &hi).next().is_some()
                        || above.ancestors().any(|a| twin.contains_key(&a));
                    !overwritten && created.contains(&above)
                }
            };
            if holds_leaf {
                return above;
            }
        }
        path.clone()
    }

    /// The second step of [`removal_path`](Self::removal_path): the highest ancestor of
    /// `target` that held a leaf once and that removing `target` leaves without a value, if
    /// removing it removes a value.
    ///
    /// Only registers are weighed as values: a creation leaf under `target` or beside it is
    /// overwritten wherever an ancestor held a leaf once (a register there overwrites the
    /// creation leaves under it, and creation leaves do not nest).
    fn replaced_leaf_emptied_by(
        &self,
        target: &TwinPath,
        created: &mut CreatedLeaves<'_>,
    ) -> Option<TwinPath> {
        let twin = &self.written().twin;
        let (lo, hi) = target.descendant_bounds();
        let removes_value = twin.get(target).is_some_and(holds_value)
            || twin.range(&lo, &hi).any(|(_, reg)| holds_value(reg));
        if !removes_value {
            return None;
        }
        let mut emptied = None;
        for above in target.ancestors() {
            if twin.get(&above).is_some_and(holds_value) {
                break;
            }
            let (lo, hi) = above.descendant_bounds();
            let value_beside = twin
                .range(&lo, &hi)
                .any(|(p, reg)| holds_value(reg) && p != target && !target.is_ancestor_of(p));
            if value_beside {
                break;
            }
            if twin.contains_key(&above) || created.contains(&above) {
                emptied = Some(above);
            }
        }
        emptied
    }
}
