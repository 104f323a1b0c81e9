//! IoT Hub bulk export and import files.
//!
//! An export job writes one JSON object per line (`devices.txt`): a device, a module (same
//! `id` plus `moduleId`), or now and then a hub warning that is neither. This module reads
//! those lines into [`ExportLine`]s, strictly: any line that is not what IoT Hub writes is an
//! [`Error::Parse`](crate::Error::Parse) at its line and column, and security-relevant fields
//! (status, keys, thumbprints, capabilities) may not appear twice, since readers disagree on
//! which copy of a duplicated key wins. Hub warnings are skipped and counted.
//!
//! Three points of the format carry meaning this crate keeps:
//!
//! - **Unknown is not empty.** An export taken with `excludeKeysInExport` writes no keys;
//!   [`Authentication::keys`](crate::Authentication::keys) is then `None`. Importing such a line
//!   makes IoT Hub generate new keys and locks SAS devices out.
//! - **Hub-local counters are dropped.** Twin `$metadata` and `$version` only mean something in
//!   the hub that wrote them, so they are removed on reading, where the hub writes them (at the
//!   top of desired and reported properties), and never compared or written. Anywhere else, in
//!   tags or deeper in a section, such a key is no counter but a twin key holding `$`, refused.
//! - **Scopes are per hub.** `deviceScope` embeds the parent's generation id; the parent's device
//!   id ([`ExportLine::parent`]) is what carries over to another hub.
//!
//! [`ExportLine::to_json`] writes the canonical form (fixed key order, sorted twin keys), and
//! [`write_atomically`] puts an output file in place only once it is complete, refusing to
//! overwrite an input; [`create_atomically`] does so only under a name still free then;
//! [`remove_abandoned_temporaries`] removes the partial files of writers that were killed,
//! [`remove_own_temporaries`] those of this process, stopping on a signal.
//!
//! # Examples
//!
//! ```
//! use failback::iothub::{read_export_from, ExportLine};
//!
//! let text = concat!(
//!     r#"{"id":"edge-1","status":"enabled","capabilities":{"iotEdge":true},"#,
//!     r#""properties":{"desired":{"$version":3,"mode":"eco"}}}"#, "\n",
//!     r#"{"id":"leaf-7","status":"Disabled","authentication":null,"#,
//!     r#""deviceScope":"ms-azure-iot-edge://edge-1-6379"}"#, "\n",
//! );
//! let export = read_export_from("devices.txt".as_ref(), text.as_bytes())?;
//! let leaf = &export.lines[1];
//! assert_eq!(leaf.parent.as_ref().map(|p| p.as_str()), Some("edge-1"));
//! assert!(leaf.authentication.is_none()); // keys unknown: never import this line as is
//! assert_eq!(
//!     export.lines[0].to_json(),
//!     r#"{"id":"edge-1","status":"enabled","properties":{"desired":{"mode":"eco"}},"capabilities":{"iotEdge":true}}"#
//! );
//! # Ok::<(), failback::Error>(())
//! ```

mod atomic;
mod check;
mod delete_limit;
mod export;
mod generate;
mod import_mode;
mod json;
mod lift;
mod line;
mod number;
mod plan;
mod reader;
mod summary;
mod writable;

pub use atomic::{
    create_atomically, refuse_inputs, remove_abandoned_temporaries, remove_own_temporaries,
    write_atomically,
};
pub use delete_limit::TooManyDeletes;
pub use export::{
    Export, ExportReader, read_export, read_export_from, read_import, read_import_from,
};
pub use generate::{Generate, Triple};
pub use import_mode::ImportMode;
pub use lift::{BASE, Failback, LiftPolicy, PRIMARY, SECONDARY, Side};
pub use line::ExportLine;
pub use plan::{Blocked, IDENTITY_LIMIT, ParentUnwritable, Plan, UnwritableReason};
pub use reader::{Parsed, parse_line};
pub use summary::{ConflictEntry, InputStats, PlanCounts, RejectedWrite, SideValue, Summary};
