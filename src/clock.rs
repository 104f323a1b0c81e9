//! Causality: replica ids, dots, version vectors and causal contexts.
//!
//! A **dot** `(replica, counter)` names one write. A **version vector** maps each replica to the
//! highest counter of a gap-free prefix of its writes. A **causal context** is a version vector
//! plus the dots seen out of order (the *cloud*), so that a gap in a replica's counters makes
//! neither later dots look unseen nor earlier ones seen — the history on which `crdts::VClock`
//! drops writes.
//!
//! Laws (for both [`VersionVector`] and [`CausalContext`]):
//! `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`, `a ⊔ a = a`, `a ≤ a ⊔ b`.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dot_cloud::DotCloud;

/// One regional registry (a replica), named by a UUID on the API and on the wire.
///
/// # One id, one sequence of writes
///
/// A [`Writer`](crate::Writer) gives each write the next counter after every dot its registry
/// has seen from the replica, and everything here assumes that a dot names one write. That
/// holds while, for each replica id, one registry at a time writes under it, and that registry
/// has seen every write already made under it. Two processes writing under one id, or a
/// process that restarts from a backup older than writes it already shipped, give two writes
/// one dot. An [`Ingest`](crate::Ingest) given both as events refuses the second
/// ([`Error::DotReused`](crate::Error::DotReused)). A state merge cannot tell them apart:
/// that would mean comparing the payload of every write both sides hold, and a merge that
/// finds the other side's context included reads no record at all. It keeps the write it
/// holds, so `a ⊔ b` and `b ⊔ a` can differ and one of the two writes is lost silently.
///
/// So: before writing after a restart, persist the registry or merge back every state that may
/// hold the replica's writes (the writer then counts on from them); after restoring an older
/// state, write under a new id, and name that id in any [`Policy`](crate::Policy) that preferred
/// the old one.
///
/// # Examples
///
/// ```
/// use failback::ReplicaId;
///
/// let primary = ReplicaId::from_u128(1);
/// let secondary = ReplicaId::from_u128(2);
/// assert!(primary < secondary);
/// assert_eq!(primary.to_string(), "00000000-0000-0000-0000-000000000001");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplicaId(Uuid);

/// One integer write: ingestion hashes a dot per event, and `Uuid`'s hash writes a length
/// and a byte slice.
impl std::hash::Hash for ReplicaId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.0.as_u128());
    }
}

/// The UUID's byte order, compared as one big-endian integer: every dot comparison (causal
/// clouds, version vectors, ingestion's bookkeeping) starts here, and `Uuid`'s own ordering
/// compares a byte slice through `memcmp`.
impl Ord for ReplicaId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.as_u128().cmp(&other.0.as_u128())
    }
}

impl PartialOrd for ReplicaId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl ReplicaId {
    /// Wraps a UUID.
    ///
    /// # Examples
    ///
    /// ```
    /// let id = failback::ReplicaId::new(uuid::Uuid::from_u128(7));
    /// assert_eq!(id.as_uuid().as_u128(), 7);
    /// ```
    pub const fn new(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// A replica id from a 128-bit number; handy for fixed, well-known replicas.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::ReplicaId::from_u128(3).as_uuid().as_u128(), 3);
    /// ```
    pub const fn from_u128(value: u128) -> Self {
        Self(Uuid::from_u128(value))
    }

    /// The UUID.
    ///
    /// # Examples
    ///
    /// ```
    /// let id = failback::ReplicaId::from_u128(9);
    /// assert_eq!(id.as_uuid(), uuid::Uuid::from_u128(9));
    /// ```
    pub const fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplicaId({})", self.0)
    }
}

/// The identity of one write: the replica that made it and that replica's counter (from 1).
///
/// # Examples
///
/// ```
/// use failback::{Dot, ReplicaId};
///
/// let dot = Dot::new(ReplicaId::from_u128(1), 3);
/// assert_eq!(dot.counter, 3);
/// assert_eq!(dot.to_string(), "00000000-0000-0000-0000-000000000001:3");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that made the write.
    pub replica: ReplicaId,
    /// Its position in that replica's sequence of writes, from 1. Counter 0 names no write:
    /// every context covers it, as the empty start of every replica's sequence
    /// (`contains(Dot { counter: 0, .. })` holds, and inserting it adds nothing), so a
    /// register entry built under it by hand is one every join takes as already overwritten.
    /// A registry's reader refuses one.
    pub counter: u64,
}

