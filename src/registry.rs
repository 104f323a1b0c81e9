//! The registry: device keys to live incarnations and tombstones, with one causal context.
//!
//! Merge is a join-semilattice join: `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`,
//! `a ⊔ a = a`, so any order of merges, with any duplicates, converges.
//!
//! Per key, an incarnation (named by its creation dot `c`) survives a join unless one side has
//! seen `c` and no longer holds it, which only a delete does. That is **delete wins**: an
//! update made concurrently with a delete carries the incarnation it updates, finds it deleted,
//! and is dropped (and reported). A re-create is a new incarnation, which no delete of the old
//! one has seen, so it stands.
//!
//! Tombstones record which incarnation a delete removed. Delete-wins does not need them (the
//! context does), but deltas do: a delta names the keys it touches, and a tombstone is how a delete
//! names its key. Reports do too: a tombstone holds its deleter's version vector, so the updates a
//! delete-wins conflict names are those the deleter had not seen, whatever state or delta brought
//! the delete. They are kept until every replica has seen the delete (causal stability,
//! [`Registry::compact`]); the stable vector travels with the state, so compaction commutes with
//! merge: `compact(a) ⊔ b = compact(a ⊔ b)`.

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::clock::{CausalContext, Dot, VersionVector};
use crate::device::DeviceRecord;
use crate::error::{Result, redacted};
use crate::key::DeviceKey;
use crate::policy::Policy;
use crate::report::Report;
use crate::slot::{FirstWrite, Slot, Tombstone, merge_slot, report_adopted};
use crate::slot_map::{Joined, SlotMap};
use crate::stamp::Stamp;
use crate::view::{self, Device};

/// A replica's registry: every device key it knows, with live incarnations and tombstones,
/// and the causal context of everything it has seen.
///
/// A **delta** is a `Registry` too: small, holding just what some writes changed, and merged
/// exactly like a full state.
///
/// Serialized, it keeps everything a merge needs. Reading one refuses what no writer or
/// merge makes (a device listed twice or holding nothing, a write or stable vector beyond
/// the context, a value a write would refuse) and reads tombstones the stable vector covers
/// as compaction leaves them, purged; but it cannot tell a register's record of overwritten
/// writes from a forged one: load registries only from where their replica alone writes
/// them.
///
/// The serialized form is for a self-describing format such as JSON (the one tested):
/// readers look at what they find before they accept it, and some fields are told apart by
/// shape. A format that needs the schema to read (bincode, postcard) fails with an error,
/// never with a wrong value.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp, Status, StatusValue};
///
/// let (primary, secondary) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let key = DeviceKey::device("thermostat-1")?;
///
/// let mut a = Registry::new();
/// a.writer(primary, Stamp::new(1, 0)).create(&key, Identity::default())?;
/// let mut b = a.clone();
///
/// // During the outage the secondary disables the device while the primary re-enables it.
/// b.writer(secondary, Stamp::new(5, 0)).set_status(&key, StatusValue::new(Status::Disabled, None))?;
/// a.writer(primary, Stamp::new(9, 0)).set_status(&key, StatusValue::new(Status::Enabled, None))?;
///
/// let report = a.merge(&b);
/// let device = a.device(&key, &Policy::default()).expect("live");
/// assert_eq!(device.status.status, Status::Disabled); // disable wins, whatever the stamps
/// assert_eq!(report.conflicts[0].rule, failback::Rule::DisableWins);
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(into = "Wire")]
pub struct Registry {
    pub(crate) context: CausalContext,
    pub(crate) stable: VersionVector,
    /// Slots are shared between states (copy on write): a registry cloned from another
    /// shares every slot neither has written since, and merging a shared slot is a pointer
    /// comparison. That is what makes a failback merge cost what changed, not what exists.
    pub(crate) slots: SlotMap,
}

/// An incoming registry's one key and its slot, held apart from its map (an
/// [`Event`](crate::Event) keeps them), and the slot's record as a first write
/// ([`FirstWrite`]) when the registry joining it has seen none of its dots.
pub(crate) struct Lone<'a> {
    pub(crate) key: &'a DeviceKey,
    pub(crate) slot: &'a Arc<Slot>,
    pub(crate) first_write: Option<&'a FirstWrite>,
}

