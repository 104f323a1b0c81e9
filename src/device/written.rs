//! [`Written`]: the registers a record is written through after its creation, and
//! [`Registers`], how a record holds them: out of line, shared, and absent until the first
//! write.
//!
//! Apart from `device.rs` because they are what a record's join joins, register by register
//! (and what an absorption, a peer's knowledge or a whole take reads of them), while the record
//! adds its incarnation and its creation.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::StaleSink;
use crate::clock::{CausalContext, ReplicaId, VersionVector};
use crate::credentials::{Authentication, Fingerprint};
use crate::identity::{Capabilities, StatusValue};
use crate::key::DeviceId;
use crate::register::MvRegister;
use crate::register_map::RegisterMap;
use crate::twin::{self, TwinPath};

/// A record's registers, out of line and absent until the first write (2026-11): most
/// records are never written after their creation, and seven empty registers inline made
/// every record about 320 bytes, which a merge read (and copied) across five cache lines to
/// find out that nothing was there. Absent and all-void are one state: a join that leaves
/// every register void lets them go, and reading an absent one reads [`NOTHING_WRITTEN`].
///
/// Shared (2026-11), as slots and creations are: copying a slot to write it copies a pointer
/// here, and a record that had written nothing takes an incoming record's registers whole
/// (see [`DeviceRecord::join`](super::DeviceRecord::join)), which is what an event does to
/// most records it reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Registers(pub(super) Option<Arc<Written>>);

/// The registers of a record that nothing has written.
pub(super) static NOTHING_WRITTEN: Written = Written {
    status: MvRegister::new(),
    authentication: MvRegister::new(),
    retired: MvRegister::new(),
    capabilities: MvRegister::new(),
    parent: MvRegister::new(),
    twin: RegisterMap::new(),
    metadata: RegisterMap::new(),
};

impl Registers {
    /// Lets the registers go when every one is void, so equal records are equal.
    pub(super) fn tidy(&mut self) {
        if self.0.as_ref().is_some_and(|w| w.is_void()) {
            self.0 = None;
        }
    }
}

impl Serialize for Registers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0
            .as_deref()
            .unwrap_or(&NOTHING_WRITTEN)
            .serialize(serializer)
    }
}

impl Registers {
    /// The registers `written` read from text holds (see `device/wire.rs`), as a join leaves
    /// them: no void register in the twin or metadata map, and no registers at all when every
    /// one is void. A void register read from a file would keep a record unequal to the same
    /// record joined, and a merge that kept such a slot as read (a shortcut) would disagree
    /// with the join that drops it (`tests/inputs.rs`, on damaged states).
    ///
    /// Their twin and metadata values are checked as the writer checks them
    /// ([`Written::check_values`]), as a creation's are when read.
    pub(super) fn read(mut written: Written) -> crate::Result<Self> {
        written.check_values()?;
        written.twin.drop_void();
        written.metadata.drop_void();
        let mut registers = Self(Some(Arc::new(written)));
        registers.tidy();
        Ok(registers)
    }
}

/// A twin register that has not seen a write its ancestor's register remembers overwritten
/// ([`Written::twin_writes_unseen_below`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnseenAbove<'a> {
    /// The ancestor's path.
    pub(crate) above: &'a TwinPath,
    /// The path below, whose register holds a value.
    pub(crate) below: &'a TwinPath,
    /// The first replica (in replica order) of a write above that the register below has not
    /// seen.
    pub(crate) replica: ReplicaId,
}

