//! One key's slot: its live incarnations and tombstones, and the join of two slots.
//!
//! Per key, an incarnation (named by its creation dot `c`) survives a join unless one side has
//! seen `c` and no longer holds it, which only a delete does (its tombstone held, or the stable
//! vector covering `c`, [`Seen::deleted`]): **delete wins** over updates
//! made concurrently with it. The join also tallies what it did into the merge's [`Report`]:
//! devices added, updated, deleted; conflicts; stale security writes refused.

use std::sync::Arc;

use serde::Serialize;
use smallvec::SmallVec;

use crate::clock::{CausalContext, Dot, VersionVector};
use crate::credentials::Authentication;
use crate::device::{DeviceRecord, StaleSink};
use crate::identity::{Status, StatusValue};
use crate::key::DeviceKey;
use crate::policy::Policy;
use crate::register::Entry;
use crate::report::{Outcome, Rejection, Report, Stale};
use crate::twin::TwinPath;
use crate::view;

mod tombstone;

pub use tombstone::Tombstone;
use tombstone::{delete_win, first_delete, lost_updates};

/// A key's live incarnations.
pub(crate) type Live = SmallVec<[DeviceRecord; 1]>;

/// What a slot join reads of one side besides its slot: its causal context and its stable
/// vector, both as they were before the merge.
#[derive(Clone, Copy)]
pub(crate) struct Seen<'a> {
    pub(crate) context: &'a CausalContext,
    pub(crate) stable: &'a VersionVector,
}

impl Seen<'_> {
    /// Whether this side, whose slot for the key holds `tombstones` and not `incarnation`,
    /// deleted `incarnation`: it has seen it, and a delete of it is in evidence, its tombstone
    /// held or the stable vector covering it (the tombstone compacted away). The one test of a
    /// delete wherever an incarnation held on one side only is judged: dropped there, or
    /// refused as a resurrection here.
    ///
    /// Not the context's claim alone (2026-11-24): every delete leaves a tombstone until its
    /// stable vector covers it (`purge`), so for states writers and merges make the two tests
    /// agree, `i ∈ ctx ∖ live ⇒ (∃ t ∈ tombstones: t.incarnation = i) ∨ i ∈ stable`. A claim
    /// with neither is damage (a device cut from a registry's text), and the incarnation is
    /// kept: a cut device comes back from a peer that holds it, where the claim alone made
    /// `a ⊔ b` keep it and `b ⊔ a` drop it, by which side skipped the sweep of keys held on
    /// one side (`registry/merge.rs`). Rare (an incarnation held on one side only), so the
    /// tombstones are searched only here, never on the join's common path.
    #[inline]
    pub(crate) fn deleted(&self, incarnation: Dot, tombstones: &[Tombstone]) -> bool {
        self.context.contains(incarnation)
            && (self.stable.contains(incarnation)
                || first_delete(tombstones, incarnation).is_some())
    }
}

/// Everything a registry holds for one key. Written beside its key in a registry's text
/// (flattened), each member left out when empty; read there, through [`Slot::read`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Slot {
    /// Live incarnations, by incarnation dot. Almost always one, kept inline: a merge then
    /// reaches a slot's record without following a second pointer.
    #[serde(skip_serializing_if = "SmallVec::is_empty")]
    pub(crate) live: Live,
    /// Deletes not yet causally stable, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tombstones: Vec<Tombstone>,
}

