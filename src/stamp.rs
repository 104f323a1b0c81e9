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

    /// A new stamp for a local write at physical time `now_millis`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut hlc = failback::Hlc::new();
    /// assert_eq!(hlc.tick(10), failback::Stamp::new(10, 0));
    /// assert_eq!(hlc.tick(10), failback::Stamp::new(10, 1));
    /// ```
    pub fn tick(&mut self, now_millis: u64) -> Stamp {
        self.last = if now_millis > self.last.millis {
            Stamp::new(now_millis, 0)
        } else {
            Stamp::new(self.last.millis, self.last.logical.saturating_add(1))
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
