//! The import plan: the lines that turn the primary into the merged registry, nothing more.
//!
//! | merged vs primary | line |
//! |---|---|
//! | missing from the primary | `create`, full identity, tags and desired properties |
//! | gone from the merged registry | `deleteIfMatchETag` with the primary's `eTag` |
//! | status, reason, credentials, capabilities or parent (or a stale scope of it) differ | `updateIfMatchETag` with the primary's `eTag`, full identity, tags and desired |
//! | only tags or desired properties differ | `updateTwinIfMatchETag` with the primary's `twinETag` |
//!
//! A full update (`updateIfMatchETag`) carries the twin too, guarded by the device `eTag`
//! alone; see [`Plan`] for the window that leaves.
//!
//! Reported properties are never written: devices own them. No line ever makes the hub
//! generate keys: where a line would need credentials the merge does not know (or a rotation
//! conflict no rule could settle), the device is left out and listed as blocked. So is a device
//! whose credentials the two sides hold differently where the base cannot say which side
//! changed them (exported without keys, or without a line for the device). So is a device
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
//! A module of a device this plan creates waits for the next run too, listed under
//! [`Plan::pending_parent`]: the module's create could come before its device's, in an import
//! whose order IOTHUB.md does not document, and fail. Applying the plan and running again gives
//! what waited; a module of a new leaf behind a new gateway waits once more (the second run
//! creates the leaf), so run again until nothing is pending.
//!
//! A device whose new edge parent is created by this very plan (or made an edge device by its
//! update) cannot be given the parent's scope yet (the hub assigns it then). It waits, only
//! where the parent's own line is written by this plan: it is not created yet, or is updated
//! keeping its current parent (not updated yet where this plan deletes that parent or makes it
//! plain: the hub refuses a scope naming no edge device; its other changes wait with it, listed
//! under [`Plan::pending_parent`] only, but for a disable or a credential rotation, below), and
//! the next run completes it. Writing it without a parent instead would look, on that next run,
//! like the primary's own concurrent change of parent (where the base gave it one), and with
//! `--prefer primary` the device would lose its parent for good. But a gateway the merge makes
//! a plain device behind it has no current parent to keep (the scope its primary line carries
//! is its own, which would make it its own parent): its update is written without one, and the
//! next run gives it the new gateway's scope, whichever side is preferred: the base reads an
//! edge device's parent as none, and the primary, holding it plain without a scope once this
//! import is in, states none too, no change of its own, so the secondary's new parent stands.
//! A disable and a credential rotation are the exceptions (IOTHUB.md: disabling is the way to
//! block a compromised device; and a credential the merge rotated out, perhaps leaked, must
//! not stay valid in the primary for a run more). A rotation is a credential the primary
//! accepts that the merged one does not: a key or thumbprint it holds that the merge no longer
//! holds (a change of type drops the old type's: sas → selfSigned drops the keys), or its
//! certificate authority where the merge makes the device another type; a credential the merge
//! only adds is none, and waits with the rest (`urgent.rs`). A leaf whose changes hold either is
//! written now, its whole update but without a parent, where the next run still gives it the
//! new parent (the secondary moved it there, and the base gave it no parent, or the secondary
//! is preferred), and otherwise waits listed as blocked, its entry saying `disable not applied`
//! or `rotation not applied` (`detached.rs`). Likewise a device blocked for any reason (its
//! credentials, a missing `eTag`, a twin over the limits, a gateway's demotion) still has its
//! disable and its new credentials written alone, over the primary's own line, where one can
//! carry them (`alone.rs`): the credentials only where a full update could write them (settled
//! by a rule, usable, over credentials the primary's export held), so that none is restored.
//! Its entry says what was written (`the disable alone is written`, `the new credentials alone
//! are written`), and what was not (`disable not applied`, `rotation not applied`), with why and,
//! where the merged value can be applied by hand, what to do (naming no key).
//!
//! A scope is a gateway's generation, not only its id (IOTHUB.md: "derive the scope for the
//! target hub"). No create line carries a scope: the hub gives a new gateway its own, and one a
//! child's line in the primary carries for a gateway the primary's export does not hold is a
//! deleted gateway's. A leaf whose scope in the primary is stale so (it names a gateway the
//! export does not hold, or states a plain device, or differs from the scope the gateway's own
//! line carries) has a parent to write, though its parent id is the merged one: the line carries
//! the gateway's scope now, or waits for it where this plan creates the gateway (or makes it an
//! edge device again), as above. IOTHUB.md is silent on what the
//! hub does with a deleted gateway's scope on its leaves: the plan never writes back a scope it
//! can tell is stale, since the hub refuses one naming no edge device. Nor does a module's line
//! carry one: a module has no scope of its own (the one its export line carries is its device's,
//! stale where the device's is), and its device's line writes the current one. Where a gateway's
//! own line carries no scope, its leaves' lines are the evidence; where they carry two, one is
//! stale and the export does not say which: a line for one of those leaves keeps the leaf's own
//! (no change of its parent), and a leaf put behind the gateway anew carries none, listed as
//! `parent-without-scope` (see `scopes.rs`). A run reads only the exports: once an import has
//! taken from behind the gateway every leaf carrying one of the two, the next run reads the
//! other alone, and takes it for the gateway's.
//!
//! A parent that no run of the plan can write is never a reason to write a device: one deleted
//! or made plain ([`Plan::parent_gone`]), and one no line can carry ([`Plan::parent_unwritable`]).
//! Compared with the primary's, it would be written again on every run.
//!
//! Each entry of [`Plan::parent_unwritable`] is a [`ParentUnwritable`]: the device, why
//! ([`UnwritableReason`]), and the parent the merged registry holds for it, which an operator
//! sets by hand:
//!
//! | reason | the device | `parent` |
//! |---|---|---|
//! | `edge-device` | an IoT Edge device the primary holds as one (or this plan creates) with a parent, merged or in the primary: it travels in `parentScopes`, which no line carries | the merged parent; none: the one the primary may hold is to be removed |
//! | `made-edge-device` | a leaf the primary holds plain, made an IoT Edge device: the update carries the device's own scope, and the hub may drop its gateway | the gateway it keeps |
//! | `parent-without-scope` | a leaf whose parent the primary holds as an IoT Edge device but exports without a scope (or with two, its leaves', one stale) | the merged parent |
//! | `parent-blocked` | a leaf in the primary whose parent's line this plan blocks (a new leaf is blocked with it instead) | the merged parent |
//! | `parent-unknown` | an IoT Edge device the secondary created since the base | none: no export shows it |
//!
//! An IoT Edge device's parent is in `parentScopes`, which export lines leave out (IOTHUB.md):
//! its line says nothing of it, and the lift reads that as unknown, never as no parent. A leaf
//! one side made an edge device keeps the parent the base knew (the other side's move, if any,
//! wins unopposed), and is listed (`made-edge-device`, or `edge-device` where the primary made
//! it one): no line can write or remove it, and the update making a leaf an edge device may
//! drop it.
//!
//! So no export shows the parent of an edge device created since the base, by either side:
//! every one has no known parent, unless the other side created it as a leaf, whose scope names
//! one (then it is listed with that parent, as `edge-device` or `made-edge-device`). Each the
//! secondary created and holds as an edge device is listed (`parent-unknown`), whatever its line
//! (created without a parent, blocked, or none where both sides created it), so that a nesting
//! the secondary gave it is not lost unsaid; every later run against the same base lists it
//! again. One only the primary created is not: the secondary never held it, and the primary
//! keeps its own parent. The same blindness covers an edge device the base held (or a plain one
//! the secondary made an edge device without a parent) that the secondary put behind another
//! edge device: no export shows that either, and it is not listed, since every edge device would
//! be, on every run.

