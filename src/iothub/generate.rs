//! Realistic export triples (base, primary, secondary) for demos, tests and benchmarks.
//!
//! Seeded and deterministic: the same options give the same lines on every machine. The
//! workload is the one the benchmarks document: devices have keys or thumbprints (about 5%
//! authenticate by certificate authority, with neither), tags, desired and reported properties; about 5% are IoT Edge devices with system and custom
//! modules and about a quarter of the rest sit behind one. From one base, the secondary then
//! updates 10% of the devices (tags, desired properties, disables, re-keys), creates 1% and
//! deletes 0.5%; the primary updates 2%, a quarter of which collide with the secondary's
//! updates (true conflicts), and deletes a few.

use serde_json::{Map, Value, json};

use crate::credentials::{AuthType, Authentication, Pair, SymmetricKey, Thumbprint};
use crate::identity::{Capabilities, Status};
use crate::iothub::line::ExportLine;
use crate::key::{DeviceId, DeviceKey, ModuleId};

/// What to generate.
///
/// From [`MIN_DEVICES`](Self::MIN_DEVICES) devices up, every export of the triple holds a
/// device (`merge` refuses one with none unless told it is empty); zero devices make three
/// empty exports.
///
/// # Examples
///
/// ```
/// let options = failback::iothub::Generate { devices: 100, seed: 7 };
/// let triple = options.run();
/// assert!(triple.base.len() >= 100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generate {
    /// Device identities in the base (modules come on top).
    pub devices: usize,
    /// Seed of the deterministic generator.
    pub seed: u64,
}

/// A generated failback: the three exports.
///
/// # Examples
///
/// ```
/// let triple = failback::iothub::Generate { devices: 50, seed: 1 }.run();
/// assert_ne!(triple.primary, triple.secondary);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Triple {
    /// The backup both sides started from (taken from the primary).
    pub base: Vec<ExportLine>,
    /// The primary hub now.
    pub primary: Vec<ExportLine>,
    /// The secondary hub now.
    pub secondary: Vec<ExportLine>,
}

/// SplitMix64: tiny, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn base64(&mut self, bytes: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let raw: Vec<u8> = (0..bytes).map(|_| self.next() as u8).collect();
        let mut out = String::with_capacity(bytes.div_ceil(3) * 4);
        for chunk in raw.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from(b"0123456789ABCDEF"[self.below(16) as usize]))
            .collect()
    }

    fn key(&mut self) -> SymmetricKey {
        SymmetricKey::trusted(self.base64(32))
    }

    fn thumbprint(&mut self) -> Thumbprint {
        Thumbprint::trusted(self.hex(40))
    }
}

/// Generated ids are ASCII letters, digits and `-`: always valid.
fn id(text: String) -> DeviceId {
    DeviceId::trusted(text)
}

const SITES: &[&str] = &["berlin", "dublin", "madrid", "oslo", "prague", "vienna"];
const OWNERS: &[&str] = &["ops", "facilities", "research", "logistics"];

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Generate {
    /// The fewest devices whose triple `merge` accepts as it is: each export then holds at
    /// least one device line.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::Generate;
    /// let triple = Generate { devices: Generate::MIN_DEVICES, seed: 9 }.run();
    /// assert!(!triple.base.is_empty() && !triple.primary.is_empty() && !triple.secondary.is_empty());
    /// assert!(Generate { devices: 0, seed: 9 }.run().base.is_empty());
    /// ```
    pub const MIN_DEVICES: usize = 1;

    /// Generates the triple: three empty exports for no device. The triple is held in memory,
    /// about three lines a device in all.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = failback::iothub::Generate { devices: 20, seed: 3 }.run();
    /// let b = failback::iothub::Generate { devices: 20, seed: 3 }.run();
    /// assert_eq!(a, b);
    /// ```
    pub fn run(&self) -> Triple {
        // Every step below picks devices from the base; with none there is nothing to update,
        // delete or create beside.
        if self.devices == 0 {
            return Triple::default();
        }
        // One generator drawn from by every step in turn: the steps' order is the triple's.
        let mut rng = Rng(self.seed ^ 0x5eed_fa11_bacc);
        let base = base_export(self.devices, &mut rng);
        let mut secondary: Vec<ExportLine> = base.iter().map(|l| rehome(l, &mut rng)).collect();
        let mut primary = base.clone();
        let len = self.devices as u64;
        let secondary_change = update_secondary(&mut secondary, &mut rng);
        let primary_updated = update_primary(&mut primary, &secondary_change, &mut rng);
        delete_from_secondary(&mut secondary, &base, &primary_updated, len, &mut rng);
        delete_from_primary(&mut primary, &base, len, &mut rng);
        create_on_secondary(&mut secondary, len, &mut rng);
        Triple {
            base,
            primary,
            secondary,
        }
    }
}

