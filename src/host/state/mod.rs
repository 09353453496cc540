//! On-disk state: atomic writes and the apply lock.
