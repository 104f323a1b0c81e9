//! The import plan: the lines that turn the primary into the merged registry, nothing more.
//!
//! | merged vs primary | line |
//! |---|---|
//! | missing from the primary | `create`, full identity, tags and desired properties |
//! | gone from the merged registry | `deleteIfMatchETag` with the primary's `eTag` |
//! | status, reason, credentials, capabilities or parent differ | `updateIfMatchETag` with the primary's `eTag`, full identity, tags and desired |
//! | only tags or desired properties differ | `updateTwinIfMatchETag` with the primary's `twinETag` |
//!
//! A full update (`updateIfMatchETag`) carries the twin too, guarded by the device `eTag`
//! alone; see [`Plan`] for the window that leaves.
//!
//! Reported properties are never written: devices own them. No line ever makes the hub
//! generate keys: where a line would need credentials the merge does not know (or a rotation
//! conflict no rule could settle), the device is left out and listed as blocked. So is a device
//! whose line the hub would refuse on every run: an `*IfMatchETag` line whose ETag the
//! primary's export lacks, or twin sections over IoT Hub's size limits. So is a full update
//! over a primary exported without keys: it would put back the keys the merge took from the
//! base, which the primary may have rotated out. So is a full update writing a device as plain
//! over a primary line without capabilities that a leaf's scope names as its gateway: it would
//! demote an IoT Edge device the export merely did not describe. Such a gateway stays an edge
//! device in the primary, so its leaves keep its scope, and a leaf the merge puts behind it
//! gets that scope, even where the merge holds it plain.
//!
//! A hub holds at most [`IDENTITY_LIMIT`] devices plus modules, and the plan keeps the primary
//! within it: creations that would take it past are blocked, the last in id order first, a
//! device with its modules. The count is the primary's export lines plus the plan's creations
//! (a new IoT Edge device with the two system modules the hub creates with it). Deletes are not
//! counted as room: IOTHUB.md does not say that the hub applies an import's lines in order, and
//! these are sorted by id, so a create may precede a delete; the next run, once the deletes are
//! done, creates what fits then. An update making a device an IoT Edge device is not counted
//! (IOTHUB.md does not say whether the hub then creates system modules).
//!
//! IoT Edge system modules (`$edgeAgent`, `$edgeHub`) are never written, neither created,
//! updated nor deleted: the edge runtime and the hub manage them (the hub creates them, with
//! keys of its own, when it creates an edge device). Where the merged registry differs from the
//! primary on one, it is listed in [`Plan::system_modules`] for the operator to see, not
//! blocked: nothing is for the operator to settle, and every run lists it again while the
//! runtime's keys differ from the secondary's.
//!
//! Lines are sorted by id, then module id, so an interrupted import resumes where it stopped:
//! run the merge again and the plan is what is left.
//!
//! A device whose new edge parent is created by this very plan (or made an edge device by its
//! update) cannot be given the parent's scope yet (the hub assigns it then). It waits, only
//! where the parent's own line is written by this plan: it is not created yet, or is updated
//! keeping its current parent (not updated yet where this plan deletes that parent or makes it
//! plain: the hub refuses a scope naming no edge device), and the next run completes it.
//! Writing it without a parent instead would look, on that next run, like the primary's own
//! concurrent change of parent, and with `--prefer primary` the device would lose its parent
//! for good.
//!
//! A parent that no run of the plan can write is never a reason to write a device: one deleted
//! or made plain ([`Plan::parent_gone`]), and one no line can carry ([`Plan::parent_unwritable`]:
//! an edge device's parent, a gateway the primary holds as an edge device but exports without
//! a scope, a gateway the plan blocks). Compared with the primary's, it would be written again on every run.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::credentials::Authentication;
use crate::error::Result;
use crate::iothub::import_mode::ImportMode;
use crate::iothub::lift::{Failback, PrimaryLine, Side};
use crate::iothub::line::ExportLine;
use crate::iothub::writable::{
    base_decides_credentials, fits, has_etag, keeps_edge, replaces_known, resolved, usable,
};
use crate::key::{DeviceId, DeviceKey};
use crate::report::Conflict;
use crate::view::Device;

/// A device the plan leaves out, and why.
///
/// # Examples
///
/// ```
/// use failback::DeviceKey;
/// use failback::iothub::{read_export_from, Failback, Plan, Side};
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let base = export(r#"{"id":"d","status":"enabled","tags":{"site":"oslo"}}"#)?;
/// let secondary = export(r#"{"id":"d","status":"enabled","tags":{"site":"bergen"}}"#)?;
/// // The primary was exported without its ETags: no guarded line can be written.
/// let plan = Plan::new(&Failback::lift(&base, &base, &secondary, Side::Secondary)?);
/// assert_eq!(plan.blocked[0].key, DeviceKey::device("d")?);
/// assert!(plan.blocked[0].reason.contains("twinETag"));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Blocked {
    /// The device.
    #[serde(flatten)]
    pub key: DeviceKey,
    /// Why no line was written, and what an operator should do.
    pub reason: String,
}

/// The merged registry as export lines, the import plan, and what the plan left out.
///
/// # Twins in a full update
///
/// An `updateIfMatchETag` line (a device whose status, credentials, capabilities or parent
/// change) carries the merged tags and desired properties with the identity, and IoT Hub checks
/// it against the device `eTag` only, which IOTHUB.md says is independent of the twin ETag. A
/// tag or desired property a back end changes on the primary between its export and the import
/// is therefore overwritten without a refusal, and the next run cannot tell it was lost. A
/// guarded twin line (`updateTwinIfMatchETag`, checked against the `twinETag`) cannot take the
/// twin over: IOTHUB.md does not say whether an update leaving the twin out keeps it or clears
/// it, nor that the hub applies two lines of one device in order, and no import mode checks
/// both ETags. So the window stays, and is the operator's to close: no twin writes to the
/// primary between its export and the import, or a fresh export just before. A twin-only change
/// is guarded.
///
/// # Examples
///
/// ```
/// use failback::{Authentication, DeviceKey, Pair, Status, SymmetricKey};
/// use failback::iothub::{ExportLine, Failback, ImportMode, Plan, Side};
///
/// let d = DeviceKey::device("d1")?;
/// let key = SymmetricKey::new("MDEyMzQ1Njc4OWFiY2RlZg==")?;
/// let mut line = ExportLine::new(d.clone(), Status::Enabled);
/// line.authentication = Some(Authentication::sas(Pair::new(Some(key.clone()), Some(key))));
/// line.e_tag = Some("AAAA".into());
/// let base = [line.clone()];
/// let secondary = [ExportLine { status: Status::Disabled, ..line.clone() }];
/// let failback = Failback::lift(&base, &base, &secondary, Side::Secondary)?;
/// let plan = Plan::new(&failback);
/// assert_eq!(plan.import[0].import_mode, Some(ImportMode::UpdateIfMatchETag));
/// assert_eq!(plan.import[0].e_tag.as_deref(), Some("AAAA"));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The merged registry in export format, canonical: sorted, no `importMode`, `eTag` and
    /// `twinETag` from the primary where it has the device.
    pub merged: Vec<ExportLine>,
    /// The import lines for the primary, sorted.
    pub import: Vec<ExportLine>,
    /// Devices left out of the import.
    pub blocked: Vec<Blocked>,
    /// IoT Edge system modules where the merged registry differs from the primary (missing
    /// from it, changed, or gone from the merged registry), sorted: the plan writes no line for
    /// any system module, since the edge runtime and the hub manage them.
    pub system_modules: Vec<DeviceKey>,
    /// Devices whose edge parent has no scope in the primary yet, but gets one from a line of
    /// this plan (which creates it, or makes it an edge device), and the modules of those not
    /// created yet: not created, or updated keeping their current parent (not updated, where
    /// this plan deletes that parent or makes it plain), until the hub has given the parent its
    /// scope; the next run completes them. A parent whose line the plan
    /// blocks gives no scope: its devices are under [`parent_unwritable`](Self::parent_unwritable)
    /// or blocked, never here.
    pub pending_parent: Vec<DeviceKey>,
    /// Devices one side moved or created behind an edge parent the other deleted or made a
    /// plain device, sorted, for an operator to choose a parent: no scope can name it. Each
    /// keeps the parent it has in the primary while that one can still be a parent, else has
    /// none; its other changes are written as usual (a full update then carries that parent).
    pub parent_gone: Vec<DeviceKey>,
    /// Devices whose merged edge parent no import line can carry, sorted, for an operator to
    /// set by hand: an IoT Edge device one side put behind another (its line carries its own
    /// scope; a parent of an edge device travels in `parentScopes`, which the line format
    /// leaves out), a parent the primary holds as an edge device without a scope in its
    /// export, or a parent this plan blocks (new to the primary, or plain there and made an
    /// edge device). Each keeps the parent it has in the primary while that one can still be a
    /// parent; its other changes are written as usual. A new device behind a blocked parent is
    /// blocked with it.
    pub parent_unwritable: Vec<DeviceKey>,
    /// Devices and modules in the merged registry (the lines of `merged`, whether collected
    /// or streamed).
    pub merged_devices: u64,
    /// Every conflict in the merged devices, as the core reports them.
    pub conflicts: Vec<Conflict>,
}

