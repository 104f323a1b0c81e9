//! Why an import line cannot be written: the checks that leave a device out of the plan
//! ([`Blocked`](super::Blocked)) rather than write a line that would make the hub generate
//! keys, restore a rotated-out one, or be refused on every run.

use crate::credentials::{AuthType, Authentication};
use crate::iothub::import_mode::ImportMode;
use crate::iothub::lift::{BaseCredentials, PrimaryLine};
use crate::iothub::line::ExportLine;
use crate::policy::Rule;
use crate::report::Conflict;
use crate::view::Device;

/// Why no rule could settle `device`'s credentials, if so.
pub(super) fn resolved(device: &Device) -> Result<(), String> {
    if device
        .conflicts
        .iter()
        .any(|c| c.field == "authentication" && c.rule == Rule::RetiredCredentialUnresolved)
    {
        return Err("concurrent credential rotations on both sides: every value holds a key or \
                    thumbprint the other side rotated out; choose the credentials and import by hand"
            .into());
    }
    Ok(())
}

/// Why a create or full update of `device` cannot be written without making the hub generate
/// credentials or restore a rotated-out one.
pub(super) fn usable(device: &Device) -> Result<(), String> {
    resolved(device)?;
    let auth: &Authentication = &device.authentication;
    match auth.kind {
        AuthType::Sas => match &auth.keys {
            Some(keys) if keys.primary.is_some() && keys.secondary.is_some() => Ok(()),
            Some(_) => Err(
                "symmetric keys are empty: importing would make the hub generate new ones".into(),
            ),
            None => {
                Err("symmetric keys unknown (exported without keys): re-export with keys".into())
            }
        },
        AuthType::SelfSigned => match &auth.thumbprints {
            Some(t) if t.primary.is_some() => Ok(()),
            Some(_) => Err("no primary thumbprint: the device could not authenticate".into()),
            None => Err("thumbprints unknown (exported without keys): re-export with keys".into()),
        },
        AuthType::CertificateAuthority | AuthType::None => Ok(()),
    }
}

/// Why a full update cannot be written over the primary's line `was`, if it cannot. A full
/// update replaces the identity's authentication whole. Over a primary exported without keys,
/// the merged credentials are the base's (lift takes known over unknown) or the secondary's,
/// while the primary may have rotated its keys during the outage: writing them would restore
/// a rotated-out key. A twin update carries no credentials, a delete and a create replace none
/// the primary holds: they need no such check.
pub(super) fn replaces_known(was: &PrimaryLine) -> Result<(), String> {
    if was.credentials_known {
        return Ok(());
    }
    Err(
        "the primary was exported without keys, and a full update replaces its credentials \
         (it could restore a key the primary rotated out): re-export the primary with keys and \
         run again"
            .into(),
    )
}

/// Why a full update cannot write `device`'s capabilities over the primary's line `was`, if
/// it cannot: the line did not state them (null or absent, its scope not its own), yet the
/// primary's export names the device as an edge parent (`named_parent`: a leaf's scope names
/// it), so the primary holds it as an IoT Edge device. The lift reads it as one too, so the
/// merge holds it plain only where a side stated it plain (the secondary demoted it), and a
/// full update writing `iotEdge: false` would demote the gateway and strand its leaves, over a
/// line that never stated what it replaces. That demotion waits for an export that states it.
/// The plan relies on it: such a device stays an edge device in the primary, so a leaf's line
/// keeps its scope (`stands_as_parent` in the plan).
pub(super) fn keeps_edge(
    device: &Device,
    was: &PrimaryLine,
    named_parent: bool,
) -> Result<(), String> {
    if was.capabilities_known || !named_parent || device.capabilities.iot_edge {
        return Ok(());
    }
    Err(
        "the primary's export gives no capabilities for it, yet names it as a leaf's edge \
         parent, and a full update would write it as a plain device (demoting the gateway): \
         re-export the primary with its capabilities and run again"
            .into(),
    )
}

