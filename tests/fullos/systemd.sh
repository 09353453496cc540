#!/bin/sh
# A Debian full-OS container (recipes/debian-systemd) boots systemd under the
# real berth, with its console in `berth logs` and a cgroup tree of its own,
# and `berth stop` ends it with SIGRTMIN+3. Run as root:
#
#   systemd.sh TARBALL            on this host's cgroup layout (hybrid here),
#                                 then again as a legacy host sees it: in a
#                                 mount namespace without the cgroup2 mount
#   VM=1 systemd.sh TARBALL       inside the test VM (cgroup2 only, nsdelegate)
#   USERNS=1 ...                  the container in a user namespace (root
#                                 inside is uid 100000 outside)
#
# env: BERTH_BIN (the berth binary; default `berth` on PATH).
# From the hostile side: systemd inside has root; it must neither see nor
# change the limits berth set, nor leave anything behind on the host.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 TARBALL [legacy]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "systemd.sh: needs root" >&2; exit 2; }
TARBALL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
LAYOUT=${2:-host}
BERTH_BIN=${BERTH_BIN:-berth}

if [ "$LAYOUT" = host ] && [ "${VM:-0}" != 1 ] && [ -d /sys/fs/cgroup/unified ] &&
	grep -q ' /sys/fs/cgroup/unified .* - cgroup2 ' /proc/self/mountinfo; then
	# Hybrid: first as it is, then in a user namespace, then as a legacy host
	# (name=systemd, no cgroup2).
	sh "$0" "$1" hybrid
	USERNS=1 sh "$0" "$1" hybrid
	# shellcheck disable=SC2016 # expanded by the inner shell
	exec unshare -m --propagation private sh -c \
		'umount /sys/fs/cgroup/unified && exec sh "$0" "$1" legacy' "$0" "$1"
fi

FAILS=0
TAG=$LAYOUT
[ "${USERNS:-0}" != 1 ] || TAG="$LAYOUT, user namespace"
ok() { echo "ok   [$TAG] $*"; }
fail() { echo "FAIL [$TAG] $*"; FAILS=$((FAILS + 1)); }
check() { # check TEXT CMD...: ok when CMD succeeds
	what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

TOP=$(mktemp -d /tmp/berth-fullos.XXXXXX)
USERNS_LINE='namespaces: {}'
if [ "${USERNS:-0}" = 1 ]; then
	chmod 755 "$TOP" # root inside (uid 100000 outside) must reach the store
	USERNS_LINE='namespaces: { user: { map: "0 100000 65536" } }'
fi
CG=berth-fullos-$$
NS=berth-fullos-$$
if [ "${VM:-0}" = 1 ]; then
	B() { "$BERTH_BIN" --root "$TOP/store" --runtime-dir "$TOP/run" --cgroup-parent "$CG" "$@"; }
else
	ip netns add "$NS"
	B() { nsenter --net="/run/netns/$NS" "$BERTH_BIN" --root "$TOP/store" --runtime-dir "$TOP/run" --cgroup-parent "$CG" "$@"; }
fi
HOSTNAME_WAS=$(hostname)
# shellcheck disable=SC2329 # (run by the EXIT trap)
cleanup() {
	printf 'version: 1\n' > "$TOP/empty.yaml"
	B apply "$TOP/empty.yaml" >/dev/null 2>&1 || true
	[ "${VM:-0}" = 1 ] || ip netns del "$NS" 2>/dev/null || true
	for d in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$TOP"
}
trap cleanup EXIT

sum=$(sha256sum "$TARBALL" | cut -d' ' -f1)
cat > "$TOP/m.yaml" <<EOF
version: 1
images:
  debian:
    path: $TARBALL
    sha256: "$sum"
containers:
  deb:
    image: debian
    boot: true
    hostname: deb
    resources: { memory: 256M, pids: 512 }
    $USERNS_LINE
EOF
t0=$(date +%s)
if ! B apply "$TOP/m.yaml"; then
	fail "apply"
	exit 1
fi
ok "apply"

# boot_state: systemd's state once its boot is done (`--wait` blocks until
# then, bounded inside by coreutils' timeout), asked again while systemd is
# too early to answer on its bus (for at most 60 s).
boot_state() {
	n=0
	while [ "$n" -lt 60 ]; do
		st=$(B exec deb -- timeout 100 systemctl is-system-running --wait 2>/dev/null || true)
		[ -z "$st" ] || { echo "$st"; return; }
		sleep 1
		n=$((n + 1))
	done
}
state=$(boot_state)
booted=$(($(date +%s) - t0))
case "$state" in
	running | degraded) ok "systemd reached '$state' in ${booted}s" ;;
	*) fail "systemd state is '$state' after ${booted}s" ;;
esac
# No network is attached: ifupdown's DHCP on eth0 is the one failure expected.
if units=$(B exec deb -- systemctl --failed --plain --no-legend); then
	failed=$(echo "$units" | awk '{print $1}' | grep -v '^networking.service$' || true)
	check "no unit failed but networking.service (failed: ${failed:-none})" [ -z "$failed" ]
else
	fail "systemctl --failed"
fi
check "PID 1 is systemd" [ "$(B exec deb -- cat /proc/1/comm)" = systemd ]

