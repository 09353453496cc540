#!/bin/sh
# What a health check costs per container: N busybox httpd containers under
# `berth apply`, first without a check, then with an exec, a tcp and an http
# probe every second; for each, the monitors' CPU time (their own and their
# reaped probes', from /proc/PID/stat) over a window, divided by the probes
# run, and the monitors' resident memory.
# Usage: bench/health.sh BERTH_BINARY [OUT.md]   (root)
set -eu
BERTH=$(readlink -f "$1")
OUT=${2:-}
N=${N:-10}
WINDOW=${WINDOW:-30}
W=$(mktemp -d /tmp/berth-bench-health.XXXXXX)
PARENT=berth-bench-health-$$
ROOTFS=${BERTH_TEST_ROOTFS:-$(pwd)/build/busybox-rootfs.tar.gz}
run() { "$BERTH" --cgroup-parent "$PARENT" --runtime-dir "$W/run" "$@"; }
manifest() { # $1: the health line, or empty
    {
        printf 'version: 1\nsettings: { root: %s, runtime_dir: %s }\n' "$W/store" "$W/run"
        printf 'images:\n  bb: { path: %s }\ncontainers:\n' "$ROOTFS"
        i=0
        while [ $i -lt "$N" ]; do
            printf '  c%s:\n    image: bb\n    command: [httpd, -f, -p, "8080", -h, /etc]\n' $i
            [ -n "$1" ] && printf '    health: %s\n' "$1"
            i=$((i + 1))
        done
    } > "$W/m.yaml"
}
cleanup() {
    manifest ""
    printf 'version: 1\nsettings: { root: %s, runtime_dir: %s }\n' "$W/store" "$W/run" > "$W/m.yaml"
    run apply "$W/m.yaml" >/dev/null 2>&1 || true
    for d in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do
        [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

# Sum over the monitors: CPU clock ticks (utime+stime+cutime+cstime),
# VmRSS and private KiB, probes run.
measure() {
    python3 - "$W/run" <<'EOF'
import json, os, sys
run = sys.argv[1]
ticks = rss = private = checks = n = 0
for name in sorted(os.listdir(run)):
    try:
        st = json.load(open(os.path.join(run, name, "state.json")))
    except (OSError, ValueError):
        continue
    pid = st["monitor"]["pid"]
    stat = open(f"/proc/{pid}/stat").read()
    f = stat[stat.rfind(")") + 2:].split()
    ticks += sum(int(x) for x in f[11:15])
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss += int(line.split()[1])
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            private += int(line.split()[1])
    checks += (st.get("health") or {}).get("checks", 0)
    n += 1
print(ticks, rss, private, checks, n)
EOF
}

HZ=$(getconf CLK_TCK)
ROWS=""
for kind in none exec tcp http; do
    case $kind in
        none) h="" ;;
        exec) h="{ exec: [\"true\"], interval: 1s }" ;;
        tcp) h="{ tcp: 8080, interval: 1s }" ;;
        http) h="{ http: { port: 8080, path: /passwd }, interval: 1s }" ;;
    esac
    manifest "$h"
    run apply --wait "$W/m.yaml" >/dev/null
    sleep 3
    set -- $(measure)
    t0=$1 c0=$4
    sleep "$WINDOW"
    set -- $(measure)
    t1=$1 rss=$2 priv=$3 c1=$4 n=$5
    row=$(python3 -c "
import sys
t0,t1,c0,c1,n,rss,priv,hz,win=map(float,sys.argv[1:])
cpu_ms=(t1-t0)*1000/hz
probes=c1-c0
per=cpu_ms/probes if probes else 0
# At the default interval (10 s), one container's share of one CPU.
share=per/10000*100
print(f'| $kind | {int(n)} | {int(probes)} | {cpu_ms/n/win:.3f} | {per:.2f} | {share:.3f} % | {rss/n:.0f} | {priv/n:.0f} |')
" "$t0" "$t1" "$c0" "$c1" "$n" "$rss" "$priv" "$HZ" "$WINDOW")
    ROWS="$ROWS
$row"
    # Recreate for the next kind: the check is part of the container's digest.
done

REPORT=$(cat <<EOF
## Health checks

Measured $(date -u +%Y-%m-%d) by \`make bench-health\` (bench/health.sh): $N busybox
\`httpd\` containers under the firmware build of berth, each kind of probe
every second for ${WINDOW} s. CPU is the monitors' own time plus that of the
probes they reaped (utime, stime, cutime, cstime), so an \`exec\` probe's join
and command are counted; memory is the monitors' VmRSS and private
(Private_Clean + Private_Dirty of smaps_rollup) per container at the end of the
window. The share of one CPU is per container at the default 10 s interval.
With a probe, VmRSS is higher by the binary's shared text pages the probe
path touches (the fork, the join); they are file pages of the one berth
binary, shared by every monitor, and private memory does not grow: between
probes a check costs no memory of its own.

| probe | containers | probes run | CPU ms per container per s | CPU ms per probe | share of a CPU at 10 s | monitor RSS KiB | monitor private KiB |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |$ROWS
EOF
)
echo "$REPORT"
[ -n "$OUT" ] && echo "$REPORT" > "$OUT"
exit 0
