//! The failback report: what the merge found and what the plan does. It holds no key: keys
//! are shown by their fingerprints, and values that may be secrets are hidden, or shown by
//! their keyed fingerprints under the lift's
//! [`LiftPolicy::fingerprint_key`](super::LiftPolicy::fingerprint_key) (see
//! [`ConflictValue::value`](crate::ConflictValue::value)).

use serde::{Deserialize, Serialize};

use crate::iothub::import_mode::ImportMode;
use crate::iothub::lift::{Change, Failback, Side};
use crate::iothub::plan::{Blocked, ParentUnwritable, Plan};
use crate::key::DeviceKey;
use crate::policy::Rule;
use crate::report::{Conflict, Stale};

/// Lines read from one input file: [`ExportReader::stats`](super::ExportReader::stats) once
/// the reader is read to its end, or [`Export::stats`](super::Export::stats).
///
/// # Examples
///
/// ```
/// let stats = failback::iothub::InputStats { devices: 10, skipped: 1 };
/// assert_eq!(stats.devices, 10);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputStats {
    /// Device and module lines.
    pub devices: u64,
    /// Hub warning lines skipped.
    pub skipped: u64,
}

/// One side's value in a reported conflict.
///
/// # Examples
///
/// ```
/// use failback::iothub::{read_export_from, Failback, Plan, Side, Summary};
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let base = export(r#"{"id":"d","status":"enabled","tags":{"site":"oslo"}}"#)?;
/// let primary = export(r#"{"id":"d","status":"enabled","tags":{"site":"bergen"}}"#)?;
/// let secondary = export(r#"{"id":"d","status":"enabled","tags":{"site":"tromso"}}"#)?;
/// let failback = Failback::lift(&base, &primary, &secondary, Side::Secondary)?;
/// let summary = Summary::new(&Plan::new(&failback), Default::default());
///
/// let values = &summary.conflicts[0].values;
/// assert_eq!((values[0].side, values[0].value.as_str()), (Side::Primary, "\"bergen\""));
/// assert_eq!((values[1].side, values[1].value.as_str()), (Side::Secondary, "\"tromso\""));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SideValue {
    /// Where the value came from.
    pub side: Side,
    /// The value, with secrets hidden, as
    /// [`ConflictValue::value`](crate::ConflictValue::value) shows them.
    pub value: String,
}

/// A conflict as the failback report shows it.
///
/// # Examples
///
/// ```
/// use failback::Rule;
/// use failback::iothub::{read_export_from, Failback, Plan, Side, Summary};
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let base = export(r#"{"id":"d","status":"enabled","tags":{"site":"oslo"}}"#)?;
/// let primary = export(r#"{"id":"d","status":"enabled","tags":{"site":"bergen"}}"#)?;
/// let secondary = export(r#"{"id":"d","status":"enabled","tags":{"site":"tromso"}}"#)?;
/// let failback = Failback::lift(&base, &primary, &secondary, Side::Secondary)?;
/// let summary = Summary::new(&Plan::new(&failback), Default::default());
///
/// // Both hubs moved the device to another site: the preferred side's value stands.
/// let conflict = &summary.conflicts[0];
/// assert_eq!((conflict.field.as_str(), conflict.winner), ("tags.site", Side::Secondary));
/// assert_eq!((conflict.rule, conflict.security), (Rule::PreferredReplica, false));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConflictEntry {
    /// The device.
    #[serde(flatten)]
    pub key: DeviceKey,
    /// The field path (`status`, `authentication`, `tags.site`, `existence`, …).
    pub field: String,
    /// Each side's value.
    pub values: Vec<SideValue>,
    /// The side whose value the merged registry holds; under `retired-credential-unresolved`,
    /// holds with every credential the other side rotated out blanked (the values stay as
    /// each side wrote them), and the device is blocked for an operator.
    pub winner: Side,
    /// The rule that decided.
    pub rule: Rule,
    /// Whether the field decides who can connect.
    pub security: bool,
}

