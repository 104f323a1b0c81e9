//! The multi-value register: every concurrent write kept, each with its dot.
//!
//! A register is a *dot store*: a set of entries keyed by dot. Its join needs to know, for an
//! entry missing on one side, whether that side never saw it or saw it and overwrote it:
//!
//! ```text
//! (s, c) ⊔ (t, d) = (s ∩ t) ∪ (s ∖ d) ∪ (t ∖ c)
//! ```
//!
//! so a write survives unless a side that saw it overwrote it. Here `c` and `d` are each
//! side's registry context **together with the register's own causal past** (`past`): for
//! each replica, the highest counter of a write to *this register* that the side has seen.
//! Every write by a replica to a register follows that replica's earlier writes to it, so a
//! side that has seen write `(r, n)` here has seen every `(r, m ≤ n)` here overwritten or held.
//! A twin leaf's register also remembers, when written, the writes seen at its ancestors
//! ([`remember`](MvRegister::remember)): a write `(r, n)` above a path replaced the subtree,
//! so every `(r, m < n)` at the path was overwritten by then too, and the read can tell a
//! write below that saw a write above from one made concurrently with it.
//!
//! Why the register keeps its past (2026-11): a delta's context holds only its own dot and the
//! dots it overwrote directly. Delivered out of order (op 3, then op 1, then op 2), op 3 made
//! op 2 look seen, op 1 then arrived as new, and op 2 — the write that overwrote op 1 — was
//! skipped as already included: op 1 came back. With the past travelling in every delta, op 3
//! already says that op 1 is gone, so merging a state whose context is already included is a
//! no-op again, as the registry's fast path assumes.
//!
//! Resolution to one value for reading is a separate step ([`crate::Policy`]); the register
//! itself never drops a concurrent value.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::{CausalContext, Dot, ReplicaId, VersionVector};
use crate::serde_text::serde_redacting;
use crate::stamp::Stamp;

/// One write held by a register: its dot, its stamp and its value.
///
/// Read from text, every member is required, `value` too when it is an `Option` (`null` is a
/// value there: a removal), and a member it does not know is refused: read as a removal, a
/// missing or misspelt `value` held another value under the dot than the peers did.
///
/// # Examples
///
/// ```
/// use failback::{Dot, Entry, ReplicaId, Stamp};
/// let entry = Entry::new(Dot::new(ReplicaId::from_u128(1), 1), Stamp::new(5, 0), "on");
/// assert_eq!(entry.value, "on");
/// let missing = r#"{"dot": {"replica": "00000000-0000-0000-0000-000000000001", "counter": 1},
///     "stamp": {"millis": 5, "logical": 0}}"#;
/// let err = serde_json::from_str::<Entry<Option<String>>>(missing).unwrap_err();
/// assert!(err.to_string().contains("missing field `value`"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Entry<T> {
    /// The write's identity.
    #[serde(deserialize_with = "crate::clock::deserialize_write_dot")]
    pub dot: Dot,
    /// When the writer's hybrid logical clock says it happened.
    pub stamp: Stamp,
    /// The value written.
    #[serde(deserialize_with = "crate::serde_text::required")]
    pub value: T,
}

// Entries and registers of credentials hold keys: serde's quotes of what it found are hidden.
serde_redacting!(Entry<T>);

impl<T> Entry<T> {
    /// An entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, Entry, ReplicaId, Stamp};
    /// let e = Entry::new(Dot::new(ReplicaId::from_u128(1), 2), Stamp::default(), 7);
    /// assert_eq!(e.dot.counter, 2);
    /// ```
    pub fn new(dot: Dot, stamp: Stamp, value: T) -> Self {
        Self { dot, stamp, value }
    }
}

/// Entries keyed by dot, joined with the rule in the module docs.
///
/// # Examples
///
/// ```
/// use failback::{CausalContext, Dot, MvRegister, ReplicaId, Stamp};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut left = MvRegister::new();
/// let left_ctx = CausalContext::from_iter([Dot::new(a, 1)]);
/// left.write(Dot::new(a, 1), Stamp::new(1, 0), "enabled");
/// let mut right = MvRegister::new();
/// let right_ctx = CausalContext::from_iter([Dot::new(b, 1)]);
/// right.write(Dot::new(b, 1), Stamp::new(2, 0), "disabled");
///
/// left.join(&left_ctx, &right, &right_ctx, |_| {});
/// assert_eq!(left.len(), 2); // concurrent: both kept
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MvRegister<T> {
    #[serde(default, skip_serializing_if = "Entries::is_none")]
    entries: Entries<T>,
    /// Writes to this register seen and since overwritten: per replica, the highest counter,
    /// kept only where it exceeds that replica's held entries (so equal states are equal).
    #[serde(default, skip_serializing_if = "VersionVector::is_empty")]
    past: VersionVector,
}

