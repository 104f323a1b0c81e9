//! Reading export files: one strict pass per line, every error at its line and column.
//!
//! A line goes through four gates, cheapest first: its length (checked before anything beyond
//! the limit is buffered), its nesting depth (before serde_json recurses), serde_json's
//! validation (the authority on JSON syntax and its error columns), and the
//! [`json`] scanner, which finds each field's position and refuses duplicate keys
//! where they matter. Only twin sections are built as `serde_json` values; every other field is
//! read straight from the text.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use super::check::Place;
use super::import_mode::ImportMode;
use super::json::{self, Kind, Malformed, Member, Raw, Scanned};
use super::line::{self, ExportLine};
use crate::error::{Error, Result};
use crate::identity::Status;
use crate::key::{DeviceId, DeviceKey, ModuleId};
use crate::twin::Section;

mod naming;

use naming::{about, key_in};
pub(super) use naming::{named, shown_name};

/// The longest line read, in bytes. Real lines are a few KiB (twin sections are capped at
/// 8 + 32 + 32 KB); the limit stops a file that is not an export from being buffered whole.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// The deepest nesting accepted. Twins nest at most 10 levels below three wrapper levels;
/// 64 leaves room for drift while keeping serde_json far from its own recursion limit.
pub(crate) const MAX_DEPTH: usize = 64;

/// What one line of an export file holds.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use failback::iothub::{parse_line, Parsed};
///
/// let parsed = parse_line(Path::new("devices.txt"), 3, r#"{"warning":"throttled"}"#)?;
/// assert!(matches!(parsed, Parsed::Skipped));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
// A line is consumed as soon as it is parsed; boxing would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// A device or module line.
    Device(ExportLine),
    /// A JSON object that shares no field with the line format: a hub warning, skipped and
    /// counted.
    Skipped,
}

/// Parses one line (without its line ending) of an export file; `path` and `line_no` only
/// locate errors.
///
/// A valid JSON object without `id` that carries no field of the line format, in any letter
/// case, is a hub warning and gives [`Parsed::Skipped`]. Unknown keys are ignored. `null` reads
/// like an absent field.
///
/// # Errors
///
/// [`Error::Parse`] with the 1-based byte column of the offending key or value, for: a line
/// over 1 MiB; nesting deeper than 64 levels; invalid JSON (serde_json's column); a value that
/// is not an object; a duplicate key in the line's object, `authentication`, `symmetricKey`,
/// `x509Thumbprint`, `capabilities` or `properties`; a field read from any of these objects
/// spelled in another letter case (`Tags`, `PrimaryKey`) with a value that is not `null`,
/// which would otherwise be ignored; a missing or invalid `id` or `moduleId`
/// (an object with a field of the line format, such as `moduleId`, `eTag` or `Id`, but no `id`
/// is a damaged line, not a warning); a missing or unknown `status` on a device line, and
/// `disabled` on a module line (modules cannot be disabled); a `statusReason` over 128
/// characters (the message gives its length, never its text); a twin key IoT Hub refuses
/// (empty, over 1 KB, holding `.`, `$`, a space or a control character, or deeper than 10
/// levels; the hub's own `$metadata` and `$version` are read, and dropped with what they hold,
/// at the top of desired and reported properties, where the hub writes them, and refused as
/// any `$` key is anywhere else: in tags, below the top, in an array); a number in
/// tags or desired properties that would be written back as another value (an integer beyond
/// 64 bits such as `123456789012345678901234567890`, which the hub keeps whole and this crate
/// holds as a double, or `-0`, the integer 0 to the hub and the double -0.0 here) or that no
/// double holds, at the number; a twin value serde_json cannot
/// hold that no check above finds (a string with a lone surrogate escape such as `"\ud800"`
/// in any section, a number no double holds in reported properties), inside the value, at the
/// byte where serde_json stopped reading it; an unknown `importMode` or `authentication.type`;
/// a symmetric key that is not base64 of 16 to 64 bytes, or only one of the two keys; a key
/// or thumbprint that is `""` (IoT Hub writes one it does not export as `null`); a thumbprint
/// that is not 40 or 64 hex digits, or two of different lengths; a `deviceScope` not of the form
/// `ms-azure-iot-edge://{edgeDeviceId}-{generationId}`; and a value of the wrong JSON type for
/// any of these fields. Messages never contain a key, only its
/// [`Fingerprint`](crate::Fingerprint). Once the line's `id` is read and valid, every further
/// message starts with the device it is about, `device "d7": `, or, once `moduleId` is read
/// too, the module, `module "m1" of device "d7": `. So does a duplicate key in the line's
/// object, wherever the line holds its one `id`; invalid JSON, and JSON nested too deep, name
/// the device only when the line starts with its `id`, as IoT Hub writes lines.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use failback::{Error, iothub::parse_line};
///
/// let err = parse_line(Path::new("devices.txt"), 7, r#"{"id":"a","status":"on"}"#).unwrap_err();
/// assert!(matches!(err, Error::Parse { line: 7, column: 20, .. }));
/// assert!(err.to_string().starts_with(r#"devices.txt:7:20: device "a": invalid status"#));
/// # Ok::<(), failback::Error>(())
/// ```
pub fn parse_line(path: &Path, line_no: u64, text: &str) -> Result<Parsed> {
    Context {
        path,
        line: line_no,
        offset: 0,
        export: false,
    }
    .parse(text)
}

/// Where errors of one line point: the file, the line, and how many bytes precede the text
/// being parsed (a byte order mark); and whether the line is a hub's export's.
#[derive(Clone, Copy)]
pub(super) struct Context<'p> {
    pub(super) path: &'p Path,
    pub(super) line: u64,
    pub(super) offset: usize,
    /// A hub's export line, which never holds `importMode`: one that does is an import file's
    /// line given as an export, whose absent fields would read as the device's values (a
    /// `deleteIfMatchETag` line as a live device with no tags).
    pub(super) export: bool,
}

