//! The join laws, checked by one generic checker for every mergeable type:
//! `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`, `a ⊔ a = a`, `a ≤ a ⊔ b`.

mod common;

use std::fmt::Debug;

use common::{Rng, history};
use failback::{
    CausalContext, DeviceKey, Dot, Entry, MvRegister, Registry, ReplicaId, Report, Stamp,
    VersionVector,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// The four laws of a join-semilattice for `join`; `a ≤ a ⊔ b` is checked as
/// `(a ⊔ b) ⊔ a = a ⊔ b`.
fn check_laws<T: Clone + PartialEq + Debug>(
    a: &T,
    b: &T,
    c: &T,
    join: impl Fn(&mut T, &T),
) -> Result<(), TestCaseError> {
    let j = |x: &T, y: &T| {
        let mut x = x.clone();
        join(&mut x, y);
        x
    };
    let ab = j(a, b);
    prop_assert_eq!(&ab, &j(b, a), "commutative: a ⊔ b = b ⊔ a");
    prop_assert_eq!(
        j(&ab, c),
        j(a, &j(b, c)),
        "associative: (a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)"
    );
    prop_assert_eq!(&j(a, a), a, "idempotent: a ⊔ a = a");
    prop_assert_eq!(&j(&ab, a), &ab, "inflationary: a ≤ a ⊔ b");
    Ok(())
}

fn r(i: u8) -> ReplicaId {
    ReplicaId::from_u128(u128::from(i))
}

fn vector() -> impl Strategy<Value = VersionVector> {
    vec((1..5u8, 0..6u64), 0..6)
        .prop_map(|entries| entries.into_iter().map(|(i, n)| (r(i), n)).collect())
}

/// Any set of dots, gaps included: a context is a set, whatever arrived out of order.
fn context() -> impl Strategy<Value = CausalContext> {
    vec((1..4u8, 1..7u64), 0..8)
        .prop_map(|dots| dots.into_iter().map(|(i, n)| Dot::new(r(i), n)).collect())
}

/// A register with its context, as a replica holds it.
type Held = (MvRegister<u8>, CausalContext);

#[derive(Clone, Debug)]
enum RegisterStep {
    Write { replica: u8, value: u8 },
    Merge { to: u8, from: u8 },
}

/// Register states reached by three replicas writing and merging, with each write's delta:
/// valid by construction.
fn register_states() -> impl Strategy<Value = Vec<Held>> {
    let step = prop_oneof![
        (0..3u8, 0..4u8).prop_map(|(replica, value)| RegisterStep::Write { replica, value }),
        (0..3u8, 0..3u8).prop_map(|(to, from)| RegisterStep::Merge { to, from }),
    ];
    vec(step, 0..16).prop_map(|steps| {
        let mut replicas: Vec<Held> = vec![(MvRegister::new(), CausalContext::new()); 3];
        let mut states = Vec::new();
        for step in steps {
            match step {
                RegisterStep::Write { replica, value } => {
                    let (reg, ctx) = &mut replicas[usize::from(replica)];
                    let dot = ctx.next_dot(r(replica + 1)).expect("a few writes");
                    let stamp = Stamp::new(u64::from(value), 0);
                    let replaced = reg.write(dot, stamp, value);
                    ctx.insert(dot);
                    // The delta a writer ships: the register (with its past) and a context
                    // of the new dot and the dots it overwrote; and the bare entry alone.
                    let delta_ctx: CausalContext = replaced.into_iter().chain([dot]).collect();
                    states.push((reg.clone(), delta_ctx.clone()));
                    let mut bare = MvRegister::new();
                    bare.insert(Entry::new(dot, stamp, value));
                    states.push((bare, delta_ctx));
                }
                RegisterStep::Merge { to, from } => {
                    let incoming = replicas[usize::from(from)].clone();
                    join_held(&mut replicas[usize::from(to)], &incoming);
                }
            }
            states.extend(replicas.iter().cloned());
        }
        states.extend(replicas);
        states
    })
}

/// The register join takes both pre-join contexts; then the contexts join.
fn join_held(a: &mut Held, b: &Held) {
    a.0.join(&a.1, &b.0, &b.1, |_| {});
    a.1.join(&b.1);
}

fn pick<T: Clone>(items: &[T], i: &Index) -> T {
    items[i.index(items.len())].clone()
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn version_vector_join_is_a_semilattice(a in vector(), b in vector(), c in vector()) {
        check_laws(&a, &b, &c, VersionVector::join)?;
        let mut ab = a.clone();
        ab.join(&b);
        prop_assert!(a <= ab && b <= ab, "the join is an upper bound in the causal order");
    }

    #[test]
    fn causal_context_join_is_a_semilattice(a in context(), b in context(), c in context()) {
        check_laws(&a, &b, &c, CausalContext::join)?;
    }

    #[test]
    fn mv_register_join_with_its_context_is_a_semilattice(
        states in register_states(),
        (i, j, k) in any::<(Index, Index, Index)>(),
    ) {
        // An empty history still has the empty register.
        let states = if states.is_empty() { vec![(MvRegister::new(), CausalContext::new())] } else { states };
        check_laws(&pick(&states, &i), &pick(&states, &j), &pick(&states, &k), join_held)?;
    }

    #[test]
    fn registry_merge_is_a_semilattice(
        h in history(),
        (i, j, k) in any::<(Index, Index, Index)>(),
        (x, y, z) in any::<(Index, Index, Index)>(),
    ) {
        // Every state of the history, and what each replica would send another as a delta:
        // a delta is a state like any other, whatever it is merged with or into.
        let mut states = h.states();
        for from in h.replicas() {
            for to in h.replicas() {
                states.push(from.delta_since(to.context().vector()));
            }
        }
        let merge = |a: &mut Registry, b: &Registry| {
            a.merge(b);
        };
        check_laws(&pick(&states, &i), &pick(&states, &j), &pick(&states, &k), merge)?;

        // With compaction: against what every replica has reached in the end. States that
        // have not reached it (a replica restored from an old backup) are merged too: the
        // merge drops what a compacted side's context says was deleted, tombstone or not.
        let mut stable = h.replicas()[0].context().vector().clone();
        h.replicas().iter().for_each(|r| stable.meet(r.context().vector()));
        let compacted: Vec<Registry> = states
            .iter()
            .filter(|s| s.context().vector().includes(&stable))
            .map(|s| {
                let mut s = s.clone();
                s.compact(&stable);
                s
            })
            .collect();
        states.extend(compacted);
        check_laws(&pick(&states, &x), &pick(&states, &y), &pick(&states, &z), merge)?;
    }

    /// The laws over states compacted at *different* stable points of one history (above,
    /// every state is compacted against one vector): `compact_p(a) ⊔ compact_q(b) =
    /// compact_q(b) ⊔ compact_p(a)`, and so on, for `p`, `q` any vectors every replica had
    /// reached at some step, and for uncompacted states beside them.
    #[test]
    fn laws_hold_over_states_compacted_at_different_points(
        h in history(),
        picks in vec(any::<(Index, Index)>(), 6),
        (i, j, k) in any::<(Index, Index, Index)>(),
    ) {
        let states = h.states_compacted_at_different_points(&picks);
        let merge = |a: &mut Registry, b: &Registry| {
            a.merge(b);
        };
        check_laws(&pick(&states, &i), &pick(&states, &j), &pick(&states, &k), merge)?;
    }

    /// Counters near `u64::MAX` (every counter of the replica that wrote most moved up, written
    /// `↑`, until `left` are left): the merge is equivariant, `↑a ⊔ ↑b = ↑(a ⊔ b)` with the same
    /// report, the laws hold, a delta still carries what the whole state does, `↑b ⊔
    /// ↑a.delta_since(↑b) = ↑(b ⊔ a)`, and that replica writes `left` more times, then is
    /// refused.
    #[test]
    fn merging_states_with_counters_near_the_top_is_the_shifted_merge(
        h in history(),
        (i, j, k) in any::<(Index, Index, Index)>(),
        left in 0u64..40,
    ) {
        let join = h.join();
        let (top, used) = (join.context().vector().iter())
            .max_by_key(|&(_, counter)| counter)
            .unwrap_or((common::replica(0), 0));
        let shift = u64::MAX - used - left;
        let up = |state: &Registry| -> Registry {
            serde_json::from_value(shifted(state, top, shift)).expect("a shifted state reads")
        };
        let mut states = h.states();
        for from in h.replicas() {
            for to in h.replicas() {
                states.push(from.delta_since(to.context().vector()));
            }
        }
        let (a, b, c) = (pick(&states, &i), pick(&states, &j), pick(&states, &k));

        let mut ab = a.clone();
        let report = ab.merge(&b);
        let mut up_ab = up(&a);
        let up_report = up_ab.merge(&up(&b));
        common::same_bytes(&up_ab, &up(&ab))?;
        // The report's conflicts are sorted by their `Ord`, which reads a lost update's text
        // (`update replica:counter`): moved up, `…:9` and `…:10` may trade places as text, so
        // the report moved up is sorted again, as the merge sorts it.
        let mut expected: Report =
            serde_json::from_value(shifted(&report, top, shift)).expect("a shifted report reads");
        expected.conflicts.sort();
        prop_assert_eq!(up_report, expected, "the same report, its dots moved up");

        let merge = |x: &mut Registry, y: &Registry| {
            x.merge(y);
        };
        check_laws(&up(&a), &up(&b), &up(&c), merge)?;

        let mut by_delta = up(&b);
        by_delta.merge(&up(&a).delta_since(by_delta.context().vector()));
        let mut ba = b.clone();
        ba.merge(&a);
        common::same_bytes(&by_delta, &up(&ba))?;

        // A fresh device per write, so that every write is a valid create. A history that
        // wrote nothing has no counter to move.
        let mut state = up(&join);
        for n in 0..=left {
            let created = (state.writer(top, Stamp::new(9, 0)))
                .create(&common::named(&format!("top-{n}")), failback::Identity::default());
            prop_assert_eq!(created.is_ok(), used == 0 || n < left, "write {}: {:?}", n, created.err());
        }
    }

    #[test]
    fn report_combine_is_commutative_and_associative(h in history(), seed in any::<u64>()) {
        // Reports of real merges: the states of a history merged into one another.
        let states = h.states();
        let mut rng = Rng(seed);
        let mut reports: Vec<Report> = (0..3)
            .map(|_| {
                let mut into = states[rng.below(states.len())].clone();
                into.merge(&states[rng.below(states.len())])
            })
            .collect();
        let c = reports.pop().expect("three");
        let b = reports.pop().expect("two");
        let a = reports.pop().expect("one");
        let combine = |x: &Report, y: &Report| x.clone().combine(y.clone());
        prop_assert_eq!(combine(&a, &b), combine(&b, &a), "commutative");
        prop_assert_eq!(combine(&combine(&a, &b), &c), combine(&a, &combine(&b, &c)), "associative");
        prop_assert_eq!(combine(&a, &Report::default()), a, "the empty report is neutral");
    }

    #[test]
    fn reports_of_merges_over_disjoint_key_sets_combine_into_the_report_of_the_whole(
        h in history(),
        (i, j) in any::<(Index, Index)>(),
        mask in 0..(1u8 << common::KEYS),
    ) {
        // Shards: the same registries cut by key (each keeps the whole context), merged apart.
        let states = h.states();
        let (a, b) = (pick(&states, &i), pick(&states, &j));
        let in_first = |key: &DeviceKey| (0..common::KEYS).any(|k| mask & (1 << k) != 0 && common::key(k) == *key);
        let mut whole = a.clone();
        let report = whole.merge(&b);
        let mut combined = Report::default();
        for side in [true, false] {
            let keep = |key: &DeviceKey| in_first(key) == side;
            let mut part = shard(&a, keep);
            combined = combined.combine(part.merge(&shard(&b, keep)));
            prop_assert_eq!(part, shard(&whole, keep), "the shard merges to its part of the whole");
        }
        prop_assert_eq!(combined, report);
    }
}

/// The devices of `registry` that `keep` selects, with its whole context (cut on the wire).
fn shard(registry: &Registry, keep: impl Fn(&DeviceKey) -> bool) -> Registry {
    let mut wire = serde_json::to_value(registry).expect("serializes");
    if let Some(devices) = wire["devices"].as_array_mut() {
        devices.retain(|d| keep(&serde_json::from_value(d["key"].clone()).expect("a device key")));
    }
    serde_json::from_value(wire).expect("parses back")
}

/// `value`'s wire form with every counter of `replica` moved up by `shift`, wherever it holds
/// one (vectors' `[replica, counter]` pairs, dots' `{replica, counter}` objects, dots shown
/// as `replica:counter` in a report's text): the same
/// history under counters near the top, as if `replica` had made `shift` writes before, which
/// every replica saw.
fn shifted(value: &impl serde::Serialize, replica: ReplicaId, shift: u64) -> serde_json::Value {
    use serde_json::Value;
    fn walk(node: &mut Value, replica: &Value, shift: u64) {
        let up = |counter: &Value| Value::from(counter.as_u64().expect("a counter") + shift);
        match node {
            Value::Object(members) => {
                if members.get("replica") == Some(replica) {
                    if let Some(counter) = members.get("counter").map(up) {
                        members.insert("counter".into(), counter);
                    }
                }
                (members.values_mut()).for_each(|member| walk(member, replica, shift));
            }
            Value::Array(items) => match items.as_mut_slice() {
                [id, counter] if id == replica && counter.is_u64() => *counter = up(counter),
                _ => items.iter_mut().for_each(|item| walk(item, replica, shift)),
            },
            // A dot shown in a report's text: `replica:counter`.
            Value::String(text) => {
                let shown = format!("{}:", replica.as_str().expect("a replica id is text"));
                let mut parts = text.split(shown.as_str());
                let mut out = parts.next().unwrap_or_default().to_owned();
                for part in parts {
                    let digits =
                        part.len() - part.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                    let counter: u64 = part[..digits].parse().expect("a counter");
                    out += &format!("{shown}{}{}", counter + shift, &part[digits..]);
                }
                *text = out;
            }
            _ => {}
        }
    }
    let replica = serde_json::to_value(replica).expect("serializes");
    let mut wire = serde_json::to_value(value).expect("serializes");
    walk(&mut wire, &replica, shift);
    wire
}
