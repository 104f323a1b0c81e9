//! What the report may show: never a secret, and a plan's summary is the tool's report of its
//! failback, whichever way the plan was made.

use failback::iothub::{ExportLine, Generate, InputStats, Side, read_export};
use std::path::Path;

use crate::data::{secrets, shipped, shipped_paths};
use crate::*;

#[test]
fn secrets_never_appear_in_the_report() {
    let mut triples = vec![shipped()];
    // Seed 10 holds an authentication conflict on an X.509 device, whose values the report
    // shows with their thumbprints beside the keys' fingerprints.
    for seed in [1, 2, 3, 10] {
        let g = Generate { devices: 300, seed }.run();
        triples.push([g.base, g.primary, g.secondary]);
    }
    let mut thumbprints_shown = false;
    for [b, p, s] in &triples {
        let all: Vec<ExportLine> = b.iter().chain(p).chain(s).cloned().collect();
        let secrets = secrets(&all);
        assert!(secrets.len() > 20, "the inputs hold keys");
        for prefer in BOTH {
            let run = run(b, p, s, prefer);
            assert!(
                run.summary.security_conflicts() > 0,
                "the data has security conflicts to show"
            );
            let report = run.report_json().to_ascii_lowercase();
            thumbprints_shown |= report.contains("thumbprints=[");
            for secret in &secrets {
                assert!(
                    !report.contains(&secret.to_ascii_lowercase()),
                    "a secret (fingerprint {}) is in the report",
                    failback::Fingerprint::of(secret)
                );
            }
        }
    }
    assert!(
        thumbprints_shown,
        "no conflict over an X.509 device's credentials reached"
    );
}

/// A plan's summary is the tool's report of the same failback, whichever way the plan was
/// made: the plan carries what the report says of its failback (the preferred side, the
/// conflicts a delete won, writes refused as stale, credentials the exports left out), so
/// `Summary::new` has no failback to be handed apart. Review 58: it took one beside the plan,
/// and a plan of another failback (its own docs used `Plan::default()`) gave a partial report
/// without a word, 2 conflicts, none blocked and no device merged where the tool reports 9, 2
/// and 37.
#[test]
fn a_plans_summary_is_the_tools_report_of_its_failback() {
    let exports = shipped_paths().map(|path| match read_export(&path) {
        Ok(export) => export,
        Err(err) => panic!("shipped data must read: {err}"),
    });
    let [b, p, s] = &exports;
    let failback = match Failback::lift(&b.lines, &p.lines, &s.lines, Side::Secondary) {
        Ok(failback) => failback,
        Err(err) => panic!("lift: {err}"),
    };
    let inputs = exports.each_ref().map(|export| InputStats {
        devices: export.lines.len() as u64,
        skipped: export.skipped,
    });
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.json");
    let golden = std::fs::read_to_string(&golden).expect("tests/golden/report.json");
    let streamed = Plan::stream_json(&failback, |_| Ok(())).expect("a sink that never fails");
    for plan in [Plan::new(&failback), streamed] {
        let summary = Summary::new(&plan, inputs);
        assert_eq!(
            (summary.conflicts.len(), summary.blocked.len()),
            (9, 2),
            "the shipped data's conflicts and blocked devices"
        );
        assert_eq!(summary.merged_devices, 37);
        let report = serde_json::to_string_pretty(&summary).expect("serializable") + "\n";
        assert!(
            report == golden,
            "the summary differs from the tool's report.json"
        );
    }
}