/// Reads a dot that names a write: its counter starts at 1. A context may be read with a zero
/// counter (it has seen nothing there, and reads as such), but a write held under dot 0 is one
/// no context can have seen, which a merge's shortcuts and its join then judged differently
/// (found by `tests/inputs.rs` on damaged states).
pub(crate) fn deserialize_write_dot<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Dot, D::Error> {
    let dot = Dot::deserialize(deserializer)?;
    if dot.counter == 0 {
        return Err(serde::de::Error::custom(format!(
            "write {dot} has counter 0; counters start at 1"
        )));
    }
    Ok(dot)
}

impl Dot {
    /// A dot.
    ///
    /// # Examples
    ///
    /// ```
    /// let dot = failback::Dot::new(failback::ReplicaId::from_u128(1), 1);
    /// assert_eq!(dot.counter, 1);
    /// ```
    pub const fn new(replica: ReplicaId, counter: u64) -> Self {
        Self { replica, counter }
    }
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.replica, self.counter)
    }
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dot({self})")
    }
}

/// For each replica, the highest counter up to which all its writes have been seen.
///
/// Stored as a vector sorted by replica: a failback has a handful of replicas, so a linear
/// merge of two short sorted runs beats any map.
///
/// # Examples
///
/// ```
/// use failback::{Dot, ReplicaId, VersionVector};
///
/// let r = ReplicaId::from_u128(1);
/// let mut vv = VersionVector::new();
/// vv.advance(Dot::new(r, 2));
/// assert!(vv.contains(Dot::new(r, 1)));
/// assert!(!vv.contains(Dot::new(r, 3)));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VersionVector(Vec<(ReplicaId, u64)>);

/// Read as a list of pairs and rebuilt through [`VersionVector::advance`]: sorted by replica,
/// one pair per replica (the highest counter), no zero counter, whatever order or repetition a
/// file holds. Every lookup bisects the list, so an unsorted one read as it was would answer
/// wrongly rather than fail.
impl<'de> Deserialize<'de> for VersionVector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<(ReplicaId, u64)>::deserialize(deserializer).map(Self::from_iter)
    }
}

impl VersionVector {
    /// The empty version vector (nothing seen).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::VersionVector::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Whether nothing has been seen.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::VersionVector::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The highest contiguous counter seen from `replica` (0 when none).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, ReplicaId, VersionVector};
    /// let r = ReplicaId::from_u128(1);
    /// let vv = VersionVector::from_iter([(r, 4)]);
    /// assert_eq!(vv.get(r), 4);
    /// assert_eq!(vv.get(ReplicaId::from_u128(2)), 0);
    /// ```
    pub fn get(&self, replica: ReplicaId) -> u64 {
        self.0
            .binary_search_by(|(r, _)| r.cmp(&replica))
            .map_or(0, |i| self.0[i].1)
    }

