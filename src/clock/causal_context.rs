//! [`CausalContext`]: the set of dots a state has seen, a version vector plus the dots seen
//! beyond a gap, and its wire form, normalised as it is read.
//!
//! Kept out of `clock.rs`, which names replicas and writes, because it is a join-semilattice of
//! its own, the largest of the clock's: kept normalised, joined by every merge, and written out
//! in part for a delta (`beyond`) or an event (`dots_besides`).

use std::fmt;
use std::sync::Arc;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

use super::{Dot, ReplicaId, VersionVector};
use crate::dot_cloud::DotCloud;

/// Above this many replicas in its cloud, a context is joined by merging the clouds in one
/// pass rather than inserting its dots one at a time.
const FEW_REPLICAS: usize = 8;

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
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct CausalContext {
    vector: VersionVector,
    #[serde(skip_serializing_if = "DotCloud::is_empty")]
    cloud: DotCloud,
}

/// A context as a file holds it, normalised when read: a cloud may list dots its vector
/// covers, a zero counter, or the run that closes a gap, and `insert` (whose single search of
/// the cloud relies on it) and `includes` expect none of them. `cloud` is left out when
/// empty, so an unknown member is refused: `clodu` read as no dot beyond a gap.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextWire {
    vector: VersionVector,
    #[serde(default)]
    cloud: DotCloud,
}

/// Read through the wire layout, with serde's quotes of what it found hidden (`redacted`): a
/// member's name quoted as unknown could be a key.
impl<'de> Deserialize<'de> for CausalContext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ContextWire::deserialize(deserializer)
            .map(Self::from)
            .map_err(crate::error::redacted)
    }
}

/// Normalised in one pass over the cloud's replicas (`settle`), not dot by dot: inserting
/// each dot would put every replica the vector lacked into the middle of its sorted list, so
/// a context listing many replicas would be quadratic to read. The
/// result is the context of the same dots, whose representation is unique.
impl From<ContextWire> for CausalContext {
    fn from(wire: ContextWire) -> Self {
        let mut ctx = Self {
            vector: wire.vector,
            cloud: wire.cloud,
        };
        ctx.settle_cloud(None);
        ctx
    }
}

