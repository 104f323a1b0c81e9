//! The registry's map from key to slot: sorted entries, in chunks of contiguous memory.
//!
//! Why not a `BTreeMap` (2026-11): a full merge walks both maps key by key, and a B-tree's
//! nodes, allocated among the slots they point to, cost a cache and TLB miss every dozen
//! keys: at a million keys the walk alone took about half of a 218 ms merge, in loads of node
//! lengths and edges. Chunks of a few hundred entries in plain vectors are read at memory
//! speed, and an entry is a key and a pointer, so the walk never touches a slot it does not
//! join. Writes stay cheap: a key is inserted into its chunk (at most `2 × CHUNK` entries
//! moved), and a chunk that grows past that splits.
//!
//! Invariants: entries are sorted by key across chunks, keys are unique, no chunk is empty.
//! Two maps with the same entries are equal however they are chunked.

use std::cmp::Ordering;
use std::fmt;
use std::sync::{Arc, Mutex};

use smallvec::SmallVec;

use crate::key::DeviceKey;
use crate::slot::Slot;

/// Entries per chunk when a map is built or split; a chunk splits above twice this.
const CHUNK: usize = 128;

/// How much larger this side must be than the incoming map for a join to look keys up one by
/// one instead of walking both maps: a lookup costs about as much as walking a dozen keys.
pub(crate) const SPARSE: usize = 16;

/// Below this many keys a walk runs on the calling thread: starting one costs tens of
/// microseconds, about what walking a few thousand keys does.
const PARALLEL: usize = 1 << 16;

/// At most this many threads walk one join.
const SHARDS: usize = 8;

type Chunk = Vec<(DeviceKey, Arc<Slot>)>;

/// What a join left for one key ([`SlotMap::join_with`]).
pub(crate) enum Joined {
    /// The key keeps this side's slot, written or not.
    Kept,
    /// The key goes (or, held only by the other side, is not added).
    Dropped,
    /// The slot for a key only the other side held.
    Added(Arc<Slot>),
}

/// Keys to slots, in key order.
#[derive(Clone, Default)]
pub(crate) struct SlotMap {
    chunks: Vec<Chunk>,
    len: usize,
}

impl SlotMap {
    /// How many keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no key.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk `key` lies in, or would be inserted into: the first from chunk `from` whose
    /// last key is not below `key`, else the last. `from` must not be past that chunk.
    ///
    /// From a chunk past the first, searches outwards (1, 2, 4, … chunks on) before
    /// bisecting: keys looked up in order, as a delta's are, lie a few chunks apart, and each
    /// chunk probed costs a cache miss (its entries live apart from the list of chunks), so a
    /// lookup costs the log of the distance from the previous one rather than the log of the
    /// map. From the first chunk (no previous key) it bisects the whole list at once.
    fn chunk_of(&self, from: usize, key: &DeviceKey) -> usize {
        let below = |chunk: &Chunk| chunk.last().is_some_and(|(last, _)| last < key);
        let end = self.chunks.len();
        let (mut lo, mut step) = (from.min(end), 1);
        let hi = if from == 0 {
            end
        } else {
            loop {
                let probe = lo.saturating_add(step - 1);
                if probe >= end {
                    break end;
                }
                if !below(&self.chunks[probe]) {
                    break probe;
                }
                lo = probe + 1;
                step *= 2;
            }
        };
        let after = lo + self.chunks[lo..hi].partition_point(below);
        after.min(end.saturating_sub(1))
    }

    /// Where `key` is: its chunk, and its index there (`Err`: where it would go).
    fn find(&self, key: &DeviceKey) -> (usize, Result<usize, usize>) {
        self.find_from(0, key)
    }

    /// [`find`](Self::find), searching from chunk `from` on (see [`chunk_of`](Self::chunk_of)).
    fn find_from(&self, from: usize, key: &DeviceKey) -> (usize, Result<usize, usize>) {
        let c = self.chunk_of(from, key);
        let at = self
            .chunks
            .get(c)
            .map_or(Err(0), |chunk| chunk.binary_search_by(|(k, _)| k.cmp(key)));
        (c, at)
    }

