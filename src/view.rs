//! Reading a device: concurrent values resolved by the [`Policy`], conflicts listed.
//!
//! A key can have more than one live incarnation when two replicas created it concurrently;
//! their fields are read as one device, each field's candidates drawn from every incarnation
//! (created on both sides, their fields merge with no common base).

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Dot;
use crate::credentials::{Authentication, Fingerprint};
use crate::device::{Creation, DeviceRecord};
use crate::fingerprint_key::FingerprintKey;
use crate::identity::Identity;
use crate::identity::{Capabilities, ShownStatus, Status, StatusValue};
use crate::key::{DeviceId, DeviceKey};
use crate::policy::{Candidate, Policy, Rule, by_preference};
use crate::register::MvRegister;
use crate::report::{Conflict, ConflictValue};
use crate::serde_text::serde_redacting;
use crate::twin::{self, Section, TwinPath};

mod json_values;

use json_values::{resolve_metadata, resolve_twin};

/// A device as a reader sees it: one value per field.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp, Status};
///
/// let mut registry = Registry::new();
/// let key = DeviceKey::device("d1")?;
/// registry.writer(ReplicaId::from_u128(1), Stamp::new(1, 0)).create(&key, Identity::default())?;
/// let device = registry.device(&key, &Policy::default()).expect("live");
/// assert_eq!(device.status.status, Status::Enabled);
/// assert!(device.conflicts.is_empty());
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")] // read through `serde_redacting!`, which hides keys in errors
#[non_exhaustive] // grows with the crate: built by it, read by callers
pub struct Device {
    /// The device's key.
    pub key: DeviceKey,
    /// Status and reason.
    pub status: StatusValue,
    /// Authentication.
    pub authentication: Authentication,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// The edge parent's device id.
    pub parent: Option<DeviceId>,
    /// Twin tags.
    pub tags: Map<String, Value>,
    /// Desired properties.
    pub desired: Map<String, Value>,
    /// Reported properties.
    pub reported: Map<String, Value>,
    /// Application metadata.
    pub metadata: BTreeMap<String, Value>,
    /// The live incarnations, in dot order (more than one after concurrent creates).
    pub incarnations: Vec<Dot>,
    /// Whether a write arrived before its incarnation's creation (fields the creation would
    /// set read as defaults until it arrives).
    pub pending: bool,
    /// Every field with concurrent values, and how it was settled.
    pub conflicts: Vec<Conflict>,
}

serde_redacting!(Device);

/// Every field as a derived `Debug` shows it, but twin and metadata values, each shown as a
/// report shows it: by its fingerprint where it may be a secret (judged as
/// [`Conflict`]'s values are).
impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Taken apart, so that a field added to the device is added here too.
        let Self {
            key,
            status,
            authentication,
            capabilities,
            parent,
            tags,
            desired,
            reported,
            metadata,
            incarnations,
            pending,
            conflicts,
        } = self;
        f.debug_struct("Device")
            .field("key", key)
            .field("status", status)
            .field("authentication", authentication)
            .field("capabilities", capabilities)
            .field("parent", parent)
            .field("tags", &twin::ShownObject::section(tags))
            .field("desired", &twin::ShownObject::section(desired))
            .field("reported", &twin::ShownObject::section(reported))
            .field("metadata", &twin::ShownValues(metadata))
            .field("incarnations", incarnations)
            .field("pending", pending)
            .field("conflicts", conflicts)
            .finish()
    }
}

impl Device {
    /// A twin section.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Section, Stamp};
    /// let mut registry = Registry::new();
    /// let key = DeviceKey::device("d1")?;
    /// let identity = Identity::default().with_twin(Section::Tags, serde_json::json!({"site": "x"}))?;
    /// registry.writer(ReplicaId::from_u128(1), Stamp::default()).create(&key, identity)?;
    /// let device = registry.device(&key, &Policy::default()).expect("live");
    /// assert_eq!(device.section(Section::Tags)["site"], "x");
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn section(&self, section: Section) -> &Map<String, Value> {
        match section {
            Section::Tags => &self.tags,
            Section::Desired => &self.desired,
            Section::Reported => &self.reported,
        }
    }
}

