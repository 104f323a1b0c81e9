//! Twin sections as leaves addressed by path.
//!
//! A twin section (tags, desired or reported properties) is a JSON object. It is merged leaf by
//! leaf, so one side adding `tags.site` and the other `tags.owner` keeps both. Twin keys can
//! hold no `.`, so a dotted string names a leaf unambiguously.

mod leaves;
mod rules;
mod shown;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::error::{Error, Result};

use rules::{check_key, invalid};

pub(crate) use leaves::{flatten, hub_managed, patch_writes, unflatten_section};
pub(crate) use rules::{
    KeyProblem, check_leaf, check_leaves, check_metadata, check_written_leaf, is_leaf, key_problem,
    leaf_problem, nests_within, shown, shown_value,
};
pub(crate) use shown::{ShownObject, ShownRegisters, ShownValues};

/// IoT Hub's limit on how deep JSON objects nest in a twin section, the section's own object
/// not counted. Its documentation's example of the limit is `tags.one.two.….ten.property`:
/// ten objects below `tags`, so a path holds up to eleven keys, and the eleventh's value is
/// no object (refusing a path of eleven keys would refuse an export holding the hub's own
/// example of a valid twin).
pub(crate) const MAX_DEPTH: usize = 10;

/// How deep a twin leaf's value or a metadata value may nest, arrays and objects alike (a
/// value that is an array or an object is one level): as deep as a whole export line may be
/// (the [`iothub`](crate::iothub) reader's limit), so every value a hub's export holds fits,
/// and far inside the 128 levels `serde_json` reads, so every state holding one is written
/// and read back whole. A creation keeps its twin as text and reads it back for every
/// resolved read: unbounded, a tag nested 130 arrays deep would be written, fail to read back,
/// and take the device's every other tag with it. Checked
/// wherever a value enters a state: by the writer, and by the readers of a creation and of a
/// record's registers (a register's value read unchecked would be written back in a
/// registry, but not in an ingest holding it, whose text nests deeper).
pub(crate) const MAX_NESTING: usize = 64;

/// IoT Hub's limit on a twin key, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

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
/// load the state it had saved.
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
/// layout every identity or record holding a twin leaf would fail to serialize ("key must be
/// a string"); the convergence properties, comparing serialized states, would catch it.
pub(crate) mod text_keys {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::serde_text::{map_members, sorted_once_each};
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
        let members = (map_members::<D, String, V>(deserializer)?.into_iter())
            .map(|(text, value)| Ok((parse(&text).map_err(D::Error::custom)?, value)))
            .collect::<Result<Vec<_>, D::Error>>()?;
        // A path listed twice is refused: read as a map reads it, the last of the two would
        // stand and the other's writes be dropped without a word. Checked on the paths, though
        // two texts never parse to one path (`parse` strips the section's name and keeps the
        // rest as written), so that a spelling `parse` may come to accept is covered too.
        let members = sorted_once_each(members).map_err(|path| {
            D::Error::custom(format!(
                "twin path {:?} is listed twice",
                shown(&path.to_string())
            ))
        })?;
        Ok(members.into_iter().collect())
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
    use crate::fingerprint_key::FingerprintKey;
    use serde_json::{Value, json};

    /// Asserts that the value at `path` is hidden: without a fingerprint key as `<hidden>`;
    /// with one, by its keyed fingerprint, of a string's text or any other value's JSON text.
    #[track_caller]
    fn hidden(path: &str, value: Value) {
        let key = FingerprintKey::new(b"an operator's key of 32 bytes...").expect("32 bytes");
        let text = match &value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        assert_eq!(shown_value(path, Some(&value), None), "<hidden>", "{path}");
        let keyed = format!("<{}>", key.fingerprint(&text));
        assert_eq!(shown_value(path, Some(&value), Some(&key)), keyed, "{path}");
    }

