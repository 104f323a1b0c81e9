//! Seeded perturbations of a generated failback: the shapes `Generate` never makes, which the
//! plan's two disable paths exist for (`src/iothub/plan/alone.rs`), and its detached
//! rotation (`src/iothub/plan/detached.rs`). `Generate` stays as it
//! is (it is the benchmarks' documented workload); the generated-data properties run on its
//! triples and on these.
//!
//! Each perturbation is something hubs do (IOTHUB.md), done to a few devices neither side
//! touched otherwise, so that what the plan should do is known:
//!
//! | perturbation | the plan's path |
//! |---|---|
//! | each side rotates one credential of a device, each keeping the one the other retired; the secondary disables it | blocked (crossed rotations), the disable alone written, rotation not applied |
//! | the base's line is exported without keys; the secondary rotates and disables | blocked (the base cannot say which side changed them), the disable alone written (rotation not applied, where the merge keeps the secondary's keys) |
//! | the base has no line (created since the backup); the secondary rotates and disables | blocked (as above), the disable alone written (and as above) |
//! | the primary's line is exported without keys; the secondary disables (and may rotate) | blocked, disable (and rotation) not applied |
//! | the primary's line has no `eTag`; the secondary disables | blocked, disable not applied |
//! | the secondary replaces a gateway: creates a new one (with its modules), moves the old one's leaves behind it, disables the first (and rotates its credentials) and perhaps others (one perhaps crossed-rotated as well, so blocked while it waits), and perhaps rotates another's credentials; the old one is deleted by the secondary, made plain by it, or deleted by the primary | the detached disable and rotation (written without a parent where the secondary is preferred, else blocked, disable or rotation not applied) |
//!
//! A line exported without keys stands for an export taken with `excludeKeysInExport`, kept
//! to a few lines so that the rest of the triple plans as usual: the reader and the lift take
//! keyless lines one by one (the shipped secondary holds two among keyed ones), and counts them
//! per input. Every perturbed export is written as text and read back, as a hub's would be.

use std::collections::{BTreeMap, BTreeSet};

use failback::iothub::{ExportLine, ExportReader, Triple};
use failback::{
    AuthType, Authentication, Capabilities, DeviceId, DeviceKey, Pair, Status, SymmetricKey,
    Thumbprint,
};

use super::data::Rng;

/// One hub's export, by key.
type Export = BTreeMap<DeviceKey, ExportLine>;

/// A change to one device across the three exports.
type Perturbation = fn(&mut Hubs, &DeviceKey);

/// `triple` perturbed by `seed`: the same seed gives the same exports. A triple without the
/// devices a perturbation needs (no gateway with leaves, say) is perturbed without it.
pub fn perturbed(triple: &Triple, seed: u64) -> [Vec<ExportLine>; 3] {
    let by_key = |lines: &[ExportLine]| -> Export {
        lines.iter().map(|l| (l.key.clone(), l.clone())).collect()
    };
    let mut hubs = Hubs {
        base: by_key(&triple.base),
        primary: by_key(&triple.primary),
        secondary: by_key(&triple.secondary),
        rng: Rng(seed ^ 0xd15a_b1e0),
        incident: 0,
    };
    // Gateways first: their leaves are then kept out of the single-device perturbations.
    let mut taken = BTreeSet::new();
    let gateways = hubs.replaceable_gateways();
    let replaced = 1 + hubs.rng.below(2);
    for (gateway, leaves) in gateways.into_iter().take(replaced) {
        taken.insert(gateway.clone());
        taken.extend(leaves.iter().cloned());
        hubs.replace_gateway(&gateway, &leaves);
    }
    let mut devices: Vec<DeviceKey> = hubs
        .base
        .keys()
        .filter(|key| !taken.contains(*key) && hubs.untouched_plain(key))
        .cloned()
        .collect();
    hubs.rng.shuffle(&mut devices);
    let mut devices = devices.into_iter();
    // Each perturbation, and whether it needs a device with credentials to rotate or leave out.
    let perturbations: [(Perturbation, bool); 5] = [
        (Hubs::crossed_rotations, true),
        (Hubs::keyless_base, true),
        (Hubs::absent_from_base, true),
        (Hubs::keyless_primary, true),
        (Hubs::primary_without_etag, false),
    ];
    for (perturb, needs_credentials) in perturbations {
        let count = 1 + hubs.rng.below(2);
        let chosen: Vec<DeviceKey> = devices
            .by_ref()
            .filter(|key| !needs_credentials || hubs.has_credentials(key))
            .take(count)
            .collect();
        for key in &chosen {
            perturb(&mut hubs, key);
        }
    }
    [hubs.base, hubs.primary, hubs.secondary].map(|export| read_back(export.into_values()))
}

