//! Local writes: each mutation takes fresh dots, applies to the registry, and returns its delta.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::{CausalContext, Dot, ReplicaId};
use crate::credentials::{Authentication, Fingerprint};
use crate::device::DeviceRecord;
use crate::error::{Error, Result};
use crate::identity::{Capabilities, Identity, Status, StatusValue, check_parent, check_status};
use crate::key::{DeviceId, DeviceKey};
use crate::register::MvRegister;
use crate::registry::Registry;
use crate::slot::{Live, Slot, Tombstone};
use crate::stamp::Stamp;
use crate::twin::{self, Section, TwinPath};

/// Writes made by one replica at one stamp. Obtained from [`Registry::writer`].
///
/// Every method applies the write locally and returns the **delta**: a small [`Registry`]
/// holding the write and the dots it overwrote, to ship to other replicas (as state or as an
/// [`Event`](crate::Event)). A write to a key with several live incarnations (concurrent
/// creates) writes each of them.
///
/// Each write's dot is one past every dot the registry has seen from the replica, so the
/// registry must have seen every write already made under that id: see [`ReplicaId`] for
/// what breaks when two writes share a dot. Besides the errors each method lists, every write
/// fails with [`Error::InvalidValue`], changing nothing, when the registry has seen the
/// replica's counter reach `u64::MAX` (only a state read from text can claim that), or when
/// a [`patch_twin`](Writer::patch_twin) needs more counters than are left.
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
/// let mut registry = Registry::new();
/// let key = DeviceKey::device("d")?;
/// let delta = registry.writer(ReplicaId::from_u128(1), Stamp::new(1, 0)).create(&key, Identity::default())?;
/// assert_eq!(delta.live_count(), 1);
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Debug)]
pub struct Writer<'a> {
    registry: &'a mut Registry,
    replica: ReplicaId,
    stamp: Stamp,
}

impl Registry {
    /// A writer for `replica`'s writes, stamped `stamp` (from the caller's [`Hlc`](crate::Hlc):
    /// the crate never reads a clock).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut registry = Registry::new();
    /// let replica = ReplicaId::from_u128(1);
    /// let mut writer = registry.writer(replica, Stamp::new(1_700_000_000_000, 0));
    /// writer.create(&DeviceKey::device("a")?, Identity::default())?;
    /// writer.create(&DeviceKey::device("b")?, Identity::default())?;
    /// // Each write took the replica's next dot.
    /// assert_eq!(registry.context().vector().get(replica), 2);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn writer(&mut self, replica: ReplicaId, stamp: Stamp) -> Writer<'_> {
        Writer {
            registry: self,
            replica,
            stamp,
        }
    }
}

