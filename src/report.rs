//! What a merge did: counts, conflicts and the rule that settled each, stale writes rejected.
//!
//! Reports of merges over disjoint sets of devices combine into the report of the whole
//! ([`Report::combine`]: `r(A) + r(B) = r(A ∪ B)`, commutative and associative), so shards can
//! be merged apart. Values are rendered safe: keys appear only as fingerprints, and twin and
//! metadata values that may be secrets, and status reasons that may hold one, are hidden
//! ([`ConflictValue::value`] says how).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::{Dot, ReplicaId};
use crate::key::DeviceKey;
use crate::policy::Rule;
use crate::serde_text::serde_redacting;
use crate::stamp::Stamp;

/// One concurrent value in a conflict, rendered safe to show.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Identity, Registry, ReplicaId, Section, Stamp};
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let key = DeviceKey::device("d")?;
/// let mut one = Registry::new();
/// one.writer(a, Stamp::new(1, 0)).create(&key, Identity::default())?;
/// let mut two = one.clone();
/// one.writer(a, Stamp::new(2, 0)).set_twin(&key, Section::Tags, "site", Some("oslo".into()))?;
/// two.writer(b, Stamp::new(3, 0)).set_twin(&key, Section::Tags, "site", Some("bergen".into()))?;
///
/// let report = one.merge(&two);
/// let values = &report.conflicts[0].values;
/// assert_eq!((values[0].replica, values[0].value.as_str()), (a, "\"oslo\""));
/// assert_eq!((values[1].stamp, values[1].value.as_str()), (Stamp::new(3, 0), "\"bergen\""));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConflictValue {
    /// The replica that wrote it.
    pub replica: ReplicaId,
    /// Its stamp.
    pub stamp: Stamp,
    /// The value, with secrets hidden: keys and thumbprints as their fingerprints
    /// (`sas keys=[sha256:…, sha256:…]`); twin and metadata values whose name, the name of a member of an object
    /// inside them (arrays included), or text says they may be secrets (a `password`, a
    /// `…Key`, a `sas`, text that reads as a key, a SAS token or a connection string); and a
    /// status reason whose text may hold one (`disabled (<hidden>)`).
    ///
    /// A hidden value or reason shows as `<hidden>`. Under a policy holding a
    /// [`fingerprint_key`](crate::Policy::fingerprint_key) it shows its [keyed
    /// fingerprint](crate::FingerprintKey::fingerprint) instead, `<hmac-sha256:…>`: equal
    /// values alike, and nobody without the key can test a guess against it. Never by an
    /// unsalted fingerprint, which would give a chosen secret (a Wi-Fi password) away to
    /// anyone with a dictionary, whatever its shape (a passphrase can read as a key's base64).
    ///
    /// Judged from names and text, which cannot know every
    /// secret: one under a name holding none of those words (`psk`, `bearer`), with text
    /// that reads as none of those forms, is shown whole. Name secrets as such in twins and
    /// metadata (`pskPassword`), or keep them out.
    ///
    /// The names, in any letter case, are fixed: a key holding `password`, `passwd`,
    /// `passphrase`, `secret`, `token`, `credential`, `connectionstring` or `signature`
    /// anywhere, holding `sas`, `sig` or `pwd` as a whole word (`sasUrl`, `upstream_sas`), or
    /// ending in `key`. A caller cannot add to them: the same judgement hides the value in
    /// `Debug` forms and errors, which hold no caller's settings, so a name added to a report's
    /// policy alone would still be shown whole there.
    pub value: String,
}

