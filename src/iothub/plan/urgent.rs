//! The changes of a device that must not wait for a run more, and how a blocked entry says one
//! is not applied: a disable and a credential rotation.
//!
//! - a disable: IOTHUB.md says disabling is *the* way to block a compromised device (no CRL
//!   checks for X.509);
//! - a rotation: a credential the merge rotated out, perhaps leaked, would stay valid in the
//!   primary until the next run.
//!
//! Apart from the two places that write them when the rest of a device's line cannot go
//! (`detached.rs`, a leaf waiting for a new gateway's scope, and `alone.rs`, a device whose line
//! is blocked) because both find them, and say them, in the same words.
//!
//! # What a rotation is
//!
//! A credential the primary accepts that the merged one no longer accepts: rotated out. Adding
//! one is no rotation (a secondary thumbprint the primary lacked, none removed: nothing the
//! primary accepts has leaked through the merge), nor is a key moved from one slot to the
//! other. With `accepts(a)` the credentials an authentication `a` lets a device in with:
//!
//! ```text
//! accepts(a) = a's keys           where a.type = sas
//!            = a's thumbprints    where a.type = selfSigned
//!            = a's authority      where a.type = certificateAuthority (any certificate it
//!                                 signed for the device; no thumbprint names it)
//!            = ∅                  where a.type = none
//! rotates_out(merged, held) ⇔ ∃ c ∈ accepts(held): c ∉ accepts(merged)
//! ```
//!
//! So a change of type is a rotation wherever the old type accepted anything: sas → selfSigned
//! drops the keys, selfSigned → certificateAuthority the pinned thumbprints (a self-signed
//! certificate chains to no authority), certificateAuthority → anything else every certificate
//! the authority signed for the device (one may have leaked, and the hub checks no CRL). A pair
//! the merged value does not know (exported without keys) is taken to hold every credential of
//! its kind: unknown is never a change; but a type that drops a kind the primary uses drops
//! its credentials, known or not (only a pair a line states empty holds none). Laws: `rotates_out(a, a)` is false, and
//! `accepts(held) ⊆ accepts(merged)` ⇒ `¬rotates_out(merged, held)`.
//!
//! The core retires keys and thumbprints alone (by fingerprint, `DeviceRecord::set_authentication`):
//! an authority has none to retire. Here the question is only how soon a change is written, and
//! a certificate authority the merge no longer trusts for the device is as urgent as a key.

use crate::credentials::{AuthType, Authentication, Pair};
use crate::identity::Status;
use crate::iothub::lift::PrimaryLine;
use crate::view::Device;

/// The changes of a device that cannot wait for the next run, found among the differences
/// between the merged device and the primary's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Urgent {
    /// The merge disables a device the primary holds enabled.
    pub(super) disable: bool,
    /// The merge rotates out a credential the primary accepts ([`rotates_out`]).
    pub(super) rotation: bool,
}

impl Urgent {
    /// What cannot wait of the merged `device` over the primary's `now` (its line `was`).
    pub(super) fn of(device: &Device, now: &Device, was: &PrimaryLine) -> Urgent {
        Urgent {
            disable: disables(device, was),
            rotation: rotates_out(&device.authentication, &now.authentication),
        }
    }

    /// Whether anything cannot wait.
    pub(super) fn any(self) -> bool {
        self.disable || self.rotation
    }

    /// What a blocked entry says is not applied, each change named apart, so that a reader
    /// searching for one (`disable not applied`) finds it whatever else is withheld.
    fn not_applied(self) -> String {
        let mut said = Vec::new();
        if self.disable {
            said.push("disable not applied");
        }
        if self.rotation {
            said.push("rotation not applied");
        }
        said.join("; ")
    }

    /// What the merge does that is not applied, and what an operator can do by hand instead (a
    /// sentence). Keys and thumbprints are never named: the merged registry holds them.
    fn decided_and_by_hand(self) -> (&'static str, &'static str) {
        match (self.disable, self.rotation) {
            (true, true) => (
                "disables it and changes its credentials",
                "Disable it and set its credentials from the merged registry",
            ),
            (true, false) => ("disables it", "Disable it"),
            _ => (
                "changes its credentials (a key, thumbprint or certificate authority the \
                 primary accepts is rotated out)",
                "Set its credentials from the merged registry",
            ),
        }
    }

