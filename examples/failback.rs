//! The failback merge tool: merge IoT Hub bulk exports after a regional failover and plan the
//! import that brings the primary up to date.
//!
//! ```text
//! cargo run --release --example failback -- merge \
//!     --base base.jsonl --primary primary.jsonl --secondary secondary.jsonl --out-dir out
//! cargo run --release --example failback -- parse base.jsonl primary.jsonl secondary.jsonl
//! cargo run --release --example failback -- generate --devices 1000 --out-dir demo
//! printf %s "$VALUE" | cargo run --release --example failback -- fingerprint --fingerprint-key K
//! ```
//!
//! Exit status: 0 on success (conflicts included), 1 for a usage error (found before any file is
//! touched), 2 for bad input (`FILE:LINE:COLUMN: message` on stderr), an I/O failure
//! (`PATH: message`, `<stdout>` for a stdout that cannot be written), or a plan refused for
//! deleting more of the primary's devices and modules than `--max-deletes` allows (the counts
//! on stderr), or 130 when stopped by SIGINT, SIGTERM or SIGHUP. No output file is left behind
//! on failure: every output is written to a temporary file, synced, then renamed into place,
//! and the three are one set (an earlier run's are removed first, this run's again if one fails
//! or is refused). A run stopped by SIGINT, SIGTERM or SIGHUP removes the temporary file it was
//! writing before it exits (outputs already in place stay; the next merge removes them first).
//! Nothing can run on SIGKILL (the OOM killer's signal): a run killed so leaves its temporary
//! file (`.{name}.tmp-{pid}-{n}`, partial, keys in clear, readable by its owner only), which the
//! next run writing the same output removes before it writes, naming it on stderr (unless it
//! is one of that run's inputs, which are never touched).

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use failback::iothub::{
    ExportLine, ExportReader, Failback, Generate, IDENTITY_LIMIT, InputStats, LiftPolicy, Plan,
    PlanCounts, Side, Summary, Triple, create_atomically, refuse_inputs,
    remove_abandoned_temporaries, remove_own_temporaries, write_atomically,
};
use failback::{Error, FingerprintKey};

/// mimalloc in place of glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "failback",
    version,
    about = "Merge IoT Hub registries after a failover, and plan the failback import"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Merge base, primary and secondary exports; write merged.jsonl, import.jsonl and report.json.
    Merge {
        /// The backup both hubs started from (export of the primary before the switch).
        #[arg(long)]
        base: PathBuf,
        /// The primary hub's export now.
        #[arg(long)]
        primary: PathBuf,
        /// The secondary hub's export now.
        #[arg(long)]
        secondary: PathBuf,
        /// Where to write the outputs (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
        /// The side that wins conflicts no security rule settles.
        #[arg(long, value_enum, default_value_t = Prefer::Secondary)]
        prefer: Prefer,
        /// Accept this input listing no device (repeat for more than one): a hub that really
        /// has none, such as a primary recreated empty. Without it an empty export is refused,
        /// since merged it means every device of the others was deleted.
        #[arg(long, value_enum)]
        allow_empty: Vec<Input>,
        /// Refuse a plan whose delete lines are more than this percentage (0 to 100) of the
        /// primary's device and module lines, writing nothing. Every delete line is a device
        /// the secondary's export lacks, so an export cut short or filtered plans mass deletes;
        /// 0 refuses any delete, 100 allows all (an empty secondary given with --allow-empty
        /// may need it).
        #[arg(
            long,
            value_name = "PERCENT",
            value_parser = percentage,
            default_value_t = 10.0,
            allow_negative_numbers = true
        )]
        max_deletes: f64,
        /// Show the values report.json hides (twin and metadata values that may be secrets,
        /// status reasons that may hold one) by their HMAC-SHA-256 under the bytes of this
        /// file (at least 16; `head -c 32 /dev/urandom > fingerprint.key` makes one), so that
        /// equal values show alike and only holders of the key can test a guess. Without it
        /// they show as `<hidden>`.
        #[arg(long, value_name = "FILE")]
        fingerprint_key: Option<PathBuf>,
    },
    /// Print the keyed fingerprint report.json shows for a value, read from standard input
    /// (a pipe: `read -rs v; printf %s "$v" | failback fingerprint --fingerprint-key K`), to
    /// check a hidden value against one you know. The input is a string's text (one trailing
    /// newline or CRLF dropped); give --json for any value as JSON text (`{"ssid": …}`, `42`,
    /// `"text"`).
    Fingerprint {
        /// The key file merge was given.
        #[arg(long, value_name = "FILE")]
        fingerprint_key: PathBuf,
        /// Read the input as a JSON value: a string's text or any other value's JSON text
        /// (compact, members sorted by name) is fingerprinted, as report.json does.
        #[arg(long)]
        json: bool,
    },
    /// Parse export files as merge reads them, one after the other, and count their lines:
    /// finds a malformed line without merging, and times parsing alone (the floor that
    /// BENCHMARKS.md measures merge against).
    Parse {
        /// Export files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Accept files listing no device, as merge's --allow-empty does.
        #[arg(long)]
        allow_empty: bool,
    },
    /// Write a realistic base/primary/secondary triple for demos, tests and benchmarks.
    Generate {
        /// Device identities in the base (at least 1).
        #[arg(long)]
        devices: usize,
        /// Where to write base.jsonl, primary.jsonl and secondary.jsonl.
        #[arg(long)]
        out_dir: PathBuf,
        /// Seed of the deterministic generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Prefer {
    Primary,
    Secondary,
}

