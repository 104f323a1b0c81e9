//! A device identity as a create writes it ([`Identity`]), and the values it is made of.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::credentials::Authentication;
use crate::error::{Error, Result, quoted_name};
use crate::fingerprint_key::FingerprintKey;
use crate::key::{DeviceId, DeviceKey};
use crate::register_map::metadata_listed_twice;
use crate::secret::{may_hold_key, shown_secret};
use crate::serde_text::{map_members, serde_as_text, serde_redacting, sorted_once_each};
use crate::twin::{self, Section, TwinPath};

/// A device's whole state as a create writes it.
///
/// Read from text (`serde_json::from_str`, `from_slice`, `from_reader`, a CBOR reader), an
/// identity listing a metadata name or a twin path twice is refused; a `serde_json::Value`
/// built first has already kept the last of the two, so that `serde_json::from_value` cannot
/// see the repeat.
///
/// # Examples
///
/// ```
/// use failback::{Identity, Section, Status, StatusValue};
/// use serde_json::json;
///
/// let identity = Identity::default()
///     .with_status(StatusValue::new(Status::Disabled, Some("staging".into())))
///     .with_twin(Section::Tags, json!({"site": "berlin"}))?
///     .with_metadata("owner", json!("team-a"));
/// assert_eq!(identity.twin.len(), 1);
/// # Ok::<(), failback::Error>(())
/// ```
// Read through `serde_redacting!`, which hides keys in errors. Every member is required (each
// has been written every time since the first version, no parent as `null`, no twin leaf as
// `{}`) and an unknown one is refused: a missing `parent` read as none and a missing `twin` as
// no leaf would be another creation than the peers' under one dot.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Identity {
    /// Status and reason.
    pub status: StatusValue,
    /// Authentication; keys unknown by default.
    pub authentication: Authentication,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// The edge device this one sits behind, by device id (never a hub-local scope string);
    /// never the device itself, which a write refuses.
    #[serde(deserialize_with = "crate::serde_text::required")]
    pub parent: Option<DeviceId>,
    /// Twin leaves (tags, desired and reported properties) by path: each value a leaf (not a
    /// non-empty object), no path under another; [`with_twin`](Self::with_twin) builds them
    /// from a section's object, and [`Writer::create`](crate::Writer::create) refuses others.
    #[serde(with = "twin::text_keys")]
    pub twin: BTreeMap<TwinPath, Value>,
    /// Application metadata by key.
    #[serde(deserialize_with = "metadata_once_each")]
    pub metadata: BTreeMap<String, Value>,
}

/// The metadata as the text lists it, a name listed twice refused as a record's metadata map
/// refuses one (`RegisterMap`'s reader), naming it alike: read as a map reads it, the last of
/// the two stood, and two texts of one creation read as two identities. (The twin's paths
/// are refused alike by `twin::text_keys`.)
fn metadata_once_each<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, Value>, D::Error> {
    let members: Vec<(String, Value)> = map_members(d)?;
    let members = sorted_once_each(members).map_err(|name| metadata_listed_twice(&name))?;
    Ok(members.into_iter().collect())
}

serde_redacting!(Identity);

/// Every field as a derived `Debug` shows it, but twin and metadata values, each shown as a
/// report shows it: by its fingerprint where it may be a secret (judged as
/// [`Conflict`](crate::Conflict)'s values are).
impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a field added to the identity is added here too.
        let Self {
            status,
            authentication,
            capabilities,
            parent,
            twin,
            metadata,
        } = self;
        f.debug_struct("Identity")
            .field("status", status)
            .field("authentication", authentication)
            .field("capabilities", capabilities)
            .field("parent", parent)
            .field("twin", &twin::ShownValues(twin))
            .field("metadata", &twin::ShownValues(metadata))
            .finish()
    }
}

impl Identity {
    /// With this status.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Identity, Status, StatusValue};
    /// let id = Identity::default().with_status(StatusValue::new(Status::Disabled, None));
    /// assert_eq!(id.status.status, Status::Disabled);
    /// ```
    pub fn with_status(mut self, status: StatusValue) -> Self {
        self.status = status;
        self
    }

