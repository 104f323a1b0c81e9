//! The wire forms do not depend on JSON's quirks: every state a history passes through, a delta
//! made for a peer, an event and an ingest read back from CBOR, another self-describing format,
//! as what was written (compared as their JSON text, byte for byte, and as values). `Registry`'s
//! documentation says its serialized form is for any self-describing format; JSON alone cannot
//! show that no reader leans on how serde_json happens to present a value (a number's type, a
//! string borrowed or not, a map's keys as strings). Nor that no reader leans on serde_json's
//! own checks: the same tree, damaged, reads or is refused alike from both (an array holding
//! more than its tuple takes is refused by serde_json, and was read by CBOR's reader).

mod common;

use common::{History, bytes, event, history};
use failback::{Ingest, Registry};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// `value` written as CBOR and read back.
fn through_cbor<T: Serialize + DeserializeOwned>(value: &T) -> T {
    read_as_cbor(value).expect("and reads back")
}

/// `value` written as CBOR and read as `U`: itself, CBOR's own values to edit, or a registry
/// from edited values.
fn read_as_cbor<U: DeserializeOwned>(
    value: &impl Serialize,
) -> Result<U, ciborium::de::Error<std::io::Error>> {
    let mut buffer = Vec::new();
    ciborium::into_writer(value, &mut buffer).expect("every wire form writes as CBOR");
    ciborium::from_reader(&buffer[..])
}

/// JSON text: what "the same" compares, as `bytes` does for a registry.
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("every wire form writes as JSON")
}

proptest! {
    #![proptest_config(common::config())]

    /// Each write's event, the ingest that applied them all, every state the history passed
    /// through, the delta each final replica would send each other, and the join compacted.
    #[test]
    fn every_wire_form_round_trips_through_cbor(h in history()) {
        let mut ingest = Ingest::new(Registry::new());
        for (n, delta) in h.deltas().iter().enumerate() {
            let event = event(format!("write-{n}"), delta.registry.clone());
            let back = through_cbor(&event);
            prop_assert_eq!(json(&back), json(&event));
            prop_assert_eq!(&back, &event);
            ingest.apply(&event).expect("a history's writes, in order");
        }
        let back = through_cbor(&ingest);
        prop_assert_eq!(json(&back), json(&ingest));
        prop_assert_eq!(&back, &ingest);

        let mut states = h.states();
        for from in h.replicas() {
            for to in h.replicas() {
                states.push(from.delta_since(to.context().vector()));
            }
        }
        let mut compacted = h.join();
        compacted.compact(&h.stable());
        states.push(compacted);
        for state in &states {
            let back = through_cbor(state);
            prop_assert_eq!(bytes(&back), bytes(state));
            prop_assert_eq!(&back, state);
        }
    }

    /// One tree, edited at one node, read from CBOR and from JSON: each format reads what the
    /// other reads, as the same registry, and refuses what the other refuses, neither error
    /// showing a key; what reads round-trips through both and merges either way (review 71:
    /// a fixed-size array holding one element more, a fingerprint's bytes, read from CBOR with
    /// it dropped, where JSON refused it).
    #[test]
    fn an_edited_tree_reads_from_cbor_as_from_json(
        h in history(),
        pick in any::<usize>(),
        at in any::<prop::sample::Index>(),
        kind in 0u8..7,
    ) {
        let registry = state_of(&h, pick);
        let mut value = serde_json::to_value(&registry).expect("a registry serialises");
        let mut nodes = Vec::new();
        node_paths(&value, &mut Vec::new(), &mut nodes);
        let path = at.get(&nodes).clone();
        let (json, cbor) = edited(&mut value, &path, Edit::from(kind));
        let from_cbor = read_as_cbor::<Registry>(&cbor).map_err(|e| e.to_string());
        let from_json = serde_json::from_str::<Registry>(&json).map_err(|e| e.to_string());
        for err in [&from_cbor, &from_json].into_iter().filter_map(|r| r.as_ref().err()) {
            prop_assert!(!err.contains(KEY), "an error shows the key: {}", err);
        }
        prop_assert_eq!(
            from_cbor.as_ref().ok(),
            from_json.as_ref().ok(),
            "CBOR: {:?}\nJSON: {:?}\nedit {:?} at {:?} of\n{}",
            from_cbor.as_ref().err(),
            from_json.as_ref().err(),
            Edit::from(kind),
            path,
            json
        );
        if let Ok(read) = &from_cbor {
            round_trips_and_merges(read)?;
        }
    }
}

