//! An event: a delta as its publisher ships it, named by an [`EventId`], with its wire form,
//! checked as it is read.
//!
//! Apart from `ingest.rs` because an event is made, checked and sent without an ingest: the
//! ingest applies it, reading what the event holds apart from its delta.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use smallvec::SmallVec;

use crate::clock::Dot;
use crate::error::{Error, Result, redacted};
use crate::key::DeviceKey;
use crate::registry::Registry;
use crate::secret::shown_text;
use crate::serde_text::serde_as_text;
use crate::slot::{FirstWrite, Slot};
use crate::text::Text;

/// The id of one published delta: the id its publisher gives a delta it ships as an
/// [`Event`], the same for every delivery of that delta (a retry, a redelivery), another for
/// any other delta. An [`Ingest`](crate::Ingest) takes a second delivery under an id as a
/// duplicate, and another payload under it as [`Error::ConflictingEvent`].
///
/// # Not an IoT Hub event's id
///
/// Event Grid's `id` and a route's `correlation-id` name *hub* events (a device created, a
/// twin changed), which carry no delta: a back end turns each into a write with its own
/// [`Writer`](crate::Writer), and each write has a new dot. A hub event delivered twice (hub
/// delivery is at least once; a replayed route delivers `1, 2, 1`) is two writes, the second
/// writing the replayed, stale value over what came between, and state merges carry it to
/// every replica. No id given to the deltas undoes that: an event's id deduplicates the
/// deliveries of a delta, not the hub events a back end writes from.
///
/// So a back end deduplicates hub events by their own id before it writes them: it keeps
/// the ids of the hub events it has written, stored with its registry (in one save, so that
/// a restart neither writes one twice nor skips one), and skips a hub event whose id it
/// holds. It may also publish each write's delta under an id derived from the hub event's
/// (`hub/<id>`): a consumer then refuses a second, different delta for one hub event as
/// [`Error::ConflictingEvent`]; but by then the back end's own registry holds the second
/// write, so that is a check, not the deduplication.
///
/// Cloning shares the text; ordering two ids seldom reads it (an id keeps its first bytes
/// inline), which is most of telling a duplicate event from a new one.
///
/// # Examples
///
/// ```
/// let id = failback::EventId::new("2b7f0c4e-1");
/// assert_eq!(id.as_str(), "2b7f0c4e-1");
/// ```
///
/// A back end writing from hub events, one delivered twice:
///
/// ```
/// use std::collections::BTreeSet;
/// use failback::{DeviceKey, Event, EventId, Identity, Registry, ReplicaId, Section, Stamp};
///
/// let east = ReplicaId::from_u128(1);
/// let key = DeviceKey::device("d")?;
/// let mut registry = Registry::new();
/// registry.writer(east, Stamp::new(1, 0)).create(&key, Identity::default())?;
/// // The hub events written, saved with `registry`.
/// let mut written: BTreeSet<String> = BTreeSet::new();
/// let mut published = Vec::new();
/// for (at, hub_id, site) in [(2, "c1", "a"), (3, "c2", "b"), (4, "c1", "a")] {
///     if !written.insert(hub_id.to_owned()) {
///         continue; // delivered before: written once already
///     }
///     let delta = registry
///         .writer(east, Stamp::new(at, 0))
///         .set_twin(&key, Section::Tags, "site", Some(site.into()))?;
///     published.push(Event::new(EventId::new(format!("hub/{hub_id}")), delta)?);
/// }
/// assert_eq!(published.len(), 2);
/// let device = registry.device(&key, &Default::default()).expect("live");
/// assert_eq!(device.tags["site"], "b"); // not the replayed "a"
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Text);

impl EventId {
    /// An event id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::EventId::new("a").to_string(), "a");
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        Self(Text::from(id.into()))
    }

    /// The id as text.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::EventId::new("x").as_str(), "x");
    /// ```
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The id as every message and log shows it ([`ShownEventId`]).
    pub(crate) fn shown(&self) -> ShownEventId<'_> {
        ShownEventId(self.as_str())
    }
}

