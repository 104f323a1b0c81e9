//! Any delivery converges: a duplicate event is a no-op, and events in any order with any
//! duplicates give the in-order result, which is the history's join; an event ahead of the
//! writes before it (op 3 before ops 1 and 2, one of the two histories `crdts` gets wrong,
//! see `tests/differential.rs`) waits for none of them; local writes and a peer's events
//! converge as a merge of the two replicas.

use crate::common::{self, Rng, bytes, event, history, named};
use failback::{
    Authentication, DeviceKey, Event, Identity, Ingest, Pair, Policy, Registry, ReplicaId, Section,
    Stamp, Status, StatusValue, SymmetricKey,
};
use proptest::prelude::*;
use serde_json::json;

use super::*;

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn duplicate_events_are_no_ops(h in history(), seed in any::<u64>()) {
        let events = events(&h);
        let mut ingest = ingest_all(&events);
        let before = bytes(ingest.registry());
        let mut again: Vec<&Event> = events.iter().collect();
        Rng(seed).shuffle(&mut again);
        for event in again {
            let report = ingest.apply(event).expect("a duplicate is accepted");
            prop_assert!(report.is_unchanged(), "{report}");
            prop_assert!(report.conflicts.is_empty() && report.rejected.is_empty());
            prop_assert_eq!(&bytes(ingest.registry()), &before);
        }
        prop_assert_eq!(ingest.remembered(), events.len());
    }

    #[test]
    fn any_permutation_with_duplicates_converges_to_the_in_order_result(h in history(), seed in any::<u64>()) {
        let events = events(&h);
        let in_order = ingest_all(&events);
        let shuffled = ingest_all(deliveries(&events, seed));
        common::same_bytes(shuffled.registry(), in_order.registry())?;
        common::same_bytes(in_order.registry(), &h.join())?;
        restores(&shuffled)?;
    }
}

fn three_writes() -> (DeviceKey, Registry, [Event; 3]) {
    let r = ReplicaId::from_u128(1);
    let key = named("d");
    let mut source = Registry::new();
    let mut w = source.writer(r, Stamp::new(1, 0));
    let op1 = w.create(&key, Identity::default()).expect("fresh");
    let op2 = w
        .set_metadata(&key, "owner", Some(json!("ops")))
        .expect("live");
    let op3 = w
        .set_status(&key, StatusValue::new(Status::Disabled, None))
        .expect("live");
    let events = [op1, op2, op3]
        .into_iter()
        .enumerate()
        .map(|(i, d)| event(format!("op{}", i + 1), d));
    let events: Vec<Event> = events.collect();
    (key, source, events.try_into().expect("three"))
}

#[test]
fn op_3_before_ops_1_and_2_still_applies_all_three() {
    let (key, source, [op1, op2, op3]) = three_writes();
    let mut ingest = Ingest::new(Registry::new());
    ingest.apply(&op3).expect("accepted early");
    // Op 3's dot is seen; ops 1 and 2 are not, whatever the gap makes a vector clock say.
    assert!(ingest.registry().context().contains(op3.dots()[0]));
    assert!(!ingest.registry().context().contains(op1.dots()[0]));
    let report = ingest.apply(&op1).expect("accepted late");
    assert!(
        !report.is_unchanged(),
        "the creation fills the pending incarnation: {report}"
    );
    ingest.apply(&op2).expect("accepted late");

    assert_eq!(ingest.registry(), &source);
    let device = ingest
        .registry()
        .device(&key, &Policy::default())
        .expect("created");
    assert_eq!(device.status.status, Status::Disabled);
    assert_eq!(device.metadata["owner"], "ops");
    assert!(!device.pending);
}

