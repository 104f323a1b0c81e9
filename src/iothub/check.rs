//! What a line may hold: the rules on a line's values that its reader applies once the line is
//! read, in one place, so that a line built in code through [`ExportLine`]'s public fields is
//! held to them as a line read from a file is.
//!
//! A line the reader would refuse must not reach a merge any other way: a plan built on it
//! writes an import line its own reader refuses (two thumbprints of different lengths), or one
//! the hub refuses on every run (a disabled module, a long `statusReason`). The rules that
//! concern the text itself (its JSON, duplicate keys, letter case, field types, numbers a
//! double would round) stay with the reader: a typed line cannot break them.

use serde_json::{Map, Value};

use super::lift::Side;
use super::line::ExportLine;
use super::reader::{MAX_DEPTH, shown_name};
use crate::credentials::Pair;
use crate::error::{Error, Result};
use crate::identity::Status;
use crate::key::DeviceId;
use crate::twin::{self, KeyProblem, MAX_DEPTH as MAX_TWIN_DEPTH, MAX_KEY_BYTES, Section};

/// IoT Hub's limit on `statusReason`, in characters.
const MAX_STATUS_REASON_CHARS: usize = 128;

/// What every `deviceScope` starts with.
pub(super) const SCOPE_PREFIX: &str = "ms-azure-iot-edge://";

/// A value of a line that its reader refuses: where it stands, and why.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) place: Place,
    /// What is wrong, as the reader's message says it (without the device).
    pub(crate) message: String,
}

/// Which value of a line [`Refused`] is about, for the reader to point at it in the text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Status,
    StatusReason,
    /// `authentication.symmetricKey`.
    Keys,
    /// `authentication.x509Thumbprint`.
    Thumbprints,
    DeviceScope,
    /// A twin key: its section (`tags`, `properties.desired`, `properties.reported`) and the
    /// keys leading to it from the section, itself last.
    Twin {
        section: &'static str,
        path: Vec<String>,
    },
}

impl Place {
    /// The field as the line format names it.
    fn field(&self) -> &'static str {
        match self {
            Place::Status => "status",
            Place::StatusReason => "statusReason",
            Place::Keys => "authentication.symmetricKey",
            Place::Thumbprints => "authentication.x509Thumbprint",
            Place::DeviceScope => "deviceScope",
            Place::Twin { section, .. } => section,
        }
    }
}

impl ExportLine {
    /// Refuses a value the reader refuses once a line is read: a disabled module, a
    /// `statusReason` over 128 characters, one symmetric key of two, two thumbprints of
    /// different lengths, a `deviceScope` not of the form
    /// `ms-azure-iot-edge://{edgeDeviceId}-{generationId}` or a [`parent`](Self::parent) other
    /// than the edge device it names, and a twin key IoT Hub does not store (empty, over 1 KB,
    /// holding `.`, `$`, a space or a control character, or deeper than 10 levels) or a twin
    /// value nested deeper than the reader reads. `$metadata` and `$version` at the top of
    /// desired and reported properties are not checked: the reader drops them, and so does the
    /// lift. Anywhere else (in tags, below the top, in an array) they are refused as any key
    /// holding `$` is: the hub writes them nowhere else.
    ///
    /// `importMode` is not checked here: an import file's line holds one, and an export's never
    /// does, which only the reader of the file knows.
    pub(crate) fn check(&self) -> Result<(), Refused> {
        self.check_status()?;
        self.check_status_reason()?;
        self.check_credentials()?;
        self.check_scope()?;
        self.check_twin_sections()
    }

    /// Refuses a disabled module.
    fn check_status(&self) -> Result<(), Refused> {
        if self.key.module.is_some() && self.status == Status::Disabled {
            // IoT Hub keeps no status for a module: an import would leave it enabled, and a
            // plan built on the line would count a disable that never happens.
            return refused(
                Place::Status,
                "status is disabled, but IoT Hub modules cannot be disabled; disable the device \
                 to block it"
                    .into(),
            );
        }
        Ok(())
    }

