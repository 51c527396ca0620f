//! `sessctl logs [-f] [-n N]`: prints the last N lines of the daemon's log files (across
//! files, oldest first) and, with `-f`, keeps printing what the daemon appends, moving on
//! to the next file when the daemon rotates. Reads the files directly, so it works whether
//! or not the daemon runs. Never reads a whole file to find its tail: it scans backwards
//! from the end in chunks. Plain `std`: no async runtime in the CLI.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cli::exit;
use crate::logfiles;
use crate::paths::Paths;

/// Lines printed without `-n`: a screenful and a half, enough to see the last refreshes
/// of a few slots.
pub const DEFAULT_LINES: u64 = 50;
/// How often `-f` looks for new lines and new files: prompt enough for a person watching,
/// a negligible cost for an idle process.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// Bytes read at a time when scanning backwards for line starts.
const SCAN_CHUNK: usize = 64 * 1024;

/// The command line of `sessctl logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the last N lines (across log files); 0 prints none (useful with -f).
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = DEFAULT_LINES)]
    pub lines: u64,
    /// Keep printing lines as the daemon writes them, across rotations (Ctrl-C stops).
    #[arg(short, long)]
    pub follow: bool,
}

pub fn run(paths: &Paths, args: &Args) -> anyhow::Result<ExitCode> {
    let dir = &paths.log_dir;
    let files = match logfiles::list(dir) {
        Ok(files) => files,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    if files.is_empty() {
        eprintln!(
            "sessctl: no log files in {} yet; the daemon writes them once it runs (sessctl daemon)",
            dir.display()
        );
        return Ok(ExitCode::from(exit::NO_LOGS));
    }
    let mut out = Output::new(io::stdout().lock());
    let tail = tail_start(&files, args.lines, SCAN_CHUNK)?;
    let position = print_tail(&files, &tail, &mut out)?;
    if out.closed {
        return Ok(ExitCode::SUCCESS);
    }
    if args.follow {
        let newest = files.last().cloned().unwrap_or_default();
        follow(dir, newest, position, &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what is appended to `current` from `position` on, and to every newer log file,
/// until stdout is closed or the process is stopped. The current file stays open, so what
/// the daemon wrote to it just before pruning it at a rotation is still read.
fn follow(
    dir: &Path,
    mut current: PathBuf,
    mut position: u64,
    out: &mut Output<impl Write>,
) -> io::Result<()> {
    let mut file = open_if_present(&current)?;
    loop {
        if file.is_none() {
            file = open_if_present(&current)?;
        }
        if let Some(open) = file.as_mut() {
            position = out.copy_open(open, position)?;
        }
        if out.closed {
            return Ok(());
        }
        match logfiles::next_after(dir, &current) {
            Ok(Some(next)) => {
                // The daemon writes the old file no more; take what it wrote before rotating.
                if let Some(open) = file.as_mut() {
                    out.copy_open(open, position)?;
                }
                out.separate();
                (current, position, file) = (next, 0, None);
            }
            // No newer file, or the directory is briefly unreadable: wait and look again.
            Ok(None) | Err(_) => std::thread::sleep(FOLLOW_POLL),
        }
    }
}

/// Opens `path` for reading; `None` when it does not exist (pruned, or not created yet).
fn open_if_present(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Stdout, remembering whether the last byte ended a line and whether the reader left.
struct Output<W: Write> {
    out: W,
    at_line_start: bool,
    /// The reader closed the pipe (`sessctl logs | head`): stop quietly.
    closed: bool,
}

impl<W: Write> Output<W> {
    fn new(out: W) -> Self {
        Output {
            out,
            at_line_start: true,
            closed: false,
        }
    }

    /// Copies `path` from byte `from` to byte `to` (or its end, if sooner); returns the
    /// position reached. A file gone meanwhile (pruned) counts as empty.
    fn copy_range(&mut self, path: &Path, from: u64, to: u64) -> io::Result<u64> {
        match open_if_present(path)? {
            Some(mut file) => self.copy_open_range(&mut file, from, to),
            None => Ok(from),
        }
    }

    /// Copies an open file from byte `from` to its end; returns the position reached.
    fn copy_open(&mut self, file: &mut File, from: u64) -> io::Result<u64> {
        self.copy_open_range(file, from, u64::MAX)
    }

    /// Copies an open file from byte `from` to byte `to` (or its end, if sooner); returns
    /// the position reached. A file shorter than `from` (truncated) is read from its start.
    fn copy_open_range(&mut self, file: &mut File, from: u64, to: u64) -> io::Result<u64> {
        let from = if file.metadata()?.len() < from {
            0
        } else {
            from
        };
        file.seek(SeekFrom::Start(from))?;
        let mut position = from;
        let mut buf = vec![0; SCAN_CHUNK];
        let mut file = file.take(to.saturating_sub(from));
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.write(&buf[..n])?;
            position += n as u64;
        }
        self.flush()?;
        Ok(position)
    }

    /// Ends a line cut short at the end of a file, so the next file starts on its own line.
    fn separate(&mut self) {
        if !self.at_line_start {
            let _ = self.write(b"\n");
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.closed || bytes.is_empty() {
            return Ok(());
        }
        match self.out.write_all(bytes) {
            Ok(()) => {
                self.at_line_start = bytes.ends_with(b"\n");
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// Where the last lines of the log files are: they begin in file `first` at byte
/// `offset`, and end where the newest file ended when they were counted (`end`). Lines the
/// daemon appends after the count are not part of them (`-f` prints them next).
#[derive(Debug, PartialEq, Eq)]
struct Tail {
    first: usize,
    offset: u64,
    end: u64,
}

/// Where the last `n` lines of `files` (oldest first) are. With `n` = 0: none, at the end
/// of the newest file.
fn tail_start(files: &[PathBuf], n: u64, chunk: usize) -> io::Result<Tail> {
    let Some(last) = files.len().checked_sub(1) else {
        return Ok(Tail {
            first: 0,
            offset: 0,
            end: 0,
        });
    };
    let end = std::fs::metadata(&files[last]).map_or(0, |m| m.len());
    if n == 0 {
        return Ok(Tail {
            first: last,
            offset: end,
            end,
        });
    }
    let mut wanted = n;
    for (i, path) in files.iter().enumerate().rev() {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let len = if i == last {
            end
        } else {
            file.seek(SeekFrom::End(0))?
        };
        let (found, offset) = last_lines(&mut file, len, wanted, chunk)?;
        if found >= wanted {
            return Ok(Tail {
                first: i,
                offset,
                end,
            });
        }
        wanted -= found;
    }
    Ok(Tail {
        first: 0,
        offset: 0,
        end,
    })
}

/// Prints the lines `tail` names; returns the position reached in the newest file.
fn print_tail(files: &[PathBuf], tail: &Tail, out: &mut Output<impl Write>) -> io::Result<u64> {
    let last = files.len().saturating_sub(1);
    let mut position = 0;
    for (i, file) in files.iter().enumerate().skip(tail.first) {
        if i > tail.first {
            out.separate();
        }
        let from = if i == tail.first { tail.offset } else { 0 };
        let to = if i == last { tail.end } else { u64::MAX };
        position = out.copy_range(file, from, to)?;
    }
    Ok(position)
}

/// Scans `reader`'s first `len` bytes backwards: returns how many lines it found (at most
/// `wanted`, which must be at least 1) and the offset where the earliest of them starts.
/// A final line without a newline counts as a line; a final newline starts none.
fn last_lines<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    wanted: u64,
    chunk: usize,
) -> io::Result<(u64, u64)> {
    if len == 0 {
        return Ok((0, 0));
    }
    let mut buf = vec![0; chunk.max(1)];
    let mut found = 0;
    // Bytes before `end` are still to scan; the very last byte ends a line, starts none.
    let mut end = len - 1;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "end - start is at most buf.len(), a usize"
        )]
        let piece = &mut buf[..(end - start) as usize];
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(piece)?;
        for (i, byte) in piece.iter().enumerate().rev() {
            if *byte == b'\n' {
                found += 1;
                if found == wanted {
                    return Ok((found, start + i as u64 + 1));
                }
            }
        }
        end = start;
    }
    // The first line starts at 0.
    Ok((found + 1, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// The text of the last `n` lines by [`last_lines`], with every chunk size.
    fn tail(text: &str, n: u64) -> Vec<(u64, String)> {
        (1..=text.len() + 1)
            .map(|chunk| {
                let (found, offset) =
                    last_lines(&mut Cursor::new(text), text.len() as u64, n, chunk).unwrap();
                (found, text[usize::try_from(offset).unwrap()..].to_owned())
            })
            .collect()
    }

    fn all_equal(results: Vec<(u64, String)>, expected: (u64, &str)) {
        for (chunk, got) in results.into_iter().enumerate() {
            assert_eq!(
                (got.0, got.1.as_str()),
                expected,
                "chunk size {}",
                chunk + 1
            );
        }
    }

    #[test]
    fn the_last_lines_are_found_from_the_end_whatever_the_chunk_size() {
        all_equal(tail("a\nbb\nccc\n", 1), (1, "ccc\n"));
        all_equal(tail("a\nbb\nccc\n", 2), (2, "bb\nccc\n"));
        all_equal(tail("a\nbb\nccc\n", 3), (3, "a\nbb\nccc\n"));
        all_equal(tail("a\nbb\nccc\n", 9), (3, "a\nbb\nccc\n"));
        // A last line still being written counts as a line.
        all_equal(tail("a\nbb\ncc", 1), (1, "cc"));
        all_equal(tail("a\nbb\ncc", 2), (2, "bb\ncc"));
        // Empty lines are lines.
        all_equal(tail("\n\n\n", 2), (2, "\n\n"));
        all_equal(tail("\n", 5), (1, "\n"));
        all_equal(tail("x", 5), (1, "x"));
        assert_eq!(last_lines(&mut Cursor::new(""), 0, 3, 4).unwrap(), (0, 0));
    }

    fn temp_files(contents: &[&str]) -> (PathBuf, Vec<PathBuf>) {
        let dir = crate::test_dirs::fresh("logs");
        let files = contents
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let path = dir.join(format!("sessctl.2026-11-0{}.log", i + 1));
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        (dir, files)
    }

    /// What `run` prints for `n` lines of `files`, via [`tail_start`] and [`print_tail`].
    fn printed(files: &[PathBuf], n: u64) -> String {
        let tail = tail_start(files, n, 3).unwrap();
        let mut out = Output::new(Vec::new());
        print_tail(files, &tail, &mut out).unwrap();
        String::from_utf8(out.out).unwrap()
    }

    /// The daemon appends while `logs -n N` runs (e.g. its last lines as it stops): the
    /// lines counted are the lines printed. Printing to the file's end instead printed N + 1
    /// (seen as `left: 4, right: 3` in `logs::logs_shows_the_daemons_lines_while_it_runs…`).
    #[test]
    fn lines_written_after_the_count_are_not_printed() {
        let (dir, files) = temp_files(&["1\n", "2\n3\n4\n"]);
        let tail = tail_start(&files, 2, 3).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&files[1])
            .unwrap()
            .write_all(b"5\n")
            .unwrap();
        let mut out = Output::new(Vec::new());
        let position = print_tail(&files, &tail, &mut out).unwrap();
        assert_eq!(String::from_utf8(out.out).unwrap(), "3\n4\n");
        // `-f` goes on from there, so the appended line is printed once, next.
        assert_eq!(position, 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_tail_spans_files_oldest_first() {
        let (dir, files) = temp_files(&["1\n2\n3\n", "", "4\n5\n"]);
        assert_eq!(printed(&files, 1), "5\n");
        assert_eq!(printed(&files, 2), "4\n5\n");
        assert_eq!(printed(&files, 3), "3\n4\n5\n");
        assert_eq!(printed(&files, 50), "1\n2\n3\n4\n5\n");
        assert_eq!(printed(&files, 0), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_cut_short_does_not_glue_its_last_line_to_the_next_file() {
        let (dir, files) = temp_files(&["1\n2", "3\n"]);
        assert_eq!(printed(&files, 3), "1\n2\n3\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn copying_resumes_where_it_stopped_and_restarts_after_truncation() {
        let (dir, files) = temp_files(&["one\n"]);
        let mut out = Output::new(Vec::new());
        let at = out.copy_range(&files[0], 0, u64::MAX).unwrap();
        assert_eq!(at, 4);
        std::fs::write(&files[0], "one\ntwo\n").unwrap();
        let at = out.copy_range(&files[0], at, u64::MAX).unwrap();
        assert_eq!(at, 8);
        std::fs::write(&files[0], "x\n").unwrap();
        assert_eq!(out.copy_range(&files[0], at, u64::MAX).unwrap(), 2);
        assert_eq!(String::from_utf8(out.out).unwrap(), "one\ntwo\nx\n");
        // A file pruned meanwhile reads as nothing new; one held open still reads.
        let mut out = Output::new(Vec::new());
        assert_eq!(
            out.copy_range(&dir.join("gone.log"), 7, u64::MAX).unwrap(),
            7
        );
        let mut held = File::open(&files[0]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&files[0])
            .unwrap()
            .write_all(b"last\n")
            .unwrap();
        std::fs::remove_file(&files[0]).unwrap();
        assert_eq!(out.copy_open(&mut held, 2).unwrap(), 7);
        assert_eq!(String::from_utf8(out.out).unwrap(), "last\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