/// Joins the incoming slot into this side's slot for `key`; returns whether the slot is left
/// empty (to be removed). `ctxs` are both sides' contexts before the merge.
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
    ctxs: (&CausalContext, &CausalContext),
    stable: &VersionVector,
    policy: &Policy,
    report: &mut Report,
) -> bool {
    if Arc::ptr_eq(mine, theirs) {
        report.unchanged += 1;
        return false;
    }
    join_written_slot(key, mine, theirs, ctxs, stable, policy, report)
}

/// [`join_slot`] for two different slots.
fn join_written_slot(
    key: &DeviceKey,
    mine: &mut Arc<Slot>,
    theirs: &Arc<Slot>,
    (ctx, other_ctx): (&CausalContext, &CausalContext),
    stable: &VersionVector,
    policy: &Policy,
    report: &mut Report,
) -> bool {
    // Most slots of a failback were written by one side only: the result is one of the two
    // slots, kept or taken whole, with no copy and no join.
    let ctxs = (ctx, other_ctx);
    if mine.absorbs(theirs, other_ctx, stable) {
        debug_assert_general_join(key, (mine, theirs), ctxs, stable, policy, false);
        report.unchanged += 1;
        return mine.is_empty();
    }
    if theirs.absorbs(mine, ctx, stable) {
        debug_assert_general_join(key, (mine, theirs), ctxs, stable, policy, true);
        report_adopted(key, mine, theirs, policy, report);
        *mine = Arc::clone(theirs);
        return mine.is_empty();
    }
    let slot = Arc::make_mut(mine);
    merge_slot(key, slot, theirs, ctxs, stable, policy, report);
    slot.is_empty()
}

/// The slot for a key only the incoming side holds: its slot whole when nothing of it is
/// refused here (the common case: a device created on the other side), else what the join
/// with nothing leaves; `None` when that is nothing.
fn take_new(
    key: &DeviceKey,
    theirs: &Arc<Slot>,
    (ctx, other_ctx): (&CausalContext, &CausalContext),
    stable: &VersionVector,
    policy: &Policy,
    nothing: &Slot,
    report: &mut Report,
) -> Option<Arc<Slot>> {
    if theirs.absorbs(nothing, ctx, stable) {
        debug_assert_general_join(
            key,
            (nothing, theirs),
            (ctx, other_ctx),
            stable,
            policy,
            true,
        );
        report_adopted(key, nothing, theirs, policy, report);
        return (!theirs.is_empty()).then(|| Arc::clone(theirs));
    }
    let mut mine = Slot::default();
    merge_slot(
        key,
        &mut mine,
        theirs,
        (ctx, other_ctx),
        stable,
        policy,
        report,
    );
    (!mine.is_empty()).then(|| Arc::new(mine))
}

/// In debug builds, checks a shortcut against the general join of the two slots: the slot it
/// kept (`mine`) or took (`theirs`), and what it reported.
fn debug_assert_general_join(
    key: &DeviceKey,
    (mine, theirs): (&Slot, &Slot),
    ctxs: (&CausalContext, &CausalContext),
    stable: &VersionVector,
    policy: &Policy,
    took_theirs: bool,
) {
    if cfg!(debug_assertions) {
        let mut joined = mine.clone();
        let mut general = Report::default();
        merge_slot(key, &mut joined, theirs, ctxs, stable, policy, &mut general);
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
    ctxs: (&CausalContext, &CausalContext),
    stable: &VersionVector,
    policy: &Policy,
) {
    if let Some((mut joined, mut general)) = before {
        merge_slot(key, &mut joined, theirs, ctxs, stable, policy, &mut general);
        debug_assert_eq!(
            joined, *mine,
            "first write disagrees with the join for {key}"
        );
        debug_assert_eq!(general, *report, "first write reports otherwise for {key}");
    }
}

/// Read through the wire layout, and checked as `TryFrom<Wire>` says. serde's messages quote a
/// string found where something else belongs, which for a key stored one level off would show
/// it whole: such strings are replaced by their length (`redacted`).
impl<'de> Deserialize<'de> for Registry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d).map_err(redacted)?;
        Self::try_from(wire).map_err(D::Error::custom)
    }
}

/// The wire layout: keys are structs, so devices travel as a list.
#[derive(Clone, Serialize, Deserialize)]
struct Wire {
    context: CausalContext,
    #[serde(default, skip_serializing_if = "VersionVector::is_empty")]
    stable: VersionVector,
    devices: Vec<WireSlot>,
}

#[derive(Clone, Serialize, Deserialize)]
struct WireSlot {
    key: DeviceKey,
    #[serde(flatten)]
    slot: Slot,
}

