#!/bin/sh
# Run openwrt-package/berth/files/berth.init against the procd stub and check
# the instance it declares for several UCI configurations.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
init="$top/openwrt-package/berth/files/berth.init"
defaults="$top/openwrt-package/berth/files/berth.config"
stub="$here/procd_stub.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0

# expect NAME OUTPUT LINE...: every LINE must appear in OUTPUT exactly.
expect() {
	name=$1 out=$2
	shift 2
	ok=1
	for line in "$@"; do
		if ! printf '%s\n' "$out" | grep -qxF -- "$line"; then
			echo "FAIL $name: missing line: $line"
			ok=0
		fi
	done
	if [ "$ok" -eq 1 ]; then passed=$((passed + 1)); echo "ok   $name"
	else failed=$((failed + 1)); printf '%s\n' "$out" | sed 's/^/     | /'; fi
}

# refute NAME OUTPUT PATTERN: no line of OUTPUT matches the grep PATTERN.
refute() {
	if printf '%s\n' "$2" | grep -q -- "$3"; then
		echo "FAIL $1: unexpected match for $3"
		printf '%s\n' "$2" | sed 's/^/     | /'
		failed=$((failed + 1))
	else
		passed=$((passed + 1)); echo "ok   $1"
	fi
}

run() { sh "$stub" "$1" "$init" start_service service_triggers 2>&1; }

# 1. The shipped default config, with the manifest moved into the temp dir.
mkdir -p "$tmp/c1"
sed -e "s|/etc/berth/manifest.yaml|$tmp/manifest.yaml|" \
    -e "s|'/srv/berth'|'$tmp/store'|" "$defaults" > "$tmp/c1/berth"
echo "version: 1" > "$tmp/manifest.yaml"
out=$(run "$tmp/c1")
expect "default config declares the apply instance" "$out" \
	"instance berth" \
	"param command /usr/bin/berth apply --serve $tmp/manifest.yaml" \
	"param respawn 3600 5 5" \
	"param stdout 1" \
	"param stderr 1" \
	"param file $tmp/manifest.yaml" \
	"param term_timeout 30" \
	"param reload_signal HUP" \
	"param env BERTH_ROOT=$tmp/store BERTH_LOG_SIZE=256k" \
	"close" \
	"trigger reload berth"
if [ -d "$tmp/store" ]; then passed=$((passed + 1)); echo "ok   store root is created"
else failed=$((failed + 1)); echo "FAIL store root $tmp/store not created"; fi
n=$(printf '%s\n' "$out" | grep -c '^instance ')
if [ "$n" -eq 1 ]; then passed=$((passed + 1)); echo "ok   exactly one instance"
else failed=$((failed + 1)); echo "FAIL expected one instance, got $n"; fi

# 2. Disabled: no instance, the trigger stays.
mkdir -p "$tmp/c2"
sed "s/option enabled '1'/option enabled '0'/" "$tmp/c1/berth" > "$tmp/c2/berth"
out=$(run "$tmp/c2")
refute "disabled config declares no instance" "$out" '^instance'
expect "disabled config keeps the reload trigger" "$out" "trigger reload berth"

# 3. Manifest file missing: no instance (procd would respawn a failing apply).
mkdir -p "$tmp/c3"
sed "s|$tmp/manifest.yaml|$tmp/absent.yaml|" "$tmp/c1/berth" > "$tmp/c3/berth"
out=$(run "$tmp/c3")
refute "missing manifest declares no instance" "$out" '^instance'

# 4. Manifest URL and custom timeouts: no file watch, values passed through.
mkdir -p "$tmp/c4"
cat > "$tmp/c4/berth" <<CONF
config berth 'main'
	option manifest 'https://fleet.example/r1.yaml'
	option root '$tmp/store4'
	option term_timeout '12'
	option respawn_retry '0'
CONF
out=$(run "$tmp/c4")
expect "URL manifest and custom values" "$out" \
	"param command /usr/bin/berth apply --serve https://fleet.example/r1.yaml" \
	"param term_timeout 12" \
	"param respawn 3600 5 0" \
	"param env BERTH_ROOT=$tmp/store4 BERTH_LOG_SIZE=256k"
refute "URL manifest has no file watch" "$out" '^param file'

# 5. A fleet: `option url` wins over `option manifest` (absent here), polls
# every 300 s by default with the jitter given, and an inline key is written
# to a file for --keys.
KEY=RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3
mkdir -p "$tmp/c5"
cat > "$tmp/c5/berth" <<CONF
config berth 'main'
	option manifest '$tmp/absent.yaml'
	option url 'https://fleet.example/r1.yaml'
	option key '$KEY'
	option jitter '30s'
	option root '$tmp/store5'
