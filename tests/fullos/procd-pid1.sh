#!/bin/sh
# procd from the fixtures as PID 1 of a berth container (issue 18, part 5):
# the image from procd-rootfs.sh beside this file boots with `boot: true`
# (procd's init, then procd with ubusd and the OpenWrt shell files), answers
# `ubus call system board` through `berth exec`, has run its /etc/rc.d boot
# scripts, and ends on its own at `berth stop` (SIGPWR), well before the stop
# timeout; then it boots once more. After the removal the host is checked:
# nothing of the container is left (no process, cgroup or mount), and its
# /dev, its cgroups outside the test's parent, its mount table, its kernel
# log and its hostname are as they were.
#
#   usage: procd-pid1.sh ROOTFS.tar.gz      (as root)
#   env:   BERTH_BIN (the berth binary), KEEP=1 keeps the temp dir,
#          USERNS=1 runs the container in a user namespace (root inside is
#          100000 outside), as the OpenWrt guest example does
#
# berth runs in a network namespace of the test's own (`ip netns add`, then
# `nsenter --net`: `ip netns exec` would remount /sys and hide the cgroups),
# with its own store, runtime dir and cgroup parent, all removed on exit.
set -eu

[ $# = 1 ] || { echo "usage: $0 ROOTFS.tar.gz" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "procd-pid1.sh: needs root (namespaces, cgroups)" >&2; exit 2; }
: "${BERTH_BIN:?BERTH_BIN: the berth binary}"
IMAGE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
BERTH_BIN=$(cd "$(dirname "$BERTH_BIN")" && pwd)/$(basename "$BERTH_BIN")
T0=$(date +%s%N)

NAME=owrt
HOST=procd-guest          # the container's hostname
STOP_TIMEOUT=20           # seconds: the manifest's stop_timeout
TAG=berth-fullos-$$       # the netns and the cgroup parent
TOP=$(mktemp -d /tmp/berth-fullos.XXXXXX)
OUT=$TOP/out              # bound on /srv/out: the image's hello service notes its boot and shutdown there
mkdir -p "$OUT"
if [ "${USERNS:-0}" = 1 ]; then
	# root inside is uid 100000 outside: it must reach the store and $OUT
	chmod 755 "$TOP"
	chown 100000:100000 "$OUT"
	USERNS_LINE='namespaces: { user: { map: "0 100000 65536" } }'
else
	USERNS_LINE='namespaces: {}'
fi
fails=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; fails=$((fails + 1)); }
b() { nsenter --net="/run/netns/$TAG" "$BERTH_BIN" --root "$TOP/store" --runtime-dir "$TOP/run" --cgroup-parent "$TAG" "$@"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# json FILE EXPR: a Python expression over the JSON in FILE (`j`), printed;
# empty when the file is no JSON or the expression fails
json() { python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null || true; }

# shellcheck disable=SC2329 # (run by the EXIT trap)
cleanup() {
	set +e
	printf 'version: 1\ncontainers: {}\n' >"$TOP/empty.yaml"
	[ ! -e "/run/netns/$TAG" ] || b apply "$TOP/empty.yaml" >/dev/null 2>&1
	ip netns del "$TAG" 2>/dev/null
	for h in /sys/fs/cgroup/*/"$TAG" /sys/fs/cgroup/"$TAG"; do
		[ ! -d "$h" ] || find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $TOP" >&2; else rm -rf "$TOP"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM   # through the EXIT trap

# The host as it is before: what a full-OS init could touch from a
# container that leaked (procd's early code mounts /proc, /sys, /dev and a
# cgroup2 tree, makes nodes in /dev, and logs to /dev/kmsg).
snapshot() { # DIR
	mkdir -p "$1"
	hostname >"$1/hostname"
	find /dev -xdev -printf '%p %y %m %U:%G %Y\n' 2>/dev/null | sort >"$1/dev"
	stat -c '%t:%T' /dev/console >"$1/console"
	# every cgroup directory (in each hierarchy, two levels deep) but the test's
	find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d 2>/dev/null | grep -v "/$TAG\(/\|$\)" | sort >"$1/cgroups"
	# (the network namespaces of `ip netns add`, this test's and any other's, are bind mounts)
	awk '{ print $5 }' /proc/self/mountinfo | grep -v '^/run/netns/' | sort >"$1/mounts"
	dmesg 2>/dev/null | grep -cE 'procd|init: |ubusd' >"$1/kmsg" || true
}
same() { # WHAT FILE: the host's FILE now is as it was before
	if cmp -s "$TOP/before/$2" "$TOP/after/$2"; then
		ok "host $1 unchanged"
	else
		bad "host $1 changed:"
		diff "$TOP/before/$2" "$TOP/after/$2" | sed 's/^/      /' | head -20
	fi
}

ip netns add "$TAG"
nsenter --net="/run/netns/$TAG" ip link set lo up
snapshot "$TOP/before"

SHA=$(sha256sum "$IMAGE" | cut -d' ' -f1)
cat >"$TOP/m.yaml" <<EOF
version: 1
images:
  openwrt: { path: $IMAGE, sha256: $SHA }
containers:
  $NAME:
    image: openwrt
    boot: true             # /sbin/init, procd's initd; stopped with SIGPWR
    hostname: $HOST
    stop_timeout: ${STOP_TIMEOUT}s
    $USERNS_LINE
    mounts:
      - { type: bind, source: $OUT, target: /srv/out }
EOF

# --- boot
t=$(ms) up=0 wait=20000
if b apply "$TOP/m.yaml" >"$TOP/apply.out" 2>&1; then
	ok "berth apply started the container ($(($(ms) - t)) ms)"
else
	bad "berth apply:"; sed 's/^/      /' "$TOP/apply.out"
	wait=0
fi
# board MS: wait at most MS ms for procd to be up, that is for ubusd to
# answer through it; the answer in board.json
board() {
	t=$(ms)
	while [ $(($(ms) - t)) -lt "$1" ]; do
		b exec "$NAME" -- ubus call system board >"$TOP/board.json" 2>"$TOP/board.err" && return 0
		sleep 0.2
	done
	return 1
}
if board $wait; then
	up=1
	ok "ubus call system board answers $(($(ms) - t)) ms after the apply"
else
	bad "ubus call system board did not answer in $((wait / 1000)) s: $(cat "$TOP/board.err" 2>/dev/null)"
	b status "$NAME" || true
	b logs "$NAME" 2>&1 | tail -20 | sed 's/^/      /'
fi

if [ $up = 1 ]; then
	j=$TOP/board.json
	if [ "$(json "$j" 'j["hostname"]')" = "$HOST" ]; then ok "board: hostname $HOST"; else bad "board: hostname is not $HOST: $(cat "$j")"; fi
	b exec "$NAME" -- cat /etc/openwrt_release >"$TOP/release"
	for f in RELEASE:version REVISION:revision DESCRIPTION:description TARGET:target; do
		want=$(sed -n "s/^DISTRIB_${f%%:*}='\(.*\)'$/\1/p" "$TOP/release")
		got=$(json "$j" "j['release']['${f#*:}']" 2>/dev/null || true)
		if [ -n "$want" ] && [ "$got" = "$want" ]; then
			ok "board: release ${f#*:} \"$got\" (DISTRIB_${f%%:*} of /etc/openwrt_release)"
		else
			bad "board: release ${f#*:} \"$got\", /etc/openwrt_release has \"$want\""
		fi
	done
	# /tmp/sysinfo/model is written by /etc/rc.d/S10boot
	if [ "$(json "$j" 'j.get("model")')" = "berth full-OS container" ]; then
		ok "board: model from /etc/rc.d/S10boot"
	else
		bad "board: no model from /etc/rc.d/S10boot: $(cat "$j")"
	fi

	comm=$(b exec "$NAME" -- cat /proc/1/comm)
	if [ "$comm" = procd ]; then ok "PID 1 in the container is procd"; else bad "PID 1 in the container is \"$comm\""; fi
	b exec "$NAME" -- ubus call service list >"$TOP/services.json"
	if [ "$(json "$TOP/services.json" 'j["hello"]["instances"]["instance1"]["running"]')" = True ]; then
		ok "ubus service list: hello runs (procd as init ran /etc/rc.d/S50hello)"
	else
		bad "ubus service list: hello does not run: $(cat "$TOP/services.json")"
	fi
	if [ "$(json "$TOP/services.json" 'j["ubus"]["instances"]["instance1"]["user"]')" = ubus ]; then
		ok "ubus service list: procd started ubusd as user ubus"
	else
		bad "ubus service list: ubusd is not procd's, as user ubus"
	fi
	# procd puts each instance in a cgroup of its own where it finds cgroup2
	# at /sys/fs/cgroup (instance.c): the container's own tree, below its
	# payload leaf on the host.
	if grep -q ' - cgroup2 ' /proc/self/mountinfo; then
		hp=$(json "$TOP/services.json" 'j["hello"]["instances"]["instance1"]["pid"]')
		cg=$(b exec "$NAME" -- cat "/proc/$hp/cgroup" | grep '^0::')
		if [ "$cg" = 0::/services/hello/instance1 ]; then ok "procd put hello in its cgroup $cg"; else bad "hello's cgroup is \"$cg\""; fi
		host=$(find /sys/fs/cgroup -maxdepth 7 -type d -path "*/$TAG/$NAME/payload/services/hello/instance1" | head -1)
		if [ -n "$host" ]; then ok "hello's cgroup on the host: ${host#/sys/fs/cgroup/}"; else bad "no services/hello/instance1 below $TAG/$NAME/payload on the host"; fi
		if [ "${USERNS:-0}" = 1 ]; then
			# Delegated to root inside: making children and moving processes,
			# not the payload leaf's own limits.
			if b exec "$NAME" -- sh -c 'echo 1 > /sys/fs/cgroup/cgroup.max.depth' 2>/dev/null; then
				bad "root inside (a user namespace) wrote its tree root's cgroup.max.depth"
			else
				ok "root inside (a user namespace) cannot write its tree root's limits"
			fi
		fi
	else
		echo "--    no cgroup2 on this host: procd puts its instances in no cgroup"
	fi
	if grep -q '^hello up' "$OUT/events" 2>/dev/null; then ok "the hello service noted its start on the host's bind mount"; else bad "no \"hello up\" in $OUT/events"; fi
	# initd/early.c in a container mounts a tmpfs on /tmp, which fails
	# without CAP_SYS_ADMIN (berth's default set is Docker's): berth mounts
	# it for a procd init, so /var (-> /tmp) and the ubus socket are never
	# on flash. The host's mount table is checked below.
	if b exec "$NAME" -- grep -q '^tmpfs /tmp tmpfs' /proc/mounts; then
		ok "/tmp (and /var) inside is a tmpfs"
	else
		bad "/tmp inside is no tmpfs: /var/run and the ubus socket are in the upper dir"
	fi
	# what procd writes to /dev/console goes to a pty of the container's own
	con=$(b exec "$NAME" -- stat -c '%t:%T' /dev/console)
	case "$con" in
	88:*) ok "/dev/console inside is a pty (major 136), not the host's console" ;;
	*) bad "/dev/console inside is device $con (hex), not a pty" ;;
	esac
	if b exec "$NAME" -- grep -q '^sysfs /sys sysfs ro' /proc/mounts; then
		ok "/sys is read-only inside (procd's udevtrigger cannot send uevents to the host)"
	else
		bad "/sys is not read-only inside: $(b exec "$NAME" -- grep ' /sys ' /proc/mounts)"
	fi