/// The values a history's pools leave out, where formats part: floats (JSON text has one
/// number type, CBOR three widths), integers at both ends of 64 bits, text beyond ASCII, an
/// empty string and an array holding `null`, stamps and counters at their largest.
#[test]
fn values_at_the_edges_round_trip_through_cbor() {
    use failback::{DeviceKey, Identity, ReplicaId, Section, Stamp};
    use serde_json::json;

    let key = DeviceKey::module("edge-1", "$edgeAgent").expect("valid");
    let values = [
        json!(0.1),
        json!(-0.0),
        json!(1.5e300),
        json!(f64::MIN_POSITIVE),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-1),
        json!("ø — ✓ 𝄞"),
        json!(""),
        json!([null, [1.25, false], "x"]),
    ];
    let mut registry = Registry::new();
    let mut writer = registry.writer(
        ReplicaId::from_u128(u128::MAX),
        Stamp::new(u64::MAX, u32::MAX),
    );
    let mut deltas = vec![writer.create(&key, Identity::default()).expect("fresh")];
    for (n, value) in values.iter().enumerate() {
        let path = format!("edges.v{n}");
        deltas.push(
            writer
                .set_twin(&key, Section::Desired, &path, Some(value.clone()))
                .expect("live"),
        );
        deltas.push(
            writer
                .set_metadata(&key, &format!("v{n}"), Some(value.clone()))
                .expect("live"),
        );
    }
    for state in deltas.iter().chain([&registry]) {
        let back = through_cbor(state);
        assert_eq!(bytes(&back), bytes(state));
        assert_eq!(&back, state);
    }
    let device = through_cbor(&registry)
        .device(&key, &Default::default())
        .expect("live");
    for (n, value) in values.iter().enumerate() {
        assert_eq!(device.metadata.get(&format!("v{n}")), Some(value), "v{n}");
    }
}

/// A refusal of something inside a device's records names the device in CBOR too, which has no
/// line and column: a record is read without its key, and its own refusal names only its
/// incarnation, which does not find it among a million devices (review 68).
#[test]
fn a_damaged_record_read_from_cbor_names_its_device() {
    use failback::{Authentication, DeviceKey, Identity, Pair, ReplicaId, Stamp, SymmetricKey};

    let k = |text| SymmetricKey::new(text).expect("a valid key");
    let sas =
        |primary, secondary| Authentication::sas(Pair::new(Some(k(primary)), Some(k(secondary))));
    let mut registry = Registry::new();
    let mut writer = registry.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
    let (plain, rotated) = (
        DeviceKey::device("a").expect("an id"),
        DeviceKey::module("b", "m").expect("ids"),
    );
    writer.create(&plain, Identity::default()).expect("fresh");
    writer
        .create(
            &rotated,
            Identity::default()
                .with_authentication(sas("MDEyMzQ1Njc4OWFiY2RlZg==", "YWJjZGVmZ2hpamtsbW5vcA==")),
        )
        .expect("fresh");
    writer
        .set_authentication(
            &rotated,
            sas("cXJzdHV2d3h5ejAxMjM0NQ==", "Njc4OWFiY2RlZmdoaWprbA=="),
        )
        .expect("live");
    let err = read_cbor_edited(
        &registry,
        "devices/1/live/0/retired/entries/0/value",
        |retired| {
            assert!(
                retired.as_array().is_some_and(|l| !l.is_empty()),
                "{retired:?}"
            );
            *retired = ciborium::Value::Array(Vec::new());
        },
    )
    .expect_err("an empty retired list");
    let message = err.to_string();
    assert!(message.contains("device b/m: "), "{message}");
    assert!(message.contains("empty retired list"), "{message}");
}