/// The base export: `devices` devices, the edge devices' modules after each, and about a
/// quarter of the other devices behind an edge device generated before them.
fn base_export(devices: usize, rng: &mut Rng) -> Vec<ExportLine> {
    // Room for the devices and their modules (about one in ten), reserved up to a hub's
    // million and grown beyond: the count is the caller's, and its arithmetic must not
    // overflow (a count near `usize::MAX` would panic here).
    let reserved = devices.min(1_000_000);
    let mut base = Vec::with_capacity(reserved + reserved / 10);
    let mut edges: Vec<(DeviceId, String)> = Vec::new();
    for n in 0..devices {
        let device = id(format!("dev-{n:07}"));
        let edge = rng.chance(50);
        let mut line = base_device(device.clone(), edge, rng);
        place_in_hierarchy(&mut line, edge, &mut edges, rng);
        base.push(line);
        if edge {
            push_edge_modules(&mut base, &device, rng);
        }
    }
    base
}

/// A base device's line: its status, credentials, capabilities, tags and properties; its
/// place behind an edge device is [`place_in_hierarchy`]'s.
fn base_device(device: DeviceId, edge: bool, rng: &mut Rng) -> ExportLine {
    let mut line = ExportLine::new(
        DeviceKey {
            device,
            module: None,
        },
        Status::Enabled,
    );
    line.e_tag = Some(rng.base64(9));
    line.twin_e_tag = Some(rng.base64(9));
    if rng.chance(20) {
        line.status = Status::Disabled;
        line.status_reason = Some("decommissioned".into());
    }
    line.authentication = Some(base_authentication(rng));
    line.capabilities = Some(Capabilities { iot_edge: edge });
    line.tags = Some(object(json!({
        "site": rng.pick(SITES),
        "owner": rng.pick(OWNERS),
        "location": {"building": rng.below(20), "floor": rng.below(8)},
    })));
    line.desired = Some(object(json!({
        "telemetryInterval": 30 + rng.below(10) * 30,
        "firmware": {"version": format!("1.{}.0", rng.below(5))},
    })));
    line.reported = Some(object(json!({
        "firmware": {"version": format!("1.{}.0", rng.below(5))},
        "battery": rng.below(101),
    })));
    line
}

/// A base device's credentials: keys for most, thumbprints for some, neither for a few.
fn base_authentication(rng: &mut Rng) -> Authentication {
    match rng.below(20) {
        0..=15 => Authentication::sas(Pair::new(Some(rng.key()), Some(rng.key()))),
        16..=18 => {
            Authentication::self_signed(Pair::new(Some(rng.thumbprint()), Some(rng.thumbprint())))
        }
        // Neither pair: a certificate authority's device has no keys nor thumbprints.
        _ => Authentication {
            kind: AuthType::CertificateAuthority,
            keys: None,
            thumbprints: None,
        },
    }
}

/// Gives an edge device its own scope (and records it in `edges`), and puts about a quarter
/// of the other devices behind one of the edge devices generated so far.
fn place_in_hierarchy(
    line: &mut ExportLine,
    edge: bool,
    edges: &mut Vec<(DeviceId, String)>,
    rng: &mut Rng,
) {
    let device = &line.key.device;
    if edge {
        let scope = format!(
            "ms-azure-iot-edge://{device}-{}",
            600 + rng.below(9_000_000_000)
        );
        line.device_scope = Some(scope.clone());
        line.parent = Some(device.clone());
        edges.push((device.clone(), scope));
    } else if !edges.is_empty() && rng.chance(250) {
        let (parent, scope) = rng.pick(edges).clone();
        line.device_scope = Some(scope);
        line.parent = Some(parent);
    }
}

