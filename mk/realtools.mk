# mk/realtools.mk: the OpenWrt package under the real procd, ubusd, uci,
# jsonfilter and rpcd, and the Yocto layer under the real bitbake, from the
# source snapshots in $(FIXTURES) (its README.md says what they are).
#
#   make test-openwrt        berth.init and the rpcd plugin under real procd/ubusd/rpcd
#   make test-yocto          bitbake: show-layers, -p, -e (cached parse under build/)
#   make check-yocto-layer   yocto-check-layer (about 18 min; not in make test)

FIXTURES ?= $(CURDIR)/../shared/fixtures
OWRT_FX := $(FIXTURES)/openwrt
OWRT_PREFIX := $(CURDIR)/$(BUILD)/openwrt
OWRT_STAMP := $(OWRT_PREFIX)/.built
OWRT_SRCS = $(wildcard $(OWRT_FX)/src/*.tar.gz) $(OWRT_FX)/build.sh tests/openwrt/build-rpcd.sh

.PHONY: openwrt-userland test-openwrt test-yocto check-yocto-layer

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

TEST_TIERS += test-openwrt
