//! The IoT Hub failback, at library level: every merge rule of the issue, the import plan's
//! lines, and the plan's properties checked against an import simulator (`support/hub.rs`):
//! applying the plan and running again gives nothing more to do, applying part of it (an
//! interrupted import job) and running again gives the rest, and no input order changes a byte.

#[path = "support/data.rs"]
mod data;
#[path = "support/hub.rs"]
mod hub;

/// Hand-written failbacks at the edges of the plan's rules, for `rerun`'s checks.
#[path = "iothub/edge_cases.rs"]
mod edge_cases;
/// The plan's properties on generated failbacks, perturbed or not (proptest).
#[path = "iothub/generated.rs"]
mod generated;
/// One test per merge rule of the issue: field by field, and existence.
#[path = "iothub/merge.rs"]
mod merge;
/// Seeded perturbations of generated failbacks: the shapes the plan's disable paths are for.
#[path = "iothub/perturb.rs"]
mod perturb;
/// One test per rule of the import plan, and the simulator's own check.
#[path = "iothub/plan.rs"]
mod plan;
/// What the export reader refuses before a merge sees it, each at its line and column.
#[path = "iothub/reading.rs"]
mod reading;
/// Plan, apply, run again: idempotence, interrupted imports, input order.
#[path = "iothub/rerun.rs"]
mod rerun;
/// Live replicas seeded from exports, each under its own id, beside the lift's registries.
#[path = "iothub/seeding.rs"]
mod seeding;
/// Random small edge topologies on three hubs, for `generated.rs`'s properties.
#[path = "iothub/topologies.rs"]
mod topologies;

use failback::iothub::{
    ConflictEntry, ExportLine, ExportReader, Failback, ImportMode, InputStats, LiftPolicy, Parsed,
    Plan, Side, Summary, UnwritableReason, parse_line, read_import_from,
};
use failback::{Device, DeviceKey};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Running a failback

/// Base64 of 16 bytes each (`failback-key-001` …): valid, distinct, made up.
const K: [&str; 8] = [
    "ZmFpbGJhY2sta2V5LTAwMQ==",
    "ZmFpbGJhY2sta2V5LTAwMg==",
    "ZmFpbGJhY2sta2V5LTAwMw==",
    "ZmFpbGJhY2sta2V5LTAwNA==",
    "ZmFpbGJhY2sta2V5LTAwNQ==",
    "ZmFpbGJhY2sta2V5LTAwNg==",
    "ZmFpbGJhY2sta2V5LTAwNw==",
    "ZmFpbGJhY2sta2V5LTAwOA==",
];
const T1: &str = "1111111111111111111111111111111111111111";
const T2: &str = "2222222222222222222222222222222222222222";
const T3: &str = "3333333333333333333333333333333333333333";
const T4: &str = "4444444444444444444444444444444444444444";

/// What one failback run produces.
struct Run {
    failback: Failback,
    plan: Plan,
    summary: Summary,
}

fn run(
    base: &[ExportLine],
    primary: &[ExportLine],
    secondary: &[ExportLine],
    prefer: impl Into<LiftPolicy>,
) -> Run {
    let failback = match Failback::lift(base, primary, secondary, prefer) {
        Ok(failback) => failback,
        Err(err) => panic!("lift: {err}"),
    };
    let plan = Plan::new(&failback);
    // The tool's path (the plan on every core, lines as JSON text) plans the same and writes
    // the same lines.
    let mut text = String::new();
    let streamed = Plan::stream_json(&failback, |block| {
        text.push_str(block);
        Ok(())
    })
    .expect("collecting cannot fail");
    let lines: String = plan.merged.iter().map(|l| l.to_json() + "\n").collect();
    assert_eq!(text, lines);
    // The streamed plan is the sequential one but for its merged lines, written as text.
    let mut unstreamed = plan.clone();
    unstreamed.merged.clear();
    assert_eq!(streamed, unstreamed);
    let stats = |lines: &[ExportLine]| InputStats {
        devices: lines.len() as u64,
        skipped: 0,
    };
    let summary = Summary::new(&plan, [stats(base), stats(primary), stats(secondary)]);
    Run {
        failback,
        plan,
        summary,
    }
}

impl Run {
    /// The merged device `id`, which must be live.
    fn device(&self, id: &str) -> Device {
        self.live(id)
            .unwrap_or_else(|| panic!("{id} is not in the merged registry"))
    }

