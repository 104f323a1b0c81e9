//! Lifting three exports (base, primary, secondary) into three replicas, and merging them.
//!
//! The base is the registry both sides started from, so it is written first, by its own
//! replica: every base device is one create. Each side is then the base plus that side's
//! differences from it, written by the side's replica; writes on different sides are
//! therefore concurrent, and the core's rules decide. Field by field: a value changed on one
//! side only takes that side's value, the same change on both is no conflict, and different
//! changes are a conflict settled by the rule for that field.
//!
//! Unknown credentials (an export taken without keys) never count as a change: a side whose
//! keys are unknown keeps the base's, and a known value is never overwritten by an unknown one.
//! So a rotation the secondary made is not seen where its export left the keys out; the lines
//! read so are counted per input ([`Failback::credentials_unknown`]), for a caller to say so.
//! Unknown capabilities (a device line whose `capabilities` are null or absent) are read the
//! same way ([`stated_capabilities`]), unless the export's scopes name the device: then it is
//! an IoT Edge device in that hub ([`ScopeOwners`]). Where the base's are unknown, the two
//! sides' different values meet as a conflict (`settle_unknown_capabilities`): the base cannot
//! say which side changed them.
//!
//! [`ScopeOwners`]: capabilities::ScopeOwners

mod base;
mod capabilities;
mod changes;
mod credentials;
mod side;

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::device::Creation;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::iothub::check::checked;
use crate::iothub::line::ExportLine;
use crate::key::{DeviceId, DeviceKey};
use crate::policy::Policy;
use crate::registry::Registry;
use crate::report::Report;

use base::{LiftedBase, lift_base};
use changes::{SideOutcome, create_side, read_side, settle_unknown_capabilities};

pub(crate) use capabilities::stated_capabilities;
pub(crate) use changes::Change;
pub(crate) use credentials::{BaseCredentials, holds_credentials, known_over};
pub use side::{BASE, LiftPolicy, PRIMARY, SECONDARY, Side};

/// Three exports lifted into replicas and merged.
///
/// # One failback's registries
///
/// A lift writes the base under [`BASE`], each side's changes under [`PRIMARY`] and
/// [`SECONDARY`]: fixed ids, counted from 1 in every lift, so that a failback's registries are
/// the same on every run and [`Side::of`] can name the side a value came from. Its registries
/// ([`merged`](Self::merged), [`replica`](Self::replica)) are that failback's alone: never
/// merge them with another lift's registries, or with a live replica's. Two lifts name
/// different writes by the same dots, which breaks [`ReplicaId`]'s rule (one id, one sequence
/// of writes): the merge silently keeps one of each pair, devices vanish, and the result
/// depends on the order of the merge.
///
/// A lift is for a failback from three exports, planned with [`Plan`](super::Plan). To keep
/// live replicas of a registry, write under your own [`ReplicaId`] with your own
/// [`Writer`](crate::Writer), and seed the replica from one export with
/// [`ExportLine::identity`].
///
/// # Examples
///
/// ```
/// use failback::{DeviceKey, Status, iothub::{ExportLine, Failback, Side}};
///
/// let d = DeviceKey::device("d1")?;
/// let base = [ExportLine::new(d.clone(), Status::Enabled)];
/// let primary = base.clone();
/// let secondary = [ExportLine::new(d.clone(), Status::Disabled)];
/// let failback = Failback::lift(&base, &primary, &secondary, Side::Secondary)?;
/// let device = failback.merged().device(&d, failback.policy()).expect("live");
/// assert_eq!(device.status.status, Status::Disabled);
/// # Ok::<(), failback::Error>(())
/// ```
///
/// [`ReplicaId`]: crate::ReplicaId
#[derive(Clone, Debug)]
pub struct Failback {
    base: Registry,
    primary: Registry,
    secondary: Registry,
    merged: Registry,
    merge_report: Report,
    policy: Policy,
    /// Per key that either side changed, what each side did: (primary, secondary).
    pub(crate) changes: BTreeMap<DeviceKey, (Change, Change)>,
    /// What the plan needs of the primary's own lines (hub-local ETags and scopes).
    pub(crate) primary_lines: BTreeMap<DeviceKey, PrimaryLine>,
    /// Lines read as holding unknown credentials: base, primary, secondary.
    credentials_unknown: [u64; 3],
}

