//! The observe step of the flow: what the device has now, for `plan` to
//! compare with the manifest. It reads the record store and asks the host
//! which containers run and which images are present; it writes nothing (the
//! local-image digest cache is returned for `apply` to save).

use std::collections::BTreeMap;
use std::path::Path;

use crate::host::records::{RecordError, RecordStore};
use crate::host::store::digests::LocalDigests;
use crate::host::{Host, HostError};
use crate::model::{Desired, ImageSource};
use crate::plan::{Observed, ObservedContainer};

/// Why the device could not be observed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The record store could not be read.
    #[error("read the apply records")]
    Records(#[from] RecordError),
    /// The host could not say whether a container runs.
    #[error("check whether `{container}` runs")]
    Running {
        container: String,
        #[source]
        source: HostError,
    },
}

/// What the device has: the record store's records, checked against the host.
pub fn observe(records: &RecordStore, host: &mut dyn Host) -> Result<Observed, ObserveError> {
    let mut observed = Observed::default();
    for (name, rec) in records.load_all()? {
        // A damaged record costs only its own container: planned as a recreate.
        let Ok(rec) = rec else {
            observed
                .containers
                .insert(name, ObservedContainer::damaged());
            continue;
        };
        let liveness = host
            .liveness(&name)
            .map_err(|source| ObserveError::Running {
                container: name.clone(),
                source,
            })?;
        observed.containers.insert(name, rec.observed(liveness));
    }
    observed.images = host.present_images();
    observed.networks = records.networks()?.into_iter().collect();
    Ok(observed)
}

/// A local image without `sha256:` is identified by hashing the file now, so a
/// changed tarball recreates its containers. A missing file takes the digest
/// `berth install` locked at build time, if any; else it stays unhashed and the
/// fetch step reports it. Digests are cached by file identity in the store:
/// the cache is returned for the caller to save (or not).
pub fn hash_local_images(
    desired: &mut Desired,
    lock: &BTreeMap<String, String>,
    store_root: &Path,
) -> LocalDigests {
    let mut cache = LocalDigests::open(store_root);
    desired.pin_images(|img| match &img.source {
        ImageSource::Path(p) => cache
            .digest(Path::new(p))
            .ok()
            .or_else(|| lock.get(&img.name).cloned()),
        // A registry tag: the digest it was pulled as (store/refs.rs).
        #[cfg(feature = "registry")]
        ImageSource::Registry(r) => crate::host::store::recorded_ref(store_root, &r.reference),
        _ => None,
    });
    cache
}