    /// The slot of `key`.
    pub(crate) fn get(&self, key: &DeviceKey) -> Option<&Arc<Slot>> {
        match self.find(key) {
            (c, Ok(i)) => Some(&self.chunks[c][i].1),
            _ => None,
        }
    }

    /// The slot of `key`, inserted empty when missing.
    pub(crate) fn get_or_insert(&mut self, key: &DeviceKey) -> &mut Arc<Slot> {
        let (c, i) = match self.find(key) {
            (c, Ok(i)) => (c, i),
            (c, Err(i)) => self.insert_at(c, i, key.clone(), Arc::default()),
        };
        &mut self.chunks[c][i].1
    }

    /// Sets the slot of `key`, returning the one it replaced.
    pub(crate) fn insert(&mut self, key: DeviceKey, slot: Arc<Slot>) -> Option<Arc<Slot>> {
        match self.find(&key) {
            (c, Ok(i)) => Some(std::mem::replace(&mut self.chunks[c][i].1, slot)),
            (c, Err(i)) => {
                self.insert_at(c, i, key, slot);
                None
            }
        }
    }

    /// Inserts at a position `find` gave; returns where the entry ended up (after a split).
    fn insert_at(&mut self, c: usize, i: usize, key: DeviceKey, slot: Arc<Slot>) -> (usize, usize) {
        self.len += 1;
        if self.chunks.is_empty() {
            self.chunks.push(vec![(key, slot)]);
            return (0, 0);
        }
        self.chunks[c].insert(i, (key, slot));
        if self.chunks[c].len() <= 2 * CHUNK {
            return (c, i);
        }
        let tail = self.chunks[c].split_off(CHUNK);
        self.chunks.insert(c + 1, tail);
        if i < CHUNK {
            (c, i)
        } else {
            (c + 1, i - CHUNK)
        }
    }

    /// Removes `key`, returning its slot (joins remove through [`remove_at`](Self::remove_at)).
    #[cfg(test)]
    pub(crate) fn remove(&mut self, key: &DeviceKey) -> Option<Arc<Slot>> {
        let (c, Ok(i)) = self.find(key) else {
            return None;
        };
        Some(self.remove_at(c, i))
    }

