//! The multi-value register: every concurrent write kept, each with its dot.
//!
//! A register is a *dot store*: a set of entries keyed by dot. Its join needs the causal
//! contexts of both sides, because an entry missing on one side means "never seen" or
//! "overwritten" depending on whether that side's context holds its dot:
//!
//! ```text
//! (s, c) ⊔ (t, d) = (s ∩ t) ∪ (s ∖ d) ∪ (t ∖ c)
//! ```
//!
//! so a write survives unless a side that saw it overwrote it. Resolution to one value for
//! reading is a separate step ([`crate::Policy`]); the register itself never drops a
//! concurrent value.

use serde::{Deserialize, Serialize};

use crate::clock::{CausalContext, Dot};
use crate::stamp::Stamp;

/// One write held by a register: its dot, its stamp and its value.
///
/// # Examples
///
/// ```
/// use failback::{Dot, Entry, ReplicaId, Stamp};
/// let entry = Entry::new(Dot::new(ReplicaId::from_u128(1), 1), Stamp::new(5, 0), "on");
/// assert_eq!(entry.value, "on");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry<T> {
    /// The write's identity.
    pub dot: Dot,
    /// When the writer's hybrid logical clock says it happened.
    pub stamp: Stamp,
    /// The value written.
    pub value: T,
}

impl<T> Entry<T> {
    /// An entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, Entry, ReplicaId, Stamp};
    /// let e = Entry::new(Dot::new(ReplicaId::from_u128(1), 2), Stamp::default(), 7);
    /// assert_eq!(e.dot.counter, 2);
    /// ```
    pub fn new(dot: Dot, stamp: Stamp, value: T) -> Self {
        Self { dot, stamp, value }
    }
}

/// Entries keyed by dot, joined with the rule in the module docs.
///
/// # Examples
///
/// ```
/// use failback::{CausalContext, Dot, MvRegister, ReplicaId, Stamp};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut left = MvRegister::new();
/// let left_ctx = CausalContext::from_iter([Dot::new(a, 1)]);
/// left.write(Dot::new(a, 1), Stamp::new(1, 0), "enabled");
/// let mut right = MvRegister::new();
/// let right_ctx = CausalContext::from_iter([Dot::new(b, 1)]);
/// right.write(Dot::new(b, 1), Stamp::new(2, 0), "disabled");
///
/// left.join(&left_ctx, &right, &right_ctx, |_| {});
/// assert_eq!(left.len(), 2); // concurrent: both kept
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MvRegister<T> {
    /// Sorted by dot, no two with the same dot.
    entries: Vec<Entry<T>>,
}

impl<T> Default for MvRegister<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T: Clone> MvRegister<T> {
    /// An empty register.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::MvRegister::<u8>::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the register holds no write.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(failback::MvRegister::<u8>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many concurrent writes it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::MvRegister::<u8>::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The concurrent writes, in dot order.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, MvRegister, ReplicaId, Stamp};
    /// let mut reg = MvRegister::new();
    /// reg.write(Dot::new(ReplicaId::from_u128(1), 1), Stamp::default(), 'x');
    /// assert_eq!(reg.entries()[0].value, 'x');
    /// ```
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// Overwrites every value this replica sees with `value`, returning the dots it replaced.
    /// The caller adds them, and `dot`, to the delta's context: that is how the overwrite
    /// reaches replicas that still hold the old values.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, MvRegister, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let mut reg = MvRegister::new();
    /// reg.write(Dot::new(r, 1), Stamp::default(), 1);
    /// let replaced = reg.write(Dot::new(r, 2), Stamp::default(), 2);
    /// assert_eq!(replaced, [Dot::new(r, 1)]);
    /// assert_eq!(reg.len(), 1);
    /// ```
    pub fn write(&mut self, dot: Dot, stamp: Stamp, value: T) -> Vec<Dot> {
        let replaced = self.dots().collect();
        self.entries.clear();
        self.entries.push(Entry::new(dot, stamp, value));
        replaced
    }

