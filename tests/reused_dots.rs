//! Two writes under one dot: what `ReplicaId` documents as misuse (a process restarted from a
//! backup older than writes it shipped, under the same id) and what a saved state edited in
//! place makes (README, "Saved states"). No merge can tell the two writes apart, and none
//! panics: each replica keeps the write it holds under the dot, whatever it merges, until a
//! later write overwrites it, and takes everything else the other side wrote.
//!
//! The merge's shortcuts (a slot kept, or taken whole, without a join) must agree: a slot is
//! taken whole only where it holds the same creation and the same entries as this side under
//! every dot both hold. Debug builds check each shortcut against the general join, so in a
//! debug build a shortcut that compared dots alone panics here.

use failback::{DeviceKey, Identity, Policy, Registry, ReplicaId, Section, Stamp};
use serde_json::{Value, json};

fn key() -> DeviceKey {
    DeviceKey::device("d").expect("a valid id")
}

fn joined(mine: &Registry, theirs: &Registry) -> Registry {
    let mut joined = mine.clone();
    joined.merge(theirs);
    joined
}

fn metadata(registry: &Registry, name: &str) -> Option<Value> {
    let device = registry.device(&key(), &Policy::default())?;
    device.metadata.get(name).cloned()
}

fn tag(registry: &Registry, name: &str) -> Option<Value> {
    let device = registry.device(&key(), &Policy::default())?;
    device.tags.get(name).cloned()
}

/// A saved state whose creation's metadata was edited in place (under the creation's dot),
/// and the original replica's state after a later twin write.
fn edited_and_original() -> (Registry, Registry) {
    let r = ReplicaId::from_u128(1);
    let mut original = Registry::new();
    original
        .writer(r, Stamp::new(1, 0))
        .create(&key(), Identity::default().with_metadata("owner", json!(1)))
        .expect("a fresh registry");
    let text = serde_json::to_string(&original).expect("a registry serialises");
    let edited_text = text.replace(r#""owner":1"#, r#""owner":2"#);
    assert_ne!(text, edited_text, "the edit applies");
    let edited: Registry = serde_json::from_str(&edited_text).expect("no reader can tell");
    original
        .writer(r, Stamp::new(2, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("x")))
        .expect("a live device");
    (edited, original)
}

#[test]
fn an_edited_copy_keeps_its_own_creation_and_takes_the_later_writes() {
    let (edited, original) = edited_and_original();
    // The original's slot holds every dot the edited copy holds, and more: taken whole, it
    // would replace the edited creation (and a debug build's check of the shortcut panicked).
    let merged = joined(&edited, &original);
    assert_eq!(
        metadata(&merged, "owner"),
        Some(json!(2)),
        "the edited value"
    );
    assert_eq!(tag(&merged, "site"), Some(json!("x")), "the later write");
    let other_way = joined(&original, &edited);
    assert_eq!(
        metadata(&other_way, "owner"),
        Some(json!(1)),
        "the original value"
    );
    assert_eq!(other_way, original, "nothing the original has not seen");
}

/// A backup taken before the replica's first write; the replica's shipped state (a create
/// and a twin write); and the replica restarted from the backup under its old id, whose
/// create takes the first dot again.
fn one_dot_two_creates() -> (Registry, Registry) {
    let r = ReplicaId::from_u128(1);
    let backup = Registry::new();
    let mut shipped = backup.clone();
    shipped
        .writer(r, Stamp::new(1, 0))
        .create(
            &key(),
            Identity::default().with_metadata("owner", json!("first")),
        )
        .expect("a fresh registry");
    shipped
        .writer(r, Stamp::new(2, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("x")))
        .expect("a live device");
    let mut restarted = backup;
    restarted
        .writer(r, Stamp::new(3, 0))
        .create(
            &key(),
            Identity::default().with_metadata("owner", json!("second")),
        )
        .expect("a fresh registry");
    (restarted, shipped)
}

#[test]
fn a_create_whose_dot_a_restart_reused_is_kept_by_the_replica_holding_it() {
    let (restarted, shipped) = one_dot_two_creates();
    let merged = joined(&restarted, &shipped);
    assert_eq!(
        metadata(&merged, "owner"),
        Some(json!("second")),
        "the create held"
    );
    assert_eq!(
        tag(&merged, "site"),
        Some(json!("x")),
        "the other side's later write"
    );
    let other_way = joined(&shipped, &restarted);
    assert_eq!(
        metadata(&other_way, "owner"),
        Some(json!("first")),
        "the create held"
    );
}

/// A device created and shared by two replicas; then replica 1 writes a tag and replica 2,
/// concurrently, the same tag, and replica 1 takes replica 2's write; and replica 1,
/// restarted from its backup of the shared state, writes the tag again under the dot of its
/// lost write. Returns the restarted replica and the state it lost.
fn one_dot_two_tag_writes() -> (Registry, Registry) {
    let (one, two) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    let mut shared = Registry::new();
    shared
        .writer(one, Stamp::new(1, 0))
        .create(&key(), Identity::default())
        .expect("a fresh registry");
    let backup = shared.clone();
    let mut lost = shared.clone();
    lost.writer(one, Stamp::new(2, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("lost")))
        .expect("a live device");
    let mut concurrent = shared;
    concurrent
        .writer(two, Stamp::new(3, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("concurrent")))
        .expect("a live device");
    lost.merge(&concurrent);
    let mut restarted = backup;
    restarted
        .writer(one, Stamp::new(10, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("rewritten")))
        .expect("a live device");
    (restarted, lost)
}

#[test]
fn a_register_write_whose_dot_a_restart_reused_is_kept_by_the_replica_holding_it() {
    let (restarted, lost) = one_dot_two_tag_writes();
    // The register's join keeps this side's entry under the shared dot and takes the
    // concurrent one: it reused the other side's entries, which hold the lost write there.
    let merged = joined(&restarted, &lost);
    assert_eq!(
        tag(&merged, "site"),
        Some(json!("rewritten")),
        "the latest held"
    );
    let other_way = joined(&lost, &restarted);
    assert_eq!(
        tag(&other_way, "site"),
        Some(json!("concurrent")),
        "the latest held"
    );
}

/// The same, without the concurrent write: the two registers hold one dot each, the same,
/// and the lost state's slot holds nothing the restarted one lacks but a later write.
#[test]
fn a_register_entry_reused_under_one_dot_is_not_taken_by_a_shortcut() {
    let one = ReplicaId::from_u128(1);
    let mut backup = Registry::new();
    backup
        .writer(one, Stamp::new(1, 0))
        .create(&key(), Identity::default())
        .expect("a fresh registry");
    let mut lost = backup.clone();
    lost.writer(one, Stamp::new(2, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("lost")))
        .expect("a live device");
    lost.writer(one, Stamp::new(3, 0))
        .set_twin(&key(), Section::Tags, "room", Some(json!(7)))
        .expect("a live device");
    let mut restarted = backup;
    restarted
        .writer(one, Stamp::new(10, 0))
        .set_twin(&key(), Section::Tags, "site", Some(json!("rewritten")))
        .expect("a live device");
    let merged = joined(&restarted, &lost);
    assert_eq!(
        tag(&merged, "site"),
        Some(json!("rewritten")),
        "the write held"
    );
    assert_eq!(
        tag(&merged, "room"),
        Some(json!(7)),
        "the other side's later write"
    );
}
