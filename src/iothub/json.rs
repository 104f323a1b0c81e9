//! JSON text: a position-aware scanner for reading lines and a canonical writer.
//!
//! serde_json validates a line and builds the twin sections, but it cannot say where a value
//! sits in the text, and its `Map` silently keeps the last of two equal keys. The scanner fills
//! both gaps: it yields each object member with its byte offsets, and skips the values nobody
//! asked about without building them. It checks structure only (quotes, brackets, separators),
//! so it runs on text serde_json has accepted; it still never panics, and reports a
//! [`Malformed`] offset on anything it cannot walk.

use std::borrow::Cow;
use std::fmt::{self, Write};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The JSON type of a value, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    /// The type as a message names it ("found an array").
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// Text the scanner could not walk, at a 0-based byte offset of the line.
#[derive(Debug)]
pub(crate) struct Malformed {
    pub(crate) at: usize,
    /// What is wrong, lower case.
    pub(crate) reason: String,
}

impl Malformed {
    fn at(at: usize) -> Self {
        let reason = "malformed JSON".into();
        Self { at, reason }
    }
}

/// A line and where each of its brackets (outside strings) closes.
///
/// Built in one pass, before serde_json sees the line: the same pass refuses nesting deeper
/// than a limit (serde_json recurses per level), and lets the scanner jump over a nested object
/// instead of walking it again for every level it descends.
#[derive(Debug)]
pub(crate) struct Scanned<'a> {
    text: &'a str,
    /// `(open, close)` byte offsets, ordered by `open`; `close` is `usize::MAX` if unbalanced.
    pairs: Vec<(usize, usize)>,
}

impl<'a> Scanned<'a> {
    /// Scans `text`, or gives the offset of the first `{` or `[` that opens level `max + 1`.
    /// Brackets inside strings do not count; escapes are followed so `"\""` stays one string.
    pub(crate) fn new(text: &'a str, max: usize) -> Result<Self, usize> {
        let bytes = text.as_bytes();
        let mut pairs = Vec::new();
        let mut open = Vec::new();
        let mut at = 0;
        while let Some(&byte) = bytes.get(at) {
            match byte {
                b'"' => {
                    // An unterminated string opens nothing; serde_json reports it.
                    at = string_end(bytes, at).unwrap_or(bytes.len());
                    continue;
                }
                b'{' | b'[' => {
                    if open.len() == max {
                        return Err(at);
                    }
                    open.push(pairs.len());
                    pairs.push((at, usize::MAX));
                }
                b'}' | b']' => {
                    if let Some(pair) = open.pop().and_then(|i| pairs.get_mut(i)) {
                        pair.1 = at;
                    }
                }
                _ => {}
            }
            at += 1;
        }
        Ok(Self { text, pairs })
    }

    /// The single value the line holds (serde_json has checked nothing else follows).
    pub(crate) fn root(&self) -> Result<Raw<'_>, Malformed> {
        self.value_at(0)
    }

    /// The value starting at the first non-whitespace byte from `at`.
    fn value_at(&self, at: usize) -> Result<Raw<'_>, Malformed> {
        let bytes = self.text.as_bytes();
        let start = skip_whitespace(bytes, at);
        let literal = |word: &[u8], kind| match bytes.get(start..start + word.len()) {
            Some(found) if found == word => Ok((kind, start + word.len())),
            _ => Err(Malformed::at(start)),
        };
        let (kind, end) = match bytes.get(start) {
            Some(b'"') => (Kind::String, string_end(bytes, start)?),
            Some(b'{') => (Kind::Object, self.close(start)?),
            Some(b'[') => (Kind::Array, self.close(start)?),
            Some(b't') => literal(b"true", Kind::Bool)?,
            Some(b'f') => literal(b"false", Kind::Bool)?,
            Some(b'n') => literal(b"null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => (Kind::Number, number_end(bytes, start)),
            _ => return Err(Malformed::at(start)),
        };
        let doc = self;
        Ok(Raw {
            doc,
            start,
            end,
            kind,
        })
    }

    /// Offset just past the bracket closing the one at `open`.
    fn close(&self, open: usize) -> Result<usize, Malformed> {
        match self.pairs.binary_search_by_key(&open, |pair| pair.0) {
            Ok(i) if self.pairs[i].1 != usize::MAX => Ok(self.pairs[i].1 + 1),
            _ => Err(Malformed::at(open)),
        }
    }
}

