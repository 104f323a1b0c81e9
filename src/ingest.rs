//! Events: writes that arrive with an id, at least once and in any order.

mod event;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::applied::{Applied, Lookup};
use crate::clock::{Dot, ReplicaId, VersionVector};
use crate::error::{Error, Result, redacted};
use crate::policy::Policy;
use crate::registry::{ContextDots, Registry, SingleKey};
use crate::report::Report;
use crate::same_write::{self, HeldByDot};
use crate::serde_text::{map_members, sorted_once_each};
use crate::stamp::Stamp;
use crate::writer::Writer;

use event::Dots;
pub use event::{Event, EventId};

/// Applies events delivered at least once, in any order.
///
/// - A duplicate (same id, same payload) is a no-op.
/// - Out-of-order arrival converges to the in-order result: the causal context remembers dots
///   seen beyond a gap, so an early op 3 neither hides ops 1 and 2 nor claims them.
/// - The same id with a different payload is [`Error::ConflictingEvent`]; a dot under which
///   two events carry different writes is [`Error::DotReused`]. Either leaves the registry
///   unchanged: a write is never lost silently.
///
/// Read from text (`serde_json::from_str`, `from_slice`, `from_reader`, a CBOR reader), an
/// ingest listing an event id twice is refused; a `serde_json::Value` built first has already
/// kept the last of the two, so that `serde_json::from_value` cannot see the repeat.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Event, EventId, Identity, Ingest, Registry, ReplicaId, Stamp, Status, StatusValue};
///
/// let r = ReplicaId::from_u128(1);
/// let key = DeviceKey::device("d")?;
/// let mut source = Registry::new();
/// let create = source.writer(r, Stamp::new(1, 0)).create(&key, Identity::default())?;
/// let disable = source.writer(r, Stamp::new(2, 0)).set_status(&key, StatusValue::new(Status::Disabled, None))?;
///
/// let mut ingest = Ingest::new(Registry::new());
/// let second = Event::new(EventId::new("2"), disable)?;
/// ingest.apply(&second)?;                                   // arrives first
/// ingest.apply(&Event::new(EventId::new("1"), create)?)?;
/// ingest.apply(&second)?;                                   // and again
/// assert_eq!(ingest.registry(), &source);
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Default, Serialize)]
#[serde(into = "IngestWire")]
pub struct Ingest {
    registry: Registry,
    policy: Policy,
    /// Payload of every event applied, by id, to tell a duplicate from a conflicting reuse.
    ///
    /// Hash tables, here and for the owners, because they are only ever asked about one id or
    /// dot: an ordered map's search among a few thousand ids was an eighth of an event's
    /// instructions. Nothing reads them in their order: the wire form and `Debug` sort the
    /// events by id.
    events: Applied,
    /// Which event wrote each dot, for every event applied but those in `unindexed`.
    owners: HashMap<Dot, EventId>,
    /// Events applied since `owners` was last brought up to date, in order. A dot's owner is
    /// only asked for when the registry's context has seen the dot, which a stream of new
    /// events never does, so most streams never index a dot.
    unindexed: Vec<(EventId, Dots)>,
    /// The join of every vector passed to [`forget`](Ingest::forget): an event whose every
    /// write falls under it, and which changes nothing here, is a replay of what was
    /// forgotten (or another event bringing only those writes), and is not remembered.
    forgotten: VersionVector,
}

/// Two ingests are equal when their registries, policies and remembered events are: which
/// event wrote each dot follows from the events, however much of it is indexed yet.
impl PartialEq for Ingest {
    fn eq(&self, other: &Self) -> bool {
        self.registry == other.registry
            && self.policy == other.policy
            && self.events == other.events
            && self.forgotten == other.forgotten
    }
}

impl Eq for Ingest {}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest")
            .field("registry", &self.registry)
            .field("policy", &self.policy)
            .field("events", &self.events)
            .field("forgotten", &self.forgotten)
            .finish_non_exhaustive()
    }
}