/// An event id as a message, a log or `Debug` shows it: quoted and escaped, as `Debug` shows a
/// string, so that one holding a newline cannot fake a log line; and by its fingerprint,
/// `<sha256:…>`, where it may hold a key (`shown_text`), as a twin key or a device id is
/// shown. An id is free text from outside, and damage or a careless publisher can make one
/// of a key, which no message shows.
pub(crate) struct ShownEventId<'a>(&'a str);

impl fmt::Display for ShownEventId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", shown_text(self.0))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

serde_as_text!(EventId, EventId::as_str, |raw| Ok::<_, Infallible>(
    EventId::new(raw)
));

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.shown())
    }
}

/// An event's dots: a write has one for each live incarnation it writes, almost always one.
pub(super) type Dots = SmallVec<[Dot; 1]>;

/// A delta as its publisher ships it: the delta (a [`Writer`](crate::Writer)'s, its dot or
/// dots inside, or a `delta_since`), and the [`EventId`] the publisher gives it. Not an IoT
/// Hub event, which carries no delta ([`EventId`] says how a back end writing from those
/// deduplicates them).
///
/// Deserializing one checks it as [`Event::new`] does (the dots are recomputed from the
/// delta).
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Event, EventId, Identity, Registry, ReplicaId, Stamp};
/// let mut source = Registry::new();
/// let delta = source.writer(ReplicaId::from_u128(1), Stamp::default())
///     .create(&DeviceKey::device("d")?, Identity::default())?;
/// let event = Event::new(EventId::new("evt-1"), delta)?;
/// assert_eq!(event.dots().len(), 1);
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub(super) id: EventId,
    /// Shared with every [`Ingest`](super::Ingest) that applied the event, which keeps it to
    /// recognise a duplicate: a delivery of the same event is then a pointer comparison.
    pub(super) delta: Arc<Registry>,
    /// The dots the delta writes, sorted: the event's identity in the causal order. Held in
    /// the event, not behind a pointer: a write mostly has one, and `apply` reads them
    /// first, where a separate allocation was a cold miss of every event (perf, 2026-11-22).
    pub(super) dots: Dots,
    /// The delta's key and slot when it holds one key, as every [`Writer`](crate::Writer)'s
    /// delta does: applying the event joins them without reading the delta's map, whose
    /// chunks were two cache misses of every event applied (perf, 2026-11-22). Derived from
    /// the delta, so not sent.
    #[serde(skip)]
    pub(super) single_key: Option<(DeviceKey, Arc<Slot>)>,
    /// That slot's record when it can be a record's first write ([`FirstWrite`]): applied to
    /// a device that wrote nothing since its creation, the event then reads nothing of its
    /// slot. Derived from the delta, so not sent.
    #[serde(skip)]
    pub(super) first_write: Option<FirstWrite>,
    /// The dots the delta's context holds besides `dots` (those its writes overwrote or
    /// removed), when they are a handful and the delta carries no stable vector, as every
    /// [`Writer`](crate::Writer)'s delta does: applying the event then joins the context by
    /// inserting `dots` and these, without reading the delta, whose context's cloud was two
    /// or three dependent cache misses of every event applied: 0.82 to 0.83 of the time by
    /// the medians of three alternated runs (2026-11-22). Derived from the delta, so not sent.
    #[serde(skip)]
    pub(super) context_rest: Option<Dots>,
}

/// How many dots besides its own an event's context may hold to be joined from the event
/// ([`Event::context_rest`]): a write's context holds its dots and those it overwrote, one
/// or two; a larger context is joined from the delta.
const CONTEXT_REST_MAX: usize = 4;

/// The id, the delta and its dots: the single key kept is the delta's own.
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("delta", &self.delta)
            .field("dots", &self.dots)
            .finish()
    }
}

