//! The pools generated values are drawn from. Tiny on purpose: three device keys, three
//! symmetric keys, three thumbprints, nested twin paths (and stamps from a handful of values,
//! `strategies::stamp`), so that collisions, prefix shapes, key reuse by a stale replica and
//! stamp ties are the common case rather than the rare one; a key is sometimes written in
//! another spelling of its bytes ([`symmetric_spelt_otherwise`]). And the devices tests name.

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

/// Pool key `i` as written in another spelling of its bytes: the unused low bits (1 to 15,
/// from `bits`) of the character before `==` set, which decoders ignore, so the hub takes it
/// as the pool key. Read as the pool key itself (one key, one text): the properties see a
/// second spelling written, and hold and retire it as the first.
pub fn symmetric_spelt_otherwise(i: usize, bits: u8) -> SymmetricKey {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let secret = SECRETS[i % SECRETS.len()];
    // Every pool secret is 16 bytes: 22 characters, then `==`, the last one's 4 low bits
    // clear (its canonical spelling).
    let body = secret.strip_suffix("==").expect("a 16-byte pool secret");
    let (stem, last) = body.split_at(body.len() - 1);
    let value = ALPHABET.iter().position(|&c| c == last.as_bytes()[0]);
    let value = value.expect("a base64 character");
    assert_eq!(value & 0b1111, 0, "pool secrets are canonical");
    let spelt = char::from(ALPHABET[value | usize::from(1 + bits % 15)]);
    let key = SymmetricKey::new(format!("{stem}{spelt}==")).expect("valid spelling");
    assert_eq!(key, symmetric(i), "one key, one text");
    key
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