/// Concurrent writes to one field and how they were settled.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Identity, Registry, ReplicaId, Rule, Stamp, Status, StatusValue};
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let key = DeviceKey::device("d")?;
/// let mut one = Registry::new();
/// one.writer(a, Stamp::new(1, 0)).create(&key, Identity::default())?;
/// let mut two = one.clone();
/// one.writer(a, Stamp::new(9, 0)).set_status(&key, StatusValue::new(Status::Enabled, None))?;
/// two.writer(b, Stamp::new(5, 0)).set_status(&key, StatusValue::new(Status::Disabled, None))?;
///
/// let conflict = &one.merge(&two).conflicts[0];
/// assert_eq!((conflict.field.as_str(), conflict.rule, conflict.security), ("status", Rule::DisableWins, true));
/// assert_eq!(conflict.values[conflict.winner].replica, b); // disabled, though older
/// assert!(conflict.to_string().starts_with("d status: disable-wins"));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Conflict {
    /// The device.
    pub key: DeviceKey,
    /// The field: `status`, `authentication`, `capabilities`, `parent`, `existence`, a twin
    /// path such as `tags.site`, or `metadata.KEY`.
    pub field: String,
    /// The concurrent values, each as its write made it, in the order of their writes' dots
    /// (replica, then counter), whoever won. Under [`Rule::DeleteWins`] they are the updates
    /// the delete lost, each once as `update DOT`, and the delete itself, `deleted`, at its own
    /// dot. Under [`Rule::ChildBeatsScalar`], which weighs the settled values of a path and of
    /// the paths below it rather than one field's writes, the value at the path comes first,
    /// then each value below it as `PATH = VALUE`, in path order; a write at the path that a
    /// later write below it overwrote (the value below had not seen it) shows as
    /// `overwritten`, at the default stamp (only its replica is remembered), and the values
    /// below are those that had not seen it.
    pub values: Vec<ConflictValue>,
    /// Index of the winner in `values`: the value a read shows, but under
    /// [`Rule::RetiredCredentialUnresolved`], where a read shows it with every credential
    /// another of these writes retired blanked (the values stay as written, so that an
    /// operator sees what each side holds and what it rotated out), and under
    /// [`Rule::ChildBeatsScalar`], where a read shows every value below the path and `winner`
    /// is 1, the first of them.
    pub winner: usize,
    /// The rule that picked it.
    pub rule: Rule,
    /// Whether the field decides who can connect (status, credentials, existence).
    pub security: bool,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.key, self.field, self.rule)?;
        if let Some(winner) = self.values.get(self.winner) {
            write!(f, " -> {} (from {})", winner.value, winner.replica)?;
        }
        Ok(())
    }
}

/// Why a stale write was refused.
///
/// # Examples
///
/// ```
/// assert_eq!(failback::Stale::Reenable.to_string(), "re-enable");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Stale {
    /// It would have brought back a deleted incarnation: one arriving from a replica that
    /// missed its delete, or one held here, with writes the deleter had not seen, when the
    /// delete arrives without its tombstone (compacted away: the writes are lost to it).
    Resurrection,
    /// It would have enabled a device that a later write disabled.
    ///
    /// `re-enable` in serde forms too, as it displays (kebab case alone would make it
    /// `reenable`); `reenable`, which reports written before that said, is still read.
    #[serde(rename = "re-enable", alias = "reenable")]
    Reenable,
    /// It would have restored a key or thumbprint that a later write rotated out.
    CredentialRestore,
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Resurrection => "resurrection",
            Self::Reenable => "re-enable",
            Self::CredentialRestore => "credential-restore",
        })
    }
}

/// A stale write the merge refused.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Identity, Registry, ReplicaId, Section, Stale, Stamp};
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let key = DeviceKey::device("d")?;
/// let mut primary = Registry::new();
/// primary.writer(a, Stamp::new(1, 0)).create(&key, Identity::default())?;
/// let mut stale = primary.clone();
/// primary.writer(a, Stamp::new(2, 0)).delete(&key)?;
/// // A replica that missed the delete keeps writing to the device.
/// stale.writer(b, Stamp::new(3, 0)).set_twin(&key, Section::Tags, "site", Some("oslo".into()))?;
///
/// let report = primary.merge(&stale);
/// assert!(primary.device(&key, &Default::default()).is_none()); // still deleted
/// let rejection = &report.rejected[0];
/// assert_eq!((&rejection.key, rejection.kind), (&key, Stale::Resurrection));
/// assert_eq!(rejection.dot, primary.tombstones(&key)[0].incarnation);
/// assert!(rejection.to_string().contains("resurrection"));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Rejection {
    /// The device.
    pub key: DeviceKey,
    /// What it would have done.
    pub kind: Stale,
    /// The stale write (for a resurrection, the incarnation).
    pub dot: Dot,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: rejected stale {} from {}",
            self.key, self.kind, self.dot
        )
    }
}

