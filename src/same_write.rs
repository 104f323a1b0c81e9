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
use crate::register::{Entry, MvRegister};
use crate::registry::Registry;
use crate::slot::Tombstone;
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
pub(crate) fn brings_more(first: &Registry, later: &Registry, dot: Dot) -> bool {
    let first = held(first, dot);
    let tombstones_of = |key: &DeviceKey| -> Vec<&Tombstone> {
        first
            .iter()
            .filter_map(|(k, _, y)| match y {
                Held::Tombstone(t) if *k == key => Some(*t),
                _ => None,
            })
            .collect()
    };
    held(later, dot)
        .iter()
        .any(|(key, incarnation, x)| match x {
            Held::Tombstone(t) => {
                let ours = tombstones_of(key);
                match ours.iter().find(|u| u.incarnation == t.incarnation) {
                    Some(u) => u != t,
                    None => !ours.iter().any(|u| u.stamp == t.stamp && u.seen == t.seen),
                }
            }
            _ => !first
                .iter()
                .any(|(k, i, y)| k == key && i == incarnation && x.same_place(y) && x == y),
        })
}

/// The first key (in key order) under which `registry` holds something under `dot`.
pub(crate) fn key_holding(registry: &Registry, dot: Dot) -> Option<&DeviceKey> {
    held(registry, dot).first().map(|(key, _, _)| *key)
}

/// Everything `registry` holds under `dot`, with its key and incarnation.
fn held(registry: &Registry, dot: Dot) -> Vec<(&DeviceKey, Dot, Held<'_>)> {
    let mut out = Vec::new();
    for (key, slot) in registry.slots.iter() {
        for record in &slot.live {
            record_held(record, dot, &mut |held| {
                out.push((key, record.incarnation, held));
            });
        }
        for tombstone in slot.tombstones.iter().filter(|t| t.deleted == dot) {
            out.push((key, tombstone.incarnation, Held::Tombstone(tombstone)));
        }
    }
    out
}

fn record_held<'a>(record: &'a DeviceRecord, dot: Dot, push: &mut impl FnMut(Held<'a>)) {
    fn at<T: Clone>(reg: &MvRegister<T>, dot: Dot) -> Option<&Entry<T>> {
        reg.entries().iter().find(|e| e.dot == dot)
    }
    if record.incarnation == dot {
        if let Some(creation) = &record.created {
            push(Held::Creation(creation));
        }
    }
    let written = record.written();
    if let Some(entry) = at(&written.status, dot) {
        push(Held::Status(entry));
    }
    if let Some(entry) = at(&written.authentication, dot) {
        push(Held::Authentication(entry));
    }
    if let Some(entry) = at(&written.retired, dot) {
        push(Held::Retired(entry));
    }
    if let Some(entry) = at(&written.capabilities, dot) {
        push(Held::Capabilities(entry));
    }
    if let Some(entry) = at(&written.parent, dot) {
        push(Held::Parent(entry));
    }
    for (path, reg) in written.twin.iter() {
        if let Some(entry) = at(reg, dot) {
            push(Held::Twin(path, entry));
        }
    }
    for (name, reg) in written.metadata.iter() {
        if let Some(entry) = at(reg, dot) {
            push(Held::Metadata(name, entry));
        }
    }
}
