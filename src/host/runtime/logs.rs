//! Container output: the monitor reads the container's stdout+stderr pipe and
//! appends it to `container.log` in the runtime dir (tmpfs: no flash wear),
//! rotating to `container.log.1` when the file would pass its size bound, so
//! the two files never hold more than twice the bound. `tail` and `follow`
//! serve `berth logs`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The current log file's name.
pub const LOG_FILE: &str = "container.log";
/// Default bound of one file: 1 MiB.
pub const DEFAULT_SIZE: u64 = 1 << 20;

/// An append-only, size-bounded log with one rotated generation.
pub struct LogFile {
    path: PathBuf,
    max: u64,
    file: Option<File>,
    size: u64,
}

impl LogFile {
    /// Log into `dir/container.log`, at most `max` bytes per file (0: default).
    pub fn new(dir: &Path, max: u64) -> Self {
        let path = dir.join(LOG_FILE);
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        LogFile {
            path,
            max: if max == 0 { DEFAULT_SIZE } else { max },
            file: None,
            size,
        }
    }

    /// Append bytes, rotating first when they would not fit.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.size >= self.max {
                self.rotate()?;
            }
            let room = usize::try_from(self.max - self.size).unwrap_or(usize::MAX);
            let n = data.len().min(room);
            if self.file.is_none() {
                self.file = Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)?,
                );
            }
            if let Some(f) = self.file.as_mut() {
                f.write_all(&data[..n])?;
            }
            self.size += u64::try_from(n).unwrap_or(0);
            data = &data[n..];
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        fs::rename(&self.path, rotated(&self.path))?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".1");
    PathBuf::from(s)
}

/// The last `n` lines of the log (both generations); all lines when `n` is None.
pub fn tail(dir: &Path, n: Option<usize>) -> io::Result<Vec<u8>> {
    tail_at(dir, n).map(|(text, _)| text)
}

/// `tail`, plus how far into the current file it read (where `follow` starts).
pub fn tail_at(dir: &Path, n: Option<usize>) -> io::Result<(Vec<u8>, u64)> {
    let path = dir.join(LOG_FILE);
    let mut all = fs::read(rotated(&path)).unwrap_or_default();
    let mut pos = 0;
    match fs::read(&path) {
        Ok(cur) => {
            pos = u64::try_from(cur.len()).unwrap_or(0);
            all.extend_from_slice(&cur);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let Some(n) = n else { return Ok((all, pos)) };
    // Skip a final newline, then find the start of the n-th line from the end.
    let body = all.strip_suffix(b"\n").unwrap_or(&all);
    let mut start = 0;
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                start = i + 1;
                break;
            }
        }
    }
    if n == 0 {
        start = all.len();
    }
    Ok((all[start..].to_vec(), pos))
}

/// Copy log output past byte `pos` of the current file to `out` until
/// `keep_going` says stop (then once more, for what came in meanwhile),
/// following rotation. Start at the position `tail` returned.
pub fn follow(
    dir: &Path,
    out: &mut dyn Write,
    mut pos: u64,
    keep_going: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    let path = dir.join(LOG_FILE);
    let mut buf = vec![0u8; 8192];
    let mut last = false;
    loop {
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: the rest of the old file is in .1; then read the new one from 0.
            if let Ok(mut old) = File::open(rotated(&path)) {
                old.seek(SeekFrom::Start(pos))?;
                io::copy(&mut old, out)?;
            }
            pos = 0;
        }
        if len > pos {
            let mut f = File::open(&path)?;
            f.seek(SeekFrom::Start(pos))?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                pos += u64::try_from(n).unwrap_or(0);
            }
            out.flush()?;
        }
        if last {
            return Ok(());
        }
        if !keep_going() {
            last = true;
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::new(dir.path(), 10);
        log.write(b"0123456789abc\n").unwrap();
        log.write(b"line2\n").unwrap();
        let cur = fs::read(dir.path().join(LOG_FILE)).unwrap();
        let old = fs::read(dir.path().join("container.log.1")).unwrap();
        assert!(cur.len() <= 10 && old.len() <= 10);
        assert_eq!([old, cur].concat(), b"0123456789abc\nline2\n");
        // A third write rotates again: the oldest bytes are gone for good.
        log.write(b"z\n").unwrap();
        let cur = fs::read(dir.path().join(LOG_FILE)).unwrap();
        let old = fs::read(dir.path().join("container.log.1")).unwrap();
        assert_eq!([old, cur].concat(), b"abc\nline2\nz\n");
    }

    #[test]
    fn tail_counts_lines_across_generations() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("container.log.1"), "a\nb\n").unwrap();
        fs::write(dir.path().join(LOG_FILE), "c\nd\n").unwrap();
        assert_eq!(tail(dir.path(), Some(3)).unwrap(), b"b\nc\nd\n");
        assert_eq!(tail(dir.path(), Some(0)).unwrap(), b"");
        assert_eq!(tail(dir.path(), None).unwrap(), b"a\nb\nc\nd\n");
        assert_eq!(tail(dir.path(), Some(10)).unwrap(), b"a\nb\nc\nd\n");
    }

    #[test]
    fn follow_sees_appends() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOG_FILE), "old\n").unwrap();
        let mut out = Vec::new();
        let mut rounds = 0;
        let p = dir.path().to_path_buf();
        let (_, pos) = tail_at(dir.path(), None).unwrap();
        assert_eq!(pos, 4);
        follow(dir.path(), &mut out, pos, &mut || {
            rounds += 1;
            if rounds == 1 {
                fs::write(p.join(LOG_FILE), "old\nnew\n").unwrap();
            }
            rounds < 2
        })
        .unwrap();
        assert_eq!(out, b"new\n");
    }
}