    /// With this authentication.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Authentication, Identity, Pair};
    /// let id = Identity::default().with_authentication(Authentication::sas(Pair::default()));
    /// assert!(id.authentication.is_known());
    /// ```
    pub fn with_authentication(mut self, authentication: Authentication) -> Self {
        self.authentication = authentication;
        self
    }

    /// With these capabilities.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Capabilities, Identity};
    /// let id = Identity::default().with_capabilities(Capabilities { iot_edge: true });
    /// assert!(id.capabilities.iot_edge);
    /// ```
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Behind this edge device.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceId, Identity};
    /// let id = Identity::default().with_parent(Some(DeviceId::new("gateway-1")?));
    /// assert_eq!(id.parent.as_ref().map(DeviceId::as_str), Some("gateway-1"));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn with_parent(mut self, parent: Option<DeviceId>) -> Self {
        self.parent = parent;
        self
    }

    /// With a twin section object (replacing that section's leaves).
    ///
    /// Skips `$metadata` and `$version` at the top of desired and reported properties, with
    /// what they hold: IoT Hub's own counters and timestamps, which a twin read from the hub
    /// carries there, hub-local and meaningless in another hub. Nothing else is skipped: a key
    /// holding `$` anywhere else (below the top, or in tags) is not the hub's, and is refused
    /// as IoT Hub refuses it. A `null` is no value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] if `object` is not a JSON object,
    /// breaks IoT Hub's twin key rules (those in arrays included), nests objects deeper than
    /// its ten levels, or holds a value nested deeper than 64 levels.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Identity, Section};
    /// use serde_json::json;
    /// let id = Identity::default().with_twin(Section::Desired, json!({"fw": {"v": 2}, "$version": 7}))?;
    /// assert_eq!(id.twin.keys().next().map(|p| p.to_string()).as_deref(), Some("properties.desired.fw.v"));
    /// assert_eq!(id.twin.len(), 1); // the hub's `$version` is skipped
    /// // Below the top, `$metadata` is no key of the hub's: refused, never dropped with `fw`.
    /// assert!(Identity::default().with_twin(Section::Desired, json!({"fw": {"$metadata": {}}})).is_err());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn with_twin(mut self, section: Section, object: Value) -> Result<Self> {
        let Value::Object(map) = object else {
            return Err(crate::Error::InvalidValue {
                field: section.as_str().into(),
                reason: "a twin section must be a JSON object".into(),
            });
        };
        self.twin.retain(|path, _| path.section != section);
        self.twin.extend(twin::flatten(section, &map)?);
        Ok(self)
    }

    /// Refuses a twin that is not a set of leaves IoT Hub would store (see
    /// `twin::check_leaves`), or a metadata value too deep to be read back: what a registry
    /// takes in an identity.
    pub(crate) fn check_values(&self) -> crate::Result<()> {
        twin::check_leaves(&self.twin)?;
        (self.metadata.iter()).try_for_each(|(name, value)| twin::check_metadata(name, value))
    }

    /// With one metadata value.
    ///
    /// # Examples
    ///
    /// ```
    /// let id = failback::Identity::default().with_metadata("rack", serde_json::json!(4));
    /// assert_eq!(id.metadata["rack"], 4);
    /// ```
    pub fn with_metadata(mut self, key: impl Into<String>, value: Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// A twin section rebuilt as a JSON object.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Identity, Section};
    /// use serde_json::json;
    /// let id = Identity::default().with_twin(Section::Tags, json!({"a": {"b": 1}}))?;
    /// assert_eq!(serde_json::Value::Object(id.section(Section::Tags)), json!({"a": {"b": 1}}));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn section(&self, section: Section) -> Map<String, Value> {
        twin::unflatten_section(&self.twin, section)
    }
}

/// Whether a device may connect.
///
/// Disabling is how an operator blocks a compromised X.509 device (IoT Hub checks no CRL), so
/// it is the value that wins a concurrent conflict.
///
/// # Examples
///
/// ```
/// use failback::Status;
/// assert_eq!("Disabled".parse::<Status>()?, Status::Disabled);
/// assert_eq!(Status::Enabled.as_str(), "enabled");
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// The device may connect.
    #[default]
    Enabled,
    /// The device is blocked.
    Disabled,
}

