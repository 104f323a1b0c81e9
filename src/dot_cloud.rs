//! The dots a causal context has seen beyond a gap, per replica as a sparse bitmap.
//!
//! Shuffled delivery leaves hundreds of dots beyond gaps until the gaps close, and every
//! event's join asks whether its dot is among them, then adds it. As an ordered set of dots,
//! each question was a tree search comparing 24-byte dots; here the replica is found in a short
//! sorted list, then its word (64 neighbouring counters share one) in a tree of integers, and
//! the answer is a bit. Sparse counters cost a word each, no worse than a set of dots.
//!
//! As a set: `contains(insert(s, d), d)`, `insert(insert(s, d), d) = insert(s, d)`, and every
//! operation keeps one representation per set (no zero word, no replica without a word), so
//! equal sets compare and hash equal.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::clock::{Dot, ReplicaId};

/// A set of dots; serialized as the sorted sequence of its dots.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct DotCloud {
    /// Sorted by replica; every replica listed holds at least one dot.
    replicas: Vec<(ReplicaId, Words)>,
}

/// A replica's counters: bit `b` of word `w` is counter `64·w + b`. No word is zero.
type Words = BTreeMap<u64, u64>;

const fn word(counter: u64) -> (u64, u32) {
    (counter >> 6, (counter & 63) as u32)
}

