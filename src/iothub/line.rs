//! One line of an IoT Hub bulk export or import file (`ExportImportDevice`): its fields, what
//! they mean when read, and its canonical text.

mod identity;

use serde_json::{Map, Value};

use super::check::scope_owner;
use super::import_mode::ImportMode;
use super::json::{self, Kind, Raw, Writer};
use super::number::{Held, held};
use super::reader::Context;
use crate::credentials::{AuthType, Authentication, Pair, SymmetricKey, Thumbprint};
use crate::error::Result;
use crate::identity::{Capabilities, ShownReason, Status};
use crate::key::{DeviceId, DeviceKey};
use crate::twin::{self, Section, ShownObject};

pub(crate) use identity::{parent_of, twin_of};

/// One device or module line of a bulk export or import file, typed.
///
/// Read lines with [`parse_line`](super::parse_line), [`read_export`](super::read_export) or
/// [`read_import`](super::read_import);
/// write them with [`to_json`](Self::to_json). `None` means the line did not carry the field
/// (or carried `null`). In [`authentication`](Self::authentication), `keys: None` and
/// `thumbprints: None` mean *unknown* (an export taken with `excludeKeysInExport`), never empty.
///
/// Twin `$metadata` and `$version` at the top of desired and reported properties, where IoT Hub
/// writes them, are dropped on reading with what they hold: they are hub-local counters and
/// timestamps, never compared and never written back (an import that carries `$metadata`
/// overwrites the target hub's timestamps). Anywhere else (in tags, below the top of a section,
/// in an array) such a key is no counter of the hub's but a twin key it refuses, as any key
/// holding `$` is. Any twin key IoT Hub would refuse is an error when reading, and so is a
/// number in tags or desired properties that could not be written back as the same value (an
/// integer beyond 64 bits, or `-0`, read as the double -0.0). A line built through these
/// fields is held to the same rules on its values by [`Failback::lift`](super::Failback::lift)
/// (a disabled module, one key of two, thumbprints of two lengths, a long `statusReason`, a
/// twin key the hub refuses, a [`parent`](Self::parent) other than the edge device its scope
/// names), which also refuses one that carries an [`import_mode`](Self::import_mode).
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use failback::iothub::{parse_line, Parsed};
///
/// let text = r#"{"id":"leaf-1","status":"Disabled","deviceScope":"ms-azure-iot-edge://edge-a-637"}"#;
/// let Parsed::Device(line) = parse_line(Path::new("devices.txt"), 1, text)? else { panic!() };
/// assert_eq!(line.key.to_string(), "leaf-1");
/// assert_eq!(line.status, failback::Status::Disabled);
/// assert_eq!(line.parent.as_ref().map(|p| p.as_str()), Some("edge-a"));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ExportLine {
    /// The device id (`id`) and, on module lines, the module id (`moduleId`).
    pub key: DeviceKey,
    /// The registry ETag of the hub that exported the line (hub-local, opaque).
    pub e_tag: Option<String>,
    /// What an import does with the line; `None` means `createOrUpdate`.
    pub import_mode: Option<ImportMode>,
    /// Whether the device may connect (`enabled` when a module line omits it).
    pub status: Status,
    /// Why the status was set.
    pub status_reason: Option<String>,
    /// Authentication; `None` when the line's `authentication` is null or absent.
    pub authentication: Option<Authentication>,
    /// The twin ETag (hub-local, independent of [`e_tag`](Self::e_tag)).
    pub twin_e_tag: Option<String>,
    /// Twin tags.
    pub tags: Option<Map<String, Value>>,
    /// Desired properties, without the hub's `$metadata` and `$version` at their top.
    pub desired: Option<Map<String, Value>>,
    /// Reported properties, without the hub's `$metadata` and `$version` at their top.
    pub reported: Option<Map<String, Value>>,
    /// Capabilities (`iotEdge`).
    pub capabilities: Option<Capabilities>,
    /// The edge device named by [`device_scope`](Self::device_scope): the parent of a leaf
    /// device, or the device itself for an edge device (IoT Hub gives an edge device its own
    /// scope). Derived when reading; [`to_json`](Self::to_json) writes only `device_scope`.
    pub parent: Option<DeviceId>,
    /// The raw `deviceScope`, `ms-azure-iot-edge://{edgeDeviceId}-{generationId}`. The
    /// generation id differs between hubs, so a scope is only meaningful in the hub it came from.
    pub device_scope: Option<String>,
}

/// Every field as a derived `Debug` shows it, but the status reason, shown as a
/// [`StatusValue`](crate::StatusValue)'s is, and twin values, shown as a report shows them:
/// each by its fingerprint where it may be a secret (keys show theirs already).
impl std::fmt::Debug for ExportLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Taken apart, so that a field added to the line is added here too.
        let Self {
            key,
            e_tag,
            import_mode,
            status,
            status_reason,
            authentication,
            twin_e_tag,
            tags,
            desired,
            reported,
            capabilities,
            parent,
            device_scope,
        } = self;
        f.debug_struct("ExportLine")
            .field("key", key)
            .field("e_tag", e_tag)
            .field("import_mode", import_mode)
            .field("status", status)
            .field(
                "status_reason",
                &status_reason.as_deref().map(ShownReason::unkeyed),
            )
            .field("authentication", authentication)
            .field("twin_e_tag", twin_e_tag)
            .field("tags", &tags.as_ref().map(ShownObject::section))
            .field("desired", &desired.as_ref().map(ShownObject::section))
            .field("reported", &reported.as_ref().map(ShownObject::section))
            .field("capabilities", capabilities)
            .field("parent", parent)
            .field("device_scope", device_scope)
            .finish()
    }
}

