//! The pools generated values are drawn from. Tiny on purpose: three device keys, three
//! symmetric keys, three thumbprints, nested twin paths (and stamps from a handful of values,
//! `strategies::stamp`), so that collisions, prefix shapes, key reuse by a stale replica and
//! stamp ties are the common case rather than the rare one. And the devices tests name.

use failback::{DeviceKey, ReplicaId, SymmetricKey, Thumbprint};

/// Replica number `i` (from 0); ids start at 1 so none is the nil UUID.
pub fn replica(i: usize) -> ReplicaId {
    ReplicaId::from_u128(i as u128 + 1)
}

/// The device named `id`, for tests that name their devices.
pub fn named(id: &str) -> DeviceKey {
    DeviceKey::device(id).expect("valid")
}

/// The key pool: three keys, one of them a module of another's device.
pub const KEYS: usize = 3;

pub fn key(i: usize) -> DeviceKey {
    match i % KEYS {
        0 => DeviceKey::device("d1"),
        1 => DeviceKey::device("d2"),
        _ => DeviceKey::module("d1", "m1"),
    }
    .expect("valid pool key")
}

pub(super) const SECRETS: [&str; 3] = [
    "MDEyMzQ1Njc4OWFiY2RlZg==",
    "YWJjZGVmZ2hpamtsbW5vcA==",
    "cXJzdHV2d3h5ejAxMjM0NQ==",
];

pub fn symmetric(i: usize) -> SymmetricKey {
    SymmetricKey::new(SECRETS[i % SECRETS.len()]).expect("valid pool secret")
}

/// Thumbprints in the pool (one SHA-256, two SHA-1).
pub const THUMBPRINTS: usize = 3;

pub fn thumbprint(i: usize) -> Thumbprint {
    let text = match i % THUMBPRINTS {
        0 => "A".repeat(40),
        1 => "b".repeat(40),
        _ => "C".repeat(64),
    };
    Thumbprint::new(text).expect("valid pool thumbprint")
}

/// Nested on purpose: `a` is an ancestor of `a.b` and `a.b.x`, `a.c` a sibling of `a.b`.
/// Prefix shapes (`a`, `a.b`, `a.b.x`) and siblings that sort between a path and its
/// children (`a-b`, `a.b-c`: `-` sorts below `.`), which a scan of "the paths right after"
/// once took for the end of the children.
pub const TWIN_PATHS: [&str; 7] = ["a", "a.b", "a.c", "a.b.x", "b", "a-b", "a.b-c"];
pub const METADATA_KEYS: [&str; 2] = ["owner", "rack"];
