#!/bin/sh
# What a router feels at boot and at every periodic apply, side by side in one
# run: cold `berth apply` of N = 10 and 50 containers (a veth each on one
# bridge, image already in the store) until all run, against `lxc-start -d` of
# the same N one after the other (as lxc-autostart does) and crun + a veth
# hook; their removal; a no-op apply of 50 (time and what it writes to the
# store); `berth status` of 50; `berth start` of one created container against
# `crun run -d` and `lxc-start -d`. Everything runs inside a network namespace
# made here and removed at the end (also on failure).
# Usage: bench/boot.sh BERTH_BINARY ROOTFS_TARBALL [OUT.md]   (root)
set -eu
BERTH=$(readlink -f "$1")
TARBALL=$(readlink -f "$2")
OUT=${3:-}
REPS=${REPS:-3}
NS=berth-boot-$$
CG=berth-boot-$$
W=$(mktemp -d /tmp/berth-boot.XXXXXX)
STORE=$W/store
# The runtime dir on tmpfs, as on a router (/var/run); the store on disk.
RUN=/dev/shm/berth-boot-$$
R=$W/rootfs
IN="nsenter --net=/run/netns/$NS"
B="$IN $BERTH --root $STORE --runtime-dir $RUN --cgroup-parent $CG"

cleanup() {
    set +e
    if [ -f "$W/none.yaml" ]; then $B apply "$W/none.yaml" >/dev/null 2>&1; fi
    for d in "$W"/lxc/*/; do
        [ -d "$d" ] && lxc-stop -P "$W/lxc" -n "$(basename "$d")" -k >/dev/null 2>&1
    done
    if [ -f "$W/crun-clean.sh" ]; then $IN unshare -m --propagation private sh "$W/crun-clean.sh" >/dev/null 2>&1; fi
    ip netns del "$NS" 2>/dev/null
    for c in /sys/fs/cgroup/*/"$CG"; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done
    rm -rf "$W" "$RUN"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
$IN ip link set lo up
mkdir -p "$R" "$W/lxc"
tar -xzf "$TARBALL" -C "$R"

now() { date +%s%N; }
ms() { echo "$(( ($2 - $1) / 1000000 ))"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
addr() { echo "10.99.$(( $1 / 200 )).$(( $1 % 200 + 10 ))/16"; }

# The manifest of N containers; $2: settings.parallel (empty: the default).
manifest() {
    n=$1
    par=${2:+, parallel: $2}
    f=$W/m$n${2:+-p$2}.yaml
    {
        echo "version: 1"
        echo "settings: { root: $STORE, runtime_dir: $RUN$par }"
        echo "images: { bb: { path: $TARBALL } }"
        echo "networks: { lan: { type: bridge, bridge: br-boot, create: true, address: 10.99.255.1/16 } }"
        if [ "$n" = 0 ]; then echo "containers: {}"; else echo "containers:"; fi
        i=0
        while [ "$i" -lt "$n" ]; do
            echo "  c$i: { image: bb, command: [sleep, '100000'], stop_signal: KILL, network: [{ network: lan, address: $(addr $i) }] }"
            i=$((i + 1))
        done
    } > "$f"
    echo "$f"
}
manifest 0 > /dev/null
cp "$W/m0.yaml" "$W/none.yaml"

# Warm-up: the image goes into the store and the bridge is made.
$B apply "$(manifest 1)" > /dev/null
$B apply "$W/m0.yaml" > /dev/null

# berth: cold apply of N, then its removal, REPS times; prints "apply remove".
berth_cold() {
    m=$(manifest "$1" "${2:-}")
    : > "$W/a"; : > "$W/r"
    k=0
    while [ "$k" -lt "$REPS" ]; do
        t0=$(now); $B apply "$m" > /dev/null; t1=$(now)
        $B apply "$W/m0.yaml" > /dev/null; t2=$(now)
        ms "$t0" "$t1" >> "$W/a"; ms "$t1" "$t2" >> "$W/r"
        k=$((k + 1))
    done
    echo "$(median < "$W/a") $(median < "$W/r")"
}

# lxc: the same N containers, same rootfs directory and bridge, started one
# after the other with `lxc-start -d` as lxc-autostart does.
lxc_conf() {
    mkdir -p "$W/lxc/$1"
    cat > "$W/lxc/$1/config" <<CONF
lxc.rootfs.path = dir:$R
lxc.uts.name = $1
lxc.net.0.type = veth
lxc.net.0.link = br-boot
lxc.net.0.flags = up
lxc.net.0.ipv4.address = $2
lxc.apparmor.profile = unconfined
lxc.mount.auto = proc:rw sys:ro
lxc.init.cmd = /bin/sleep 100000
CONF
}
# lxc looks for the bridge in /sys/class/net, which nsenter leaves the
# host's: it runs in a private mount namespace with the netns's own sysfs on
# /sys (as `ip netns exec` does) and the cgroup hierarchies bound back on it.
lxc_inner() {
    cat <<INNER
set -eu
mkdir -p $W/cg
mount --rbind /sys/fs/cgroup $W/cg
mount -t sysfs sysfs /sys
mount --rbind $W/cg /sys/fs/cgroup
INNER
}
lxc_cold() {
    n=$1
    i=0
    while [ "$i" -lt "$n" ]; do lxc_conf "l$i" "$(addr $((i + 100)))"; i=$((i + 1)); done
    {
        lxc_inner
        cat <<INNER
: > $W/a; : > $W/r
k=0
while [ \$k -lt $REPS ]; do
    t0=\$(date +%s%N)
    i=0; while [ \$i -lt $n ]; do lxc-start -P $W/lxc -n l\$i -d; i=\$((i + 1)); done
    t1=\$(date +%s%N)
    i=0; while [ \$i -lt $n ]; do lxc-stop -P $W/lxc -n l\$i -k; i=\$((i + 1)); done
    t2=\$(date +%s%N)
    echo \$(( (t1 - t0) / 1000000 )) >> $W/a; echo \$(( (t2 - t1) / 1000000 )) >> $W/r
    k=\$((k + 1))
done
INNER
    } > "$W/lxc-cold.sh"
    $IN unshare -m --propagation private sh "$W/lxc-cold.sh"
    echo "$(median < "$W/a") $(median < "$W/r")"
}

# crun: an OCI bundle per container on the same rootfs (read-only: no layer),
# a createRuntime hook that plugs a veth into the bridge, `crun run -d`.
# crun refuses this machine's hybrid cgroup layout, so it runs in a private
# mount namespace where only cgroup2 is mounted.
cat > "$W/veth-hook.sh" <<'HOOK'
#!/bin/sh
pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
ip link add "h-$1" type veth peer name eth0 netns "$pid"
ip link set "h-$1" master br-boot up
nsenter -t "$pid" -n sh -c "ip addr add $2 dev eth0 && ip link set eth0 up && ip link set lo up"
HOOK
chmod +x "$W/veth-hook.sh"
(cd "$W" && crun spec && mv config.json spec.json)
crun_bundle() {
    mkdir -p "$W/crun/$1"
    python3 - "$W/crun/$1/config.json" "$R" "$1" "$2" "$W/veth-hook.sh" <<'PY'
import json, sys
path, rootfs, name, addr, hook = sys.argv[1:]
c = json.load(open(f"{hook.rsplit('/', 1)[0]}/spec.json"))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["args"] = ["/bin/sleep", "100000"]
c["process"]["terminal"] = False
c["hostname"] = name
c["linux"].pop("resources", None)
ns = c["linux"]["namespaces"]
if not any(n["type"] == "network" for n in ns):
    ns.append({"type": "network"})
c["hooks"] = {"createRuntime": [{"path": hook, "args": [hook, name, addr]}]}
json.dump(c, open(path, "w"), indent=1)
PY
}
crun_inner() {
    cat <<INNER
set -eu
umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
INNER
}
crun_cold() {
    n=$1
    i=0
    while [ "$i" -lt "$n" ]; do crun_bundle "r$i" "$(addr $((i + 300)))"; i=$((i + 1)); done
    {
        crun_inner
        cat <<INNER
: > $W/a; : > $W/r
k=0
while [ \$k -lt $REPS ]; do
    t0=\$(date +%s%N)
    i=0; while [ \$i -lt $n ]; do crun run -d --bundle $W/crun/r\$i r\$i; i=\$((i + 1)); done
    t1=\$(date +%s%N)
    i=0; while [ \$i -lt $n ]; do crun delete -f r\$i; i=\$((i + 1)); done
    t2=\$(date +%s%N)
    echo \$(( (t1 - t0) / 1000000 )) >> $W/a; echo \$(( (t2 - t1) / 1000000 )) >> $W/r
    k=\$((k + 1))
done
INNER
    } > "$W/crun-cold.sh"
    { crun_inner; echo "for c in \$(crun list -q 2>/dev/null); do crun delete -f \$c; done"; } > "$W/crun-clean.sh"
    $IN unshare -m --propagation private sh "$W/crun-cold.sh"
    echo "$(median < "$W/a") $(median < "$W/r")"
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
JOBS=$(nproc)
for n in 10 50; do
    set -- $(berth_cold "$n" 1); eval "B1_A$n=$1 B1_R$n=$2"
    set -- $(berth_cold "$n"); eval "BD_A$n=$1 BD_R$n=$2"
    set -- $(berth_cold "$n" 8); eval "B8_A$n=$1 B8_R$n=$2"
    set -- $(lxc_cold "$n"); eval "L_A$n=$1 L_R$n=$2"
    set -- $(crun_cold "$n"); eval "C_A$n=$1 C_R$n=$2"
done

# A no-op apply and `status` of 50, and what the no-op apply writes to the
# store: every write, rename, unlink, mkdir or truncate under it, by strace.
M50=$(manifest 50)
$B apply "$M50" > /dev/null
hyperfine -N --warmup 3 --runs 30 --export-json "$W/noop.json" \
    -n noop-apply "$B apply $M50" -n status "$B status" > /dev/null
$IN strace -f -qq -y -o "$W/noop.strace" \
    -e trace=write,pwrite64,writev,pwritev,ftruncate,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,fsync,fdatasync \
    "$BERTH" --root "$STORE" --runtime-dir "$RUN" --cgroup-parent "$CG" apply "$M50" > /dev/null
# Failed calls (the store's mkdir finding it there) write nothing.
STORE_WRITES=$(grep "$STORE" "$W/noop.strace" | grep -vc "= -1 " || true)
# User-space instructions of the same no-op apply and status (valgrind's
# callgrind: the machine has no hardware counters for perf), for the router
# estimate below.
insns() {
    $IN valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$BERTH" --root "$STORE" --runtime-dir "$RUN" --cgroup-parent "$CG" "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
INSN_NOOP=$(insns apply "$M50")
INSN_STATUS=$(insns status)
$B apply "$W/m0.yaml" > /dev/null

# `berth start` of one created container (cgroup, monitor, record, veth) against
# `crun run -d` and `lxc-start -d`, each stopped again before every run.
ONE=$W/one.yaml
sed 's/^containers: {}$/containers:/' "$W/m0.yaml" > "$ONE"
echo "  one: { image: bb, command: [sleep, '100000'], stop_signal: KILL, autostart: false, network: [{ network: lan, address: 10.99.9.9/16 }] }" >> "$ONE"
$B apply "$ONE" > /dev/null
lxc_conf lone 10.99.9.10/16
crun_bundle rone 10.99.9.11/16
hyperfine --warmup 3 --runs "${START_RUNS:-30}" --export-json "$W/start.json" \
    --prepare "$B stop one" -n "berth start" "$B start one" > /dev/null
{
    lxc_inner
    cat <<INNER
hyperfine --warmup 3 --runs ${START_RUNS:-30} --export-json $W/start-lxc.json \\
  --prepare "lxc-stop -P $W/lxc -n lone -k || true" -n "lxc-start -d" "lxc-start -P $W/lxc -n lone -d" > /dev/null
lxc-stop -P $W/lxc -n lone -k
INNER
} > "$W/start-lxc.sh"
$IN unshare -m --propagation private sh "$W/start-lxc.sh"
{
    crun_inner
    cat <<INNER
hyperfine --warmup 3 --runs ${START_RUNS:-30} --export-json $W/start-crun.json \\
  --prepare "crun delete -f rone || true" -n "crun run -d" "crun run -d --bundle $W/crun/rone rone" > /dev/null
crun delete -f rone
INNER
} > "$W/start.sh"
$IN unshare -m --propagation private sh "$W/start.sh"
lxc-stop -P "$W/lxc" -n lone -k > /dev/null 2>&1 || true

REPORT=$W/report.md
python3 - "$W" "$STORE_WRITES" "$INSN_NOOP" "$INSN_STATUS" <<PY > "$REPORT"
import json, sys
w, writes = sys.argv[1], int(sys.argv[2])
insns = {"noop-apply": int(sys.argv[3]), "status": int(sys.argv[4])}
noop = {r["command"]: r for r in json.load(open(f"{w}/noop.json"))["results"]}
start = {r["command"]: r for f in ("start", "start-crun", "start-lxc") for r in json.load(open(f"{w}/{f}.json"))["results"]}
cold = {
    10: dict(b1=($B1_A10, $B1_R10), bd=($BD_A10, $BD_R10), b8=($B8_A10, $B8_R10), lxc=($L_A10, $L_R10), crun=($C_A10, $C_R10)),
    50: dict(b1=($B1_A50, $B1_R50), bd=($BD_A50, $BD_R50), b8=($B8_A50, $B8_R50), lxc=($L_A50, $L_R50), crun=($C_A50, $C_R50)),
}
print("## Boot: converge N containers")
print()
print("Cold \`berth apply\` of N busybox containers (\`sleep\`, a veth each on one bridge, the")
print("image already in the store) until every one runs, and the removal of all N (an apply of a")
print("manifest without them), against \`lxc-start -d\` of the same N one after the other (as")
print("lxc-autostart starts them; same rootfs directory, same bridge, \`lxc-stop -k\` to remove) and")
print("\`crun run -d\` with a createRuntime hook that plugs a veth into the bridge (\`crun delete -f\`")
print("to remove; crun runs in a private mount namespace with only cgroup2 mounted, as it refuses")
print("this machine's hybrid layout). All inside a network namespace the bench made. Median of")
print("$REPS runs, milliseconds; berth with \`settings.parallel\` 1 (the old one-at-a-time run),")
print("the default (one per CPU: $JOBS) and 8. Machine: $(uname -m), $(nproc) cores, kernel")
print("$(uname -r), cgroup v1; load average before the run $LOAD; measured $(date -u +%Y-%m-%d).")
print()
print("| N | berth p=1 | berth p=$JOBS | berth p=8 | lxc-start -d | crun + hook | best berth / lxc |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for n, c in cold.items():
    best = min(c["b1"][0], c["bd"][0], c["b8"][0])
    print(f"| {n} apply | {c['b1'][0]} | {c['bd'][0]} | {c['b8'][0]} | {c['lxc'][0]} | {c['crun'][0]} | {best / c['lxc'][0]:.2f} |")
for n, c in cold.items():
    best = min(c["b1"][1], c["bd"][1], c["b8"][1])
    print(f"| {n} remove | {c['b1'][1]} | {c['bd'][1]} | {c['b8'][1]} | {c['lxc'][1]} | {c['crun'][1]} | {best / c['lxc'][1]:.2f} |")
print()
a, s = noop["noop-apply"], noop["status"]
print("### No-op apply and status")
print()
print("The same 50 containers running, hyperfine -N, 30 runs after 3 warm-ups, same run as above.")
print()
print("| Command | Median [ms] | User [ms] | System [ms] |")
print("|:---|---:|---:|---:|")
for name, r in (("no-op \`apply\` of 50", a), ("\`status\` of 50", s)):
    print(f"| {name} | {r['median'] * 1000:.1f} | {r['user'] * 1000:.1f} | {r['system'] * 1000:.1f} |")
print()
print(f"Writes of a no-op apply under the store (every write, rename, unlink, mkdir,")
print(f"truncate and fsync whose path is in the store, traced with strace -f -y): {writes}.")
print()
print("### Start one created container")
print()
print("A created container (cgroup, record, rootfs in place) started end to end: \`berth start\`")
print("(cgroup, monitor, records, veth on the bridge), \`crun run -d\` (veth by a createRuntime hook)")
print("and \`lxc-start -d\` (veth on the bridge); each stopped again before every run (not timed).")
print("hyperfine (its shell's start subtracted), ${START_RUNS:-30} runs after 3 warm-ups, same machine")
print("and run as above; crun in its cgroup2-only mount namespace, lxc in one with the netns's sysfs.")
print()
print("| Command | Median [ms] | User [ms] | System [ms] |")
print("|:---|---:|---:|---:|")
for name, r in start.items():
    print(f"| \`{name}\` | {r['median'] * 1000:.1f} | {r['user'] * 1000:.1f} | {r['system'] * 1000:.1f} |")
b = start["berth start"]["median"]
print()
print(f"- median berth start / crun run -d: {b / start['crun run -d']['median']:.2f}")
print(f"- median berth start / lxc-start -d: {b / start['lxc-start -d']['median']:.2f}")
print()
print("### What a router sees (an estimate)")
print()
print("Not measured on a router: an estimate from the no-op apply and status above. Their")
print("user-space instructions were counted with valgrind (callgrind, no hardware counters here):")
print(", ".join(f"{k} {v / 1e6:.1f} M" for k, v in insns.items()) + ". That gives this machine's rate")
print("(instructions / user time). A router core is assumed to retire 0.6 instructions per cycle")
print("(Cortex-A53, 1.2 GHz: 0.72 G/s) and 0.5 (MIPS 24Kc, 650 MHz, single-issue: 0.33 G/s); user")
print("and system time are scaled by this machine's rate over the router's, and the rest of the")
print("wall time (waiting) is kept as it is. One core is used either way (the commands are serial).")
print()
print("| Command | here [ms] | Cortex-A53 1.2 GHz [ms] | MIPS 24Kc 650 MHz [ms] |")
print("|:---|---:|---:|---:|")
for key, name in (("noop-apply", "no-op \`apply\` of 50"), ("status", "\`status\` of 50")):
    r = noop[key]
    cpu = r["user"] + r["system"]
    rate = insns[key] / r["user"]
    wait = max(r["median"] - cpu, 0)
    est = lambda router: (cpu * rate / router + wait) * 1000
    print(f"| {name} | {r['median'] * 1000:.1f} | {est(0.72e9):.0f} | {est(0.33e9):.0f} |")
print()
print("The cold apply and the start are not estimated this way: most of their time is the kernel's")
print("(cgroup attach, namespaces, veth, mounts, fsync) and waiting for it, which berth's own")
print("instruction count does not capture; on a router they scale with its kernel and storage.")
PY
cat "$REPORT"
if [ -n "$OUT" ]; then
    cp "$REPORT" "$OUT"
fi