    /// Whether `dot` is covered.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, ReplicaId, VersionVector};
    /// let r = ReplicaId::from_u128(1);
    /// assert!(VersionVector::from_iter([(r, 2)]).contains(Dot::new(r, 2)));
    /// ```
    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter <= self.get(dot.replica)
    }

    /// Raises the entry of `dot.replica` to at least `dot.counter`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, ReplicaId, VersionVector};
    /// let r = ReplicaId::from_u128(1);
    /// let mut vv = VersionVector::new();
    /// vv.advance(Dot::new(r, 5));
    /// vv.advance(Dot::new(r, 3));
    /// assert_eq!(vv.get(r), 5);
    /// ```
    pub fn advance(&mut self, dot: Dot) {
        match self.0.binary_search_by(|(r, _)| r.cmp(&dot.replica)) {
            Ok(i) => self.0[i].1 = self.0[i].1.max(dot.counter),
            Err(i) if dot.counter > 0 => self.0.insert(i, (dot.replica, dot.counter)),
            Err(_) => {}
        }
    }

    /// Entries `(replica, counter)` in replica order, zeros omitted.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{ReplicaId, VersionVector};
    /// let vv = VersionVector::from_iter([(ReplicaId::from_u128(2), 1), (ReplicaId::from_u128(1), 3)]);
    /// assert_eq!(vv.iter().next(), Some((ReplicaId::from_u128(1), 3)));
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.0.iter().copied()
    }

    /// Join: the entry-wise maximum. `a ⊔ b = b ⊔ a`, `a ⊔ a = a`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{ReplicaId, VersionVector};
    /// let (r, s) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut a = VersionVector::from_iter([(r, 3)]);
    /// a.join(&VersionVector::from_iter([(r, 1), (s, 2)]));
    /// assert_eq!(a, VersionVector::from_iter([(r, 3), (s, 2)]));
    /// ```
    pub fn join(&mut self, other: &Self) {
        self.zip_with(other, u64::max);
    }

    /// Meet: the entry-wise minimum, the greatest vector both have reached. The meet of every
    /// replica's vector is what is causally stable, and what [`Registry::compact`] takes.
    ///
    /// [`Registry::compact`]: crate::Registry::compact
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{ReplicaId, VersionVector};
    /// let (r, s) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut a = VersionVector::from_iter([(r, 3), (s, 1)]);
    /// a.meet(&VersionVector::from_iter([(r, 2)]));
    /// assert_eq!(a, VersionVector::from_iter([(r, 2)]));
    /// ```
    pub fn meet(&mut self, other: &Self) {
        self.zip_with(other, u64::min);
    }

    fn zip_with(&mut self, other: &Self, f: impl Fn(u64, u64) -> u64) {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()));
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(&&x), None) => {
                    a.next();
                    (x.0, f(x.1, 0))
                }
                (None, Some(&&y)) => {
                    b.next();
                    (y.0, f(0, y.1))
                }
                (Some(&&x), Some(&&y)) => match x.0.cmp(&y.0) {
                    Ordering::Less => {
                        a.next();
                        (x.0, f(x.1, 0))
                    }
                    Ordering::Greater => {
                        b.next();
                        (y.0, f(0, y.1))
                    }
                    Ordering::Equal => {
                        a.next();
                        b.next();
                        (x.0, f(x.1, y.1))
                    }
                },
            };
            if next.1 > 0 {
                out.push(next);
            }
        }
        self.0 = out;
    }

    /// Whether every write `other` covers is covered here (`other ≤ self`).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{ReplicaId, VersionVector};
    /// let r = ReplicaId::from_u128(1);
    /// let big = VersionVector::from_iter([(r, 3)]);
    /// assert!(big.includes(&VersionVector::from_iter([(r, 2)])));
    /// assert!(!VersionVector::new().includes(&big));
    /// ```
    pub fn includes(&self, other: &Self) -> bool {
        other.0.iter().all(|&(r, n)| self.get(r) >= n)
    }
}

impl PartialOrd for VersionVector {
    /// The causal order: `Less` when `self` happened before `other`, `None` when concurrent.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self.includes(other), other.includes(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Greater),
            (false, true) => Some(Ordering::Less),
            (false, false) => None,
        }
    }
}

impl FromIterator<(ReplicaId, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (ReplicaId, u64)>>(iter: I) -> Self {
        let mut vv = Self::new();
        iter.into_iter()
            .for_each(|(replica, counter)| vv.advance(Dot::new(replica, counter)));
        vv
    }
}

impl fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(r, n)| (r, n)))
            .finish()
    }
}