/// The fields of the line format (`ExportImportDevice`), the ones read and the ones ignored.
/// An object without `id` that carries one of them, in any letter case, is a device or module
/// line damaged or written by another serializer, never a hub warning: skipping it would lose a
/// device without a word. `parentScopes`, last, is the one not read ([`READ_FIELDS`]).
const LINE_FIELDS: &[&str] = &[
    "id",
    "moduleId",
    "eTag",
    "importMode",
    "status",
    "statusReason",
    "authentication",
    "twinETag",
    "tags",
    "properties",
    "capabilities",
    "deviceScope",
    "parentScopes",
];

/// The top-level fields this reader reads: [`LINE_FIELDS`] but the last, `parentScopes`,
/// which the hub derives from `deviceScope`.
const READ_FIELDS: &[&str] = match LINE_FIELDS.split_last() {
    Some((_, read)) => read,
    None => &[],
};

/// The top-level fields of a line, each as found in the text.
#[derive(Clone, Copy, Default)]
struct Fields<'a> {
    id: Option<Raw<'a>>,
    module_id: Option<Raw<'a>>,
    e_tag: Option<Raw<'a>>,
    import_mode: Option<Raw<'a>>,
    status: Option<Raw<'a>>,
    status_reason: Option<Raw<'a>>,
    authentication: Option<Raw<'a>>,
    twin_e_tag: Option<Raw<'a>>,
    tags: Option<Raw<'a>>,
    properties: Option<Raw<'a>>,
    capabilities: Option<Raw<'a>>,
    device_scope: Option<Raw<'a>>,
}