/// A key stored where another value belongs is refused without being shown, in CBOR as in JSON
/// (`tests/wire_members.rs`): serde's messages quote what they found (an unknown variant's
/// name), and CBOR's reader shows its messages escaped, inside a device's refusal twice over.
#[test]
fn a_key_out_of_place_in_cbor_is_never_shown_by_the_error() {
    use failback::{DeviceKey, Identity, ReplicaId, Stamp};

    let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
    let mut registry = Registry::new();
    let mut writer = registry.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
    writer
        .create(&DeviceKey::device("d").expect("an id"), Identity::default())
        .expect("fresh");
    let deleted = DeviceKey::device("e").expect("an id");
    writer.create(&deleted, Identity::default()).expect("fresh");
    writer.delete(&deleted).expect("live");
    for at in [
        "devices/0/live/0/created/identity/status/status",
        "devices/0/live/0/created/identity/status",
        "devices/0/live/0/created/identity",
        "devices/0/live/0/incarnation",
        // Read as any value (a context, or a version vector as states wrote it before), so
        // refused by its own reader, which CBOR's asks to visit the string (found by
        // `an_edited_tree_reads_from_cbor_as_from_json`).
        "devices/1/tombstones/0/seen",
        "context",
    ] {
        let err = read_cbor_edited(&registry, at, |value| {
            *value = ciborium::Value::Text(key.to_owned());
        })
        .expect_err("a key out of place");
        let message = err.to_string();
        assert!(!message.contains(key), "{at}: {message}");
    }
}

/// `registry` written as CBOR, the value at `path` (members and indices, split by `/`) edited,
/// and read back.
fn read_cbor_edited(
    registry: &Registry,
    path: &str,
    edit: impl FnOnce(&mut ciborium::Value),
) -> Result<Registry, ciborium::de::Error<std::io::Error>> {
    let mut value: ciborium::Value = read_as_cbor(registry).expect("reads as CBOR values");
    let at = path.split('/').fold(&mut value, |at, step| match at {
        ciborium::Value::Array(items) => &mut items[step.parse::<usize>().expect("an index")],
        ciborium::Value::Map(members) => members
            .iter_mut()
            .find_map(|(name, member)| (name.as_text() == Some(step)).then_some(member))
            .unwrap_or_else(|| panic!("no member {step} in {path}")),
        other => panic!("{step} of {path} in {other:?}"),
    });
    edit(at);
    read_as_cbor(&value)
}

/// A fingerprint is 8 bytes: a retired one holding a ninth is refused from CBOR as from JSON
/// (review 71: CBOR's reader dropped the ninth, serde's array reader not looking past the
/// eighth), and so is a version vector's pair holding a third element.
#[test]
fn a_fixed_size_array_holding_more_is_refused_from_cbor_as_from_json() {
    let registry = rotated();
    for (pointer, more) in [
        ("/devices/0/live/0/retired/entries/0/value/1", json!(7)),
        ("/context/vector/0", json!(7)),
    ] {
        let mut value = serde_json::to_value(&registry).expect("a registry serialises");
        let array = value
            .pointer_mut(pointer)
            .and_then(Value::as_array_mut)
            .unwrap_or_else(|| panic!("an array at {pointer}"));
        array.push(more);
        let from_json = serde_json::from_str::<Registry>(&value.to_string())
            .map(|_| ())
            .map_err(|e| e.to_string());
        let from_cbor = read_as_cbor::<Registry>(&cbor_of(&value))
            .map(|_| ())
            .map_err(|e| e.to_string());
        for read in [&from_json, &from_cbor] {
            assert!(
                read.as_ref().is_err_and(|e| e.contains("invalid length")),
                "{pointer}: {read:?}"
            );
        }
    }
}

/// A CBOR reader reads one value and leaves what follows it unread, as the crate's readers
/// say: a caller refusing a file with bytes after its registry checks the reader is at its end.
#[test]
fn bytes_after_a_registry_in_cbor_are_left_for_the_caller_to_see() {
    let registry = rotated();
    let mut written = Vec::new();
    ciborium::into_writer(&registry, &mut written).expect("writes");
    written.extend_from_slice(b"\xff after");
    let mut rest = &written[..];
    let read: Registry = ciborium::from_reader(&mut rest).expect("reads its registry");
    assert_eq!(read, registry);
    assert_eq!(rest, b"\xff after");
}

