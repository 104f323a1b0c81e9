//! Hybrid logical clock stamps: the order a person would call "latest", made safe.
//!
//! A stamp is only a tie-breaker among *concurrent* writes (causality always decides first), so
//! clock skew can never make an older write beat a newer one. The crate never reads a clock:
//! callers pass physical time in, which keeps every decision reproducible.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A hybrid-logical-clock reading: physical milliseconds and a logical counter.
///
/// # Examples
///
/// ```
/// use failback::Stamp;
/// assert!(Stamp::new(5, 0) < Stamp::new(5, 1));
/// assert!(Stamp::new(5, 9) < Stamp::new(6, 0));
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch, as the caller's clock saw them.
    pub millis: u64,
    /// Orders stamps within one millisecond.
    pub logical: u32,
}

impl Stamp {
    /// A stamp.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Stamp::new(1, 2).logical, 2);
    /// ```
    pub const fn new(millis: u64, logical: u32) -> Self {
        Self { millis, logical }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.millis, self.logical)
    }
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stamp({self})")
    }
}

/// A hybrid logical clock: issues stamps that never go backwards and that follow every stamp
/// it has observed, whatever the physical clock does.
///
/// Laws, for any physical time `t` and any stamp `s` a peer sent:
///
/// ```text
/// tick(t) > last()      tick(t).millis ≥ t      after observe(s): last() ≥ s
/// ```
///
/// so each [`tick`](Self::tick) is above every stamp issued or
/// [`observe`](Self::observe)d before it. The one exception is a clock at
/// `Stamp::new(u64::MAX, u32::MAX)`, which only a clock already at `u64::MAX` milliseconds
/// (ticked at that time, or having observed a stamp there) can lead to: it has nowhere to go,
/// and ticks repeat it (`tick(t) = last()` there). A repeated stamp is harmless to
/// a merge (a replica's own writes are ordered by their dots, and stamps only break ties
/// between concurrent writes), but it no longer says which came last.
///
/// A peer's stamp far ahead of this machine's clock drags the clock forward with it, as in
/// every hybrid logical clock; bounding that drift needs the wall clock, which is the caller's.
///
/// # Examples
///
/// ```
/// use failback::{Hlc, Stamp};
///
/// let mut hlc = Hlc::new();
/// let a = hlc.tick(100);
/// let b = hlc.tick(90); // the wall clock stepped back
/// assert!(b > a);
/// hlc.observe(Stamp::new(500, 3));
/// assert!(hlc.tick(100) > Stamp::new(500, 3));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hlc {
    last: Stamp,
}

impl Hlc {
    /// A clock that has issued nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Hlc::new().last(), failback::Stamp::default());
    /// ```
    pub const fn new() -> Self {
        Self {
            last: Stamp::new(0, 0),
        }
    }

    /// The last stamp issued or observed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut hlc = failback::Hlc::new();
    /// let s = hlc.tick(7);
    /// assert_eq!(hlc.last(), s);
    /// ```
    pub fn last(&self) -> Stamp {
        self.last
    }

    /// A new stamp for a local write at physical time `now_millis`: that time if the clock is
    /// behind it, else one step past the last stamp.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Hlc, Stamp};
    /// let mut hlc = Hlc::new();
    /// assert_eq!(hlc.tick(10), Stamp::new(10, 0));
    /// assert_eq!(hlc.tick(10), Stamp::new(10, 1));
    ///
    /// // A millisecond's logical counter spent: the next stamp takes the next millisecond.
    /// hlc.observe(Stamp::new(20, u32::MAX));
    /// assert_eq!(hlc.tick(10), Stamp::new(21, 0));
    /// ```
    pub fn tick(&mut self, now_millis: u64) -> Stamp {
        let last = self.last;
        self.last = if now_millis > last.millis {
            Stamp::new(now_millis, 0)
        } else if let Some(logical) = last.logical.checked_add(1) {
            Stamp::new(last.millis, logical)
        } else if let Some(millis) = last.millis.checked_add(1) {
            // Saturating the counter instead would repeat the last stamp: borrow the next
            // millisecond, which the physical clock will reach.
            Stamp::new(millis, 0)
        } else {
            last
        };
        self.last
    }

    /// Moves the clock past a stamp received from another replica.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut hlc = failback::Hlc::new();
    /// hlc.observe(failback::Stamp::new(9, 9));
    /// assert_eq!(hlc.last(), failback::Stamp::new(9, 9));
    /// ```
    pub fn observe(&mut self, stamp: Stamp) {
        self.last = self.last.max(stamp);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A tick at a physical time, or a peer's stamp observed. Times and counters cluster
    /// near the ends of their ranges too, where a clock runs out.
    #[derive(Clone, Debug)]
    enum Step {
        Tick(u64),
        Observe(Stamp),
    }

    fn near_ends<T: Arbitrary + Copy + 'static>(
        small: T,
        below_max: T,
        max: T,
    ) -> BoxedStrategy<T> {
        prop_oneof![Just(small), Just(below_max), Just(max), any::<T>()].boxed()
    }

    fn step() -> impl Strategy<Value = Step> {
        let millis = near_ends(5u64, u64::MAX - 1, u64::MAX);
        let logical = near_ends(0u32, u32::MAX - 1, u32::MAX);
        prop_oneof![
            millis.clone().prop_map(Step::Tick),
            (millis, logical).prop_map(|(m, l)| Step::Observe(Stamp::new(m, l))),
        ]
    }

    proptest! {
        #![proptest_config(crate::property::config())]

        /// The laws on [`Hlc`]: `tick` is strictly above the last tick and every stamp
        /// observed before it (unless the clock is at the last stamp there is), and not below
        /// the physical time it was given.
        #[test]
        fn a_tick_follows_everything_before_it(steps in proptest::collection::vec(step(), 1..12)) {
            let mut hlc = Hlc::new();
            let mut before = Stamp::default();
            for step in steps {
                match step {
                    Step::Observe(stamp) => {
                        hlc.observe(stamp);
                        before = before.max(stamp);
                    }
                    Step::Tick(now) => {
                        let stamp = hlc.tick(now);
                        let end = Stamp::new(u64::MAX, u32::MAX);
                        prop_assert!(stamp > before || (before == end && stamp == end));
                        prop_assert!(stamp.millis >= now);
                        before = stamp;
                    }
                }
                prop_assert_eq!(hlc.last(), before);
            }
        }
    }
}
