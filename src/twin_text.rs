//! The twin leaves a create wrote, kept as one text.
//!
//! Why (2026-11): a registry holds a creation per device, and most devices are never written
//! after it. Kept as a map of leaves, a creation's twin was most of a registry's memory: a
//! B-tree node with room for eleven path–value entries, a text per path and per string value,
//! about 760 bytes in thirteen allocations for a device with eight leaves, where the export
//! line holds it in about 200. As one canonical JSON text it costs what the export does, in
//! one allocation. Readers that need the leaves (a resolved read, a conflict report, the
//! lift's comparison with a new snapshot) parse them, which costs about what rebuilding the
//! twin as JSON objects already did.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::twin::{ShownValues, TwinPath, split_section, text_keys};

/// Twin leaves as a JSON object keyed by their paths (`tags.site`, `properties.desired.fw`),
/// written by `serde_json` from a sorted map: one set of leaves has one text, and two texts
/// that are equal hold equal leaves. Not quite the converse: `serde_json` takes the floats
/// `0.0` and `-0.0` as equal values and writes them apart, so texts that
/// differ may hold equal leaves. Nothing relies on the converse: a difference only makes a
/// reader compare the leaves themselves (the lift's twin diff), or keeps two creations apart
/// that carry one write under one dot, which only a reused dot makes.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct TwinText {
    text: Box<str>,
    /// Whether a leaf is another's ancestor (only an `Identity` built by hand can hold both):
    /// only then can the leaves of a lone creation conflict among themselves.
    nested: bool,
}

/// Serialises leaves in the `text_keys` form.
struct Keyed<'a>(&'a BTreeMap<TwinPath, Value>);

impl Serialize for Keyed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        text_keys::serialize(self.0, s)
    }
}

/// The leaves, each value shown as a report shows it: by its fingerprint where it may be a
/// secret (`twin/shown.rs`). The text itself holds them all in clear.
impl std::fmt::Debug for TwinText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwinText")
            .field("leaves", &ShownValues(&self.leaves()))
            .field("nested", &self.nested)
            .finish()
    }
}

impl TwinText {
    /// The text of `leaves`.
    pub(crate) fn new(leaves: &BTreeMap<TwinPath, Value>) -> Self {
        if leaves.is_empty() {
            return Self::default();
        }
        // Writing a map with text keys and JSON values into a string cannot fail.
        let text = serde_json::to_string(&Keyed(leaves)).unwrap_or_default();
        debug_assert!(!text.is_empty());
        // A path's descendants follow it in a sorted map, among the paths it starts.
        let paths: Vec<&TwinPath> = leaves.keys().collect();
        let nested = paths.iter().enumerate().any(|(i, p)| {
            paths[i + 1..]
                .iter()
                .take_while(|q| q.section == p.section && q.path.starts_with(&*p.path))
                .any(|q| p.is_ancestor_of(q))
        });
        Self {
            text: text.into_boxed_str(),
            nested,
        }
    }

    /// Whether a leaf is another's ancestor.
    pub(crate) fn is_nested(&self) -> bool {
        self.nested
    }

    /// The leaves, parsed.
    pub(crate) fn leaves(&self) -> BTreeMap<TwinPath, Value> {
        if self.text.is_empty() {
            return BTreeMap::new();
        }
        // The text was written by `new`: it parses, and each key is a section's name, a dot
        // and the path as the leaf held it.
        let object: Map<String, Value> = serde_json::from_str(&self.text).unwrap_or_default();
        debug_assert!(!object.is_empty());
        object
            .into_iter()
            .filter_map(|(key, value)| {
                let path =
                    split_section(&key).map(|(section, rest)| TwinPath::trusted(section, rest));
                debug_assert!(path.is_some(), "unparsable twin path {key:?}");
                Some((path?, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::{Section, flatten};
    use serde_json::json;

    #[test]
    fn leaves_come_back_as_they_went_in() -> crate::error::Result<()> {
        let mut leaves = BTreeMap::new();
        for (section, twin) in [
            (
                Section::Tags,
                json!({"site": "madrid", "location": {"floor": 5}}),
            ),
            (
                Section::Desired,
                json!({"fw": {"version": "1.2.0"}, "list": [1, {"a": null}]}),
            ),
            (Section::Reported, json!({"battery": 2.5, "empty": {}})),
        ] {
            let Value::Object(map) = twin else {
                unreachable!("an object literal")
            };
            leaves.extend(flatten(section, &map).unwrap_or_default());
        }
        let text = TwinText::new(&leaves);
        assert_eq!(text.leaves(), leaves);
        assert_eq!(text, TwinText::new(&text.leaves()));
        assert!(!text.is_nested());
        let scalar = TwinPath::new(Section::Tags, "location")?;
        leaves.insert(scalar, json!("hall"));
        assert!(TwinText::new(&leaves).is_nested());
        assert_eq!(TwinText::new(&BTreeMap::new()), TwinText::default());
        assert!(TwinText::new(&BTreeMap::new()).leaves().is_empty());
        Ok(())
    }
}