    /// What a blocked entry says of these changes, not applied: because of `why`, or, where
    /// `why` is `None`, of the reason the entry gives first. Then, where an operator can apply
    /// them from the merged registry, what to do by hand, and `later`, what a run can do
    /// instead; `by_hand` is `None` where the merged value is not to be applied by hand either
    /// (credentials no rule settled: the reason says what to do).
    ///
    /// `disable not applied: the merge disables it, but {why}. Disable it by hand now{later}`
    pub(super) fn not_applied_because(self, why: Option<&str>, by_hand: Option<&str>) -> String {
        let (decided, hand) = self.decided_and_by_hand();
        let not_applied = self.not_applied();
        let mut said = match why {
            None => format!("{not_applied}, for that reason: the merge {decided}"),
            Some(why) => format!("{not_applied}: the merge {decided}, but {why}"),
        };
        if let Some(later) = by_hand {
            said.push_str(&format!(". {hand} by hand now{later}"));
        }
        said
    }

    /// What a blocked entry says of these changes, written alone over the primary's own line
    /// (which carries the rest as the primary holds it).
    pub(super) fn written_alone(self) -> &'static str {
        match (self.disable, self.rotation) {
            (true, true) => {
                "the disable and the new credentials alone are written now, over the twin and \
                 capabilities the primary holds"
            }
            (true, false) => {
                "the disable alone is written now, over the credentials, twin and capabilities \
                 the primary holds"
            }
            _ => {
                "the new credentials alone are written now, over the status, twin and \
                 capabilities the primary holds"
            }
        }
    }
}

/// Whether the merge disables `device` while the primary's line `was` holds it enabled.
fn disables(device: &Device, was: &PrimaryLine) -> bool {
    device.status.status == Status::Disabled && was.status == Status::Enabled
}

