//! The device record: one incarnation of a device identity, its twin and its metadata.
//!
//! A record is created with a whole [`Identity`] under a single dot, the **incarnation**.
//! Later writes overwrite one field each, in [`MvRegister`]s; a field whose register was never
//! written still has its creation value (a twin register cleared by a related write counts as
//! written: it hides the creation value from then on). Every write to a record follows its creation causally (you
//! cannot update what you have not seen: a writer refuses a record whose creation has not
//! arrived, [`Error::PendingDevice`](crate::Error::PendingDevice), but for a disable, which
//! wins whatever it replaces, and a credential change, whose retirements the read completes),
//! so a register write always overwrites the creation value of its field and never needs that
//! value's dot in its context. This keeps a device
//! that was never touched after creation at one dot, whatever its number of twin leaves.
//!
//! Deleting a device removes its incarnation; re-creating it makes a new one. No write for an
//! old incarnation can touch the new one, and none can bring the old one back.

mod creation;
mod removal;
mod wire;
mod written;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::clock::{CausalContext, Dot, VersionVector};
use crate::credentials::{Authentication, Fingerprint};
use crate::identity::{Capabilities, Identity, StatusValue};
use crate::key::DeviceId;
use crate::register::{Entry, MvRegister};
use crate::serde_text::serde_redacting;
use crate::stamp::Stamp;
use crate::twin::TwinPath;

use written::{NOTHING_WRITTEN, Registers};

pub(crate) use creation::Creation;
pub(crate) use written::Written;

/// One incarnation of a device: its creation and the writes that followed.
///
/// Obtained from [`Registry::records`](crate::Registry::records); read through
/// [`Registry::device`](crate::Registry::device), which resolves concurrent values.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
///
/// let mut registry = Registry::new();
/// let key = DeviceKey::device("d1")?;
/// registry.writer(ReplicaId::from_u128(1), Stamp::new(1, 0)).create(&key, Identity::default())?;
/// let record = &registry.records(&key)[0];
/// assert_eq!(record.incarnation().counter, 1);
/// assert!(record.is_created());
/// # Ok::<(), failback::Error>(())
/// ```
// Written as derived; read by `device/wire.rs`, which names every member (a flattened struct
// refuses none it does not know), both through `serde_redacting!`, which hides keys in errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(remote = "Self")]
pub struct DeviceRecord {
    pub(crate) incarnation: Dot,
    /// `None` while a write for this incarnation has arrived before its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Shared, not copied, when a state is cloned or merged: most records never change after
    /// creation, and comparing two shared creations is a pointer comparison.
    pub(crate) created: Option<Arc<Creation>>,
    /// The registers written since the creation.
    #[serde(flatten)]
    registers: Registers,
}

serde_redacting!(DeviceRecord);

/// In debug builds, checks [`DeviceRecord::join`]'s whole take of the other side's registers
/// against the general join of every register, which must keep them all and refuse none.
fn debug_assert_takes_whole(theirs: &Written, ctx: &CausalContext, other_ctx: &CausalContext) {
    /// Counts the incoming writes a join refused.
    struct Refused(usize);
    impl StaleSink for Refused {
        fn status(&mut self, _: &Entry<StatusValue>) {
            self.0 += 1;
        }
        fn authentication(&mut self, _: &Entry<Authentication>) {
            self.0 += 1;
        }
    }
    if cfg!(debug_assertions) {
        let mut general = Written::default();
        let mut refused = Refused(0);
        general.join(ctx, theirs, other_ctx, &mut refused);
        debug_assert_eq!(&general, theirs, "a whole take disagrees with the join");
        debug_assert_eq!(refused.0, 0, "a whole take refuses nothing");
    }
}

/// What a twin write changed, and what its delta must carry.
///
/// A delta's context claims the writes it overwrote as seen, so it must also carry what those
/// writes did, or a receiver that already holds this delta would skip theirs as included and
/// keep what they had cleared (the convergence property's case: set `a.b`, set `a` (clearing
/// `a.b`), set `a` again; delivered third, first, second, `a.b` would come back). The
/// registers written go whole; the other registers of the subtree go as their past only, which
/// says what was overwritten there without carrying (and claiming) anyone else's live values.
pub(crate) struct TwinWrite {
    /// Dots the write overwrote.
    pub(crate) overwritten: Vec<Dot>,
    /// The path written and the registers it cleared.
    pub(crate) written: Vec<TwinPath>,
    /// The other registers under the same highest ancestor.
    pub(crate) around: Vec<TwinPath>,
}

