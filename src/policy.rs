//! Resolution: how concurrent values of one field become the one value a reader sees.
//!
//! Causality decides first and always: a register only ever holds writes that no other write
//! it knows of has overwritten. What is left is truly concurrent, and is settled by a stated,
//! deterministic rule, checked in this order:
//!
//! | field | rule |
//! |---|---|
//! | any | all candidates hold equal values: [`Rule::Agreed`] (no conflict) |
//! | status | a disable beats a concurrent enable: [`Rule::DisableWins`] |
//! | authentication | values holding a credential another concurrent write rotated out are excluded, [`Policy::credentials`] settling the rest: [`Rule::RetiredCredentialExcluded`] |
//! | authentication | every value holds one: the preferred value with those credentials blanked, [`Rule::RetiredCredentialUnresolved`] |
//! | authentication | otherwise [`Policy::credentials`] |
//! | other fields | [`Policy::fields`] |
//!
//! A [`Preference`] is either a replica (its latest eligible concurrent write wins; if it has
//! none, the latest stamp does) or the latest hybrid-logical-clock stamp, ties broken by dot
//! (replica id, then counter), so no two replicas can ever disagree on a winner. Eligible means
//! every candidate but those a security rule excluded.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::{Dot, ReplicaId};
use crate::fingerprint_key::FingerprintKey;
use crate::serde_text::serde_redacting;
use crate::stamp::Stamp;

/// Whose value wins a concurrent conflict that no security rule settles.
///
/// # Examples
///
/// ```
/// use failback::{Preference, ReplicaId};
/// let secondary = Preference::Replica(ReplicaId::from_u128(2));
/// assert_ne!(secondary, Preference::LatestStamp);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive] // more ways to settle a conflict may come
pub enum Preference {
    /// The highest stamp among the eligible candidates, ties broken by dot.
    #[default]
    LatestStamp,
    /// This replica's latest value among the eligible candidates; the highest stamp when it
    /// wrote none of them.
    Replica(ReplicaId),
}

/// The configurable part of conflict resolution, and of how its conflicts are reported.
///
/// # Examples
///
/// ```
/// use failback::{Policy, Preference, ReplicaId};
/// let secondary = ReplicaId::from_u128(2);
/// let policy = Policy::prefer(secondary);
/// assert_eq!(policy.credentials, Preference::Replica(secondary));
/// assert_eq!(Policy::default().fields, Preference::LatestStamp);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(remote = "Self")] // read through `serde_redacting!`, which hides keys in errors
#[non_exhaustive] // build one with `prefer` or `default`, then set fields
pub struct Policy {
    /// For status reasons between concurrent disables, capabilities, edge parent, twin leaves
    /// and metadata.
    pub fields: Preference,
    /// For concurrent credential changes that no rotation rule settles.
    pub credentials: Preference,
    /// The key a conflict shows a hidden value by (a twin or metadata value that may be a
    /// secret, a status reason that may hold one): its keyed fingerprint,
    /// `<hmac-sha256:…>`. Without one such a value shows as `<hidden>` (see
    /// [`ConflictValue::value`](crate::ConflictValue::value)). It settles nothing.
    ///
    /// Never written: a policy serialized (inside an [`Ingest`](crate::Ingest), say) leaves
    /// it out, and one read back holds none, so a key never lands in a state file beside the
    /// registry it would hide values of. Give it again after reading.
    #[serde(skip)]
    pub fingerprint_key: Option<FingerprintKey>,
}

serde_redacting!(Policy);

impl Policy {
    /// Prefer `replica` for every field and for credentials.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = failback::Policy::prefer(failback::ReplicaId::from_u128(1));
    /// assert_eq!(p.fields, p.credentials);
    /// ```
    pub fn prefer(replica: ReplicaId) -> Self {
        Self {
            fields: Preference::Replica(replica),
            credentials: Preference::Replica(replica),
            fingerprint_key: None,
        }
    }

