//! Export files as a whole: read line by line, never more than one line in memory.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::line::ExportLine;
use super::reader::{Context, MAX_LINE_BYTES, Parsed, named};
use super::summary::InputStats;
use crate::error::{Error, Result};
use crate::key::DeviceKey;

/// The UTF-8 byte order mark some editors write before a file's first line; read as nothing.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// The device and module lines of an export or import file.
///
/// # Examples
///
/// ```
/// use failback::iothub::read_export_from;
///
/// let text = "{\"id\":\"a\",\"status\":\"enabled\"}\n\n{\"note\":\"hub warning\"}\n";
/// let export = read_export_from("devices.txt".as_ref(), text.as_bytes())?;
/// assert_eq!((export.lines.len(), export.skipped), (1, 1));
/// # Ok::<(), failback::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Export {
    /// The device and module lines, in file order.
    pub lines: Vec<ExportLine>,
    /// How many lines were hub warnings (objects sharing no field with the line format).
    pub skipped: u64,
}

impl Export {
    /// The counts a [`Summary`](super::Summary) shows for this input: its device and module
    /// lines, and the hub warnings skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{read_export_from, InputStats};
    /// let text = "{\"id\":\"a\",\"status\":\"enabled\"}\n{\"note\":\"hub warning\"}\n";
    /// let export = read_export_from("devices.txt".as_ref(), text.as_bytes())?;
    /// assert_eq!(export.stats(), InputStats { devices: 1, skipped: 1 });
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn stats(&self) -> InputStats {
        InputStats {
            devices: self.lines.len() as u64,
            skipped: self.skipped,
        }
    }
}

/// Reads a hub's whole export at `path`, as [`ExportReader::new`] does: every line is checked,
/// each device or module may appear once, and the file must be a whole export, with at least
/// one device line and a device line for every module line. An export without devices would
/// merge as a hub whose devices were all deleted; a hub that really has none is read with
/// [`ExportReader::allowing_empty`]. An import file (a plan's `import.jsonl`) is read with
/// [`read_import`].
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read, [`Error::Parse`] for the first line that is not a
/// valid export line (see [`parse_line`](super::parse_line)) or not UTF-8, or that holds
/// `importMode` (an import file's line); [`Error::Parse`] at line 1, column 1 if the file has
/// no device line, or at the first module line whose device has none.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("failback-doc-read-{}.txt", std::process::id()));
/// std::fs::write(&path, "{\"id\":\"a\",\"status\":\"enabled\"}\n").map_err(|e| failback::Error::Io { path: path.clone(), source: e })?;
/// let export = failback::iothub::read_export(&path)?;
/// assert_eq!(export.lines[0].key.to_string(), "a");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), failback::Error>(())
/// ```
pub fn read_export(path: &Path) -> Result<Export> {
    read_export_from(path, open(path)?)
}

/// Reads a hub's whole export from `reader`, as [`read_export`] does; `path` only names the
/// source in errors.
///
/// # Errors
///
/// As [`ExportReader::new`] yields them: [`Error::Io`] if reading fails, [`Error::Parse`] for
/// the first line that is not a valid export line or not UTF-8, or whose device or module
/// appeared on an earlier line (at column 1), and, at its end, for an input that is not a whole
/// export (no device line, or a module line without its device's).
///
/// # Examples
///
/// ```
/// use failback::{Error, iothub::read_export_from};
///
/// let text = "{\"id\":\"a\",\"status\":\"enabled\"}\r\n{\"id\":\"b\"}\r\n";
/// let err = read_export_from("devices.txt".as_ref(), text.as_bytes()).unwrap_err();
/// assert!(matches!(err, Error::Parse { line: 2, column: 1, .. }));
/// // Merged, an export without devices would delete every device of the hub.
/// let err = read_export_from("devices.txt".as_ref(), &b"{\"warning\":1}\n"[..]).unwrap_err();
/// assert!(err.to_string().contains("no device lines"));
/// # Ok::<(), failback::Error>(())
/// ```
pub fn read_export_from(path: &Path, reader: impl BufRead) -> Result<Export> {
    collect(ExportReader::new(path, reader))
}