impl ExportLine {
    /// A line for `key` with `status` and every optional field `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Status};
    /// use failback::iothub::ExportLine;
    ///
    /// let line = ExportLine::new(DeviceKey::device("sensor-1")?, Status::Enabled);
    /// assert_eq!(line.to_json(), r#"{"id":"sensor-1","status":"enabled"}"#);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn new(key: DeviceKey, status: Status) -> Self {
        Self {
            key,
            e_tag: None,
            import_mode: None,
            status,
            status_reason: None,
            authentication: None,
            twin_e_tag: None,
            tags: None,
            desired: None,
            reported: None,
            capabilities: None,
            parent: None,
            device_scope: None,
        }
    }

    /// The line as canonical single-line JSON, byte-deterministic.
    ///
    /// Keys come in a fixed order (`id`, `moduleId`, `eTag`, `importMode`, `status`,
    /// `statusReason`, `authentication`, `twinETag`, `tags`, `properties`, `capabilities`,
    /// `deviceScope`), `None` fields are omitted, and keys inside twin sections are sorted.
    /// Within `authentication`, unknown keys are written `"symmetricKey":null` and an empty pair
    /// as two `null`s; both read back as unknown, because the file format has no way to say
    /// "empty" apart from "unknown". That is also why a line with unknown keys must never be
    /// imported as is: IoT Hub generates new keys for it, locking SAS devices out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    /// use failback::iothub::{parse_line, Parsed};
    ///
    /// let text = r#"{"status":"ENABLED","tags":{"b":1,"a":2},"id":"d1","authentication":null}"#;
    /// let Parsed::Device(line) = parse_line(Path::new("in.txt"), 1, text)? else { panic!() };
    /// assert_eq!(line.to_json(), r#"{"id":"d1","status":"enabled","tags":{"a":2,"b":1}}"#);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        let mut text = String::new();
        self.write_json(&mut text);
        text
    }

    /// Appends [`to_json`](Self::to_json)'s text to `text`: a plan writes thousands of lines
    /// into one buffer rather than allocating each.
    pub(crate) fn write_json(&self, text: &mut String) {
        let mut out = Writer::appending(std::mem::take(text));
        out.raw("{");
        out.field("id", self.key.device.as_str());
        out.optional("moduleId", self.key.module.as_ref().map(|m| m.as_str()));
        out.optional("eTag", self.e_tag.as_deref());
        out.optional("importMode", self.import_mode.map(ImportMode::as_str));
        out.field("status", self.status.as_str());
        out.optional("statusReason", self.status_reason.as_deref());
        if let Some(auth) = &self.authentication {
            out.key("authentication");
            out.raw("{");
            out.key("symmetricKey");
            let names = ["primaryKey", "secondaryKey"];
            write_pair(&mut out, auth.keys.as_ref(), names, SymmetricKey::expose);
            out.key("x509Thumbprint");
            let names = ["primaryThumbprint", "secondaryThumbprint"];
            write_pair(
                &mut out,
                auth.thumbprints.as_ref(),
                names,
                Thumbprint::as_str,
            );
            out.field("type", auth.kind.as_str());
            out.raw("}");
        }
        out.optional("twinETag", self.twin_e_tag.as_deref());
        if let Some(tags) = &self.tags {
            out.key("tags");
            out.map(tags);
        }
        if self.desired.is_some() || self.reported.is_some() {
            out.key("properties");
            out.raw("{");
            for (name, section) in [("desired", &self.desired), ("reported", &self.reported)] {
                if let Some(section) = section {
                    out.key(name);
                    out.map(section);
                }
            }
            out.raw("}");
        }
        if let Some(capabilities) = self.capabilities {
            out.key("capabilities");
            out.raw("{");
            out.key("iotEdge");
            out.raw(if capabilities.iot_edge {
                "true"
            } else {
                "false"
            });
            out.raw("}");
        }
        out.optional("deviceScope", self.device_scope.as_deref());
        out.raw("}");
        *text = out.into_string();
    }
}

/// A primary/secondary object, or `null` for unknown.
fn write_pair<T>(out: &mut Writer, pair: Option<&Pair<T>>, names: [&str; 2], text: fn(&T) -> &str) {
    let Some(pair) = pair else {
        out.raw("null");
        return;
    };
    out.raw("{");
    for (name, value) in names.into_iter().zip([&pair.primary, &pair.secondary]) {
        out.key(name);
        match value {
            Some(value) => out.string(text(value)),
            None => out.raw("null"),
        }
    }
    out.raw("}");
}

// What the nested fields mean when read. The reader checks the line's JSON and its top-level
// fields; these turn the nested ones into values, errors placed at the offending value.

