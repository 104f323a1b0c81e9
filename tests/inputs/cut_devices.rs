//! A device cut from a state's text, its context still claiming it.

use failback::{Identity, Registry, Stamp};
use serde_json::json;

use super::{common, member, merges_and_round_trips, read_edited};

/// A state holding a device `x` of replica 0, and a copy of it with `x` cut from the text: its
/// context still claims `x`'s creation, with no tombstone and an empty stable vector. The
/// reader cannot tell that claim from one an overwrite left, so it reads. With `stable`, the
/// copy's stable vector covers `x` too: then it reads as `x` deleted and compacted.
fn cut_and_intact(stable: bool) -> (Registry, Registry) {
    let mut intact = Registry::new();
    intact
        .writer(common::replica(0), Stamp::new(1, 0))
        .create(&common::key(0), Identity::default())
        .expect("fresh");
    let cut = read_edited(&intact, |v| {
        *member(v, "devices") = json!([]);
        if stable {
            v["stable"] = v["context"]["vector"].clone();
        }
    })
    .expect("a reader cannot tell a cut device from an overwritten write");
    (intact, cut)
}

/// Each side of `(intact, cut)` with one more write, of a replica of its own: neither context
/// then includes the other, and no merge between them takes the inclusion shortcut.
fn written_apart((intact, cut): (Registry, Registry)) -> (Registry, Registry) {
    let (mut intact, mut cut) = (intact, cut);
    for (registry, n) in [(&mut intact, 1), (&mut cut, 2)] {
        registry
            .writer(common::replica(n), Stamp::new(2, 0))
            .create(&common::key(n), Identity::default())
            .expect("fresh");
    }
    (intact, cut)
}

fn merged(a: &Registry, b: &Registry) -> Registry {
    let mut joined = a.clone();
    joined.merge(b);
    joined
}

fn text(registry: &Registry) -> String {
    serde_json::to_string(registry).expect("a registry serialises")
}

/// A device cut from a state's text, its context still claiming it, comes back from any peer
/// holding it that has written since: a context's claim is no evidence of a delete without a
/// tombstone or a stable vector covering the device, so the merge keeps the device both ways
/// (2026-11-24, found in review: `intact ⊔ cut` kept it where `cut ⊔ intact` dropped it, and
/// debug builds panicked on the check of the skipped sweep).
#[test]
fn a_device_cut_from_a_state_comes_back_from_a_peer_holding_it_both_ways() {
    let (intact, cut) = written_apart(cut_and_intact(false));
    let (one_way, other_way) = (merged(&intact, &cut), merged(&cut, &intact));
    assert_eq!(text(&one_way), text(&other_way), "a ⊔ b = b ⊔ a");
    assert_eq!(
        one_way.records(&common::key(0)).len(),
        1,
        "the cut device stands"
    );
    merges_and_round_trips(&cut, &intact).expect("one state both ways");
}

/// The cut state merged with the state holding the device and nothing more: the merge into
/// the intact state keeps the device (no delete is in evidence); the merge into the cut state
/// finds the incoming context and stable vector included, and changes nothing (the inclusion
/// shortcut, `Registry::merge_with`, which stays O(1)). The two differ, as `registry.rs`
/// documents; neither panics, and the device comes back once the intact side writes anything.
#[test]
fn a_device_cut_from_a_state_including_its_peer_comes_back_with_the_peer_next_write() {
    let (intact, cut) = cut_and_intact(false);
    assert_eq!(merged(&intact, &cut), intact, "intact ⊔ cut = intact");
    assert_eq!(merged(&cut, &intact), cut, "cut ⊔ intact = cut: included");
    let (later, _) = written_apart((intact, cut.clone()));
    let restored = merged(&cut, &later);
    assert_eq!(
        text(&restored),
        text(&merged(&later, &cut)),
        "a ⊔ b = b ⊔ a"
    );
    assert_eq!(
        restored.records(&common::key(0)).len(),
        1,
        "the cut device is back"
    );
}

/// A cut device its state's stable vector covers reads as a device deleted and compacted:
/// the merge cannot tell the two apart. Merged with a state that holds the device, neither
/// direction panics, debug builds included; the merge that walks the device drops it (a
/// compacted delete), and the one that skips the sweep, its vector reaching the stable vector,
/// keeps it, as `registry.rs` documents.
#[test]
fn a_cut_device_under_the_stable_vector_merges_without_panicking() {
    let (intact, cut) = written_apart(cut_and_intact(true));
    let walked = merged(&cut, &intact);
    let skipped = merged(&intact, &cut);
    assert!(
        walked.records(&common::key(0)).is_empty(),
        "read as deleted"
    );
    assert_eq!(
        skipped.records(&common::key(0)).len(),
        1,
        "the sweep skipped"
    );
    let (intact, cut) = cut_and_intact(true);
    assert_eq!(merged(&cut, &intact), cut, "included: unchanged");
    assert_eq!(merged(&intact, &cut).records(&common::key(0)).len(), 1);
}

/// A delete compacted away on one side still refuses the stale incarnation a replica that
/// never saw the delete holds, whichever side merges, with or without writes since: the
/// deleting side's stable vector covers the incarnation, which is the evidence of the delete.
#[test]
fn a_compacted_delete_refuses_the_stale_incarnation_both_ways() {
    let (intact, _) = cut_and_intact(false);
    let mut deleter = intact.clone();
    deleter
        .writer(common::replica(3), Stamp::new(3, 0))
        .delete(&common::key(0))
        .expect("live");
    deleter.compact(&deleter.context().vector().clone());
    assert!(deleter.tombstones(&common::key(0)).is_empty(), "compacted");
    let (stale, _) = written_apart((intact, Registry::new()));
    for (a, b) in [(&deleter, &stale), (&stale, &deleter)] {
        let joined = merged(a, b);
        assert!(
            joined.records(&common::key(0)).is_empty(),
            "not resurrected"
        );
        assert_eq!(text(&joined), text(&merged(b, a)), "a ⊔ b = b ⊔ a");
    }
}