/// A register as text holds it. (The bound is stated: serde would ask `T: Default` for the
/// defaulted `entries`, whose default holds no `T`.) Both members are left out when empty, so
/// one it does not know is refused: `entires` read as no entry.
#[derive(Deserialize)]
#[serde(
    bound(deserialize = "T: Deserialize<'de> + PartialEq"),
    deny_unknown_fields
)]
struct MvRegisterWire<T> {
    #[serde(default)]
    entries: Entries<T>,
    #[serde(default)]
    past: VersionVector,
}

/// As derived, with serde's quotes of what it found hidden: a register of credentials holds
/// keys, and one a step off in damaged text would be quoted whole. (Not `serde_redacting!`,
/// as on [`Entry`]: a derived reader here would ask `T: Default`, which that macro's impl does
/// not, so its call would resolve to itself.)
///
/// The past is normalised as it is read, as every write and join leaves it. Why normalised
/// and not refused (2026-11-24): a past naming a write its entries already say (`(r, 2)`
/// beside the entry `(r, 3)`) means the same writes seen, so dropping it loses nothing, as a
/// context read with a cloud dot its vector covers is normalised (`CausalContext`'s reader).
/// Read as written, the same writes had two encodings, and a merge's inclusion shortcut kept
/// whichever side it merged into: `a ⊔ b` and `b ⊔ a` differed byte for byte.
impl<'de, T: Deserialize<'de> + PartialEq> Deserialize<'de> for MvRegister<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let MvRegisterWire { entries, past } =
            MvRegisterWire::deserialize(deserializer).map_err(crate::error::redacted)?;
        let mut register = Self { entries, past };
        register.normalise();
        Ok(register)
    }
}

/// What needs no `T: Clone`: the reader normalises with it too.
impl<T> MvRegister<T> {
    /// Drops from `past` what the held entries already say: `(r, n)` where an entry of `r`
    /// has a counter `≥ n`. One walk of both lists, each sorted by replica (the entries by
    /// dot, so a replica's highest counter is the last of its run): linear, as the reader
    /// that calls it on every register of a file must be.
    fn normalise(&mut self) {
        if self.past.is_empty() {
            return;
        }
        let mut held = self.entries.iter().map(|e| e.dot).peekable();
        self.past = self
            .past
            .iter()
            .filter(|&(replica, counter)| {
                let mut highest = 0;
                while let Some(dot) = held.next_if(|dot| dot.replica <= replica) {
                    if dot.replica == replica {
                        highest = dot.counter;
                    }
                }
                highest < counter
            })
            .collect();
    }
}

impl<T> Default for MvRegister<T> {
    fn default() -> Self {
        Self {
            entries: Entries::NONE,
            past: VersionVector::new(),
        }
    }
}

/// A register's entries, sorted by dot, no two with the same dot; shared, so that cloning a
/// register (an event's into a record, one replica's into another's) copies a pointer and
/// not the values. Never written in place: a write or a join that changes them makes new
/// ones. `None` when there are none, so that an empty register allocates nothing.
struct Entries<T>(Option<Arc<[Entry<T>]>>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Self::NONE
    }
}

impl<T> Entries<T> {
    const NONE: Self = Self(None);

    fn one(entry: Entry<T>) -> Self {
        Self(Some(Arc::new([entry])))
    }

    fn from_vec(entries: Vec<Entry<T>>) -> Self {
        if entries.is_empty() {
            Self::NONE
        } else {
            Self(Some(entries.into()))
        }
    }

    fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl<T: PartialEq> Entries<T> {
    /// Whether both hold the same entries: the same allocation (one register's entries shared
    /// by a clone or a merge, the common case, decided without reading them), or equal ones.
    fn same(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(mine), Some(theirs)) => Arc::ptr_eq(mine, theirs) || **mine == **theirs,
            (mine, theirs) => mine.is_none() && theirs.is_none(),
        }
    }
}

impl<T> Deref for Entries<T> {
    type Target = [Entry<T>];