/// The hub-local parts of a primary export line, kept for the import plan; everything else
/// the primary's replica holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PrimaryLine {
    pub(crate) e_tag: Option<String>,
    pub(crate) twin_e_tag: Option<String>,
    pub(crate) device_scope: Option<String>,
    /// The edge device the scope names (the device itself for an edge device).
    pub(crate) scope_owner: Option<DeviceId>,
    pub(crate) status: crate::identity::Status,
    /// Whether the line carried the credentials its authentication type uses (keys for SAS,
    /// thumbprints for self-signed): a full update replaces them, so the plan writes one only
    /// over credentials it has seen.
    pub(crate) credentials_known: bool,
    /// Whether the line stated the device's capabilities ([`stated_capabilities`]); true for a
    /// module, which has none.
    pub(crate) capabilities_known: bool,
    /// Whether the line stated the device a plain device (capabilities `iotEdge: false`): the
    /// primary holds no edge device of that id, whatever a leaf's scope there names.
    pub(crate) stated_plain: bool,
}

impl PrimaryLine {
    fn of(line: &ExportLine) -> Self {
        // An empty ETag is no hub's: a line matching it would be refused on every run, so it
        // reads as absent, and the plan leaves the device out with the reason.
        let e_tag = |tag: &Option<String>| tag.clone().filter(|tag| !tag.is_empty());
        Self {
            e_tag: e_tag(&line.e_tag),
            twin_e_tag: e_tag(&line.twin_e_tag),
            device_scope: line.device_scope.clone(),
            scope_owner: line.parent.clone(),
            status: line.status,
            credentials_known: holds_credentials(line.authentication.as_ref()),
            capabilities_known: line.key.module.is_some() || stated_capabilities(line).is_some(),
            stated_plain: stated_capabilities(line).is_some_and(|c| !c.iot_edge),
        }
    }
}

