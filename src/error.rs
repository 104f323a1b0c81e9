//! The crate's one error type.
//!
//! Errors exist only at boundaries: parsing input, validating values at construction,
//! ingesting events, and I/O. Merging never fails (see [`crate::Registry::merge`]).

use std::path::PathBuf;

use crate::clock::Dot;
use crate::ingest::EventId;
use crate::key::DeviceKey;

/// `value` quoted, for a message about a name that is not one of a few (a status, an import
/// mode, an authentication type); only its length when it is long enough to be a key (a
/// symmetric key is at least 24 base64 characters): the value of a field in a damaged or
/// shifted file may be a secret that belongs elsewhere, and messages never show one.
pub(crate) fn quoted_name(value: &str) -> String {
    if value.len() < 24 {
        format!("{value:?}")
    } else {
        let n = value.chars().count();
        format!("of {n} characters (not shown: it may be a key)")
    }
}

/// `message` with each string serde quoted in it (`string "…"`, as in `invalid type: string
/// "…", expected …`, and `` `…` ``, as in ``unknown variant `…` ``) that is long enough to be a
/// key replaced by its length; `None` when there is none. serde's messages quote the value
/// found, so a key stored one level off in a registry's text would be shown whole by the error
/// of whichever type expected something else there.
pub(crate) fn without_quoted_keys(message: &str) -> Option<String> {
    const STRING: &str = "string \"";
    let mut out = String::new();
    let mut rest = message;
    let mut redacted = false;
    loop {
        let string = rest.find(STRING).map(|at| (at, STRING.len(), '"'));
        let tick = rest.find('`').map(|at| (at, 1, '`'));
        let Some((at, open, close)) = [string, tick].into_iter().flatten().min() else {
            break;
        };
        let body = &rest[at + open..];
        // The quoted text ends at the first closing quote not escaped (Debug escapes `"` and
        // `\`; serde's backticks quote the text as it is).
        let mut escaped = false;
        let end = body.char_indices().find_map(|(i, c)| {
            let closes = c == close && !escaped;
            escaped = close == '"' && c == '\\' && !escaped;
            closes.then_some(i)
        });
        let Some(end) = end else { break };
        out.push_str(&rest[..at]);
        let quoted = &body[..end];
        if quoted.len() >= 24 {
            let n = quoted.chars().count();
            out.push_str(&format!(
                "a string of {n} characters (not shown: it may be a key)"
            ));
            redacted = true;
        } else {
            out.push_str(&rest[at..at + open + end + 1]);
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    redacted.then_some(out)
}

impl Error {
    /// The error with the device it concerns named in its field, for a value checked without
    /// knowing whose it is (a twin path, a key) and refused on behalf of a device.
    pub(crate) fn of_device(self, key: &DeviceKey) -> Self {
        match self {
            Error::InvalidValue { field, reason } => Error::InvalidValue {
                field: format!("{field} of {key}"),
                reason,
            },
            other => other,
        }
    }
}

/// `err` with its quoted strings that could be keys hidden (`without_quoted_keys`): for the
/// reader of a type whose text holds keys (a registry, an ingest, an event, a record, an
/// identity), around everything it reads.
pub(crate) fn redacted<E: serde::de::Error>(err: E) -> E {
    match without_quoted_keys(&err.to_string()) {
        Some(message) => E::custom(message),
        None => err,
    }
}

#[cfg(test)]
#[test]
fn strings_serde_quotes_are_shown_unless_they_could_be_keys() {
    let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
    let message = format!(
        r#"invalid type: string "{key}", expected struct Entry; found string "on", string "a\"b""#
    );
    let shown = without_quoted_keys(&message).expect("a key to hide");
    assert!(!shown.contains(key), "{shown}");
    assert_eq!(
        shown,
        r#"invalid type: a string of 24 characters (not shown: it may be a key), expected struct Entry; found string "on", string "a\"b""#
    );
    assert_eq!(without_quoted_keys(r#"unknown variant "x""#), None);
    assert_eq!(without_quoted_keys(r#"string "unterminated"#), None);
    let variant = format!("unknown variant `{key}`, expected `preferred` or `latestStamp`");
    assert_eq!(
        without_quoted_keys(&variant).as_deref(),
        Some(
            "unknown variant a string of 24 characters (not shown: it may be a key), expected `preferred` or `latestStamp`"
        )
    );
    assert_eq!(without_quoted_keys("unknown field `site`"), None);
}

#[cfg(test)]
#[test]
fn names_are_quoted_and_what_could_be_a_key_is_not() {
    assert_eq!(quoted_name("Enabeld"), r#""Enabeld""#);
    assert_eq!(
        quoted_name(&"x".repeat(23)),
        format!("{:?}", "x".repeat(23))
    );
    let key = "MDEyMzQ1Njc4OWFiY2RlZg==";
    assert_eq!(
        quoted_name(key),
        "of 24 characters (not shown: it may be a key)"
    );
}

/// A specialised `Result` whose error is [`Error`].
///
/// # Examples
///
/// ```
/// fn parse(id: &str) -> failback::Result<failback::DeviceId> {
///     failback::DeviceId::new(id)
/// }
/// assert!(parse("pump-17").is_ok());
/// assert!(parse("has space").is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong at the crate's boundaries.
///
/// Messages are lower case, carry their context in named fields, and never contain a key or
/// secret: where a secret is involved, its [`Fingerprint`](crate::Fingerprint) is shown.
///
/// # Examples
///
/// ```
/// use failback::{DeviceId, Error};
///
/// let err = DeviceId::new("has space").unwrap_err();
/// assert!(matches!(err, Error::InvalidId { .. }));
/// assert!(err.to_string().contains("has space"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line of an input file could not be read as what it should be.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 1-based column (in bytes) where the problem was found.
        column: u64,
        /// What is wrong and, where it helps, what to do.
        message: String,
    },
    /// A device or module id breaks IoT Hub's rules.
    #[error("invalid {kind} id {id:?}: {reason}")]
    InvalidId {
        /// `device` or `module`.
        kind: &'static str,
        /// The offending id (ids are not secrets), or, when it reads as a symmetric key (a key
        /// a damaged line moved into the id's place), a note with its fingerprint instead.
        id: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A value (key, thumbprint, status, twin path…) breaks IoT Hub's rules.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The field, as named in the export format (`authentication.symmetricKey.primaryKey`).
        field: String,
        /// Which rule it breaks (never the secret itself).
        reason: String,
    },
    /// A write named a device that has no live incarnation in this registry.
    #[error("device {key} does not exist in this registry; create it first")]
    UnknownDevice {
        /// The device that was addressed.
        key: DeviceKey,
    },
    /// A write named a device whose creation this registry has not received: a later write
    /// to it arrived first. The write could not know the value it would replace (a status
    /// the creation set to disabled, a twin leaf or metadata value written concurrently), so
    /// it is refused until the creation is merged. A disable, a credential change and a
    /// delete are taken: each wins over, or retires, what it did not see.
    #[error(
        "device {key} is pending: a later write to it arrived before its creation; merge the creation first"
    )]
    PendingDevice {
        /// The device that was addressed.
        key: DeviceKey,
    },
    /// A write tried to create a device that already exists.
    #[error("device {key} already exists; delete it first to re-create it")]
    DeviceExists {
        /// The device that was addressed.
        key: DeviceKey,
    },
    /// An event id arrived again with a different payload; the registry was left unchanged.
    ///
    /// Event ids are shown quoted and escaped (as `Debug` shows a string), here and in every
    /// message: they come from outside and may hold anything, and one holding a newline
    /// shown as it is would fake a log line. One that may hold a key (damage or a careless
    /// publisher can make one of a key) is shown by its [`Fingerprint`](crate::Fingerprint),
    /// `"<sha256:…>"`, as a twin key or a status reason is.
    #[error("event {} was already applied with a different payload (device {})", id.shown(), key.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string))]
    ConflictingEvent {
        /// The event id.
        id: EventId,
        /// The device the new payload addressed.
        key: Option<DeviceKey>,
    },
    /// Two events carry different writes under the same dot: one replica issued one write
    /// identity twice. (Two events carrying the same write, a sync repeating an earlier
    /// event, are not this.)
    #[error("dot {dot} of event {} (device {}) was already used by event {}", second.shown(), key.as_deref().map_or_else(|| "none".to_owned(), ToString::to_string), first.shown())]
    DotReused {
        /// The reused dot.
        dot: Dot,
        /// The event that used it first.
        first: EventId,
        /// The event that used it again.
        second: EventId,
        /// The device the second event addressed (boxed: the error stays small).
        key: Option<Box<DeviceKey>>,
    },
    /// A device or module appears twice in one snapshot of a hub: no reader can tell which
    /// copy is the device.
    #[error("{key} appears twice in the {snapshot} export; each device or module has one line")]
    DuplicateDevice {
        /// The device or module.
        key: DeviceKey,
        /// The snapshot (`base`, `primary` or `secondary`).
        snapshot: &'static str,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An output path names one of the inputs; writing it would destroy the input.
    #[error("{}: refusing to overwrite an input file", path.display())]
    OutputIsInput {
        /// The path given as both.
        path: PathBuf,
    },
}
