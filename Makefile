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
	$(call apt_install,busybox-static iproute2 util-linux procps python3 gzip xz-utils zstd bzip2 openssl tar)

build: check-cargo
	$(CARGO) build --locked

$(BUILD)/busybox-rootfs.tar.gz: scripts/mkrootfs-busybox.sh | deps
	@mkdir -p $(BUILD)
	scripts/mkrootfs-busybox.sh $@

rootfs: $(BUILD)/busybox-rootfs.tar.gz

# The demo runs berth in a throwaway network namespace that plays the router, so
# it never touches this machine's own interfaces. `make demo-clean` removes it all.
DEMO_NS := berth-demo
DEMO_DIR := $(BUILD)/demo
DEMO_MANIFEST := examples/web-bridge.yaml
DEMO_BERTH = nsenter --net=/run/netns/$(DEMO_NS) ./$(BERTH) --root $(DEMO_DIR)/store --runtime-dir $(DEMO_DIR)/run
# The demo's device trusts only what the demo key signs, local files included.
DEMO_SIGNED = $(DEMO_BERTH) --keys $(DEMO_DIR)/keys --require-signed
demo: build rootfs
	./$(BERTH) validate $(DEMO_MANIFEST)
	@echo "--- sign the manifest with a demo key (a fleet's CI does this) and trust only that key"
	@mkdir -p $(DEMO_DIR)/keys
	@test -f $(DEMO_DIR)/demo.key || ./$(BERTH) key generate $(DEMO_DIR)/demo --no-passphrase
	@cp $(DEMO_DIR)/demo.pub $(DEMO_DIR)/keys/
	./$(BERTH) sign --key $(DEMO_DIR)/demo.key --version $$(date +%s) $(DEMO_MANIFEST)
	./$(BERTH) verify --key $(DEMO_DIR)/demo.pub $(DEMO_MANIFEST)
	@ip netns list | grep -qw $(DEMO_NS) || { ip netns add $(DEMO_NS) && ip netns exec $(DEMO_NS) ip link set lo up; }
	$(DEMO_SIGNED) plan $(DEMO_MANIFEST)
	$(DEMO_SIGNED) apply $(DEMO_MANIFEST)
	$(DEMO_BERTH) status
	@echo "--- the router (netns $(DEMO_NS)) fetches http://10.88.0.10/ from the container:"
	@for i in 1 2 3 4 5 6 7 8 9 10; do \
		page=$$(printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec $(DEMO_NS) busybox nc -w 2 10.88.0.10 80 || true); \
		case "$$page" in *"served by berth"*) echo "$$page" | tail -n 1; exit 0;; esac; sleep 0.2; \
	done; echo "make demo: no page from the container" >&2; exit 1
	@echo "--- apply again: nothing to do"
	$(DEMO_SIGNED) apply $(DEMO_MANIFEST)

demo-clean:
	@mkdir -p $(DEMO_DIR) && printf 'version: 1\ncontainers: {}\n' > $(DEMO_DIR)/empty.yaml
	-@ip netns list | grep -qw $(DEMO_NS) && $(DEMO_BERTH) apply $(DEMO_DIR)/empty.yaml
	-@ip netns del $(DEMO_NS) 2>/dev/null
	-@rmdir /sys/fs/cgroup/*/berth 2>/dev/null
	rm -rf $(DEMO_DIR) $(DEMO_MANIFEST).minisig

# Unit and CLI tests. Root tests (tests/root_*.rs) are a separate tier.
test-unit: deps
	$(CARGO) test --locked --lib --test cli --test cli_inputs --test cli_serve --test cli_fleet
	@# the feature-gated paths: a berth built with no optional feature
	$(CARGO) test --locked --lib --no-default-features

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
	@# no import cycle, no import up a layer (docs/design.md, the module map)
	python3 scripts/module_graph.py

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
