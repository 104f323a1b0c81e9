//! Removing the temporary files of writes that never finished: those of a process that was
//! killed ([`remove_abandoned_temporaries`], before writing an output again), and this
//! process's own ([`remove_own_temporaries`], for a program stopping on a signal). Both know a
//! temporary by the name [`create_temp`](super::create_temp) gives it, and this process's own
//! by the record it keeps of those it creates ([`Temporary`]).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{canonical, directory_of, file_name, same_file, temp_prefix};
use crate::error::{Error, Result};

/// The temporary files this process is writing, by [`recorded_name`]: each from before it is
/// created until after it is renamed into place or removed.
///
/// A temporary's name holds its writer's process id, but an id names a process only while it
/// runs: a container whose entrypoint is the tool gives it PID 1 on every run, so the file a
/// killed run left bears this process's id too. Taken as this process's own by its id, it was
/// never removed as abandoned, and a stop removed it, an input of the run included (found in
/// review). Only what this process created is its own.
///
/// Locked only to insert, remove or look up one name, never across I/O or a caller's code: a
/// stop's thread ([`remove_own_temporaries`]) that comes while a write holds it waits that
/// long, and no thread holding it waits for another.
static WRITING: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// [`WRITING`], locked. Poisoned only by a panic while it is held, which inserting, removing or
/// finding a path cannot raise: its set is whole either way.
fn writing() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    WRITING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How [`WRITING`] records `temp`: its canonical path, so that another spelling of the output's
/// directory (`out/../out`, a symbolic link to it) finds it; as given when that cannot be
/// resolved, which the same path then finds alike.
fn recorded_name(temp: &Path) -> PathBuf {
    canonical(temp).unwrap_or_else(|| temp.to_owned())
}

/// Whether this process is writing `temp`: it created it and has neither put it in place nor
/// removed it.
fn is_being_written(temp: &Path) -> bool {
    let name = recorded_name(temp);
    writing().contains(&name)
}

/// A temporary file this process writes: its path, recorded in [`WRITING`] until dropped.
pub(super) struct Temporary {
    path: PathBuf,
    recorded: PathBuf,
}

impl Temporary {
    /// Records `path` as this process's temporary: before the file is created, so that it is
    /// never there unrecorded. Dropped when the file could not be created, or after it is
    /// renamed or removed.
    pub(super) fn claim(path: PathBuf) -> Self {
        let recorded = recorded_name(&path);
        writing().insert(recorded.clone());
        Self { path, recorded }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        writing().remove(&self.recorded);
    }
}

/// The writer's process id, if `file` is named as [`create_temp`] names a temporary file of
/// the output whose temporaries begin with `prefix`: the rest is exactly `{pid}-{n}`, both in
/// decimal as `create_temp` writes them (no sign, no leading zero, nothing after).
fn temp_writer(file: &OsStr, prefix: &OsStr) -> Option<u32> {
    let rest = file
        .as_encoded_bytes()
        .strip_prefix(prefix.as_encoded_bytes())?;
    let (pid, n) = std::str::from_utf8(rest).ok()?.split_once('-')?;
    let written_so = |text: &str, value: &dyn ToString| value.to_string() == text;
    let pid_value: u32 = pid.parse().ok()?;
    let n_value: u64 = n.parse().ok()?;
    (written_so(pid, &pid_value) && written_so(n, &n_value)).then_some(pid_value)
}