    fn live(&self, id: &str) -> Option<Device> {
        let key = parse_key(id);
        self.failback.merged().device(&key, self.failback.policy())
    }

    /// The plan's lines for `id` (`device` or `device/module`).
    fn lines(&self, id: &str) -> Vec<&ExportLine> {
        let key = parse_key(id);
        self.plan.import.iter().filter(|l| l.key == key).collect()
    }

    /// The one plan line for `id`.
    fn line(&self, id: &str) -> &ExportLine {
        match self.lines(id).as_slice() {
            [line] => line,
            other => panic!("{id}: expected one plan line, found {other:?}"),
        }
    }

    /// The devices the plan left out, as `device` or `device/module`, with why.
    /// The ids of the devices left out, in order.
    fn blocked_ids(&self) -> Vec<String> {
        self.plan
            .blocked
            .iter()
            .map(|b| b.key.to_string())
            .collect()
    }

    /// Asserts every blocked device is blocked for a reason saying `why`, and has no line.
    #[track_caller]
    fn assert_each_blocked_for(&self, why: &str) {
        for b in &self.plan.blocked {
            assert!(b.reason.contains(why), "{b:?}");
            assert!(self.lines(&b.key.to_string()).is_empty());
        }
    }

    /// Each import line's id and mode, in order.
    fn modes(&self) -> Vec<(String, Option<ImportMode>)> {
        let lines = self.plan.import.iter();
        lines.map(|l| (l.key.to_string(), l.import_mode)).collect()
    }

    fn blocked(&self) -> Vec<(String, &str)> {
        self.plan
            .blocked
            .iter()
            .map(|b| (b.key.to_string(), b.reason.as_str()))
            .collect()
    }

    fn conflicts(&self, id: &str) -> Vec<&ConflictEntry> {
        let key = parse_key(id);
        self.summary
            .conflicts
            .iter()
            .filter(|c| c.key == key)
            .collect()
    }

    fn conflict(&self, id: &str, field: &str) -> &ConflictEntry {
        let found: Vec<_> = self
            .conflicts(id)
            .into_iter()
            .filter(|c| c.field == field)
            .collect();
        match found.as_slice() {
            [conflict] => conflict,
            _ => panic!(
                "{id}: expected one {field} conflict in {:#?}",
                self.conflicts(id)
            ),
        }
    }

    fn report_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary).expect("the report serializes")
    }
}

/// Keys as their ids (`device` or `device/module`), in the order given: how a plan's lists
/// are compared with the ids a test expects.
fn shown(keys: &[DeviceKey]) -> Vec<String> {
    keys.iter().map(ToString::to_string).collect()
}

/// The plan's parents no line can carry, as (device id, reason, merged parent), in order.
fn unwritable(plan: &Plan) -> Vec<(String, UnwritableReason, Option<String>)> {
    let entries = plan.parent_unwritable.iter();
    entries
        .map(|e| {
            (
                e.key.to_string(),
                e.reason,
                e.parent.as_ref().map(ToString::to_string),
            )
        })
        .collect()
}

/// One expected entry of [`unwritable`].
fn entry(
    id: &str,
    reason: UnwritableReason,
    parent: Option<&str>,
) -> (String, UnwritableReason, Option<String>) {
    (id.into(), reason, parent.map(String::from))
}

fn parse_key(id: &str) -> DeviceKey {
    let key = match id.split_once('/') {
        Some((device, module)) => DeviceKey::module(device, module),
        None => DeviceKey::device(id),
    };
    key.unwrap_or_else(|err| panic!("{id}: {err}"))
}

// ---------------------------------------------------------------------------------------------
// Hand-written exports

/// A SAS device as the primary exports it: keys `K[0]`, `K[1]`, a tag, a desired and a
/// reported property, `eTag` `e-{id}` and `twinETag` `t-{id}`.
fn device(id: &str) -> Value {
    json!({
        "id": id,
        "eTag": format!("e-{id}"),
        "status": "enabled",
        "authentication": {
            "symmetricKey": {"primaryKey": K[0], "secondaryKey": K[1]},
            "x509Thumbprint": {"primaryThumbprint": null, "secondaryThumbprint": null},
            "type": "sas"
        },
        "twinETag": format!("t-{id}"),
        "tags": {"site": "berlin"},
        "properties": {
            "desired": {"interval": 60, "$version": 4},
            "reported": {"battery": 90, "$version": 9}
        },
        "capabilities": {"iotEdge": false}
    })
}

