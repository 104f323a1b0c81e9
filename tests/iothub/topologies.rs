//! Random small edge topologies on three hubs (review 71): a few devices, each absent, plain
//! (perhaps behind another), or an IoT Edge device in each of base, primary and secondary, so
//! that gateways appear, vanish, are demoted, promoted, created again, and leaves move between
//! them; leaves in the primary may carry a stale scope, devices may be disabled, carry a tag
//! that differs per hub, and have a module. `Generate` and `perturb.rs` make a few of these
//! shapes among hundreds of devices; here every shape of up to five devices is in reach, so a
//! failing case shrinks to the few lines that show it (the properties are in `generated.rs`).
//!
//! The exports are consistent as hubs write them: a leaf's scope names an edge device of its
//! hub with that hub's generation (`{id}-{generation}`, new in each hub, and in the primary
//! where it created the gateway again), but for a stale scope the primary's leaf may carry (an
//! older generation of its gateway, or of one it deleted). A module's line carries its
//! device's scope, as an export writes it. The secondary's lines have no ETags of the primary.

use failback::iothub::ExportLine;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// What a device is in one hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Held {
    Absent,
    /// A plain device, behind the device of that index where it is an edge device in the hub.
    Plain(Option<usize>),
    Edge,
}

/// One device of a topology, across base, primary and secondary (in that order).
#[derive(Clone, Debug)]
pub(super) struct Shape {
    held: [Held; 3],
    disabled: [bool; 3],
    /// The primary deleted this gateway and created it again: its scope there has another
    /// generation than the base's.
    recreated: bool,
    /// The primary's line of this leaf carries a stale scope: its gateway's older generation,
    /// or, where the primary no longer holds the gateway, the base's.
    stale: bool,
    /// The tag `site`, per hub.
    site: [u8; 3],
    /// Per hub, for an edge device: its line states no capabilities and no scope, as an export
    /// that leaves them out writes it.
    unstated: [bool; 3],
    /// Per hub: the device has a module `m`, with the module's keys (0: `K[2]`, `K[3]`; 1:
    /// `K[4]`, `K[5]`).
    module: [Option<u8>; 3],
}

/// What a device is in one hub, among `n` devices. A leaf's parent is one of the first two
/// devices more often than not, so that gateways with several leaves (which may disagree on
/// its scope) are common.
fn held(n: usize) -> impl Strategy<Value = Held> {
    let parent = prop_oneof![2 => 0..n.min(2), 1 => 0..n];
    prop_oneof![
        1 => Just(Held::Absent),
        2 => proptest::option::of(parent).prop_map(Held::Plain),
        2 => Just(Held::Edge),
    ]
}

/// A topology of `n` devices. In half of them every export states every edge device's
/// capabilities and scope, as IoT Hub's export does; in the other half an edge device's line
/// leaves them out in a hub now and then.
pub(super) fn topology(n: usize) -> impl Strategy<Value = Vec<Shape>> {
    let per_hub = |p: f64| [0; 3].map(|_| proptest::bool::weighted(p));
    let module = || proptest::option::weighted(0.3, 0u8..2);
    let shape = (
        [held(n), held(n), held(n)],
        per_hub(0.3),
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.5),
        [0u8..2, 0u8..2, 0u8..2],
        per_hub(0.3),
        [module(), module(), module()],
    );
    let shape = shape.prop_map(
        |(held, disabled, recreated, stale, site, unstated, module)| Shape {
            held,
            disabled,
            recreated,
            stale,
            site,
            unstated,
            module,
        },
    );
    let shapes = proptest::collection::vec(shape, n);
    (proptest::bool::ANY, shapes).prop_map(|(stated, mut shapes)| {
        if stated {
            for shape in &mut shapes {
                shape.unstated = [false; 3];
            }
        }
        shapes
    })
}

/// Whether an export of `shapes` leaves an edge device's capabilities (and scope) out.
pub(super) fn leaves_capabilities_out(shapes: &[Shape]) -> bool {
    let unstated = |shape: &Shape, h: usize| shape.unstated[h] && shape.held[h] == Held::Edge;
    shapes
        .iter()
        .any(|shape| (0..3).any(|h| unstated(shape, h)))
}

/// The id of the device at index `i`.
fn id(i: usize) -> String {
    format!("d{i}")
}

/// The generation of the scope of the edge device at `i` in hub `h` (0 base, 1 primary, 2
/// secondary): one per hub, but the primary's is the base's where it kept the gateway.
fn generation(shapes: &[Shape], i: usize, h: usize) -> u64 {
    match h {
        0 => 1,
        1 if shapes[i].held[0] == Held::Edge && !shapes[i].recreated => 1,
        1 => 3,
        _ => 2,
    }
}

/// The base's, the primary's and the secondary's exports of `shapes`.
pub(super) fn exports(shapes: &[Shape]) -> [Vec<ExportLine>; 3] {
    [0, 1, 2].map(|h| hub_export(shapes, h))
}

/// Hub `h`'s export of `shapes`.
fn hub_export(shapes: &[Shape], h: usize) -> Vec<ExportLine> {
    let scope = |owner: usize, generation: u64| {
        json!(format!("ms-azure-iot-edge://{}-{generation}", id(owner)))
    };
    let mut values = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let mut line = match shape.held[h] {
            Held::Absent => continue,
            Held::Edge => edge(&id(i), generation(shapes, i, h)),
            Held::Plain(parent) => {
                let mut line = device(&id(i));
                let stale = h == 1 && shape.stale;
                match parent.filter(|p| *p != i) {
                    Some(p) if shapes[p].held[h] == Held::Edge => {
                        let current = generation(shapes, p, h);
                        line["deviceScope"] = scope(p, if stale { current + 10 } else { current });
                    }
                    // The primary deleted the gateway (or never held it); the leaf kept the
                    // scope of the base's generation.
                    Some(p) if stale && shapes[p].held[1] == Held::Absent => {
                        line["deviceScope"] = scope(p, 1);
                    }
                    _ => {}
                }
                line
            }
        };
        if shape.disabled[h] {
            line["status"] = json!("disabled");
        }
        line["tags"] = json!({"site": shape.site[h]});
        if shape.unstated[h] && shape.held[h] == Held::Edge {
            line = without(without(line, "capabilities"), "deviceScope");
        }
        let device_scope = line.get("deviceScope").cloned();
        values.push(secondary_etags(line, h));
        if let Some(variant) = shape.module[h] {
            let mut module = module(&id(i), "m");
            if variant == 1 {
                module = keys(module, K[4], K[5]);
            }
            if let Some(device_scope) = device_scope {
                module["deviceScope"] = device_scope;
            }
            values.push(secondary_etags(module, h));
        }
    }
    export(&values)
}

/// `line` as hub `h` exports it: the secondary's has no ETag of the primary's.
fn secondary_etags(line: Value, h: usize) -> Value {
    match h {
        2 => without(without(line, "eTag"), "twinETag"),
        _ => line,
    }
}
