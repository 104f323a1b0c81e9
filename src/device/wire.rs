//! A record's text form as it is read: every member it may hold named, and one it does not
//! know refused.
//!
//! Apart from `device.rs` because the record is written with its registers flattened beside
//! its incarnation and creation, and serde refuses no unknown member of a flattened struct
//! (`deny_unknown_fields` does not combine with `flatten`): a register under a misspelt name
//! (`statsu`) would read as never written, so the device would show its creation's status,
//! under a context claiming the write seen: a replica merging the state would then drop the
//! write when it met it. Read here through one
//! struct naming each member the writer writes.

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{Creation, DeviceRecord, Registers, Written};
use crate::clock::Dot;
use crate::credentials::{Authentication, Fingerprint};
use crate::identity::{Capabilities, StatusValue};
use crate::key::DeviceId;
use crate::register::MvRegister;
use crate::register_map::RegisterMap;
use crate::twin::{self, TwinPath};

/// A record as its text holds it: the incarnation, the creation unless it has not arrived, and
/// each register of [`Written`] unless it is void, all of them left out when absent, so a
/// member not named here is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordWire {
    #[serde(deserialize_with = "crate::clock::deserialize_write_dot")]
    incarnation: Dot,
    #[serde(default)]
    created: Option<Arc<Creation>>,
    #[serde(default)]
    status: MvRegister<StatusValue>,
    #[serde(default)]
    authentication: MvRegister<Authentication>,
    #[serde(default)]
    retired: MvRegister<Box<[Fingerprint]>>,
    #[serde(default)]
    capabilities: MvRegister<Capabilities>,
    #[serde(default)]
    parent: MvRegister<Option<DeviceId>>,
    #[serde(default, deserialize_with = "twin::text_keys::deserialize")]
    twin: RegisterMap<TwinPath, Option<Value>>,
    #[serde(default)]
    metadata: RegisterMap<String, Option<Value>>,
}

impl DeviceRecord {
    /// Reads a record from its text form: what `serde_redacting!` calls, as it calls a
    /// derived reader. The registers are read as a join leaves them ([`Registers::read`]).
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        let RecordWire {
            incarnation,
            created,
            status,
            authentication,
            retired,
            capabilities,
            parent,
            twin,
            metadata,
        } = RecordWire::deserialize(deserializer)?;
        let written = Written {
            status,
            authentication,
            retired,
            capabilities,
            parent,
            twin,
            metadata,
        };
        Ok(Self {
            incarnation,
            created,
            registers: Registers::read(written).map_err(D::Error::custom)?,
        })
    }
}
