# mk/fullos.mk: full-OS containers under the real berth. Debian's systemd
# (recipes/debian-systemd: debootstrap from Debian's archive, built once under
# build/) boots with its console in `berth logs` and a cgroup tree of its own:
#
#   make test-fullos     on this host's layout (hybrid here), then as a legacy
#                        host sees it (no cgroup2 mounted), in this machine
#   make vmtest-fullos   on cgroup2 with every controller and nsdelegate, as
#                        OpenWrt mounts it, in the test VM (TCG)
#   make bench-fullos    boot, stop and memory against systemd-nspawn and LXC
#
# procd as PID 1 is test-fullos-procd in mk/realtools.mk (it needs the
# OpenWrt userland built from the fixtures).

FULLOS_DIR := $(BUILD)/fullos
FULLOS_DEBIAN := $(FULLOS_DIR)/debian-systemd.tar.gz
FULLOS_SLIM := $(FULLOS_DIR)/debian-systemd-slim.tar.gz

.PHONY: test-fullos vmtest-fullos

$(FULLOS_DEBIAN): recipes/debian-systemd/build.sh recipes/debian-systemd/manifest.yaml recipes/lib.sh
	@[ "$$(id -u)" = 0 ] || { echo "make: debootstrap needs root" >&2; exit 1; }
	$(call apt_install,debootstrap)
	OUT=$(FULLOS_DIR) nice -n 10 sh recipes/debian-systemd/build.sh

# The VM holds the image in RAM: the same rootfs without documentation,
# translations, perl and apt, which a boot does not use.
$(FULLOS_SLIM): $(FULLOS_DEBIAN) tests/fullos/slim.sh
	sh tests/fullos/slim.sh $(FULLOS_DEBIAN) $@

test-fullos: build $(FULLOS_DEBIAN)
	@[ "$$(id -u)" = 0 ] || { echo "make test-fullos: needs root (namespaces, cgroups)" >&2; exit 1; }
	shellcheck -x tests/fullos/*.sh
	BERTH_BIN=$(CURDIR)/$(BERTH) sh tests/fullos/systemd.sh $(FULLOS_DEBIAN)

# The firmware build of berth: under TCG the debug build's extraction of the
# image alone would take minutes.
vmtest-fullos: vmtest-deps static $(FULLOS_SLIM)
	VM_DIR=$(abspath $(VM_DIR))-fullos VM_KERNEL_DIR=$(abspath $(VM_DIR)) \
	VM_BINS="$(abspath $(STATIC_BIN))" VM_SCENARIOS=none VM_EXTRA=$(CURDIR)/tests/fullos/vm-systemd \
	VM_FILES="$(abspath $(FULLOS_SLIM)) $(CURDIR)/tests/fullos/systemd.sh" \
	VM_TIMEOUT=400 VM_SCENARIO_TIMEOUT=300 tests/vm/run.sh

TEST_TIERS += test-fullos vmtest-fullos

# Debian's systemd booted under berth, systemd-nspawn and LXC from the same
# rootfs: boot, stop, the supervisor's memory (docs/benchmarks.md).
.PHONY: bench-fullos
BENCH_TIERS += bench-fullos
bench-fullos: static $(FULLOS_DEBIAN)
	$(call apt_install,lxc systemd-container util-linux iproute2)
	@mkdir -p $(BUILD)/bench
	bench/fullos.sh $(STATIC_BIN) $(CURDIR)/$(FULLOS_DEBIAN) $(BUILD)/bench/fullos.md
	python3 bench/put_section.py docs/benchmarks.md $(BUILD)/bench/fullos.md
