//! The checks that hold a twin to IoT Hub's rules: what a key may hold ([`key_problem`]), what
//! a leaf's value may hold and how deep it nests ([`check_leaf`]), which values are leaves, and
//! how deep a metadata value nests; with how a refused path is shown in a message ([`shown`])
//! and a value in a report ([`shown_value`]).
//!
//! Apart from `twin.rs`, which names the limits, because the checks are read beyond paths: the
//! writer, the readers of a creation and of a record's registers, and the export reader's own
//! checks (`iothub/check.rs`) hold keys and values to them, each value wherever it enters a
//! state.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{MAX_DEPTH, MAX_KEY_BYTES, MAX_NESTING, Section, TwinPath};
use crate::error::{Error, Result};
use crate::fingerprint_key::FingerprintKey;
use crate::secret::{may_hold_key, shown_secret, shown_text};

pub(super) fn invalid(section: Section, path: &str, reason: String) -> Error {
    Error::InvalidValue {
        field: format!("{}.{}", section.as_str(), shown(path)),
        reason,
    }
}

/// `path` as a message shows it: each key that may hold a symmetric key's text or a
/// credential made from one ([`may_hold_key`]), alone or beside other characters, by its
/// fingerprint. Twin keys are not secrets, but a refused path
/// may hold a key that damaged text moved into a twin's place (a registry's, an export
/// line's), and messages never show one.
pub(crate) fn shown(path: &str) -> String {
    path.split('.')
        .map(shown_text)
        .collect::<Vec<_>>()
        .join(".")
}

/// Words that, in a twin or metadata key of any letter case, say its value is a secret:
/// IoT Edge's `$edgeAgent` twin holds each container registry's `password` under
/// `registryCredentials`, and module settings carry tokens and connection strings.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "connectionstring",
    "signature",
];

/// A twin leaf's or a metadata key's value as a report shows it (`None`, a removal, as
/// `removed`): whole, or, where it may be a secret, as [`shown_secret`] shows it: by its keyed
/// fingerprint under `key`, `<hmac-sha256:…>`, and as `<hidden>` without one.
/// A value may be a secret where a key of its `path` (`.`-separated) names one
/// ([`SECRET_NAMES`] anywhere in it, [`SECRET_WORDS`] as a whole word, or a name ending in
/// `key`: `primaryKey`, `sharedAccessKey`), where a key of an object inside it, at any depth,
/// arrays included, names one ([`holds_secret_name`]), or where its text may hold a symmetric
/// key or a credential made from one: a SAS token, a connection string ([`may_hold_key`]). A
/// string is fingerprinted by its text, any other value by its JSON text (compact, members
/// sorted by name, as `serde_json` writes a value).
///
/// Twin values are the application's data, and reports would show them whole, a registry
/// password of `$edgeAgent` included. Broader than a secret on
/// purpose, as [`may_hold_key`] is: a value hidden for its name is still in the merged
/// registry, while a secret shown in a report is out.
pub(crate) fn shown_value(
    path: &str,
    value: Option<&Value>,
    key: Option<&FingerprintKey>,
) -> String {
    let Some(value) = value else {
        return "removed".to_owned();
    };
    let text = value.to_string();
    if !path.split('.').any(names_secret) && !holds_secret_name(value) && !may_hold_key(&text) {
        return text;
    }
    match value {
        Value::String(secret) => shown_secret(secret, key),
        _ => shown_secret(&text, key),
    }
}

/// Short words that, as a whole word of a twin or metadata key ([`words`]), in any letter
/// case, say its value is a secret: a SAS token (`sas`, `sasUrl`, `upstream_sas`), its
/// signature (`sig`), a password (`pwd`). Held to whole words, not found anywhere in a key as
/// [`SECRET_NAMES`] are: a key holding `sas` as letters of another word (`kansas`,
/// `sasquatch`), or `sig` (`signal`, `design`), names no secret, and a prefix or suffix match
/// would still hide `sasquatch` or `kansas`. A key running the word into another in lower
/// case (`upstreamsas`) is missed; its value is still hidden where its text holds a token
/// ([`may_hold_key`]).
const SECRET_WORDS: &[&str] = &["sas", "sig", "pwd"];

