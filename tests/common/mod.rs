//! Strategies shared by the property tests.
//!
//! Histories are valid by construction, never filtered: a [`Plan`] is a list of abstract
//! steps, and [`World::apply`] turns each into a write that is valid for the acting replica's
//! *current* state (a create lands on a key that is not live there, every other write on a key
//! that is), or into a merge of another replica's state or of the delta it would send. Pools
//! are tiny on purpose: three device keys, three symmetric keys, three thumbprints, nested
//! twin paths and stamps from a handful of values, so that collisions, prefix shapes, key reuse
//! by a stale replica and stamp ties are the common case rather than the rare one.
//!
//! Credential writes come in two kinds: a value drawn from the pools ([`Op::Authentication`]),
//! and a rotation relative to what the writing replica reads ([`Op::Rotate`]: keep one of the
//! device's two credentials, replace the other with one it does not hold). Two replicas
//! rotating the same device concurrently, each keeping the credential the other replaces, is
//! what reaches the crossed-rotation rules (`RetiredCredentialExcluded`,
//! `RetiredCredentialUnresolved`); drawn values alone almost never did (found in review: 0 of
//! 1,000 histories reached `RetiredCredentialUnresolved`). `tests/generators.rs` holds the
//! generators to a minimum rate of both.

#![allow(dead_code)] // every test binary uses its own part of this module

use std::fmt;