    fn deref(&self) -> &[Entry<T>] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl<T> Clone for Entries<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: PartialEq> PartialEq for Entries<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for Entries<T> {}

impl<T: std::hash::Hash> std::hash::Hash for Entries<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<T: fmt::Debug> fmt::Debug for Entries<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Serialized as the list of entries it is.
impl<T: Serialize> Serialize for Entries<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Read as a list, then put in dot order with one entry per dot (the first read), which every
/// lookup and walk here relies on and a file need not respect.
/// Sorted by dot, an entry read twice read once; two different writes under one dot are
/// refused: no writer or join makes them, and keeping either (the first, say) would drop the
/// other without a word. The values are not shown: a
/// register of credentials holds keys.
impl<'de, T: Deserialize<'de> + PartialEq> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut entries = Vec::<Entry<T>>::deserialize(deserializer)?;
        entries.sort_by_key(|e| e.dot);
        if let Some(pair) = entries
            .windows(2)
            .find(|pair| pair[0].dot == pair[1].dot && pair[0] != pair[1])
        {
            return Err(serde::de::Error::custom(format!(
                "two different writes under one dot, {}",
                pair[0].dot
            )));
        }
        entries.dedup_by(|later, first| later.dot == first.dot);
        Ok(Self::from_vec(entries))
    }
}

impl<T: Clone> MvRegister<T> {
    /// An empty register.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::MvRegister::<u8>::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self {
            entries: Entries::NONE,
            past: VersionVector::new(),
        }
    }

    /// The register with each value passed through `spell`, dots and past kept: a value read
    /// from text an earlier build wrote, put in the spelling writes hold now
    /// (`device/wire.rs`). Values only: two entries stay two entries even where they now
    /// spell alike, as two equal writes under two dots do.
    pub(crate) fn respelled(self, spell: impl Fn(&T) -> T) -> Self {
        if self.entries.is_none() {
            return self;
        }
        let entries = (self.entries.iter())
            .map(|e| Entry::new(e.dot, e.stamp, spell(&e.value)))
            .collect();
        Self {
            entries: Entries::from_vec(entries),
            past: self.past,
        }
    }

    /// Whether the register holds no write.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::MvRegister::<u8>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many concurrent writes it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::MvRegister::<u8>::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The concurrent writes, in dot order.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, MvRegister, ReplicaId, Stamp};
    /// let mut reg = MvRegister::new();
    /// reg.write(Dot::new(ReplicaId::from_u128(1), 1), Stamp::default(), 'x');
    /// assert_eq!(reg.entries()[0].value, 'x');
    /// ```
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// Overwrites every value this replica sees with `value`, returning the dots it replaced.
    /// The caller adds them, and `dot`, to the delta's context: that is how the overwrite
    /// reaches replicas that still hold the old values.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, MvRegister, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let mut reg = MvRegister::new();
    /// reg.write(Dot::new(r, 1), Stamp::default(), 1);
    /// let replaced = reg.write(Dot::new(r, 2), Stamp::default(), 2);
    /// assert_eq!(replaced, [Dot::new(r, 1)]);
    /// assert_eq!(reg.len(), 1);
    /// ```
    pub fn write(&mut self, dot: Dot, stamp: Stamp, value: T) -> Vec<Dot> {
        let replaced = self.clear();
        self.entries = Entries::one(Entry::new(dot, stamp, value));
        self.normalise();
        replaced
    }

    /// Overwrites every value held with nothing, remembering them as overwritten (a twin leaf
    /// whose path a related write replaced). Returns the dots replaced.
    pub(crate) fn clear(&mut self) -> Vec<Dot> {
        let replaced = self.dots().collect();
        self.past = self.seen();
        self.entries = Entries::NONE;
        replaced
    }

    /// Whether the register holds neither a value nor a past: as if never written.
    pub(crate) fn is_void(&self) -> bool {
        self.entries.is_empty() && self.past.is_empty()
    }

    /// Every write to this register this side has seen, held or overwritten, as a vector:
    /// `(r, m)` is covered when this side has seen a write `(r, n ≥ m)` to this register.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, MvRegister, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let mut reg = MvRegister::new();
    /// reg.write(Dot::new(r, 1), Stamp::default(), 'a');
    /// reg.write(Dot::new(r, 4), Stamp::default(), 'b');
    /// assert_eq!(reg.seen().get(r), 4);
    /// ```
    pub fn seen(&self) -> VersionVector {
        let mut seen = self.past.clone();
        self.entries.iter().for_each(|e| seen.advance(e.dot));
        seen
    }

    /// The writes this register has seen overwritten, beyond those it holds: per replica,
    /// the highest counter, where it exceeds that replica's held entries.
    pub(crate) fn past(&self) -> &VersionVector {
        &self.past
    }

    /// Whether this register has seen every write `vector` covers: `vector ≤ seen()`, without
    /// building [`seen`](Self::seen).
    pub(crate) fn has_seen(&self, vector: &VersionVector) -> bool {
        self.first_unseen(vector).is_none()
    }

    /// The first replica (in replica order) with a write `vector` covers that this register
    /// has not seen.
    pub(crate) fn first_unseen(&self, vector: &VersionVector) -> Option<ReplicaId> {
        vector
            .iter()
            .find(|&(replica, counter)| self.seen_of(replica) < counter)
            .map(|(replica, _)| replica)
    }

    /// Remembers the writes `vector` covers as overwritten here, besides what the register
    /// already holds or remembers: a twin write records so what it saw written above its
    /// path, which its write replaced there (see `DeviceRecord::set_twin`). Claims no held
    /// entry: `vector` is what the writer saw before its write, whose dot, the one held,
    /// comes after every dot of its replica the writer has seen.
    pub(crate) fn remember(&mut self, vector: &VersionVector) {
        if self.has_seen(vector) {
            return;
        }
        self.past.join(vector);
        self.normalise();
    }

    /// Whether a peer whose version vector is `vector` has seen every write held or
    /// remembered here.
    pub(crate) fn is_known_to(&self, vector: &VersionVector) -> bool {
        vector.includes(&self.past) && self.entries.iter().all(|e| vector.contains(e.dot))
    }

    /// The register with its values taken out and only their past kept: what it knows was
    /// overwritten, without claiming its live values as overwritten too. A state below this
    /// one, so a delta may carry it in place of the register.
    pub(crate) fn past_only(&self) -> Self {
        let entries = &self.entries;
        let past = self
            .seen()
            .iter()
            .map(|(replica, counter)| {
                // A replica's live value here is its latest write here: everything before
                // it is past, it is not.
                match entries.iter().find(|e| e.dot.replica == replica) {
                    Some(e) => (replica, e.dot.counter.saturating_sub(1)),
                    None => (replica, counter),
                }
            })
            .collect();
        Self {
            entries: Entries::NONE,
            past,
        }
    }

    /// The dots of the values held.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::MvRegister::<u8>::new().dots().count(), 0);
    /// ```
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.entries.iter().map(|e| e.dot)
    }

    /// Adds one entry as a delta carries it (no overwrite): used to build deltas and to
    /// rebuild a register from its parts. Ignores an entry whose dot is already held.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, Entry, MvRegister, ReplicaId, Stamp};
    /// let mut reg = MvRegister::new();
    /// reg.insert(Entry::new(Dot::new(ReplicaId::from_u128(2), 1), Stamp::default(), 'b'));
    /// reg.insert(Entry::new(Dot::new(ReplicaId::from_u128(1), 1), Stamp::default(), 'a'));
    /// assert_eq!(reg.entries()[0].value, 'a'); // kept in dot order
    /// ```
    pub fn insert(&mut self, entry: Entry<T>) {
        if let Err(at) = self.entries.binary_search_by(|e| e.dot.cmp(&entry.dot)) {
            let mut entries = self.entries.to_vec();
            entries.insert(at, entry);
            self.entries = Entries::from_vec(entries);
        }
    }
}