/// One value of a line: its type and where it is, its content not decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw<'a> {
    doc: &'a Scanned<'a>,
    /// Byte offset of the value's first byte.
    pub(crate) start: usize,
    /// Byte offset just past the value's last byte.
    end: usize,
    pub(crate) kind: Kind,
}

/// One `"key": value` of an object.
#[derive(Debug)]
pub(crate) struct Member<'a> {
    /// The key, escapes decoded.
    pub(crate) key: Cow<'a, str>,
    /// Byte offset of the key's opening quote.
    pub(crate) key_start: usize,
    pub(crate) value: Raw<'a>,
}

impl<'a> Raw<'a> {
    /// The value's text as it appears in the line.
    pub(crate) fn text(&self) -> &'a str {
        self.doc.text.get(self.start..self.end).unwrap_or_default()
    }

    /// The string's content, escapes decoded; `None` unless the value is a string.
    pub(crate) fn string(&self) -> Result<Option<Cow<'a, str>>, Malformed> {
        match self.kind {
            Kind::String => decode(self.doc.text, self.start, self.end).map(Some),
            _ => Ok(None),
        }
    }

    /// Every number in the value, at any depth, with its offset: the numbers of an array or
    /// object, or the value itself if it is one. Strings are skipped whole, so a digit in a key
    /// or string never counts; outside strings, only a number starts with `-` or a digit.
    pub(crate) fn numbers(&self) -> impl Iterator<Item = (usize, &'a str)> + use<'a> {
        let text = self.doc.text;
        let bytes = text.as_bytes();
        let end = self.end;
        let mut at = self.start;
        std::iter::from_fn(move || {
            while at < end {
                match bytes.get(at)? {
                    b'"' => at = string_end(bytes, at).unwrap_or(end),
                    b'-' | b'0'..=b'9' => {
                        let start = at;
                        at = number_end(bytes, start);
                        return Some((start, text.get(start..at).unwrap_or_default()));
                    }
                    _ => at += 1,
                }
            }
            None
        })
    }

    /// The boolean; `None` unless the value is `true` or `false`.
    pub(crate) fn boolean(&self) -> Option<bool> {
        match (self.kind, self.text()) {
            (Kind::Bool, "true") => Some(true),
            (Kind::Bool, "false") => Some(false),
            _ => None,
        }
    }

    /// The members of an object in text order, duplicates included; empty for other types.
    pub(crate) fn members(&self) -> Result<Vec<Member<'a>>, Malformed> {
        // Enough for a line's top level (twelve known keys) without regrowing.
        let mut members = Vec::with_capacity(16);
        if self.kind != Kind::Object {
            return Ok(members);
        }
        let bytes = self.doc.text.as_bytes();
        let mut at = skip_whitespace(bytes, self.start + 1);
        if bytes.get(at) == Some(&b'}') {
            return Ok(members);
        }
        loop {
            if bytes.get(at) != Some(&b'"') {
                return Err(Malformed::at(at));
            }
            let key_end = string_end(bytes, at)?;
            let key = decode(self.doc.text, at, key_end)?;
            let colon = skip_whitespace(bytes, key_end);
            if bytes.get(colon) != Some(&b':') {
                return Err(Malformed::at(colon));
            }
            let value = self.doc.value_at(colon + 1)?;
            let next = skip_whitespace(bytes, value.end);
            let key_start = at;
            members.push(Member {
                key,
                key_start,
                value,
            });
            match bytes.get(next) {
                Some(b',') => at = skip_whitespace(bytes, next + 1),
                Some(b'}') => return Ok(members),
                _ => return Err(Malformed::at(next)),
            }
        }
    }
}

/// The value of the first member named `key`; callers refuse duplicates before asking.
pub(crate) fn find<'a>(members: &[Member<'a>], key: &str) -> Option<Raw<'a>> {
    members.iter().find(|m| m.key == key).map(|m| m.value)
}