impl DotCloud {
    pub(crate) const fn new() -> Self {
        Self {
            replicas: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    fn words(&self, replica: ReplicaId) -> Option<&Words> {
        self.position(replica).ok().map(|at| &self.replicas[at].1)
    }

    /// `replica`'s words, an empty map inserted in its place when it holds none yet.
    #[inline]
    fn words_or_insert(&mut self, replica: ReplicaId) -> &mut Words {
        let at = match self.position(replica) {
            Ok(at) => at,
            Err(at) => {
                self.replicas.insert(at, (replica, Words::new()));
                at
            }
        };
        &mut self.replicas[at].1
    }

    fn position(&self, replica: ReplicaId) -> Result<usize, usize> {
        self.replicas.binary_search_by(|(r, _)| r.cmp(&replica))
    }

    pub(crate) fn contains(&self, dot: Dot) -> bool {
        let (w, bit) = word(dot.counter);
        self.words(dot.replica)
            .and_then(|words| words.get(&w))
            .is_some_and(|bits| bits >> bit & 1 == 1)
    }

    /// Adds `dot`; whether it was new.
    pub(crate) fn insert(&mut self, dot: Dot) -> bool {
        let (w, bit) = word(dot.counter);
        let bits = self.words_or_insert(dot.replica).entry(w).or_insert(0);
        let new = *bits >> bit & 1 == 0;
        *bits |= 1 << bit;
        new
    }

    /// Adds `replica`'s counters `from..=to` (none when `from > to`), a word at a time.
    pub(crate) fn insert_range(&mut self, replica: ReplicaId, from: u64, to: u64) {
        if from > to {
            return;
        }
        let words = self.words_or_insert(replica);
        let (first, low) = word(from);
        let (last, high) = word(to);
        for w in first..=last {
            let mut bits = u64::MAX;
            if w == first {
                bits &= u64::MAX << low;
            }
            if w == last {
                bits &= u64::MAX >> (63 - high);
            }
            *words.entry(w).or_insert(0) |= bits;
        }
    }

    /// Removes and counts the run of `replica`'s counters that starts at `from` and has no gap.
    pub(crate) fn take_run(&mut self, replica: ReplicaId, from: u64) -> u64 {
        let Ok(at) = self.position(replica) else {
            return 0;
        };
        let taken = take_run(&mut self.replicas[at].1, from);
        self.drop_if_empty(at);
        taken
    }

    /// [`position`](Self::position) among the replicas from `from` on, galloping: a step
    /// to the next replica costs a comparison or two, a jump its logarithm.
    fn seek(&self, from: usize, replica: ReplicaId) -> Result<usize, usize> {
        let rest = &self.replicas[from.min(self.replicas.len())..];
        let mut end = 1;
        while end < rest.len() && rest[end - 1].0 < replica {
            end *= 2;
        }
        rest[..end.min(rest.len())]
            .binary_search_by(|(r, _)| r.cmp(&replica))
            .map(|at| from + at)
            .map_err(|at| from + at)
    }

    fn drop_if_empty(&mut self, at: usize) {
        if self.replicas[at].1.is_empty() {
            self.replicas.remove(at);
        }
    }

    /// For each `(replica, top)`, sorted by replica: removes the replica's counters up to
    /// `top`, then the run that follows it; returns `(replica, top + run)` for each run taken,
    /// in order. The replicas left without a dot are dropped in one pass at the end rather
    /// than one `Vec::remove` each, which would make a context's join over many replicas
    /// quadratic.
    pub(crate) fn settle(&mut self, tops: &[(ReplicaId, u64)]) -> Vec<(ReplicaId, u64)> {
        debug_assert!(tops.is_sorted_by_key(|&(replica, _)| replica));
        let mut raised = Vec::new();
        let mut emptied = false;
        // Each replica is sought from the last one found on: the tops are sorted.
        let mut from = 0;
        for &(replica, top) in tops {
            let at = match self.seek(from, replica) {
                Ok(at) => at,
                Err(at) => {
                    from = at;
                    continue;
                }
            };
            from = at + 1;
            let words = &mut self.replicas[at].1;
            remove_through(words, top);
            if let Some(next) = top.checked_add(1) {
                let run = take_run(words, next);
                if run > 0 {
                    raised.push((replica, top + run));
                }
            }
            emptied |= words.is_empty();
        }
        if emptied {
            self.replicas.retain(|(_, words)| !words.is_empty());
        }
        raised
    }

    /// Adds every dot of `other`: the two sorted lists of replicas merged in one pass, so
    /// that a cloud bringing many replicas costs no insertion into the middle of this one's.
    pub(crate) fn union(&mut self, other: &Self) {
        let mine = std::mem::take(&mut self.replicas);
        let mut merged = Vec::with_capacity(mine.len() + other.replicas.len());
        let mut theirs = other.replicas.iter().peekable();
        for (replica, mut words) in mine {
            while let Some((r, w)) = theirs.next_if(|(r, _)| *r < replica) {
                merged.push((*r, w.clone()));
            }
            if let Some((_, w)) = theirs.next_if(|(r, _)| *r == replica) {
                w.iter()
                    .for_each(|(&at, &bits)| *words.entry(at).or_insert(0) |= bits);
            }
            merged.push((replica, words));
        }
        merged.extend(theirs.map(|(r, w)| (*r, w.clone())));
        self.replicas = merged;
    }

    /// The replicas holding a dot, in order.
    pub(crate) fn replicas(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.replicas.iter().map(|(replica, _)| *replica)
    }

    /// How many replicas hold a dot.
    pub(crate) fn replica_count(&self) -> usize {
        self.replicas.len()
    }

    /// The highest counter held for `replica`, 0 when none.
    pub(crate) fn last(&self, replica: ReplicaId) -> u64 {
        self.words(replica)
            .and_then(|words| words.last_key_value())
            .and_then(|(&w, &bits)| highest_bit(bits).map(|bit| w << 6 | u64::from(bit)))
            .unwrap_or(0)
    }

    /// Whether `f` holds for every dot, asked in order. Internal iteration: an event's join
    /// asks this of a cloud of one dot, where the nested iterator's bookkeeping cost more
    /// than the question.
    pub(crate) fn all(&self, mut f: impl FnMut(Dot) -> bool) -> bool {
        self.replicas.iter().all(|(replica, words)| {
            words
                .iter()
                .all(|(&w, &bits)| word_dots(*replica, w, bits).all(&mut f))
        })
    }

    /// The dots in order: by replica, then counter.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Dot> + '_ {
        self.replicas.iter().flat_map(|(replica, words)| {
            words
                .iter()
                .flat_map(move |(&w, &bits)| word_dots(*replica, w, bits))
        })
    }
}

/// Removes and counts the run of counters in `words` that starts at `from` and has no gap.
fn take_run(words: &mut Words, from: u64) -> u64 {
    let mut taken = 0;
    let mut next = from;
    loop {
        let (w, bit) = word(next);
        let Some(bits) = words.get_mut(&w) else { break };
        let ones = (*bits >> bit).trailing_ones();
        if ones == 0 {
            break;
        }
        // `ones` bits from `bit` on: the whole word when the run covers all 64.
        let run = if ones == 64 {
            u64::MAX
        } else {
            ((1u64 << ones) - 1) << bit
        };
        *bits &= !run;
        if *bits == 0 {
            words.remove(&w);
        }
        taken += u64::from(ones);
        match next.checked_add(u64::from(ones)) {
            // The run reached the word's end: it may go on in the next word.
            Some(after) if bit + ones == 64 => next = after,
            _ => break,
        }
    }
    taken
}

/// The highest set bit of a word, `None` for a zero word (which holds no counter).
#[inline]
fn highest_bit(bits: u64) -> Option<u32> {
    bits.checked_ilog2()
}

/// Removes the counters in `words` up to and including `through`.
fn remove_through(words: &mut Words, through: u64) {
    let (w, bit) = word(through);
    // Words below the one holding `through` go; that one keeps its bits above it. Split only
    // when there are words below: a settle asks this of every replica it folds, mostly with
    // nothing to remove, and `split_off` moves the map's nodes into a new one.
    if words.first_key_value().is_some_and(|(&first, _)| first < w) {
        *words = words.split_off(&w);
    }
    if let Some(bits) = words.get_mut(&w) {
        *bits &= (u64::MAX << bit) << 1;
        if *bits == 0 {
            words.remove(&w);
        }
    }
}

/// The set of the dots, built in one pass: sorted, then each replica's words filled in order.
/// Inserting dot by dot would put each new replica into the middle of the sorted list, so text
/// listing many replicas in descending order would be quadratic to read. Counter 0 is kept,
/// as `insert` keeps it; a context drops it.
impl FromIterator<Dot> for DotCloud {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut dots: Vec<Dot> = iter.into_iter().collect();
        dots.sort_unstable();
        let mut replicas: Vec<(ReplicaId, Words)> = Vec::new();
        let mut words: Vec<(u64, u64)> = Vec::new();
        for (i, dot) in dots.iter().enumerate() {
            let (w, bit) = word(dot.counter);
            match words.last_mut() {
                Some((last, bits)) if *last == w => *bits |= 1 << bit,
                _ => words.push((w, 1 << bit)),
            }
            if dots
                .get(i + 1)
                .is_none_or(|next| next.replica != dot.replica)
            {
                // Words in ascending order: the map is built from them without a search each.
                replicas.push((
                    dot.replica,
                    std::mem::take(&mut words).into_iter().collect(),
                ));
            }
        }
        Self { replicas }
    }
}