/// The join and its shortcut compare the entries both sides hold under one dot: equal, where
/// one dot names one write.
impl<T: Clone + PartialEq> MvRegister<T> {
    /// Join with another replica's register: `(s ∩ t) ∪ (s ∖ d) ∪ (t ∖ c)`, where `c` is this
    /// side's context and `d` the other's, each with its register's past (see the module
    /// docs). `stale` is called for each incoming entry dropped because this side had already
    /// overwritten it. Returns whether anything changed.
    ///
    /// Laws: `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`, `a ⊔ a = a` (with contexts joined
    /// alongside).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, MvRegister, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let (old, new) = (Dot::new(r, 1), Dot::new(r, 2));
    /// let mut stale = MvRegister::new();
    /// stale.write(old, Stamp::default(), "key-1");
    /// let mut fresh = MvRegister::new();
    /// fresh.write(new, Stamp::default(), "key-2");
    /// let mut rejected = Vec::new();
    /// fresh.join(&CausalContext::from_iter([old, new]), &stale,
    ///            &CausalContext::from_iter([old]), |e| rejected.push(e.value));
    /// assert_eq!(fresh.entries()[0].value, "key-2");
    /// assert_eq!(rejected, ["key-1"]);
    /// ```
    pub fn join(
        &mut self,
        ctx: &CausalContext,
        other: &Self,
        other_ctx: &CausalContext,
        stale: impl FnMut(&Entry<T>),
    ) -> bool {
        // Fast path: the same writes on both sides (the common case in a failback, where most
        // records were not touched during the outage).
        if self.entries.len() == other.entries.len()
            && self.dots().eq(other.dots())
            && self.past == other.past
        {
            return false;
        }
        // One side void and nothing of the other's overwritten by this side's context: the
        // join is the other side's values (∅ ⊔ t = t), or this side's (s ⊔ ∅ = s), and the
        // general walk below would only build two pasts to find that out. This is every
        // register an event or a delta brings to a record that had not written it.
        if self.is_void() && !other.entries.iter().any(|e| ctx.contains(e.dot)) {
            self.clone_from(other);
            self.normalise();
            return !self.is_void();
        }
        if other.is_void() && !self.entries.iter().any(|e| other_ctx.contains(e.dot)) {
            if self.past.is_empty() {
                return false;
            }
            let before = self.past.clone();
            self.normalise();
            return self.past != before;
        }
        self.join_walk(ctx, other, other_ctx, stale)
    }

