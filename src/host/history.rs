//! What `apply --wait` decided, on flash, under `STORE/history/`:
//!
//! - `last-good.json`: the last desired state under which every container
//!   it started turned healthy, with the manifest's sha256 and version: what
//!   a failed update rolls back to. Its images are kept by `image gc`.
//! - `last-apply.json`: the outcome of the last apply that waited (applied,
//!   rolling back, rolled back, refused, failed), with the reason: the one
//!   place fleet reporting and `berth status` read.
//!
//! Each file is written crash-safely (records::write_atomic), and only when
//! its content changes: a poll that finds nothing new writes nothing. A
//! `rolling-back` outcome on disk means a rollback was cut short: the next
//! apply of that manifest finishes it.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use std::collections::BTreeMap;

use crate::host::records::write_atomic;

/// Errors of the history files.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("read `{path}`")]
    Read { path: PathBuf, source: io::Error },
    #[error("write `{path}`")]
    Write { path: PathBuf, source: io::Error },
    #[error("`{path}` is damaged; remove it (the next healthy apply writes it again)")]
    Damaged { path: PathBuf },
}

/// Which manifest: its sha256 (of the text as fetched or read) and, when it
/// was signed, its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Some(v) => write!(f, "version {v}"),
            None => write!(f, "sha256 {}", &self.sha256[..self.sha256.len().min(12)]),
        }
    }
}

/// The last desired state that was healthy, as the manifest it came from
/// after rendering (templates are not rendered again: the device's facts may
/// have changed), with the digests its images had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastGood {
    pub revision: Revision,
    /// Seconds since the epoch.
    pub at: u64,
    /// The manifest's name in messages.
    pub file: String,
    /// The rendered YAML, validated again to roll back.
    pub rendered: String,
    /// What its relative image paths are relative to.
    pub base_dir: String,
    /// Image name -> sha256: what the images were, whatever their files
    /// hold now.
    pub images: BTreeMap<String, String>,
}

/// How the last waited apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Applied, and every container it started turned healthy.
    Applied,
    /// Unhealthy; going back to the last good state (cut short if still on disk).
    RollingBack,
    /// Unhealthy, and the last good state is back.
    RolledBack,
    /// Rolled back before, and asked for again: not applied. `at` stays
    /// the time of the rollback.
    Refused,
    /// Unhealthy, with no earlier good state to go back to: left as it is.
    Failed,
}

impl Outcome {
    /// The name in the file (kebab-case, as serialized).
    fn parse(name: &str) -> Option<Self> {
        [
            Outcome::Applied,
            Outcome::RollingBack,
            Outcome::RolledBack,
            Outcome::Refused,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str().replace(' ', "-") == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::RollingBack => "rolling back",
            Outcome::RolledBack => "rolled back",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// `last-apply.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastApply {
    pub outcome: Outcome,
    /// The manifest the apply was asked to run.
    pub revision: Revision,
    /// What runs instead after a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<Revision>,
    /// Why it was not applied: "container `dns` unhealthy: ...".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds since the epoch.
    pub at: u64,
}

impl LastApply {
    /// Whether this record bars `revision` from being applied again: it was
    /// rolled back (or its rollback was cut short).
    pub fn bars(&self, revision: &Revision) -> bool {
        self.revision.sha256 == revision.sha256
            && matches!(
                self.outcome,
                Outcome::RollingBack | Outcome::RolledBack | Outcome::Refused
            )
    }
}

fn revision(v: &Value) -> Option<Revision> {
    Some(Revision {
        sha256: v.get("sha256")?.as_str()?.to_string(),
        version: match v.get("version") {
            None | Some(Value::Null) => None,
            Some(n) => Some(n.as_u64()?),
        },
    })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_string)
}

/// `STORE/history/`.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

const LAST_GOOD: &str = "last-good.json";
const LAST_APPLY: &str = "last-apply.json";

impl History {
    /// The history of the store at `store_root`.
    pub fn new(store_root: &Path) -> Self {
        History {
            dir: store_root.join("history"),
        }
    }

    pub fn last_good(&self) -> Result<Option<LastGood>, HistoryError> {
        self.load(LAST_GOOD, |v| {
            Some(LastGood {
                revision: revision(v.get("revision")?)?,
                at: v.get("at")?.as_u64()?,
                file: text(v, "file")?,
                rendered: text(v, "rendered")?,
                base_dir: text(v, "base_dir")?,
                images: v
                    .get("images")?
                    .as_object()?
                    .iter()
                    .map(|(k, d)| Some((k.clone(), d.as_str()?.to_string())))
                    .collect::<Option<_>>()?,
            })
        })
    }

    pub fn last_apply(&self) -> Result<Option<LastApply>, HistoryError> {
        self.load(LAST_APPLY, |v| {
            Some(LastApply {
                outcome: Outcome::parse(v.get("outcome")?.as_str()?)?,
                revision: revision(v.get("revision")?)?,
                rolled_back_to: match v.get("rolled_back_to") {
                    None | Some(Value::Null) => None,
                    Some(r) => Some(revision(r)?),
                },
                reason: match v.get("reason") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(text(v, "reason")?),
                },
                at: v.get("at")?.as_u64()?,
            })
        })
    }

