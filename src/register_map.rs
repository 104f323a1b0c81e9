//! A record's registers by key (twin paths, metadata keys): a sorted vector of pairs.
//!
//! Why not a `BTreeMap` (2026-11): a record holds a handful of twin and metadata registers,
//! most often one, and a B-tree's first insert allocates a leaf for eleven (about 800 bytes
//! for twin registers of 72 bytes with their paths). Here a pair costs its own size, a lookup
//! bisects contiguous memory, and a join walks both sides in key order once. An ingested
//! event (a twin write joined into a record) went from 4,406 to 4,304 instructions.
//!
//! Invariants: sorted by key, keys unique. Joins drop void registers (no value, no past), so
//! equal states have equal maps; a register with a past and no value stays (it was cleared by
//! a related twin write, and says so to late deltas).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::CausalContext;
use crate::register::MvRegister;
use crate::serde_text::{map_members, sorted_once_each};
use crate::twin::shown;

/// Registers by key, in key order.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RegisterMap<K, T> {
    entries: Vec<(K, MvRegister<T>)>,
}

impl<K, T> Default for RegisterMap<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, T> RegisterMap<K, T> {
    pub(crate) const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &MvRegister<T>)> {
        self.entries.iter().map(|(k, reg)| (k, reg))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &MvRegister<T>> {
        self.entries.iter().map(|(_, reg)| reg)
    }
}

impl<K: Ord + Clone, T: Clone + PartialEq> RegisterMap<K, T> {
    fn position<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&MvRegister<T>>
    where
        K: Borrow<Q>,
    {
        self.position(key).ok().map(|at| &self.entries[at].1)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut MvRegister<T>> {
        self.position(key).ok().map(|at| &mut self.entries[at].1)
    }

    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.position(key).is_ok()
    }

    /// The register at `key`, inserted empty when missing.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut MvRegister<T> {
        let at = match self.position(&key) {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, (key, MvRegister::new()));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// Sets the register at `key`.
    pub(crate) fn insert(&mut self, key: K, reg: MvRegister<T>) {
        match self.position(&key) {
            Ok(at) => self.entries[at].1 = reg,
            Err(at) => self.entries.insert(at, (key, reg)),
        }
    }

    /// Drops the void registers (a void register is an absent one), as a join leaves a map.
    pub(crate) fn drop_void(&mut self) {
        self.entries.retain(|(_, reg)| !reg.is_void());
    }

    /// The registers with keys from `lo` (included) to `hi` (excluded), in order.
    pub(crate) fn range(&self, lo: &K, hi: &K) -> impl Iterator<Item = (&K, &MvRegister<T>)> {
        let start = self.entries.partition_point(|(k, _)| k < lo);
        let end = start + self.entries[start..].partition_point(|(k, _)| k < hi);
        self.entries[start..end].iter().map(|(k, reg)| (k, reg))
    }

    /// Whether [`join`](Self::join) with `theirs` would leave this map as it is: every
    /// register here absorbs its counterpart (a missing one is void) and is not void itself
    /// (the join would drop it), and every register only `theirs` holds is void (`∅ ⊔ t = ∅`
    /// only for a void `t`). Allocates nothing.
    pub(crate) fn absorbs(&self, theirs: &Self, other_ctx: &CausalContext) -> bool {
        let void = MvRegister::new();
        self.entries.iter().all(|(key, reg)| {
            !reg.is_void() && reg.absorbs(theirs.get(key).unwrap_or(&void), other_ctx)
        }) && theirs
            .entries
            .iter()
            .all(|(key, reg)| reg.is_void() || self.contains_key(key))
    }