    /// The general join: both sides' entries in dot order, each kept unless the other side
    /// has seen its dot and dropped it.
    fn join_walk(
        &mut self,
        ctx: &CausalContext,
        other: &Self,
        other_ctx: &CausalContext,
        mut stale: impl FnMut(&Entry<T>),
    ) -> bool {
        // What each side has seen of this register: its context, and the register's past.
        let (mine_seen, theirs_seen) = (self.seen(), other.seen());
        let seen_here = |dot: Dot| ctx.contains(dot) || mine_seen.contains(dot);
        let seen_there = |dot: Dot| other_ctx.contains(dot) || theirs_seen.contains(dot);
        let mut changed = false;
        // The entries kept, by reference: when they are exactly one side's, that side's
        // shared entries are kept rather than copied.
        let mut out: Vec<&Entry<T>> = Vec::with_capacity(self.entries.len() + other.entries.len());
        let (mut only_mine, mut only_theirs) = (0, 0);
        let (mut mine, mut theirs) = (
            self.entries.iter().peekable(),
            other.entries.iter().peekable(),
        );
        // Both sides in dot order: an entry on both is kept; one only here is kept unless the
        // other side has seen (and so overwritten) it, and one only there is taken unless this
        // side has.
        loop {
            let order = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(m), Some(t)) => m.dot.cmp(&t.dot),
            };
            match order {
                Ordering::Equal => {
                    if let (Some(m), _) = (mine.next(), theirs.next()) {
                        out.push(m);
                    }
                }
                Ordering::Less => {
                    if let Some(m) = mine.next() {
                        if seen_there(m.dot) {
                            changed = true;
                        } else {
                            out.push(m);
                            only_mine += 1;
                        }
                    }
                }
                Ordering::Greater => {
                    if let Some(t) = theirs.next() {
                        if seen_here(t.dot) {
                            stale(t);
                        } else {
                            out.push(t);
                            only_theirs += 1;
                            changed = true;
                        }
                    }
                }
            }
        }
        // The other side's entries are kept only when they are the ones kept: an entry on both
        // sides is this side's (above), and the other side's differs from it where two writes
        // were given one dot (a restart from a backup under its old id, a value edited in a
        // saved state). Compared only here, and by address first: entries taken from the other
        // side are its own.
        let theirs_kept = || {
            out.iter()
                .zip(other.entries.iter())
                .all(|(&kept, t)| std::ptr::eq(kept, t) || kept == t)
        };
        let entries = if only_theirs == 0 && out.len() == self.entries.len() {
            self.entries.clone()
        } else if only_mine == 0 && out.len() == other.entries.len() && theirs_kept() {
            other.entries.clone()
        } else {
            Entries::from_vec(out.into_iter().cloned().collect())
        };
        self.entries = entries;
        let before = std::mem::take(&mut self.past);
        self.past = mine_seen;
        self.past.join(&theirs_seen);
        self.normalise();
        changed || self.past != before
    }

    /// Whether [`join`](Self::join) with `other` would leave this register as it is, decided
    /// without allocating: `s ⊔ t = s` exactly when
    ///
    /// ```text
    /// seen(t) ≤ seen(s)   and   ∀ e ∈ s ∖ t: e ∉ d ∪ seen(t)   and   s is normalised
    /// ```
    ///
    /// The first makes every entry of `t` either held here or overwritten here (so nothing is
    /// taken) and leaves the joined past at this one; the second keeps every entry held here.
    /// This side's context is not needed: the first condition already implies what it would
    /// decide.
    ///
    /// An entry held on both sides must be equal there too (`s ∩ t` taken as entries, not
    /// dots), though the join keeps this side's whatever the other holds: a merge that finds
    /// `t ⊔ s = t` takes `t` whole for `s ⊔ t`, which is right only if the two agree on every
    /// write both hold. They differ only where two writes were given one dot (`ReplicaId`'s
    /// misuse, or a value edited in a saved state), and then the general join keeps this
    /// side's. Shared entries (one allocation, as clones and merges leave them) are not read.
    pub(crate) fn absorbs(&self, other: &Self, other_ctx: &CausalContext) -> bool {
        if self.entries.len() == other.entries.len()
            && self.dots().eq(other.dots())
            && self.past == other.past
        {
            return self.entries.same(&other.entries);
        }
        other.past.iter().all(|(r, n)| self.seen_of(r) >= n)
            && other
                .entries
                .iter()
                .all(|e| self.seen_of(e.dot.replica) >= e.dot.counter)
            && self.entries.iter().all(|e| match other.held(e.dot) {
                Some(theirs) => std::ptr::eq(theirs, e) || theirs == e,
                None => {
                    !(other_ctx.contains(e.dot) || other.seen_of(e.dot.replica) >= e.dot.counter)
                }
            })
            && self.is_normalised()
    }
}