/// Lines written as an export file and read back: the reader's checks hold of them, and each
/// leaf's parent is the one its scope names.
fn read_back(lines: impl Iterator<Item = ExportLine>) -> Vec<ExportLine> {
    let text: String = lines.map(|l| l.to_json() + "\n").collect();
    let reader = ExportReader::new("perturbed.jsonl", text.as_bytes()).allowing_empty();
    match reader.collect() {
        Ok(lines) => lines,
        Err(err) => panic!("a perturbed export must read: {err}"),
    }
}

/// The three exports being perturbed, and the seeded source of what changes.
struct Hubs {
    base: Export,
    primary: Export,
    secondary: Export,
    rng: Rng,
    /// Source of the secondary's status reasons.
    incident: u64,
}

impl Hubs {
    /// Whether `key` is a device (not an edge device) enabled in the base that neither side
    /// changed: the primary's line is the base's, and the secondary's agrees with it on all
    /// but its hub-local ETags and scope string.
    fn untouched_plain(&self, key: &DeviceKey) -> bool {
        let edge = self.base[key].capabilities.is_some_and(|c| c.iot_edge);
        key.module.is_none() && !edge && self.untouched(key)
    }

    /// Whether neither side changed `key`, enabled in the base (see [`untouched_plain`]).
    fn untouched(&self, key: &DeviceKey) -> bool {
        let (Some(base), Some(primary), Some(secondary)) = (
            self.base.get(key),
            self.primary.get(key),
            self.secondary.get(key),
        ) else {
            return false;
        };
        base.status == Status::Enabled
            && primary == base
            && (
                &secondary.status,
                &secondary.status_reason,
                &secondary.authentication,
            ) == (&base.status, &base.status_reason, &base.authentication)
            && (&secondary.tags, &secondary.desired) == (&base.tags, &base.desired)
            && (secondary.capabilities, &secondary.parent) == (base.capabilities, &base.parent)
    }

    /// Whether `key` authenticates with credentials an export can leave out and a rotation
    /// changes (keys, or thumbprints).
    fn has_credentials(&self, key: &DeviceKey) -> bool {
        let auth = self.base[key].authentication.as_ref();
        auth.is_some_and(|a| matches!(a.kind, AuthType::Sas | AuthType::SelfSigned))
    }

    /// Gateways (edge devices) with leaves, which neither side changed, nor any of their
    /// leaves, and whose modules the secondary holds, in a seeded order.
    fn replaceable_gateways(&mut self) -> Vec<(DeviceKey, Vec<DeviceKey>)> {
        let mut leaves: BTreeMap<DeviceId, Vec<DeviceKey>> = BTreeMap::new();
        for (key, line) in &self.base {
            if let Some(parent) = line.parent.as_ref().filter(|p| **p != key.device) {
                leaves.entry(parent.clone()).or_default().push(key.clone());
            }
        }
        let mut found: Vec<(DeviceKey, Vec<DeviceKey>)> = leaves
            .into_iter()
            .filter_map(|(gateway, leaves)| {
                let key = DeviceKey::device(gateway.as_str()).ok()?;
                let modules_kept =
                    modules_of(&self.base, &gateway).all(|m| self.secondary.contains_key(&m));
                let untouched = self.untouched(&key) && leaves.iter().all(|l| self.untouched(l));
                (untouched && modules_kept).then_some((key, leaves))
            })
            .collect();
        self.rng.shuffle(&mut found);
        found
    }

