//! No input panics a reader: export lines, export files, and the crate's own wire forms
//! (registries, events, ingests). Each is given arbitrary text and valid input damaged at
//! random, and must give a value or an error that says where the input is wrong; whatever
//! reads as a registry must then merge, both ways, without panicking (merging is total) and
//! to one state (`a ⊔ b = b ⊔ a`).
//!
//! What a damaged state is merged with shares none of its dots. A dot names one write, and a
//! damage that changes a write's value but not its dot makes two writes of one name: merging
//! those breaks the laws (each side keeps its own), which no reader of one state can see. The
//! ingest refuses such a pair of events (`Error::DotReused`); for states it is the caller's to
//! keep replica ids unique and never to restore a replica from a backup under its old id.

mod common;

use std::path::Path;

use common::{History, event, history};
use failback::iothub::{ExportReader, parse_line};
use failback::{Error, Event, Identity, Ingest, Registry, Stamp, Status, StatusValue};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text a damage can insert: JSON's punctuation, values at the edges of what the readers
/// accept, and pieces of the fields they look for.
const TOKENS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\\",
    " ",
    "\n",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "é",
    "😀",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "\"id\":",
    "\"moduleId\":",
    "\"status\":",
    "\"enabled\"",
    "\"$edgeAgent\"",
    "\"authentication\":",
    "\"symmetricKey\":",
    "\"x509Thumbprint\":",
    "\"deviceScope\":",
    "\"ms-azure-iot-edge://edge-1\"",
    "\"capabilities\":",
    "\"properties\":",
    "\"importMode\":",
    "\"vector\":",
    "\"cloud\":",
    "\"00000000-0000-0000-0000-000000000001\"",
];

/// One damage: what to do, where (a fraction of the length), how much, and which token.
#[derive(Clone, Debug)]
struct Damage {
    kind: u8,
    at: u16,
    len: u8,
    token: usize,
}

fn damages() -> impl Strategy<Value = Vec<Damage>> {
    let damage =
        (0u8..4, any::<u16>(), 1u8..16, 0..TOKENS.len()).prop_map(|(kind, at, len, token)| {
            Damage {
                kind,
                at,
                len,
                token,
            }
        });
    proptest::collection::vec(damage, 1..6)
}