/// What a join of two records saw of the incoming side's overwritten writes.
pub(crate) trait StaleSink {
    /// An incoming status write this side had already overwritten.
    fn status(&mut self, entry: &Entry<StatusValue>);
    /// An incoming credential write this side had already overwritten.
    fn authentication(&mut self, entry: &Entry<Authentication>);
}

impl DeviceRecord {
    /// An incarnation known only by its dot (a write arrived before its creation).
    pub(crate) fn empty(incarnation: Dot) -> Self {
        Self {
            incarnation,
            created: None,
            registers: Registers::default(),
        }
    }

    /// The registers written since the creation (all void when none was).
    pub(crate) fn written(&self) -> &Written {
        self.registers.0.as_deref().unwrap_or(&NOTHING_WRITTEN)
    }

    /// The registers, to write: allocated on the first write, copied first when shared.
    pub(crate) fn written_mut(&mut self) -> &mut Written {
        Arc::make_mut(self.registers.0.get_or_insert_with(Arc::default))
    }

    /// Whether nothing was written since the creation.
    pub(crate) fn is_unwritten(&self) -> bool {
        self.written().is_void()
    }

    /// Whether a record of this incarnation that wrote nothing, joining this one under
    /// `ctx`, takes its registers whole (see [`join`](Self::join)).
    pub(crate) fn registers_taken_whole_under(&self, ctx: &CausalContext) -> bool {
        self.registers
            .0
            .as_ref()
            .is_some_and(|written| written.is_taken_whole_under(ctx))
    }

    /// Takes `other`'s registers, shared: the join of a record that wrote nothing with
    /// `other` where [`registers_taken_whole_under`](Self::registers_taken_whole_under) holds.
    pub(crate) fn take_registers(&mut self, other: &Self) {
        self.registers = other.registers.clone();
    }

    /// A new incarnation.
    pub(crate) fn created(incarnation: Dot, stamp: Stamp, identity: Identity) -> Self {
        let mut record = Self::empty(incarnation);
        record.created = Some(Arc::new(Creation::new(stamp, identity)));
        record
    }