impl Context<'_> {
    pub(super) fn error(&self, at: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            path: self.path.to_owned(),
            line: self.line,
            column: (self.offset + at) as u64 + 1,
            message: message.into(),
        }
    }

    pub(super) fn too_long(&self) -> Error {
        self.error(
            MAX_LINE_BYTES,
            format!(
                "line is longer than {MAX_LINE_BYTES} bytes (1 MiB); export lines are a few KiB, \
                 so this is not an IoT Hub export file"
            ),
        )
    }

    /// A crate error about the value at `at`, as a parse error with the original message; an
    /// [`Error::InvalidValue`] is renamed after the exact `field` of the line.
    pub(super) fn lift(&self, at: usize, field: &str, err: Error) -> Error {
        let message = match err {
            Error::InvalidValue { reason, .. } => Error::InvalidValue {
                field: field.into(),
                reason,
            }
            .to_string(),
            other => other.to_string(),
        };
        self.error(at, message)
    }

    pub(super) fn malformed(&self, err: Malformed) -> Error {
        self.error(err.at, err.reason)
    }

    pub(super) fn parse(&self, text: &str) -> Result<Parsed> {
        if text.len() > MAX_LINE_BYTES {
            return Err(self.too_long());
        }
        let scanned = Scanned::new(text, MAX_DEPTH).map_err(|at| {
            let message = format!(
                "JSON nested deeper than {MAX_DEPTH} levels; twins nest at most 10, so this is \
                 not an IoT Hub export line"
            );
            // Not yet known to be JSON: only an id at its start, as IoT Hub writes it, names it.
            named(text, self.error(at, message))
        })?;
        if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            let message = format!(
                "invalid JSON: {}; expected one JSON object per line",
                json::without_position(&err)
            );
            return Err(named(
                text,
                self.error(err.column().saturating_sub(1), message),
            ));
        }
        let root = scanned.root().map_err(|err| self.malformed(err))?;
        if root.kind != Kind::Object {
            let found = root.kind.describe();
            let message =
                format!("expected a JSON object (one device or module per line), found {found}");
            return Err(self.error(root.start, message));
        }
        let members = root.members().map_err(|err| self.malformed(err))?;
        // serde_json has checked the line: its members are known, so a doubled key is refused
        // naming the device whose line it is, wherever the line holds its id.
        self.unique("the line's object", &members)
            .map_err(|err| match key_in(&members) {
                Some(key) => about(&key, err),
                None => err,
            })?;
        let mut fields = Fields::default();
        for member in &members {
            let slot = match &*member.key {
                "id" => &mut fields.id,
                "moduleId" => &mut fields.module_id,
                "eTag" => &mut fields.e_tag,
                "importMode" => &mut fields.import_mode,
                "status" => &mut fields.status,
                "statusReason" => &mut fields.status_reason,
                "authentication" => &mut fields.authentication,
                "twinETag" => &mut fields.twin_e_tag,
                "tags" => &mut fields.tags,
                "properties" => &mut fields.properties,
                "capabilities" => &mut fields.capabilities,
                "deviceScope" => &mut fields.device_scope,
                // Unknown keys are a newer hub's additions; nothing here depends on them.
                _ => continue,
            };
            *slot = Some(member.value);
        }
        self.line_from(root, &members, fields)
    }

    fn line_from(
        &self,
        root: Raw<'_>,
        members: &[Member<'_>],
        fields: Fields<'_>,
    ) -> Result<Parsed> {
        let Some((id, id_at)) = self.string("id", fields.id)? else {
            return self.without_id(root, members);
        };
        let device = DeviceId::new(id).map_err(|err| self.lift(id_at, "id", err))?;
        // Filled in field by field, so that an error can name the device (or module) it is
        // about: in a file of a million lines, the id says which device to fix in the hub.
        let key = DeviceKey {
            device,
            module: None,
        };
        let mut line = ExportLine::new(key, Status::Enabled);
        self.fields_into(&mut line, root, members, fields)
            .and_then(|()| {
                // The rules on the values read, shared with lines built in code.
                line.check().map_err(|refused| {
                    self.error(at(root, fields, &refused.place), refused.message)
                })
            })
            .map_err(|err| about(&line.key, err))?;
        Ok(Parsed::Device(line))
    }

    /// Reads every field but `id` into `line`, `moduleId` first.
    fn fields_into(
        &self,
        line: &mut ExportLine,
        root: Raw<'_>,
        members: &[Member<'_>],
        fields: Fields<'_>,
    ) -> Result<()> {
        if let Some((module, at)) = self.string("moduleId", fields.module_id)? {
            let module = ModuleId::new(module).map_err(|err| self.lift(at, "moduleId", err))?;
            line.key.module = Some(module);
        }
        self.spelled("the line's object", members, READ_FIELDS)?;
        let is_module = line.key.module.is_some();
        line.status = match self.string("status", fields.status)? {
            Some((status, at)) => status
                .parse::<Status>()
                .map_err(|err| self.lift(at, "status", err))?,
            // Modules cannot be disabled, so a module line may leave status out.
            None if is_module => Status::Enabled,
            None => {
                return Err(self.error(
                    root.start,
                    "missing \"status\"; a device line needs \"enabled\" or \"disabled\"",
                ));
            }
        };
        if let Some((mode, at)) = self.string("importMode", fields.import_mode)? {
            if self.export {
                return Err(self.error(
                    at,
                    "importMode is a field of import files, and a hub's export never holds \
                     one: this is an import file's line (such as a plan's import.jsonl) given \
                     as an export; give the hub's export",
                ));
            }
            let mode = mode.parse::<ImportMode>();
            line.import_mode = Some(mode.map_err(|err| self.lift(at, "importMode", err))?);
        }
        (line.parent, line.device_scope) = line::scope(self, fields.device_scope)?;
        let properties = self
            .object("properties", fields.properties, &["desired", "reported"])?
            .unwrap_or_default();
        line.e_tag = self.owned("eTag", fields.e_tag)?;
        line.status_reason = self.owned("statusReason", fields.status_reason)?;
        line.authentication = line::authentication(self, fields.authentication)?;
        line.twin_e_tag = self.owned("twinETag", fields.twin_e_tag)?;
        line.tags = line::twin(self, Section::Tags, fields.tags)?;
        let desired = json::find(&properties, "desired");
        line.desired = line::twin(self, Section::Desired, desired)?;
        let reported = json::find(&properties, "reported");
        line.reported = line::twin(self, Section::Reported, reported)?;
        line.capabilities = line::capabilities(self, fields.capabilities)?;
        Ok(())
    }

    /// A line without `id` (absent or `null`): a hub warning when it carries no field of the
    /// line format (`null` fields count as absent), an error otherwise. A field in another
    /// letter case counts: `Id` or `ETag` is another serializer's device line, not a warning.
    fn without_id(&self, root: Raw<'_>, members: &[Member<'_>]) -> Result<Parsed> {
        let mut fields = members.iter().filter(|member| {
            member.value.kind != Kind::Null
                && LINE_FIELDS
                    .iter()
                    .any(|field| member.key.eq_ignore_ascii_case(field))
        });
        let Some(first) = fields.next() else {
            return Ok(Parsed::Skipped);
        };
        if let Some(id) = std::iter::once(first)
            .chain(fields)
            .find(|member| member.key.eq_ignore_ascii_case("id"))
        {
            let shown = shown_name(&id.key);
            return Err(self.error(
                id.key_start,
                format!(
                    "found {shown} but no \"id\"; keys are case-sensitive, and every device or \
                     module line needs its device id in \"id\""
                ),
            ));
        }
        let shown = shown_name(&first.key);
        Err(self.error(
            root.start,
            format!(
                "missing \"id\"; every device or module line needs its device id (this object \
                 carries {shown}, a field of device lines, so it is not a hub warning)"
            ),
        ))
    }

    /// The members of `object`, refusing a key that appears twice: readers disagree on which
    /// copy wins (serde_json keeps the last, others the first), so a duplicated `status` or key
    /// could mean one thing to this crate and another to IoT Hub.
    fn members<'a>(&self, name: &str, object: Raw<'a>) -> Result<Vec<Member<'a>>> {
        let members = object.members().map_err(|err| self.malformed(err))?;
        self.unique(name, &members)?;
        Ok(members)
    }

    /// Refuses the first member (by position) of the object `name` whose key an earlier member
    /// has.
    fn unique(&self, name: &str, members: &[Member<'_>]) -> Result<()> {
        let Some(member) = first_repeated(members) else {
            return Ok(());
        };
        let shown = shown_name(&member.key);
        Err(self.error(
            member.key_start,
            format!(
                "duplicate key {shown} in {name}; each key may appear once, because readers \
                 disagree on which copy wins"
            ),
        ))
    }

    /// Refuses a member spelled as one of the `known` keys in another letter case (`Tags`,
    /// `PrimaryKey`), unless its value is `null`. Keys are case-sensitive, so it would be read
    /// as an unknown key and ignored: a line from another serializer would lose its tags or
    /// keys without a word. (Enum *values* are another matter: they are read in any case.)
    fn spelled(&self, name: &str, members: &[Member<'_>], known: &[&str]) -> Result<()> {
        for member in members {
            if member.value.kind == Kind::Null || known.contains(&&*member.key) {
                continue;
            }
            if let Some(spelling) = known.iter().find(|k| k.eq_ignore_ascii_case(&member.key)) {
                let shown = shown_name(&member.key);
                return Err(self.error(
                    member.key_start,
                    format!(
                        "found {shown} in {name}, but the line format spells it \
                         {spelling:?}; keys are case-sensitive, so its value would be ignored"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An object field's members, or `None` when it is absent or `null`; a member spelled as
    /// one of the `known` keys in another letter case is refused ([`spelled`](Self::spelled)).
    pub(super) fn object<'a>(
        &self,
        field: &str,
        raw: Option<Raw<'a>>,
        known: &[&str],
    ) -> Result<Option<Vec<Member<'a>>>> {
        match raw {
            None => Ok(None),
            Some(raw) if raw.kind == Kind::Null => Ok(None),
            Some(raw) if raw.kind == Kind::Object => {
                let members = self.members(field, raw)?;
                self.spelled(field, &members, known)?;
                Ok(Some(members))
            }
            Some(raw) => Err(self.wrong_type(field, "an object or null", raw)),
        }
    }

    pub(super) fn wrong_type(&self, field: &str, expected: &str, raw: Raw<'_>) -> Error {
        self.error(
            raw.start,
            format!("{field} must be {expected}, found {}", raw.kind.describe()),
        )
    }

    /// A string field and its offset, or `None` when it is absent or `null`.
    pub(super) fn string<'a>(
        &self,
        field: &str,
        raw: Option<Raw<'a>>,
    ) -> Result<Option<(Cow<'a, str>, usize)>> {
        let Some(raw) = raw.filter(|raw| raw.kind != Kind::Null) else {
            return Ok(None);
        };
        match raw.string().map_err(|err| self.malformed(err))? {
            Some(text) => Ok(Some((text, raw.start))),
            None => Err(self.wrong_type(field, "a string or null", raw)),
        }
    }

    fn owned(&self, field: &str, raw: Option<Raw<'_>>) -> Result<Option<String>> {
        Ok(self.string(field, raw)?.map(|(text, _)| text.into_owned()))
    }
}

/// Where in the line the value a line's check refused stands: the field's value, or, for a twin
/// key, the key (the last of its name at each level, the copy a twin keeps).
fn at<'a>(root: Raw<'a>, fields: Fields<'a>, place: &Place) -> usize {
    fn member<'a>(object: Option<Raw<'a>>, name: &str) -> Option<Raw<'a>> {
        let members = object?.members().ok()?;
        members
            .iter()
            .rev()
            .find(|m| m.key == name)
            .map(|m| m.value)
    }
    let value = match place {
        Place::Status => fields.status,
        Place::StatusReason => fields.status_reason,
        Place::Keys => member(fields.authentication, "symmetricKey"),
        Place::Thumbprints => member(fields.authentication, "x509Thumbprint"),
        Place::DeviceScope => fields.device_scope,
        Place::Twin { section, path } => {
            let mut object = match *section {
                "tags" => fields.tags,
                "properties.desired" => member(fields.properties, "desired"),
                _ => member(fields.properties, "reported"),
            };
            let mut key_at = object.map(|raw| raw.start);
            for name in path {
                let Some(members) = object.and_then(|raw| raw.members().ok()) else {
                    break;
                };
                let Some(found) = members.iter().rev().find(|m| m.key == *name) else {
                    break;
                };
                key_at = Some(found.key_start);
                object = Some(found.value);
            }
            return key_at.unwrap_or(root.start);
        }
    };
    value.map_or(root.start, |raw| raw.start)
}

/// Objects up to this many members are checked for a repeated key pair by pair: every object of
/// a real line is (a line's object has twelve known keys), and comparing a few keys costs less
/// than hashing them into a set.
const PAIRWISE_MEMBERS: usize = 16;

/// The first member, by position, whose key an earlier member has. A larger object goes through
/// a set, in linear time: compared pair by pair, one valid 1 MiB line of 86,000 members would
/// take 12 s (2026-11, measured by hand in a release build; through the set, milliseconds). The
/// set is only asked whether it holds a key, never iterated, so the member found is the same on
/// every run.
fn first_repeated<'m, 'a>(members: &'m [Member<'a>]) -> Option<&'m Member<'a>> {
    if members.len() <= PAIRWISE_MEMBERS {
        return members.iter().enumerate().find_map(|(i, member)| {
            members[..i]
                .iter()
                .any(|earlier| earlier.key == member.key)
                .then_some(member)
        });
    }
    let mut seen = HashSet::with_capacity(members.len());
    members.iter().find(|member| !seen.insert(&*member.key))
}

