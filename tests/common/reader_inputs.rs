//! Fixed inputs for the readers' tests: a small registry to damage, the shipped export lines,
//! every node of a JSON value, and a secret to put where something else belongs.

use failback::{Identity, Registry, Stamp};
use serde_json::{Value, json};

use super::pools::{key, replica};

/// A registry holding a written record and a deleted one.
pub fn written_and_deleted() -> Registry {
    let r = replica(0);
    let mut registry = Registry::new();
    let mut w = registry.writer(r, Stamp::new(1, 0));
    w.create(&key(0), Identity::default()).expect("fresh");
    w.create(&key(1), Identity::default()).expect("fresh");
    w.set_metadata(&key(0), "owner", Some(json!("ops")))
        .expect("live");
    w.delete(&key(1)).expect("live");
    registry
}

/// Every node of `value` as a JSON pointer, in document order.
pub fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(member, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every line of the shipped exports: real hub lines covering every rule the tool applies.
/// Read once per test run, not once per case.
pub fn shipped_lines() -> &'static [String] {
    static LINES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
        ["base.jsonl", "primary.jsonl", "secondary.jsonl"]
            .iter()
            .flat_map(|name| {
                std::fs::read_to_string(dir.join(name))
                    .expect("shipped data reads")
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

/// A symmetric key's text (the pool's first) to put where something else belongs, a member's
/// name or a value: no reader's error may show it.
pub const STRAY: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