/// `authentication`: `None` when null or absent; `type` is `sas` when absent.
pub(super) fn authentication(
    cx: &Context<'_>,
    raw: Option<Raw<'_>>,
) -> Result<Option<Authentication>> {
    let known = ["type", "symmetricKey", "x509Thumbprint"];
    let Some(members) = cx.object("authentication", raw, &known)? else {
        return Ok(None);
    };
    let kind = match cx.string("authentication.type", json::find(&members, "type"))? {
        Some((kind, at)) => kind
            .parse::<AuthType>()
            .map_err(|err| cx.lift(at, "authentication.type", err))?,
        None => AuthType::Sas,
    };
    let raw = json::find(&members, "symmetricKey");
    let names = [
        "authentication.symmetricKey.primaryKey",
        "authentication.symmetricKey.secondaryKey",
    ];
    let keys = pair(
        cx,
        "authentication.symmetricKey",
        raw,
        names,
        SymmetricKey::new,
    )?;
    let raw = json::find(&members, "x509Thumbprint");
    let names = [
        "authentication.x509Thumbprint.primaryThumbprint",
        "authentication.x509Thumbprint.secondaryThumbprint",
    ];
    let thumbprints = pair(
        cx,
        "authentication.x509Thumbprint",
        raw,
        names,
        Thumbprint::new,
    )?;
    // One key of two, or thumbprints of two lengths, are refused by the line's check.
    Ok(Some(Authentication {
        kind,
        keys,
        thumbprints,
    }))
}

/// A primary/secondary object. `None` when the object is absent or `null`, or when both values
/// are: that is what an export with `excludeKeysInExport` writes, so it means unknown, never
/// empty.
fn pair<T>(
    cx: &Context<'_>,
    field: &str,
    raw: Option<Raw<'_>>,
    paths: [&str; 2],
    validate: fn(String) -> Result<T>,
) -> Result<Option<Pair<T>>> {
    let names = paths.map(|path| path.rsplit('.').next().unwrap_or(path));
    let Some(members) = cx.object(field, raw, &names)? else {
        return Ok(None);
    };
    let mut values = [None, None];
    for ((slot, path), name) in values.iter_mut().zip(paths).zip(names) {
        if let Some((text, at)) = cx.string(path, json::find(&members, name))? {
            // IOTHUB.md's "both set or both empty" is about the pair, not a form of the value:
            // what an export does not hold it writes null. An empty string is no documented
            // form, so it is refused as empty, not read as unknown (nor shown as the
            // fingerprint of "", which says nothing).
            if text.is_empty() {
                return Err(cx.error(
                    at,
                    format!(
                        "{path} is empty; IoT Hub writes a key or thumbprint it does not export \
                         as null, never \"\": write null (unknown), or the value"
                    ),
                ));
            }
            *slot = Some(validate(text.into_owned()).map_err(|err| cx.lift(at, path, err))?);
        }
    }
    Ok(match values {
        [None, None] => None,
        [primary, secondary] => Some(Pair { primary, secondary }),
    })
}

/// `capabilities`; `iotEdge` is false when null or absent.
pub(super) fn capabilities(cx: &Context<'_>, raw: Option<Raw<'_>>) -> Result<Option<Capabilities>> {
    let Some(members) = cx.object("capabilities", raw, &["iotEdge"])? else {
        return Ok(None);
    };
    // `iotEdge` null or absent states nothing, as `capabilities` null does: unknown, never
    // `false`, which would demote a gateway.
    let iot_edge = match json::find(&members, "iotEdge") {
        Some(raw) if raw.kind != Kind::Null => raw
            .boolean()
            .ok_or_else(|| cx.wrong_type("capabilities.iotEdge", "a boolean or null", raw))?,
        _ => return Ok(None),
    };
    Ok(Some(Capabilities { iot_edge }))
}

/// A twin section (`tags`, `properties.desired`, `properties.reported`), its numbers checked here,
/// where their text is at hand; its keys are checked with the line's other values
/// ([`ExportLine::check`]). The hub's counters at the top of desired and reported properties
/// ([`twin::hub_managed`]) are dropped unread; any other key holding `$`, those two names in tags,
/// below the top or in an array included, is kept for that check to refuse at its key (dropped at
/// every level, with all they held, a tag `{"a":{"$metadata":{"owner":"ops"}}}` would read as
/// `{"a":{}}` without a word).
pub(super) fn twin(
    cx: &Context<'_>,
    section: Section,
    raw: Option<Raw<'_>>,
) -> Result<Option<Map<String, Value>>> {
    let field = section.as_str();
    let raw = match raw {
        Some(raw) if raw.kind == Kind::Object => raw,
        Some(raw) if raw.kind != Kind::Null => {
            return Err(cx.wrong_type(field, "an object or null", raw));
        }
        _ => return Ok(None),
    };
    let dropped = twin::hub_managed(section);
    // Reported properties are never written to a hub (the device owns them), so a number there that
    // serde_json holds as another value (an integer beyond 64 bits, held as the nearest double, or
    // `-0`, held as -0.0) changes nothing a plan writes: it is read as held, since refusing the
    // whole file over one device's reading would stop the failback for nothing. A value serde_json
    // cannot hold at all (a number beyond a double's range, a string with a lone surrogate) is
    // still refused in every section, at the value, when the section is built below: there is no
    // value to keep, and dropping it or the section without a word would lose the device's reported
    // state from the merged registry.
    if section != Section::Reported {
        check_numbers(cx, field, raw, dropped)?;
    }
    let built = json::object_without(raw.text(), dropped);
    built.map(Some).map_err(|err| {
        // The line's check skips strings and numbers without building them: a value serde_json
        // cannot hold (a lone surrogate, a number beyond a double) is found only here, and is
        // refused where serde_json stopped reading it, inside the value.
        let message = format!("invalid JSON in {field}: {}", json::without_position(&err));
        cx.error(raw.start + json::error_offset(raw.text(), &err), message)
    })
}