CONF
out=$(BERTH_KEY_DIR="$tmp/run5" run "$tmp/c5")
expect "url with an inline key and the default interval" "$out" \
	"param command /usr/bin/berth apply --serve --interval 300 --jitter 30s --keys $tmp/run5/uci-key.pub https://fleet.example/r1.yaml"
if [ "$(sed -n 2p "$tmp/run5/uci-key.pub")" = "$KEY" ] &&
   sed -n 1p "$tmp/run5/uci-key.pub" | grep -q '^untrusted comment: ' &&
   [ "$(stat -c %a "$tmp/run5/uci-key.pub")" = 644 ]; then
	passed=$((passed + 1)); echo "ok   inline key written as a .pub file, mode 644"
else
	failed=$((failed + 1)); echo "FAIL inline key file:"; cat "$tmp/run5/uci-key.pub"
fi

# 6. A key file and an interval; jitter without interval is not passed.
mkdir -p "$tmp/c6" "$tmp/c6b"
cat > "$tmp/c6/berth" <<CONF
config berth 'main'
	option url 'http://10.0.0.1/r1.yaml'
	option key '/etc/berth/fleet.pub'
	option interval '60'
	option root '$tmp/store6'
CONF
out=$(run "$tmp/c6")
expect "url with a key file and an interval" "$out" \
	"param command /usr/bin/berth apply --serve --interval 60 --keys /etc/berth/fleet.pub http://10.0.0.1/r1.yaml"
sed -e "s|/etc/berth/manifest.yaml|$tmp/manifest.yaml|" -e "s|'/srv/berth'|'$tmp/store'|" \
	-e "s|#option jitter|option jitter|" "$defaults" > "$tmp/c6b/berth"
out=$(run "$tmp/c6b")
expect "a file manifest polls only when asked" "$out" \
	"param command /usr/bin/berth apply --serve $tmp/manifest.yaml"

# 6c. The other trust options: a key list, signed local files, the fleet's CA.
mkdir -p "$tmp/c6c"
cat > "$tmp/c6c/berth" <<CONF
config berth 'main'
	option url 'https://fleet.example/r1.yaml'
	option key '/etc/berth/fleet.pub'
	option keys_url 'https://fleet.example/keys.list'
	option require_signed '1'
	option ca_bundle '/etc/berth/fleet-ca.pem'
	option root '$tmp/store6c'
CONF
out=$(run "$tmp/c6c")
expect "key list, signed files and CA bundle" "$out" \
	"param command /usr/bin/berth apply --serve --interval 300 --keys /etc/berth/fleet.pub --keys-url https://fleet.example/keys.list --require-signed --ca-bundle /etc/berth/fleet-ca.pem https://fleet.example/r1.yaml"

# 6d. The fleet's broker, the device id and its groups.
mkdir -p "$tmp/c6d"
cat > "$tmp/c6d/berth" <<CONF
config berth 'main'
	option url 'https://fleet.example/r1.yaml'
	option mqtt 'mqtts://broker.example:8883'
	option mqtt_user 'rtr1'
	option mqtt_password_file '/etc/berth/mqtt.password'
	option mqtt_keepalive '30'
	option topic_prefix 'isp/'
	option device_id 'rtr1'
	list group 'lab'
	list group 'b07'
	option root '$tmp/store6d'
CONF
out=$(run "$tmp/c6d")
expect "broker, device id and groups" "$out" \
	"param command /usr/bin/berth apply --serve --interval 300 --mqtt mqtts://broker.example:8883 --mqtt-user rtr1 --mqtt-password-file /etc/berth/mqtt.password --mqtt-keepalive 30 --topic-prefix isp/ --device-id rtr1 --group lab --group b07 https://fleet.example/r1.yaml"

# 7. Bad values: no instance, a message naming the option.
for bad in "key 'RWQ x\$(reboot)'" "interval 'soon'" "url 'ftp://fleet.example/r1.yaml'"; do
	mkdir -p "$tmp/c7"
	printf "config berth 'main'\n\toption url 'https://fleet.example/r1.yaml'\n\toption root '%s'\n\toption %s\n" \
		"$tmp/store7" "$bad" > "$tmp/c7/berth"
	out=$(BERTH_KEY_DIR="$tmp/run7" run "$tmp/c7")
	refute "bad option $bad declares no instance" "$out" '^instance'
	expect "bad option $bad is named" "$(printf '%s\n' "$out" | grep -o 'option [a-z]*' | head -1)" \
		"option ${bad%% *}"
done
if [ ! -e "$tmp/run7/uci-key.pub" ]; then passed=$((passed + 1)); echo "ok   a bad inline key is not written"
else failed=$((failed + 1)); echo "FAIL a bad inline key was written"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