/// Candidates of a whole-value field: each incarnation's register entries, or its creation
/// value where the register is empty; in dot order, as a conflict lists them. One record's are
/// (a register keeps its entries so); several records' are sorted, or a write to one
/// incarnation would come before another incarnation's earlier creation.
fn candidates<'a, T>(
    records: &'a [DeviceRecord],
    register: impl Fn(&'a DeviceRecord) -> &'a MvRegister<T>,
    initial: impl Fn(&'a Identity) -> &'a T,
) -> Vec<Candidate<'a, T>>
where
    T: Clone + 'a,
{
    let mut out = Vec::new();
    for record in records {
        let reg = register(record);
        if reg.is_empty() {
            if let Some(created) = record.created.as_deref() {
                out.push(Candidate {
                    dot: record.incarnation,
                    stamp: created.stamp,
                    value: initial(&created.identity),
                });
            }
        } else {
            out.extend(reg.entries().iter().map(|e| Candidate {
                dot: e.dot,
                stamp: e.stamp,
                value: &e.value,
            }));
        }
    }
    if records.len() > 1 {
        out.sort_by_key(|c| c.dot);
    }
    out
}

struct Resolver<'a> {
    key: &'a DeviceKey,
    policy: &'a Policy,
    conflicts: Vec<Conflict>,
}