/// Read ([`Slot::read`]) as a join leaves a slot: incarnations in order, tombstones in order
/// and each once. The join's searches rely on the order, and a tombstone read twice would keep
/// a slot unequal to the same slot joined (`tests/inputs.rs`, on damaged states). One
/// incarnation held twice is refused: which of the two records stands could not be told.
///
/// An incarnation held live and named by one of the slot's own tombstones is refused too: a
/// delete removes the incarnation its tombstone names, and
/// every join drops an incarnation the other side has seen and no longer holds, so no writer
/// or merge leaves both. Read, it would merge by direction: `d ⊔ s` would keep the device
/// where `s ⊔ d` drops it, for an `s` holding the delete. Refused rather than read as deleted: as a
/// device holding nothing, it is damage, and which half of it is wrong cannot be told.
///
/// So is a live incarnation holding neither its creation nor a write (`tests/inputs.rs`): a
/// record waits for its creation only where a write for it arrived
/// first, and one holding nothing claims no write the context must have seen, so a state
/// whose context had seen nothing else would read as included in any other, and merging it
/// one way would keep the record where the other way never reads it.
impl Slot {
    /// The slot of `live` and `tombstones` as a text held them, or why no writer or merge
    /// leaves it.
    pub(crate) fn read(mut live: Live, mut tombstones: Vec<Tombstone>) -> Result<Self, String> {
        live.sort_by_key(|record| record.incarnation);
        if let Some(twice) = live
            .windows(2)
            .find(|w| w[0].incarnation == w[1].incarnation)
        {
            return Err(format!(
                "incarnation {} is held twice for one key",
                twice[0].incarnation
            ));
        }
        if let Some(empty) = live
            .iter()
            .find(|r| r.created.is_none() && r.is_unwritten())
        {
            return Err(format!(
                "incarnation {} holds neither its creation nor a write",
                empty.incarnation
            ));
        }
        tombstones.sort_unstable();
        tombstones.dedup();
        let is_live = |dot: Dot| {
            live.binary_search_by_key(&dot, |record| record.incarnation)
                .is_ok()
        };
        if let Some(deleted) = tombstones.iter().find(|t| is_live(t.incarnation)) {
            return Err(format!(
                "incarnation {} is held live and deleted (by {}) for one key",
                deleted.incarnation, deleted.deleted
            ));
        }
        Ok(Self { live, tombstones })
    }
}

impl Slot {
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty() && self.tombstones.is_empty()
    }

    /// A write held here that `context` has not seen, if any. A state holds each write with a
    /// context that saw it (a writer adds the dot, a merge joins the contexts); one that did
    /// not would let its writer issue that dot again, to another write.
    ///
    /// A tombstone's incarnation too: a delete claims the creation it removed seen, and that
    /// is what keeps it removed. A tombstone of an incarnation its state had not seen, read
    /// and merged with the replica holding the incarnation, would keep it live beside its
    /// tombstone, a state this reader refuses.
    pub(crate) fn write_unseen_by(&self, context: &CausalContext) -> Option<Dot> {
        self.live
            .iter()
            .flat_map(DeviceRecord::dots)
            .chain(
                self.tombstones
                    .iter()
                    .flat_map(|t| [t.incarnation, t.deleted]),
            )
            .find(|&dot| !context.contains(dot))
    }

    /// A live incarnation held without its creation although `context` has seen the
    /// creation, if any. A record waits for its creation only where a write for it arrived
    /// first, in a state that has not seen the creation: a writer's delta claims its own dots
    /// and those they overwrote, never the incarnation it wrote to, and a join that brings the
    /// creation's dot brings the creation (the join takes it) or the delete that removed it
    /// (the join drops the record). Read from text, such a record would lose the creation's
    /// values for good: every write to it would fail as waiting for the creation, and a merge
    /// of a peer holding the creation would change nothing, its context being included.
    pub(crate) fn creation_seen_but_missing(&self, context: &CausalContext) -> Option<Dot> {
        self.live
            .iter()
            .find(|r| r.created.is_none() && context.contains(r.incarnation))
            .map(|r| r.incarnation)
    }

    /// Whether a peer whose version vector is `vector` has seen everything held here.
    ///
    /// Computed from what the slot holds rather than kept as a running "history" vector
    /// (2026-11): a stored history kept dots of writes long since overwritten or deleted,
    /// which compaction dropped with the slot on one side and not the other, so
    /// `compact(a) ⊔ b` and `compact(a ⊔ b)` differed. What is held suffices: every write
    /// that removed something is itself held, or removed in turn by a held write or a
    /// tombstone, and seeing it means having seen what it removed.
    pub(crate) fn is_known_to(&self, vector: &VersionVector) -> bool {
        self.live.iter().all(|r| r.is_known_to(vector))
            && self.tombstones.iter().all(|t| t.is_covered_by(vector))
    }

    /// Whether [`purge`](Self::purge) would drop anything (so a shared slot is only copied
    /// when it must change).
    pub(crate) fn has_stable_tombstones(&self, stable: &VersionVector) -> bool {
        self.tombstones.iter().any(|t| t.is_covered_by(stable))
    }

    /// Whether merging `other` into this slot, then purging against `stable`, would leave it
    /// as it is and report nothing but "unchanged": `s ⊔ t = s`. Decided without copying or
    /// allocating, so a merge keeps a shared slot as it is, or takes the incoming one whole,
    /// where most failback slots end up: one side wrote, the other did not.
    ///
    /// An incoming incarnation not held here is always worth the general join: either it is
    /// new, or this side deleted it and the refused resurrection is reported (with the updates
    /// the delete lost). One held here only is kept unless `there`, the other side, deleted it
    /// ([`Seen::deleted`]); `stable` is the stable vector of the side merging.
    pub(crate) fn absorbs(&self, other: &Slot, there: Seen<'_>, stable: &VersionVector) -> bool {
        let find = |live: &[DeviceRecord], dot: Dot| {
            live.binary_search_by(|r| r.incarnation.cmp(&dot)).ok()
        };
        other
            .live
            .iter()
            .all(|t| find(&self.live, t.incarnation).is_some())
            && self
                .live
                .iter()
                .all(|r| match find(&other.live, r.incarnation) {
                    Some(i) => r.absorbs(&other.live[i], there.context),
                    None => !there.deleted(r.incarnation, &other.tombstones),
                })
            && other
                .tombstones
                .iter()
                .all(|t| self.tombstones.binary_search(t).is_ok())
            && !self.has_stable_tombstones(stable)
    }

    /// Drops tombstones every replica has seen.
    pub(crate) fn purge(&mut self, stable: &VersionVector) {
        self.tombstones.retain(|t| !t.is_covered_by(stable));
    }
}