    /// Removes the entry at a position `find` gave, and its chunk if that empties it.
    fn remove_at(&mut self, c: usize, i: usize) -> Arc<Slot> {
        let (_, slot) = self.chunks[c].remove(i);
        if self.chunks[c].is_empty() {
            self.chunks.remove(c);
        }
        self.len -= 1;
        slot
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&DeviceKey, &Arc<Slot>)> + '_ {
        self.chunks.iter().flatten().map(|(key, slot)| (key, slot))
    }

    /// Keys in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &DeviceKey> + '_ {
        self.iter().map(|(key, _)| key)
    }

    /// Slots in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<Slot>> + '_ {
        self.iter().map(|(_, slot)| slot)
    }

    /// Keeps the entries `keep` says to keep (it may write their slots).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&DeviceKey, &mut Arc<Slot>) -> bool) {
        for chunk in &mut self.chunks {
            chunk.retain_mut(|(key, slot)| keep(key, slot));
        }
        self.tidy();
    }

    /// Removes `gone`, keys held here in key order, reading only the chunks that hold them
    /// (a join that drops a few keys of a large map does not walk all of it again).
    fn remove_sorted(&mut self, gone: &[DeviceKey]) {
        let mut gone = gone.iter().peekable();
        for chunk in &mut self.chunks {
            let holds_next = match (gone.peek(), chunk.last()) {
                (Some(next), Some((last, _))) => *next <= last,
                _ => false,
            };
            if holds_next {
                chunk.retain(|(key, _)| gone.next_if(|g| *g == key).is_none());
            }
        }
        self.tidy();
    }

    /// Drops emptied chunks and recounts; rebuilds when many removals left the chunks mostly
    /// empty.
    fn tidy(&mut self) {
        self.chunks.retain(|chunk| !chunk.is_empty());
        self.len = self.chunks.iter().map(Vec::len).sum();
        if self.chunks.len() > 2 * self.len.div_ceil(CHUNK) + 1 {
            *self = std::mem::take(self).into_iter().collect();
        }
    }

    /// Joins `other` into this map, key by key in key order: `join(acc, key, Some(mine),
    /// theirs)` for a key both hold, `join(acc, key, None, theirs)` for a key only `other`
    /// holds; what it returns says whether the key stays. The join says so rather than the
    /// map looking at the slot: most keys are untouched, and reading their slots would cost a
    /// cache miss each.
    ///
    /// Walks both maps together, or, when `other` is much smaller (a delta, an event), looks
    /// its keys up one by one. A walk over a large map is split into shards by key range, one
    /// per core (at most [`SHARDS`]), each with its own accumulator: the accumulators are
    /// returned in key order, so what a caller folds from them does not depend on the number
    /// of cores. Keys are joined independently, so the result is the same however many shards.
    pub(crate) fn join_with<A: Default + Send>(
        &mut self,
        other: &SlotMap,
        join: impl Fn(&mut A, &DeviceKey, Option<&mut Arc<Slot>>, &Arc<Slot>) -> Joined + Sync,
    ) -> SmallVec<[A; 1]> {
        // One accumulator inline: an event's one-key join allocated a vector for it.
        if other.len.saturating_mul(SPARSE) < self.len {
            return smallvec::smallvec![self.look_up(other, &join)];
        }
        // Asked only here: it reads the process's CPU quota from the file system, which cost
        // ten times an event's whole join when every join asked.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        SmallVec::from_vec(self.walk_on(other, cores, join))
    }

    /// Joins the incoming keys by looking each up, in order, on the calling thread.
    ///
    /// Lookups are not split across threads (2026-11): they are bound by memory latency, a
    /// cache miss or two per key, and when they were split in two shards on the two-core bench
    /// machine, each shard's ran at about half the speed of one thread's: 8% gained in all.
    fn look_up<A: Default>(
        &mut self,
        other: &SlotMap,
        join: &impl Fn(&mut A, &DeviceKey, Option<&mut Arc<Slot>>, &Arc<Slot>) -> Joined,
    ) -> A {
        let mut acc = A::default();
        // The incoming keys come in order, so each one's chunk is at or after the previous
        // one's: an insert splits a chunk into it and the next, a removal leaves the next
        // chunk in its place, and both keep the previous chunk's index a lower bound.
        let mut from = 0;
        for (key, theirs) in other.iter() {
            from = self.join_at(from, &mut acc, key, theirs, join);
        }
        acc
    }

    /// [`join_with`](Self::join_with) a map holding only `key` and `theirs`, for a caller
    /// that holds them apart from any map (an event's one write): the join does not read a
    /// map's chunks to find them.
    pub(crate) fn join_one<A: Default>(
        &mut self,
        key: &DeviceKey,
        theirs: &Arc<Slot>,
        join: impl Fn(&mut A, &DeviceKey, Option<&mut Arc<Slot>>, &Arc<Slot>) -> Joined,
    ) -> A {
        let mut acc = A::default();
        self.join_at(0, &mut acc, key, theirs, &join);
        acc
    }

    /// Looks `key` up from chunk `from` on and joins `theirs` there; returns the chunk the
    /// key was found in or would go to, a lower bound for the next key in order.
    fn join_at<A>(
        &mut self,
        from: usize,
        acc: &mut A,
        key: &DeviceKey,
        theirs: &Arc<Slot>,
        join: &impl Fn(&mut A, &DeviceKey, Option<&mut Arc<Slot>>, &Arc<Slot>) -> Joined,
    ) -> usize {
        let (c, at) = self.find_from(from, key);
        match at {
            Ok(i) => {
                if let Joined::Dropped = join(acc, key, Some(&mut self.chunks[c][i].1), theirs) {
                    self.remove_at(c, i);
                }
            }
            Err(i) => {
                if let Joined::Added(slot) = join(acc, key, None, theirs) {
                    self.insert_at(c, i, key.clone(), slot);
                }
            }
        }
        c
    }

    /// Walks both maps together, in shards on at most `cores` threads.
    fn walk_on<A: Default + Send>(
        &mut self,
        other: &SlotMap,
        cores: usize,
        join: impl Fn(&mut A, &DeviceKey, Option<&mut Arc<Slot>>, &Arc<Slot>) -> Joined + Sync,
    ) -> Vec<A> {
        let (starts, bounds) = self.shard_bounds(other, cores);
        let mut walks: Vec<Walk<A>> = Vec::new();
        if starts.len() <= 1 {
            let mut walk = Walk::new(0);
            walk.run(&mut self.chunks, other.range(0, other.len), &join);
            walks.push(walk);
        } else {
            let mut parts = Vec::new();
            let mut rest = self.chunks.as_mut_slice();
            for pair in starts.windows(2) {
                let (part, tail) = rest.split_at_mut(pair[1] - pair[0]);
                parts.push(part);
                rest = tail;
            }
            parts.push(rest);
            // Each shard's work waits in a slot of its own, taken by the thread that walks it:
            // a thread the OS refuses to start leaves its shard there, and the calling thread
            // walks it instead (`src/spawn.rs`).
            let shards: Vec<_> = parts
                .into_iter()
                .zip(&starts)
                .map(|(part, &first)| Mutex::new(Some((part, first))))
                .collect();
            let walk_shard = |s: usize| {
                crate::spawn::take(&shards[s]).map(|(part, first): (&mut [Chunk], usize)| {
                    let mut walk = Walk::new(first);
                    walk.run(part, other.range(bounds[s], bounds[s + 1]), &join);
                    walk
                })
            };
            walks = std::thread::scope(|scope| {
                let walk_shard = &walk_shard;
                let handles: Vec<_> = (1..shards.len())
                    .map(|s| crate::spawn::try_spawn(scope, move || walk_shard(s)))
                    .collect();
                let mut walks: Vec<Walk<A>> = walk_shard(0).into_iter().collect();
                for (s, handle) in (1..shards.len()).zip(handles) {
                    // A join never panics (the merge is total); were one to, the panic is
                    // passed on, not swallowed.
                    let walked = match handle {
                        Some(handle) => handle
                            .join()
                            .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                        None => walk_shard(s),
                    };
                    walks.extend(walked);
                }
                walks
            });
        }
        self.apply_walks(walks)
    }

    /// The shards [`walk_on`](Self::walk_on) splits the walk into, on at most `cores`
    /// threads: the first chunk of each (`starts`), and where each one's incoming keys begin
    /// in `other`, then where the last one's end (`bounds`, one longer).
    fn shard_bounds(&self, other: &SlotMap, cores: usize) -> (Vec<usize>, Vec<usize>) {
        let shards = if self.len < PARALLEL {
            1
        } else {
            cores.clamp(1, SHARDS).min(self.chunks.len())
        };
        // Shard `s` takes whole chunks, and the incoming keys from its first key (the very
        // first shard: from the start) up to the next shard's first key.
        let per_shard = self.chunks.len().div_ceil(shards.max(1)).max(1);
        let starts: Vec<usize> = (0..self.chunks.len()).step_by(per_shard).collect();
        let bounds: Vec<usize> = starts
            .iter()
            .map(|&c| match self.chunks[c].first() {
                Some((key, _)) if c > 0 => other.position(key),
                _ => 0,
            })
            .chain([other.len])
            .collect();
        (starts, bounds)
    }

    /// Applies what the shards' walks added and dropped, in shard order; returns their
    /// accumulators in that order.
    fn apply_walks<A>(&mut self, walks: Vec<Walk<A>>) -> Vec<A> {
        let mut added = Vec::new();
        let mut dropped = Vec::new();
        let mut accs = Vec::with_capacity(walks.len());
        for walk in walks {
            added.extend(walk.added);
            dropped.extend(walk.dropped);
            accs.push(walk.acc);
        }
        if !added.is_empty() {
            self.insert_sorted(added);
        }
        if !dropped.is_empty() {
            // No added key is dropped, so the keys to drop are all still held, in order.
            self.remove_sorted(&dropped);
        }
        accs
    }

    /// The index (over all entries) of the first key not below `key`.
    fn position(&self, key: &DeviceKey) -> usize {
        let (c, at) = self.find(key);
        let before: usize = self.chunks[..c].iter().map(Vec::len).sum();
        before + at.unwrap_or_else(|i| i)
    }

    /// Entries `from..to` (indexes over all entries), in order.
    fn range(&self, from: usize, to: usize) -> impl Iterator<Item = (&DeviceKey, &Arc<Slot>)> {
        let mut skip = from;
        let mut c = 0;
        while c < self.chunks.len() && skip >= self.chunks[c].len() {
            skip -= self.chunks[c].len();
            c += 1;
        }
        let first = self.chunks.get(c).map_or(&[][..], |chunk| &chunk[skip..]);
        let later = self.chunks.get(c + 1..).unwrap_or_default();
        first
            .iter()
            .chain(later.iter().flatten())
            .take(to.saturating_sub(from))
            .map(|(key, slot)| (key, slot))
    }

    /// Inserts new keys at the places a walk found for them (chunk, index before), sorted:
    /// each chunk that receives some is rebuilt once, and split if it grew too large.
    fn insert_sorted(&mut self, added: Vec<(usize, usize, DeviceKey, Arc<Slot>)>) {
        self.len += added.len();
        if self.chunks.is_empty() {
            self.chunks.push(Vec::new());
        }
        let mut added = added.into_iter().peekable();
        let mut chunks = Vec::with_capacity(self.chunks.len());
        for (c, chunk) in std::mem::take(&mut self.chunks).into_iter().enumerate() {
            if added.peek().is_none_or(|&(ac, ..)| ac != c) {
                chunks.push(chunk);
                continue;
            }
            let mut merged = Vec::with_capacity(chunk.len() + CHUNK);
            for (i, entry) in chunk.into_iter().enumerate() {
                while let Some((.., key, slot)) = added.next_if(|&(ac, ai, ..)| (ac, ai) == (c, i))
                {
                    merged.push((key, slot));
                }
                merged.push(entry);
            }
            // Those after the chunk's last entry.
            while let Some((.., key, slot)) = added.next_if(|&(ac, ..)| ac == c) {
                merged.push((key, slot));
            }
            if merged.len() <= 2 * CHUNK {
                chunks.push(merged);
            } else {
                chunks.extend(merged.chunks(CHUNK).map(<[_]>::to_vec));
            }
        }
        self.chunks = chunks;
    }
}