/// An edge device's modules, the runtime's two and one custom module, after its line.
fn push_edge_modules(base: &mut Vec<ExportLine>, device: &DeviceId, rng: &mut Rng) {
    for module in ["$edgeAgent", "$edgeHub", "reader"] {
        let mut m = ExportLine::new(
            DeviceKey {
                device: device.clone(),
                module: Some(ModuleId::trusted(module.into())),
            },
            Status::Enabled,
        );
        m.e_tag = Some(rng.base64(9));
        m.twin_e_tag = Some(rng.base64(9));
        m.authentication = Some(Authentication::sas(Pair::new(
            Some(rng.key()),
            Some(rng.key()),
        )));
        m.reported = Some(object(json!({"runtime": "running"})));
        base.push(m);
    }
}

/// The secondary's updates of about 10% of its devices, and what each line's was (by
/// [`change`]'s kind), so the primary can collide on the same field.
fn update_secondary(secondary: &mut [ExportLine], rng: &mut Rng) -> Vec<Option<u64>> {
    let mut secondary_change = vec![None; secondary.len()];
    for (i, line) in secondary.iter_mut().enumerate() {
        if line.key.module.is_none() && rng.chance(100) {
            let kind = rng.below(10);
            change(line, kind, rng);
            secondary_change[i] = Some(kind);
        }
    }
    secondary_change
}

/// The primary's updates of about 2% of its devices, and the keys it updated, in order.
fn update_primary(
    primary: &mut [ExportLine],
    secondary_change: &[Option<u64>],
    rng: &mut Rng,
) -> Vec<DeviceKey> {
    let mut primary_updated = Vec::new();
    for (i, line) in primary.iter_mut().enumerate() {
        if line.key.module.is_some() {
            continue;
        }
        // A quarter of the primary's updates collide with the secondary's, on the same field.
        let kind = match secondary_change[i] {
            Some(kind) if rng.chance(50) => Some(kind),
            None if rng.chance(15) => Some(rng.below(10)),
            _ => None,
        };
        if let Some(kind) = kind {
            change(line, kind, rng);
            line.e_tag = Some(rng.base64(9));
            primary_updated.push(line.key.clone());
        }
    }
    primary_updated
}

/// The secondary's deletes: 0.5% of the `len` base devices (at least one), with their modules.
fn delete_from_secondary(
    secondary: &mut Vec<ExportLine>,
    base: &[ExportLine],
    primary_updated: &[DeviceKey],
    len: u64,
    rng: &mut Rng,
) {
    // Half the secondary's deletes hit devices the primary updated: delete wins, reported.
    let deletes = (len / 200).max(1);
    // Victims are collected first and removed in one pass: removing them one at a time
    // would cost a pass over every line per delete.
    let mut gone = std::collections::BTreeSet::new();
    for n in 0..deletes {
        let victim = match primary_updated.get(n as usize) {
            Some(key) if n % 2 == 0 => key.device.clone(),
            _ => base[rng.below(base.len() as u64) as usize]
                .key
                .device
                .clone(),
        };
        gone.insert(victim);
    }
    secondary.retain(|l| !gone.contains(&l.key.device));
}

/// The primary's deletes: 0.1% of the `len` base devices, at least one but never every one.
fn delete_from_primary(
    primary: &mut Vec<ExportLine>,
    base: &[ExportLine],
    len: u64,
    rng: &mut Rng,
) {
    let mut gone = std::collections::BTreeSet::new();
    // The primary keeps at least one device: an export with none is refused by `merge`
    // (which would read it as every device deleted).
    for _ in 0..(len / 1000).max(1).min(len - 1) {
        gone.insert(
            base[rng.below(base.len() as u64) as usize]
                .key
                .device
                .clone(),
        );
    }
    primary.retain(|l| !gone.contains(&l.key.device));
}

/// The devices the secondary created during the outage: 1% of the `len` base devices, at
/// least one.
fn create_on_secondary(secondary: &mut Vec<ExportLine>, len: u64, rng: &mut Rng) {
    for n in 0..(len / 100).max(1) {
        let mut line = ExportLine::new(
            DeviceKey {
                device: id(format!("new-{n:06}")),
                module: None,
            },
            Status::Enabled,
        );
        line.e_tag = Some(rng.base64(9));
        line.twin_e_tag = Some(rng.base64(9));
        line.authentication = Some(Authentication::sas(Pair::new(
            Some(rng.key()),
            Some(rng.key()),
        )));
        line.capabilities = Some(Capabilities::default());
        line.tags = Some(object(
            json!({"site": rng.pick(SITES), "createdDuringOutage": true}),
        ));
        line.desired = Some(object(json!({"telemetryInterval": 60})));
        secondary.push(line);
    }
}