    /// This policy, its conflicts showing hidden values by their keyed fingerprints under
    /// `key` ([`fingerprint_key`](Self::fingerprint_key)).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, FingerprintKey, Identity, Policy, Registry, ReplicaId, Section, Stamp};
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let d = DeviceKey::device("d")?;
    /// let mut one = Registry::new();
    /// one.writer(a, Stamp::new(1, 0)).create(&d, Identity::default())?;
    /// let mut two = one.clone();
    /// let set = |value: &str| Some(serde_json::Value::from(value));
    /// one.writer(a, Stamp::new(2, 0)).set_twin(&d, Section::Desired, "wifi.password", set("hunter2"))?;
    /// two.writer(b, Stamp::new(3, 0)).set_twin(&d, Section::Desired, "wifi.password", set("letmein"))?;
    ///
    /// let key = FingerprintKey::new(b"an operator's key of 32 bytes...")?;
    /// let report = one.clone().merge_with(&two, &Policy::default().with_fingerprint_key(key));
    /// let shown = &report.conflicts[0].values[0].value;
    /// assert_eq!(*shown, format!("<{}>", key.fingerprint("hunter2")));
    /// // Without a key, a password is not shown by a fingerprint a dictionary could reverse.
    /// let report = one.merge_with(&two, &Policy::default());
    /// assert_eq!(report.conflicts[0].values[0].value, "<hidden>");
    /// # Ok::<(), failback::Error>(())
    /// ```
    #[must_use]
    pub fn with_fingerprint_key(mut self, key: FingerprintKey) -> Self {
        self.fingerprint_key = Some(key);
        self
    }
}

/// The rule that settled a field, or a record's existence.
///
/// # Examples
///
/// ```
/// assert_eq!(failback::Rule::DisableWins.to_string(), "disable-wins");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Rule {
    /// Concurrent writes agreed on the value: no conflict.
    Agreed,
    /// A disable beat a concurrent enable.
    DisableWins,
    /// A delete beat concurrent updates of the same incarnation: the updates its author had
    /// not seen are listed, alike whichever side merges. A delete kept in a state written
    /// before tombstones held their author's version vector can list an update its author
    /// had seen overwritten too (its delta names the writes it removed, not those they had
    /// overwritten); the merged state is the same either way.
    DeleteWins,
    /// Candidates holding a credential rotated out by a concurrent write were excluded; when
    /// the eligible ones left differ, [`Policy::credentials`] settled them, and the exclusion
    /// is still the rule reported. A credential write rotates out what its writer saw and no
    /// longer holds, and always the credentials of its incarnation's creation that it does not
    /// hold, even when its writer had not received the creation yet.
    RetiredCredentialExcluded,
    /// Every candidate held a credential another rotated out; the preference picked one,
    /// shown with every credential another write retired blanked (a rotated-out credential
    /// never returns), and the device needs an operator (an import plan blocks it).
    RetiredCredentialUnresolved,
    /// The preferred replica's value won.
    PreferredReplica,
    /// The highest stamp won (ties broken by dot).
    LatestStamp,
    /// A twin leaf written below a concurrently written scalar (or removal) wins over it, so
    /// no concurrent child write is lost; also where the scalar is no longer held, overwritten
    /// since by a write below it that had seen it, and the leaf's write had not.
    ChildBeatsScalar,
}

impl Rule {
    /// The rule's name as written in reports.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Rule::LatestStamp.as_str(), "latest-stamp");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agreed => "agreed",
            Self::DisableWins => "disable-wins",
            Self::DeleteWins => "delete-wins",
            Self::RetiredCredentialExcluded => "retired-credential-excluded",
            Self::RetiredCredentialUnresolved => "retired-credential-unresolved",
            Self::PreferredReplica => "preferred-replica",
            Self::LatestStamp => "latest-stamp",
            Self::ChildBeatsScalar => "child-beats-scalar",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One concurrent value of a field, as resolution sees it.
///
/// # Examples
///
/// ```
/// use failback::{Candidate, Dot, ReplicaId, Stamp};
/// let c = Candidate { dot: Dot::new(ReplicaId::from_u128(1), 1), stamp: Stamp::default(), value: &3 };
/// assert_eq!(*c.value, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a, T> {
    /// The write's dot.
    pub dot: Dot,
    /// The write's stamp.
    pub stamp: Stamp,
    /// The value.
    pub value: &'a T,
}