/// The wire layout: which event wrote each dot is derived from the events, so it is not sent.
/// `forgotten` is left out when empty, so a member not named here is refused: `forgoten` read
/// as nothing forgotten.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestWire {
    registry: Registry,
    policy: Policy,
    #[serde(deserialize_with = "events_once_each")]
    events: BTreeMap<EventId, Arc<Registry>>,
    /// Absent from the text of an ingest that forgot nothing, and of one written before an
    /// ingest kept it, which reads as having forgotten nothing.
    #[serde(default, skip_serializing_if = "VersionVector::is_empty")]
    forgotten: VersionVector,
}

/// The events as the text lists them, an id listed twice refused: read as a map reads it,
/// the last of the two stood, and a later redelivery of the event the first held was refused
/// as conflicting with a payload this ingest never applied. The id is shown as every message
/// shows one (`EventId::shown`): one that damage made of a key is not.
fn events_once_each<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<EventId, Arc<Registry>>, D::Error> {
    let events = map_members(d)?;
    let events = sorted_once_each(events)
        .map_err(|id: EventId| D::Error::custom(format!("event {} is listed twice", id.shown())))?;
    Ok(events.into_iter().collect())
}

impl From<Ingest> for IngestWire {
    fn from(ingest: Ingest) -> Self {
        Self {
            registry: ingest.registry,
            policy: ingest.policy,
            events: ingest
                .events
                .iter()
                .map(|(id, delta)| (id.clone(), Arc::clone(delta)))
                .collect(),
            forgotten: ingest.forgotten,
        }
    }
}

/// Read through the wire layout, checked as `TryFrom<IngestWire>` says, with serde's quotes of
/// strings that could be keys hidden (`redacted`): an ingest's text holds its events' keys.
impl<'de> Deserialize<'de> for Ingest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = IngestWire::deserialize(d).map_err(redacted)?;
        Self::try_from(wire).map_err(D::Error::custom)
    }
}

/// Restoring checks what [`Ingest::apply`] relies on: the registry's context has seen every
/// write of every event remembered, as it has after applying them, and the events holding one
/// dot hold one write under it: one of them holds it whole, the others part of it (a sync
/// repeats what is left of an event's write), and that one is the dot's first.
impl TryFrom<IngestWire> for Ingest {
    type Error = Error;

    fn try_from(wire: IngestWire) -> Result<Self> {
        let mut owners = HashMap::new();
        // Each event's writes by dot, gathered once, whether it is read as the later of two
        // events holding a dot or as the first: a restore checks every dot two events hold,
        // and a sync repeats thousands (`HeldByDot`).
        let mut held: HashMap<&EventId, HeldByDot<'_>> = HashMap::new();
        for (id, delta) in &wire.events {
            for dot in delta.store_dots() {
                if !wire.registry.context.contains(dot) {
                    return Err(Error::InvalidValue {
                        field: "ingest".into(),
                        reason: format!(
                            "event {} wrote {dot}, which the registry's context has not seen",
                            id.shown()
                        ),
                    });
                }
                // A wire form holding a reuse `apply` refuses was not written by an ingest.
                match owners.entry(dot) {
                    Entry::Vacant(owner) => {
                        owner.insert(id.clone());
                    }
                    Entry::Occupied(mut owner) => {
                        // `apply` takes a part of a write after the whole, never before it,
                        // but the events are read here in the order of their ids: of two
                        // holding one write, the fuller is the dot's first, whichever id sorts
                        // first (else the restore would refuse the whole write after its
                        // part). A part of a part is a part of the whole, so
                        // every event read holds a part of the first's write.
                        let first = owner.get();
                        let first_delta = wire.events.get(first);
                        let later = held.entry(id).or_insert_with(|| HeldByDot::new(delta));
                        if let Some(reuse) = reused(dot, first, first_delta, id, delta, later) {
                            let brings_more = match wire.events.get_key_value(first) {
                                None => true,
                                Some((first, first_delta)) => {
                                    let first_held = held
                                        .entry(first)
                                        .or_insert_with(|| HeldByDot::new(first_delta));
                                    same_write::brings_more(delta, first_held, dot)
                                }
                            };
                            if brings_more {
                                return Err(reuse);
                            }
                            owner.insert(id.clone());
                        }
                    }
                }
            }
        }
        let mut events = Applied::default();
        wire.events
            .into_iter()
            .for_each(|(id, delta)| events.insert(id, delta));
        Ok(Self {
            registry: wire.registry,
            policy: wire.policy,
            events,
            owners,
            unindexed: Vec::new(),
            forgotten: wire.forgotten,
        })
    }
}