/// Offset just past the number starting at `start`.
fn number_end(bytes: &[u8], start: usize) -> usize {
    let rest = bytes.get(start..).unwrap_or_default().iter();
    let number = |b: &&u8| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
    start + rest.take_while(number).count()
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Offset just past the closing quote of the string opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> Result<usize, Malformed> {
    let mut at = start + 1;
    while let Some(found) = quote_or_backslash(bytes, at) {
        if bytes.get(found) == Some(&b'"') {
            return Ok(found + 1);
        }
        // A backslash escapes the next byte; a `\uXXXX` escape's digits need no care.
        at = found + 2;
    }
    Err(Malformed::at(start))
}

/// The offset of the first `"` or `\` at or after `at`.
///
/// Strings are most of an export line's bytes (keys, timestamps, ids), so they are skipped
/// eight bytes at a time: a byte equal to `c` is a zero byte of `x ^ c`, which the classic
/// "has a zero byte" test flags. Borrows only flag bytes above a real zero, so the lowest flag
/// is exact.
fn quote_or_backslash(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let found = zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    let special = |&b: &u8| b == b'"' || b == b'\\';
    rest.iter().position(special).map(|found| at + found)
}

/// The content of the string spanning `start..end` (quotes included), escapes decoded.
///
/// Quotes are ASCII and never inside a multi-byte character, so the slices are on character
/// boundaries. Most strings hold no escape and are borrowed; the rest go through serde_json so
/// escapes (surrogate pairs included) decode exactly as it decodes them everywhere else.
fn decode(text: &str, start: usize, end: usize) -> Result<Cow<'_, str>, Malformed> {
    let quoted = text.get(start..end).ok_or_else(|| Malformed::at(start))?;
    let content = quoted.get(1..quoted.len().saturating_sub(1));
    let content = content.ok_or_else(|| Malformed::at(start))?;
    if !content.contains('\\') {
        return Ok(Cow::Borrowed(content));
    }
    serde_json::from_str::<String>(quoted)
        .map(Cow::Owned)
        .map_err(|err| Malformed {
            at: start,
            reason: format!("invalid JSON string: {}", without_position(&err)),
        })
}

/// The object `text` holds, built by serde_json without its own members named in `dropped`,
/// which are skipped without being built (in a twin section, the hub's `$metadata` is most of
/// the bytes). Only the object's own members: a key of that name deeper down is kept, for the
/// line's check to refuse (dropped at every level, a tag `{"a":{"$metadata":{"owner":"ops"}}}`
/// would read as `{"a":{}}` without a word).
pub(crate) fn object_without(
    text: &str,
    dropped: &'static [&'static str],
) -> serde_json::Result<Map<String, Value>> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let map = Without(dropped).deserialize(&mut reader)?;
    reader.end()?;
    Ok(map)
}

/// Builds an object without some keys; see [`object_without`].
struct Without(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Without {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Without {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if self.0.contains(&key.as_str()) {
                entries.next_value::<IgnoredAny>()?;
            } else {
                let value = entries.next_value::<Value>()?;
                map.insert(key, value);
            }
        }
        Ok(map)
    }
}

/// serde_json's message without its ` at line L column C` suffix, which would repeat (and, for
/// a slice of the line, contradict) the position this crate reports itself.
pub(crate) fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// The byte offset in `text` of the byte serde_json stopped at when it gave `err`.
///
/// serde_json counts lines from 1 and a line's bytes from 1, up to and including the byte it
/// stopped at (column 0 when it stopped before a line's first byte); the line's own text holds
/// no newline, but `text` passed to [`parse_line`](super::parse_line) may.
pub(crate) fn error_offset(text: &str, err: &serde_json::Error) -> usize {
    let line_start = match err.line() {
        0 | 1 => 0,
        line => text
            .match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(at, _)| at + 1),
    };
    (line_start + err.column().saturating_sub(1)).min(text.len())
}

/// Builds canonical JSON text: no whitespace, serde_json's string escapes, object keys in the
/// order written (or sorted, for maps), and a `,` before every key but an object's first.
#[derive(Default)]
pub(crate) struct Writer(String);

