//! A delete's record, [`Tombstone`], and the delete-wins conflict it names: the updates no
//! delete of the incarnation had seen.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::clock::{CausalContext, Dot, VersionVector};
use crate::device::DeviceRecord;
use crate::key::DeviceKey;
use crate::policy::Rule;
use crate::report::{Conflict, ConflictValue};
use crate::serde_text::serde_redacting;
use crate::stamp::Stamp;

/// The record of a delete: which incarnation it removed, when, and what its writer had seen.
///
/// # Examples
///
/// ```
/// use failback::{Dot, DeviceKey, Identity, Registry, ReplicaId, Stamp};
/// let r = ReplicaId::from_u128(1);
/// let mut registry = Registry::new();
/// let key = DeviceKey::device("d")?;
/// registry.writer(r, Stamp::new(1, 0)).create(&key, Identity::default())?;
/// registry.writer(r, Stamp::new(2, 0)).delete(&key)?;
/// let tombstone = &registry.tombstones(&key)[0];
/// assert_eq!((tombstone.incarnation.counter, tombstone.deleted.counter), (1, 2));
/// // The deleter had seen the creation, and not yet its own delete.
/// let seen = tombstone.seen.as_deref().expect("a writer keeps what it had seen");
/// assert!(seen.contains(Dot::new(r, 1)));
/// assert!(!seen.contains(tombstone.deleted));
/// # Ok::<(), failback::Error>(())
/// ```
// `seen` is left out when not kept, so an unknown member is refused: `sene` read as a delete
// that kept nothing. Read through `serde_redacting!`: an unknown member's name could be a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Tombstone {
    /// The incarnation removed.
    #[serde(deserialize_with = "crate::clock::deserialize_write_dot")]
    pub incarnation: Dot,
    /// The delete's dot.
    #[serde(deserialize_with = "crate::clock::deserialize_write_dot")]
    pub deleted: Dot,
    /// The delete's stamp.
    pub stamp: Stamp,
    /// The deleter's causal context just before the delete: the writes it had seen, so knew
    /// it was removing (or had seen overwritten). Only reports read it: a delete-wins conflict
    /// names the updates no delete of the incarnation had seen, whatever the deleting side
    /// merged since. It is what a delete's delta cannot say otherwise: the delta's context
    /// claims the dots the delete removed, while the register writes those overwrote are held
    /// nowhere, so a replica still holding one could not tell it from an update made
    /// concurrently. `None` in states written before it was kept; then every update the
    /// deleting side's context had not seen is named. Kept even when empty: read as not kept,
    /// an empty one would fall back to the deleting side's context, and name none of the
    /// updates the deleter merged after the delete.
    ///
    /// A context, not only its vector: a write its deleter received out of order (beyond a
    /// gap, as events arrive) was seen too, and the vector alone would name it lost. States
    /// that kept only the vector still read, as the context of its dots.
    ///
    /// Shared: all of one delete's tombstones hold one context, and a merge that takes a
    /// tombstone copies a pointer, not the context (copying it cost a delta merge 3% more
    /// instructions, an allocation for each delete it took).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::clock::deserialize_context_or_vector"
    )]
    pub seen: Option<Arc<CausalContext>>,
}

serde_redacting!(Tombstone);

impl Tombstone {
    /// Whether a replica whose version vector is `vector` has seen both the delete and the
    /// incarnation it removed. The one question [`Slot::is_known_to`](super::Slot::is_known_to),
    /// [`Slot::has_stable_tombstones`](super::Slot::has_stable_tombstones) and
    /// [`Slot::purge`](super::Slot::purge) ask: `Slot::absorbs` is right only while they agree.
    #[inline]
    pub(crate) fn is_covered_by(&self, vector: &VersionVector) -> bool {
        vector.contains(self.deleted) && vector.contains(self.incarnation)
    }
}

