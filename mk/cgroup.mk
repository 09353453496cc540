# cgroup area: root tests (v1 on this host) and the VM harness (cgroup v2).
# `make test` should call test-cgroup-root and vmtest.

CARGO ?= cargo
VM_DIR ?= build/vm
MUSL_TARGET := x86_64-unknown-linux-musl

.PHONY: test-cgroup-root vmtest vmtest-deps vmtest-bins

# Root tests of the cgroup backends on this host (v1 or hybrid). A skip is a failure here.
test-cgroup-root:
	BERTH_REQUIRE_ROOT=1 $(CARGO) test --test root_cgroup

vmtest-deps:
	@command -v qemu-system-x86_64 >/dev/null && command -v cpio >/dev/null && [ -x /bin/busybox ] || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      qemu-system-x86 cpio busybox-static; }
	rustup target add $(MUSL_TARGET)

# Static test binaries and berth for the VM. Other areas add theirs to VM_TESTS.
VM_TESTS ?= root_cgroup
vmtest-bins: vmtest-deps
	rm -f $(VM_DIR)/bins.txt; mkdir -p $(VM_DIR)
	$(CARGO) build --target $(MUSL_TARGET) --bin berth
	echo target/$(MUSL_TARGET)/debug/berth > $(VM_DIR)/bins.txt
	$(CARGO) test --target $(MUSL_TARGET) $(addprefix --test ,$(VM_TESTS)) --no-run --message-format=json \
	  | sed -n 's/.*"executable":"\([^"]*\/deps\/[^"]*\)".*/\1/p' >> $(VM_DIR)/bins.txt

# Boot the Debian kernel under qemu (TCG) and run tests/vm/scenarios/*.
vmtest: vmtest-bins
	VM_DIR=$(abspath $(VM_DIR)) VM_BINS="$$(cat $(VM_DIR)/bins.txt)" tests/vm/run.sh