impl Plan {
    /// Plans the import of `failback`'s merged registry into the primary, collecting the
    /// merged registry's lines in [`merged`](Self::merged). For a large registry, prefer
    /// [`stream`](Self::stream).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Failback, Plan, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// assert!(Plan::new(&failback).import.is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn new(failback: &Failback) -> Plan {
        let mut merged = Vec::new();
        let outcome = Self::stream(failback, |line| {
            merged.push(line);
            Ok(())
        });
        // Collecting into memory cannot fail.
        let mut plan = outcome.unwrap_or_default();
        plan.merged = merged;
        plan
    }

    /// Plans the import as [`new`](Self::new) does, handing each merged line to `sink` in
    /// order instead of collecting them: one pass over the registry, each device read once,
    /// nothing held but the plan itself.
    ///
    /// # Errors
    ///
    /// The first error `sink` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Failback, Plan, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// let mut lines = 0;
    /// let plan = Plan::stream(&failback, |_| { lines += 1; Ok(()) })?;
    /// assert_eq!((lines, plan.merged_devices), (0, 0));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn stream(failback: &Failback, sink: impl FnMut(ExportLine) -> Result<()>) -> Result<Plan> {
        Self::stream_limited(failback, IDENTITY_LIMIT, sink)
    }

    /// [`stream`](Self::stream), keeping the primary within `limit` identities: tests plan
    /// at a small limit what the shipped one, [`IDENTITY_LIMIT`], does at a million.
    fn stream_limited(
        failback: &Failback,
        limit: u64,
        mut sink: impl FnMut(ExportLine) -> Result<()>,
    ) -> Result<Plan> {
        let planner = Planner::new(failback, limit, 1);
        let mut plan = Plan::default();
        planner.plan(planner.keys(), &mut plan, &mut sink)?;
        plan.pending_parent.sort();
        plan.pending_parent.dedup();
        Ok(plan)
    }

    /// Plans the import as [`stream`](Self::stream) does, handing `sink` the merged
    /// registry's lines as canonical JSON text ([`ExportLine::to_json`]), each followed by a
    /// newline, in order, a block of whole lines at a time (never an empty one). Blocks are
    /// planned and written on every core (at most eight threads); the plan and the text are
    /// the same on any number.
    ///
    /// # Errors
    ///
    /// The first error `sink` returns; the blocks after it are not planned.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{DeviceKey, Status};
    /// use failback::iothub::{ExportLine, Failback, Plan, Side};
    ///
    /// let line = ExportLine::new(DeviceKey::device("d1")?, Status::Enabled);
    /// let failback = Failback::lift(&[], &[], &[line], Side::Secondary)?;
    /// let mut text = String::new();
    /// let plan = Plan::stream_json(&failback, |block| {
    ///     text.push_str(block);
    ///     Ok(())
    /// })?;
    /// assert_eq!(text, "{\"id\":\"d1\",\"status\":\"enabled\",\"authentication\":{\"symmetricKey\":null,\"x509Thumbprint\":null,\"type\":\"sas\"},\"capabilities\":{\"iotEdge\":false}}\n");
    /// assert_eq!(plan.merged_devices, 1);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn stream_json(failback: &Failback, sink: impl FnMut(&str) -> Result<()>) -> Result<Plan> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::stream_json_on(failback, IDENTITY_LIMIT, cores.min(WORKERS), BLOCK, sink)
    }

    /// [`stream_json`](Self::stream_json) on `workers` helper threads (one: on the calling
    /// thread alone), in blocks of about `block` keys, keeping the primary within `limit`
    /// identities.
    ///
    /// Why blocks planned apart add up to the sequential plan: a key's decisions read only
    /// the failback and the creations the limit leaves out, decided before any block (shared,
    /// read-only), and what the plan decided for its own device id (its device created,
    /// blocked or waiting), and a block never splits a device id. So each block is planned
    /// from an empty plan, and the blocks' plans, appended in key order, are the one plan.
    ///
    /// Each worker takes every `workers`-th block and hands it over through a channel of its
    /// own, which the calling thread reads in turn: blocks come back in order, none waits for
    /// reordering, and a worker is at most two blocks ahead of the writing. A block's devices
    /// and lines are made and freed on the worker that planned it: freeing on another thread
    /// than the one that allocated costs a lock on glibc's arena (measured in the example tool
    /// in 2026-11, where handing lines to a writing thread made the run slower).
    fn stream_json_on(
        failback: &Failback,
        limit: u64,
        workers: usize,
        block: usize,
        sink: impl FnMut(&str) -> Result<()>,
    ) -> Result<Plan> {
        let planner = Planner::new(failback, limit, workers);
        let keys: Vec<&DeviceKey> = planner.keys().collect();
        let blocks: Vec<&[&DeviceKey]> = blocks(&keys, block).collect();
        let mut plan = planner.plan_blocks(&blocks, workers, true, sink)?;
        plan.pending_parent.sort();
        plan.pending_parent.dedup();
        Ok(plan)
    }

    /// Appends a later block's plan (see [`stream_json_on`](Self::stream_json_on)).
    fn append(&mut self, later: Plan) {
        self.merged.extend(later.merged);
        self.import.extend(later.import);
        self.blocked.extend(later.blocked);
        self.system_modules.extend(later.system_modules);
        self.pending_parent.extend(later.pending_parent);
        self.parent_gone.extend(later.parent_gone);
        self.parent_unwritable.extend(later.parent_unwritable);
        self.merged_devices += later.merged_devices;
        self.conflicts.extend(later.conflicts);
    }

    fn create(
        &mut self,
        device: &Device,
        line: &ExportLine,
        parent: Parent,
        capped: Option<&str>,
    ) -> bool {
        if device.key.module.as_ref().is_some_and(|m| m.is_system()) {
            self.system_modules.push(device.key.clone());
            return false;
        }
        if let Err(reason) = creatable(device, line) {
            self.block(&device.key, reason);
            return false;
        }
        // Created without its parent, the device would read on the next run as the primary's
        // own parentless creation, a concurrent write that the preference could let win over
        // the parent for good. The next run creates it whole, once the parent has its scope.
        if parent == Parent::Pending {
            return false;
        }
        if let Some(reason) = capped {
            self.block(&device.key, reason.to_owned());
            return false;
        }
        self.import.push(ExportLine {
            import_mode: Some(ImportMode::Create),
            e_tag: None,
            twin_e_tag: None,
            reported: None,
            ..line.clone()
        });
        true
    }

    fn delete(&mut self, key: &DeviceKey, was: &PrimaryLine, failback: &Failback) {
        // Deleting a device deletes its modules with it; a separate line would fail.
        if key.module.is_some() {
            let device = device_of(key);
            if failback.primary_lines.contains_key(&device) && !is_live(failback, &device) {
                return;
            }
        }
        // The runtime's: taken from under a running edge device, it would break the device.
        // (The hub deletes system modules with their device, which returned above.)
        if key.module.as_ref().is_some_and(|m| m.is_system()) {
            self.system_modules.push(key.clone());
            return;
        }
        if was.e_tag.is_none() {
            let reason = "the merged registry deletes it, but the primary's export has no eTag \
                          for deleteIfMatchETag: re-export the primary, or delete it by hand";
            self.block(key, reason.into());
            return;
        }
        let mut line = ExportLine::new(key.clone(), was.status);
        line.e_tag.clone_from(&was.e_tag);
        line.import_mode = Some(ImportMode::DeleteIfMatchETag);
        self.import.push(line);
    }

    fn block(&mut self, key: &DeviceKey, reason: String) {
        self.blocked.push(Blocked {
            key: key.clone(),
            reason,
        });
    }

    fn update(
        &mut self,
        device: &Device,
        now: &Device,
        was: &PrimaryLine,
        line: &ExportLine,
        parent: Parent,
        known: Known,
    ) {
        // Only a parent the line can write is a reason to write the device. While the merged
        // parent's scope is pending, the line keeps the primary's (written back unchanged
        // below). Once it is gone, the line keeps the primary's if that one can still be a
        // parent, else none: compared with the merged parent, it would differ on every run and
        // be written again on every run, and a leaf whose gateway is deleted is left to the hub
        // unless something else of it changed (a full update then carries no scope, since the
        // hub refuses one naming no edge device).
        let parent_differs = match parent {
            Parent::Written => device.parent != now.parent,
            Parent::Pending | Parent::Gone | Parent::Unwritable | Parent::Blocked => false,
        };
        // `now` is the primary's replica: its own line, with credentials its export left out
        // taken from the base (unknown is never a change).
        let identity_differs = device.status != now.status
            || device.authentication != now.authentication
            || device.capabilities != now.capabilities
            || parent_differs;
        let twin_differs = device.tags != now.tags || device.desired != now.desired;
        // The runtime's: an update would put the secondary's keys over those the hub made for
        // the primary's runtime, and the edge device would stop connecting.
        if device.key.module.as_ref().is_some_and(|m| m.is_system()) {
            if identity_differs || twin_differs || resolved(device).is_err() {
                self.system_modules.push(device.key.clone());
            }
            return;
        }
        // Crossed rotations leave the device to an operator whichever side won: even when the
        // primary already holds the winner, it holds a key the other side rotated out. So do
        // credentials the two sides hold differently over a base exported without them.
        if let Err(reason) = settled(device, known) {
            self.block(&device.key, reason);
            return;
        }
        if identity_differs {
            if let Err(reason) = updatable(device, was, line, known) {
                self.block(&device.key, reason);
                return;
            }
            let mut update = ExportLine {
                import_mode: Some(ImportMode::UpdateIfMatchETag),
                twin_e_tag: None,
                reported: None,
                ..line.clone()
            };
            // The merged line leaves an empty section out. IOTHUB.md says an update overwrites,
            // not whether an absent section is cleared or kept: one the merge emptied is written
            // empty, so that the primary's is cleared either way.
            if device.tags.is_empty() && !now.tags.is_empty() {
                update.tags = Some(serde_json::Map::new());
            }
            if device.desired.is_empty() && !now.desired.is_empty() {
                update.desired = Some(serde_json::Map::new());
            }
            // Detached now, the device would read on the next run as the primary's own move to
            // no parent, which the preference could let win over the new parent for good.
            if parent == Parent::Pending {
                // Nor can it keep a gateway this plan deletes or makes plain: the hub refuses a
                // scope naming no edge device, and the line, its other changes with it, would
                // fail (found in review: a leaf moved off a replaced gateway and disabled). It
                // waits whole, as a creation does, and the next run writes it with the new
                // gateway's scope.
                if !known.primary_parent_stays {
                    return;
                }
                update.device_scope.clone_from(&was.device_scope);
                update.parent.clone_from(&was.scope_owner);
            }
            self.import.push(update);
        } else if twin_differs {
            let mut twin = ExportLine::new(line.key.clone(), line.status);
            twin.import_mode = Some(ImportMode::UpdateTwinIfMatchETag);
            twin.twin_e_tag.clone_from(&was.twin_e_tag);
            twin.tags = Some(device.tags.clone());
            twin.desired = Some(device.desired.clone());
            let writable = has_etag(
                was.twin_e_tag.as_ref(),
                "twinETag",
                ImportMode::UpdateTwinIfMatchETag,
            )
            .and_then(|()| fits(&twin));
            match writable {
                Ok(()) => self.import.push(twin),
                Err(reason) => self.block(&device.key, reason),
            }
        }
    }
}

