//! Writing an output file so that it is either complete or absent, and never an input.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

mod temporaries;

use temporaries::Temporary;
pub use temporaries::{remove_abandoned_temporaries, remove_own_temporaries};

/// Writes `path` through a temporary file in the same directory, renamed over `path` once it
/// is complete and on disk; refuses when `path` is one of `inputs`.
///
/// `write` receives a buffered writer and returns a [`std::io::Result`] (the signature's
/// `Result<()>`), so that the writer's own errors pass with `?`; `write_atomically` returns
/// `Result<(), Error>`, spelt so to tell the two apart, with this crate's [`Error`], which
/// names the file. The temporary file (`.{name}.tmp-{pid}-{n}`) is flushed
/// and fsynced, renamed over `path` (atomic within one file system, which is why it lives in
/// the same directory), and the directory is fsynced so the rename survives a crash. On any
/// error, or a panic in `write`, the temporary file is removed and `path` is left as it was.
/// Nothing can run in a process killed by `SIGKILL` (or by a signal it does not handle): its
/// temporary file stays, partial, until [`remove_abandoned_temporaries`] removes it, which is
/// for the next writer of `path` to call first; a program handling SIGINT and SIGTERM removes
/// its own with [`remove_own_temporaries`].
/// On Unix the file is created readable and writable by its owner only, because merged exports
/// hold symmetric keys in clear. A symbolic link at `path` is replaced, not followed.
///
/// # Errors
///
/// [`Error::OutputIsInput`] if `path` names the same file as one of `inputs` (same canonical
/// path, or same file by metadata, which catches hard links); [`Error::Io`] with `path` if
/// creating, writing (including an error returned by `write`), syncing or renaming fails, or
/// with the directory if syncing the directory fails (the output is then in place but its
/// durability unknown). An error of this crate that `write` returns wrapped in an
/// [`io::Error`] (`io::Error::other(error)`, say an [`Error::Io`] naming `path` from a sink of
/// [`Plan::stream_json`](crate::iothub::Plan::stream_json)) is returned as it is: it says
/// what failed already.
///
/// # Examples
///
/// Writing a plan's `import.jsonl`, one [`ExportLine::to_json`](crate::iothub::ExportLine::to_json)
/// a line, as the example tool does:
///
/// ```
/// use std::io::Write;
/// use failback::{Error, iothub::{read_export_from, read_import, write_atomically, Failback, Plan, Side}};
///
/// let export = |text: &str| read_export_from("devices.txt".as_ref(), text.as_bytes()).map(|e| e.lines);
/// let both = export(r#"{"id":"d","twinETag":"T","status":"enabled","tags":{"site":"oslo"}}"#)?;
/// let secondary = export(r#"{"id":"d","status":"enabled","tags":{"site":"bergen"}}"#)?;
/// let plan = Plan::new(&Failback::lift(&both, &both, &secondary, Side::Secondary)?);
///
/// let dir = std::env::temp_dir().join(format!("failback-doc-atomic-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
/// let out = dir.join("import.jsonl");
/// write_atomically(&out, &[], |w| {
///     for line in &plan.import {
///         writeln!(w, "{}", line.to_json())?;
///     }
///     Ok(())
/// })?;
/// assert_eq!(read_import(&out)?.lines, plan.import); // one updateTwinIfMatchETag line
///
/// // Never over an input: a failed run must leave the inputs to run again.
/// let refused = write_atomically(&out, &[&out], |w| w.write_all(b"lost"));
/// assert!(matches!(refused, Err(Error::OutputIsInput { .. })));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), failback::Error>(())
/// ```
pub fn write_atomically(
    path: &Path,
    inputs: &[&Path],
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::result::Result<(), Error> {
    refuse_inputs(path, inputs)?;
    write_then_publish(path, write, Publish::Replace)
}

/// Writes `path` as [`write_atomically`] does, but only as a new file: when the complete file
/// is put in place, anything then at `path` (a file, a directory, a symbolic link, even one
/// pointing nowhere) is left as it is and the write fails. A check that the name is free,
/// made before a long write, cannot promise this: a file created at `path` meanwhile would be
/// replaced.
///
/// `write` returns a [`std::io::Result`] (the signature's `Result<()>`) and
/// `create_atomically` a `Result<(), Error>` with this crate's [`Error`], as
/// [`write_atomically`] does.
///
/// The file is put in place with a hard link from the temporary file, which fails when the
/// name is taken, then the temporary name is removed. On a file system without hard links
/// the write fails and leaves nothing behind.
///
/// # Errors
///
/// [`Error::Io`] with `path`: of kind [`io::ErrorKind::AlreadyExists`] when something is at
/// `path`, else as [`write_atomically`] says (with no [`Error::OutputIsInput`]: an input is
/// never replaced, being there).
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use failback::{Error, iothub::create_atomically};
///
/// let dir = std::env::temp_dir().join(format!("failback-doc-create-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
/// let out = dir.join("base.jsonl");
/// # std::fs::remove_file(&out).ok();
/// create_atomically(&out, |w| w.write_all(b"{}\n"))?;
/// let again = create_atomically(&out, |w| w.write_all(b"lost"));
/// assert!(matches!(again, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists));
/// assert_eq!(std::fs::read_to_string(&out).ok().as_deref(), Some("{}\n"));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), failback::Error>(())
/// ```
pub fn create_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::result::Result<(), Error> {
    write_then_publish(path, write, Publish::New)
}

/// How a complete temporary file takes its name.
enum Publish {
    /// Renamed over whatever is there.
    Replace,
    /// Linked under the name, which must be free, and its temporary name removed.
    New,
}

/// The write both [`write_atomically`] and [`create_atomically`] make, `publish` telling how
/// the complete file takes its name.
fn write_then_publish(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    publish: Publish,
) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let (temp, file) = create_temp(path).map_err(io_error)?;
    let mut guard = RemoveOnDrop(Some(temp));
    let mut out = BufWriter::new(file);
    write(&mut out).map_err(|err| own_error(err).unwrap_or_else(io_error))?;
    let file = out.into_inner().map_err(|err| io_error(err.into_error()))?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    if let Some(temp) = guard.0.as_ref().map(Temporary::path) {
        match publish {
            Publish::Replace => {
                fs::rename(temp, path).map_err(io_error)?;
                // Renamed: there is no temporary file left to remove, and this process
                // writes it no longer.
                guard.0 = None;
            }
            // `link` never follows or replaces what is at its new name; the guard then
            // removes the temporary name, the file staying under `path`.
            Publish::New => fs::hard_link(temp, path).map_err(io_error)?,
        }
    }
    drop(guard);
    sync_directory(&directory_of(path))
}