/// One of the three inputs of a merge.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Input {
    Base,
    Primary,
    Secondary,
}

/// What went wrong, and the exit status it earns.
enum Failure {
    Usage(String),
    Input(Error),
    /// A plan the tool would not write (exit 2, as bad input: the inputs are what to check).
    Refused(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match error {
            Error::OutputIsInput { .. } => {
                Failure::Usage(format!("{error}; choose another --out-dir"))
            }
            other => Failure::Input(other),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let usage = error.use_stderr();
            // --help and --version print to stdout and succeed; real usage errors exit 1.
            let _ = error.print();
            return if usage {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match &cli.command {
        Command::Merge { out_dir, .. } => stop_on_signal(out_dir, MERGE_OUTPUTS),
        Command::Generate { out_dir, .. } => stop_on_signal(out_dir, GENERATE_OUTPUTS),
        // Write nothing: the default action of a signal leaves nothing behind.
        Command::Parse { .. } | Command::Fingerprint { .. } => {}
    }
    let outcome = match cli.command {
        Command::Merge {
            base,
            primary,
            secondary,
            out_dir,
            prefer,
            allow_empty,
            max_deletes,
            fingerprint_key,
        } => merge(
            [&base, &primary, &secondary],
            &out_dir,
            prefer,
            &allow_empty,
            (max_deletes, fingerprint_key.as_deref()),
        ),
        Command::Fingerprint {
            fingerprint_key,
            json,
        } => fingerprint(&fingerprint_key, json),
        Command::Parse { files, allow_empty } => parse(&files, allow_empty),
        Command::Generate {
            devices,
            out_dir,
            seed,
        } => generate(devices, &out_dir, seed),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            tell(format_args!("failback: {message}"));
            ExitCode::from(1)
        }
        Err(Failure::Input(error)) => {
            tell(format_args!("{error}"));
            ExitCode::from(2)
        }
        Err(Failure::Refused(message)) => {
            tell(format_args!("failback: {message}"));
            ExitCode::from(2)
        }
    }
}

/// What `merge` writes in `--out-dir`, in this order.
const MERGE_OUTPUTS: [&str; 3] = ["merged.jsonl", "import.jsonl", "report.json"];

/// What `generate` writes in `--out-dir`, in this order.
const GENERATE_OUTPUTS: [&str; 3] = ["base.jsonl", "primary.jsonl", "secondary.jsonl"];

/// The exit status of a run stopped by SIGINT, SIGTERM or SIGHUP: 128 + 2, SIGINT's, the
/// shells' "interrupted". `ctrlc` runs one handler for the three without saying which came,
/// so SIGTERM's own 143 cannot be given.
const STOPPED: u8 = 130;

/// On SIGINT, SIGTERM or SIGHUP, removes this run's temporary files of the outputs `names` in
/// `out_dir` and exits with [`STOPPED`]: the default action of these signals ended the process
/// at once, leaving a partial output (keys in clear) beside its name.
///
/// The handler runs on a thread of its own while the write goes on, so it removes nothing but
/// this process's temporaries of these outputs (a write whose temporary file is gone fails
/// rather than put it in place) and exits at once, before another write can begin. Outputs
/// already in place are kept: a merge's report, written last, is then missing, and the next
/// run removes the set first; generate's next run refuses until they are removed. Nothing runs
/// on SIGKILL: the next run removes what it leaves ([`remove_abandoned`]). The handler writes
/// nothing: stderr's lock, held by a write blocked on a full pipe, would keep it from exiting.
fn stop_on_signal(out_dir: &Path, names: [&str; 3]) {
    let outputs = names.map(|name| out_dir.join(name));
    let installed = ctrlc::set_handler(move || {
        for output in &outputs {
            // Best effort: the process is ending, and the next run removes what is left.
            let _ = remove_own_temporaries(output);
        }
        std::process::exit(i32::from(STOPPED));
    });
    if let Err(error) = installed {
        tell(format_args!(
            "failback: warning: SIGINT and SIGTERM cannot be handled ({error}): a run stopped \
             by one leaves its partial output, which the next run removes"
        ));
    }
}

/// Reads `--max-deletes`: a percentage from 0 to 100. Values outside the range are refused,
/// NaN and infinities with them: as a limit, NaN would refuse every plan that deletes anything
/// and infinity allow any, neither what was meant.
fn percentage(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number: give a percentage from 0 to 100"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{text} is outside 0 to 100: give a percentage from 0 to 100"
        ))
    }
}

