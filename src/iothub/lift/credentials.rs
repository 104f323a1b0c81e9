//! What an export knows of a device's credentials: whether a line holds those its
//! authentication type uses ([`holds_credentials`]), a side's credentials with what it does
//! not know taken from the base ([`known_over`]), and what the base says of them
//! ([`BaseCredentials`]).
//!
//! Apart from `lift.rs` because unknown credentials are never a change (the module doc of
//! [lifting](super) says so), a rule read wherever credentials are compared: a side's with the
//! base's, one side's with the other's for a device both created, and the primary's with what
//! the plan writes (a full update writes them only over those it has seen).

use crate::credentials::Authentication;

/// Whether `auth` holds the credentials its type authenticates with (keys for SAS, thumbprints
/// for self-signed); an export taken without keys holds none for a device that uses them.
pub(crate) fn holds_credentials(auth: Option<&Authentication>) -> bool {
    auth.is_some_and(Authentication::is_known)
}

/// What the base's export says of a device's credentials: whether it can tell which side
/// changed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BaseCredentials {
    /// The base's line held them: each side's differences from them are that side's changes.
    Known,
    /// The base's line left them out (exported without keys).
    Unknown,
    /// The base has no line for the device (created since the backup): nothing says what
    /// either side started from, so two different values are no more telling than over a
    /// base exported without keys.
    Absent,
}

/// The side's credentials with what it does not know taken from the base: unknown is never a
/// change.
///
/// Only the kind the side's type uses is filled in. An export writes the kind a device does
/// not use as nulls (an X.509 device's `"symmetricKey":{"primaryKey":null,…}`), read as
/// unknown; filled in from the base, it would give a side that switched a device from SAS to
/// X.509 the keys it dropped, a key the other side rotated out would then look held by it, and
/// the retired-credential rule would discard the switch whatever the preference.
pub(crate) fn known_over(side: Option<&Authentication>, base: &Authentication) -> Authentication {
    match side {
        None => base.clone(),
        Some(side) => Authentication {
            kind: side.kind,
            keys: side.keys.clone().or_else(|| base.keys.clone()),
            thumbprints: side
                .thumbprints
                .clone()
                .or_else(|| base.thumbprints.clone()),
        }
        .without_unused(),
    }
}