/// A stale write a hub made, which the merge refused.
///
/// # Examples
///
/// As `report.json` lists it:
///
/// ```
/// use failback::{DeviceKey, Stale, iothub::{RejectedWrite, Side}};
/// let text = r#"{"device":"d","kind":"re-enable","side":"secondary"}"#;
/// let rejected: RejectedWrite = serde_json::from_str(text).expect("a rejected write");
/// assert_eq!(rejected.key, DeviceKey::device("d")?);
/// assert_eq!((rejected.kind, rejected.side), (Stale::Reenable, Side::Secondary));
/// assert_eq!(serde_json::to_string(&rejected).expect("serializable"), text);
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RejectedWrite {
    /// The device.
    #[serde(flatten)]
    pub key: DeviceKey,
    /// What it would have done.
    pub kind: Stale,
    /// The hub that wrote it (for a resurrection, the one that created the incarnation).
    pub side: Side,
}

/// How many lines of each kind the import plan holds.
///
/// # Examples
///
/// ```
/// use failback::iothub::{read_export_from, Failback, Plan, PlanCounts, Side};
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let base = export(r#"{"id":"a","eTag":"A","status":"enabled"}"#)?;
/// let secondary = export(r#"{"id":"b","status":"enabled","authentication":{"type":"certificateAuthority"}}"#)?;
/// // The secondary deleted `a` and created `b`: one line of each.
/// let counts = PlanCounts::of(&Plan::new(&Failback::lift(&base, &base, &secondary, Side::Secondary)?));
/// assert_eq!((counts.create, counts.update, counts.update_twin, counts.delete), (1, 0, 0, 1));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PlanCounts {
    /// `create` lines.
    pub create: u64,
    /// `updateIfMatchETag` lines.
    pub update: u64,
    /// `updateTwinIfMatchETag` lines.
    pub update_twin: u64,
    /// `deleteIfMatchETag` lines.
    pub delete: u64,
}

impl PlanCounts {
    /// The lines of each kind `plan` imports.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, Failback, Plan, PlanCounts, Side};
    /// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
    /// let both = export(r#"{"id":"a","eTag":"AAAA","status":"enabled","authentication":{"type":"certificateAuthority"}}"#)?;
    /// let failback = Failback::lift(&both, &both, &[], Side::Secondary)?;
    /// assert_eq!(PlanCounts::of(&Plan::new(&failback)).delete, 1);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn of(plan: &Plan) -> PlanCounts {
        let mut counts = PlanCounts::default();
        for line in &plan.import {
            match line.import_mode {
                Some(ImportMode::Create) => counts.create += 1,
                Some(ImportMode::UpdateIfMatchETag) => counts.update += 1,
                Some(ImportMode::UpdateTwinIfMatchETag) => counts.update_twin += 1,
                Some(ImportMode::DeleteIfMatchETag) => counts.delete += 1,
                _ => {}
            }
        }
        counts
    }
}

