//! Devices blocked for their credentials, and what is still written for them: unknown keys,
//! crossed rotations, a full update over a primary exported without keys, and credentials two
//! sides hold differently where the base cannot say which changed; a disable of such a device
//! is written all the same.

use failback::iothub::{ImportMode, Side};
use failback::{AuthType, Authentication, Rule, Status};
use serde_json::{Value, json};

use crate::hub::Hub;
use crate::*;

#[test]
fn devices_whose_credentials_are_unknown_are_blocked_not_imported() {
    let unknown = |v: Value| set(v, "/authentication", Value::Null);
    // Exported without keys everywhere: a disable would need a full update (new keys): blocked.
    // A twin change needs no keys: written. A device created without known keys: blocked.
    let base = [unknown(device("disable")), unknown(device("twin"))];
    let primary = base.clone();
    let secondary = [
        unknown(set(device("disable"), "/status", json!("disabled"))),
        unknown(set(device("twin"), "/tags/floor", json!(2))),
        unknown(device("created")),
        set(
            unknown(device("x509-created")),
            "/authentication",
            json!({"type": "selfSigned"}),
        ),
    ];
    let run = merge(&base, &primary, &secondary, Side::Secondary);
    let blocked = run.blocked_ids();
    assert_eq!(blocked, ["created", "disable", "x509-created"]);
    run.assert_each_blocked_for("unknown");
    assert_eq!(
        run.line("twin").import_mode,
        Some(ImportMode::UpdateTwinIfMatchETag)
    );
    assert_eq!(run.summary.blocked, run.plan.blocked);
}

#[test]
fn crossed_key_rotations_are_blocked() {
    // The primary rotates the secondary key out, the secondary rotates the primary key out:
    // each side holds a key the other retired. No rule can pick; an operator must, even where
    // the primary already holds the preferred value.
    let base = [device("crossed")];
    let primary = [keys(device("crossed"), K[0], K[2])];
    let secondary = [keys(device("crossed"), K[3], K[1])];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let conflict = run.conflict("crossed", "authentication");
        assert_eq!(
            (conflict.rule, conflict.security),
            (Rule::RetiredCredentialUnresolved, true)
        );
        assert_eq!(run.plan.blocked.len(), 1, "{:?}", run.plan.blocked);
        assert!(run.plan.import.is_empty(), "{:?}", run.plan.import);
    }
}

#[test]
fn a_disable_of_a_device_blocked_for_its_credentials_is_written_over_the_primarys_own() {
    // IOTHUB.md: disabling is the way to block a compromised X.509 device. The secondary
    // disabled a stolen one and rotated its secondary thumbprint out (T2 to T3), while the
    // primary rotated its primary one (T1 to T4): crossed rotations, blocked for an operator,
    // and with them the disable, so the primary kept accepting T2. The disable is no
    // credential to settle: it is written now, over the credentials and twin the primary
    // holds, and the rest waits for the operator. So for a device both hubs hold and the base
    // lacks, keys rotated on the primary (blocked: the base cannot say which side changed
    // them). Over a primary exported without keys, no line can carry its own: the disable is
    // not applied, and its entry says so.
    let x509 = |v: Value, primary: &str, secondary: &str| {
        let thumbprints = json!({"primaryThumbprint": primary, "secondaryThumbprint": secondary});
        let auth = json!({"x509Thumbprint": thumbprints, "type": "selfSigned"});
        set(v, "/authentication", auth)
    };
    let stolen = |v: Value| {
        let v = set(v, "/status", json!("disabled"));
        set(v, "/statusReason", json!("stolen"))
    };
    let base = [x509(device("x509"), T1, T2), device("keyless")];
    let primary = [
        x509(device("x509"), T4, T2),
        keys(device("new"), K[0], K[2]),
        set(device("keyless"), "/authentication", Value::Null),
    ];
    let secondary = [
        stolen(set(
            x509(device("x509"), T1, T3),
            "/tags/site",
            json!("paris"),
        )),
        stolen(keys(device("new"), K[0], K[1])),
        stolen(device("keyless")),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert_eq!(run.device("x509").status.status, Status::Disabled);
        assert_eq!(
            run.blocked_ids(),
            ["keyless", "new", "x509"],
            "prefer {prefer:?}"
        );
        let blocked = run.blocked();
        assert!(blocked[0].1.contains("re-export the primary with keys"));
        assert!(
            blocked[0].1.contains("disable not applied"),
            "{}",
            blocked[0].1
        );
        assert!(run.lines("keyless").is_empty());
        for ((id, reason), (was, why)) in blocked[1..].iter().zip([
            (&primary[1], "the base has no line for it"),
            (&primary[0], "rotations"),
        ]) {
            assert!(reason.contains(why), "{id}: {reason}");
            assert!(reason.contains("the disable alone is written"), "{reason}");
            // The primary's own line, disabled: its ETag, credentials, twin and capabilities.
            let line = run.line(id);
            let was = line_of(was);
            assert_eq!(line.import_mode, Some(ImportMode::UpdateIfMatchETag));
            assert_eq!(
                (line.status, line.status_reason.as_deref()),
                (Status::Disabled, Some("stolen"))
            );
            assert_eq!(line.e_tag, was.e_tag);
            // Those its type uses: an export writes the other kind as nulls.
            let credentials = |auth: &Option<Authentication>| {
                auth.clone().map(|a| match a.kind {
                    AuthType::Sas => Authentication {
                        thumbprints: None,
                        ..a
                    },
                    _ => Authentication { keys: None, ..a },
                })
            };
            assert_eq!(
                credentials(&line.authentication),
                credentials(&was.authentication)
            );
            assert_eq!((&line.tags, &line.desired), (&was.tags, &was.desired));
            assert_eq!(
                (line.capabilities, &line.device_scope),
                (was.capabilities, &None)
            );
        }
        // Applied, the hub refuses nothing, and the next run writes nothing more: the devices
        // are still blocked for their credentials, and disabled.
        let mut hub = Hub::new(&export(&primary));
        hub.import(&run.plan.import).expect("the plan applies");
        let next = run_lines(&base, &hub.export(), &secondary, prefer);
        assert!(
            next.plan.import.is_empty(),
            "{}",
            json_lines(&next.plan.import)
        );
        assert_eq!(next.blocked_ids(), ["keyless", "new", "x509"]);
    }
}