/// Every register a record is written through after its creation; each field's register
/// overwrites that field of the creation once written. Written beside the record's incarnation
/// (flattened), each register left out while void; read by the record's reader
/// (`device/wire.rs`), which names each of them.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Written {
    #[serde(skip_serializing_if = "MvRegister::is_void")]
    pub(crate) status: MvRegister<StatusValue>,
    #[serde(skip_serializing_if = "MvRegister::is_void")]
    pub(crate) authentication: MvRegister<Authentication>,
    /// Credentials rotated out, by the credential write that retired them (same dot: the two
    /// are only ever overwritten together).
    #[serde(skip_serializing_if = "MvRegister::is_void")]
    pub(crate) retired: MvRegister<Box<[Fingerprint]>>,
    #[serde(skip_serializing_if = "MvRegister::is_void")]
    pub(crate) capabilities: MvRegister<Capabilities>,
    #[serde(skip_serializing_if = "MvRegister::is_void")]
    pub(crate) parent: MvRegister<Option<DeviceId>>,
    /// `None` is a removal.
    #[serde(
        skip_serializing_if = "RegisterMap::is_empty",
        serialize_with = "twin::text_keys::serialize"
    )]
    pub(crate) twin: RegisterMap<TwinPath, Option<Value>>,
    /// `None` is a removal.
    #[serde(skip_serializing_if = "RegisterMap::is_empty")]
    pub(crate) metadata: RegisterMap<String, Option<Value>>,
}

/// Every register as a derived `Debug` shows it, but twin and metadata values, each shown as
/// a report shows it: by its fingerprint where it may be a secret (`twin/shown.rs`).
impl fmt::Debug for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a register added here is added to its `Debug` too.
        let Self {
            status,
            authentication,
            retired,
            capabilities,
            parent,
            twin,
            metadata,
        } = self;
        f.debug_struct("Written")
            .field("status", status)
            .field("authentication", authentication)
            .field("retired", retired)
            .field("capabilities", capabilities)
            .field("parent", parent)
            .field("twin", &twin::ShownRegisters(twin))
            .field("metadata", &twin::ShownRegisters(metadata))
            .finish()
    }
}

impl Written {
    /// Refuses a twin or metadata value no writer takes: a twin value that is not a leaf or
    /// that IoT Hub would not store ([`twin::check_written_leaf`]), a metadata value nested
    /// deeper than [`twin::MAX_NESTING`] ([`twin::check_metadata`]). Read from text
    /// unchecked, a value nested deeper would still read (to `serde_json`'s 128 levels,
    /// counted from the text's top) and be written back, but not once wrapped deeper: an
    /// [`Ingest`](crate::Ingest) holding the registry would write text that does not read
    /// back. The errors name a twin path or a metadata key as every
    /// value check does, with what may hold a key shown by its fingerprint.
    fn check_values(&self) -> crate::Result<()> {
        for (path, register) in self.twin.iter() {
            for value in register.entries().iter().filter_map(|e| e.value.as_ref()) {
                twin::check_written_leaf(path, value)?;
            }
        }
        for (name, register) in self.metadata.iter() {
            for value in register.entries().iter().filter_map(|e| e.value.as_ref()) {
                twin::check_metadata(name, value)?;
            }
        }
        Ok(())
    }

    /// Joins every register with its counterpart; see [`MvRegister::join`]. Returns whether
    /// anything changed.
    pub(super) fn join(
        &mut self,
        ctx: &CausalContext,
        other: &Self,
        other_ctx: &CausalContext,
        stale: &mut dyn StaleSink,
    ) -> bool {
        let mut changed = false;
        changed |= self
            .status
            .join(ctx, &other.status, other_ctx, |e| stale.status(e));
        changed |= self
            .authentication
            .join(ctx, &other.authentication, other_ctx, |e| {
                stale.authentication(e)
            });
        changed |= self.retired.join(ctx, &other.retired, other_ctx, |_| {});
        changed |= self
            .capabilities
            .join(ctx, &other.capabilities, other_ctx, |_| {});
        changed |= self.parent.join(ctx, &other.parent, other_ctx, |_| {});
        changed |= self.twin.join(ctx, &other.twin, other_ctx);
        changed |= self.metadata.join(ctx, &other.metadata, other_ctx);
        changed
    }

    /// `s ⊔ t = s` for every register: see [`MvRegister::absorbs`].
    pub(super) fn absorbs(&self, other: &Self, other_ctx: &CausalContext) -> bool {
        self.status.absorbs(&other.status, other_ctx)
            && self
                .authentication
                .absorbs(&other.authentication, other_ctx)
            && self.retired.absorbs(&other.retired, other_ctx)
            && self.capabilities.absorbs(&other.capabilities, other_ctx)
            && self.parent.absorbs(&other.parent, other_ctx)
            && self.twin.absorbs(&other.twin, other_ctx)
            && self.metadata.absorbs(&other.metadata, other_ctx)
    }