    /// A value is hidden where its name or its text says it may be a secret, and shown whole
    /// otherwise; a removal as `removed`.
    #[test]
    fn a_value_that_may_be_a_secret_is_hidden() {
        hidden("registryCredentials.acr.address", json!("x.azurecr.io"));
        hidden("modules.m.env.DB_PASSWORD.value", json!("hunter2"));
        hidden("apiToken", json!(12345));
        hidden("sharedAccessKey", json!(["a", "b"]));
        hidden("Secrets.list", json!(null));
        hidden("site", json!("ZmFpbGJhY2sta2V5LTAwMQ=="));
        hidden(
            "config",
            json!({"c": "x HostName=h;SharedAccessKey=ZmFpbGJhY2sta2V5LTAwMQ=="}),
        );
        hidden("device.PrimaryKEY", json!("x"));
        hidden("x.ConnectionString", json!(1));
        hidden("sasTOKENs", json!(true));
        assert_eq!(shown_value("site", Some(&json!("oslo")), None), r#""oslo""#);
        assert_eq!(shown_value("ke.keys.y", Some(&json!(1)), None), "1");
        assert_eq!(shown_value("keyboard.layout", Some(&json!(2)), None), "2");
        assert_eq!(shown_value("password", None, None), "removed");
    }

    /// Short names are read as whole words, or `sas` would hide every value under `kansas`:
    /// a key's words are its runs of letters, split where camel case starts one (`sasUrl`,
    /// `SASToken`, `upstream_sas`, `deviceSig`, `DB-PWD`).
    #[test]
    fn a_short_secret_name_is_a_whole_word_of_a_key() {
        for path in [
            "upstream.sas",
            "sasUrl",
            "SASUri",
            "device_SAS",
            "fw.deviceSig",
            "db-pwd",
            "sas2",
        ] {
            hidden(path, json!("x"));
        }
        for path in [
            "kansas",
            "Arkansas.capital",
            "KANSAS",
            "sasquatch",
            "casas",
            "signal",
        ] {
            assert_eq!(shown_value(path, Some(&json!(1)), None), "1", "{path}");
        }
        hidden("sites", json!([{"region": "kansas", "Sas": "x"}]));
    }

    /// The names `ConflictValue::value` documents as the fixed list are the ones hidden, and
    /// names outside it are shown whole, as it says (review 58: a caller cannot add `psk` or
    /// `bearer`; the docs must say exactly which names count).
    #[test]
    fn the_documented_secret_names_are_the_ones_judged_secret() {
        for anywhere in [
            "password",
            "passwd",
            "passphrase",
            "secret",
            "token",
            "credential",
            "connectionstring",
            "signature",
        ] {
            hidden(&format!("my{}x", anywhere.to_uppercase()), json!("v"));
        }
        for word in ["sas", "sig", "pwd"] {
            hidden(&format!("db_{word}"), json!("v"));
        }
        hidden("apiKey", json!("v"));
        for unlisted in ["psk", "bearer", "wifi.psk", "auth.bearer"] {
            assert_eq!(
                shown_value(unlisted, Some(&json!("v")), None),
                r#""v""#,
                "{unlisted}"
            );
        }
    }

    /// An array is one leaf, so a secret's name in an object inside it is on no path: the
    /// value is read for it, at any depth (2026-11-23, found in review: a conflict over
    /// `desired.wifi = [{"ssid": …, "password": …}]` showed both passwords). A metadata value
    /// is one value whatever it holds, objects too.
    #[test]
    fn a_value_holding_a_secret_name_is_hidden() {
        hidden("wifi", json!([{"ssid": "plant", "password": "Wifi-Pass"}]));
        hidden("a", json!([1, [[{"x": {"y": [{"ApiTOKEN": 3}]}}]]]));
        hidden("owner", json!({"name": "x", "sharedAccessKey": null}));
        hidden("list", json!([{}, {"b": 1}, {"primaryKey": "x"}]));
        // Words in values are data, not names: only an object's keys name a secret.
        let data = json!(["password", {"ssid": "token", "channel": 6}]);
        assert_eq!(shown_value("wifi", Some(&data), None), data.to_string());
        let nested = json!({"a": [{"b": {"keyboard": "us"}}]});
        assert_eq!(shown_value("m", Some(&nested), None), nested.to_string());
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
}