/// The error of this crate that `err` wraps, if it wraps one, else `err`. Wrapped again in an
/// [`Error::Io`] naming the output, an error already naming it would show it twice (a full disk
/// would print `…/merged.jsonl: …/merged.jsonl: No space left on device`).
fn own_error(err: io::Error) -> std::result::Result<Error, io::Error> {
    if !err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Err(err);
    }
    let kind = err.kind();
    match err.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(own)) => Ok(*own),
        // Checked above: neither happens.
        Some(Err(other)) => Err(io::Error::new(kind, other)),
        None => Err(io::Error::from(kind)),
    }
}

/// Removes the temporary file unless disarmed, so neither an error nor a panic in the caller's
/// `write` leaves a partial file behind. The file is removed before the [`Temporary`] is
/// dropped: it is never there without this process counting it as its own.
struct RemoveOnDrop(Option<Temporary>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(temp) = self.0.take() {
            // Best effort: the original error is the one worth reporting.
            let _ = fs::remove_file(temp.path());
        }
    }
}

fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Creates a fresh temporary file beside `path`. `create_new` never reuses an existing file,
/// so two writers in one process (or a stale file from a crash) get different names. The
/// name is counted as this process's own ([`Temporary`]) before the file is created, so that
/// no [`remove_abandoned_temporaries`] of another thread finds it there unclaimed.
fn create_temp(path: &Path) -> io::Result<(Temporary, File)> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let prefix = temp_prefix(file_name(path)?);
    let directory = directory_of(path);
    loop {
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = prefix.clone();
        temp_name.push(format!("{}-{n}", std::process::id()));
        let temp = Temporary::claim(directory.join(temp_name));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(temp.path()) {
            Ok(file) => return Ok((temp, file)),
            // Not this process's (the claim is dropped): a killed run's, maybe one that had
            // this process's id.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
}

/// The name of the file `path` names, which an output must have.
fn file_name(path: &Path) -> io::Result<&OsStr> {
    path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "output path has no file name; name a file, not a directory",
        )
    })
}

