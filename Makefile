# berth: the two commands are `make demo` and `make test` (see README.md).
# Every target installs what it needs on a fresh Debian machine, as root.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
BUILD := build
BERTH := target/debug/berth
APT_STAMP := $(BUILD)/.apt-updated
export CARGO_TERM_COLOR ?= never

.PHONY: all build demo demo-clean test test-unit test-root bench deps check-cargo rootfs lint fmt-check clean

all: build

# Install Debian packages given in $(1) when any is missing; apt-get update once.
define apt_install
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ ! -e $(APT_STAMP) ]; then apt-get update -q; mkdir -p $(BUILD); touch $(APT_STAMP); fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

check-cargo:
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found; install Rust with rustup (berth needs Rust 1.75 or newer)" >&2; exit 1; }

deps: check-cargo
	$(call apt_install,busybox-static iproute2 util-linux python3 gzip xz-utils)

build: check-cargo
	$(CARGO) build --locked

$(BUILD)/busybox-rootfs.tar.gz: scripts/mkrootfs-busybox.sh | deps
	@mkdir -p $(BUILD)
	scripts/mkrootfs-busybox.sh $@

rootfs: $(BUILD)/busybox-rootfs.tar.gz

# The demo runs berth in a throwaway network namespace that plays the router, so
# it never touches this machine's own interfaces.
DEMO_NS := berth-demo
DEMO_ROOT := $(BUILD)/demo-store
DEMO_MANIFEST := examples/web-bridge.yaml
demo: build rootfs
	./$(BERTH) validate $(DEMO_MANIFEST)
	./$(BERTH) plan --root $(DEMO_ROOT) $(DEMO_MANIFEST)

demo-clean:
	-ip netns del $(DEMO_NS) 2>/dev/null
	rm -rf $(DEMO_ROOT)

# Unit and CLI tests. Root tests (tests/root_*.rs) are a separate tier.
test-unit: deps
	$(CARGO) test --locked --lib --test cli

# Root tests: under `make test` a root test that skips is a failure.
ROOT_TESTS := $(patsubst tests/%.rs,%,$(wildcard tests/root_*.rs))
test-root: deps rootfs
	@[ "$$(id -u)" = 0 ] || { echo "make test-root: needs root (namespaces, cgroups, netlink)" >&2; exit 1; }
	$(if $(ROOT_TESTS),BERTH_ROOT_TESTS=required BERTH_TEST_ROOTFS=$(CURDIR)/$(BUILD)/busybox-rootfs.tar.gz \
		$(CARGO) test --locked $(addprefix --test ,$(ROOT_TESTS)),@echo "no root tests")

lint: check-cargo
	@if command -v rustup >/dev/null; then rustup component add clippy rustfmt 2>/dev/null || true; fi
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Fragments add their own tiers to these lists (mk/*.mk).
TEST_TIERS := lint test-unit test-root
BENCH_TIERS :=
include $(wildcard mk/*.mk)

test: $(TEST_TIERS)
	@echo "make test: all tiers passed ($(TEST_TIERS))"

bench: $(BENCH_TIERS)
	@echo "make bench: figures in docs/benchmarks.md"

clean:
	rm -rf $(BUILD) target
