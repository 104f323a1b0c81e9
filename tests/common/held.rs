//! Credentials as a device holds them: the rule `Authentication`'s doc states, written out
//! here so that the oracles (the sequential model, the `crdts` differential model, the
//! security properties) state it themselves rather than trust the library's own spelling.

use failback::{AuthType, Authentication};

/// `written` as a device holds it: the kind its type does not authenticate with (thumbprints
/// of a SAS device, keys of a self-signed one, both of a certificate-authority device or one
/// without authentication) is unknown (`None`), whatever was written, as an export writes it.
pub fn held(written: &Authentication) -> Authentication {
    let uses_keys = written.kind == AuthType::Sas;
    let uses_thumbprints = written.kind == AuthType::SelfSigned;
    Authentication {
        kind: written.kind,
        keys: written.keys.clone().filter(|_| uses_keys),
        thumbprints: written.thumbprints.clone().filter(|_| uses_thumbprints),
    }
}
