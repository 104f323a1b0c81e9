//! Stale forks, for the security properties: after a shared history, one replica acts on a
//! key while the others, stale, never see that action and keep writing and merging among
//! themselves.

use failback::{DeviceKey, Identity, Registry, Stamp, Writer};
use proptest::collection::vec;
use proptest::prelude::*;

use super::Rng;
use super::history::{Op, Plan, Step, World};
use super::pools::{KEYS, key, replica};
use super::strategies::{identity, op, plan, rotate, stamp, step};
use super::writes::{status_for, writable_keys};

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