/// Read as only a writer and merges make a registry: each key once (a device listed twice
/// would otherwise lose one of its two entries without a word), each holding an incarnation
/// or a tombstone, every write held seen by the context (see `Slot::write_unseen_by`), and a
/// stable vector the context has reached (`compact` caps it there; beyond, it would purge
/// tombstones of deletes not yet seen).
///
/// A device listed with neither an incarnation nor a tombstone is refused (2026-11-23, found
/// in review): no writer leaves one and every merge and compaction drops one, so a state
/// holding it broke `a ⊔ b = b ⊔ a` (the side holding it kept it, a merge into the other side
/// never took it) and read as not empty while holding no device. Refused rather than dropped:
/// it says nothing a state could mean, so it is damage, and damage is refused here.
///
/// Tombstones the stable vector covers are purged as they are read, and a device left with
/// nothing by the purge is dropped, as [`Registry::compact`] drops it (2026-11-23, found in
/// review: read and kept, such a tombstone stayed in `a ⊔ b`, where the join of a slot that
/// `a` alone holds keeps it as it is, and went in `b ⊔ a`, whose join purges what it takes).
/// Purged, not refused: the stable vector says every replica has seen those deletes, so the
/// tombstones carry nothing a merge keeps (every merge under that vector drops them, and the
/// context alone makes the delete win) and the state means what its compaction means;
/// reading it as that state reads it as every merge and compaction would leave it, as a
/// tombstone read twice is read once.
///
/// What it cannot check: a register's past (the writes it says it overwrote) may name dots
/// beyond the context in states merges make (a delta's context holds its own dots and those
/// it overwrote directly, its registers' pasts more), so a past claiming writes that were
/// never overwritten reads as valid, and such a state can break the merge's laws. A
/// registry's text is trusted as much as the replica that wrote it; keep it where only that
/// replica writes.
impl TryFrom<Wire> for Registry {
    type Error = String;

    fn try_from(wire: Wire) -> Result<Self, String> {
        let Wire {
            context,
            stable,
            mut devices,
        } = wire;
        if !devices.is_sorted_by(|a, b| a.key < b.key) {
            devices.sort_by(|a, b| a.key.cmp(&b.key));
            if let Some(twice) = devices.windows(2).find(|w| w[0].key == w[1].key) {
                return Err(format!("device {} is listed twice", twice[0].key));
            }
        }
        let reached = context.vector();
        if let Some((r, n)) = stable.iter().find(|&(r, n)| reached.get(r) < n) {
            return Err(format!(
                "the stable vector reaches {}, beyond the registry's context",
                Dot::new(r, n)
            ));
        }
        if let Some(empty) = devices.iter().find(|d| d.slot.is_empty()) {
            return Err(format!(
                "device {} holds neither an incarnation nor a tombstone",
                empty.key
            ));
        }
        if let Some((key, dot)) = devices
            .iter()
            .find_map(|d| Some((&d.key, d.slot.write_unseen_by(&context)?)))
        {
            return Err(format!(
                "device {key} holds write {dot}, which the registry's context has not seen"
            ));
        }
        // Purged as each slot is built, as `purge` would: not a second walk of every slot.
        let slots = devices
            .into_iter()
            .filter_map(|WireSlot { key, mut slot }| {
                if slot.has_stable_tombstones(&stable) {
                    slot.purge(&stable);
                }
                (!slot.is_empty()).then(|| (key, Arc::new(slot)))
            })
            .collect();
        Ok(Self {
            context,
            stable,
            slots,
        })
    }
}

impl From<Registry> for Wire {
    fn from(registry: Registry) -> Self {
        Self {
            context: registry.context,
            stable: registry.stable,
            devices: registry
                .slots
                .into_iter()
                .map(|(key, slot)| WireSlot {
                    key,
                    slot: Arc::unwrap_or_clone(slot),
                })
                .collect(),
        }
    }
}

impl Registry {
    /// An empty registry.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::Registry::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the registry holds no key at all (live or tombstoned).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::Registry::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Everything this registry has seen.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::Registry::new().context().is_empty());
    /// ```
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// The version vector every replica is known to have reached; tombstones under it are
    /// gone.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::Registry::new().stable().is_empty());
    /// ```
    pub fn stable(&self) -> &VersionVector {
        &self.stable
    }

