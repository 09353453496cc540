//! What the device has accepted, on flash: the last accepted manifest and key
//! list, each with its signature and verdict, under `STORE/trust/`. The
//! version kept here is the anti-rollback counter, and the manifest kept here
//! is what the device boots from when the origin cannot be reached.
//!
//! Each document is one file written crash-safely (records::write_atomic), so
//! a power cut leaves the old or the new one. A file is only written when a
//! newer version is accepted: a poll that finds the same manifest writes
//! nothing.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fleet::policy::Accepted;
use crate::host::records::write_atomic;

/// Errors of the trust store.
#[derive(Debug, thiserror::Error)]
pub enum TrustedError {
    #[error("read `{path}`")]
    Read { path: PathBuf, source: io::Error },
    #[error("write `{path}`")]
    Write { path: PathBuf, source: io::Error },
    #[error("`{path}` is damaged; the accepted version is lost: restore it, or remove it to accept the next signed document of any version")]
    Damaged {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// A signed document the device accepted, with what it needs to be checked
/// again (keys rotate) and used offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDoc {
    /// Where it came from (URL or path).
    pub source: String,
    /// The verdict: version, digest, key, times.
    pub accepted: Accepted,
    /// The document itself.
    pub text: String,
    /// Its .minisig file.
    pub signature: String,
}

/// The two kinds of document kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    KeyList,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest.json",
            Kind::KeyList => "keys.json",
        }
    }
}

/// `STORE/trust/`.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    /// The trust store of the store at `store_root`.
    pub fn new(store_root: &Path) -> Self {
        TrustStore {
            dir: store_root.join("trust"),
        }
    }

    /// Where a kind of document is kept.
    pub fn path(&self, kind: Kind) -> PathBuf {
        self.dir.join(kind.file())
    }

    /// The accepted document of `kind`, if one was accepted.
    pub fn load(&self, kind: Kind) -> Result<Option<StoredDoc>, TrustedError> {
        let path = self.path(kind);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TrustedError::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| TrustedError::Damaged { path, source })
    }

    /// Keep `doc` as the accepted document of `kind`.
    pub fn save(&self, kind: Kind, doc: &StoredDoc) -> Result<(), TrustedError> {
        let path = self.path(kind);
        let write = || {
            std::fs::create_dir_all(&self.dir)?;
            let bytes = serde_json::to_vec(doc).map_err(io::Error::from)?;
            write_atomic(&path, &bytes)
        };
        write().map_err(|source| TrustedError::Write {
            path: path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: u64) -> StoredDoc {
        StoredDoc {
            source: "https://fleet.example/m.yaml".into(),
            accepted: Accepted {
                version,
                sha256: "ab".into(),
                key_id: "K".into(),
                signed_at: Some(1),
                expires: None,
            },
            text: "version: 1\n".into(),
            signature: "untrusted comment: x\n".into(),
        }
    }

    #[test]
    fn documents_round_trip_and_damage_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = TrustStore::new(tmp.path());
        assert_eq!(store.load(Kind::Manifest).expect("empty"), None);
        store.save(Kind::Manifest, &doc(3)).expect("saved");
        store.save(Kind::KeyList, &doc(1)).expect("saved");
        assert_eq!(store.load(Kind::Manifest).expect("read"), Some(doc(3)));
        assert_eq!(store.load(Kind::KeyList).expect("read"), Some(doc(1)));
        std::fs::write(store.path(Kind::Manifest), b"{\"source\":").expect("damage");
        let e = store.load(Kind::Manifest).expect_err("damaged");
        assert!(
            e.to_string().contains("trust/manifest.json` is damaged"),
            "{e}"
        );
    }
}