/// Why the plan cannot create `device` (its merged line `line`), if it cannot: the checks
/// [`Plan::create`] makes, which [`parent_without_scope`] makes of a new gateway too.
fn creatable(device: &Device, line: &ExportLine) -> std::result::Result<(), String> {
    usable(device).and_then(|()| fits(line))
}

/// Why no rule settled `device`'s credentials, if none did: [`Plan::update`] then writes no
/// line at all for it.
fn settled(device: &Device, known: Known) -> std::result::Result<(), String> {
    resolved(device).and_then(|()| base_decides_credentials(device, known.base_credentials))
}

/// Why the plan cannot write `device`'s full update (`updateIfMatchETag`, its merged line
/// `line`) over the primary's line `was`, if it cannot: the checks [`Plan::update`] makes once
/// the credentials are [`settled`], which [`parent_without_scope`] makes of a gateway the plan
/// makes an edge device too.
fn updatable(
    device: &Device,
    was: &PrimaryLine,
    line: &ExportLine,
    known: Known,
) -> std::result::Result<(), String> {
    usable(device)
        .and_then(|()| replaces_known(was))
        .and_then(|()| keeps_edge(device, was, known.named_parent))
        .and_then(|()| has_etag(was.e_tag.as_ref(), "eTag", ImportMode::UpdateIfMatchETag))
        .and_then(|()| fits(line))
}

/// What the plan knows of a device beyond its merged value and the primary's line, for the
/// checks of an update.
#[derive(Clone, Copy, Debug)]
struct Known {
    /// Whether the base's line held the device's credentials.
    base_credentials: bool,
    /// Whether a line of the primary's export names the device as an edge parent (its scope
    /// names it), so that the primary holds it as an IoT Edge device.
    named_parent: bool,
    /// Whether the edge parent the primary's line names (if any) can still be a parent once
    /// the plan is imported ([`stands_as_parent`]), so that a line may keep its scope: not one
    /// the plan deletes or makes plain.
    primary_parent_stays: bool,
}

impl Known {
    /// What is known of `key`, whose line in the primary's export is `was`.
    fn of(
        failback: &Failback,
        scopes: &BTreeMap<DeviceId, String>,
        key: &DeviceKey,
        was: &PrimaryLine,
    ) -> Known {
        Known {
            base_credentials: failback.base_credentials_known(key),
            named_parent: key.module.is_none() && scopes.contains_key(&key.device),
            primary_parent_stays: was
                .scope_owner
                .as_ref()
                .filter(|owner| **owner != key.device)
                .is_none_or(|owner| stands_as_parent(failback, scopes, owner)),
        }
    }
}

