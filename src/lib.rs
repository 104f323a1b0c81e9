//! failback: merge IoT Hub device registries after a regional failover.
#![forbid(unsafe_code)]

mod clock;
mod credentials;
mod device;
mod error;
mod identity;
pub mod iothub;
mod ingest;
mod key;
mod policy;
mod register;
mod registry;
mod report;
mod stamp;
mod twin;
mod view;
mod writer;

pub use clock::{CausalContext, Dot, ReplicaId, VersionVector};
pub use credentials::{AuthType, Authentication, Fingerprint, Pair, SymmetricKey, Thumbprint};
pub use device::{DeviceRecord, Identity};
pub use error::{Error, Result};
pub use identity::{Capabilities, Status, StatusValue};
pub use ingest::{Event, EventId, Ingest};
pub use key::{DeviceId, DeviceKey, ModuleId};
pub use policy::{Candidate, Policy, Preference, Rule};
pub use register::{Entry, MvRegister};
pub use registry::{Registry, Tombstone};
pub use report::{Conflict, ConflictValue, Rejection, Report, Stale};
pub use stamp::{Hlc, Stamp};
pub use twin::{Section, TwinPath};
pub use view::Device;
pub use writer::Writer;