/// An event's one record, held by the event when it can be a record's first write since its
/// creation: a write's delta to a device whose record has written nothing, which is what most
/// events of a failback bring (the secondary's first write to each device it changed).
///
/// Joining it needs no register read: the record takes the write's registers whole, a pointer
/// copy ([`DeviceRecord::join`]'s void case), and whether the result can hold a conflict was
/// decided when the event was made. The general join read the delta's slot, registers, twin
/// map and register entries first, four dependent cache misses of every event applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FirstWrite {
    /// The delta's record: its incarnation and registers, no creation.
    record: DeviceRecord,
    /// [`may_conflict`] of the record: its registers alone decide it.
    may_conflict: bool,
}

impl FirstWrite {
    /// `Some` when `slot` holds one record and no tombstone, the record without its creation
    /// and with registers that a record that wrote nothing takes whole under a context that
    /// has seen none of their writes.
    pub(crate) fn of(slot: &Slot) -> Option<Self> {
        match (&slot.live[..], &slot.tombstones[..]) {
            ([record], [])
                if record.created.is_none()
                    && record.registers_taken_whole_under(&CausalContext::new()) =>
            {
                Some(Self {
                    record: record.clone(),
                    may_conflict: may_conflict(&slot.live),
                })
            }
            _ => None,
        }
    }

    /// Joins the write into `mine` when `mine` is the write's incarnation alone, created and
    /// unwritten, with no tombstone, and tallies it as [`merge_slot`] would; returns whether
    /// it did (otherwise `mine` is untouched). The caller has checked that `mine`'s context
    /// has seen none of the write's dots, so `mine` does not hold it and the registers are
    /// taken whole: `s ⊔ t` is `s` with `t`'s registers, an update.
    pub(crate) fn join_into(
        &self,
        key: &DeviceKey,
        mine: &mut Arc<Slot>,
        policy: &Policy,
        report: &mut Report,
    ) -> bool {
        let fits = match (&mine.live[..], &mine.tombstones[..]) {
            ([record], []) => {
                record.incarnation == self.record.incarnation
                    && record.created.is_some()
                    && record.is_unwritten()
            }
            _ => false,
        };
        if !fits {
            return false;
        }
        let slot = Arc::make_mut(mine);
        slot.live[0].take_registers(&self.record);
        if self.may_conflict {
            report_conflicts(key, &slot.live, policy, report);
        }
        report.count(Outcome::Updated);
        true
    }
}

