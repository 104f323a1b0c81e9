//! The proptest configuration every property runs with, and the strategies: values from the
//! pools ([`super::pools`]), abstract writes and steps, plans, and run histories.

use failback::{
    AuthType, Authentication, Capabilities, DeviceId, Identity, Pair, Section, Stamp, Status,
    StatusValue, SymmetricKey, Thumbprint,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::history::{History, Op, Plan, Step};
use super::pools::{
    KEYS, METADATA_KEYS, SECRETS, THUMBPRINTS, TWIN_PATHS, symmetric, symmetric_spelt_otherwise,
    thumbprint,
};

/// Cases per property: `PROPTEST_CASES` when set, else 1,000 (CI's floor).
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// The proptest configuration every property in `tests/` runs with.
pub fn config() -> ProptestConfig {
    ProptestConfig::with_cases(cases())
}

pub fn stamp() -> impl Strategy<Value = Stamp> {
    (0..4u64, 0..2u32).prop_map(|(millis, logical)| Stamp::new(millis, logical))
}

pub fn status() -> impl Strategy<Value = StatusValue> {
    (
        prop_oneof![Just(Status::Enabled), Just(Status::Disabled)],
        prop_oneof![Just(None), Just(Some("maintenance".to_owned()))],
    )
        .prop_map(|(s, reason)| StatusValue::new(s, reason))
}

/// A pool key, 1 in 5 written in another spelling of its bytes
/// ([`symmetric_spelt_otherwise`]): a replica may write a key back spelt otherwise, and it is
/// the same key, held and retired as one.
///
/// One map over a tuple rather than a `prop_oneof!`: the unions nested in the strategies
/// that draw keys made the value trees deep enough to overflow a test thread's stack in a
/// debug build (CI's merge-shortcuts step). `choice` shrinks towards 0, the canonical text.
fn pool_symmetric() -> impl Strategy<Value = SymmetricKey> {
    (0..SECRETS.len(), 0..5u8, any::<u8>()).prop_map(|(i, choice, bits)| match choice {
        4 => symmetric_spelt_otherwise(i, bits),
        _ => symmetric(i),
    })
}

fn pool_key() -> impl Strategy<Value = Option<SymmetricKey>> {
    prop_oneof![1 => Just(None), 4 => pool_symmetric().prop_map(Some)]
}

fn pool_thumbprint() -> impl Strategy<Value = Option<Thumbprint>> {
    prop_oneof![1 => Just(None), 3 => (0..THUMBPRINTS).prop_map(|i| Some(thumbprint(i)))]
}

/// Credentials from the tiny pools, so a rotated-out key is often written again; 2 in 11 also
/// write the kind their type does not use ([`authentication_with_unused_kind`]).
///
/// Boxed, as [`op`] is: the strategies built on these nest deep enough that, unboxed, their
/// value trees overflowed a debug test thread's stack (CI's merge-shortcuts step).
pub fn authentication() -> BoxedStrategy<Authentication> {
    prop_oneof![
        1 => Just(Authentication::default()),
        5 => (pool_key(), pool_key()).prop_map(|(p, s)| Authentication::sas(Pair::new(p, s))),
        2 => (pool_thumbprint(), pool_thumbprint()).prop_map(|(p, s)| Authentication::self_signed(Pair::new(p, s))),
        1 => Just(Authentication {
            kind: AuthType::CertificateAuthority,
            keys: Some(Pair::default()),
            thumbprints: Some(Pair::default()),
        }),
        2 => authentication_with_unused_kind(),
    ]
    .boxed()
}

/// Credentials that also write, with real pool values, the kind their type does not use: SAS
/// with thumbprints, self-signed with keys, certificate-authority or none with keys, thumbprints
/// or both. A device holds that kind as unknown whatever was written ([`super::held`]), so
/// these are the writes where the one spelling does something: what was written and what is
/// held differ, and written over a device that held those credentials they retire them. The
/// constructors (`Authentication::sas`, `self_signed`) never write such a value, so without
/// these no property saw one.
pub fn authentication_with_unused_kind() -> impl Strategy<Value = Authentication> {
    let sas = (pool_key(), pool_key(), real_thumbprints()).prop_map(|(p, s, thumbprints)| {
        Authentication {
            kind: AuthType::Sas,
            keys: Some(Pair::new(p, s)),
            thumbprints: Some(thumbprints),
        }
    });
    let self_signed =
        (real_keys(), pool_thumbprint(), pool_thumbprint()).prop_map(|(keys, p, s)| {
            Authentication {
                kind: AuthType::SelfSigned,
                keys: Some(keys),
                thumbprints: Some(Pair::new(p, s)),
            }
        });
    let without_either = (
        prop_oneof![Just(AuthType::CertificateAuthority), Just(AuthType::None)],
        real_keys(),
        real_thumbprints(),
        0..3usize,
    )
        .prop_map(|(kind, keys, thumbprints, which)| Authentication {
            kind,
            keys: (which != 1).then_some(keys),
            thumbprints: (which != 0).then_some(thumbprints),
        });
    prop_oneof![sas, self_signed, without_either]
}

/// A pair of pool keys holding at least one: credentials really there, not an empty pair.
fn real_keys() -> impl Strategy<Value = Pair<SymmetricKey>> {
    let one = pool_symmetric();
    (one, pool_key(), any::<bool>()).prop_map(|(one, other, first)| match first {
        true => Pair::new(Some(one), other),
        false => Pair::new(other, Some(one)),
    })
}

/// A pair of pool thumbprints holding at least one.
fn real_thumbprints() -> impl Strategy<Value = Pair<Thumbprint>> {
    let one = (0..THUMBPRINTS).prop_map(thumbprint);
    (one, pool_thumbprint(), any::<bool>()).prop_map(|(one, other, first)| match first {
        true => Pair::new(Some(one), other),
        false => Pair::new(other, Some(one)),
    })
}

/// Whether a rotation also carries the kind its type does not use (1 in 6; see
/// [`Op::Rotate`]).
fn carry() -> impl Strategy<Value = bool> {
    proptest::bool::weighted(1.0 / 6.0)
}

pub fn parent() -> impl Strategy<Value = Option<DeviceId>> {
    prop_oneof![
        Just(None),
        Just(Some(DeviceId::new("gw1").expect("valid"))),
        Just(Some(DeviceId::new("gw2").expect("valid"))),
    ]
}

pub fn section() -> impl Strategy<Value = Section> {
    prop_oneof![Just(Section::Tags), Just(Section::Desired)]
}

pub fn twin_path() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&TWIN_PATHS[..])
}

