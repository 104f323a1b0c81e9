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

mod causal_context;
mod version_vector;

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use causal_context::CausalContext;
pub(crate) use causal_context::deserialize_context_or_vector;
pub use version_vector::VersionVector;

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
/// no context can have seen, which a merge's shortcuts and its join would judge differently
/// (`tests/inputs.rs` checks it on damaged states).
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
