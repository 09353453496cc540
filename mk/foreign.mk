# Foreign kernels: the VM tier (tests/vm/run.sh) on Debian's arm64, armhf
# (armmp) and mipsel (4kc-malta) kernels under qemu TCG (-M virt, -M malta),
# with the VM_TESTS binaries built for the matching musl target
# (scripts/cross/target.sh vm-bins, debug as in the amd64 tier) and, in
# test-foreign, the target's firmware build of berth (build-cross-<triple>,
# what ships on the router); the short tier in make test uses the debug
# berth, which costs no second build of std.
# run.sh fetches each kernel with its modules and busybox-static:ARCH from
# Debian's archive, adding the foreign architecture to dpkg for the download
# only and removing it again (an architecture the machine had stays).
#
#   make test-foreign            every scenario on all three kernels
#   make vmtest-foreign-ARCH     one of them (arm64, armhf, mipsel)
#   make vmtest-foreign-short    in make test: a container with cgroup2
#                                limits, the runtime isolation checks and
#                                the seccomp checks on the arm64 kernel
# Big-endian MIPS has no Debian kernel: its unit tests (byte order included)
# run under qemu-user in `make test-cross-mips-unknown-linux-musl`.

FOREIGN_ARCHES := arm64 armhf mipsel
foreign_triple = $(if $(filter arm64,$(1)),aarch64-unknown-linux-musl,$(if $(filter armhf,$(1)),armv7-unknown-linux-musleabihf,mipsel-unknown-linux-musl))
FOREIGN_SHORT := cgroup-v2-live-update runtime-isolation seccomp-abi
# TCG on a shared 2-core machine: mipsel boots in about 10 s, but leave room.
FOREIGN_TIMEOUT ?= 600

# The seccomp checks on the running kernel (every VM tier, amd64 included).
VM_TESTS += root_seccomp

.PHONY: test-foreign foreign-deps foreign-deps-short vmtest-foreign-short $(addprefix vmtest-foreign-,$(FOREIGN_ARCHES))

foreign-deps: check-cargo
	$(call apt_install,qemu-system-arm qemu-system-mips cpio)
	sh scripts/cross/deps.sh cross

# The short tier needs less: aarch64 has a prebuilt std (target.sh adds it),
# and zig only compiles ring's C part; no nightly.
foreign-deps-short: check-cargo
	$(call apt_install,qemu-system-arm cpio)
	python3 -m ziglang version >/dev/null 2>&1 || python3 -m pip install -q ziglang

# vm_foreign ARCH, SCENARIOS (empty: all), BERTH (empty: the debug build):
# build for ARCH's target, boot, run. vm-bins prints berth first.
define vm_foreign
	@mkdir -p $(BUILD)/vm-$(1)
	nice -n 10 sh scripts/cross/target.sh $(call foreign_triple,$(1)) vm-bins $(VM_TESTS) > $(BUILD)/vm-$(1)/bins.txt
	$(if $(3),sed -i '1c $(3)' $(BUILD)/vm-$(1)/bins.txt)
	VM_ARCH=$(1) VM_DIR=$(abspath $(BUILD)/vm-$(1)) VM_TIMEOUT=$(FOREIGN_TIMEOUT) VM_SCENARIOS="$(2)" \
		VM_BINS="$$(tr '\n' ' ' < $(BUILD)/vm-$(1)/bins.txt)" tests/vm/run.sh
endef

# Each waits for its firmware build (mk/cross.mk).
$(foreach a,$(FOREIGN_ARCHES),$(eval vmtest-foreign-$(a): build-cross-$(call foreign_triple,$(a))))
$(addprefix vmtest-foreign-,$(FOREIGN_ARCHES)): vmtest-foreign-%: foreign-deps
	$(call vm_foreign,$*,,$(PKG_TARGET_DIR)/$(call foreign_triple,$*)/release/berth)

test-foreign: $(addprefix vmtest-foreign-,$(FOREIGN_ARCHES))

vmtest-foreign-short: foreign-deps-short
	$(call vm_foreign,arm64,$(FOREIGN_SHORT))

TEST_TIERS += vmtest-foreign-short
