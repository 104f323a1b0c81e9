//! A twin section object read as leaves by path ([`flatten`]), a merge patch read as the writes
//! it makes ([`patch_writes`]), and leaves built back into a section object ([`unflatten`]).
//!
//! Apart from `twin.rs` because it converts between a section's JSON and the paths a record
//! holds, checking each key and leaf in one walk of the object ([`walk`]); a path is made,
//! ordered and related to others without it.

use serde_json::{Map, Value};

use super::rules::{check_key, invalid, leaf_problem};
use super::{MAX_DEPTH, Section, TwinPath};
use crate::error::Result;

/// Keys IoT Hub writes at the top of the desired and reported sections: hub-local counters and
/// timestamps (`$lastUpdated` and the like live inside `$metadata`). Nowhere else: the hub
/// nests its timestamps inside `$metadata`, never beside the properties they time, and writes
/// none into tags.
const HUB_MANAGED: [&str; 2] = ["$metadata", "$version"];

/// The keys IoT Hub writes at the top of `section` ([`HUB_MANAGED`] for desired and reported
/// properties, none for tags): the only keys holding `$` that a twin read from the hub holds,
/// skipped there with what they hold. The library ([`flatten`]) and the export reader
/// (`iothub::line::twin`, `iothub::check`) skip these and no others, so that both read one
/// twin alike (else the reader would drop them at every depth, in every section and in
/// arrays).
pub(crate) fn hub_managed(section: Section) -> &'static [&'static str] {
    match section {
        Section::Tags => &[],
        Section::Desired | Section::Reported => &HUB_MANAGED,
    }
}

/// The leaves of a twin section object, by path, in path order. The keys IoT Hub manages
/// (`$metadata`, `$version`) at the top of desired or reported properties are hub-local and
/// skipped ([`hub_managed`]); any other key holding `$`, one of those below the top, in an
/// array or in tags included, is refused, as IoT Hub refuses it (skipping it would drop a value
/// without a word); a `null` is no value. A twin read from an export line is read so too: its
/// reader skips and refuses the same keys.
///
/// Skipped only at the top: skipped at every depth and in every section,
/// `{"a": {"$metadata": {"owner": "ops"}}}` would lose `a` without a word.
///
/// # Errors
///
/// [`Error::InvalidValue`](crate::Error::InvalidValue) when a key breaks IoT Hub's rules or the
/// object is too deep.
pub(crate) fn flatten(
    section: Section,
    object: &Map<String, Value>,
) -> Result<Vec<(TwinPath, Value)>> {
    Ok(leaves(walk(section, object, hub_managed(section))?))
}

