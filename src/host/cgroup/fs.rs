//! Small file helpers the cgroup backends share: one value per write(2),
//! errors that name the file, and removal that waits for exiting tasks.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{CgroupError, Result};

/// Read a whole cgroup file.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a file, `None` when it is missing or unreadable (optional accounting files).
pub(crate) fn read_opt(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Write one value in one write(2), as cgroupfs wants. An empty value is sent
/// as a newline: some kernels ignore a zero-length write.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let data = if value.is_empty() { "\n" } else { value };
    write_raw(path, data).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

fn write_raw(path: &Path, data: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(data.as_bytes())
}

/// mkdir -p that reports the directory that failed.
pub(crate) fn mkdir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Create {
        path: path.to_path_buf(),
        source,
    })
}

/// Parse a cgroup.procs text.
pub(crate) fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Remove a cgroup directory and its child cgroups (a container may make its
/// own, e.g. systemd inside), children first. rmdir fails with EBUSY while
/// tasks are still exiting, so it is retried for up to `wait`.
pub(crate) fn remove_tree(path: &Path, wait: Duration) -> Result<()> {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Remove {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path(), wait)?;
        }
    }
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Send SIGKILL to every pid; a pid that already exited is fine.
pub(crate) fn kill_pids(pids: &[i32], dir: &Path) -> Result<()> {
    for &pid in pids {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(CgroupError::Kill {
                    pid,
                    path: dir.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// How long `remove` waits for exiting tasks.
pub(crate) const REMOVE_WAIT: Duration = Duration::from_secs(5);
/// How long `freeze` waits for the kernel to report frozen.
pub(crate) const FREEZE_WAIT: Duration = Duration::from_secs(5);