/// Removes the temporary files that writes of `path`
/// ([`write_atomically`](crate::iothub::write_atomically),
/// [`create_atomically`](crate::iothub::create_atomically)) left in its directory when their
/// process was killed, and returns their paths, sorted. One that is the same file as one of
/// `inputs` (by canonical path, or on Unix by device and inode, as
/// [`refuse_inputs`](crate::iothub::refuse_inputs) compares them) is kept: a run about to read
/// it, to salvage what a killed run wrote, say, must not lose it first (found in review).
///
/// A write removes its temporary file on any error, or a panic in its `write`, but nothing
/// runs in a process killed by `SIGKILL` (the OOM killer, say) or by a signal it does not
/// handle: the partial file `.{name}.tmp-{pid}-{n}` stays beside `path` (with symmetric keys
/// in clear, for a merged export) until something removes it. Call this before writing `path`
/// again; the example tool does, for each of its outputs.
///
/// Removed is a regular file (not a directory, nor a symbolic link) named exactly so, `pid`
/// and `n` in decimal, whose process is gone: on Linux, when `/proc/{pid}` does not exist, or
/// when `pid` is this process's id and this process did not create the file (a container's
/// entrypoint is PID 1 on every run, so a killed run's file bears the id of the run after it).
/// Kept are the temporaries this process is writing, those of any other process still running
/// (a process id reused since keeps the file until that process ends too), and everything
/// when `/proc` cannot tell: on another platform, or when `/proc/self` is not this process (a
/// `/proc` of another PID namespace). The list is then empty. Only processes of this host and PID
/// namespace are seen: a temporary that a writer elsewhere (another container sharing the
/// directory, another host on a network file system) is writing reads as abandoned and is
/// removed; that write then fails, putting no partial file in place.
///
/// # Errors
///
/// [`Error::Io`] with `path` if it names no file (`..`), with its directory if listing the
/// directory fails (a directory that does not exist holds nothing to remove: no error), or
/// with the temporary file if removing it fails (those removed before it stay removed).
///
/// # Examples
///
/// ```
/// use failback::{Error, iothub::remove_abandoned_temporaries};
///
/// let dir = std::env::temp_dir().join(format!("failback-doc-abandoned-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
/// let out = dir.join("merged.jsonl");
/// // What a run killed while writing `out` leaves: no process has this id (Linux gives at
/// // most 4,194,304).
/// let left = dir.join(".merged.jsonl.tmp-4000000000-0");
/// std::fs::write(&left, "partial").map_err(|e| Error::Io { path: left.clone(), source: e })?;
///
/// let removed = remove_abandoned_temporaries(&out, &[])?;
/// if std::path::Path::new("/proc/self").exists() {
///     assert_eq!(removed, [left]);
/// } else {
///     assert!(removed.is_empty()); // no /proc to tell that its process is gone
/// }
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), failback::Error>(())
/// ```
pub fn remove_abandoned_temporaries(path: &Path, inputs: &[&Path]) -> Result<Vec<PathBuf>> {
    let prefix = output_prefix(path)?;
    if !proc_is_this_namespace() {
        return Ok(Vec::new());
    }
    let this_process = std::process::id();
    let abandoned = |pid, temp: &Path| {
        let gone = if pid == this_process {
            !is_being_written(temp)
        } else {
            !is_running(pid)
        };
        gone && !inputs.iter().any(|input| same_file(temp, input))
    };
    remove_temporaries(path, &prefix, abandoned)
}

/// Removes the temporary files this process is writing for `path`
/// ([`write_atomically`](crate::iothub::write_atomically),
/// [`create_atomically`](crate::iothub::create_atomically)) and returns their paths, sorted:
/// for a program stopping on a signal, whose writes would leave them otherwise.
///
/// Safe code cannot run in a signal handler, but a program can wait for SIGINT and SIGTERM on
/// a thread of its own (the `ctrlc` crate does so) and there call this for each output it may
/// be writing, then exit at once; the example tool does. A write whose temporary file is
/// removed fails when it would put the file in place, so nothing partial reaches `path`. A
/// write begun after the removal is not seen: exit at once. Removed is a regular file named
/// exactly `.{name}.tmp-{pid}-{n}` with this process's id that this process created and is
/// writing, on any platform; nothing else. A file of that name it did not create (a killed
/// run's that had the same id, as a container's entrypoint has, given to this run as an input
/// to salvage it, say) is kept: no write of this process stands behind it. Nothing runs on
/// `SIGKILL`: [`remove_abandoned_temporaries`] removes what it leaves.
///
/// Call it from a thread of its own, not from a signal handler proper: it waits for the record
/// of this process's temporaries, which a write holds for a moment while it creates or removes
/// one, and a handler interrupting that write on the same thread would wait for ever.
///
/// # Errors
///
/// As [`remove_abandoned_temporaries`]: [`Error::Io`] with `path`, its directory or the
/// temporary file.
///
/// # Examples
///
/// A stop while `merged.jsonl` is written: here the write itself does what the signal's
/// thread would.
///
/// ```
/// use std::io::Write;
/// use failback::{Error, iothub::{remove_own_temporaries, write_atomically}};
///
/// let dir = std::env::temp_dir().join(format!("failback-doc-own-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
/// let out = dir.join("merged.jsonl");
/// let written = write_atomically(&out, &[], |w| {
///     w.write_all(b"half of it")?;
///     let removed = remove_own_temporaries(&out).map_err(std::io::Error::other)?;
///     assert_eq!(removed.len(), 1); // .merged.jsonl.tmp-{pid}-{n}
///     w.write_all(b" and the rest")
/// });
/// assert!(written.is_err()); // the temporary file gone, nothing was put in place
/// assert!(!out.exists());
/// let left = std::fs::read_dir(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
/// assert_eq!(left.count(), 0);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), failback::Error>(())
/// ```
pub fn remove_own_temporaries(path: &Path) -> Result<Vec<PathBuf>> {
    let prefix = output_prefix(path)?;
    let this_process = std::process::id();
    // A process inherits its parent's memory through `fork`, but not its id: the id tells the
    // parent's temporaries, which the child does not write.
    remove_temporaries(path, &prefix, |pid, temp| {
        pid == this_process && is_being_written(temp)
    })
}