impl Status {
    /// The name written to export and import files.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::Status::Disabled.as_str(), "disabled");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = Error;

    /// Reads any case (`Enabled`, `DISABLED`): other SDKs drift.
    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("enabled") {
            Ok(Self::Enabled)
        } else if s.eq_ignore_ascii_case("disabled") {
            Ok(Self::Disabled)
        } else {
            Err(Error::InvalidValue {
                field: "status".into(),
                reason: format!(
                    "unknown status {}; expected enabled or disabled",
                    quoted_name(s)
                ),
            })
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

serde_as_text!(Status, |status| status.as_str());

/// A status with the operator's reason, written as one unit so a reason always travels with
/// the status it explains.
///
/// `Display` and `Debug` hide a reason that may hold a key (an operator's free text, into
/// which one may have been pasted) as `<hidden>`, and show every other reason whole. A status
/// conflict in a report shows it so too, or by its keyed fingerprint under the policy's
/// [`fingerprint_key`](crate::Policy::fingerprint_key). Serde writes it whole.
///
/// # Examples
///
/// ```
/// use failback::{Status, StatusValue};
/// let v = StatusValue::new(Status::Disabled, Some("stolen".into()));
/// assert_eq!(v.to_string(), "disabled (stolen)");
/// let leaked = "leaked MDEyMzQ1Njc4OWFiY2RlZg==";
/// let v = StatusValue::new(Status::Disabled, Some(leaked.into()));
/// assert_eq!(v.to_string(), "disabled (<hidden>)");
/// ```
// `reason` is left out when there is none, so an unknown member is refused: `reaosn` read as
// no reason. Read through `serde_redacting!`: the unknown member's name could be a key.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct StatusValue {
    /// Enabled or disabled.
    pub status: Status,
    /// Why (up to 128 characters in IoT Hub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

serde_redacting!(StatusValue);

impl StatusValue {
    /// A status and its reason.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = failback::StatusValue::new(failback::Status::Enabled, None);
    /// assert_eq!(v.to_string(), "enabled");
    /// ```
    pub fn new(status: Status, reason: Option<String>) -> Self {
        Self { status, reason }
    }
}

impl fmt::Display for StatusValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = ShownStatus {
            value: self,
            key: None,
        };
        fmt::Display::fmt(&shown, f)
    }
}

impl fmt::Debug for StatusValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusValue")
            .field("status", &self.status)
            .field("reason", &self.reason.as_deref().map(ShownReason::unkeyed))
            .finish()
    }
}

/// A status reason as a report, a log or a message shows it: as [`shown_secret`] shows hidden
/// text (by its keyed fingerprint under `key`, as `<hidden>` without one) where it may hold a
/// key or a credential made from one ([`may_hold_key`]), whole otherwise (quoted by `Debug`, as a string is). A reason is
/// free text, and a key pasted into one would otherwise be shown whole by a status conflict,
/// while a twin value holding it is hidden. Held to the text, not to names as a twin value
/// is: a reason saying `password reset` holds no password.
pub(crate) struct ShownReason<'a> {
    pub(crate) reason: &'a str,
    pub(crate) key: Option<&'a FingerprintKey>,
}

impl<'a> ShownReason<'a> {
    /// `reason` as `Display` and `Debug` show it, with no key to hand.
    pub(crate) fn unkeyed(reason: &'a str) -> Self {
        Self { reason, key: None }
    }
}

impl fmt::Display for ShownReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if may_hold_key(self.reason) {
            f.write_str(&shown_secret(self.reason, self.key))
        } else {
            f.write_str(self.reason)
        }
    }
}

impl fmt::Debug for ShownReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if may_hold_key(self.reason) {
            fmt::Display::fmt(self, f)
        } else {
            fmt::Debug::fmt(self.reason, f)
        }
    }
}

/// A status as a conflict shows it: its reason as [`ShownReason`] shows it under `key`.
pub(crate) struct ShownStatus<'a> {
    pub(crate) value: &'a StatusValue,
    pub(crate) key: Option<&'a FingerprintKey>,
}

impl fmt::Display for ShownStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value.reason {
            Some(reason) => {
                let reason = ShownReason {
                    reason,
                    key: self.key,
                };
                write!(f, "{} ({reason})", self.value.status)
            }
            None => write!(f, "{}", self.value.status),
        }
    }
}

