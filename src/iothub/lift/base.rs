//! Lifting the base snapshot: each of its lines one create under [`BASE`], parsed on a helper
//! thread and written on the calling one.
//!
//! Apart from `lift.rs`, which reads the two sides over the lifted base and merges them, because
//! the base is read first and alone, and its lifting is a pipeline of its own: lines handed
//! between two threads in chunks, and the capabilities evidence of the whole base weighed once it
//! is read.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::capabilities::{ScopeOwners, state_edge_in_base};
use super::{BASE, Side, holds_credentials, stated_capabilities, twice};
use crate::error::Result;
use crate::iothub::line::ExportLine;
use crate::key::DeviceKey;
use crate::registry::Registry;
use crate::stamp::Stamp;

/// Base lines handed from the parsing thread to the writing one at a time.
pub(super) const BASE_CHUNK: usize = 1024;

/// The base snapshot, lifted: every base device written once by [`BASE`].
pub(super) struct LiftedBase {
    pub(super) registry: Registry,
    /// Base devices whose capabilities are unknown: their lines left them out, and no scope
    /// names them.
    pub(super) unknown_capabilities: BTreeSet<DeviceKey>,
    /// Base lines holding none of the credentials their authentication type uses.
    pub(super) credentials_unknown: u64,
}

/// What the base's lines have written so far, one line at a time.
#[derive(Default)]
struct BaseWriter {
    registry: Registry,
    owners: ScopeOwners,
    /// Device lines that left their capabilities out, in the order written.
    unstated: Vec<DeviceKey>,
    /// Counted as lines are written, on the writing thread alone (the parsing thread only
    /// parses).
    credentials_unknown: u64,
}

impl BaseWriter {
    /// Writes one base line: its device's creation under [`BASE`].
    fn write(&mut self, line: ExportLine) -> Result<()> {
        if !holds_credentials(line.authentication.as_ref()) {
            self.credentials_unknown += 1;
        }
        let identity = line.described_identity()?;
        self.owners.note(&line);
        if line.key.module.is_none() && stated_capabilities(&line).is_none() {
            self.unstated.push(line.key.clone());
        }
        let key = line.key.clone();
        if self
            .registry
            .create_in_bulk(key, BASE, Stamp::default(), identity)?
        {
            Ok(())
        } else {
            Err(twice(&line.key, Side::Base))
        }
    }

    /// The lifted base, once every line is written.
    fn finish(mut self) -> LiftedBase {
        // A base device whose line left its capabilities out, named by a scope a later line
        // may carry: known as an edge device only once the whole base is read.
        // Left out and named by no scope, they are unknown: read as a plain device's, and
        // each side's value is weighed against that in `settle_unknown_capabilities`.
        let mut unknown_capabilities = BTreeSet::new();
        for key in self.unstated {
            if self.owners.names(&key) {
                state_edge_in_base(&mut self.registry, &key);
            } else {
                unknown_capabilities.insert(key);
            }
        }
        LiftedBase {
            registry: self.registry,
            unknown_capabilities,
            credentials_unknown: self.credentials_unknown,
        }
    }
}

/// Lifts the base: its lines parsed on a helper thread and written on this one.
pub(super) fn lift_base(
    lines: impl Iterator<Item = Result<ExportLine>> + Send,
) -> Result<LiftedBase> {
    // The base is parsed on one thread and written on another, overlapping the two. Each
    // parsed line is freed here once written. Handing the lines back to the parsing thread
    // to be freed was 10% faster under glibc's malloc, where a free from another thread
    // takes the allocating thread's arena lock, but not under mimalloc, the example tool's
    // allocator (2026-11, the tool at 100k devices, medians of interleaved runs in four
    // sets: 2.22, 2.70, 2.04 and 2.12 s handing back, 2.01, 2.19, 2.62 and 2.03 s not; at
    // 1M, 26.7 and 23.4 s against 24.6 to 25.4 s). The simpler way is kept.
    let mut writer = BaseWriter::default();
    // Each helper thread takes its stream from a slot; one the OS refuses to start leaves
    // it there, and this thread reads it instead (`src/spawn.rs`).
    let base_lines = Mutex::new(Some(lines));
    std::thread::scope(|scope| -> Result<()> {
        let (send, receive) = std::sync::mpsc::sync_channel::<Result<Vec<ExportLine>>>(4);
        let base_lines = &base_lines;
        let parsing = crate::spawn::try_spawn(scope, move || {
            send_in_chunks(crate::spawn::take(base_lines).into_iter().flatten(), &send);
        });
        if parsing.is_none() {
            for line in crate::spawn::take(base_lines).into_iter().flatten() {
                writer.write(line?)?;
            }
        }
        for chunk in receive {
            for line in chunk? {
                writer.write(line)?;
            }
        }
        Ok(())
    })?;
    Ok(writer.finish())
}

/// Sends `lines` in chunks of [`BASE_CHUNK`], then the error that ends them, if one does;
/// stops once the receiver is gone.
fn send_in_chunks(
    lines: impl Iterator<Item = Result<ExportLine>>,
    send: &std::sync::mpsc::SyncSender<Result<Vec<ExportLine>>>,
) {
    let mut chunk = Vec::with_capacity(BASE_CHUNK);
    for line in lines {
        let failed = line.is_err();
        match line {
            Ok(line) => chunk.push(line),
            // The lines read before the error first, so that one of them found
            // twice is the error reported, as when this thread is refused and the
            // caller's reads the stream in order.
            Err(error) => {
                if !chunk.is_empty() {
                    let _ = send.send(Ok(std::mem::take(&mut chunk)));
                }
                let _ = send.send(Err(error));
            }
        }
        // The receiver is gone when writing failed: stop reading.
        if failed
            || (chunk.len() == BASE_CHUNK && send.send(Ok(std::mem::take(&mut chunk))).is_err())
        {
            return;
        }
    }
    let _ = send.send(Ok(chunk));
}
