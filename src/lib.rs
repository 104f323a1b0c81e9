//! # failback
//!
//! Merge IoT Hub device registries after a regional failover, so that nothing written on
//! either side is lost silently and nothing a security decision removed comes back.
//!
//! During an outage, devices and back ends move from the primary hub to a secondary one.
//! Identities are created, disabled, deleted and re-keyed there, twins change there, and some
//! writes may still reach the primary. When the primary returns, the two must be merged. This
//! crate models each registry as a CRDT, so merging is a mathematical join: any order of merges,
//! with any duplicates, gives one state, and every conflict is settled by a stated rule and
//! reported.
//!
//! ## Concepts
//!
//! - A **replica** ([`ReplicaId`]) is one regional registry. Its id names one sequence of
//!   writes: one registry at a time writes under it, having seen every write made under it
//!   before (after restoring an older backup, take a new id; [`ReplicaId`] says why).
//! - A **dot** ([`Dot`]) names one write: the replica that made it and its counter.
//! - A **causal context** ([`CausalContext`]) is the set of dots a replica has seen: a
//!   [`VersionVector`] plus the dots seen beyond a gap, so out-of-order arrival loses nothing.
//! - A **multi-value register** ([`MvRegister`]) keeps every concurrent write to a field;
//!   reading resolves them with a [`Policy`] and says which [`Rule`] decided.
//! - An **incarnation** is one life of a device: a create starts one, a delete ends it, and a
//!   re-create starts a new one that no write for the old one can touch.
//! - A **tombstone** ([`Tombstone`]) records a delete until every replica has seen it.
//! - A **delta** is a small [`Registry`] holding what some writes changed; it merges like a
//!   whole state. **Failback** is merging the replicas after the outage.
//!
//! ## Semantics
//!
//! [`Registry::merge`] is a join: `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`, `a ⊔ a = a`,
//! and a write that causally follows another always beats it, whatever the arrival order.
//! Only *concurrent* writes (neither saw the other) are conflicts:
//!
//! | concurrent writes | outcome | rule |
//! |---|---|---|
//! | disable and enable | disabled (a re-enable that saw the disable stands) | [`Rule::DisableWins`] |
//! | delete and update of one incarnation | deleted, the report naming the updates the deleter had not seen, alike whichever side merges the other (a re-create is a new incarnation and stands) | [`Rule::DeleteWins`] |
//! | credential change and a value holding a key or thumbprint it rotated out | the rotation (among several values left, the [`Policy::credentials`] side) | [`Rule::RetiredCredentialExcluded`] |
//! | credential changes each holding what the other rotated out | the preferred value with rotated-out credentials blanked, flagged for an operator | [`Rule::RetiredCredentialUnresolved`] |
//! | other credential changes | [`Policy::credentials`] side, reported as a security conflict | [`Rule::PreferredReplica`] / [`Rule::LatestStamp`] |
//! | any other field, twin leaf or metadata key | [`Policy::fields`]: a preferred replica, or the highest hybrid-logical-clock stamp with replica tie-break | [`Rule::PreferredReplica`] / [`Rule::LatestStamp`] |
//! | a twin leaf and a scalar (or a removal) at its ancestor, held or overwritten since by its own side's write below it | the leaf, so no child write is lost | [`Rule::ChildBeatsScalar`] |
//! | equal values | no conflict | [`Rule::Agreed`] |
//!
//! A stale replica never resurrects a deleted device, re-enables a disabled one, or restores a
//! rotated-out credential: such writes are refused and listed in the [`Report`]. Tombstones are
//! kept until [`Registry::compact`] is given a version vector `s` every replica has reached;
//! compaction changes what a merge produces afterwards only by the tombstones it dropped:
//! `compact_s(a) ⊔ b = compact_s(a ⊔ b)`, each device reading as in `a ⊔ b`, for any state `b`,
//! a replica restored from an older backup included (it loses a device whose delete was
//! compacted, as every other replica did). Merging a state or delta whose context and stable
//! vector are already included costs no per-record work and changes nothing; any other merge
//! changes the state, if only its context or its stable vector, and says so
//! ([`Report::state_changed`]).
//!
//! [`Ingest`] applies [`Event`]s delivered at least once, in any order: duplicates are no-ops,
//! reordering converges, and an id or dot reused with a different payload is an [`Error`],
//! leaving the registry as it was. An event is a published delta under the id its publisher
//! gives it, not an IoT Hub event: a back end deduplicates hub events by their own id before
//! it writes them ([`EventId`] says why and how).
//!
//! ## A failback
//!
//! ```
//! use failback::{Authentication, DeviceKey, Identity, Pair, Policy, Registry, ReplicaId, Rule,
//!                Stamp, Status, StatusValue, SymmetricKey};
//!
//! let (primary, secondary) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
//! let key = DeviceKey::device("pump-17")?;
//! let old = SymmetricKey::new("b2xkLWtleS0xMjM0NTY3OA==")?;
//! let new = SymmetricKey::new("bmV3LWtleS0xMjM0NTY3OA==")?;
//!
//! // Before the outage both regions hold the same registry.
//! let mut hub_a = Registry::new();
//! let creds = Authentication::sas(Pair::new(Some(old.clone()), Some(old.clone())));
//! hub_a.writer(primary, Stamp::new(1, 0)).create(&key, Identity::default().with_authentication(creds))?;
//! let mut hub_b = hub_a.clone();
//!
//! // During it, the secondary re-keys the device; the primary, cut off, disables it.
//! let rotated = Authentication::sas(Pair::new(Some(new.clone()), Some(new)));
//! hub_b.writer(secondary, Stamp::new(2, 0)).set_authentication(&key, rotated.clone())?;
//! hub_a.writer(primary, Stamp::new(3, 0)).set_status(&key, StatusValue::new(Status::Disabled, None))?;
//!
//! // Failback: merge in either direction, as often as you like.
//! let report = hub_a.merge(&hub_b);
//! hub_b.merge(&hub_a);
//! assert_eq!(hub_a, hub_b);
//!
//! let device = hub_a.device(&key, &Policy::default()).expect("live");
//! assert_eq!(device.status.status, Status::Disabled);
//! assert_eq!(device.authentication, rotated);
//! assert_eq!(report.updated, 1);
//! # Ok::<(), failback::Error>(())
//! ```
//!
//! For IoT Hub bulk export files, see [`iothub`]: it reads base, primary and secondary
//! exports, merges them with these rules and plans the import that brings the primary up to
//! date.
#![forbid(unsafe_code)]

