//! Whether two deltas hold one write, or two writes under one dot.
//!
//! An [`Ingest`](crate::Ingest) refuses an event writing a dot another event already wrote
//! ([`Error::DotReused`](crate::Error::DotReused)): a merge keeps one of two writes under one
//! dot and drops the other silently. But one write may travel in several events: a
//! `delta_since` carries every write its peer has not seen, whole slots, so a sync repeats the
//! single-write events before it, and every sync repeats the tombstones it holds. Those are
//! the same write, not a reuse: refused, two successive syncs from one source would fail.
//!
//! A write is what a delta holds under its dot, place by place: the creation, an entry of a
//! register (a twin path's or metadata key's among them), a tombstone. A later event carries
//! the same write when everything it holds under the dot, the first event to write the dot
//! held too, equal, at the same place: a sync holds what is left of a write after later writes
//! overwrote part of it, never more. An event holding more than the first under the dot, at a
//! creation or a register entry, is refused: that cannot be told from another write under the
//! dot, and the receiver, having seen the dot, would drop it unseen as overwritten. No sync
//! makes such a pair from one source's writes: a creation or a register write holds one place
//! under its dot (a credential write two, overwritten together by every later credential
//! write), so a sync holds all of it or none, and the original event after a sync that holds
//! none merges as overwritten. Only a delete's tombstones part (below).
//!
//! Tombstones are the exception: slots join them as a set, whatever the receiver has seen, so an
//! extra tombstone of the delete the first event held part of (a tombstone of the same device, with
//! the same stamp and `seen`) is applied, never dropped, and is not refused: a delete of two
//! incarnations, one of whose tombstones compaction dropped before a sync carried the other,
//! would fail with `DotReused` when the sync arrived before the delete's own event.

use serde_json::Value;

use crate::clock::Dot;
use crate::credentials::{Authentication, Fingerprint};
use crate::device::{Creation, DeviceRecord};
use crate::identity::{Capabilities, StatusValue};
use crate::key::{DeviceId, DeviceKey};
use crate::register::Entry;
use crate::registry::Registry;
use crate::slot::{Slot, Tombstone};
use crate::twin::TwinPath;