/// A twin leaf value (never an object: objects are shapes, written leaf by leaf).
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!("x")),
        Just(json!(true)),
        Just(json!([1, 2])),
    ]
}

/// A leaf, or a removal.
pub fn maybe_leaf() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![3 => leaf().prop_map(Some), 1 => Just(None)]
}

pub fn metadata_key() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&METADATA_KEYS[..])
}

/// A twin section object built from a few (possibly overlapping) leaves.
pub fn twin_object() -> impl Strategy<Value = Map<String, Value>> {
    vec((twin_path(), leaf()), 0..3).prop_map(|leaves| {
        let mut object = Map::new();
        leaves
            .into_iter()
            .for_each(|(p, v)| set_path(&mut object, p, v));
        object
    })
}

/// A merge patch: leaves and `null` removals over the nested pool.
pub fn patch() -> impl Strategy<Value = Map<String, Value>> {
    vec((twin_path(), maybe_leaf()), 1..3).prop_map(|writes| {
        let mut object = Map::new();
        writes
            .into_iter()
            .for_each(|(p, v)| set_path(&mut object, p, v.unwrap_or(Value::Null)));
        object
    })
}

pub fn identity() -> impl Strategy<Value = Identity> {
    (
        status(),
        authentication(),
        any::<bool>(),
        parent(),
        twin_object(),
        twin_object(),
        vec((metadata_key(), leaf()), 0..2),
    )
        .prop_map(|(status, auth, edge, parent, tags, desired, metadata)| {
            let mut identity = Identity::default()
                .with_status(status)
                .with_authentication(auth)
                .with_capabilities(Capabilities { iot_edge: edge })
                .with_parent(parent);
            for (section, object) in [(Section::Tags, tags), (Section::Desired, desired)] {
                if !object.is_empty() {
                    identity = identity
                        .with_twin(section, Value::Object(object))
                        .expect("pool paths are valid twin keys");
                }
            }
            metadata
                .into_iter()
                .fold(identity, |id, (k, v)| id.with_metadata(k, v))
        })
}

pub fn op() -> BoxedStrategy<Op> {
    prop_oneof![
        3 => identity().prop_map(|i| Op::Create(Box::new(i))),
        1 => Just(Op::Delete),
        2 => status().prop_map(Op::Status),
        2 => authentication().prop_map(Op::Authentication),
        1 => rotate(),
        1 => any::<bool>().prop_map(Op::Capabilities),
        1 => parent().prop_map(Op::Parent),
        3 => (section(), twin_path(), maybe_leaf()).prop_map(|(s, p, v)| Op::Twin(s, p, v)),
        1 => (section(), patch()).prop_map(|(s, p)| Op::Patch(s, p)),
        2 => (metadata_key(), prop_oneof![3 => leaf().prop_map(Some), 1 => Just(None)])
            .prop_map(|(k, v)| Op::Metadata(k, v)),
    ]
    .boxed()
}

/// A rotation ([`Op::Rotate`]).
pub fn rotate() -> impl Strategy<Value = Op> {
    (0..2usize, 0..SECRETS.len().max(THUMBPRINTS), carry())
        .prop_map(|(keep, with, carry)| Op::Rotate { keep, with, carry })
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..8usize, 0..KEYS, stamp(), op()).prop_map(|(replica, key, stamp, op)| Step::Write {
            replica,
            key,
            stamp,
            op,
        }),
        2 => (0..8usize, 0..8usize, any::<bool>()).prop_map(|(to, from, delta)| Step::Merge { to, from, delta }),
        2 => (0..8usize, 0..32usize).prop_map(|(to, which)| Step::Deliver { to, which }),
        1 => ((0..8usize, 0..8usize), 0..KEYS, (stamp(), stamp()), 0..2usize, 0..SECRETS.len(), carry())
            .prop_map(|(replicas, key, stamps, keep, with, carry)| Step::Rotations { replicas, key, stamps, keep, with, carry }),
    ]
}

/// A plan of 3 to 5 replicas and up to `max_steps` steps.
pub fn plan(max_steps: usize) -> impl Strategy<Value = Plan> {
    (3..=5usize, vec(step(), 0..=max_steps)).prop_map(|(replicas, steps)| Plan { replicas, steps })
}

/// A run history of up to 25 steps.
pub fn history() -> impl Strategy<Value = History> {
    plan(25).prop_map(|p| p.run())
}

/// Sets `path` (dotted) in `object`, turning scalars on the way into objects.
pub fn set_path(object: &mut Map<String, Value>, path: &str, value: Value) {
    let mut node = object;
    let mut keys = path.split('.').peekable();
    while let Some(k) = keys.next() {
        if keys.peek().is_none() {
            node.insert(k.to_owned(), value);
            return;
        }
        let slot = node
            .entry(k.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        node = slot.as_object_mut().expect("just made an object");
    }
}