impl<'a> Resolver<'a> {
    /// The key hidden values are shown by ([`Policy::fingerprint_key`]).
    fn fingerprint_key(&self) -> Option<&'a FingerprintKey> {
        self.policy.fingerprint_key.as_ref()
    }

    /// Records a conflict unless the candidates agreed, and returns the winner's index.
    /// `candidates` are in dot order, which the conflict keeps ([`Conflict::values`]).
    fn settle<T>(
        &mut self,
        field: impl FnOnce() -> String,
        candidates: &[Candidate<'_, T>],
        (winner, rule): (usize, Rule),
        security: bool,
        show: impl Fn(&T) -> String,
    ) -> usize {
        debug_assert!(
            candidates.windows(2).all(|w| w[0].dot <= w[1].dot),
            "candidates for {} not in dot order",
            self.key
        );
        if rule != Rule::Agreed && candidates.len() > 1 {
            self.conflicts.push(Conflict {
                key: self.key.clone(),
                field: field(),
                values: candidates
                    .iter()
                    .map(|c| ConflictValue {
                        replica: c.dot.replica,
                        stamp: c.stamp,
                        value: show(c.value),
                    })
                    .collect(),
                winner,
                rule,
                security,
            });
        }
        winner
    }

    fn plain<T: Clone + PartialEq + Display>(
        &mut self,
        field: &str,
        candidates: &[Candidate<'_, T>],
    ) -> Option<T> {
        if candidates.is_empty() {
            return None;
        }
        let outcome = by_preference(candidates, |_| true, self.policy.fields);
        let i = self.settle(
            || field.to_owned(),
            candidates,
            outcome,
            false,
            ToString::to_string,
        );
        Some(candidates[i].value.clone())
    }

    fn status(&mut self, candidates: &[Candidate<'_, StatusValue>]) -> Option<StatusValue> {
        if candidates.is_empty() {
            return None;
        }
        let disabled = |c: &Candidate<'_, StatusValue>| c.value.status == Status::Disabled;
        let mixed = candidates.iter().any(disabled) && !candidates.iter().all(disabled);
        let outcome = if mixed {
            (
                by_preference(candidates, disabled, self.policy.fields).0,
                Rule::DisableWins,
            )
        } else {
            by_preference(candidates, |_| true, self.policy.fields)
        };
        let key = self.fingerprint_key();
        let show = |value: &StatusValue| ShownStatus { value, key }.to_string();
        let i = self.settle(|| "status".into(), candidates, outcome, true, show);
        Some(candidates[i].value.clone())
    }

    fn authentication(
        &mut self,
        candidates: &[Candidate<'_, Authentication>],
        retired: &[(Dot, &[Fingerprint])],
    ) -> Option<Authentication> {
        if candidates.is_empty() {
            return None;
        }
        // A candidate is out if it holds a credential that some *other* write rotated out;
        // the write that retired a credential never holds it itself. A key is compared in
        // every spelling of its bytes: a retired list an earlier build stored holds the
        // fingerprint of the spelling that build held, which may not be the canonical one.
        let clean = |c: &Candidate<'_, Authentication>| {
            // Most records have retired nothing: their credentials need no hashing.
            if retired.is_empty() {
                return true;
            }
            let held = c.value.fingerprints_of_every_spelling();
            retired
                .iter()
                .filter(|(dot, _)| *dot != c.dot)
                .all(|(_, gone)| gone.iter().all(|f| held.binary_search(f).is_err()))
        };
        // Each candidate is hashed once (a key in up to 16 spellings), not again each time
        // `by_preference` weighs it. Candidates' dots are distinct (one register entry or one
        // creation each), so a dot names one.
        let clean_dots: Vec<Dot> = candidates
            .iter()
            .filter(|c| clean(c))
            .map(|c| c.dot)
            .collect();
        let clean = |c: &Candidate<'_, Authentication>| clean_dots.contains(&c.dot);
        let preference = self.policy.credentials;
        let outcome = match clean_dots.len() {
            0 => (
                by_preference(candidates, |_| true, preference).0,
                Rule::RetiredCredentialUnresolved,
            ),
            n if n == candidates.len() => by_preference(candidates, |_| true, preference),
            // The exclusion is what a reader must hear of, whether the clean values agreed or
            // the preference settled them: reported under the preference's rule, a stale
            // restore beside two rotations would name no exclusion, and under a preference for
            // the excluded writer would read as if it had written nothing.
            _ => (
                by_preference(candidates, clean, preference).0,
                Rule::RetiredCredentialExcluded,
            ),
        };
        let unresolved = outcome.1 == Rule::RetiredCredentialUnresolved;
        let i = self.settle(
            || "authentication".into(),
            candidates,
            outcome,
            true,
            ToString::to_string,
        );
        let winner = &candidates[i];
        if !unresolved {
            return Some(winner.value.clone());
        }
        // Crossed rotations: every candidate holds a credential that another concurrent write
        // rotated out, so none is safe to show as it is. Showing the preferred one whole would
        // bring a rotated-out key back from a replica that never saw the rotation, which the
        // security rules forbid; it is shown with every such credential blanked instead, and
        // the conflict stays flagged for an operator (an import plan blocks it).
        // (Found by the `rotated_out_credential_never_returns` property.)
        let gone: Vec<Fingerprint> = retired
            .iter()
            .filter(|(dot, _)| *dot != winner.dot)
            .flat_map(|(_, gone)| gone.iter().copied())
            .collect();
        Some(without(winner.value, &gone))
    }
}

/// For each credential write to an incarnation, the credentials of that incarnation's
/// creation it does not keep: it replaced them, whether or not its writer saw them.
///
/// A writer retires what it saw (`DeviceRecord::set_authentication`), but a writer holding a
/// *pending* record (a later write arrived before the creation) never saw the creation's keys,
/// so its rotation retired none of them; a stale replica's concurrent write still holding the
/// creation's key would then win as an ordinary conflict, and the key the rotation replaced
/// be back in use. Every credential write to an incarnation overwrites
/// its creation's value, so these retirements follow from the state alone, which keeps the
/// read a function of the state and the merge's laws untouched. For a writer that saw the
/// creation they repeat what it retired.
///
/// Writers refuse most writes over a pending record
/// ([`Error::PendingDevice`](crate::Error::PendingDevice)), but not a credential change: a
/// rotation must not wait for a creation that may be slow to arrive, and this is what makes it
/// safe.
fn superseded_creations(records: &[DeviceRecord]) -> Vec<(Dot, Vec<Fingerprint>)> {
    let mut out = Vec::new();
    for record in records {
        let written = &record.written().authentication;
        let Some(created) = record.creation().filter(|_| !written.is_empty()) else {
            continue;
        };
        let initial = created.identity.authentication.fingerprints();
        if initial.is_empty() {
            continue;
        }
        for entry in written.entries() {
            let kept = entry.value.fingerprints();
            let gone: Vec<Fingerprint> = initial
                .iter()
                .copied()
                .filter(|f| kept.binary_search(f).is_err())
                .collect();
            if !gone.is_empty() {
                out.push((entry.dot, gone));
            }
        }
    }
    out
}

/// `auth` with every key and thumbprint whose fingerprint is in `gone` removed, a key's in any
/// spelling of its bytes (as `Resolver::authentication` compares them with retired lists).
fn without(auth: &Authentication, gone: &[Fingerprint]) -> Authentication {
    let mut out = auth.clone();
    if let Some(keys) = &mut out.keys {
        for slot in [&mut keys.primary, &mut keys.secondary] {
            if slot.as_ref().is_some_and(|k| {
                k.fingerprints_of_every_spelling()
                    .any(|f| gone.contains(&f))
            }) {
                *slot = None;
            }
        }
    }
    if let Some(thumbprints) = &mut out.thumbprints {
        for slot in [&mut thumbprints.primary, &mut thumbprints.secondary] {
            if slot
                .as_ref()
                .is_some_and(|t| gone.contains(&Fingerprint::of(t.as_str())))
            {
                *slot = None;
            }
        }
    }
    out
}

/// Resolves the live incarnations of `key`; `None` when there are none.
pub(crate) fn resolve(
    key: &DeviceKey,
    records: &[DeviceRecord],
    policy: &Policy,
) -> Option<Device> {
    if let [record] = records {
        if let Some(creation) = untouched(record) {
            return Some(as_created(key, record, creation));
        }
    }
    let settled = settle_fields(key, records, policy, true)?;
    let section =
        |s: Section| twin::unflatten_section(settled.leaves.iter().map(|(p, v)| (p, v)), s);
    Some(Device {
        key: key.clone(),
        tags: section(Section::Tags),
        desired: section(Section::Desired),
        reported: section(Section::Reported),
        metadata: settled
            .metadata
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.clone()))
            .collect(),
        status: settled.status,
        authentication: settled.authentication,
        capabilities: settled.capabilities,
        parent: settled.parent,
        incarnations: records.iter().map(|r| r.incarnation).collect(),
        pending: records.iter().any(|r| !r.is_created()),
        conflicts: settled.conflicts,
    })
}

