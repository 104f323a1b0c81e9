//! The `importMode` of an import line: what IoT Hub does with it.

use std::fmt;

use crate::error::{Error, Result, quoted_name};
use crate::serde_text::serde_as_text;

/// What an import does with a line (`importMode`); an absent mode means
/// [`CreateOrUpdate`](Self::CreateOrUpdate).
///
/// Read in any case and with or without `_` (other SDKs drift), written camelCase.
///
/// # Examples
///
/// ```
/// use failback::iothub::ImportMode;
///
/// assert_eq!("UPDATE_TWIN_IF_MATCH_ETAG".parse::<ImportMode>()?, ImportMode::UpdateTwinIfMatchETag);
/// assert_eq!(ImportMode::CreateOrUpdateIfMatchETag.as_str(), "createOrUpdateIfMatchETag");
/// assert!("upsert".parse::<ImportMode>().is_err());
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImportMode {
    /// Create the device, or overwrite it if it exists (IoT Hub's default).
    #[default]
    CreateOrUpdate,
    /// Create the device; an error if it exists.
    Create,
    /// Overwrite the device; an error if it does not exist.
    Update,
    /// Overwrite the device if its registry `eTag` matches.
    UpdateIfMatchETag,
    /// Create the device, or overwrite it if its registry `eTag` matches.
    CreateOrUpdateIfMatchETag,
    /// Delete the device.
    Delete,
    /// Delete the device if its registry `eTag` matches.
    DeleteIfMatchETag,
    /// Overwrite the device's twin.
    UpdateTwin,
    /// Overwrite the device's twin if its `twinETag` matches.
    UpdateTwinIfMatchETag,
}

impl ImportMode {
    /// Every mode, in IoT Hub's documentation order.
    const ALL: [Self; 9] = [
        Self::CreateOrUpdate,
        Self::Create,
        Self::Update,
        Self::UpdateIfMatchETag,
        Self::CreateOrUpdateIfMatchETag,
        Self::Delete,
        Self::DeleteIfMatchETag,
        Self::UpdateTwin,
        Self::UpdateTwinIfMatchETag,
    ];

    /// The camelCase name written to import files.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::iothub::ImportMode::DeleteIfMatchETag.as_str(), "deleteIfMatchETag");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateOrUpdate => "createOrUpdate",
            Self::Create => "create",
            Self::Update => "update",
            Self::UpdateIfMatchETag => "updateIfMatchETag",
            Self::CreateOrUpdateIfMatchETag => "createOrUpdateIfMatchETag",
            Self::Delete => "delete",
            Self::DeleteIfMatchETag => "deleteIfMatchETag",
            Self::UpdateTwin => "updateTwin",
            Self::UpdateTwinIfMatchETag => "updateTwinIfMatchETag",
        }
    }
}

impl std::str::FromStr for ImportMode {
    type Err = Error;

    /// Reads any case and `_` spelling (`UPDATE_TWIN`, `UpdateTwin`), since other SDKs drift.
    fn from_str(s: &str) -> Result<Self> {
        let folded: String = s.chars().filter(|&c| c != '_').collect();
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(&folded))
            .ok_or_else(|| Error::InvalidValue {
                field: "importMode".into(),
                reason: format!(
                    "unknown import mode {}; expected one of {}",
                    quoted_name(s),
                    Self::ALL.map(Self::as_str).join(", ")
                ),
            })
    }
}

impl fmt::Display for ImportMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

serde_as_text!(ImportMode, |mode| mode.as_str());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_reads_back_in_any_case_and_unknown_ones_name_the_choices() {
        for mode in ImportMode::ALL {
            assert_eq!(
                mode.as_str().to_uppercase().parse::<ImportMode>().ok(),
                Some(mode)
            );
        }
        let err = "merge"
            .parse::<ImportMode>()
            .expect_err("unknown")
            .to_string();
        assert!(
            err.contains("expected one of createOrUpdate, create, update,"),
            "{err}"
        );
    }
}
