//! A registry's text form: the wire layout it is written in, and the reading that refuses
//! what no writer or merge makes.
//!
//! Apart from `registry.rs` because the reading's checks concern only a registry read from
//! text, never one a writer or a merge made; what the serialized form promises is said on
//! [`Registry`].

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::Registry;
use crate::clock::{CausalContext, Dot, VersionVector};
use crate::error::{Result, redacted};
use crate::identity::{check_parent, check_status};
use crate::key::{DeviceId, DeviceKey, ModuleId};
use crate::slot::{Live, Slot, Tombstone};

mod naming;

use naming::{Named, Naming};

/// Read through the wire layout, and checked as `TryFrom<Wire>` says. serde's messages quote a
/// string found where something else belongs, which for a key stored one level off would show
/// it whole: such strings are replaced by their length (`redacted`).
impl<'de> Deserialize<'de> for Registry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d).map_err(redacted)?;
        Self::try_from(wire).map_err(D::Error::custom)
    }
}

/// The wire layout: keys are structs, so devices travel as a list. `stable` is left out when
/// empty, so a member not named here is refused: `stabel` read as nothing stable.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Wire {
    context: CausalContext,
    #[serde(default, skip_serializing_if = "VersionVector::is_empty")]
    stable: VersionVector,
    devices: Vec<WireSlot>,
}

/// A device: its key, and its slot written beside it (flattened: `key`, `live`, `tombstones`).
#[derive(Clone, Serialize)]
struct WireSlot {
    key: DeviceKey,
    #[serde(flatten)]
    slot: Slot,
}

/// A device's members, every one named: serde refuses no member a flattened struct does not
/// know, and `live` and `tombstones` are each left out when empty, so either misspelt would
/// read as empty: under `liev` beside its tombstones, a live incarnation would read as deleted
/// (its context claims the creation seen), and a replica merging the state would delete the
/// device.
///
/// `history`, the key's running history vector, was written by the first states (2026-11-21,
/// until 54b6bab) and is no longer kept (`Slot::is_known_to` says why): read and dropped, as it
/// was since, so that those states still read.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Member {
    Key,
    Live,
    Tombstones,
    History,
}

const MEMBERS: &[&str] = &["key", "live", "tombstones", "history"];

/// Read by hand rather than derived so that whatever refuses a device's records names the
/// device: a record is read without its key, so a metadata name listed twice or an empty
/// retired list names only its incarnation, and in a text without positions (CBOR) or a
/// registry of a million devices on one line, that does not find it. The records are read
/// through [`Named`], which names a refusal where it is raised, so that it keeps its position
/// (`naming.rs` says why no later naming can); serde_json's own refusals of the text keep
/// theirs and are not named. Writers put `key` first; a text putting it after the records gets
/// their refusals as they are.
impl<'de> Deserialize<'de> for WireSlot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("WireSlot", MEMBERS, DeviceVisitor)
    }
}

struct DeviceVisitor;

impl<'de> Visitor<'de> for DeviceVisitor {
    type Value = WireSlot;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a device: its key, its live incarnations and its tombstones")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<WireSlot, A::Error> {
        let mut key: Option<DeviceKey> = None;
        let mut live: Option<Live> = None;
        let mut tombstones: Option<Vec<Tombstone>> = None;
        let mut history = false;
        while let Some(member) = members.next_key()? {
            match member {
                Member::Key if key.is_some() => return Err(A::Error::duplicate_field("key")),
                Member::Key => key = Some(members.next_value::<KeyText>()?.into()),
                Member::Live if live.is_some() => return Err(A::Error::duplicate_field("live")),
                Member::Live => live = Some(records_of(key.as_ref(), &mut members)?),
                Member::Tombstones if tombstones.is_some() => {
                    return Err(A::Error::duplicate_field("tombstones"));
                }
                Member::Tombstones => tombstones = Some(records_of(key.as_ref(), &mut members)?),
                Member::History if history => return Err(A::Error::duplicate_field("history")),
                Member::History => {
                    history = true;
                    members.next_value::<IgnoredAny>()?;
                }
            }
        }
        let key = key.ok_or_else(|| A::Error::missing_field("key"))?;
        let slot = Slot::read(live.unwrap_or_default(), tombstones.unwrap_or_default())
            .map_err(|reason| A::Error::custom(format!("device {key}: {reason}")))?;
        Ok(WireSlot { key, slot })
    }
}

