//! Histories, valid by construction, never filtered: a [`Plan`] is a list of abstract steps,
//! and [`World::apply`] turns each into a write that is valid for the acting replica's
//! *current* state (a create lands on a key that is not live there, every other write on a key
//! that is), or into a merge of another replica's state or of the delta it would send.
//!
//! Credential writes come in two kinds: a value drawn from the pools ([`Op::Authentication`]),
//! and a rotation relative to what the writing replica reads ([`Op::Rotate`]: keep one of the
//! device's two credentials, replace the other with one it does not hold). Two replicas
//! rotating the same device concurrently, each keeping the credential the other replaces, is
//! what reaches the crossed-rotation rules (`RetiredCredentialExcluded`,
//! `RetiredCredentialUnresolved`); drawn values alone almost never did (found in review: 0 of
//! 1,000 histories reached `RetiredCredentialUnresolved`). `tests/generators.rs` holds the
//! generators to a minimum rate of both.

use std::fmt;

use failback::{
    Authentication, DeviceId, Identity, Registry, Section, Stamp, StatusValue, VersionVector,
};
use proptest::sample::Index;
use serde_json::{Map, Value};

use super::pools::replica;
use super::writes::write;

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
    /// credential from `with` on that the device does not hold. With `carry`, the value also
    /// writes pool credentials of the kind the device's type does not use, as a client
    /// copying a whole credential object does ([`carrying_unused`]). [`write`] makes it an
    /// [`Op::Authentication`] ([`concrete`]) before it is performed.
    Rotate {
        keep: usize,
        with: usize,
        carry: bool,
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
    /// the one the other retires: crossed rotations. Two writes, as two `Write` steps would be;
    /// with `carry`, both carry the kind the device's type does not use ([`Op::Rotate`]).
    Rotations {
        replicas: (usize, usize),
        key: usize,
        stamps: (Stamp, Stamp),
        keep: usize,
        with: usize,
        carry: bool,
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
                carry,
            } => {
                let first_at = first % among.len();
                let mut second_at = second % among.len();
                if second_at == first_at {
                    second_at = (second_at + 1) % among.len();
                }
                let writes = [(first_at, stamps.0, *keep), (second_at, stamps.1, keep + 1)];
                for (at, stamp, keep) in writes {
                    let op = Op::Rotate {
                        keep,
                        with: *with,
                        carry: *carry,
                    };
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