/// Everything `report.json` holds.
///
/// # Examples
///
/// ```
/// use failback::iothub::{read_export_from, Failback, Plan, Side, Summary};
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let both = export(r#"{"id":"d","twinETag":"T","status":"enabled","tags":{"site":"oslo"}}"#)?;
/// let secondary = export(r#"{"id":"d","status":"enabled","tags":{"site":"bergen"}}"#)?;
/// let failback = Failback::lift(&both, &both, &secondary, Side::Secondary)?;
/// let summary = Summary::new(&Plan::new(&failback), Default::default());
///
/// // As `report.json` holds it (the example tool writes it pretty-printed).
/// let report = serde_json::to_value(&summary).expect("serializable");
/// assert_eq!((&report["mergedDevices"], &report["plan"]["updateTwin"]), (&1.into(), &1.into()));
/// assert_eq!(report["prefer"], "secondary");
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Summary {
    /// The side preferred where no security rule decides.
    pub prefer: Side,
    /// Lines read: base, primary, secondary.
    pub inputs: [InputStats; 3],
    /// Device and module lines of each input (base, primary, secondary) that held none of the
    /// credentials their authentication type uses, exported without keys: in the secondary, a
    /// rotation it made is not seen; in the base or the primary, such devices are blocked
    /// where their credentials would decide ([`Failback::credentials_unknown`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, Failback, Plan, Side, Summary};
    /// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
    /// let keyed = export(concat!(
    ///     r#"{"id":"d","status":"enabled","authentication":{"symmetricKey":"#,
    ///     r#"{"primaryKey":"ZmFpbGJhY2sta2V5LTAwMQ==","secondaryKey":"ZmFpbGJhY2sta2V5LTAwMg=="},"type":"sas"}}"#,
    /// ))?;
    /// let keyless = export(r#"{"id":"d","status":"enabled","authentication":null}"#)?;
    /// let failback = Failback::lift(&keyed, &keyed, &keyless, Side::Secondary)?;
    /// let summary = Summary::new(&Plan::new(&failback), Default::default());
    /// assert_eq!(summary.credentials_unknown, [0, 0, 1]);
    /// let json = serde_json::to_value(&summary).expect("serializable");
    /// assert_eq!(json["credentialsUnknown"], serde_json::json!([0, 0, 1]));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub credentials_unknown: [u64; 3],
    /// Devices and modules in the merged registry.
    pub merged_devices: u64,
    /// The plan's line counts.
    pub plan: PlanCounts,
    /// Every conflict, sorted by device and field.
    pub conflicts: Vec<ConflictEntry>,
    /// Devices left out of the plan, and why; a disable the merge decided may still be written
    /// alone, and the reason says whether it is ([`Plan::blocked`]).
    pub blocked: Vec<Blocked>,
    /// IoT Edge system modules where the merged registry differs from the primary (to create,
    /// change or delete): the plan writes none of them, since the edge runtime and the hub
    /// manage them. Listed for the operator to see, not blocked: nothing is theirs to settle.
    pub system_modules: Vec<DeviceKey>,
    /// Devices waiting for their new parent's scope, and modules waiting for their device's
    /// creation: the next run completes them ([`Plan::pending_parent`]).
    pub pending_parent: Vec<DeviceKey>,
    /// Devices one side moved behind an edge parent the other deleted or made plain, for an
    /// operator to choose a parent ([`Plan::parent_gone`]).
    pub parent_gone: Vec<DeviceKey>,
    /// Devices whose edge parent no import line can carry, for an operator to set by hand,
    /// each with why and the parent the merge wants ([`Plan::parent_unwritable`]), an IoT
    /// Edge device the secondary created, whose parent no export shows, among them.
    pub parent_unwritable: Vec<ParentUnwritable>,
    /// Writes a hub made that the merge refused as stale. A device one side deleted and the
    /// other still holds as the base had it is not listed: that copy is no hub's write, and
    /// the delete is the change (a delete line, or a delete-wins conflict where the other side
    /// changed the device).
    pub rejected: Vec<RejectedWrite>,
}

impl Summary {
    /// Summarises `plan` as `report.json` shows it; `inputs` are the base, primary and
    /// secondary stats, which only the readers know
    /// ([`ExportReader::stats`](super::ExportReader::stats)).
    ///
    /// What the report says of the failback itself (the preferred side, a delete that won over
    /// a change, writes refused as stale, credentials the exports left out) `plan` took from
    /// the failback it was planned from, when it was planned: a summary cannot pair a plan
    /// with another failback's report, and a plan is only ever made from a failback
    /// ([`Plan::new`], [`Plan::stream`], [`Plan::stream_json`]; it has no `Default`).
    ///
    /// Carried rather than checked: a fingerprint of the failback, recorded in the plan and
    /// checked here, would refuse a mispairing only at run time, as an error the caller could
    /// do nothing about but fix the call.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, Failback, Plan, Side, Summary};
    /// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes());
    /// let base = export(r#"{"id":"b","eTag":"B","status":"enabled"}
    /// {"id":"c","status":"enabled","tags":{"site":"oslo"}}"#)?;
    /// // The primary moved `c` (and was exported without its twin ETag); the secondary deleted
    /// // `b` and moved `c` elsewhere.
    /// let primary = export(r#"{"id":"b","eTag":"B","status":"enabled"}
    /// {"id":"c","status":"enabled","tags":{"site":"bergen"}}"#)?;
    /// let secondary = export(r#"{"id":"c","status":"enabled","tags":{"site":"tromso"}}"#)?;
    /// let failback = Failback::lift(&base.lines, &primary.lines, &secondary.lines, Side::Secondary)?;
    /// let plan = Plan::new(&failback);
    ///
    /// let summary = Summary::new(&plan, [base.stats(), primary.stats(), secondary.stats()]);
    /// assert_eq!((summary.merged_devices, summary.plan.delete), (1, 1)); // `c` left, `b` deleted
    /// assert_eq!(summary.conflicts[0].field, "tags.site"); // `c`, settled for the secondary
    /// assert!(summary.blocked[0].reason.contains("twinETag")); // `c`: no guarded line
    /// assert_eq!(summary.inputs[1].devices, 2);
    /// # Ok::<(), failback::Error>(())
    /// ```
    ///
    /// A plan comes from a failback, and from nothing else:
    ///
    /// ```compile_fail,E0599
    /// let empty = failback::iothub::Plan::default();
    /// ```
    pub fn new(plan: &Plan, inputs: [InputStats; 3]) -> Summary {
        let findings = &plan.findings;
        let mut conflicts: Vec<ConflictEntry> =
            plan.conflicts.iter().cloned().filter_map(entry).collect();
        conflicts.extend(findings.existence_conflicts.iter().cloned());
        conflicts.sort();
        Summary {
            prefer: findings.prefer,
            inputs,
            credentials_unknown: findings.credentials_unknown,
            merged_devices: plan.merged_devices,
            plan: PlanCounts::of(plan),
            conflicts,
            blocked: plan.blocked.clone(),
            system_modules: plan.system_modules.clone(),
            pending_parent: plan.pending_parent.clone(),
            parent_gone: plan.parent_gone.clone(),
            parent_unwritable: plan.parent_unwritable.clone(),
            rejected: findings.rejected.clone(),
        }
    }

    /// How many conflicts touch security (status, credentials, existence).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, Failback, Plan, Side, Summary};
    /// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
    /// let base = export(r#"{"id":"d","status":"enabled"}
    /// {"id":"e","status":"enabled","tags":{"site":"oslo"}}"#)?;
    /// // The primary deleted `d`, which the secondary moved: the delete wins, over existence,
    /// // a security field. Both moved `e`: the preference settles it.
    /// let primary = export(r#"{"id":"e","status":"enabled","tags":{"site":"bergen"}}"#)?;
    /// let secondary = export(r#"{"id":"d","status":"enabled","tags":{"site":"oslo"}}
    /// {"id":"e","status":"enabled","tags":{"site":"tromso"}}"#)?;
    /// let failback = Failback::lift(&base, &primary, &secondary, Side::Secondary)?;
    /// let summary = Summary::new(&Plan::new(&failback), Default::default());
    /// assert_eq!((summary.conflicts.len(), summary.security_conflicts()), (2, 1));
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn security_conflicts(&self) -> usize {
        self.conflicts.iter().filter(|c| c.security).count()
    }
}

/// What a summary reports of the failback itself, beside its plan's lines: taken when the
/// plan is made ([`Findings::of`]), so that a plan's summary is always its own failback's (see
/// [`Summary::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Findings {
    /// [`Summary::prefer`].
    prefer: Side,
    /// [`Summary::credentials_unknown`].
    credentials_unknown: [u64; 3],
    /// The conflicts a delete won, which no merged device holds: a device deleted on one side
    /// and changed on the other, a module changed on a device the other side deleted.
    existence_conflicts: Vec<ConflictEntry>,
    /// [`Summary::rejected`], sorted.
    rejected: Vec<RejectedWrite>,
}