/// The next member's value, records of the device `key` (its live incarnations or its
/// tombstones), read so that what refuses them names the device where `key` is known.
fn records_of<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    key: Option<&DeviceKey>,
    members: &mut A,
) -> Result<T, A::Error> {
    let Some(key) = key else {
        return members.next_value();
    };
    let seen = Cell::new(false);
    members.next_value_seed(Named::new(PhantomData, Naming::new(key, &seen)))
}

/// `message` without a trailing ` at line L column C`: serde_json's position, which a message
/// without it has not been given.
fn without_position(message: &str) -> &str {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    message
        .rsplit_once(" at line ")
        .and_then(|(before, at)| {
            let (line, column) = at.split_once(" column ")?;
            (digits(line) && digits(column)).then_some(before)
        })
        .unwrap_or(message)
}

/// A device's key as a registry's text holds it. A device's has no `module`, so a module's
/// misspelt (`moduel`) read as its device's key, and the record moved to the device. Refused
/// here rather than by [`DeviceKey`]'s own reader: reports flatten a key into their lines,
/// where serde would refuse none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyText {
    device: DeviceId,
    #[serde(default)]
    module: Option<ModuleId>,
}

impl From<KeyText> for DeviceKey {
    fn from(KeyText { device, module }: KeyText) -> Self {
        DeviceKey { device, module }
    }
}

/// Read as only a writer and merges make a registry: each key once (a device listed twice
/// would otherwise lose one of its two entries without a word), each holding an incarnation
/// or a tombstone, every write held seen by the context (see `Slot::write_unseen_by`), no
/// incarnation waiting for a creation the context has seen (see
/// `Slot::creation_seen_but_missing`: a creation cut from the text), and a stable vector the
/// context has reached (`compact` caps it there; beyond, it would purge tombstones of deletes
/// not yet seen), no module disabled and no device its own parent.
///
/// A module holding a disabled status, in its creation or in its status register, is refused
/// as [`Writer::create`](crate::Writer::create) and [`Writer::set_status`](crate::Writer::set_status)
/// refuse to write one (IoT Hub modules cannot be disabled, and one read would win every
/// merge as a disable does). A record's values are
/// checked as it is read, but a record is read without its key, so its status is checked here.
/// So is a device held as its own parent, as [`Writer::create`](crate::Writer::create) and
/// [`Writer::set_parent`](crate::Writer::set_parent) refuse to write one (an edge device's
/// scope names itself, which a writer must not take as its parent).
///
/// A device listed with neither an incarnation nor a tombstone is refused: no writer leaves
/// one and every merge and compaction drops one, so a state holding it would break
/// `a ⊔ b = b ⊔ a` (the side holding it keeps it, a merge into the other side never takes it)
/// and read as not empty while holding no device. Refused rather than dropped:
/// it says nothing a state could mean, so it is damage, and damage is refused here.
///
/// Tombstones the stable vector covers are purged as they are read, and a device left with
/// nothing by the purge is dropped, as [`Registry::compact`] drops it (read and kept, such a
/// tombstone would stay in `a ⊔ b`, where the join of a slot that `a` alone holds keeps it as
/// it is, and go in `b ⊔ a`, whose join purges what it takes).
/// Purged, not refused: the stable vector says every replica has seen those deletes, so the
/// tombstones carry nothing a merge keeps (every merge under that vector drops them, and the
/// context alone makes the delete win) and the state means what its compaction means;
/// reading it as that state reads it as every merge and compaction would leave it, as a
/// tombstone read twice is read once.
///
/// What it cannot check: a register's past (the writes it says it overwrote) may name dots
/// beyond the context in states merges make (a delta's context holds its own dots and those
/// it overwrote directly, its registers' pasts more), so a past claiming writes that were
/// never overwritten reads as valid, and such a state can break the merge's laws. A
/// registry's text is trusted as much as the replica that wrote it; keep it where only that
/// replica writes.
impl TryFrom<Wire> for Registry {
    type Error = String;