impl Ingest {
    /// Ingests into `registry`, reporting conflicts under the default [`Policy`].
    ///
    /// The writes `registry` already holds came from no event this ingest applied: an event
    /// writing one of their dots again is not refused as [`Error::DotReused`] (no event owns
    /// the dot), and what it wrote under that dot is lost without an error.
    ///
    /// # Examples
    ///
    /// ```
    /// let ingest = failback::Ingest::new(failback::Registry::new());
    /// assert!(ingest.registry().is_empty());
    /// ```
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            ..Self::default()
        }
    }

    /// Reports conflicts under `policy`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Event, EventId, Identity, Ingest, Policy, Registry, ReplicaId, Section, Stamp};
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let key = DeviceKey::device("d")?;
    /// let mut base = Registry::new();
    /// base.writer(a, Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// let (mut one, mut two) = (base.clone(), base.clone());
    /// let site = |r: &mut Registry, by, at, value: &str| {
    ///     r.writer(by, Stamp::new(at, 0)).set_twin(&key, Section::Tags, "site", Some(value.into()))
    /// };
    /// let (x, y) = (site(&mut one, a, 3, "x")?, site(&mut two, b, 2, "y")?);
    ///
    /// let mut ingest = Ingest::new(base).with_policy(Policy::prefer(b));
    /// ingest.apply(&Event::new(EventId::new("1"), x)?)?;
    /// let report = ingest.apply(&Event::new(EventId::new("2"), y)?)?;
    /// let conflict = &report.conflicts[0];
    /// assert_eq!(conflict.values[conflict.winner].replica, b); // preferred, though older
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The registry as the events applied so far make it, with the registry it started
    /// from and the writes of [`writer`](Self::writer).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Event, EventId, Identity, Ingest, Policy, Registry, ReplicaId, Stamp};
    /// let key = DeviceKey::device("d")?;
    /// let create = Registry::new().writer(ReplicaId::from_u128(1), Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// let mut ingest = Ingest::default();
    /// ingest.apply(&Event::new(EventId::new("1"), create)?)?;
    /// assert!(ingest.registry().device(&key, &Policy::default()).is_some());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A writer of local writes into the ingest's registry, under `replica` (this service's own
    /// id, which no event's source writes under) at `stamp`: for a replica that both writes
    /// and ingests its peers' events. Each write returns its delta, to publish as an
    /// [`Event`] for the peers.
    ///
    /// The ingest holds those writes as it holds what [`new`](Self::new)'s registry held: no
    /// event owns their dots, so their own delta delivered back (a peer's sync echoing it) is
    /// merged as included, and an event carrying another write under one of their dots is not
    /// refused as [`Error::DotReused`]; [`ReplicaId`]'s rule keeps that
    /// from happening.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Event, EventId, Identity, Ingest, ReplicaId, Stamp};
    /// let (me, peer) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let key = DeviceKey::device("d")?;
    /// let mut ingest = Ingest::default();
    /// let created = ingest.writer(me, Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// // Published, and echoed back by a peer that merged it: nothing new.
    /// let echo = ingest.apply(&Event::new(EventId::new("peer/1"), created.clone())?)?;
    /// assert!(echo.added == 0 && echo.updated == 0);
    ///
    /// // A peer's write to the device applies over the local one.
    /// let mut theirs = created;
    /// let delete = theirs.writer(peer, Stamp::new(2, 0)).delete(&key)?;
    /// ingest.apply(&Event::new(EventId::new("peer/2"), delete)?)?;
    /// assert_eq!(ingest.registry().live_count(), 0);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn writer(&mut self, replica: ReplicaId, stamp: Stamp) -> Writer<'_> {
        self.registry.writer(replica, stamp)
    }

    /// Drops the tombstones of deletes every replica has seen ([`Registry::compact`]), keeping
    /// the events remembered and the vector [`forget`](Self::forget) keeps: forgetting bounds
    /// the ids remembered, this the tombstones held. A delete compacted here still wins over
    /// a copy of its device delivered later, in an event or a merge, as
    /// [`Registry::compact`] says. It drops nothing else: not the twin paths and metadata keys
    /// removed from live devices, so a device's state grows with every one ever written to it
    /// until the device is deleted or re-created (the known limitation [`Registry::compact`]
    /// describes).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Event, EventId, Identity, Ingest, Registry, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let key = DeviceKey::device("d")?;
    /// let mut source = Registry::new();
    /// let create = source.writer(r, Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// let delete = source.writer(r, Stamp::new(2, 0)).delete(&key)?;
    /// let mut ingest = Ingest::default();
    /// ingest.apply(&Event::new(EventId::new("1"), create.clone())?)?;
    /// ingest.apply(&Event::new(EventId::new("2"), delete)?)?;
    /// assert_eq!(ingest.registry().tombstones(&key).len(), 1);
    ///
    /// let everyone = ingest.registry().context().vector().clone();
    /// ingest.compact(&everyone);
    /// assert!(ingest.registry().tombstones(&key).is_empty());
    /// assert_eq!(ingest.remembered(), 2);
    /// // The creation delivered again, under a new id: still deleted.
    /// ingest.apply(&Event::new(EventId::new("1-again"), create)?)?;
    /// assert_eq!(ingest.registry().live_count(), 0);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn compact(&mut self, stable: &VersionVector) {
        self.registry.compact(stable);
    }

    /// The registry, ending ingestion: the events remembered go with the ingest, so an event
    /// applied before and delivered again to a new ingest over this registry is not known
    /// as a duplicate (it merges as included, no change).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Event, EventId, Identity, Ingest, Registry, ReplicaId, Stamp};
    /// let key = DeviceKey::device("d")?;
    /// let create = Registry::new().writer(ReplicaId::from_u128(1), Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// let mut ingest = Ingest::default();
    /// ingest.apply(&Event::new(EventId::new("1"), create.clone())?)?;
    /// let registry = ingest.into_registry();
    /// assert_eq!(registry, create);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn into_registry(self) -> Registry {
        self.registry
    }

    /// Applies one event and reports what it changed. The report's
    /// [`state_changed`](Report::state_changed) is the ingest's: true for every event not
    /// applied before, whose id it remembers from then on, even when the registry already
    /// held what the event wrote. Except a forgotten event delivered again: an event whose
    /// every write falls under a vector passed to [`forget`](Self::forget), and which changes
    /// nothing in the registry, is neither remembered nor reported as a change.
    ///
    /// # Errors
    ///
    /// [`Error::ConflictingEvent`] if `event`'s id was applied with another payload;
    /// [`Error::DotReused`] if another event wrote something else under one of its dots: the
    /// event holds under the dot something the first event to write it did not hold, unchanged,
    /// at the same field of the same device (two writes made from one replica state, a replica
    /// id used by two sources). Merged, what the first lacks would be dropped unseen, since the
    /// registry has seen the dot. The registry is unchanged in both cases.
    ///
    /// The same write carried again is accepted, in any order: a sync (`delta_since`) repeats
    /// the events before it, and every tombstone. A sync carries all of a creation or a
    /// register write, or none of it once later writes overwrote it: each holds one field
    /// under its dot (a credential write two, the credentials and the keys it retired, which
    /// every later credential write overwrites together). So the original event delivered
    /// after such a sync is applied: what it wrote is what the sync held, or what the registry
    /// already holds as overwritten. Only a delete's tombstones are dropped one at a time
    /// (compaction), and more of a delete (a tombstone the first's copy had lost: of another
    /// incarnation of a device it held a tombstone of, with the same stamp and `seen`) is
    /// taken: tombstones are joined as a set, so nothing is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Event, EventId, Identity, Ingest, Registry, ReplicaId, Stamp, Error};
    /// let r = ReplicaId::from_u128(1);
    /// let key = DeviceKey::device("d")?;
    /// let a = Registry::new().writer(r, Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// let b = Registry::new().writer(r, Stamp::new(2, 0)).create(&key, Identity::default().with_metadata("x", 1.into()))?;
    ///
    /// let mut ingest = Ingest::default();
    /// ingest.apply(&Event::new(EventId::new("e1"), a)?)?;
    /// // Same dot, different write: refused, never lost silently.
    /// let err = ingest.apply(&Event::new(EventId::new("e2"), b)?).unwrap_err();
    /// assert!(matches!(err, Error::DotReused { .. }));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn apply(&mut self, event: &Event) -> Result<Report> {
        let unseen = match self.events.lookup(&event.id) {
            Lookup::Unseen(unseen) => unseen,
            Lookup::Applied(seen) if *seen == event.delta => {
                // Counted from the single key where there is one: the delta's map is
                // a cold miss that a duplicate need not pay.
                let keys = match &event.single_key {
                    Some(_) => 1,
                    None => event.delta.slots.len(),
                };
                return Ok(Report {
                    unchanged: keys as u64,
                    ..Report::default()
                });
            }
            Lookup::Applied(seen) => {
                return Err(Error::ConflictingEvent {
                    id: event.id.clone(),
                    key: event
                        .first_key()
                        .cloned()
                        .or_else(|| seen.slots.keys().next().cloned()),
                });
            }
        };
        // Every dot an applied event wrote is in the registry's context (the event's context
        // has seen its dots, `Event::new` checks it, and the merge joins that context in), so a
        // dot the context has not seen needs no search among the owners: a new event's never
        // has.
        let (mut unseen_dot, mut all_unseen) = (false, true);
        // The event's writes by dot, gathered once, if a dot is found reused: a sync repeats
        // thousands (`HeldByDot`).
        let mut held = None;
        for &dot in event.dots.iter() {
            if !self.registry.context.contains(dot) {
                unseen_dot = true;
                continue;
            }
            all_unseen = false;
            index(&mut self.owners, &mut self.unindexed);
            if let Some(first) = self.owners.get(&dot) {
                let first_delta = self.events.get(first);
                let later = held.get_or_insert_with(|| HeldByDot::new(&event.delta));
                if let Some(reuse) = reused(dot, first, first_delta, &event.id, &event.delta, later)
                {
                    return Err(reuse);
                }
            }
        }
        // A dot unseen means the event's context is not included (it has seen its own
        // dots), which is all the merge's first check would find out.
        let mut report = if unseen_dot {
            // A first write applies where the registry has seen none of its writes: then no
            // record holds them, and one that wrote nothing takes them whole.
            let single_key = event.single_key.as_ref().map(|(key, slot)| SingleKey {
                key,
                slot,
                first_write: event.first_write.as_ref().filter(|_| all_unseen),
            });
            let context_dots = event.context_rest.as_deref().map(|rest| ContextDots {
                written: &event.dots[..],
                overwritten: rest,
            });
            self.registry
                .join_unincluded(&event.delta, single_key, context_dots, &self.policy)
        } else {
            self.registry.merge_with(&event.delta, &self.policy)
        };
        // A forgotten event delivered again is not remembered anew: each replay would grow
        // back the memory `forget` bounds and ask to be stored. Only
        // when the registry took nothing: an event that brought anything is remembered.
        if !report.state_changed && event.dots.iter().all(|&dot| self.forgotten.contains(dot)) {
            return Ok(report);
        }
        self.unindexed.push((event.id.clone(), event.dots.clone()));
        self.events
            .remember(unseen, event.id.clone(), Arc::clone(&event.delta));
        // The ingest remembers the id now, whatever the registry took.
        report.state_changed = true;
        Ok(report)
    }

    /// Forgets the events whose every dot `stable` covers, and keeps `stable`, joined with
    /// the vectors passed before (in the ingest's text too). Bounds the memory of the ids
    /// remembered on long-running ingestion; the registry's tombstones are bounded by
    /// [`compact`](Self::compact), which forgetting does not do.
    ///
    /// A forgotten event can still arrive again, and is a no-op: an event whose every write
    /// falls under the kept vector and which changes nothing in the registry (its context
    /// included there) is neither remembered nor reported as a change to store. An event
    /// that brings anything the registry lacks is applied and remembered as any new event.
    ///
    /// What is given up, for every write under the kept vector:
    ///
    /// - A reused id is not refused ([`Error::ConflictingEvent`]). An event under a forgotten
    ///   id, or under the id of an event not remembered because it only brought forgotten
    ///   writes, is taken as a new event whatever its payload: ignored as a replay if its
    ///   writes are all forgotten, applied and remembered if it brings new ones.
    /// - A reused dot is not refused ([`Error::DotReused`]). An event writing one of the
    ///   forgotten dots is merged as if it carried the write already applied, and what it
    ///   wrote under that dot is lost without an error.
    ///
    /// So pass a vector no source will issue a dot below, nor send an event under an id it
    /// gave one below (every source's writes up to it delivered, its replica ids never
    /// reused), and that this ingest's registry has reached.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Event, EventId, Identity, Ingest, Registry, ReplicaId, Stamp};
    /// let key = DeviceKey::device("d")?;
    /// let create = Registry::new().writer(ReplicaId::from_u128(1), Stamp::new(1, 0)).create(&key, Identity::default())?;
    /// let event = Event::new(EventId::new("e1"), create)?;
    /// let mut ingest = Ingest::default();
    /// ingest.apply(&event)?;
    /// ingest.forget(&ingest.registry().context().vector().clone());
    /// assert_eq!(ingest.remembered(), 0);
    /// // Delivered again: a no-op, not remembered, nothing to store.
    /// assert!(!ingest.apply(&event)?.state_changed);
    /// assert_eq!(ingest.remembered(), 0);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn forget(&mut self, stable: &VersionVector) {
        self.forgotten.join(stable);
        index(&mut self.owners, &mut self.unindexed);
        let owners = &mut self.owners;
        self.events.retain(|id, delta| {
            let dots = delta.store_dots();
            let done = dots.iter().all(|d| stable.contains(*d));
            if done {
                for dot in &dots {
                    if owners.get(dot) == Some(id) {
                        owners.remove(dot);
                    }
                }
            }
            !done
        });
    }

    /// How many event ids are remembered for duplicate detection.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Ingest::default().remembered(), 0);
    /// ```
    pub fn remembered(&self) -> usize {
        self.events.len()
    }
}

