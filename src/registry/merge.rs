//! The join behind [`Registry::merge_with`]: the walk over the keys the incoming side holds,
//! each slot joined with this side's (kept, taken whole, or merged), and, in debug builds,
//! every shortcut checked against the general join it stands for.
//!
//! Apart from `registry.rs`, where `merge` and `merge_with` keep their docs for a reader of
//! [`Registry`]: the join is one piece, called by them and by an ingest (which keeps an
//! event's single key and its slot, [`SingleKey`]), and its shortcuts read beside the join
//! they must agree with.

use std::sync::Arc;

use super::Registry;
use crate::clock::{CausalContext, Dot, VersionVector};
use crate::key::DeviceKey;
use crate::policy::Policy;
use crate::report::Report;
use crate::slot::{FirstWrite, Seen, Slot, merge_slot, report_adopted};
use crate::slot_map::Joined;

/// The single key of an incoming registry that holds one, and its slot, kept outside its map
/// (an [`Event`](crate::Event) keeps them), and the slot's record as a first write
/// ([`FirstWrite`]) when the registry joining it has seen none of its dots.
pub(crate) struct SingleKey<'a> {
    pub(crate) key: &'a DeviceKey,
    pub(crate) slot: &'a Arc<Slot>,
    pub(crate) first_write: Option<&'a FirstWrite>,
}

/// An incoming registry's whole context as its dots, kept outside it (an
/// [`Event`](crate::Event) keeps them for a write's delta): the dots its writes wrote, and
/// those its context holds besides (the writes they overwrote or removed).
#[derive(Clone, Copy)]
pub(crate) struct ContextDots<'a> {
    pub(crate) written: &'a [Dot],
    pub(crate) overwritten: &'a [Dot],
}

impl ContextDots<'_> {
    /// Every dot: those written, then those overwritten.
    #[inline]
    fn iter(&self) -> impl Iterator<Item = Dot> + '_ {
        self.written.iter().chain(self.overwritten).copied()
    }
}

impl Registry {
    /// [`merge_with`](Self::merge_with) for a caller that knows this registry's context does
    /// not include `other`'s (an ingest that found one of an event's dots unseen), so the
    /// inclusion check would only search the context again. Correct for any `other`: the
    /// check is a shortcut, not a condition of the join.
    ///
    /// `single_key`, when given, is `other`'s one key and its slot, kept outside `other`'s map
    /// (an [`Event`](crate::Event) keeps them): the join then does not read that map, whose
    /// list of chunks and one chunk were two dependent cache misses of every event applied.
    /// With it may come the slot's record as a [`FirstWrite`], which joins a record that has
    /// written nothing without reading the slot.
    ///
    /// `context_dots`, when given, is `other`'s whole context as dots, and `other`
    /// carries no stable vector (an event holds them for a write's delta): the join inserts
    /// those dots, and reads neither `other`'s context nor its stable vector. Inserting every
    /// dot of a context is joining it: `c ⊔ d = c ∪ d` as sets of dots, whatever the order.
    pub(crate) fn join_unincluded(
        &mut self,
        other: &Registry,
        single_key: Option<SingleKey<'_>>,
        context_dots: Option<ContextDots<'_>>,
        policy: &Policy,
    ) -> Report {
        self.debug_assert_join_arguments(other, single_key.as_ref(), context_dots);
        #[cfg(debug_assertions)]
        let joined = {
            let mut joined = self.context.clone();
            joined.join(&other.context);
            joined
        };
        let mut report = self.join_keys(other, single_key, policy);
        // (`context_dots` come with no stable vector, which every vector includes.) The sweep
        // skipped is not checked against the sweep here, as the key walk's shortcuts are:
        // that they agree is a property of the states writers and merges make, not of every
        // state the reader accepts (a device cut from a text whose stable vector covers it
        // reads as compacted, see `drop_compacted_elsewhere`), and a debug build must not
        // panic on input. The law suites check it instead: the merge in the other direction
        // walks those keys.
        if context_dots.is_none() && !self.context.vector().includes(&other.stable) {
            report = report.combine(self.drop_compacted_elsewhere(other, policy));
        }
        self.join_clocks(other, context_dots);
        #[cfg(debug_assertions)]
        debug_assert_eq!(self.context, joined);
        // Called only past the inclusion check (its callers' or `merge_with`'s): `other`'s
        // context was not included here, and has grown this one, or its stable vector was
        // not, and has moved this one.
        report.state_changed = true;
        report
    }