    /// The dot of the create that made this incarnation.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// reg.writer(ReplicaId::from_u128(7), Stamp::default()).create(&key, Identity::default())?;
    /// assert_eq!(reg.records(&key)[0].incarnation().replica, ReplicaId::from_u128(7));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn incarnation(&self) -> Dot {
        self.incarnation
    }

    /// Whether this incarnation's creation has arrived (a write can overtake it).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// reg.writer(ReplicaId::from_u128(1), Stamp::default()).create(&key, Identity::default())?;
    /// assert!(reg.records(&key)[0].is_created());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn is_created(&self) -> bool {
        self.created.is_some()
    }

    /// The creation, if it has arrived.
    pub(crate) fn creation(&self) -> Option<&Creation> {
        self.created.as_deref()
    }

    /// Every dot this record holds, its incarnation's included when the creation is here.
    pub(crate) fn dots(&self) -> Vec<Dot> {
        self.writes().into_iter().map(|(dot, _)| dot).collect()
    }

    /// Every write this record holds, with its stamp: the creation (when here) and each
    /// register entry.
    pub(crate) fn writes(&self) -> Vec<(Dot, Stamp)> {
        fn of<T: Clone>(reg: &MvRegister<T>) -> impl Iterator<Item = (Dot, Stamp)> + '_ {
            reg.entries().iter().map(|e| (e.dot, e.stamp))
        }
        let mut writes: Vec<(Dot, Stamp)> = self
            .created
            .iter()
            .map(|c| (self.incarnation, c.stamp))
            .collect();
        let written = self.written();
        writes.extend(of(&written.status));
        writes.extend(of(&written.authentication));
        writes.extend(of(&written.retired));
        writes.extend(of(&written.capabilities));
        writes.extend(of(&written.parent));
        written.twin.values().for_each(|r| writes.extend(of(r)));
        written.metadata.values().for_each(|r| writes.extend(of(r)));
        writes
    }

    /// Whether a peer whose version vector is `vector` has seen this incarnation and every
    /// write held or remembered in it.
    pub(crate) fn is_known_to(&self, vector: &VersionVector) -> bool {
        vector.contains(self.incarnation) && self.written().is_known_to(vector)
    }

    /// Join with the same incarnation from another replica; see [`MvRegister::join`].
    /// Returns whether anything changed.
    pub(crate) fn join(
        &mut self,
        ctx: &CausalContext,
        other: &Self,
        other_ctx: &CausalContext,
        stale: &mut dyn StaleSink,
    ) -> bool {
        let mut changed = false;
        // A creation arriving in this join is no lagging side's value: it comes late (its
        // writes were delivered first), and what this side wrote since overwrote it knowingly.
        let creation_held = self.created.is_some();
        if !creation_held && other.created.is_some() {
            self.created.clone_from(&other.created);
            changed = true;
        }
        let theirs = match (&self.registers.0, &other.registers.0) {
            (None, None) => return changed,
            // ∅ ⊔ t = t: this side wrote nothing and has seen none of the other side's
            // writes, so their registers are taken whole, a pointer copy.
            (None, Some(theirs)) if other.registers_taken_whole_under(ctx) => {
                debug_assert_takes_whole(theirs, ctx, other_ctx);
                self.take_registers(other);
                return true;
            }
            _ => other.written(),
        };
        changed |= self.written_mut().join(ctx, theirs, other_ctx, stale);
        self.registers.tidy();
        if creation_held {
            other.report_creation_overwritten_in(self.written(), stale);
        }
        changed
    }

    /// Passes to `stale` the status and credentials this incoming record still shows from its
    /// creation where the joined record (`mine`), which already held that creation, has written
    /// them since: as stale as an overwritten write, so reported alike (else a lagging
    /// replica's "enabled" would be listed as a refused re-enable when a write had set it, and
    /// not when the create had).
    fn report_creation_overwritten_in(&self, mine: &Written, stale: &mut dyn StaleSink) {
        let Some(created) = &self.created else {
            return;
        };
        let theirs = self.written();
        if theirs.status.is_void() && !mine.status.is_empty() {
            let value = created.identity.status.clone();
            stale.status(&Entry::new(self.incarnation, created.stamp, value));
        }
        if theirs.authentication.is_void() && !mine.authentication.is_empty() {
            let value = created.identity.authentication.clone();
            stale.authentication(&Entry::new(self.incarnation, created.stamp, value));
        }
    }

    /// Whether [`join`](Self::join) with `other` (the same incarnation) would leave this record
    /// as it is: every register absorbs its counterpart (a register missing from a map is
    /// void), and no creation would arrive. Allocates nothing, so a merge can keep a shared
    /// record without copying it.
    ///
    /// Where both hold the creation, the two must be equal, though the join keeps this side's
    /// whatever the other holds: a merge that finds `t ⊔ s = t` takes `t` whole for `s ⊔ t`,
    /// which is right only if both hold the same creation. They differ only where two creates
    /// were given one dot (`ReplicaId`'s misuse) or a saved creation was edited; then the
    /// general join keeps this side's. A shared creation (one allocation) is not read.
    pub(crate) fn absorbs(&self, other: &Self, other_ctx: &CausalContext) -> bool {
        match (&self.created, &other.created) {
            (None, Some(_)) => return false,
            (Some(mine), Some(theirs)) if !(Arc::ptr_eq(mine, theirs) || mine == theirs) => {
                return false;
            }
            _ => {}
        }
        match (&self.registers.0, &other.registers.0) {
            (None, None) => true,
            // ∅ ⊔ t = ∅ only when every register of `t` is void (`seen(t) ≤ seen(∅)`, see
            // `MvRegister::absorbs`): an event's write to a record that wrote nothing fails
            // here at once rather than after every register.
            (None, Some(theirs)) => theirs.is_void(),
            _ => self.written().absorbs(other.written(), other_ctx),
        }
    }

    /// Overwrites the status; returns the dots overwritten.
    pub(crate) fn set_status(&mut self, dot: Dot, stamp: Stamp, value: StatusValue) -> Vec<Dot> {
        self.written_mut().status.write(dot, stamp, value)
    }

    /// Every credential this incarnation shows or has retired: what a rotation replaces.
    pub(crate) fn credentials(&self) -> Vec<Fingerprint> {
        let written = self.written();
        let mut out: Vec<Fingerprint> = written
            .retired
            .entries()
            .iter()
            .flat_map(|e| e.value.iter().copied())
            .collect();
        if written.authentication.is_empty() {
            out.extend(
                self.creation()
                    .map(|c| c.identity.authentication.fingerprints())
                    .unwrap_or_default(),
            );
        } else {
            out.extend(
                written
                    .authentication
                    .entries()
                    .iter()
                    .flat_map(|e| e.value.fingerprints()),
            );
        }
        out
    }

    /// Overwrites the credentials, retiring every key and thumbprint in `replaced` (what the
    /// writer saw of the device: [`credentials`](Self::credentials) of every live incarnation
    /// of the key) that the new value does not hold: no replica that missed this rotation can
    /// bring one back. Returns the dots overwritten. The kind `value`'s type does not use is
    /// not held (see [`Authentication`]), so it is retired too.
    ///
    /// The device's incarnations are read as one device, so a rotation retires what any of
    /// them showed, in each of them (`rotated_out_credential_never_returns`): retiring per
    /// incarnation would leave a key shown through one incarnation unretired in the other,
    /// and when a concurrent delete removed the first, a stale write of the key on the second
    /// would come back.
    pub(crate) fn set_authentication(
        &mut self,
        dot: Dot,
        stamp: Stamp,
        value: Authentication,
        replaced: &[Fingerprint],
    ) -> Vec<Dot> {
        let value = value.without_unused();
        // A key kept is kept in every spelling: `replaced` carries retired lists forward, and
        // one an earlier build stored may hold the key by a spelling it is no longer held in
        // (see `Authentication::fingerprints_of_every_spelling`). Retired again, the write
        // would retire a key it holds, and exclude a concurrent write keeping it too.
        let kept = if replaced.is_empty() {
            Vec::new() // nothing to retire: no hashing
        } else {
            value.fingerprints_of_every_spelling()
        };
        let mut retired: Vec<Fingerprint> = replaced
            .iter()
            .copied()
            .filter(|f| kept.binary_search(f).is_err())
            .collect();
        retired.sort_unstable();
        retired.dedup();
        let written = self.written_mut();
        let mut overwritten = written.authentication.write(dot, stamp, value);
        if retired.is_empty() {
            overwritten.extend(written.retired.clear());
        } else {
            overwritten.extend(written.retired.write(dot, stamp, retired.into()));
        }
        overwritten
    }

    /// Overwrites the capabilities; returns the dots overwritten.
    pub(crate) fn set_capabilities(
        &mut self,
        dot: Dot,
        stamp: Stamp,
        value: Capabilities,
    ) -> Vec<Dot> {
        self.written_mut().capabilities.write(dot, stamp, value)
    }

    /// Overwrites the edge parent; returns the dots overwritten.
    pub(crate) fn set_parent(
        &mut self,
        dot: Dot,
        stamp: Stamp,
        value: Option<DeviceId>,
    ) -> Vec<Dot> {
        self.written_mut().parent.write(dot, stamp, value)
    }

    /// Writes (or with `None` removes) one twin leaf, overwriting the registers at its
    /// ancestors and descendants too: a leaf replaces whatever shape was there before (a
    /// removal leaves an ancestor that holds only removals).
    /// Returns the dots overwritten and what the delta must carry (see [`TwinWrite`]).
    ///
    /// Replaced registers are cleared, not dropped (2026-11): a dropped register forgot it
    /// had been overwritten, so a late delta could bring its old value back, and a creation
    /// leaf it had hidden showed again (create `{a: {b: 1}}`, set `a`, set `a.c`: `a.b`
    /// returned). A cleared register keeps its past and still hides the creation leaves
    /// under and above it. The written register remembers every write seen above its path
    /// ([`MvRegister::remember`]), so that a read tells it from a write made below a path
    /// concurrently with a write there.
    pub(crate) fn set_twin(
        &mut self,
        path: TwinPath,
        dot: Dot,
        stamp: Stamp,
        value: Option<Value>,
    ) -> TwinWrite {
        let twin = &mut self.written_mut().twin;
        let (lo, hi) = path.descendant_bounds();
        let mut written: Vec<TwinPath> = twin
            .range(&lo, &hi)
            .filter(|(_, reg)| !reg.is_empty())
            .map(|(p, _)| p.clone())
            .collect();
        // A removal leaves an ancestor holding only removals as it is: it removes nothing
        // there, and cleared, that ancestor's removal would be a past no concurrent write of
        // the ancestor meets (remove `a`, then `a.b`, on one side; set `a` on the other: the
        // value would come back, unreported). Held, the two meet.
        let replaces = |reg: &MvRegister<Option<Value>>| match value {
            Some(_) => !reg.is_empty(),
            None => reg.entries().iter().any(|e| e.value.is_some()),
        };
        written.extend(
            path.ancestors()
                .filter(|a| twin.get(a).is_some_and(replaces)),
        );
        let mut overwritten = Vec::new();
        for p in &written {
            if let Some(reg) = twin.get_mut(p) {
                overwritten.extend(reg.clear());
            }
        }
        // Every write this side has seen above the path, held or cleared: this write replaced
        // what they set there, and its register remembers having seen them. A cleared register
        // above keeps only its past, which cannot tell a write
        // below it made after seeing it from one made concurrently (delete `a` on one side,
        // then set `a.y`; set `a.x` on the other): `a.x` would come back and no conflict name
        // the delete. With this, a read finds the write below that has not seen the one above
        // (`view::json_values`).
        let mut above = VersionVector::new();
        for a in path.ancestors() {
            if let Some(reg) = twin.get(&a) {
                above.join(&reg.seen());
            }
        }
        let reg = twin.get_or_default(path.clone());
        overwritten.extend(reg.write(dot, stamp, value));
        reg.remember(&above);
        written.push(path.clone());
        // Every register the overwritten writes could have cleared lies under the highest
        // ancestor that has a register: a write only ever clears paths related to its own.
        let top = path
            .ancestors()
            .filter(|a| twin.contains_key(a))
            .last()
            .unwrap_or(path);
        let (lo, hi) = top.descendant_bounds();
        let mut around: Vec<TwinPath> = twin.range(&lo, &hi).map(|(p, _)| p.clone()).collect();
        around.push(top);
        around.retain(|p| !written.contains(p));
        TwinWrite {
            overwritten,
            written,
            around,
        }
    }

    /// Writes (or with `None` removes) one metadata value; returns the dots overwritten.
    pub(crate) fn set_metadata(
        &mut self,
        key: String,
        dot: Dot,
        stamp: Stamp,
        value: Option<Value>,
    ) -> Vec<Dot> {
        self.written_mut()
            .metadata
            .get_or_default(key)
            .write(dot, stamp, value)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::ReplicaId;
    use crate::identity::Status;
    use crate::twin::Section;

    const BASE: ReplicaId = ReplicaId::from_u128(1);
    const OTHER: ReplicaId = ReplicaId::from_u128(2);

    struct Ignore;
    impl StaleSink for Ignore {
        fn status(&mut self, _: &Entry<StatusValue>) {}
        fn authentication(&mut self, _: &Entry<Authentication>) {}
    }

    fn created() -> DeviceRecord {
        DeviceRecord::created(Dot::new(BASE, 1), Stamp::new(1, 0), Identity::default())
    }

    fn path(text: &str) -> TwinPath {
        TwinPath::new(Section::Tags, text).expect("valid path")
    }

    fn shares_registers(a: &DeviceRecord, b: &DeviceRecord) -> bool {
        match (&a.registers.0, &b.registers.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The delta of one status write and one tag write to the base's incarnation.
    fn incoming() -> (DeviceRecord, CausalContext) {
        let mut delta = DeviceRecord::empty(Dot::new(BASE, 1));
        let disabled = StatusValue::new(Status::Disabled, None);
        delta.set_status(Dot::new(OTHER, 1), Stamp::new(2, 0), disabled);
        delta.set_twin(
            path("site"),
            Dot::new(OTHER, 2),
            Stamp::new(2, 0),
            Some(json!("b")),
        );
        let ctx = CausalContext::from_iter([Dot::new(OTHER, 1), Dot::new(OTHER, 2)]);
        (delta, ctx)
    }

    #[test]
    fn a_record_that_wrote_nothing_takes_unseen_registers_whole() {
        let (delta, delta_ctx) = incoming();
        let mut mine = created();
        let ctx = CausalContext::from_iter([Dot::new(BASE, 1)]);
        assert!(mine.join(&ctx, &delta, &delta_ctx, &mut Ignore));
        assert!(shares_registers(&mine, &delta));
        assert_eq!(mine.written(), delta.written());
        assert!(mine.is_created(), "the creation stays");
    }

    #[test]
    fn registers_this_side_has_seen_are_joined_not_taken() {
        let (delta, delta_ctx) = incoming();
        let mut mine = created();
        // This side has seen the status write (and so overwrote it): it must not come back.
        let ctx = CausalContext::from_iter([Dot::new(BASE, 1), Dot::new(OTHER, 1)]);
        mine.join(&ctx, &delta, &delta_ctx, &mut Ignore);
        assert!(!shares_registers(&mine, &delta));
        assert!(mine.written().status.is_empty());
        assert_eq!(mine.written().twin.iter().count(), 1);
    }

    #[test]
    fn registers_not_as_a_join_leaves_them_are_joined_not_taken() {
        let (mut delta, delta_ctx) = incoming();
        // A void register in a map, as a file may hold: the join drops it.
        delta
            .written_mut()
            .twin
            .insert(path("gone"), MvRegister::new());
        let mut mine = created();
        let ctx = CausalContext::from_iter([Dot::new(BASE, 1)]);
        mine.join(&ctx, &delta, &delta_ctx, &mut Ignore);
        assert!(!shares_registers(&mine, &delta));
        assert!(mine.written().twin.get(&path("gone")).is_none());
        assert_eq!(mine.written().status.len(), 1);
    }
}