/// The set of dots a state has seen: a [`VersionVector`] for the gap-free prefixes plus the
/// dots seen beyond a gap.
///
/// Kept normalised: no cloud dot is covered by the vector, and a cloud dot that closes a gap
/// is folded into the vector at once, so equal sets have equal representations.
///
/// # Examples
///
/// ```
/// use failback::{CausalContext, Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut ctx = CausalContext::new();
/// ctx.insert(Dot::new(r, 3)); // op 3 first: 1 and 2 stay unseen
/// assert!(!ctx.contains(Dot::new(r, 1)));
/// assert!(ctx.contains(Dot::new(r, 3)));
/// ctx.insert(Dot::new(r, 1));
/// ctx.insert(Dot::new(r, 2));
/// assert_eq!(ctx.vector().get(r), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "ContextWire")]
pub struct CausalContext {
    vector: VersionVector,
    #[serde(default, skip_serializing_if = "DotCloud::is_empty")]
    cloud: DotCloud,
}

/// A context as a file holds it, normalised when read: a cloud may list dots its vector
/// covers, a zero counter, or the run that closes a gap, and `insert` (whose single search of
/// the cloud relies on it) and `includes` expect none of them.
#[derive(Deserialize)]
struct ContextWire {
    vector: VersionVector,
    #[serde(default)]
    cloud: DotCloud,
}

impl From<ContextWire> for CausalContext {
    fn from(wire: ContextWire) -> Self {
        let mut ctx = Self {
            vector: wire.vector,
            cloud: DotCloud::new(),
        };
        ctx.extend(wire.cloud.iter());
        ctx
    }
}

