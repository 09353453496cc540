# Image store: tests and benchmark (included by the top-level Makefile).
# Every target installs what it needs on a fresh Debian 12, as root.

CARGO ?= cargo
IMAGES_APT := xz-utils zstd bzip2 openssl python3 busybox-static

.PHONY: images-deps test-images bench-images

images-deps:
	@missing=""; for p in $(IMAGES_APT) $(IMAGES_APT_EXTRA); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

# Unit tests (malicious tarballs, formats, http on loopback, OCI, kill -9)
# and the root tests (owners, devices, file caps, overlay mounts).
test-images: images-deps
	$(CARGO) test --lib host::store
	$(CARGO) test --test root_store

# Extraction of the same ~40 MB .tar.gz of 5,000 files by berth (the
# firmware build of `make static`, sha256 in the same pass), GNU tar and
# busybox tar; figures are appended to docs/benchmarks.md under "## Image extraction".
bench-images: IMAGES_APT_EXTRA = hyperfine time tar gzip
bench-images: images-deps static
	bench/extract.sh $(STATIC_BIN)
BENCH_TIERS += bench-images
