//! Secrets are never shown: a key pasted into a status reason, and a secret twin or metadata
//! value, are hidden in reports, conflicts, `Display` and every `Debug` form (`<hidden>`, or by
//! a keyed fingerprint where a report is given a fingerprint key), while values that name no
//! secret are shown whole.

use crate::common::event;
use failback::{
    Fingerprint, FingerprintKey, Identity, Ingest, Policy, Registry, ReplicaId, Section, Stamp,
    Status, StatusValue,
};
use serde_json::json;

use super::*;

/// A status reason is free text: an operator who pasted a key into one (`leaked key KEY`) sees
/// it hidden in a conflict, a device's `Debug` and its `Display`, as a twin value holding it
/// is, and by its keyed fingerprint in a conflict read under a fingerprint key; the same
/// whichever side merges (2026-11-23, found in review: the status conflict of report.json
/// showed it whole).
#[test]
fn a_key_in_a_status_reason_is_hidden() {
    let (mut a, mut b) = base(Identity::default());
    let leaked = format!("leaked key {K3}");
    let reason = |reason: &str| StatusValue::new(Status::Disabled, Some(reason.into()));
    a.writer(A, Stamp::new(2, 0))
        .set_status(&key(), reason(&leaked))
        .expect("live");
    b.writer(B, Stamp::new(3, 0))
        .set_status(&key(), reason("leaked"))
        .expect("live");

    let fingerprint_key =
        FingerprintKey::new(b"an operator's key of 32 bytes...").expect("32 bytes");
    let keyed = Policy::default().with_fingerprint_key(fingerprint_key);
    let mut shown = Vec::new();
    for (mut into, from) in [(a.clone(), &b), (b.clone(), &a)] {
        let keyed_report = into.clone().merge_with(from, &keyed);
        let report = into.merge(from);
        let text = serde_json::to_string(&report).expect("serializes");
        assert!(!text.contains(K3), "{text}");
        let conflict = report.conflicts.iter().find(|c| c.field == "status");
        let values: Vec<String> = conflict
            .expect("reported")
            .values
            .iter()
            .map(|v| v.value.clone())
            .collect();
        assert_eq!(values, ["disabled (<hidden>)", "disabled (leaked)"]);
        let conflict = keyed_report.conflicts.iter().find(|c| c.field == "status");
        let keyed_values: Vec<&str> = (conflict.expect("reported").values.iter())
            .map(|v| v.value.as_str())
            .collect();
        let hidden = format!("disabled (<{}>)", fingerprint_key.fingerprint(&leaked));
        assert_eq!(keyed_values, [hidden.as_str(), "disabled (leaked)"]);
        assert!(!format!("{keyed_report:?}").contains(K3));
        shown.push(values);
        let device = into.device(&key(), &Policy::prefer(A)).expect("live");
        assert_eq!(device.status.reason.as_deref(), Some(leaked.as_str()));
        for text in [format!("{device:?}"), device.status.to_string()] {
            assert!(!text.contains(K3), "{text}");
        }
    }
    assert_eq!(shown[0], shown[1], "the same whichever side merges");
}