/// Every field of a key settled, before a [`Device`] is built from it. A merge needs only
/// this (the conflicts to report, the status and credentials that decide which stale writes
/// to name), not the twin rebuilt as JSON objects nor the metadata copied.
pub(crate) struct Settled<'a> {
    pub(crate) status: StatusValue,
    pub(crate) authentication: Authentication,
    capabilities: Capabilities,
    parent: Option<DeviceId>,
    leaves: Vec<(TwinPath, Value)>,
    metadata: Vec<(&'a str, &'a Value)>,
    /// Sorted.
    pub(crate) conflicts: Vec<Conflict>,
}

/// Settles every field of the live incarnations of `key` for a merge's report; `None` when
/// there are none. The twin's leaves are settled only as far as they can conflict: a lone
/// creation's leaves are left out when none is another's ancestor (they cannot conflict with
/// each other, and the leaves written after them overwrite them), which spares parsing them.
pub(crate) fn settle<'a>(
    key: &DeviceKey,
    records: &'a [DeviceRecord],
    policy: &Policy,
) -> Option<Settled<'a>> {
    let settled = settle_fields(key, records, policy, false);
    if cfg!(debug_assertions) {
        let whole = settle_fields(key, records, policy, true);
        debug_assert_eq!(
            settled.as_ref().map(|s| &s.conflicts),
            whole.as_ref().map(|s| &s.conflicts),
            "leaving a lone creation's leaves out changed the conflicts of {key}"
        );
    }
    settled
}