/// A replica that writes and ingests: its own writes through `Ingest::writer`, its peer's
/// as events, shuffled and duplicated, its own echoed back by the peer. It ends where a
/// plain merge of the two replicas does, and the peer, fed the local deltas, agrees.
#[test]
fn local_writes_and_a_peers_events_converge_as_a_merge_of_the_two() {
    let (me, peer) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    let (a, b) = (named("a"), named("b"));
    let mut base = Registry::new();
    let mut w = base.writer(me, Stamp::new(1, 0));
    w.create(&a, Identity::default()).expect("fresh");
    w.create(&b, Identity::default()).expect("fresh");

    let mut ingest = Ingest::new(base.clone());
    let mut local = Vec::new();
    let mut w = ingest.writer(me, Stamp::new(5, 0));
    local.push(
        w.set_status(&a, StatusValue::new(Status::Disabled, Some("lost".into())))
            .expect("live"),
    );
    local.push(
        w.set_twin(&b, Section::Tags, "site", Some(json!("east")))
            .expect("live"),
    );

    let mut theirs = base.clone();
    let mut w = theirs.writer(peer, Stamp::new(6, 0));
    let mut peers = vec![
        w.set_status(&a, StatusValue::new(Status::Enabled, None))
            .expect("live"),
        w.set_twin(&b, Section::Tags, "site", Some(json!("west")))
            .expect("live"),
        w.delete(&a).expect("live"),
    ];
    // The peer merges the local deltas and echoes them in a sync.
    for delta in &local {
        theirs.merge(delta);
    }
    peers.push(theirs.delta_since(base.context().vector()));
    let events: Vec<Event> = peers
        .into_iter()
        .enumerate()
        .map(|(i, d)| event(format!("peer/{i}"), d))
        .collect();
    for e in deliveries(&events, 7) {
        ingest.apply(e).expect("a consistent stream");
    }

    let mut mine = base;
    for delta in &local {
        mine.merge(delta);
    }
    let mut expected = mine.clone();
    expected.merge(&theirs);
    assert_eq!(bytes(ingest.registry()), bytes(&expected));
    theirs.merge(&mine);
    assert_eq!(bytes(ingest.registry()), bytes(&theirs));
    // Saved and restored, it is the same ingest.
    let text = serde_json::to_string(&ingest).expect("serializable");
    assert_eq!(
        serde_json::from_str::<Ingest>(&text).expect("restores"),
        ingest
    );
}

/// An earlier build kept each key as written, so an ingest it stored may hold a key spelt
/// with the unused low bits of its last character set, which now reads as its canonical
/// spelling (one key, one text: see `SymmetricKey`). Each event it applied, delivered again
/// in the spelling it carried or in the canonical one, is the same payload: a no-op, never
/// refused as "already applied with a different payload".
#[test]
fn an_event_stored_with_a_key_spelt_otherwise_is_still_a_duplicate() {
    const CANONICAL: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
    const SPELT_OTHERWISE: &str = "MDEyMzQ1Njc4OWFiY2RlZh==";
    const OTHER: &str = "YWJjZGVmZ2hpamtsbW5vcA==";
    const NEW: &str = "cXJzdHV2d3h5ejAxMjM0NQ==";
    let sas = |primary: &str| {
        let key = |k: &str| Some(SymmetricKey::new(k).expect("valid"));
        Authentication::sas(Pair::new(key(primary), key(OTHER)))
    };
    let r = ReplicaId::from_u128(1);
    let key = named("d");
    let mut source = Registry::new();
    let mut w = source.writer(r, Stamp::new(1, 0));
    let create = w
        .create(
            &key,
            Identity::default().with_authentication(sas(SPELT_OTHERWISE)),
        )
        .expect("fresh");
    let rotate = w.set_authentication(&key, sas(NEW)).expect("live");
    let events = [event("create", create), event("rotate", rotate)];
    let mut ingest = Ingest::new(Registry::new());
    for e in &events {
        ingest.apply(e).expect("fresh");
    }
    // Text as the earlier build wrote it: the key as given.
    let as_written = |text: String| text.replace(CANONICAL, SPELT_OTHERWISE);
    let stored = as_written(serde_json::to_string(&ingest).expect("serializable"));
    assert!(stored.contains(SPELT_OTHERWISE));
    let mut restored: Ingest = serde_json::from_str(&stored).expect("restores");
    let before = restored.clone();
    for e in &events {
        let carried = as_written(serde_json::to_string(e).expect("serializable"));
        let canonical = carried.replace(SPELT_OTHERWISE, CANONICAL);
        for text in [carried, canonical] {
            let again: Event = serde_json::from_str(&text).expect("an event");
            let report = restored.apply(&again);
            assert!(report.is_ok(), "{}: {report:?}", e.id());
            assert_eq!(restored, before, "{}", e.id());
        }
    }
}