fi

# procd writes its state messages ("- early -", "- ubus -", "- init -") to
# /dev/kmsg (ulog's KMSG channel), then to syslog: they are in `berth logs`
# when the runtime gives a full-OS container a /dev/kmsg on its console.
b logs "$NAME" >"$TOP/logs" 2>&1 || true
if grep -q -- '- init -' "$TOP/logs"; then
	ok "berth logs has procd's boot messages (\"- init -\")"
else
	if [ -s "$TOP/logs" ]; then
		bad "berth logs has no \"- init -\" from procd; it has:"
		head -20 "$TOP/logs" | sed 's/^/      /'
	else
		bad "berth logs has no \"- init -\" from procd: it is empty"
	fi
fi

# What runs in the container, seen from the host: its init's PID namespace.
# pidns: the PID namespace of the running container's init, as the host names it
pidns() {
	b status "$NAME" --json >"$TOP/status.json"
	pid1=$(json "$TOP/status.json" 'j["containers"][0]["pid"]')
	readlink "/proc/$pid1/ns/pid" 2>/dev/null || echo none
}
# in_ns NS...: the processes in any of these PID namespaces
in_ns() {
	for p in /proc/[0-9]*; do
		ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
		for n in "$@"; do [ "$ns" != "$n" ] || echo "${p#/proc/}"; done
	done
}
ns1=$(pidns)
n=$(in_ns "$ns1" | wc -l)
if [ "$n" -ge 3 ]; then ok "$n processes in the container's PID namespace (procd, ubusd, hello...)"; else bad "only $n processes in the container's PID namespace"; fi

