//! On-disk state: what `apply` created, written crash-safely, and the lock that
//! keeps two `apply` runs from interleaving.
//!
//! Layout under the store root: `containers/NAME/applied.json` (the Spec as last
//! applied, with its digest) and `apply.lock`. Every write is temp file, fsync,
//! rename, fsync of the directory, so a power cut leaves the old or the new file,
//! never half of one. Unchanged records are not rewritten, to spare the flash.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::host::Liveness;
use crate::model::{NetworkSpec, Spec};
use crate::plan::ObservedContainer;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("create state directory `{path}`")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("read `{path}`")]
    Read { path: PathBuf, source: io::Error },
    #[error("write `{path}`")]
    Write { path: PathBuf, source: io::Error },
    #[error("`{path}` is damaged; run `berth apply` to recreate the container")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("another berth holds `{path}`{holder}; wait for it to finish")]
    Locked { path: PathBuf, holder: String },
    #[error("lock `{path}`")]
    Lock { path: PathBuf, source: io::Error },
}

/// What `apply` recorded about one container it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Digest of `spec` (with its networks) when it was applied.
    pub digest: String,
    pub spec: Spec,
    /// The networks the container was attached to, as they were defined.
    pub networks: Vec<NetworkSpec>,
}

impl Record {
    /// The container as `plan` sees it, given whether it runs now.
    pub fn observed(&self, liveness: Liveness) -> ObservedContainer {
        ObservedContainer {
            digest: self.digest.clone(),
            resources: self.spec.resources.clone(),
            running: liveness != Liveness::Stopped,
            supervised: liveness != Liveness::Unsupervised,
            depends_on: self.spec.depends_on.clone(),
            damaged: false,
        }
    }
}