impl Writer<'_> {
    /// The dot of a new write to `key`, taken (seen by the registry's context).
    fn take_dot(&mut self, key: &DeviceKey) -> Result<Dot> {
        let dot = self
            .registry
            .context
            .next_dot(self.replica)
            .ok_or_else(|| counters_exhausted(self.replica, key))?;
        self.registry.context.insert(dot);
        Ok(dot)
    }

    /// The first dot and the last counter of `count` (at least one) new writes to `key`,
    /// when the replica has that many counters left; nothing taken.
    fn dots_left(&self, key: &DeviceKey, count: usize) -> Result<(Dot, u64)> {
        let first = self.registry.context.next_dot(self.replica);
        let last = first.and_then(|first| {
            let more = u64::try_from(count.saturating_sub(1)).ok()?;
            first.counter.checked_add(more)
        });
        match (first, last) {
            (Some(first), Some(last)) => Ok((first, last)),
            _ => Err(counters_exhausted(self.replica, key)),
        }
    }

    /// The dots of `count` new writes to `key`, taken (seen by the registry's context); all or
    /// none.
    fn take_dots(&mut self, key: &DeviceKey, count: usize) -> Result<Vec<Dot>> {
        let (first, last) = self.dots_left(key, count)?;
        let dots: Vec<Dot> = (first.counter..=last)
            .map(|counter| Dot::new(self.replica, counter))
            .collect();
        for &dot in &dots {
            self.registry.context.insert(dot);
        }
        Ok(dots)
    }

    /// Creates `key` as a new incarnation holding `identity`.
    ///
    /// # Errors
    ///
    /// [`Error::DeviceExists`] if `key` has a live incarnation here; [`Error::InvalidValue`]
    /// for a twin that is not a set of leaves (a non-empty object or a null as a leaf's value,
    /// or a leaf under another: [`Identity::with_twin`] builds a twin's leaves from its object), a twin
    /// leaf's value IoT Hub would not store (objects in it nested deeper than the hub's ten
    /// levels, or a key in them breaking its key rules), a value, twin or metadata, nested
    /// deeper than 64 levels, a disabled status for a module (IoT Hub modules cannot be
    /// disabled), or a device as its own parent.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default())?;
    /// assert!(w.create(&key, Identity::default()).is_err());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn create(&mut self, key: &DeviceKey, identity: Identity) -> Result<Registry> {
        if !self.registry.records(key).is_empty() {
            return Err(Error::DeviceExists { key: key.clone() });
        }
        // An identity's fields are public: its values are checked here, where they enter a
        // registry, as every other write checks its value.
        identity.check_values().map_err(|e| e.of_device(key))?;
        check_status(key, &identity.status)?;
        check_parent(key, identity.parent.as_ref())?;
        let dot = self.take_dot(key)?;
        let record = DeviceRecord::created(dot, self.stamp, identity);
        let slot = self.registry.slot_mut(key);
        slot.live.push(record.clone());
        let mut delta_slot = Slot::default();
        delta_slot.live.push(record);
        Ok(delta(key, delta_slot, [dot]))
    }

    /// Deletes every live incarnation of `key`. A later [`create`](Self::create) makes a new
    /// incarnation that no write for these can touch.
    ///
    /// Unlike the other writes, a delete may remove an incarnation whose creation has not
    /// arrived here (see [`Error::PendingDevice`]): it replaces no value, and the creation,
    /// when it comes, is recognised as deleted.
    ///
    /// # A device's modules
    ///
    /// A delete removes `key` alone. Deleting a device leaves its modules (the keys
    /// [`DeviceKey::module`] makes with its id) live, and nothing here ties a module to its
    /// device: a writer, a merge and an [`Ingest`](crate::Ingest) take writes and events for a
    /// module whose device is deleted or was never created. IoT Hub deletes a device's modules
    /// with it and creates none without it; of this crate, only the IoT Hub import plan
    /// ([`iothub::Plan`](crate::iothub::Plan)) applies that rule, leaving such modules out of
    /// what it writes. A library user who keeps a registry in IoT Hub's shape must:
    ///
    /// - delete a device's modules with it: each key of [`Registry::keys`] with the device's
    ///   id and a module, through this writer, as the example does;
    /// - refuse to create or write a module whose device has no live incarnation
    ///   ([`Registry::records`] of the device's key is empty);
    /// - after a merge or an event, take a module whose device has no live incarnation as
    ///   gone (skip it when reading, or delete it): a replica that had not seen the device's
    ///   delete may have created or updated one of its modules meanwhile, and delete wins per
    ///   key, so that module stands whatever was deleted here.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDevice`] if `key` has no live incarnation here.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default())?;
    /// w.delete(&key)?;
    /// assert!(reg.records(&key).is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    ///
    /// A device deleted with its modules, as IoT Hub deletes it:
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let edge = DeviceKey::device("edge-1")?;
    /// let reader = DeviceKey::module("edge-1", "reader")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&edge, Identity::default())?;
    /// w.create(&reader, Identity::default())?;
    ///
    /// w.delete(&edge)?;
    /// assert_eq!(reg.keys().collect::<Vec<_>>(), [&reader]); // the module stayed
    ///
    /// let modules: Vec<DeviceKey> = reg
    ///     .keys()
    ///     .filter(|key| key.device == edge.device && key.module.is_some())
    ///     .cloned()
    ///     .collect();
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// for module in &modules {
    ///     w.delete(module)?; // each delta shipped as the device's is
    /// }
    /// assert_eq!(reg.live_count(), 0); // no live key; the tombstones stay until compaction
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn delete(&mut self, key: &DeviceKey) -> Result<Registry> {
        if self.registry.records(key).is_empty() {
            return Err(Error::UnknownDevice { key: key.clone() });
        }
        // Taken before the delete's own dot: what the deleter knew it was removing.
        let before = Arc::new(self.registry.context.clone());
        let dot = self.take_dot(key)?;
        let stamp = self.stamp;
        let slot = self.registry.slot_mut(key);
        let removed = std::mem::take(&mut slot.live);
        let mut seen: Vec<Dot> = vec![dot];
        for record in &removed {
            // Claiming the incarnation's dot seen is what makes the delete win: a creation
            // that arrives later is recognised as deleted.
            seen.push(record.incarnation);
            seen.extend(record.dots());
            slot.tombstones.push(Tombstone {
                incarnation: record.incarnation,
                deleted: dot,
                stamp,
                seen: Some(Arc::clone(&before)),
            });
        }
        slot.tombstones.sort_unstable();
        let delta_slot = Slot {
            live: Live::new(),
            tombstones: slot
                .tombstones
                .iter()
                .filter(|t| t.deleted == dot)
                .cloned()
                .collect(),
        };
        self.registry.context.extend(seen.iter().copied());
        Ok(delta(key, delta_slot, seen))
    }

    /// Whether `key` takes a write: it has a live incarnation here and, unless `over_pending`,
    /// none of them waits for its creation. Returns how many live incarnations it has.
    fn check_writable(&self, key: &DeviceKey, over_pending: bool) -> Result<usize> {
        let records = self.registry.records(key);
        if records.is_empty() {
            return Err(Error::UnknownDevice { key: key.clone() });
        }
        // A register write overwrites its field's creation value (`device.rs`), which holds
        // only if the writer saw the creation: written over a pending record, an enable would
        // silently replace a creation's `disabled` it never saw.
        // A disable and a credential change stay open: they are how an operator blocks a
        // compromised device, a disable wins anyway, and a credential write retires the
        // creation's credentials it does not keep whether or not it saw them (`view.rs`).
        if !over_pending && records.iter().any(|record| !record.is_created()) {
            return Err(Error::PendingDevice { key: key.clone() });
        }
        Ok(records.len())
    }

    /// Applies `write` to every live incarnation of `key`, each with its own dot; `write`
    /// returns the dots it overwrote and fills the delta record with the registers it wrote,
    /// whole: their past travels with the write (see [`MvRegister`]), so
    /// a receiver that sees this write also knows every older write it superseded.
    ///
    /// A record whose creation has not arrived (pending) takes the write only when
    /// `over_pending` says it may (see [`Error::PendingDevice`]).
    fn write_each(
        &mut self,
        key: &DeviceKey,
        over_pending: bool,
        mut write: impl FnMut(&mut DeviceRecord, &mut DeviceRecord, Dot, Stamp) -> Vec<Dot>,
    ) -> Result<Registry> {
        let count = self.check_writable(key, over_pending)?;
        let dots = self.take_dots(key, count)?;
        let stamp = self.stamp;
        let slot = self.registry.slot_mut(key);
        let mut delta_slot = Slot::default();
        let mut seen = dots.clone();
        for (record, &dot) in slot.live.iter_mut().zip(&dots) {
            let mut delta_record = DeviceRecord::empty(record.incarnation);
            seen.extend(write(record, &mut delta_record, dot, stamp));
            delta_slot.live.push(delta_record);
        }
        Ok(delta(key, delta_slot, seen))
    }

    /// Sets status and reason.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a disable of a module (IoT Hub modules cannot be disabled);
    /// [`Error::UnknownDevice`] if `key` has no live incarnation here;
    /// [`Error::PendingDevice`] if one has not received its creation yet and `value` enables the
    /// device (a disable is taken: it wins whatever it replaces).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp, Status, StatusValue};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default())?;
    /// w.set_status(&key, StatusValue::new(Status::Disabled, Some("lost".into())))?;
    /// assert_eq!(reg.device(&key, &Policy::default()).map(|d| d.status.status), Some(Status::Disabled));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn set_status(&mut self, key: &DeviceKey, value: StatusValue) -> Result<Registry> {
        check_status(key, &value)?;
        let disables = value.status == Status::Disabled;
        self.write_each(key, disables, |record, out, dot, stamp| {
            let overwritten = record.set_status(dot, stamp, value.clone());
            out.written_mut()
                .status
                .clone_from(&record.written().status);
            overwritten
        })
    }

    /// Replaces the credentials. Every key or thumbprint the replaced values held and
    /// `value` does not is retired: no replica that missed this write can bring it back.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDevice`] if `key` has no live incarnation here. Taken over an incarnation
    /// whose creation has not arrived too (a rotation must not wait): the creation's keys and
    /// thumbprints it does not keep are retired all the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Authentication, DeviceKey, Identity, Pair, Policy, Registry, ReplicaId, Stamp, SymmetricKey};
    /// let sas = |k: &SymmetricKey| Authentication::sas(Pair::new(Some(k.clone()), Some(k.clone())));
    /// let old = SymmetricKey::new("b2xkLWtleS0xMjM0NTY3OA==")?;
    /// let fresh = SymmetricKey::new("MDEyMzQ1Njc4OWFiY2RlZg==")?;
    /// let key = DeviceKey::device("d")?;
    /// let mut reg = Registry::new();
    /// reg.writer(ReplicaId::from_u128(1), Stamp::new(1, 0))
    ///     .create(&key, Identity::default().with_authentication(sas(&old)))?;
    /// let stale = reg.clone();
    /// reg.writer(ReplicaId::from_u128(1), Stamp::new(2, 0)).set_authentication(&key, sas(&fresh))?;
    /// // A replica that missed the rotation still holds the old key; merged, it never returns.
    /// reg.merge(&stale);
    /// assert_eq!(reg.device(&key, &Policy::default()).map(|d| d.authentication), Some(sas(&fresh)));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn set_authentication(
        &mut self,
        key: &DeviceKey,
        value: Authentication,
    ) -> Result<Registry> {
        let replaced: Vec<Fingerprint> = self
            .registry
            .records(key)
            .iter()
            .flat_map(DeviceRecord::credentials)
            .collect();
        self.write_each(key, true, |record, out, dot, stamp| {
            let overwritten = record.set_authentication(dot, stamp, value.clone(), &replaced);
            out.written_mut()
                .authentication
                .clone_from(&record.written().authentication);
            out.written_mut()
                .retired
                .clone_from(&record.written().retired);
            overwritten
        })
    }

    /// Sets the capabilities.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDevice`] if `key` has no live incarnation here;
    /// [`Error::PendingDevice`] if one has not received its creation yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Capabilities, DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("gw")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default())?;
    /// let delta = w.set_capabilities(&key, Capabilities { iot_edge: true })?;
    /// assert!(reg.device(&key, &Policy::default()).is_some_and(|d| d.capabilities.iot_edge));
    /// assert_eq!(delta.keys().collect::<Vec<_>>(), [&key]); // what to ship to peers
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn set_capabilities(&mut self, key: &DeviceKey, value: Capabilities) -> Result<Registry> {
        self.write_each(key, false, |record, out, dot, stamp| {
            let overwritten = record.set_capabilities(dot, stamp, value);
            out.written_mut()
                .capabilities
                .clone_from(&record.written().capabilities);
            overwritten
        })
    }

    /// Sets (or clears) the edge parent, by the parent's device id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a device as its own parent (an IoT Edge device's scope
    /// names it, but its parent is another edge device, or none);
    /// [`Error::UnknownDevice`] if `key` has no live incarnation here;
    /// [`Error::PendingDevice`] if one has not received its creation yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceId, DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("leaf")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default())?;
    /// w.set_parent(&key, Some(DeviceId::new("gw")?))?;
    /// let parent = reg.device(&key, &Policy::default()).and_then(|d| d.parent);
    /// assert_eq!(parent.as_ref().map(DeviceId::as_str), Some("gw"));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn set_parent(&mut self, key: &DeviceKey, parent: Option<DeviceId>) -> Result<Registry> {
        check_parent(key, parent.as_ref())?;
        self.write_each(key, false, |record, out, dot, stamp| {
            let overwritten = record.set_parent(dot, stamp, parent.clone());
            out.written_mut()
                .parent
                .clone_from(&record.written().parent);
            overwritten
        })
    }

    /// Sets one twin leaf at `path`, or removes the subtree there with `None` or a JSON
    /// `null` (a `null` removes in a twin patch too). A removal below a leaf (`a.b` where `a`
    /// holds `1`) removes the leaf, and is written at the leaf's path: a concurrent write of
    /// `a` meets it as a value meets a removal of `a`, settled by
    /// [`Policy::fields`](crate::Policy::fields) and reported. So is a removal that empties a
    /// path which held a leaf once, since replaced by writes below it (`a.b` set over a
    /// scalar `a`, then removed): it removes what replaced the leaf, and is written at the
    /// leaf's path. A value that is a non-empty object is not a leaf: use
    /// [`patch_twin`](Self::patch_twin).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a bad path, an object value, or a value IoT Hub would not
    /// store (as [`create`](Self::create) says); [`Error::UnknownDevice`] if
    /// `key` has no live incarnation here; [`Error::PendingDevice`] if one has not
    /// received its creation yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Section, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default())?;
    /// w.set_twin(&key, Section::Tags, "site.room", Some(serde_json::json!("b12")))?;
    /// let device = reg.device(&key, &Policy::default()).expect("live");
    /// assert_eq!(device.tags["site"]["room"], "b12");
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn set_twin(
        &mut self,
        key: &DeviceKey,
        section: Section,
        path: &str,
        value: Option<Value>,
    ) -> Result<Registry> {
        let value = value.filter(|v| !v.is_null());
        let path = twin_leaf_write(section, path, value.as_ref()).map_err(|e| e.of_device(key))?;
        self.write_twin(key, path, value)
    }

    /// [`set_twin`](Self::set_twin) of a path and value already checked.
    fn write_twin(
        &mut self,
        key: &DeviceKey,
        path: TwinPath,
        value: Option<Value>,
    ) -> Result<Registry> {
        self.write_each(key, false, |record, out, dot, stamp| {
            let path = match value {
                Some(_) => path.clone(),
                None => record.removal_path(&path),
            };
            let write = record.set_twin(path, dot, stamp, value.clone());
            for p in write.written {
                if let Some(reg) = record.written().twin.get(&p) {
                    out.written_mut().twin.insert(p, reg.clone());
                }
            }
            for p in write.around {
                if let Some(past) = record.written().twin.get(&p).map(MvRegister::past_only) {
                    if !past.is_void() {
                        out.written_mut().twin.insert(p, past);
                    }
                }
            }
            write.overwritten
        })
    }

    /// Applies a patch to a twin section, leaf by leaf: every leaf of `patch` is set, every
    /// `null` removes. One write (and one dot) per leaf, the values before the removals.
    ///
    /// Leaf by leaf, each write at its own path (a removal below a leaf at the leaf's, as
    /// [`set_twin`](Self::set_twin) writes it), which is what lets it merge with concurrent
    /// writes. It differs from a JSON merge patch (RFC 7386) read against this replica's twin
    /// in three cases, where the merge patch depends on that twin:
    /// - an empty object is a leaf, so `{"a": {}}` sets `a` to `{}` and removes what was under
    ///   it (a merge patch keeps an object's members);
    /// - a `null` under a scalar removes the scalar (`{"a": {"b": null}}` over `"a": 1` leaves
    ///   no `a`, a merge patch leaves `"a": {}`);
    /// - removing an object's last member removes the object (`{"a": {"b": null}}` over
    ///   `"a": {"b": 1}` leaves no `a`, a merge patch leaves `"a": {}`): the twin holds leaves
    ///   only, and an object left without members holds none.
    ///
    /// To keep members, patch them, not their parent with `{}`; to keep an object its last
    /// member left, set it to `{}` once the member is removed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a key breaking IoT Hub's rules, objects nested deeper than
    /// its ten levels, or a value IoT Hub would not store (as [`create`](Self::create) says);
    /// [`Error::UnknownDevice`] if
    /// `key` has no live incarnation here; [`Error::PendingDevice`] if one has not
    /// received its creation yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Section, Stamp};
    /// use serde_json::json;
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default().with_twin(Section::Desired, json!({"a": 1, "b": 2}))?)?;
    /// let patch = json!({"a": null, "c": {"d": true}});
    /// w.patch_twin(&key, Section::Desired, patch.as_object().expect("object"))?;
    /// let device = reg.device(&key, &Policy::default()).expect("live");
    /// assert_eq!(serde_json::Value::Object(device.desired), json!({"b": 2, "c": {"d": true}}));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn patch_twin(
        &mut self,
        key: &DeviceKey,
        section: Section,
        patch: &Map<String, Value>,
    ) -> Result<Registry> {
        // Every key is checked before the first leaf is written: a bad key found halfway
        // would leave the earlier leaves written here, their dots taken, and no delta returned
        // to ship them, so no peer would ever see those writes.
        let mut writes = twin::patch_writes(section, patch).map_err(|e| e.of_device(key))?;
        // The values first, then the removals, each group in the patch's order. A patch's
        // leaves lie at unrelated paths (none under another), so the twin it leaves is the
        // same in any order; but a removal that leaves no value under a path that held a leaf
        // once is written at that path (`DeviceRecord::removal_path`), and made first, the
        // removal of an object's members that the patch replaces (`{"b": {"x": null, "y": 1}}`
        // over a `b` that was a scalar before it held `x`) removed `b` whole for a moment: a
        // concurrent write of `b.z` was then reported as beating that removal, which the
        // patch never meant.
        writes.sort_by_key(|(_, value)| value.is_none());
        // An empty patch writes nothing, but still names a device that must take writes.
        let incarnations = self.check_writable(key, false)?;
        // And every dot the writes take is known to be left, for the same reason (with one
        // counter left, the first leaf would be written and kept).
        let count = incarnations.saturating_mul(writes.len());
        if count > 0 {
            self.dots_left(key, count)?;
        }
        let mut out = Registry::new();
        for (path, value) in writes {
            out.merge(&self.write_twin(key, path, value)?);
        }
        Ok(out)
    }

    /// Sets (or with `None` or a JSON `null` removes) one application metadata value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a value nested deeper than 64 levels (a registry holding
    /// it could not be read back); [`Error::UnknownDevice`] if `key` has no live incarnation
    /// here; [`Error::PendingDevice`] if one has not received its creation yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Stamp};
    /// let mut reg = Registry::new();
    /// let key = DeviceKey::device("d")?;
    /// let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::default());
    /// w.create(&key, Identity::default())?;
    /// w.set_metadata(&key, "owner", Some(serde_json::json!("ops")))?;
    /// assert_eq!(reg.device(&key, &Policy::default()).map(|d| d.metadata["owner"].clone()), Some("ops".into()));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn set_metadata(
        &mut self,
        key: &DeviceKey,
        name: &str,
        value: Option<Value>,
    ) -> Result<Registry> {
        let value = value.filter(|v| !v.is_null());
        if let Some(value) = &value {
            twin::check_metadata(name, value).map_err(|e| e.of_device(key))?;
        }
        self.write_each(key, false, |record, out, dot, stamp| {
            let overwritten = record.set_metadata(name.to_owned(), dot, stamp, value.clone());
            if let Some(reg) = record.written().metadata.get(name) {
                out.written_mut()
                    .metadata
                    .insert(name.to_owned(), reg.clone());
            }
            overwritten
        })
    }
}