/// One shard's walk: its chunks (the first being chunk `first` of the map) against the
/// incoming entries of its key range.
struct Walk<A> {
    first: usize,
    acc: A,
    /// New entries, each with the chunk (of the whole map) and index it goes before.
    added: Vec<(usize, usize, DeviceKey, Arc<Slot>)>,
    /// Keys to remove, in order.
    dropped: Vec<DeviceKey>,
}

impl<A: Default> Walk<A> {
    fn new(first: usize) -> Self {
        Self {
            first,
            acc: A::default(),
            added: Vec::new(),
            dropped: Vec::new(),
        }
    }

    fn run<'o>(
        &mut self,
        chunks: &mut [Chunk],
        incoming: impl Iterator<Item = (&'o DeviceKey, &'o Arc<Slot>)>,
        join: &impl Fn(&mut A, &DeviceKey, Option<&mut Arc<Slot>>, &Arc<Slot>) -> Joined,
    ) {
        let mut incoming = incoming.peekable();
        for (c, chunk) in chunks.iter_mut().enumerate() {
            for (i, (key, mine)) in chunk.iter_mut().enumerate() {
                // One comparison of each incoming key with this side's, not a `<` then an
                // `==`: most keys are held by both sides, and the second comparison was an
                // eighth of a full merge's instructions at 100k (23.4M against 20.5M,
                // callgrind, 2026-11-23).
                while let Some(order) = incoming.peek().map(|(k, _)| (*k).cmp(key)) {
                    if order == Ordering::Greater {
                        break;
                    }
                    let Some((k, theirs)) = incoming.next() else {
                        break;
                    };
                    if order == Ordering::Less {
                        if let Joined::Added(slot) = join(&mut self.acc, k, None, theirs) {
                            self.added.push((self.first + c, i, k.clone(), slot));
                        }
                        continue;
                    }
                    if let Joined::Dropped = join(&mut self.acc, key, Some(&mut *mine), theirs) {
                        self.dropped.push(key.clone());
                    }
                    break;
                }
            }
        }
        // Keys after this shard's last: at the end of its last chunk.
        let end = (
            self.first + chunks.len().saturating_sub(1),
            chunks.last().map_or(0, Vec::len),
        );
        for (k, theirs) in incoming {
            if let Joined::Added(slot) = join(&mut self.acc, k, None, theirs) {
                self.added.push((end.0, end.1, k.clone(), slot));
            }
        }
    }
}