use failback::{
    AuthType, Authentication, Capabilities, DeviceId, DeviceKey, Event, EventId, Identity, Pair,
    Registry, ReplicaId, Section, Stamp, Status, StatusValue, SymmetricKey, Thumbprint,
    VersionVector, Writer,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

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

/// Replica number `i` (from 0); ids start at 1 so none is the nil UUID.
pub fn replica(i: usize) -> ReplicaId {
    ReplicaId::from_u128(i as u128 + 1)
}

/// The device named `id`, for tests that name their devices.
pub fn named(id: &str) -> DeviceKey {
    DeviceKey::device(id).expect("valid")
}

/// The event `id` carrying `delta`, which a writer made (or `delta_since` did): such a delta is
/// always an event.
pub fn event(id: impl Into<String>, delta: Registry) -> Event {
    Event::new(EventId::new(id), delta).expect("a writer's or a sync's delta is an event")
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

const SECRETS: [&str; 3] = [
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

/// One abstract write. `Create` on a live key and every other write on a key that is not
/// live are redirected by [`World::apply`], never discarded.
#[derive(Clone, Debug)]
pub enum Op {
    Create(Box<Identity>),
    Delete,
    Status(StatusValue),
    Authentication(Authentication),
    /// A credential rotation as the writing replica reads the device: the credential in slot
    /// `keep` (0 primary, 1 secondary; an empty slot stays empty) of its keys, or of its
    /// thumbprints for a self-signed device, is kept and the other slot gets the first pool
    /// credential from `with` on that the device does not hold. [`write`] makes it an
    /// [`Op::Authentication`] ([`concrete`]) before it is performed.
    Rotate {
        keep: usize,
        with: usize,
    },
    Capabilities(bool),
    Parent(Option<DeviceId>),
    Twin(Section, &'static str, Option<Value>),
    Patch(Section, Map<String, Value>),
    Metadata(&'static str, Option<Value>),
}

/// One step of a history. Replica numbers are taken modulo the replicas allowed to act.
#[derive(Clone, Debug)]
pub enum Step {
    Write {
        replica: usize,
        key: usize,
        stamp: Stamp,
        op: Op,
    },
    /// `to` merges `from`'s whole state, or (`delta`) `from.delta_since(to's vector)`.
    Merge { to: usize, from: usize, delta: bool },
    /// `to` merges the delta of one earlier write, whatever it has seen: out of order, twice,
    /// ahead of the creation it updates.
    Deliver { to: usize, which: usize },
    /// Two replicas rotate the same key's credentials concurrently (neither has seen the
    /// other's rotation): the first keeps slot `keep`, the second the other slot, each
    /// replacing the rest ([`Op::Rotate`]). When both read the same two credentials, each keeps
    /// the one the other retires: crossed rotations. Two writes, as two `Write` steps would be.
    Rotations {
        replicas: (usize, usize),
        key: usize,
        stamps: (Stamp, Stamp),
        keep: usize,
        with: usize,
    },
}

/// A history to run: how many replicas, and the steps.
#[derive(Clone, Debug)]
pub struct Plan {
    pub replicas: usize,
    pub steps: Vec<Step>,
}

/// A write's delta and the replica that made it.
#[derive(Clone, Debug)]
pub struct Delta {
    pub origin: usize,
    pub registry: Registry,
    /// The write's own dots (one per incarnation it wrote).
    pub own: Vec<failback::Dot>,
    /// What its writer had seen when it wrote: its causal past.
    pub past: failback::CausalContext,
}

/// Replicas, and everything their writes produced.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub replicas: Vec<Registry>,
    /// Every write's delta, in the order the writes happened.
    pub deltas: Vec<Delta>,
    /// The acting replica's state after every step (older states for staleness and laws).
    pub snapshots: Vec<Registry>,
    /// The report of every merge the history made, in order.
    pub reports: Vec<failback::Report>,
}

/// A history that has been run. Shown as its plan when a property fails.
#[derive(Clone)]
pub struct History {
    pub plan: Plan,
    pub world: World,
    /// After every step, the meet of every replica's vector: a vector every replica had
    /// reached then, so a legitimate point to compact at. Never decreasing.
    pub stable_points: Vec<VersionVector>,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.plan.fmt(f)
    }
}

impl History {
    pub fn replicas(&self) -> &[Registry] {
        &self.world.replicas
    }

    pub fn deltas(&self) -> &[Delta] {
        &self.world.deltas
    }

    /// The join of every replica's final state.
    pub fn join(&self) -> Registry {
        let mut all = Registry::new();
        self.world.replicas.iter().for_each(|r| {
            all.merge(r);
        });
        all
    }

    /// Every state the history passed through: snapshots, deltas and final states.
    pub fn states(&self) -> Vec<Registry> {
        let mut out = self.world.snapshots.clone();
        out.extend(self.world.deltas.iter().map(|d| d.registry.clone()));
        out.extend(self.world.replicas.iter().cloned());
        out
    }

    /// What every replica has reached at the end: the last stable point.
    pub fn stable(&self) -> VersionVector {
        self.world.stable()
    }

    /// [`History::states`], and as many again compacted at different stable points of the
    /// history: for each of `picks`, the state `picks.0` chooses compacted at the point
    /// `picks.1` chooses among those its vector has reached (none: left out).
    pub fn states_compacted_at_different_points(&self, picks: &[(Index, Index)]) -> Vec<Registry> {
        let mut states = self.states();
        let compacted: Vec<Registry> = picks
            .iter()
            .filter_map(|(state, point)| {
                let mut state = states[state.index(states.len())].clone();
                let reached: Vec<&VersionVector> = (self.stable_points.iter())
                    .filter(|p| state.context().vector().includes(p))
                    .collect();
                let point = reached.get(point.index(reached.len().max(1)))?;
                state.compact(point);
                Some(state)
            })
            .collect();
        states.extend(compacted);
        states
    }
}

impl Plan {
    pub fn run(&self) -> History {
        let mut world = World::new(self.replicas);
        let everyone: Vec<usize> = (0..self.replicas).collect();
        let stable_points = (self.steps.iter())
            .map(|s| {
                world.apply(s, &everyone);
                world.stable()
            })
            .collect();
        History {
            plan: self.clone(),
            world,
            stable_points,
        }
    }
}

impl World {
    pub fn new(replicas: usize) -> Self {
        Self {
            replicas: vec![Registry::new(); replicas],
            ..Self::default()
        }
    }

    /// The meet of every replica's vector: what all of them have reached.
    pub fn stable(&self) -> VersionVector {
        let mut replicas = self.replicas.iter();
        let mut stable =
            (replicas.next()).map_or_else(VersionVector::new, |r| r.context().vector().clone());
        replicas.for_each(|r| stable.meet(r.context().vector()));
        stable
    }

    /// Runs `step` with its replica numbers mapped onto `among` (at least one replica).
    pub fn apply(&mut self, step: &Step, among: &[usize]) {
        match step {
            Step::Write {
                replica: r,
                key: k,
                stamp,
                op,
            } => {
                let r = among[r % among.len()];
                let before = self.replicas[r].context().clone();
                let delta = write(&mut self.replicas[r], r, *k, *stamp, op);
                let own = context_dots(delta.context())
                    .into_iter()
                    .filter(|&d| d.replica == replica(r) && !before.contains(d))
                    .collect();
                self.deltas.push(Delta {
                    origin: r,
                    registry: delta,
                    own,
                    past: before,
                });
                self.snapshots.push(self.replicas[r].clone());
            }
            Step::Merge { to, from, delta } => {
                if among.len() < 2 {
                    return;
                }
                let to_at = to % among.len();
                let mut from_at = from % among.len();
                if from_at == to_at {
                    from_at = (from_at + 1) % among.len();
                }
                let (to, from) = (among[to_at], among[from_at]);
                let incoming = if *delta {
                    self.replicas[from].delta_since(self.replicas[to].context().vector())
                } else {
                    self.replicas[from].clone()
                };
                let report = self.replicas[to].merge(&incoming);
                self.reports.push(report);
                self.snapshots.push(self.replicas[to].clone());
            }
            Step::Deliver { to, which } => {
                if self.deltas.is_empty() {
                    return;
                }
                let to = among[to % among.len()];
                let delta = self.deltas[which % self.deltas.len()].registry.clone();
                let report = self.replicas[to].merge(&delta);
                self.reports.push(report);
                self.snapshots.push(self.replicas[to].clone());
            }
            Step::Rotations {
                replicas: (first, second),
                key,
                stamps,
                keep,
                with,
            } => {
                let first_at = first % among.len();
                let mut second_at = second % among.len();
                if second_at == first_at {
                    second_at = (second_at + 1) % among.len();
                }
                let writes = [(first_at, stamps.0, *keep), (second_at, stamps.1, keep + 1)];
                for (at, stamp, keep) in writes {
                    let op = Op::Rotate { keep, with: *with };
                    self.apply(
                        &Step::Write {
                            replica: at,
                            key: *key,
                            stamp,
                            op,
                        },
                        among,
                    );
                }
            }
        }
    }
}

/// Every dot a context has seen, in order.
pub fn context_dots(context: &failback::CausalContext) -> Vec<failback::Dot> {
    let mut dots: Vec<failback::Dot> = context
        .vector()
        .iter()
        .flat_map(|(r, n)| (1..=n).map(move |c| failback::Dot::new(r, c)))
        .chain(context.cloud())
        .collect();
    dots.sort_unstable();
    dots.dedup();
    dots
}

/// Where `op` lands for a replica whose live keys are `live`, and what it becomes there: a
/// create goes to a key that is not live (or, every key being live, becomes a delete of the
/// wanted key so that re-creates follow); any other write goes to a live key (or, none being
/// live, becomes a create of the wanted key). A disable of a module becomes an enable.
pub fn choose(live: &[DeviceKey], k: usize, op: &Op) -> (DeviceKey, Op) {
    let wanted = key(k);
    let (target, op) = match op {
        Op::Create(_) => match (0..KEYS).map(|i| key(k + i)).find(|c| !live.contains(c)) {
            Some(free) => (free, op.clone()),
            None => (wanted, Op::Delete),
        },
        _ if live.is_empty() => (wanted, Op::Create(Box::default())),
        _ if live.contains(&wanted) => (wanted, op.clone()),
        _ => (live[k % live.len()].clone(), op.clone()),
    };
    let op = enabled_if_module(&target, op);
    (target, op)
}

/// `op` for `key`, a disable turned into an enable (reason kept) when `key` is a module: IoT
/// Hub modules cannot be disabled, and the writer refuses it.
pub fn enabled_if_module(key: &DeviceKey, op: Op) -> Op {
    match op {
        Op::Status(value) => Op::Status(status_for(key, value)),
        Op::Create(mut identity) => {
            identity.status = status_for(key, identity.status);
            Op::Create(identity)
        }
        op => op,
    }
}

/// `value` as `key`'s status: a module's disable becomes an enable with the same reason.
pub fn status_for(key: &DeviceKey, value: StatusValue) -> StatusValue {
    match value.status {
        Status::Disabled if key.module.is_some() => StatusValue::new(Status::Enabled, value.reason),
        _ => value,
    }
}

/// Applies `op` at replica `r`, redirected by [`choose`]; returns the delta.
/// A write that needs the creation it follows (any but a create, a delete, a disable and a
/// credential change: `Error::PendingDevice`) on a pending key (a later write arrived before
/// its creation) goes to a key that is not pending, or becomes that key's delete when every
/// live key is pending.
pub fn write(registry: &mut Registry, r: usize, k: usize, stamp: Stamp, op: &Op) -> Registry {
    let live: Vec<DeviceKey> = registry.keys().cloned().collect();
    let (mut target, mut op) = choose(&live, k, op);
    let over_pending = match &op {
        Op::Create(_) | Op::Delete | Op::Authentication(_) | Op::Rotate { .. } => true,
        Op::Status(value) => value.status == failback::Status::Disabled,
        _ => false,
    };
    if !over_pending && is_pending(registry, &target) {
        let writable = writable_keys(registry);
        match writable.get(k % writable.len().max(1)) {
            Some(other) => target = other.clone(),
            None => op = Op::Delete,
        }
    }
    let op = concrete(registry, &target, op);
    perform(&mut registry.writer(replica(r), stamp), &target, &op)
        .expect("a write chosen for the replica's current state is valid")
}

/// `op` as written to `key` of `registry`: an [`Op::Rotate`] becomes the credential value it
/// writes there ([`rotation`] of what a default reader sees), any other op is itself.
pub fn concrete(registry: &Registry, key: &DeviceKey, op: Op) -> Op {
    match op {
        Op::Rotate { keep, with } => {
            let current = registry
                .device(key, &failback::Policy::default())
                .map(|d| d.authentication)
                .unwrap_or_default();
            Op::Authentication(rotation(&current, keep, with))
        }
        op => op,
    }
}

/// `current` rotated: keeps the credential in slot `keep` of its keys (of its thumbprints if
/// it is self-signed; unknown counts as empty) and puts in the other slot the first pool
/// credential from `with` on that `current` does not hold, retiring what that slot held.
pub fn rotation(current: &Authentication, keep: usize, with: usize) -> Authentication {
    fn rotate<T: Clone + PartialEq>(
        pair: Option<&Pair<T>>,
        keep: usize,
        fresh: impl Iterator<Item = T>,
    ) -> Pair<T> {
        let pair = pair.cloned().unwrap_or_default();
        let mut fresh = fresh.filter(|c| pair.iter().all(|held| held != c));
        let new = fresh.next().expect("a pool larger than a pair");
        if keep % 2 == 0 {
            Pair::new(pair.primary, Some(new))
        } else {
            Pair::new(Some(new), pair.secondary)
        }
    }
    if current.kind == AuthType::SelfSigned {
        let pool = (with..with + THUMBPRINTS).map(thumbprint);
        Authentication::self_signed(rotate(current.thumbprints.as_ref(), keep, pool))
    } else {
        let pool = (with..with + SECRETS.len()).map(symmetric);
        Authentication::sas(rotate(current.keys.as_ref(), keep, pool))
    }
}

/// Whether a live incarnation of `key` has not received its creation.
pub fn is_pending(registry: &Registry, key: &DeviceKey) -> bool {
    registry.records(key).iter().any(|r| !r.is_created())
}

/// The live keys every write can address: none of their incarnations is pending.
pub fn writable_keys(registry: &Registry) -> Vec<DeviceKey> {
    registry
        .keys()
        .filter(|k| !is_pending(registry, k))
        .cloned()
        .collect()
}

/// Applies `op` to `key` as it is (no redirection).
pub fn perform(w: &mut Writer<'_>, key: &DeviceKey, op: &Op) -> failback::Result<Registry> {
    match op {
        Op::Create(identity) => w.create(key, (**identity).clone()),
        Op::Delete => w.delete(key),
        Op::Status(v) => w.set_status(key, v.clone()),
        Op::Authentication(a) => w.set_authentication(key, a.clone()),
        Op::Rotate { .. } => unreachable!("a rotation is made concrete first (`concrete`)"),
        Op::Capabilities(edge) => w.set_capabilities(key, Capabilities { iot_edge: *edge }),
        Op::Parent(p) => w.set_parent(key, p.clone()),
        Op::Twin(section, path, value) => w.set_twin(key, *section, path, value.clone()),
        Op::Patch(section, patch) => w.patch_twin(key, *section, patch),
        Op::Metadata(name, value) => w.set_metadata(key, name, value.clone()),
    }
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

// ---------------------------------------------------------------------------------------------
// Strategies

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

fn pool_key() -> impl Strategy<Value = Option<SymmetricKey>> {
    prop_oneof![1 => Just(None), 4 => (0..SECRETS.len()).prop_map(|i| Some(symmetric(i)))]
}

fn pool_thumbprint() -> impl Strategy<Value = Option<Thumbprint>> {
    prop_oneof![1 => Just(None), 3 => (0..THUMBPRINTS).prop_map(|i| Some(thumbprint(i)))]
}

/// Credentials from the tiny pools, so a rotated-out key is often written again.
pub fn authentication() -> impl Strategy<Value = Authentication> {
    prop_oneof![
        1 => Just(Authentication::default()),
        5 => (pool_key(), pool_key()).prop_map(|(p, s)| Authentication::sas(Pair::new(p, s))),
        2 => (pool_thumbprint(), pool_thumbprint()).prop_map(|(p, s)| Authentication::self_signed(Pair::new(p, s))),
        1 => Just(Authentication {
            kind: AuthType::CertificateAuthority,
            keys: Some(Pair::default()),
            thumbprints: Some(Pair::default()),
        }),
    ]
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

pub fn op() -> impl Strategy<Value = Op> {
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
}

/// A rotation ([`Op::Rotate`]).
pub fn rotate() -> impl Strategy<Value = Op> {
    (0..2usize, 0..SECRETS.len().max(THUMBPRINTS))
        .prop_map(|(keep, with)| Op::Rotate { keep, with })
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
        1 => ((0..8usize, 0..8usize), 0..KEYS, (stamp(), stamp()), 0..2usize, 0..SECRETS.len())
            .prop_map(|(replicas, key, stamps, keep, with)| Step::Rotations { replicas, key, stamps, keep, with }),
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

// ---------------------------------------------------------------------------------------------
// Stale forks, for the security properties

/// A fork: after a shared history, one replica (the *actor*) acts on a key while the others,
/// stale, never see that action and keep writing and merging among themselves.
#[derive(Clone, Debug)]
pub struct ForkPlan {
    pub base: Plan,
    pub actor: usize,
    pub key: usize,
    /// Used when the actor has no live key to act on: it creates one first.
    pub create: Identity,
    /// Which stale replicas merge the actor's pre-action snapshot before the action.
    pub sees: Vec<bool>,
    pub stamp: Stamp,
    /// Writes stale replicas make to the acted-on key right after the action (numbers taken
    /// modulo the stale replicas): the stale writes each rule must refuse or settle, which
    /// steps on a key drawn from the pool rarely made. Mostly rotations, so that a replica
    /// that saw the actor's snapshot often keeps a credential the actor's rotation retires.
    pub on_key: Vec<(usize, Stamp, Op)>,
    pub stale: Vec<Step>,
    pub seed: u64,
}

pub fn fork_plan() -> impl Strategy<Value = ForkPlan> {
    (
        plan(15),
        0..8usize,
        0..KEYS,
        identity(),
        vec(any::<bool>(), 5),
        stamp(),
        vec(
            (0..8usize, stamp(), prop_oneof![2 => rotate(), 1 => op()]),
            0..=3,
        ),
        vec(step(), 0..=15),
        any::<u64>(),
    )
        .prop_map(
            |(base, actor, key, create, sees, stamp, on_key, stale, seed)| ForkPlan {
                base,
                actor,
                key,
                create,
                sees,
                stamp,
                on_key,
                stale,
                seed,
            },
        )
}

/// A fork that has been run.
pub struct Fork {
    pub key: DeviceKey,
    pub actor: usize,
    /// The live incarnations the action applied to.
    pub acted_on: Vec<failback::Dot>,
    /// The actor's state just before the action.
    pub snapshot: Registry,
    /// The actor's state just after it.
    pub after: Registry,
    /// States that never saw the action, in a random order: the snapshot, every stale
    /// replica's final state, and older stale states.
    pub stale: Vec<Registry>,
    pub world: World,
}

impl ForkPlan {
    /// Runs the fork with `action` as the actor's write on the chosen live key.
    pub fn run(
        &self,
        action: impl FnOnce(&mut Writer<'_>, &DeviceKey) -> failback::Result<Registry>,
    ) -> Fork {
        self.run_on(|_| true, action)
    }

    /// [`run`](Self::run) with the action on a device, never a module: for a disable, which
    /// IoT Hub refuses for a module.
    pub fn run_on_a_device(
        &self,
        action: impl FnOnce(&mut Writer<'_>, &DeviceKey) -> failback::Result<Registry>,
    ) -> Fork {
        self.run_on(|key| key.module.is_none(), action)
    }

    /// [`run`](Self::run) with the action on a key that `takes`.
    fn run_on(
        &self,
        takes: impl Fn(&DeviceKey) -> bool,
        action: impl FnOnce(&mut Writer<'_>, &DeviceKey) -> failback::Result<Registry>,
    ) -> Fork {
        let mut world = self.base.run().world;
        let n = self.base.replicas;
        let actor = self.actor % n;
        let writable: Vec<DeviceKey> = writable_keys(&world.replicas[actor])
            .into_iter()
            .filter(|k| takes(k))
            .collect();
        let key = if writable.is_empty() {
            let registry = &mut world.replicas[actor];
            let taken = || (0..KEYS).map(|i| key(self.key + i)).filter(|k| takes(k));
            let k = taken()
                .find(|k| registry.records(k).is_empty())
                .or_else(|| taken().next())
                .expect("a pool key the action takes");
            let all_pending = !registry.records(&k).is_empty();
            let mut w = registry.writer(replica(actor), self.stamp);
            // Every key pending: end one (a delete needs no creation) and create it anew.
            if all_pending {
                w.delete(&k).expect("live");
            }
            let mut create = self.create.clone();
            create.status = status_for(&k, create.status);
            w.create(&k, create).expect("no live key");
            k
        } else {
            writable[self.key % writable.len()].clone()
        };
        let snapshot = world.replicas[actor].clone();
        let stale_ids: Vec<usize> = (0..n).filter(|&i| i != actor).collect();
        for (&i, &sees) in stale_ids.iter().zip(&self.sees) {
            if sees {
                world.replicas[i].merge(&snapshot);
            }
        }
        let acted_on = snapshot
            .records(&key)
            .iter()
            .map(|r| r.incarnation())
            .collect();
        {
            let mut w = world.replicas[actor].writer(replica(actor), self.stamp);
            action(&mut w, &key).expect("the action is valid on a live key");
        }
        let after = world.replicas[actor].clone();
        let at = (0..KEYS)
            .find(|&i| self::key(i) == key)
            .expect("a pool key");
        for (r, stamp, op) in &self.on_key {
            let step = Step::Write {
                replica: *r,
                key: at,
                stamp: *stamp,
                op: op.clone(),
            };
            world.apply(&step, &stale_ids);
        }
        self.stale.iter().for_each(|s| world.apply(s, &stale_ids));

        let mut rng = Rng(self.seed);
        let mut stale = vec![snapshot.clone()];
        stale.extend(stale_ids.iter().map(|&i| world.replicas[i].clone()));
        // A few older states too: every snapshot predates the action or was taken on a
        // stale replica, so none has seen it.
        for _ in 0..3 {
            if !world.snapshots.is_empty() {
                let i = rng.below(world.snapshots.len());
                stale.push(world.snapshots[i].clone());
            }
        }
        rng.shuffle(&mut stale);
        Fork {
            key,
            actor,
            acted_on,
            snapshot,
            after,
            stale,
            world,
        }
    }
}

impl Fork {
    /// Every policy a reader could pick: the default and a preference for each replica.
    pub fn policies(&self) -> Vec<failback::Policy> {
        let mut out = vec![failback::Policy::default()];
        out.extend((0..self.world.replicas.len()).map(|i| failback::Policy::prefer(replica(i))));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Seeded shuffles

#[path = "../support/rng.rs"]
mod rng;
pub use rng::Rng;

/// `serde_json` text of a registry: what "byte-identical" compares.
pub fn bytes(registry: &Registry) -> String {
    serde_json::to_string(registry).expect("a registry serializes")
}

/// Fails unless both registries serialize to the same bytes; the message shows where the
/// pretty-printed forms first part.
pub fn same_bytes(left: &Registry, right: &Registry) -> Result<(), TestCaseError> {
    if bytes(left) == bytes(right) {
        return Ok(());
    }
    let pretty = |r: &Registry| serde_json::to_string_pretty(r).expect("a registry serializes");
    let (l, r) = (pretty(left), pretty(right));
    let (l, r): (Vec<&str>, Vec<&str>) = (l.lines().collect(), r.lines().collect());
    let at = l
        .iter()
        .zip(&r)
        .position(|(a, b)| a != b)
        .unwrap_or(l.len().min(r.len()));
    let from = at.saturating_sub(12);
    let window =
        |lines: &[&str]| lines[from.min(lines.len())..(at + 8).min(lines.len())].join("\n");
    Err(TestCaseError::fail(format!(
        "states differ at line {at}\n--- left\n{}\n--- right\n{}",
        window(&l),
        window(&r)
    )))
}

/// A registry holding a written record and a deleted one.
pub fn written_and_deleted() -> Registry {
    let r = replica(0);
    let mut registry = Registry::new();
    let mut w = registry.writer(r, Stamp::new(1, 0));
    w.create(&key(0), Identity::default()).expect("fresh");
    w.create(&key(1), Identity::default()).expect("fresh");
    w.set_metadata(&key(0), "owner", Some(json!("ops")))
        .expect("live");
    w.delete(&key(1)).expect("live");
    registry
}

/// Every node of `value` as a JSON pointer, in document order.
pub fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(member, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every line of the shipped exports: real hub lines covering every rule the tool applies.
/// Read once per test run, not once per case.
pub fn shipped_lines() -> &'static [String] {
    static LINES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
        ["base.jsonl", "primary.jsonl", "secondary.jsonl"]
            .iter()
            .flat_map(|name| {
                std::fs::read_to_string(dir.join(name))
                    .expect("shipped data reads")
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

/// A symmetric key's text (the pool's first) to put where something else belongs, a member's
/// name or a value: no reader's error may show it.
pub const STRAY: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