    fn try_from(wire: Wire) -> Result<Self, String> {
        let Wire {
            context,
            stable,
            mut devices,
        } = wire;
        if !devices.is_sorted_by(|a, b| a.key < b.key) {
            devices.sort_by(|a, b| a.key.cmp(&b.key));
            if let Some(twice) = devices.windows(2).find(|w| w[0].key == w[1].key) {
                return Err(format!("device {} is listed twice", twice[0].key));
            }
        }
        let reached = context.vector();
        if let Some((r, n)) = stable.iter().find(|&(r, n)| reached.get(r) < n) {
            return Err(format!(
                "the stable vector reaches {}, beyond the registry's context",
                Dot::new(r, n)
            ));
        }
        if let Some(empty) = devices.iter().find(|d| d.slot.is_empty()) {
            return Err(format!(
                "device {} holds neither an incarnation nor a tombstone",
                empty.key
            ));
        }
        if let Some((key, dot)) = devices
            .iter()
            .find_map(|d| Some((&d.key, d.slot.write_unseen_by(&context)?)))
        {
            return Err(format!(
                "device {key} holds write {dot}, which the registry's context has not seen"
            ));
        }
        if let Some((key, dot)) = devices
            .iter()
            .find_map(|d| Some((&d.key, d.slot.creation_seen_but_missing(&context)?)))
        {
            return Err(format!(
                "device {key} holds incarnation {dot} without its creation, which the \
                 registry's context has seen"
            ));
        }
        if let Some(refused) = devices
            .iter()
            .find_map(|d| check_written(&d.key, &d.slot).err())
        {
            return Err(refused.to_string());
        }
        // Purged as each slot is built, as `purge` would: not a second walk of every slot.
        let slots = devices
            .into_iter()
            .filter_map(|WireSlot { key, mut slot }| {
                if slot.has_stable_tombstones(&stable) {
                    slot.purge(&stable);
                }
                (!slot.is_empty()).then(|| (key, Arc::new(slot)))
            })
            .collect();
        Ok(Self {
            context,
            stable,
            slots,
        })
    }
}

/// Refuses a status or a parent `slot` holds for `key` that a write would refuse
/// ([`check_status`], [`check_parent`]): a creation's, or any value its status or parent
/// register holds. A record is read without its key, so the check is made here, where the key
/// is known.
fn check_written(key: &DeviceKey, slot: &Slot) -> Result<()> {
    for record in &slot.live {
        let written = record.written();
        if key.module.is_some() {
            let created = record.created.iter().map(|c| &c.identity.status);
            let statuses = written.status.entries().iter().map(|e| &e.value);
            for status in created.chain(statuses) {
                check_status(key, status)?;
            }
        } else {
            let created = record.created.iter().map(|c| c.identity.parent.as_ref());
            let parents = written.parent.entries().iter().map(|e| e.value.as_ref());
            for parent in created.chain(parents) {
                check_parent(key, parent)?;
            }
        }
    }
    Ok(())
}