impl Findings {
    /// What `failback` found.
    pub(crate) fn of(failback: &Failback) -> Findings {
        let prefer = match failback.policy().fields {
            crate::policy::Preference::Replica(r) => Side::of(r).unwrap_or(Side::Secondary),
            crate::policy::Preference::LatestStamp => Side::Secondary,
        };
        let mut existence_conflicts: Vec<ConflictEntry> = delete_wins(failback).collect();
        existence_conflicts.extend(orphaned_modules(failback));
        let mut rejected: Vec<RejectedWrite> = failback
            .merge_report()
            .rejected
            .iter()
            .filter_map(|r| {
                // The base's copy of a device one side deleted, still held by the other, is no
                // hub's write: the delete is the change (a delete line, or a delete-wins
                // conflict where the other side changed the device). Listed, it would come and
                // go with the direction of the merge and with whether the holding side wrote
                // anything at all, elsewhere.
                let side = Side::of(r.dot.replica).filter(|&side| side != Side::Base)?;
                Some(RejectedWrite {
                    key: r.key.clone(),
                    kind: r.kind,
                    side,
                })
            })
            .collect();
        rejected.sort();
        rejected.dedup();
        Findings {
            prefer,
            credentials_unknown: failback.credentials_unknown(),
            existence_conflicts,
            rejected,
        }
    }