fn merge(
    inputs: [&Path; 3],
    out_dir: &Path,
    prefer: Prefer,
    allow_empty: &[Input],
    (max_deletes, key_file): (f64, Option<&Path>),
) -> Result<(), Failure> {
    let [base, primary, secondary] = inputs;
    // Three names for two files is a slip of the hand, and merged it reads as a hub with no
    // changes: every change the other side made would be planned away without a word.
    let flags = ["--base", "--primary", "--secondary"];
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        if refuse_inputs(inputs[j], &[inputs[i]]).is_err() {
            return Err(Failure::Usage(format!(
                "{} and {} name the same file ({}): give each its own export",
                flags[i],
                flags[j],
                inputs[j].display()
            )));
        }
    }
    // Read before any output is touched: a missing or short key is bad input, found first.
    let fingerprint_key = key_file.map(read_fingerprint_key).transpose()?;
    let outputs = MERGE_OUTPUTS.map(|name| out_dir.join(name));
    // Refuse before any work: an output that is an input (the key file too) would destroy it.
    let read: Vec<&Path> = inputs.into_iter().chain(key_file).collect();
    for output in &outputs {
        refuse_inputs(output, &read)?;
    }
    // The three outputs are one set, and this run's or none: an earlier run's are removed
    // before the inputs are read, so a run that fails on a bad line does not leave the last
    // run's import plan for an operator to submit, and this run's are removed again if a later
    // one fails, so the directory never holds a new merged registry beside an old plan. The
    // report is written last: a set without it is one a crash interrupted. The temporary
    // files of a run killed while writing are removed with them: partial, keys in clear.
    remove_abandoned(&outputs, &read)?;
    let removed: Vec<Result<(), Error>> = outputs.iter().map(|o| remove_output(o)).collect();
    removed.into_iter().collect::<Result<(), Error>>()?;
    let progress = io::stderr().is_terminal();
    let side = match prefer {
        Prefer::Primary => Side::Primary,
        Prefer::Secondary => Side::Secondary,
    };
    let policy = LiftPolicy::from(side);
    let policy = match fingerprint_key {
        Some(key) => policy.with_fingerprint_key(key),
        None => policy,
    };
    // Inputs are streamed, never held whole: the base first, then the primary and the
    // secondary at once (the library reads them on two threads).
    let open = |path, input| {
        let reader = open(path, progress)?;
        Ok::<_, Error>(if allow_empty.contains(&input) {
            reader.allowing_empty()
        } else {
            reader
        })
    };
    let (mut base_lines, mut primary_lines, mut secondary_lines) = (
        open(base, Input::Base)?,
        open(primary, Input::Primary)?,
        open(secondary, Input::Secondary)?,
    );
    let failback = Failback::from_lines(
        base_lines.by_ref(),
        primary_lines.by_ref(),
        secondary_lines.by_ref(),
        policy,
    )?;
    let inputs_stats = [
        base_lines.stats(),
        primary_lines.stats(),
        secondary_lines.stats(),
    ];
    if progress {
        tell(format_args!("merged; planning and writing…"));
    }

    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    write_outputs(&outputs, &read, &failback, inputs_stats, max_deletes).inspect_err(|_| {
        for output in &outputs {
            // Best effort: the write's error is the one to report.
            let _ = remove_output(output);
        }
    })?;
    warn_of_unknown_credentials(failback.credentials_unknown());
    // The process ends here, its outputs durable: the four registries are left for the OS
    // to reclaim at once rather than freed one allocation at a time, which took about a
    // fifteenth of the run (perf at 100k devices).
    std::mem::forget(failback);
    Ok(())
}