    /// Joins key by key, both sides walked in order once (a key one side lacks joins a void
    /// register); registers left void are dropped. Returns whether any register changed.
    pub(crate) fn join(
        &mut self,
        ctx: &CausalContext,
        theirs: &Self,
        other_ctx: &CausalContext,
    ) -> bool {
        // In place (2026-11): the registers here are joined where they lie, and only keys
        // this side lacks are gathered, usually none. Rebuilding the vector cost an
        // allocation and a copy of every pair for each record a join reached.
        let void = MvRegister::new();
        let mut changed = false;
        let join_new = |key: &K, reg: &MvRegister<T>, changed: &mut bool| {
            let mut fresh = MvRegister::new();
            *changed |= fresh.join(ctx, reg, other_ctx, |_| {});
            (!fresh.is_void()).then(|| (key.clone(), fresh))
        };
        if self.entries.is_empty() {
            let joined = theirs.entries.iter();
            self.entries = joined
                .filter_map(|(k, r)| join_new(k, r, &mut changed))
                .collect();
            return changed;
        }
        let mut added = Vec::new();
        let mut incoming = theirs.entries.iter().peekable();
        for (key, reg) in &mut self.entries {
            while let Some((k, r)) = incoming.next_if(|(k, _)| k < key) {
                added.extend(join_new(k, r, &mut changed));
            }
            let counterpart = incoming
                .next_if(|(k, _)| k == key)
                .map_or(&void, |(_, r)| r);
            changed |= reg.join(ctx, counterpart, other_ctx, |_| {});
        }
        added.extend(incoming.filter_map(|(k, r)| join_new(k, r, &mut changed)));
        self.entries.retain(|(_, reg)| !reg.is_void());
        if !added.is_empty() {
            // Two sorted runs of distinct keys: the stable sort merges them in one pass.
            self.entries.append(&mut added);
            self.entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        }
        changed
    }
}

impl<'a, K, T> IntoIterator for &'a RegisterMap<K, T> {
    type Item = (&'a K, &'a MvRegister<T>);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (K, MvRegister<T>)>,
        fn(&'a (K, MvRegister<T>)) -> (&'a K, &'a MvRegister<T>),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, reg)| (k, reg))
    }
}

/// Built from pairs in any order; a repeated key keeps its last register, as a map would.
impl<K: Ord, T> FromIterator<(K, MvRegister<T>)> for RegisterMap<K, T> {
    fn from_iter<I: IntoIterator<Item = (K, MvRegister<T>)>>(iter: I) -> Self {
        let sorted: BTreeMap<K, MvRegister<T>> = iter.into_iter().collect();
        Self {
            entries: sorted.into_iter().collect(),
        }
    }
}

impl<K: fmt::Debug, T: fmt::Debug> fmt::Debug for RegisterMap<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, reg)| (k, reg)))
            .finish()
    }
}

/// Serialized as the map it is, keys in order.
impl<K: Serialize, T: Serialize> Serialize for RegisterMap<K, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries.iter().map(|(k, reg)| (k, reg)))
    }
}

/// A record's metadata registers by name (twin registers are read through
/// `twin::text_keys`). A name listed twice is refused, as the registry's reader refuses a
/// device listed twice: read as a map reads it, the last of the two would stand and the other
/// register's writes be dropped without a word. Shown as a refused metadata value's name is
/// (`twin::shown`): a name damaged text put there may be a key.
impl<'de, T> Deserialize<'de> for RegisterMap<String, T>
where
    MvRegister<T>: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let members: Vec<(String, MvRegister<T>)> = map_members(deserializer)?;
        let entries = sorted_once_each(members).map_err(|name| metadata_listed_twice(&name))?;
        Ok(Self { entries })
    }
}

