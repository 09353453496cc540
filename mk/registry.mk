# Registry pulls (src/host/store/registry.rs, pull.rs): berth against
# Debian's docker-registry, pushed to with skopeo, with htpasswd and token
# auth, a cutting proxy for resume and a hostile fake registry; all on
# 127.0.0.1 (tests/registry/run.py). The benchmark pulls a ~40 MB,
# 5-layer image beside `skopeo copy` + `umoci unpack`.

.PHONY: test-registry bench-registry registry-deps
TEST_TIERS += test-registry
BENCH_TIERS += bench-registry
REGISTRY_APT := docker-registry skopeo umoci apache2-utils python3 python3-cryptography

registry-deps:
	$(call apt_install,$(REGISTRY_APT))

# The feature is in the default set (Cargo.toml): `make lint` and
# `test-unit` cover its code; this tier runs the pulls against real servers.
test-registry: registry-deps check-cargo rootfs
	$(CARGO) build --locked
	BERTH_TEST_ROOTFS=$(CURDIR)/$(BUILD)/busybox-rootfs.tar.gz python3 tests/registry/run.py $(BERTH)

# The firmware build of `make static`.
bench-registry: IMAGES_APT_EXTRA = time
bench-registry: registry-deps images-deps
	sh scripts/cross/deps.sh static
	$(STATIC_BUILD)
	@mkdir -p $(BUILD) && cp $(STATIC_BIN) $(BUILD)/berth-registry
	python3 bench/registry.py $(BUILD)/berth-registry $(BUILD)/bench-registry.md
	python3 bench/put_section.py docs/benchmarks.md $(BUILD)/bench-registry.md