/// Tells, on stderr, of each input exported without keys for some of its lines, and what that
/// means for the plan just written; counts only, never a key. The merge reads such credentials
/// as unknown, never as a change (src/iothub/lift.rs), and the plan blocks a line that would
/// need them (src/iothub/writable.rs), so the cost differs by input. The secondary's is the one
/// nothing else shows: a rotation made there during the outage is simply not seen.
fn warn_of_unknown_credentials(counts: [u64; 3]) {
    let consequences = [
        (
            "base",
            "a device among them that the primary and the secondary now hold with different \
             credentials is blocked, since which side changed them cannot be told (either may \
             hold a key the other rotated out); report.json lists each under blocked; give a \
             backup taken with keys as --base if there is one, or settle those credentials by \
             hand",
        ),
        (
            "primary",
            "a full update of any of them (a change of status, credentials, capabilities or \
             parent, a disable included) is blocked, since it would replace credentials the \
             primary may have rotated during the outage; report.json lists each under blocked, \
             and their twin-only updates and deletes are still written; export the primary \
             again with keys and run again",
        ),
        (
            "secondary",
            "a rotation made on the secondary during the outage cannot be seen for them, so the \
             primary keeps its own credentials, and a device that now authenticates with a new \
             key or certificate cannot connect after failback (one only the secondary holds is \
             blocked instead, its keys unknown); export the secondary again with keys and run \
             again",
        ),
    ];
    for (count, (input, consequence)) in counts.into_iter().zip(consequences) {
        if count > 0 {
            tell(format_args!(
                "failback: warning: the {input} was exported without keys for {} of its device \
                 and module lines (excludeKeysInExport, or authentication null): {consequence}",
                grouped(count)
            ));
        }
    }
}

