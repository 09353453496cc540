//! Entering a running container (`berth exec`): written next.
