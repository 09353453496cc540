# Boot benchmarks (bench/boot.sh): cold apply of 10 and 50 containers with a
# veth each on one bridge against lxc-start -d and crun + a veth hook, their
# removal, a no-op apply and status of 50 (with what the no-op apply writes),
# and `berth start` of one created container against `crun run -d` and
# `lxc-start -d`; figures go into docs/benchmarks.md under
# "## Boot: converge N containers". The parallel converge's root test
# (tests/root_boot.rs) runs in `test-root` like every tests/root_*.rs.

.PHONY: bench-boot
BENCH_TIERS += bench-boot
bench-boot: check-cargo static rootfs
	$(call apt_install,hyperfine crun lxc strace valgrind python3 util-linux iproute2)
	@mkdir -p $(BUILD)/bench
	bench/boot.sh $(STATIC_BIN) $(CURDIR)/$(BUILD)/busybox-rootfs.tar.gz $(BUILD)/bench/boot.md
	python3 bench/put_section.py docs/benchmarks.md $(BUILD)/bench/boot.md