/// Ordered by what names the delete (incarnation, dot, stamp), then by `seen`, entry by entry:
/// slots keep tombstones sorted and searched, and two copies of one delete read from different
/// sources (one written before `seen` was kept) stay apart rather than one of them dropped.
impl Ord for Tombstone {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.incarnation, self.deleted, self.stamp)
            .cmp(&(other.incarnation, other.deleted, other.stamp))
            .then_with(|| match (self.seen.as_deref(), other.seen.as_deref()) {
                (Some(mine), Some(theirs)) => (mine.vector().iter())
                    .cmp(theirs.vector().iter())
                    .then_with(|| mine.cloud().cmp(theirs.cloud())),
                (mine, theirs) => mine.is_some().cmp(&theirs.is_some()),
            })
    }
}

impl PartialOrd for Tombstone {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The delete a delete-wins conflict names: the first of `incarnation`'s tombstones in their
/// order, so that both merge directions name the same one when several replicas deleted it.
pub(super) fn first_delete(tombstones: &[Tombstone], incarnation: Dot) -> Option<&Tombstone> {
    tombstones.iter().find(|t| t.incarnation == incarnation)
}

/// The writes `record` holds that a delete of its incarnation lost, in dot order, each once:
/// those none of the deletes of the incarnation (`deleter_tombstones`' [`Tombstone::seen`])
/// had seen; for tombstones written before `seen` was kept, those the deleting side
/// (`deleter_ctx`) has not seen. Never the creation: every delete saw it.
///
/// What the deletes saw, not what their side has seen since: a whole state's context also
/// holds the updates its author merged after the delete, so a replica merging the deleter's
/// state after the deleter had merged its update would see the update removed unreported,
/// where the delete's delta names it. Nor the context alone before the delete: a delete's
/// delta holds only the dots it removed, not the registers' pasts, so an update the deleter
/// had seen overwritten would be named too. Nor the deletes' vectors alone: a write the
/// deleter received out of order, beyond a gap, would be named though it had seen it.
///
/// Each write once: a credential write holds its dot in two registers (the credentials and
/// what they retired), and a lost rotation would otherwise be named twice.
pub(super) fn lost_updates(
    record: &DeviceRecord,
    deleter_ctx: &CausalContext,
    deleter_tombstones: &[Tombstone],
) -> Vec<(Dot, Stamp)> {
    let seen: SmallVec<[&CausalContext; 1]> = deleter_tombstones
        .iter()
        .filter(|t| t.incarnation == record.incarnation)
        .filter_map(|t| t.seen.as_deref())
        .collect();
    let mut lost = record.writes();
    // The creation is no update, and every delete of it had seen it, though a vector can
    // leave it out (created beyond a gap in what its deleter had received).
    lost.retain(|&(dot, _)| dot != record.incarnation);
    if seen.is_empty() {
        lost.retain(|&(dot, _)| !deleter_ctx.contains(dot));
    } else {
        lost.retain(|&(dot, _)| !seen.iter().any(|seen| seen.contains(dot)));
    }
    lost.sort_unstable();
    lost.dedup_by_key(|(dot, _)| *dot);
    lost
}

/// The `existence` conflict of a delete that won over the `lost` updates (in dot order): each
/// named `update DOT`, and the delete, `deleted`, the winner, among them at its own dot, so the
/// values are in dot order as every conflict's are ([`Conflict::values`]).
pub(super) fn delete_win(key: &DeviceKey, lost: Vec<(Dot, Stamp)>, delete: &Tombstone) -> Conflict {
    let winner = lost.partition_point(|&(dot, _)| dot < delete.deleted);
    let mut values: Vec<ConflictValue> = lost
        .into_iter()
        .map(|(dot, stamp)| ConflictValue {
            replica: dot.replica,
            stamp,
            value: format!("update {dot}"),
        })
        .collect();
    values.insert(
        winner,
        ConflictValue {
            replica: delete.deleted.replica,
            stamp: delete.stamp,
            value: "deleted".into(),
        },
    );
    Conflict {
        key: key.clone(),
        field: "existence".into(),
        values,
        winner,
        rule: Rule::DeleteWins,
        security: true,
    }
}