/// What a merge did.
///
/// Counts are per device key: `added` (no live incarnation here before, one after), `deleted`
/// (the reverse), `updated` (live before and after, its live records changed), and
/// `unchanged`. The keys counted are those of the incoming state, and, when that state has
/// compacted deletes this side has not seen (a replica restored from an older backup), the
/// keys held here alone whose incarnations those deletes removed: the incoming state holds
/// neither those devices nor their tombstones, only its context says they were deleted, and
/// the devices this side loses are counted all the same, as `deleted`, or as `updated` where
/// another incarnation stays live. Other keys held here alone are not counted.
///
/// # Examples
///
/// ```
/// use failback::Report;
/// let mut whole = Report::default();
/// whole.added = 1;
/// let mut shard = Report::default();
/// shard.updated = 2;
/// let combined = whole.combine(shard);
/// assert_eq!((combined.added, combined.updated), (1, 2));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")] // read through `serde_redacting!`, which hides keys in errors
#[non_exhaustive] // grows with the crate: built by it, read by callers
pub struct Report {
    /// Devices that exist after the merge and did not before.
    pub added: u64,
    /// Devices that existed before and after, and whose live records changed. A device that
    /// only gains the delete of an incarnation this side never held is not updated: its
    /// records and its read are as they were (the delete is stored all the same, and
    /// [`state_changed`](Self::state_changed) says so).
    pub updated: u64,
    /// Devices that existed before and do not after.
    pub deleted: u64,
    /// Keys of the incoming state whose live records the merge left as they were (a delete
    /// they gain alone is stored, and counted here): devices and modules, and keys that hold
    /// only deletes.
    pub unchanged: u64,
    /// Concurrent writes in the devices this merge changed, sorted (by device, then field:
    /// their `Ord`). A delete that won over updates is listed whichever side deleted, so also
    /// where this side had deleted the device before and the incoming state holds updates the
    /// delete had not seen (the incarnation is then also a refused resurrection, in
    /// `rejected`). The updates named are those no delete had seen (its tombstone's
    /// [`seen`](crate::Tombstone::seen)), whatever its side merged after it: the updater's
    /// merge of the deleter's state names what the updater loses, though the deleter has
    /// since merged the update. A side whose context already includes the incoming state's
    /// reads no record and lists nothing.
    pub conflicts: Vec<Conflict>,
    /// Stale writes refused, sorted (by device, then kind, then dot: their `Ord`). A
    /// resurrection is listed whenever the incoming state still holds an incarnation this
    /// side deleted (unless its context is included here: such a merge reads no record). A
    /// re-enable or a credential restore is listed for the devices this merge
    /// changed, where the stale value met new writes: a lagging replica holds the value every
    /// later write overwrote, and listing each of those on every merge would bury the ones
    /// that came with a change. Either way the value is refused.
    pub rejected: Vec<Rejection>,
    /// Whether this side's state changed: its causal context or its stable vector grew, and
    /// with them perhaps its devices. False only when the incoming state was already included
    /// here, which leaves everything as it was. A merge can change the state while no device
    /// count moves: a delete of a device this side never held adds its tombstone, a write
    /// already overwritten here adds its dot. A service that stores its registry after merges
    /// stores it when this is true: skipping a store because no device changed would forget
    /// the delete, and a stale copy of the device, merged after a restart, would then stand.
    #[serde(default)]
    pub state_changed: bool,
}

