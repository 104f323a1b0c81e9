//! Device and module identifiers, validated by IoT Hub's rules at construction.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::{canonical_fingerprint, may_hold_key};
use crate::serde_text::serde_as_text;
use crate::text::Text;

/// The longest id IoT Hub accepts, in characters (all ASCII, so also bytes).
const MAX_ID_LEN: usize = 128;

/// IoT Hub's id alphabet: ASCII letters and digits plus `- . + % _ # * ? ! ( ) , = @ $ '`,
/// and the legacy `:` and `;` that older hubs still hold.
fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.+%_#*?!(),=@$':;".contains(&c)
}

fn validate(kind: &'static str, id: &str) -> Result<()> {
    // Ids are not secrets, but an invalid one may hold a key that a damaged line moved into
    // the id, alone (a `/` is the one base64 character ids refuse) or beside a character no
    // id holds (`x KEY`).
    let invalid = |reason: String| Error::InvalidId {
        kind,
        id: if may_hold_key(id) {
            format!(
                "(not shown: it may hold a key, {})",
                canonical_fingerprint(id)
            )
        } else {
            id.to_owned()
        },
        reason,
    };
    if id.is_empty() {
        return Err(invalid("an id must not be empty".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(format!(
            "{} characters, at most {MAX_ID_LEN} allowed",
            id.chars().count()
        )));
    }
    if let Some((at, c)) = id
        .char_indices()
        .find(|&(_, c)| !c.is_ascii() || !is_id_char(c as u8))
    {
        return Err(invalid(format!(
            "character {c:?} at position {} is not allowed; use ASCII letters, digits and -.+%_#*?!(),=@$' (older hubs also hold : and ;)",
            at + 1
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($repr:ty), $kind:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($repr);

        impl $name {
            /// Validates `id` against IoT Hub's rules: case-sensitive, 1 to 128 ASCII letters,
            /// digits and `-.+%_#*?!(),=@$'` (plus legacy `:` and `;`).
            ///
            /// # Errors
            ///
            /// [`Error::InvalidId`] naming the rule the id breaks.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use failback::", stringify!($name), ";")]
            ///
            #[doc = concat!("let id = ", stringify!($name), "::new(\"", $example, "\")?;")]
            #[doc = concat!("assert_eq!(id.as_str(), \"", $example, "\");")]
            #[doc = concat!("assert!(", stringify!($name), "::new(\"\").is_err());")]
            /// # Ok::<(), failback::Error>(())
            /// ```
            pub fn new(id: impl Into<String>) -> Result<Self> {
                let id = id.into();
                validate($kind, &id)?;
                Ok(Self::trusted(id))
            }

            /// An id the crate built itself from allowed characters.
            pub(crate) fn trusted(id: String) -> Self {
                debug_assert!(validate($kind, &id).is_ok());
                Self(<$repr>::from(id))
            }

            /// The id as text.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let id = failback::", stringify!($name), "::new(\"", $example, "\")?;")]
            #[doc = concat!("assert_eq!(id.as_str(), \"", $example, "\");")]
            /// # Ok::<(), failback::Error>(())
            /// ```
            pub fn as_str(&self) -> &str {
                AsRef::<str>::as_ref(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        serde_as_text!($name, $name::as_str, $name::new);
    };
}

id_type!(
    /// A device id: case-sensitive, validated by IoT Hub's rules.
    ///
    /// Cloning shares the text: registries cloned from one another hold one copy of each id.
    /// Ordering two ids, which a registry lookup does a dozen times, seldom reads their text:
    /// an id keeps its first bytes inline.
    DeviceId(Text),
    "device",
    "thermostat-42"
);
id_type!(
    /// A module id: same rules as [`DeviceId`]; ids starting with `$` are IoT Edge system modules.
    ///
    /// Cloning shares the text. Modules are ordered only among one device's, so they keep no
    /// inline prefix, and a key stays a third smaller.
    ModuleId(Arc<str>),
    "module",
    "$edgeAgent"
);

impl ModuleId {
    /// Whether this is one of IoT Edge's system modules, `$edgeAgent` and `$edgeHub`, which
    /// the edge runtime manages and an import can never create.
    ///
    /// Those two by name, not every id starting with `$`: the id alphabet allows `$`
    /// anywhere, and IoT Hub names no other system module, so a `$metrics` module is the
    /// application's and is merged and written like any other.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::ModuleId;
    /// assert!(ModuleId::new("$edgeHub")?.is_system());
    /// assert!(!ModuleId::new("reader")?.is_system());
    /// assert!(!ModuleId::new("$metrics")?.is_system());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn is_system(&self) -> bool {
        matches!(self.as_str(), "$edgeAgent" | "$edgeHub")
    }
}

/// What a registry is keyed by: a device id and, for module identities, a module id.
///
/// Ordered by device id, then module id (a device sorts before its modules), which is the order
/// of every output this crate writes.
///
/// A module's key is a key of its own: a registry, its merge and an
/// [`Ingest`](crate::Ingest) hold and take writes for a module whose device is deleted or
/// unknown, and deleting a device leaves its modules. IoT Hub does neither; only the IoT Hub
/// import plan leaves such modules out. [`Writer::delete`](crate::Writer::delete) says what
/// a library user must do.
///
/// # Examples
///
/// ```
/// use failback::DeviceKey;
///
/// let device = DeviceKey::device("edge-1")?;
/// let module = DeviceKey::module("edge-1", "reader")?;
/// assert!(device < module);
/// assert_eq!(module.to_string(), "edge-1/reader");
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceKey {
    /// The device id.
    pub device: DeviceId,
    /// The module id, for module identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleId>,
}

impl DeviceKey {
    /// The key of a device identity.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if the id breaks IoT Hub's rules.
    ///
    /// # Examples
    ///
    /// ```
    /// let key = failback::DeviceKey::device("sensor-7")?;
    /// assert!(key.module.is_none());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn device(device: impl Into<String>) -> Result<Self> {
        Ok(Self {
            device: DeviceId::new(device)?,
            module: None,
        })
    }

    /// The key of a module identity of `device`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if either id breaks IoT Hub's rules.
    ///
    /// # Examples
    ///
    /// ```
    /// let key = failback::DeviceKey::module("edge-1", "$edgeHub")?;
    /// assert_eq!(key.module.as_ref().map(|m| m.as_str()), Some("$edgeHub"));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn module(device: impl Into<String>, module: impl Into<String>) -> Result<Self> {
        Ok(Self {
            device: DeviceId::new(device)?,
            module: Some(ModuleId::new(module)?),
        })
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.module {
            Some(module) => write!(f, "{}/{}", self.device, module),
            None => write!(f, "{}", self.device),
        }
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_allowed_character_and_legacy_colon() {
        assert!(DeviceId::new("aZ09-.+%_#*?!(),=@$':;").is_ok());
    }

    #[test]
    fn rejects_too_long_non_ascii_and_spaces() {
        assert!(DeviceId::new("a".repeat(128)).is_ok());
        assert!(DeviceId::new("a".repeat(129)).is_err());
        assert!(DeviceId::new("caf\u{e9}").is_err());
        assert!(DeviceId::new("a b").is_err());
        assert!(DeviceId::new("a/b").is_err());
    }

    #[test]
    fn an_invalid_id_shaped_like_a_key_is_not_shown() {
        let key = "ab/cdEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop=";
        for err in [
            DeviceId::new(key).map(|_| ()),
            ModuleId::new(key).map(|_| ()),
        ] {
            let message = err.expect_err("'/' is refused").to_string();
            assert!(!message.contains(key), "{message}");
            // The key's own fingerprint, its canonical spelling's (`p` before the `=` has an
            // unused bit set).
            let shown = crate::SymmetricKey::new(key).expect("a key").fingerprint();
            assert!(message.contains(&shown.to_string()), "{message}");
        }
        // A key beside a character no id holds is not shown either.
        let beside = format!("x {key}");
        let message = DeviceId::new(&beside).expect_err("space").to_string();
        assert!(!message.contains(&key[..22]), "{message}");
        // Nor a SAS token, whose URL-encoded signature holds no run as long as a key's.
        let token =
            "SharedAccessSignature sr=h&sig=Gi7UJZ3nPmO%2BjQKLzDt9Y1hwvqD%2BZyGQpD6xuH7L0dA";
        let message = DeviceId::new(token).expect_err("space").to_string();
        assert!(!message.contains("Gi7UJZ3nPmO"), "{message}");
        // Other invalid ids are shown, to be found and fixed.
        let message = DeviceId::new("a b").expect_err("space").to_string();
        assert!(message.contains(r#""a b""#), "{message}");
    }

    #[test]
    fn ids_are_case_sensitive() {
        assert_ne!(DeviceId::new("Dev").ok(), DeviceId::new("dev").ok());
    }
}
