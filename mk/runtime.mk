# Container runtime (src/host/runtime). Its unit tests run in `test-unit`
# (cargo test --lib) and its root tests (tests/root_runtime.rs, root_lifecycle.rs) in `test-root`;
# this fragment adds the start benchmark to `make bench`.

.PHONY: bench-runtime
BENCH_TIERS += bench-runtime

# The firmware build of the static musl binary (what ships), then hyperfine side by
# side with crun, runc, lxc-execute, systemd-nspawn and an unshare floor on the
# same busybox rootfs, plus the monitor's idle RSS; figures go into
# docs/benchmarks.md under "## Container start".
bench-runtime: check-cargo static
	$(call apt_install,hyperfine crun runc lxc systemd-container busybox-static python3 util-linux)
	@mkdir -p $(BUILD)/bench
	bench/start.sh $(STATIC_BIN) $(BUILD)/bench/runtime.md
	python3 bench/put_section.py docs/benchmarks.md $(BUILD)/bench/runtime.md

# The VM tier (mk/cgroup.mk) also runs the runtime's root tests on a cgroup2-only
# kernel (tests/vm/scenarios/runtime-*).
VM_TESTS += root_runtime root_lifecycle

# The crash sweep of tests/root_crash.rs with more kill points than the
# 6 per kind that `make test` runs.
.PHONY: test-crash
CRASH_POINTS ?= 30
test-crash: deps rootfs
	BERTH_ROOT_TESTS=required BERTH_CRASH_POINTS=$(CRASH_POINTS) \
		BERTH_TEST_ROOTFS=$(CURDIR)/$(BUILD)/busybox-rootfs.tar.gz \
		$(CARGO) test --locked --test root_crash

# What a health check costs per container (CPU per probe, monitor memory),
# for each kind of probe; figures go into docs/benchmarks.md under
# "## Health checks".
.PHONY: bench-health
BENCH_TIERS += bench-health
bench-health: check-cargo static rootfs
	$(call apt_install,python3)
	@mkdir -p $(BUILD)/bench
	BERTH_TEST_ROOTFS=$(CURDIR)/$(BUILD)/busybox-rootfs.tar.gz bench/health.sh $(STATIC_BIN) $(BUILD)/bench/health.md
	python3 bench/put_section.py docs/benchmarks.md $(BUILD)/bench/health.md
