# Networking (issue 6): unit + root tests, and the lxc side-by-side benchmark.
# Included by the top-level Makefile; `make test` should depend on test-net,
# `make bench` on bench-net. Both need root.

NET_TEST_PKGS := iproute2 busybox-static util-linux
NET_BENCH_PKGS := $(NET_TEST_PKGS) lxc

.PHONY: test-net bench-net net-deps net-bench-deps

net-deps:
	@missing=""; for p in $(NET_TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

net-bench-deps:
	@missing=""; for p in $(NET_BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; fi

test-net: net-deps
	cargo test --lib host::net
	BERTH_REQUIRE_ROOT_TESTS=1 cargo test --test root_net

bench-net: net-bench-deps
	sh bench/net.sh