    /// The secondary replaced `gateway` during the outage (a broken box, say): it created a new
    /// edge device with the old one's modules, moved every leaf behind it, and disabled some
    /// (stolen with the box). The old gateway was deleted by the secondary, made a plain device
    /// by it, or deleted on the primary (an operator there retired it too).
    fn replace_gateway(&mut self, gateway: &DeviceKey, leaves: &[DeviceKey]) {
        let new_id = format!("{}-replacement", gateway.device);
        let new_key = DeviceKey::device(new_id.clone()).expect("a valid id");
        let scope = format!(
            "ms-azure-iot-edge://{new_id}-{}",
            637_000_000_000_000_000 + self.rng.below(1_000_000_000)
        );
        let mut created = self.secondary[gateway].clone();
        created.key = new_key.clone();
        created.e_tag = Some(self.etag());
        created.twin_e_tag = Some(self.etag());
        created.reported = None;
        created.authentication = created
            .authentication
            .as_ref()
            .map(|a| self.new_credentials(a));
        created.device_scope = Some(scope.clone());
        let modules: Vec<DeviceKey> = modules_of(&self.base, &gateway.device).collect();
        for module in modules {
            let mut line = self.secondary[&module].clone();
            line.key = DeviceKey {
                device: new_key.device.clone(),
                module: module.module.clone(),
            };
            line.e_tag = Some(self.etag());
            line.twin_e_tag = Some(self.etag());
            line.reported = None;
            line.authentication = line
                .authentication
                .as_ref()
                .map(|a| self.new_credentials(a));
            self.secondary.insert(line.key.clone(), line);
        }
        self.secondary.insert(new_key, created);
        match self.rng.below(3) {
            0 => self.secondary.retain(|k, _| k.device != gateway.device),
            1 => {
                let etag = self.etag();
                let old = self.secondary.get_mut(gateway).expect("untouched");
                old.capabilities = Some(Capabilities { iot_edge: false });
                old.device_scope = None;
                old.parent = None;
                old.e_tag = Some(etag);
                // The runtime's modules go with the edge runtime; a module of its own stays.
                self.secondary
                    .retain(|k, _| k.device != gateway.device || !is_system(k));
            }
            _ => self.primary.retain(|k, _| k.device != gateway.device),
        }
        for (n, leaf) in leaves.iter().enumerate() {
            let etag = self.etag();
            let moved = self.secondary.get_mut(leaf).expect("untouched");
            moved.device_scope = Some(scope.clone());
            moved.e_tag = Some(etag);
            // The first is always disabled, so that each replacement has a detached disable,
            // and re-keyed where it has credentials (they leaked with the old box), a detached
            // rotation as well; a crossed rotation makes one blocked, waiting for the same
            // scope; a rotation alone makes a detached rotation without a disable.
            match (n, self.rng.below(5)) {
                (0, _) if self.has_credentials(leaf) => self.rotate_and_disable_on_secondary(leaf),
                (0, _) | (_, 1 | 2) => self.disable_on_secondary(leaf),
                (_, 3) if self.has_credentials(leaf) => self.crossed_rotations(leaf),
                (_, 4) if self.has_credentials(leaf) => self.rotate_on_secondary(leaf),
                (_, 3 | 4) => self.disable_on_secondary(leaf),
                _ => {}
            }
        }
    }

    /// Each side rotated one credential of `key`, each keeping the one the other retired
    /// (no rule can choose); the secondary disabled it.
    fn crossed_rotations(&mut self, key: &DeviceKey) {
        let etag = self.etag();
        let auth = self.base[key].authentication.clone().expect("credentials");
        let primary = self.rotated(&auth, Rotation::ReplaceSecondary);
        let line = self.primary.get_mut(key).expect("untouched");
        line.authentication = Some(primary);
        line.e_tag = Some(etag);
        let secondary = self.rotated(&auth, Rotation::ReplacePrimary);
        self.secondary
            .get_mut(key)
            .expect("untouched")
            .authentication = Some(secondary);
        self.disable_on_secondary(key);
    }

    /// The base was exported without keys for `key`; the secondary rotated and disabled it.
    fn keyless_base(&mut self, key: &DeviceKey) {
        self.base.get_mut(key).expect("untouched").authentication = None;
        self.rotate_and_disable_on_secondary(key);
    }

    /// `key` was created after the backup and copied to the secondary at the switch (so the
    /// base has no line for it); the secondary rotated and disabled it.
    fn absent_from_base(&mut self, key: &DeviceKey) {
        self.base.remove(key);
        self.rotate_and_disable_on_secondary(key);
    }

    /// The primary was exported without keys for `key`; the secondary disabled it, and may
    /// have rotated it too.
    fn keyless_primary(&mut self, key: &DeviceKey) {
        self.primary.get_mut(key).expect("untouched").authentication = None;
        if self.rng.below(2) == 0 {
            self.rotate_and_disable_on_secondary(key);
        } else {
            self.disable_on_secondary(key);
        }
    }

    /// The primary's export has no `eTag` for `key`; the secondary disabled it.
    fn primary_without_etag(&mut self, key: &DeviceKey) {
        self.primary.get_mut(key).expect("untouched").e_tag = None;
        self.disable_on_secondary(key);
    }