/// `text` with each damage done in turn: cut a run of characters, repeat one, insert a token,
/// or swap two neighbours. Works on characters, so the result is still text.
fn damaged(text: &str, damages: &[Damage]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for d in damages {
        let at = usize::from(d.at) * (chars.len() + 1) / (usize::from(u16::MAX) + 1);
        let end = (at + usize::from(d.len)).min(chars.len());
        match d.kind {
            0 => {
                chars.drain(at..end);
            }
            1 => {
                let run: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, run);
            }
            2 => {
                chars.splice(at..at, TOKENS[d.token].chars());
            }
            _ => {
                if at + 1 < chars.len() {
                    chars.swap(at, at + 1);
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// A value near `node`: a number moved or at an edge, a string emptied, changed in one
/// character or replaced by a token, a flag flipped, a container emptied or nulled.
fn nearby(node: &Value, d: &Damage) -> Value {
    let step = u64::from(d.len);
    match node {
        Value::Number(n) => match d.token % 4 {
            0 => json!(0),
            1 => json!(n.as_u64().unwrap_or(0).saturating_add(step)),
            2 => json!(n.as_u64().unwrap_or(0).saturating_sub(step)),
            _ => json!(u64::MAX),
        },
        Value::String(text) => match d.token % 3 {
            0 => json!(""),
            1 => {
                let mut chars: Vec<char> = text.chars().collect();
                if let Some(c) = chars.get_mut(usize::from(d.len) % text.len().max(1)) {
                    *c = if *c == '0' { '1' } else { '0' };
                }
                json!(chars.into_iter().collect::<String>())
            }
            _ => json!(TOKENS[d.token]),
        },
        Value::Bool(flag) => json!(!flag),
        Value::Null => json!(0),
        Value::Array(_) | Value::Object(_) => {
            [Value::Null, json!([]), json!({})][d.token % 3].clone()
        }
    }
}

/// `text`, valid JSON, with each damage done to its tree in turn: a node replaced by a value
/// near it, removed from its object or array, repeated in its array, or swapped with the next
/// item. The result is valid JSON that the reader must judge by its meaning alone.
fn damaged_tree(text: &str, damages: &[Damage]) -> String {
    let mut value: Value = serde_json::from_str(text).expect("the wire form is JSON");
    for d in damages {
        let mut all = Vec::new();
        common::pointers(&value, "", &mut all);
        let at = &all[usize::from(d.at) * all.len() / (usize::from(u16::MAX) + 1)];
        let (parent, last) = at.rsplit_once('/').unwrap_or(("", ""));
        let index = last.parse::<usize>().ok();
        match (d.kind, value.pointer_mut(parent)) {
            (0, _) => {
                if let Some(node) = value.pointer_mut(at) {
                    *node = nearby(node, d);
                }
            }
            (1, Some(Value::Object(members))) => {
                members.remove(&last.replace("~1", "/").replace("~0", "~"));
            }
            (1, Some(Value::Array(items))) => {
                if let Some(i) = index.filter(|&i| i < items.len()) {
                    items.remove(i);
                }
            }
            (2, Some(Value::Array(items))) => {
                if let Some(i) = index.filter(|&i| i < items.len()) {
                    items.insert(i, items[i].clone());
                }
            }
            (_, Some(Value::Array(items))) => {
                if let Some(i) = index.filter(|&i| i + 1 < items.len()) {
                    items.swap(i, i + 1);
                }
            }
            _ => {}
        }
    }
    serde_json::to_string(&value).expect("a JSON value serialises")
}

/// `text` damaged in its characters or, when `in_tree`, in its JSON tree.
fn damaged_wire(text: &str, damages: &[Damage], in_tree: bool) -> String {
    if in_tree {
        damaged_tree(text, damages)
    } else {
        damaged(text, damages)
    }
}

/// A line parsed, or refused with an error at that line of that file, at a column inside it.
fn check_line(text: &str) -> Result<(), TestCaseError> {
    match parse_line(Path::new("in.jsonl"), 7, text) {
        Ok(_) => Ok(()),
        Err(Error::Parse {
            path, line, column, ..
        }) => {
            prop_assert_eq!(path, Path::new("in.jsonl"));
            prop_assert_eq!(line, 7);
            prop_assert!(
                (1..=text.len() as u64 + 1).contains(&column),
                "column {} outside a line of {} bytes",
                column,
                text.len()
            );
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!(
            "a line's error names no place: {other}"
        ))),
    }
}

/// Whatever reads as a registry merges with `other` both ways without panicking, to one state
/// (`a ⊔ b = b ⊔ a`), and writes itself out again as something that reads back the same.
fn merges_and_round_trips(registry: &Registry, other: &Registry) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(registry).expect("a registry serialises");
    let again: Registry = serde_json::from_str(&text).expect("what was written reads back");
    prop_assert_eq!(&again, registry);
    // Both ways, so that each side's shortcuts run: debug builds check every one against the
    // general join, which is how this file found the states the readers now refuse or tidy.
    let (mut a, mut b) = (registry.clone(), other.clone());
    a.merge(other);
    b.merge(registry);
    // `other` shares no dot with anything read, so the laws hold whatever the damage: a
    // state read as no writer or merge leaves one broke them (2026-11-23, found in review: a
    // device holding nothing, a tombstone under the stable vector).
    prop_assert_eq!(&a, &b, "a ⊔ b = b ⊔ a");
    prop_assert_eq!(
        registry.is_empty(),
        registry.keys().next().is_none()
            && registry.deleted().next().is_none()
            && registry.context().is_empty(),
        "is_empty() disagrees with the devices and deletes held and the context"
    );
    Ok(())
}

fn wire(h: &History) -> String {
    serde_json::to_string(&h.join()).expect("a registry serialises")
}

/// A registry of a replica no history has, creating two of the pool's keys: it shares no dot
/// with anything a history or a damage makes.
fn stranger() -> Registry {
    let mut registry = Registry::new();
    let mut writer = registry.writer(common::replica(9), Stamp::new(7, 0));
    for k in 0..2 {
        writer
            .create(&common::key(k), Identity::default())
            .expect("a fresh registry has no device");
    }
    registry
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn any_text_is_a_line_or_an_error_at_that_line(text in any::<String>()) {
        check_line(&text)?;
    }

    #[test]
    fn json_like_text_is_a_line_or_an_error_at_that_line(
        text in "[{}\\[\\]\":,. a-zA-Z0-9$\\\\-]{0,120}",
    ) {
        check_line(&text)?;
    }

    #[test]
    fn damaged_hub_lines_are_lines_or_errors_at_that_line(
        pick in any::<prop::sample::Index>(),
        damages in damages(),
        in_tree in any::<bool>(),
    ) {
        let text = damaged_wire(pick.get::<String>(common::shipped_lines()), &damages, in_tree);
        check_line(&text)?;
    }

    #[test]
    fn any_bytes_read_as_an_export_stop_at_an_error_in_that_file(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        pick in any::<prop::sample::Index>(),
        damages in damages(),
    ) {
        // Arbitrary bytes (invalid UTF-8 included), then a damaged hub line after them.
        let mut input = bytes;
        input.push(b'\n');
        input.extend(damaged(pick.get::<String>(common::shipped_lines()), &damages).into_bytes());
        let mut reader = ExportReader::new("in.jsonl", input.as_slice());
        let mut errors = 0;
        for line in reader.by_ref() {
            if let Err(err) = line {
                errors += 1;
                let is_in_file = matches!(&err, Error::Parse { path, line, column, .. }
                    if path == Path::new("in.jsonl") && *line >= 1 && *column >= 1);
                prop_assert!(is_in_file, "an error outside the file: {}", err);
            }
        }
        prop_assert!(errors <= 1, "the reader went on after an error");
    }

    #[test]
    fn damaged_registries_read_as_registries_that_merge_or_are_refused(
        h in history(),
        damages in damages(),
        in_tree in any::<bool>(),
    ) {
        let text = damaged_wire(&wire(&h), &damages, in_tree);
        if let Ok(registry) = serde_json::from_str::<Registry>(&text) {
            merges_and_round_trips(&registry, &stranger())?;
        }
    }

    #[test]
    fn damaged_events_and_ingests_read_or_are_refused(
        h in history(),
        damages in damages(),
        in_tree in any::<bool>(),
    ) {
        for (i, delta) in h.deltas().iter().enumerate().take(3) {
            let event = event(format!("e{i}"), delta.registry.clone());
            let text = serde_json::to_string(&event).expect("an event serialises");
            if let Ok(event) = serde_json::from_str::<Event>(&damaged_wire(&text, &damages, in_tree)) {
                // A damaged event that still reads is a valid event: it applies or is
                // refused with an error, and its delta merges like any registry.
                let mut ingest = Ingest::new(stranger());
                let _ = ingest.apply(&event);
                merges_and_round_trips(event.delta(), &stranger())?;
            }
        }
        let mut ingest = Ingest::new(Registry::new());
        for (i, delta) in h.deltas().iter().enumerate() {
            let event = event(format!("e{i}"), delta.registry.clone());
            ingest.apply(&event).expect("a writer's deltas ingest in order");
        }
        let text = serde_json::to_string(&ingest).expect("an ingest serialises");
        if let Ok(ingest) = serde_json::from_str::<Ingest>(&damaged_wire(&text, &damages, in_tree)) {
            merges_and_round_trips(ingest.registry(), &stranger())?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the damages above found a reader accepting, each now read as a join leaves it or refused.

/// The first member named `field` anywhere in `value`.
fn member<'a>(value: &'a mut Value, field: &str) -> &'a mut Value {
    fn find<'a>(value: &'a mut Value, field: &str) -> Option<&'a mut Value> {
        match value {
            Value::Object(members) => {
                if members.contains_key(field) {
                    return members.get_mut(field);
                }
                members.values_mut().find_map(|v| find(v, field))
            }
            Value::Array(items) => items.iter_mut().find_map(|v| find(v, field)),
            _ => None,
        }
    }
    find(value, field).unwrap_or_else(|| panic!("the wire form has a {field}"))
}

fn read_edited(registry: &Registry, edit: impl FnOnce(&mut Value)) -> serde_json::Result<Registry> {
    let mut value = serde_json::to_value(registry).expect("a registry serialises");
    edit(&mut value);
    serde_json::from_value(value)
}

#[test]
fn a_tombstone_read_twice_is_held_once() {
    let registry = common::written_and_deleted();
    let read = read_edited(&registry, |v| {
        let Value::Array(tombstones) = member(v, "tombstones") else {
            panic!("tombstones are a list")
        };
        tombstones.push(tombstones[0].clone());
    })
    .expect("a repeated tombstone reads");
    assert_eq!(read, registry);
}

#[test]
fn a_void_register_read_in_a_map_is_absent() {
    let registry = common::written_and_deleted();
    let read = read_edited(&registry, |v| {
        let Value::Object(metadata) = member(v, "metadata") else {
            panic!("metadata is a map")
        };
        let void = failback::MvRegister::<Option<Value>>::new();
        metadata.insert(
            "rack".into(),
            serde_json::to_value(void).expect("serialises"),
        );
    })
    .expect("a void register reads");
    assert_eq!(read, registry);
}

#[test]
fn an_incarnation_held_twice_for_one_key_is_refused() {
    let err = read_edited(&common::written_and_deleted(), |v| {
        let Value::Array(live) = member(v, "live") else {
            panic!("incarnations are a list")
        };
        live.push(live[0].clone());
    })
    .expect_err("two records for one incarnation");
    assert!(err.to_string().contains("held twice"), "{err}");
}

#[test]
fn a_write_under_counter_0_is_refused() {
    let err = read_edited(&common::written_and_deleted(), |v| {
        *member(member(v, "incarnation"), "counter") = json!(0);
    })
    .expect_err("counters start at 1");
    assert!(err.to_string().contains("counter 0"), "{err}");
}

/// A status write's delta with its device cut from the list still reads: its context claims
/// the write, and a reader cannot tell that claim from one a delete or an overwrite left. Joined
/// with a concurrent creation of the device, it claims the write beside an incarnation other
/// than the write's, and the merge with the state holding the write (which shares its dots)
/// gave the device disabled one way and enabled the other (2026-11-23, found in review; debug
/// builds panicked on the shortcut check).
#[test]
fn a_state_claiming_a_write_it_does_not_hold_merges_to_one_state_both_ways() {
    let (a, c) = (common::replica(0), common::replica(2));
    let mut holder = Registry::new();
    holder
        .writer(a, Stamp::new(1, 0))
        .create(&common::key(0), Identity::default())
        .expect("fresh");
    let disable = holder
        .writer(a, Stamp::new(2, 0))
        .set_status(&common::key(0), StatusValue::new(Status::Disabled, None))
        .expect("live");
    let mut claims = read_edited(&disable, |v| *member(v, "devices") = json!([]))
        .expect("a reader cannot tell the claim from an overwrite's");
    claims
        .writer(c, Stamp::new(3, 0))
        .create(&common::key(0), Identity::default())
        .expect("fresh here");
    merges_and_round_trips(&claims, &holder).expect("one state both ways");
    let mut merged = claims.clone();
    merged.merge(&holder);
    assert_eq!(
        merged.records(&common::key(0)).len(),
        2,
        "both incarnations stand"
    );
}

/// A record waiting for its creation holds a write that arrived first; one holding nothing is
/// damage, refused: read, it made merges disagree by direction (a state whose context had
/// seen nothing was included in any other, so one way never read the record).
#[test]
fn an_incarnation_holding_neither_its_creation_nor_a_write_is_refused() {
    let registry = common::written_and_deleted();
    let err = read_edited(&registry, |v| {
        let Value::Array(live) = member(v, "live") else {
            panic!("live records are a list")
        };
        let stray = json!({ "incarnation": { "replica": common::replica(5), "counter": 1 } });
        live.push(stray);
    })
    .expect_err("a record holding nothing");
    assert!(
        err.to_string()
            .contains("holds neither its creation nor a write"),
        "{err}"
    );
}

/// A record waits for its creation only where a write for it arrived first, so the context
/// of the state holding it has not seen the creation: a writer's delta claims its own dots
/// and those they overwrote, never the incarnation they wrote to, and a join that brings the
/// creation's dot brings the creation or the delete that removed it. One whose creation was
/// cut from the text while the context still claims it seen is refused (found in review:
/// read, the creation's values were gone for good, every write failed as waiting for the
/// creation, and merging an intact peer changed nothing, its context being included).
#[test]
fn a_record_without_a_creation_its_context_has_seen_is_refused() {
    let key = common::key(0);
    let mut registry = Registry::new();
    let mut w = registry.writer(common::replica(0), Stamp::new(1, 0));
    w.create(&key, Identity::default().with_metadata("site", json!("a")))
        .expect("fresh");
    let write = w
        .set_metadata(&key, "owner", Some(json!("ops")))
        .expect("live");
    let incarnation = registry.records(&key)[0].incarnation();
    let err = read_edited(&registry, |v| {
        let Value::Object(record) = &mut v["devices"][0]["live"][0] else {
            panic!("a record is an object")
        };
        record.remove("created").expect("a created record");
    })
    .expect_err("a creation the context has seen, cut from its record");
    assert!(
        err.to_string().contains(&format!(
            "device {key} holds incarnation {incarnation} without its creation, \
             which the registry's context has seen"
        )),
        "{err}"
    );
    // The write delivered ahead of its creation: its record waits for it, and reads back.
    let mut ahead = Registry::new();
    ahead.merge(&write);
    assert!(!ahead.records(&key)[0].is_created());
    assert_eq!(
        read_edited(&ahead, |_| {}).expect("a record waiting"),
        ahead
    );
}

#[test]
fn a_device_holding_neither_an_incarnation_nor_a_tombstone_is_refused() {
    let key = serde_json::to_value(common::key(2)).expect("a key serialises");
    for entry in [
        json!({ "key": key }),
        json!({ "key": key, "live": [], "tombstones": [] }),
    ] {
        let err = read_edited(&common::written_and_deleted(), |v| {
            let Value::Array(devices) = member(v, "devices") else {
                panic!("devices are a list")
            };
            devices.push(entry.clone());
        })
        .expect_err("a device holding nothing");
        assert!(
            err.to_string().contains(&format!(
                "device {} holds neither an incarnation nor a tombstone",
                common::key(2)
            )),
            "{err}"
        );
    }
}

/// A slot holding an incarnation live beside its own tombstone: no writer or merge leaves one
/// (a delete removes what it names), and read, it merged by direction (found in review: the
/// device stayed in `d ⊔ s` and went in `s ⊔ d`, for an `s` holding the delete).
#[test]
fn an_incarnation_both_live_and_deleted_is_refused() {
    let key = common::key(0);
    let mut created = Registry::new();
    (created.writer(common::replica(0), Stamp::new(1, 0)))
        .create(&key, Identity::default())
        .expect("fresh");
    let mut deleted = created.clone();
    (deleted.writer(common::replica(0), Stamp::new(2, 0)))
        .delete(&key)
        .expect("live");
    let live = serde_json::to_value(&created).expect("a registry serialises")["devices"][0]["live"]
        .clone();
    let err = read_edited(&deleted, |v| v["devices"][0]["live"] = live)
        .expect_err("an incarnation live and deleted");
    assert!(
        err.to_string().contains(&format!(
            "incarnation {} is held live and deleted",
            created.records(&key)[0].incarnation()
        )),
        "{err}"
    );
}

#[test]
fn tombstones_the_stable_vector_covers_are_purged_when_read() {
    let registry = common::written_and_deleted();
    let everyone = registry.context().vector().clone();
    let read = read_edited(&registry, |v| {
        v["stable"] = serde_json::to_value(&everyone).expect("a vector serialises");
    })
    .expect("a stable vector the context has reached reads");
    let mut compacted = registry.clone();
    compacted.compact(&everyone);
    assert_eq!(read, compacted);
    assert_eq!(read.deleted().count(), 0);
    // Kept, the tombstone stayed in `read ⊔ s` and went in `s ⊔ read`.
    let (mut a, mut b) = (read.clone(), stranger());
    a.merge(&stranger());
    b.merge(&read);
    assert_eq!(a, b);
}

/// A registry holding one twin register and one metadata register of `owner`'s device, each
/// holding `value` as read from text, under names that are keys (a key damage moved there is
/// never shown).
fn with_register_values(value: &Value) -> [serde_json::Result<Registry>; 2] {
    let r = common::replica(0);
    let mut registry = Registry::new();
    let mut w = registry.writer(r, Stamp::new(1, 0));
    let owner = common::key(0);
    w.create(&owner, Identity::default()).expect("fresh");
    w.set_twin(
        &owner,
        failback::Section::Tags,
        common::STRAY,
        Some(json!(1)),
    )
    .expect("a key is a valid twin key");
    w.set_metadata(&owner, common::STRAY, Some(json!(1)))
        .expect("live");
    ["twin", "metadata"].map(|field| {
        read_edited(&registry, |v| {
            let Value::Object(registers) = member(v, field) else {
                panic!("{field} is a map")
            };
            let (_, register) = registers.iter_mut().next().expect("one register");
            *member(register, "value") = value.clone();
        })
    })
}

#[test]
fn register_values_no_writer_takes_are_refused_when_read() {
    let nested = |levels: usize| (0..levels).fold(json!(1), |v, _| json!([v]));
    // As deep as a write may go: read, and read back inside an ingest too.
    for read in with_register_values(&nested(64)) {
        let registry = read.expect("64 levels read");
        let text = serde_json::to_string(&Ingest::new(registry)).expect("an ingest serialises");
        serde_json::from_str::<Ingest>(&text).expect("an ingest holding it reads back");
    }
    // One level more: an ingest holding 118 levels did not read back.
    for (levels, field) in [
        (65, "twin"),
        (65, "metadata"),
        (118, "twin"),
        (118, "metadata"),
    ] {
        let [twin, metadata] = with_register_values(&nested(levels));
        let read = if field == "twin" { twin } else { metadata };
        let err = read.expect_err("deeper than 64 levels");
        assert!(
            err.to_string().contains("deeper than 64 levels"),
            "{field}: {err}"
        );
        assert!(!err.to_string().contains(common::STRAY), "{field}: {err}");
    }
    // A twin write sets leaves: an object's members are set at their own paths.
    let [twin, metadata] = with_register_values(&json!({"a": 1}));
    let err = twin.expect_err("a non-empty object in a twin register");
    assert!(err.to_string().contains("not a leaf"), "{err}");
    assert!(!err.to_string().contains(common::STRAY), "{err}");
    metadata.expect("a metadata value may be an object");
}

/// A state holding a device `x` of replica 0, and a copy of it with `x` cut from the text: its
/// context still claims `x`'s creation, with no tombstone and an empty stable vector. The
/// reader cannot tell that claim from one an overwrite left, so it reads. With `stable`, the
/// copy's stable vector covers `x` too: then it reads as `x` deleted and compacted.
fn cut_and_intact(stable: bool) -> (Registry, Registry) {
    let mut intact = Registry::new();
    intact
        .writer(common::replica(0), Stamp::new(1, 0))
        .create(&common::key(0), Identity::default())
        .expect("fresh");
    let cut = read_edited(&intact, |v| {
        *member(v, "devices") = json!([]);
        if stable {
            v["stable"] = v["context"]["vector"].clone();
        }
    })
    .expect("a reader cannot tell a cut device from an overwritten write");
    (intact, cut)
}

/// Each side of `(intact, cut)` with one more write, of a replica of its own: neither context
/// then includes the other, and no merge between them takes the inclusion shortcut.
fn written_apart((intact, cut): (Registry, Registry)) -> (Registry, Registry) {
    let (mut intact, mut cut) = (intact, cut);
    for (registry, n) in [(&mut intact, 1), (&mut cut, 2)] {
        registry
            .writer(common::replica(n), Stamp::new(2, 0))
            .create(&common::key(n), Identity::default())
            .expect("fresh");
    }
    (intact, cut)
}

fn merged(a: &Registry, b: &Registry) -> Registry {
    let mut joined = a.clone();
    joined.merge(b);
    joined
}

fn text(registry: &Registry) -> String {
    serde_json::to_string(registry).expect("a registry serialises")
}

/// A device cut from a state's text, its context still claiming it, comes back from any peer
/// holding it that has written since: a context's claim is no evidence of a delete without a
/// tombstone or a stable vector covering the device, so the merge keeps the device both ways
/// (2026-11-24, found in review: `intact ⊔ cut` kept it where `cut ⊔ intact` dropped it, and
/// debug builds panicked on the check of the skipped sweep).
#[test]
fn a_device_cut_from_a_state_comes_back_from_a_peer_holding_it_both_ways() {
    let (intact, cut) = written_apart(cut_and_intact(false));
    let (one_way, other_way) = (merged(&intact, &cut), merged(&cut, &intact));
    assert_eq!(text(&one_way), text(&other_way), "a ⊔ b = b ⊔ a");
    assert_eq!(
        one_way.records(&common::key(0)).len(),
        1,
        "the cut device stands"
    );
    merges_and_round_trips(&cut, &intact).expect("one state both ways");
}

/// The cut state merged with the state holding the device and nothing more: the merge into
/// the intact state keeps the device (no delete is in evidence); the merge into the cut state
/// finds the incoming context and stable vector included, and changes nothing (the inclusion
/// shortcut, `Registry::merge_with`, which stays O(1)). The two differ, as `registry.rs`
/// documents; neither panics, and the device comes back once the intact side writes anything.
#[test]
fn a_device_cut_from_a_state_including_its_peer_comes_back_with_the_peer_next_write() {
    let (intact, cut) = cut_and_intact(false);
    assert_eq!(merged(&intact, &cut), intact, "intact ⊔ cut = intact");
    assert_eq!(merged(&cut, &intact), cut, "cut ⊔ intact = cut: included");
    let (later, _) = written_apart((intact, cut.clone()));
    let restored = merged(&cut, &later);
    assert_eq!(
        text(&restored),
        text(&merged(&later, &cut)),
        "a ⊔ b = b ⊔ a"
    );
    assert_eq!(
        restored.records(&common::key(0)).len(),
        1,
        "the cut device is back"
    );
}

/// A cut device its state's stable vector covers reads as a device deleted and compacted:
/// the merge cannot tell the two apart. Merged with a state that holds the device, neither
/// direction panics, debug builds included; the merge that walks the device drops it (a
/// compacted delete), and the one that skips the sweep, its vector reaching the stable vector,
/// keeps it, as `registry.rs` documents.
#[test]
fn a_cut_device_under_the_stable_vector_merges_without_panicking() {
    let (intact, cut) = written_apart(cut_and_intact(true));
    let walked = merged(&cut, &intact);
    let skipped = merged(&intact, &cut);
    assert!(
        walked.records(&common::key(0)).is_empty(),
        "read as deleted"
    );
    assert_eq!(
        skipped.records(&common::key(0)).len(),
        1,
        "the sweep skipped"
    );
    let (intact, cut) = cut_and_intact(true);
    assert_eq!(merged(&cut, &intact), cut, "included: unchanged");
    assert_eq!(merged(&intact, &cut).records(&common::key(0)).len(), 1);
}

/// A delete compacted away on one side still refuses the stale incarnation a replica that
/// never saw the delete holds, whichever side merges, with or without writes since: the
/// deleting side's stable vector covers the incarnation, which is the evidence of the delete.
#[test]
fn a_compacted_delete_refuses_the_stale_incarnation_both_ways() {
    let (intact, _) = cut_and_intact(false);
    let mut deleter = intact.clone();
    deleter
        .writer(common::replica(3), Stamp::new(3, 0))
        .delete(&common::key(0))
        .expect("live");
    deleter.compact(&deleter.context().vector().clone());
    assert!(deleter.tombstones(&common::key(0)).is_empty(), "compacted");
    let (stale, _) = written_apart((intact, Registry::new()));
    for (a, b) in [(&deleter, &stale), (&stale, &deleter)] {
        let joined = merged(a, b);
        assert!(
            joined.records(&common::key(0)).is_empty(),
            "not resurrected"
        );
        assert_eq!(text(&joined), text(&merged(b, a)), "a ⊔ b = b ⊔ a");
    }
}

/// `a ⊔ b` both ways, as text: one state whichever side the merge starts from.
fn merged_both_ways(a: &Registry, b: &Registry) -> [String; 2] {
    let (mut ab, mut ba) = (a.clone(), b.clone());
    ab.merge(b);
    ba.merge(a);
    [&ab, &ba].map(|m| serde_json::to_string(m).expect("a registry serialises"))
}

/// A register's past naming a write its own entries already say (as `clear` leaves it before
/// the next write, which drops it) is normalised when read, as contexts and version vectors
/// are. Read as written, the same writes had two encodings, and `a ⊔ b` kept the encoding of
/// whichever side it merged into, `b ⊔ a` the other's (found in review).
#[test]
fn a_register_past_its_own_entries_cover_is_normalised_when_read() {
    let (key, r) = (common::key(0), common::replica(0));
    let mut registry = Registry::new();
    let mut w = registry.writer(r, Stamp::new(1, 0));
    w.create(&key, Identity::default()).expect("fresh");
    for status in [Status::Disabled, Status::Enabled] {
        w.set_status(&key, StatusValue::new(status, None))
            .expect("live");
    }
    let status =
        &serde_json::to_value(&registry).expect("serialises")["devices"][0]["live"][0]["status"];
    assert_eq!(status["past"], Value::Null, "written normalised: {status}");
    // The second write's entry, (r, 3), says that (r, 2) was seen.
    let read = read_edited(&registry, |v| {
        v["devices"][0]["live"][0]["status"]["past"] = json!([[r, 2]]);
    })
    .expect("a past its entries cover reads");
    assert_eq!(read, registry);
    let [ab, ba] = merged_both_ways(&registry, &read);
    assert_eq!(ab, ba);
}

/// A credential write's retired list read out of order or with a fingerprint twice is read
/// sorted, each once, as the writer holds it: read as written, the same write had two
/// encodings, and merges kept whichever side they merged into (found in review).
#[test]
fn a_retired_list_is_read_sorted_once_each() {
    let registry = rotated_once();
    let retired = |v: &mut Value| -> Vec<Value> {
        let Value::Array(list) = &mut v["devices"][0]["live"][0]["retired"]["entries"][0]["value"]
        else {
            panic!("a retired list")
        };
        std::mem::take(list)
    };
    let written = retired(&mut serde_json::to_value(&registry).expect("serialises"));
    assert!(written.len() >= 2, "{written:?}");
    for (edit, list) in [
        (
            "reversed",
            written.iter().rev().cloned().collect::<Vec<_>>(),
        ),
        ("twice", [&written[..], &written[..1]].concat()),
    ] {
        let read = read_edited(&registry, |v| {
            retired(v);
            v["devices"][0]["live"][0]["retired"]["entries"][0]["value"] = Value::Array(list);
        })
        .expect("a retired list out of order reads");
        assert_eq!(read, registry, "{edit}");
        let [ab, ba] = merged_both_ways(&registry, &read);
        assert_eq!(ab, ba, "{edit}");
    }
}

/// A credential write's retired list read empty is refused, naming the incarnation and the
/// write: no writer ever wrote one (a rotation retiring nothing clears the register, in every
/// build since the first), and read, it would be a second text of "nothing retired" beside
/// the register without the entry, so two states meaning the same writes would merge apart.
#[test]
fn an_empty_retired_list_is_refused() {
    use failback::Dot;
    let r = common::replica(0);
    let registry = rotated_once();
    let mut value = serde_json::to_value(&registry).expect("a registry serialises");
    let list = &mut value["devices"][0]["live"][0]["retired"]["entries"][0]["value"];
    assert!(list.as_array().is_some_and(|l| !l.is_empty()), "{list}");
    *list = json!([]);
    // Read from text, as a registry's file is, so that the message has a position.
    let err =
        serde_json::from_str::<Registry>(&value.to_string()).expect_err("an empty retired list");
    let message = err.to_string();
    assert!(message.contains("empty retired list"), "{message}");
    for dot in [Dot::new(r, 1), Dot::new(r, 2)] {
        assert!(message.contains(&dot.to_string()), "{message}");
    }
    assert_names_the_device_once_with_one_position(&message, &common::key(0));
}

/// `message`, a registry reader's refusal of something inside a device's records, names the
/// device (a record is read without its key, and a registry of a million devices on one line is
/// not searched by column), and says where it stopped once: serde_json adds its position to an
/// error raised without one, and the refusal of the record had one already.
fn assert_names_the_device_once_with_one_position(message: &str, key: &failback::DeviceKey) {
    assert!(message.starts_with(&format!("device {key}: ")), "{message}");
    assert_eq!(message.matches(" at line ").count(), 1, "{message}");
}

/// A device (pool key 0) created by replica 0 with two keys, then rotated to two others at
/// dot 2: its retired list holds the first two.
fn rotated_once() -> Registry {
    use failback::{Authentication, Pair, SymmetricKey};
    let sas = |primary, secondary| {
        let k = |text| SymmetricKey::new(text).expect("a valid key");
        Authentication::sas(Pair::new(Some(k(primary)), Some(k(secondary))))
    };
    let (key, mut registry) = (common::key(0), Registry::new());
    let mut w = registry.writer(common::replica(0), Stamp::new(1, 0));
    w.create(
        &key,
        Identity::default()
            .with_authentication(sas("MDEyMzQ1Njc4OWFiY2RlZg==", "YWJjZGVmZ2hpamtsbW5vcA==")),
    )
    .expect("fresh");
    w.set_authentication(
        &key,
        sas("cXJzdHV2d3h5ejAxMjM0NQ==", "Njc4OWFiY2RlZmdoaWprbA=="),
    )
    .expect("live");
    registry
}

/// `registry`'s text with the one member of its first map named `field` listed twice.
fn listed_twice(registry: &Registry, field: &str) -> String {
    let mut value = serde_json::to_value(registry).expect("a registry serialises");
    let map = member(&mut value, field).clone();
    let Value::Object(members) = &map else {
        panic!("{field} is a map")
    };
    let [(name, register)] = members.iter().collect::<Vec<_>>()[..] else {
        panic!("one member in {map}")
    };
    let pair = format!("{}:{register}", Value::String(name.clone()));
    let text = value.to_string();
    assert!(text.contains(&map.to_string()), "{text}");
    text.replacen(&map.to_string(), &format!("{{{pair},{pair}}}"), 1)
}

/// A metadata name or a twin path listed twice in one record's map is refused, naming it as
/// messages show names (a name that may be a key by its fingerprint). Read, the last of the
/// two won and the other write was dropped without a word (found in review).
#[test]
fn a_name_listed_twice_in_a_records_map_is_refused() {
    for name in ["site", common::STRAY] {
        let owner = common::key(0);
        let mut registry = Registry::new();
        let mut w = registry.writer(common::replica(0), Stamp::new(1, 0));
        w.create(&owner, Identity::default()).expect("fresh");
        w.set_twin(&owner, failback::Section::Tags, name, Some(json!(1)))
            .expect("a valid twin key");
        w.set_metadata(&owner, name, Some(json!(1))).expect("live");
        for (field, named) in [
            (
                "metadata",
                format!("metadata name {name:?} is listed twice"),
            ),
            ("twin", format!("twin path \"tags.{name}\" is listed twice")),
        ] {
            let err = serde_json::from_str::<Registry>(&listed_twice(&registry, field))
                .expect_err("a name listed twice");
            assert_names_the_device_once_with_one_position(&err.to_string(), &owner);
            if name == common::STRAY {
                assert!(err.to_string().contains("is listed twice"), "{err}");
                assert!(!err.to_string().contains(common::STRAY), "{err}");
            } else {
                assert!(err.to_string().contains(&named), "{err}");
            }
        }
    }
}

/// A metadata name listed twice in a creation's identity is refused, naming it as a record's
/// own metadata map names it (a name that may be a key by its fingerprint). Read as a map
/// reads it, the last of the two stood: two texts of one creation read as two identities.
#[test]
fn a_name_listed_twice_in_a_creations_metadata_is_refused() {
    for name in ["owner", common::STRAY] {
        let owner = common::key(0);
        let mut registry = Registry::new();
        let identity = Identity::default().with_metadata(name, json!("a"));
        (registry.writer(common::replica(0), Stamp::new(1, 0)))
            .create(&owner, identity)
            .expect("fresh");
        let mut value = serde_json::to_value(&registry).expect("a registry serialises");
        let metadata = member(member(&mut value, "created"), "metadata").clone();
        assert_eq!(metadata, json!({ name: "a" }));
        let text = value.to_string();
        let pair = format!("{}:\"a\"", Value::String(name.to_owned()));
        let twice = format!("{{{pair},{}:\"b\"}}", Value::String(name.to_owned()));
        assert!(text.contains(&metadata.to_string()), "{text}");
        let edited = text.replacen(&metadata.to_string(), &twice, 1);
        let err = serde_json::from_str::<Registry>(&edited).expect_err("a name listed twice");
        let message = err.to_string();
        assert!(message.contains("is listed twice"), "{message}");
        assert_names_the_device_once_with_one_position(&message, &owner);
        if name == common::STRAY {
            assert!(!message.contains(common::STRAY), "{message}");
        } else {
            assert!(
                message.contains(&format!("metadata name {name:?} is listed twice")),
                "{message}"
            );
        }
        // An identity read alone refuses it alike.
        let identity = member(&mut value, "identity").clone().to_string();
        let edited = identity.replacen(&metadata.to_string(), &twice, 1);
        assert_ne!(edited, identity);
        let err = serde_json::from_str::<Identity>(&edited).expect_err("a name listed twice");
        assert!(err.to_string().contains("is listed twice"), "{err}");
        serde_json::from_str::<Registry>(&text).expect("each name once reads");
    }
}

/// An ingest listing one event id twice is refused, naming it. Read, the last of the two won,
/// and a later redelivery of the event the first held was refused as conflicting (found in
/// review).
#[test]
fn an_event_id_listed_twice_in_an_ingest_is_refused() {
    let key = common::key(0);
    let mut source = Registry::new();
    let mut w = source.writer(common::replica(0), Stamp::new(1, 0));
    let created = w.create(&key, Identity::default()).expect("fresh");
    let disabled = (w.set_status(&key, StatusValue::new(Status::Disabled, None))).expect("live");
    let mut ingest = Ingest::new(Registry::new());
    for (id, delta) in [("e1", created), ("e2", disabled)] {
        let event = Event::new(failback::EventId::new(id), delta).expect("a writer's delta");
        ingest.apply(&event).expect("in order");
    }
    let value = serde_json::to_value(&ingest).expect("an ingest serialises");
    let [events, e1, e2] = [
        &value["events"],
        &value["events"]["e1"],
        &value["events"]["e2"],
    ]
    .map(ToString::to_string);
    let text = value.to_string();
    assert!(text.contains(&events), "{text}");
    let twice = text.replacen(&events, &format!(r#"{{"e1":{e1},"e1":{e2},"e2":{e2}}}"#), 1);
    let err = serde_json::from_str::<Ingest>(&twice).expect_err("an id listed twice");
    assert!(
        err.to_string().contains(r#"event "e1" is listed twice"#),
        "{err}"
    );
    serde_json::from_str::<Ingest>(&text).expect("each id once reads");
}