impl Failback {
    /// Lifts the three snapshots and merges them, preferring `prefer`'s side where no security
    /// rule settles a conflict; the merge's conflicts show hidden values under its
    /// fingerprint key, if it holds one ([`LiftPolicy`]; a [`Side`] holds none).
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateDevice`] naming a key that appears twice in one snapshot, and
    /// [`Error::InvalidValue`] naming the field, the device and the snapshot for a line its
    /// reader would refuse, so that a line built in code is held to what one read is:
    /// - a line carrying `importMode`: an import file's line (a plan's), not a hub's export;
    /// - a disabled module (IoT Hub keeps no status for a module);
    /// - a `statusReason` over 128 characters;
    /// - one symmetric key of two, or two thumbprints of different lengths;
    /// - a `deviceScope` not of the form `ms-azure-iot-edge://{edgeDeviceId}-{generationId}`,
    ///   or a [`parent`](ExportLine::parent) other than the edge device the scope names (a
    ///   parent without a scope, say);
    /// - a twin key IoT Hub does not store (empty, over 1 KB, holding `.`, `$`, a space or a
    ///   control character, or deeper than 10 levels; `$metadata` and `$version` are dropped
    ///   at the top of desired and reported properties only), or a twin value nested deeper
    ///   than the reader reads.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{Failback, Side};
    /// let empty = Failback::lift(&[], &[], &[], Side::Primary)?;
    /// assert!(empty.merged().is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn lift(
        base: &[ExportLine],
        primary: &[ExportLine],
        secondary: &[ExportLine],
        prefer: impl Into<LiftPolicy>,
    ) -> Result<Self> {
        let lines = |lines: &[ExportLine]| lines.iter().cloned().map(Ok).collect::<Vec<_>>();
        Self::from_lines(lines(base), lines(primary), lines(secondary), prefer)
    }

    /// Lifts three streams of export lines (from an [`ExportReader`](super::ExportReader), say)
    /// and merges them. The base is read first; then the primary and the secondary are read at
    /// the same time, one thread each. No stream is held in memory whole: a side keeps only
    /// the lines of devices the base lacks, and the primary its hub-local ETags and scopes.
    ///
    /// # Errors
    ///
    /// The first error a stream yields, or one of those [`lift`](Self::lift) lists: a key twice
    /// in one snapshot, or a line its reader would refuse (`importMode`, a disabled module, a
    /// long `statusReason`, a parent without its scope, a twin key IoT Hub does not store, …).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{ExportReader, Failback, Side};
    ///
    /// let base = r#"{"id":"d1","status":"enabled","tags":{"site":"a"}}"#;
    /// let secondary = r#"{"id":"d1","status":"enabled","tags":{"site":"b"}}"#;
    /// let failback = Failback::from_lines(
    ///     ExportReader::new("base.jsonl", base.as_bytes()),
    ///     ExportReader::new("primary.jsonl", base.as_bytes()),
    ///     ExportReader::new("secondary.jsonl", secondary.as_bytes()),
    ///     Side::Secondary,
    /// )?;
    /// assert_eq!(failback.merged().live_count(), 1);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn from_lines<B, P, S>(
        base: B,
        primary: P,
        secondary: S,
        prefer: impl Into<LiftPolicy>,
    ) -> Result<Self>
    where
        B: IntoIterator<Item = Result<ExportLine>>,
        B::IntoIter: Send,
        P: IntoIterator<Item = Result<ExportLine>>,
        P::IntoIter: Send,
        S: IntoIterator<Item = Result<ExportLine>>,
        S::IntoIter: Send,
    {
        // Every line is held to its reader's rules, read or built in code (src/iothub/check.rs).
        let base = checked(base, Side::Base);
        let (primary, secondary) = (
            checked(primary, Side::Primary),
            checked(secondary, Side::Secondary),
        );
        let base = lift_base(base)?;
        let (primary, secondary) = read_sides(&base, primary, secondary);
        let (mut primary, mut secondary) = (primary?, secondary?);
        create_side(
            &mut primary,
            (&secondary.created, &secondary.scope_owners),
            PRIMARY,
        )?;
        create_side(
            &mut secondary,
            (&primary.created, &primary.scope_owners),
            SECONDARY,
        )?;
        settle_unknown_capabilities(&base.registry, &mut primary, &mut secondary)?;

        let policy = prefer.into().policy();
        let mut merged = primary.registry.clone();
        let merge_report = merged.merge_with(&secondary.registry, &policy);
        let changes = both_sides_changes(&primary, &secondary);
        Ok(Self {
            base: base.registry,
            primary: primary.registry,
            secondary: secondary.registry,
            merged,
            merge_report,
            policy,
            changes,
            primary_lines: primary.primary_lines,
            credentials_unknown: [
                base.credentials_unknown,
                primary.credentials_unknown,
                secondary.credentials_unknown,
            ],
        })
    }

    /// The identity the base's line for `key` describes, if the base has it.
    pub(crate) fn base_identity(&self, key: &DeviceKey) -> Option<&Identity> {
        base_creation(&self.base, key).map(|c| &c.identity)
    }

    /// What the base's line for `key` says of the device's credentials. A key the base lacks
    /// is [`BaseCredentials::Absent`], not known: a device both hubs hold and the base lacks
    /// may have been created before the outage and had its keys rotated on one side since, and
    /// the base cannot say which (read as known, the preference would decide and could write
    /// back a key the primary had rotated out).
    pub(crate) fn base_credentials(&self, key: &DeviceKey) -> BaseCredentials {
        match self.base_identity(key) {
            None => BaseCredentials::Absent,
            Some(identity) if holds_credentials(Some(&identity.authentication)) => {
                BaseCredentials::Known
            }
            Some(_) => BaseCredentials::Unknown,
        }
    }

    /// The merged registry: this failback's, written under the lift's fixed ids. Read it, plan
    /// from it; never merge it with another lift's registries or with a live replica's (see
    /// [One failback's registries](Self#one-failbacks-registries)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::iothub::{Failback, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// assert_eq!(failback.merged().live_count(), 0);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn merged(&self) -> &Registry {
        &self.merged
    }

    /// A side's replica: the base, or the base plus that side's changes, written under the
    /// lift's fixed ids. Never merge it with another lift's registries or with a live
    /// replica's (see [One failback's registries](Self#one-failbacks-registries)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::iothub::{Failback, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Secondary)?;
    /// assert!(failback.replica(Side::Base).is_empty());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn replica(&self, side: Side) -> &Registry {
        match side {
            Side::Base => &self.base,
            Side::Primary => &self.primary,
            Side::Secondary => &self.secondary,
        }
    }

    /// What merging the secondary's replica into the primary's did.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, Failback, Side};
    /// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
    /// let base = export(r#"{"id":"d","status":"enabled","tags":{"site":"oslo"}}"#)?;
    /// let primary = export(r#"{"id":"d","status":"enabled","tags":{"site":"bergen"}}"#)?;
    /// let secondary = export(r#"{"id":"d","status":"enabled","tags":{"site":"tromso"}}
    /// {"id":"e","status":"enabled"}"#)?;
    /// let failback = Failback::lift(&base, &primary, &secondary, Side::Secondary)?;
    /// let report = failback.merge_report();
    /// // The secondary created `e`, and both hubs moved `d`: the preferred side's site stands.
    /// assert_eq!((report.added, report.updated), (1, 1));
    /// assert_eq!(report.conflicts[0].field, "tags.site");
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn merge_report(&self) -> &Report {
        &self.merge_report
    }

    /// How many device and module lines of each input, in base, primary, secondary order,
    /// held none of the credentials their authentication type uses: no keys for SAS, no
    /// thumbprints for self-signed (an export taken with `excludeKeysInExport`), or no
    /// `authentication` at all, read as SAS. Certificate-authority devices use none and are
    /// not counted.
    ///
    /// Such credentials are unknown, never a change: a side's unknown keys keep the base's, and
    /// never overwrite known ones. What that costs depends on the input. In the secondary, a
    /// key or thumbprint it rotated during the outage cannot be seen: the merge keeps the
    /// primary's, and a device now using the new one cannot connect after failback. In the
    /// primary, a full update of the device would replace credentials it may have rotated, so
    /// the plan blocks it; in the base, a device the two sides hold with different credentials
    /// is blocked, since which side changed them cannot be told
    /// ([`Plan::blocked`](super::Plan::blocked) lists each with its reason).
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, Failback, Side};
    /// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
    /// let keyed = export(concat!(
    ///     r#"{"id":"d","status":"enabled","authentication":{"symmetricKey":"#,
    ///     r#"{"primaryKey":"ZmFpbGJhY2sta2V5LTAwMQ==","secondaryKey":"ZmFpbGJhY2sta2V5LTAwMg=="},"type":"sas"}}"#,
    /// ))?;
    /// // The secondary was exported with excludeKeysInExport: its keys are unknown.
    /// let keyless = export(concat!(
    ///     r#"{"id":"d","status":"enabled","authentication":{"symmetricKey":"#,
    ///     r#"{"primaryKey":null,"secondaryKey":null},"type":"sas"}}"#,
    /// ))?;
    /// let failback = Failback::lift(&keyed, &keyed, &keyless, Side::Secondary)?;
    /// assert_eq!(failback.credentials_unknown(), [0, 0, 1]);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn credentials_unknown(&self) -> [u64; 3] {
        self.credentials_unknown
    }

    /// The policy conflicts are read with.
    ///
    /// # Examples
    ///
    /// ```
    /// # use failback::iothub::{Failback, Side};
    /// let failback = Failback::lift(&[], &[], &[], Side::Primary)?;
    /// assert_eq!(*failback.policy(), Side::Primary.policy());
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Reads the primary and the secondary over the lifted base at the same time: the primary on
/// this thread, the secondary on a helper (or after the primary, on this thread, where the OS
/// refuses one).
fn read_sides(
    base: &LiftedBase,
    primary: impl Iterator<Item = Result<ExportLine>>,
    secondary: impl Iterator<Item = Result<ExportLine>> + Send,
) -> (Result<SideOutcome>, Result<SideOutcome>) {
    let base = (&base.registry, &base.unknown_capabilities);
    let secondary_lines = Mutex::new(Some(secondary));
    std::thread::scope(|scope| {
        let secondary_lines = &secondary_lines;
        let other = crate::spawn::try_spawn(scope, move || {
            crate::spawn::take(secondary_lines).map(|lines| read_side(base, lines, Side::Secondary))
        });
        let mine = read_side(base, primary, Side::Primary);
        let joined = other.and_then(|other| {
            other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let other = match joined {
            Some(other) => other,
            None => {
                let lines = crate::spawn::take(secondary_lines).into_iter().flatten();
                read_side(base, lines, Side::Secondary)
            }
        };
        (mine, other)
    })
}

/// Per key that either side changed, what each side did: (primary, secondary).
fn both_sides_changes(
    primary: &SideOutcome,
    secondary: &SideOutcome,
) -> BTreeMap<DeviceKey, (Change, Change)> {
    let mut changes: BTreeMap<DeviceKey, (Change, Change)> = BTreeMap::new();
    let unchanged = (Change::Unchanged, Change::Unchanged);
    for (key, change) in &primary.changes {
        changes.entry(key.clone()).or_insert(unchanged).0 = *change;
    }
    for (key, change) in &secondary.changes {
        changes.entry(key.clone()).or_insert(unchanged).1 = *change;
    }
    changes
}

/// The creation of `key` in the base's registry, where its line wrote it: the base writes
/// each device once, so its one record's creation is what the line said.
fn base_creation<'b>(base: &'b Registry, key: &DeviceKey) -> Option<&'b Creation> {
    base.records(key).first().and_then(|r| r.creation())
}