/// The prefix of `path`'s temporary files, or an [`Error::Io`] naming `path` if it names no
/// file.
fn output_prefix(path: &Path) -> Result<OsString> {
    let name = file_name(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(temp_prefix(name))
}

/// Removes, sorted, the regular files beside `path` named as its temporaries (beginning with
/// `prefix`) that `chosen` accepts, given the writer's process id and the file, and returns
/// them.
fn remove_temporaries(
    path: &Path,
    prefix: &OsStr,
    chosen: impl Fn(u32, &Path) -> bool,
) -> Result<Vec<PathBuf>> {
    let directory = directory_of(path);
    let listing_error = |source| Error::Io {
        path: directory.clone(),
        source,
    };
    let entries = match fs::read_dir(&directory) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(listing_error(err)),
    };
    let mut removable = Vec::new();
    for entry in entries {
        let entry = entry.map_err(listing_error)?;
        let Some(pid) = temp_writer(&entry.file_name(), prefix) else {
            continue;
        };
        // `file_type` does not follow a link: the writers make regular files only.
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        let temp = entry.path();
        if is_file && chosen(pid, &temp) {
            removable.push(temp);
        }
    }
    // Sorted, so that the same directory gives the same list, and the same first error.
    removable.sort();
    let mut removed = Vec::with_capacity(removable.len());
    for temp in removable {
        match fs::remove_file(&temp) {
            Ok(()) => removed.push(temp),
            // Removed meanwhile, by another run cleaning up: nothing left to do.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: temp, source }),
        }
    }
    Ok(removed)
}

/// Whether `/proc` lists the processes of this process's PID namespace: `/proc/self` is then
/// a link to this process's id. Otherwise (no `/proc`, or the host's mounted in a container)
/// a missing `/proc/{pid}` says nothing of process `pid`.
fn proc_is_this_namespace() -> bool {
    fs::read_link("/proc/self")
        .is_ok_and(|link| link.as_os_str() == std::process::id().to_string().as_str())
}

