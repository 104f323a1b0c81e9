//! What a device's entry may hold, read as a join leaves it or refused.

use failback::{Identity, Ingest, Registry, Stamp, Status, StatusValue};
use serde_json::{Value, json};

use super::{common, member, merges_and_round_trips, read_edited, stranger};

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
