# mk/cross.mk: static and cross builds, size report and budget, MSRV build.
# Each target installs its own prerequisites (scripts/cross/deps.sh).
#
#   make static        x86_64-unknown-linux-musl release, checked static
#   make cross         aarch64, armv7, mips, mipsel: release build + unit tests
#                      under qemu-user-static (test-cross-<triple> for one)
#   make size-report   sizes per built target into docs/benchmarks.md
#   make size-check    x86_64 static binary against size-budget.txt
#   make msrv          cargo +1.75.0 build --locked

STATIC_TARGET := x86_64-unknown-linux-musl
CROSS_TARGETS := aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf \
                 mips-unknown-linux-musl mipsel-unknown-linux-musl
# Not exported: other fragments' recipes may run cargo from another directory.
PKG_TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
PKG_CARGO_ENV := CARGO_TARGET_DIR=$(PKG_TARGET_DIR)
SIZE_NODEFAULT_DIR := $(PKG_TARGET_DIR)/size-no-default
# The no-default-features budget applies once the crate has a `tls` feature.
HAS_TLS_FEATURE = $(shell python3 -c 'import tomllib; print(1 if "tls" in tomllib.load(open("Cargo.toml","rb")).get("features",{}) else "")')

.PHONY: static cross size-report size-check msrv cross-deps \
        $(addprefix build-cross-,$(CROSS_TARGETS)) $(addprefix test-cross-,$(CROSS_TARGETS))

static:
	sh scripts/cross/deps.sh static
	$(PKG_CARGO_ENV) cargo build --locked --release --target $(STATIC_TARGET)
	sh scripts/cross/check-static.sh $(PKG_TARGET_DIR)/$(STATIC_TARGET)/release/berth

cross-deps:
	sh scripts/cross/deps.sh cross

$(addprefix build-cross-,$(CROSS_TARGETS)): build-cross-%: cross-deps
	$(PKG_CARGO_ENV) sh scripts/cross/target.sh $* build
	sh scripts/cross/check-static.sh $(PKG_TARGET_DIR)/$*/release/berth
	$(firstword $(shell sed -n '/^\[target\.$*\]/,/^\[/s/^runner *= *"\(.*\)"/\1/p' .cargo/config.toml)) \
		$(PKG_TARGET_DIR)/$*/release/berth --version

$(addprefix test-cross-,$(CROSS_TARGETS)): test-cross-%: build-cross-%
	$(PKG_CARGO_ENV) sh scripts/cross/target.sh $* test

cross: $(addprefix test-cross-,$(CROSS_TARGETS))

size-report:
	python3 scripts/size_report.py report --write docs/benchmarks.md \
		$(foreach t,$(STATIC_TARGET) $(CROSS_TARGETS),$(if $(wildcard $(PKG_TARGET_DIR)/$(t)/release/berth),$(t)=$(PKG_TARGET_DIR)/$(t)/release/berth))

size-check: static
	$(if $(HAS_TLS_FEATURE),cargo build --locked --release --no-default-features --target $(STATIC_TARGET) --target-dir $(SIZE_NODEFAULT_DIR))
	python3 scripts/size_report.py check size-budget.txt \
		$(STATIC_TARGET):default=$(PKG_TARGET_DIR)/$(STATIC_TARGET)/release/berth \
		$(if $(HAS_TLS_FEATURE),$(STATIC_TARGET):no-default=$(SIZE_NODEFAULT_DIR)/$(STATIC_TARGET)/release/berth)

msrv:
	sh scripts/cross/deps.sh msrv
	cargo +1.75.0 build --locked --target-dir $(PKG_TARGET_DIR)/msrv
