//! Which device an error about a line names, and how a member's name is shown in a message.
//!
//! An error names the device or module its line is about whenever the line says which, even
//! cut short, so that an operator knows what to export again; and a message never shows a
//! name that may hold a key's text.

use crate::error::Error;
use crate::iothub::json::Member;
use crate::key::{DeviceId, DeviceKey, ModuleId};
use crate::secret::canonical_fingerprint;
use crate::twin;

/// `err` about a line that is not valid JSON (or not UTF-8 past `text`), naming the device it
/// is about when the line starts as IoT Hub writes one, `{"id":"…"` (then `,"moduleId":"…"`):
/// a line cut short, the most common damage, still says which device to export again.
pub(in crate::iothub) fn named(text: &str, err: Error) -> Error {
    /// The string after `"name":` at the start of `rest` (no escapes), and what follows it.
    fn member<'t>(rest: &'t str, name: &str) -> Option<(&'t str, &'t str)> {
        let rest = rest.trim_start().strip_prefix('"')?.strip_prefix(name)?;
        let rest = rest.strip_prefix('"')?.trim_start().strip_prefix(':')?;
        let rest = rest.trim_start().strip_prefix('"')?;
        let end = rest.find(['"', '\\'])?;
        rest[end..]
            .starts_with('"')
            .then(|| (&rest[..end], &rest[end + 1..]))
    }
    let leading = text.trim_start().strip_prefix('{').and_then(|rest| {
        let (id, rest) = member(rest, "id")?;
        let device = DeviceId::new(id).ok()?;
        let next = rest.trim_start().strip_prefix(',').unwrap_or_default();
        // A module line cut inside its module id is not its device's line: named as neither.
        let module = if next.trim_start().starts_with("\"moduleId\"") {
            let (module, _) = member(next, "moduleId")?;
            Some(ModuleId::new(module).ok()?)
        } else {
            None
        };
        Some(DeviceKey { device, module })
    });
    match leading {
        Some(key) => about(&key, err),
        None => err,
    }
}

/// The device a line's `members` name, for an error found before they are read: its one `id`,
/// if a valid device id, and its one `moduleId`, if a valid module id (else the device alone,
/// as a line whose module id is refused is named). A doubled `id` names no device: which copy
/// is the line's is the question.
pub(super) fn key_in(members: &[Member<'_>]) -> Option<DeviceKey> {
    let single = |name: &str| {
        let mut found = members.iter().filter(|member| member.key == name);
        match (found.next(), found.next()) {
            (Some(member), None) => member.value.string().ok().flatten(),
            _ => None,
        }
    };
    let device = DeviceId::new(single("id")?).ok()?;
    let module = single("moduleId").and_then(|module| ModuleId::new(module).ok());
    Some(DeviceKey { device, module })
}

/// `err` with the device or module it is about named first, as other messages of this reader
/// name them (`device "d7": …`, `module "m1" of device "d7": …`).
pub(super) fn about(key: &DeviceKey, err: Error) -> Error {
    match err {
        Error::Parse {
            path,
            line,
            column,
            message,
        } => {
            let message = match &key.module {
                Some(module) => format!(
                    "module {:?} of device {:?}: {message}",
                    module.as_str(),
                    key.device.as_str()
                ),
                None => format!("device {:?}: {message}", key.device.as_str()),
            };
            Error::Parse {
                path,
                line,
                column,
                message,
            }
        }
        other => other,
    }
}

/// The longest member name a message shows; a longer one is shown by its length and
/// fingerprint, since any prefix of it could be most of a key.
const MAX_SHOWN_NAME_CHARS: usize = 64;

/// A member's name as a message shows it, quoted: each `.`-separated part that may hold a
/// symmetric key's text by its fingerprint, as a refused twin path shows it ([`twin::shown`]),
/// and a name over 64 characters by its length and fingerprint. Names are not secrets, but a damaged
/// line may hold a key where a name belongs (a twin key, an object's member), and messages
/// never show one.
pub(in crate::iothub) fn shown_name(name: &str) -> String {
    let n = name.chars().count();
    if n <= MAX_SHOWN_NAME_CHARS {
        format!("{:?}", twin::shown(name))
    } else {
        format!("\"<{n} characters, {}>\"", canonical_fingerprint(name))
    }
}
