//! [`Creation`]: what the create of an incarnation wrote, and when, with its wire form, checked
//! as it is read.
//!
//! Apart from `device.rs` because a creation is written once and shared, never changed once
//! anything can read it (the lift amends the base's while building it: `state_edge_in_base`): a
//! record holds it beside the writes that follow, and resolved reads, the check of a reused dot
//! (`same_write.rs`) and the lift (the base's identity each side is compared with) read it
//! alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::Identity;
use crate::stamp::Stamp;
use crate::twin_text::TwinText;

/// The creation of an incarnation: when, and what it wrote.
///
/// On the wire, the identity whole (its twin leaves included), as a create gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CreationWire", into = "CreationWire")]
pub(crate) struct Creation {
    pub(crate) stamp: Stamp,
    /// What the create wrote but its twin leaves: `identity.twin` is empty.
    pub(crate) identity: Identity,
    /// The twin leaves the create wrote, as one text (see `twin_text.rs`).
    pub(crate) twin: TwinText,
}

impl Creation {
    /// The create's identity, its credentials in the one spelling a device holds (the kind
    /// its type does not use as unknown: see [`Authentication`](crate::Authentication)).
    pub(super) fn new(stamp: Stamp, mut identity: Identity) -> Self {
        let twin = TwinText::new(&identity.twin);
        identity.twin = BTreeMap::new();
        identity.authentication = identity.authentication.without_unused();
        Self {
            stamp,
            identity,
            twin,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreationWire {
    stamp: Stamp,
    identity: Identity,
}

/// Read with its values checked as [`Writer::create`](crate::Writer::create) checks them: its
/// twin is kept as text, which must read back whole. Its status is checked by the registry's
/// reader, which knows the key (a module is never disabled): a creation is read without it.
impl TryFrom<CreationWire> for Creation {
    type Error = crate::Error;

    fn try_from(wire: CreationWire) -> crate::Result<Self> {
        wire.identity.check_values()?;
        Ok(Self::new(wire.stamp, wire.identity))
    }
}

impl From<Creation> for CreationWire {
    fn from(creation: Creation) -> Self {
        let mut identity = creation.identity;
        identity.twin = creation.twin.leaves();
        Self {
            stamp: creation.stamp,
            identity,
        }
    }
}
