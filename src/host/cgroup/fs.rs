//! Small file helpers the cgroup backends share: one value per write(2),
//! errors that name the file, and removal that waits for exiting tasks.

use std::io;
use std::path::{Path, PathBuf};
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

/// The pids of cgroup `dir` and of every cgroup below it (a full-OS init
/// makes its own).
pub(crate) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => out.extend(parse_pids(&t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.join("cgroup.procs"),
                source,
            })
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// A payload leaf as the next start needs it: what the init made below it in
/// its last run removed (on v2 its controllers enabled there would refuse the
/// new init), the leaf itself made again. With a user namespace the leaf is
/// delegated to the container's root as cgroup v2 delegation prescribes: the
/// directory and the files that move processes and make children, never
/// the limits (those stay on the container's cgroup above it).
pub(crate) fn reset_payload(leaf: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    remove_tree(leaf, REMOVE_WAIT)?;
    mkdir_all(leaf)?;
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    let give = |path: PathBuf| {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .map_err(|source| CgroupError::Delegate { path, source })
    };
    give(leaf.to_path_buf())?;
    // v1 has no cgroup.threads, v2 no tasks.
    for name in [
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.subtree_control",
        "tasks",
    ] {
        match give(leaf.join(name)) {
            Err(CgroupError::Delegate { source, .. })
                if source.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// How long `remove` waits for exiting tasks.
pub(crate) const REMOVE_WAIT: Duration = Duration::from_secs(5);
/// How long `freeze` waits for the kernel to report frozen.
pub(crate) const FREEZE_WAIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    /// What the last run left below the leaf goes; the leaf stays; with a
    /// user namespace the leaf and the files that exist go to its root.
    #[test]
    fn payload_is_emptied_and_given_to_the_containers_root() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf = tmp.path().join("payload");
        std::fs::create_dir_all(leaf.join("init.scope/deep")).unwrap();
        reset_payload(&leaf, None).unwrap();
        assert!(leaf.is_dir());
        assert!(!leaf.join("init.scope").exists());
        // SAFETY: geteuid has no arguments.
        if unsafe { libc::geteuid() } != 0 {
            return; // chown to another user needs root
        }
        // A plain directory has none of the interface files: each is skipped.
        reset_payload(&leaf, Some((100_000, 100_000))).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&leaf).unwrap().uid(), 100_000);
    }
}