/// Collects the incoming stale security writes a record join sees.
#[derive(Default)]
struct Stales {
    status: Vec<Entry<StatusValue>>,
    authentication: Vec<Entry<Authentication>>,
}

impl StaleSink for Stales {
    fn status(&mut self, entry: &Entry<StatusValue>) {
        self.status.push(entry.clone());
    }
    fn authentication(&mut self, entry: &Entry<Authentication>) {
        self.authentication.push(entry.clone());
    }
}

/// Joins one key's slots, purges the tombstones this side's stable vector covers, and tallies
/// the outcome. `here` and `there` are this side's and the other side's contexts and stable
/// vectors *before* the merge.
pub(crate) fn merge_slot(
    key: &DeviceKey,
    mine: &mut Slot,
    theirs: &Slot,
    (here, there): (Seen<'_>, Seen<'_>),
    policy: &Policy,
    report: &mut Report,
) {
    let (ctx, other_ctx, stable) = (here.context, there.context, here.stable);
    // `a ⊔ a = a`, and the purge below would drop nothing: a registry purges its slots
    // whenever its stable vector grows, and as it reads them, so
    // `∀ t ∈ tombstones(a): ¬t.is_covered_by(stable(a))`.
    if *mine == *theirs {
        debug_assert!(!mine.has_stable_tombstones(stable));
        report.unchanged += 1;
        return;
    }
    // This key's conflicts and refusals are gathered from several places (deletes, the
    // settled read, stale writes); they are sorted once at the end, so a report is in `Ord`
    // order however it was assembled and `r.combine(Report::default()) = r`.
    let (first_conflict, first_rejected) = (report.conflicts.len(), report.rejected.len());
    let was_live = !mine.live.is_empty();
    // Whether the live records changed: what makes a device updated and its read worth
    // reporting. A tombstone gained alone (an incarnation deleted elsewhere that this side
    // never held) changes neither; it is stored all the same, and the merge says so through
    // `state_changed`, which the context's growth sets, not as an updated device.
    let mut changed = false;
    let mut stales = Stales::default();
    let mut live = Live::with_capacity(mine.live.len().max(theirs.live.len()));
    let mut incoming = theirs.live.iter().peekable();
    for mut record in std::mem::take(&mut mine.live) {
        while let Some(their) = incoming.next_if(|t| t.incarnation < record.incarnation) {
            changed |= take_incarnation(key, their, here, &mine.tombstones, &mut live, report);
        }
        if let Some(their) = incoming.next_if(|t| t.incarnation == record.incarnation) {
            changed |= record.join(ctx, their, other_ctx, &mut stales);
            live.push(record);
        } else if there.deleted(record.incarnation, &theirs.tombstones) {
            // The other side saw this incarnation and no longer has it, and holds its
            // tombstone or compacted it: it deleted it.
            changed = true;
            report_delete_win(key, &record, other_ctx, &theirs.tombstones, report);
        } else {
            live.push(record);
        }
    }
    for their in incoming {
        changed |= take_incarnation(key, their, here, &mine.tombstones, &mut live, report);
    }
    mine.live = live;

    mine.tombstones.extend(theirs.tombstones.iter().cloned());
    mine.tombstones.sort_unstable();
    mine.tombstones.dedup();

    let is_live = !mine.live.is_empty();
    report_settled(key, &mine.live, changed, &stales, policy, report);
    report.conflicts[first_conflict..].sort_unstable();
    report.rejected[first_rejected..].sort_unstable();
    report.count(Outcome::of(was_live, is_live, changed));
    // Tombstones arriving from a side that has not compacted yet are purged at once if this
    // side's stable vector covers them: otherwise `compact(a) ⊔ b` would keep what
    // `compact(a ⊔ b)` dropped (`compaction_commutes_with_merging_any_state`).
    mine.purge(stable);
}