/// Whether process `pid` may be running: only a `/proc/{pid}` that is clearly not there says
/// it is gone, so that a doubt (a permission error, say) keeps its file.
fn is_running(pid: u32) -> bool {
    !matches!(
        fs::symlink_metadata(Path::new("/proc").join(pid.to_string())),
        Err(err) if err.kind() == io::ErrorKind::NotFound
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::TempDir;
    use super::super::{create_atomically, write_atomically};
    use super::*;

    /// `pid_max`: every process id is below it, so no process has it.
    #[cfg(target_os = "linux")]
    fn pid_never_used() -> u32 {
        let max = fs::read_to_string("/proc/sys/kernel/pid_max").expect("pid_max");
        max.trim().parse().expect("a number")
    }

    /// Only a regular file named exactly as a writer names its temporary, of this output, by a
    /// process that is gone, is removed (this process's id on a file it did not create names a
    /// process gone: see `a_killed_runs_temporary_bearing_this_process_id_is_abandoned`): one of
    /// a live process (pid 1), or that merely looks alike, is kept.
    #[cfg(target_os = "linux")]
    #[test]
    fn removes_the_temporaries_of_gone_processes_only() {
        let dir = TempDir::new("abandoned");
        let out = dir.0.join("merged.jsonl");
        fs::write(&out, "complete").expect("seed");
        let gone = pid_never_used();
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        child.wait().expect("true ends");
        let exited = child.id();
        let own = std::process::id();
        let abandoned = [
            format!(".merged.jsonl.tmp-{gone}-0"),
            format!(".merged.jsonl.tmp-{exited}-17"),
            format!(".merged.jsonl.tmp-{own}-0"),
        ];
        let kept = [
            ".merged.jsonl.tmp-1-0".to_owned(),
            ".merged.jsonl.tmp-x".to_owned(),
            format!(".merged.jsonl.tmp-{gone}"),
            format!(".merged.jsonl.tmp-{gone}-"),
            format!(".merged.jsonl.tmp--{gone}-0"),
            format!(".merged.jsonl.tmp-{gone}-0-1"),
            format!(".merged.jsonl.tmp-{gone}-x"),
            format!(".merged.jsonl.tmp-+{gone}-0"),
            format!(".merged.jsonl.tmp-0{gone}-0"),
            format!(".merged.jsonl.tmp-{gone}-00"),
            format!(".merged.jsonl.tmp-{gone}-0.bak"),
            ".merged.jsonl.tmp-99999999999-0".to_owned(),
            format!("merged.jsonl.tmp-{gone}-0"),
            format!(".merged.jsonl.tmp-{gone}-0~"),
            format!(".import.jsonl.tmp-{gone}-0"),
            format!("..merged.jsonl.tmp-{gone}-0"),
            format!(".merged.json.tmp-{gone}-0"),
        ];
        for name in abandoned.iter().chain(&kept) {
            fs::write(dir.0.join(name), "partial").expect("seed");
        }
        // A directory and a symbolic link with a temporary's name are no writer's.
        let not_files = [
            format!(".merged.jsonl.tmp-{gone}-1"),
            format!(".merged.jsonl.tmp-{gone}-2"),
        ];
        fs::create_dir(dir.0.join(&not_files[0])).expect("a directory");
        std::os::unix::fs::symlink(&out, dir.0.join(&not_files[1])).expect("a link");

        let removed = remove_abandoned_temporaries(&out, &[]).expect("removes");
        let mut expected: Vec<PathBuf> = abandoned.iter().map(|n| dir.0.join(n)).collect();
        expected.sort();
        assert_eq!(removed, expected);
        let mut left: Vec<String> = kept.iter().chain(&not_files).cloned().collect();
        left.push("merged.jsonl".to_owned());
        left.sort();
        assert_eq!(dir.entries(), left);
        assert_eq!(fs::read_to_string(&out).expect("read"), "complete");
        // Nothing is left to remove.
        let again = remove_abandoned_temporaries(&out, &[]).expect("removes");
        assert!(again.is_empty(), "{again:?}");
    }

    /// An abandoned temporary that is one of the inputs, by its own name or another, is kept:
    /// a run given it to read must not remove it first (found in review).
    #[cfg(target_os = "linux")]
    #[test]
    fn an_abandoned_temporary_given_as_an_input_is_kept() {
        let dir = TempDir::new("input");
        let out = dir.0.join("merged.jsonl");
        let gone = pid_never_used();
        let [named, linked, other] =
            [0, 1, 2].map(|n| dir.0.join(format!(".merged.jsonl.tmp-{gone}-{n}")));
        for temp in [&named, &linked, &other] {
            fs::write(temp, "partial").expect("seed");
        }
        let link = dir.0.join("salvaged.jsonl");
        fs::hard_link(&linked, &link).expect("a hard link");
        let removed = remove_abandoned_temporaries(&out, &[&named, &link]).expect("removes");
        assert_eq!(removed, [other]);
        assert!(named.exists() && linked.exists());
    }

    /// What a run killed with SIGKILL left, that run having had this process's id (a
    /// container's entrypoint is PID 1 on every run): a partial output, keys in clear, that
    /// this process never created.
    fn left_by_a_killed_run_with_this_process_id(dir: &TempDir) -> PathBuf {
        let left = dir
            .0
            .join(format!(".merged.jsonl.tmp-{}-0", std::process::id()));
        fs::write(
            &left,
            r#"{"id":"d","authentication":{"symmetricKey":{"primaryKey":"#,
        )
        .expect("seed");
        left
    }

    /// The id in a temporary's name is no proof that this process writes it: one it did not
    /// create is a killed run's, removed as abandoned, unless it is an input (found in review:
    /// kept for ever, as this process's own, where every run has the same id).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_killed_runs_temporary_bearing_this_process_id_is_abandoned() {
        let dir = TempDir::new("same-id");
        let out = dir.0.join("merged.jsonl");
        let left = left_by_a_killed_run_with_this_process_id(&dir);
        assert!(
            remove_abandoned_temporaries(&out, &[&left])
                .expect("removes")
                .is_empty()
        );
        assert!(left.exists(), "an input is kept");
        let removed = remove_abandoned_temporaries(&out, &[]).expect("removes");
        assert_eq!(removed, [left]);
        assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    }

    /// A stop removes the temporaries this process is writing, and nothing it did not create
    /// though its name bear this process's id: a killed run's, given to this run as an input to
    /// salvage it (found in review: removed, the input lost).
    #[test]
    fn a_stop_never_removes_a_temporary_this_process_did_not_create() {
        let dir = TempDir::new("stop-same-id");
        let out = dir.0.join("merged.jsonl");
        let left = left_by_a_killed_run_with_this_process_id(&dir);
        let written = write_atomically(&out, &[&left], |w| {
            w.write_all(b"half")?;
            let removed = remove_own_temporaries(&out).map_err(io::Error::other)?;
            assert_eq!(removed.len(), 1, "{removed:?}");
            assert_ne!(removed[0], left);
            Ok(())
        });
        assert!(written.is_err(), "{written:?}");
        assert!(left.exists(), "the input was removed");
        assert!(remove_own_temporaries(&out).expect("removes").is_empty());
        assert_eq!(
            dir.entries(),
            [left.file_name().expect("a name").to_string_lossy()]
        );
    }

    /// A temporary this process is writing is kept, and the write completes: asked with the
    /// output's path spelt otherwise too (this process knows its temporaries by canonical path).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_in_progress_keeps_its_temporary() {
        let dir = TempDir::new("in-progress");
        let out = dir.0.join("merged.jsonl");
        let dotted = dir.0.join(".").join("merged.jsonl");
        write_atomically(&out, &[], |w| {
            w.write_all(b"first half, ")?;
            for spelt in [&out, &dotted] {
                let removed = remove_abandoned_temporaries(spelt, &[]).map_err(io::Error::other)?;
                assert!(removed.is_empty(), "{removed:?}");
            }
            w.write_all(b"second half")
        })
        .expect("writes");
        assert_eq!(
            fs::read_to_string(&out).expect("read"),
            "first half, second half"
        );
        assert_eq!(dir.entries(), ["merged.jsonl"]);
    }

    /// What a program stopping on a signal does: the writes in progress lose their temporary
    /// files and fail, putting nothing in place; another process's temporary is kept.
    #[test]
    fn removing_this_process_temporaries_fails_its_writes_in_progress() {
        let dir = TempDir::new("own");
        let replaced = dir.0.join("merged.jsonl");
        fs::write(&replaced, "earlier").expect("seed");
        let created = dir.0.join("base.jsonl");
        let other = format!(".merged.jsonl.tmp-{}-0", u32::MAX);
        fs::write(dir.0.join(&other), "another's").expect("seed");
        let stop = |out: &Path| {
            let removed = remove_own_temporaries(out).map_err(io::Error::other)?;
            assert_eq!(removed.len(), 1, "{removed:?}");
            let name = removed[0].file_name().expect("a name").to_string_lossy();
            let own = format!(
                ".{}.tmp-{}-",
                out.file_name().expect("a name").to_string_lossy(),
                std::process::id()
            );
            assert!(name.starts_with(&own), "{name}");
            Ok(())
        };
        let written = write_atomically(&replaced, &[], |w| {
            w.write_all(b"half")?;
            stop(&replaced)
        });
        assert!(
            matches!(&written, Err(Error::Io { path, .. }) if path == &replaced),
            "{written:?}"
        );
        let written = create_atomically(&created, |w| {
            w.write_all(b"half")?;
            stop(&created)
        });
        assert!(
            matches!(&written, Err(Error::Io { path, .. }) if path == &created),
            "{written:?}"
        );
        assert_eq!(fs::read_to_string(&replaced).expect("read"), "earlier");
        assert_eq!(dir.entries(), [other.as_str(), "merged.jsonl"]);
    }

    #[test]
    fn a_missing_directory_holds_no_temporary() {
        let dir = TempDir::new("no-directory");
        let out = dir.0.join("not-yet").join("merged.jsonl");
        assert!(
            remove_abandoned_temporaries(&out, &[])
                .expect("nothing to do")
                .is_empty()
        );
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error_naming_it() {
        let dir = TempDir::new("no-name");
        let out = dir.0.join("..");
        let err = remove_abandoned_temporaries(&out, &[]).expect_err("no file name");
        assert!(
            matches!(&err, Error::Io { path, source } if path == &out && source.kind() == io::ErrorKind::InvalidInput),
            "{err}"
        );
    }
}