    /// Keys with at least one live incarnation, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// reg.writer(ReplicaId::from_u128(1), Stamp::default()).create(&key, Identity::default())?;
    /// assert_eq!(reg.keys().collect::<Vec<_>>(), [&key]);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &DeviceKey> + '_ {
        self.slots
            .iter()
            .filter(|(_, slot)| !slot.live.is_empty())
            .map(|(key, _)| key)
    }

    /// How many keys have a live incarnation.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Registry::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.keys().count()
    }

    /// The live incarnations of `key` (empty when none).
    ///
    /// # Examples
    ///
    /// ```
    /// let reg = failback::Registry::new();
    /// assert!(reg.records(&failback::DeviceKey::device("d")?).is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn records(&self, key: &DeviceKey) -> &[DeviceRecord] {
        self.slots.get(key).map_or(&[], |slot| &slot.live)
    }

    /// The tombstones kept for `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// let reg = failback::Registry::new();
    /// assert!(reg.tombstones(&failback::DeviceKey::device("d")?).is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn tombstones(&self, key: &DeviceKey) -> &[Tombstone] {
        self.slots.get(key).map_or(&[], |slot| &slot.tombstones)
    }

    /// Keys that hold tombstones, with them, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Registry::new().deleted().count(), 0);
    /// ```
    pub fn deleted(&self) -> impl Iterator<Item = (&DeviceKey, &[Tombstone])> + '_ {
        self.slots
            .iter()
            .filter(|(_, slot)| !slot.tombstones.is_empty())
            .map(|(key, slot)| (key, slot.tombstones.as_slice()))
    }

    /// `key` as a reader sees it, concurrent values settled by `policy`; `None` when it has no
    /// live incarnation.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Policy, Registry};
    /// assert!(Registry::new().device(&DeviceKey::device("d")?, &Policy::default()).is_none());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn device(&self, key: &DeviceKey, policy: &Policy) -> Option<Device> {
        view::resolve(key, self.records(key), policy)
    }

    /// Every live device, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Policy, Registry};
    /// assert_eq!(Registry::new().devices(&Policy::default()).count(), 0);
    /// ```
    pub fn devices<'a>(&'a self, policy: &'a Policy) -> impl Iterator<Item = Device> + 'a {
        self.slots
            .iter()
            .filter_map(move |(key, slot)| view::resolve(key, &slot.live, policy))
    }

    /// Merges another replica's state or a delta into this one, with conflicts resolved by the
    /// default [`Policy`]. See [`merge_with`](Self::merge_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::Registry;
    /// let mut a = Registry::new();
    /// assert!(a.merge(&Registry::new()).is_unchanged());
    /// ```
    pub fn merge(&mut self, other: &Registry) -> Report {
        self.merge_with(other, &Policy::default())
    }

    /// Merges another replica's state or a delta into this one and reports what changed;
    /// `policy` only decides how the report's conflicts are read, never the merged state.
    ///
    /// Never fails and never panics. When `other`'s context and stable vector are already
    /// included here, it returns at once: no per-record work, nothing changed
    /// ([`Report::is_unchanged`]). Otherwise the state changes, if only in its context. A key neither side wrote since
    /// they shared it costs a pointer comparison, and a key only one side wrote keeps or
    /// takes that side's slot without copying it.
    ///
    /// Merging two large states (from 65,536 keys) walks the keys in shards on up to one
    /// scoped thread per core ([`std::thread::available_parallelism`]), joined before it
    /// returns; the merged state and the report are the same whatever the number of threads.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp};
    /// let mut a = Registry::new();
    /// let delta = a.writer(ReplicaId::from_u128(1), Stamp::default())
    ///     .create(&DeviceKey::device("d")?, Identity::default())?;
    /// let mut b = Registry::new();
    /// let report = b.merge_with(&delta, &Policy::default());
    /// assert_eq!(report.added, 1);
    /// assert_eq!(b, a);
    /// assert!(b.merge_with(&delta, &Policy::default()).is_unchanged()); // a duplicate is a no-op
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn merge_with(&mut self, other: &Registry, policy: &Policy) -> Report {
        if self.context.includes(&other.context) && self.stable.includes(&other.stable) {
            return Report {
                unchanged: other.slots.len() as u64,
                ..Report::default()
            };
        }
        self.join_unincluded(other, None, None, policy)
    }

    /// [`merge_with`](Self::merge_with) for a caller that knows this registry's context does
    /// not include `other`'s (an ingest that found one of an event's dots unseen), so the
    /// inclusion check would only search the context again. Correct for any `other`: the
    /// check is a shortcut, not a condition of the join.
    ///
    /// `only`, when given, is `other`'s one key and its slot, held apart from `other`'s map
    /// (an [`Event`](crate::Event) keeps them): the join then does not read that map, whose
    /// list of chunks and one chunk were two dependent cache misses of every event applied.
    /// With it may come the slot's record as a [`FirstWrite`], which joins a record that has
    /// written nothing without reading the slot.
    ///
    /// `held_apart`, when given, is `other`'s whole context as dots, in two parts, and `other`
    /// carries no stable vector (an event holds them for a write's delta): the join inserts
    /// those dots, and reads neither `other`'s context nor its stable vector. Inserting every
    /// dot of a context is joining it: `c ⊔ d = c ∪ d` as sets of dots, whatever the order.
    pub(crate) fn join_unincluded(
        &mut self,
        other: &Registry,
        only: Option<Lone<'_>>,
        held_apart: Option<[&[Dot]; 2]>,
        policy: &Policy,
    ) -> Report {
        debug_assert!(only.as_ref().is_none_or(|lone| {
            other.slots.len() == 1
                && other
                    .slots
                    .get(lone.key)
                    .is_some_and(|s| Arc::ptr_eq(s, lone.slot))
                && lone.first_write.is_none_or(|write| {
                    Some(write) == FirstWrite::of(lone.slot).as_ref()
                        && other
                            .store_dots()
                            .iter()
                            .all(|&d| !self.context.contains(d))
                })
        }));
        let first_write = only.as_ref().and_then(|lone| lone.first_write);
        debug_assert!(held_apart.is_none_or(|parts| {
            let held: CausalContext = parts.iter().flat_map(|part| part.iter().copied()).collect();
            other.stable.is_empty() && held == other.context
        }));
        #[cfg(debug_assertions)]
        let joined = {
            let mut joined = self.context.clone();
            joined.join(&other.context);
            joined
        };
        let Registry {
            context,
            stable,
            slots,
        } = self;
        let ctxs = (&*context, &other.context);
        let stable = &*stable;
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
                            ctxs,
                            stable,
                            policy,
                        );
                        return Joined::Kept;
                    }
                }
                if join_slot(key, mine, theirs, ctxs, stable, policy, report) {
                    Joined::Dropped
                } else {
                    Joined::Kept
                }
            }
            None => take_new(key, theirs, ctxs, stable, policy, &nothing, report)
                .map_or(Joined::Dropped, Joined::Added),
        };
        let mut report = match only {
            Some(Lone { key, slot, .. }) => slots.join_one(key, slot, join),
            None => slots
                .join_with(&other.slots, join)
                .into_iter()
                .reduce(Report::combine)
                .unwrap_or_default(),
        };
        // The walk above visits only the keys `other` holds, which is enough unless `other`
        // has compacted away deletes this side has not seen (this side is behind its stable
        // vector: a replica restored from a backup). Then `other` holds neither the deleted
        // device nor its tombstone, only its context claims them, and every key held here
        // alone must be joined with nothing to drop what `other` removed (2026-11-22, found
        // in review: the restored replica kept the device for ever, while every other
        // replica had it deleted).
        // (`held_apart` comes with no stable vector, which every vector includes.)
        if held_apart.is_none() && !context.vector().includes(&other.stable) {
            let mut removed = Report::default();
            let nothing = Arc::new(Slot::default());
            slots.retain(|key, mine| {
                other.slots.get(key).is_some()
                    || !join_slot(key, mine, &nothing, ctxs, stable, policy, &mut removed)
            });
            // Only what changed is counted: the keys walked were not the incoming side's.
            removed.unchanged = 0;
            report = report.combine(removed);
        }
        match held_apart {
            Some(parts) => parts.iter().flat_map(|part| part.iter()).for_each(|&dot| {
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
        #[cfg(debug_assertions)]
        debug_assert_eq!(self.context, joined);
        // Called only past the inclusion check (its callers' or `merge_with`'s): `other`'s
        // context was not included here, and has grown this one, or its stable vector was
        // not, and has moved this one.
        report.state_changed = true;
        report
    }

    /// What a peer whose version vector is `vector` has not seen: every key holding a write or
    /// a delete beyond `vector`, and every key holding a tombstone, whole. Merging it into
    /// that peer gives the same state as merging this whole registry, but for compaction:
    /// the delta does not carry this registry's stable vector (beyond what its own context
    /// reaches), so the peer keeps the tombstones [`compact`](Self::compact) dropped here
    /// until it compacts itself. Merged into a replica that has not seen everything up to
    /// `vector`, it brings what it holds and no more: it is not that replica's catch-up (a
    /// delete compacted here, for one, reaches such a replica only in a whole state).
    ///
    /// The delta is a state like any other (`delta ≤ self`), so it may also be merged into
    /// other replicas, joined with further deltas before it is sent, or wrapped in an
    /// [`Event`](crate::Event): its context claims only the writes it holds and those seen
    /// here beyond `vector`, whose absence from it means they were overwritten or deleted
    /// here. A context claiming everything seen here would tell a replica merged with it
    /// that every device left out had been deleted (2026-11-22, found in review: merged
    /// into the delta, the peer's own devices were dropped, and a disable joined into it
    /// was erased). Two cases send the whole state instead: a peer behind this registry's
    /// stable vector (a replica restored from a backup), which may still hold devices whose
    /// tombstones [`compact`](Self::compact) dropped here, so only a context claiming them
    /// can remove them; and a context whose unseen part would take more than 2²⁶ counters
    /// written out.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let mut a = Registry::new();
    /// a.writer(r, Stamp::default()).create(&DeviceKey::device("old")?, Identity::default())?;
    /// let mut peer = a.clone();
    /// a.writer(r, Stamp::default()).create(&DeviceKey::device("new")?, Identity::default())?;
    ///
    /// let delta = a.delta_since(peer.context().vector());
    /// assert_eq!(delta.keys().count(), 1);
    /// // The peer's own devices stay when the peer is merged into the delta, too.
    /// let mut other_way = delta.clone();
    /// other_way.merge(&peer);
    /// peer.merge(&delta);
    /// assert_eq!(peer, a);
    /// assert_eq!(other_way, a);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn delta_since(&self, vector: &VersionVector) -> Registry {
        /// Counters beyond a gap a delta's context may write out (8 MiB of bitmap).
        const MAX_UNSEEN: u64 = 1 << 26;
        if !vector.includes(&self.stable) {
            return self.clone();
        }
        let Some(mut context) = self.context.beyond(vector, MAX_UNSEEN) else {
            return self.clone();
        };
        // A key with a tombstone goes too, seen or not: the writes its delete removed are
        // held nowhere, so a context claiming them (beyond `vector`, the peer may have seen
        // them only out of order) would have nothing that says where they were, and a
        // replica merged with the delta would keep them under a key the delta lacks.
        let slots: SlotMap = self
            .slots
            .iter()
            .filter(|(_, slot)| !slot.tombstones.is_empty() || !slot.is_known_to(vector))
            .map(|(key, slot)| (key.clone(), Arc::clone(slot)))
            .collect();
        // The writes the delta holds that the peer has seen (a device's creation, say, under
        // an update the peer has not): claimed, as in any state that holds them.
        for slot in slots.values() {
            let held = slot.live.iter().flat_map(|r| r.dots()).chain(
                slot.tombstones
                    .iter()
                    .flat_map(|t| [t.incarnation, t.deleted]),
            );
            for dot in held {
                if vector.contains(dot) && self.context.contains(dot) {
                    context.insert(dot);
                }
            }
        }
        // Only the part of the stable vector the delta's own context reaches goes with it: a
        // state is refused (and could not be read back) with a stable vector beyond its
        // context, and every replica merging the delta would take that vector on (2026-11-22,
        // found in review). So a compaction here does not travel with a delta: the peer keeps
        // the tombstones it dropped until the peer compacts, or merges a whole state.
        let mut stable = self.stable.clone();
        stable.meet(context.vector());
        Registry {
            context,
            stable,
            slots,
        }
    }

    /// Drops the tombstones of deletes that every replica has seen. `stable` is a version
    /// vector every replica has reached (the [`VersionVector::meet`] of theirs); it is capped
    /// at what this registry has seen itself. Merge results afterwards are those without
    /// compaction, less the stable tombstones: a state that has not seen a compacted delete
    /// (a replica restored from an older backup) loses the device when merged with this one,
    /// in either direction (merging this one into it walks every key it holds that this one
    /// lacks, the one merge that does).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let key = DeviceKey::device("d")?;
    /// let mut reg = Registry::new();
    /// reg.writer(r, Stamp::default()).create(&key, Identity::default())?;
    /// reg.writer(r, Stamp::default()).delete(&key)?;
    /// let everyone = reg.context().vector().clone();
    /// reg.compact(&everyone);
    /// assert!(reg.is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn compact(&mut self, stable: &VersionVector) {
        let mut reachable = stable.clone();
        reachable.meet(self.context.vector());
        if !self.stable.includes(&reachable) {
            self.stable.join(&reachable);
            self.purge();
        }
    }

    fn purge(&mut self) {
        let stable = &self.stable;
        self.slots.retain(|_, slot| {
            if slot.has_stable_tombstones(stable) {
                Arc::make_mut(slot).purge(stable);
            }
            !slot.is_empty()
        });
    }

    /// Whether this registry and `other` share `key`'s slot (neither wrote it since one was
    /// cloned from the other): then the key reads the same in both, without reading it.
    pub(crate) fn shares_slot(&self, other: &Registry, key: &DeviceKey) -> bool {
        match (self.slots.get(key), other.slots.get(key)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Creates `key` as a new incarnation written by `replica`, as [`Writer::create`] does,
    /// but without building the delta nobody will ship, and with one lookup: for lifting a
    /// whole snapshot. Returns `false`, changing nothing, when `key` is already live.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] when `replica` has used every counter.
    ///
    /// [`Writer::create`]: crate::Writer::create
    pub(crate) fn create_in_bulk(
        &mut self,
        key: DeviceKey,
        replica: crate::clock::ReplicaId,
        stamp: Stamp,
        identity: crate::identity::Identity,
    ) -> Result<bool> {
        let dot = self
            .context
            .next_dot(replica)
            .ok_or_else(|| crate::writer::counters_exhausted(replica, &key))?;
        let slot = Arc::make_mut(self.slots.get_or_insert(&key));
        if !slot.live.is_empty() {
            return Ok(false);
        }
        slot.live.push(DeviceRecord::created(dot, stamp, identity));
        self.context.insert(dot);
        Ok(true)
    }

    /// Mutable access to one slot, created if missing; for the writer.
    pub(crate) fn slot_mut(&mut self, key: &DeviceKey) -> &mut Slot {
        Arc::make_mut(self.slots.get_or_insert(key))
    }

    /// Every dot held in the store (not the context): what a delta writes.
    pub(crate) fn store_dots(&self) -> Vec<Dot> {
        let mut dots = Vec::new();
        for slot in self.slots.values() {
            slot.live.iter().for_each(|r| dots.extend(r.dots()));
            dots.extend(slot.tombstones.iter().map(|t| t.deleted));
        }
        dots.sort_unstable();
        dots.dedup();
        dots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ReplicaId;
    use crate::error::Result;
    use crate::identity::{Identity, Status, StatusValue};
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

    /// A registry read from text must be one a writer and merges could have made.
    #[test]
    fn a_registry_listing_a_device_twice_or_holding_an_unseen_write_or_stable_is_refused()
    -> Result<()> {
        let r = ReplicaId::from_u128(1);
        let mut reg = Registry::new();
        let mut w = reg.writer(r, Stamp::new(1, 0));
        w.create(&DeviceKey::device("a")?, Identity::default())?;
        w.create(&DeviceKey::device("b")?, Identity::default())?;
        let mut wire = serde_json::to_value(&reg).expect("serializes");
        let read = |wire: &serde_json::Value| serde_json::from_value::<Registry>(wire.clone());
        assert_eq!(read(&wire).expect("as written"), reg);

        // The same device twice, whatever the order: one of the two would be lost.
        let devices = wire["devices"].as_array_mut().expect("a list");
        devices.push(devices[0].clone());
        let twice = read(&wire).expect_err("a device listed twice");
        assert!(
            twice.to_string().contains("device a is listed twice"),
            "{twice}"
        );
        let devices = wire["devices"].as_array_mut().expect("a list");
        devices.pop();

        // A context that has not seen the creation of b (counter 2): a writer would use
        // counter 2 again.
        wire["context"] =
            serde_json::to_value(CausalContext::from_iter([Dot::new(r, 1)])).expect("serializes");
        let unseen = read(&wire).expect_err("an unseen write");
        assert!(
            unseen
                .to_string()
                .contains(&format!("device b holds write {}", Dot::new(r, 2))),
            "{unseen}"
        );

        // A stable vector past the context: compaction caps it, and past it tombstones of
        // deletes not yet seen would be purged.
        wire["context"] = serde_json::to_value(reg.context()).expect("serializes");
        wire["stable"] =
            serde_json::to_value(VersionVector::from_iter([(r, 3)])).expect("serializes");
        let beyond = read(&wire).expect_err("a stable vector beyond the context");
        assert!(
            beyond.to_string().contains(&format!(
                "the stable vector reaches {}, beyond",
                Dot::new(r, 3)
            )),
            "{beyond}"
        );
        wire["stable"] =
            serde_json::to_value(VersionVector::from_iter([(r, 2)])).expect("serializes");
        assert!(read(&wire).is_ok());
        Ok(())
    }

    /// A key stored where another value belongs is refused without being shown, wherever it
    /// stands (serde quotes the string it found).
    #[test]
    fn a_key_out_of_place_in_a_registry_is_never_shown_by_the_error() -> Result<()> {
        let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
        let symmetric = crate::credentials::SymmetricKey::new(key)?;
        let auth = crate::credentials::Authentication::sas(crate::credentials::Pair::new(
            Some(symmetric.clone()),
            Some(symmetric),
        ));
        let mut reg = Registry::new();
        let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
        let device = DeviceKey::device("d")?;
        w.create(
            &device,
            Identity::default().with_authentication(auth.clone()),
        )?;
        w.set_authentication(&device, auth)?;
        let wire = serde_json::to_value(&reg).expect("serializes");
        let record = "/devices/0/live/0";
        for at in [
            "/authentication/entries/0",
            "/authentication",
            "/created/identity",
            "/created/identity/status",
            "/created/identity/capabilities",
        ] {
            let mut wire = wire.clone();
            let path = format!("{record}{at}");
            *wire.pointer_mut(&path).unwrap_or_else(|| panic!("{path}")) = key.into();
            let err = serde_json::from_value::<Registry>(wire).expect_err("refused");
            let err = err.to_string();
            assert!(!err.contains(key), "{path}: {err}");
            assert!(err.contains("a string of 24 characters"), "{path}: {err}");
        }
        Ok(())
    }

    /// A state read from text may claim a replica's last counter: writing under it then fails
    /// (no dot is left for a write of its own) and changes nothing.
    #[test]
    fn a_replica_with_no_counter_left_cannot_write() -> Result<()> {
        let r = ReplicaId::from_u128(1);
        let wire = serde_json::json!({
            "context": CausalContext::from_iter([Dot::new(r, u64::MAX)]),
            "devices": [],
        });
        let mut reg: Registry = serde_json::from_value(wire).expect("a valid state");
        let before = reg.clone();
        let created = reg
            .writer(r, Stamp::new(1, 0))
            .create(&DeviceKey::device("d")?, Identity::default());
        assert!(matches!(created, Err(crate::Error::InvalidValue { .. })));
        // The refusal names the device written, as every other refused write does.
        let message = created.expect_err("refused").to_string();
        assert!(message.contains(" of d:"), "{message}");
        assert_eq!(reg, before);
        // Another replica still writes.
        reg.writer(ReplicaId::from_u128(2), Stamp::new(1, 0))
            .create(&DeviceKey::device("d")?, Identity::default())?;
        Ok(())
    }

    /// A patch needing more counters than are left is refused before its first leaf is
    /// written: a leaf written and kept would have its dot taken and no delta to ship it
    /// (found in review).
    #[test]
    fn a_patch_with_too_few_counters_left_writes_nothing() -> Result<()> {
        let (r, q) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
        let key = DeviceKey::device("d")?;
        let wire = serde_json::json!({
            "context": CausalContext::from_iter([Dot::new(r, u64::MAX - 1)]),
            "devices": [],
        });
        let mut reg: Registry = serde_json::from_value(wire).expect("a valid state");
        reg.writer(q, Stamp::new(1, 0))
            .create(&key, Identity::default())?;
        let before = reg.clone();
        let two = serde_json::json!({"a": 1, "b": 2});
        let patched = reg.writer(r, Stamp::new(2, 0)).patch_twin(
            &key,
            crate::Section::Tags,
            two.as_object().expect("an object"),
        );
        let message = patched.expect_err("one counter left").to_string();
        assert!(message.contains(" of d:"), "{message}");
        assert_eq!(reg, before);
        // One leaf takes the last counter.
        let one = serde_json::json!({"a": 1});
        let delta = reg.writer(r, Stamp::new(2, 0)).patch_twin(
            &key,
            crate::Section::Tags,
            one.as_object().expect("an object"),
        )?;
        assert!(delta.context().contains(Dot::new(r, u64::MAX)));
        Ok(())
    }
}