impl Event {
    /// An event carrying `delta`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] if the delta writes nothing (no device, no dot), or carries a
    /// write its own context has not seen (no [`Writer`](crate::Writer) makes such a delta).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Event, EventId, Registry};
    /// assert!(Event::new(EventId::new("empty"), Registry::new()).is_err());
    /// ```
    pub fn new(id: EventId, delta: Registry) -> Result<Self> {
        let dots = delta.store_dots();
        if dots.is_empty() {
            return Err(Error::InvalidValue {
                field: format!("event {}", id.shown()),
                reason: "an event must carry a write to a device".into(),
            });
        }
        if let Some(unseen) = dots.iter().find(|&&dot| !delta.context.contains(dot)) {
            return Err(Error::InvalidValue {
                field: format!("event {}", id.shown()),
                reason: format!("its delta carries write {unseen}, which its context has not seen"),
            });
        }
        let single_key = match delta.slots.len() {
            1 => delta
                .slots
                .iter()
                .next()
                .map(|(key, slot)| (key.clone(), Arc::clone(slot))),
            _ => None,
        };
        let first_write = single_key
            .as_ref()
            .and_then(|(_, slot)| FirstWrite::of(slot));
        let context_rest = delta
            .stable
            .is_empty()
            .then(|| delta.context.dots_besides(&dots, CONTEXT_REST_MAX))
            .flatten()
            .map(Dots::from_iter);
        Ok(Self {
            id,
            delta: Arc::new(delta),
            dots: dots.into_iter().collect(),
            single_key,
            first_write,
            context_rest,
        })
    }

    /// The event's id.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::{DeviceKey, Event, EventId, Identity, Registry, ReplicaId, Stamp};
    /// # let delta = Registry::new().writer(ReplicaId::from_u128(1), Stamp::default())
    /// #     .create(&DeviceKey::device("d")?, Identity::default())?;
    /// let event = Event::new(EventId::new("e"), delta)?;
    /// assert_eq!(event.id().as_str(), "e");
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The delta it carries.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::{DeviceKey, Event, EventId, Identity, Registry, ReplicaId, Stamp};
    /// # let delta = Registry::new().writer(ReplicaId::from_u128(1), Stamp::default())
    /// #     .create(&DeviceKey::device("d")?, Identity::default())?;
    /// let event = Event::new(EventId::new("e"), delta.clone())?;
    /// assert_eq!(event.delta(), &delta);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn delta(&self) -> &Registry {
        &self.delta
    }

    /// The dots it writes, sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::{DeviceKey, Event, EventId, Identity, Registry, ReplicaId, Stamp};
    /// # let delta = Registry::new().writer(ReplicaId::from_u128(1), Stamp::default())
    /// #     .create(&DeviceKey::device("d")?, Identity::default())?;
    /// let event = Event::new(EventId::new("e"), delta)?;
    /// assert_eq!(event.dots()[0].counter, 1);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn dots(&self) -> &[Dot] {
        &self.dots
    }

    pub(super) fn first_key(&self) -> Option<&DeviceKey> {
        self.delta.slots.keys().next()
    }
}

/// An event as it travels: its dots are derived from the delta, so they are recomputed (and
/// the event checked) rather than trusted, and read as any value. A member not named here is
/// refused, as every reader of a registry's parts refuses one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventWire {
    id: EventId,
    delta: Registry,
    #[serde(default, rename = "dots")]
    _dots: serde::de::IgnoredAny,
}

/// Read as [`Event::new`] checks one, with serde's quotes of strings that could be keys hidden.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = EventWire::deserialize(d).map_err(redacted)?;
        Self::try_from(wire).map_err(D::Error::custom)
    }
}

impl TryFrom<EventWire> for Event {
    type Error = Error;

    fn try_from(wire: EventWire) -> Result<Self> {
        Self::new(wire.id, wire.delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::tests::{blind_delta, json_error};

    #[test]
    fn an_event_must_have_seen_its_own_writes() -> Result<()> {
        let (delta, blind) = blind_delta()?;
        let err = Event::new(EventId::new("e"), blind).unwrap_err();
        assert!(
            err.to_string().contains("its context has not seen"),
            "{err}"
        );
        // Deserializing checks the same, and recomputes the dots rather than trusting them.
        let event = Event::new(EventId::new("e"), delta)?;
        let mut wire = serde_json::to_value(&event).map_err(json_error)?;
        wire["dots"] = serde_json::json!([]);
        assert_eq!(
            serde_json::from_value::<Event>(wire.clone()).map_err(json_error)?,
            event
        );
        wire["delta"]["context"] = serde_json::json!({ "vector": [] });
        assert!(serde_json::from_value::<Event>(wire).is_err());
        Ok(())
    }
}
