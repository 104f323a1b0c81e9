//! Twin sections as leaves addressed by path.
//!
//! A twin section (tags, desired or reported properties) is a JSON object. It is merged leaf by
//! leaf, so one side adding `tags.site` and the other `tags.owner` keeps both. Twin keys can
//! hold no `.`, so a dotted string names a leaf unambiguously.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use smallvec::SmallVec;

use crate::credentials::{Fingerprint, may_hold_key};
use crate::error::{Error, Result};

/// IoT Hub's limit on how deep JSON objects nest in a twin section, the section's own object
/// not counted. Its documentation's example of the limit is `tags.one.two.….ten.property`:
/// ten objects below `tags`, so a path holds up to eleven keys, and the eleventh's value is
/// no object (2026-11-23, found in review: a path of eleven keys was refused, and with it an
/// export holding the hub's own example of a valid twin).
pub(crate) const MAX_DEPTH: usize = 10;

/// How deep a twin leaf's value or a metadata value may nest, arrays and objects alike (a
/// value that is an array or an object is one level): as deep as a whole export line may be
/// (the [`iothub`](crate::iothub) reader's limit), so every value a hub's export holds fits,
/// and far inside the 128 levels `serde_json` reads, so every state holding one is written
/// and read back whole. A creation keeps its twin as text and reads it back for every
/// resolved read: unbounded, a tag nested 130 arrays deep was written, could not be read back,
/// and took the device's every other tag with it (2026-11-23, found in review). Checked
/// wherever a value enters a state: by the writer, and by the readers of a creation and of a
/// record's registers (a register's value read unchecked was written back in a registry, but
/// not in an ingest holding it, whose text nests deeper; 2026-11-23, found in review).
pub(crate) const MAX_NESTING: usize = 64;

/// IoT Hub's limit on a twin key, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// Keys IoT Hub writes into a twin section itself: hub-local counters and timestamps.
const HUB_MANAGED: [&str; 2] = ["$metadata", "$version"];

/// Which part of the twin a path addresses.
///
/// # Examples
///
/// ```
/// use failback::Section;
/// assert_eq!(Section::Desired.as_str(), "properties.desired");
/// assert!(Section::Tags < Section::Reported);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Section {
    /// Twin tags (back end only).
    Tags,
    /// Desired properties (back end writes, device reads).
    Desired,
    /// Reported properties (device writes; never written by an import).
    Reported,
}

impl Section {
    /// Every section, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::Section;
    /// let names: Vec<&str> = Section::ALL.iter().map(|s| s.as_str()).collect();
    /// assert_eq!(names, ["tags", "properties.desired", "properties.reported"]);
    /// ```
    pub const ALL: [Section; 3] = [Section::Tags, Section::Desired, Section::Reported];

    /// Where the section sits in an export line.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Section::Tags.as_str(), "tags");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tags => "tags",
            Self::Desired => "properties.desired",
            Self::Reported => "properties.reported",
        }
    }
}

/// The address of one twin leaf: a section and a dotted path inside it.
///
/// Only [`new`](Self::new) makes one (reading one checks the same), so every path a registry
/// holds is one IoT Hub accepts and the registry's own reader takes back: with public fields,
/// an identity could be created under a path the reader then refused, and a replica could not
/// load the state it had saved (found in review).
///
/// # Examples
///
/// ```
/// use failback::{Section, TwinPath};
/// let path = TwinPath::new(Section::Tags, "site.building")?;
/// assert_eq!(path.to_string(), "tags.site.building");
/// assert!(TwinPath::new(Section::Tags, "bad key").is_err());
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "TwinPathWire")]
pub struct TwinPath {
    pub(crate) section: Section,
    /// Keys from the section's root, joined by `.`. Shared: a path is cloned into every
    /// record and delta that writes it, and an ingested event's register joins a record's map
    /// under a clone of its path (an allocation and a copy each, when this was a `Box`).
    pub(crate) path: Arc<str>,
}

/// A path as read, checked as [`TwinPath::new`] checks it.
#[derive(Deserialize)]
struct TwinPathWire {
    section: Section,
    path: String,
}