/// [`merge_slot`]'s read of the device its join left (`live`), and what the read reports:
/// its conflicts, and the incoming stale writes (`stales`) it refuses, re-enables of a
/// disabled device and credentials it no longer holds. `changed`: whether the join changed
/// the live records (an unchanged device's read reports nothing new).
fn report_settled(
    key: &DeviceKey,
    live: &[DeviceRecord],
    changed: bool,
    stales: &Stales,
    policy: &Policy,
    report: &mut Report,
) {
    // Reading the device is only needed to report conflicts and stale writes, so it is skipped
    // where there can be none: most changed records got one write from one side.
    let stale = !stales.status.is_empty() || !stales.authentication.is_empty();
    let device = (changed && !live.is_empty() && (stale || may_conflict(live)))
        .then(|| view::settle(key, live, policy))
        .flatten();
    if let Some(mut device) = device {
        report.conflicts.append(&mut device.conflicts);
        if device.status.status == Status::Disabled {
            report.rejected.extend(
                stales
                    .status
                    .iter()
                    .filter(|e| e.value.status == Status::Enabled)
                    .map(|e| rejection(key, Stale::Reenable, e.dot)),
            );
        }
        // The current credentials are hashed only when stale credential writes came in to be
        // compared with them; most merges bring none.
        if !stales.authentication.is_empty() {
            let current = device.authentication.fingerprints();
            report.rejected.extend(
                stales
                    .authentication
                    .iter()
                    .filter(|e| {
                        e.value
                            .fingerprints()
                            .iter()
                            .any(|f| current.binary_search(f).is_err())
                    })
                    .map(|e| rejection(key, Stale::CredentialRestore, e.dot)),
            );
        }
    }
}

/// Reports a merge whose result is the incoming slot `theirs`, taken whole because it
/// absorbs `mine` ([`Slot::absorbs`]): what [`merge_slot`] reports for it. Nothing incoming
/// was refused (`theirs` kept all of it), so only conflicts already held there remain to name.
pub(crate) fn report_adopted(
    key: &DeviceKey,
    mine: &Slot,
    theirs: &Slot,
    policy: &Policy,
    report: &mut Report,
) {
    let is_live = !theirs.live.is_empty();
    // `theirs` holds every tombstone `mine` does and differs from it: with as many, the live
    // records differ. With more, they may not (a delete of an incarnation this side never
    // held, come alone), and only then are they compared, as [`merge_slot`] counts them.
    let changed =
        mine.tombstones.len() == theirs.tombstones.len() || mine.live[..] != theirs.live[..];
    if changed && is_live && may_conflict(&theirs.live) {
        report_conflicts(key, &theirs.live, policy, report);
    }
    report.count(Outcome::of(!mine.live.is_empty(), is_live, changed));
}

/// Adds the conflicts a read of `live` meets to the report, in order: [`view::settle`]
/// sorts them.
fn report_conflicts(key: &DeviceKey, live: &[DeviceRecord], policy: &Policy, report: &mut Report) {
    if let Some(settled) = view::settle(key, live, policy) {
        report.conflicts.extend(settled.conflicts);
    }
}

/// Whether reading these incarnations can meet concurrent values: several incarnations, a
/// register holding more than one write, twin writes at a path and at its ancestor, or a
/// twin write below a path that has not seen a write cleared there
/// ([`Written::twin_writes_unseen_below`](crate::device::Written::twin_writes_unseen_below)).
fn may_conflict(records: &[DeviceRecord]) -> bool {
    if records.len() > 1 {
        return true;
    }
    records.iter().any(|record| {
        let r = record.written();
        r.status.len() > 1
            || r.authentication.len() > 1
            || r.capabilities.len() > 1
            || r.parent.len() > 1
            || r.metadata.values().any(|reg| reg.len() > 1)
            || r.twin.values().any(|reg| reg.len() > 1)
            || TwinPath::any_nested(
                r.twin
                    .iter()
                    .filter(|(_, reg)| !reg.is_empty())
                    .map(|(path, _)| path),
            )
            || !r.twin_writes_unseen_below().is_empty()
    })
}