    /// The dots of the values held.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::MvRegister::<u8>::new().dots().count(), 0);
    /// ```
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.entries.iter().map(|e| e.dot)
    }

    /// Adds one entry as a delta carries it (no overwrite): used to build deltas and to
    /// rebuild a register from its parts. Ignores an entry whose dot is already held.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Dot, Entry, MvRegister, ReplicaId, Stamp};
    /// let mut reg = MvRegister::new();
    /// reg.insert(Entry::new(Dot::new(ReplicaId::from_u128(2), 1), Stamp::default(), 'b'));
    /// reg.insert(Entry::new(Dot::new(ReplicaId::from_u128(1), 1), Stamp::default(), 'a'));
    /// assert_eq!(reg.entries()[0].value, 'a'); // kept in dot order
    /// ```
    pub fn insert(&mut self, entry: Entry<T>) {
        if let Err(at) = self.entries.binary_search_by(|e| e.dot.cmp(&entry.dot)) {
            self.entries.insert(at, entry);
        }
    }

    /// Join with another replica's register: `(s ∩ t) ∪ (s ∖ d) ∪ (t ∖ c)`, where `c` is this
    /// side's context and `d` the other's. `stale` is called for each incoming entry dropped
    /// because this side had already overwritten it. Returns whether anything changed.
    ///
    /// Laws: `a ⊔ b = b ⊔ a`, `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`, `a ⊔ a = a` (with contexts joined
    /// alongside).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{CausalContext, Dot, MvRegister, ReplicaId, Stamp};
    /// let r = ReplicaId::from_u128(1);
    /// let (old, new) = (Dot::new(r, 1), Dot::new(r, 2));
    /// let mut stale = MvRegister::new();
    /// stale.write(old, Stamp::default(), "key-1");
    /// let mut fresh = MvRegister::new();
    /// fresh.write(new, Stamp::default(), "key-2");
    /// let mut rejected = Vec::new();
    /// fresh.join(&CausalContext::from_iter([old, new]), &stale,
    ///            &CausalContext::from_iter([old]), |e| rejected.push(e.value));
    /// assert_eq!(fresh.entries()[0].value, "key-2");
    /// assert_eq!(rejected, ["key-1"]);
    /// ```
    pub fn join(
        &mut self,
        ctx: &CausalContext,
        other: &Self,
        other_ctx: &CausalContext,
        mut stale: impl FnMut(&Entry<T>),
    ) -> bool {
        // Fast path: the same writes on both sides (the common case in a failback, where most
        // records were not touched during the outage).
        if self.entries.len() == other.entries.len() && self.dots().eq(other.dots()) {
            return false;
        }
        let mut changed = false;
        let mut out = Vec::with_capacity(self.entries.len() + other.entries.len());
        let mut theirs = other.entries.iter().peekable();
        for mine in self.entries.drain(..) {
            while let Some(t) = theirs.next_if(|t| t.dot < mine.dot) {
                changed |= take_incoming(t, ctx, &mut out, &mut stale);
            }
            if theirs.next_if(|t| t.dot == mine.dot).is_some() || !other_ctx.contains(mine.dot) {
                out.push(mine);
            } else {
                changed = true;
            }
        }
        for t in theirs {
            changed |= take_incoming(t, ctx, &mut out, &mut stale);
        }
        self.entries = out;
        changed
    }
}

fn take_incoming<T: Clone>(
    entry: &Entry<T>,
    ctx: &CausalContext,
    out: &mut Vec<Entry<T>>,
    stale: &mut impl FnMut(&Entry<T>),
) -> bool {
    if ctx.contains(entry.dot) {
        stale(entry);
        false
    } else {
        out.push(entry.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ReplicaId;

    fn dot(r: u128, n: u64) -> Dot {
        Dot::new(ReplicaId::from_u128(r), n)
    }

    fn reg(entries: &[(Dot, u8)]) -> MvRegister<u8> {
        let mut reg = MvRegister::new();
        entries
            .iter()
            .for_each(|&(d, v)| reg.insert(Entry::new(d, Stamp::default(), v)));
        reg
    }

    #[test]
    fn overwritten_value_does_not_come_back_from_a_stale_side() {
        let mut fresh = reg(&[(dot(1, 2), 2)]);
        let fresh_ctx = CausalContext::from_iter([dot(1, 1), dot(1, 2)]);
        let stale = reg(&[(dot(1, 1), 1)]);
        let stale_ctx = CausalContext::from_iter([dot(1, 1)]);
        assert!(!fresh.join(&fresh_ctx, &stale, &stale_ctx, |_| {}));
        assert_eq!(fresh, reg(&[(dot(1, 2), 2)]));

        let mut stale_side = stale.clone();
        let fresh_again = reg(&[(dot(1, 2), 2)]);
        assert!(stale_side.join(&stale_ctx, &fresh_again, &fresh_ctx, |_| {}));
        assert_eq!(stale_side, fresh_again);
    }

    #[test]
    fn unseen_entries_survive_on_both_sides() {
        let mut a = reg(&[(dot(1, 1), 1)]);
        let b = reg(&[(dot(2, 1), 2)]);
        a.join(
            &CausalContext::from_iter([dot(1, 1)]),
            &b,
            &CausalContext::from_iter([dot(2, 1)]),
            |_| {},
        );
        assert_eq!(a, reg(&[(dot(1, 1), 1), (dot(2, 1), 2)]));
    }
}