    /// Record `good` as the state to roll back to (unless it is already).
    pub fn set_last_good(&self, good: &LastGood) -> Result<(), HistoryError> {
        let same = self
            .last_good()
            .ok()
            .flatten()
            .is_some_and(|g| LastGood { at: good.at, ..g } == *good);
        if same {
            return Ok(());
        }
        self.save(LAST_GOOD, good)
    }

    /// Record how the apply ended. Unchanged but for the time: not rewritten.
    pub fn set_last_apply(&self, last: &LastApply) -> Result<(), HistoryError> {
        let same = self
            .last_apply()
            .ok()
            .flatten()
            .is_some_and(|l| LastApply { at: last.at, ..l } == *last);
        if same {
            return Ok(());
        }
        self.save(LAST_APPLY, last)
    }

    /// Read `file` as JSON and take it apart with `from` (through a
    /// `Value`, whose reader the binary has anyway: derived deserializers
    /// would cost 10 KiB of flash for two small files).
    fn load<T>(
        &self,
        file: &str,
        from: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<T>, HistoryError> {
        let path = self.dir.join(file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(HistoryError::Read { path, source }),
        };
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .as_ref()
            .and_then(from)
            .map(Some)
            .ok_or(HistoryError::Damaged { path })
    }

    fn save<T: Serialize>(&self, file: &str, value: &T) -> Result<(), HistoryError> {
        let path = self.dir.join(file);
        let write = |source| HistoryError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(write)?;
        let json = serde_json::to_vec_pretty(value).map_err(|e| write(io::Error::other(e)))?;
        write_atomic(&path, &json).map_err(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(s: &str, v: Option<u64>) -> Revision {
        Revision {
            sha256: s.repeat(64 / s.len()),
            version: v,
        }
    }

    #[test]
    fn records_round_trip_and_are_written_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        assert_eq!(h.last_good().unwrap(), None);
        assert_eq!(h.last_apply().unwrap(), None);
        let last = LastApply {
            outcome: Outcome::Applied,
            revision: rev("a", Some(3)),
            rolled_back_to: None,
            reason: None,
            at: 10,
        };
        h.set_last_apply(&last).unwrap();
        let path = dir.path().join("history/last-apply.json");
        let first = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        h.set_last_apply(&LastApply {
            at: 99,
            ..last.clone()
        })
        .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), first);
        assert_eq!(
            h.last_apply().unwrap().unwrap().at,
            10,
            "kept, not rewritten"
        );

        let good = LastGood {
            revision: rev("b", None),
            at: 5,
            file: "m.yaml".into(),
            rendered: "version: 1\n".into(),
            base_dir: "/etc/berth".into(),
            images: BTreeMap::new(),
        };
        h.set_last_good(&good).unwrap();
        assert_eq!(h.last_good().unwrap(), Some(good));
    }

    #[test]
    fn a_rolled_back_manifest_is_barred_until_another_comes() {
        let bad = rev("b", Some(12));
        let mut last = LastApply {
            outcome: Outcome::RolledBack,
            revision: bad.clone(),
            rolled_back_to: Some(rev("a", Some(11))),
            reason: Some("container `dns` unhealthy: exit code 1".into()),
            at: 0,
        };
        assert!(last.bars(&bad));
        assert!(!last.bars(&rev("c", Some(13))), "a newer one");
        last.outcome = Outcome::RollingBack;
        assert!(last.bars(&bad), "a rollback cut short");
        last.outcome = Outcome::Applied;
        assert!(!last.bars(&bad));
        assert_eq!(rev("b", Some(12)).to_string(), "version 12");
        assert_eq!(rev("b", None).to_string(), "sha256 bbbbbbbbbbbb");
    }

    #[test]
    fn every_outcome_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        for outcome in [
            Outcome::Applied,
            Outcome::RollingBack,
            Outcome::RolledBack,
            Outcome::Refused,
            Outcome::Failed,
        ] {
            let last = LastApply {
                outcome,
                revision: rev("c", Some(13)),
                rolled_back_to: Some(rev("d", None)),
                reason: Some("container `dns` unhealthy:\nexit code 1".into()),
                at: 7,
            };
            h.set_last_apply(&last).unwrap();
            assert_eq!(h.last_apply().unwrap(), Some(last));
        }
        let mut images = BTreeMap::new();
        images.insert("bb".to_string(), "e".repeat(64));
        let good = LastGood {
            revision: rev("f", Some(2)),
            at: 9,
            file: "https://fleet/m.yaml".into(),
            rendered: "version: 1\n# ü\n".into(),
            base_dir: "/".into(),
            images,
        };
        h.set_last_good(&good).unwrap();
        assert_eq!(h.last_good().unwrap(), Some(good));
    }

    #[test]
    fn a_damaged_file_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("history")).unwrap();
        std::fs::write(dir.path().join("history/last-good.json"), b"{nope").unwrap();
        let e = History::new(dir.path()).last_good().unwrap_err();
        assert!(e.to_string().contains("remove it"), "{e}");
        // Valid JSON, but not a history record: damaged too.
        std::fs::write(
            dir.path().join("history/last-apply.json"),
            b"{\"outcome\": \"maybe\"}",
        )
        .unwrap();
        assert!(History::new(dir.path()).last_apply().is_err());
    }
}
