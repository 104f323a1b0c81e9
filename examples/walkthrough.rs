//! A walkthrough of the library as two regional back ends and an event consumer use it.
//!
//! Run it with `cargo run --example walkthrough`. Each step prints what happened and asserts
//! what the README promises, so a run that finishes is a run that held:
//!
//! 1. Before the outage the primary region (west) creates devices; the secondary (east) holds
//!    a copy, read from the text west saved.
//! 2. During the outage both regions write: east re-keys a device, disables a compromised one,
//!    deletes one and tags another; west, cut off, re-enables the compromised device and tags
//!    the same device differently.
//! 3. Every write also goes out as an event, which a downstream consumer receives shuffled
//!    and twice.
//! 4. Failback: each region sends the other what it has not seen (`delta_since`), as JSON;
//!    both merge, in either order, to one registry. The report names every conflict, the rule
//!    that settled it and whether it decides who can connect, with keys shown only as
//!    fingerprints.
//! 5. The consumer holds that same registry; an event id reused for another payload is
//!    refused.
//! 6. West saves the merged registry atomically, and both compact what both have seen.

use std::error::Error as StdError;

use failback::iothub::write_atomically;
use failback::{
    Authentication, DeviceKey, Event, EventId, Identity, Ingest, Pair, Policy, Registry, ReplicaId,
    Rule, Section, Stamp, Status, StatusValue, SymmetricKey, VersionVector,
};
use serde_json::json;

const WEST: ReplicaId = ReplicaId::from_u128(0x1);
const EAST: ReplicaId = ReplicaId::from_u128(0x2);

fn sas(primary: &str, secondary: &str) -> Result<Authentication, failback::Error> {
    let pair = Pair::new(
        Some(SymmetricKey::new(primary)?),
        Some(SymmetricKey::new(secondary)?),
    );
    Ok(Authentication::sas(pair))
}

