//! A record's text form as it is read: every member it may hold named, and one it does not
//! know refused.
//!
//! Apart from `device.rs` because the record is written with its registers flattened beside
//! its incarnation and creation, and serde refuses no unknown member of a flattened struct
//! (`deny_unknown_fields` does not combine with `flatten`): a register under a misspelt name
//! (`statsu`) would read as never written, so the device would show its creation's status,
//! under a context claiming the write seen: a replica merging the state would then drop the
//! write when it met it. Read here through one
//! struct naming each member the writer writes.

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{Creation, DeviceRecord, Registers, Written};
use crate::clock::Dot;
use crate::credentials::{Authentication, Fingerprint};
use crate::identity::{Capabilities, StatusValue};
use crate::key::DeviceId;
use crate::register::MvRegister;
use crate::register_map::RegisterMap;
use crate::twin::{self, TwinPath};

/// A record as its text holds it: the incarnation, the creation unless it has not arrived, and
/// each register of [`Written`] unless it is void, all of them left out when absent, so a
/// member not named here is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordWire {
    #[serde(deserialize_with = "crate::clock::deserialize_write_dot")]
    incarnation: Dot,
    #[serde(default)]
    created: Option<Arc<Creation>>,
    #[serde(default)]
    status: MvRegister<StatusValue>,
    #[serde(default)]
    authentication: MvRegister<Authentication>,
    #[serde(default)]
    retired: MvRegister<Box<[Fingerprint]>>,
    #[serde(default)]
    capabilities: MvRegister<Capabilities>,
    #[serde(default)]
    parent: MvRegister<Option<DeviceId>>,
    #[serde(default, deserialize_with = "twin::text_keys::deserialize")]
    twin: RegisterMap<TwinPath, Option<Value>>,
    #[serde(default)]
    metadata: RegisterMap<String, Option<Value>>,
}

impl DeviceRecord {
    /// Reads a record from its text form: what `serde_redacting!` calls, as it calls a
    /// derived reader. The registers are read as a join leaves them ([`Registers::read`]).
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        let RecordWire {
            incarnation,
            created,
            status,
            authentication,
            retired,
            capabilities,
            parent,
            twin,
            metadata,
        } = RecordWire::deserialize(deserializer)?;
        // No writer wrote an empty retired list, in any build: a credential write retiring
        // nothing clears the register (`DeviceRecord::set_authentication`). Read, `[]` would
        // be a second text of "nothing retired" beside the register without the entry, and a
        // merge's inclusion shortcut keeps whichever side it merges into (`a ⊔ b ≠ b ⊔ a` byte
        // for byte), as with a list out of order below. Refused, not dropped: no build wrote
        // it, so it is damage, as a record holding nothing is.
        if let Some(empty) = retired.entries().iter().find(|e| e.value.is_empty()) {
            return Err(D::Error::custom(format!(
                "incarnation {incarnation} holds an empty retired list under {}: a credential \
                 write retiring nothing writes none",
                empty.dot
            )));
        }
        let written = Written {
            status,
            // Text an earlier build wrote may hold the credential kind the type does not use
            // as an empty pair; a device holds it as unknown (see `Authentication`), as its
            // creation does once read (`Creation::new`), so the same keys written now agree.
            authentication: authentication.respelled(|a| a.clone().without_unused()),
            // Sorted and each fingerprint once, as `DeviceRecord::set_authentication` writes
            // it: read as written, one write had as many encodings as orders, and a merge's
            // inclusion shortcut kept whichever side it merged into (`a ⊔ b ≠ b ⊔ a`).
            retired: retired.respelled(|list| {
                let mut list = list.to_vec();
                list.sort_unstable();
                list.dedup();
                list.into()
            }),
            capabilities,
            parent,
            twin,
            metadata,
        };
        Ok(Self {
            incarnation,
            created,
            registers: Registers::read(written).map_err(D::Error::custom)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::ReplicaId;
    use crate::credentials::{Authentication, Pair, SymmetricKey};
    use crate::identity::Identity;
    use crate::key::DeviceKey;
    use crate::policy::Policy;
    use crate::registry::Registry;
    use crate::stamp::Stamp;

    type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// A registry's text with every credential register entry given an empty thumbprint
    /// pair, as builds before the one spelling wrote a SAS device's.
    fn with_empty_thumbprints(registry: &Registry) -> Result<String> {
        fn respell(value: &mut Value, in_authentication: bool) {
            match value {
                Value::Object(map) => {
                    for (name, member) in map.iter_mut() {
                        if in_authentication && name == "value" {
                            member["thumbprints"] = json!({"primary": null, "secondary": null});
                        } else {
                            respell(member, in_authentication || name == "authentication");
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(|v| respell(v, in_authentication)),
                _ => {}
            }
        }
        let mut text = serde_json::to_value(registry)?;
        respell(&mut text, false);
        Ok(serde_json::to_string(&text)?)
    }

    #[test]
    fn a_credential_write_stored_with_the_unused_kind_as_an_empty_pair_reads_as_unknown()
    -> Result<()> {
        let key = DeviceKey::device("d")?;
        let keys = |text| -> Result<Pair<SymmetricKey>> {
            let k = SymmetricKey::new(text)?;
            Ok(Pair::new(Some(k.clone()), Some(k)))
        };
        let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
        let mut base = Registry::new();
        base.writer(a, Stamp::new(1, 0))
            .create(&key, Identity::default())?;
        let rotated = Authentication::sas(keys("MDEyMzQ1Njc4OWFiY2RlZg==")?);
        let mut stored = base.clone();
        stored
            .writer(a, Stamp::new(2, 0))
            .set_authentication(&key, rotated.clone())?;
        let old_text = with_empty_thumbprints(&stored)?;
        let empty_pair = r#""thumbprints":{"primary":null,"secondary":null}"#;
        assert!(old_text.contains(empty_pair), "{old_text}");
        let old_text: Registry = serde_json::from_str(&old_text)?;
        let shown = |r: &Registry| r.device(&key, &Policy::default()).map(|d| d.authentication);
        assert_eq!(shown(&old_text), Some(rotated.clone()));
        // The same keys written concurrently now agree with the stored write.
        let mut now = base;
        now.writer(b, Stamp::new(3, 0))
            .set_authentication(&key, rotated)?;
        let report = now.merge(&old_text);
        assert_eq!(report.conflicts, vec![]);
        Ok(())
    }
}