    /// The secondary's usual rotation (its secondary credential becomes primary, beside a new
    /// one, as `Generate`'s re-keys do), and a disable.
    fn rotate_and_disable_on_secondary(&mut self, key: &DeviceKey) {
        self.rotate_on_secondary(key);
        self.disable_on_secondary(key);
    }

    /// The secondary's usual rotation of `key`'s credentials (see
    /// [`rotate_and_disable_on_secondary`](Self::rotate_and_disable_on_secondary)).
    fn rotate_on_secondary(&mut self, key: &DeviceKey) {
        let auth = self.secondary[key]
            .authentication
            .clone()
            .expect("credentials");
        let rotated = self.rotated(&auth, Rotation::Forward);
        self.secondary
            .get_mut(key)
            .expect("untouched")
            .authentication = Some(rotated);
    }

    /// The secondary disabled `key`, with a reason, which changes its `eTag`.
    fn disable_on_secondary(&mut self, key: &DeviceKey) {
        self.incident += 1;
        let etag = self.etag();
        let line = self.secondary.get_mut(key).expect("untouched");
        line.status = Status::Disabled;
        line.status_reason = Some(format!("stolen-{}", self.incident));
        line.e_tag = Some(etag);
    }

    /// `auth` with one credential new, as `rotation` says.
    fn rotated(&mut self, auth: &Authentication, rotation: Rotation) -> Authentication {
        let mut out = auth.clone();
        match auth.kind {
            AuthType::Sas => {
                let new = self.key();
                out.keys = Some(rotation.of(auth.keys.as_ref(), new));
            }
            _ => {
                let new = self.thumbprint();
                out.thumbprints = Some(rotation.of(auth.thumbprints.as_ref(), new));
            }
        }
        out
    }

    /// Credentials of `auth`'s type, all new (a new device's).
    fn new_credentials(&mut self, auth: &Authentication) -> Authentication {
        let replaced = self.rotated(auth, Rotation::ReplacePrimary);
        self.rotated(&replaced, Rotation::ReplaceSecondary)
    }

    /// A symmetric key: 24 base64 characters, 18 bytes (IOTHUB.md: 16 to 64).
    fn key(&mut self) -> SymmetricKey {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let text: String = (0..24)
            .map(|_| char::from(ALPHABET[self.rng.below(64)]))
            .collect();
        SymmetricKey::new(text).expect("valid base64 of 18 bytes")
    }

    /// A SHA-1 thumbprint, 40 hex digits, as the generated ones are.
    fn thumbprint(&mut self) -> Thumbprint {
        let text: String = (0..40)
            .map(|_| char::from(b"0123456789ABCDEF"[self.rng.below(16)]))
            .collect();
        Thumbprint::new(text).expect("40 hex digits")
    }

    /// An ETag of the hub that wrote the line: opaque, new.
    fn etag(&mut self) -> String {
        format!("perturbed-{:016x}", self.rng.next())
    }
}

/// How a pair of credentials `[primary, secondary]` takes a new one.
#[derive(Clone, Copy)]
enum Rotation {
    /// `[new, secondary]`.
    ReplacePrimary,
    /// `[primary, new]`.
    ReplaceSecondary,
    /// `[secondary, new]`: the secondary credential is promoted.
    Forward,
}

impl Rotation {
    fn of<T: Clone>(self, pair: Option<&Pair<T>>, new: T) -> Pair<T> {
        let [primary, secondary] =
            pair.map_or([None, None], |p| [p.primary.clone(), p.secondary.clone()]);
        match self {
            Rotation::ReplacePrimary => Pair::new(Some(new), secondary),
            Rotation::ReplaceSecondary => Pair::new(primary, Some(new)),
            Rotation::Forward => Pair::new(secondary, Some(new)),
        }
    }
}

/// The keys of `device`'s modules in `export`.
fn modules_of<'a>(
    export: &'a Export,
    device: &'a DeviceId,
) -> impl Iterator<Item = DeviceKey> + 'a {
    let modules = export.keys().filter(move |k| k.device == *device);
    modules.filter(|k| k.module.is_some()).cloned()
}

/// Whether `key` is an IoT Edge system module (`$edgeAgent`, `$edgeHub`).
fn is_system(key: &DeviceKey) -> bool {
    key.module.as_ref().is_some_and(|m| m.is_system())
}