/// Keys in a block of a parallel plan: a block's text (about 2 MB at the 520 bytes of a
/// generated export's line) and its planning (about 25 ms) are large beside a hand-over, and
/// small beside a run that parallelism pays for. Chosen by that reasoning, not tuned.
const BLOCK: usize = 4096;

/// At most this many threads plan one registry.
const WORKERS: usize = 8;

/// The IoT Edge system modules (`$edgeAgent`, `$edgeHub`) the hub creates with an edge device.
const SYSTEM_MODULES: u64 = 2;

/// The most identities (devices plus modules) an IoT hub holds (IOTHUB.md). The plan keeps the
/// primary within it: creations that would take the primary past it are blocked, the last in
/// id order first ([`Plan`] says how they are counted).
///
/// # Examples
///
/// ```
/// assert_eq!(failback::iothub::IDENTITY_LIMIT, 1_000_000);
/// ```
pub const IDENTITY_LIMIT: u64 = 1_000_000;

/// Consecutive blocks of about `size` keys, none splitting a device id (a module's decisions
/// read its device's, see [`Plan::stream_json_on`]).
fn blocks<'k>(
    keys: &'k [&'k DeviceKey],
    size: usize,
) -> impl Iterator<Item = &'k [&'k DeviceKey]> + 'k {
    let mut rest = keys;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.clamp(1, rest.len());
        while end < rest.len() && rest[end].device == rest[end - 1].device {
            end += 1;
        }
        let (block, after) = rest.split_at(end);
        rest = after;
        Some(block)
    })
}

/// What planning reads, shared by every block.
struct Planner<'f> {
    failback: &'f Failback,
    policy: &'f crate::policy::Policy,
    merged: &'f crate::registry::Registry,
    primary: &'f crate::registry::Registry,
    /// Each edge device's scope in the primary (see [`scopes`]).
    scopes: BTreeMap<DeviceId, String>,
    /// Device ids whose creations the plan blocks, lest the primary hold more identities than
    /// IoT Hub allows (see [`Planner::over_limit`]), and why.
    capped: BTreeSet<DeviceId>,
    capped_reason: String,
}

impl<'f> Planner<'f> {
    /// The planner for `failback`, keeping the primary within `limit` identities; a plan run
    /// to find which creations the limit blocks, if any, runs on `workers` threads.
    fn new(failback: &'f Failback, limit: u64, workers: usize) -> Self {
        let mut planner = Planner {
            failback,
            policy: failback.policy(),
            merged: failback.merged(),
            primary: failback.replica(Side::Primary),
            scopes: scopes(&failback.primary_lines),
            capped: BTreeSet::new(),
            capped_reason: String::new(),
        };
        let (capped, reason) = planner.over_limit(limit, workers);
        (planner.capped, planner.capped_reason) = (capped, reason);
        planner
    }

    /// The device ids whose creations this plan must leave out to keep the primary within
    /// `limit` identities (IOTHUB.md: "a hub holds at most 1,000,000 devices plus modules"),
    /// and why: the last in key order, each device id with every creation under it (the device
    /// and its modules), until what the primary holds plus what the plan creates fits.
    ///
    /// What the primary holds is its export's lines. What the plan creates is its `create`
    /// lines, and for each new IoT Edge device the two system modules the hub creates with it.
    /// Deletes are not counted as room: IOTHUB.md does not say that the hub applies an import's
    /// lines in order, and the plan's are sorted by id, so a create may come before the delete
    /// that would have made room for it. The next run, once this import's deletes are done,
    /// creates what fits then. An update making a device an IoT Edge device is not counted:
    /// IOTHUB.md does not say whether the hub then creates system modules; and it cannot be
    /// left out for the limit without leaving out the rest of the device's update.
    ///
    /// Which creations the plan makes depends on the whole plan (a blocked device, a leaf
    /// waiting for its gateway), so when neither a full primary nor a cheap bound settles it,
    /// the plan is run once without a limit, its lines not written. Leaving a creation out
    /// never adds another: a new leaf of a gateway left out was waiting and is blocked
    /// instead, a module of a device left out is blocked with it. So the run without a limit
    /// counts every creation the limited plan can make.
    fn over_limit(&self, limit: u64, workers: usize) -> (BTreeSet<DeviceId>, String) {
        let held = u64::try_from(self.failback.primary_lines.len()).unwrap_or(u64::MAX);
        let reason = |kept: u64| {
            format!(
                "creating it (with its modules) would take the primary past IoT Hub's limit of \
                 {limit} devices plus modules: it holds {held}, and this plan creates {kept} \
                 before it in id order. Deletes are not counted as room (the order in which the \
                 hub applies an import's lines is not documented): run again once this import \
                 is done, or make room on the primary first"
            )
        };
        // Full already: every creation is left out, whichever the plan would make, without
        // planning twice (a generated export of a million devices holds more, with modules).
        if held >= limit {
            let capped = self.new_keys().map(|key| key.device.clone()).collect();
            return (capped, reason(0));
        }
        // At most: every merged key the primary lacks, a device with its system modules.
        let bound = self
            .new_keys()
            .map(|key| {
                if key.module.is_none() {
                    1 + SYSTEM_MODULES
                } else {
                    1
                }
            })
            .fold(held, u64::saturating_add);
        if bound <= limit {
            return (BTreeSet::new(), String::new());
        }
        let keys: Vec<&DeviceKey> = self.keys().collect();
        let blocks: Vec<&[&DeviceKey]> = blocks(&keys, BLOCK).collect();
        // The sink never fails, so neither does the plan.
        let unlimited = self
            .plan_blocks(&blocks, workers, false, |_| Ok(()))
            .unwrap_or_default();
        // Identities each device id's creations add, in key order.
        let mut created: Vec<(&DeviceId, u64)> = Vec::new();
        for line in &unlimited.import {
            if line.import_mode != Some(ImportMode::Create) {
                continue;
            }
            let edge = line.key.module.is_none() && line.capabilities.is_some_and(|c| c.iot_edge);
            let adds = if edge { 1 + SYSTEM_MODULES } else { 1 };
            match created.last_mut() {
                Some((device, count)) if **device == line.key.device => *count += adds,
                _ => created.push((&line.key.device, adds)),
            }
        }
        let mut total = created
            .iter()
            .fold(held, |total, (_, adds)| total.saturating_add(*adds));
        let mut capped = BTreeSet::new();
        while total > limit {
            let Some((device, adds)) = created.pop() else {
                break;
            };
            total -= adds;
            capped.insert(device.clone());
        }
        (capped, reason(total.saturating_sub(held)))
    }

    /// The keys of the merged registry the primary's export lacks, in order: those the plan
    /// may create. One walk over both sorted maps, no lookups.
    fn new_keys(&self) -> impl Iterator<Item = &'f DeviceKey> + 'f {
        let mut held = self.failback.primary_lines.keys().peekable();
        self.merged.keys().filter(move |key| {
            while held.next_if(|was| was < key).is_some() {}
            held.peek() != Some(key)
        })
    }

    /// Why the creation of `key` is left out for the limit on identities, if it is.
    fn capped(&self, key: &DeviceKey) -> Option<&str> {
        self.capped
            .contains(&key.device)
            .then_some(self.capped_reason.as_str())
    }

    /// Every key of the merged registry or of the primary's export, in order, once.
    fn keys(&self) -> impl Iterator<Item = &'f DeviceKey> + 'f {
        let mut keys = self.merged.keys().peekable();
        let mut was_keys = self.failback.primary_lines.keys().peekable();
        std::iter::from_fn(move || match (keys.peek(), was_keys.peek()) {
            (None, None) => None,
            (Some(a), Some(b)) if a <= b => {
                let key = *a;
                keys.next();
                was_keys.next_if(|b| *b == key);
                Some(key)
            }
            (Some(_), Some(_)) | (None, Some(_)) => was_keys.next(),
            (Some(_), None) => keys.next(),
        })
    }

