//! The guard against a mass delete: a plan deleting more of the primary than a limit allows.
//!
//! Every delete line is a device or module the primary holds and the secondary's export lacks
//! (one the primary lacks needs no line), so a secondary export that is cut short, filtered or
//! another hub's reads as that many devices deleted there, and each would be deleted from the
//! primary. Delete-wins decisions are delete lines too, and count. The reader refuses an empty
//! export unless allowed
//! ([`ExportReader::allowing_empty`](super::ExportReader::allowing_empty)); this is the same
//! guard for one half empty, for the caller to apply before importing.

use std::fmt;

use super::summary::PlanCounts;

/// A plan deleting more of the primary's devices and modules than a limit allows
/// ([`PlanCounts::deletes_beyond`]): the counts, the share and the limit, for a caller to
/// refuse the plan and say why. Its `Display` says so in a sentence; the example tool prints
/// its own, naming its `--max-deletes` option.
///
/// # Examples
///
/// ```
/// use failback::iothub::PlanCounts;
/// let mut counts = PlanCounts::default();
/// counts.delete = 3;
/// let refusal = counts.deletes_beyond(10, 20.0).expect("30% is more than 20%");
/// assert_eq!((refusal.deletes, refusal.primary_lines, refusal.share_shown()), (3, 10, "30.0".to_owned()));
/// assert_eq!(
///     refusal.to_string(),
///     "the plan deletes 3 of the primary's 10 devices and modules (30.0%), more than the 20% allowed"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct TooManyDeletes {
    /// The plan's delete lines.
    pub deletes: u64,
    /// The primary's device and module lines ([`InputStats::devices`](super::InputStats::devices)).
    pub primary_lines: u64,
    /// The delete lines as a percentage of the primary's lines: `deletes × 100 / primary_lines`.
    pub share: f64,
    /// The percentage the plan was checked against.
    pub limit: f64,
}

impl TooManyDeletes {
    /// [`share`](Self::share) as a message shows it: one decimal, but `<0.1` for a share that
    /// would round to `0.0` (a nonzero count never reads as none).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::PlanCounts;
    /// let mut counts = PlanCounts::default();
    /// counts.delete = 1;
    /// let refusal = counts.deletes_beyond(1_000_000, 0.0).expect("any delete is more than 0%");
    /// assert_eq!(refusal.share_shown(), "<0.1");
    /// ```
    pub fn share_shown(&self) -> String {
        if self.share < 0.05 {
            "<0.1".to_owned()
        } else {
            format!("{:.1}", self.share)
        }
    }
}

impl fmt::Display for TooManyDeletes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plan deletes {} of the primary's {} devices and modules ({}%), more than the {}% \
             allowed",
            self.deletes,
            self.primary_lines,
            self.share_shown(),
            self.limit
        )
    }
}

impl PlanCounts {
    /// Why a plan with these counts is to be refused, if its delete lines are more than
    /// `max_percent` percent of the primary's `primary_lines` (device and module lines, as
    /// [`ExportReader::stats`](super::ExportReader::stats) counts them): `None` when it
    /// deletes nothing, or no more than that. The module docs say why a mass delete is
    /// suspect; the example tool refuses such a plan under `--max-deletes` (default 10).
    ///
    /// At exactly the limit a plan passes: the [`share`](TooManyDeletes::share) a refusal
    /// shows, given back as the limit, is accepted (one division makes both). A limit of 0
    /// refuses any delete; a NaN limit refuses any delete too (no share is at most NaN).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, Failback, Plan, PlanCounts, Side};
    /// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes());
    /// let both = export(concat!(
    ///     r#"{"id":"a","eTag":"A","status":"enabled","authentication":{"type":"certificateAuthority"}}"#, "\n",
    ///     r#"{"id":"b","eTag":"B","status":"enabled","authentication":{"type":"certificateAuthority"}}"#, "\n",
    /// ))?;
    /// // The secondary's export lacks `a`: read as deleted there, one delete of two lines.
    /// let secondary = export(r#"{"id":"b","status":"enabled","authentication":{"type":"certificateAuthority"}}"#)?;
    /// let failback = Failback::lift(&both.lines, &both.lines, &secondary.lines, Side::Secondary)?;
    /// let counts = PlanCounts::of(&Plan::new(&failback));
    ///
    /// let primary_lines = both.stats().devices;
    /// let refusal = counts.deletes_beyond(primary_lines, 10.0).expect("50% is more than 10%");
    /// assert_eq!((refusal.deletes, refusal.share), (1, 50.0));
    /// assert_eq!(counts.deletes_beyond(primary_lines, refusal.share), None);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn deletes_beyond(&self, primary_lines: u64, max_percent: f64) -> Option<TooManyDeletes> {
        if self.delete == 0 {
            return None;
        }
        // One division, so that the share a refusal shows, given back as the limit, is
        // accepted. No primary line and a delete is an infinite share, refused: a delete line
        // is of a device the primary holds, so that is no plan of these inputs.
        let share = self.delete as f64 * 100.0 / primary_lines as f64;
        if share <= max_percent {
            return None;
        }
        Some(TooManyDeletes {
            deletes: self.delete,
            primary_lines,
            share,
            limit: max_percent,
        })
    }
}