impl TryFrom<TwinPathWire> for TwinPath {
    type Error = Error;

    fn try_from(wire: TwinPathWire) -> Result<Self> {
        Self::new(wire.section, &wire.path)
    }
}

impl TwinPath {
    /// A validated path: 1 to 11 keys (objects nest ten deep below a section, and the last
    /// key names a leaf) of at most 1 KB, without `$`, spaces or control characters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] naming the first key that breaks a rule.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Section, TwinPath};
    /// assert!(TwinPath::new(Section::Desired, "fw.version").is_ok());
    /// assert!(TwinPath::new(Section::Desired, "$version").is_err());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn new(section: Section, path: &str) -> Result<Self> {
        let keys: Vec<&str> = path.split('.').collect();
        if keys.len() > MAX_DEPTH + 1 {
            return Err(invalid(
                section,
                path,
                format!(
                    "{} keys, at most {} (twin objects nest at most {MAX_DEPTH} levels)",
                    keys.len(),
                    MAX_DEPTH + 1
                ),
            ));
        }
        for key in keys {
            check_key(key).map_err(|reason| invalid(section, path, reason))?;
        }
        Ok(Self {
            section,
            path: path.into(),
        })
    }

    /// The section.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Section, TwinPath};
    /// assert_eq!(TwinPath::new(Section::Desired, "fw.version")?.section(), Section::Desired);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn section(&self) -> Section {
        self.section
    }

    /// The keys from the section's root, joined by `.`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Section, TwinPath};
    /// assert_eq!(TwinPath::new(Section::Desired, "fw.version")?.path(), "fw.version");
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A path read back from text the crate wrote from a `TwinPath` (so one [`new`](Self::new)
    /// made): not checked again.
    pub(crate) fn trusted(section: Section, path: &str) -> Self {
        Self {
            section,
            path: path.into(),
        }
    }

    /// Whether `self` names an ancestor of `other` in the same section.
    pub(crate) fn is_ancestor_of(&self, other: &TwinPath) -> bool {
        self.section == other.section
            && other.path.len() > self.path.len()
            && other.path.starts_with(&*self.path)
            && other.path.as_bytes()[self.path.len()] == b'.'
    }

    /// The ancestors of this path, nearest first.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = TwinPath> + '_ {
        self.path
            .char_indices()
            .rev()
            .filter(|&(_, c)| c == '.')
            .map(|(i, _)| TwinPath {
                section: self.section,
                path: self.path[..i].into(),
            })
    }

    /// Whether one of `paths`, given in their order, is an ancestor of another, in one pass
    /// and without building a path.
    ///
    /// In order, an ancestor `q` comes before its descendant `p`, and every path between them
    /// starts with `q`'s text (`q < r < p` and `q` a prefix of `p` make it one of `r`). So a
    /// stack of the paths seen that are text prefixes of the current one, popped down to the
    /// first that is a prefix of the next, holds every ancestor of each path when it comes:
    /// `∃ q, p ∈ paths: q ancestor of p ⇔ some p meets an ancestor in the stack`.
    ///
    /// Why not look each ancestor up (2026-11-22): a conflict check of every changed record
    /// built each ancestor as a new path (an allocation) and searched the record's paths for
    /// it, reading their text, cold, at every probe.
    pub(crate) fn any_nested<'a>(paths: impl IntoIterator<Item = &'a TwinPath>) -> bool {
        Self::first_nested(paths).is_some()
    }

    /// The first path of `paths` (in order) under another of them, with that other, as
    /// [`any_nested`](Self::any_nested) finds it.
    pub(crate) fn first_nested<'a>(
        paths: impl IntoIterator<Item = &'a TwinPath>,
    ) -> Option<(&'a TwinPath, &'a TwinPath)> {
        let mut prefixes: SmallVec<[&TwinPath; 8]> = SmallVec::new();
        for path in paths {
            while prefixes
                .last()
                .is_some_and(|q| q.section != path.section || !path.path.starts_with(&*q.path))
            {
                prefixes.pop();
            }
            if let Some(&above) = prefixes.iter().find(|q| q.is_ancestor_of(path)) {
                return Some((above, path));
            }
            prefixes.push(path);
        }
        None
    }

    /// The smallest and just-past-largest paths that can be descendants of this one, for a
    /// range query on a sorted map (`/` sorts right after `.`).
    pub(crate) fn descendant_bounds(&self) -> (TwinPath, TwinPath) {
        let at = |suffix: char| TwinPath {
            section: self.section,
            path: format!("{}{suffix}", self.path).into(),
        };
        (at('.'), at('/'))
    }
}