    /// Plans `blocks` (consecutive, none splitting a device id) on `workers` threads, handing
    /// `sink` each block's merged lines as JSON text, in order, when `text` is set (see
    /// [`Plan::stream_json_on`]).
    fn plan_blocks(
        &self,
        blocks: &[&[&DeviceKey]],
        workers: usize,
        text: bool,
        mut sink: impl FnMut(&str) -> Result<()>,
    ) -> Result<Plan> {
        // One worker is the calling thread itself, which then needs no helper.
        let helpers = if workers > 1 && blocks.len() > 1 {
            workers
        } else {
            0
        };
        let mut plan = Plan::default();
        std::thread::scope(|scope| {
            let planner = self;
            // A helper the OS refuses to start has no inbox, and with no helpers at all there
            // is one empty inbox: the calling thread plans those blocks itself, in turn
            // (`src/spawn.rs`).
            let mut inboxes: Vec<_> = (0..helpers)
                .map(|first| {
                    let (send, inbox) = std::sync::mpsc::sync_channel(1);
                    crate::spawn::try_spawn(scope, move || {
                        for keys in blocks.iter().skip(first).step_by(helpers) {
                            // The calling thread has stopped reading: a sink failed.
                            if send.send(planner.plan_block(keys, text)).is_err() {
                                break;
                            }
                        }
                    })
                    .map(|_| inbox)
                })
                .collect();
            if inboxes.is_empty() {
                inboxes.push(None);
            }
            for (inbox, keys) in inboxes.iter().cycle().zip(blocks.iter()) {
                let planned = match inbox {
                    Some(inbox) => inbox.recv(),
                    None => Ok(planner.plan_block(keys, text)),
                };
                // A helper gone without its block panicked: the scope rethrows it.
                let Ok((part, lines)) = planned else {
                    break;
                };
                if !lines.is_empty() {
                    sink(&lines)?;
                }
                plan.append(part);
            }
            Ok::<(), crate::Error>(())
        })?;
        Ok(plan)
    }

    /// Plans `keys` from an empty plan, writing their merged lines as JSON text when `text`
    /// is set.
    fn plan_block(&self, keys: &[&DeviceKey], text: bool) -> (Plan, String) {
        let mut plan = Plan::default();
        let mut out = String::new();
        let written = self.plan(keys.iter().copied(), &mut plan, &mut |line| {
            if text {
                line.write_json(&mut out);
                out.push('\n');
            }
            Ok(())
        });
        // The sink above cannot fail.
        debug_assert!(written.is_ok());
        (plan, out)
    }

    /// Plans `keys`, in order, into `plan`, handing each merged line to `sink`. Every key of
    /// a device id must be among `keys` or none (see [`Plan::stream_json_on`]).
    fn plan<'k>(
        &self,
        keys: impl Iterator<Item = &'k DeviceKey>,
        plan: &mut Plan,
        sink: &mut impl FnMut(ExportLine) -> Result<()>,
    ) -> Result<()> {
        let Planner {
            failback,
            policy,
            merged,
            primary,
            ref scopes,
            ..
        } = *self;
        let primary_lines = &failback.primary_lines;
        // Devices this plan creates. Keys come in order, a device before its modules, so a
        // module's device is settled before the module.
        let mut created = BTreeSet::new();
        for key in keys {
            let device = merged.device(key, policy);
            if let Some(device) = &device {
                plan.conflicts.extend(device.conflicts.iter().cloned());
            }
            // A module created on one side of a device the other side deleted is gone with
            // its device: IoT Hub deletes a device's modules with it and creates none without
            // it. (The report lists it as an existence conflict.)
            let device =
                device.filter(|_| key.module.is_none() || is_live(failback, &device_of(key)));
            let was = primary_lines.get(key);
            let Some(device) = device else {
                if let Some(was) = was {
                    plan.delete(key, was, failback);
                }
                continue;
            };
            let (line, mut parent) = self.merged_line(&device, was);
            plan.merged_devices += 1;
            if parent == Parent::Pending {
                plan.pending_parent.push(key.clone());
            }
            // Listed where a side moved the device behind that parent (or created it there),
            // whichever side: what it asked for, the plan cannot write. Leaves the base already
            // had behind a gateway one side deleted are left to the hub, unlisted.
            let moved = || {
                let base = failback.base_identity(key);
                base.is_none_or(|base| base.parent != device.parent)
            };
            if parent == Parent::Gone && moved() {
                plan.parent_gone.push(key.clone());
            }
            // Listed where the line does not carry the merged parent: what the merge asks for,
            // no line can write (an edge device's line carries its own scope, so an update
            // making a leaf an edge device drops the parent the primary held).
            let blocked_with_parent = parent == Parent::Blocked && was.is_none();
            if matches!(parent, Parent::Unwritable | Parent::Blocked) && !blocked_with_parent {
                let carried = line.parent.as_ref().filter(|owner| **owner != key.device);
                if carried != device.parent.as_ref() {
                    plan.parent_unwritable.push(key.clone());
                }
            }
            if key.module.is_some() {
                let device_key = device_of(key);
                // A module of a device that is neither in the primary nor created now cannot be
                // created: it waits with its device, or is blocked with it.
                let system = key.module.as_ref().is_some_and(|m| m.is_system());
                if !system
                    && !primary_lines.contains_key(&device_key)
                    && !created.contains(&key.device)
                {
                    if plan.pending_parent.contains(&device_key) {
                        plan.pending_parent.push(key.clone());
                        sink(line)?;
                        continue;
                    }
                    // Blocked entries come in key order: the device's is among the last.
                    let mut same_device = plan
                        .blocked
                        .iter()
                        .rev()
                        .take_while(|b| b.key.device == key.device);
                    if let Some(blocked) = same_device.find(|b| b.key == device_key) {
                        let reason = format!("its device is blocked: {}", blocked.reason);
                        plan.blocked.push(Blocked {
                            key: key.clone(),
                            reason,
                        });
                        sink(line)?;
                        continue;
                    }
                }
                if plan.pending_parent.binary_search(key).is_ok() {
                    parent = Parent::Pending;
                }
            }
            match was {
                // Created without it, the device would read on the next run as the primary's
                // own parentless creation (see `Parent::Pending`); it waits with its parent.
                None if parent == Parent::Blocked => {
                    let owner = device.parent.as_ref().map_or("", DeviceId::as_str);
                    let reason = format!(
                        "its edge parent {owner:?} is blocked (see its entry), and the hub \
                         gives a leaf the scope of a parent it holds: resolve the parent first"
                    );
                    plan.block(key, reason);
                }
                None => {
                    let capped = self.capped(key);
                    if plan.create(&device, &line, parent, capped) && key.module.is_none() {
                        created.insert(key.device.clone());
                    }
                }
                // A slot the merge left shared with the primary's replica holds the primary's
                // device as it is: nothing to write. (A leaf whose gateway this plan deletes or
                // makes plain is left to the hub, like the children of a gateway deleted there.)
                Some(was) if !merged.shares_slot(primary, key) => {
                    if let Some(now) = primary.device(key, policy) {
                        let known = Known::of(failback, scopes, key, was);
                        plan.update(&device, &now, was, &line, parent, known);
                    }
                }
                Some(_) => {}
            }
            sink(line)?;
        }
        Ok(())
    }
}