/// Removes the temporary files that runs killed while writing `outputs` left (a partial
/// output each, which no error path of theirs could remove: see
/// [`remove_abandoned_temporaries`]), and names each on stderr; one that is an input is kept.
fn remove_abandoned(outputs: &[PathBuf], inputs: &[&Path]) -> Result<(), Error> {
    for output in outputs {
        for temp in remove_abandoned_temporaries(output, inputs)? {
            tell(format_args!(
                "failback: removed {}, a partial {} left by a run that was killed",
                temp.display(),
                output.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    Ok(())
}

/// Removes an output of an earlier run, if there is one.
fn remove_output(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(source) if source.kind() != io::ErrorKind::NotFound => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
        _ => Ok(()),
    }
}

/// Writes the merged registry, the import plan and the report, each atomically, and prints
/// the summary; refuses, writing none, a plan deleting more than `max_deletes` percent of the
/// primary's lines.
fn write_outputs(
    outputs: &[PathBuf; 3],
    inputs: &[&Path],
    failback: &Failback,
    inputs_stats: [InputStats; 3],
    max_deletes: f64,
) -> Result<(), Failure> {
    // The merged registry goes to disk as the plan reads it, a block of lines at a time,
    // planned on every core. The sink's error names the file; write_atomically hands such an
    // error back as it is, not named a second time.
    let mut planned = None;
    let mut refused = None;
    let written = write_atomically(&outputs[0], inputs, |out| {
        let plan = Plan::stream_json(failback, |text| {
            out.write_all(text.as_bytes()).map_err(|source| Error::Io {
                path: outputs[0].clone(),
                source,
            })
        })
        .map_err(io::Error::other)?;
        // Refused inside the write, so that the merged registry is never put in place: the
        // plan is only known once it is streamed, and a refused run leaves no output at all.
        if let Some(refusal) = too_many_deletes(&plan, inputs_stats[1].devices, max_deletes) {
            refused = Some(refusal);
            return Err(io::Error::other("the plan was refused"));
        }
        planned = Some(plan);
        Ok(())
    });
    if let Some(refusal) = refused {
        return Err(Failure::Refused(refusal));
    }
    written?;
    // Written, the plan was made: the closure stores it before it returns `Ok`.
    let Some(plan) = planned else {
        return Err(Failure::Input(Error::Io {
            path: outputs[0].clone(),
            source: io::Error::other("the plan was not made"),
        }));
    };
    let summary = Summary::new(&plan, inputs_stats);
    write_lines(&outputs[1], inputs, &plan.import)?;
    write_atomically(&outputs[2], inputs, |out| {
        serde_json::to_writer_pretty(&mut *out, &summary).map_err(io::Error::other)?;
        out.write_all(b"\n")
    })?;

    let skipped: u64 = summary.inputs.iter().map(|s| s.skipped).sum();
    say(format_args!(
        "merged {} devices (base {}, primary {}, secondary {} lines; {skipped} hub warnings skipped)",
        summary.merged_devices,
        summary.inputs[0].devices,
        summary.inputs[1].devices,
        summary.inputs[2].devices
    ))?;
    say(format_args!(
        "plan: {} create, {} update, {} update twin, {} delete; {} blocked, {} system modules left to the edge runtime, {} waiting for a parent's scope or for their device (run again), {} moved behind a gateway deleted or made plain, {} with a parent no line can carry",
        summary.plan.create,
        summary.plan.update,
        summary.plan.update_twin,
        summary.plan.delete,
        summary.blocked.len(),
        summary.system_modules.len(),
        summary.pending_parent.len(),
        summary.parent_gone.len(),
        summary.parent_unwritable.len()
    ))?;
    say(format_args!(
        "conflicts: {} ({} security), preferring the {} where no security rule decides",
        summary.conflicts.len(),
        summary.security_conflicts(),
        summary.prefer.as_str()
    ))?;
    for output in outputs {
        say(format_args!("wrote {}", output.display()))?;
    }
    // The plan is left for the OS to reclaim at exit (see `merge`).
    std::mem::forget((plan, summary));
    Ok(())
}

/// Why `plan` is refused, if its delete lines are more than `max_deletes` percent of the
/// primary's `primary_lines` (device and module lines): the library's guard
/// ([`PlanCounts::deletes_beyond`], whose docs say why a mass delete is suspect), told in the
/// tool's words. The tool refuses an empty export unless told otherwise (`--allow-empty`);
/// this is the same guard for one half empty.
fn too_many_deletes(plan: &Plan, primary_lines: u64, max_deletes: f64) -> Option<String> {
    let refusal = PlanCounts::of(plan).deletes_beyond(primary_lines, max_deletes)?;
    Some(format!(
        "the plan deletes {} of the primary's {} devices and modules ({}%), more than \
         --max-deletes {}% allows: each is missing from the secondary's export, and \
         a device missing from an export reads as deleted there; check that the secondary's \
         export is complete (not cut short, filtered or another hub's), or raise --max-deletes \
         if the deletes are real; nothing was written",
        grouped(refusal.deletes),
        grouped(refusal.primary_lines),
        refusal.share_shown(),
        refusal.limit
    ))
}

/// `n` with its thousands grouped by commas (`100,000`), as counts are read in a message.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Parses each of `files` in turn, each line dropped once parsed, and prints its counts.
fn parse(files: &[PathBuf], allow_empty: bool) -> Result<(), Failure> {
    let progress = io::stderr().is_terminal();
    let mut counts = Vec::with_capacity(files.len());
    for file in files {
        let mut lines = open(file, progress)?;
        if allow_empty {
            lines = lines.allowing_empty();
        }
        for line in lines.by_ref() {
            line?;
        }
        counts.push(lines.stats());
    }
    // Printed once every file has parsed, so that a bad file leaves stdout empty.
    for (file, stats) in files.iter().zip(counts) {
        say(format_args!(
            "{}: {} device lines ({} hub warnings skipped)",
            file.display(),
            stats.devices,
            stats.skipped
        ))?;
    }
    Ok(())
}

/// The most bytes a fingerprint key file may hold: a key is a few dozen random bytes, and a
/// device given by mistake (`/dev/urandom`, `/dev/zero`) never ends.
const MAX_KEY_FILE: u64 = 4096;

/// The fingerprint key in the file at `path`: its bytes as they are (a trailing newline
/// included), as HMAC tools given the file read them. Read to [`MAX_KEY_FILE`] bytes and no
/// further.
fn read_fingerprint_key(path: &Path) -> Result<FingerprintKey, Failure> {
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut material = Vec::new();
    File::open(path)
        .and_then(|file| file.take(MAX_KEY_FILE + 1).read_to_end(&mut material))
        .map_err(io_error)?;
    let invalid = |reason| {
        Failure::Input(Error::InvalidValue {
            field: format!("fingerprint key {}", path.display()),
            reason,
        })
    };
    if material.len() as u64 > MAX_KEY_FILE {
        return Err(invalid(format!(
            "holds more than {MAX_KEY_FILE} bytes: a fingerprint key is a few dozen random \
             bytes kept in a file (head -c 32 /dev/urandom > fingerprint.key makes one)"
        )));
    }
    FingerprintKey::new(&material).map_err(|error| match error {
        Error::InvalidValue { reason, .. } => invalid(reason),
        other => Failure::Input(other),
    })
}

/// Prints the keyed fingerprint of the value on stdin, under the key in the file at `path`:
/// of its text, or with `json`, of the value its JSON text is, as report.json fingerprints it.
/// Refuses a terminal, which would echo the value as it is typed.
fn fingerprint(path: &Path, json: bool) -> Result<(), Failure> {
    let key = read_fingerprint_key(path)?;
    if io::stdin().is_terminal() {
        return Err(Failure::Usage(
            "fingerprint reads the value from a pipe, not a terminal, which would echo it: \
             read -rs v; printf %s \"$v\" | failback fingerprint --fingerprint-key FILE"
                .to_owned(),
        ));
    }
    let mut text = String::new();
    let stdin = PathBuf::from("<stdin>");
    io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| Error::Io {
            path: stdin.clone(),
            source,
        })?;
    let shown = if json {
        // A string's text, any other value's compact JSON text, members sorted by name: as
        // the report reads a hidden value.
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| Error::Parse {
                path: stdin,
                line: error.line() as u64,
                column: error.column() as u64,
                message: "not a JSON value".to_owned(),
            })?;
        match value {
            serde_json::Value::String(text) => key.fingerprint(&text),
            other => key.fingerprint(&other.to_string()),
        }
    } else {
        // The line end `echo` or a file's last line adds is no part of the value.
        let value = (text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n')))
        .unwrap_or(&text);
        key.fingerprint(value)
    };
    say(format_args!("{shown}"))?;
    Ok(())
}

/// An export file as a stream of lines, with progress on stderr when asked.
fn open(path: &Path, progress: bool) -> Result<ExportReader<Progress<BufReader<File>>>, Error> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let reader = Progress {
        inner: BufReader::with_capacity(1 << 16, file),
        name: path.display().to_string(),
        lines: 0,
        show: progress,
    };
    Ok(ExportReader::new(path, reader))
}

/// Lines between progress updates; inputs shorter than this show none.
const PROGRESS_EVERY: u64 = 100_000;

/// Counts lines as the reader consumes them and reports every [`PROGRESS_EVERY`] on stderr.
struct Progress<R> {
    inner: R,
    name: String,
    lines: u64,
    show: bool,
}

impl<R: BufRead> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Progress<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if self.show {
            // The buffer is still filled, so this is no I/O.
            let newlines = self
                .inner
                .fill_buf()
                .map(|b| {
                    b[..amount.min(b.len())]
                        .iter()
                        .filter(|&&c| c == b'\n')
                        .count()
                })
                .unwrap_or(0);
            self.tick(newlines as u64);
        }
        self.inner.consume(amount);
    }
}