/// Reads an import file at `path` (a plan's `import.jsonl`, say), as [`ExportReader::lines`]
/// does: every line is checked, and each device or module may appear once, but the file need
/// not be a whole export: it may be empty, update a module without its device, and carry
/// `importMode`.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read, [`Error::Parse`] for the first line that is not a
/// valid line (see [`parse_line`](super::parse_line)) or not UTF-8.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("failback-doc-import-{}.txt", std::process::id()));
/// std::fs::write(&path, "{\"id\":\"a\",\"importMode\":\"delete\",\"status\":\"enabled\"}\n").map_err(|e| failback::Error::Io { path: path.clone(), source: e })?;
/// let import = failback::iothub::read_import(&path)?;
/// assert_eq!(import.lines[0].import_mode, Some(failback::iothub::ImportMode::Delete));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), failback::Error>(())
/// ```
pub fn read_import(path: &Path) -> Result<Export> {
    read_import_from(path, open(path)?)
}

/// Reads an import file from `reader`, as [`read_import`] does; `path` only names the source
/// in errors.
///
/// # Errors
///
/// As [`ExportReader::lines`] yields them: [`Error::Io`] if reading fails, [`Error::Parse`] for
/// the first line that is not a valid line or not UTF-8, or whose device or module appeared on
/// an earlier line (at column 1).
///
/// # Examples
///
/// ```
/// use failback::iothub::read_import_from;
///
/// // An empty plan, and a module updated without its device: an import file, not an export.
/// assert!(read_import_from("import.jsonl".as_ref(), &b""[..])?.lines.is_empty());
/// let text = "{\"id\":\"gw\",\"moduleId\":\"reader\",\"importMode\":\"updateTwin\"}\n";
/// assert_eq!(read_import_from("import.jsonl".as_ref(), text.as_bytes())?.lines.len(), 1);
/// # Ok::<(), failback::Error>(())
/// ```
pub fn read_import_from(path: &Path, reader: impl BufRead) -> Result<Export> {
    collect(ExportReader::lines(path, reader))
}

