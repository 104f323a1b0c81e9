//! The values a device identity is made of, apart from credentials and twin.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

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
                reason: format!("unknown status {s:?}; expected enabled or disabled"),
            })
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A status with the operator's reason, written as one unit so a reason always travels with
/// the status it explains.
///
/// # Examples
///
/// ```
/// use failback::{Status, StatusValue};
/// let v = StatusValue::new(Status::Disabled, Some("stolen".into()));
/// assert_eq!(v.to_string(), "disabled (stolen)");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatusValue {
    /// Enabled or disabled.
    pub status: Status,
    /// Why (up to 128 characters in IoT Hub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

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
        match &self.reason {
            Some(reason) => write!(f, "{} ({reason})", self.status),
            None => write!(f, "{}", self.status),
        }
    }
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