/// A write to `key` refused because `replica`'s counters are used up: no write under it can
/// get a dot of its own.
pub(crate) fn counters_exhausted(replica: ReplicaId, key: &DeviceKey) -> Error {
    Error::InvalidValue {
        field: format!("replica {replica}"),
        reason: "it has used every write counter; write under a new replica id".into(),
    }
    .of_device(key)
}

/// The path of one twin leaf write, checked: a valid path, and a leaf IoT Hub stores (or a
/// removal).
fn twin_leaf_write(section: Section, path: &str, value: Option<&Value>) -> Result<TwinPath> {
    let path = TwinPath::new(section, path)?;
    if let Some(value) = value {
        if !twin::is_leaf(value) {
            return Err(Error::InvalidValue {
                field: path.to_string(),
                reason: "a non-empty object is not a leaf; use patch_twin".into(),
            });
        }
        twin::check_leaf(&path, value)?;
    }
    Ok(path)
}

/// A one-key delta whose context is exactly `seen`: the new dots and those they overwrote.
fn delta(key: &DeviceKey, slot: Slot, seen: impl IntoIterator<Item = Dot>) -> Registry {
    let mut registry = Registry {
        context: CausalContext::from_iter(seen),
        ..Registry::default()
    };
    registry
        .slots
        .insert(key.clone(), std::sync::Arc::new(slot));
    registry
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use crate::{
        DeviceId, DeviceKey, Error, Identity, Registry, ReplicaId, Section, Stamp, Status,
        StatusValue,
    };

    const R: ReplicaId = ReplicaId::from_u128(1);

    /// What `delete`'s doc says of modules: a module is a key of its own. Deleting its device
    /// leaves it, one is created for a device never created, and one a replica created while
    /// another deleted the device stands after the merge, whichever side merges.
    #[test]
    fn a_module_is_a_key_of_its_own_whatever_its_device() -> crate::Result<()> {
        let other = ReplicaId::from_u128(2);
        let (edge, reader) = (
            DeviceKey::device("edge-1")?,
            DeviceKey::module("edge-1", "reader")?,
        );
        let mut base = Registry::new();
        base.writer(R, Stamp::new(1, 0))
            .create(&edge, Identity::default())?;
        let mut deleted = base.clone();
        deleted.writer(R, Stamp::new(2, 0)).delete(&edge)?;
        let mut added = base;
        added
            .writer(other, Stamp::new(3, 0))
            .create(&reader, Identity::default())?;
        for (mut mine, theirs) in [(deleted.clone(), &added), (added.clone(), &deleted)] {
            mine.merge(theirs);
            assert_eq!(mine.keys().collect::<Vec<_>>(), [&reader]);
        }
        let mut unknown = Registry::new();
        unknown
            .writer(R, Stamp::new(1, 0))
            .create(&DeviceKey::module("never", "m")?, Identity::default())?;
        assert_eq!(unknown.live_count(), 1);
        Ok(())
    }

    /// A device is never its own edge parent: an edge device's own scope names it, but its
    /// parent is another edge device or none (IoT Hub takes no device as its own parent). A
    /// create, a parent write and a saved state read back refuse one, naming the device; a
    /// module, which IoT Hub gives no parent of its own, is not refused here.
    #[test]
    fn a_device_is_refused_as_its_own_parent() -> crate::Result<()> {
        let key = DeviceKey::device("gw")?;
        let itself = Some(DeviceId::new("gw")?);
        let mut registry = Registry::new();
        let mut writer = registry.writer(R, Stamp::default());
        let created = writer.create(&key, Identity::default().with_parent(itself.clone()));
        writer.create(&key, Identity::default())?;
        let before = registry.clone();
        let mut writer = registry.writer(R, Stamp::default());
        let set = writer.set_parent(&key, itself.clone());
        for refused in [created, set] {
            let err = refused.expect_err("refused");
            assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
            assert!(err.to_string().contains("parent of gw"), "{err}");
        }
        // Refused whole: no dot taken, nothing written.
        assert_eq!(registry, before);
        // Another device, or none, is a parent.
        let mut writer = registry.writer(R, Stamp::default());
        writer.set_parent(&key, Some(DeviceId::new("gw2")?))?;
        writer.set_parent(&key, None)?;
        let module = DeviceKey::module("gw", "m")?;
        writer.create(&module, Identity::default().with_parent(itself))?;
        Ok(())
    }

    #[test]
    fn a_refused_twin_path_names_the_device() -> crate::Result<()> {
        let mut registry = Registry::new();
        let key = DeviceKey::device("pump-17")?;
        let mut writer = registry.writer(R, Stamp::default());
        writer.create(&key, Identity::default())?;
        let set = writer.set_twin(&key, Section::Tags, "bad key", Some(json!(1)));
        let patch = json!({"ok": 1, "bad key": 2});
        let patched = writer.patch_twin(&key, Section::Tags, patch.as_object().expect("object"));
        for err in [set, patched].map(|r| r.expect_err("refused")) {
            assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
            assert!(err.to_string().contains("tags.bad key of pump-17"), "{err}");
        }
        Ok(())
    }

    /// A value too deep for a registry to read back is refused wherever it would enter one:
    /// a create (its identity's fields are public), a twin leaf, a metadata value, a saved
    /// registry read back (found in review: a tag nested 130 arrays deep made reading the
    /// device panic in a debug build, and drop every tag in a release one).
    #[test]
    fn a_value_too_deep_to_read_back_never_enters_a_registry() -> crate::Result<()> {
        let deep = (0..65).fold(json!("x"), |v, _| json!([v]));
        let key = DeviceKey::device("d")?;
        let mut registry = Registry::new();
        let mut writer = registry.writer(R, Stamp::default());
        let mut identity = Identity::default();
        let path = crate::TwinPath::new(Section::Tags, "a")?;
        identity.twin.insert(path, deep.clone());
        let created = writer.create(&key, identity.clone());
        let in_metadata = Identity::default().with_metadata("m", deep.clone());
        let created_with_metadata = writer.create(&key, in_metadata);
        let by_patch = Identity::default().with_twin(Section::Tags, json!({ "a": deep.clone() }));
        assert!(by_patch.is_err());
        writer.create(&key, Identity::default())?;
        let set = writer.set_twin(&key, Section::Tags, "a", Some(deep.clone()));
        let set_metadata = writer.set_metadata(&key, "m", Some(deep.clone()));
        for refused in [created, created_with_metadata, set, set_metadata] {
            let err = refused.expect_err("refused");
            assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
            assert!(err.to_string().contains("64 levels"), "{err}");
        }
        // Read back: a state whose creation holds it, as a writer before this check made one.
        let mut saved = serde_json::to_value(&registry).map_err(|e| Error::InvalidValue {
            field: "registry".into(),
            reason: e.to_string(),
        })?;
        let creation = find_identity(&mut saved).expect("a creation's identity");
        creation["twin"] = json!({ "tags.a": deep });
        let read = serde_json::from_value::<Registry>(saved).map(|_| ());
        assert!(read.is_err_and(|e| e.to_string().contains("64 levels")));
        Ok(())
    }

    /// A created twin is a set of leaves, as one read from a hub is: otherwise it read one way
    /// while its record was untouched and another once a write to another field settled its
    /// leaves by their shape (found in review: a status write changed the device's tags).
    #[test]
    fn a_create_whose_twin_is_not_a_set_of_leaves_is_refused() -> crate::Result<()> {
        let key = DeviceKey::device("d")?;
        let path = |p: &str| crate::TwinPath::new(Section::Tags, p);
        let twins = [
            vec![(path("a")?, json!({"c": 3}))],
            vec![(path("a")?, json!(1)), (path("a.b")?, json!(2))],
            vec![(path("a")?, json!([])), (path("a.b.c")?, json!(2))],
            vec![(path("a")?, json!(null))],
        ];
        let mut registry = Registry::new();
        for twin in twins {
            let identity = Identity {
                twin: twin.into_iter().collect(),
                ..Identity::default()
            };
            let err = (registry.writer(R, Stamp::default()))
                .create(&key, identity)
                .expect_err("refused");
            assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
            assert!(err.to_string().contains("tags.a"), "{err}");
            assert_eq!(registry, Registry::new());
        }
        // An empty object is a leaf; siblings and paths that only share a prefix are not nested.
        let identity = Identity {
            twin: [
                (path("a")?, json!({})),
                (path("a-b.c")?, json!(1)),
                (path("ab")?, json!(2)),
            ]
            .into_iter()
            .collect(),
            ..Identity::default()
        };
        registry
            .writer(R, Stamp::default())
            .create(&key, identity)?;
        Ok(())
    }

    /// IoT Hub keeps no status for a module: a disable written for one would win every
    /// merge, then be refused by the export check or lost by an import (found in review).
    #[test]
    fn a_module_is_never_disabled() -> crate::Result<()> {
        let module = DeviceKey::module("gw", "m")?;
        let disabled = StatusValue::new(Status::Disabled, None);
        let mut registry = Registry::new();
        let mut writer = registry.writer(R, Stamp::default());
        let created = writer.create(&module, Identity::default().with_status(disabled.clone()));
        writer.create(&module, Identity::default())?;
        let set = writer.set_status(&module, disabled.clone());
        for refused in [created.map(|_| ()), set.map(|_| ())] {
            let err = refused.expect_err("refused");
            assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
            assert!(err.to_string().contains("status of gw/m"), "{err}");
        }
        // Enabling a module, and disabling its device, stay open.
        writer.set_status(&module, StatusValue::new(Status::Enabled, None))?;
        let device = DeviceKey::device("gw")?;
        writer.create(&device, Identity::default())?;
        writer.set_status(&device, disabled)?;
        Ok(())
    }

    /// The first object holding an `identity` member, in document order.
    fn find_identity(value: &mut serde_json::Value) -> Option<&mut serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => {
                if map.contains_key("identity") {
                    return map.get_mut("identity");
                }
                map.values_mut().find_map(find_identity)
            }
            serde_json::Value::Array(items) => items.iter_mut().find_map(find_identity),
            _ => None,
        }
    }

    /// `patch_twin` writes leaf by leaf, as its documentation says, where a JSON merge patch
    /// read against the replica's twin would differ: an empty object is a leaf, a `null`
    /// under a scalar removes the scalar, and removing an object's last member removes the
    /// object (the twin holds leaves only; found in review, 2026-11-23: this third case was
    /// not documented).
    #[test]
    fn a_patch_writes_leaves_where_a_merge_patch_reads_the_twin() -> crate::Result<()> {
        let key = DeviceKey::device("d")?;
        let patched = |twin: serde_json::Value, patch: serde_json::Value| {
            let mut registry = Registry::new();
            let mut writer = registry.writer(R, Stamp::default());
            let identity = Identity::default().with_twin(Section::Desired, twin)?;
            writer.create(&key, identity)?;
            let patch = patch.as_object().cloned().unwrap_or_default();
            writer.patch_twin(&key, Section::Desired, &patch)?;
            let device = registry.device(&key, &crate::Policy::default());
            Ok::<_, Error>(device.map(|d| serde_json::Value::Object(d.desired)))
        };
        let empty = patched(json!({"a": {"b": 1}, "c": 2}), json!({"a": {}}))?;
        assert_eq!(empty, Some(json!({"a": {}, "c": 2})));
        let under_scalar = patched(json!({"a": 1, "c": 2}), json!({"a": {"b": null}}))?;
        assert_eq!(under_scalar, Some(json!({"c": 2})));
        let last_member = patched(json!({"a": {"b": 1}, "c": 2}), json!({"a": {"b": null}}))?;
        assert_eq!(last_member, Some(json!({"c": 2})));
        let one_of_two = patched(json!({"a": {"b": 1, "d": 3}}), json!({"a": {"b": null}}))?;
        assert_eq!(one_of_two, Some(json!({"a": {"d": 3}})));
        Ok(())
    }

    /// A register's text cannot tell a `null` value from a removal (both are `null`): a
    /// `null` written was held as a value, which a replica that saved and reloaded its state
    /// read as a removal, one write read two ways (2026-11-23, found in review). It is a
    /// removal, as in a twin patch.
    #[test]
    fn a_null_value_is_a_removal_and_reads_back_as_written() -> crate::Result<()> {
        let mut registry = Registry::new();
        let key = DeviceKey::device("d")?;
        let mut writer = registry.writer(R, Stamp::default());
        writer.create(&key, Identity::default().with_metadata("m", json!(1)))?;
        writer.set_twin(&key, Section::Tags, "a", Some(json!(1)))?;
        let twin = writer.set_twin(&key, Section::Tags, "a", Some(json!(null)))?;
        let metadata = writer.set_metadata(&key, "m", Some(json!(null)))?;
        for state in [&registry, &twin, &metadata] {
            let text = serde_json::to_string(state).expect("serializes");
            let read: Registry = serde_json::from_str(&text).expect("reads back");
            assert_eq!(&read, state);
        }
        let device = registry
            .device(&key, &crate::Policy::default())
            .expect("live");
        assert_eq!(
            (device.tags.get("a"), device.metadata.get("m")),
            (None, None)
        );
        Ok(())
    }

    /// An empty patch writes nothing, but is refused as any write would be: a caller learns
    /// that the device it names is not here (found in review: it returned an empty delta).
    #[test]
    fn an_empty_patch_to_a_device_not_here_is_refused() -> crate::Result<()> {
        let mut registry = Registry::new();
        let key = DeviceKey::device("ghost")?;
        let patched =
            registry
                .writer(R, Stamp::default())
                .patch_twin(&key, Section::Tags, &Map::new());
        assert!(
            matches!(patched, Err(Error::UnknownDevice { .. })),
            "{patched:?}"
        );
        assert_eq!(registry, Registry::new());
        Ok(())
    }
}
