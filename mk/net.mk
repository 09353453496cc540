# Networking (issue 6). Unit tests (src/host/net) run under test-unit and
# tests/root_net.rs under test-root already; test-net runs just this area.
# bench-net compares berth's attach/detach with lxc-execute (installs lxc).

.PHONY: test-net bench-net

BENCH_TIERS += bench-net

# The VM tier (mk/cgroup.mk) runs the VLAN and ipvlan success paths, which need
# kernel modules this machine lacks (tests/vm/scenarios/net-vlan-ipvlan).
VM_TESTS += root_net

test-net: deps
	@[ "$$(id -u)" = 0 ] || { echo "make test-net: needs root (network namespaces, netlink)" >&2; exit 1; }
	$(CARGO) test --locked --lib host::net
	BERTH_ROOT_TESTS=required $(CARGO) test --locked --test root_net

bench-net: deps
	$(call apt_install,lxc)
	@[ "$$(id -u)" = 0 ] || { echo "make bench-net: needs root (network namespaces)" >&2; exit 1; }
	sh bench/net.sh