    /// Whether a peer whose version vector is `vector` has seen every write held or
    /// remembered here.
    pub(super) fn is_known_to(&self, vector: &VersionVector) -> bool {
        self.status.is_known_to(vector)
            && self.authentication.is_known_to(vector)
            && self.retired.is_known_to(vector)
            && self.capabilities.is_known_to(vector)
            && self.parent.is_known_to(vector)
            && self.twin.values().all(|r| r.is_known_to(vector))
            && self.metadata.values().all(|r| r.is_known_to(vector))
    }

    /// Whether a record that has written nothing, joining these registers under its
    /// context `ctx`, ends up with exactly these: `∅ ⊔ t = t` when `ctx` has seen none of
    /// their writes and they are as a join leaves registers (each normalised, no void
    /// register in a map, not all void). See [`MvRegister::join`]'s void case.
    pub(super) fn is_taken_whole_under(&self, ctx: &CausalContext) -> bool {
        fn fresh<T: Clone>(reg: &MvRegister<T>, ctx: &CausalContext) -> bool {
            reg.is_normalised() && !reg.dots().any(|dot| ctx.contains(dot))
        }
        fn fresh_map<K, T: Clone>(map: &RegisterMap<K, T>, ctx: &CausalContext) -> bool {
            map.values().all(|reg| !reg.is_void() && fresh(reg, ctx))
        }
        !self.is_void()
            && fresh(&self.status, ctx)
            && fresh(&self.authentication, ctx)
            && fresh(&self.retired, ctx)
            && fresh(&self.capabilities, ctx)
            && fresh(&self.parent, ctx)
            && fresh_map(&self.twin, ctx)
            && fresh_map(&self.metadata, ctx)
    }

    /// Every pair of twin registers where the one below holds a value and has not seen a
    /// write the one above remembers overwritten: the write above replaced the subtree (a
    /// removal, or a value in place of the leaves below), the write below was made without
    /// seeing it, and since then a write at or below the path above cleared it, on the side
    /// that made it or on one that saw it. The write below stands there, as it would beside
    /// the write above held (the shape rule), and what the write above removed has come
    /// back: a conflict (`view::json_values`). A register below remembers the writes above it
    /// that it saw when written (`DeviceRecord::set_twin`), so one written after them is not
    /// listed. In path order of the register below, then of the one above.
    ///
    /// One pass in path order, as [`TwinPath::first_nested`] walks: a stack holds the
    /// registers with a past whose paths are text prefixes of the current one, and so every
    /// such ancestor of it.
    pub(crate) fn twin_writes_unseen_below(&self) -> Vec<UnseenAbove<'_>> {
        let mut out = Vec::new();
        let mut above: Vec<(&TwinPath, &MvRegister<Option<Value>>)> = Vec::new();
        for (path, reg) in self.twin.iter() {
            while above
                .last()
                .is_some_and(|(q, _)| q.section != path.section || !path.path.starts_with(&*q.path))
            {
                above.pop();
            }
            if reg.entries().iter().any(|e| e.value.is_some()) {
                for &(q, q_reg) in above.iter().filter(|(q, _)| q.is_ancestor_of(path)) {
                    if let Some(replica) = reg.first_unseen(q_reg.past()) {
                        out.push(UnseenAbove {
                            above: q,
                            below: path,
                            replica,
                        });
                    }
                }
            }
            if !reg.past().is_empty() {
                above.push((path, reg));
            }
        }
        out
    }

    /// Whether every register is void, those in the maps included (which a join drops).
    pub(super) fn is_void(&self) -> bool {
        self.status.is_void()
            && self.authentication.is_void()
            && self.retired.is_void()
            && self.capabilities.is_void()
            && self.parent.is_void()
            && self.twin.values().all(MvRegister::is_void)
            && self.metadata.values().all(MvRegister::is_void)
    }
}