impl FromIterator<(DeviceKey, Arc<Slot>)> for SlotMap {
    /// Sorted by key; of two entries with one key, the later one stays (as a map insert does).
    fn from_iter<I: IntoIterator<Item = (DeviceKey, Arc<Slot>)>>(entries: I) -> Self {
        let mut entries: Vec<(DeviceKey, Arc<Slot>)> = entries.into_iter().collect();
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            entries.reverse();
            // Stable: among equal keys the later entry (first after the reversal) comes first,
            // and is the one kept: `dedup_by` keeps the first of a run and drops the rest.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|dropped, kept| dropped.0 == kept.0);
        }
        let len = entries.len();
        let chunks = if len <= 2 * CHUNK {
            if entries.is_empty() {
                Vec::new()
            } else {
                vec![entries]
            }
        } else {
            entries.chunks(CHUNK).map(<[_]>::to_vec).collect()
        };
        Self { chunks, len }
    }
}

impl IntoIterator for SlotMap {
    type Item = (DeviceKey, Arc<Slot>);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Chunk>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.into_iter().flatten()
    }
}

impl PartialEq for SlotMap {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for SlotMap {}

impl fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::error::Result;

    fn key(n: usize) -> Result<DeviceKey> {
        DeviceKey::device(format!("d{n:05}"))
    }

