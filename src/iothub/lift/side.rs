//! Which hub a value came from ([`Side`]), and the fixed replica ids a lift writes each
//! snapshot under ([`BASE`], [`PRIMARY`], [`SECONDARY`]).
//!
//! Apart from `lift.rs` because these name the three inputs everywhere (the checks of their
//! lines, the plan, the summary), not only in the lift; `lift.rs` re-exports them, and the
//! crate's public paths are `failback::iothub::{Side, BASE, PRIMARY, SECONDARY}`.

use crate::clock::ReplicaId;
use crate::fingerprint_key::FingerprintKey;
use crate::policy::Policy;

/// The replica that writes the base snapshot.
///
/// Fixed, as [`PRIMARY`] and [`SECONDARY`] are, so that one failback's registries are the same
/// on every run. Every lift writes under these three ids, counting from 1: two lifts' registries
/// name different writes by the same dots, so never merge them with another lift's registries
/// or with a live replica's (it breaks [`ReplicaId`]'s rule: one id, one sequence of writes).
/// See [`Failback`] for what to do instead.
///
/// [`Failback`]: super::Failback
///
/// # Examples
///
/// ```
/// use failback::iothub::{read_export_from, Failback, Side, BASE, PRIMARY};
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let base = export("{\"id\":\"a\",\"status\":\"enabled\"}\n{\"id\":\"b\",\"status\":\"enabled\"}")?;
/// let failback = Failback::lift(&base, &base, &base, Side::Primary)?;
/// // BASE wrote each device of the base, one write each; the primary changed nothing.
/// let seen = failback.replica(Side::Primary).context().vector().clone();
/// assert_eq!((seen.get(BASE), seen.get(PRIMARY)), (2, 0));
/// assert_eq!(Side::of(BASE), Some(Side::Base));
/// # Ok::<(), failback::Error>(())
/// ```
pub const BASE: ReplicaId = ReplicaId::from_u128(0xba5e);
/// The replica that writes the primary's changes: a fixed id every lift writes under, never
/// to be merged with another lift's registries or a live replica's ([`BASE`] says why).
///
/// # Examples
///
/// ```
/// use failback::iothub::{Side, PRIMARY, SECONDARY};
/// assert_eq!(Side::of(PRIMARY), Some(Side::Primary));
/// assert_ne!(PRIMARY, SECONDARY);
/// ```
pub const PRIMARY: ReplicaId = ReplicaId::from_u128(0x9c1);
/// The replica that writes the secondary's changes: a fixed id every lift writes under, never
/// to be merged with another lift's registries or a live replica's ([`BASE`] says why).
///
/// # Examples
///
/// ```
/// use failback::iothub::{Side, SECONDARY};
/// assert_eq!(Side::of(SECONDARY), Some(Side::Secondary));
/// assert_eq!(Side::Secondary.replica(), SECONDARY);
/// ```
pub const SECONDARY: ReplicaId = ReplicaId::from_u128(0x5ec);

/// Which hub a value came from.
///
/// # Examples
///
/// ```
/// use failback::iothub::Side;
/// assert_eq!(Side::of(failback::iothub::SECONDARY), Some(Side::Secondary));
/// assert_eq!(Side::Primary.as_str(), "primary");
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// The backup both sides started from.
    Base,
    /// The primary hub, now back.
    Primary,
    /// The secondary hub devices used during the outage.
    Secondary,
}

impl Side {
    /// The side a replica id stands for.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Side, BASE};
    /// assert_eq!(Side::of(BASE), Some(Side::Base));
    /// ```
    pub fn of(replica: ReplicaId) -> Option<Side> {
        match replica {
            BASE => Some(Side::Base),
            PRIMARY => Some(Side::Primary),
            SECONDARY => Some(Side::Secondary),
            _ => None,
        }
    }

    /// The side's replica.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Side, PRIMARY};
    /// assert_eq!(Side::Primary.replica(), PRIMARY);
    /// ```
    pub fn replica(self) -> ReplicaId {
        match self {
            Side::Base => BASE,
            Side::Primary => PRIMARY,
            Side::Secondary => SECONDARY,
        }
    }

    /// Its name in reports.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::iothub::Side::Base.as_str(), "base");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Base => "base",
            Side::Primary => "primary",
            Side::Secondary => "secondary",
        }
    }

    /// The [`Policy`] that prefers this side for every conflict no security rule settles.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Preference, iothub::{Side, SECONDARY}};
    /// assert_eq!(Side::Secondary.policy().credentials, Preference::Replica(SECONDARY));
    /// ```
    pub fn policy(self) -> Policy {
        Policy::prefer(self.replica())
    }
}

/// How a [`Failback`](super::Failback) settles and reports conflicts: the side preferred
/// where no security rule settles one, and the key its report shows hidden values by
/// ([`Policy::fingerprint_key`]). A [`Side`] alone is one without a key.
///
/// # Examples
///
/// ```
/// use failback::FingerprintKey;
/// use failback::iothub::{LiftPolicy, Side};
/// let key = FingerprintKey::new(b"an operator's key of 32 bytes...")?;
/// let policy = LiftPolicy::from(Side::Secondary).with_fingerprint_key(key);
/// assert_eq!(policy.policy().fingerprint_key, Some(key));
/// assert_eq!(policy.prefer, Side::Secondary);
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiftPolicy {
    /// The side whose value wins a conflict no security rule settles.
    pub prefer: Side,
    /// The key a conflict shows a hidden value by; `None` shows it as `<hidden>`.
    pub fingerprint_key: Option<FingerprintKey>,
}

impl LiftPolicy {
    /// This policy, showing hidden values by their keyed fingerprints under `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{FingerprintKey, iothub::{LiftPolicy, Side}};
    /// let policy = LiftPolicy::from(Side::Primary).with_fingerprint_key(FingerprintKey::new(b"a key of 16 byte")?);
    /// assert!(policy.fingerprint_key.is_some());
    /// # Ok::<(), failback::Error>(())
    /// ```
    #[must_use]
    pub fn with_fingerprint_key(mut self, key: FingerprintKey) -> Self {
        self.fingerprint_key = Some(key);
        self
    }

    /// The [`Policy`] the merge is read with: [`Side::policy`] of the preferred side, with
    /// the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{LiftPolicy, Side};
    /// assert_eq!(LiftPolicy::from(Side::Secondary).policy(), Side::Secondary.policy());
    /// ```
    pub fn policy(self) -> Policy {
        Policy {
            fingerprint_key: self.fingerprint_key,
            ..self.prefer.policy()
        }
    }
}

impl From<Side> for LiftPolicy {
    fn from(prefer: Side) -> Self {
        Self {
            prefer,
            fingerprint_key: None,
        }
    }
}