impl<R> Progress<R> {
    fn count(&mut self, bytes: &[u8]) {
        if self.show {
            let newlines = bytes.iter().filter(|&&c| c == b'\n').count();
            self.tick(newlines as u64);
        }
    }

    fn tick(&mut self, newlines: u64) {
        let before = self.lines / PROGRESS_EVERY;
        self.lines += newlines;
        // One line per step: two files are read at once, so no carriage-return updates.
        if self.lines / PROGRESS_EVERY > before {
            tell(format_args!("{}: {} lines read", self.name, self.lines));
        }
    }
}

fn write_lines(path: &Path, inputs: &[&Path], lines: &[ExportLine]) -> Result<(), Error> {
    write_atomically(path, inputs, |out| lines_to(out, lines))
}

/// Writes `lines`, one JSON object a line.
fn lines_to(out: &mut dyn Write, lines: &[ExportLine]) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    for line in lines {
        out.write_all(line.to_json().as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes `text` and a newline to stdout. A closed or full stdout is an I/O failure (exit 2),
/// where `println!` panicked (found in review: exit 101, a closed pipe included, since Rust
/// ignores `SIGPIPE`).
fn say(text: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    (out.write_fmt(text))
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            path: PathBuf::from("<stdout>"),
            source,
        })
}

/// Writes `text` and a newline to stderr. A failure there has nowhere to be told: the exit
/// status still tells it.
fn tell(text: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{text}");
}

