//! Twin and metadata values as `Debug` shows them: each through [`shown_value`], so a value
//! that may be a secret is shown by its fingerprint there as in a report.
//!
//! Why (2026-11-23): every type holding twin or metadata values derived its `Debug`, so a
//! registry, an identity or an export line logged with `{:?}` logged `$edgeAgent`'s registry
//! passwords and any token an application kept in metadata, while reports hid them. Keys and
//! credentials already showed their fingerprints; these adapters give the values the same
//! treatment without changing how the types hold them.
//!
//! Each adapter keeps the derived form's shape (maps as maps, registers as their entries), so
//! a test's failure message still reads as before, a secret aside. Values are shown as JSON
//! text, as a report shows them.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::TwinPath;
use super::rules::shown_value;
use crate::register::MvRegister;
use crate::register_map::RegisterMap;

/// The key a value is held under, as [`shown_value`] reads it: a twin leaf's path within its
/// section, or a metadata key.
pub(crate) trait ValueName: fmt::Debug {
    /// The `.`-separated keys whose names say whether the value is a secret.
    fn value_name(&self) -> &str;
}

impl ValueName for TwinPath {
    fn value_name(&self) -> &str {
        &self.path
    }
}

impl ValueName for String {
    fn value_name(&self) -> &str {
        self
    }
}

/// One value, as JSON text or `<sha256:…>`.
struct Shown<'a> {
    name: &'a str,
    value: &'a Value,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shown_value(self.name, Some(self.value), None))
    }
}

/// Values by name (twin leaves by path, metadata by key), as a map.
pub(crate) struct ShownValues<'a, K>(pub(crate) &'a BTreeMap<K, Value>);

impl<K: ValueName> fmt::Debug for ShownValues<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.iter().map(|(name, value)| {
            let value = Shown {
                name: name.value_name(),
                value,
            };
            (name, value)
        });
        f.debug_map().entries(shown).finish()
    }
}

/// A twin section's object, its nested objects shown as maps, so that a secret leaf hides
/// itself alone and not the object around it.
pub(crate) struct ShownObject<'a> {
    /// The path of `object` within its section (empty for the section's own object).
    path: String,
    object: &'a Map<String, Value>,
}

impl<'a> ShownObject<'a> {
    /// A section's object.
    pub(crate) fn section(object: &'a Map<String, Value>) -> Self {
        Self {
            path: String::new(),
            object,
        }
    }
}

impl fmt::Debug for ShownObject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.object {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            match value {
                Value::Object(object) if !object.is_empty() => {
                    map.entry(key, &ShownObject { path, object })
                }
                _ => map.entry(key, &Shown { name: &path, value }),
            };
        }
        map.finish()
    }
}

/// Registers of twin leaves or metadata keys (`None` a removal), as a map of registers.
pub(crate) struct ShownRegisters<'a, K>(pub(crate) &'a RegisterMap<K, Option<Value>>);

impl<K: ValueName> fmt::Debug for ShownRegisters<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = (self.0.iter()).map(|(name, register)| {
            let register = ShownRegister {
                name: name.value_name(),
                register,
            };
            (name, register)
        });
        f.debug_map().entries(shown).finish()
    }
}

/// One register, as [`MvRegister`]'s own `Debug` shows it but for its values.
struct ShownRegister<'a> {
    name: &'a str,
    register: &'a MvRegister<Option<Value>>,
}

impl fmt::Debug for ShownRegister<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.register.entries().iter().map(|entry| {
            let value = entry.value.as_ref().map(|value| Shown {
                name: self.name,
                value,
            });
            ShownEntry {
                entry: (entry.dot, entry.stamp),
                value,
            }
        });
        let entries: Vec<ShownEntry<'_>> = entries.collect();
        f.debug_struct("MvRegister")
            .field("entries", &entries)
            .field("past", self.register.past())
            .finish()
    }
}

/// One entry of a register, as [`Entry`](crate::Entry)'s own `Debug` shows it.
struct ShownEntry<'a> {
    entry: (crate::clock::Dot, crate::stamp::Stamp),
    value: Option<Shown<'a>>,
}

impl fmt::Debug for ShownEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dot, stamp) = &self.entry;
        f.debug_struct("Entry")
            .field("dot", dot)
            .field("stamp", stamp)
            .field("value", &self.value)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Fingerprint;
    use crate::twin::Section;
    use serde_json::json;

    #[test]
    fn a_secret_leaf_hides_itself_alone() {
        let object = json!({
            "site": "oslo",
            "acr": {"address": "acr.io", "password": "hunter2"},
            "empty": {},
        });
        let Value::Object(object) = object else {
            unreachable!("an object literal")
        };
        let text = format!("{:?}", ShownObject::section(&object));
        assert_eq!(
            text,
            r#"{"acr": {"address": "acr.io", "password": <hidden>}, "empty": {}, "site": "oslo"}"#
        );
    }

    #[test]
    fn values_and_registers_show_what_names_no_secret_whole() {
        let path = |p: &str| TwinPath::new(Section::Tags, p).expect("valid");
        let values = BTreeMap::from([(path("site"), json!("oslo")), (path("token"), json!("abc"))]);
        let text = format!("{:?}", ShownValues(&values));
        assert!(text.contains(r#""oslo""#), "{text}");
        assert!(!text.contains("abc"), "{text}");

        let mut registers: RegisterMap<String, Option<Value>> = RegisterMap::new();
        let replica = crate::clock::ReplicaId::from_u128(1);
        let dot = |counter| crate::clock::Dot::new(replica, counter);
        (registers.get_or_default("owner".to_owned())).write(
            dot(1),
            crate::stamp::Stamp::new(1, 0),
            Some(json!("team-a")),
        );
        (registers.get_or_default("apiToken".to_owned())).write(
            dot(2),
            crate::stamp::Stamp::new(2, 0),
            Some(json!("abc")),
        );
        (registers.get_or_default("gone".to_owned())).write(
            dot(3),
            crate::stamp::Stamp::new(3, 0),
            None,
        );
        let text = format!("{:?}", ShownRegisters(&registers));
        assert!(text.contains(r#"value: Some("team-a")"#), "{text}");
        assert!(text.contains("value: None"), "{text}");
        assert!(!text.contains("abc"), "{text}");
        assert!(text.contains("value: Some(<hidden>)"), "{text}");
        assert!(
            !text.contains(&Fingerprint::of("abc").to_string()),
            "{text}"
        );
    }
}
