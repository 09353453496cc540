# cgroup area: the VM harness (cgroup v2 under qemu, TCG). The v1 root tests
# (tests/root_cgroup.rs) run in the Makefile's test-root tier with the others.
# `make vmtest` boots a Debian kernel with an initramfs of busybox, kernel
# modules, the static berth and the test binaries in VM_TESTS, and runs every
# executable in tests/vm/scenarios/ (other areas add theirs there).

VM_DIR ?= $(BUILD)/vm
MUSL_TARGET := x86_64-unknown-linux-musl
# Integration test binaries copied into the VM's /tests (add yours here).
VM_TESTS ?= root_cgroup

.PHONY: vmtest vmtest-deps vmtest-bins

vmtest-deps: check-cargo
	$(call apt_install,qemu-system-x86 cpio busybox-static musl-tools)
	rustup target add $(MUSL_TARGET)

vmtest-bins: vmtest-deps
	@mkdir -p $(VM_DIR)
	$(CARGO) build --locked --target $(MUSL_TARGET) --bin berth
	echo target/$(MUSL_TARGET)/debug/berth > $(VM_DIR)/bins.txt
	$(CARGO) test --locked --target $(MUSL_TARGET) $(addprefix --test ,$(VM_TESTS)) --no-run --message-format=json \
	  | sed -n 's/.*"executable":"\([^"]*\/deps\/[^"]*\)".*/\1/p' >> $(VM_DIR)/bins.txt

vmtest: vmtest-bins
	VM_DIR=$(abspath $(VM_DIR)) VM_BINS="$$(tr '\n' ' ' < $(VM_DIR)/bins.txt)" tests/vm/run.sh

TEST_TIERS += vmtest