impl From<Registry> for Wire {
    fn from(registry: Registry) -> Self {
        Self {
            context: registry.context,
            stable: registry.stable,
            devices: registry
                .slots
                .into_iter()
                .map(|(key, slot)| WireSlot {
                    key,
                    slot: Arc::unwrap_or_clone(slot),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ReplicaId;
    use crate::error::Result;
    use crate::identity::{Identity, Status, StatusValue};
    use crate::stamp::Stamp;

    /// A registry read from text must be one a writer and merges could have made.
    #[test]
    fn a_registry_listing_a_device_twice_or_holding_an_unseen_write_or_stable_is_refused()
    -> Result<()> {
        let r = ReplicaId::from_u128(1);
        let mut reg = Registry::new();
        let mut w = reg.writer(r, Stamp::new(1, 0));
        w.create(&DeviceKey::device("a")?, Identity::default())?;
        w.create(&DeviceKey::device("b")?, Identity::default())?;
        let mut wire = serde_json::to_value(&reg).expect("serializes");
        let read = |wire: &serde_json::Value| serde_json::from_value::<Registry>(wire.clone());
        assert_eq!(read(&wire).expect("as written"), reg);

        // The same device twice, whatever the order: one of the two would be lost.
        let devices = wire["devices"].as_array_mut().expect("a list");
        devices.push(devices[0].clone());
        let twice = read(&wire).expect_err("a device listed twice");
        assert!(
            twice.to_string().contains("device a is listed twice"),
            "{twice}"
        );
        let devices = wire["devices"].as_array_mut().expect("a list");
        devices.pop();

        // A context that has not seen the creation of b (counter 2): a writer would use
        // counter 2 again.
        wire["context"] =
            serde_json::to_value(CausalContext::from_iter([Dot::new(r, 1)])).expect("serializes");
        let unseen = read(&wire).expect_err("an unseen write");
        assert!(
            unseen
                .to_string()
                .contains(&format!("device b holds write {}", Dot::new(r, 2))),
            "{unseen}"
        );

        // A delete of an incarnation the context has not seen: merged with the replica
        // holding it, the incarnation stayed live beside its tombstone.
        let other = ReplicaId::from_u128(2);
        let mut held = reg.clone();
        held.writer(other, Stamp::new(2, 0))
            .delete(&DeviceKey::device("a")?)?;
        let mut tombstone = serde_json::to_value(&held).expect("serializes");
        tombstone["context"] = serde_json::to_value(CausalContext::from_iter([
            Dot::new(r, 2),
            Dot::new(other, 1),
        ]))
        .expect("serializes");
        let unseen = read(&tombstone).expect_err("a delete of an unseen incarnation");
        assert!(
            unseen
                .to_string()
                .contains(&format!("device a holds write {}", Dot::new(r, 1))),
            "{unseen}"
        );

        // A stable vector past the context: compaction caps it, and past it tombstones of
        // deletes not yet seen would be purged.
        wire["context"] = serde_json::to_value(reg.context()).expect("serializes");
        wire["stable"] =
            serde_json::to_value(VersionVector::from_iter([(r, 3)])).expect("serializes");
        let beyond = read(&wire).expect_err("a stable vector beyond the context");
        assert!(
            beyond.to_string().contains(&format!(
                "the stable vector reaches {}, beyond",
                Dot::new(r, 3)
            )),
            "{beyond}"
        );
        wire["stable"] =
            serde_json::to_value(VersionVector::from_iter([(r, 2)])).expect("serializes");
        assert!(read(&wire).is_ok());
        Ok(())
    }

    /// The first states (2026-11-21) wrote each device's running history vector, since
    /// dropped: a device's entry refuses a member it does not know, but that one still reads,
    /// and is dropped as it was.
    #[test]
    fn a_device_written_with_its_history_vector_still_reads() -> Result<()> {
        let r = ReplicaId::from_u128(1);
        let mut reg = Registry::new();
        reg.writer(r, Stamp::new(1, 0))
            .create(&DeviceKey::device("a")?, Identity::default())?;
        let mut wire = serde_json::to_value(&reg).expect("serializes");
        wire["devices"][0]["history"] =
            serde_json::to_value(VersionVector::from_iter([(r, 1)])).expect("serializes");
        assert_eq!(
            serde_json::from_value::<Registry>(wire.clone()).ok(),
            Some(reg)
        );
        let history = wire["devices"][0]["history"].take();
        wire["devices"][0]["histroy"] = history;
        let err = serde_json::from_value::<Registry>(wire).expect_err("a member misspelt");
        assert!(err.to_string().contains("unknown field `histroy`"), "{err}");
        Ok(())
    }

    /// A device's members read in any order, as a derived reader reads them: writers put the
    /// key first, which lets a refusal name the device, but a text ordered otherwise still
    /// reads, and its refusals are the records' own. A member twice is refused.
    #[test]
    fn a_devices_members_read_in_any_order() -> Result<()> {
        let r = ReplicaId::from_u128(1);
        let (key, mut reg) = (DeviceKey::device("a")?, Registry::new());
        reg.writer(r, Stamp::new(1, 0))
            .create(&key, Identity::default())?;
        let wire = serde_json::to_value(&reg).expect("serializes");
        let entry = &wire["devices"][0];
        let member = |name: &str| format!("\"{name}\":{}", entry[name]);
        let entry_text = |members: &[&str]| {
            let members: Vec<_> = members.iter().map(|m| member(m)).collect();
            format!("{{{}}}", members.join(","))
        };
        let text = |entry: &str| {
            wire.to_string()
                .replace(&entry_text(&["key", "live"]), entry)
        };
        assert!(
            wire.to_string().contains(&entry_text(&["key", "live"])),
            "the entry as written: {wire}"
        );
        let reordered = text(&entry_text(&["live", "key"]));
        assert_eq!(serde_json::from_str::<Registry>(&reordered).ok(), Some(reg));
        let twice = text(&entry_text(&["key", "live", "live"]));
        let err = serde_json::from_str::<Registry>(&twice).expect_err("live twice");
        assert!(err.to_string().contains("duplicate field `live`"), "{err}");
        Ok(())
    }

    #[test]
    fn only_a_trailing_position_is_cut() {
        assert_eq!(without_position("bad at line 3 column 14"), "bad");
        assert_eq!(
            without_position("bad at line 3 column"),
            "bad at line 3 column"
        );
        assert_eq!(
            without_position("at line 1 column 2 of a twin"),
            "at line 1 column 2 of a twin"
        );
    }

    /// Where `value` holds a status of `enabled`, by JSON pointer.
    fn enabled_statuses(value: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(members) => {
                for (name, member) in members {
                    let path = format!("{at}/{name}");
                    if name == "status" && member == "enabled" {
                        out.push(path);
                    } else {
                        enabled_statuses(member, &path, out);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    enabled_statuses(item, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// A writer refuses to disable a module (IoT Hub modules cannot be disabled), so reading
    /// refuses a module disabled in its creation or in its status register (found in review:
    /// it was read, and won every merge as a disable does). A device disabled either way
    /// reads.
    #[test]
    fn a_disabled_module_is_refused_when_read() -> Result<()> {
        let (module, device) = (DeviceKey::module("gw", "m")?, DeviceKey::device("gw")?);
        for key in [&module, &device] {
            let mut reg = Registry::new();
            let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
            w.create(key, Identity::default())?;
            w.set_status(key, StatusValue::new(Status::Enabled, None))?;
            let wire = serde_json::to_value(&reg).expect("serializes");
            let mut at = Vec::new();
            enabled_statuses(&wire, "", &mut at);
            assert_eq!(
                at.len(),
                2,
                "the creation's status and the register's: {wire}"
            );
            for at in at {
                let mut wire = wire.clone();
                *wire.pointer_mut(&at).unwrap_or_else(|| panic!("{at}")) = "disabled".into();
                let read = serde_json::from_value::<Registry>(wire);
                if key == &device {
                    read.unwrap_or_else(|e| panic!("a disabled device reads ({at}): {e}"));
                    continue;
                }
                let err = read.expect_err("a disabled module").to_string();
                assert!(
                    err.contains("invalid status of gw/m: IoT Hub modules cannot be disabled"),
                    "{at}: {err}"
                );
            }
        }
        Ok(())
    }

    /// A device held as its own parent, in its creation or in its parent register, is
    /// refused as [`Writer::create`](crate::Writer::create) and
    /// [`Writer::set_parent`](crate::Writer::set_parent) refuse to write one.
    #[test]
    fn a_device_parented_by_itself_is_refused_when_read() -> Result<()> {
        let key = DeviceKey::device("gw")?;
        let mut reg = Registry::new();
        let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
        let parent = |id: &str| DeviceId::new(id).map(Some);
        w.create(&key, Identity::default().with_parent(parent("p1")?))?;
        w.set_parent(&key, parent("p2")?)?;
        let text = serde_json::to_string(&reg).expect("serializes");
        let read = |text: &str| serde_json::from_str::<Registry>(text);
        read(&text).unwrap_or_else(|e| panic!("as written: {e}"));
        for written in ["\"p1\"", "\"p2\""] {
            assert_eq!(text.matches(written).count(), 1, "{written} in {text}");
            let itself = text.replace(written, "\"gw\"");
            let err = read(&itself).expect_err("a device parented by itself");
            assert!(err.to_string().contains("parent of gw"), "{written}: {err}");
        }
        Ok(())
    }

    /// A key stored where another value belongs is refused without being shown, wherever it
    /// stands (serde quotes the string it found).
    #[test]
    fn a_key_out_of_place_in_a_registry_is_never_shown_by_the_error() -> Result<()> {
        let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
        let symmetric = crate::credentials::SymmetricKey::new(key)?;
        let auth = crate::credentials::Authentication::sas(crate::credentials::Pair::new(
            Some(symmetric.clone()),
            Some(symmetric),
        ));
        let mut reg = Registry::new();
        let mut w = reg.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
        let device = DeviceKey::device("d")?;
        w.create(
            &device,
            Identity::default().with_authentication(auth.clone()),
        )?;
        w.set_authentication(&device, auth)?;
        let wire = serde_json::to_value(&reg).expect("serializes");
        let record = "/devices/0/live/0";
        for at in [
            "/authentication/entries/0",
            "/authentication",
            "/created/identity",
            "/created/identity/status",
            "/created/identity/capabilities",
        ] {
            let mut wire = wire.clone();
            let path = format!("{record}{at}");
            *wire.pointer_mut(&path).unwrap_or_else(|| panic!("{path}")) = key.into();
            let err = serde_json::from_value::<Registry>(wire).expect_err("refused");
            let err = err.to_string();
            assert!(!err.contains(key), "{path}: {err}");
            assert!(err.contains("a string of 24 characters"), "{path}: {err}");
        }
        Ok(())
    }
}