#[test]
fn a_full_update_over_a_primary_exported_without_keys_is_blocked() {
    // The primary, exported without keys, may have rotated any of these during the outage:
    // the merge fills its unknown keys in from the base, and a full update would write them
    // back over whatever the primary holds now. A twin update carries no credentials, a delete
    // and a create replace none the primary holds: those are written.
    let unknown = |v: Value| set(v, "/authentication", Value::Null);
    let null_keys = |v: Value| set(v, "/authentication/symmetricKey", Value::Null);
    let ids = ["disabled", "null-keys", "rekeyed", "twin", "gone"];
    let base: Vec<Value> = ids.iter().map(|id| device(id)).collect();
    let primary = [
        unknown(device("disabled")),
        null_keys(device("null-keys")),
        unknown(device("rekeyed")),
        unknown(device("twin")),
        unknown(device("gone")),
    ];
    let secondary = [
        set(device("disabled"), "/status", json!("disabled")),
        set(device("null-keys"), "/status", json!("disabled")),
        keys(device("rekeyed"), K[4], K[5]),
        set(device("twin"), "/tags/floor", json!(3)),
        device("created"),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let blocked = run.blocked_ids();
        assert_eq!(
            blocked,
            ["disabled", "null-keys", "rekeyed"],
            "prefer {prefer:?}"
        );
        run.assert_each_blocked_for("re-export the primary with keys");
        let modes = run.modes();
        assert_eq!(
            modes,
            [
                ("created".to_owned(), Some(ImportMode::Create)),
                ("gone".to_owned(), Some(ImportMode::DeleteIfMatchETag)),
                ("twin".to_owned(), Some(ImportMode::UpdateTwinIfMatchETag)),
            ],
            "prefer {prefer:?}"
        );
    }
}

#[test]
fn credentials_two_sides_hold_differently_over_a_base_exported_without_keys_are_blocked() {
    // Against unknown base keys, both sides' keys read as changes: if the real base held
    // K0/K1 and the primary rotated K0 out, the secondary still holds it (and the other way
    // round), and the preference alone would decide whether it comes back or stays. Which side
    // changed them is not in the files.
    let no_keys = |v: Value| set(v, "/authentication/symmetricKey", Value::Null);
    let ids = ["rekeyed", "agreed", "disabled", "twin"];
    let base: Vec<Value> = ids.iter().map(|id| no_keys(device(id))).collect();
    let primary = [
        keys(device("rekeyed"), K[2], K[1]),
        device("agreed"),
        device("disabled"),
        device("twin"),
    ];
    let secondary = [
        keys(device("rekeyed"), K[0], K[1]),
        device("agreed"),
        set(device("disabled"), "/status", json!("disabled")),
        set(device("twin"), "/tags/floor", json!(3)),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let blocked = run.blocked_ids();
        // Preferring the primary too: its keys may be the ones the secondary rotated out.
        assert_eq!(blocked, ["rekeyed"], "prefer {prefer:?}");
        run.assert_each_blocked_for("the base was exported without keys");
        // Where both sides agree, or only other fields changed, the device is written.
        let modes = run.modes();
        assert_eq!(
            modes,
            [
                ("disabled".to_owned(), Some(ImportMode::UpdateIfMatchETag)),
                ("twin".to_owned(), Some(ImportMode::UpdateTwinIfMatchETag)),
            ],
            "prefer {prefer:?}"
        );
    }
}

#[test]
fn credentials_two_sides_hold_differently_for_a_device_the_base_lacks_are_blocked() {
    // Created after the backup and replicated to the secondary: the base has no line for it.
    // If the primary rotated K1 out (K0/K1 to K0/K2) during the outage, the secondary still
    // holds K1, and preferring it would write K1 back; which side changed the keys is not in
    // the files, as over a base exported without keys. Devices and modules both hold alike,
    // and a device only one side holds, are written as before.
    let primary = [
        keys(device("rekeyed"), K[0], K[2]),
        device("agreed"),
        module("agreed", "m"),
    ];
    let secondary = [
        keys(device("rekeyed"), K[0], K[1]),
        set(device("agreed"), "/tags/floor", json!(3)),
        keys(module("agreed", "m"), K[2], K[3]),
        device("created"),
    ];
    for prefer in BOTH {
        let run = merge(&[], &primary, &secondary, prefer);
        assert_eq!(run.blocked_ids(), ["rekeyed"], "prefer {prefer:?}");
        run.assert_each_blocked_for("the base has no line for it");
        assert_eq!(
            run.modes(),
            [
                ("agreed".to_owned(), Some(ImportMode::UpdateTwinIfMatchETag)),
                ("created".to_owned(), Some(ImportMode::Create)),
            ],
            "prefer {prefer:?}"
        );
        // The report still shows the conflict, as the preference settled it in the merge.
        let conflict = run.conflict("rekeyed", "authentication");
        assert!(conflict.security);
    }
}
