#!/bin/sh
# Full-OS boot side by side, in one run: Debian 12's systemd (the
# debian-systemd recipe) booted from the same rootfs under berth,
# systemd-nspawn and LXC. Each run is timed from the start command until
# systemd inside reports its boot done (`systemctl is-system-running
# --wait`), then the power-off until the supervisor reports the container
# gone. While it runs, the supervisor's memory is read (berth's monitor,
# systemd-nspawn, LXC's monitor: VmRSS, and RssAnon, its own memory; the
# rest is pages of its binary and libraries). No network is
# attached; berth runs in a network namespace made here and removed at the
# end, also on failure.
# Usage: bench/fullos.sh BERTH_BINARY TARBALL [OUT.md]   (root)
set -eu
BERTH=$(readlink -f "$1")
TARBALL=$(readlink -f "$2")
OUT=${3:-}
REPS=${REPS:-3}
NS=berth-fullos-bench-$$
CG=berth-fullos-bench-$$
W=$(mktemp -d /tmp/berth-fullos-bench.XXXXXX)
B="nsenter --net=/run/netns/$NS $BERTH --root $W/store --runtime-dir $W/run --cgroup-parent $CG"

cleanup() {
    set +e
    printf 'version: 1\n' > "$W/none.yaml"
    $B apply "$W/none.yaml" >/dev/null 2>&1
    lxc-stop -P "$W/lxc" -n os -k >/dev/null 2>&1
    [ -n "${NSPAWN:-}" ] && kill -9 "$NSPAWN" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    for c in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/*/lxc.*os* /sys/fs/cgroup/*/lxc.monitor.os; do
        [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

now() { date +%s%N; }
ms() { echo "$(( ($2 - $1) / 1000000 ))"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# mem PID: "VmRSS RssAnon" in KiB
mem() {
    awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} END {print r, a}' "/proc/$1/status"
}
# booted CMD...: wait until systemd answers (its bus is up), then until its boot is done
booted() {
    i=0
    while [ "$i" -lt 300 ]; do
        st=$("$@" systemctl is-system-running --wait 2>/dev/null || true)
        case "$st" in running | degraded) return 0 ;; "") ;; *) echo "state: $st" >&2; return 1 ;; esac
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

ip netns add "$NS"
sum=$(sha256sum "$TARBALL" | cut -d' ' -f1)
cat > "$W/m.yaml" <<EOF
version: 1
images: { debian: { path: $TARBALL, sha256: "$sum" } }
containers:
  deb: { image: debian, boot: true, hostname: deb, autostart: false }
EOF
# The image goes into the store once, outside the timings.
$B apply "$W/m.yaml" >/dev/null
for d in nspawn lxc; do mkdir -p "$W/$d"; tar -xzf "$TARBALL" -C "$W/$d"; done
mkdir -p "$W/lxc-cfg/os"
cat > "$W/lxc-cfg/os/config" <<EOF
lxc.uts.name = os
lxc.rootfs.path = dir:$W/lxc
lxc.net.0.type = empty
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.tty.max = 0
lxc.pty.max = 16
lxc.apparmor.profile = unconfined
lxc.signal.halt = SIGRTMIN+3
EOF

: > "$W/rows"
for _ in $(seq "$REPS"); do
    # berth
    t0=$(now)
    $B start deb >/dev/null
    # shellcheck disable=SC2086 # $B is a command line
    booted $B exec deb --
    t1=$(now)
    mon=$(pgrep -f "__monitor $W/run/deb" | head -n 1)
    echo "berth boot $(ms "$t0" "$t1")" >> "$W/rows"
    echo "berth mem $(mem "$mon")" >> "$W/rows"
    t0=$(now); $B stop deb >/dev/null; t1=$(now)
    echo "berth stop $(ms "$t0" "$t1")" >> "$W/rows"
    # systemd-nspawn
    t0=$(now)
    systemd-nspawn -q -D "$W/nspawn" -b --register=no --keep-unit --private-network \
        -M os > "$W/nspawn.log" 2>&1 &
    NSPAWN=$!
    leader=
    while [ -z "$leader" ]; do leader=$(pgrep -P "$NSPAWN" | head -n 1); sleep 0.05; done
    booted nsenter -t "$leader" -m -u -i -n -p -C --; t1=$(now)
    echo "nspawn boot $(ms "$t0" "$t1")" >> "$W/rows"
    echo "nspawn mem $(mem "$NSPAWN")" >> "$W/rows"
    t0=$(now); kill -TERM "$NSPAWN"; wait "$NSPAWN" || true; t1=$(now)
    NSPAWN=
    echo "nspawn stop $(ms "$t0" "$t1")" >> "$W/rows"
    # LXC
    t0=$(now)
    lxc-start -P "$W/lxc-cfg" -n os -d
    booted lxc-attach -P "$W/lxc-cfg" -n os --; t1=$(now)
    echo "lxc boot $(ms "$t0" "$t1")" >> "$W/rows"
    lmon=$(pgrep -f "\[lxc monitor\] $W/lxc-cfg os" | head -n 1)
    echo "lxc mem $(mem "$lmon")" >> "$W/rows"
    t0=$(now); lxc-stop -P "$W/lxc-cfg" -n os; t1=$(now)
    echo "lxc stop $(ms "$t0" "$t1")" >> "$W/rows"
done

col() { grep "^$1 $2 " "$W/rows" | awk -v f="$3" '{print $f}' | median; }
{
    echo "## Full-OS boot: Debian's systemd under berth, systemd-nspawn and LXC"
    echo
    echo "bench/fullos.sh, $REPS runs each, medians, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)."
    echo "The same debian-systemd rootfs (Debian 12, systemd 252), no network."
    echo "Boot: from the start command until \`systemctl is-system-running --wait\` returns"
    echo "inside. Stop: until the supervisor reports the container gone (SIGRTMIN+3 for all three)."
    echo "Memory: the supervising process while the container runs; its own is RssAnon,"
    echo "the rest pages of its binary and libraries."
    echo
    echo "| | boot | stop | supervisor RSS | of it its own (RssAnon) |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    for t in berth nspawn lxc; do
        name=$t
        [ "$t" = nspawn ] && name=systemd-nspawn
        echo "| $name | $(col "$t" boot 3) ms | $(col "$t" stop 3) ms | $(col "$t" mem 3) KiB | $(col "$t" mem 4) KiB |"
    done
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
    echo
    for t in nspawn lxc; do
        name=$t
        [ "$t" = nspawn ] && name=systemd-nspawn
        echo "- berth / $name: boot $(ratio "$(col berth boot 3)" "$(col "$t" boot 3)")x," \
            "stop $(ratio "$(col berth stop 3)" "$(col "$t" stop 3)")x," \
            "supervisor's own memory $(ratio "$(col berth mem 4)" "$(col "$t" mem 4)")x"
    done
} > "$W/out.md"
cat "$W/out.md"
[ -z "$OUT" ] || cp "$W/out.md" "$OUT"