mod applied;
mod clock;
mod credentials;
mod device;
mod dot_cloud;
mod error;
mod fingerprint_key;
mod identity;
mod ingest;
pub mod iothub;
mod key;
mod policy;
#[cfg(test)]
mod property;
mod register;
mod register_map;
mod registry;
mod report;
mod same_write;
mod secret;
mod serde_text;
mod serde_tuple;
mod slot;
mod slot_map;
mod spawn;
mod stamp;
mod text;
mod twin;
mod twin_text;
mod view;
mod writer;

pub use clock::{CausalContext, Dot, ReplicaId, VersionVector};
pub use credentials::{AuthType, Authentication, Fingerprint, Pair, SymmetricKey, Thumbprint};
pub use device::DeviceRecord;
pub use error::{Error, Result};
pub use fingerprint_key::{FingerprintKey, KeyedFingerprint};
pub use identity::{Capabilities, Identity, Status, StatusValue};
pub use ingest::{Event, EventId, Ingest};
pub use key::{DeviceId, DeviceKey, ModuleId};
pub use policy::{Candidate, Policy, Preference, Rule};
pub use register::{Entry, MvRegister};
pub use registry::Registry;
pub use report::{Conflict, ConflictValue, Rejection, Report, Stale};
pub use slot::Tombstone;
pub use stamp::{Hlc, Stamp};
pub use twin::{Section, TwinPath};
pub use view::Device;
pub use writer::Writer;

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
