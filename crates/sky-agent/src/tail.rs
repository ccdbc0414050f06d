//! Reading log files incrementally by byte offset, one file per rank, yielding whole lines.
//!
//! Offsets only move past complete lines, so a line being written is sent once it is finished
//! (or at the end, when the writer is known to be done). One call reads at most [`MAX_READ`]
//! bytes per file, so a multi-GB backlog is streamed in bounded steps (the caller sends each
//! step before reading the next) rather than loaded at once; [`Tailer::caught_up`] says whether
//! the last call reached the end of every file. Does not decide when to stop; the caller knows
//! whether the job is terminal.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use sky_core::jobs::wire::LogLine;

/// Cap on bytes read per file per call, so one chunk stays a reasonable size.
pub const MAX_READ: u64 = 1 << 20;

#[derive(Debug)]
pub struct Tailer {
    files: Vec<PathBuf>,
    offsets: Vec<u64>,
    caught_up: bool,
}

impl Tailer {
    /// `offsets` per rank; missing ones start at 0.
    pub fn new(files: Vec<PathBuf>, mut offsets: Vec<u64>) -> Tailer {
        offsets.resize(files.len(), 0);
        Tailer {
            files,
            offsets,
            caught_up: true,
        }
    }

    /// Whether the last [`Tailer::read_new`] read every file to its end (nothing left to send
    /// without waiting for the writer).
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// New complete lines of every file, file by file. With `finished`, a trailing line without
    /// a newline is returned too. A missing file has no lines yet.
    pub fn read_new(&mut self, finished: bool) -> std::io::Result<Vec<LogLine>> {
        let mut out = Vec::new();
        self.caught_up = true;
        for (rank, path) in self.files.iter().enumerate() {
            let mut file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let offset = self.offsets[rank];
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            (&mut file).take(MAX_READ).read_to_end(&mut buf)?;
            if buf.is_empty() {
                continue;
            }
            let full_read = buf.len() as u64 == MAX_READ;
            let complete = match buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                // A line longer than a whole step is cut rather than never sent.
                None if finished || full_read => buf.len(),
                None => 0,
            };
            let take = if finished && !full_read {
                buf.len()
            } else {
                complete
            };
            if take == 0 {
                continue;
            }
            for line in buf[..take].split(|b| *b == b'\n') {
                out.push(LogLine {
                    rank: rank as u32,
                    text: String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line))
                        .into_owned(),
                });
            }
            // `split` yields an empty tail after a final newline; it is not a line.
            if buf[..take].ends_with(b"\n") {
                out.pop();
            }
            self.offsets[rank] = offset + take as u64;
            if full_read {
                // More may follow; the caller sends this step before asking for the next.
                self.caught_up = false;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn texts(lines: &[LogLine]) -> Vec<(u32, &str)> {
        lines.iter().map(|l| (l.rank, l.text.as_str())).collect()
    }

    #[test]
    fn yields_whole_lines_and_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        std::fs::write(&a, "one\ntw").expect("write");
        let mut t = Tailer::new(vec![a.clone(), b.clone()], vec![]);
        assert_eq!(texts(&t.read_new(false).expect("read")), vec![(0, "one")]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .expect("open");
        f.write_all(b"o\nthree").expect("append");
        std::fs::write(&b, "rank1\n").expect("write b");
        assert_eq!(
            texts(&t.read_new(false).expect("read")),
            vec![(0, "two"), (1, "rank1")]
        );
        assert_eq!(texts(&t.read_new(true).expect("read")), vec![(0, "three")]);
        assert!(t.read_new(true).expect("read").is_empty());
        assert_eq!(t.offsets(), &[13, 6]);
        let mut resumed = Tailer::new(vec![a, b], vec![8]);
        assert_eq!(
            texts(&resumed.read_new(true).expect("read")),
            vec![(0, "three"), (1, "rank1")]
        );
    }

    #[test]
    fn a_large_backlog_comes_in_bounded_steps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        let line = "x".repeat(99) + "\n";
        let lines = (3 * MAX_READ as usize) / line.len() + 7;
        std::fs::write(&a, line.repeat(lines)).expect("write");
        let mut t = Tailer::new(vec![a], vec![]);
        let (mut steps, mut total) = (0, 0);
        loop {
            let got = t.read_new(true).expect("read");
            assert!(
                got.len() * line.len() <= MAX_READ as usize,
                "one step is bounded"
            );
            total += got.len();
            steps += 1;
            if t.caught_up() {
                break;
            }
        }
        assert_eq!(total, lines);
        assert!(steps >= 4, "{steps} steps");
    }
}