/// Settles every field of the live incarnations of `key`, the twin's leaves whole if `whole`
/// (else only as far as they can conflict; see [`settle`]).
fn settle_fields<'a>(
    key: &DeviceKey,
    records: &'a [DeviceRecord],
    policy: &Policy,
    whole: bool,
) -> Option<Settled<'a>> {
    if records.is_empty() {
        return None;
    }
    let mut resolver = Resolver {
        key,
        policy,
        conflicts: Vec::new(),
    };
    let status = resolver.status(&candidates(records, |r| &r.written().status, |i| &i.status));
    let superseded = superseded_creations(records);
    let retired: Vec<(Dot, &[Fingerprint])> = records
        .iter()
        .flat_map(|r| r.written().retired.entries())
        .map(|e| (e.dot, &*e.value))
        .chain(superseded.iter().map(|(dot, gone)| (*dot, &gone[..])))
        .collect();
    let authentication = resolver.authentication(
        &candidates(
            records,
            |r| &r.written().authentication,
            |i| &i.authentication,
        ),
        &retired,
    );
    let capabilities = resolver.plain(
        "capabilities",
        &candidates(records, |r| &r.written().capabilities, |i| &i.capabilities),
    );
    let parent =
        resolver.plain_parent(&candidates(records, |r| &r.written().parent, |i| &i.parent));
    let leaves = resolve_twin(&mut resolver, records, whole);
    let metadata = resolve_metadata(&mut resolver, records);
    let mut conflicts = resolver.conflicts;
    conflicts.sort();
    Some(Settled {
        status: status.unwrap_or_default(),
        authentication: authentication.unwrap_or_default(),
        capabilities: capabilities.unwrap_or_default(),
        parent: parent.flatten(),
        leaves,
        metadata,
        conflicts,
    })
}

impl Resolver<'_> {
    fn plain_parent(
        &mut self,
        candidates: &[Candidate<'_, Option<DeviceId>>],
    ) -> Option<Option<DeviceId>> {
        if candidates.is_empty() {
            return None;
        }
        let outcome = by_preference(candidates, |_| true, self.policy.fields);
        let show = |p: &Option<DeviceId>| {
            p.as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string)
        };
        let i = self.settle(|| "parent".into(), candidates, outcome, false, show);
        Some(candidates[i].value.clone())
    }
}

/// The creation of a record nothing has written to since: then it is the whole device, with
/// no candidates to weigh. Most devices of a registry are like this.
fn untouched(record: &DeviceRecord) -> Option<&Creation> {
    record.is_unwritten().then(|| record.creation()).flatten()
}

/// The device a lone, untouched creation describes: what [`resolve`] gives for it, without
/// the machinery for concurrent values.
fn as_created(key: &DeviceKey, record: &DeviceRecord, creation: &Creation) -> Device {
    let identity = &creation.identity;
    let leaves = creation.twin.leaves();
    let section = |s: Section| twin::unflatten_section(&leaves, s);
    Device {
        key: key.clone(),
        status: identity.status.clone(),
        authentication: identity.authentication.clone(),
        capabilities: identity.capabilities,
        parent: identity.parent.clone(),
        tags: section(Section::Tags),
        desired: section(Section::Desired),
        reported: section(Section::Reported),
        metadata: identity.metadata.clone(),
        incarnations: vec![record.incarnation],
        pending: false,
        conflicts: Vec::new(),
    }
}