/// Each edge device's scope in the primary hub, by device id, from the edge device's own line,
/// or, when that line has none, from the first other line in key order that names the edge
/// device (a child's, or a module's). The own line wins because it is the device's scope as the
/// hub holds it now, while a child's line can carry a scope the device no longer has.
fn scopes(lines: &BTreeMap<DeviceKey, PrimaryLine>) -> BTreeMap<DeviceId, String> {
    use std::collections::btree_map::Entry;
    // The scope, and whether it came from the edge device's own line.
    let mut out: BTreeMap<DeviceId, (String, bool)> = BTreeMap::new();
    for (key, line) in lines {
        if let (Some(owner), Some(scope)) = (&line.scope_owner, &line.device_scope) {
            let own = key.module.is_none() && key.device == *owner;
            match out.entry(owner.clone()) {
                Entry::Vacant(entry) => {
                    entry.insert((scope.clone(), own));
                }
                Entry::Occupied(mut entry) if own => {
                    entry.insert((scope.clone(), own));
                }
                Entry::Occupied(_) => {}
            }
        }
    }
    out.into_iter()
        .map(|(owner, (scope, _))| (owner, scope))
        .collect()
}

/// What became of a merged line's edge parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parent {
    /// Its scope is in the line, or there is no parent.
    Written,
    /// The parent is created by this plan: the hub gives it a scope, and the next run writes
    /// it.
    Pending,
    /// The parent is deleted from the merged registry or a plain device there (not one the
    /// primary holds as an edge device its export did not describe, which stays one: see
    /// [`stands_as_parent`]): no scope will come. The line carries the primary's parent while
    /// that one can still be a parent, else none.
    Gone,
    /// No line can carry the parent, though it stands: the device is an IoT Edge device (its
    /// line carries its own scope), or the parent is an edge device in the primary without a
    /// scope in its export. The line carries what `Gone` carries.
    Unwritable,
    /// The parent is new to the primary (or plain there), and this plan blocks its line (the
    /// checks of its create, or of the full update making it an edge device): no scope will
    /// come until an operator resolves it. An existing device's line carries what `Gone`
    /// carries; a new device is blocked with its parent.
    Blocked,
}

impl Planner<'_> {
    /// The merged line of `device`, with the primary's line `primary` where it has one, and what
    /// became of its edge parent.
    fn merged_line(&self, device: &Device, primary: Option<&PrimaryLine>) -> (ExportLine, Parent) {
        let (failback, scopes) = (self.failback, &self.scopes);
        let mut line = ExportLine::new(device.key.clone(), device.status.status);
        line.status_reason.clone_from(&device.status.reason);
        line.authentication = Some(match resolved(device) {
            Ok(()) => device.authentication.clone(),
            // No rule settled them, so the merged registry does not know them: what is left once
            // rotated-out values are blanked can be half a key pair, which no export line may hold.
            Err(_) => Authentication {
                kind: device.authentication.kind,
                keys: None,
                thumbprints: None,
            },
        });
        // Capabilities are a device's; module lines carry none.
        if device.key.module.is_none() {
            line.capabilities = Some(device.capabilities);
        }
        let non_empty =
            |m: &serde_json::Map<String, serde_json::Value>| (!m.is_empty()).then(|| m.clone());
        line.tags = non_empty(&device.tags);
        line.desired = non_empty(&device.desired);
        line.reported = non_empty(&device.reported);
        if let Some(primary) = primary {
            line.e_tag.clone_from(&primary.e_tag);
            line.twin_e_tag.clone_from(&primary.twin_e_tag);
        }
        let mut parent = Parent::Written;
        let scope_owner = if device.key.module.is_some() {
            None
        } else if device.capabilities.iot_edge {
            Some(device.key.device.clone())
        } else {
            device.parent.clone()
        };
        if let Some(owner) = scope_owner {
            let own = owner == device.key.device;
            // A parent deleted from the merged registry, or a plain device there, has no scope to
            // give and none will come: a scope its children still carry in the primary names a
            // device the import removes or makes plain (or the primary already did), and IoT Hub
            // refuses a scope of no edge device. Unless the primary holds it as an edge device
            // its export did not describe, which the plan never demotes ([`stands_as_parent`]).
            let can_parent = own || stands_as_parent(failback, scopes, &owner);
            match scopes.get(&owner) {
                Some(scope) if can_parent => {
                    line.device_scope = Some(scope.clone());
                    line.parent = Some(owner);
                }
                // A new edge device gets its scope from the hub on creation: nothing to wait for.
                None if can_parent => {
                    if !own {
                        parent = self.parent_without_scope(&owner);
                    }
                }
                _ => parent = Parent::Gone,
            }
            if matches!(parent, Parent::Gone | Parent::Unwritable | Parent::Blocked) {
                // The primary's own parent while it can still be one, rather than none:
                // detached, the device would lose the parent both sides still agree on.
                let kept = primary
                    .and_then(|p| p.scope_owner.as_ref())
                    .filter(|owner| stands_as_parent(failback, scopes, owner))
                    .and_then(|owner| Some((owner, scopes.get(owner)?)));
                if let Some((owner, scope)) = kept {
                    line.device_scope = Some(scope.clone());
                    line.parent = Some(owner.clone());
                }
            }
        }
        // An edge device's line carries its own scope, so a parent one side gave it (making it
        // an edge device while the other put it behind a gateway, say) cannot be written: compared
        // with the primary's, it would be written again, unchanged, on every run (found in review).
        let edge_with_parent = device.key.module.is_none()
            && device.capabilities.iot_edge
            && device
                .parent
                .as_ref()
                .is_some_and(|p| *p != device.key.device);
        if edge_with_parent {
            parent = Parent::Unwritable;
        }
        if device.key.module.is_some() {
            if let Some(primary) = primary {
                line.device_scope.clone_from(&primary.device_scope);
                line.parent.clone_from(&primary.scope_owner);
            }
        }
        (line, parent)
    }

    /// What becomes of a device's parent `owner`, an edge device the primary's export gives no
    /// scope: it waits for the scope the hub gives the parent when this plan's line for it is
    /// written, a create or a full update making it an edge device. A parent the primary already
    /// holds as an edge device (its line without a scope) gets no line that gives it one, and one
    /// whose line this plan blocks gets none until an operator acts: waiting for either would last
    /// for ever (found in review, for a parent held plain whose update was blocked while its
    /// leaves waited on every run). So the checks are those the parent's own line meets.
    fn parent_without_scope(&self, owner: &DeviceId) -> Parent {
        let failback = self.failback;
        let key = DeviceKey {
            device: owner.clone(),
            module: None,
        };
        // Held as an edge device, the parent has a scope the export left out, which no line can
        // name. Held as a plain device, it is made an edge device by this plan, and the hub gives
        // it a scope then, as on a creation.
        let policy = failback.policy();
        let held = failback.replica(Side::Primary).device(&key, policy);
        if held.is_some_and(|held| held.capabilities.iot_edge) {
            return Parent::Unwritable;
        }
        let Some(parent) = failback.merged().device(&key, policy) else {
            return Parent::Blocked;
        };
        // The parent is an edge device, whose line names its own scope, so this does not come back
        // here.
        let was = failback.primary_lines.get(&key);
        let (line, _) = self.merged_line(&parent, was);
        let written = match was {
            // A creation the limit on identities blocks gives no scope either.
            None if self.capped.contains(owner) => Err(String::new()),
            None => creatable(&parent, &line),
            // Plain in the primary and an edge device merged: its capabilities differ, so the plan
            // writes a full update, if its checks pass.
            Some(was) => {
                let known = Known::of(failback, &self.scopes, &key, was);
                settled(&parent, known).and_then(|()| updatable(&parent, was, &line, known))
            }
        };
        if written.is_ok() {
            Parent::Pending
        } else {
            Parent::Blocked
        }
    }
}

