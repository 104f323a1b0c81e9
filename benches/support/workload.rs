//! The workload every merge group shares, for ours and for the `crdts` baseline: N
//! devices with keys, tags, desired and reported properties; both replicas start from one
//! base; the secondary then updates 10% of the devices, creates 1% and deletes 0.5%; the
//! primary updates 2%, of which 0.5% of all devices collide with the secondary's updates
//! (true conflicts). Seeded: every run builds the same data.

use crdts::{CmRDT, MVReg};
use failback::{
    Authentication, DeviceKey, Identity, Pair, Registry, ReplicaId, Section, Stamp, Status,
    StatusValue, SymmetricKey,
};
use serde_json::json;

use super::rng::Rng;

pub const BASE: ReplicaId = ReplicaId::from_u128(1);
pub const PRIMARY: ReplicaId = ReplicaId::from_u128(2);
pub const SECONDARY: ReplicaId = ReplicaId::from_u128(3);

/// A seeded draw, true `p` times in a thousand.
fn per_mille(rng: &mut Rng, p: u64) -> bool {
    rng.below(1000) < p as usize
}

pub fn key_text(n: u64) -> String {
    // 24 base64 characters: 16 bytes, the smallest key IoT Hub accepts; enough for a bench.
    format!("{n:022X}==")
}

pub fn key(n: u64) -> SymmetricKey {
    SymmetricKey::new(key_text(n)).expect("valid bench key")
}

pub fn identity(n: usize) -> Identity {
    Identity::default()
        .with_authentication(Authentication::sas(Pair::new(
            Some(key(2 * n as u64)),
            Some(key(2 * n as u64 + 1)),
        )))
        .with_twin(
            Section::Tags,
            json!({"site": format!("site-{}", n % 50), "owner": "ops"}),
        )
        .and_then(|i| {
            i.with_twin(
                Section::Desired,
                json!({"interval": 60, "fw": {"version": "1.2.0"}}),
            )
        })
        .and_then(|i| {
            i.with_twin(
                Section::Reported,
                json!({"battery": n % 100, "fw": {"version": "1.2.0"}}),
            )
        })
        .expect("valid bench twin")
}

pub fn device(n: usize) -> DeviceKey {
    DeviceKey::device(format!("dev-{n:07}")).expect("valid id")
}

/// The two replicas of the documented workload, and the deltas the secondary's writes produced.
pub struct Workload {
    pub primary: Registry,
    pub secondary: Registry,
    #[allow(dead_code, reason = "read by the merge bench, not by the memory bench")]
    pub secondary_deltas: Vec<Registry>,
}

pub fn workload(n: usize) -> Workload {
    workload_with(n, 100)
}

/// What the secondary writes to one device.
pub enum Change {
    /// Moves it to another site (a tag).
    Move(String),
    Delete,
}

/// Which devices each side writes, decided once from the seeds, so that ours and the baseline
/// run the same operations.
pub struct Changes {
    /// The secondary's writes to existing devices, in device order (it then creates `n / 100`).
    pub secondary: Vec<(usize, Change)>,
    /// Devices the primary moves too, to another site than the secondary's (true conflicts).
    pub collided: Vec<usize>,
    /// Devices the primary disables (none of the collided ones).
    pub disabled: Vec<usize>,
}

/// The changes with the secondary updating `updates` per mille of the devices (100 in the
/// documented workload; 10 for the delta bench's "1% changed" case).
pub fn changes(n: usize, updates: u64) -> Changes {
    let mut rng = Rng(42);
    let (mut secondary, mut collided) = (Vec::new(), Vec::new());
    for i in 0..n {
        if per_mille(&mut rng, updates) {
            secondary.push((i, Change::Move(format!("moved-{}", rng.next() % 10))));
            if per_mille(&mut rng, 50) {
                collided.push(i);
            }
        } else if per_mille(&mut rng, 5) {
            secondary.push((i, Change::Delete));
        }
    }
    let mut rng = Rng(7);
    let disabled = (0..n)
        .filter(|i| collided.binary_search(i).is_err() && per_mille(&mut rng, 15))
        .collect();
    Changes {
        secondary,
        collided,
        disabled,
    }
}