/// `.{name}.tmp-`: how every temporary file of the output `name` begins, its writer's process
/// id and a sequence number following (`.merged.jsonl.tmp-4242-0`). Hidden, so that a listing
/// of the outputs does not show it; the process id tells [`remove_abandoned_temporaries`]
/// whose it is, when it is not this process's (an id is reused: a container's entrypoint is
/// PID 1 on every run, so this process's id names a file it did not create as well, which
/// only [`Temporary`] tells apart).
fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".tmp-");
    prefix
}

/// Makes a rename durable: on Unix a rename is recorded in the directory, which has to be
/// synced itself. Other platforms cannot open a directory for syncing.
fn sync_directory(directory: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(directory)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| Error::Io {
                path: directory.to_owned(),
                source,
            })?;
    }
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

/// Whether `output` and `input` name one file: by canonical path (which resolves `..` and
/// symbolic links, and works when `output` does not exist yet) or, when both exist, by device
/// and inode (which also catches hard links).
fn same_file(output: &Path, input: &Path) -> bool {
    if let (Some(a), Some(b)) = (canonical(output), canonical(input)) {
        if a == b {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (fs::metadata(output), fs::metadata(input)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

/// Refuses `output` when it names the same file as one of `inputs` (by canonical path, or on
/// Unix by device and inode): [`write_atomically`] checks this itself, and a tool can check its
/// outputs with it before doing any work.
///
/// # Errors
///
/// [`Error::OutputIsInput`] naming `output`.
///
/// # Examples
///
/// ```
/// use failback::{Error, iothub::refuse_inputs};
/// let input = std::env::temp_dir().join(format!("failback-doc-refuse-{}.jsonl", std::process::id()));
/// std::fs::write(&input, "").map_err(|e| Error::Io { path: input.clone(), source: e })?;
/// assert!(matches!(refuse_inputs(&input, &[&input]), Err(Error::OutputIsInput { .. })));
/// assert!(refuse_inputs(&input.with_extension("out"), &[&input]).is_ok());
/// # std::fs::remove_file(&input).ok();
/// # Ok::<(), failback::Error>(())
/// ```
pub fn refuse_inputs(output: &Path, inputs: &[&Path]) -> Result<()> {
    if inputs.iter().any(|input| same_file(output, input)) {
        return Err(Error::OutputIsInput {
            path: output.to_owned(),
        });
    }
    Ok(())
}

/// The canonical form of `path`, or of its directory joined with its name when the file itself
/// does not exist; `None` when neither can be resolved (then it names no existing input).
fn canonical(path: &Path) -> Option<PathBuf> {
    if let Ok(path) = fs::canonicalize(path) {
        return Some(path);
    }
    let name = path.file_name()?;
    fs::canonicalize(directory_of(path))
        .ok()
        .map(|dir| dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) struct TempDir(pub(super) PathBuf);

    impl TempDir {
        pub(super) fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("failback-atomic-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        pub(super) fn entries(&self) -> Vec<String> {
            let mut names: Vec<_> = fs::read_dir(&self.0)
                .expect("read dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn replaces_the_target_and_leaves_no_temporary_file() {
        let dir = TempDir::new("replace");
        let out = dir.0.join("merged.jsonl");
        fs::write(&out, "old").expect("seed");
        write_atomically(&out, &[], |w| w.write_all(b"new")).expect("writes");
        assert_eq!(fs::read_to_string(&out).expect("read"), "new");
        assert_eq!(dir.entries(), ["merged.jsonl"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&out).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A name taken while the file was written is kept as it is, the file not put in place,
    /// no temporary file left: whatever took it, a file, a directory or a dangling link.
    #[test]
    fn a_new_file_never_replaces_what_took_its_name_meanwhile() {
        let dir = TempDir::new("create");
        let out = dir.0.join("base.jsonl");
        create_atomically(&out, |w| w.write_all(b"first")).expect("a free name");
        assert_eq!(fs::read_to_string(&out).expect("read"), "first");
        assert_eq!(dir.entries(), ["base.jsonl"]);
        fs::remove_file(&out).expect("remove");
        let taken = |how: &str| match how {
            "file" => fs::write(&out, "precious"),
            "directory" => fs::create_dir(&out),
            #[cfg(unix)]
            _ => std::os::unix::fs::symlink(dir.0.join("nowhere"), &out),
            #[cfg(not(unix))]
            _ => fs::write(&out, "precious"),
        };
        for how in ["file", "directory", "link"] {
            // Taken during the write, after any check a caller made before it.
            let created = create_atomically(&out, |w| {
                taken(how)?;
                w.write_all(b"generated")
            });
            assert!(
                matches!(&created, Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists),
                "{how}: {created:?}"
            );
            assert_eq!(dir.entries(), ["base.jsonl"], "{how}");
            if how == "file" {
                assert_eq!(fs::read_to_string(&out).expect("read"), "precious");
            }
            match fs::symlink_metadata(&out).map(|m| m.is_dir()) {
                Ok(true) => fs::remove_dir(&out).expect("remove"),
                _ => fs::remove_file(&out).expect("remove"),
            }
        }
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = TempDir::new("fail");
        let out = dir.0.join("merged.jsonl");
        fs::write(&out, "old").expect("seed");
        let err = write_atomically(&out, &[], |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        })
        .expect_err("the write fails");
        assert!(
            matches!(&err, Error::Io { path, .. } if path == &out),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&out).expect("read"), "old");
        assert_eq!(dir.entries(), ["merged.jsonl"]);
    }

    #[test]
    fn an_error_of_this_crate_from_the_write_names_its_file_once() {
        // What the tool does: the plan's sink names the output in an `Error::Io`, which the
        // write hands back as an `io::Error`.
        let dir = TempDir::new("own-error");
        let out = dir.0.join("merged.jsonl");
        let err = write_atomically(&out, &[], |w| {
            w.write_all(b"partial")?;
            let full = io::Error::from(io::ErrorKind::StorageFull);
            Err(io::Error::other(Error::Io {
                path: out.clone(),
                source: full,
            }))
        })
        .expect_err("the write fails");
        assert!(
            matches!(&err, Error::Io { path, source } if path == &out && source.kind() == io::ErrorKind::StorageFull),
            "{err}"
        );
        let text = err.to_string();
        assert_eq!(text.matches("merged.jsonl").count(), 1, "{text}");
        assert!(dir.entries().is_empty(), "{:?}", dir.entries());
        // Any other error is still named with the output.
        let err = write_atomically(&out, &[], |_| Err(io::Error::other("disk full")))
            .expect_err("the write fails");
        assert_eq!(err.to_string(), format!("{}: disk full", out.display()));
    }

    #[test]
    fn a_panicking_write_leaves_nothing_behind() {
        let dir = TempDir::new("panic");
        let out = dir.0.join("new.jsonl");
        let result = std::panic::catch_unwind(|| {
            let _ = write_atomically(&out, &[], |_| panic!("writer bug"));
        });
        assert!(result.is_err());
        assert!(dir.entries().is_empty());
    }

    #[test]
    fn a_failed_rename_removes_the_temporary() {
        let dir = TempDir::new("rename");
        let out = dir.0.join("taken");
        fs::create_dir(&out).expect("dir in the way");
        fs::write(out.join("x"), "").expect("non-empty dir");
        assert!(matches!(
            write_atomically(&out, &[], |w| w.write_all(b"x")),
            Err(Error::Io { .. })
        ));
        assert_eq!(dir.entries(), ["taken"]);
    }

    #[test]
    fn refuses_an_input_by_any_name() {
        let dir = TempDir::new("input");
        let input = dir.0.join("devices.txt");
        fs::write(&input, "keep").expect("seed");
        let dotted = dir.0.join(".").join("devices.txt");
        let other = dir.0.join("other.txt");
        fs::write(&other, "").expect("seed");
        for out in [&input, &dotted] {
            let err = write_atomically(out, &[&other, &input], |w| w.write_all(b"lost"))
                .expect_err("refused");
            assert!(matches!(err, Error::OutputIsInput { .. }), "{err}");
        }
        #[cfg(unix)]
        {
            let link = dir.0.join("hard.txt");
            fs::hard_link(&input, &link).expect("hard link");
            let err =
                write_atomically(&link, &[&input], |w| w.write_all(b"lost")).expect_err("refused");
            assert!(matches!(err, Error::OutputIsInput { .. }), "{err}");
            let soft = dir.0.join("soft.txt");
            std::os::unix::fs::symlink(&input, &soft).expect("symlink");
            let err =
                write_atomically(&soft, &[&input], |w| w.write_all(b"lost")).expect_err("refused");
            assert!(matches!(err, Error::OutputIsInput { .. }), "{err}");
        }
        assert_eq!(fs::read_to_string(&input).expect("read"), "keep");
        write_atomically(&dir.0.join("out.txt"), &[&input, &other], |w| {
            w.write_all(b"ok")
        })
        .expect("writes");
    }
}
