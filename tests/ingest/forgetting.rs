//! What an ingest may drop and still converge: made to forget the events every source has
//! reached, or compacted, half-way through a delivery, it ends where the join does (compacted
//! alike), and a forgotten event delivered again is a no-op, neither remembered again nor
//! reported as a change.

use crate::common::{self, bytes, event, history, named};
use failback::{Ingest, ReplicaId, Stamp, VersionVector};
use proptest::prelude::*;
use serde_json::json;

use super::*;

proptest! {
    #![proptest_config(common::config())]

    /// Events delivered shuffled with duplicates, the ingest restored from its text half-way
    /// and made to forget what every replica and it have reached, converge all the same; then
    /// made to forget everything, every event delivered again is a no-op that is neither
    /// remembered nor reported as a change.
    #[test]
    fn forgotten_events_delivered_again_are_no_ops(h in history(), seed in any::<u64>()) {
        let events = events(&h);
        let order = deliveries(&events, seed);
        let mut stable = h.replicas()[0].context().vector().clone();
        h.replicas().iter().for_each(|r| stable.meet(r.context().vector()));
        let mut ingest = Ingest::default();
        for (i, e) in order.iter().enumerate() {
            if i == order.len() / 2 {
                let text = serde_json::to_string(&ingest).expect("serializable");
                ingest = serde_json::from_str(&text).expect("restores");
                let mut reached = stable.clone();
                reached.meet(ingest.registry().context().vector());
                ingest.forget(&reached);
            }
            let applied = ingest.apply(e);
            prop_assert!(applied.is_ok(), "{} refused: {:?}", e.id(), applied);
        }
        common::same_bytes(ingest.registry(), &h.join())?;
        restores(&ingest)?;
        ingest.forget(&ingest.registry().context().vector().clone());
        prop_assert_eq!(ingest.remembered(), 0);
        let before = ingest.clone();
        for e in &events {
            let report = ingest.apply(e).expect("a replay");
            prop_assert!(!report.state_changed, "{}: {report}", e.id());
        }
        prop_assert_eq!(ingest, before);
    }

    /// An ingest compacted half-way, as a long-running service compacts it (with a vector
    /// every source and the ingest have reached), converges to the history's join compacted
    /// alike, keeps every event it applied remembered, and restores from its text:
    /// `compact(s) ; apply(rest) = compact(s) ∘ join(all)`. Compacted again with all it has
    /// seen, a replay of every event under new ids changes nothing.
    #[test]
    fn an_ingest_compacted_half_way_converges_to_the_join_compacted_alike(h in history(), seed in any::<u64>()) {
        let events = events(&h);
        let order = deliveries(&events, seed);
        let mut stable = h.replicas()[0].context().vector().clone();
        h.replicas().iter().for_each(|r| stable.meet(r.context().vector()));
        let mut ingest = Ingest::default();
        let mut reached = VersionVector::new();
        for (i, e) in order.iter().enumerate() {
            if i == order.len() / 2 {
                reached = stable.clone();
                reached.meet(ingest.registry().context().vector());
                let remembered = ingest.remembered();
                ingest.compact(&reached);
                prop_assert_eq!(ingest.remembered(), remembered);
                prop_assert_eq!(ingest.registry().stable(), &reached);
            }
            let applied = ingest.apply(e);
            prop_assert!(applied.is_ok(), "{} refused: {:?}", e.id(), applied);
        }
        let mut expected = h.join();
        expected.compact(&reached);
        common::same_bytes(ingest.registry(), &expected)?;
        prop_assert_eq!(ingest.remembered(), events.len());
        restores(&ingest)?;
        // Compacted with all it has seen, every event delivered again under a new id (a
        // source replaying its log) changes nothing: no delete compacted is undone.
        let everything = ingest.registry().context().vector().clone();
        ingest.compact(&everything);
        let compacted = bytes(ingest.registry());
        for e in &events {
            let again = event(format!("again/{}", e.id()), e.delta().clone());
            let report = ingest.apply(&again).expect("a replay under a new id");
            prop_assert!(report.added == 0 && report.updated == 0, "{}: {report}", e.id());
        }
        prop_assert_eq!(bytes(ingest.registry()), compacted);
        prop_assert_eq!(ingest.registry().deleted().count(), 0);
    }
}

/// `Ingest::forget` says a forgotten event can arrive again and is a no-op: it is not
/// remembered again, and the ingest does not ask to be stored (review, 2026-11-23: each replay
/// grew the memory `forget` bounds back and reported a change). The ingest keeps what it was
/// told to forget in its text, and reads a text written before it did.
#[test]
fn a_forgotten_event_delivered_again_is_a_no_op_and_not_remembered() {
    let r = ReplicaId::from_u128(1);
    let key = named("d");
    let (mut source, create) = created(r, &key);
    let created = event("e1", create);
    let mut ingest = Ingest::default();
    ingest.apply(&created).expect("fresh");
    let stable = ingest.registry().context().vector().clone();
    ingest.forget(&stable);
    assert_eq!(ingest.remembered(), 0);
    let text = serde_json::to_value(&ingest).expect("serializable");
    let restored: Ingest = serde_json::from_value(text.clone()).expect("restores");
    assert_eq!(restored, ingest);
    for mut ingest in [ingest, restored] {
        let before = ingest.clone();
        let report = ingest.apply(&created).expect("a replay");
        assert_eq!(
            (ingest.remembered(), report.state_changed),
            (0, false),
            "remembered again, and reported as a change to store"
        );
        assert_eq!(ingest, before);
        // A write after the forgotten ones is applied and remembered as before.
        let next = source
            .writer(r, Stamp::new(2, 0))
            .set_metadata(&key, "owner", Some(json!("ops")))
            .expect("live");
        let report = ingest.apply(&event("e2", next)).expect("new");
        assert_eq!((ingest.remembered(), report.state_changed), (1, true));
    }
    // Written before an ingest kept what it forgot: read as having forgotten nothing, so the
    // replay is remembered again, as it was then.
    let mut old = text;
    old.as_object_mut().expect("an object").remove("forgotten");
    let mut old: Ingest = serde_json::from_value(old).expect("an older text reads");
    assert!(old.apply(&created).expect("a replay").state_changed);
    assert_eq!(old.remembered(), 1);
}
