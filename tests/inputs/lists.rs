//! Lists and maps read sorted, each item once, or refused.

use failback::{Event, Identity, Ingest, Registry, Stamp, Status, StatusValue};
use serde_json::{Value, json};

use super::{common, member, read_edited};

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

/// A refusal inside a device's records is placed where it was raised, as the same refusal is
/// where the device's key is blanked out and nothing names it: named where it is raised, not
/// once the records are read, when serde_json has read past their closing brackets (review 71:
/// placed at line 138 of a pretty text whose refused record ends at line 133). serde_json's own
/// refusal of the text (a string where a counter belongs) keeps its position and is not named:
/// named, it would lose it.
#[test]
fn a_refusal_inside_a_devices_records_is_placed_where_it_was_raised() {
    let mut registry = Registry::new();
    let mut w = registry.writer(common::replica(0), Stamp::new(1, 0));
    for k in [0, 1] {
        let key = common::key(k);
        w.create(&key, Identity::default()).expect("fresh");
        for name in ["owner", "zone"] {
            w.set_metadata(&key, name, Some(json!("x"))).expect("live");
        }
    }
    let first = common::key(0);
    let mut value = serde_json::to_value(&registry).expect("a registry serialises");
    member(&mut value, "incarnation")["counter"] = json!("x");
    for pretty in [false, true] {
        let text = |value: &Value| match pretty {
            true => serde_json::to_string_pretty(value),
            false => serde_json::to_string(value),
        };
        let listed_twice = text(&serde_json::to_value(&registry).expect("serialises"))
            .expect("text")
            .replacen("\"zone\"", "\"owner\"", 1);
        let counter_as_text = text(&value).expect("text");
        for (edited, named) in [(listed_twice, true), (counter_as_text, false)] {
            let err = serde_json::from_str::<Registry>(&edited).expect_err("refused");
            let unnamed =
                serde_json::from_str::<Registry>(&without_first_key(&edited)).expect_err("refused");
            let at = |err: &serde_json::Error| (err.line(), err.column());
            assert_eq!(at(&err), at(&unnamed), "pretty {pretty}: {err}\n{unnamed}");
            let expected = match named {
                true => format!("device {first}: {unnamed}"),
                false => unnamed.to_string(),
            };
            assert_eq!(err.to_string(), expected, "pretty {pretty}");
        }
    }
}

/// `text` with its first device's key blanked out, each character but a line break as a space,
/// so that every position in it stands where it stood.
fn without_first_key(text: &str) -> String {
    let start = text.find("\"key\"").expect("a device's key");
    let end = start + text[start..].find('}').expect("its end") + 1;
    let end = end + usize::from(text[end..].starts_with(','));
    let blank: String = text[start..end]
        .chars()
        .map(|c| if c == '\n' { c } else { ' ' })
        .collect();
    [&text[..start], &blank, &text[end..]].concat()
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