/// The key of the device a module belongs to (the key itself for a device).
fn device_of(key: &DeviceKey) -> DeviceKey {
    DeviceKey {
        device: key.device.clone(),
        module: None,
    }
}

/// Whether `owner` is a live IoT Edge device in the merged registry: one that can be a parent
/// (so can one the primary holds as such, see [`stands_as_parent`]).
///
/// Read from its records' capabilities rather than from the whole device, which settling would
/// build with its twin parsed, for every leaf: the policy is asked only when they disagree.
fn is_edge(failback: &Failback, owner: &DeviceId) -> bool {
    let key = DeviceKey {
        device: owner.clone(),
        module: None,
    };
    let records = failback.merged().records(&key);
    let mut values = records.iter().flat_map(|record| {
        let written = &record.written().capabilities;
        let created = record.creation().filter(|_| written.is_empty());
        let created = created.map(|c| c.identity.capabilities.iot_edge);
        written
            .entries()
            .iter()
            .map(|e| e.value.iot_edge)
            .chain(created)
    });
    let Some(first) = values.next() else {
        return false;
    };
    if values.all(|edge| edge == first) {
        return first;
    }
    let settled = failback.merged().device(&key, failback.policy());
    settled.is_some_and(|device| device.capabilities.iot_edge)
}

/// Whether `owner` can be an edge parent once the plan is imported, so that a line may name
/// its scope: a live IoT Edge device in the merged registry ([`is_edge`]), or a live device
/// the primary holds as one though its export did not say so.
///
/// The second is a device whose line in the primary states no capabilities (null or absent,
/// no scope of its own) while a line of the primary's export names it as an edge parent
/// (`scopes`, from a leaf's scope): the hub refuses a scope naming no edge device, so the
/// primary holds it as one. The merge reads the unknown capabilities as the base's, a plain
/// device's where the base stated none either, and [`is_edge`] alone would take the gateway
/// for gone: a full update of a leaf behind it, for any other change, would write no scope and
/// detach the leaf, unlisted, though no side changed its parent (2026-11-23, found in review).
/// The plan never demotes such a device: a full update writing it plain is blocked
/// ([`keeps_edge`]), a twin update carries no capabilities, and it is live, so not deleted. So
/// it stays an edge device in the primary, and its leaves keep its scope, whether the merge
/// left it plain by default or one side made it plain (a demotion blocked until the primary is
/// exported with its capabilities).
fn stands_as_parent(
    failback: &Failback,
    scopes: &BTreeMap<DeviceId, String>,
    owner: &DeviceId,
) -> bool {
    if is_edge(failback, owner) {
        return true;
    }
    let key = DeviceKey {
        device: owner.clone(),
        module: None,
    };
    let unstated = failback
        .primary_lines
        .get(&key)
        .is_some_and(|was| !was.capabilities_known);
    unstated && scopes.contains_key(owner) && is_live(failback, &key)
}