fn rejection(key: &DeviceKey, kind: Stale, dot: Dot) -> Rejection {
    Rejection {
        key: key.clone(),
        kind,
        dot,
    }
}

/// An incarnation only the other side holds: taken unless this side deleted it
/// ([`Seen::deleted`]: its context claims it, and a tombstone or the stable vector says a
/// delete removed it; a claim alone is damage, and the incarnation is taken). Refused, it is
/// listed as a resurrection, and when this side still holds the delete's tombstone the updates
/// it brings that the delete had not seen are named in the delete-wins conflict the merge in
/// the other direction reports: which side merges does not decide whether a lost update is
/// named, where otherwise only the updating side merging the deleting one would name it. A
/// stale replica resending an incarnation whose updates the deleter had
/// all seen brings no conflict, only the resurrection.
fn take_incarnation(
    key: &DeviceKey,
    their: &DeviceRecord,
    here: Seen<'_>,
    tombstones: &[Tombstone],
    live: &mut Live,
    report: &mut Report,
) -> bool {
    if here.deleted(their.incarnation, tombstones) {
        refuse_deleted(key, their, here.context, tombstones, report);
        return false;
    }
    // Taken whole, as `Slot::absorbs` takes a slot whose incarnations this side never saw, not
    // joined with nothing under this side's context: a side that never saw a device's creation has
    // seen none of the writes that follow it, so for any state a writer and merges make the two
    // agree. For a damaged state they do not: a context that claims a write of a device the file no
    // longer holds makes the join drop that write where the shortcut keeps it, so joining here
    // would make merges disagree by the shortcut taken. (That context may claim this very
    // incarnation, a device cut from the file: no delete is in evidence, and it comes back whole.)
    live.push(their.clone());
    true
}

/// [`take_incarnation`]'s refusal of `their`, an incarnation this side deleted. Out of line
/// and cold, as [`report_delete_win`] is: rare, and inlined it grew the slot join enough that
/// the key walk above it stopped inlining its own steps (7% more instructions in a full merge
/// at 100k, callgrind, 2026-11-23).
#[cold]
#[inline(never)]
fn refuse_deleted(
    key: &DeviceKey,
    their: &DeviceRecord,
    ctx: &CausalContext,
    tombstones: &[Tombstone],
    report: &mut Report,
) {
    report
        .rejected
        .push(rejection(key, Stale::Resurrection, their.incarnation));
    if let Some(delete) = first_delete(tombstones, their.incarnation) {
        let lost = lost_updates(their, ctx, tombstones);
        if !lost.is_empty() {
            report.conflicts.push(delete_win(key, lost, delete));
        }
    }
}

/// Reports a delete by the other side that removed writes its author had not seen: delete
/// wins, and the lost updates are named ([`lost_updates`], [`delete_win`]). `deleter_ctx` and
/// `deleter_tombstones` are the other side's. Without the tombstone (compacted away on the
/// other side, which a replica restored from an older backup meets, having written since under
/// a new id) the delete's author and stamp are unknown, so the loss is reported as the refused
/// incarnation ([`Stale::Resurrection`]), as the merge in the other direction reports it,
/// rather than dropped without a word.
#[cold]
#[inline(never)]
fn report_delete_win(
    key: &DeviceKey,
    record: &DeviceRecord,
    deleter_ctx: &CausalContext,
    deleter_tombstones: &[Tombstone],
    report: &mut Report,
) {
    let lost = lost_updates(record, deleter_ctx, deleter_tombstones);
    if lost.is_empty() {
        return;
    }
    match first_delete(deleter_tombstones, record.incarnation) {
        Some(delete) => report.conflicts.push(delete_win(key, lost, delete)),
        None => report
            .rejected
            .push(rejection(key, Stale::Resurrection, record.incarnation)),
    }
}
