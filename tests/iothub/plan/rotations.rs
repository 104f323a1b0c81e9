//! A rotation the plan cannot write with the rest of its device: the merge rotates out a
//! credential the primary accepts, and the device's line is blocked, for its credentials or
//! another check. The new credentials are written alone, over the primary's own line, where a
//! line can carry them without restoring anything; else the entry says `rotation not applied`,
//! and what to do by hand where the merged credentials can be set so. A credential the merge
//! only adds is no rotation.

use failback::iothub::ImportMode;
use failback::{Capabilities, Status};
use serde_json::{Value, json};

use crate::hub::Hub;
use crate::rerun::credentials;
use crate::*;

/// A tag over IoT Hub's 8 KB limit for tags: the device's full update is blocked.
fn big(value: Value) -> Value {
    set(value, "/tags/big", json!("x".repeat(9000)))
}

fn disabled(value: Value) -> Value {
    set(value, "/status", json!("disabled"))
}

fn no_etag(value: Value) -> Value {
    set(value, "/eTag", Value::Null)
}

/// `value` made a self-signed X.509 device with these thumbprints (`None`: not set).
fn x509(value: Value, primary: &str, secondary: Option<&str>) -> Value {
    let thumbprints = json!({"primaryThumbprint": primary, "secondaryThumbprint": secondary});
    let auth = json!({"x509Thumbprint": thumbprints, "type": "selfSigned"});
    set(value, "/authentication", auth)
}

/// Asserts no entry names a key or thumbprint of any side.
#[track_caller]
fn assert_no_secret_in(run: &Run) {
    for (id, reason) in run.blocked() {
        for secret in K.iter().chain(&[T1, T2, T3, T4]) {
            assert!(!reason.contains(secret), "{id}: {reason}");
        }
    }
}

#[test]
fn new_credentials_of_a_device_blocked_for_its_twin_are_written_alone_over_the_primarys_line() {
    // The secondary rotated the keys (one leaked, say) and grew a tag past IoT Hub's limit: the
    // full update would be refused, so the device is blocked, and its new keys waited with it,
    // the old ones still valid in the primary and the entry silent about them. A line can carry
    // them alone: the primary's own, its status, twin and capabilities as its export holds
    // them, guarded by its eTag. With a disable, the line carries both.
    let base = [device("big"), device("big-disabled")];
    let primary = base.clone();
    let secondary = [
        keys(big(device("big")), K[4], K[5]),
        disabled(keys(big(device("big-disabled")), K[4], K[5])),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert_eq!(
            run.blocked_ids(),
            ["big", "big-disabled"],
            "prefer {prefer:?}"
        );
        let blocked = run.blocked();
        for ((id, reason), written) in blocked.iter().zip([
            "the new credentials alone are written now, over the status, twin and capabilities \
             the primary holds",
            "the disable and the new credentials alone are written now, over the twin and \
             capabilities the primary holds",
        ]) {
            assert!(reason.starts_with("merged tags are"), "{id}: {reason}");
            assert!(reason.contains(written), "{id}: {reason}");
            assert!(!reason.contains("not applied"), "{id}: {reason}");
        }
        assert_no_secret_in(&run);
        for (id, was, status) in [
            ("big", &primary[0], Status::Enabled),
            ("big-disabled", &primary[1], Status::Disabled),
        ] {
            let line = run.line(id);
            let was = line_of(was);
            assert_eq!(line.import_mode, Some(ImportMode::UpdateIfMatchETag));
            assert_eq!(line.e_tag, was.e_tag);
            assert_eq!(line.status, status);
            // The merged credentials, compared and never shown.
            let merged = credentials(Some(&run.device(id).authentication));
            assert!(credentials(line.authentication.as_ref()) == merged, "{id}");
            assert!(merged != credentials(was.authentication.as_ref()), "{id}");
            // The primary's twin and capabilities, not the merged tag the hub would refuse.
            assert_eq!((&line.tags, &line.desired), (&was.tags, &was.desired));
            assert_eq!(line.capabilities, was.capabilities);
        }
        // Applied, the hub accepts it, and the next run writes nothing more: the devices stay
        // blocked for their tags alone, their credentials and disable now the primary's.
        let mut hub = Hub::new(&export(&primary));
        hub.import(&run.plan.import).expect("the plan applies");
        let next = run_lines(&base, &hub.export(), &secondary, prefer);
        assert!(
            next.plan.import.is_empty(),
            "prefer {prefer:?}: {}",
            json_lines(&next.plan.import)
        );
        for (id, reason) in next.blocked() {
            assert!(reason.starts_with("merged tags are"), "{id}: {reason}");
            assert!(!reason.contains("credentials"), "{id}: {reason}");
            assert!(!reason.contains("disable"), "{id}: {reason}");
        }
    }
}