/// Our registries making [`changes`]`(n, updates)`.
pub fn workload_with(n: usize, updates: u64) -> Workload {
    let plan = changes(n, updates);
    let mut base = Registry::new();
    let mut writer = base.writer(BASE, Stamp::new(1, 0));
    for i in 0..n {
        writer.create(&device(i), identity(i)).expect("fresh key");
    }
    let mut primary = base.clone();
    let mut secondary = base;
    let mut deltas = Vec::new();
    let mut w = secondary.writer(SECONDARY, Stamp::new(5, 0));
    for (i, change) in &plan.secondary {
        deltas.push(match change {
            Change::Move(site) => w
                .set_twin(&device(*i), Section::Tags, "site", Some(json!(site)))
                .expect("live"),
            Change::Delete => w.delete(&device(*i)).expect("live"),
        });
    }
    for i in 0..n / 100 {
        deltas.push(
            w.create(&device(n + i), identity(n + i))
                .expect("fresh key"),
        );
    }
    let mut w = primary.writer(PRIMARY, Stamp::new(6, 0));
    for &i in &plan.collided {
        w.set_twin(
            &device(i),
            Section::Tags,
            "site",
            Some(json!("primary-choice")),
        )
        .expect("live");
    }
    for &i in &plan.disabled {
        let status = StatusValue::new(Status::Disabled, Some("maintenance".into()));
        primary
            .writer(PRIMARY, Stamp::new(6, 0))
            .set_status(&device(i), status)
            .expect("live");
    }
    Workload {
        primary,
        secondary,
        secondary_deltas: deltas,
    }
}

/// The record `crdts` holds per device: the same fields, as plain values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub status: String,
    pub keys: (String, String),
    pub tags: serde_json::Value,
    pub desired: serde_json::Value,
    pub reported: serde_json::Value,
}

pub type Baseline = crdts::Map<String, MVReg<Record, ReplicaId>, ReplicaId>;

pub fn record(n: usize) -> Record {
    Record {
        status: "enabled".into(),
        keys: (key_text(2 * n as u64), key_text(2 * n as u64 + 1)),
        tags: json!({"site": format!("site-{}", n % 50), "owner": "ops"}),
        desired: json!({"interval": 60, "fw": {"version": "1.2.0"}}),
        reported: json!({"battery": n % 100, "fw": {"version": "1.2.0"}}),
    }
}

/// A `crdts` op on the baseline map: how `crdts` ships a write to another replica.
pub type BaselineOp = <Baseline as CmRDT>::Op;

/// Writes `value` at `id` and returns the op, as a replica would ship it.
pub fn write(map: &mut Baseline, actor: ReplicaId, id: String, value: Record) -> BaselineOp {
    let ctx = map.read_ctx().derive_add_ctx(actor);
    let op = map.update(id, ctx, |reg, ctx| reg.write(value, ctx));
    map.apply(op.clone());
    op
}

/// The same workload on `crdts::Map<String, MVReg<Record, ReplicaId>>`.
pub struct BaselineWorkload {
    pub primary: Baseline,
    pub secondary: Baseline,
    /// The secondary's writes since the fork, as ops, in the order it made them: what an
    /// op-based `crdts` replica ships instead of a delta or an event.
    #[allow(dead_code, reason = "read by the merge bench, not by the memory bench")]
    pub secondary_ops: Vec<BaselineOp>,
}

pub fn baseline(n: usize) -> BaselineWorkload {
    baseline_with(n, 100)
}

/// The baseline making [`changes`]`(n, updates)`, as [`workload_with`] makes ours.
pub fn baseline_with(n: usize, updates: u64) -> BaselineWorkload {
    let plan = changes(n, updates);
    let mut base = Baseline::new();
    for i in 0..n {
        write(&mut base, BASE, format!("dev-{i:07}"), record(i));
    }
    let (mut primary, mut secondary) = (base.clone(), base);
    let mut ops = Vec::new();
    for (i, change) in &plan.secondary {
        let id = format!("dev-{i:07}");
        ops.push(match change {
            Change::Move(site) => {
                let mut r = record(*i);
                r.tags["site"] = json!(site);
                write(&mut secondary, SECONDARY, id, r)
            }
            Change::Delete => {
                let ctx = secondary.read_ctx().derive_rm_ctx();
                let op = secondary.rm(id, ctx);
                secondary.apply(op.clone());
                op
            }
        });
    }
    for i in 0..n / 100 {
        ops.push(write(
            &mut secondary,
            SECONDARY,
            format!("dev-{:07}", n + i),
            record(n + i),
        ));
    }
    for &i in &plan.collided {
        let mut r = record(i);
        r.tags["site"] = json!("primary-choice");
        write(&mut primary, PRIMARY, format!("dev-{i:07}"), r);
    }
    for &i in &plan.disabled {
        let mut r = record(i);
        r.status = "disabled".into();
        write(&mut primary, PRIMARY, format!("dev-{i:07}"), r);
    }
    BaselineWorkload {
        primary,
        secondary,
        secondary_ops: ops,
    }
}