impl Writer {
    /// A writer that appends to `text`, which must be empty or end between two values (a
    /// plan's buffer ends with a line's newline).
    pub(crate) fn appending(text: String) -> Self {
        Writer(text)
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }

    /// Appends JSON text as is (`{`, `}`, `null`, `true`).
    pub(crate) fn raw(&mut self, text: &str) {
        self.0.push_str(text);
    }

    pub(crate) fn key(&mut self, key: &str) {
        if !self.0.ends_with(['{', '[']) && !self.0.is_empty() {
            self.0.push(',');
        }
        self.string(key);
        self.0.push(':');
    }

    pub(crate) fn field(&mut self, key: &str, value: &str) {
        self.key(key);
        self.string(value);
    }

    pub(crate) fn optional(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.field(key, value);
        }
    }

    /// Writes keys sorted whatever the `Map` implementation: serde_json's `preserve_order`
    /// feature, switched on by any crate in a build, would otherwise make output follow input.
    pub(crate) fn map(&mut self, map: &Map<String, Value>) {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.0.push('{');
        for (key, value) in entries {
            self.key(key);
            self.value(value);
        }
        self.0.push('}');
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.0.push_str("null"),
            Value::Bool(b) => self.0.push_str(if *b { "true" } else { "false" }),
            // A Number displays as its JSON text (integers exact, floats shortest round-trip).
            Value::Number(n) => {
                let _ = write!(self.0, "{n}");
            }
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                self.0.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.0.push(',');
                    }
                    self.value(item);
                }
                self.0.push(']');
            }
            Value::Object(map) => self.map(map),
        }
    }

    /// A JSON string with serde_json's escapes: `"`, `\` and control characters only.
    pub(crate) fn string(&mut self, s: &str) {
        self.0.push('"');
        let mut clean = 0;
        for (at, byte) in s.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Escaped bytes are ASCII, so `clean..at` lies on character boundaries.
            self.0.push_str(s.get(clean..at).unwrap_or_default());
            if escape.is_empty() {
                let _ = write!(self.0, "\\u{byte:04x}");
            } else {
                self.0.push_str(escape);
            }
            clean = at + 1;
        }
        self.0.push_str(s.get(clean..).unwrap_or_default());
        self.0.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Vec<(String, usize, Kind, String)> {
        let scanned = Scanned::new(text, 64).expect("shallow");
        let root = scanned.root().expect("root");
        let members = root.members().expect("members");
        let row = |m: Member<'_>| {
            (
                m.key.into_owned(),
                m.key_start,
                m.value.kind,
                m.value.text().into(),
            )
        };
        members.into_iter().map(row).collect()
    }

    #[test]
    fn members_carry_offsets_kinds_and_text() {
        let text = r#" {"a": 1, "b" :"x\"}", "c":{"d":[1,{"e":"]"}]}, "f":null,"g":true} "#;
        let found = members(text);
        assert_eq!(found[0], ("a".into(), 2, Kind::Number, "1".into()));
        assert_eq!(found[1], ("b".into(), 10, Kind::String, r#""x\"}""#.into()));
        assert_eq!(
            (found[2].2, found[2].3.as_str()),
            (Kind::Object, r#"{"d":[1,{"e":"]"}]}"#)
        );
        assert_eq!((found[3].2, found[4].2), (Kind::Null, Kind::Bool));
        assert_eq!(text.as_bytes()[found[4].1], b'"');
    }

    #[test]
    fn duplicate_keys_are_all_kept_in_order() {
        let found = members(r#"{"s":1,"s":2}"#);
        assert_eq!((found[0].3.as_str(), found[1].3.as_str()), ("1", "2"));
    }

    #[test]
    fn escaped_keys_and_strings_decode() {
        let scanned = Scanned::new(r#"{"st\u0061tus":"\u00e9\n"}"#, 64).expect("shallow");
        let members = scanned.root().and_then(|r| r.members()).expect("members");
        assert_eq!(members[0].key, "status");
        let value = members[0].value.string().expect("decodes");
        assert_eq!(value.as_deref(), Some("\u{e9}\n"));
    }

    #[test]
    fn empty_objects_and_unbalanced_text() {
        assert!(members("{}").is_empty() && members("{ }").is_empty());
        let scanned = Scanned::new(r#"{"a":[1}"#, 64).expect("shallow");
        assert!(scanned.root().is_err());
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(Scanned::new(&nested(64), 64).is_ok());
        assert_eq!(Scanned::new(&nested(65), 64).map(|_| ()), Err(64));
        let quoted = format!(r#"["{}\"{}"]"#, "[".repeat(99), "{".repeat(99));
        assert!(Scanned::new(&quoted, 64).is_ok());
    }

    #[test]
    fn finds_quotes_and_backslashes_in_every_position() {
        for len in 0..20 {
            for (at, special) in (0..len).flat_map(|at| [(at, b'"'), (at, b'\\')]) {
                let mut bytes = vec![b'a'; len];
                bytes[at] = special;
                if at + 1 < len {
                    bytes[at + 1] = b'"';
                }
                for from in 0..=at {
                    assert_eq!(
                        quote_or_backslash(&bytes, from),
                        Some(at),
                        "{len} {at} {from}"
                    );
                }
            }
            assert_eq!(quote_or_backslash(&vec![0xff; len], 0), None);
        }
        assert_eq!(string_end(br#""a\"b\\"x"#, 0).ok(), Some(8));
    }

    #[test]
    fn writer_escapes_like_serde_json_and_sorts_maps() {
        let mut out = Writer::default();
        let value =
            serde_json::json!({"z": [1, -2.5, null, true], "a": "q\"\\\n\u{1}\u{7f}\u{e9}"});
        out.map(value.as_object().expect("object"));
        let text = out.into_string();
        assert_eq!(text, serde_json::to_string(&value).expect("serializes"));
        assert!(text.starts_with(r#"{"a":"q\"\\\n\u0001"#), "{text}");
    }

    #[test]
    fn objects_are_built_without_dropped_keys_at_their_top_only() {
        let text = r#"{"$v":{"x":1},"a":{"$v":2,"b":[{"$v":3,"c":4}]},"d":"$v"}"#;
        let map = object_without(text, &["$v"]).expect("valid");
        let expected = serde_json::json!({"a": {"$v": 2, "b": [{"$v": 3, "c": 4}]}, "d": "$v"});
        assert_eq!(Value::Object(map), expected);
        assert!(object_without("[1]", &["$v"]).is_err());
    }

    #[test]
    fn error_offsets_point_at_the_byte_serde_json_stopped_at() {
        let offset = |text: &str| {
            let err = serde_json::from_str::<Value>(text).expect_err("invalid");
            error_offset(text, &err)
        };
        // The closing quote of a lone surrogate, the last digit of a number beyond a double.
        assert_eq!(offset(r#"{"a":"\ud800"}"#), 12);
        assert_eq!(offset(r#"{"a":1e999}"#), 9);
        assert_eq!(offset("{\"a\":\n 1e999}"), 11);
        assert_eq!(offset("{\"a\":1,\r\n\n\"b\":-1e999}"), 19);
        assert_eq!(offset(""), 0);
    }

    #[test]
    fn numbers_are_found_outside_strings_at_any_depth() {
        let text = r#"{"a":[1,"2 -3",{"k4":-4.5e+6}],"b":true,"c":null,"d":0}"#;
        let scanned = Scanned::new(text, 64).expect("shallow");
        let root = scanned.root().expect("root");
        let found: Vec<_> = root.numbers().collect();
        let at = |needle: &str| text.find(needle).expect("in text");
        assert_eq!(
            found,
            [(at("1"), "1"), (at("-4"), "-4.5e+6"), (at("0"), "0")]
        );
        let members = root.members().expect("members");
        let last: Vec<_> = members[3].value.numbers().collect();
        assert_eq!(last, [(at("0"), "0")]);
        assert_eq!(members[1].value.numbers().count(), 0);
    }

    #[test]
    fn kinds_describe_themselves() {
        assert_eq!(Kind::Array.describe(), "an array");
        assert_eq!(Kind::Null.describe(), "null");
    }
}