/// The same identity as the secondary hub exports it: its own ETags and, for edge devices,
/// its own generation ids in scopes.
fn rehome(line: &ExportLine, rng: &mut Rng) -> ExportLine {
    let mut out = line.clone();
    out.e_tag = Some(rng.base64(9));
    out.twin_e_tag = Some(rng.base64(9));
    if let (Some(parent), Some(_)) = (&line.parent, &line.device_scope) {
        // Generation ids are per hub; derive a stable one per parent so siblings agree.
        let generation = parent
            .as_str()
            .bytes()
            .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        out.device_scope = Some(format!(
            "ms-azure-iot-edge://{parent}-{}",
            generation % 9_000_000_000
        ));
    }
    out
}

/// One side's update of a device, by `kind` (0 to 9): a tag, a desired property, a disable or
/// a re-key.
fn change(line: &mut ExportLine, kind: u64, rng: &mut Rng) {
    match kind {
        0..=3 => {
            let tags = line.tags.get_or_insert_with(Map::new);
            tags.insert("site".into(), json!(rng.pick(SITES)));
            tags.insert(format!("batch{}", rng.below(3)), json!(rng.below(100)));
        }
        4..=6 => {
            let desired = line.desired.get_or_insert_with(Map::new);
            desired.insert("telemetryInterval".into(), json!(30 + rng.below(20) * 15));
        }
        7 => {
            line.status = Status::Disabled;
            line.status_reason = Some(format!("incident-{}", rng.below(1000)));
        }
        _ => {
            if let Some(auth) = &mut line.authentication {
                match auth.kind {
                    AuthType::Sas => {
                        // A rotation: the secondary key becomes primary, a new secondary.
                        let keys = auth.keys.get_or_insert_with(Pair::default);
                        keys.primary = keys.secondary.take();
                        keys.secondary = Some(rng.key());
                    }
                    AuthType::SelfSigned => {
                        auth.thumbprints =
                            Some(Pair::new(Some(rng.thumbprint()), Some(rng.thumbprint())));
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iothub::{ExportReader, Failback, Side};

    /// Each export as `merge` reads it: written as text and read back, an empty one refused.
    fn read(lines: &[ExportLine]) -> crate::Result<Vec<ExportLine>> {
        let text: String = lines.iter().map(|l| l.to_json() + "\n").collect();
        ExportReader::new("generated.jsonl", text.as_bytes()).collect()
    }

    /// A generated line is what the reader makes of its own text, as a hub's export line is:
    /// a SAS device's thumbprints, a self-signed one's keys and a certificate-authority one's
    /// both are written as null pairs and read as not held (review 58: generated SAS lines held
    /// an empty thumbprint pair, which no line read from an export holds).
    #[test]
    fn generated_lines_are_what_the_reader_makes_of_their_text() {
        let triple = Generate {
            devices: 400,
            seed: 11,
        }
        .run();
        let mut kinds = std::collections::BTreeSet::new();
        for lines in [&triple.base, &triple.primary, &triple.secondary] {
            let read = read(lines).expect("a whole export");
            assert_eq!(read.len(), lines.len());
            for (generated, read) in lines.iter().zip(&read) {
                assert_eq!(generated, read, "{}", generated.key);
                kinds.extend(generated.authentication.as_ref().map(|a| a.kind.as_str()));
            }
        }
        // Every kind the generator makes was compared.
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["certificateAuthority", "sas", "selfSigned"]
        );
    }

    #[test]
    fn small_counts_make_a_triple_merge_accepts_and_zero_makes_empty_exports() {
        assert_eq!(
            Generate {
                devices: 0,
                seed: 1
            }
            .run(),
            Triple::default()
        );
        for devices in Generate::MIN_DEVICES..=4 {
            for seed in 0..50 {
                let triple = Generate { devices, seed }.run();
                let [base, primary, secondary] = [&triple.base, &triple.primary, &triple.secondary]
                    .map(|lines| {
                        read(lines).unwrap_or_else(|e| panic!("{devices}, seed {seed}: {e}"))
                    });
                Failback::lift(&base, &primary, &secondary, Side::Secondary)
                    .unwrap_or_else(|e| panic!("{devices}, seed {seed}: {e}"));
            }
        }
    }
}