# --- stop: SIGPWR; procd runs the K* scripts, kills the rest, exits 0
t=$(ms)
b stop "$NAME" >"$TOP/stop.out" 2>&1 || { bad "berth stop:"; sed 's/^/      /' "$TOP/stop.out"; }
took=$(($(ms) - t))
if [ "$took" -lt $((STOP_TIMEOUT * 1000 / 2)) ]; then
	ok "berth stop took $took ms (stop timeout ${STOP_TIMEOUT} s)"
else
	bad "berth stop took $took ms, near the stop timeout of ${STOP_TIMEOUT} s"
fi
b status "$NAME" --json >"$TOP/status.json"
state=$(json "$TOP/status.json" 'j["containers"][0]["state"]')
code=$(json "$TOP/status.json" 'j["containers"][0]["last_exit"]["code"]')
sig=$(json "$TOP/status.json" 'j["containers"][0]["last_exit"]["signal"]')
# procd in a container calls reboot(RB_POWER_OFF) and exits 0; with
# CAP_SYS_BOOT the reboot would end the PID namespace instead, which the
# kernel reports as SIGINT. Only SIGKILL would be berth's, after the timeout.
if [ "$state" = stopped ] && { [ "$sig" = None ] && [ "$code" = 0 ] || [ "$sig" = 2 ]; }; then
	ok "the container ended on its own (state $state, exit code $code, signal $sig)"