/// The dots of one word, in order.
fn word_dots(replica: ReplicaId, w: u64, bits: u64) -> impl Iterator<Item = Dot> {
    let mut rest = bits;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let bit = rest.trailing_zeros();
            rest &= rest - 1;
            Dot::new(replica, w << 6 | u64::from(bit))
        })
    })
}

impl fmt::Debug for DotCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for DotCloud {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        self.iter()
            .try_for_each(|dot| seq.serialize_element(&dot))?;
        seq.end()
    }
}

impl<'de> Deserialize<'de> for DotCloud {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Dots;
        impl<'de> Visitor<'de> for Dots {
            type Value = DotCloud;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of dots")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DotCloud, A::Error> {
                let mut dots = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(dot) = seq.next_element::<Dot>()? {
                    dots.push(dot);
                }
                Ok(dots.into_iter().collect())
            }
        }
        deserializer.deserialize_seq(Dots)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// The operations a context applies to its cloud.
    #[derive(Clone, Debug)]
    enum Op {
        Insert(Dot),
        TakeRun(ReplicaId, u64),
        Settle(Vec<(ReplicaId, u64)>),
        Union(Vec<Dot>),
    }

    fn replica() -> impl Strategy<Value = ReplicaId> {
        (1u128..4).prop_map(ReplicaId::from_u128)
    }

    /// Counters that cross word boundaries, and the extremes of the range.
    fn counter() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..200,
            (u64::MAX - 130)..=u64::MAX,
            Just(63),
            Just(64),
            Just(127),
            Just(128),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (replica(), counter()).prop_map(|(r, n)| Op::Insert(Dot::new(r, n))),
            1 => (replica(), counter()).prop_map(|(r, n)| Op::TakeRun(r, n)),
            1 => proptest::collection::btree_map(replica(), counter(), 0..4)
                .prop_map(|tops| Op::Settle(tops.into_iter().collect())),
            1 => proptest::collection::vec(dot(), 0..20).prop_map(Op::Union),
        ]
    }

    fn dot() -> impl Strategy<Value = Dot> {
        (replica(), counter()).prop_map(|(r, n)| Dot::new(r, n))
    }

    fn take_run_of(set: &mut BTreeSet<Dot>, replica: ReplicaId, from: Option<u64>) -> u64 {
        let mut taken = 0;
        let mut next = from;
        while let Some(n) = next.filter(|&n| set.remove(&Dot::new(replica, n))) {
            taken += 1;
            next = n.checked_add(1);
        }
        taken
    }

    /// The same operations on an ordered set of dots, the representation this replaced.
    /// `Settle` answers with the sum of the raised tops, to compare them as one number.
    fn model(set: &mut BTreeSet<Dot>, op: &Op) -> u64 {
        match op {
            Op::Insert(dot) => u64::from(set.insert(*dot)),
            Op::TakeRun(replica, from) => take_run_of(set, *replica, Some(*from)),
            Op::Settle(tops) => tops.iter().fold(0, |sum, &(replica, top)| {
                set.retain(|d| d.replica != replica || d.counter > top);
                match take_run_of(set, replica, top.checked_add(1)) {
                    0 => sum,
                    run => sum.wrapping_add(top + run),
                }
            }),
            Op::Union(dots) => {
                set.extend(dots.iter().copied());
                0
            }
        }
    }

    proptest! {
        #![proptest_config(crate::property::config())]

        #[test]
        fn behaves_as_an_ordered_set_of_dots(ops in proptest::collection::vec(op(), 0..60)) {
            let (mut cloud, mut set) = (DotCloud::new(), BTreeSet::new());
            for op in &ops {
                let expected = model(&mut set, op);
                let got = match op {
                    Op::Insert(dot) => u64::from(cloud.insert(*dot)),
                    Op::TakeRun(replica, from) => cloud.take_run(*replica, *from),
                    Op::Settle(tops) => cloud
                        .settle(tops)
                        .into_iter()
                        .fold(0u64, |sum, (_, top)| sum.wrapping_add(top)),
                    Op::Union(dots) => {
                        cloud.union(&dots.iter().copied().collect());
                        0
                    }
                };
                prop_assert_eq!(got, expected, "{:?}", op);
                prop_assert_eq!(cloud.iter().collect::<Vec<_>>(), set.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(cloud.is_empty(), set.is_empty());
                prop_assert_eq!(
                    cloud.replicas().collect::<Vec<_>>(),
                    set.iter().map(|d| d.replica).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>()
                );
                let mut visited = Vec::new();
                let every = cloud.all(|d| {
                    visited.push(d);
                    true
                });
                prop_assert!(every);
                prop_assert_eq!(visited, set.iter().copied().collect::<Vec<_>>());
                if let Some(&first) = set.iter().next() {
                    let mut asked = 0;
                    let stopped = !cloud.all(|d| {
                        asked += 1;
                        d != first
                    });
                    prop_assert!(stopped);
                    prop_assert_eq!(asked, 1);
                }
                for r in 1..4 {
                    let r = ReplicaId::from_u128(r);
                    let last = set.iter().filter(|d| d.replica == r).map(|d| d.counter).max();
                    prop_assert_eq!(cloud.last(r), last.unwrap_or(0));
                }
                for dot in set.iter() {
                    prop_assert!(cloud.contains(*dot));
                }
                // One representation per set: rebuilt from its dots, it is equal.
                prop_assert_eq!(&cloud, &set.iter().fold(DotCloud::new(), |mut c, &d| {
                    c.insert(d);
                    c
                }));
            }
        }
    }

    proptest! {
        #![proptest_config(crate::property::config())]

        /// Built in one pass, and read from text, a cloud is the one its dots inserted one by
        /// one in the order given (the reader's former path) make, repeats and zeros included.
        #[test]
        fn built_from_dots_as_inserted_one_by_one(dots in proptest::collection::vec(dot(), 0..60)) {
            let inserted = dots.iter().fold(DotCloud::new(), |mut c, &d| {
                c.insert(d);
                c
            });
            prop_assert_eq!(&dots.iter().copied().collect::<DotCloud>(), &inserted);
            let text = serde_json::to_string(&dots).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let read: DotCloud = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(read, inserted);
        }
    }

    /// Replicas in descending order, each listed three times with counters across words and
    /// a zero: the set of the dots, by replica then counter.
    #[test]
    fn descending_and_repeated_dots_read_as_their_set() -> serde_json::Result<()> {
        let dots: Vec<Dot> = (1..=2_000u128)
            .rev()
            .flat_map(|i| {
                let r = ReplicaId::from_u128(i);
                [
                    Dot::new(r, 70),
                    Dot::new(r, 0),
                    Dot::new(r, 70),
                    Dot::new(r, 5),
                ]
            })
            .collect();
        let read: DotCloud = serde_json::from_str(&serde_json::to_string(&dots)?)?;
        let set: BTreeSet<Dot> = dots.into_iter().collect();
        assert_eq!(
            read.iter().collect::<Vec<_>>(),
            set.into_iter().collect::<Vec<_>>()
        );
        Ok(())
    }

    /// A word holding no bit has no highest one: `last` of it is "none" (0), not the
    /// `63 - 64` a count of leading zeros gave, which underflowed. No operation leaves a zero
    /// word; this builds one to ask.
    #[test]
    fn last_of_a_zero_word_is_none() {
        let r = ReplicaId::from_u128(1);
        let cloud = DotCloud {
            replicas: vec![(r, Words::from([(1, 0)]))],
        };
        assert_eq!(cloud.last(r), 0);
    }

    #[test]
    fn serializes_as_the_set_of_dots_did() -> serde_json::Result<()> {
        let dots =
            [(2, 70), (1, 5), (2, 3), (1, 64)].map(|(r, n)| Dot::new(ReplicaId::from_u128(r), n));
        let set: BTreeSet<Dot> = dots.into_iter().collect();
        let cloud = dots.into_iter().fold(DotCloud::new(), |mut c, d| {
            c.insert(d);
            c
        });
        let text = serde_json::to_string(&cloud)?;
        assert_eq!(text, serde_json::to_string(&set)?);
        assert_eq!(serde_json::from_str::<DotCloud>(&text)?, cloud);
        assert_eq!(format!("{cloud:?}"), format!("{set:?}"));
        Ok(())
    }
}
