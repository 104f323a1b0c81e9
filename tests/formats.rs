//! The wire forms do not depend on JSON's quirks: every state a history passes through, a delta
//! made for a peer, an event and an ingest read back from CBOR, another self-describing format,
//! as what was written (compared as their JSON text, byte for byte, and as values). `Registry`'s
//! documentation says its serialized form is for any self-describing format; JSON alone cannot
//! show that no reader leans on how serde_json happens to present a value (a number's type, a
//! string borrowed or not, a map's keys as strings).

mod common;

use common::{bytes, event, history};
use failback::{Ingest, Registry};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

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
    (registry.writer(ReplicaId::from_u128(1), Stamp::new(1, 0)))
        .create(&DeviceKey::device("d").expect("an id"), Identity::default())
        .expect("fresh");
    for at in [
        "devices/0/live/0/created/identity/status/status",
        "devices/0/live/0/created/identity/status",
        "devices/0/live/0/created/identity",
        "devices/0/live/0/incarnation",
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
