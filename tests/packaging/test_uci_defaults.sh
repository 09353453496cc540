#!/bin/sh
# Run openwrt-package/berth/files/berth.uci-defaults twice against a stub
# `uci` (a key=value file), inside a private mount namespace whose /etc is a
# tmpfs: it fills in missing options, keeps the ones set, and a second run
# changes nothing (it is rerun after every sysupgrade). Needs root (unshare).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
script="$top/openwrt-package/berth/files/berth.uci-defaults"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root for a private mount namespace"
	echo "0 passed, 0 failed"
	exit 0
fi
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# Stub uci: `uci -q get berth.main.x`, `uci -q set berth.main.x=v`,
# `uci -q set berth.main=berth`, `uci -q commit berth`, over $UCI_STATE.
mkdir -p "$tmp/bin"
cat > "$tmp/bin/uci" <<'UCI'
#!/bin/sh
[ "$1" = -q ] && shift
cmd=$1
arg=${2-}
touch "$UCI_STATE"
case "$cmd" in
	get) v=$(grep -m 1 "^$arg=" "$UCI_STATE") || exit 1; echo "${v#*=}" ;;
	set) key=${arg%%=*}; grep -v "^$key=" "$UCI_STATE" > "$UCI_STATE.new"; echo "$arg" >> "$UCI_STATE.new"; mv "$UCI_STATE.new" "$UCI_STATE"; echo "set $arg" >> "$UCI_STATE.log" ;;
	commit) echo "commit $arg" >> "$UCI_STATE.log" ;;
	*) exit 2 ;;
esac
UCI
chmod +x "$tmp/bin/uci"

# run_defaults: the script with /etc private and empty but for the state kept in $tmp.
run_defaults() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare -m sh -c '
		mount --make-rprivate / 2>/dev/null
		mount -t tmpfs tmpfs /etc
		[ -f "$1/etc-berth-config" ] && mkdir -p /etc/config && cp "$1/etc-berth-config" /etc/config/berth
		PATH="$1/bin:$PATH" UCI_STATE="$1/state" sh "$2"
		rc=$?
		[ -d /etc/berth ] && touch "$1/etc-berth-made"
		exit $rc' sh "$tmp" "$script"
}

if run_defaults; then ok "first run exits 0 (uci-defaults deletes it)"; else fail "first run failed"; fi
for kv in berth.main=berth berth.main.enabled=1 berth.main.manifest=/etc/berth/manifest.yaml \
	berth.main.root=/srv/berth berth.main.log_size=256k berth.main.term_timeout=30; do
	if grep -qx "$kv" "$tmp/state"; then ok "sets $kv"; else fail "missing $kv"; fi
done
if [ -f "$tmp/etc-berth-made" ]; then ok "creates /etc/berth"; else fail "no /etc/berth"; fi
cp "$tmp/state" "$tmp/state.first"
: > "$tmp/state.log"
if run_defaults && cmp -s "$tmp/state" "$tmp/state.first" && ! grep -q '^set ' "$tmp/state.log"; then
	ok "second run changes nothing"
else fail "second run changed the config: $(cat "$tmp/state.log")"; fi

# A user's setting survives (as after a sysupgrade that kept the config).
sed -i 's|^berth.main.root=.*|berth.main.root=/mnt/sda1/berth|' "$tmp/state"
run_defaults
if grep -qx 'berth.main.root=/mnt/sda1/berth' "$tmp/state"; then ok "keeps a root the user set"
else fail "overwrote the user's root"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
