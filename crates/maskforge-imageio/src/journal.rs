//! Append-only journals of finished work (`OUT/.mask-journal.jsonl`,
//! `OUT/.detect-journal.jsonl`): one line per finished item, appended by
//! any worker thread as soon as the item is done, so a killed run loses at
//! most the items in flight.
//!
//! A line counts once its newline is written: `kill -9` mid-write leaves a
//! torn last line, which [`LineJournal::read_lines`] leaves out and
//! [`LineJournal::open`] ends, so the next line does not glue onto it.
//! What a line holds (JSON, usually) is the caller's business.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A journal open for appending, shared by worker threads.
#[derive(Debug)]
pub struct LineJournal {
    path: PathBuf,
    file: Mutex<File>,
}

impl LineJournal {
    /// Opens `path` for appending, creating it when missing.
    pub fn open(path: &Path) -> io::Result<LineJournal> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        // A torn last line (killed mid-write) must not glue onto the next one.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(LineJournal { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` (which must not hold a newline) and a newline, in one
    /// write, so lines of different threads never interleave.
    pub fn append(&self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mut f = self
            .file
            .lock()
            .map_err(|_| io::Error::other("a worker thread panicked while appending to the journal"))?;
        f.write_all(&bytes)
    }

    /// The complete lines of the journal at `path` (none when it does not
    /// exist), without their newlines. A last line without a newline is torn
    /// and left out; so are lines that are not UTF-8 (damage, not ours).
    pub fn read_lines(path: &Path) -> io::Result<Vec<String>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::new(file);
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            if buf.pop() != Some(b'\n') {
                break;
            }
            if let Ok(line) = String::from_utf8(std::mem::take(&mut buf)) {
                lines.push(line);
            }
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_left_out_and_ended_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".j.jsonl");
        assert!(LineJournal::read_lines(&path).unwrap().is_empty());
        let j = LineJournal::open(&path).unwrap();
        j.append("one").unwrap();
        j.append("two").unwrap();
        drop(j);
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"thr").unwrap();
        assert_eq!(LineJournal::read_lines(&path).unwrap(), ["one", "two"]);
        LineJournal::open(&path).unwrap().append("four").unwrap();
        assert_eq!(LineJournal::read_lines(&path).unwrap(), ["one", "two", "thr", "four"]);
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"\xff\xfe\n").unwrap();
        assert_eq!(LineJournal::read_lines(&path).unwrap().len(), 4);
    }

    #[test]
    fn threads_append_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".j.jsonl");
        let j = LineJournal::open(&path).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let j = &j;
                s.spawn(move || {
                    for i in 0..200 {
                        j.append(&format!("{t}:{i}:{}", "x".repeat(500))).unwrap();
                    }
                });
            }
        });
        let lines = LineJournal::read_lines(&path).unwrap();
        assert_eq!(lines.len(), 800);
        assert!(lines.iter().all(|l| l.len() > 500 && l.ends_with('x') && l.matches(':').count() == 2));
    }
}