/// Refuses, at the number, a number in `object` that would be written back as another value
/// (see [`exact_number`]). Only the text tells: read, the number is already the double.
///
/// The walk follows objects, as the keys' check does: an array is one value to the merge, kept
/// and written back whole, so only its numbers are checked. The members of `object` named in
/// `dropped` (the hub's counters, at the top of a section) are not checked at all: they are
/// dropped.
fn check_numbers(cx: &Context<'_>, field: &str, object: Raw<'_>, dropped: &[&str]) -> Result<()> {
    let members = object.members().map_err(|err| cx.malformed(err))?;
    for member in members {
        if dropped.contains(&&*member.key) {
            continue;
        }
        match member.value.kind {
            Kind::Object => check_numbers(cx, field, member.value, &[])?,
            Kind::Number | Kind::Array => {
                for (at, number) in member.value.numbers() {
                    exact_number(cx, field, number, at)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses, at the number, a twin number that would come out of the merge as another value: an
/// integer beyond 64 bits, which the hub keeps whole and the crate would write back as a
/// rounded double, or `-0`, the integer 0 to the hub and written back as the double `-0.0`,
/// though neither hub changed it (see [`held`]).
fn exact_number(cx: &Context<'_>, field: &str, number: &str, at: usize) -> Result<()> {
    // A long number is not shown whole: a message stays one readable line.
    let what = if number.len() <= 40 {
        format!("number {number}")
    } else {
        format!("a number of {} characters", number.len())
    };
    let keep_digits = "twin numbers are read as 64-bit integers or doubles, so store it as a \
                       string in the hub to keep every digit";
    let (problem, remedy) = match held(number) {
        Held::Exactly => return Ok(()),
        // The one short integer held as another value: no digit to keep, only a sign to drop.
        Held::Rewritten(written) if number == "-0" => (
            format!("is the integer 0 to IoT Hub and would be rewritten as the double {written}"),
            "write it as 0 in the hub",
        ),
        Held::Rewritten(written) => (
            format!("is beyond 64 bits and would be rewritten as {written}"),
            keep_digits,
        ),
        Held::OutOfRange => (
            "is beyond the range of a double and cannot be held".to_owned(),
            keep_digits,
        ),
    };
    Err(cx.error(at, format!("{what} in {field} {problem}; {remedy}")))
}

/// `deviceScope` and the edge device it names ([`scope_owner`]); an empty scope is none.
pub(super) fn scope(
    cx: &Context<'_>,
    raw: Option<Raw<'_>>,
) -> Result<(Option<DeviceId>, Option<String>)> {
    let Some((scope, at)) = cx.string("deviceScope", raw)? else {
        return Ok((None, None));
    };
    match scope_owner(&scope).map_err(|message| cx.error(at, message))? {
        Some(parent) => Ok((Some(parent), Some(scope.into_owned()))),
        None => Ok((None, None)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Parsed;
    use super::super::reader::tests::{col, device, error, parse, with};
    use super::*;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMA==";
    const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A line's `Debug` hides a status reason that may hold a key, a key's text alone too.
    #[test]
    fn debug_hides_a_reason_that_may_hold_a_key() {
        let mut line = full();
        line.status_reason = Some(format!("leaked key {KEY_B}"));
        let shown = format!("{line:?}");
        assert!(!shown.contains(KEY_A) && !shown.contains(KEY_B), "{shown}");
        assert!(shown.contains("status_reason: Some(<hidden>)"), "{shown}");
        line.status_reason = Some(KEY_B.to_owned());
        let shown = format!("{line:?}");
        assert!(shown.contains("status_reason: Some(<hidden>)"), "{shown}");
        assert!(format!("{:?}", full()).contains(r#"status_reason: Some("stolen\n")"#));
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn full() -> ExportLine {
        let key = DeviceKey::module("edge-1", "$edgeHub").expect("ids");
        // Enabled: modules cannot be disabled, so the reader refuses a disabled module line.
        let mut line = ExportLine::new(key, Status::Enabled);
        line.e_tag = Some("AAAA\"1".into());
        line.import_mode = Some(ImportMode::UpdateIfMatchETag);
        line.status_reason = Some("stolen\n".into());
        let keys = Pair::new(SymmetricKey::new(KEY_A).ok(), SymmetricKey::new(KEY_B).ok());
        let kind = AuthType::Sas;
        line.authentication = Some(Authentication {
            kind,
            keys: Some(keys),
            thumbprints: None,
        });
        line.twin_e_tag = Some("t1".into());
        line.tags = Some(object(
            json!({"z": 1, "a": {"y": [1.5, null], "b": "\u{1}"}}),
        ));
        line.reported = Some(object(json!({"fw": "1.0"})));
        line.capabilities = Some(Capabilities { iot_edge: true });
        line.device_scope = Some("ms-azure-iot-edge://edge-1-42".into());
        line
    }

    #[test]
    fn writes_fixed_key_order_and_sorted_twin_keys() {
        let expected = concat!(
            r#"{"id":"edge-1","moduleId":"$edgeHub","eTag":"AAAA\"1","#,
            r#""importMode":"updateIfMatchETag","status":"enabled","statusReason":"stolen\n","#,
            r#""authentication":{"symmetricKey":{"primaryKey":"MDEyMzQ1Njc4OWFiY2RlZg==","#,
            r#""secondaryKey":"ZmVkY2JhOTg3NjU0MzIxMA=="},"x509Thumbprint":null,"type":"sas"},"#,
            r#""twinETag":"t1","tags":{"a":{"b":"\u0001","y":[1.5,null]},"z":1},"#,
            r#""properties":{"reported":{"fw":"1.0"}},"capabilities":{"iotEdge":true},"#,
            r#""deviceScope":"ms-azure-iot-edge://edge-1-42"}"#
        );
        assert_eq!(full().to_json(), expected);
    }

    #[test]
    fn unknown_and_empty_pairs_are_written_differently() {
        let mut line = ExportLine::new(DeviceKey::device("d").expect("id"), Status::Enabled);
        line.authentication = Some(Authentication::default());
        let unknown = r#"{"symmetricKey":null,"x509Thumbprint":null,"type":"sas"}"#;
        assert!(line.to_json().contains(unknown));
        line.authentication = Some(Authentication {
            kind: AuthType::SelfSigned,
            keys: Some(Pair::default()),
            thumbprints: Some(Pair::default()),
        });
        let empty = concat!(
            r#"{"symmetricKey":{"primaryKey":null,"secondaryKey":null},"#,
            r#""x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"#,
            r#""type":"selfSigned"}"#
        );
        assert!(line.to_json().contains(empty));
    }

    #[test]
    fn parse_write_parse_is_identity() {
        let (a, b) = ("ab".repeat(32), "CD".repeat(32));
        let twin = concat!(
            r#""properties":{"desired":{"$metadata":{},"n":-1.25e-7,"big":18446744073709551615,"#,
            r#""neg":-9223372036854775808,"s":"\u00e9\ud83d\ude00\t"},"reported":{}},"tags":{}"#
        );
        let lines = [
            full().to_json(),
            r#"{"id":"d","status":"enabled"}"#.into(),
            r#"{"id":"m","moduleId":"$edgeAgent","authentication":{"type":"none"}}"#.into(),
            format!(
                r#"{{"deviceScope":"ms-azure-iot-edge://gw-a-b-99","capabilities":{{"iotEdge":false}},{twin},"authentication":{{"x509Thumbprint":{{"primaryThumbprint":"{a}","secondaryThumbprint":"{b}"}},"symmetricKey":{{"primaryKey":null,"secondaryKey":null}},"type":"SELF_SIGNED"}},"status":"Disabled","importMode":"UPDATETWINIFMATCHETAG","id":"leaf-1","twinETag":"\"q\""}}"#
            ),
        ];
        for text in &lines {
            let first = device(text);
            let written = first.to_json();
            let second = device(&written);
            assert_eq!(first, second, "{written}");
            assert_eq!(second.to_json(), written);
        }
    }

    #[test]
    fn enums_read_in_any_case_are_written_camel_case() {
        let line = device(concat!(
            r#"{"id":"d","status":"DISABLED","importMode":"Create_Or_Update_If_Match_ETag","#,
            r#""authentication":{"type":"CertificateAuthority"}}"#
        ));
        let expected = concat!(
            r#"{"id":"d","importMode":"createOrUpdateIfMatchETag","status":"disabled","#,
            r#""authentication":{"symmetricKey":null,"x509Thumbprint":null,"#,
            r#""type":"certificateAuthority"}}"#
        );
        assert_eq!(line.to_json(), expected);
    }

    #[test]
    fn reads_every_field() {
        let line = device(&format!(
            r#"{{"id":"edge-a","moduleId":"reader","eTag":"e1","importMode":"update","status":"enabled","statusReason":"lost","authentication":{{"symmetricKey":{{"primaryKey":"{KEY_A}","secondaryKey":"{KEY_B}"}},"x509Thumbprint":{{"primaryThumbprint":"{SHA1}","secondaryThumbprint":null}},"type":"sas"}},"twinETag":"t1","tags":{{"site":"a"}},"properties":{{"desired":{{"x":1}},"reported":{{"y":2}}}},"capabilities":{{"iotEdge":true}},"deviceScope":"ms-azure-iot-edge://edge-a-1","future":[1]}}"#
        ));
        assert_eq!(
            line.key,
            DeviceKey::module("edge-a", "reader").expect("ids")
        );
        assert_eq!(
            (line.e_tag.as_deref(), line.import_mode),
            (Some("e1"), Some(ImportMode::Update))
        );
        assert_eq!(
            (line.status, line.status_reason.as_deref()),
            (Status::Enabled, Some("lost"))
        );
        let auth = line.authentication.expect("authentication");
        let keys = auth.keys.expect("keys");
        assert_eq!(
            keys.primary.map(|k| k.fingerprint()),
            Some(crate::Fingerprint::of(KEY_A))
        );
        let thumbprints = auth.thumbprints.expect("thumbprints");
        assert_eq!(thumbprints.primary.map(|t| t.as_str().len()), Some(40));
        assert_eq!(thumbprints.secondary, None);
        assert_eq!(line.twin_e_tag.as_deref(), Some("t1"));
        assert_eq!(line.tags.expect("tags")["site"], "a");
        assert_eq!(line.desired.expect("desired")["x"], 1);
        assert_eq!(line.reported.expect("reported")["y"], 2);
        assert_eq!(line.capabilities, Some(Capabilities { iot_edge: true }));
        assert_eq!(line.parent.as_ref().map(DeviceId::as_str), Some("edge-a"));
    }

    #[test]
    fn unknown_keys_are_never_empty_keys() {
        assert_eq!(
            device(&with(r#""authentication":null"#)).authentication,
            None
        );
        for extra in [
            r#""authentication":{}"#,
            r#""authentication":{"symmetricKey":null,"x509Thumbprint":null}"#,
            r#""authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null}}"#,
            r#""authentication":{"symmetricKey":{},"x509Thumbprint":{"primaryThumbprint":null}}"#,
        ] {
            let auth = device(&with(extra)).authentication.expect("authentication");
            assert_eq!(
                (auth.kind, auth.keys, auth.thumbprints),
                (AuthType::Sas, None, None)
            );
        }
    }

    #[test]
    fn hub_counters_are_dropped_at_the_top_of_desired_and_reported_only() {
        let line = device(&with(concat!(
            r#""properties":{"desired":{"$metadata":{"$lastUpdated":"x","a":{"$x":1}},"#,
            r#""$version":4,"a":{"b":1}},"reported":{"$version":1,"l":[{"m":3}]}},"#,
            r#""tags":{"t":{"u":1}}"#
        )));
        assert_eq!(
            Value::Object(line.desired.expect("desired")),
            json!({"a": {"b": 1}})
        );
        assert_eq!(
            Value::Object(line.reported.expect("reported")),
            json!({"l": [{"m": 3}]})
        );
        // Anywhere else they are twin keys holding `$`, refused at the key (at the array's key
        // for one in an array's object, as for any key there).
        for (twin, at) in [
            (r#""tags":{"$version":1,"t":2}"#, r#""$version""#),
            (r#""tags":{"t":{"$metadata":{"$x":1}}}"#, r#""$metadata""#),
            (
                r#""properties":{"desired":{"a":{"$metadata":{},"b":1}}}"#,
                r#""$metadata""#,
            ),
            (
                r#""properties":{"reported":{"l":[{"$version":3}]}}"#,
                r#""l""#,
            ),
        ] {
            let text = with(twin);
            let (column, message) = error(&text);
            assert_eq!(column, col(&text, at), "{text}");
            assert!(message.contains("holds '$'"), "{message}");
        }
    }

    #[test]
    fn parent_is_everything_before_the_last_dash() {
        for (scope, parent) in [
            ("ms-azure-iot-edge://edge-1-637998", "edge-1"),
            ("ms-azure-iot-edge://a-b-c--9", "a-b-c-"),
            ("ms-azure-iot-edge://gw-1", "gw"),
        ] {
            let line = device(&with(&format!(r#""deviceScope":"{scope}""#)));
            assert_eq!(line.parent.as_ref().map(DeviceId::as_str), Some(parent));
            assert_eq!(line.device_scope.as_deref(), Some(scope));
        }
        let line = device(&with(r#""deviceScope":"""#));
        assert_eq!((line.parent, line.device_scope), (None, None));
    }

    #[test]
    fn device_scopes_must_name_an_edge_device_and_a_generation() {
        for scope in [
            "edge-1-2",
            "ms-azure-iot-edge://edge",
            "ms-azure-iot-edge://edge-",
            "ms-azure-iot-edge://-5",
            "MS-AZURE-IOT-EDGE://e-1",
        ] {
            let text = with(&format!(r#""deviceScope":"{scope}""#));
            let (column, message) = error(&text);
            assert_eq!(column, col(&text, scope) - 1, "{scope}");
            assert!(
                message.starts_with(
                    r#"device "dev-1": deviceScope must look like ms-azure-iot-edge://"#
                ),
                "{message}"
            );
        }
        let text = with(r#""deviceScope":"ms-azure-iot-edge://a b-1""#);
        assert_eq!(error(&text).0, col(&text, r#""ms-"#));
        assert!(
            error(&text)
                .1
                .starts_with(r#"device "dev-1": invalid device id "a b""#)
        );
    }

    #[test]
    #[rustfmt::skip]
    fn keys_and_thumbprints_are_checked_at_their_value_without_showing_keys() {
        let long = "f".repeat(64);
        let cases = [
            (r#"{"type":"password"}"#.to_owned(), r#""password""#, "invalid authentication.type: unknown type"),
            (format!(r#"{{"symmetricKey":{{"primaryKey":"{KEY_A}","secondaryKey":"c2VjcmV0"}}}}"#), r#""c2VjcmV0""#, "invalid authentication.symmetricKey.secondaryKey: key sha256:"),
            (format!(r#"{{"symmetricKey":{{"primaryKey":"{KEY_A}"}}}}"#), r#"{"primaryKey""#, "only one of primaryKey and secondaryKey is set"),
            (format!(r#"{{"symmetricKey":{{"primaryKey":null,"secondaryKey":"{KEY_B}"}}}}"#), r#"{"primaryKey""#, "only one of primaryKey and secondaryKey is set"),
            (r#"{"x509Thumbprint":{"primaryThumbprint":"abc"}}"#.to_owned(), r#""abc""#, "invalid authentication.x509Thumbprint.primaryThumbprint: 3 characters"),
            (format!(r#"{{"x509Thumbprint":{{"primaryThumbprint":"{SHA1}","secondaryThumbprint":"{long}"}}}}"#), r#"{"primaryThumbprint""#, "primaryThumbprint has 40 hex digits and secondaryThumbprint 64"),
        ];
        for (auth, at, expected) in cases {
            let text = with(&format!(r#""authentication":{auth}"#));
            let (column, message) = error(&text);
            assert_eq!(column, col(&text, at), "{text}");
            assert!(message.strip_prefix(r#"device "dev-1": "#).is_some_and(|m| m.starts_with(expected)), "{message}");
            assert!(!message.contains("c2VjcmV0") && !message.contains(KEY_A) && !message.contains(KEY_B));
        }
        assert!(matches!(parse(&with(r#""authentication":{"type":"none"}"#)), Ok(Parsed::Device(_))));
    }

    #[test]
    fn empty_keys_and_thumbprints_are_refused_as_empty() {
        for (auth, at, path) in [
            (
                r#"{"symmetricKey":{"primaryKey":"","secondaryKey":""}}"#.to_owned(),
                r#""""#,
                "authentication.symmetricKey.primaryKey",
            ),
            (
                format!(r#"{{"symmetricKey":{{"primaryKey":"{KEY_A}","secondaryKey":""}}}}"#),
                r#""""#,
                "authentication.symmetricKey.secondaryKey",
            ),
            (
                r#"{"x509Thumbprint":{"primaryThumbprint":"","secondaryThumbprint":null},"type":"selfSigned"}"#.to_owned(),
                r#""""#,
                "authentication.x509Thumbprint.primaryThumbprint",
            ),
        ] {
            let text = with(&format!(r#""authentication":{auth}"#));
            let (column, message) = error(&text);
            assert_eq!(column, col(&text, at), "{text}");
            let expected = format!(r#"device "dev-1": {path} is empty; IoT Hub writes"#);
            assert!(message.starts_with(&expected), "{message}");
            assert!(!message.contains("sha256:") && !message.contains(KEY_A), "{message}");
        }
    }

    #[test]
    fn twin_numbers_are_read_when_written_back_as_the_same_value() {
        for (number, written) in [
            ("0", "0"),
            ("-0.0", "-0.0"),
            ("-0e0", "-0.0"),
            ("1.50", "1.5"),
            ("1e2", "100.0"),
            ("100.0", "100.0"),
            ("0.1", "0.1"),
            ("1E-7", "1e-7"),
            // Seventeen digits, as C's %.17g writes: the same double as its shortest text.
            ("0.79999999999999993", "0.7999999999999999"),
            ("0.10000000000000001", "0.1"),
            // More digits than a double keeps: the hub holds the double too.
            ("3.141592653589793238462643383279", "3.141592653589793"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("18446744073709551615", "18446744073709551615"),
            ("1e40", "1e+40"),
            ("5e-324", "5e-324"),
        ] {
            for twin in [
                format!(r#""tags":{{"n":{number}}}"#),
                format!(r#""properties":{{"desired":{{"a":{{"n":{number}}}}}}}"#),
                format!(r#""properties":{{"reported":{{"a":[{{"n":{number}}}]}}}}"#),
            ] {
                let line = device(&with(&twin));
                let text = line.to_json();
                assert!(
                    text.contains(&format!(r#""n":{written}}}"#)),
                    "{number}: {text}"
                );
                assert_eq!(device(&text), line, "{number}");
            }
        }
    }

    #[test]
    #[rustfmt::skip]
    fn twin_numbers_that_would_be_rewritten_are_refused_at_the_number() {
        let long = format!("1{}1", "0".repeat(40));
        let cases = [
            ("123456789012345678901234567890", "number 123456789012345678901234567890", "is beyond 64 bits and would be rewritten as 1.2345678901234568e+29"),
            // 2^70: the double holds it exactly, but writes it as another decimal.
            ("1180591620717411303424", "number 1180591620717411303424", "would be rewritten as 1.1805916207174113e+21"),
            ("18446744073709551616", "number 18446744073709551616", "would be rewritten as 1.8446744073709552e+19"),
            ("-9223372036854775809", "number -9223372036854775809", "would be rewritten as -9.223372036854776e+18"),
            ("-0", "number -0", "is the integer 0 to IoT Hub and would be rewritten as the double -0.0"),
            ("1e400", "number 1e400", "is beyond the range of a double and cannot be held"),
            (long.as_str(), "a number of 42 characters", "would be rewritten as 1e+41"),
        ];
        for (number, what, problem) in cases {
            for (twin, field) in [
                (format!(r#""tags":{{"ok":1.5,"n":{number}}}"#), "tags"),
                (format!(r#""properties":{{"desired":{{"a":["{number}",[{{"n":{number}}}]]}}}}"#), "properties.desired"),
            ] {
                let text = with(&twin);
                let (column, message) = error(&text);
                assert_eq!(Some(column), text.rfind(&format!(":{number}")).map(|at| at as u64 + 2), "{text}");
                let expected = format!(r#"device "dev-1": {what} in {field} "#);
                assert!(message.starts_with(&expected) && message.contains(problem), "{message}");
            }
        }
        // Reported properties are never written: a long integer there is read as serde_json
        // holds it, and written back so in the merged registry.
        let reported = device(&with(r#""properties":{"reported":{"n":123456789012345678901234567890}}"#));
        assert_eq!(reported.reported.expect("reported")["n"], serde_json::json!(1.2345678901234568e29));
        let reported = device(&with(r#""properties":{"reported":{"n":-0}}"#));
        assert_eq!(reported.reported.expect("reported")["n"], serde_json::json!(-0.0));
        // Digits in keys and strings are not numbers, and the hub's counters are dropped unread.
        let line = device(&with(concat!(
            r#""tags":{"123456789012345678901234567890":"3.141592653589793238462643383279"},"#,
            r#""properties":{"desired":{"$version":123456789012345678901234567890,"#,
            r#""$metadata":{"x":[0.123456789012345678901234567890]}}}"#
        )));
        assert_eq!(line.desired, Some(Map::new()));
    }

    /// A twin value serde_json cannot hold, found only when the section is built (the line's
    /// check skips strings and numbers without building them), is refused where serde_json
    /// stopped reading it: inside the value, at its last byte (a string's closing quote, a
    /// number's last digit), not at the section's start.
    #[test]
    fn invalid_json_in_a_twin_section_is_refused_inside_the_value() {
        let surrogate = r#""\ud800""#;
        for (text, field) in [
            (
                r#"{"id":"d","status":"enabled","tags":{"site":"oslo","note":"\ud800"}}"#,
                "tags",
            ),
            (
                r#"{"id":"d","status":"enabled","properties":{"desired":{"a":{"b":"\ud800"}}}}"#,
                "properties.desired",
            ),
            (
                r#"{"id":"d","status":"enabled","properties":{"reported":{"l":["x","\ud800"]}}}"#,
                "properties.reported",
            ),
        ] {
            let (column, message) = error(text);
            // The closing quote, the string's last byte.
            assert_eq!(
                column,
                col(text, surrogate) + surrogate.len() as u64 - 1,
                "{text}"
            );
            let expected = format!(r#"device "d": invalid JSON in {field}: "#);
            assert!(message.starts_with(&expected), "{message}");
            assert!(!message.contains(" at line "), "{message}");
        }
        let text = with(r#""properties":{"reported":{"fw":"1.0","battery":1e999}}"#);
        let (column, message) = error(&text);
        // The number's last digit.
        assert_eq!(column, col(&text, "1e999") + 4, "{text}");
        assert_eq!(
            message,
            r#"device "dev-1": invalid JSON in properties.reported: number out of range"#
        );
    }

    /// Reported properties are read with the numbers serde_json holds as another value, but a
    /// number it cannot hold at all is refused there too, inside the value (at its last digit,
    /// where serde_json stops), not at the section's start.
    #[test]
    fn reported_numbers_no_double_holds_are_refused_at_the_value() {
        let huge = format!("1{}", "0".repeat(400));
        for number in ["1e999", "-1e999", huge.as_str()] {
            let text = with(&format!(
                r#""properties":{{"reported":{{"fw":"1.0","battery":{number}}}}}"#
            ));
            let (column, message) = error(&text);
            let start = col(&text, &format!(":{number}")) + 1;
            assert_eq!(column, start + number.len() as u64 - 1, "{number}");
            assert_eq!(
                message,
                r#"device "dev-1": invalid JSON in properties.reported: number out of range"#
            );
        }
        let line = device(&with(
            r#""properties":{"reported":{"battery":123456789012345678901234567890}}"#,
        ));
        let reported = line.reported.expect("reported");
        assert_eq!(
            reported["battery"],
            serde_json::json!(1.2345678901234568e29)
        );
    }

    #[test]
    fn debug_never_shows_keys() {
        let shown = format!("{:?}", full());
        assert!(!shown.contains(KEY_A) && !shown.contains(KEY_B), "{shown}");
    }
}