    /// Refuses a `statusReason` over [`MAX_STATUS_REASON_CHARS`] characters.
    fn check_status_reason(&self) -> Result<(), Refused> {
        if let Some(reason) = &self.status_reason {
            // The docs say "characters" without saying which; Unicode characters (escapes
            // decoded) is an inference. A reason within the limit in bytes is within it in
            // characters, which spares counting almost every reason.
            let length = || reason.chars().count();
            if reason.len() > MAX_STATUS_REASON_CHARS && length() > MAX_STATUS_REASON_CHARS {
                let length = length();
                // The text is not shown: it is long, and a free-text field may hold anything.
                return refused(
                    Place::StatusReason,
                    format!(
                        "statusReason is {length} characters long, but IoT Hub takes at most \
                         {MAX_STATUS_REASON_CHARS}, so an import plan carrying it would be \
                         refused on every run; shorten it"
                    ),
                );
            }
        }
        Ok(())
    }

    /// Refuses one symmetric key of two, and two thumbprints of different lengths.
    fn check_credentials(&self) -> Result<(), Refused> {
        let Some(auth) = &self.authentication else {
            return Ok(());
        };
        if let Some(Pair { primary, secondary }) = &auth.keys {
            if primary.is_some() != secondary.is_some() {
                return refused(
                    Place::Keys,
                    "only one of primaryKey and secondaryKey is set; IoT Hub needs both keys \
                     set or both null"
                        .into(),
                );
            }
        }
        if let Some(Pair {
            primary: Some(a),
            secondary: Some(b),
        }) = &auth.thumbprints
        {
            let (a, b) = (a.as_str().len(), b.as_str().len());
            if a != b {
                return refused(
                    Place::Thumbprints,
                    format!(
                        "primaryThumbprint has {a} hex digits and secondaryThumbprint {b}; \
                         IoT Hub needs both SHA-1 (40) or both SHA-256 (64)"
                    ),
                );
            }
        }
        Ok(())
    }

    /// Refuses a `deviceScope` not of the form `ms-azure-iot-edge://{edgeDeviceId}-{generationId}`,
    /// and a [`parent`](Self::parent) other than the edge device it names.
    fn check_scope(&self) -> Result<(), Refused> {
        let owner = match self.device_scope.as_deref().map(scope_owner).transpose() {
            Ok(owner) => owner.flatten(),
            Err(message) => return refused(Place::DeviceScope, message),
        };
        // The parent is derived from the scope when reading, and only the scope is written: a
        // parent the scope does not name would be merged, and planned, as another device's.
        if owner != self.parent {
            let name = |id: Option<&DeviceId>| id.map_or("none".into(), |id| format!("{id:?}"));
            return refused(
                Place::DeviceScope,
                format!(
                    "parent is {}, but deviceScope names {}; the parent is the edge device the \
                     scope names, and only the scope is written",
                    name(self.parent.as_ref()),
                    name(owner.as_ref())
                ),
            );
        }
        Ok(())
    }

    /// Refuses a twin key IoT Hub does not store, or a twin value nested deeper than the reader
    /// reads, in any section ([`check_twin`]).
    fn check_twin_sections(&self) -> Result<(), Refused> {
        // Levels of the line's JSON above each section's members: the line's object, then
        // `tags`, or `properties` and `desired`.
        let sections = [
            (Section::Tags, &self.tags, 2),
            (Section::Desired, &self.desired, 3),
            (Section::Reported, &self.reported, 3),
        ];
        for (section, object, above) in sections {
            if let Some(object) = object {
                let skipped = twin::hub_managed(section);
                let section = section.as_str();
                check_twin(section, object, skipped, 1, above).map_err(|(path, message)| {
                    Refused {
                        place: Place::Twin { section, path },
                        message,
                    }
                })?;
            }
        }
        Ok(())
    }
}

/// A line refused at `place`, for `message`.
fn refused(place: Place, message: String) -> Result<(), Refused> {
    Err(Refused { place, message })
}