/// Whether `key` has a live incarnation in the merged registry.
fn is_live(failback: &Failback, key: &DeviceKey) -> bool {
    !failback.merged().records(key).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iothub::Generate;

    /// A generated failback, its secondary also holding what the plan decides across a
    /// device's keys: a new gateway with its system module, a leaf and its module waiting
    /// for that gateway's scope, and a device without keys blocked with its module.
    fn generated(devices: usize, seed: u64) -> Failback {
        let mut triple = Generate { devices, seed }.run();
        let keys = r#""authentication":{"symmetricKey":{"primaryKey":"MDEyMzQ1Njc4OWFiY2RlZg==","secondaryKey":"ZmVkY2JhOTg3NjU0MzIxMA=="},"type":"sas"}"#;
        let scope = r#""deviceScope":"ms-azure-iot-edge://zz-gw-1""#;
        for text in [
            format!(
                r#"{{"id":"zz-gw","status":"enabled",{keys},"capabilities":{{"iotEdge":true}},{scope}}}"#
            ),
            format!(r#"{{"id":"zz-gw","moduleId":"$edgeAgent","status":"enabled",{keys}}}"#),
            r#"{"id":"zz-keyless","status":"enabled","authentication":null}"#.to_owned(),
            format!(r#"{{"id":"zz-keyless","moduleId":"m","status":"enabled",{keys}}}"#),
            format!(r#"{{"id":"zz-leaf","status":"enabled",{keys},{scope}}}"#),
            format!(r#"{{"id":"zz-leaf","moduleId":"probe","status":"enabled",{keys}}}"#),
        ] {
            match crate::iothub::parse_line(std::path::Path::new("secondary.jsonl"), 1, &text) {
                Ok(crate::iothub::Parsed::Device(line)) => triple.secondary.push(line),
                other => panic!("{text}: {other:?}"),
            }
        }
        Failback::lift(
            &triple.base,
            &triple.primary,
            &triple.secondary,
            Side::Secondary,
        )
        .expect("generated exports lift")
    }

    /// The sequential plan, and its merged lines as JSON text.
    fn sequential(failback: &Failback) -> (Plan, String) {
        let mut text = String::new();
        let plan = Plan::stream(failback, |line| {
            text.push_str(&line.to_json());
            text.push('\n');
            Ok(())
        })
        .expect("collecting cannot fail");
        (plan, text)
    }

    #[test]
    fn blocks_never_split_a_device_and_cover_every_key_once() {
        let keys: Vec<DeviceKey> = ["a", "b", "b/m1", "b/m2", "c", "d/m", "e", "e/m"]
            .iter()
            .map(|k| match k.split_once('/') {
                Some((d, m)) => DeviceKey::module(d, m).expect("valid"),
                None => DeviceKey::device(*k).expect("valid"),
            })
            .collect();
        let keys: Vec<&DeviceKey> = keys.iter().collect();
        for size in 0..=keys.len() + 1 {
            let blocks: Vec<_> = blocks(&keys, size).collect();
            assert_eq!(blocks.concat(), keys, "size {size}");
            for pair in blocks.windows(2) {
                let (last, first) = (pair[0].last(), pair[1].first());
                assert_ne!(last.map(|k| &k.device), first.map(|k| &k.device));
                assert!(pair[0].len() >= size.max(1), "size {size}: {pair:?}");
            }
        }
        assert_eq!(
            blocks(&keys, 2).map(<[_]>::len).collect::<Vec<_>>(),
            [4, 2, 2]
        );
    }

    #[test]
    fn blocks_planned_on_any_number_of_threads_give_the_sequential_plan_and_text() {
        let failback = generated(400, 11);
        let (expected, text) = sequential(&failback);
        // The data exercises what crosses a block: modules with their devices, creations,
        // deletions, blocked devices.
        assert!(expected.merged_devices > 400 && !expected.import.is_empty());
        let keys = |keys: &[DeviceKey]| keys.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(keys(&expected.pending_parent), ["zz-leaf", "zz-leaf/probe"]);
        assert_eq!(keys(&expected.system_modules), ["zz-gw/$edgeAgent"]);
        let blocked: Vec<_> = expected.blocked.iter().map(|b| b.key.clone()).collect();
        assert_eq!(keys(&blocked), ["zz-keyless", "zz-keyless/m"]);
        assert!(failback.merged().keys().any(|k| k.module.is_some()));
        for workers in 1..=3 {
            // Each with its workers started, and with the OS refusing them all.
            let runs = [1, 2, 3, 7, 64, 100_000]
                .into_iter()
                .flat_map(|block| [(block, false), (block, true)]);
            for (block, refused) in runs {
                let mut written = String::new();
                let mut calls = 0;
                let mut run = || {
                    Plan::stream_json_on(&failback, IDENTITY_LIMIT, workers, block, |part| {
                        assert!(part.ends_with('\n'));
                        written.push_str(part);
                        calls += 1;
                        Ok(())
                    })
                };
                let plan = if refused {
                    crate::spawn::refused::with(run)
                } else {
                    run()
                }
                .expect("the sink never fails");
                let context = format!("{workers} workers, blocks of {block}, refused {refused}");
                assert_eq!(plan, expected, "{context}");
                assert!(written == text, "{context}: the text differs");
                assert!(
                    calls >= text.lines().count().div_ceil(block.max(1) * 3),
                    "{context}"
                );
            }
        }
    }

    #[test]
    fn a_failing_sink_stops_the_plan_with_its_error() {
        let failback = generated(200, 3);
        for workers in [1, 2, 3] {
            let mut calls = 0;
            let outcome = Plan::stream_json_on(&failback, IDENTITY_LIMIT, workers, 5, |_| {
                calls += 1;
                if calls == 3 {
                    return Err(crate::Error::Io {
                        path: "merged.jsonl".into(),
                        source: std::io::Error::other("disk full"),
                    });
                }
                Ok(())
            });
            assert!(
                matches!(&outcome, Err(crate::Error::Io { source, .. }) if source.to_string() == "disk full"),
                "{workers} workers: {outcome:?}"
            );
            assert_eq!(calls, 3, "{workers} workers");
        }
    }

    /// Export lines from their JSON texts.
    fn parsed(texts: &[String]) -> Vec<ExportLine> {
        texts
            .iter()
            .map(
                |text| match crate::iothub::parse_line(std::path::Path::new("t"), 1, text) {
                    Ok(crate::iothub::Parsed::Device(line)) => line,
                    other => panic!("{text}: {other:?}"),
                },
            )
            .collect()
    }

    /// A primary holding 8 identities (the base's), and a secondary that deletes one and
    /// creates 9 more: a module of an existing device (1), a device with a module (2), a new
    /// gateway (1, and 2 system modules the hub creates with it), a leaf of that gateway with a
    /// module (waiting for its scope: not created by this plan) and a plain device (1).
    fn near_the_limit() -> Failback {
        let keys = r#""authentication":{"symmetricKey":{"primaryKey":"MDEyMzQ1Njc4OWFiY2RlZg==","secondaryKey":"ZmVkY2JhOTg3NjU0MzIxMA=="},"type":"sas"}"#;
        let device = |id: &str| {
            format!(r#"{{"id":"{id}","eTag":"e","status":"enabled",{keys},"twinETag":"t"}}"#)
        };
        let module = |id: &str, m: &str| {
            format!(
                r#"{{"id":"{id}","moduleId":"{m}","eTag":"e","status":"enabled",{keys},"twinETag":"t"}}"#
            )
        };
        let mut base = vec![
            device("d1"),
            module("d1", "m1"),
            device("d2"),
            module("d2", "m1"),
        ];
        base.extend(["d3", "d4", "d5", "d6"].map(device));
        let mut secondary: Vec<String> =
            base.iter().filter(|l| !l.contains("d5")).cloned().collect();
        secondary.extend([
            module("d1", "new"),
            device("n1"),
            module("n1", "m"),
            format!(
                r#"{{"id":"n2-gw","status":"enabled",{keys},"capabilities":{{"iotEdge":true}},"deviceScope":"ms-azure-iot-edge://n2-gw-1"}}"#
            ),
            format!(
                r#"{{"id":"n3","status":"enabled",{keys},"deviceScope":"ms-azure-iot-edge://n2-gw-1"}}"#
            ),
            module("n3", "m"),
            device("n4"),
        ]);
        let base = parsed(&base);
        Failback::lift(&base, &base, &parsed(&secondary), Side::Secondary).expect("lifts")
    }

    fn ids(keys: impl IntoIterator<Item = DeviceKey>) -> Vec<String> {
        keys.into_iter().map(|k| k.to_string()).collect()
    }

    fn limited(failback: &Failback, limit: u64) -> Plan {
        Plan::stream_limited(failback, limit, |_| Ok(())).expect("the sink never fails")
    }

    #[test]
    fn creations_past_the_identity_limit_are_blocked_last_first_a_device_with_its_modules() {
        let failback = near_the_limit();
        let creates = |plan: &Plan| {
            let lines = plan.import.iter();
            let created = lines.filter(|l| l.import_mode == Some(ImportMode::Create));
            ids(created.map(|l| l.key.clone()))
        };
        let blocked = |plan: &Plan| ids(plan.blocked.iter().map(|b| b.key.clone()));
        // 8 held, 7 created with the gateway's system modules: 15 fits; the delete is no room.
        for limit in [15, IDENTITY_LIMIT] {
            let plan = limited(&failback, limit);
            assert_eq!(creates(&plan), ["d1/new", "n1", "n1/m", "n2-gw", "n4"]);
            assert!(plan.blocked.is_empty(), "{:?}", plan.blocked);
            assert_eq!(ids(plan.pending_parent.clone()), ["n3", "n3/m"]);
            assert!(
                plan.import
                    .iter()
                    .any(|l| l.import_mode == Some(ImportMode::DeleteIfMatchETag))
            );
        }
        assert_eq!(
            limited(&failback, IDENTITY_LIMIT),
            Plan::stream(&failback, |_| Ok(())).expect("plans")
        );
        let plan = limited(&failback, 14);
        assert_eq!(creates(&plan), ["d1/new", "n1", "n1/m", "n2-gw"]);
        assert_eq!(blocked(&plan), ["n4"]);
        // The gateway goes with its system modules; its leaf cannot wait for a scope that will
        // not come, and is blocked with its module.
        let plan = limited(&failback, 13);
        assert_eq!(creates(&plan), ["d1/new", "n1", "n1/m"]);
        assert_eq!(blocked(&plan), ["n2-gw", "n3", "n3/m", "n4"]);
        assert!(plan.pending_parent.is_empty(), "{:?}", plan.pending_parent);
        let reason = &plan.blocked[0].reason;
        assert!(
            reason
                .contains("limit of 13 devices plus modules: it holds 8, and this plan creates 3"),
            "{reason}"
        );
        assert!(
            plan.blocked[1]
                .reason
                .contains("its edge parent \"n2-gw\" is blocked")
        );
        assert_eq!(plan.blocked[3].reason, *reason);
        // Over the limit already, or at it: nothing is created, a module of an existing device
        // included, and nothing panics.
        let plan = limited(&failback, 9);
        assert_eq!(creates(&plan), ["d1/new"]);
        for limit in [8, 7, 0] {
            let plan = limited(&failback, limit);
            assert_eq!(creates(&plan), Vec::<String>::new(), "limit {limit}");
            assert_eq!(
                blocked(&plan),
                ["d1/new", "n1", "n1/m", "n2-gw", "n3", "n3/m", "n4"]
            );
            assert_eq!(
                plan.blocked[2].reason,
                format!("its device is blocked: {}", plan.blocked[1].reason)
            );
        }
    }

    #[test]
    fn the_identity_limit_gives_the_same_plan_on_any_number_of_threads() {
        let failback = near_the_limit();
        for limit in [0, 9, 13, 14, 15] {
            let mut text = String::new();
            let expected = Plan::stream_limited(&failback, limit, |line| {
                text.push_str(&line.to_json());
                text.push('\n');
                Ok(())
            })
            .expect("plans");
            for workers in 1..=3 {
                for block in [1, 2, 3, 100] {
                    let mut written = String::new();
                    let plan = Plan::stream_json_on(&failback, limit, workers, block, |part| {
                        written.push_str(part);
                        Ok(())
                    })
                    .expect("plans");
                    let context = format!("limit {limit}, {workers} workers, blocks of {block}");
                    assert_eq!(
                        plan,
                        Plan {
                            merged: Vec::new(),
                            ..expected.clone()
                        },
                        "{context}"
                    );
                    assert!(written == text, "{context}");
                }
            }
        }
    }
}