    fn slot(n: usize) -> Arc<Slot> {
        let mut slot = Slot::default();
        slot.tombstones.push(crate::slot::Tombstone {
            incarnation: crate::clock::Dot::new(
                crate::clock::ReplicaId::from_u128(1),
                n as u64 + 1,
            ),
            deleted: crate::clock::Dot::new(crate::clock::ReplicaId::from_u128(1), n as u64 + 2),
            stamp: crate::stamp::Stamp::default(),
            seen: None,
        });
        Arc::new(slot)
    }

    fn same(map: &SlotMap, model: &BTreeMap<DeviceKey, Arc<Slot>>) {
        assert_eq!(map.len(), model.len());
        assert!(map.iter().eq(model.iter()));
        assert!(
            map.chunks
                .iter()
                .all(|c| !c.is_empty() && c.len() <= 2 * CHUNK)
        );
    }

    #[test]
    fn inserts_removals_and_joins_match_an_ordered_map() -> Result<()> {
        let mut map = SlotMap::default();
        let mut model = BTreeMap::new();
        // Scattered inserts, enough to split chunks many times.
        for n in (0..3000).map(|n| n * 7919 % 3001) {
            let s = slot(n);
            assert_eq!(map.insert(key(n)?, Arc::clone(&s)), None);
            model.insert(key(n)?, s);
        }
        same(&map, &model);
        for n in (0..3001).step_by(3) {
            assert_eq!(map.remove(&key(n)?), model.remove(&key(n)?));
        }
        same(&map, &model);
        assert!(Arc::ptr_eq(map.get_or_insert(&key(2)?), &model[&key(2)?]));

        // A walk (other as large) and lookups (other small): new keys land in place, emptied
        // slots go, and a key whose join yields nothing is not inserted.
        let refused = key(3500)?;
        for other_keys in [
            (0..4000).step_by(2).collect::<Vec<_>>(),
            vec![5, 2999, 3500],
        ] {
            let other: SlotMap = other_keys
                .iter()
                .map(|&n| Ok((key(n)?, slot(n))))
                .collect::<Result<_>>()?;
            let (mut joined, mut expect) = (map.clone(), model.clone());
            joined.join_with(&other, |(): &mut (), k, mine, theirs| match mine {
                Some(mine) => {
                    *mine = Arc::default();
                    Joined::Dropped
                }
                None if *k == refused => Joined::Dropped,
                None => Joined::Added(Arc::clone(theirs)),
            });
            for (k, theirs) in other.iter() {
                if expect.remove(k).is_none() && *k != refused {
                    expect.insert(k.clone(), Arc::clone(theirs));
                }
            }
            same(&joined, &expect);
        }
        Ok(())
    }

