//! Events: writes that arrive with an id, at least once and in any order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id an event source gives a write (Event Grid's `id`, a route's `correlation-id`).
///
/// # Examples
///
/// ```
/// let id = failback::EventId::new("2b7f0c4e-1");
/// assert_eq!(id.as_str(), "2b7f0c4e-1");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Box<str>);

impl EventId {
    /// An event id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::EventId::new("a").to_string(), "a");
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into().into_boxed_str())
    }

    /// The id as text.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(failback::EventId::new("x").as_str(), "x");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({:?})", &*self.0)
    }
}