impl fmt::Display for TwinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.section.as_str(), self.path)
    }
}

impl fmt::Debug for TwinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TwinPath({self})")
    }
}

fn invalid(section: Section, path: &str, reason: String) -> Error {
    Error::InvalidValue {
        field: format!("{}.{}", section.as_str(), shown(path)),
        reason,
    }
}

/// `path` as a message shows it: each key that may hold a symmetric key's text, alone or
/// beside other characters, by its fingerprint. Twin keys are not secrets, but a refused path
/// may hold a key that damaged text moved into a twin's place (a registry's, an export
/// line's), and messages never show one.
pub(crate) fn shown(path: &str) -> String {
    path.split('.')
        .map(|key| {
            if may_hold_key(key) {
                format!("<{}>", Fingerprint::of(key))
            } else {
                key.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Why IoT Hub refuses a twin key. The library and the export reader word their refusals
/// apart (the reader names a line's key by fingerprint when it reads as a symmetric key), but
/// both hold keys to this one rule.
pub(crate) enum KeyProblem {
    /// The key is empty.
    Empty,
    /// The key is this many bytes long, over [`MAX_KEY_BYTES`].
    Long(usize),
    /// The key holds this character: `$` (the hub's own keys start with it), `.` (read back as
    /// nesting: a key `a.b` and a key `b` under `a` would be one path), a space or a control
    /// character.
    Holds(char),
}

/// What IoT Hub refuses in the twin key `key`, if anything.
pub(crate) fn key_problem(key: &str) -> Option<KeyProblem> {
    if key.is_empty() {
        return Some(KeyProblem::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Some(KeyProblem::Long(key.len()));
    }
    key.chars()
        .find(|&c| matches!(c, '$' | '.' | ' ') || c.is_control())
        .map(KeyProblem::Holds)
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    match key_problem(key) {
        None => Ok(()),
        Some(KeyProblem::Empty) => Err("empty key".into()),
        Some(KeyProblem::Long(bytes)) => {
            Err(format!("key of {bytes} bytes, at most {MAX_KEY_BYTES}"))
        }
        // Shown as a path is: the character refused may sit beside a key (`x.KEY`, `x KEY`).
        Some(KeyProblem::Holds(c)) => Err(format!(
            "key {:?} holds {c:?}; twin keys cannot hold $, ., spaces or control characters",
            shown(key)
        )),
    }
}

/// Refuses `value` as the value of the leaf at `path`, when IoT Hub would not store it or
/// this crate could not read it back: an object inside it (in an array, or the value itself
/// when empty) nested deeper than IoT Hub's ten levels, a key in such an object that breaks
/// the hub's key rules (they hold for every object of a twin, those in arrays too, and the
/// hub's own `$metadata` and `$version` are never in an array), or nesting beyond
/// [`MAX_NESTING`].
///
/// # Errors
///
/// [`Error::InvalidValue`] naming the path and the problem.
pub(crate) fn check_leaf(path: &TwinPath, value: &Value) -> Result<()> {
    let objects_around = path.path.split('.').count() - 1;
    leaf_problem(value, objects_around).map_err(|reason| invalid(path.section, &path.path, reason))
}

/// Refuses `value` as what a write to the twin leaf at `path` set, unless it is a leaf (no
/// non-empty object: an object's members are leaves of their own paths) that [`check_leaf`]
/// takes: what every twin write sets, checked where a register's value is read from text.
///
/// # Errors
///
/// [`Error::InvalidValue`] naming the path and the problem.
pub(crate) fn check_written_leaf(path: &TwinPath, value: &Value) -> Result<()> {
    if !is_leaf(value) {
        return Err(invalid(
            path.section,
            &path.path,
            "a non-empty object is not a leaf; a twin write sets each of its members at its own \
             path"
                .into(),
        ));
    }
    check_leaf(path, value)
}

/// Refuses `leaves` as the twin of a new identity unless each is a leaf IoT Hub stores
/// ([`check_leaf`]), none is a non-empty object (an object's members are leaves of their own
/// paths) or a null, and none lies under another (`a` and `a.b`): what a twin read from a
/// hub, or built by [`Identity::with_twin`](crate::Identity::with_twin), always is. A twin
/// that is not so would read as created while its record is untouched, and otherwise once any
/// write, even to another field, has the leaves settled by their shape (2026-11-23, found in
/// review: a status write changed a device's tags).
///
/// # Errors
///
/// [`Error::InvalidValue`] naming the first path refused.
pub(crate) fn check_leaves(leaves: &BTreeMap<TwinPath, Value>) -> Result<()> {
    for (path, value) in leaves {
        if value.is_null() {
            // A twin holds no null: IoT Hub reads one in a patch as a removal.
            return Err(invalid(
                path.section,
                &path.path,
                "a null is no value in a twin; leave the path out".into(),
            ));
        }
        check_written_leaf(path, value)?;
    }
    match TwinPath::first_nested(leaves.keys()) {
        Some((above, below)) => Err(invalid(
            below.section,
            &below.path,
            format!(
                "it lies under the leaf {}; a leaf holds a value, not other leaves",
                shown(&above.path)
            ),
        )),
        None => Ok(()),
    }
}

/// What [`check_leaf`] refuses in `value`, the value of a key inside `objects_around` objects
/// below its section (a section's own keys are inside none): the reason, which shows a key
/// refused as [`shown`] shows a path.
pub(crate) fn leaf_problem(
    value: &Value,
    objects_around: usize,
) -> std::result::Result<(), String> {
    problem_within(value, objects_around, 0)
}

/// What is wrong with `value`, inside `objects` objects of its section and `nesting` levels
/// of its leaf's value.
fn problem_within(
    value: &Value,
    objects: usize,
    nesting: usize,
) -> std::result::Result<(), String> {
    let objects = match value {
        Value::Object(_) => objects + 1,
        Value::Array(_) => objects,
        _ => return Ok(()),
    };
    if objects > MAX_DEPTH {
        return Err(format!(
            "its value holds objects nested deeper than {MAX_DEPTH} levels in the section; IoT \
             Hub twins nest at most {MAX_DEPTH}"
        ));
    }
    if nesting >= MAX_NESTING {
        return Err(format!("its value nests deeper than {MAX_NESTING} levels"));
    }
    match value {
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            check_key(key).map_err(|reason| format!("in its value, {reason}"))?;
            problem_within(item, objects, nesting + 1)
        }),
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| problem_within(item, objects, nesting + 1)),
        _ => Ok(()),
    }
}

/// Refuses a metadata value nested deeper than [`MAX_NESTING`] levels.
///
/// # Errors
///
/// [`Error::InvalidValue`] naming the metadata key.
pub(crate) fn check_metadata(name: &str, value: &Value) -> Result<()> {
    if nests_within(value, 1, MAX_NESTING) {
        return Ok(());
    }
    // The name as a path is shown: a refused value read from text may sit under a name that
    // is a key moved there by damage, and messages never show one.
    Err(Error::InvalidValue {
        field: format!("metadata {:?}", shown(name)),
        reason: format!("the value nests deeper than {MAX_NESTING} levels"),
    })
}

/// Whether `value`, at `level` of a JSON text (its outermost value is level 1), nests within
/// `limit` levels, arrays and objects alike. Stops at the limit, so a value nested without end
/// is not walked whole.
pub(crate) fn nests_within(value: &Value, level: usize, limit: usize) -> bool {
    match value {
        Value::Array(items) => {
            level <= limit && items.iter().all(|v| nests_within(v, level + 1, limit))
        }
        Value::Object(map) => {
            level <= limit && map.values().all(|v| nests_within(v, level + 1, limit))
        }
        _ => true,
    }
}

/// Whether `value` is a leaf: anything but a non-empty object.
pub(crate) fn is_leaf(value: &Value) -> bool {
    !matches!(value, Value::Object(map) if !map.is_empty())
}

/// The leaves of a twin section object, by path, in path order. Keys IoT Hub manages
/// (`$metadata`, `$version`) are hub-local and skipped; any other key starting with `$` is
/// refused, as IoT Hub refuses it (skipping it would drop a value without a word); a `null`
/// is no value.
///
/// # Errors
///
/// [`Error::InvalidValue`] when a key breaks IoT Hub's rules or the object is too deep.
pub(crate) fn flatten(
    section: Section,
    object: &Map<String, Value>,
) -> Result<Vec<(TwinPath, Value)>> {
    let mut out: Vec<(TwinPath, Value)> = walk(section, object, &HUB_MANAGED)?
        .into_iter()
        .filter_map(|(path, value)| Some((path, value?)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The writes of a JSON merge patch to a twin section, by path, in the patch's order: a leaf
/// (or an empty object) is set, a `null` removes. Every key is checked as [`TwinPath::new`]
/// checks one, before anything is written: a patch is applied whole or not at all.
///
/// # Errors
///
/// [`Error::InvalidValue`] when a key breaks IoT Hub's rules or the patch is too deep.
pub(crate) fn patch_writes(
    section: Section,
    patch: &Map<String, Value>,
) -> Result<Vec<(TwinPath, Option<Value>)>> {
    walk(section, patch, &[])
}

/// The leaves of `object` in its order, each key checked (a key in `skip` is passed over with
/// what it holds), a `null` as `None`: what [`flatten`] and [`patch_writes`] both read.
fn walk(
    section: Section,
    object: &Map<String, Value>,
    skip: &[&str],
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
                    go(section, &path, inner, depth + 1, skip, out)?
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
    go(section, "", object, 1, skip, &mut out)?;
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

/// A twin path as text (`properties.desired.fw.version`, as [`TwinPath`] displays) split into
/// its section and the path inside it; `None` when it names no section.
pub(crate) fn split_section(text: &str) -> Option<(Section, &str)> {
    Section::ALL.iter().find_map(|&section| {
        let rest = text.strip_prefix(section.as_str())?.strip_prefix('.')?;
        Some((section, rest))
    })
}

/// Twin maps travel keyed by the path as text (`tags.site.room`, as [`TwinPath`] displays).
///
/// Why: JSON object keys must be strings and a `TwinPath` is a struct, so with the derived
/// layout every identity or record holding a twin leaf failed to serialize ("key must be a
/// string"), found by the convergence properties comparing serialized states.
pub(crate) mod text_keys {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::twin::{TwinPath, shown, split_section};

    /// Any map from paths (a `BTreeMap`, a record's `RegisterMap`), as a map from text.
    pub(crate) fn serialize<'a, S, M, V>(map: &'a M, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        &'a M: IntoIterator<Item = (&'a TwinPath, &'a V)>,
        V: Serialize + 'a,
    {
        serializer.collect_map(
            map.into_iter()
                .map(|(path, value)| (path.to_string(), value)),
        )
    }

    pub(crate) fn deserialize<'de, D, M, V>(deserializer: D) -> Result<M, D::Error>
    where
        D: Deserializer<'de>,
        M: FromIterator<(TwinPath, V)>,
        V: Deserialize<'de>,
    {
        BTreeMap::<String, V>::deserialize(deserializer)?
            .into_iter()
            .map(|(text, value)| Ok((parse(&text).map_err(D::Error::custom)?, value)))
            .collect()
    }

    fn parse(text: &str) -> Result<TwinPath, String> {
        split_section(text)
            .map(|(section, rest)| TwinPath::new(section, rest).map_err(|e| e.to_string()))
            .unwrap_or_else(|| {
                Err(format!(
                    "twin path {:?} must start with tags., properties.desired. or properties.reported.",
                    shown(text)
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The one pass agrees with asking every pair, on paths whose order puts other text
    /// (`a-x`, `a/b`, `ab`) between an ancestor and its descendant.
    #[test]
    fn any_nested_agrees_with_every_pair() -> Result<()> {
        let names = ["a", "a-x", "a.b", "a.b.c", "a/b", "ab", "ab.c", "b", "b.a"];
        let all: Vec<TwinPath> = [Section::Tags, Section::Desired]
            .into_iter()
            .flat_map(|section| names.map(|name| TwinPath::new(section, name)))
            .collect::<Result<_>>()?;
        // Every subset of the first 12 paths, in order (the map's), against every pair.
        for mask in 0u32..1 << 12 {
            let mut subset: Vec<&TwinPath> = (0..12)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| &all[i])
                .collect();
            subset.sort();
            let pairwise = subset
                .iter()
                .any(|q| subset.iter().any(|p| q.is_ancestor_of(p)));
            assert_eq!(
                TwinPath::any_nested(subset.iter().copied()),
                pairwise,
                "{subset:?}"
            );
        }
        Ok(())
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

    #[test]
    fn a_path_read_is_checked_as_new_checks_it() {
        let read = |path: &str| {
            serde_json::from_value::<TwinPath>(json!({"section": "desired", "path": path}))
        };
        let path = TwinPath::new(Section::Desired, "fw.version").ok();
        assert_eq!(read("fw.version").ok(), path);
        assert_eq!(
            path.map(|p| serde_json::to_value(&p).ok()),
            Some(Some(json!({"section": "desired", "path": "fw.version"})))
        );
        for bad in [
            "",
            "$version",
            "a b",
            "a..b",
            &["k"; MAX_DEPTH + 2].join("."),
        ] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ancestry_is_by_whole_keys() {
        let a = TwinPath::new(Section::Tags, "site").ok();
        let b = TwinPath::new(Section::Tags, "site.room").ok();
        let c = TwinPath::new(Section::Tags, "sites").ok();
        let (Some(a), Some(b), Some(c)) = (a, b, c) else {
            panic!("valid paths")
        };
        assert!(a.is_ancestor_of(&b));
        assert!(!a.is_ancestor_of(&c));
        assert_eq!(b.ancestors().collect::<Vec<_>>(), std::slice::from_ref(&a));
        let (lo, hi) = a.descendant_bounds();
        assert!(lo < b && b < hi && !(lo <= c && c < hi));
    }

    #[test]
    fn depth_and_key_rules() {
        // IoT Hub's example of its limit: ten objects below the section, eleven keys.
        let hubs_example = "one.two.three.four.five.six.seven.eight.nine.ten.property";
        assert!(TwinPath::new(Section::Tags, hubs_example).is_ok());
        assert!(TwinPath::new(Section::Tags, &["k"; 12].join(".")).is_err());
        assert!(TwinPath::new(Section::Tags, "a\u{1}").is_err());
        assert!(TwinPath::new(Section::Tags, "").is_err());
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

    /// A value nested deeper than [`MAX_NESTING`] is refused, as a twin leaf and as metadata:
    /// a creation's twin text holding it could not be read back (found in review: 130 arrays
    /// deep, the device lost every tag).
    #[test]
    fn values_nest_at_most_max_nesting_levels() {
        let deep = |levels: usize| (0..levels).fold(json!("x"), |v, _| json!([v]));
        let path = TwinPath::new(Section::Tags, "a").ok();
        let Some(path) = path else {
            panic!("a valid path")
        };
        assert!(check_leaf(&path, &deep(MAX_NESTING)).is_ok());
        assert!(check_leaf(&path, &deep(MAX_NESTING + 1)).is_err());
        assert!(check_metadata("m", &deep(MAX_NESTING)).is_ok());
        assert!(check_metadata("m", &deep(MAX_NESTING + 1)).is_err());
        assert!(
            check_metadata("m", &json!({"a.b $": {}})).is_ok(),
            "metadata keys are free"
        );
        // The deepest value taken still reads back from its creation's text.
        let leaves: std::collections::BTreeMap<TwinPath, Value> =
            [(path, deep(MAX_NESTING))].into();
        let text = crate::twin_text::TwinText::new(&leaves);
        assert_eq!(text.leaves(), leaves);
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