/// The refusal of metadata name `name` listed twice in one map, a record's or a creation's
/// (`Identity`'s reader): one message for both, the name shown as a refused metadata value's
/// name is (`twin::shown`), since a name damaged text put there may be a key.
pub(crate) fn metadata_listed_twice<E: serde::de::Error>(name: &str) -> E {
    E::custom(format!("metadata name {:?} is listed twice", shown(name)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::clock::{Dot, ReplicaId};
    use crate::stamp::Stamp;

    type Map = RegisterMap<u8, u8>;

    /// A map of up to 6 keys, each register holding one write by one of two replicas, or
    /// cleared after it (its past only), or void (as a file may hold).
    fn map() -> impl Strategy<Value = Map> {
        let register = (1u128..3, 1u64..4, any::<u8>(), 0u8..6);
        proptest::collection::btree_map(0u8..8, register, 0..6).prop_map(|writes| {
            writes
                .into_iter()
                .map(|(key, (r, n, value, kind))| {
                    let mut reg = MvRegister::new();
                    if kind > 0 {
                        let dot = Dot::new(ReplicaId::from_u128(r), n);
                        reg.write(dot, Stamp::default(), value);
                    }
                    if kind == 1 {
                        reg.clear();
                    }
                    (key, reg)
                })
                .collect()
        })
    }

    /// The join this replaced: registers in an ordered map, joined key by key.
    fn join_as_btree(
        mine: &Map,
        ctx: &CausalContext,
        theirs: &Map,
        other_ctx: &CausalContext,
    ) -> (Map, bool) {
        let mut out: BTreeMap<u8, MvRegister<u8>> =
            mine.iter().map(|(k, reg)| (*k, reg.clone())).collect();
        let void = MvRegister::new();
        let mut changed = false;
        for (key, reg) in out.iter_mut() {
            changed |= reg.join(ctx, theirs.get(key).unwrap_or(&void), other_ctx, |_| {});
        }
        for (key, reg) in theirs.iter() {
            if !out.contains_key(key) {
                let mut fresh = MvRegister::new();
                changed |= fresh.join(ctx, reg, other_ctx, |_| {});
                if !fresh.is_void() {
                    out.insert(*key, fresh);
                }
            }
        }
        out.retain(|_, reg| !reg.is_void());
        (out.into_iter().collect(), changed)
    }

    fn context(map: &Map) -> CausalContext {
        map.values()
            .flat_map(|reg| reg.dots().collect::<Vec<_>>())
            .collect()
    }

    proptest! {
        #![proptest_config(crate::property::config())]

        #[test]
        fn joins_as_the_ordered_map_did(mine in map(), theirs in map()) {
            let (ctx, other_ctx) = (context(&mine), context(&theirs));
            let (expected, expected_changed) = join_as_btree(&mine, &ctx, &theirs, &other_ctx);
            let mut joined = mine.clone();
            let changed = joined.join(&ctx, &theirs, &other_ctx);
            prop_assert_eq!(&joined, &expected);
            prop_assert_eq!(changed, expected_changed);
            prop_assert!(joined.entries.windows(2).all(|w| w[0].0 < w[1].0));
            // Where the generator gave two writes one dot in a register, absorbing asks the
            // two to agree as well: a merge takes `t` whole for `s ⊔ t` when `t` absorbs `s`.
            let agree = mine.iter().all(|(key, reg)| {
                theirs.get(key).is_none_or(|other| {
                    reg.entries().iter().all(|e| {
                        other.entries().iter().all(|o| o.dot != e.dot || o == e)
                    })
                })
            });
            prop_assert_eq!(mine.absorbs(&theirs, &other_ctx), expected == mine && agree);
        }
    }

    #[test]
    fn range_get_and_insert_keep_key_order() {
        let mut map = Map::new();
        for key in [5, 1, 3, 1] {
            map.get_or_default(key).write(
                Dot::new(ReplicaId::from_u128(1), u64::from(key)),
                Stamp::default(),
                key,
            );
        }
        assert_eq!(map.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!(map.range(&2, &5).map(|(k, _)| *k).collect::<Vec<_>>(), [3]);
        assert_eq!(map.range(&0, &9).count(), 3);
        assert!(map.contains_key(&5) && !map.contains_key(&4));
        map.insert(4, MvRegister::new());
        assert_eq!(
            map.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [1, 3, 4, 5]
        );
        assert!(map.get(&4).is_some_and(MvRegister::is_void));
    }

    #[test]
    fn serializes_as_the_ordered_map_did() -> serde_json::Result<()> {
        let mut reg = MvRegister::new();
        reg.write(Dot::new(ReplicaId::from_u128(1), 1), Stamp::default(), 7u8);
        let pairs = [("b".to_string(), reg.clone()), ("a".to_string(), reg)];
        let map: RegisterMap<String, u8> = pairs.iter().cloned().collect();
        let btree: BTreeMap<String, MvRegister<u8>> = pairs.into_iter().collect();
        let text = serde_json::to_string(&map)?;
        assert_eq!(text, serde_json::to_string(&btree)?);
        assert_eq!(serde_json::from_str::<RegisterMap<String, u8>>(&text)?, map);
        Ok(())
    }
}