#[test]
fn a_rotation_no_line_can_carry_is_said_with_what_to_do_by_hand() {
    // Each device blocked, its rotation not written: its entry says so, whatever the block's
    // reason, naming no key. Where the merged credentials are settled and only the line fails
    // (no eTag to match), an operator can set them by hand from the merged registry; where they
    // are not (crossed rotations, a primary exported without keys, which may hold a key rotated
    // since), the reason says what to do instead.
    let base = [
        device("no-etag"),
        device("no-etag-disabled"),
        device("keyless"),
        device("crossed"),
    ];
    let primary = [
        no_etag(device("no-etag")),
        no_etag(device("no-etag-disabled")),
        set(device("keyless"), "/authentication", Value::Null),
        keys(device("crossed"), K[0], K[2]),
    ];
    let secondary = [
        keys(device("no-etag"), K[4], K[5]),
        disabled(keys(device("no-etag-disabled"), K[4], K[5])),
        keys(device("keyless"), K[4], K[5]),
        keys(device("crossed"), K[3], K[1]),
    ];
    let by_hand = "Set its credentials from the merged registry by hand now";
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert_eq!(
            run.blocked_ids(),
            ["crossed", "keyless", "no-etag", "no-etag-disabled"],
            "prefer {prefer:?}"
        );
        assert!(
            run.plan.import.is_empty(),
            "{}",
            json_lines(&run.plan.import)
        );
        assert_no_secret_in(&run);
        let reason = |id: &str| {
            let found = run.blocked().into_iter().find(|(b, _)| b == id);
            found.map(|(_, reason)| reason).expect("blocked")
        };
        let no_etag = reason("no-etag");
        assert!(no_etag.starts_with("the primary's export has no eTag"));
        assert!(
            no_etag.ends_with(&format!(
                "; rotation not applied, for that reason: the merge changes its credentials (a \
                 key, thumbprint or certificate authority the primary accepts is rotated out). \
                 {by_hand}"
            )),
            "{no_etag}"
        );
        let both = reason("no-etag-disabled");
        assert!(
            both.ends_with(
                "; disable not applied; rotation not applied, for that reason: the merge \
                 disables it and changes its credentials. Disable it and set its credentials \
                 from the merged registry by hand now"
            ),
            "{both}"
        );
        for id in ["keyless", "crossed"] {
            let reason = reason(id);
            assert!(
                reason.contains("; rotation not applied, for that reason"),
                "{id}: {reason}"
            );
            assert!(!reason.contains(by_hand), "{id}: {reason}");
        }
        assert!(reason("keyless").starts_with("the primary was exported without keys"));
        assert!(reason("crossed").starts_with("concurrent credential rotations"));
    }
}