/// Why the two sides' credentials for `device` cannot be settled when the base does not know
/// them (`base`: exported without them, or no line for the device), if they cannot. Against
/// unknown base credentials, each side's known ones read as a change (for a device the base
/// lacks, each side's creation holds them), so two that differ met as a conflict the
/// preference settled, though perhaps only one side changed them: whichever side lost may have
/// rotated out a key the winner still holds. Which side changed them is not in the files, so
/// the device is left to an operator, whichever side the preference picked, and even when the
/// primary already holds the winner. Sides that hold the same credentials meet no such
/// conflict, and a device only one side holds none at all: both are written.
pub(super) fn base_decides_credentials(
    device: &Device,
    base: BaseCredentials,
) -> Result<(), String> {
    let differ = |c: &Conflict| c.field == "authentication" && c.rule != Rule::Agreed;
    if !device.conflicts.iter().any(differ) {
        return Ok(());
    }
    let unknown = match base {
        BaseCredentials::Known => return Ok(()),
        BaseCredentials::Unknown => {
            "the base was exported without keys, so which side changed them is unknown, and \
             either may hold a key the other rotated out: give a backup taken with keys before \
             the switch as the base and run again, or settle the credentials by hand"
        }
        BaseCredentials::Absent => {
            "the base has no line for it (created since the backup), so which side changed \
             them is unknown, and either may hold a key the other rotated out: settle the \
             credentials by hand"
        }
    };
    Err(format!(
        "the two hubs hold different credentials and {unknown}"
    ))
}

/// Why an `*IfMatchETag` line for `mode` cannot be written without the primary's `etag`
/// (`field` names it), if it cannot.
///
/// IOTHUB.md does not say how the hub treats such a line without its ETag. Leaving the device
/// out is the conservative choice: the line would most likely be refused on every run, and
/// writing it in a mode that checks no ETag instead would overwrite whatever changed on the
/// primary since its export.
pub(super) fn has_etag(etag: Option<&String>, field: &str, mode: ImportMode) -> Result<(), String> {
    match etag {
        Some(_) => Ok(()),
        None => Err(format!(
            "the primary's export has no {field} for it, which {mode} needs: re-export the \
             primary and run again"
        )),
    }
}

/// IoT Hub's size limits for the twin sections an import line writes (IOTHUB.md: tags 8 KB,
/// desired 32 KB), a kilobyte taken as 1,024 bytes.
const TAGS_LIMIT: usize = 8 * 1024;
const DESIRED_LIMIT: usize = 32 * 1024;

/// IoT Hub's limit on `statusReason` (IOTHUB.md: up to 128 characters).
const STATUS_REASON_LIMIT: usize = 128;

/// Why the hub would refuse `line` for the size of its status reason or of a twin section it
/// carries, if it would: the hub refuses it on every run, so the device is left out with the
/// field and its size. The reader refuses a longer reason in an export; a registry built
/// through the library can still hold one.
///
/// A section is measured as the compact JSON text the line carries for it (`{…}`, keys
/// sorted, serde_json's escapes), in UTF-8 bytes. That is an approximation: IOTHUB.md gives the
/// limits but not how the hub counts, so a section close to a limit may still be refused, or
/// pass where this counts it over.
pub(super) fn fits(line: &ExportLine) -> Result<(), String> {
    // Characters, as IOTHUB.md counts them; whether the hub counts UTF-16 units is not known.
    let reason = line
        .status_reason
        .as_deref()
        .map_or(0, |r| r.chars().count());
    if reason > STATUS_REASON_LIMIT {
        return Err(format!(
            "the merged status reason is {reason} characters, over IoT Hub's limit of \
             {STATUS_REASON_LIMIT}: the hub would refuse the line; shorten it on either hub, \
             export again and run again"
        ));
    }
    let sections = [
        ("tags", &line.tags, TAGS_LIMIT),
        ("desired properties", &line.desired, DESIRED_LIMIT),
    ];
    for (name, section, limit) in sections {
        let Some(section) = section else { continue };
        let mut text = crate::iothub::json::Writer::default();
        text.map(section);
        let size = text.into_string().len();
        if size > limit {
            return Err(format!(
                "merged {name} are {size} bytes as compact JSON, over IoT Hub's limit of \
                 {limit}: the hub would refuse the line; shrink them on either hub, export \
                 again and run again"
            ));
        }
    }
    Ok(())
}
