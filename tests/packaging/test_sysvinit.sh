#!/bin/sh
# Run dist/berth.sysvinit start/status/reload/stop against a fake berth
# (a shell loop that records its arguments and signals). The script's
# cgroup2 mount step must find this machine's cgroups already mounted and
# leave them alone; without a cgroup mount at /sys/fs/cgroup the test skips.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
init="$top/dist/berth.sysvinit"
tmp=$(mktemp -d)
cleanup() {
	for p in "$tmp"/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

if ! grep -qE ' /sys/fs/cgroup (cgroup2|tmpfs) ' /proc/mounts; then
	echo "skip: no cgroup filesystem at /sys/fs/cgroup; the script would mount one"
	echo "0 passed, 0 failed"
	exit 0
fi
command -v start-stop-daemon >/dev/null || { echo "skip: no start-stop-daemon"; echo "0 passed, 0 failed"; exit 0; }

# fake_daemon NAME TRAP: a fake berth; TRAP is its SIGTERM action.
fake_daemon() {
	cat > "$tmp/$1" <<FAKE
#!/bin/sh
echo "\$*" > "$tmp/$1.args"
trap 'echo hup >> "$tmp/$1.log"' HUP
trap '$2' TERM
while :; do sleep 0.1; done
FAKE
	chmod +x "$tmp/$1"
	cat > "$tmp/$1.defaults" <<DEF
DAEMON=$tmp/$1
MANIFEST=$tmp/manifest.yaml
PIDFILE=$tmp/$1.pid
STOP_TIMEOUT=2
DEF
}
run() { BERTH_DEFAULTS="$tmp/$1.defaults" sh "$init" "$2"; }
# gone PID: exited (a zombie counts: this sandbox's pid 1 may reap late).
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
wait_for() { i=0; while [ $i -lt 50 ]; do [ -s "$1" ] && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }

fake_daemon good 'echo term >> "'"$tmp"'/good.log"; exit 0'
if run good start >/dev/null && [ ! -f "$tmp/good.pid" ]; then ok "no manifest: does not start"
else fail "started without a manifest"; fi

echo "version: 1" > "$tmp/manifest.yaml"
run good start >/dev/null
if wait_for "$tmp/good.args" && [ "$(cat "$tmp/good.args")" = "apply --serve $tmp/manifest.yaml" ]; then
	ok "start runs berth apply --serve MANIFEST in the background"
else fail "start: args $(cat "$tmp/good.args" 2>/dev/null)"; fi
if run good status >/dev/null; then ok "status: running"; else fail "status after start"; fi
pid=$(cat "$tmp/good.pid")
run good start >/dev/null
if [ "$(cat "$tmp/good.pid")" = "$pid" ]; then ok "second start keeps the running one"; else fail "second start replaced the pid"; fi
run good reload >/dev/null
if wait_for "$tmp/good.log" && grep -qx hup "$tmp/good.log"; then ok "reload sends SIGHUP"; else fail "reload: no SIGHUP"; fi
run good stop >/dev/null
if grep -qx term "$tmp/good.log" && gone "$pid" && [ ! -f "$tmp/good.pid" ]; then
	ok "stop sends SIGTERM to berth and removes the pid file"
else fail "stop"; fi
run good status >/dev/null
if [ $? -eq 3 ]; then ok "status: not running is 3"; else fail "status after stop"; fi

# A berth that ignores SIGTERM is killed after STOP_TIMEOUT.
fake_daemon stubborn 'echo ignored >> "'"$tmp"'/stubborn.log"'
run stubborn start >/dev/null
wait_for "$tmp/stubborn.args"
spid=$(cat "$tmp/stubborn.pid")
run stubborn stop >/dev/null 2>&1
sleep 0.2
if gone "$spid" && grep -q ignored "$tmp/stubborn.log"; then
	ok "stop kills a berth that ignores SIGTERM after the timeout"
else fail "stubborn berth survived stop"; fi

# A fleet URL with SERVE_ARGS: started without a file check, the options
# passed one word each, berth's own variables exported to it.
fake_daemon fleet 'exit 0'
cat >> "$tmp/fleet.defaults" <<DEF
BERTH_MANIFEST=https://fleet.example/r1.yaml
BERTH_SERVE_ARGS="--interval 300 --jitter 10%"
BERTH_KEYS=/etc/berth/keys
DEF
cat > "$tmp/fleet" <<FAKE
#!/bin/sh
{ echo "\$*"; echo "keys=\$BERTH_KEYS"; } > "$tmp/fleet.args"
trap 'exit 0' TERM
while :; do sleep 0.1; done
FAKE
run fleet start >/dev/null
if wait_for "$tmp/fleet.args" &&
   [ "$(sed -n 1p "$tmp/fleet.args")" = "apply --serve --interval 300 --jitter 10% https://fleet.example/r1.yaml" ] &&
   [ "$(sed -n 2p "$tmp/fleet.args")" = "keys=/etc/berth/keys" ]; then
	ok "a URL manifest starts with SERVE_ARGS and the BERTH_ variables"
else fail "fleet start: $(cat "$tmp/fleet.args" 2>/dev/null)"; fi
run fleet stop >/dev/null

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
