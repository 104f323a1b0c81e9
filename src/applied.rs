//! The events an ingest has applied, by id: a hash table that keeps each id's hash.
//!
//! Why not a `HashMap<EventId, _>` (2026-11): ingestion asks about one id per event, and a
//! map built up from empty rehashes every id it holds each time it grows. With SipHash (kept:
//! ids come from outside, and a keyed hash is what stops a sender from choosing colliding ids)
//! an id's hash cost about 190 instructions, and growing the map re-hashed them all, 290
//! instructions an event amortised. Each entry keeps its id's hash, so growing reads it
//! instead, and an id is hashed once, when it arrives.
//!
//! Nothing here is read in hash order: the ingest sorts ids wherever it shows them.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::ingest::EventId;
use crate::registry::Registry;

/// Applied events: each id with the delta its event carried.
#[derive(Clone, Default)]
pub(crate) struct Applied {
    /// SipHash with keys drawn for this table.
    keys: RandomState,
    table: HashTable<Remembered>,
}

#[derive(Clone)]
struct Remembered {
    hash: u64,
    id: EventId,
    delta: Arc<Registry>,
}

/// What the table knows of an id ([`Applied::lookup`]).
pub(crate) enum Lookup<'a> {
    /// Not applied yet; [`Applied::remember`] records it.
    Unseen(Unseen),
    /// Applied, with this delta.
    Applied(&'a Arc<Registry>),
}

/// An id not applied yet, hashed: the table is not borrowed meanwhile, so an ingest can read
/// other events' deltas before it records this one.
pub(crate) struct Unseen {
    hash: u64,
}

impl Applied {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether `id` was applied, and with which delta.
    pub(crate) fn lookup(&self, id: &EventId) -> Lookup<'_> {
        let hash = self.keys.hash_one(id);
        match self.table.find(hash, |r| r.id == *id) {
            Some(seen) => Lookup::Applied(&seen.delta),
            None => Lookup::Unseen(Unseen { hash }),
        }
    }

    /// Records `id`, which [`lookup`](Self::lookup) found `unseen` (and nothing recorded
    /// since), as applied with `delta`.
    pub(crate) fn remember(&mut self, unseen: Unseen, id: EventId, delta: Arc<Registry>) {
        self.table.insert_unique(
            unseen.hash,
            Remembered {
                hash: unseen.hash,
                id,
                delta,
            },
            |r| r.hash,
        );
    }

    /// The delta applied under `id`.
    pub(crate) fn get(&self, id: &EventId) -> Option<&Arc<Registry>> {
        let hash = self.keys.hash_one(id);
        self.table.find(hash, |r| r.id == *id).map(|r| &r.delta)
    }

    /// Records `id` as applied with `delta`, replacing what it held (restoring an ingest).
    pub(crate) fn insert(&mut self, id: EventId, delta: Arc<Registry>) {
        let hash = self.keys.hash_one(&id);
        match self
            .table
            .entry(hash, |r| r.id == id, |r: &Remembered| r.hash)
        {
            Entry::Occupied(held) => held.into_mut().delta = delta,
            Entry::Vacant(entry) => {
                entry.insert(Remembered { hash, id, delta });
            }
        }
    }

    /// Keeps the events for which `keep` holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&EventId, &Registry) -> bool) {
        self.table.retain(|r| keep(&r.id, &r.delta));
    }

    /// Every event, in no particular order: callers sort what they show.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&EventId, &Arc<Registry>)> {
        self.table.iter().map(|r| (&r.id, &r.delta))
    }
}

/// Equal when the same ids were applied with equal deltas, whatever each table's hash keys.
impl PartialEq for Applied {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(id, delta)| other.get(id).is_some_and(|theirs| theirs == delta))
    }
}

impl Eq for Applied {}

impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted: Vec<_> = self.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        f.debug_map().entries(sorted).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> EventId {
        EventId::new(format!("evt-{n}"))
    }

    #[test]
    fn finds_every_id_after_growing_and_forgets_what_retain_drops() {
        let mut applied = Applied::default();
        let delta = Arc::new(Registry::new());
        for n in 0..1000 {
            match applied.lookup(&id(n)) {
                Lookup::Unseen(unseen) => applied.remember(unseen, id(n), Arc::clone(&delta)),
                Lookup::Applied(_) => panic!("evt-{n} reported applied before it was"),
            }
        }
        assert_eq!(applied.len(), 1000);
        assert!((0..1000).all(|n| applied.get(&id(n)).is_some()));
        assert!(matches!(applied.lookup(&id(7)), Lookup::Applied(_)));
        applied.retain(|id, _| id.as_str().ends_with('0'));
        assert_eq!(applied.len(), 100);
        assert!(applied.get(&id(10)).is_some() && applied.get(&id(11)).is_none());
    }

    #[test]
    fn equality_ignores_hash_keys_and_order() {
        let (mut a, mut b) = (Applied::default(), Applied::default());
        let delta = Arc::new(Registry::new());
        (0..50).for_each(|n| a.insert(id(n), Arc::clone(&delta)));
        (0..50)
            .rev()
            .for_each(|n| b.insert(id(n), Arc::clone(&delta)));
        assert_eq!(a, b);
        // Shown sorted by id, so two tables of the same events print alike.
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        b.insert(id(50), Arc::clone(&delta));
        assert_ne!(a, b);
    }
}