/// Reads a context, or a bare version vector (a list of pairs) as the context of its dots:
/// [`Tombstone::seen`](crate::Tombstone::seen) is a version vector in states written before
/// it kept the dots its deleter had seen beyond a gap, and those states still read.
pub(crate) fn deserialize_context_or_vector<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Arc<CausalContext>>, D::Error> {
    struct ContextOrVector;

    impl<'de> Visitor<'de> for ContextOrVector {
        type Value = CausalContext;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a causal context or a version vector")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let vector = VersionVector::deserialize(SeqAccessDeserializer::new(seq))?;
            Ok(CausalContext {
                vector,
                cloud: DotCloud::new(),
            })
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            CausalContext::deserialize(MapAccessDeserializer::new(map))
        }

        /// Refused without quoting it: serde's message quotes the string found, and a string
        /// here may be a key one level off. The readers above hide a quoted key
        /// (`crate::error::redacted`), but not from CBOR's reader, which shows its messages
        /// escaped (found by `tests/formats.rs`).
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            let found = Unexpected::Other("a string (not shown: it may be a key)");
            Err(E::invalid_type(found, &self))
        }
    }

    struct Wire(CausalContext);

    impl<'de> Deserialize<'de> for Wire {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ContextOrVector).map(Wire)
        }
    }

    Ok(Option::<Wire>::deserialize(deserializer)?.map(|Wire(ctx)| Arc::new(ctx)))
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
        // A cloud of many replicas is merged in whole: inserted dot by dot, each replica new
        // here would go into the middle of the sorted list, quadratic in replicas. A few
        // are cheaper inserted than a merge that copies the list.
        if other.cloud.replica_count() > FEW_REPLICAS {
            self.cloud.union(&other.cloud);
            self.settle_cloud(Some(&other.cloud));
            return;
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
        // Merged in, not inserted one by one among the ranges' replicas: each new replica
        // would go into the middle of the sorted list.
        let mut rest = Vec::new();
        self.cloud.all(|dot| {
            if !vector.contains(dot) {
                rest.push(dot);
            }
            true
        });
        if !rest.is_empty() {
            out.cloud.union(&rest.into_iter().collect());
        }
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
        // would make ingestion cost grow with the disorder. They are settled together
        // (`settle`): dropping each replica the vector emptied from the cloud's sorted list one
        // at a time would be quadratic when the vector moves many.
        let before = self.vector.clone();
        self.vector.join(vector);
        let moved: Vec<(ReplicaId, u64)> = self
            .vector
            .iter()
            .filter(|&(replica, counter)| counter > before.get(replica))
            .collect();
        let raised = self.cloud.settle(&moved);
        self.raise(raised);
    }

    /// Drops the cloud dots the vector covers and folds the runs that follow it, for the
    /// replicas of `touched` (every replica of the cloud when `None`): what inserting those
    /// replicas' dots one at a time would leave.
    fn settle_cloud(&mut self, touched: Option<&DotCloud>) {
        let replicas = touched.unwrap_or(&self.cloud).replicas();
        let tops: Vec<(ReplicaId, u64)> = replicas
            .map(|replica| (replica, self.vector.get(replica)))
            .collect();
        let raised = self.cloud.settle(&tops);
        self.raise(raised);
    }

    /// Raises the vector's entries to `raised` (sorted by replica) in one merge.
    fn raise(&mut self, raised: Vec<(ReplicaId, u64)>) {
        match raised.as_slice() {
            [] => {}
            &[(replica, counter)] => self.vector.advance(Dot::new(replica, counter)),
            _ => self.vector.join(&VersionVector::from_iter(raised)),
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

/// The context of the dots, in any order: gathered as a cloud, then settled in one pass
/// (`settle`), as text is read, so dots of many replicas in any order read in O(n log n);
/// inserted one by one, each new replica's dot would go into the middle of a sorted list,
/// O(n²).
impl FromIterator<Dot> for CausalContext {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut ctx = Self {
            vector: VersionVector::new(),
            cloud: iter.into_iter().collect(),
        };
        ctx.settle_cloud(None);
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

    /// Up to 20 replicas, so that a cloud can hold more than `FEW_REPLICAS`; counters small
    /// enough to repeat and to close gaps, with 0.
    fn dots() -> impl proptest::strategy::Strategy<Value = Vec<Dot>> {
        use proptest::prelude::*;
        proptest::collection::vec(
            (0u128..20, 0u64..6).prop_map(|(x, n)| Dot::new(r(x), n)),
            0..80,
        )
    }

    proptest::proptest! {
        #![proptest_config(crate::property::config())]

        /// A context read from text, normalised in one pass, is the one the reader's former
        /// path made: its vector advanced pair by pair, then its cloud's dots inserted one by
        /// one, whatever order, repeats and zeros the text holds.
        #[test]
        fn read_as_its_pairs_advanced_and_its_dots_inserted_one_by_one(
            pairs in dots(),
            cloud in dots(),
        ) {
            let mut old = CausalContext::new();
            pairs.iter().for_each(|&dot| old.vector.advance(dot));
            cloud.iter().for_each(|&dot| {
                old.insert(dot);
            });
            let vector: Vec<(ReplicaId, u64)> = pairs.iter().map(|d| (d.replica, d.counter)).collect();
            let text = serde_json::json!({ "vector": vector, "cloud": cloud }).to_string();
            let read: CausalContext = serde_json::from_str(&text)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(read, old);
            let mut inserted = CausalContext::new();
            pairs.iter().chain(&cloud).for_each(|&dot| {
                inserted.insert(dot);
            });
            proptest::prop_assert_eq!(CausalContext::from_iter(pairs.iter().chain(&cloud).copied()), inserted);
        }

        /// A join, of a cloud with few replicas or many, is the context of both sets' dots.
        #[test]
        fn a_join_is_the_context_of_the_union(a in dots(), b in dots()) {
            let (x, y) = (CausalContext::from_iter(a.clone()), CausalContext::from_iter(b.clone()));
            let mut joined = x.clone();
            joined.join(&y);
            let mut inserted = x.clone();
            b.iter().for_each(|&dot| {
                inserted.insert(dot);
            });
            proptest::prop_assert_eq!(&joined, &inserted);
            let mut other_way = y;
            other_way.join(&x);
            proptest::prop_assert_eq!(other_way, joined);
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::property::config())]

        /// What a context holds beyond a vector, over many replicas, is the context of its dots
        /// the vector does not cover.
        #[test]
        fn beyond_is_the_set_difference_over_many_replicas(a in dots(), v in dots()) {
            let ctx = CausalContext::from_iter(a.iter().copied());
            let vector = VersionVector::from_iter(v.iter().map(|d| (d.replica, d.counter)));
            let mut expected = CausalContext::new();
            ctx.vector.iter()
                .flat_map(|(replica, top)| (1..=top).map(move |n| Dot::new(replica, n)))
                .chain(ctx.cloud())
                .filter(|d| !vector.contains(*d))
                .for_each(|dot| {
                    expected.insert(dot);
                });
            proptest::prop_assert_eq!(ctx.beyond(&vector, u64::MAX), Some(expected));
        }
    }

    /// A context whose cloud brings many replicas new to this one, interleaved with those it
    /// has, some closing a gap after this vector: joined in one merge as inserted one by one.
    #[test]
    fn a_cloud_of_many_replicas_joins_as_its_dots_inserted() {
        let mine = CausalContext::from_iter(
            (1..=400)
                .step_by(2)
                .flat_map(|i| [Dot::new(r(i), 1), Dot::new(r(i), 3)]),
        );
        let theirs = CausalContext::from_iter(
            (1..=400).flat_map(|i| [Dot::new(r(i), 2), Dot::new(r(i), 5)]),
        );
        assert!(theirs.cloud.replica_count() > FEW_REPLICAS);
        let mut joined = mine.clone();
        joined.join(&theirs);
        let mut inserted = mine;
        theirs.cloud().for_each(|dot| {
            inserted.insert(dot);
        });
        assert_eq!(joined, inserted);
        // Odd replicas: 1, 2, 3 seen, 5 beyond the gap; even ones: 2 and 5 beyond gaps.
        assert_eq!(joined.vector().get(r(1)), 3);
        assert_eq!(joined.vector().get(r(2)), 0);
        assert_eq!(joined.cloud().count(), 400 + 200);
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
