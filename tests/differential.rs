//! Differential tests with `crdts` 7.3.2 as the reference peer, where the semantics coincide.
//!
//! - Version vectors: our [`VersionVector`]'s causal order, join and meet against
//!   `crdts::VClock`'s on random inputs.
//! - Registries: replicas applying creates and single-field writes and merging whole states,
//!   mirrored as `crdts` replicas holding one `MVReg` per (device, field) and a `VClock` of
//!   every op they have seen (what `crdts::Map` keeps), doing the same ops and merges. The set
//!   of concurrent values our registers hold per (device, field) must equal what the `MVReg`
//!   reads.
//!
//! The registers are kept in a `BTreeMap` rather than a `crdts::Map` because the map's merge
//! is reset-remove: an entry new to the receiving map has the actors the receiver has already
//! seen stripped from its value clocks (the map's clock is one for all keys), so a value
//! overwritten elsewhere later reads as concurrent with the write that overwrote it (see
//! `crdts_map_merge_makes_an_overwritten_value_look_concurrent`). That is the add-wins,
//! reset-remove semantics a map with removals needs, not a disagreement about registers.
//!
//! Where the semantics do not coincide, the model stays out:
//! - deletes: a `crdts::Map` removal is add-wins (reset-remove: a concurrent update keeps the
//!   key alive), ours is delete-wins with incarnations, so the model has no deletes;
//! - nested twin paths: our leaf writes replace the shape above and below them, a flat map of
//!   registers has no shape, so the model writes only top-level twin leaves;
//! - resolution: the model compares the *sets* of concurrent values, never the value a reader
//!   sees, which our security rules (disable wins, retired credentials) settle on purpose
//!   differently from any generic register;
//! - delivery: the model only merges whole states, because `crdts` drops ops delivered out of
//!   order or built from one dot (the last two tests show both).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    Op, authentication, held, leaf, metadata_key, parent, replica, section, stamp, status,
};
use crdts::ctx::ReadCtx;
use crdts::{CmRDT, CvRDT, MVReg, VClock};
use failback::{
    Capabilities, DeviceId, DeviceKey, Dot, Identity, Policy, Registry, ReplicaId, Section, Stamp,
    VersionVector,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Version vectors

fn entries() -> impl Strategy<Value = Vec<(u8, u64)>> {
    vec((1..5u8, 0..6u64), 0..6)
}

fn ours(entries: &[(u8, u64)]) -> VersionVector {
    entries
        .iter()
        .map(|&(r, n)| (ReplicaId::from_u128(u128::from(r)), n))
        .collect()
}

fn theirs(entries: &[(u8, u64)]) -> VClock<u8> {
    entries
        .iter()
        .map(|&(r, n)| crdts::Dot::new(r, n))
        .collect()
}

fn pairs_of_ours(vv: &VersionVector) -> Vec<(u8, u64)> {
    vv.iter()
        .map(|(r, n)| (u8::try_from(r.as_uuid().as_u128()).expect("small"), n))
        .collect()
}

fn pairs_of_theirs(clock: &VClock<u8>) -> Vec<(u8, u64)> {
    clock
        .dots
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (*r, *n))
        .collect()
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn version_vector_order_join_and_meet_agree_with_vclock(a in entries(), b in entries()) {
        let (ours_a, ours_b) = (ours(&a), ours(&b));
        let (theirs_a, theirs_b) = (theirs(&a), theirs(&b));
        prop_assert_eq!(ours_a.partial_cmp(&ours_b), theirs_a.partial_cmp(&theirs_b));
        prop_assert_eq!(pairs_of_ours(&ours_a), pairs_of_theirs(&theirs_a));

        let mut joined = ours_a.clone();
        joined.join(&ours_b);
        let mut merged = theirs_a.clone();
        merged.merge(theirs_b.clone());
        prop_assert_eq!(pairs_of_ours(&joined), pairs_of_theirs(&merged));

        let mut met = ours_a.clone();
        met.meet(&ours_b);
        let mut glb = theirs_a.clone();
        glb.glb(&theirs_b);
        prop_assert_eq!(pairs_of_ours(&met), pairs_of_theirs(&glb));

        for r in 1..5u8 {
            for n in 1..7u64 {
                let dot = Dot::new(ReplicaId::from_u128(u128::from(r)), n);
                prop_assert_eq!(ours_a.contains(dot), theirs_a.get(&r) >= n);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Registries

/// A `crdts` replica: one register per (device, field), keyed `device|field`, and the clock
/// of every op it has seen.
#[derive(Clone, Debug, Default)]
struct Model {
    clock: VClock<u8>,
    registers: BTreeMap<String, MVReg<String, u8>>,
}

impl Model {
    fn put(&mut self, actor: u8, key: &DeviceKey, field: &str, value: String) {
        let read = ReadCtx {
            add_clock: self.clock.clone(),
            rm_clock: VClock::new(),
            val: (),
        };
        let ctx = read.derive_add_ctx(actor);
        self.clock.apply(ctx.dot);
        let reg = self.registers.entry(format!("{key}|{field}")).or_default();
        let op = reg.write(value, ctx);
        reg.apply(op);
    }

    fn merge(&mut self, other: &Model) {
        self.clock.merge(other.clock.clone());
        for (k, reg) in &other.registers {
            self.registers
                .entry(k.clone())
                .or_default()
                .merge(reg.clone());
        }
    }

    fn read(&self, key: &DeviceKey, field: &str) -> Vec<String> {
        self.registers
            .get(&format!("{key}|{field}"))
            .map(|r| r.read().val)
            .unwrap_or_default()
    }
}

/// The map `crdts` offers for the same data, for the tests that show its behaviour.
type CrdtsMap = crdts::Map<String, MVReg<String, u8>, u8>;
type CrdtsMapOp = crdts::map::Op<String, MVReg<String, u8>, u8>;

const FLAT_PATHS: [&str; 3] = ["a", "b", "c"];
const FIELDS: [&str; 4] = ["status", "authentication", "capabilities", "parent"];

/// Every field the model compares, named as our conflicts name them.
fn fields() -> Vec<String> {
    let mut out: Vec<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    for s in [Section::Tags, Section::Desired] {
        out.extend(FLAT_PATHS.iter().map(|p| format!("{}.{p}", s.as_str())));
    }
    out.extend(
        common::METADATA_KEYS
            .iter()
            .map(|m| format!("metadata.{m}")),
    );
    out
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "removed".to_owned(), ToString::to_string)
}

fn show_parent(parent: Option<&DeviceId>) -> String {
    parent.map_or_else(|| "none".to_owned(), ToString::to_string)
}

/// Creations with top-level twin leaves only.
fn flat_identity() -> impl Strategy<Value = Identity> {
    (
        status(),
        authentication(),
        any::<bool>(),
        parent(),
        vec(
            (section(), proptest::sample::select(&FLAT_PATHS[..]), leaf()),
            0..3,
        ),
        vec((metadata_key(), leaf()), 0..2),
    )
        .prop_map(|(status, auth, edge, parent, twin, metadata)| {
            let mut identity = Identity::default()
                .with_status(status)
                .with_authentication(auth)
                .with_capabilities(Capabilities { iot_edge: edge })
                .with_parent(parent);
            for s in [Section::Tags, Section::Desired] {
                let object: Map<String, Value> = twin
                    .iter()
                    .filter(|(sec, _, _)| *sec == s)
                    .map(|(_, p, v)| ((*p).to_owned(), v.clone()))
                    .collect();
                if !object.is_empty() {
                    identity = identity.with_twin(s, Value::Object(object)).expect("valid");
                }
            }
            metadata
                .into_iter()
                .fold(identity, |id, (k, v)| id.with_metadata(k, v))
        })
}

/// Creates and single-field writes; no deletes, no nested paths (see the module docs).
fn model_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => flat_identity().prop_map(|i| Op::Create(Box::new(i))),
        2 => status().prop_map(Op::Status),
        2 => authentication().prop_map(Op::Authentication),
        2 => common::rotate(),
        1 => any::<bool>().prop_map(Op::Capabilities),
        1 => parent().prop_map(Op::Parent),
        3 => (section(), proptest::sample::select(&FLAT_PATHS[..]), common::maybe_leaf())
            .prop_map(|(s, p, v)| Op::Twin(s, p, v)),
        2 => (metadata_key(), common::maybe_leaf()).prop_map(|(k, v)| Op::Metadata(k, v)),
    ]
}

#[derive(Clone, Debug)]
enum ModelStep {
    Write {
        replica: usize,
        key: usize,
        stamp: Stamp,
        op: Op,
    },
    Merge {
        to: usize,
        from: usize,
    },
}

fn model_plan() -> impl Strategy<Value = (usize, Vec<ModelStep>)> {
    let step = prop_oneof![
        2 => (0..8usize, 0..common::KEYS, stamp(), model_op())
            .prop_map(|(replica, key, stamp, op)| ModelStep::Write { replica, key, stamp, op }),
        1 => (0..8usize, 0..8usize).prop_map(|(to, from)| ModelStep::Merge { to, from }),
    ];
    (3..=5usize, vec(step, 0..=20))
}

/// Where a write lands without deletes: a create on a key that is not live (a status write
/// instead when every key is), any other write on a live key (a create when none is); a
/// disable of a module becomes an enable, as in [`common::choose`].
fn choose(live: &[DeviceKey], k: usize, op: &Op) -> (DeviceKey, Op) {
    let wanted = common::key(k);
    let (target, op) = match op {
        Op::Create(_) => match (0..common::KEYS)
            .map(|i| common::key(k + i))
            .find(|c| !live.contains(c))
        {
            Some(free) => (free, op.clone()),
            None => (wanted, Op::Status(Default::default())),
        },
        _ if live.is_empty() => (wanted, Op::Create(Box::default())),
        _ if live.contains(&wanted) => (wanted, op.clone()),
        _ => (live[k % live.len()].clone(), op.clone()),
    };
    let op = common::enabled_if_module(&target, op);
    (target, op)
}

/// The same write as `crdts` ops: a create is one op per field it sets.
///
/// Credentials go in as a device holds them ([`common::held`]): the kind their type does not
/// use is held as unknown whatever was written (`Authentication`'s doc), a spelling of the
/// value, not a register rule. A `crdts` register holds what it is given, so it is given the
/// one spelling: a merge never looks at the values, so mapping each write's value maps the
/// set of concurrent values and changes nothing else. Given the written value, a SAS write
/// carrying thumbprints would read `sas thumbprints=[…]` here and `sas` in ours.
fn apply_to_model(model: &mut Model, actor: u8, key: &DeviceKey, op: &Op) {
    match op {
        Op::Create(identity) => {
            model.put(actor, key, "status", identity.status.to_string());
            model.put(
                actor,
                key,
                "authentication",
                held(&identity.authentication).to_string(),
            );
            model.put(
                actor,
                key,
                "capabilities",
                identity.capabilities.to_string(),
            );
            model.put(actor, key, "parent", show_parent(identity.parent.as_ref()));
            for (path, value) in &identity.twin {
                model.put(actor, key, &path.to_string(), show(Some(value)));
            }
            for (name, value) in &identity.metadata {
                model.put(actor, key, &format!("metadata.{name}"), show(Some(value)));
            }
        }
        Op::Status(v) => model.put(actor, key, "status", v.to_string()),
        Op::Authentication(a) => model.put(actor, key, "authentication", held(a).to_string()),
        Op::Capabilities(edge) => {
            model.put(
                actor,
                key,
                "capabilities",
                Capabilities { iot_edge: *edge }.to_string(),
            );
        }
        Op::Parent(p) => model.put(actor, key, "parent", show_parent(p.as_ref())),
        Op::Twin(s, path, value) => {
            model.put(
                actor,
                key,
                &format!("{}.{path}", s.as_str()),
                show(value.as_ref()),
            );
        }
        Op::Metadata(name, value) => model.put(
            actor,
            key,
            &format!("metadata.{name}"),
            show(value.as_ref()),
        ),
        Op::Delete | Op::Patch(..) => unreachable!("not generated for the model"),
        Op::Rotate { .. } => unreachable!("made concrete before it is applied"),
    }
}

/// Distinct values; a register whose only value is a removal reads as empty.
fn normalise(values: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let set: BTreeSet<String> = values.into_iter().collect();
    if set.len() == 1 && set.contains("removed") {
        BTreeSet::new()
    } else {
        set
    }
}

fn model_values(model: &Model, key: &DeviceKey, field: &str) -> BTreeSet<String> {
    normalise(model.read(key, field))
}

/// The concurrent values we hold for a field: those a conflict lists, else the one value.
fn our_values(registry: &Registry, key: &DeviceKey, field: &str) -> BTreeSet<String> {
    let Some(device) = registry.device(key, &Policy::default()) else {
        return BTreeSet::new();
    };
    if let Some(conflict) = device.conflicts.iter().find(|c| c.field == field) {
        return normalise(conflict.values.iter().map(|v| v.value.clone()));
    }
    let single = match field {
        "status" => Some(device.status.to_string()),
        "authentication" => Some(device.authentication.to_string()),
        "capabilities" => Some(device.capabilities.to_string()),
        "parent" => Some(show_parent(device.parent.as_ref())),
        f => {
            let value = if let Some(name) = f.strip_prefix("metadata.") {
                device.metadata.get(name)
            } else if let Some(name) = f.strip_prefix("tags.") {
                device.tags.get(name)
            } else {
                let name = f
                    .strip_prefix("properties.desired.")
                    .expect("a known field");
                device.desired.get(name)
            };
            value.map(|v| show(Some(v)))
        }
    };
    normalise(single)
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn registers_hold_the_same_concurrent_values_as_crdts_mvregs(
        (n, steps) in model_plan(),
    ) {
        let mut registries = vec![Registry::new(); n];
        let mut models = vec![Model::default(); n];
        for step in &steps {
            match step {
                ModelStep::Write { replica: r, key, stamp, op } => {
                    let r = r % n;
                    let live: Vec<DeviceKey> = registries[r].keys().cloned().collect();
                    let (target, op) = choose(&live, *key, op);
                    let op = common::concrete(&registries[r], &target, op);
                    common::perform(&mut registries[r].writer(replica(r), *stamp), &target, &op)
                        .expect("valid by construction");
                    let actor = u8::try_from(r + 1).expect("few replicas");
                    apply_to_model(&mut models[r], actor, &target, &op);
                }
                ModelStep::Merge { to, from } => {
                    let (to, mut from) = (to % n, from % n);
                    if from == to {
                        from = (from + 1) % n;
                    }
                    let incoming = registries[from].clone();
                    registries[to].merge(&incoming);
                    let incoming = models[from].clone();
                    models[to].merge(&incoming);
                }
            }
        }
        let mut all = Registry::new();
        let mut all_models = Model::default();
        for (registry, model) in registries.iter().zip(&models) {
            all.merge(registry);
            all_models.merge(model);
        }
        registries.push(all);
        models.push(all_models);
        for (at, (registry, model)) in registries.iter().zip(&models).enumerate() {
            for k in 0..common::KEYS {
                let key = common::key(k);
                for field in fields() {
                    prop_assert_eq!(
                        our_values(registry, &key, &field),
                        model_values(model, &key, &field),
                        "{} {} at replica {} (the last is the join of all)", key, field, at
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What `crdts::Map` does, measured on the reference peer itself: the two histories it gets
// wrong (tests/ingest/delivery.rs and tests/ingest/refusals.rs have ours), which is why the model above only merges whole states,
// and the reset-remove merge that keeps the model off `crdts::Map`.

/// Three ops from one actor on three keys, and the map they build in order.
fn three_ops() -> (CrdtsMap, Vec<CrdtsMapOp>) {
    let mut source = CrdtsMap::new();
    let mut ops = Vec::new();
    for key in ["k1", "k2", "k3"] {
        let ctx = source.read_ctx().derive_add_ctx(1);
        let op = source.update(key.to_owned(), ctx, |reg, ctx| {
            reg.write("v".to_owned(), ctx)
        });
        source.apply(op.clone());
        ops.push(op);
    }
    (source, ops)
}

#[test]
fn crdts_map_drops_ops_1_and_2_applied_after_op_3() {
    let (source, ops) = three_ops();
    let mut sink = CrdtsMap::new();
    sink.apply(ops[2].clone());
    sink.apply(ops[0].clone());
    sink.apply(ops[1].clone());
    assert!(sink.get(&"k3".to_owned()).val.is_some());
    assert!(
        sink.get(&"k1".to_owned()).val.is_none(),
        "its clock already says 3"
    );
    assert!(sink.get(&"k2".to_owned()).val.is_none());
    assert_ne!(sink, source);
}

#[test]
fn crdts_map_silently_loses_a_second_op_built_from_one_dot() {
    let base = CrdtsMap::new();
    let (mut left, mut right) = (base.clone(), base);
    let first = left.update(
        "owner".to_owned(),
        left.read_ctx().derive_add_ctx(1),
        |reg, ctx| reg.write("left".to_owned(), ctx),
    );
    let second = right.update(
        "rack".to_owned(),
        right.read_ctx().derive_add_ctx(1),
        |reg, ctx| reg.write("7".to_owned(), ctx),
    );
    left.apply(first.clone());
    right.apply(second.clone());
    let mut sink = CrdtsMap::new();
    sink.apply(first);
    sink.apply(second); // no error, no effect
    assert!(sink.get(&"owner".to_owned()).val.is_some());
    assert!(sink.get(&"rack".to_owned()).val.is_none());
}

#[test]
fn crdts_map_merge_makes_an_overwritten_value_look_concurrent() {
    let put = |map: &mut CrdtsMap, actor: u8, key: &str, value: &str| {
        let ctx = map.read_ctx().derive_add_ctx(actor);
        let op = map.update(key.to_owned(), ctx, |reg, ctx| {
            reg.write(value.to_owned(), ctx)
        });
        map.apply(op);
    };
    // A writes elsewhere; D, having seen it, writes x; B, having seen D, overwrites x.
    let mut a = CrdtsMap::new();
    put(&mut a, 1, "other", "v");
    let mut d = a.clone();
    put(&mut d, 4, "x", "old");
    let mut b = d.clone();
    put(&mut b, 2, "x", "new");
    let read = |map: &CrdtsMap| map.get(&"x".to_owned()).val.map(|r| r.read().val);
    assert_eq!(read(&b), Some(vec!["new".to_owned()]));

    // A replica that has seen A's op takes x from B first: A is stripped from the value's
    // clock, and D's older value then looks concurrent with it.
    let mut all = a.clone();
    all.merge(b);
    all.merge(d);
    assert_eq!(read(&all).map(|v| v.len()), Some(2));
}