/// A secret kept in a twin or in metadata (`$edgeAgent`'s registry password, a token) is hidden
/// by every `Debug` that shows the value, as a report hides it: an identity,
/// a registry and its records, a resolved device, an event, an export line, a failback and its
/// plan; values that name no secret are shown whole (2026-11-23: each showed them all whole,
/// so a registry logged with `{:?}` logged the passwords it held).
#[test]
fn a_secret_twin_or_metadata_value_is_hidden_by_debug() {
    use failback::iothub::{Failback, Parsed, Plan, Side, parse_line};
    use failback::{Event, EventId};

    const CREATED: &str = "created-registry-password";
    const WRITTEN: &str = "written-registry-password";
    const TOKEN: &str = "metadata-api-token";
    const NESTED: &str = "array-wifi-password";
    let desired = json!({
        "runtime": {"settings": {"registryCredentials": {"acr": {"username": "ops", "password": CREATED}}}},
        "wifi": [{"ssid": "plant-4", "password": NESTED}],
    });
    let identity = Identity::default()
        .with_twin(Section::Tags, json!({"site": "oslo"}))
        .and_then(|id| id.with_twin(Section::Desired, desired.clone()))
        .expect("valid twin")
        .with_metadata("apiToken", json!(TOKEN))
        .with_metadata("owner", json!("team-a"));
    let (mut a, _) = base(identity.clone());
    let written = a
        .writer(A, Stamp::new(2, 0))
        .set_twin(
            &key(),
            Section::Desired,
            "runtime.settings.registryCredentials.acr.password",
            Some(json!(WRITTEN)),
        )
        .expect("live");
    let event =
        Event::new(EventId::new("rotate-registry-password"), written.clone()).expect("event");
    let device = a.device(&key(), &Policy::default()).expect("live");

    let line = format!(
        r#"{{"id":"{}","eTag":"AAAA","twinETag":"AAAB","status":"enabled","authentication":{{"type":"sas","symmetricKey":{{"primaryKey":"{K0}","secondaryKey":"{K1}"}}}},"tags":{{"site":"oslo"}},"properties":{{"desired":{desired}}}}}"#,
        key()
    );
    let Parsed::Device(line) = parse_line("devices.txt".as_ref(), 1, &line).expect("parses") else {
        panic!("a device line")
    };
    let mut changed = line.clone();
    changed.desired =
        Some(serde_json::from_value(json!({"wifi": [{"password": WRITTEN}]})).expect("object"));
    let both = [line.clone()];
    let failback = Failback::lift(&both, &both, &[changed], Side::Secondary).expect("lifts");
    let plan = Plan::new(&failback);
    assert_eq!(
        plan.import.len(),
        1,
        "the secondary's change is planned: {:?}",
        plan.blocked
    );

    let shown = [
        ("identity", format!("{identity:?}")),
        ("registry", format!("{a:?}")),
        ("records", format!("{:?}", a.records(&key()))),
        ("delta", format!("{written:?}")),
        ("event", format!("{event:?}")),
        ("device", format!("{device:?}")),
        ("line", format!("{line:?}")),
        ("failback", format!("{failback:?}")),
        ("plan", format!("{plan:?}")),
    ];
    for (what, text) in &shown {
        for secret in [CREATED, WRITTEN, TOKEN, NESTED] {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
        assert!(
            text.contains("<hidden>"),
            "{what} held a secret to hide: {text}"
        );
        // Not by a plain fingerprint, which a dictionary reverses (review 70).
        for secret in [CREATED, WRITTEN, TOKEN, NESTED] {
            let plain = Fingerprint::of(secret).to_string();
            assert!(
                !text.contains(&plain),
                "{what} fingerprints {secret}: {text}"
            );
        }
    }
    for what in [
        "identity", "registry", "records", "device", "line", "failback",
    ] {
        let text = &shown.iter().find(|(w, _)| *w == what).expect("shown").1;
        assert!(text.contains("oslo"), "{what} hides a plain value: {text}");
    }
    for what in ["identity", "records", "device"] {
        let text = &shown.iter().find(|(w, _)| *w == what).expect("shown").1;
        assert!(
            text.contains("team-a"),
            "{what} hides a plain value: {text}"
        );
    }
}

/// The rest of "the `Debug` form of every type" hides a secret twin or metadata value: what a
/// merge and an ingest hand back (a report, its conflicts and their values, a refusal), an
/// ingest holding the events, a writer, a delete's tombstones, and a failback's summary with
/// its conflicts. Reports show values by fingerprint as they are built; this holds them to it
/// (review 59 found the claim checked for the types of the test above only).
#[test]
fn a_secret_twin_or_metadata_value_is_hidden_by_every_report_and_ingest_debug() {
    use failback::iothub::{Failback, Plan, Side, Summary, read_export_from};

    const OURS: &str = "first-registry-password";
    const THEIRS: &str = "second-registry-password";
    const TOKEN: &str = "metadata-api-token";
    const OTHER_TOKEN: &str = "other-metadata-api-token";
    let secret = |password: &str, token: &str, registry: &mut Registry, by: ReplicaId, at| {
        let mut writer = registry.writer(by, Stamp::new(at, 0));
        let twin = writer.set_twin(
            &key(),
            Section::Desired,
            "acr.password",
            Some(json!(password)),
        );
        let metadata = writer.set_metadata(&key(), "apiToken", Some(json!(token)));
        (twin.expect("live"), metadata.expect("live"))
    };
    let (mut a, mut b) = base(Identity::default());
    let (twin, metadata) = secret(OURS, TOKEN, &mut a, A, 2);
    secret(THEIRS, OTHER_TOKEN, &mut b, B, 3);
    let mut stale = a.clone();
    a.writer(A, Stamp::new(4, 0))
        .set_status(&key(), StatusValue::new(Status::Disabled, None))
        .expect("live");
    stale
        .writer(ReplicaId::from_u128(3), Stamp::new(5, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("oslo")))
        .expect("live");
    let report = a.merge(&b);
    assert_eq!(report.conflicts.len(), 2, "{report}");
    let mut deleted = a.clone();
    deleted
        .writer(A, Stamp::new(6, 0))
        .delete(&key())
        .expect("live");
    let refusing = deleted.merge(&stale);
    assert!(!refusing.rejected.is_empty(), "{refusing}");

    let mut ingest = Ingest::new(Registry::new());
    let creation = (Registry::new().writer(A, Stamp::new(1, 0)))
        .create(&key(), Identity::default())
        .expect("fresh");
    for (id, delta) in [("create", creation), ("twin", twin), ("metadata", metadata)] {
        ingest.apply(&event(id, delta)).expect("in order");
    }
    let mut written = a.clone();
    let writer = written.writer(B, Stamp::new(7, 0));

    let export = |desired: &str| {
        let line = format!(
            r#"{{"id":"{}","status":"enabled","properties":{{"desired":{{"acr":{{"password":"{desired}"}}}}}}}}"#,
            key()
        );
        read_export_from("devices.txt".as_ref(), line.as_bytes()).map(|e| e.lines)
    };
    let (base_line, primary, secondary) = (export("base-password"), export(OURS), export(THEIRS));
    let failback = Failback::lift(
        &base_line.expect("reads"),
        &primary.expect("reads"),
        &secondary.expect("reads"),
        Side::Secondary,
    )
    .expect("lifts");
    let summary = Summary::new(&Plan::new(&failback), Default::default());
    assert_eq!(summary.conflicts.len(), 1, "{summary:?}");

    let shown = [
        ("report", format!("{report:?} {report}")),
        ("conflicts", format!("{:?}", report.conflicts)),
        ("conflict", format!("{}", report.conflicts[0])),
        (
            "conflict value",
            format!("{:?}", report.conflicts[0].values[0]),
        ),
        ("refusing report", format!("{refusing:?}")),
        ("tombstones", format!("{:?}", deleted.tombstones(&key()))),
        ("ingest", format!("{ingest:?}")),
        ("writer", format!("{writer:?}")),
        ("summary", format!("{summary:?}")),
        ("summary conflict", format!("{:?}", summary.conflicts[0])),
    ];
    for (what, text) in &shown {
        for secret in [OURS, THEIRS, TOKEN, OTHER_TOKEN] {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
    }
    // `<hidden>` stands in for the values, where those are shown at all, and no plain
    // fingerprint of them.
    for what in ["report", "conflicts", "ingest", "writer", "summary"] {
        let text = &shown.iter().find(|(w, _)| *w == what).expect("shown").1;
        assert!(
            text.contains("<hidden>"),
            "{what} held a secret to hide: {text}"
        );
        for secret in [OURS, THEIRS, TOKEN, OTHER_TOKEN] {
            let plain = Fingerprint::of(secret).to_string();
            assert!(
                !text.contains(&plain),
                "{what} fingerprints {secret}: {text}"
            );
        }
    }
}

/// A passphrase of letters and digits whose length is a multiple of 4 reads as a key's base64
/// (unpadded, 18 bytes or more), and was shown by its plain fingerprint, which a dictionary
/// reverses (review 72): a hidden value is never shown so, in a merge's report as in a status
/// reason's `Display` and `Debug`.
#[test]
fn a_passphrase_shaped_like_a_key_is_never_shown_by_its_plain_fingerprint() {
    let chosen = ["iloveyouiloveyouiloveyou", "correcthorsebatterystaple123"];
    let (mut a, mut b) = base(Identity::default());
    for (replica, registry, password) in [(A, &mut a, chosen[0]), (B, &mut b, chosen[1])] {
        (registry.writer(replica, Stamp::new(2, 0)))
            .set_twin(
                &key(),
                Section::Desired,
                "wifi.password",
                Some(json!(password)),
            )
            .expect("live");
    }
    let report = a.merge_with(&b, &Policy::default());
    let text = format!(
        "{} {report:?}",
        serde_json::to_string(&report).expect("serializes")
    );
    for password in chosen {
        assert!(
            !text.contains(&Fingerprint::of(password).to_string()),
            "{text}"
        );
    }
    let values: Vec<&str> = report.conflicts[0]
        .values
        .iter()
        .map(|v| v.value.as_str())
        .collect();
    assert_eq!(values, ["<hidden>", "<hidden>"]);

    let status = StatusValue::new(Status::Disabled, Some(chosen[1].into()));
    for shown in [status.to_string(), format!("{status:?}")] {
        assert!(
            !shown.contains(&Fingerprint::of(chosen[1]).to_string()),
            "{shown}"
        );
        assert!(shown.contains("<hidden>"), "{shown}");
    }
}