/// [`Error::DotReused`] when event `second`, holding `delta`, writes `dot`, which event `first`
/// wrote before it (holding `first_delta`, or forgotten): unless `delta` carries the same
/// write again, as a sync repeating an earlier event does, it carries another write under the
/// dot, or more of the write than `first` did, and merged, what `first` lacks would be lost
/// unseen (`same_write` says why the two cannot be told apart). [`Ingest::apply`] refuses
/// it; a restore, which reads the events in the order of their ids rather than in the order
/// applied, refuses it unless `first`'s write is the part of `second`'s.
fn reused(
    dot: Dot,
    first: &EventId,
    first_delta: Option<&Arc<Registry>>,
    second: &EventId,
    delta: &Registry,
    held: &HeldByDot<'_>,
) -> Option<Error> {
    first_delta
        .is_none_or(|first_delta| same_write::brings_more(first_delta, held, dot))
        .then(|| Error::DotReused {
            dot,
            first: first.clone(),
            second: second.clone(),
            // The device holding the dot, not the delta's first: a sync holds many.
            key: (held.key_holding(dot).or_else(|| delta.slots.keys().next()))
                .cloned()
                .map(Box::new),
        })
}

/// Records which event wrote each dot of the events applied since the last call.
fn index(owners: &mut HashMap<Dot, EventId>, unindexed: &mut Vec<(EventId, Dots)>) {
    for (id, dots) in unindexed.drain(..) {
        for &dot in dots.iter() {
            // A dot several events carried (one write, repeated) stays its first event's.
            owners.entry(dot).or_insert_with(|| id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{CausalContext, ReplicaId};
    use crate::identity::Identity;
    use crate::key::DeviceKey;
    use crate::stamp::Stamp;
    use crate::twin::Section;

    pub(super) fn json_error(e: serde_json::Error) -> Error {
        Error::InvalidValue {
            field: "json".into(),
            reason: e.to_string(),
        }
    }

    /// A delta creating `d`, with its context emptied: it carries a write it has not seen.
    pub(super) fn blind_delta() -> Result<(Registry, Registry)> {
        let delta = Registry::new()
            .writer(ReplicaId::from_u128(1), Stamp::new(1, 0))
            .create(&DeviceKey::device("d")?, Identity::default())?;
        // Built here: neither a writer nor the reader makes one (`Registry`'s reader refuses it).
        let mut blind = delta.clone();
        blind.context = CausalContext::default();
        Ok((delta, blind))
    }

    #[test]
    fn a_restored_ingest_must_have_seen_its_events_writes() -> Result<()> {
        let (delta, _) = blind_delta()?;
        let mut ingest = Ingest::default();
        ingest.apply(&Event::new(EventId::new("e"), delta)?)?;
        let mut wire = serde_json::to_value(&ingest).map_err(json_error)?;
        assert!(serde_json::from_value::<Ingest>(wire.clone()).is_ok());
        // A registry that never saw the event (its device no longer held, say, so the
        // registry alone reads fine).
        wire["registry"] = serde_json::to_value(Registry::new()).map_err(json_error)?;
        let err = serde_json::from_value::<Ingest>(wire).unwrap_err();
        assert!(
            err.to_string()
                .contains("the registry's context has not seen"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn a_reused_dot_names_the_event_that_wrote_it_first() -> Result<()> {
        let r = ReplicaId::from_u128(1);
        let devices = |prefix: &str, n: usize| -> Result<Vec<Registry>> {
            let mut source = Registry::new();
            (0..n)
                .map(|i| {
                    source.writer(r, Stamp::new(1, 0)).create(
                        &DeviceKey::device(format!("{prefix}{i}"))?,
                        Identity::default(),
                    )
                })
                .collect()
        };
        // Two sources that both count r:1, r:2, ... for different writes.
        let (ours, theirs) = (devices("d", 5)?, devices("x", 5)?);
        let mut ingest = Ingest::default();
        for (i, delta) in ours.iter().take(4).enumerate() {
            ingest.apply(&Event::new(EventId::new(format!("e{i}")), delta.clone())?)?;
        }
        let before = ingest.clone();
        let reused = |ingest: &mut Ingest, i: usize| -> Result<(Dot, EventId)> {
            let event = Event::new(EventId::new(format!("f{i}")), theirs[i].clone())?;
            match ingest.apply(&event) {
                Err(Error::DotReused {
                    dot, first, second, ..
                }) => {
                    assert_eq!(second, *event.id());
                    Ok((dot, first))
                }
                other => panic!("f{i} was not refused: {other:?}"),
            }
        };
        assert_eq!(
            reused(&mut ingest, 2)?,
            (Dot::new(r, 3), EventId::new("e2"))
        );
        assert_eq!(ingest, before);
        // Events applied after the owners were last asked for are found too.
        ingest.apply(&Event::new(EventId::new("e4"), ours[4].clone())?)?;
        assert_eq!(
            reused(&mut ingest, 4)?,
            (Dot::new(r, 5), EventId::new("e4"))
        );
        assert_eq!(
            reused(&mut ingest, 0)?,
            (Dot::new(r, 1), EventId::new("e0"))
        );
        Ok(())
    }

    /// An event joining two concurrent writes (deltas joined before they were sent) into a
    /// device that wrote nothing is a first write that holds a conflict: it is reported as
    /// the general merge reports it.
    #[test]
    fn a_first_write_holding_concurrent_values_reports_their_conflict() -> Result<()> {
        let key = DeviceKey::device("d")?;
        let mut base = Registry::new();
        base.writer(ReplicaId::from_u128(1), Stamp::new(1, 0))
            .create(&key, Identity::default())?;
        let site = |by: u128, value: &str| {
            base.clone()
                .writer(ReplicaId::from_u128(by), Stamp::new(2, 0))
                .set_twin(&key, Section::Tags, "site", Some(value.into()))
        };
        let mut both = site(2, "x")?;
        both.merge_with(&site(3, "y")?, &Policy::default());
        let event = Event::new(EventId::new("both"), both.clone())?;
        assert!(event.first_write.is_some());

        let mut ingest = Ingest::new(base.clone());
        let report = ingest.apply(&event)?;
        let mut merged = base;
        let general = merged.merge_with(&both, &Policy::default());
        assert_eq!((ingest.registry(), &report), (&merged, &general));
        assert_eq!((report.updated, report.conflicts.len()), (1, 1));
        Ok(())
    }

    #[test]
    fn a_restored_ingest_still_detects_reused_dots() -> Result<()> {
        let key = DeviceKey::device("d")?;
        let r = ReplicaId::from_u128(1);
        let first = Registry::new()
            .writer(r, Stamp::new(1, 0))
            .create(&key, Identity::default())?;
        let other = Registry::new()
            .writer(r, Stamp::new(2, 0))
            .create(&key, Identity::default().with_metadata("x", 1.into()))?;
        let mut ingest = Ingest::default();
        ingest.apply(&Event::new(EventId::new("a"), first)?)?;

        let text = serde_json::to_string(&ingest).map_err(|e| Error::InvalidValue {
            field: "ingest".into(),
            reason: e.to_string(),
        })?;
        let mut restored: Ingest =
            serde_json::from_str(&text).map_err(|e| Error::InvalidValue {
                field: "ingest".into(),
                reason: e.to_string(),
            })?;
        assert_eq!(restored, ingest);
        let other = Event::new(EventId::new("b"), other)?;
        let reused = restored.apply(&other);
        assert!(matches!(reused, Err(Error::DotReused { .. })));

        // A wire form remembering both events, as no ingest writes one, is refused.
        let mut wire = serde_json::to_value(&ingest).map_err(json_error)?;
        wire["events"]["b"] = serde_json::to_value(other.delta()).map_err(json_error)?;
        let both = serde_json::from_value::<Ingest>(wire).expect_err("two events, one dot");
        assert!(
            both.to_string().contains(&Dot::new(r, 1).to_string()),
            "{both}"
        );
        Ok(())
    }
}