    /// In debug builds, checks [`join_unincluded`](Self::join_unincluded)'s arguments: the
    /// single key is `other`'s only one, held in its map, with the first write its slot
    /// makes where this side has seen none of `other`'s dots; the context's dots are
    /// `other`'s context, and `other` carries no stable vector.
    #[inline]
    fn debug_assert_join_arguments(
        &self,
        other: &Registry,
        single_key: Option<&SingleKey<'_>>,
        context_dots: Option<ContextDots<'_>>,
    ) {
        debug_assert!(single_key.is_none_or(|single| {
            other.slots.len() == 1
                && other
                    .slots
                    .get(single.key)
                    .is_some_and(|s| Arc::ptr_eq(s, single.slot))
                && single.first_write.is_none_or(|write| {
                    Some(write) == FirstWrite::of(single.slot).as_ref()
                        && other
                            .store_dots()
                            .iter()
                            .all(|&d| !self.context.contains(d))
                })
        }));
        debug_assert!(context_dots.is_none_or(|dots| {
            let held: CausalContext = dots.iter().collect();
            other.stable.is_empty() && held == other.context
        }));
    }

    /// The key walk: joins each key `other` holds (its single key alone, when given) into this
    /// side's slots, under both sides' contexts and stable vectors as they were before the
    /// merge.
    fn join_keys(
        &mut self,
        other: &Registry,
        single_key: Option<SingleKey<'_>>,
        policy: &Policy,
    ) -> Report {
        let first_write = single_key.as_ref().and_then(|single| single.first_write);
        let Registry {
            context,
            stable,
            slots,
        } = self;
        let sides = sides((context, stable), other);
        let nothing = Slot::default();
        let join = |report: &mut Report,
                    key: &DeviceKey,
                    mine: Option<&mut Arc<Slot>>,
                    theirs: &Arc<Slot>| match mine {
            Some(mine) => {
                if let Some(write) = first_write {
                    let before =
                        cfg!(debug_assertions).then(|| (Slot::clone(mine), report.clone()));
                    if write.join_into(key, mine, policy, report) {
                        debug_assert_first_write(
                            key,
                            before,
                            (mine, theirs),
                            report,
                            sides,
                            policy,
                        );
                        return Joined::Kept;
                    }
                }
                if join_slot(key, mine, theirs, sides, policy, report) {
                    Joined::Dropped
                } else {
                    Joined::Kept
                }
            }
            None => take_new(key, theirs, sides, policy, &nothing, report)
                .map_or(Joined::Dropped, Joined::Added),
        };
        match single_key {
            Some(SingleKey { key, slot, .. }) => slots.join_one(key, slot, join),
            None => slots
                .join_with(&other.slots, join)
                .into_iter()
                .reduce(Report::combine)
                .unwrap_or_default(),
        }
    }

    /// The sweep after the key walk, which visits only the keys `other` holds: that is enough
    /// unless `other` has compacted away deletes this side has not seen (this side is behind
    /// its stable vector: a replica restored from a backup). Then `other` holds neither the
    /// deleted device nor its tombstone, only its stable vector covers them, and every key held
    /// here alone must be joined with nothing to drop what `other` removed (else the restored
    /// replica would keep the device for ever, while every other replica has it deleted).
    /// Reports only what changed: the keys walked were not the incoming side's.
    ///
    /// Needed only when `vv(self) ≱ stable(other)`, as the caller asks:
    /// `vv(self) ≥ stable(other) ⇒ no key held only here is changed by other`. Joined with
    /// nothing, a key `k` held only here keeps its tombstones (none is covered by
    /// `stable(self)`: a registry purges them as its stable vector grows) and loses an
    /// incarnation `i` iff `other` deleted it ([`Seen::deleted`], with no tombstone at `k`):
    /// `i ∈ ctx(other) ∧ i ∈ stable(other)`, which is `i ∈ stable(other)`, as
    /// `stable(other) ≤ ctx(other)` (the reader refuses a stable vector beyond the context).
    /// For states writers and merges make, only a delete removes an incarnation and its
    /// tombstone `t` stays until the stable vector covers it; `other` saw `i` and holds
    /// neither it nor `t`, so `t.is_covered_by(stable(other))`. Then
    /// `t.deleted ∈ stable(other) ≤ vv(self)`: this side has seen the delete, and a state
    /// that has seen a delete does not hold the incarnation it removed. So no `i` held at `k`
    /// is in `stable(other)`, and the sweep changes nothing.
    ///
    /// Not so for a damaged `other` whose stable vector covers a device cut from its text:
    /// `i ∈ stable(other)` there, with no delete, reads as a compacted delete. The sweep would
    /// drop `i`, and skipped it keeps it, while the merge in the other direction walks `k` and
    /// refuses `i`: the residual case `registry.rs` documents.
    fn drop_compacted_elsewhere(&mut self, other: &Registry, policy: &Policy) -> Report {
        let Registry {
            context,
            stable,
            slots,
        } = self;
        let sides = sides((context, stable), other);
        let mut removed = Report::default();
        let nothing = Arc::new(Slot::default());
        slots.retain(|key, mine| {
            other.slots.get(key).is_some()
                || !join_slot(key, mine, &nothing, sides, policy, &mut removed)
        });
        removed.unchanged = 0;
        removed
    }