/// A module of `id`, keys `K[2]`, `K[3]`.
fn module(id: &str, module: &str) -> Value {
    json!({
        "id": id,
        "moduleId": module,
        "eTag": format!("e-{id}/{module}"),
        "status": "enabled",
        "authentication": {"symmetricKey": {"primaryKey": K[2], "secondaryKey": K[3]}, "type": "sas"},
        "twinETag": format!("t-{id}/{module}"),
        "properties": {"desired": {"interval": 5}}
    })
}

/// An IoT Edge device whose scope has generation id `generation`.
fn edge(id: &str, generation: u64) -> Value {
    let mut value = device(id);
    value["capabilities"] = json!({"iotEdge": true});
    value["deviceScope"] = json!(format!("ms-azure-iot-edge://{id}-{generation}"));
    value
}

/// `value` with the field at JSON pointer `path` set, creating objects on the way.
fn set(mut value: Value, path: &str, to: Value) -> Value {
    let mut at = &mut value;
    for part in path.trim_start_matches('/').split('/') {
        if !at.is_object() {
            *at = json!({});
        }
        at = at
            .as_object_mut()
            .expect("an object")
            .entry(part)
            .or_insert(Value::Null);
    }
    *at = to;
    value
}

/// `value` behind the edge device `gw`, whose scope has generation id `generation`.
pub(crate) fn behind(value: Value, gw: &str, generation: u64) -> Value {
    let scope = format!("ms-azure-iot-edge://{gw}-{generation}");
    set(value, "/deviceScope", json!(scope))
}

/// `value` without its top-level `field`.
fn without(mut value: Value, field: &str) -> Value {
    value.as_object_mut().expect("an object").remove(field);
    value
}

fn keys(value: Value, primary: &str, secondary: &str) -> Value {
    set(
        value,
        "/authentication/symmetricKey",
        json!({"primaryKey": primary, "secondaryKey": secondary}),
    )
}

/// Lines written as a hub's export file and read back as one; no line is a hub without
/// devices.
fn export(values: &[Value]) -> Vec<ExportLine> {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    let reader = ExportReader::new("test.jsonl", text.as_bytes()).allowing_empty();
    match reader.collect() {
        Ok(lines) => lines,
        Err(err) => panic!("{err}"),
    }
}

/// One line read on its own: a module line of the hub's, say, which a whole export holds with its
/// device's.
fn line_of(value: &Value) -> ExportLine {
    match parse_line("test.jsonl".as_ref(), 1, &value.to_string()) {
        Ok(Parsed::Device(line)) => line,
        other => panic!("{value}: {other:?}"),
    }
}

/// Lines written as an import file (which may carry `importMode`) and read back.
fn import(values: &[Value]) -> Vec<ExportLine> {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    match read_import_from("import.jsonl".as_ref(), text.as_bytes()) {
        Ok(import) => import.lines,
        Err(err) => panic!("{err}"),
    }
}

/// Merges hand-written exports. The secondary's `eTag`s and `twinETag`s are replaced by its
/// own (`sec-…`), as a second hub would have them, so a plan line carrying one is caught.
fn merge(
    base: &[Value],
    primary: &[Value],
    secondary: &[Value],
    prefer: impl Into<LiftPolicy>,
) -> Run {
    let secondary = rehome(secondary);
    run(&export(base), &export(primary), &export(&secondary), prefer)
}

/// Lines as the secondary hub exports them: with its own ETags.
fn rehome(secondary: &[Value]) -> Vec<Value> {
    secondary
        .iter()
        .map(|v| {
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            let v = set(v.clone(), "/eTag", json!(format!("sec-e-{id}")));
            set(v, "/twinETag", json!(format!("sec-t-{id}")))
        })
        .collect()
}

/// Like [`merge`], with the primary already as lines (a simulated hub's export).
fn run_lines(base: &[Value], primary: &[ExportLine], secondary: &[Value], prefer: Side) -> Run {
    let secondary = rehome(secondary);
    run(&export(base), primary, &export(&secondary), prefer)
}

const BOTH: [Side; 2] = [Side::Primary, Side::Secondary];

fn other(side: Side) -> Side {
    match side {
        Side::Primary => Side::Secondary,
        _ => Side::Primary,
    }
}

fn tags(device: &Device) -> Value {
    Value::Object(device.tags.clone())
}

/// Lines as a `.jsonl` file holds them.
fn json_lines(lines: &[ExportLine]) -> String {
    lines.iter().map(|l| l.to_json() + "\n").collect()
}
