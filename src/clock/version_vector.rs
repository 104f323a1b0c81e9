//! [`VersionVector`]: for each replica, the highest counter up to which all its writes have
//! been seen.
//!
//! Kept out of `clock.rs`, which names replicas and writes, because it is a join-semilattice of
//! its own, with its meet and causal order: what a causal context is built on, and what peers
//! exchange to ask for deltas and to agree on what is stable.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Dot, ReplicaId};
use crate::serde_tuple::Pair;

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

/// Read as a list of pairs and rebuilt as [`FromIterator`] builds one: sorted by replica, one
/// pair per replica (the highest counter), no zero counter, whatever order or repetition a
/// file holds. Every lookup bisects the list, so an unsorted one read as it was would answer
/// wrongly rather than fail. A pair holding a third element is refused in every format
/// (`Pair`'s reader; serde's reads it from CBOR with the third dropped).
impl<'de> Deserialize<'de> for VersionVector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<Pair<ReplicaId, u64>>::deserialize(deserializer)?;
        Ok(pairs.into_iter().map(|Pair(r, n)| (r, n)).collect())
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

    /// Join: the entry-wise maximum, the least vector that has reached both. Commutative,
    /// associative and idempotent, as `max` is entry by entry (a replica missing counts as 0):
    /// `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`, `a ⊔ a = a`; and `a ≤ a ⊔ b`.
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
    /// Commutative, associative and idempotent as the join is, `a ⊓ b ≤ a`, and the two
    /// absorb each other, as `min` and `max` do entry by entry: `a ⊔ (a ⊓ b) = a` and
    /// `a ⊓ (a ⊔ b) = a`, so vectors form a lattice.
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

    /// Whether every write `other` covers is covered here (`other ≤ self`). The order the join
    /// and meet make: `a ≤ b ⇔ b.includes(a) ⇔ a ⊔ b = b ⇔ a ⊓ b = a`. A partial order:
    /// two vectors each holding a write the other lacks are concurrent, neither including the
    /// other.
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

/// The vector [`advance`](VersionVector::advance)d by every pair, in any order: each replica's
/// highest counter, replicas whose highest is 0 left out.
///
/// Sorted and deduplicated in one pass, so text listing many replicas in any order reads in
/// O(n log n); advancing pair by pair would insert each new replica into the middle of the
/// sorted list, O(n²) for replicas listed in descending order.
impl FromIterator<(ReplicaId, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (ReplicaId, u64)>>(iter: I) -> Self {
        let mut pairs: Vec<(ReplicaId, u64)> = iter.into_iter().collect();
        // By replica, the highest counter first: the first of each replica's run is kept.
        pairs.sort_unstable_by(|(r, n), (s, m)| r.cmp(s).then(m.cmp(n)));
        pairs.dedup_by_key(|(replica, _)| *replica);
        pairs.retain(|&(_, counter)| counter > 0);
        Self(pairs)
    }
}

impl fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(r, n)| (r, n)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Few replicas and small counters, so that pairs repeat a replica and a counter, with 0.
    fn pairs() -> impl Strategy<Value = Vec<(ReplicaId, u64)>> {
        proptest::collection::vec(((0u128..12).prop_map(ReplicaId::from_u128), 0u64..4), 0..40)
    }

    proptest! {
        #![proptest_config(crate::property::config())]

        /// Built in one pass, a vector is the one advanced pair by pair (the reader's former
        /// path), and its text is read back as it is.
        #[test]
        fn built_from_pairs_as_advanced_one_by_one(pairs in pairs()) {
            let mut advanced = VersionVector::new();
            pairs.iter().for_each(|&(r, n)| advanced.advance(Dot::new(r, n)));
            let built = VersionVector::from_iter(pairs.iter().copied());
            prop_assert_eq!(&built, &advanced);
            let text = serde_json::to_string(&pairs).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let read: VersionVector = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(read, advanced);
        }
    }

    /// Descending replicas, each repeated with a lower and a zero counter, and replicas whose
    /// only counter is 0: one pair per replica, its highest, in replica order.
    #[test]
    fn descending_repeated_and_zero_pairs_read_as_the_highest_counter_per_replica()
    -> serde_json::Result<()> {
        let n = 2_000u128;
        let pairs: Vec<(ReplicaId, u64)> = (1..=n)
            .rev()
            .flat_map(|i| {
                let r = ReplicaId::from_u128(i);
                let top = if i % 3 == 0 { 0 } else { i as u64 };
                [(r, top / 2), (r, top), (r, 0)]
            })
            .collect();
        let read: VersionVector = serde_json::from_str(&serde_json::to_string(&pairs)?)?;
        let expected: Vec<(ReplicaId, u64)> = (1..=n)
            .filter(|i| i % 3 != 0)
            .map(|i| (ReplicaId::from_u128(i), i as u64))
            .collect();
        assert_eq!(read.iter().collect::<Vec<_>>(), expected);
        Ok(())
    }
}
