//! Sequential specification: a registry written by one causal chain of writes (each write made
//! by a replica that has seen every earlier one) reads exactly like a plain document model:
//! whole-value fields overwritten, twin leaves set and removed as JSON merge patches do, and
//! metadata as a map. No concurrency, so no conflict may be reported.
//!
//! Twin objects left empty by removals are pruned on both sides before comparing: the registry
//! stores leaves only, and the generators never write an empty object as a leaf.

mod common;

use std::collections::BTreeMap;

use common::{Op, choose, held, op, replica, stamp};
use failback::{
    Authentication, Capabilities, DeviceId, DeviceKey, Identity, Policy, Registry, Section, Stamp,
    StatusValue,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// The plain model of one device.
#[derive(Clone, Debug, PartialEq)]
struct Document {
    status: StatusValue,
    authentication: Authentication,
    capabilities: Capabilities,
    parent: Option<DeviceId>,
    tags: Map<String, Value>,
    desired: Map<String, Value>,
    metadata: BTreeMap<String, Value>,
}

impl Document {
    fn new(identity: &Identity) -> Self {
        Self {
            status: identity.status.clone(),
            authentication: held(&identity.authentication),
            capabilities: identity.capabilities,
            parent: identity.parent.clone(),
            tags: identity.section(Section::Tags),
            desired: identity.section(Section::Desired),
            metadata: identity.metadata.clone(),
        }
    }

    fn section(&mut self, section: Section) -> &mut Map<String, Value> {
        match section {
            Section::Tags => &mut self.tags,
            Section::Desired => &mut self.desired,
            Section::Reported => unreachable!("not generated"),
        }
    }
}

/// Removes `path`; a scalar on the way is replaced by an (empty, then pruned) object, as a
/// merge patch `{"a": {"b": null}}` does to `{"a": 5}`.
fn remove_path(object: &mut Map<String, Value>, path: &str) {
    let mut node = object;
    let mut keys = path.split('.').peekable();
    while let Some(k) = keys.next() {
        if keys.peek().is_none() {
            node.remove(k);
            return;
        }
        match node.get_mut(k) {
            None => return,
            Some(slot) => {
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                node = slot.as_object_mut().expect("an object");
            }
        }
    }
}

fn prune(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Object(inner) => {
                let inner = prune(inner);
                (!inner.is_empty()).then(|| (k.clone(), Value::Object(inner)))
            }
            leaf => Some((k.clone(), leaf.clone())),
        })
        .collect()
}

/// A merge patch as leaf writes and removals, as IoT Hub applies it.
fn apply_patch(target: &mut Map<String, Value>, prefix: &str, patch: &Map<String, Value>) {
    for (k, v) in patch {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Null => remove_path(target, &path),
            Value::Object(inner) if !inner.is_empty() => apply_patch(target, &path, inner),
            leaf => common::set_path(target, &path, leaf.clone()),
        }
    }
}

fn apply(model: &mut BTreeMap<DeviceKey, Document>, key: &DeviceKey, op: &Op) {
    if let Op::Create(identity) = op {
        model.insert(key.clone(), Document::new(identity));
        return;
    }
    if let Op::Delete = op {
        model.remove(key);
        return;
    }
    let doc = model.get_mut(key).expect("a live key");
    match op {
        Op::Status(v) => doc.status = v.clone(),
        Op::Authentication(a) => doc.authentication = held(a),
        Op::Capabilities(edge) => doc.capabilities = Capabilities { iot_edge: *edge },
        Op::Parent(p) => doc.parent = p.clone(),
        Op::Twin(section, path, Some(v)) => {
            common::set_path(doc.section(*section), path, v.clone())
        }
        Op::Twin(section, path, None) => remove_path(doc.section(*section), path),
        Op::Patch(section, patch) => apply_patch(doc.section(*section), "", patch),
        Op::Metadata(name, Some(v)) => {
            doc.metadata.insert((*name).to_owned(), v.clone());
        }
        Op::Metadata(name, None) => {
            doc.metadata.remove(*name);
        }
        Op::Create(_) | Op::Delete => unreachable!("handled above"),
        Op::Rotate { .. } => unreachable!("made concrete before it is applied"),
    }
}

fn check(registry: &Registry, model: &BTreeMap<DeviceKey, Document>) -> Result<(), TestCaseError> {
    let keys: Vec<&DeviceKey> = registry.keys().collect();
    prop_assert_eq!(keys, model.keys().collect::<Vec<_>>());
    for (key, doc) in model {
        let device = registry.device(key, &Policy::default()).expect("live");
        prop_assert!(device.conflicts.is_empty(), "{:?}", device.conflicts);
        prop_assert!(!device.pending && device.incarnations.len() == 1);
        let read = Document {
            status: device.status,
            authentication: device.authentication,
            capabilities: device.capabilities,
            parent: device.parent,
            tags: device.tags,
            desired: device.desired,
            metadata: device.metadata,
        };
        let expected = Document {
            tags: prune(&doc.tags),
            desired: prune(&doc.desired),
            ..doc.clone()
        };
        prop_assert_eq!(read, expected, "{}", key);
    }
    Ok(())
}

fn chain() -> impl Strategy<Value = Vec<(usize, usize, Stamp, Op, bool)>> {
    vec(
        (0..2usize, 0..common::KEYS, stamp(), op(), any::<bool>()),
        0..=25,
    )
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn a_causal_chain_of_writes_reads_like_a_plain_document(steps in chain()) {
        // Two replicas take turns; each write reaches the other (as its delta or as the whole
        // state) before the next one, so every write follows all earlier ones.
        let mut replicas = [Registry::new(), Registry::new()];
        let mut model = BTreeMap::new();
        for (r, k, stamp, op, whole) in steps {
            let live: Vec<DeviceKey> = replicas[r].keys().cloned().collect();
            let (target, op) = choose(&live, k, &op);
            let op = common::concrete(&replicas[r], &target, op);
            let delta = common::perform(&mut replicas[r].writer(replica(r), stamp), &target, &op)
                .expect("valid by construction");
            apply(&mut model, &target, &op);
            let sent = if whole { replicas[r].clone() } else { delta };
            replicas[1 - r].merge(&sent);
            check(&replicas[r], &model)?;
            check(&replicas[1 - r], &model)?;
        }
    }
}