/// Whether the twin or metadata key `key` names a secret, in any letter case: it holds one of
/// [`SECRET_NAMES`], has one of [`SECRET_WORDS`] as a word, or ends in `key`. Compared in
/// place, as every value of a conflict's report asks it of each key of its path.
fn names_secret(key: &str) -> bool {
    let key = key.as_bytes();
    let holds = |name: &str| {
        key.windows(name.len())
            .any(|window| window.eq_ignore_ascii_case(name.as_bytes()))
    };
    key.len() >= 3 && key[key.len() - 3..].eq_ignore_ascii_case(b"key")
        || SECRET_NAMES.iter().any(|name| holds(name))
        || words(key).any(|word| {
            (SECRET_WORDS.iter()).any(|name| word.eq_ignore_ascii_case(name.as_bytes()))
        })
}

/// The words of a key: its runs of ASCII letters, each split where camel case starts a word,
/// at an upper-case letter after a lower-case one (`sas|Url`) or before one (`SAS|Token`).
/// Digits, `_`, `-` and every other character end a word.
fn words(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    // Called past a word's first letter only, so `at - 1` is in the key.
    let starts_word = |at: usize| {
        let (before, letter) = (key[at - 1], key[at]);
        letter.is_ascii_uppercase()
            && (before.is_ascii_lowercase()
                || before.is_ascii_uppercase()
                    && key.get(at + 1).is_some_and(u8::is_ascii_lowercase))
    };
    let mut at = 0;
    std::iter::from_fn(move || {
        while !key.get(at)?.is_ascii_alphabetic() {
            at += 1;
        }
        let start = at;
        at += 1;
        while key.get(at).is_some_and(u8::is_ascii_alphabetic) && !starts_word(at) {
            at += 1;
        }
        Some(&key[start..at])
    })
}

/// Whether a key of an object in `value`, at any depth and inside arrays, [names a
/// secret](names_secret). An array is one twin leaf, so its objects' keys are on no leaf's
/// path: `wifi = [{"ssid": …, "password": …}]` is the leaf `wifi` (a conflict over it would
/// show both passwords); and a metadata value is one value, objects
/// and all. The depth is bounded: every value a state holds nests within
/// [`MAX_NESTING`] levels ([`check_leaf`], [`check_metadata`]).
fn holds_secret_name(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| names_secret(key) || holds_secret_name(item)),
        Value::Array(items) => items.iter().any(holds_secret_name),
        _ => false,
    }
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

pub(super) fn check_key(key: &str) -> std::result::Result<(), String> {
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
/// write, even to another field, has the leaves settled by their shape (a status write would
/// change a device's tags).
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// A hidden value is shown by no plain fingerprint, whatever its shape: a password's gives
    /// it away to a dictionary (review 70), a passphrase of 24 letters or digits reads as a
    /// key's base64 (review 72), and a key's own text needs hiding no less. `<hidden>` without a
    /// key; with one, the keyed fingerprint of its text as written (two spellings of one key's
    /// bytes are two values, as a conflict between them says), or of its JSON text where it
    /// is not a string.
    #[test]
    fn a_hidden_value_shows_no_plain_fingerprint() {
        let key = FingerprintKey::new(b"an operator's key of 32 bytes...").expect("32 bytes");
        for text in [
            "hunter2",
            "iloveyouiloveyouiloveyou",
            "correcthorsebatterystaple123",
            "MDEyMzQ1Njc4OWFiY2RlZg==",
            "MDEyMzQ1Njc4OWFiY2RlZh==",
            "x MDEyMzQ1Njc4OWFiY2RlZh==",
            "SharedAccessSignature sr=hub&sig=abc",
        ] {
            let value = Value::from(text);
            for path in ["password", "site", "primaryKey"] {
                if path == "site" && !may_hold_key(text) {
                    continue; // shown whole
                }
                assert_eq!(shown_value(path, Some(&value), None), "<hidden>", "{text}");
                let keyed = format!("<{}>", key.fingerprint(text));
                assert_eq!(shown_value(path, Some(&value), Some(&key)), keyed, "{text}");
            }
        }
        let wifi = serde_json::json!([{"ssid": "home", "password": "hunter2"}]);
        assert_eq!(shown_value("wifi", Some(&wifi), None), "<hidden>");
        let keyed = format!("<{}>", key.fingerprint(&wifi.to_string()));
        assert_eq!(shown_value("wifi", Some(&wifi), Some(&key)), keyed);
        assert_eq!(shown_value("pin", Some(&Value::from(1234)), None), "1234");
    }
}
