//! The registry: device keys to live incarnations and tombstones, with one causal context.
//!
//! Merge is a join-semilattice join: `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`,
//! `a ⊔ a = a`, so any order of merges, with any duplicates, converges.
//!
//! Per key, an incarnation (named by its creation dot `c`) survives a join unless one side has
//! seen `c` and no longer holds it, which only a delete does (its tombstone held, or the
//! stable vector covering `c`). That is **delete wins**: an
//! update made concurrently with a delete carries the incarnation it updates, finds it deleted,
//! and is dropped (and reported). A re-create is a new incarnation, which no delete of the old
//! one has seen, so it stands.
//!
//! Tombstones record which incarnation a delete removed. They are the evidence of the delete (with
//! the stable vector once compacted): a context's claim alone cannot be told from a device cut from
//! a registry's text. Deltas need them too: a delta names the keys it touches, and a tombstone is
//! how a delete names its key. Reports do too: a tombstone keeps what its deleter had seen
//! ([`Tombstone::seen`], a causal context), so the updates a delete-wins conflict names are those
//! no delete of the incarnation had seen, whatever state or delta brought the delete. They are kept
//! until every replica has seen the delete (causal stability, [`Registry::compact`]); the
//! stable vector travels with the state, so compaction commutes with merge. Writing
//! `compact_s(a)` for `a` compacted at the vector `s`, and `vv(a)` for `a`'s version vector:
//! `compact_s(a) ⊔ b = compact_s(a ⊔ b)` for `s ≤ vv(a)`, and every device reads as in `a ⊔ b`.
//! The precondition is compact's cap at the registry's own vector: the left side compacts at
//! `s ⊓ vv(a)`, the right at `s ⊓ vv(a ⊔ b)`, which differ once `s` is beyond `vv(a)`.
//! Stability is not part of it: `s` need not be a vector `b` has reached. Which incarnations
//! a join keeps rests on the evidence of a delete, `del(x, i)`: `i ∈ ctx(x)`, and `x` holds a
//! tombstone of `i` or `i ∈ stable(x)`. Then
//! `i ∈ live(a ⊔ b) ⇔ i ∈ live(a) ∪ live(b) ∧ ∀ x ∈ {a, b}: i ∉ live(x) ⇒ ¬del(x, i)`, and
//! `compact_s` changes neither `live`, `ctx` nor `del`: it drops a tombstone only where the
//! stable vector it raises covers the incarnation. So a copy of a deleted incarnation `b`
//! still holds falls whether or not `a` kept the tombstone. For the states writers and merges
//! make, `i ∉ live(x) ⇒ (del(x, i) ⇔ i ∈ ctx(x))`: every delete leaves a tombstone until the
//! stable vector covers it. What compacting before every replica has reached `s` costs is the
//! tombstones' other uses: a delta for a peer behind `s` is the whole state, and a delete-wins
//! conflict met later cannot name its delete.
//!
//! One merge the laws do not cover: a delta merged into a replica behind its source's stable
//! vector (a replica restored from a backup). A delta from a registry that compacted a delete
//! claims the writes that delete removed beyond its peer's vector (the peer must see them, or
//! its vector would keep a gap for ever), and holds no evidence of the delete: the tombstone is
//! gone, and a stable vector is evidence only in a whole state (a delta leaves out the devices
//! it does not change, which that vector would read as deleted). A replica still holding the
//! deleted incarnation keeps it, and takes the claim into its context, where the claim removes
//! a removed write held by a state joined with it later, not one joined earlier:
//! `(x ⊔ b) ⊔ δ ≠ x ⊔ (b ⊔ δ)`, with `x` holding a disable the delete removed (review 65).
//! Neither fix tried holds: a claim omitted leaves the gap, and the peer's every later delta
//! would carry everything since; a claim applied to every copy of the device would need the
//! merge to walk keys the delta does not hold. So [`delta_since`](Registry::delta_since)
//! gives a replica behind its stable vector the whole state, and a delta made for one peer
//! goes only to replicas that have seen everything up to that peer's vector, which hold no
//! incarnation the source compacted away (`tests/deltas.rs`).
//! `tests/compaction.rs` checks the law for every `s ≤ vv(a)`, `⊥` and `vv(a)` included.

mod merge;
mod wire;

use std::sync::Arc;