/// The pid holding a flock on inode `ino`, from /proc/locks lines such as
/// `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`.
fn lock_holder(locks: &str, ino: u64) -> Option<u32> {
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A blocked waiter's line has `->` after the number: not the holder.
        let file_ino = f.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
        (f.get(1) == Some(&"FLOCK") && file_ino == ino)
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

/// The records of all containers under a store root.
#[derive(Debug, Clone)]
pub struct RecordStore {
    root: PathBuf,
}

impl RecordStore {
    /// A store rooted at `root`; directories are made on first write.
    pub fn new(root: impl Into<PathBuf>) -> RecordStore {
        RecordStore { root: root.into() }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `name`.
    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.root.join("containers").join(name)
    }

    /// Take the apply lock without waiting. Held until the returned guard drops;
    /// the kernel releases it if the process dies, so a crash never leaves it stuck.
    pub fn lock(&self) -> Result<ApplyLock, RecordError> {
        create_dir(&self.root)?;
        let path = self.root.join("apply.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| RecordError::Lock {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a valid open descriptor; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
                let holder = fs::read_to_string("/proc/locks")
                    .ok()
                    .and_then(|locks| lock_holder(&locks, ino))
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(RecordError::Locked { path, holder });
            }
            return Err(RecordError::Lock { path, source: err });
        }
        // Nothing is written into the lock: a no-op apply (every minute under
        // `--serve --interval 60`) must not write to flash. The holder's pid is
        // read back from /proc/locks instead.
        Ok(ApplyLock { _file: file })
    }

    /// Every intact record, by container name (see [`RecordStore::load_all`]).
    pub fn load(&self) -> Result<BTreeMap<String, Record>, RecordError> {
        Ok(self
            .load_all()?
            .into_iter()
            .filter_map(|(name, rec)| Some((name, rec.ok()?)))
            .collect())
    }

    /// Every record, by container name; a damaged one is its own error, so it
    /// affects only its container. A missing store is an empty one.
    pub fn load_all(&self) -> Result<BTreeMap<String, Result<Record, RecordError>>, RecordError> {
        let dir = self.root.join("containers");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(RecordError::Read { path: dir, source }),
        };
        let mut out = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|source| RecordError::Read {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match self.get(&name) {
                Ok(Some(rec)) => {
                    out.insert(name, Ok(rec));
                }
                Ok(None) => {}
                Err(e @ RecordError::Corrupt { .. }) => {
                    out.insert(name, Err(e));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The record of `name`, if it has one.
    pub fn get(&self, name: &str) -> Result<Option<Record>, RecordError> {
        let path = self.container_dir(name).join("applied.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RecordError::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RecordError::Corrupt { path, source })
    }

    /// Record `rec` for container `rec.spec.name`, atomically; a no-op when unchanged.
    pub fn save(&self, rec: &Record) -> Result<(), RecordError> {
        let dir = self.container_dir(&rec.spec.name);
        create_dir(&dir)?;
        save_json(dir.join("applied.json"), rec)
    }

    /// Record that berth set up network `net` (bridge, VLAN, host link), so it
    /// is removed when the manifest drops it; a no-op when already recorded.
    pub fn save_network(&self, net: &NetworkSpec) -> Result<(), RecordError> {
        let dir = self.root.join("networks");
        create_dir(&dir)?;
        save_json(dir.join(format!("{}.json", net.name)), net)
    }

    /// Names of the recorded networks.
    pub fn networks(&self) -> Result<Vec<String>, RecordError> {
        let dir = self.root.join("networks");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(RecordError::Read { path: dir, source }),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Forget network `name`.
    pub fn remove_network(&self, name: &str) -> Result<(), RecordError> {
        let path = self.root.join("networks").join(format!("{name}.json"));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(RecordError::Write { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Forget container `name`: its record goes first, so a crash halfway leaves
    /// a directory without a record, which `load` ignores and the next remove finishes.
    pub fn remove(&self, name: &str) -> Result<(), RecordError> {
        let dir = self.container_dir(name);
        let rec = dir.join("applied.json");
        match fs::remove_file(&rec) {
            Ok(()) => sync_dir(&dir).map_err(|source| RecordError::Write {
                path: dir.clone(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(RecordError::Write { path: rec, source }),
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RecordError::Write { path: dir, source }),
        }
    }
}

/// Held while an `apply` runs.
#[derive(Debug)]
pub struct ApplyLock {
    _file: File,
}

fn create_dir(path: &Path) -> Result<(), RecordError> {
    fs::create_dir_all(path).map_err(|source| RecordError::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Write `value` as JSON to `path` atomically, unless the file already holds
/// exactly that: an unchanged record costs no flash write.
fn save_json<T: serde::Serialize>(path: PathBuf, value: &T) -> Result<(), RecordError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| RecordError::Corrupt {
        path: path.clone(),
        source,
    })?;
    if fs::read(&path).ok().as_deref() == Some(&bytes[..]) {
        return Ok(());
    }
    write_atomic(&path, &bytes).map_err(|source| RecordError::Write { path, source })
}

/// Replace `path` with `bytes` so that a crash leaves either the old or the new
/// content: write a temp file beside it, fsync, rename over, fsync the directory.
/// Every crash-safe write of berth goes through here.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        // A leftover of a killed run goes first; create_new (O_EXCL) never
        // follows a symlink planted at the temp name (a container's rootfs is
        // written this way too), and the rename replaces a link at `path`
        // itself instead of writing through it.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsync a directory so a rename or unlink in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{self, RenderInput};

    fn record(name: &str, cmd: &str) -> Record {
        let yaml = format!("version: 1\nimages: {{ bb: {{ path: /bb.tar }} }}\ncontainers:\n  {name}: {{ image: bb, command: [{cmd}] }}\n");
        let d = manifest::load("m.yaml", &yaml, "/", &RenderInput::default())
            .expect("valid")
            .desired;
        let spec = d.containers[name].clone();
        Record {
            digest: spec.digest(&d.networks),
            spec,
            networks: Vec::new(),
        }
    }

    #[test]
    fn save_load_remove_roundtrip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = RecordStore::new(tmp.path());
        assert!(store.load().expect("empty store").is_empty());
        let a = record("a", "sleep");
        store.save(&a).expect("save");
        store.save(&record("b", "true")).expect("save");
        let all = store.load().expect("load");
        assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(all["a"], a);
        store.remove("a").expect("remove");
        assert!(!store.container_dir("a").exists());
        assert_eq!(store.load().expect("load").len(), 1);
        store.remove("a").expect("removing twice is fine");
    }

    #[test]
    fn unchanged_record_is_not_rewritten() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = RecordStore::new(tmp.path());
        let a = record("a", "sleep");
        store.save(&a).expect("save");
        let path = store.container_dir("a").join("applied.json");
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).expect("stat"));
        let before = ino(&path);
        store.save(&a).expect("save again");
        assert_eq!(
            ino(&path),
            before,
            "an identical save must not replace the file"
        );
        store.save(&record("a", "true")).expect("save changed");
        assert_ne!(ino(&path), before, "a changed record is written by rename");
    }

    #[test]
    fn a_damaged_record_affects_only_its_container() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = RecordStore::new(tmp.path());
        store.save(&record("a", "sleep")).expect("save");
        fs::create_dir_all(store.container_dir("x")).expect("mkdir");
        fs::write(store.container_dir("x").join("applied.json"), b"{half").expect("write");
        let all = store.load_all().expect("the others still load");
        assert!(all["a"].is_ok());
        let err = all["x"].as_ref().map(drop).unwrap_err().to_string();
        assert!(
            err.contains("containers/x/applied.json") && err.contains("is damaged"),
            "{err}"
        );
        assert_eq!(
            store.load().expect("load").keys().collect::<Vec<_>>(),
            ["a"]
        );
    }

    #[test]
    fn directory_without_record_is_ignored() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = RecordStore::new(tmp.path());
        fs::create_dir_all(store.container_dir("half")).expect("mkdir");
        assert!(store.load().expect("load").is_empty());
    }

    #[test]
    fn second_lock_is_refused_until_first_drops() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = RecordStore::new(tmp.path());
        let held = store.lock().expect("first lock");
        let err = store.lock().unwrap_err().to_string();
        assert!(
            err.contains("another berth holds")
                && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        let path = tmp.path().join("apply.lock");
        let before = fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        store.lock().expect("free again");
        let after = fs::metadata(&path).expect("stat");
        assert_eq!(after.len(), 0, "nothing is written into the lock");
        assert_eq!(after.modified().expect("mtime"), before);
    }

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let locks = "1: -> FLOCK  ADVISORY  WRITE 99 fd:01:77 0 EOF\n\
                     1: FLOCK  ADVISORY  WRITE 4242 fd:01:77 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 17 fd:01:88 0 EOF\n";
        assert_eq!(lock_holder(locks, 77), Some(4242));
        assert_eq!(lock_holder(locks, 88), None, "a POSIX lock is not berth's");
        assert_eq!(lock_holder(locks, 5), None);
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("f.json");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("rewrite");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(fs::read_dir(tmp.path()).expect("ls").count(), 1);
    }
}
