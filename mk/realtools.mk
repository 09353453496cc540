# mk/realtools.mk: the OpenWrt package under the real procd, ubusd, uci,
# jsonfilter and rpcd, and the Yocto layer under the real bitbake, from the
# source snapshots in $(FIXTURES) (its README.md says what they are).
#
#   make test-openwrt        berth.init and the rpcd plugin under real procd/ubusd/rpcd
#   make test-fullos-procd   procd from the fixtures as PID 1 of a `boot: true` container
#   make test-yocto          bitbake: show-layers, -p, -e (cached parse under build/)
#   make check-yocto-layer   yocto-check-layer (about 18 min; not in make test)

FIXTURES ?= $(CURDIR)/../shared/fixtures
OWRT_FX := $(FIXTURES)/openwrt
OWRT_PREFIX := $(CURDIR)/$(BUILD)/openwrt
OWRT_STAMP := $(OWRT_PREFIX)/.built
OWRT_SRCS = $(wildcard $(OWRT_FX)/src/*.tar.gz) $(OWRT_FX)/build.sh tests/openwrt/build-rpcd.sh

.PHONY: openwrt-userland test-openwrt test-fullos-procd test-yocto check-yocto-layer

# Built once; again when a fixture tarball or a build script changes.
$(OWRT_STAMP): $(OWRT_SRCS)
	@test -d $(OWRT_FX)/src || { echo "make: no OpenWrt fixtures at $(OWRT_FX) (set FIXTURES=DIR)" >&2; exit 1; }
	$(call apt_install,cmake pkgconf libjson-c-dev gcc make libc6-dev libcrypt-dev busybox-static util-linux)
	rm -rf $(OWRT_PREFIX)
	nice -n 10 sh $(OWRT_FX)/build.sh $(OWRT_PREFIX) $(CURDIR)/$(BUILD)/openwrt-src
	nice -n 10 sh tests/openwrt/build-rpcd.sh $(OWRT_FX) $(OWRT_PREFIX) $(CURDIR)/$(BUILD)/openwrt-src
	touch $@

openwrt-userland: $(OWRT_STAMP)

test-openwrt: openwrt-userland build rootfs packaging-deps
	@[ "$$(id -u)" = 0 ] || { echo "make test-openwrt: needs root (unshare, chroot, cgroups)" >&2; exit 1; }
	shellcheck -x tests/openwrt/*.sh
	OWRT_FILES=$(OWRT_FX)/files BERTH_BIN=$(CURDIR)/$(BERTH) BERTH_TEST_ROOTFS=$(CURDIR)/$(BUILD)/busybox-rootfs.tar.gz \
		sh tests/openwrt/procd.sh $(OWRT_PREFIX) openwrt-package

# The full-OS image: an OpenWrt-like root whose init is procd (1 s to
# build), again when the userland, a script, OpenWrt's shell files or the
# host's busybox and libraries copied in change. Reproducible: its sha256
# is the same for the same inputs.
PROCD_ROOTFS := $(BUILD)/procd-rootfs.tar.gz
PROCD_ROOTFS_SRCS = tests/fullos/procd-rootfs.sh tests/openwrt/owrt-root.sh $(OWRT_STAMP) \
	$(shell find $(OWRT_FX)/files -type f 2>/dev/null) \
	$(wildcard /bin/busybox /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libjson-c.so.5)

$(PROCD_ROOTFS): $(PROCD_ROOTFS_SRCS)
	nice -n 10 sh tests/fullos/procd-rootfs.sh $(OWRT_PREFIX) $(OWRT_FX)/files $@

# About 11 s: boot, ubus, stop by SIGPWR (3 s), a second boot, removal, the host checked.
test-fullos-procd: build openwrt-userland rootfs packaging-deps $(PROCD_ROOTFS)
	@[ "$$(id -u)" = 0 ] || { echo "make test-fullos-procd: needs root (namespaces, cgroups)" >&2; exit 1; }
	$(call apt_install,iproute2 util-linux python3)
	shellcheck -x tests/fullos/*.sh
	BERTH_BIN=$(CURDIR)/$(BERTH) sh tests/fullos/procd-pid1.sh $(PROCD_ROOTFS)
	USERNS=1 BERTH_BIN=$(CURDIR)/$(BERTH) sh tests/fullos/procd-pid1.sh $(PROCD_ROOTFS)

YOCTO_FX := $(FIXTURES)/yocto
YOCTO_WORK := $(CURDIR)/$(BUILD)/yocto

# The work dir under build/ keeps bitbake's parse cache: ~4 min cold, ~20 s warm.
test-yocto:
	@test -f $(YOCTO_FX)/parse.sh || { echo "make: no Yocto fixtures at $(YOCTO_FX) (set FIXTURES=DIR)" >&2; exit 1; }
	@[ "$$(id -u)" = 0 ] || { echo "make test-yocto: needs root (parse.sh installs host tools and runs bitbake as its own user)" >&2; exit 1; }
	nice -n 10 bash tests/yocto/bitbake.sh $(YOCTO_FX) yocto-layer $(YOCTO_WORK)

# yocto-check-layer, about 18 minutes offline. On scarthgap it reports
# FAILED for any clean layer (test_patches_upstream_status is an expected
# failure that passes): the per-test lines are what counts.
check-yocto-layer:
	@[ "$$(id -u)" = 0 ] || { echo "make check-yocto-layer: needs root" >&2; exit 1; }
	KEEP=1 FX_WORK=$(YOCTO_WORK) CHECK_LAYER=1 nice -n 10 bash $(YOCTO_FX)/parse.sh yocto-layer berth \
		> $(YOCTO_WORK)/check-layer.out 2>&1 || true
	@# each test is a line "INFO: test_NAME (...)", its result the next "INFO:  ... RESULT"
	@grep -E '^INFO: (test_| *\.\.\. )' $(YOCTO_WORK)/logs/yocto-check-layer.log | sed 's/^INFO: *//'
	@! grep -qE '^INFO: *\.\.\. (FAIL|ERROR)' $(YOCTO_WORK)/logs/yocto-check-layer.log

TEST_TIERS += test-openwrt test-fullos-procd test-yocto