logs=$(B logs deb)
for line in "Welcome to Debian" "Reached target multi-user.target"; do
	case "$logs" in *"$line"*) ok "console in berth logs: $line" ;; *) fail "berth logs lacks '$line'" ;; esac
done
case "$logs" in *"$(printf '\r')"*) fail "berth logs has carriage returns" ;; *) ok "berth logs without CR" ;; esac

# The tree systemd manages is its own: rooted at the payload leaf.
case "$LAYOUT" in
	hybrid) tree=/sys/fs/cgroup/unified/$CG/deb/payload ;;
	legacy) tree=/sys/fs/cgroup/systemd/$CG/deb/payload ;;
	*) tree=/sys/fs/cgroup/$CG/deb/payload ;;
esac
check "systemd's init.scope is below the payload leaf on the host" test -d "$tree/init.scope"
hier='^0::'
[ "$LAYOUT" != legacy ] || hier=':name=systemd:'
inner=$(B exec deb -- cat /proc/1/cgroup | grep -E "$hier")
case "$inner" in *:/init.scope) ok "the container sees its tree's root as / ($inner)" ;; *) fail "PID 1's cgroup inside: $inner" ;; esac

# Hostile: root inside tries to lift the memory limit and to reach v1.
if [ "${VM:-0}" = 1 ]; then
	limit=/sys/fs/cgroup/$CG/deb/memory.max
	before=$(cat "$limit")
	B exec deb -- sh -c 'echo max > /sys/fs/cgroup/memory.max; echo max > /sys/fs/cgroup/../memory.max' 2>/dev/null || true
	check "memory.max on the host unchanged ($before)" [ "$(cat "$limit")" = "$before" ]
	check "the container's root has the controllers handed down" \
		sh -c "grep -q memory $tree/cgroup.controllers"
else
	limit=/sys/fs/cgroup/memory/$CG/deb/memory.limit_in_bytes
	before=$(cat "$limit")
	if B exec deb -- ls /sys/fs/cgroup | grep -qx memory; then
		fail "a v1 controller is visible inside"
	else
		ok "no v1 controller is visible inside"
	fi
	if B exec deb -- sh -c 'mkdir -p /tmp/m && mount -t cgroup -o memory none /tmp/m' 2>/dev/null; then
		fail "the container mounted the v1 memory hierarchy"
	else
		ok "mounting the v1 memory hierarchy is refused"
	fi
	check "memory.limit_in_bytes on the host unchanged ($before)" [ "$(cat "$limit")" = "$before" ]
fi
if [ "${USERNS:-0}" = 1 ]; then
	# Delegated to root inside: making children and moving processes, not
	# the tree root's own limits.
	if B exec deb -- sh -c 'echo 1 > /sys/fs/cgroup/cgroup.max.depth' 2>/dev/null; then
		fail "root inside (a user namespace) wrote its tree root's cgroup.max.depth"
	else
		ok "root inside (a user namespace) cannot write its tree root's limits"
	fi
fi
if [ "$LAYOUT" != legacy ]; then
	# Root inside makes cgroups without end: refused at berth's bound (1024
	# below the container's cgroup, systemd's own included).
	# shellcheck disable=SC2016 # expanded by the shell inside
	made=$(B exec deb -- sh -c 'i=0; while [ $i -lt 1100 ] && mkdir /sys/fs/cgroup/flood$i 2>/dev/null; do i=$((i + 1)); done; echo $i')
	B exec deb -- sh -c 'rmdir /sys/fs/cgroup/flood* 2>/dev/null' || true
	check "a flood of cgroups inside stops at the bound (made $made of 1100)" [ "$made" -lt 1024 ]
fi
check "hostname of the host unchanged" [ "$(hostname)" = "$HOSTNAME_WAS" ]

# Stop: SIGRTMIN+3, systemd shuts down and exits on its own.
t1=$(date +%s)
check "berth stop" B stop deb
stop_s=$(($(date +%s) - t1))
check "stopped in ${stop_s}s (timeout 10 s)" [ "$stop_s" -lt 10 ]
exit_json=$(B status --json | tr -d ' \n')
case "$exit_json" in
	*'"last_exit":{"code":0,"signal":null}'*) ok "systemd exited 0 on its own" ;;
	*) fail "last exit: $exit_json" ;;
esac
case "$(B logs deb)" in *"Exiting container."*) ok "shutdown on the console" ;; *) fail "no 'Exiting container.' in the logs" ;; esac

# A second boot: what systemd left in its tree must not stop the next init.
check "start again" B start deb
state=$(boot_state)
case "$state" in
	running | degraded) ok "second boot reached '$state'" ;;
	*) fail "second boot: '$state'" ;;
esac
check "berth rm" B rm -f deb

# Nothing left: cgroups, mounts, processes.
left=$(find /sys/fs/cgroup -maxdepth 3 -path "*/$CG/deb" 2>/dev/null || true)
check "no cgroup of the container left (${left:-none})" [ -z "$left" ]
if grep -q "$TOP" /proc/self/mountinfo; then fail "a mount under $TOP is left"; else ok "no mount left"; fi

echo "RESULT: $FAILS failure(s) [$TAG]"
[ "$FAILS" = 0 ]