    /// Nothing found: a block's plan holds this until the whole plan takes its failback's
    /// (`Plan::append` keeps the first block's, the whole plan's).
    pub(crate) fn none() -> Findings {
        Findings {
            prefer: Side::Secondary,
            credentials_unknown: [0; 3],
            existence_conflicts: Vec::new(),
            rejected: Vec::new(),
        }
    }
}

/// A core conflict with replicas named as sides.
fn entry(conflict: Conflict) -> Option<ConflictEntry> {
    let winner = Side::of(conflict.values.get(conflict.winner)?.replica)?;
    let mut values: Vec<SideValue> = conflict
        .values
        .into_iter()
        .filter_map(|v| {
            Some(SideValue {
                side: Side::of(v.replica)?,
                value: v.value,
            })
        })
        .collect();
    // By side, as every other entry: the core's dot order would put the secondary first.
    values.sort();
    Some(ConflictEntry {
        values,
        key: conflict.key,
        field: conflict.field,
        winner,
        rule: conflict.rule,
        security: conflict.security,
    })
}

/// A device deleted on one side and changed on the other: deleted, and reported.
fn delete_wins(failback: &Failback) -> impl Iterator<Item = ConflictEntry> + '_ {
    failback.changes.iter().filter_map(|(key, changes)| {
        let (deleter, updater) = match changes {
            (Change::Deleted, Change::Updated) => (Side::Primary, Side::Secondary),
            (Change::Updated, Change::Deleted) => (Side::Secondary, Side::Primary),
            _ => return None,
        };
        Some(delete_won(key, (deleter, "deleted"), (updater, "updated")))
    })
}

/// The existence conflict a delete won: the deleting side's value and the other's.
fn delete_won(key: &DeviceKey, deleted: (Side, &str), other: (Side, &str)) -> ConflictEntry {
    let mut values = [deleted, other].map(|(side, value)| SideValue {
        side,
        value: value.into(),
    });
    values.sort();
    ConflictEntry {
        key: key.clone(),
        field: "existence".into(),
        values: values.into(),
        winner: deleted.0,
        rule: Rule::DeleteWins,
        security: true,
    }
}

/// A module one side created or changed on a device the other side deleted: gone with its
/// device (the plan drops it), and reported.
fn orphaned_modules(failback: &Failback) -> impl Iterator<Item = ConflictEntry> + '_ {
    let policy = failback.policy();
    failback.changes.iter().filter_map(move |(key, &(p, s))| {
        key.module.as_ref()?;
        let device = DeviceKey {
            device: key.device.clone(),
            module: None,
        };
        if failback.merged().device(&device, policy).is_some()
            || failback.merged().device(key, policy).is_none()
        {
            return None;
        }
        let (deleter, changer, change) = match (failback.changes.get(&device)?, p, s) {
            ((Change::Deleted, _), _, change @ (Change::Created | Change::Updated)) => {
                (Side::Primary, Side::Secondary, change)
            }
            ((_, Change::Deleted), change @ (Change::Created | Change::Updated), _) => {
                (Side::Secondary, Side::Primary, change)
            }
            _ => return None,
        };
        let changed = if change == Change::Created {
            "created"
        } else {
            "updated"
        };
        Some(delete_won(
            key,
            (deleter, "device deleted"),
            (changer, changed),
        ))
    })
}
