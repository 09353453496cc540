//! `images/refs.json`: the digest each registry reference (a tag) resolved
//! to when it was pulled, so a tag is resolved once and `plan` shows the
//! digest; `berth image pull` resolves it again. Written atomically;
//! an unreadable file counts as empty (the tag is then resolved again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Largest refs.json read.
const MAX_REFS: u64 = 1 << 20;

fn path(store_root: &Path) -> PathBuf {
    store_root.join("images").join("refs.json")
}

/// Every recorded reference and its digest (hex).
pub(crate) fn load(store_root: &Path) -> BTreeMap<String, String> {
    let p = path(store_root);
    let too_big = std::fs::metadata(&p).map_or(true, |m| m.len() > MAX_REFS);
    if too_big {
        return BTreeMap::new();
    }
    std::fs::read(&p)
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// The digest (hex) `reference` (canonical text) was pulled as, if recorded.
pub fn recorded_ref(store_root: &Path, reference: &str) -> Option<String> {
    let canonical = crate::manifest::reference::Reference::parse(reference).ok()?;
    load(store_root).remove(&canonical.to_string())
}

/// Record `reference` -> `digest` (`None`: forget it).
pub(crate) fn record(
    store_root: &Path,
    image: &str,
    reference: &str,
    digest: Option<&str>,
) -> Result<(), StoreError> {
    let mut all = load(store_root);
    let changed = match digest {
        Some(d) => all.insert(reference.to_owned(), d.to_owned()).as_deref() != Some(d),
        None => all.remove(reference).is_some(),
    };
    if !changed {
        return Ok(());
    }
    let data = serde_json::to_vec_pretty(&all)
        .map_err(|e| StoreError::io(image, "encode", &path(store_root), e.into()))?;
    super::write_atomic(image, &path(store_root), &data)
}

/// Forget every reference whose digest is not in `keep`.
pub(crate) fn retain(store_root: &Path, keep: &dyn Fn(&str) -> bool) -> Result<(), StoreError> {
    let all = load(store_root);
    for (r, d) in &all {
        if !keep(d) {
            record(store_root, "-", r, None)?;
        }
    }
    Ok(())
}