    /// Joins `other`'s context into this side's (from its dots when given), and its stable
    /// vector, purging the tombstones a grown stable vector covers.
    #[inline]
    fn join_clocks(&mut self, other: &Registry, context_dots: Option<ContextDots<'_>>) {
        match context_dots {
            Some(dots) => dots.iter().for_each(|dot| {
                self.context.insert(dot);
            }),
            None => {
                self.context.join(&other.context);
                if !self.stable.includes(&other.stable) {
                    self.stable.join(&other.stable);
                    self.purge();
                }
            }
        }
    }
}

/// What a slot join reads of each side besides its slots ([`Seen`]): this side's context and
/// stable vector, borrowed apart from its slots, which the join writes; and `other`'s.
fn sides<'a>(
    (context, stable): (&'a CausalContext, &'a VersionVector),
    other: &'a Registry,
) -> (Seen<'a>, Seen<'a>) {
    let here = Seen { context, stable };
    let there = Seen {
        context: &other.context,
        stable: &other.stable,
    };
    (here, there)
}

/// Joins the incoming slot into this side's slot for `key`; returns whether the slot is left
/// empty (to be removed). `sides` are both sides' contexts and stable vectors before the
/// merge.
///
/// Inline, and the rest ([`join_written_slot`]) apart: most keys of a failback neither side
/// wrote since they shared the slot, and their pointer comparison must stay in the key walk.
/// Called instead, it cost every such key a call (7% more instructions in a full merge at 100k,
/// callgrind, 2026-11-23, when the slot join grew past what the compiler inlined).
#[inline]
fn join_slot(
    key: &DeviceKey,
    mine: &mut Arc<Slot>,
    theirs: &Arc<Slot>,
    sides: (Seen<'_>, Seen<'_>),
    policy: &Policy,
    report: &mut Report,
) -> bool {
    if Arc::ptr_eq(mine, theirs) {
        report.unchanged += 1;
        return false;
    }
    join_written_slot(key, mine, theirs, sides, policy, report)
}

/// [`join_slot`] for two different slots.
fn join_written_slot(
    key: &DeviceKey,
    mine: &mut Arc<Slot>,
    theirs: &Arc<Slot>,
    sides: (Seen<'_>, Seen<'_>),
    policy: &Policy,
    report: &mut Report,
) -> bool {
    // Most slots of a failback were written by one side only: the result is one of the two
    // slots, kept or taken whole, with no copy and no join.
    let (here, there) = sides;
    if mine.absorbs(theirs, there, here.stable) {
        debug_assert_general_join(key, (mine, theirs), sides, policy, false);
        report.unchanged += 1;
        return mine.is_empty();
    }
    if theirs.absorbs(mine, here, here.stable) {
        debug_assert_general_join(key, (mine, theirs), sides, policy, true);
        report_adopted(key, mine, theirs, policy, report);
        *mine = Arc::clone(theirs);
        return mine.is_empty();
    }
    let slot = Arc::make_mut(mine);
    merge_slot(key, slot, theirs, sides, policy, report);
    slot.is_empty()
}