fn generate(devices: usize, out_dir: &Path, seed: u64) -> Result<(), Failure> {
    // Fewer make an export with no device line, which merge refuses.
    if devices < Generate::MIN_DEVICES {
        return Err(Failure::Usage(format!(
            "--devices must be at least {}: with {devices}, an export would hold no device, \
             which merge refuses",
            Generate::MIN_DEVICES
        )));
    }
    // More than a hub holds is no hub's export, and the triple is built in memory (about
    // 15 GB at the limit): far past it, the allocator aborted the tool (found in review).
    if u64::try_from(devices).map_or(true, |d| d > IDENTITY_LIMIT) {
        return Err(Failure::Usage(format!(
            "--devices must be at most {IDENTITY_LIMIT}, the identities an IoT hub holds: \
             {devices} is no hub's export"
        )));
    }
    // Demo data goes only into new files: `--out-dir` pointed by mistake at a directory of
    // real exports, whose names these are, must not replace them.
    let names = GENERATE_OUTPUTS;
    // `symlink_metadata`, not `exists`: a link, even one pointing nowhere, is not new either.
    let taken = |path: &PathBuf| std::fs::symlink_metadata(path).is_ok();
    if let Some(existing) = names.iter().map(|n| out_dir.join(n)).find(taken) {
        return Err(Failure::Usage(format!(
            "{} exists; generate writes only new files: choose another --out-dir",
            existing.display()
        )));
    }
    // A run killed while writing left its partial files beside these names: removed first.
    remove_abandoned(&names.map(|n| out_dir.join(n)), &[])?;
    let triple = Generate { devices, seed }.run();
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    // The three files are one set: when one cannot be written, or the summary printed, those
    // written before are removed (they are this run's: each was put in place only under a
    // name still free), so a failed run leaves nothing to clean up and nothing a rerun would
    // refuse. The check of the names above tells a mistaken `--out-dir` at once; only
    // `create_atomically` keeps a file made there during the run (found in review: it was
    // replaced).
    let mut written: Vec<PathBuf> = Vec::new();
    let outcome = write_triple(out_dir, names, &triple, &mut written);
    if outcome.is_err() {
        for done in &written {
            let _ = std::fs::remove_file(done);
        }
    }
    Ok(outcome?)
}

/// Writes the triple's three files under `names` in `out_dir`, each only under a name still
/// free, adding each to `written` once in place; then prints them.
fn write_triple(
    out_dir: &Path,
    names: [&str; 3],
    triple: &Triple,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let exports = [&triple.base, &triple.primary, &triple.secondary];
    for (name, lines) in names.into_iter().zip(exports) {
        let path = out_dir.join(name);
        create_atomically(&path, |out| lines_to(out, lines))?;
        written.push(path);
    }
    for (path, lines) in written.iter().zip(exports) {
        say(format_args!(
            "wrote {} ({} lines)",
            path.display(),
            lines.len()
        ))?;
    }
    Ok(())
}