/// Refuses `value` as the status of `key` where IoT Hub keeps no such status: a module is
/// never disabled (it has no status of its own; disabling its device blocks it). Written, a
/// disable would win every merge and then be refused by the export check, or be lost by an
/// import that leaves the module enabled. Held to by every write
/// of a status ([`Writer::create`](crate::Writer::create),
/// [`Writer::set_status`](crate::Writer::set_status)) and by the reading of a registry, where a
/// record's key is known.
pub(crate) fn check_status(key: &DeviceKey, value: &StatusValue) -> Result<()> {
    if key.module.is_some() && value.status == Status::Disabled {
        return Err(Error::InvalidValue {
            field: format!("status of {key}"),
            reason: "IoT Hub modules cannot be disabled; disable the device to block it".into(),
        });
    }
    Ok(())
}

/// Refuses `parent` as the edge parent of `key` where it names the device itself. An IoT Edge
/// device's scope names the device (an export line's [`parent`](crate::iothub::ExportLine::parent)
/// is then the device itself), but its parent, the edge device it sits behind, is another or
/// none: IoT Hub takes no device as its own parent, and a plan would write the device's own
/// scope for a plain device. Held to by every write of a parent
/// ([`Writer::create`](crate::Writer::create), [`Writer::set_parent`](crate::Writer::set_parent),
/// a lift's creations) and by the reading of a registry, where a record's key is known; never
/// by a merge, which takes what writers wrote. A module's parent is not checked: IoT Hub gives
/// a module its device's scope, and nothing of this crate reads a module's parent.
pub(crate) fn check_parent(key: &DeviceKey, parent: Option<&DeviceId>) -> Result<()> {
    if key.module.is_none() && parent == Some(&key.device) {
        return Err(Error::InvalidValue {
            field: format!("parent of {key}"),
            reason: "a device cannot be its own edge parent; an IoT Edge device's scope names \
                     it, but its parent is another edge device, or none"
                .into(),
        });
    }
    Ok(())
}

/// What a device can do beyond telemetry.
///
/// # Examples
///
/// ```
/// let caps = failback::Capabilities { iot_edge: true };
/// assert_eq!(caps.to_string(), "iotEdge=true");
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Capabilities {
    /// Whether the device is an IoT Edge device (a gateway that can parent others).
    #[serde(rename = "iotEdge")]
    pub iot_edge: bool,
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iotEdge={}", self.iot_edge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason is free text, and may hold a key an operator pasted into it: hidden, by
    /// `Display` and `Debug` alike, a key's text alone too (a passphrase can have its shape,
    /// review 72), and whole otherwise; in a conflict, under a fingerprint key, by its keyed
    /// fingerprint.
    #[test]
    fn a_reason_that_may_hold_a_key_is_hidden() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
        let leaked = format!("leaked key {key}");
        let value = StatusValue::new(Status::Disabled, Some(leaked.clone()));
        assert_eq!(value.to_string(), "disabled (<hidden>)");
        assert_eq!(
            format!("{value:?}"),
            "StatusValue { status: Disabled, reason: Some(<hidden>) }"
        );
        let fingerprint_key =
            FingerprintKey::new(b"an operator's key of 32 bytes...").expect("32 bytes");
        let keyed = ShownStatus {
            value: &value,
            key: Some(&fingerprint_key),
        };
        let expected = format!("disabled (<{}>)", fingerprint_key.fingerprint(&leaked));
        assert_eq!(keyed.to_string(), expected);
        let pasted = StatusValue::new(Status::Disabled, Some(key.into()));
        assert_eq!(pasted.to_string(), "disabled (<hidden>)");
        let stolen = StatusValue::new(Status::Disabled, Some("stolen".into()));
        assert_eq!(stolen.to_string(), "disabled (stolen)");
        assert_eq!(
            format!("{stolen:?}"),
            r#"StatusValue { status: Disabled, reason: Some("stolen") }"#
        );
        let none = StatusValue::default();
        assert_eq!(
            format!("{none:?}"),
            "StatusValue { status: Enabled, reason: None }"
        );
    }
}