else
	bad "the container did not end on its own: state $state, exit code $code, signal $sig"
fi
if grep -q '^hello shutdown' "$OUT/events" 2>/dev/null; then
	ok "procd ran /etc/rc.d/K50hello at shutdown"
else
	bad "no \"hello shutdown\" in $OUT/events: procd did not run the K* scripts"
fi

# --- a second boot: what the first left in the upper dir (ubus's socket,
# /tmp/.ujail, /var/run) must not stop it
ns2=none
if b start "$NAME" >"$TOP/start.out" 2>&1 && board 20000; then
	ns2=$(pidns)
	b exec "$NAME" -- ubus call service list >"$TOP/services.json"
	if [ "$(json "$TOP/services.json" 'j["hello"]["instances"]["instance1"]["running"]')" = True ]; then
		ok "second boot: ubus answers $(($(ms) - t)) ms after berth start, hello runs again"
	else
		bad "second boot: hello does not run: $(cat "$TOP/services.json")"
	fi
else
	bad "second boot: $(cat "$TOP/start.out" "$TOP/board.err" 2>/dev/null)"
fi

# --- removal (procd stops on SIGPWR again), then the host
printf 'version: 1\ncontainers: {}\n' >"$TOP/empty.yaml"
t=$(ms)
if b apply "$TOP/empty.yaml" >"$TOP/remove.out" 2>&1; then
	ok "berth apply of an empty manifest removed it in $(($(ms) - t)) ms"
else
	bad "removal:"; sed 's/^/      /' "$TOP/remove.out"
fi
left=$(in_ns "$ns1" "$ns2" | tr '\n' ' ')
if [ -z "$left" ]; then ok "no process of the container is left"; else bad "processes of the container are left: $left"; fi
roots=$(for p in /proc/[0-9]*; do readlink "$p/root" 2>/dev/null; done | grep -c "^$TOP" || true)
if [ "$roots" = 0 ]; then ok "no process has its root in the test's store"; else bad "$roots processes have their root in $TOP"; fi
left=$(find /sys/fs/cgroup -maxdepth 3 -type d -path "*/$TAG/$NAME" | tr '\n' ' ')
if [ -z "$left" ]; then ok "no cgroup of the container is left (procd's own included)"; else bad "cgroups of the container are left: $left"; fi
if grep -q "$TOP" /proc/self/mountinfo; then
	bad "mounts of the container are left:"; grep "$TOP" /proc/self/mountinfo | sed 's/^/      /'
else
	ok "no mount of the container is left"
fi
snapshot "$TOP/after"
same hostname hostname
same "/dev/console (device $(cat "$TOP/before/console"))" console
same /dev dev
same "cgroups (outside $TAG)" cgroups
same "mount table" mounts
same "kernel log (no procd, init or ubusd line)" kmsg

echo "procd-pid1.sh: $fails failure(s), $(($(ms) - T0 / 1000000)) ms" >&2
[ "$fails" = 0 ]
