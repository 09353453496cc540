#!/bin/sh
# Container start-to-exit of `/bin/true` (new namespaces, no network) for berth
# and, side by side in one hyperfine run, crun, runc, lxc-execute,
# systemd-nspawn and a bare `unshare ... chroot` floor, all on the same
# busybox rootfs; then the idle RSS of berth's monitor.
# Usage: bench/start.sh BERTH_BINARY [OUT.md]   (root; tools from Debian)
set -eu
BERTH=$(readlink -f "$1")
OUT=${2:-}
RUNS=${RUNS:-200}
W=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
    if [ -n "${MON_ROOT:-}" ]; then "$BERTH" stop --runtime-dir "$MON_ROOT" --timeout 1 idle >/dev/null 2>&1 || true; fi
    lxc-stop -P "$W/lxc" -n idle -k >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

# The rootfs: busybox-static plus what nspawn wants to see of an OS tree.
R=$W/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/usr" "$R/root"
cp /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'ID=busybox\nNAME=busybox\n' > "$R/etc/os-release"

# An OCI bundle for crun and runc: their default spec with our rootfs and command.
B=$W/bundle
mkdir -p "$B"
(cd "$B" && crun spec)
python3 - "$B/config.json" "$R" <<'PY'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": False}
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
# The default device rule makes crun load an eBPF program on cgroup v2, which
# needs RLIMIT_MEMLOCK raised (CAP_SYS_RESOURCE); berth's start sets no device
# rule either, so leave it out for both.
c["linux"].pop("resources", None)
ns = c["linux"]["namespaces"]
if not any(n["type"] == "network" for n in ns):
    ns.append({"type": "network"})
json.dump(c, open(path, "w"), indent=1)
PY

# lxc-execute: same rootfs, new namespaces, loopback-only network.
mkdir -p "$W/lxc"
cat > "$W/lxc.conf" <<CONF
lxc.rootfs.path = dir:$R
lxc.uts.name = bench
lxc.net.0.type = empty
lxc.apparmor.profile = unconfined
lxc.init.cmd = /bin/true
CONF

# crun refuses this machine's hybrid cgroup layout: run the whole comparison in
# a private mount namespace where only cgroup2 is mounted (berth's __run does
# not touch cgroups, so the layout does not change what it measures).
cat > "$W/inner.sh" <<INNER
set -eu
umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
hyperfine -N --warmup 10 --runs $RUNS --export-json "$W/start.json" --export-markdown "$W/start.md" \\
  -n berth "$BERTH __run --rootfs $R -- /bin/true" \\
  -n crun "crun run --bundle $B bench-crun" \\
  -n crun-no-cgroup "crun --cgroup-manager=disabled run --bundle $B bench-crun2" \\
  -n runc "runc run --bundle $B bench-runc" \\
  -n lxc-execute "lxc-execute -P $W/lxc -n bench -f $W/lxc.conf -- /bin/true" \\
  -n systemd-nspawn "systemd-nspawn -q --register=no --keep-unit --private-network -D $R /bin/true" \\
  -n unshare-floor "unshare -fmpiu chroot $R /bin/true"
INNER
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
unshare -m --propagation private sh "$W/inner.sh"

# Idle RSS of a monitor: start a sleeping container under one, measure, stop.
MON_ROOT=$W/run
"$BERTH" __run --rootfs "$R" --name idle --detach "$MON_ROOT" -- /bin/sleep 600 >/dev/null
sleep 1
MPID=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['monitor']['pid'])" "$MON_ROOT/idle/state.json")
RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$MPID/status")
ANON=$(awk '/^RssAnon/ {print $2}' "/proc/$MPID/status")
"$BERTH" stop --runtime-dir "$MON_ROOT" --timeout 1 idle >/dev/null

# The same for lxc's monitor (`lxc-start -d`), for scale.
sed 's|^lxc.init.cmd = .*|lxc.init.cmd = /bin/sleep 600|' "$W/lxc.conf" > "$W/lxc-idle.conf"
lxc-start -P "$W/lxc" -n idle -f "$W/lxc-idle.conf" -d
sleep 1
LPID=$(lxc-info -P "$W/lxc" -n idle -p -H)
LMON=$(awk '{print $4}' "/proc/$LPID/stat")
LXC_RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$LMON/status")
LXC_ANON=$(awk '/^RssAnon/ {print $2}' "/proc/$LMON/status")
lxc-stop -P "$W/lxc" -n idle -k

REPORT=$W/report.md
{
    echo "## Container start"
    echo
    echo "Start-to-exit of \`/bin/true\` in new mount, PID, UTS, IPC and network namespaces"
    echo "(loopback only), same busybox-static rootfs, hyperfine -N, $RUNS runs after 10 warm-ups,"
    echo "all in one run on $(uname -m), kernel $(uname -r), $(nproc) cores; measured $(date -u +%Y-%m-%d)."
    echo "berth: \`berth __run\` (the monitor's own prepare/clone/pivot_root/caps/seccomp/exec path)."
    echo "Load average before the run: $LOAD (a shared machine: absolute times vary between runs,"
    echo "the ratios come from one hyperfine run, one command after the other)."
    echo
    cat "$W/start.md"
    echo
    python3 - "$W/start.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
b = r["berth"]["median"]
print("| Command | Median [ms] |")
print("|:---|---:|")
for name, x in r.items():
    print(f"| `{name}` | {x['median'] * 1000:.1f} |")
print()
for name in ("crun", "crun-no-cgroup", "runc", "lxc-execute", "systemd-nspawn", "unshare-floor"):
    if name in r:
        print(f"- median berth / {name}: {b / r[name]['median']:.2f}")
PY
    echo
    echo "Monitor idle RSS (VmRSS while supervising \`sleep\`, same run): berth \`__monitor\` ${RSS} KiB"
    echo "(${ANON} KiB of it private, RssAnon; the rest is pages of the binary, shared by every berth"
    echo "process and dropped under memory pressure), lxc's \`[lxc monitor]\` (\`lxc-start -d\`) ${LXC_RSS} KiB"
    echo "(${LXC_ANON} KiB private)."
} > "$REPORT"
cat "$REPORT"
if [ -n "$OUT" ]; then
    cp "$REPORT" "$OUT"
fi