use serde::Serialize;

use crate::clock::{CausalContext, Dot, VersionVector};
use crate::device::DeviceRecord;
use crate::error::Result;
use crate::key::DeviceKey;
use crate::policy::Policy;
use crate::report::Report;
use crate::slot::{Slot, Tombstone};
use crate::slot_map::SlotMap;
use crate::stamp::Stamp;
use crate::view::{self, Device};

pub(crate) use merge::{ContextDots, SingleKey};
use wire::Wire;

/// A replica's registry: every device key it knows, with live incarnations and tombstones,
/// and the causal context of everything it has seen.
///
/// A **delta** is a `Registry` too: small, holding just what some writes changed, and merged
/// exactly like a full state.
///
/// Keys are [`DeviceKey`]s, devices and modules alike, each merged on its own: a module whose
/// device is deleted or unknown is held and merged like any key (IoT Hub deletes a device's
/// modules with it; see [`Writer::delete`](crate::Writer::delete) for what to do).
///
/// Serialized, it keeps everything a merge needs. Reading one refuses what no writer or
/// merge makes (a device listed twice or holding nothing, an incarnation holding nothing or
/// held live and deleted, an incarnation waiting for a creation the context has seen, a write
/// or stable vector beyond the context, a value a write would refuse, a disabled module or a
/// device its own parent among them), and text no writer writes (a member the writer always writes, missing, or a member
/// it never writes, which may be one misspelt), and reads tombstones the stable vector covers as
/// compaction leaves them, purged; but it cannot tell a register's record of overwritten
/// writes from a forged one, nor a context's claim of a write an overwrite or a delete left
/// from one whose device was cut from the file. Such a state still merges without panicking.
/// A claim alone is no evidence of a delete: an incarnation held on one side only falls only
/// where the other side holds its tombstone or its stable vector covers it (the tombstone
/// compacted), so a device cut from the file comes back whole from a peer that holds it, and
/// both merge directions give one state, with two exceptions. Merged into the damaged state,
/// a peer whose context and stable vector it includes changes nothing (the inclusion shortcut:
/// `cut ⊔ intact = cut` where `intact ⊔ cut` keeps the device) until that peer writes again.
/// And a cut device the damaged state's stable vector covers reads as deleted and compacted:
/// a merge that walks its key drops it, one whose vector reaches that stable vector skips
/// the walk and keeps it. A claimed write to a device applies only once a state holding the
/// device is joined with it, so the order of several merges can decide whether it stands.
/// Nor can it tell a value edited in place, under the dot of the write it stands
/// for, from that write: a replica that loads the edited copy and one that loads the original
/// each keep their own value under that dot, whatever they merge, until a later write
/// overwrites it. Load registries only from where their replica alone writes them, and
/// keep a checksum beside each where storage or a copy could alter it.
///
/// The serialized form is for a self-describing format: readers look at what they find
/// before they accept it, and some fields are told apart by shape. JSON and CBOR are tested:
/// every state, delta, event and ingest reads back from either as it was written, and a
/// damaged tree is read, or refused, alike by both (a fixed-size array, a fingerprint's bytes
/// or a version vector's pair, holding more is refused by both, though CBOR's reader would
/// drop the rest). A CBOR reader (`ciborium::from_reader`) reads one value and leaves what
/// follows it unread, where `serde_json::from_str` refuses trailing characters: to refuse a
/// file holding more than its registry, check that the reader is at its end after it (a
/// `&[u8]` read through `&mut`, then empty). A format that needs the schema to read
/// (bincode, postcard) is not supported: the writers leave out members that hold nothing,
/// which only a self-describing format shows, so such a format may misread a state rather
/// than refuse it. A device listed twice is refused by any reader; a
/// metadata name or a twin path listed twice in one map is refused as the text is read
/// (`serde_json::from_str`, `from_slice`, `from_reader`, a CBOR reader), not in a
/// `serde_json::Value` built first, which has already kept the last of the two (a map's
/// members), so that `serde_json::from_value` cannot see it. A refusal of anything in a
/// device's entry starts `device <key>: `, so that a damaged device is found in a format
/// without positions (CBOR) as in a one-line JSON text of a million devices, and in JSON it
/// stands where it was raised, as it would unnamed. Only serde_json's own refusal of the
/// text there (a token out of place, a string where a number belongs) is not named: it has
/// its position when it is raised, which naming it would lose. (A text putting a device's
/// `key` after its records, as no writer does, gets their refusals unnamed.)
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

    /// Whether this is the empty state, ⊥: no key, live or deleted, and nothing seen. Merging
    /// it changes nothing (`a ⊔ ⊥ = a`), so a delta for which this holds need not be sent;
    /// one that holds no key but claims writes seen still removes what they overwrote or
    /// deleted. Not whether any device is live: that is [`live_count`](Self::live_count),
    /// and a registry whose devices are all deleted is not empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// assert!(reg.is_empty());
    /// let key = DeviceKey::device("d")?;
    /// let mut writer = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// writer.create(&key, Identity::default())?;
    /// let delete = writer.delete(&key)?;
    /// // The delete removes the device wherever it is merged: not empty.
    /// assert!(!delete.is_empty() && delete.live_count() == 0);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.context.is_empty()
    }

    /// Everything this registry has seen: every write and delete, as dots, those of devices
    /// gone included. A peer's copy of a write it has seen is never taken again.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Dot, Identity, Registry, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let key = DeviceKey::device("d")?;
    /// let mut reg = Registry::new();
    /// let created = reg.writer(r, Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// reg.writer(r, Stamp::new(2, 0)).delete(&key)?;
    /// // The creation is still seen, so its copy merged later stays deleted.
    /// assert!(reg.context().contains(Dot::new(r, 1)) && reg.context().vector().get(r) == 2);
    /// reg.merge(&created);
    /// assert_eq!(reg.live_count(), 0);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// The version vector every replica is known to have reached; tombstones under it are
    /// gone. It grows by [`compact`](Self::compact), and by merges of states that compacted.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let mut reg = Registry::new();
    /// reg.writer(r, Stamp::new(1, 0)).create(&DeviceKey::device("d")?, Identity::default())?;
    /// assert!(reg.stable().is_empty());
    /// let everyone = reg.context().vector().clone();
    /// reg.compact(&everyone);
    /// assert_eq!(reg.stable(), &everyone);
    /// # Ok::<(), failback::Error>(())
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

    /// How many keys (devices and modules) have a live incarnation: those [`keys`](Self::keys)
    /// lists, counted in one walk. Not `len`, whose `len() == 0` would read as
    /// [`is_empty`](Self::is_empty), which a registry holding only deletes is not.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let mut writer = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// writer.create(&DeviceKey::device("a")?, Identity::default())?;
    /// writer.create(&DeviceKey::module("a", "m")?, Identity::default())?;
    /// writer.create(&DeviceKey::device("b")?, Identity::default())?;
    /// writer.delete(&DeviceKey::device("b")?)?;
    /// assert_eq!(reg.live_count(), 2);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn live_count(&self) -> usize {
        self.keys().count()
    }

    /// The live incarnations of `key` (empty when none): one per creation no delete has
    /// seen, so two where two replicas created the device concurrently, until a delete that
    /// has seen both. [`device`](Self::device) settles them into one view.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp};
    /// let key = DeviceKey::device("d")?;
    /// let (mut east, mut west) = (Registry::new(), Registry::new());
    /// east.writer(ReplicaId::from_u128(1), Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// west.writer(ReplicaId::from_u128(2), Stamp::new(2, 0)).create(&key, Identity::default())?;
    /// east.merge(&west);
    /// assert_eq!(east.records(&key).len(), 2);
    /// assert!(east.device(&key, &Policy::default()).is_some());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn records(&self, key: &DeviceKey) -> &[DeviceRecord] {
        self.slots.get(key).map_or(&[], |slot| &slot.live)
    }

    /// The tombstones kept for `key`: one per incarnation deleted, until
    /// [`compact`](Self::compact) drops it.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let (r, key) = (ReplicaId::from_u128(1), DeviceKey::device("d")?);
    /// let mut reg = Registry::new();
    /// reg.writer(r, Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// reg.writer(r, Stamp::new(2, 0)).delete(&key)?;
    /// assert_eq!(reg.tombstones(&key).len(), 1);
    /// assert!(reg.records(&key).is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn tombstones(&self, key: &DeviceKey) -> &[Tombstone] {
        self.slots.get(key).map_or(&[], |slot| &slot.tombstones)
    }

    /// Keys that hold tombstones, with them, in key order (a key created again after its
    /// delete is live and listed here too).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let (a, b) = (DeviceKey::device("a")?, DeviceKey::device("b")?);
    /// let mut reg = Registry::new();
    /// let mut writer = reg.writer(r, Stamp::new(1, 0));
    /// writer.create(&a, Identity::default())?;
    /// writer.create(&b, Identity::default())?;
    /// writer.delete(&b)?;
    /// let deleted: Vec<_> = reg.deleted().map(|(key, _)| key.to_string()).collect();
    /// assert_eq!(deleted, ["b"]);
    /// # Ok::<(), failback::Error>(())
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

    /// Every live device and module, in key order (a device's modules right after it), each
    /// settled by `policy` as [`device`](Self::device) settles it.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let mut writer = reg.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
    /// writer.create(&DeviceKey::device("b")?, Identity::default())?;
    /// writer.create(&DeviceKey::module("a", "m")?, Identity::default())?;
    /// writer.create(&DeviceKey::device("a")?, Identity::default())?;
    /// let keys: Vec<_> = reg.devices(&Policy::default()).map(|d| d.key.to_string()).collect();
    /// assert_eq!(keys, ["a", "a/m", "b"]);
    /// # Ok::<(), failback::Error>(())
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
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let key = DeviceKey::device("d")?;
    /// let mut a = Registry::new();
    /// let mut b = Registry::new();
    /// b.writer(ReplicaId::from_u128(2), Stamp::new(1, 0)).create(&key, Identity::default())?;
    ///
    /// assert_eq!(a.merge(&b).added, 1);
    /// assert_eq!(a, b);
    /// // Merging it again changes nothing: a ⊔ b ⊔ b = a ⊔ b.
    /// assert!(a.merge(&b).is_unchanged());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn merge(&mut self, other: &Registry) -> Report {
        self.merge_with(other, &Policy::default())
    }

    /// Merges another replica's state or a delta into this one and reports what changed;
    /// `policy` only decides how the report's conflicts are read, never the merged state.
    ///
    /// Never fails and never panics. When `other`'s context and stable vector are already
    /// included here, it returns at once: no per-record work, nothing changed
    /// ([`Report::is_unchanged`]). Otherwise the state changes, if only in its context or its
    /// stable vector (taking a stable vector purges the tombstones it covers). A key neither
    /// side wrote since they shared it costs a pointer comparison, and a key only one side wrote
    /// keeps or takes that side's slot without copying it.
    ///
    /// Merging two large states (from 65,536 keys on this side, and the incoming state at
    /// least a sixteenth of its size) walks the keys in shards on up to one scoped thread per
    /// core ([`std::thread::available_parallelism`]), at most eight, joined before it returns;
    /// a smaller state merged into a large one is looked up key by key on the calling thread.
    /// The merged state and the report are the same whatever the number of threads.
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
        // The fast path takes `ctx(b) ⊆ ctx(a) ∧ stable(b) ≤ stable(a) ⇒ a ⊔ b = a` (`a` this
        // side, `b` the incoming one), for states writers and merges make. It rests on two
        // invariants. Every dot a state holds is in its context: a writer inserts each dot it
        // writes, a join joins the contexts, and the reader refuses a state holding a write
        // its context has not seen (`Slot::write_unseen_by`); so `a` has seen every write `b`
        // holds, and holds it still or saw it removed (holds its tombstone, or its stable
        // vector covers it), and the join drops it there. Not for a damaged `a` whose context
        // claims a device cut from its text: the join would take the device back from `b`,
        // where this keeps `a` without it (documented on `Registry`); telling the two apart
        // would cost a walk of `b`, and this shortcut is what makes a re-merge cost nothing.
        // Registers
        // carry their past (`register.rs`, `MvRegister::clear`): a state that has seen a
        // write has seen what it overwrote, so no entry `a` holds is one `b` saw overwritten
        // by a write `a` lacks. Tombstones `b` holds and `a` does not are under `stable(a)`,
        // which purges them. So the join would keep `a` as it is: skip it. (Checked by
        // `a_merge_reports_a_change_exactly_when_the_state_changed`, in `tests/convergence.rs`,
        // and by its twin with compaction in `tests/compaction.rs`.)
        if self.context.includes(&other.context) && self.stable.includes(&other.stable) {
            return Report {
                unchanged: other.slots.len() as u64,
                ..Report::default()
            };
        }
        self.join_unincluded(other, None, None, policy)
    }

    /// What a peer whose version vector is `vector` has not seen: every key holding a write or
    /// a delete beyond `vector`, and every key holding a tombstone, whole. Merging it into
    /// that peer gives the same state as merging this whole registry, but for compaction:
    /// the delta does not carry this registry's stable vector (beyond what its own context
    /// reaches), so the peer keeps the tombstones [`compact`](Self::compact) dropped here
    /// until it compacts itself. As algebra, for `a` this registry and `p` the peer
    /// (`vector = vv(p)`), with `compact_s` compaction at `s = stable(a)`:
    /// `compact_s(p ⊔ a.delta_since(vv(p))) = p ⊔ a`, so `p ⊔ a.delta_since(vv(p)) = p ⊔ a`
    /// where `stable(a)` is empty. Merged into a replica that has not seen everything up to
    /// `vector`, it brings what it holds and no more: it is not that replica's catch-up (a
    /// delete compacted here, for one, reaches such a replica only in a whole state).
    ///
    /// The delta is a state like any other, and `a.delta_since(v) ≤ a`: its context is part of
    /// `a`'s and its stable vector is below `a`'s, so `a ⊔ a.delta_since(v) = a` (the fast
    /// path of [`merge_with`](Self::merge_with)). So it may also be merged into
    /// other replicas that have seen everything up to `vector` (not one behind this
    /// registry's stable vector: the module docs say why), joined with further deltas before
    /// it is sent, or wrapped in an [`Event`](crate::Event): its context claims only the writes it holds and those seen
    /// here beyond `vector`, whose absence from it means they were overwritten or deleted
    /// here. A context claiming everything seen here would tell a replica merged with it
    /// that every device left out had been deleted: merged into the delta, the peer's own
    /// devices would be dropped, and a disable joined into it erased. Two cases send the whole state instead: a peer behind this registry's
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
        // context, and every replica merging the delta would take that vector on. So a
        // compaction here does not travel with a delta: the peer keeps
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
    /// # Known limitation: removals inside a live device are never compacted
    ///
    /// Only tombstones, of deleted devices, are dropped. A twin path or a metadata key
    /// removed (written `None`, or replaced by a write to a path above or below it), and any
    /// register cleared, is kept as a register holding no value and only its record of the
    /// writes it overwrote (one counter per replica that wrote it): a merge needs that record
    /// to refuse a stale replica's value for the path, and no compaction drops it yet, even
    /// where every replica has seen the removal. So a device's state grows with every twin path and metadata key
    /// ever written to it, and shrinks only when the device is deleted or re-created: the
    /// bound is per device incarnation, the paths and keys written since its create, however
    /// few it shows. Twins that carry a path per job or configuration id, set then removed,
    /// grow without end while the device lives; keep such ids out of twin paths, or delete
    /// and re-create the device to reset it.
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
    /// assert!(reg.tombstones(&key).is_empty());
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
    /// [`Error::InvalidValue`](crate::Error::InvalidValue) when `replica` has used every counter,
    /// or for a device as its own parent.
    ///
    /// [`Writer::create`]: crate::Writer::create
    pub(crate) fn create_in_bulk(
        &mut self,
        key: DeviceKey,
        replica: crate::clock::ReplicaId,
        stamp: Stamp,
        identity: crate::identity::Identity,
    ) -> Result<bool> {
        // A lift's lines never give one (`parent_of`), but a registry takes no value a writer
        // would refuse, whoever writes it.
        crate::identity::check_parent(&key, identity.parent.as_ref())?;
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

    /// The dots of the writes held in the store (not the context): every dot a live record
    /// holds, and each tombstone's delete (`deleted`); what a delta writes. A tombstone's
    /// `incarnation` is left out: it names the creation the delete removed, a write the delete
    /// did not make. An event owns the dots its delta writes ([`Ingest`](crate::Ingest)
    /// tells a duplicate from a reuse by them, and forgets an event once they are stable), and
    /// the creation belongs to the event that created the device, not to every delete of it.
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
    use crate::identity::Identity;

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