/// A key twice in one snapshot: which copy would be the device?
fn twice(key: &DeviceKey, side: Side) -> Error {
    Error::DuplicateDevice {
        key: key.clone(),
        snapshot: side.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::base::BASE_CHUNK;
    use super::*;
    use crate::iothub::{Generate, Plan};

    fn from_lines(
        base: &[ExportLine],
        primary: &[ExportLine],
        secondary: &[ExportLine],
    ) -> Result<Failback> {
        let lines = |lines: &[ExportLine]| lines.iter().cloned().map(Ok).collect::<Vec<_>>();
        Failback::from_lines(
            lines(base),
            lines(primary),
            lines(secondary),
            Side::Secondary,
        )
    }

    #[test]
    fn refused_helper_threads_give_the_same_failback_and_the_same_errors() -> Result<()> {
        // More base lines than a chunk, so that the parsing thread hands over several.
        let triple = Generate {
            devices: 3 * BASE_CHUNK,
            seed: 5,
        }
        .run();
        // Some lines of each input exported without keys, so that each side counts some.
        let keyless = |lines: &[ExportLine], every: usize| -> Vec<ExportLine> {
            let mut lines = lines.to_vec();
            lines
                .iter_mut()
                .step_by(every)
                .for_each(|l| l.authentication = None);
            lines
        };
        let (base, primary, secondary) = (
            &keyless(&triple.base, 11),
            &keyless(&triple.primary, 7),
            &keyless(&triple.secondary, 5),
        );
        let threaded = from_lines(base, primary, secondary)?;
        let alone = crate::spawn::refused::with(|| from_lines(base, primary, secondary))?;
        for side in [Side::Base, Side::Primary, Side::Secondary] {
            assert!(threaded.replica(side) == alone.replica(side), "{side:?}");
        }
        let unknown = |lines: &[ExportLine]| {
            let held = |l: &&ExportLine| holds_credentials(l.authentication.as_ref());
            (lines.len() - lines.iter().filter(held).count()) as u64
        };
        let expected = [unknown(base), unknown(primary), unknown(secondary)];
        assert!(expected.iter().all(|&n| n > 0), "{expected:?}");
        assert_eq!(threaded.credentials_unknown(), expected);
        assert_eq!(alone.credentials_unknown(), expected);
        assert!(threaded.merged() == alone.merged());
        assert_eq!(threaded.merge_report(), alone.merge_report());
        assert_eq!(Plan::new(&threaded), Plan::new(&alone));

        // A device twice in the base, past the first chunk, is reported either way.
        let mut twice = base.clone();
        twice.push(base[BASE_CHUNK + 1].clone());
        let threaded = from_lines(&twice, primary, secondary)
            .map(|_| ())
            .unwrap_err();
        let alone = crate::spawn::refused::with(|| from_lines(&twice, primary, secondary))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(threaded.to_string(), alone.to_string());
        assert!(matches!(alone, Error::DuplicateDevice { .. }), "{alone}");

        // A device twice before a line the stream fails to read: the device found twice comes
        // first, either way (the thread had sent the error before the lines read before it).
        let d = base[0].clone();
        let failing = || {
            let unread = Error::InvalidValue {
                field: "line 3".into(),
                reason: "unreadable".into(),
            };
            vec![Ok(d.clone()), Ok(d.clone()), Err(unread)]
        };
        let none = Vec::<Result<ExportLine>>::new;
        let threaded = Failback::from_lines(failing(), none(), none(), Side::Primary)
            .map(|_| ())
            .unwrap_err();
        let alone = crate::spawn::refused::with(|| {
            Failback::from_lines(failing(), none(), none(), Side::Primary)
        })
        .map(|_| ())
        .unwrap_err();
        assert!(
            matches!(threaded, Error::DuplicateDevice { .. }),
            "{threaded}"
        );
        assert_eq!(threaded.to_string(), alone.to_string());
        Ok(())
    }
}
