//! failback: merge IoT Hub device registries after a regional failover.
#![forbid(unsafe_code)]

mod clock;
mod credentials;
mod error;
mod identity;
mod ingest;
mod key;

pub use clock::{CausalContext, Dot, ReplicaId, VersionVector};
pub use credentials::{AuthType, Authentication, Fingerprint, Pair, SymmetricKey, Thumbprint};
pub use error::{Error, Result};
pub use identity::{Capabilities, Status, StatusValue};
pub use ingest::EventId;
pub use key::{DeviceId, DeviceKey, ModuleId};