/// A key: the edits put one where another value belongs, and no error may show it.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";

/// A device created with two keys, then rotated to two others: its retired list holds two
/// fingerprints.
fn rotated() -> Registry {
    use failback::{Authentication, DeviceKey, Identity, Pair, ReplicaId, Stamp, SymmetricKey};
    let sas = |primary, secondary| {
        let k = |text| SymmetricKey::new(text).expect("a valid key");
        Authentication::sas(Pair::new(Some(k(primary)), Some(k(secondary))))
    };
    let key = DeviceKey::device("d").expect("an id");
    let mut registry = Registry::new();
    let mut writer = registry.writer(ReplicaId::from_u128(1), Stamp::new(1, 0));
    writer
        .create(
            &key,
            Identity::default().with_authentication(sas(KEY, "YWJjZGVmZ2hpamtsbW5vcA==")),
        )
        .expect("fresh");
    writer
        .set_authentication(
            &key,
            sas("cXJzdHV2d3h5ejAxMjM0NQ==", "Njc4OWFiY2RlZmdoaWprbA=="),
        )
        .expect("live");
    registry
}

/// The state `pick` chooses among those `h` passed through and its join.
fn state_of(h: &History, pick: usize) -> Registry {
    let mut states = h.states();
    states.push(h.join());
    let n = states.len();
    states.swap_remove(pick % n)
}

/// A registry that was read: it reads back as itself from CBOR and from JSON, and merges with
/// another the same either way (`a ⊔ b = b ⊔ a`).
fn round_trips_and_merges(registry: &Registry) -> Result<(), TestCaseError> {
    let from_cbor = read_as_cbor::<Registry>(registry).map_err(|e| e.to_string());
    prop_assert_eq!(
        from_cbor.as_ref().ok(),
        Some(registry),
        "CBOR: {:?}",
        from_cbor.as_ref().err()
    );
    let from_json = serde_json::from_str::<Registry>(&bytes(registry)).map_err(|e| e.to_string());
    prop_assert_eq!(
        from_json.as_ref().ok(),
        Some(registry),
        "JSON: {:?}",
        from_json.as_ref().err()
    );
    let other = {
        use failback::{Identity, Stamp};
        let mut other = Registry::new();
        let mut writer = other.writer(common::replica(9), Stamp::new(7, 0));
        for k in 0..2 {
            writer
                .create(&common::key(k), Identity::default())
                .expect("fresh");
        }
        other
    };
    let (mut ab, mut ba) = (registry.clone(), other.clone());
    ab.merge(&other);
    ba.merge(registry);
    prop_assert_eq!(ab, ba, "a ⊔ b = b ⊔ a");
    Ok(())
}

/// An edit of one node of a tree, made alike in its JSON text and its CBOR tree.
#[derive(Clone, Copy, Debug)]
enum Edit {
    /// The node replaced by a key.
    Key,
    /// A map's member listed twice (first, then where it was), an array's element again at
    /// its end.
    Twice,
    /// A map's member renamed to a key.
    KeyAsName,
    /// The node replaced by `null`.
    Null,
    /// A map's member or an array's element removed.
    Removed,
    /// An array reversed.
    Reversed,
    /// Nothing.
    Nothing,
}

impl From<u8> for Edit {
    fn from(kind: u8) -> Self {
        [
            Edit::Key,
            Edit::Twice,
            Edit::KeyAsName,
            Edit::Null,
            Edit::Removed,
            Edit::Reversed,
        ]
        .get(usize::from(kind))
        .copied()
        .unwrap_or(Edit::Nothing)
    }
}

/// Every node of `value`, as its path of indices (a member's index in its map's order).
fn node_paths(value: &Value, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(at.clone());
    let children: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(members) => members.values().collect(),
        _ => Vec::new(),
    };
    for (i, child) in children.into_iter().enumerate() {
        at.push(i);
        node_paths(child, at, out);
        at.pop();
    }
}

/// The node at `path`.
fn node<'a>(value: &'a mut Value, path: &[usize]) -> &'a mut Value {
    path.iter().fold(value, |at, &i| match at {
        Value::Array(items) => &mut items[i],
        Value::Object(members) => members.values_mut().nth(i).expect("a member"),
        _ => panic!("no node under a leaf"),
    })
}