serde_redacting!(Report);

/// What a merge did to one key, as a [`Report`] counts it ([`Report::count`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A device exists after the merge and did not before.
    Added,
    /// A device existed before and does not after.
    Deleted,
    /// A device existed before and after, and its live records changed.
    Updated,
    /// The key's live records are as they were.
    Unchanged,
}

impl Outcome {
    /// The outcome for a key whose device was live before (`was_live`) and is after
    /// (`is_live`), and whose live records `changed` or not.
    #[inline]
    pub(crate) fn of(was_live: bool, is_live: bool, changed: bool) -> Self {
        match (was_live, is_live) {
            (false, true) => Self::Added,
            (true, false) => Self::Deleted,
            (true, true) if changed => Self::Updated,
            _ => Self::Unchanged,
        }
    }
}

impl Report {
    /// The report of merging both key sets: counts add up, lists merge in order.
    /// `a.combine(b) = b.combine(a)`, `(a + b) + c = a + (b + c)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::Report;
    /// let mut a = Report::default();
    /// a.deleted = 1;
    /// assert_eq!(a.clone().combine(Report::default()), a);
    /// ```
    pub fn combine(mut self, other: Report) -> Report {
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.conflicts.extend(other.conflicts);
        self.conflicts.sort();
        self.rejected.extend(other.rejected);
        self.rejected.sort();
        self.state_changed |= other.state_changed;
        self
    }

    /// Counts one key's `outcome`.
    #[inline]
    pub(crate) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Added => self.added += 1,
            Outcome::Deleted => self.deleted += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }

    /// Whether the merge changed nothing: not [`state_changed`](Self::state_changed). A merge
    /// that changed no device may still have changed the state.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// assert!(failback::Report::default().is_unchanged());
    ///
    /// // Another replica creates and deletes a device this one never held.
    /// let mut other = Registry::new();
    /// let mut writer = other.writer(ReplicaId::from_u128(2), Stamp::default());
    /// let key = DeviceKey::device("d")?;
    /// writer.create(&key, Identity::default())?;
    /// writer.delete(&key)?;
    /// let mut here = Registry::new();
    /// let report = here.merge(&other);
    /// assert_eq!((report.added, report.deleted), (0, 0));
    /// assert!(!report.is_unchanged()); // the delete is known here now
    /// assert!(here.merge(&other).is_unchanged());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn is_unchanged(&self) -> bool {
        !self.state_changed
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} added, {} updated, {} deleted, {} unchanged, {} conflicts, {} stale writes rejected",
            self.added,
            self.updated,
            self.deleted,
            self.unchanged,
            self.conflicts.len(),
            self.rejected.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's outcome is decided by whether its device was live before and after, and only
    /// a device live on both sides is updated or unchanged by whether its records changed.
    #[test]
    fn outcomes_are_counted_where_the_report_names_them() {
        let mut report = Report::default();
        for (was_live, is_live, changed) in [
            (false, true, false),
            (true, false, true),
            (true, true, true),
            (true, true, false),
            (false, false, true),
        ] {
            report.count(Outcome::of(was_live, is_live, changed));
        }
        assert_eq!(
            (
                report.added,
                report.deleted,
                report.updated,
                report.unchanged
            ),
            (1, 1, 1, 2)
        );
    }

    /// A report's JSON and its text name a refusal alike (`reenable` in JSON and `re-enable`
    /// in text before this was checked).
    #[test]
    fn stale_kinds_are_written_as_they_display() {
        for kind in [
            Stale::Resurrection,
            Stale::Reenable,
            Stale::CredentialRestore,
        ] {
            let json = serde_json::to_string(&kind).expect("serializable");
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(
                serde_json::from_str::<Stale>(&json).expect("readable"),
                kind
            );
        }
        let old: Stale = serde_json::from_str("\"reenable\"").expect("the earlier name");
        assert_eq!(old, Stale::Reenable);
    }
}