/// The slot for a key only the incoming side holds: its slot whole when nothing of it is
/// refused here (the common case: a device created on the other side), else what the join
/// with nothing leaves; `None` when that is nothing.
fn take_new(
    key: &DeviceKey,
    theirs: &Arc<Slot>,
    sides: (Seen<'_>, Seen<'_>),
    policy: &Policy,
    nothing: &Slot,
    report: &mut Report,
) -> Option<Arc<Slot>> {
    // `nothing` stands for this side's slot: no tombstone of the key is held here.
    let (here, _) = sides;
    if theirs.absorbs(nothing, here, here.stable) {
        debug_assert_general_join(key, (nothing, theirs), sides, policy, true);
        report_adopted(key, nothing, theirs, policy, report);
        return (!theirs.is_empty()).then(|| Arc::clone(theirs));
    }
    let mut mine = Slot::default();
    merge_slot(key, &mut mine, theirs, sides, policy, report);
    (!mine.is_empty()).then(|| Arc::new(mine))
}

/// In debug builds, checks a shortcut against the general join of the two slots: the slot it
/// kept (`mine`) or took (`theirs`), and what it reported.
fn debug_assert_general_join(
    key: &DeviceKey,
    (mine, theirs): (&Slot, &Slot),
    sides: (Seen<'_>, Seen<'_>),
    policy: &Policy,
    took_theirs: bool,
) {
    if cfg!(debug_assertions) {
        let mut joined = mine.clone();
        let mut general = Report::default();
        merge_slot(key, &mut joined, theirs, sides, policy, &mut general);
        let mut shortcut = Report::default();
        if took_theirs {
            report_adopted(key, mine, theirs, policy, &mut shortcut);
        } else {
            shortcut.unchanged += 1;
        }
        let result = if took_theirs { theirs } else { mine };
        debug_assert_eq!(
            joined, *result,
            "shortcut disagrees with the join for {key}"
        );
        debug_assert_eq!(general, shortcut, "shortcut reports otherwise for {key}");
    }
}

/// In debug builds, checks a first write ([`FirstWrite::join_into`]) against the general join
/// of the two slots: `before` is this side's slot and the report as they were before it.
fn debug_assert_first_write(
    key: &DeviceKey,
    before: Option<(Slot, Report)>,
    (mine, theirs): (&Slot, &Slot),
    report: &Report,
    sides: (Seen<'_>, Seen<'_>),
    policy: &Policy,
) {
    if let Some((mut joined, mut general)) = before {
        merge_slot(key, &mut joined, theirs, sides, policy, &mut general);
        debug_assert_eq!(
            joined, *mine,
            "first write disagrees with the join for {key}"
        );
        debug_assert_eq!(general, *report, "first write reports otherwise for {key}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ReplicaId;
    use crate::error::Result;
    use crate::identity::{Identity, Status, StatusValue};
    use crate::stamp::Stamp;
    use crate::twin::Section;

    /// Small deltas merged into a large registry take the lookup path, whole states the
    /// ordered walk: both must give the same state and the same report.
    #[test]
    fn sparse_and_walking_merges_agree() -> Result<()> {
        let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
        let key = |i: usize| DeviceKey::device(format!("dev-{i:03}"));
        let mut base = Registry::new();
        for i in 0..64 {
            base.writer(a, Stamp::new(1, 0))
                .create(&key(i)?, Identity::default())?;
        }
        let mut side = base.clone();
        let mut deltas = Vec::new();
        let mut w = side.writer(b, Stamp::new(2, 0));
        deltas.push(w.set_status(&key(3)?, StatusValue::new(Status::Disabled, None))?);
        deltas.push(w.set_twin(&key(7)?, Section::Tags, "site", Some("x".into()))?);
        deltas.push(w.delete(&key(9)?)?);
        deltas.push(w.create(&key(100)?, Identity::default())?);
        let mut mine = base.clone();
        mine.writer(a, Stamp::new(3, 0)).set_status(
            &key(3)?,
            StatusValue::new(Status::Enabled, Some("ok".into())),
        )?;

        let mut by_deltas = mine.clone();
        let mut sparse = Report::default();
        for delta in &deltas {
            assert!(delta.slots.len() * crate::slot_map::SPARSE < by_deltas.slots.len());
            sparse = sparse.combine(by_deltas.merge(delta));
        }
        let mut by_state = mine.clone();
        let walked = by_state.merge(&side);
        assert_eq!(by_deltas, by_state);
        assert_eq!(
            (
                sparse.added,
                sparse.updated,
                sparse.deleted,
                sparse.conflicts.len()
            ),
            (
                walked.added,
                walked.updated,
                walked.deleted,
                walked.conflicts.len()
            )
        );
        Ok(())
    }
}