/// The node at `path` of a CBOR tree.
fn cbor_node<'a>(value: &'a mut ciborium::Value, path: &[usize]) -> &'a mut ciborium::Value {
    path.iter().fold(value, |at, &i| match at {
        ciborium::Value::Array(items) => &mut items[i],
        ciborium::Value::Map(members) => &mut members[i].1,
        _ => panic!("no node under a leaf"),
    })
}

/// The CBOR tree the crate writes for the same registry: a UUID as its 16 bytes.
fn cbor_of(value: &Value) -> ciborium::Value {
    match value {
        Value::Null => ciborium::Value::Null,
        Value::Bool(b) => ciborium::Value::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => ciborium::Value::Integer(u.into()),
            (_, Some(i)) => ciborium::Value::Integer(i.into()),
            _ => ciborium::Value::Float(n.as_f64().expect("a float")),
        },
        Value::String(text) => match uuid::Uuid::try_parse(text) {
            Ok(id) if text.len() == 36 => ciborium::Value::Bytes(id.as_bytes().to_vec()),
            _ => ciborium::Value::Text(text.clone()),
        },
        Value::Array(items) => ciborium::Value::Array(items.iter().map(cbor_of).collect()),
        Value::Object(members) => ciborium::Value::Map(
            members
                .iter()
                .map(|(name, member)| (ciborium::Value::Text(name.clone()), cbor_of(member)))
                .collect(),
        ),
    }
}

/// `value` with `edit` made at `path`: as JSON text (which alone can list a member twice) and
/// as a CBOR tree.
fn edited(value: &mut Value, path: &[usize], edit: Edit) -> (String, ciborium::Value) {
    // A placeholder member, first in its map (members are sorted), taking the name and value
    // of the member listed twice in the text and in the tree.
    const TWICE: &str = "\u{1}twice";
    let Some((&last, parent)) = path.split_last() else {
        // The root: only replaced.
        match edit {
            Edit::Key => *value = Value::String(KEY.into()),
            Edit::Null => *value = Value::Null,
            _ => {}
        }
        return (value.to_string(), cbor_of(value));
    };
    let mut twice = None;
    match (edit, node(value, parent)) {
        (Edit::Key, _) => *node(value, path) = Value::String(KEY.into()),
        (Edit::Null, _) => *node(value, path) = Value::Null,
        (Edit::Twice, Value::Object(members)) => {
            let (name, member) = members.iter().nth(last).expect("a member");
            twice = Some((name.clone(), member.clone()));
            members.insert(TWICE.into(), Value::Null);
        }
        (Edit::Twice, Value::Array(items)) => items.push(items[last].clone()),
        (Edit::KeyAsName, Value::Object(members)) => {
            let name = members.keys().nth(last).expect("a member").clone();
            let member = members.remove(&name).expect("there");
            members.insert(KEY.into(), member);
        }
        (Edit::Removed, Value::Object(members)) => {
            let name = members.keys().nth(last).expect("a member").clone();
            members.remove(&name);
        }
        (Edit::Removed, Value::Array(items)) => {
            items.remove(last);
        }
        (Edit::Reversed, _) => {
            if let Value::Array(items) = node(value, path) {
                items.reverse();
            }
        }
        _ => {}
    }
    let text = value.to_string();
    let mut tree = cbor_of(value);
    let Some((name, member)) = twice else {
        return (text, tree);
    };
    let placeholder = format!("{}:null", serde_json::to_string(TWICE).expect("a name"));
    let listed = format!("{}:{member}", serde_json::to_string(&name).expect("a name"));
    assert!(text.contains(&placeholder), "{text}");
    let ciborium::Value::Map(members) = cbor_node(&mut tree, parent) else {
        panic!("a map in both")
    };
    let first = members
        .iter()
        .position(|(n, _)| n.as_text() == Some(TWICE))
        .expect("the placeholder");
    // The member moved one place on for the placeholder before it.
    members[first] = members[last + usize::from(first <= last)].clone();
    (text.replacen(&placeholder, &listed, 1), tree)
}