mod alone;
mod blocks;
mod detached;
mod limit;
mod lines;
mod parent;
mod planner;
mod scopes;
mod unwritable;
mod urgent;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::iothub::lift::Failback;
use crate::iothub::line::ExportLine;
use crate::iothub::summary::Findings;
use crate::key::{DeviceId, DeviceKey};
use crate::report::Conflict;

use blocks::{BLOCK, WORKERS, blocks};
use planner::Planner;

pub use limit::IDENTITY_LIMIT;
pub use unwritable::{ParentUnwritable, UnwritableReason};

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
    /// Why the device's line was not written, and what an operator should do. Where the merge
    /// disables a device the primary holds enabled, it also says whether the disable was
    /// written alone (`the disable alone is written`) or not (`disable not applied`); where it
    /// rotates out a credential the primary accepts, whether the new credentials were
    /// (`the new credentials alone are written`; with a disable, `the disable and the new
    /// credentials alone are written`) or not (`rotation not applied`): see [`Plan::blocked`].
    pub reason: String,
}

/// The merged registry as export lines, the import plan, and what the plan left out.
///
/// A plan is made from a failback only ([`new`](Self::new), [`stream`](Self::stream),
/// [`stream_json`](Self::stream_json)), and carries what its
/// [`Summary`](crate::iothub::Summary) reports of that failback, so that the two cannot come
/// from different failbacks.
///
/// # Twins in a full update
///
/// An `updateIfMatchETag` line (a device whose status, credentials, capabilities or parent
/// change) carries the merged tags and desired properties with the identity, and IoT Hub checks
/// it against the device `eTag` only, which IoT Hub keeps independent of the twin ETag. A
/// tag or desired property a back end changes on the primary between its export and the import
/// is therefore overwritten without a refusal, and the next run cannot tell it was lost. A
/// guarded twin line (`updateTwinIfMatchETag`, checked against the `twinETag`) cannot take the
/// twin over: IoT Hub does not document whether an update leaving the twin out keeps it or clears
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
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The merged registry in export format, canonical: sorted, no `importMode`, `eTag` and
    /// `twinETag` from the primary where it has the device.
    pub merged: Vec<ExportLine>,
    /// The import lines for the primary, sorted: an `import.jsonl` holds them one
    /// [`ExportLine::to_json`] a line (see [`write_atomically`](crate::iothub::write_atomically)'s
    /// example).
    pub import: Vec<ExportLine>,
    /// Devices left out of the import, but for a disable and a rotation: where the merge
    /// disables a device the primary holds enabled, or rotates out a credential it accepts, an
    /// `updateIfMatchETag` line writes the disable, the new credentials or both alone, over the
    /// primary's own line (its credentials, status, capabilities and twin as its export holds
    /// them, and its parent while that one can still be a parent), wherever such a line can be
    /// written; the new credentials only where a full update could write them (settled by a
    /// rule, usable, over credentials the primary's export held). Else the reason says the
    /// disable or the rotation is not applied (crossed rotations, the primary exported without
    /// keys or without an `eTag`, say). A leaf waiting for a new gateway's scope whose disable
    /// or credential rotation cannot be written yet (see
    /// [`pending_parent`](Self::pending_parent)) is listed here too, until the next run, its
    /// reason saying `disable not applied` or `rotation not applied`.
    pub blocked: Vec<Blocked>,
    /// IoT Edge system modules where the merged registry differs from the primary (missing
    /// from it, changed, or gone from the merged registry), sorted: the plan writes no line for
    /// any system module, since the edge runtime and the hub manage them.
    pub system_modules: Vec<DeviceKey>,
    /// Devices whose edge parent has no scope in the primary yet, but gets one from a line of
    /// this plan (which creates it, or makes it an edge device), and the modules of those not
    /// created yet: not created, or updated keeping their current parent (not updated, where
    /// this plan deletes that parent or makes it plain; updated without one, where the device
    /// is a gateway the merge makes plain, whose scope is its own), until the hub has given the
    /// parent its scope; the next run completes them. So are the modules of a device this plan
    /// creates: IoT Hub does not document that an import applies its lines in order, so a
    /// module's create beside its device's could come first and fail; the next run creates
    /// them. But for a
    /// disable or a credential rotation, which do not wait for the next run where they need not:
    /// a leaf the merge disables or whose credentials it rotates (one the primary accepts
    /// rotated out: a credential only added waits with the rest), whose current parent this plan
    /// deletes or makes plain (or whose scope is stale), is updated without a parent where the
    /// next run still gives it the new one: the secondary moved it there, and the base gave it
    /// no parent (the missing one is then no change of the primary's) or the secondary is
    /// preferred (the next run, reading that as the primary's change of parent, keeps the
    /// secondary's new one, reported as a conflict the preference settles). Elsewhere it is
    /// listed as blocked, its disable or rotation not applied (that run would keep it
    /// detached). A parent whose line the plan blocks gives no scope: its devices
    /// are under [`parent_unwritable`](Self::parent_unwritable) or blocked, never here.
    pub pending_parent: Vec<DeviceKey>,
    /// Devices one side moved or created behind an edge parent the other deleted or made a
    /// plain device, sorted, for an operator to choose a parent: no scope can name it. Each
    /// keeps the parent it has in the primary while that one can still be a parent, else takes
    /// the secondary's where that one can (waiting for it, under
    /// [`pending_parent`](Self::pending_parent) too, where this plan gives it its scope), else
    /// has none; its other changes are written as usual (a full update then carries that
    /// parent).
    pub parent_gone: Vec<DeviceKey>,
    /// Devices whose edge parent no import line can carry, sorted by device, one entry each,
    /// for an operator to set by hand: each says why, and which parent the merged registry
    /// holds for it (see [`ParentUnwritable`], and the module docs' table). An IoT Edge device
    /// with a parent, merged or in the primary (its line carries its own scope; a parent of an
    /// edge device travels in `parentScopes`, which the line format leaves out: one side put it
    /// behind another, or made a leaf an edge device, which keeps its gateway as far as the
    /// exports tell, and the update making it one may drop it in the hub; or the merge leaves
    /// it without the parent the primary may hold), a device whose parent the primary holds as
    /// an edge device without a scope in its export, or whose parent this plan blocks (new to
    /// the primary, or plain there and made an edge device). Each keeps the parent it has in
    /// the primary while that one can still be a parent; its other changes are written as
    /// usual. A new device behind a blocked parent is blocked with it. And every IoT Edge device
    /// the secondary created since the base, whose parent no export shows: created without one
    /// (or blocked, or kept where both sides created it), and listed on every run against the
    /// same base.
    pub parent_unwritable: Vec<ParentUnwritable>,
    /// Devices and modules in the merged registry (the lines of `merged`, whether collected
    /// or streamed).
    pub merged_devices: u64,
    /// Every conflict in the merged devices, as the core reports them.
    pub conflicts: Vec<Conflict>,
    /// What [`Summary::new`](crate::iothub::Summary::new) reports of the failback the plan
    /// was made from, beside the plan's own lines.
    pub(super) findings: Findings,
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
        let mut plan = outcome.unwrap_or_else(|_| Plan::empty());
        plan.merged = merged;
        plan
    }

    /// A plan of nothing, for a part of the registry to be planned into; not public: a plan
    /// is always some failback's, and carries its [`Findings`].
    fn empty() -> Plan {
        Plan {
            merged: Vec::new(),
            import: Vec::new(),
            blocked: Vec::new(),
            system_modules: Vec::new(),
            pending_parent: Vec::new(),
            parent_gone: Vec::new(),
            parent_unwritable: Vec::new(),
            merged_devices: 0,
            conflicts: Vec::new(),
            findings: Findings::none(),
        }
    }

    /// Plans the import as [`new`](Self::new) does, handing each merged line to `sink` in
    /// order instead of collecting them: one pass over the registry, each device read once,
    /// nothing held but the plan itself. The plan returned is [`new`](Self::new)'s but for
    /// [`merged`](Self::merged), left empty (its lines went to `sink`;
    /// [`merged_devices`](Self::merged_devices) counts them).
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
        let mut plan = Plan::empty();
        planner.plan(planner.keys(), &mut plan, &mut sink)?;
        plan.pending_parent.sort();
        plan.pending_parent.dedup();
        plan.findings = Findings::of(failback);
        Ok(plan)
    }

    /// Plans the import as [`stream`](Self::stream) does, handing `sink` the merged
    /// registry's lines as canonical JSON text ([`ExportLine::to_json`]), each followed by a
    /// newline, in order, a block of whole lines at a time (never an empty one). Blocks are
    /// planned and written on every core (at most eight threads); the plan and the text are
    /// the same on any number.
    ///
    /// What goes where: `sink` receives the merged registry alone, the text of a
    /// `merged.jsonl` (what [`merged`](Self::merged) would hold, which is left empty). The
    /// plan returned holds the rest as [`new`](Self::new)'s does: the import lines in
    /// [`import`](Self::import), for the caller to write (as
    /// [`write_atomically`](crate::iothub::write_atomically)'s example does), the blocked
    /// devices, the conflicts, and [`merged_devices`](Self::merged_devices), the number of
    /// lines `sink` received. `failback` is only read.
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
        plan.findings = Findings::of(failback);
        Ok(plan)
    }

    /// Appends a later block's plan (see [`stream_json_on`](Self::stream_json_on)). Its
    /// [`Findings`] are none, as this plan's are until the whole plan is made: the failback's
    /// are taken once, for the whole plan.
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
}

/// The key of the device a module belongs to (the key itself for a device).
fn device_of(key: &DeviceKey) -> DeviceKey {
    key_of(&key.device)
}

/// The key of device `id` itself, not of a module.
fn key_of(id: &DeviceId) -> DeviceKey {
    DeviceKey {
        device: id.clone(),
        module: None,
    }
}

/// Whether `key` has a live incarnation in the merged registry.
fn is_live(failback: &Failback, key: &DeviceKey) -> bool {
    !failback.merged().records(key).is_empty()
}
