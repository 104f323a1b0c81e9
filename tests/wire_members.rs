//! The wire forms' members: a member the writer always writes is required, one misspelt is
//! refused, and no reader's error shows a key found where something else belongs. Each reader
//! is given a saved registry, event and ingest edited one member at a time, and the export
//! line reader the shipped lines, with a secret put at each node.

mod common;

use std::collections::BTreeSet;

use common::event;
use failback::{Event, Identity, Ingest, Registry, Stamp, Status, StatusValue};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Members: one the writer always writes is required, and one misspelt is refused (found in
// review: a register entry without its `value`, or with `valeu`, read as a removal, credentials
// without `keys` as unknown, an identity without `twin` as holding none: another value under
// the dot its peers hold, with equal contexts, so no merge ever settled it).

/// Members a writer leaves out when empty, or (`dots`) that the reader derives: absent, each
/// reads as empty, so only the refusal of unknown members tells one misspelt.
const MAY_BE_ABSENT: [&str; 12] = [
    "stable",
    "live",
    "tombstones",
    "module",
    "created",
    "entries",
    "past",
    "cloud",
    "seen",
    "reason",
    "forgotten",
    "dots",
];

/// A record's registers, absent until written (an identity's members of the same names are
/// always written).
const REGISTERS: [&str; 7] = [
    "status",
    "authentication",
    "retired",
    "capabilities",
    "parent",
    "twin",
    "metadata",
];

/// Objects whose members are names of data (twin paths, metadata names, event ids).
const MAPS: [&str; 3] = ["twin", "metadata", "events"];

/// Every member of every struct in `value`: the struct's JSON pointer, the member's name, and
/// whether a writer always writes it.
fn members(value: &Value, at: &str, out: &mut Vec<(String, String, bool)>) {
    match value {
        Value::Object(fields) => {
            let is_map = MAPS.iter().any(|map| at.ends_with(&format!("/{map}")));
            let is_record = fields.contains_key("incarnation") && !fields.contains_key("deleted");
            for (name, member) in fields {
                if !is_map {
                    let may_be_absent = MAY_BE_ABSENT.contains(&name.as_str())
                        || (is_record && REGISTERS.contains(&name.as_str()));
                    out.push((at.to_owned(), name.clone(), !may_be_absent));
                }
                // An event's dots are derived from its delta: read as any value, not walked.
                if name != "dots" {
                    let escaped = name.replace('~', "~0").replace('/', "~1");
                    members(member, &format!("{at}/{escaped}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                members(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `name` misspelt: its last two letters swapped (`value` as `valeu`).
fn misspelt(name: &str) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let n = chars.len();
    if n >= 2 && chars[n - 1] != chars[n - 2] {
        chars.swap(n - 1, n - 2);
    } else {
        chars.push('x');
    }
    chars.into_iter().collect()
}

/// The errors of reading `value` as a `T` with each member misspelt, and with each member the
/// writer always writes removed, that do not name the member: a misspelt member must be
/// refused as unknown or the member as missing, a removed one as missing. The names of the
/// members tried go to `tried`.
fn unnamed<T: serde::de::DeserializeOwned>(
    value: &impl serde::Serialize,
    tried: &mut BTreeSet<String>,
) -> Vec<String> {
    let value = serde_json::to_value(value).expect("serialises");
    let mut all = Vec::new();
    members(&value, "", &mut all);
    let mut out = Vec::new();
    for (at, name, required) in all {
        tried.insert(name.clone());
        let edit = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
            let mut edited = value.clone();
            let Some(Value::Object(fields)) = edited.pointer_mut(&at) else {
                panic!("{at} is an object")
            };
            f(fields);
            serde_json::from_value::<T>(edited)
                .err()
                .map(|e| e.to_string())
        };
        let wrong = misspelt(&name);
        let renamed = edit(&|fields| {
            let member = fields.remove(&name).expect("a member");
            fields.insert(wrong.clone(), member);
        });
        let names = |err: &str| {
            err.contains(&format!("unknown field `{wrong}`"))
                || err.contains(&format!("missing field `{name}`"))
        };
        match renamed {
            Some(err) if names(&err) => {}
            other => out.push(format!("{at}: {name:?} as {wrong:?}: {other:?}")),
        }
        if required {
            match edit(&|fields| drop(fields.remove(&name))) {
                Some(err) if err.contains(&format!("missing field `{name}`")) => {}
                other => out.push(format!("{at}: {name:?} removed: {other:?}")),
            }
        }
    }
    out
}

/// A registry holding a member of every kind a writer writes: a creation with credentials, a
/// parent, twin leaves and metadata; every register written, one with a past (a write seen and
/// overwritten), one a removal; a module's tombstone; a context with a cloud; a stable vector.
fn every_member() -> Registry {
    let (a, b, c) = (common::replica(0), common::replica(1), common::replica(2));
    let (key, module) = (common::key(0), common::key(2));
    let sas =
        |i| failback::Authentication::sas(failback::Pair::new(Some(common::symmetric(i)), None));
    let identity = Identity::default()
        .with_authentication(sas(0))
        .with_parent(Some(failback::DeviceId::new("gw").expect("valid")))
        .with_twin(failback::Section::Tags, json!({"site": "a"}))
        .expect("a valid twin")
        .with_metadata("owner", json!("ops"));
    let mut registry = Registry::new();
    let mut w = registry.writer(a, Stamp::new(1, 0));
    w.create(&key, identity).expect("fresh");
    w.create(&module, Identity::default()).expect("fresh");
    w.delete(&module).expect("live");
    let mut other = registry.clone();
    other
        .writer(b, Stamp::new(2, 0))
        .set_metadata(&key, "rack", Some(json!(1)))
        .expect("live");
    let mut late = registry.clone();
    let mut w = late.writer(c, Stamp::new(2, 0));
    w.set_metadata(&key, "zone", Some(json!("x")))
        .expect("live");
    let second = w.set_metadata(&key, "floor", Some(json!(3))).expect("live");
    registry.merge(&other);
    registry.merge(&second); // ahead of the write it overwrote: a context with a cloud
    let mut w = registry.writer(a, Stamp::new(3, 0));
    w.set_metadata(&key, "rack", Some(json!(2))).expect("live"); // over b's: a past
    w.set_twin(&key, failback::Section::Tags, "site", Some(json!("b")))
        .expect("live");
    w.set_parent(&key, None).expect("live");
    w.set_status(
        &key,
        StatusValue::new(Status::Disabled, Some("lost".into())),
    )
    .expect("live");
    w.set_authentication(&key, sas(1)).expect("live");
    w.set_capabilities(&key, failback::Capabilities { iot_edge: true })
        .expect("live");
    registry.compact(&failback::VersionVector::from_iter([(a, 1)]));
    registry
}

#[test]
fn members_always_written_are_required_and_members_misspelt_are_refused() {
    let registry = every_member();
    let mut source = registry.clone();
    let write = source
        .writer(common::replica(3), Stamp::new(4, 0))
        .set_metadata(&common::key(0), "owner", Some(json!("team")))
        .expect("live");
    let event = event("e", write);
    let mut ingest = Ingest::new(registry.clone());
    ingest.apply(&event).expect("applies");
    ingest.forget(&failback::VersionVector::from_iter([(
        common::replica(0),
        1,
    )]));
    let mut tried = BTreeSet::new();
    let mut unnamed_members = unnamed::<Registry>(&registry, &mut tried);
    unnamed_members.extend(unnamed::<Event>(&event, &mut tried));
    unnamed_members.extend(unnamed::<Ingest>(&ingest, &mut tried));
    assert!(unnamed_members.is_empty(), "{}", unnamed_members.join("\n"));
    // Every member of every struct the three texts hold was tried.
    let every = [
        "context",
        "stable",
        "devices",
        "key",
        "device",
        "module",
        "live",
        "tombstones",
        "incarnation",
        "created",
        "stamp",
        "identity",
        "status",
        "reason",
        "authentication",
        "type",
        "keys",
        "thumbprints",
        "primary",
        "secondary",
        "capabilities",
        "iotEdge",
        "parent",
        "twin",
        "metadata",
        "retired",
        "entries",
        "past",
        "dot",
        "value",
        "replica",
        "counter",
        "millis",
        "logical",
        "deleted",
        "seen",
        "vector",
        "cloud",
        "id",
        "delta",
        "dots",
        "registry",
        "policy",
        "fields",
        "credentials",
        "events",
        "forgotten",
    ];
    let untried: Vec<&str> = every.into_iter().filter(|m| !tried.contains(*m)).collect();
    assert!(untried.is_empty(), "untried: {untried:?}");
}

// ---------------------------------------------------------------------------------------------
// A key one level off: no reader's error shows it (found in review: serde's messages quote the
// string they found, and only the registry's reader hid it).

/// Each node of `value` replaced by `stray`, by a list or an object holding it, each string
/// with `stray` run into its end, and each member renamed to it.
fn with_a_stray(value: &Value, stray: &str) -> Vec<(String, Value)> {
    let mut nodes = Vec::new();
    common::pointers(value, "", &mut nodes);
    let mut out = Vec::new();
    for at in &nodes {
        let mut replacements = vec![
            json!(stray),
            json!([stray]),
            json!({ stray: 1 }),
            json!({ stray: "x" }),
        ];
        if let Some(Value::String(text)) = value.pointer(at) {
            replacements.push(json!(format!("{text}{stray}")));
        }
        for replacement in replacements {
            let mut edited = value.clone();
            if let Some(node) = edited.pointer_mut(at) {
                *node = replacement.clone();
                out.push((format!("{replacement} at {at:?}"), edited));
            }
        }
        if let Some(Value::Object(members)) = value.pointer(at) {
            for name in members.keys() {
                let mut edited = value.clone();
                if let Some(Value::Object(members)) = edited.pointer_mut(at) {
                    let member = members.remove(name).unwrap_or_default();
                    members.insert(stray.into(), member);
                    out.push((format!("{name:?} of {at:?} renamed"), edited));
                }
            }
        }
    }
    out
}

/// The errors of reading `value` with a stray key anywhere as a `T` that show the key.
fn shown_keys<T: serde::de::DeserializeOwned>(value: &impl serde::Serialize) -> Vec<String> {
    let value = serde_json::to_value(value).expect("serialises");
    with_a_stray(&value, common::STRAY)
        .into_iter()
        .filter_map(|(what, edited)| {
            let text = serde_json::to_string(&edited).expect("serialises");
            let err = serde_json::from_str::<T>(&text).err()?;
            err.to_string()
                .contains(common::STRAY)
                .then(|| format!("{}: {what}: {err}", std::any::type_name::<T>()))
        })
        .collect()
}

#[test]
fn no_reader_shows_a_key_found_where_something_else_belongs() {
    use failback::{
        Authentication, Device, DeviceRecord, Pair, Policy, Report, Section, Status, StatusValue,
        SymmetricKey,
    };
    let sas = |text: &str| {
        let key = SymmetricKey::new(text).expect("valid");
        Authentication::sas(Pair::new(Some(key.clone()), Some(key)))
    };
    let (a, b) = (common::replica(0), common::replica(1));
    // A device deleted before: a module cannot be disabled.
    let key = common::key(1);
    let identity = Identity::default()
        .with_authentication(sas("YWJjZGVmZ2hpamtsbW5vcA=="))
        .with_twin(Section::Tags, json!({"site": "x"}))
        .expect("valid twin")
        .with_metadata("owner", json!("ops"));
    let mut registry = common::written_and_deleted();
    let mut w = registry.writer(a, Stamp::new(2, 0));
    w.create(&key, identity.clone()).expect("fresh");
    w.set_authentication(&key, sas("cXJzdHV2d3h5ejAxMjM0NQ=="))
        .expect("live");
    let disable = w
        .set_status(
            &key,
            StatusValue::new(Status::Disabled, Some("lost".into())),
        )
        .expect("live");
    let mut other = registry.clone();
    other
        .writer(b, Stamp::new(3, 0))
        .set_status(&key, StatusValue::new(Status::Enabled, None))
        .expect("live");
    let report: Report = registry.merge(&other);
    let policy = Policy::prefer(b);
    let device: Device = registry.device(&key, &policy).expect("live");
    let event = event("e", disable);
    let mut ingest = Ingest::new(Registry::new()).with_policy(policy);
    ingest.apply(&event).expect("applies");

    let mut shown = shown_keys::<Registry>(&registry);
    shown.extend(shown_keys::<Event>(&event));
    shown.extend(shown_keys::<Ingest>(&ingest));
    shown.extend(shown_keys::<DeviceRecord>(&registry.records(&key)[0]));
    shown.extend(shown_keys::<Identity>(&identity));
    shown.extend(shown_keys::<Device>(&device));
    shown.extend(shown_keys::<Report>(&report));
    shown.extend(shown_keys::<Policy>(&policy));
    // The parts that refuse a member they do not know, read alone: the unknown member's name
    // is quoted, and could be a key.
    let status = StatusValue::new(Status::Disabled, Some("lost".into()));
    shown.extend(shown_keys::<StatusValue>(&status));
    shown.extend(shown_keys::<failback::Tombstone>(
        &registry.tombstones(&key)[0],
    ));
    shown.extend(shown_keys::<failback::CausalContext>(registry.context()));
    shown.extend(shown_keys::<Authentication>(&sas(
        "MDEyMzQ1Njc4OWFiY2RlZg==",
    )));
    shown.extend(shown_keys::<Pair<SymmetricKey>>(&Pair::new(
        Some(SymmetricKey::new("MDEyMzQ1Njc4OWFiY2RlZg==").expect("valid")),
        None,
    )));
    // The public registers of credentials (found in review, 2026-11-22: not redacted).
    let entry = failback::Entry::new(
        failback::Dot::new(a, 9),
        Stamp::new(4, 0),
        sas("ZmVkY2JhOTg3NjU0MzIxMA=="),
    );
    let mut register = failback::MvRegister::new();
    register.write(entry.dot, entry.stamp, entry.value.clone());
    shown.extend(shown_keys::<failback::Entry<Authentication>>(&entry));
    shown.extend(shown_keys::<failback::MvRegister<Authentication>>(
        &register,
    ));
    assert!(shown.is_empty(), "{}", shown.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The same for export lines, with every form a secret takes in a hub's files (review 59).

/// A secret as a hub's files hold it: a symmetric key (16 and 32 bytes), a SAS token and a
/// device connection string.
const SECRETS: [&str; 4] = [
    common::STRAY,
    "pJkGi49FagOtrxBk7+j7VMjw/SBEaPJ+FoZC6rGdiDs=",
    "SharedAccessSignature sr=hub.azure-devices.net%2Fdevices%2Fd1\
     &sig=QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo%3D&se=1700000000",
    "HostName=hub.azure-devices.net;DeviceId=d1;SharedAccessKey=MDEyMzQ1Njc4OWFiY2RlZg==",
];

/// Whether `message` shows `secret`: whole, or any 16 characters of it in a row.
fn shows(message: &str, secret: &str) -> bool {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(16)
        .any(|run| message.contains(&run.iter().collect::<String>()))
}

/// Every third shipped line, with each secret form at every node, around every node and
/// instead of every member's name: the line reads, or its error shows none of the secret.
/// Real lines reach every part of the reader (modules, edge devices, X.509, twins).
#[test]
fn no_export_line_error_shows_a_secret_found_where_something_else_belongs() {
    let (mut shown, mut refused) = (Vec::new(), 0);
    for line in common::shipped_lines().iter().step_by(3) {
        let value: Value = serde_json::from_str(line).expect("a shipped line is JSON");
        for secret in SECRETS {
            for (what, edited) in with_a_stray(&value, secret) {
                let text = serde_json::to_string(&edited).expect("serialises");
                if let Err(err) = failback::iothub::parse_line("x.jsonl".as_ref(), 1, &text) {
                    refused += 1;
                    let message = format!("{err} {err:?}");
                    if shows(&message, secret) {
                        shown.push(format!("{what}: {err}"));
                    }
                }
            }
        }
    }
    assert!(
        refused > 1000,
        "the edits reach the reader's refusals: {refused}"
    );
    assert!(shown.is_empty(), "{}", shown.join("\n"));
}