impl<T: Clone> MvRegister<T> {
    /// Whether `past` holds nothing the held entries already say, as
    /// [`normalise`](Self::normalise) leaves it.
    pub(crate) fn is_normalised(&self) -> bool {
        self.past.iter().all(|(r, n)| {
            !self
                .entries
                .iter()
                .any(|e| e.dot.replica == r && e.dot.counter >= n)
        })
    }

    /// `seen().get(replica)`, without building the vector.
    fn seen_of(&self, replica: ReplicaId) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.dot.replica == replica)
            .map(|e| e.dot.counter)
            .fold(self.past.get(replica), u64::max)
    }

    /// The entry held with this dot, if any.
    fn held(&self, dot: Dot) -> Option<&Entry<T>> {
        let at = self.entries.binary_search_by(|e| e.dot.cmp(&dot)).ok()?;
        self.entries.get(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ReplicaId;

    fn dot(r: u128, n: u64) -> Dot {
        Dot::new(ReplicaId::from_u128(r), n)
    }

    fn reg(entries: &[(Dot, u8)]) -> MvRegister<u8> {
        let mut reg = MvRegister::new();
        entries
            .iter()
            .for_each(|&(d, v)| reg.insert(Entry::new(d, Stamp::default(), v)));
        reg
    }

    /// Whether two registers hold the very same entries (one allocation), not equal copies.
    fn shared(a: &MvRegister<u8>, b: &MvRegister<u8>) -> bool {
        match (&a.entries.0, &b.entries.0) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        }
    }

    /// An entry read twice is read once; two different writes under one dot are refused,
    /// without showing either value.
    #[test]
    fn two_writes_under_one_dot_are_refused_when_read() {
        let text = |entries: &[(u64, &str)]| {
            let entries: Vec<Entry<String>> = entries
                .iter()
                .map(|&(n, v)| Entry::new(dot(1, n), Stamp::default(), v.to_owned()))
                .collect();
            serde_json::json!({ "entries": entries }).to_string()
        };
        let twice: MvRegister<String> =
            serde_json::from_str(&text(&[(1, "on"), (1, "on")])).expect("one write read twice");
        assert_eq!(twice.entries().len(), 1);
        let err = serde_json::from_str::<MvRegister<String>>(&text(&[(1, "on"), (1, "off")]))
            .expect_err("two writes under one dot")
            .to_string();
        assert!(err.contains("two different writes under one dot"), "{err}");
        assert!(!err.contains("on") || !err.contains("off"), "{err}");
    }

    /// Two writes under one dot (a restart from a backup under its old id): the join keeps
    /// this side's entry under the dot and takes the other side's concurrent one, so it does
    /// not reuse the other side's entries, which hold the other write under the dot; and
    /// neither register absorbs the other, so no merge takes one whole for the other.
    #[test]
    fn a_join_keeps_this_sides_entry_under_a_dot_both_hold_with_different_values() {
        let mine = reg(&[(dot(1, 2), 1)]);
        let theirs = reg(&[(dot(1, 2), 2), (dot(2, 1), 3)]);
        let ctx = CausalContext::from_iter([dot(1, 1), dot(1, 2)]);
        let theirs_ctx = CausalContext::from_iter([dot(1, 1), dot(1, 2), dot(2, 1)]);
        let mut joined = mine.clone();
        assert!(joined.join(&ctx, &theirs, &theirs_ctx, |_| {}));
        let values: Vec<(Dot, u8)> = joined.entries().iter().map(|e| (e.dot, e.value)).collect();
        assert_eq!(values, [(dot(1, 2), 1), (dot(2, 1), 3)]);
        // Equal dots, different values: `t ⊔ s = t` would not give `s ⊔ t`.
        let same_dot = reg(&[(dot(1, 2), 2)]);
        assert!(!same_dot.absorbs(&mine, &ctx));
        assert!(!mine.absorbs(&same_dot, &ctx));
        assert!(!theirs.absorbs(&mine, &ctx));
        // Equal copies (not shared) still absorb each other.
        let copy = reg(&[(dot(1, 2), 1)]);
        assert!(!shared(&copy, &mine));
        assert!(copy.absorbs(&mine, &ctx) && mine.absorbs(&copy, &ctx));
    }

    #[test]
    fn a_join_that_keeps_one_sides_entries_shares_them() {
        // ∅ ⊔ t = t: an event's register joined into a record that never wrote it.
        let theirs = reg(&[(dot(2, 1), 7)]);
        let mut mine = MvRegister::new();
        assert!(mine.join(
            &CausalContext::new(),
            &theirs,
            &CausalContext::from_iter([dot(2, 1)]),
            |_| {}
        ));
        assert!(shared(&mine, &theirs));
        // A general join whose result is the other side's: its write overwrote this one's.
        let mut mine = reg(&[(dot(1, 1), 1)]);
        let mut theirs = mine.clone();
        theirs.write(dot(2, 1), Stamp::default(), 2);
        let ctx = CausalContext::from_iter([dot(1, 1)]);
        let theirs_ctx = CausalContext::from_iter([dot(1, 1), dot(2, 1)]);
        assert!(mine.join(&ctx, &theirs, &theirs_ctx, |_| {}));
        assert_eq!(mine.entries(), theirs.entries());
        assert!(shared(&mine, &theirs));
        // Concurrent writes: both kept, in new entries.
        let mut left = reg(&[(dot(1, 2), 1)]);
        let right = reg(&[(dot(2, 2), 2)]);
        let (lc, rc) = (
            CausalContext::from_iter([dot(1, 2)]),
            CausalContext::from_iter([dot(2, 2)]),
        );
        assert!(left.join(&lc, &right, &rc, |_| {}));
        assert_eq!(left.dots().collect::<Vec<_>>(), [dot(1, 2), dot(2, 2)]);
    }

    /// Each replica's past is kept only above its highest held counter, whatever the
    /// replicas on either side hold: the walk of the two sorted lists skips none.
    #[test]
    fn a_past_read_from_a_file_keeps_only_what_the_entries_do_not_say() -> serde_json::Result<()> {
        let r = |n: u128| ReplicaId::from_u128(n);
        let mut built = reg(&[(dot(2, 1), 1), (dot(2, 4), 4), (dot(4, 2), 2)]);
        built.past = VersionVector::from_iter([(r(1), 9), (r(2), 5), (r(3), 1)]);
        let mut text = serde_json::to_value(&built)?;
        text["past"] = serde_json::json!([[r(1), 9], [r(2), 4], [r(2), 5], [r(3), 1], [r(4), 2]]);
        let read: MvRegister<u8> = serde_json::from_value(text.clone())?;
        assert_eq!(read, built);
        assert!(read.is_normalised());
        // (2, 5) dropped too where an entry says it.
        text["entries"][1]["dot"]["counter"] = serde_json::json!(5);
        let read: MvRegister<u8> = serde_json::from_value(text)?;
        assert_eq!(read.past.iter().collect::<Vec<_>>(), [(r(1), 9), (r(3), 1)]);
        Ok(())
    }

    #[test]
    fn entries_read_from_a_file_are_put_in_dot_order_once_each() -> serde_json::Result<()> {
        let built = reg(&[(dot(1, 3), 3), (dot(2, 1), 1)]);
        let mut text = serde_json::to_value(&built)?;
        // Reversed, and the first entry repeated (with another value it is refused:
        // `two_writes_under_one_dot_are_refused_when_read`).
        if let Some(entries) = text.get_mut("entries").and_then(|e| e.as_array_mut()) {
            entries.reverse();
            let repeat = entries[0].clone();
            entries.push(repeat);
        }
        let read: MvRegister<u8> = serde_json::from_value(text)?;
        assert_eq!(read, built);
        assert!(
            serde_json::from_str::<MvRegister<u8>>(r#"{"entries": []}"#)?
                .entries
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn overwritten_value_does_not_come_back_from_a_stale_side() {
        let mut fresh = reg(&[(dot(1, 2), 2)]);
        let fresh_ctx = CausalContext::from_iter([dot(1, 1), dot(1, 2)]);
        let stale = reg(&[(dot(1, 1), 1)]);
        let stale_ctx = CausalContext::from_iter([dot(1, 1)]);
        assert!(!fresh.join(&fresh_ctx, &stale, &stale_ctx, |_| {}));
        assert_eq!(fresh, reg(&[(dot(1, 2), 2)]));

        let mut stale_side = stale.clone();
        let fresh_again = reg(&[(dot(1, 2), 2)]);
        assert!(stale_side.join(&stale_ctx, &fresh_again, &fresh_ctx, |_| {}));
        assert_eq!(stale_side, fresh_again);
    }

    #[test]
    fn a_late_write_the_past_covers_stays_overwritten() {
        // (1,1) was overwritten by (1,2), itself by (1,3); the register at (1,3) says so even
        // though its context only names (1,2).
        let mut latest = MvRegister::new();
        latest.write(dot(1, 1), Stamp::default(), 1u8);
        latest.write(dot(1, 2), Stamp::default(), 2);
        let delta_ctx = CausalContext::from_iter([dot(1, 2), dot(1, 3)]);
        latest.write(dot(1, 3), Stamp::default(), 3);
        let mut sink = MvRegister::new();
        sink.join(&CausalContext::new(), &latest, &delta_ctx, |_| {});
        let mut rejected = Vec::new();
        let late = reg(&[(dot(1, 1), 1)]);
        sink.join(
            &delta_ctx,
            &late,
            &CausalContext::from_iter([dot(1, 1)]),
            |e| rejected.push(e.dot),
        );
        assert_eq!(sink.entries().len(), 1);
        assert_eq!(sink.entries()[0].value, 3);
        assert_eq!(rejected, [dot(1, 1)]);
    }

    #[test]
    fn past_only_keeps_the_overwritten_and_never_the_live() {
        let mut reg = MvRegister::new();
        reg.write(dot(1, 1), Stamp::default(), 1u8);
        reg.write(dot(1, 4), Stamp::default(), 4);
        reg.insert(Entry::new(dot(2, 2), Stamp::default(), 9));
        let past = reg.past_only();
        assert!(past.is_empty() && !past.is_void());
        assert!(past.seen().contains(dot(1, 3)));
        assert!(!past.seen().contains(dot(1, 4)) && !past.seen().contains(dot(2, 2)));
        // Below the register: joining it back changes nothing.
        let mut again = reg.clone();
        let ctx = CausalContext::from_iter([dot(1, 4), dot(2, 2)]);
        assert!(!again.join(&ctx, &past, &CausalContext::new(), |_| {}));
        assert_eq!(again, reg);
    }

    #[test]
    fn joins_with_a_void_side_agree_with_the_general_walk() {
        // Registers over a few dots, pasts normalised or not, against contexts that see none,
        // some or all of them: wherever `join` takes a shortcut it must do what the walk does,
        // to the register, to what it says changed, and to what it calls stale.
        let dots = [dot(1, 1), dot(1, 2), dot(2, 1), dot(2, 3)];
        let mut registers = vec![MvRegister::new()];
        for mask in 1..16u8 {
            let held: Vec<(Dot, u8)> = (0..4)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| (dots[i], i as u8))
                .collect();
            registers.push(reg(&held));
            let mut with_past = reg(&held);
            with_past.past = VersionVector::from_iter([(ReplicaId::from_u128(1), 2)]);
            registers.push(with_past);
        }
        let mut past_only = MvRegister::<u8>::new();
        past_only.past = VersionVector::from_iter([(ReplicaId::from_u128(2), 2)]);
        registers.push(past_only);
        let contexts: Vec<CausalContext> = (0..16u8)
            .map(|mask| {
                (0..4)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| dots[i])
                    .collect()
            })
            .collect();
        let void = MvRegister::new();
        for r in &registers {
            for ctx in &contexts {
                for other_ctx in &contexts {
                    for (mine, theirs) in [(&void, r), (r, &void)] {
                        let (mut fast, mut walked) = (mine.clone(), mine.clone());
                        let (mut fast_stale, mut walked_stale) = (Vec::new(), Vec::new());
                        let changed = fast.join(ctx, theirs, other_ctx, |e| fast_stale.push(e.dot));
                        let walked_changed =
                            walked.join_walk(ctx, theirs, other_ctx, |e| walked_stale.push(e.dot));
                        assert_eq!(
                            (fast, changed, fast_stale),
                            (walked, walked_changed, walked_stale),
                            "{mine:?} ⊔ {theirs:?} under {ctx:?}, {other_ctx:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unseen_entries_survive_on_both_sides() {
        let mut a = reg(&[(dot(1, 1), 1)]);
        let b = reg(&[(dot(2, 1), 2)]);
        a.join(
            &CausalContext::from_iter([dot(1, 1)]),
            &b,
            &CausalContext::from_iter([dot(2, 1)]),
            |_| {},
        );
        assert_eq!(a, reg(&[(dot(1, 1), 1), (dot(2, 1), 2)]));
    }
}