/// What a delta holds under one dot at one place.
#[derive(PartialEq)]
enum Held<'a> {
    Creation(&'a Creation),
    Status(&'a Entry<StatusValue>),
    Authentication(&'a Entry<Authentication>),
    Retired(&'a Entry<Box<[Fingerprint]>>),
    Capabilities(&'a Entry<Capabilities>),
    Parent(&'a Entry<Option<DeviceId>>),
    Twin(&'a TwinPath, &'a Entry<Option<Value>>),
    Metadata(&'a String, &'a Entry<Option<Value>>),
    Tombstone(&'a Tombstone),
}

impl Held<'_> {
    /// Whether the two are held at one place of one incarnation (their values aside).
    fn same_place(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Twin(a, _), Self::Twin(b, _)) => a == b,
            (Self::Metadata(a, _), Self::Metadata(b, _)) => a == b,
            (Self::Tombstone(a), Self::Tombstone(b)) => a.incarnation == b.incarnation,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// Whether `later` holds under `dot` anything that `first` does not hold, equal, at the same
/// place: then it is another write, or more of the write than `first` carried, which cannot be
/// told apart. Merged, the part `first` lacks would be dropped without a word (the receiver
/// has seen `dot`, so it reads the part as overwritten), so it is refused. What `later` holds
/// that `first` holds too is the same write carried again.
///
/// A tombstone is the exception: one `first` lacks, of an incarnation `first` holds no tombstone
/// of, is more of the same delete when `first` holds a tombstone of the device with the same stamp
/// and the same [`seen`](Tombstone::seen) vector (one delete gives all its tombstones both alike),
/// and slots join tombstones as a set, so it is applied, not dropped. Without such a tombstone in
/// `first` it is another write (a delete and an update under one dot), and refused.
///
/// `later` is read through its [`HeldByDot`], and `first` only at the keys where `later` holds
/// `dot`: a place is a key's, so nothing `first` holds under another key can match.
pub(crate) fn brings_more(first: &Registry, later: &HeldByDot<'_>, dot: Dot) -> bool {
    later.at(dot).iter().any(|(_, key, incarnation, x)| {
        let ours = held_at(first, key, dot);
        match x {
            Held::Tombstone(t) => {
                let tombstones = ours.iter().filter_map(|(_, y)| match y {
                    Held::Tombstone(u) => Some(*u),
                    _ => None,
                });
                let mut same_delete = false;
                for u in tombstones {
                    if u.incarnation == t.incarnation {
                        return u != *t;
                    }
                    same_delete |= u.stamp == t.stamp && u.seen == t.seen;
                }
                !same_delete
            }
            _ => !ours
                .iter()
                .any(|(i, y)| i == incarnation && x.same_place(y) && x == y),
        }
    })
}

/// What a delta holds under each of its dots, gathered in one walk: a sync repeats every
/// write an earlier sync held, and finding each repeated dot by a walk of both deltas of its
/// own made applying or restoring a sync cost the product of its dots and its keys (review
/// 67: 1.6 s for a second sync of 8,000 devices, hours at a hub's million). The other delta is
/// still read by a walk of the key's slot for each dot ([`brings_more`]): linear across
/// devices, but within one device the product of its repeated dots and its entries (review
/// 68: 60 ms for a device with 4,000 twin paths each written apart; a twin's size limits keep
/// real devices far below). Indexing the other delta whole instead would cost every
/// single-write event repeating a sync's dot a walk of the whole sync.
pub(crate) struct HeldByDot<'a> {
    /// Sorted by dot, and a dot's places in key order, as a walk of the keys finds them.
    held: Vec<(Dot, &'a DeviceKey, Dot, Held<'a>)>,
}

impl<'a> HeldByDot<'a> {
    /// Everything `registry` holds, by dot.
    pub(crate) fn new(registry: &'a Registry) -> Self {
        let mut held = Vec::new();
        for (key, slot) in registry.slots.iter() {
            slot_held(slot, &mut |dot, incarnation, h| {
                held.push((dot, key, incarnation, h));
            });
        }
        // Stable: a dot's places stay in key order.
        held.sort_by_key(|(dot, ..)| *dot);
        Self { held }
    }

    /// What is held under `dot`, with its key and incarnation.
    fn at(&self, dot: Dot) -> &[(Dot, &'a DeviceKey, Dot, Held<'a>)] {
        let start = self.held.partition_point(|(d, ..)| *d < dot);
        let end = start + self.held[start..].partition_point(|(d, ..)| *d == dot);
        &self.held[start..end]
    }

    /// The first key (in key order) under which something is held under `dot`.
    pub(crate) fn key_holding(&self, dot: Dot) -> Option<&'a DeviceKey> {
        self.at(dot).first().map(|(_, key, ..)| *key)
    }
}

/// What `registry` holds under `dot` at `key`, with its incarnation.
fn held_at<'a>(registry: &'a Registry, key: &DeviceKey, dot: Dot) -> Vec<(Dot, Held<'a>)> {
    let mut out = Vec::new();
    if let Some(slot) = registry.slots.get(key) {
        slot_held(slot, &mut |d, incarnation, h| {
            if d == dot {
                out.push((incarnation, h));
            }
        });
    }
    out
}

/// Everything a slot holds, each with its dot and incarnation.
fn slot_held<'a>(slot: &'a Slot, push: &mut impl FnMut(Dot, Dot, Held<'a>)) {
    for record in &slot.live {
        record_held(record, &mut |dot, held| push(dot, record.incarnation, held));
    }
    for tombstone in &slot.tombstones {
        push(
            tombstone.deleted,
            tombstone.incarnation,
            Held::Tombstone(tombstone),
        );
    }
}

/// Everything a record holds, each with its dot: its creation (when here) and every register
/// entry.
fn record_held<'a>(record: &'a DeviceRecord, push: &mut impl FnMut(Dot, Held<'a>)) {
    if let Some(creation) = &record.created {
        push(record.incarnation, Held::Creation(creation));
    }
    let written = record.written();
    written
        .status
        .entries()
        .iter()
        .for_each(|e| push(e.dot, Held::Status(e)));
    written
        .authentication
        .entries()
        .iter()
        .for_each(|e| push(e.dot, Held::Authentication(e)));
    written
        .retired
        .entries()
        .iter()
        .for_each(|e| push(e.dot, Held::Retired(e)));
    written
        .capabilities
        .entries()
        .iter()
        .for_each(|e| push(e.dot, Held::Capabilities(e)));
    written
        .parent
        .entries()
        .iter()
        .for_each(|e| push(e.dot, Held::Parent(e)));
    for (path, reg) in written.twin.iter() {
        reg.entries()
            .iter()
            .for_each(|e| push(e.dot, Held::Twin(path, e)));
    }
    for (name, reg) in written.metadata.iter() {
        reg.entries()
            .iter()
            .for_each(|e| push(e.dot, Held::Metadata(name, e)));
    }
}