fn main() -> Result<(), Box<dyn StdError>> {
    let [pump, valve, meter] = ["pump-1", "valve-9", "meter-4"].map(DeviceKey::device);
    let (pump, valve, meter) = (pump?, valve?, meter?);
    // Every write's delta, as the event a message bus would carry.
    let mut published: Vec<Event> = Vec::new();
    let mut publish = |id: &str, delta: Registry| -> Result<(), failback::Error> {
        published.push(Event::new(EventId::new(id), delta)?);
        Ok(())
    };

    // 1. Before the outage.
    let mut west = Registry::new();
    let mut writer = west.writer(WEST, Stamp::new(1, 0));
    for (n, key) in [&pump, &valve, &meter].into_iter().enumerate() {
        let identity = Identity::default()
            .with_authentication(sas("b2xkLWtleS0wMDAwMDAwMQ==", "b2xkLWtleS0wMDAwMDAwMg==")?)
            .with_twin(Section::Tags, json!({"site": "hall-a"}))?;
        publish(&format!("west-create-{n}"), writer.create(key, identity)?)?;
    }
    let saved = serde_json::to_string(&west)?;
    let mut east: Registry = serde_json::from_str(&saved)?;
    assert_eq!(east, west);
    println!(
        "1. west created {} devices; east read them from west's text",
        west.live_count()
    );

    // 2. During the outage. Stamps are the writers' clocks, used only where a rule asks for
    // the latest write; the security rules never look at them.
    let mut writer = east.writer(EAST, Stamp::new(10, 0));
    let rotated = sas("bmV3LWtleS0wMDAwMDAwMQ==", "bmV3LWtleS0wMDAwMDAwMg==")?;
    publish(
        "east-rekey",
        writer.set_authentication(&pump, rotated.clone())?,
    )?;
    let compromised = StatusValue::new(Status::Disabled, Some("key leaked".into()));
    publish("east-disable", writer.set_status(&valve, compromised)?)?;
    publish("east-delete", writer.delete(&meter)?)?;
    let east_tag = writer.set_twin(&pump, Section::Tags, "site", Some(json!("hall-b")))?;
    publish("east-tag", east_tag)?;

    let mut writer = west.writer(WEST, Stamp::new(11, 0));
    let reenabled = StatusValue::new(Status::Enabled, Some("maintenance done".into()));
    publish("west-reenable", writer.set_status(&valve, reenabled)?)?;
    let west_tag = writer.set_twin(&pump, Section::Tags, "site", Some(json!("hall-c")))?;
    publish("west-tag", west_tag)?;
    println!("2. east wrote 4 changes, west 2, neither seeing the other's");

    // 3. The consumer gets every event twice, in an order of the bus's choosing.
    let mut consumer = Ingest::new(Registry::new());
    let mut deliveries: Vec<&Event> = published.iter().chain(&published).collect();
    deliveries.reverse();
    deliveries.rotate_left(3);
    for event in &deliveries {
        consumer.apply(event)?;
    }
    println!(
        "3. the consumer applied {} deliveries of {} events",
        deliveries.len(),
        published.len()
    );

    // 4. Failback: each side sends what the other has not seen, as text.
    let to_west = serde_json::to_string(&east.delta_since(west.context().vector()))?;
    let to_east = serde_json::to_string(&west.delta_since(east.context().vector()))?;
    let report = west.merge(&serde_json::from_str(&to_west)?);
    east.merge(&serde_json::from_str(&to_east)?);
    assert_eq!(west, east, "both regions hold one registry");
    println!("4. failback merge at west: {report}");
    for conflict in &report.conflicts {
        let security = if conflict.security { " [security]" } else { "" };
        println!("   {conflict}{security}");
    }

    let policy = Policy::default();
    let device = |key: &DeviceKey| west.device(key, &policy);
    // A stale replica never re-enables a disabled device, deletes stand, the rotation holds.
    let valve_now = device(&valve).ok_or("valve-9 is live")?;
    assert_eq!(valve_now.status.status, Status::Disabled);
    assert!(device(&meter).is_none(), "meter-4 stays deleted");
    let pump_now = device(&pump).ok_or("pump-1 is live")?;
    assert_eq!(pump_now.authentication, rotated);
    let rules: Vec<(String, Rule)> = report
        .conflicts
        .iter()
        .map(|c| (format!("{} {}", c.key, c.field), c.rule))
        .collect();
    assert!(rules.contains(&("valve-9 status".into(), Rule::DisableWins)));
    assert!(rules.iter().any(|(what, _)| what == "pump-1 tags.site"));
    // Keys never appear in a report: fingerprints stand for them.
    let shown = serde_json::to_string(&report)?;
    assert!(!shown.contains("bmV3LWtleS0wMDAwMDAwMQ=="));

    // 5. The consumer converged on the same registry, and refuses a reused id.
    assert_eq!(consumer.registry(), &west);
    let mut writer = east.writer(EAST, Stamp::new(12, 0));
    let other = writer.set_twin(&pump, Section::Desired, "interval", Some(json!(30)))?;
    let reused = consumer.apply(&Event::new(EventId::new("east-tag"), other)?);
    let refusal = reused.err().ok_or("a reused id is refused")?;
    println!("5. the consumer matches the merged registry and refuses a reused id: {refusal}");

    // 6. Saved atomically (a temporary file, synced, then renamed), read back whole.
    let dir = std::env::temp_dir().join(format!("failback-walkthrough-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("west.json");
    write_atomically(&path, &[], |out| {
        serde_json::to_writer(&mut *out, &west).map_err(std::io::Error::other)
    })?;
    let restored: Registry = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(restored, west);
    std::fs::remove_dir_all(&dir)?;
    // What every replica (both regions and the consumer) has seen is stable: tombstones under
    // it can go, since no state that has not seen their deletes is left to merge.
    let mut stable: VersionVector = west.context().vector().clone();
    stable.meet(east.context().vector());
    stable.meet(consumer.registry().context().vector());
    let tombstones = west.deleted().count();
    west.compact(&stable);
    println!(
        "6. saved and read back; compacted {} tombstone(s) every replica has seen",
        tombstones - west.deleted().count()
    );
    Ok(())
}