    #[test]
    fn a_walk_in_shards_joins_every_key_once_in_place() -> Result<()> {
        // Large enough for shards, run on one thread and on several whatever the machine.
        let mine: Vec<usize> = (0..2 * PARALLEL + 100).step_by(2).collect();
        let theirs: Vec<usize> = (0..2 * PARALLEL + 300).step_by(3).collect();
        let held: SlotMap = mine
            .iter()
            .map(|&n| Ok((key(n)?, slot(n))))
            .collect::<Result<_>>()?;
        let other: SlotMap = theirs
            .iter()
            .map(|&n| Ok((key(n)?, slot(n + 1))))
            .collect::<Result<_>>()?;
        let mut expect: BTreeMap<DeviceKey, Arc<Slot>> = held
            .iter()
            .map(|(k, s)| (k.clone(), Arc::clone(s)))
            .collect();
        for (k, s) in other.iter() {
            // Both: dropped when the key is a multiple of 4, else replaced; new: added.
            match expect.get_mut(k) {
                Some(_) if k.device.as_str().ends_with(['0', '4', '8']) => {
                    expect.remove(k);
                }
                Some(mine) => *mine = Arc::clone(s),
                None => {
                    expect.insert(k.clone(), Arc::clone(s));
                }
            }
        }
        // Every shard count, with its threads started and with the OS refusing them all.
        let runs = [1, 2, 3, SHARDS + 1]
            .into_iter()
            .flat_map(|c| [(c, false), (c, true)]);
        for (cores, refused) in runs {
            let mut map = held.clone();
            let walk = |map: &mut SlotMap| {
                map.walk_on(
                    &other,
                    cores,
                    |seen: &mut Vec<DeviceKey>, k, mine, theirs| {
                        seen.push(k.clone());
                        match mine {
                            Some(_) if k.device.as_str().ends_with(['0', '4', '8']) => {
                                Joined::Dropped
                            }
                            Some(mine) => {
                                *mine = Arc::clone(theirs);
                                Joined::Kept
                            }
                            None => Joined::Added(Arc::clone(theirs)),
                        }
                    },
                )
            };
            let seen = if refused {
                crate::spawn::refused::with(|| walk(&mut map))
            } else {
                walk(&mut map)
            };
            assert_eq!(seen.len(), cores.min(SHARDS), "one accumulator per shard");
            assert!(
                seen.concat().iter().eq(other.keys()),
                "every key once, in order"
            );
            same(&map, &expect);
        }
        Ok(())
    }

