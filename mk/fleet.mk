# The fleet over MQTT (src/cli/broker.rs, src/cli/fleet.rs, src/host/mqtt.rs):
# simulated devices, each a network namespace with its own `berth apply
# --serve --mqtt`, against a real nginx origin and a real mosquitto broker
# that the simulation starts in a namespace of its own (tests/fleet/sim.py).
# `make test` runs 5 devices; `make bench` runs 50 and writes the table to
# docs/benchmarks.md under "## Fleet simulation".

.PHONY: test-fleet bench-fleet fleet-deps
TEST_TIERS += test-fleet
BENCH_TIERS += bench-fleet
FLEET_APT := mosquitto mosquitto-clients nginx-light iproute2 util-linux python3
FLEET_DEVICES ?= 50

# The servers' packages must not start as services on this machine: a
# policy-rc.d that refuses, for the install only, when none is there.
fleet-deps:
	@if ! dpkg-query -W -f='$${Status}\n' $(FLEET_APT) 2>/dev/null | grep -vq "ok installed" && \
		[ "$$(dpkg-query -W -f='$${Status}\n' $(FLEET_APT) 2>/dev/null | wc -l)" = "$(words $(FLEET_APT))" ]; then exit 0; fi; \
	added=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && added=1; fi; \
	trap '[ -z "$$added" ] || rm -f /usr/sbin/policy-rc.d' EXIT; \
	if [ ! -e $(APT_STAMP) ]; then apt-get update -q; mkdir -p $(BUILD); touch $(APT_STAMP); fi; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(FLEET_APT)

test-fleet: fleet-deps check-cargo rootfs
	@[ "$$(id -u)" = 0 ] || { echo "make test-fleet: needs root (namespaces, containers)" >&2; exit 1; }
	$(CARGO) build --locked
	python3 tests/fleet/sim.py $(BERTH) $(BUILD)/busybox-rootfs.tar.gz 5 $(BUILD)/fleet-sim.md --interval 5

# The firmware build of `make static`, 50 devices polling every 30 s.
bench-fleet: fleet-deps rootfs
	sh scripts/cross/deps.sh static
	$(STATIC_BUILD)
	@mkdir -p $(BUILD) && cp $(STATIC_BIN) $(BUILD)/berth-fleet
	python3 tests/fleet/sim.py $(BUILD)/berth-fleet $(BUILD)/busybox-rootfs.tar.gz $(FLEET_DEVICES) \
		$(BUILD)/bench-fleet.md --interval 30
	python3 bench/put_section.py docs/benchmarks.md $(BUILD)/bench-fleet.md