#[test]
fn only_a_credential_the_primary_accepts_and_the_merge_drops_is_a_rotation() {
    // Blocked for a missing eTag, each device's entry says `rotation not applied` where the
    // merge rotates out a credential the primary accepts: a thumbprint replaced, SAS keys
    // dropped for thumbprints (a change of type), a certificate authority dropped for pinned
    // thumbprints. A secondary thumbprint the primary did not hold, none removed, is no
    // rotation: nothing the primary accepts is rotated out, and the entry says nothing of one.
    let ca = |v: Value| {
        set(
            v,
            "/authentication",
            json!({"type": "certificateAuthority"}),
        )
    };
    let base = [
        x509(device("added"), T1, None),
        x509(device("replaced"), T1, Some(T2)),
        device("sas-to-x509"),
        ca(device("ca-to-x509")),
    ];
    let primary: Vec<Value> = base.iter().cloned().map(no_etag).collect();
    let secondary = [
        x509(device("added"), T1, Some(T2)),
        x509(device("replaced"), T1, Some(T3)),
        x509(device("sas-to-x509"), T3, None),
        x509(device("ca-to-x509"), T4, None),
    ];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        let said: Vec<(String, bool)> = run
            .blocked()
            .into_iter()
            .map(|(id, reason)| (id, reason.contains("rotation not applied")))
            .collect();
        assert_eq!(
            said,
            [
                ("added".to_owned(), false),
                ("ca-to-x509".to_owned(), true),
                ("replaced".to_owned(), true),
                ("sas-to-x509".to_owned(), true),
            ],
            "prefer {prefer:?}"
        );
        run.assert_each_blocked_for("no eTag");
    }
}

#[test]
fn a_gateway_whose_demotion_waits_for_its_capabilities_still_has_its_rotation_written() {
    // The primary exports the gateway without capabilities (a leaf's scope names it), and the
    // secondary demoted it and rotated its keys: the full update would demote an edge device
    // the export did not describe, and is blocked. Its new keys are written alone, over the
    // primary's line, keeping it an edge device and its leaf behind it.
    let unstated = |id: &str| without(device(id), "capabilities");
    let leaf = |generation: u64| {
        let scope = format!("ms-azure-iot-edge://gw-{generation}");
        set(device("leaf"), "/deviceScope", json!(scope))
    };
    let base = [unstated("gw"), leaf(1)];
    let primary = base.clone();
    let secondary = [keys(device("gw"), K[4], K[5]), leaf(2)];
    for prefer in BOTH {
        let run = merge(&base, &primary, &secondary, prefer);
        assert_eq!(run.blocked_ids(), ["gw"], "prefer {prefer:?}");
        let blocked = run.blocked();
        let reason = blocked[0].1;
        assert!(reason.contains("gives no capabilities"), "{reason}");
        assert!(
            reason.contains("the new credentials alone are written"),
            "{reason}"
        );
        let line = run.line("gw");
        assert_eq!(line.import_mode, Some(ImportMode::UpdateIfMatchETag));
        assert_eq!(line.capabilities, Some(Capabilities { iot_edge: true }));
        let merged = credentials(Some(&run.device("gw").authentication));
        assert!(credentials(line.authentication.as_ref()) == merged);
        let mut hub = Hub::new(&export(&primary));
        hub.import(&run.plan.import).expect("the plan applies");
        let held = hub.export();
        let held = |id: &str| held.iter().find(|l| l.key == parse_key(id)).cloned();
        let gw = held("gw").expect("kept");
        assert!(credentials(gw.authentication.as_ref()) == merged);
        assert_eq!(gw.capabilities, Some(Capabilities { iot_edge: true }));
        let leaf_scope = held("leaf").and_then(|l| l.device_scope);
        assert_eq!(leaf_scope.as_deref(), Some("ms-azure-iot-edge://gw-1"));
        // The next run reads the new keys as the primary's: nothing of them is left to say.
        let next = run_lines(&base, &hub.export(), &secondary, prefer);
        assert!(
            next.plan
                .blocked
                .iter()
                .all(|b| !b.reason.contains("rotation")),
            "{:?}",
            next.plan.blocked
        );
    }
}