/// Whether `merged`, written over `held`, rotates out a credential `held` accepts: a key or
/// thumbprint it holds that `merged` does not (whatever the types), or its certificate
/// authority (the module docs give the algebra).
pub(super) fn rotates_out(merged: &Authentication, held: &Authentication) -> bool {
    // Whether `merged` (whose type `uses` that kind of credential, or not) accepts every
    // credential of `held`'s pair of that kind.
    fn keeps<T: PartialEq>(held: Option<&Pair<T>>, merged: Option<&Pair<T>>, uses: bool) -> bool {
        match (held, merged) {
            // Unknown to the primary's export, yet held (a pair is empty only where a line
            // says so): no type that drops the kind keeps them.
            (None, _) => uses,
            (Some(held), _) if !uses => held.is_empty(),
            // Unknown to the merge: no change.
            (Some(_), None) => true,
            (Some(held), Some(merged)) => held.iter().all(|c| merged.iter().any(|m| m == c)),
        }
    }
    match held.kind {
        AuthType::Sas => !keeps(
            held.keys.as_ref(),
            merged.keys.as_ref(),
            merged.kind == AuthType::Sas,
        ),
        AuthType::SelfSigned => !keeps(
            held.thumbprints.as_ref(),
            merged.thumbprints.as_ref(),
            merged.kind == AuthType::SelfSigned,
        ),
        AuthType::CertificateAuthority => merged.kind != AuthType::CertificateAuthority,
        AuthType::None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{SymmetricKey, Thumbprint};

    /// Base64 of 16 bytes each (`failback-key-001` …): valid, distinct, made up.
    const KEYS: [&str; 4] = [
        "ZmFpbGJhY2sta2V5LTAwMQ==",
        "ZmFpbGJhY2sta2V5LTAwMg==",
        "ZmFpbGJhY2sta2V5LTAwMw==",
        "ZmFpbGJhY2sta2V5LTAwNA==",
    ];

    /// The key `failback-key-00n`, n from 1 to 4.
    fn key(n: usize) -> SymmetricKey {
        SymmetricKey::new(KEYS[n - 1]).expect("16 bytes")
    }

    fn thumbprint(digit: char) -> Thumbprint {
        Thumbprint::new(digit.to_string().repeat(40)).expect("40 hex digits")
    }

    fn sas(primary: Option<usize>, secondary: Option<usize>) -> Authentication {
        Authentication::sas(Pair::new(primary.map(key), secondary.map(key)))
    }

    fn x509(primary: Option<char>, secondary: Option<char>) -> Authentication {
        Authentication::self_signed(Pair::new(
            primary.map(thumbprint),
            secondary.map(thumbprint),
        ))
    }

    fn of_kind(kind: AuthType) -> Authentication {
        Authentication {
            kind,
            keys: None,
            thumbprints: None,
        }
    }

    #[test]
    fn the_same_credentials_rotate_nothing_out() {
        let ca = of_kind(AuthType::CertificateAuthority);
        let none = of_kind(AuthType::None);
        for a in [sas(Some(1), Some(2)), x509(Some('1'), None), ca, none] {
            assert!(!rotates_out(&a, &a), "{a}");
        }
    }

    #[test]
    fn a_credential_added_or_moved_between_slots_is_no_rotation() {
        // accepts(held) ⊆ accepts(merged): nothing the primary accepts is dropped.
        let cases = [
            (x509(Some('1'), None), x509(Some('1'), Some('2'))),
            (x509(Some('1'), None), x509(Some('2'), Some('1'))),
            (sas(Some(1), Some(2)), sas(Some(2), Some(1))),
            (sas(Some(1), Some(1)), sas(Some(1), Some(3))),
            (sas(None, None), sas(Some(1), Some(2))),
            // A type that accepts nothing the line names.
            (of_kind(AuthType::None), sas(Some(1), Some(2))),
            // An empty pair: nothing to rotate out, whatever the new type.
            (sas(None, None), x509(Some('1'), None)),
        ];
        for (held, merged) in cases {
            assert!(!rotates_out(&merged, &held), "{held} -> {merged}");
        }
    }

    #[test]
    fn a_credential_dropped_or_replaced_is_a_rotation() {
        let cases = [
            (sas(Some(1), Some(2)), sas(Some(1), Some(3))),
            (sas(Some(1), Some(2)), sas(Some(3), Some(4))),
            (x509(Some('1'), Some('2')), x509(Some('1'), None)),
            (x509(Some('1'), None), x509(Some('2'), None)),
        ];
        for (held, merged) in cases {
            assert!(rotates_out(&merged, &held), "{held} -> {merged}");
        }
    }

    #[test]
    fn a_change_of_type_rotates_out_what_the_old_type_accepted() {
        let ca = of_kind(AuthType::CertificateAuthority);
        let none = of_kind(AuthType::None);
        let cases = [
            // The keys are dropped, though the thumbprints are new.
            (sas(Some(1), Some(2)), x509(Some('1'), None)),
            (sas(Some(1), Some(2)), ca.clone()),
            (sas(Some(1), Some(2)), none.clone()),
            // A self-signed certificate chains to no authority.
            (x509(Some('1'), None), ca.clone()),
            (x509(Some('1'), None), sas(Some(1), Some(2))),
            // Every certificate the authority signed for the device.
            (ca.clone(), x509(Some('1'), None)),
            (ca.clone(), sas(Some(1), Some(2))),
            (ca, none),
        ];
        for (held, merged) in cases {
            assert!(rotates_out(&merged, &held), "{held} -> {merged}");
        }
    }

    #[test]
    fn credentials_the_merge_does_not_know_are_no_rotation() {
        // Exported without keys: unknown, never a change.
        let unknown_keys = of_kind(AuthType::Sas);
        let unknown_thumbprints = of_kind(AuthType::SelfSigned);
        assert!(!rotates_out(&unknown_keys, &sas(Some(1), Some(2))));
        assert!(!rotates_out(&unknown_thumbprints, &x509(Some('1'), None)));
        assert!(!rotates_out(&sas(Some(3), Some(4)), &unknown_keys));
        // But a change of type drops the keys, known or not on either side.
        assert!(rotates_out(&unknown_thumbprints, &sas(Some(1), Some(2))));
        assert!(rotates_out(&x509(Some('1'), None), &unknown_keys));
        assert!(rotates_out(&unknown_keys, &unknown_thumbprints));
    }

    #[test]
    fn an_entry_names_each_change_not_applied_and_no_credential() {
        let both = Urgent {
            disable: true,
            rotation: true,
        };
        let said = both.not_applied_because(None, Some(""));
        assert_eq!(
            said,
            "disable not applied; rotation not applied, for that reason: the merge disables it \
             and changes its credentials. Disable it and set its credentials from the merged \
             registry by hand now"
        );
        let rotation = Urgent {
            disable: false,
            rotation: true,
        };
        let said = rotation.not_applied_because(Some("no eTag"), None);
        assert!(said.starts_with("rotation not applied: the merge changes its credentials"));
        assert!(said.ends_with(", but no eTag"), "{said}");
    }
}