/// The edge device a `deviceScope` names; none for an empty scope (inference from the service
/// API, which returns "" rather than omitting the field). The generation id is what follows the
/// last `-`: device ids may contain `-`, generation ids do not.
pub(super) fn scope_owner(scope: &str) -> Result<Option<DeviceId>, String> {
    if scope.is_empty() {
        return Ok(None);
    }
    let parts = scope
        .strip_prefix(SCOPE_PREFIX)
        .and_then(|rest| rest.rsplit_once('-'))
        .filter(|(device, generation)| !device.is_empty() && !generation.is_empty());
    let Some((device, _generation)) = parts else {
        return Err(
            "deviceScope must look like ms-azure-iot-edge://{edgeDeviceId}-{generationId}".into(),
        );
    };
    DeviceId::new(device)
        .map(Some)
        .map_err(|err| err.to_string())
}

/// Refuses a twin key IoT Hub would not store, or one nested deeper than it allows, in
/// `object` at `depth` (a section's own keys are at 1), with the keys leading to it from the
/// section; and a value nested deeper than the reader reads, the line's levels `above` the
/// object's members counted. The members of `object` named in `skipped` (the hub's counters,
/// at the top of desired and reported properties) are passed over with what they hold; below
/// the top nothing is, so a `$metadata` there is refused as any `$` key is (skipped at every
/// level, they would be dropped by the reader, with all they held, anywhere).
///
/// A key the hub refuses can only mean a damaged or hand-made line: a `.` would otherwise
/// become nesting once the twin is split into dotted paths, and a `$` key would be skipped as
/// the hub's own. An array is one value to the merge, kept and written back whole, but the
/// objects in it are the twin's objects all the same: their keys and their depth are held to
/// the same rules, which a plan's import line would otherwise break on every run (a key holding
/// `.` inside an array would go through to the plan). The walk never goes past level 11.
fn check_twin(
    section: &str,
    object: &Map<String, Value>,
    skipped: &[&str],
    depth: usize,
    above: usize,
) -> Result<(), (Vec<String>, String)> {
    for (key, value) in object {
        if skipped.contains(&key.as_str()) {
            continue;
        }
        let refused = |message| Err((vec![key.clone()], message));
        // Only shown when refused: most lines hold none, and showing a name looks for a key.
        let shown = || shown_name(key);
        let problem = twin::key_problem(key).map(|problem| match problem {
            KeyProblem::Empty => "is empty".to_owned(),
            KeyProblem::Long(bytes) => format!("is {bytes} bytes long, at most {MAX_KEY_BYTES}"),
            KeyProblem::Holds(c) => format!("holds {c:?}"),
        });
        if let Some(problem) = problem {
            let shown = shown();
            return refused(format!(
                "twin key {shown} in {section} {problem}; IoT Hub twin keys are 1 to \
                 {MAX_KEY_BYTES} bytes without '.', '$', spaces or control characters (its own \
                 $metadata and $version aside, at the top of desired and reported properties \
                 only)"
            ));
        }
        match value {
            // The `depth`-th object below the section, an empty one too.
            Value::Object(_) if depth > MAX_TWIN_DEPTH => {
                let shown = shown();
                return refused(format!(
                    "{section} nests objects deeper than {MAX_TWIN_DEPTH} levels at key {shown}; \
                     IoT Hub twins nest at most {MAX_TWIN_DEPTH} levels"
                ));
            }
            Value::Object(inner) => {
                check_twin(section, inner, &[], depth + 1, above + 1).map_err(|(mut path, m)| {
                    path.insert(0, key.clone());
                    (path, m)
                })?
            }
            // At level `above + 1` of the line's JSON (the line's object is level 1).
            Value::Array(_) if !twin::nests_within(value, above + 1, MAX_DEPTH) => {
                let shown = shown();
                return refused(format!(
                    "the value of twin key {shown} in {section} nests deeper than the \
                     {MAX_DEPTH} levels of JSON an export line may hold"
                ));
            }
            Value::Array(_) => {
                if let Err(reason) = twin::leaf_problem(value, depth - 1) {
                    let shown = shown();
                    return refused(format!("twin key {shown} in {section}: {reason}"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The lines of one snapshot a failback lifts (`side`'s), each held to the reader's rules
/// ([`ExportLine::check`]) and refused if it carries an import mode: a line built in code is
/// refused as the reader refuses it when read, and an import file's line (a plan's, with
/// `deleteIfMatchETag`, say) is not a hub's export, whose absent fields would read as the
/// device's values.
pub(super) fn checked<L>(lines: L, side: Side) -> impl Iterator<Item = Result<ExportLine>> + Send
where
    L: IntoIterator<Item = Result<ExportLine>>,
    L::IntoIter: Send,
{
    lines.into_iter().map(move |line| {
        let line = line?;
        match line.check_as_export() {
            Ok(()) => Ok(line),
            Err((field, reason)) => Err(Error::InvalidValue {
                field: format!("{field} of {} in the {} export", line.key, side.as_str()),
                reason,
            }),
        }
    })
}

impl ExportLine {
    /// Refuses what [`checked`] refuses of one line, with the field it is about: a value its
    /// reader refuses ([`check`](Self::check)), or an import mode.
    pub(crate) fn check_as_export(&self) -> Result<(), (&'static str, String)> {
        if let Some(mode) = self.import_mode {
            return Err((
                "importMode",
                format!(
                    "the line carries {}, and a hub's export never holds an import mode: this is \
                     an import file's line (such as a plan's import.jsonl), not the hub's export",
                    mode.as_str()
                ),
            ));
        }
        self.check()
            .map_err(|Refused { place, message }| (place.field(), message))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::credentials::{Authentication, SymmetricKey, Thumbprint};
    use crate::iothub::{Failback, ImportMode, Parsed, Plan, parse_line};
    use crate::key::DeviceKey;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
    const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";

    fn device(id: &str) -> ExportLine {
        ExportLine::new(DeviceKey::device(id).expect("an id"), Status::Enabled)
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    /// `levels` objects nested, the innermost holding `leaf`: 1.
    fn nested(levels: usize) -> Map<String, Value> {
        nested_holding(levels, json!(1))
    }

    /// `levels` objects nested, the innermost holding `leaf`: `value`.
    fn nested_holding(levels: usize, value: Value) -> Map<String, Value> {
        let mut twin = json!({ "leaf": value });
        for _ in 1..levels {
            twin = json!({ "n": twin });
        }
        object(twin)
    }

    /// Lines built through public fields that the reader refuses when read, with the field the
    /// refusal names.
    fn refused_by_the_reader() -> Vec<(ExportLine, &'static str)> {
        let mut lines = Vec::new();
        let mut line = device("cam-1");
        let sha256 = Thumbprint::new("ab".repeat(32)).expect("a thumbprint");
        let sha1 = Thumbprint::new(SHA1).expect("a thumbprint");
        line.authentication = Some(Authentication::self_signed(Pair::new(
            Some(sha1),
            Some(sha256),
        )));
        lines.push((line, "authentication.x509Thumbprint"));
        let mut line = device("sas-1");
        let key = SymmetricKey::new(KEY_A).expect("a key");
        line.authentication = Some(Authentication::sas(Pair::new(Some(key), None)));
        lines.push((line, "authentication.symmetricKey"));
        let mut line =
            ExportLine::new(DeviceKey::module("gw", "m").expect("ids"), Status::Disabled);
        line.status = Status::Disabled;
        lines.push((line, "status"));
        let mut line = device("d");
        line.status_reason = Some("é".repeat(129));
        lines.push((line, "statusReason"));
        let mut line = device("leaf");
        line.device_scope = Some("edge-1-2".into());
        lines.push((line, "deviceScope"));
        let mut line = device("leaf");
        line.device_scope = Some("ms-azure-iot-edge://a b-1".into());
        lines.push((line, "deviceScope"));
        let mut line = device("d");
        line.tags = Some(object(json!({"ok": 1, "a.b": 1})));
        lines.push((line, "tags"));
        // Eleven objects below the section: one more than the hub's example of its limit.
        let mut line = device("d");
        line.desired = Some(nested(12));
        lines.push((line, "properties.desired"));
        // The objects in an array are the twin's objects: their keys and depth are checked.
        let mut line = device("d");
        line.tags = Some(object(json!({"ok": [1, {"x": 2}], "a": [[{"b.c": 1}]]})));
        lines.push((line, "tags"));
        let mut line = device("d");
        line.reported = Some(nested_holding(11, json!([{"x": 1}])));
        lines.push((line, "properties.reported"));
        let mut line = device("d");
        line.reported = Some(object(json!({"a": {"": 1}})));
        lines.push((line, "properties.reported"));
        // The hub's counters anywhere but at the top of desired and reported properties: the
        // hub writes them nowhere else, so they are refused, not dropped.
        let counters = [
            (Section::Tags, json!({"$version": 3})),
            (Section::Tags, json!({"a": {"$metadata": {"owner": "ops"}}})),
            (
                Section::Desired,
                json!({"$version": 1, "a": {"$version": 2}}),
            ),
            (Section::Reported, json!({"a": [{"$metadata": {}, "x": 1}]})),
        ];
        for (section, twin) in counters {
            let mut line = device("d");
            let slot = match section {
                Section::Tags => &mut line.tags,
                Section::Desired => &mut line.desired,
                Section::Reported => &mut line.reported,
            };
            *slot = Some(object(twin));
            lines.push((line, section.as_str()));
        }
        // Arrays past the reader's 64 levels: the line's object and tags make two.
        let mut deep = json!(1);
        for _ in 0..63 {
            deep = json!([deep]);
        }
        let mut line = device("d");
        line.tags = Some(object(json!({ "x": deep })));
        lines.push((line, "tags"));
        lines
    }

    /// Lifts `line` as the only line of one snapshot.
    fn lifted(line: &ExportLine, side: Side) -> Result<Failback> {
        let mut snapshots = [Vec::new(), Vec::new(), Vec::new()];
        snapshots[side as usize].push(line.clone());
        let [base, primary, secondary] = &snapshots;
        Failback::lift(base, primary, secondary, Side::Secondary)
    }

    #[test]
    fn lift_refuses_a_line_its_reader_refuses_naming_the_device_and_the_snapshot() {
        for (line, field) in refused_by_the_reader() {
            // Planned, it would be written as a line the reader refuses.
            let text = line.to_json();
            assert!(
                parse_line(Path::new("import.jsonl"), 1, &text).is_err(),
                "{text}"
            );
            for side in [Side::Base, Side::Primary, Side::Secondary] {
                let err = lifted(&line, side).map(|_| ()).unwrap_err();
                let expected = format!(
                    "invalid {field} of {} in the {} export: ",
                    line.key,
                    side.as_str()
                );
                assert!(err.to_string().starts_with(&expected), "{err}");
                assert!(!err.to_string().contains(KEY_A), "{err}");
            }
        }
    }

    #[test]
    fn the_reader_refuses_what_the_check_refuses_with_its_message() {
        // The reader's message is the check's, but for JSON too deep, which the reader refuses
        // before reading any field.
        for (line, _) in refused_by_the_reader() {
            let text = line.to_json();
            let refused = line.check().expect_err("refused");
            let expected = match refused.message.contains("levels of JSON") {
                true => {
                    "JSON nested deeper than 64 levels; twins nest at most 10, so this is not \
                         an IoT Hub export line"
                }
                false => refused.message.as_str(),
            };
            match parse_line(Path::new("in.jsonl"), 1, &text) {
                Err(Error::Parse { message, .. }) if message.ends_with(expected) => {}
                other => panic!("{text}: {other:?}, expected {expected}"),
            }
        }
    }

    #[test]
    fn a_parent_must_be_the_edge_device_its_scope_names() {
        let scoped = |scope: Option<&str>, parent: Option<&str>| {
            let mut line = device("leaf");
            line.device_scope = scope.map(String::from);
            line.parent = parent.map(|p| DeviceId::new(p).expect("an id"));
            line
        };
        let scope = "ms-azure-iot-edge://gw-1-637";
        for line in [
            scoped(Some(scope), Some("gw-2")),
            scoped(Some(scope), None),
            scoped(None, Some("gw-1")),
            scoped(Some(""), Some("gw-1")),
        ] {
            let err = lifted(&line, Side::Primary).map(|_| ()).unwrap_err();
            let expected = "invalid deviceScope of leaf in the primary export: parent is ";
            assert!(err.to_string().starts_with(expected), "{err}");
        }
        for line in [
            scoped(Some(scope), Some("gw-1")),
            scoped(Some(""), None),
            scoped(None, None),
        ] {
            assert!(line.check().is_ok(), "{line:?}");
        }
    }

    #[test]
    fn lift_refuses_a_line_with_an_import_mode() {
        let mut line = device("sensor-1");
        line.import_mode = Some(ImportMode::DeleteIfMatchETag);
        // The reader of an import file takes it: the check does not look at the mode.
        assert!(line.check().is_ok());
        for side in [Side::Base, Side::Primary, Side::Secondary] {
            let err = lifted(&line, side).map(|_| ()).unwrap_err();
            let expected = format!(
                "invalid importMode of sensor-1 in the {} export: the line carries \
                 deleteIfMatchETag, and a hub's export never holds an import mode",
                side.as_str()
            );
            assert!(err.to_string().starts_with(&expected), "{err}");
        }
    }

    #[test]
    fn what_the_reader_reads_or_drops_passes() {
        let mut line = device("d");
        // The hub's counters at the top of desired and reported properties are dropped by the
        // reader, so never refused; a key of 1 KB and ten objects below a section, in an array
        // too, are IoT Hub's to take.
        line.tags = Some(object(json!({"k".repeat(1024): 1})));
        let mut desired = nested(11);
        desired.insert("$metadata".into(), json!({"a.b": {"$lastUpdated": 1}}));
        desired.insert("$version".into(), json!(3));
        line.desired = Some(desired);
        line.reported = Some(nested_holding(9, json!([1, [{"x": {}}]])));
        line.status_reason = Some("é".repeat(128));
        assert!(line.check().is_ok());
        assert!(lifted(&line, Side::Base).is_ok());
        let text = line.to_json();
        assert!(
            parse_line(Path::new("in.jsonl"), 1, &text).is_ok(),
            "{text}"
        );
    }

    /// The deepest twin IoT Hub's documentation gives as valid is read, merged and planned
    /// (found in review: a line holding it was refused, and with it the whole failback).
    #[test]
    fn the_hubs_own_example_of_its_deepest_twin_is_read_and_planned() -> Result<()> {
        let mut twin = json!({"property": "value"});
        for key in [
            "ten", "nine", "eight", "seven", "six", "five", "four", "three", "two", "one",
        ] {
            twin = json!({ key: twin });
        }
        let text = format!(r#"{{"id":"d","status":"enabled","tags":{twin}}}"#);
        let Parsed::Device(line) = parse_line(Path::new("devices.txt"), 1, &text)? else {
            panic!("a device line: {text}")
        };
        let mut base = device("d");
        base.twin_e_tag = Some("AAAA".into());
        let failback = Failback::lift(&[base.clone()], &[base], &[line], Side::Secondary)?;
        let plan = Plan::new(&failback);
        let written: Vec<String> = plan.import.iter().map(ExportLine::to_json).collect();
        assert!(
            written.iter().any(|l| l.contains(&twin.to_string())),
            "{written:?}"
        );
        Ok(())
    }
}