impl CausalContext {
    /// The empty context.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::CausalContext::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self {
            vector: VersionVector::new(),
            cloud: DotCloud::new(),
        }
    }

    /// Whether no dot has been seen.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::CausalContext::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.vector.is_empty() && self.cloud.is_empty()
    }

    /// The gap-free part, which is what peers exchange to ask for deltas.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, ReplicaId};
    /// let r = ReplicaId::from_u128(1);
    /// let ctx = CausalContext::from_iter([Dot::new(r, 1), Dot::new(r, 3)]);
    /// assert_eq!(ctx.vector().get(r), 1);
    /// ```
    pub fn vector(&self) -> &VersionVector {
        &self.vector
    }

    /// Dots seen beyond a gap, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, ReplicaId};
    /// let r = ReplicaId::from_u128(1);
    /// let ctx = CausalContext::from_iter([Dot::new(r, 3)]);
    /// assert_eq!(ctx.cloud().collect::<Vec<_>>(), [Dot::new(r, 3)]);
    /// ```
    pub fn cloud(&self) -> impl Iterator<Item = Dot> + '_ {
        self.cloud.iter()
    }

    /// Whether `dot` has been seen.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, ReplicaId};
    /// let r = ReplicaId::from_u128(1);
    /// assert!(!CausalContext::new().contains(Dot::new(r, 1)));
    /// ```
    pub fn contains(&self, dot: Dot) -> bool {
        self.vector.contains(dot) || self.cloud.contains(dot)
    }

    /// Records `dot` as seen; returns whether it was new.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, ReplicaId};
    /// let mut ctx = CausalContext::new();
    /// let dot = Dot::new(ReplicaId::from_u128(1), 1);
    /// assert!(ctx.insert(dot));
    /// assert!(!ctx.insert(dot));
    /// ```
    pub fn insert(&mut self, dot: Dot) -> bool {
        let top = self.vector.get(dot.replica);
        if dot.counter <= top {
            return false;
        }
        // The counter after the vector's is never in the cloud (it would have been folded),
        // so only a dot beyond a gap needs the cloud searched, once, by its insert.
        if dot.counter == top + 1 {
            self.vector.advance(dot);
            self.fold(dot.replica);
            true
        } else {
            self.cloud.insert(dot)
        }
    }

    /// The next counter `replica` should use for a new write: one past every dot seen from it.
    /// `None` once it has seen counter `u64::MAX` (no write can follow it; a state read from
    /// text can claim it).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, ReplicaId};
    /// let r = ReplicaId::from_u128(1);
    /// let ctx = CausalContext::from_iter([Dot::new(r, 1), Dot::new(r, 5)]);
    /// assert_eq!(ctx.next_dot(r), Some(Dot::new(r, 6)));
    /// assert_eq!(CausalContext::from_iter([Dot::new(r, u64::MAX)]).next_dot(r), None);
    /// ```
    pub fn next_dot(&self, replica: ReplicaId) -> Option<Dot> {
        let last = self.vector.get(replica).max(self.cloud.last(replica));
        Some(Dot::new(replica, last.checked_add(1)?))
    }

    /// Join: the union of the two sets of dots.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, ReplicaId};
    /// let r = ReplicaId::from_u128(1);
    /// let mut a = CausalContext::from_iter([Dot::new(r, 2)]);
    /// a.join(&CausalContext::from_iter([Dot::new(r, 1)]));
    /// assert_eq!(a.vector().get(r), 2);
    /// ```
    pub fn join(&mut self, other: &Self) {
        // An event's context is a few dots beyond gaps and no vector to speak of: only its
        // dots need inserting (each a no-op if seen), and the vector is left as it is rather
        // than rebuilt. An included context costs what asking `includes` first would.
        if !self.vector.includes(&other.vector) {
            self.join_vector(&other.vector);
        }
        other.cloud.all(|dot| {
            self.insert(dot);
            true
        });
    }

    /// Every dot seen here but those of `known`, when they are at most `limit`; else
    /// `None`. With `known ⊆ self`, inserting `known` and these one by one into a context `d`
    /// is the join `d ⊔ self`: it needs nothing else of this context read again.
    pub(crate) fn dots_besides(&self, known: &[Dot], limit: usize) -> Option<Vec<Dot>> {
        let mut out = Vec::new();
        for (replica, top) in self.vector.iter() {
            if top > limit as u64 {
                return None;
            }
            out.extend((1..=top).map(|counter| Dot::new(replica, counter)));
            if out.len() > limit + known.len() {
                return None;
            }
        }
        let fits = self.cloud.all(|dot| {
            out.push(dot);
            out.len() <= limit + known.len()
        });
        out.retain(|dot| !known.contains(dot));
        (fits && out.len() <= limit).then_some(out)
    }

    /// The dots seen here that `vector` does not cover, or `None` when they would take more
    /// than `limit` counters written out beyond a gap (a context read from text may claim
    /// counters in the billions).
    ///
    /// What a peer at `vector` has not seen, as a context: `d ∈ beyond(c, v) ⇔ d ∈ c ∧ d ∉ v`.
    pub(crate) fn beyond(&self, vector: &VersionVector, limit: u64) -> Option<Self> {
        let mut out = Self::new();
        let mut spent = 0u64;
        for (replica, top) in self.vector.iter() {
            let seen = vector.get(replica);
            if seen == 0 {
                // Nothing of this replica's is covered: its run from 1 stays a run.
                out.vector.advance(Dot::new(replica, top));
            } else if seen < top {
                spent = spent.saturating_add(top - seen);
                if spent > limit {
                    return None;
                }
                out.cloud.insert_range(replica, seen + 1, top);
            }
        }
        self.cloud.all(|dot| {
            if !vector.contains(dot) {
                out.cloud.insert(dot);
            }
            true
        });
        Some(out)
    }

    /// Whether every dot of `other` has been seen here (`other ≤ self`); linear in the number of
    /// replicas and cloud dots, never in the size of the state.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, ReplicaId};
    /// let r = ReplicaId::from_u128(1);
    /// let a = CausalContext::from_iter([Dot::new(r, 1), Dot::new(r, 2)]);
    /// assert!(a.includes(&CausalContext::from_iter([Dot::new(r, 2)])));
    /// ```
    pub fn includes(&self, other: &Self) -> bool {
        // A normalised context covers 1..=n of a replica only through its vector.
        self.vector.includes(&other.vector) && other.cloud.all(|d| self.contains(d))
    }

    /// Joins `vector` into this context's vector, dropping the cloud dots it now covers.
    fn join_vector(&mut self, vector: &VersionVector) {
        // Only the replicas the other side moved are folded: a registry ingesting shuffled
        // events holds many dots beyond gaps, and rescanning all of them on every event's join
        // made ingestion cost grow with the disorder.
        let before = self.vector.clone();
        self.vector.join(vector);
        let moved: Vec<(ReplicaId, u64)> = self
            .vector
            .iter()
            .filter(|&(replica, counter)| counter > before.get(replica))
            .collect();
        for (replica, counter) in moved {
            self.cloud.remove_through(replica, counter);
            self.fold(replica);
        }
    }

    /// Advances `replica`'s vector entry over cloud dots that now follow it without a gap.
    /// The cloud never holds a dot the vector covers, so the run starts at the next counter.
    fn fold(&mut self, replica: ReplicaId) {
        let top = self.vector.get(replica);
        let Some(next) = top.checked_add(1) else {
            return;
        };
        let run = self.cloud.take_run(replica, next);
        if run > 0 {
            self.vector.advance(Dot::new(replica, top + run));
        }
    }
}