    #[test]
    fn lookups_in_order_survive_splits_and_emptied_chunks() -> Result<()> {
        // 10,000 keys in chunks of CHUNK; the incoming map is small enough for lookups.
        let mut map: SlotMap = (0..20_000)
            .step_by(2)
            .map(|n| Ok((key(n)?, slot(n))))
            .collect::<Result<_>>()?;
        let dropped = 1000..1600; // 300 held keys: whole chunks empty
        let incoming: Vec<usize> = [5, 6, 7]
            .into_iter()
            .chain(dropped.clone().step_by(2))
            .chain((3001..3601).step_by(2)) // 300 new keys in a few chunks: they split
            .chain([4000, 19_998, 20_001, 25_000]) // after the last key
            .collect();
        let other: SlotMap = incoming
            .iter()
            .map(|&n| Ok((key(n)?, slot(n + 1))))
            .collect::<Result<_>>()?;
        assert!(other.len() * SPARSE < map.len());
        let mut expect: BTreeMap<DeviceKey, Arc<Slot>> = map
            .iter()
            .map(|(k, s)| (k.clone(), Arc::clone(s)))
            .collect();
        for &n in &incoming {
            let theirs = other.get(&key(n)?).cloned().unwrap_or_default();
            if dropped.contains(&n) {
                expect.remove(&key(n)?);
            } else {
                expect.insert(key(n)?, theirs);
            }
        }
        let seen = map.join_with(&other, |seen: &mut usize, k, mine, theirs| {
            *seen += 1;
            let n: usize = k.device.as_str()[1..].parse().unwrap_or_default();
            match mine {
                Some(_) if dropped.contains(&n) => Joined::Dropped,
                Some(mine) => {
                    *mine = Arc::clone(theirs);
                    Joined::Kept
                }
                None => Joined::Added(Arc::clone(theirs)),
            }
        });
        assert_eq!(seen.as_slice(), [other.len()]);
        same(&map, &expect);
        Ok(())
    }

    #[test]
    fn removing_in_order_finds_keys_at_chunk_edges() -> Result<()> {
        // Each chunk's last key, then each chunk's first: a removal must not skip a chunk
        // whose edge is the next key to go.
        let mut map: SlotMap = (0..10 * CHUNK)
            .map(|n| Ok((key(n)?, slot(n))))
            .collect::<Result<_>>()?;
        let mut model: BTreeMap<DeviceKey, Arc<Slot>> = map
            .iter()
            .map(|(k, s)| (k.clone(), Arc::clone(s)))
            .collect();
        for last in [true, false] {
            let gone: Vec<DeviceKey> = map
                .chunks
                .iter()
                .filter_map(|c| if last { c.last() } else { c.first() })
                .map(|(k, _)| k.clone())
                .collect();
            gone.iter().for_each(|k| {
                model.remove(k);
            });
            map.remove_sorted(&gone);
            same(&map, &model);
        }
        Ok(())
    }

    #[test]
    fn equal_entries_are_equal_however_chunked() -> Result<()> {
        let entries: Vec<_> = (0..1000)
            .map(|n| Ok((key(n)?, slot(n))))
            .collect::<Result<_>>()?;
        let built: SlotMap = entries.iter().cloned().collect();
        let mut inserted = SlotMap::default();
        for (k, s) in entries.into_iter().rev() {
            inserted.insert(k, s);
        }
        assert_eq!(built, inserted);
        // Later entries win, as with a map.
        let later = slot(9);
        let dup: SlotMap = [
            (key(1)?, slot(1)),
            (key(0)?, slot(0)),
            (key(1)?, Arc::clone(&later)),
        ]
        .into_iter()
        .collect();
        assert_eq!(dup.len(), 2);
        assert!(dup.get(&key(1)?).is_some_and(|s| Arc::ptr_eq(s, &later)));
        Ok(())
    }
}