/// The values of `walked` (`null`s are none), in path order.
fn leaves(walked: Vec<(TwinPath, Option<Value>)>) -> Vec<(TwinPath, Value)> {
    let mut out: Vec<(TwinPath, Value)> = walked
        .into_iter()
        .filter_map(|(path, value)| Some((path, value?)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The writes of a JSON merge patch to a twin section, by path, in the patch's order: a leaf
/// (or an empty object) is set, a `null` removes. Every key is checked as [`TwinPath::new`]
/// checks one, before anything is written: a patch is applied whole or not at all.
///
/// # Errors
///
/// [`Error::InvalidValue`](crate::Error::InvalidValue) when a key breaks IoT Hub's rules or the
/// patch is too deep.
pub(crate) fn patch_writes(
    section: Section,
    patch: &Map<String, Value>,
) -> Result<Vec<(TwinPath, Option<Value>)>> {
    walk(section, patch, &[])
}

/// The leaves of `object` in its order, each key checked (a key in `skip_top` at the top is
/// passed over with what it holds; below the top none is), a `null` as `None`: what
/// [`flatten`] and [`patch_writes`] both read.
fn walk(
    section: Section,
    object: &Map<String, Value>,
    skip_top: &[&str],
) -> Result<Vec<(TwinPath, Option<Value>)>> {
    fn go(
        section: Section,
        prefix: &str,
        object: &Map<String, Value>,
        depth: usize,
        skip: &[&str],
        out: &mut Vec<(TwinPath, Option<Value>)>,
    ) -> Result<()> {
        for (key, value) in object {
            if skip.contains(&key.as_str()) {
                continue;
            }
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            check_key(key).map_err(|reason| invalid(section, &path, reason))?;
            match value {
                // The `depth`-th object below the section.
                Value::Object(inner) if !inner.is_empty() => {
                    if depth > MAX_DEPTH {
                        return Err(invalid(
                            section,
                            &path,
                            format!(
                                "objects nest deeper than {MAX_DEPTH} levels; IoT Hub twins \
                                 nest at most {MAX_DEPTH}"
                            ),
                        ));
                    }
                    go(section, &path, inner, depth + 1, &[], out)?
                }
                leaf => {
                    leaf_problem(leaf, depth - 1)
                        .map_err(|reason| invalid(section, &path, reason))?;
                    let path = TwinPath {
                        section,
                        path: path.into(),
                    };
                    out.push((path, (!leaf.is_null()).then(|| leaf.clone())));
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(section, "", object, 1, skip_top, &mut out)?;
    Ok(out)
}

/// Rebuilds a section object from leaves. Where a leaf and a deeper leaf meet (a resolved shape
/// conflict should have removed that), the deeper one wins, matching [`crate::Rule::ChildBeatsScalar`].
pub(crate) fn unflatten<'a>(
    leaves: impl IntoIterator<Item = (&'a str, &'a Value)>,
) -> Map<String, Value> {
    let mut root = Map::new();
    for (path, value) in leaves {
        let mut keys = path.split('.').peekable();
        let mut node = &mut root;
        while let Some(key) = keys.next() {
            if keys.peek().is_none() {
                if !matches!(node.get(key), Some(Value::Object(m)) if !m.is_empty()) {
                    node.insert(key.to_owned(), value.clone());
                }
                break;
            }
            let slot = node
                .entry(key.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            node = match slot {
                Value::Object(map) => map,
                _ => break,
            };
        }
    }
    root
}

/// Rebuilds one section's object from leaves of any sections (the others are skipped).
pub(crate) fn unflatten_section<'a>(
    leaves: impl IntoIterator<Item = (&'a TwinPath, &'a Value)>,
    section: Section,
) -> Map<String, Value> {
    unflatten(
        leaves
            .into_iter()
            .filter(|(p, _)| p.section == section)
            .map(|(p, v)| (&*p.path, v)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn flatten_and_unflatten_round_trip_and_skip_hub_keys() {
        let twin = object(json!({"a": {"b": 1, "c": {}}, "d": [1, 2], "$version": 4, "e": null}));
        let leaves = flatten(Section::Desired, &twin).unwrap_or_default();
        let paths: Vec<_> = leaves.iter().map(|(p, _)| &*p.path).collect();
        assert_eq!(paths, ["a.b", "a.c", "d"]);
        let back = unflatten(leaves.iter().map(|(p, v)| (&*p.path, v)));
        assert_eq!(
            Value::Object(back),
            json!({"a": {"b": 1, "c": {}}, "d": [1, 2]})
        );
    }

    /// `objects` objects nested below a section, the innermost holding `value` at `leaf`.
    fn nested(objects: usize, value: Value) -> Map<String, Value> {
        let mut twin = json!({ "leaf": value });
        for _ in 0..objects {
            twin = json!({ "n": twin });
        }
        object(twin)
    }

    /// Ten objects below the section is IoT Hub's limit, in an array too, and every key of an
    /// object in an array keeps its rules; beyond them, a section object, a patch and a leaf
    /// written alone are each refused.
    #[test]
    fn the_hubs_depth_and_key_rules_hold_in_arrays() {
        let valid = [
            nested(10, json!(1)),
            nested(9, json!({})),
            nested(8, json!([{"x": [{}]}, [[1]]])),
        ];
        let refused = [
            nested(10, json!({})),
            nested(11, json!(1)),
            nested(10, json!([{"x": 1}])),
            nested(9, json!([{"x": [{}]}])),
            nested(0, json!([1, {"a.b": 1}])),
            nested(0, json!([[{"$version": 1}]])),
            nested(0, json!([{"": 1}])),
        ];
        for (twin, ok) in
            (valid.iter().map(|t| (t, true))).chain(refused.iter().map(|t| (t, false)))
        {
            assert_eq!(flatten(Section::Tags, twin).is_ok(), ok, "{twin:?}");
            assert_eq!(patch_writes(Section::Tags, twin).is_ok(), ok, "{twin:?}");
        }
    }

    /// A key holding `.` would read back as nesting, and a `$` key the hub does not manage
    /// would be dropped: both are refused, in a section object and in a patch.
    #[test]
    fn a_dot_or_an_unmanaged_dollar_in_a_key_is_refused() {
        for twin in [json!({"a.b": 1}), json!({"x": {"$y": 1}}), json!({"$x": 1})] {
            let err = flatten(Section::Tags, &object(twin.clone())).map(|_| ());
            assert!(matches!(err, Err(Error::InvalidValue { .. })), "{twin}");
            let err = patch_writes(Section::Tags, &object(twin.clone())).map(|_| ());
            assert!(matches!(err, Err(Error::InvalidValue { .. })), "{twin}");
        }
        let hub = object(json!({"$metadata": {"$lastUpdated": "x"}, "$version": 2, "a": 1}));
        let leaves = flatten(Section::Desired, &hub).unwrap_or_default();
        assert_eq!(leaves.len(), 1);
    }

    /// `$metadata` and `$version` are the hub's only at the top of desired and reported
    /// properties: skipped there with what they hold, and refused as any `$` key is everywhere
    /// else, tags included (found in review: skipped at every depth and in every section,
    /// `{"a": {"$metadata": {"owner": "ops"}}}` lost `a` without a word). An export line's
    /// twin is read so too, as its reader reads it.
    #[test]
    fn hub_keys_are_skipped_only_at_the_top_of_desired_and_reported() {
        let hub = json!({
            "$metadata": {"$lastUpdated": "x", "a": {"$lastUpdated": "x"}},
            "$version": 2,
            "a": 1,
        });
        for section in [Section::Desired, Section::Reported] {
            let leaves = flatten(section, &object(hub.clone())).unwrap_or_default();
            let paths: Vec<_> = leaves.iter().map(|(p, _)| &*p.path).collect();
            assert_eq!(paths, ["a"], "{section:?}");
        }
        let refused = [
            (Section::Tags, json!({"$version": 3, "site": "x"})),
            (Section::Tags, json!({"$metadata": {}})),
            (Section::Tags, json!({"a": {"$metadata": {"owner": "ops"}}})),
            (
                Section::Desired,
                json!({"a": {"$metadata": {"owner": "ops"}, "b": 1}}),
            ),
            (Section::Reported, json!({"a": {"$version": 1}})),
            (Section::Desired, json!({"a": [{"$version": 1, "x": 2}]})),
        ];
        for (section, twin) in refused {
            let flat = flatten(section, &object(twin.clone())).map(|_| ());
            assert!(matches!(flat, Err(Error::InvalidValue { .. })), "{twin}");
            let identity = crate::Identity::default().with_twin(section, twin.clone());
            assert!(
                matches!(identity, Err(Error::InvalidValue { .. })),
                "{twin}"
            );
        }
    }

    /// A patch with one bad key anywhere writes none of its leaves: written ones would have
    /// taken dots that no returned delta carries to a peer.
    #[test]
    fn a_patch_with_a_bad_key_writes_nothing() -> Result<()> {
        let key = crate::DeviceKey::device("d")?;
        let r = crate::ReplicaId::from_u128(1);
        let mut registry = crate::Registry::new();
        registry
            .writer(r, crate::Stamp::new(1, 0))
            .create(&key, crate::Identity::default())?;
        let before = registry.clone();
        for patch in [
            json!({"a": 1, "room 1": 2}),
            json!({"a": 1, "b": {"c.d": 2}}),
            json!({"a": 1, "z": {"1": {"2": {"3": {"4": {"5": {"6": {"7": {"8": {"9": {"10": {"11": 1}}}}}}}}}}}}),
        ] {
            let written = registry.writer(r, crate::Stamp::new(2, 0)).patch_twin(
                &key,
                Section::Desired,
                &object(patch.clone()),
            );
            assert!(written.is_err(), "{patch}");
            assert_eq!(registry, before, "{patch}");
        }
        Ok(())
    }
}