fn open(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

fn collect(mut lines: ExportReader<impl BufRead>) -> Result<Export> {
    let collected = lines.by_ref().collect::<Result<Vec<_>>>()?;
    Ok(Export {
        lines: collected,
        skipped: lines.skipped(),
    })
}

/// Export lines one at a time, so a million-line file never sits in memory whole.
///
/// Lines end in `\n` or `\r\n`; blank lines are ignored; a UTF-8 byte order mark at the start is
/// ignored, and not counted in the first line's length (error columns on that line count it, as an
/// editor shows the raw line). No line is buffered beyond the 1 MiB line limit. Hub warning lines
/// are skipped and counted ([`skipped`](Self::skipped)). After the first error the reader yields
/// nothing more.
///
/// A reader made with [`new`](Self::new) reads a hub's whole export, and after its last line
/// checks the file as a whole: an export without a device line would merge as a hub whose
/// devices were all deleted, and a module line without its device's line (IoT Hub exports a
/// module with its device) is a damaged export whose module a merge would drop. Either is an
/// error, the last item the reader yields. [`lines`](Self::lines) skips these checks, for
/// import files. [`read_export`] and [`read_import`] collect the one and the other.
///
/// # Examples
///
/// ```
/// use failback::iothub::ExportReader;
///
/// let text = "{\"id\":\"a\",\"status\":\"enabled\"}\n{\"warning\":1}\n{\"id\":\"b\",\"status\":\"disabled\"}\n";
/// let mut reader = ExportReader::new("devices.txt", text.as_bytes());
/// let ids: Vec<String> = reader.by_ref().map(|l| l.map(|l| l.key.to_string())).collect::<Result<_, _>>()?;
/// assert_eq!(ids, ["a", "b"]);
/// assert_eq!(reader.skipped(), 1);
/// # Ok::<(), failback::Error>(())
/// ```
pub struct ExportReader<R> {
    path: PathBuf,
    reader: R,
    buffer: Vec<u8>,
    line_no: u64,
    skipped: u64,
    /// The line each key was first read at: a key twice is an error at its second line, since
    /// no reader can tell which copy is the device (IoT Hub never exports one twice). Iterated
    /// only for the earliest module line without its device, so its order cannot reach an
    /// output.
    seen: HashMap<DeviceKey, u64>,
    /// Device (not module) lines read so far.
    devices: u64,
    /// Whether the input must be a hub's whole export, checked at its end.
    whole: bool,
    /// Whether a whole export may list no device (see [`allowing_empty`](Self::allowing_empty)).
    empty_allowed: bool,
    /// Set after the first error, or at the end of the input: nothing more is read.
    done: bool,
}

impl<R: BufRead> ExportReader<R> {
    /// Reads a hub's whole export from `reader`; `path` names the source in errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::{Error, iothub::ExportReader};
    ///
    /// // An export without devices would plan deleting every device of the hub.
    /// let mut reader = ExportReader::new("empty.jsonl", &b"{\"warning\":1}\n"[..]);
    /// let err = reader.next().and_then(Result::err).expect("an error");
    /// assert!(matches!(err, Error::Parse { line: 1, column: 1, .. }));
    /// assert!(err.to_string().contains("no device lines"));
    /// assert!(reader.next().is_none());
    /// ```
    pub fn new(path: impl Into<PathBuf>, reader: R) -> Self {
        Self {
            whole: true,
            ..Self::lines(path, reader)
        }
    }

    /// Reads export lines from `reader` without checking that they are a hub's whole export:
    /// for an import file, which may be empty or update a module without its device.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut reader = failback::iothub::ExportReader::lines("import.jsonl", &b""[..]);
    /// assert!(reader.next().is_none());
    /// ```
    pub fn lines(path: impl Into<PathBuf>, reader: R) -> Self {
        Self {
            path: path.into(),
            reader,
            buffer: Vec::new(),
            line_no: 0,
            skipped: 0,
            seen: HashMap::new(),
            devices: 0,
            whole: false,
            empty_allowed: false,
            done: false,
        }
    }

    /// Accepts a whole export that lists no device: a hub that really has none (a base taken
    /// before any device was registered, a primary recreated empty after the disaster). Read
    /// without this, such an export is refused, because merged against a base with devices it
    /// means that every one of them was deleted; with it, that is what it means.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::ExportReader;
    /// let mut reader = ExportReader::new("empty.jsonl", &b""[..]).allowing_empty();
    /// assert!(reader.next().is_none());
    /// ```
    pub fn allowing_empty(mut self) -> Self {
        self.empty_allowed = true;
        self
    }

    /// Hub warning lines skipped so far.
    ///
    /// # Examples
    ///
    /// ```
    /// let reader = failback::iothub::ExportReader::new("x.jsonl", &b""[..]);
    /// assert_eq!(reader.skipped(), 0);
    /// ```
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The counts a [`Summary`](super::Summary) shows for this input, so far: the device and
    /// module lines handed over (a line refused is not), and the hub warnings skipped. Read
    /// once the reader is exhausted, they are the input's; a reader lent to
    /// [`Failback::from_lines`](super::Failback::from_lines) with `by_ref` is read to its end.
    ///
    /// # Examples
    ///
    /// ```
    /// use failback::iothub::{ExportReader, Failback, InputStats, Plan, Side, Summary};
    ///
    /// let text = "{\"id\":\"a\",\"status\":\"enabled\"}\n{\"warning\":1}\n{\"id\":\"b\",\"status\":\"disabled\"}\n";
    /// let open = || ExportReader::new("devices.jsonl", text.as_bytes());
    /// let (mut base, mut primary, mut secondary) = (open(), open(), open());
    /// let failback = Failback::from_lines(base.by_ref(), primary.by_ref(), secondary.by_ref(), Side::Secondary)?;
    /// let inputs = [base.stats(), primary.stats(), secondary.stats()];
    /// assert_eq!(inputs[1], InputStats { devices: 2, skipped: 1 });
    /// let summary = Summary::new(&Plan::new(&failback), inputs);
    /// assert_eq!(summary.inputs, inputs);
    /// # Ok::<(), failback::Error>(())
    /// ```
    pub fn stats(&self) -> InputStats {
        InputStats {
            // Every line handed over has its key in `seen`, and each key once: a key read
            // twice is an error, not a line, and ends the reading.
            devices: self.seen.len() as u64,
            skipped: self.skipped,
        }
    }

    /// The next device line, or `None` at the end of the input.
    fn read_line(&mut self) -> Result<Option<ExportLine>> {
        // Room for a byte order mark and the line ending, so a line of exactly the limit is
        // still read whole.
        let cap = (BOM.len() + MAX_LINE_BYTES + 2) as u64;
        loop {
            self.buffer.clear();
            let read = (&mut self.reader)
                .take(cap)
                .read_until(b'\n', &mut self.buffer)
                .map_err(|source| Error::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 {
                self.done = true;
                return self.check_whole().map(|()| None);
            }
            self.line_no += 1;
            let mut bytes = self.buffer.as_slice();
            bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            // The limit is on the line's text, so the mark is stripped first; columns on the
            // line still count it, as an editor shows the raw line.
            let mut offset = 0;
            if self.line_no == 1 {
                if let Some(rest) = bytes.strip_prefix(BOM) {
                    bytes = rest;
                    offset = BOM.len();
                }
            }
            let at = Context {
                path: &self.path,
                line: self.line_no,
                offset,
                export: self.whole,
            };
            if bytes.len() > MAX_LINE_BYTES {
                return Err(at.too_long());
            }
            let text = std::str::from_utf8(bytes).map_err(|err| {
                let valid = &bytes[..err.valid_up_to()];
                named(
                    std::str::from_utf8(valid).unwrap_or_default(),
                    at.error(
                        err.valid_up_to(),
                        "line is not valid UTF-8; export files are UTF-8 JSON",
                    ),
                )
            })?;
            if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                continue;
            }
            match at.parse(text)? {
                Parsed::Device(line) => {
                    if line.key.module.is_none() {
                        self.devices += 1;
                    }
                    if let Some(first) = self.seen.insert(line.key.clone(), self.line_no) {
                        let what = match &line.key.module {
                            Some(module) => {
                                format!(
                                    "module {module:?} of device {:?}",
                                    line.key.device.as_str()
                                )
                            }
                            None => format!("device {:?}", line.key.device.as_str()),
                        };
                        return Err(at.error(
                            0,
                            format!(
                                "{what} appears twice in this export (first at line {first}); \
                                 each device or module has one line"
                            ),
                        ));
                    }
                    return Ok(Some(line));
                }
                Parsed::Skipped => self.skipped += 1,
            }
        }
    }

    /// At the end of the input, refuses what cannot be a hub's whole export (when reading
    /// one): no device line at all, or a module line whose device has none.
    fn check_whole(&self) -> Result<()> {
        if !self.whole {
            return Ok(());
        }
        let at = |line| Context {
            path: &self.path,
            line,
            offset: 0,
            export: true,
        };
        if self.devices == 0 && !self.empty_allowed {
            let modules = self.seen.len();
            let skipped = self.skipped;
            return Err(at(1).error(
                0,
                format!(
                    "no device lines in this export (module lines: {modules}, hub warnings: \
                     {skipped}); an IoT Hub export lists every device of its hub, so merged, this \
                     one would mean every device was deleted: export the hub again, or, if the \
                     hub really has none, allow it to be empty"
                ),
            ));
        }
        let orphan = self
            .seen
            .iter()
            .filter(|(key, _)| {
                key.module.is_some()
                    && !self.seen.contains_key(&DeviceKey {
                        device: key.device.clone(),
                        module: None,
                    })
            })
            .min_by_key(|(_, line)| **line);
        match orphan {
            Some((key, &line)) => Err(at(line).error(
                0,
                format!(
                    "module {:?} of device {:?} has no device line in this export; IoT Hub \
                     exports a module with its device, so the export is damaged or cut short: \
                     export the hub again",
                    key.module.as_ref().map_or("", |module| module.as_str()),
                    key.device.as_str()
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Where the reader is, never what it read: its buffer holds the last line's bytes (a device's
/// keys among them), and the keys it has seen sit in a hash map, whose order changes from run
/// to run.
impl<R> fmt::Debug for ExportReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportReader")
            .field("path", &self.path)
            .field("line", &self.line_no)
            .field("skipped", &self.skipped)
            .field("devices", &self.devices)
            .field("whole", &self.whole)
            .field("empty_allowed", &self.empty_allowed)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> Iterator for ExportReader<R> {
    type Item = Result<ExportLine>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.read_line().transpose();
        if matches!(next, Some(Err(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZg==";
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMA==";

    #[test]
    fn debug_shows_where_the_reader_is_never_what_it_read() {
        let line = |id: &str| {
            format!(
                r#"{{"id":"{id}","status":"enabled","authentication":{{"symmetricKey":{{"primaryKey":"{KEY_A}","secondaryKey":"{KEY_B}"}}}}}}"#
            )
        };
        let ids = ["sensor-0042", "sensor-0043", "sensor-0044"];
        let text: String = ids.iter().map(|id| line(id) + "\n").collect();
        let mut reader = ExportReader::new("devices.jsonl", text.as_bytes());
        assert!(matches!(reader.next(), Some(Ok(_))));
        let shown = format!("{reader:?}");
        assert!(!shown.contains(KEY_A) && !shown.contains(KEY_B), "{shown}");
        assert!(!shown.contains("sensor-0042"), "{shown}");
        // Keys read in another order leave the same text: no hash order in it.
        let read_all = |ids: &[&str]| {
            let text: String = ids.iter().map(|id| line(id) + "\n").collect();
            let mut reader = ExportReader::new("devices.jsonl", text.as_bytes());
            assert!(reader.by_ref().all(|line| line.is_ok()));
            format!("{reader:?}")
        };
        let shown = read_all(&ids);
        assert_eq!(shown, read_all(&[ids[2], ids[0], ids[1]]));
        assert_eq!(
            shown,
            r#"ExportReader { path: "devices.jsonl", line: 3, skipped: 0, devices: 3, whole: true, empty_allowed: false, done: true, .. }"#
        );
    }

    #[test]
    fn read_export_reads_a_whole_export_and_read_import_an_import_file() {
        let device = r#"{"id":"d","status":"enabled"}"#;
        let module = r#"{"id":"gone","moduleId":"m"}"#;
        let mode = r#"{"id":"d","importMode":"delete","status":"enabled"}"#;
        let path = Path::new("in.jsonl");
        for (text, problem) in [
            (String::new(), "no device lines in this export"),
            (
                "{\"warning\":1}\n".to_owned(),
                "no device lines in this export",
            ),
            (
                format!("{device}\n{module}\n"),
                "has no device line in this export",
            ),
            (format!("{mode}\n"), "importMode is a field of import files"),
        ] {
            // Read as an export, fed to a merge as a side, the first two planned deleting
            // every device of the hub.
            match read_export_from(path, text.as_bytes()) {
                Err(Error::Parse { message, .. }) => {
                    assert!(message.contains(problem), "{message}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
            let import = read_import_from(path, text.as_bytes());
            assert!(import.is_ok(), "{text:?}: {import:?}");
        }
        let whole = read_export_from(path, format!("{module}\n{device}\n").as_bytes());
        assert!(whole.is_err());
        let whole = format!("{device}\n{{\"id\":\"d\",\"moduleId\":\"m\"}}\n");
        let export = read_export_from(path, whole.as_bytes()).map(|e| e.lines.len());
        assert_eq!(export.ok(), Some(2));
    }
}