/// Helpers shared with the tests of [`line`](super::line), which check fields through lines.
#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::iothub::{ExportReader, read_export, read_export_from, read_import_from};

    pub(crate) fn parse(text: &str) -> Result<Parsed> {
        parse_line(Path::new("devices.txt"), 9, text)
    }

    pub(crate) fn device(text: &str) -> ExportLine {
        match parse(text) {
            Ok(Parsed::Device(line)) => line,
            other => panic!("{text}: {other:?}"),
        }
    }

    /// The column and message of the error `text` gives, checking the line number.
    pub(crate) fn error(text: &str) -> (u64, String) {
        match parse(text) {
            Err(Error::Parse {
                line: 9,
                column,
                message,
                ..
            }) => (column, message),
            other => panic!("{text}: {other:?}"),
        }
    }

    /// The 1-based column of the first occurrence of `needle` in `text`.
    pub(crate) fn col(text: &str, needle: &str) -> u64 {
        text.find(needle)
            .map(|at| at as u64 + 1)
            .expect("needle in text")
    }

    /// A device line with `extra` appended to its members.
    pub(crate) fn with(extra: &str) -> String {
        format!(r#"{{"id":"dev-1","status":"enabled",{extra}}}"#)
    }

    /// The line and column of the error reading `file` gives.
    fn file_error(file: &[u8]) -> (u64, u64) {
        match read_export_from(Path::new("f"), file) {
            Err(Error::Parse { line, column, .. }) => (line, column),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hub_warnings_are_skipped_and_module_lines_need_no_status() {
        assert_eq!(
            parse(r#"{"warning":"x","id":null}"#).ok(),
            Some(Parsed::Skipped)
        );
        assert_eq!(parse("{}").ok(), Some(Parsed::Skipped));
        let line = device(r#"{"id":"edge-1","moduleId":"$edgeAgent"}"#);
        assert_eq!(line.status, Status::Enabled);
    }

    #[test]
    fn syntax_errors_point_where_serde_json_does() {
        let expected = "invalid JSON: key must be a string; expected one JSON object per line";
        assert_eq!(
            error(r#"{"id":"a",}"#).1,
            format!("device \"a\": {expected}")
        );
        assert_eq!(error(r#"{"eTag":"x",}"#), (13, expected.into()));
        assert_eq!(error(r#"{"id":"a" "#).0, 10);
        let (column, message) = error("");
        assert_eq!(column, 1);
        assert!(message.contains("EOF"), "{message}");
        let text = r#"{"id":"a","status":"enabled","eTag":"\ud800"}"#;
        let (column, message) = error(text);
        assert_eq!(column, col(text, r#""\ud800""#), "{message}");
        // Found reading eTag, once the id is known.
        assert!(
            message.starts_with(r#"device "a": invalid JSON string: "#),
            "{message}"
        );
    }

    #[test]
    fn non_objects_are_refused_at_their_first_byte() {
        let expected = "expected a JSON object (one device or module per line), found an array";
        assert_eq!(error("  [1]"), (3, expected.into()));
        assert!(error("42").1.ends_with("found a number"));
    }

    #[test]
    fn line_limit_is_one_mebibyte() {
        let base = with(r#""x":1"#);
        let exact = format!("{base}{}", " ".repeat(MAX_LINE_BYTES - base.len()));
        assert!(matches!(parse(&exact), Ok(Parsed::Device(_))));
        let over = format!("{exact} ");
        let (column, message) = error(&over);
        assert_eq!(column, MAX_LINE_BYTES as u64 + 1);
        assert!(message.contains("longer than 1048576 bytes"), "{message}");
        let file = format!("{exact}\r\n{over}\n{base}\n");
        assert_eq!(file_error(file.as_bytes()), (2, MAX_LINE_BYTES as u64 + 1));
    }

    /// The limit is on the line's text: a byte order mark before the first line is not counted
    /// (nor cuts the line short), though the column of the error counts it, as every column on
    /// that line does.
    #[test]
    fn line_limit_leaves_out_a_byte_order_mark() {
        let base = with(r#""x":1"#);
        let exact = format!("{base}{}", " ".repeat(MAX_LINE_BYTES - base.len()));
        let next = r#"{"id":"b","status":"enabled"}"#;
        for ending in ["\n", "\r\n"] {
            let file = format!("\u{feff}{exact}{ending}{next}{ending}");
            let export = read_export_from(Path::new("f"), file.as_bytes()).expect("reads");
            assert_eq!(export.lines.len(), 2, "{ending:?}");
            for over in [format!("{exact} {ending}{next}"), format!("{exact}   ")] {
                let file = format!("\u{feff}{over}");
                assert_eq!(file_error(file.as_bytes()), (1, MAX_LINE_BYTES as u64 + 4));
            }
        }
        // As every other column on the line: invalid UTF-8 after the mark.
        let mut file = "\u{feff}".as_bytes().to_vec();
        file.extend_from_slice(b"{\"id\":\"\xff\"}\n");
        assert_eq!(file_error(&file), (1, 11));
    }

    #[test]
    fn depth_64_is_read_and_65_is_refused() {
        // The line's object is level 1, tags level 2, so k arrays reach level 2 + k.
        let nested = |k| {
            with(&format!(
                r#""tags":{{"x":{}{}}}"#,
                "[".repeat(k),
                "]".repeat(k)
            ))
        };
        assert!(device(&nested(62)).tags.is_some());
        let text = nested(63);
        let (column, message) = error(&text);
        assert_eq!(column, col(&text, "[") + 62);
        assert!(message.contains("deeper than 64 levels"), "{message}");
    }

    #[test]
    #[rustfmt::skip]
    fn duplicate_keys_are_refused_at_every_security_level() {
        let (column, message) = error(r#"{"id":"a","status":"enabled","status":"disabled"}"#);
        assert_eq!(column, 30);
        assert!(message.starts_with(r#"device "a": duplicate key "status" in the line's object;"#), "{message}");
        assert_eq!(error(r#"{"id":"a","status":"enabled","st\u0061tus":"disabled"}"#).0, 30);
        for (extra, level) in [
            (r#""authentication":{"type":"sas","type":"none"}"#, "authentication"),
            (r#""authentication":{"symmetricKey":{"primaryKey":null,"primaryKey":null}}"#, "authentication.symmetricKey"),
            (r#""authentication":{"x509Thumbprint":{"primaryThumbprint":null,"primaryThumbprint":null}}"#, "authentication.x509Thumbprint"),
            (r#""capabilities":{"iotEdge":false,"iotEdge":true}"#, "capabilities"),
            (r#""properties":{"desired":{},"desired":{}}"#, "properties"),
        ] {
            let text = with(extra);
            let (column, message) = error(&text);
            assert!(message.contains(&format!(" in {level};")), "{message}");
            // The second copy is the last member of its object.
            let second = &extra[extra.rfind(',').map_or(0, |at| at + 1)..];
            assert_eq!(Some(column), text.rfind(second).map(|at| at as u64 + 1), "{text}");
        }
        // Twin sections are data, not security fields: serde_json's last-one-wins applies.
        assert_eq!(device(&with(r#""tags":{"a":1,"a":2}"#)).tags.expect("tags")["a"], 2);
    }

    #[test]
    fn member_names_shaped_like_keys_are_shown_by_fingerprint() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
        let fingerprint = crate::Fingerprint::of(key).to_string();
        // The key-shaped name holds the eleventh object below the section.
        let nested = |levels: usize| {
            let mut twin = format!(r#"{{"{key}":{{}}}}"#);
            for _ in 1..levels {
                twin = format!(r#"{{"n":{twin}}}"#);
            }
            twin
        };
        for (extra, start) in [
            (format!(r#""{key}":1,"{key}":2"#), "duplicate key \"<"),
            (
                format!(r#""tags":{{"a":{{"{key}":1,"{key}":2}}}},"tags":{{}}"#),
                "duplicate key \"tags\"",
            ),
            (
                format!(r#""authentication":{{"{key}":1,"{key}":2}}"#),
                "duplicate key \"<",
            ),
            (
                format!(r#""tags":{}"#, nested(11)),
                "tags nests objects deeper",
            ),
            (format!(r#""tags":{{"x.{key}":1}}"#), "twin key \"x.<"),
        ] {
            let (_, message) = error(&with(&extra));
            assert!(!message.contains(key), "{message}");
            assert!(message.contains(start), "{message}");
            if !start.ends_with("\"tags\"") {
                assert!(message.contains(&fingerprint), "{message}");
            }
        }
        // A long name is shown by its length and fingerprint: any prefix may be most of a key.
        let long = format!("{key}{key}{key}x");
        let (_, message) = error(&with(&format!(r#""{long}":1,"{long}":2"#)));
        assert!(!message.contains(&key[..8]), "{message}");
        let expected = format!(
            "duplicate key \"<73 characters, {}>\" in the line's object",
            crate::Fingerprint::of(&long)
        );
        assert!(message.contains(&expected), "{message}");
        // Other names are shown as they are.
        let (_, message) = error(&with(r#""tags":{"a":{"b c":1}}"#));
        assert!(message.contains(r#"twin key "b c" in tags"#), "{message}");
    }

    #[test]
    fn the_first_repeated_key_by_position_is_refused_in_small_and_large_objects() {
        for count in [4, PAIRWISE_MEMBERS, PAIRWISE_MEMBERS + 1, 5_000] {
            // `b` appears again before `a` does: `b`'s second copy is the first repeat, though
            // `a`'s first copy comes earlier.
            let mut keys: Vec<String> = (0..count).map(|i| format!("k{i}")).collect();
            keys[0] = "a".into();
            keys[1] = "b".into();
            keys.extend(["b", "a"].map(String::from));
            let members: Vec<String> = keys.iter().map(|k| format!(r#""{k}":null"#)).collect();
            let members = members.join(",");
            for (text, level) in [
                (
                    format!(r#"{{"id":"dev-1","status":"enabled",{members}}}"#),
                    "the line's object",
                ),
                (
                    with(&format!(r#""capabilities":{{{members}}}"#)),
                    "capabilities",
                ),
            ] {
                let (column, message) = error(&text);
                let second_b = text.rfind(r#""b":null"#).map(|at| at as u64 + 1);
                assert_eq!(Some(column), second_b, "{count} members, {level}");
                let expected = format!(r#"device "dev-1": duplicate key "b" in {level};"#);
                assert!(message.starts_with(&expected), "{message}");
            }
        }
    }

    /// A line just under the limit, of 86,000 distinct members, is read, and one repeat at its
    /// end is found. (Speed is not asserted here, tests are never timed: compared pair by
    /// pair, this line took 12 s in a release build; through the set, milliseconds, measured
    /// by hand in review, 2026-11-22.)
    #[test]
    fn a_line_of_many_members_is_read_and_a_late_repeat_found() {
        let members: Vec<String> = (0..86_000).map(|i| format!(r#""k{i:05}":0"#)).collect();
        let text = with(&members.join(","));
        assert!(text.len() <= MAX_LINE_BYTES);
        assert!(matches!(parse(&text), Ok(Parsed::Device(_))));
        let repeated = with(&format!(r#"{},"k00007":1"#, members.join(",")));
        let (column, message) = error(&repeated);
        assert_eq!(
            Some(column),
            repeated.rfind(r#""k00007""#).map(|at| at as u64 + 1)
        );
        assert!(message.contains(r#"duplicate key "k00007""#), "{message}");
    }

    #[test]
    #[rustfmt::skip]
    fn a_field_in_another_letter_case_is_refused_not_ignored() {
        for (extra, found, level) in [
            (r#""Tags":{"site":"x"}"#, "Tags", "the line's object"),
            (r#""StatusReason":"lost""#, "StatusReason", "the line's object"),
            (r#""authentication":{"SymmetricKey":{}}"#, "SymmetricKey", "authentication"),
            (r#""authentication":{"symmetricKey":{"PrimaryKey":"x"}}"#, "PrimaryKey", "authentication.symmetricKey"),
            (r#""authentication":{"x509Thumbprint":{"secondarythumbprint":"x"}}"#, "secondarythumbprint", "authentication.x509Thumbprint"),
            (r#""capabilities":{"IotEdge":true}"#, "IotEdge", "capabilities"),
            (r#""properties":{"Desired":{"a":1}}"#, "Desired", "properties"),
        ] {
            let text = with(extra);
            let (column, message) = error(&text);
            assert_eq!(Some(column), text.find(&format!("\"{found}\"")).map(|at| at as u64 + 1), "{text}");
            assert!(message.starts_with(&format!(r#"device "dev-1": found {found:?} in {level}, but the line format spells it"#)), "{message}");
        }
        // Before the missing field it stands for, and nothing to lose when null.
        let (_, message) = error(r#"{"id":"a","Status":"disabled"}"#);
        assert!(message.starts_with(r#"device "a": found "Status" in the line's object"#), "{message}");
        assert!(device(&with(r#""Tags":null,"ParentScopes":["x"],"tagsExtra":{}"#)).tags.is_none());
        // Without an id, the missing id is what the line lacks.
        let (_, message) = error(r#"{"Id":"a","status":"enabled"}"#);
        assert!(message.starts_with(r#"found "Id" but no "id""#), "{message}");
    }

    #[test]
    fn ids_and_statuses_are_checked_where_they_stand() {
        let (column, message) = error(r#"{"status":"enabled"}"#);
        assert_eq!(column, 1);
        assert!(
            message.starts_with(r#"missing "id"; every device or module line needs its device id"#),
            "{message}"
        );
        let text = r#"{"id":"a b","status":"enabled"}"#;
        let (column, message) = error(text);
        assert_eq!(column, col(text, r#""a b""#));
        assert!(
            message.starts_with(r#"invalid device id "a b""#),
            "{message}"
        );
        let text = r#"{"id":"a","moduleId":"","status":"enabled"}"#;
        assert_eq!(error(text).0, col(text, r#""""#));
        let (column, message) = error(r#" {"id":"a"}"#);
        assert_eq!(column, 2);
        assert!(
            message.starts_with(r#"device "a": missing "status""#),
            "{message}"
        );
        let text = r#"{"id":"a","status":"on"}"#;
        let (column, message) = error(text);
        assert_eq!(column, col(text, r#""on""#));
        assert_eq!(
            message,
            r#"device "a": invalid status: unknown status "on"; expected enabled or disabled"#
        );
        let text = r#"{"id":"a","status":"enabled","importMode":"merge"}"#;
        let (column, message) = error(text);
        assert_eq!(column, col(text, r#""merge""#));
        assert!(
            message.starts_with(r#"device "a": invalid importMode: unknown import mode"#),
            "{message}"
        );
    }

    #[test]
    fn errors_after_the_id_name_the_device_or_module() {
        let text = r#"{"id":"d7","status":"on"}"#;
        let expected =
            r#"device "d7": invalid status: unknown status "on"; expected enabled or disabled"#;
        assert_eq!(error(text), (col(text, r#""on""#), expected.into()));
        let text = r#"{"id":"d7","moduleId":"m1","tags":{"a.b":1}}"#;
        let (column, message) = error(text);
        assert_eq!(column, col(text, r#""a.b""#));
        assert!(
            message.starts_with(r#"module "m1" of device "d7": twin key "a.b" in tags holds '.'"#),
            "{message}"
        );
        let text = r#"{"id":"d7","moduleId":"m1","status":"enabled","statusReason":1}"#;
        assert!(
            error(text)
                .1
                .starts_with(r#"module "m1" of device "d7": statusReason must be a string"#)
        );
        // A module id that is not one leaves the device as what is known.
        let text = r#"{"id":"d7","moduleId":"m 1","status":"enabled"}"#;
        assert!(
            error(text)
                .1
                .starts_with(r#"device "d7": invalid module id "m 1""#)
        );
        // Before the id is read, or when it is not one, there is no device to name.
        for (text, start) in [
            (
                r#"{"id":"d 7","status":"on"}"#,
                r#"invalid device id "d 7""#,
            ),
            (
                r#"{"id":"d7","status":"on",}"#,
                r#"device "d7": invalid JSON"#,
            ),
            (r#"{"status":"on","statusReason":"x"}"#, r#"missing "id""#),
        ] {
            let message = error(text).1;
            assert!(message.starts_with(start), "{message}");
        }
    }

    #[test]
    fn errors_found_before_the_fields_are_read_name_the_device_whose_id_the_line_holds() {
        for (text, at, start) in [
            (
                r#"{"id":"sensor-0042","status":"enabled","status":"disabled"}"#,
                r#""status":"disabled""#,
                r#"device "sensor-0042": duplicate key "status" in the line's object"#,
            ),
            (
                r#"{"eTag":"AAA=","eTag":"AAB=","id":"sensor-0042","status":"enabled"}"#,
                r#""eTag":"AAB=""#,
                r#"device "sensor-0042": duplicate key "eTag" in the line's object"#,
            ),
            (
                r#"{"status":"enabled","moduleId":"m1","id":"d\u0037","x":1,"x":2}"#,
                r#""x":2"#,
                r#"module "m1" of device "d7": duplicate key "x""#,
            ),
            // A module id that is not one leaves the device; an id twice names no device.
            (
                r#"{"id":"d7","moduleId":"m 1","x":1,"x":2}"#,
                r#""x":2"#,
                r#"device "d7": duplicate key "x""#,
            ),
            (
                r#"{"id":"d7","id":"d8","status":"enabled"}"#,
                r#""id":"d8""#,
                r#"duplicate key "id""#,
            ),
            (
                r#"{"id":"d 7","status":"enabled","status":"disabled"}"#,
                r#""status":"disabled""#,
                r#"duplicate key "status""#,
            ),
        ] {
            let (column, message) = error(text);
            assert_eq!(column, col(text, at), "{text}");
            assert!(message.starts_with(start), "{text}: {message}");
        }
        // Too deep to be scanned: an id at the start, as IoT Hub writes lines, names it.
        let deep = |start: &str| format!(r#"{start}"tags":{{"x":{}}}}}"#, "[".repeat(70));
        let (_, message) = error(&deep(r#"{"id":"sensor-0042","status":"enabled","#));
        assert!(
            message.starts_with(r#"device "sensor-0042": JSON nested deeper than 64 levels"#),
            "{message}"
        );
        let (_, message) = error(&deep(r#"{"status":"enabled","#));
        assert!(message.starts_with("JSON nested deeper"), "{message}");
    }

    #[test]
    fn status_reasons_over_128_characters_are_refused_at_the_value_without_showing_them() {
        let reason = |text: &str| with(&format!(r#""statusReason":"{text}""#));
        // Over the limit in bytes, within it in characters.
        let line = device(&reason(&"é".repeat(128)));
        assert_eq!(line.status_reason, Some("é".repeat(128)));
        // An escape is the one character it stands for.
        let line = device(&reason(&r"\u00e9".repeat(128)));
        assert_eq!(line.status_reason, Some("é".repeat(128)));
        for (long, length) in [
            ("x".repeat(129), 129),
            ("é".repeat(129), 129),
            ("😀".repeat(200), 200),
            (r"\n".repeat(129), 129),
        ] {
            let text = reason(&long);
            let (column, message) = error(&text);
            assert_eq!(column, col(&text, r#""statusReason""#) + 15, "{message}");
            let expected = format!(
                "device \"dev-1\": statusReason is {length} characters long, but IoT Hub takes \
                 at most 128, so an import plan carrying it would be refused on every run"
            );
            assert!(message.starts_with(&expected), "{message}");
            let excerpt: String = long.chars().take(4).collect();
            assert!(!message.contains(&excerpt), "{message}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn wrong_types_are_refused_at_the_value() {
        for (extra, expected) in [
            (r#""moduleId":7"#, "moduleId must be a string or null, found a number"),
            (r#""eTag":{}"#, "eTag must be a string or null, found an object"),
            (r#""importMode":true"#, "importMode must be a string or null, found a boolean"),
            (r#""statusReason":[]"#, "statusReason must be a string or null, found an array"),
            (r#""authentication":"sas""#, "authentication must be an object or null, found a string"),
            (r#""authentication":{"type":1}"#, "authentication.type must be a string or null"),
            (r#""authentication":{"symmetricKey":[]}"#, "authentication.symmetricKey must be an object or null"),
            (r#""authentication":{"symmetricKey":{"primaryKey":1}}"#, "authentication.symmetricKey.primaryKey must be a string or null"),
            (r#""authentication":{"x509Thumbprint":true}"#, "authentication.x509Thumbprint must be an object or null"),
            (r#""authentication":{"x509Thumbprint":{"secondaryThumbprint":0}}"#, "authentication.x509Thumbprint.secondaryThumbprint must be a string"),
            (r#""twinETag":1"#, "twinETag must be a string or null"),
            (r#""tags":[]"#, "tags must be an object or null"),
            (r#""properties":1"#, "properties must be an object or null"),
            (r#""properties":{"desired":"x"}"#, "properties.desired must be an object or null"),
            (r#""properties":{"reported":1}"#, "properties.reported must be an object or null"),
            (r#""capabilities":true"#, "capabilities must be an object or null"),
            (r#""capabilities":{"iotEdge":"yes"}"#, "capabilities.iotEdge must be a boolean or null, found a string"),
            (r#""deviceScope":{}"#, "deviceScope must be a string or null"),
        ] {
            let text = with(extra);
            let (column, message) = error(&text);
            // Every bad value here follows the last colon of its line.
            assert_eq!(Some(column), text.rfind(':').map(|at| at as u64 + 2), "{text}");
            assert!(message.strip_prefix(r#"device "dev-1": "#).is_some_and(|m| m.starts_with(expected)), "{message}");
        }
        let text = r#"{"id":1,"status":"enabled"}"#;
        assert_eq!(error(text), (col(text, "1"), "id must be a string or null, found a number".into()));
        let text = r#"{"id":"a","status":false}"#;
        assert_eq!(error(text), (col(text, "false"), r#"device "a": status must be a string or null, found a boolean"#.into()));
    }

    #[test]
    fn a_line_cut_short_or_not_utf8_still_names_its_device() {
        // Cut short, as damaged files most often are: the id at the start names the device.
        let (_, message) = error(r#"{"id":"d7","moduleId":"m1","eTag":"ZXRh"#);
        assert!(
            message.starts_with(r#"module "m1" of device "d7": invalid JSON: EOF"#),
            "{message}"
        );
        let (_, message) = error(r#" { "id" : "d7" , "status":"enab"#);
        assert!(
            message.starts_with(r#"device "d7": invalid JSON"#),
            "{message}"
        );
        // Nothing to name: the id not first, not a valid id, or not closed.
        for text in [
            r#"{"id":"d7","moduleId":"m"#,
            r#"{"status":"enabled","id":"d7""#,
            r#"{"id":"has space","#,
            r#"{"id":"d7"#,
            r#"{"id":"d\u0037","#,
        ] {
            let (_, message) = error(text);
            assert!(message.starts_with("invalid JSON"), "{text}: {message}");
        }
        let file = b"{\"id\":\"dev-7\",\"status\":\"enabled\",\"statusReason\":\"caf\xe9\"}\n";
        match read_export_from(Path::new("f"), &file[..]) {
            Err(Error::Parse {
                column, message, ..
            }) => {
                assert_eq!(column, 53);
                assert!(
                    message.starts_with(r#"device "dev-7": line is not valid UTF-8"#),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_import_line_given_as_an_export_is_refused_at_its_mode() {
        let text = r#"{"id":"x","eTag":"p1","importMode":"deleteIfMatchETag","status":"enabled"}"#;
        let whole =
            ExportReader::new("secondary.jsonl", text.as_bytes()).collect::<Result<Vec<_>>>();
        match whole {
            Err(Error::Parse {
                line: 1,
                column,
                message,
                ..
            }) => {
                assert_eq!(column, col(text, r#""deleteIfMatchETag""#));
                assert!(
                    message.starts_with(r#"device "x": importMode"#),
                    "{message}"
                );
                assert!(message.contains("import file"), "{message}");
                assert!(!message.contains("  "), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // An import file read as one keeps its modes.
        let import = read_import_from(Path::new("import.jsonl"), text.as_bytes()).expect("reads");
        assert_eq!(
            import.lines[0].import_mode,
            Some(ImportMode::DeleteIfMatchETag)
        );
    }

    #[test]
    fn files_skip_blank_lines_and_a_bom_and_count_warnings() {
        let (a, b) = (
            r#"{"id":"a","status":"enabled"}"#,
            r#"{"id":"b","status":"enabled"}"#,
        );
        let file = format!("\u{feff}{a}\r\n\n  \r\n{{\"hub\":\"warning\"}}\n{b}");
        let export = read_export_from(Path::new("f"), file.as_bytes()).expect("reads");
        assert_eq!((export.lines.len(), export.skipped), (2, 1));
        // Columns count the byte order mark, as an editor shows the raw line.
        assert_eq!(file_error("\u{feff}{\"id\":1}".as_bytes()), (1, 10));
        assert_eq!(file_error(b"\n{\"id\":\"\xff\"}\n"), (2, 8));
    }

    #[test]
    fn missing_files_are_io_errors_with_their_path() {
        let path = Path::new("/nonexistent/failback/devices.txt");
        let err = read_export(path).expect_err("no such file");
        assert!(
            matches!(&err, Error::Io { path: p, .. } if p == path),
            "{err}"
        );
    }

    #[test]
    fn a_key_twice_is_refused_at_its_second_line() {
        let file = concat!(
            "{\"id\":\"a\",\"status\":\"enabled\"}\n",
            "{\"id\":\"a\",\"moduleId\":\"m\"}\n",
            "\n",
            "{\"status\":\"disabled\",\"id\":\"a\"}\n",
        );
        let err = read_export_from(Path::new("f"), file.as_bytes()).unwrap_err();
        match err {
            Error::Parse {
                line: 4,
                column: 1,
                message,
                ..
            } => assert!(
                message.starts_with(r#"device "a" appears twice in this export (first at line 1)"#),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        let twice = "{\"id\":\"a\",\"moduleId\":\"m\"}\n{\"id\":\"a\",\"moduleId\":\"m\"}\n";
        let err = read_export_from(Path::new("f"), twice.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"f:2:1: module "m" of device "a""#),
            "{err}"
        );
    }
}
