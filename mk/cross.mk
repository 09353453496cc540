# mk/cross.mk: static and cross builds, size report and budget, MSRV build.
# Each target installs its own prerequisites (scripts/cross/deps.sh).
#
#   make static        x86_64-unknown-linux-musl release, checked static
#   make cross         aarch64, armv7, mips, mipsel: release build + unit tests
#                      under qemu-user-static (test-cross-<triple> for one)
#   make size-report   sizes per built target into docs/benchmarks.md
#   make size-check    x86_64 firmware build (default, no-tls, no-default) against
#                      size-budget.txt: raw bytes and per-block xz (in make test)
#   make size-check-cross   builds the four cross firmware builds and checks each
#                      against size-budget.txt; not in make test: about 45 min
#                      from a clean target dir on a shared 2-core machine
#                      (each target builds its own std; docs/benchmarks.md)
#   make msrv          cargo +1.75.0 build --locked

STATIC_TARGET := x86_64-unknown-linux-musl
CROSS_TARGETS := aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf \
                 mips-unknown-linux-musl mipsel-unknown-linux-musl
# Not exported: other fragments' recipes may run cargo from another directory.
PKG_TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
PKG_CARGO_ENV := CARGO_TARGET_DIR=$(PKG_TARGET_DIR)
STATIC_BIN := $(PKG_TARGET_DIR)/$(STATIC_TARGET)/release/berth
SIZE_DIR := $(PKG_TARGET_DIR)/size
# The firmware build, which `make static` and `make cross` make and the size
# budget measures: std rebuilt from rust-src with optimize_for_size, and
# scripts/cross/firmware-rustflags: a panic aborts at once (no message
# formatting), no unwind tables, no PIE relocations (-95 KiB). RUSTC_BOOTSTRAP
# lets the stable toolchain take these -Z options, so the build does not follow
# a moving nightly. docs/packaging.md, "Binary size".
# Derived Debug prints only the type or variant name (-Z fmt-debug=shallow, in
# firmware-rustflags: berth shows no derived Debug to the user). x86_64 alone
# also builds sha2 and the decompressors at opt-level z like the rest, not 3
# (its code compresses worst of the five, and its CPUs are the fastest).
STATIC_RUSTFLAGS := -C target-feature=+crt-static $(shell sed '/^\#/d' scripts/cross/firmware-rustflags)
STATIC_SIZE_CONFIG := $(foreach p,sha2 zlib-rs ruzstd lzma-rust bzip2-rs,--config 'profile.release.package.$(p).opt-level="z"')
STATIC_BUILD = RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(PKG_CARGO_ENV) \
               cargo build $(STATIC_SIZE_CONFIG) --locked --release --target $(STATIC_TARGET) \
               -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size

.PHONY: static cross size-report size-check size-check-cross msrv cross-deps \
        $(addprefix build-cross-,$(CROSS_TARGETS)) $(addprefix test-cross-,$(CROSS_TARGETS))

static:
	sh scripts/cross/deps.sh static
	$(STATIC_BUILD)
	sh scripts/cross/check-static.sh $(STATIC_BIN)

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

# Each feature set is built in turn into the same target dir (std is built
# once) and copied aside; the default set goes last and stays in place.
size-check:
	sh scripts/cross/deps.sh static
	@mkdir -p $(SIZE_DIR)
	$(STATIC_BUILD) --no-default-features
	cp $(STATIC_BIN) $(SIZE_DIR)/berth-no-default
	$(STATIC_BUILD) --no-default-features --features gzip,zstd,xz,http
	cp $(STATIC_BIN) $(SIZE_DIR)/berth-no-tls
	$(STATIC_BUILD)
	sh scripts/cross/check-static.sh $(STATIC_BIN)
	cp $(STATIC_BIN) $(SIZE_DIR)/berth-default
	python3 scripts/size_report.py check size-budget.txt \
		$(foreach s,default no-tls no-default,$(STATIC_TARGET):$(s)=$(SIZE_DIR)/berth-$(s))

# The release build of each cross target (build-cross-<triple>) is its
# firmware build with the default features.
size-check-cross: $(addprefix build-cross-,$(CROSS_TARGETS))
	python3 scripts/size_report.py check size-budget.txt \
		$(foreach t,$(CROSS_TARGETS),$(t):default=$(PKG_TARGET_DIR)/$(t)/release/berth)

msrv:
	sh scripts/cross/deps.sh msrv
	cargo +1.75.0 build --locked --target-dir $(PKG_TARGET_DIR)/msrv
