//! One test per rule of the import plan: which line, with which ETags, what is never written,
//! what is blocked or waits, order, and what the report may show; and the import simulator's
//! own check: it must refuse what IoT Hub refuses, or the rerun properties prove nothing.
//!
//! One rule, or a family of rules, per module; the failbacks they run and the exports they
//! write by hand are `iothub.rs`'s.

/// Capabilities an export leaves out are unknown, never a plain device.
#[path = "plan/capabilities.rs"]
mod capabilities;
/// Devices blocked for their credentials, and what is still written for them.
#[path = "plan/credentials.rs"]
mod credentials;
/// Leaves and modules wait for, or are blocked with, their gateway or device.
#[path = "plan/gateways.rs"]
mod gateways;
/// IoT Hub's limits, and the plan's own on deletes.
#[path = "plan/limits.rs"]
mod limits;
/// Which line, with which mode and ETags, in which order.
#[path = "plan/lines.rs"]
mod lines;
/// What the plan never writes.
#[path = "plan/never_written.rs"]
mod never_written;
/// What the report may show.
#[path = "plan/report.rs"]
mod report;
/// A rotation of a blocked device: written alone, or said; a credential only added is none.
#[path = "plan/rotations.rs"]
mod rotations;
/// The import simulator refuses what IoT Hub refuses.
#[path = "plan/simulator.rs"]
mod simulator;
/// Parents no line can carry: each entry's reason and parent.
#[path = "plan/unwritable_parents.rs"]
mod unwritable_parents;