/// Index of the winner among `candidates` (all of them eligible) and the rule, by preference.
/// `candidates` must not be empty.
pub(crate) fn by_preference<T: PartialEq>(
    candidates: &[Candidate<'_, T>],
    eligible: impl Fn(&Candidate<'_, T>) -> bool,
    preference: Preference,
) -> (usize, Rule) {
    let latest = |want: &dyn Fn(&Candidate<'_, T>) -> bool| {
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| eligible(c) && want(c))
            .max_by_key(|(_, c)| (c.stamp, c.dot))
            .map(|(i, _)| i)
    };
    let first = candidates.iter().position(&eligible).unwrap_or(0);
    let agreed = candidates
        .iter()
        .filter(|c| eligible(c))
        .all(|c| c.value == candidates[first].value);
    let any = latest(&|_| true).unwrap_or(first);
    if agreed {
        return (any, Rule::Agreed);
    }
    match preference {
        Preference::Replica(replica) => match latest(&|c| c.dot.replica == replica) {
            Some(i) => (i, Rule::PreferredReplica),
            None => (any, Rule::LatestStamp),
        },
        Preference::LatestStamp => (any, Rule::LatestStamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy's fingerprint key is never written, nor shown by `Debug`: serialized (inside
    /// an ingest's state, say) it is left out, and the policy read back holds none.
    #[test]
    fn a_fingerprint_key_is_never_written() {
        let material = *b"fingerprint-key-fingerprint-key!";
        let key = FingerprintKey::new(&material).expect("32 bytes");
        let policy = Policy::prefer(ReplicaId::from_u128(2)).with_fingerprint_key(key);
        let text = serde_json::to_string(&policy).expect("serializes");
        assert!(!text.contains("fingerprint"), "{text}");
        let read: Policy = serde_json::from_str(&text).expect("reads");
        assert_eq!(read, Policy::prefer(ReplicaId::from_u128(2)));
        let shown = format!("{policy:?}");
        assert!(
            shown.contains("fingerprint_key: Some(FingerprintKey(..))"),
            "{shown}"
        );
        assert!(!shown.contains("fingerprint-key-"), "{shown}");
    }

    /// Reports write a rule's name in JSON (serde's kebab case) and in text (`as_str`): the
    /// two must agree for every rule.
    #[test]
    fn rules_are_written_as_they_display() {
        let rules = [
            Rule::Agreed,
            Rule::DisableWins,
            Rule::DeleteWins,
            Rule::RetiredCredentialExcluded,
            Rule::RetiredCredentialUnresolved,
            Rule::PreferredReplica,
            Rule::LatestStamp,
            Rule::ChildBeatsScalar,
        ];
        for rule in rules {
            let json = serde_json::to_string(&rule).expect("serializable");
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
        }
    }

    fn cand(r: u128, millis: u64, value: &u8) -> Candidate<'_, u8> {
        Candidate {
            dot: Dot::new(ReplicaId::from_u128(r), 1),
            stamp: Stamp::new(millis, 0),
            value,
        }
    }

    #[test]
    fn preferred_replica_beats_a_later_stamp() {
        let c = [cand(1, 10, &1), cand(2, 5, &2)];
        let pref = Preference::Replica(ReplicaId::from_u128(2));
        assert_eq!(
            by_preference(&c, |_| true, pref),
            (1, Rule::PreferredReplica)
        );
        assert_eq!(
            by_preference(&c, |_| true, Preference::LatestStamp),
            (0, Rule::LatestStamp)
        );
    }

    #[test]
    fn equal_stamps_break_ties_by_dot_and_agreement_is_no_conflict() {
        let c = [cand(2, 5, &1), cand(1, 5, &2)];
        assert_eq!(
            by_preference(&c, |_| true, Preference::LatestStamp),
            (0, Rule::LatestStamp)
        );
        let same = [cand(2, 5, &1), cand(1, 9, &1)];
        assert_eq!(
            by_preference(&same, |_| true, Preference::LatestStamp).1,
            Rule::Agreed
        );
    }
}
