#!/bin/sh
# Networking benchmark: berth's attach/detach around one process in a new
# network namespace, side by side with lxc-execute doing the same and a bare
# `unshare -n` + `ip link add` floor, all inside a throwaway network (and
# mount, for lxc's sysfs lookups) namespace. Appends the figures to
# docs/benchmarks.md under "## Networking". Run as root: `make bench-net`.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
iter=${BENCH_ITER:-30}
cd "$root"

cargo build --quiet --release --example net_bench
bin="$root/target/release/examples/net_bench"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

common='lxc.uts.name = bench
lxc.console.path = none
lxc.apparmor.profile = unconfined
lxc.net.0.flags = up
lxc.net.0.name = eth0'
printf '%s\nlxc.net.0.type = veth\nlxc.net.0.link = br0\nlxc.net.0.ipv4.address = 10.60.0.3/24\n' "$common" >"$work/veth.conf"
printf '%s\nlxc.net.0.type = macvlan\nlxc.net.0.macvlan.mode = bridge\nlxc.net.0.link = p0\nlxc.net.0.ipv4.address = 10.61.0.3/24\n' "$common" >"$work/macvlan.conf"

# Everything below happens in namespaces that vanish when the shell exits;
# sysfs is remounted so lxc sees this namespace's bridge.
unshare -n -m --propagation private sh -c '
    set -e
    mount -t sysfs sysfs /sys
    ip link set lo up
    ip link add br0 type bridge && ip link set br0 up
    ip link add p0 type veth peer name p1 && ip link set p0 up && ip link set p1 up
    exec "$1" "$2" "$3"
' sh "$bin" "$iter" "$work" >"$work/out"

cat "$work/out"
kernel=$(uname -r)
lxcv=$(lxc-execute --version 2>/dev/null || echo '?')
{
    echo "## Networking"
    echo
    echo "Start-to-exit of one \`busybox true\` in a new network namespace with one interface,"
    echo "$iter interleaved runs each, inside a throwaway namespace (bench/net.sh, \`make bench-net\`)."
    echo "berth: fork + unshare, \`net::attach\`, exec, wait, \`net::detach\` (networking only: the"
    echo "berth runtime's own mount/cgroup setup is not in these figures). lxc $lxcv: \`lxc-execute\`"
    echo "with the same veth/macvlan config (a whole application container). Floor: \`unshare -n ip link"
    echo "add ... type veth\`. Kernel $kernel, $(nproc) cores shared with other builds."
    echo
    echo "Most of berth-veth is \`detach\` waiting (at most 50 ms) for the kernel to release the"
    echo "just-exited namespace, still pinned for one RCU grace period by the netlink socket"
    echo "\`attach\` used inside it; the kernel then removes the pair itself instead of an explicit"
    echo "14-25 ms delete. A container that runs longer than that pays about 0.5 ms in \`detach\`."
    echo
    echo "| case | median ms | p10 ms | p90 ms |"
    echo "| --- | --- | --- | --- |"
    awk 'NF == 4 { printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$work/out"
    echo
    awk '$1 ~ /^ratio-/ { sub("ratio-", "", $1); printf "Median ratio berth/lxc, %s: **%s** (goal <= 0.5)\n\n", $1, $2 }' "$work/out"
} >"$work/section"

doc="$root/docs/benchmarks.md"
mkdir -p "$root/docs"
[ -f "$doc" ] || printf '# Benchmarks\n\n' >"$doc"
# Replace our own section, keep everyone else's.
awk -v sect="$work/section" '
    /^## / { skip = ($0 == "## Networking") }
    !skip { print }
    END { while ((getline line < sect) > 0) print line }
' "$doc" >"$work/doc"
cp "$work/doc" "$doc"
echo "bench-net: figures written to docs/benchmarks.md"
