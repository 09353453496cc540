//! sha256 of local image tarballs named without `sha256:`, remembered by the
//! file's identity (device, inode, size, mtime, ctime) in `images/local.json`,
//! so an unchanged tarball is hashed once instead of at every `apply`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What identifies a file's content well enough to trust a stored digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    sha256: String,
}

/// Digests of local files, cached under a store root.
#[derive(Debug)]
pub struct LocalDigests {
    path: PathBuf,
    entries: BTreeMap<String, Stamp>,
    changed: bool,
}

impl LocalDigests {
    /// The cache of the store at `store_root`; missing or damaged is empty.
    pub fn open(store_root: &Path) -> LocalDigests {
        let path = store_root.join("images").join("local.json");
        let entries = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        LocalDigests {
            path,
            entries,
            changed: false,
        }
    }

    /// sha256 of `file`, from the cache when the file is unchanged.
    pub fn digest(&mut self, file: &Path) -> io::Result<String> {
        let m = fs::metadata(file)?;
        let key = file.to_string_lossy().into_owned();
        let stamp = |sha256: String| Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            sha256,
        };
        if let Some(s) = self.entries.get(&key) {
            if *s == stamp(s.sha256.clone()) {
                return Ok(s.sha256.clone());
            }
        }
        let sha = sha256_file(file)?;
        self.entries.insert(key, stamp(sha.clone()));
        self.changed = true;
        Ok(sha)
    }

    /// Write the cache back if a digest was computed (only into an existing
    /// store: `plan` on a fresh device creates nothing).
    pub fn save(&self) -> io::Result<()> {
        let dir_exists = self.path.parent().is_some_and(Path::is_dir);
        if !self.changed || !dir_exists {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&self.entries).map_err(io::Error::other)?;
        crate::host::records::write_atomic(&self.path, &bytes)
    }
}

/// sha256 (lowercase hex) of a file's content.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::model::hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_not_hashed_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(tmp.path().join("images")).expect("mkdir");
        let f = tmp.path().join("img.tar");
        fs::write(&f, b"one").expect("write");
        let mut c = LocalDigests::open(tmp.path());
        let first = c.digest(&f).expect("digest");
        assert_eq!(first, sha256_file(&f).expect("sha"));
        c.save().expect("save");
        // A forged entry with the right stamp proves the cache is used...
        let mut c = LocalDigests::open(tmp.path());
        let key = f.to_string_lossy().into_owned();
        c.entries.get_mut(&key).expect("entry").sha256 = "cached".into();
        assert_eq!(c.digest(&f).expect("digest"), "cached");
        // ...and a changed file is hashed afresh.
        fs::write(&f, b"two, longer").expect("rewrite");
        assert_eq!(c.digest(&f).expect("digest"), sha256_file(&f).expect("sha"));
        assert_ne!(c.digest(&f).expect("digest"), first);
    }

    #[test]
    fn no_store_no_cache_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("img.tar");
        fs::write(&f, b"x").expect("write");
        let mut c = LocalDigests::open(&tmp.path().join("store"));
        c.digest(&f).expect("digest");
        c.save().expect("save");
        assert!(!tmp.path().join("store").exists());
    }
}