impl FromIterator<Dot> for CausalContext {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut ctx = Self::new();
        iter.into_iter().for_each(|dot| {
            ctx.insert(dot);
        });
        ctx
    }
}

impl Extend<Dot> for CausalContext {
    fn extend<I: IntoIterator<Item = Dot>>(&mut self, iter: I) {
        iter.into_iter().for_each(|dot| {
            self.insert(dot);
        });
    }
}

impl fmt::Debug for CausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CausalContext")
            .field("vector", &self.vector)
            .field("cloud", &self.cloud)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u128) -> ReplicaId {
        ReplicaId::from_u128(n)
    }

    #[test]
    fn replicas_order_as_their_uuids() {
        // Bytes that differ first in the high, the middle and the last position.
        let ids = [0u128, 1, 0xff, 1 << 64, u128::MAX >> 1, 1 << 127, u128::MAX]
            .map(|n| Uuid::from_u128(n.rotate_left(8)));
        for a in ids {
            for b in ids {
                assert_eq!(ReplicaId::new(a).cmp(&ReplicaId::new(b)), a.cmp(&b));
            }
        }
    }

    /// `beyond` is the set difference, normalised as any context is: the same value as the
    /// context built from the difference's dots one at a time.
    #[test]
    fn beyond_a_vector_is_the_dots_it_does_not_cover() {
        // Runs from 1, runs after gaps crossing 64-counter words, and lone dots.
        let dots = (1..=70)
            .chain([75, 128, 129, 200])
            .map(|n| Dot::new(r(1), n))
            .chain((1..=3).map(|n| Dot::new(r(2), n)))
            .chain([Dot::new(r(3), 9)]);
        let ctx = CausalContext::from_iter(dots.clone());
        for (one, two, three) in [(0, 0, 0), (1, 3, 0), (63, 1, 9), (64, 0, 10), (130, 3, 1)] {
            let vector = VersionVector::from_iter([(r(1), one), (r(2), two), (r(3), three)]);
            let expected: CausalContext = dots.clone().filter(|d| !vector.contains(*d)).collect();
            assert_eq!(ctx.beyond(&vector, u64::MAX), Some(expected), "{vector:?}");
        }
        let vector = VersionVector::from_iter([(r(1), 1)]);
        assert_eq!(ctx.beyond(&vector, 68), None, "69 counters written out");
        assert!(ctx.beyond(&vector, 69).is_some());
    }

    /// `dots_besides` is the context's dots less `known`, up to its limit; `known` and those
    /// inserted one by one into any context is that context's join with this one.
    #[test]
    fn a_context_written_out_as_dots_joins_as_the_context_does() {
        let known = [Dot::new(r(2), 9)];
        let dots = [(1, 1), (1, 2), (2, 5), (2, 9), (3, 70)].map(|(a, n)| Dot::new(r(a), n));
        let ctx = CausalContext::from_iter(dots);
        let besides = ctx
            .dots_besides(&known, 4)
            .expect("four dots besides the known one");
        let mut expected: Vec<Dot> = dots.into_iter().filter(|d| d != &known[0]).collect();
        let mut sorted = besides.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(ctx.dots_besides(&known, 3), None, "over the limit");
        assert_eq!(
            ctx.dots_besides(&[], 4),
            None,
            "the known dot counts when not given"
        );
        let wide = CausalContext::from_iter((1..=1_000).map(|n| Dot::new(r(1), n)));
        assert_eq!(
            wide.dots_besides(&[], 999),
            None,
            "a long run is never written out"
        );

        let others = [
            CausalContext::new(),
            CausalContext::from_iter([Dot::new(r(1), 3), Dot::new(r(3), 69)]),
            CausalContext::from_iter((1..=80).map(|n| Dot::new(r(2), n))),
        ];
        for other in others {
            let mut joined = other.clone();
            joined.join(&ctx);
            let mut inserted = other;
            for &dot in known.iter().chain(&besides) {
                inserted.insert(dot);
            }
            assert_eq!(inserted, joined);
        }
    }

    #[test]
    fn cloud_folds_whatever_the_order() {
        let ctx = CausalContext::from_iter([4, 2, 3, 1].map(|n| Dot::new(r(1), n)));
        assert_eq!(ctx.vector().get(r(1)), 4);
        assert_eq!(ctx.cloud().count(), 0);
    }

    #[test]
    fn a_vector_jump_drops_the_cloud_dots_it_covers_and_folds_past_them() {
        let mut a = CausalContext::from_iter([3, 5, 7].map(|n| Dot::new(r(1), n)));
        a.join(&CausalContext::from_iter(
            (1..=5).map(|n| Dot::new(r(1), n)),
        ));
        assert_eq!(a.vector().get(r(1)), 5);
        assert_eq!(a.cloud().collect::<Vec<_>>(), [Dot::new(r(1), 7)]);
        a.join(&CausalContext::from_iter([Dot::new(r(1), 6)]));
        assert_eq!((a.vector().get(r(1)), a.cloud().count()), (7, 0));
    }

    #[test]
    fn join_folds_gaps_closed_by_the_other_side() {
        let mut a = CausalContext::from_iter([Dot::new(r(1), 2), Dot::new(r(1), 4)]);
        a.join(&CausalContext::from_iter([
            Dot::new(r(1), 1),
            Dot::new(r(1), 3),
        ]));
        assert_eq!(
            a,
            CausalContext::from_iter((1..=4).map(|n| Dot::new(r(1), n)))
        );
    }

    #[test]
    fn contexts_and_vectors_read_from_a_file_are_normalised() -> serde_json::Result<()> {
        let (a, b) = (r(1).to_string(), r(2).to_string());
        // Pairs out of order and repeated, a zero counter; cloud dots the vector covers, a
        // zero counter, and the run that closes the gap after the vector.
        let text = format!(
            r#"{{"vector": [["{b}", 2], ["{a}", 1], ["{b}", 1], ["{a}", 0]],
                "cloud": [{{"replica": "{a}", "counter": 0}}, {{"replica": "{b}", "counter": 2}},
                          {{"replica": "{a}", "counter": 2}}, {{"replica": "{a}", "counter": 5}}]}}"#
        );
        let read: CausalContext = serde_json::from_str(&text)?;
        let built = CausalContext::from_iter(
            [(1, 1), (1, 2), (1, 5), (2, 1), (2, 2)].map(|(x, n)| Dot::new(r(x), n)),
        );
        assert_eq!(read, built);
        assert_eq!(read.vector().get(r(1)), 2);
        assert_eq!(read.cloud().collect::<Vec<_>>(), [Dot::new(r(1), 5)]);
        let vector: VersionVector =
            serde_json::from_str(&format!(r#"[["{b}", 3], ["{a}", 0], ["{b}", 1]]"#))?;
        assert_eq!(vector, VersionVector::from_iter([(r(2), 3)]));
        Ok(())
    }

    /// Counter 0 names no write: covered by every context, never added to one.
    #[test]
    fn counter_zero_is_covered_by_every_context_and_never_added() {
        let mut ctx = CausalContext::new();
        assert!(!ctx.insert(Dot::new(r(1), 0)));
        assert!(ctx.is_empty());
        assert!(ctx.contains(Dot::new(r(1), 0)));
    }
}
