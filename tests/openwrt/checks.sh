#!/bin/sh
# Run by procd.sh inside the OpenWrt root (busybox ash, PID namespace of its
# own): starts ubusd, procd and rpcd, then drives /etc/init.d/berth and
# /etc/config/berth with the real berth and real containers.
# sh -c with single-quoted scripts is meant: they expand in the child.
# shellcheck disable=SC2016
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
SOCK=/var/run/ubus/ubus.sock   # procd.sh calls plain `ubus call`: the default socket
LOG=/tmp/messages   # busybox syslogd: procd sends the instances' stdout and stderr to syslog
fails=0 passes=0
ok()  { echo "ok    $*"; passes=$((passes + 1)); }
bad() { echo "FAIL  $*"; fails=$((fails + 1)); }
check() { d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
waitfor() { n=$1; shift; while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 1; n=$((n - 1)); done; "$@"; }
# (busybox has an applet called svc: these names stay distinct)
svcjson() { ubus call service list '{"name":"berth","verbose":true}'; }
jf() { svcjson | jsonfilter -e "$1"; }
bpid() { jf '@.berth.instances.berth.pid'; }
running() { [ "$(jf '@.berth.instances.berth.running')" = true ]; }
not_running() { ! running; }
dead() { ! kill -0 "$1" 2>/dev/null; }
pid_changed() { p=$(bpid); [ -n "$p" ] && [ "$p" != "$1" ] && running; }
environ_has() { p=$(bpid); [ -n "$p" ] && tr '\0' '\n' <"/proc/$p/environ" | grep -qx "$1"; }
cmdline() { p=$(bpid); [ -z "$p" ] || tr '\0' ' ' <"/proc/$p/cmdline"; }
# berth's own view of container NAME in the store ROOT: its state and pid
cstate() { BERTH_ROOT=$1 berth status --json "$2" 2>/dev/null | jsonfilter -e '@.containers[0].state' 2>/dev/null; }
cpid() { BERTH_ROOT=$1 berth status --json "$2" 2>/dev/null | jsonfilter -e '@.containers[0].pid' 2>/dev/null; }
# the revision berth applied last in the store ROOT
applied() { BERTH_ROOT=$1 berth status --json 2>/dev/null | jsonfilter -e '@.last_apply.revision.sha256'; }
is_running() { [ "$(cstate "$1" "$2")" = running ]; }
not_up() { ! is_running "$1" "$2"; }
links() { [ -L "/etc/rc.d/$1" ] && [ -L "/etc/rc.d/$2" ]; }
nolinks() { ! [ -e "/etc/rc.d/$1" ] && ! [ -e "/etc/rc.d/$2" ]; }
not_enabled() { ! /etc/init.d/berth enabled; }
logged() { grep -q "$1" $LOG; }
# What OpenWrt's reload_config does for a changed /etc/config/berth.
config_changed() {
	ubus call service event '{"type":"config.change","data":{"package":"berth"}}'
}
# uci set ...; uci commit; the config.change event; then wait for procd's
# reload trigger (PROCD_RELOAD_DELAY, 1 s) and the init script's reload.
uci_reload() {
	for a in "$@"; do uci set "berth.main.$a"; done
	uci commit berth
	config_changed
	sleep 2
}
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
elapsed_ms() { echo $(($(now_ms) - $1)); }

manifest() { # NAMES...: one busybox container per name, each stops on SIGTERM
	{
		printf 'version: 1\nimages:\n  bb: { path: /usr/share/berth/images/busybox-rootfs.tar.gz }\ncontainers:\n'
		for c in "$@"; do
			printf '  %s:\n    image: bb\n' "$c"
			printf '    command: [/bin/sh, -c, "trap \x27exit 0\x27 TERM; echo started; while :; do sleep 1 & wait; done"]\n'
		done
	} >/etc/berth/manifest.yaml
}

mkdir -p /var/run/ubus /var/lock /var/state /tmp/.uci /etc/berth
ubusd -s $SOCK &
waitfor 5 test -S $SOCK || { echo "FAIL  ubusd did not create $SOCK"; exit 1; }
syslogd -n -O $LOG &
waitfor 5 test -S /dev/log || { echo "FAIL  syslogd did not create /dev/log"; exit 1; }
procd -s $SOCK -I /etc/init.d -R /etc/rc.d -S >/tmp/procd.log 2>&1 &
PROCD=$!
ubus_up() { ubus list service >/dev/null 2>&1; }
waitfor 5 ubus_up || { echo "FAIL  procd did not register 'service' on ubus"; cat /tmp/procd.log; exit 1; }
rpcd -s $SOCK &
rpcd_up() { ubus list berth >/dev/null 2>&1; }
waitfor 5 rpcd_up || { echo "FAIL  rpcd did not register the plugin's object 'berth'"; exit 1; }
ok "procd (pid $PROCD, not PID 1), ubusd and rpcd up: $(ubus list | tr '\n' ' ')"

echo "== start"
out=$(/etc/init.d/berth start 2>&1); rc=$?
check "start without a manifest: rc=$rc and no instance ($out)" [ $rc = 0 ]
check "start without a manifest: procd runs nothing" not_running
manifest web
/etc/init.d/berth start
check "start: procd shows the berth instance running" waitfor 5 running
check "start: the container web is running" waitfor 15 is_running /srv/berth web
B1=$(bpid) W1=$(cpid /srv/berth web)
echo "      berth pid $B1: $(cmdline); web pid $W1"
check "command is berth apply --serve MANIFEST" \
	[ "$(jf '@.berth.instances.berth.command[*]' | tr '\n' ' ')" = "/usr/bin/berth apply --serve /etc/berth/manifest.yaml " ]
check "berth runs with BERTH_ROOT=/srv/berth and BERTH_LOG_SIZE=256k" \
	sh -c "tr '\0' '\n' </proc/$B1/environ | grep -qx BERTH_ROOT=/srv/berth && tr '\0' '\n' </proc/$B1/environ | grep -qx BERTH_LOG_SIZE=256k"
check "the store is on /srv/berth" test -d /srv/berth/containers -o -d /srv/berth/images

echo "== enable, disable"
/etc/init.d/berth enable
check "enable: /etc/rc.d/S95berth and K10berth" links S95berth K10berth
check "enabled returns 0" /etc/init.d/berth enabled
/etc/init.d/berth disable
check "disable removes them" nolinks S95berth K10berth
check "enabled returns 1" not_enabled

echo "== reload"
/etc/init.d/berth reload; sleep 1
check "reload, nothing changed: same berth pid" [ "$(bpid)" = "$B1" ]
REV0=$(applied /srv/berth)
manifest web worker
/etc/init.d/berth reload
check "reload after a manifest edit: berth applied the new revision" waitfor 15 sh -c '[ "$(BERTH_ROOT=/srv/berth berth status --json | jsonfilter -e @.last_apply.outcome)" = applied ] && [ "$(BERTH_ROOT=/srv/berth berth status --json | jsonfilter -e @.last_apply.revision.sha256)" != "$0" ]' "$REV0"
check "reload after a manifest edit: the new container worker runs" waitfor 15 is_running /srv/berth worker
check "reload after a manifest edit: same berth pid (SIGHUP, no restart)" [ "$(bpid)" = "$B1" ]
check "reload after a manifest edit: web untouched (pid $W1)" [ "$(cpid /srv/berth web)" = "$W1" ]
# A pass watches what it started for a while and rolls the manifest back if
# a new container exits then, even when someone stopped it by hand: give
# the pass time to end before the plugin restarts worker.
sleep 3
K0=$(cpid /srv/berth worker)

echo "== ubus call berth (rpcd exec plugin)"
ub() { ubus call berth "$@"; }
check "ubus -v list berth: the plugin's methods" sh -c 'ubus -v list berth | grep -q "\"logs\":{\"name\":\"String\",\"lines\":\"Integer\"}"'
check "status: web and worker running, with web's pid" \
	[ "$(ub status | jsonfilter -e '@.containers[*].state' | sort -u) $(ub status | jsonfilter -e '@.containers[@.name="web"].pid')" = "running $W1" ]
check "list: names and states" [ "$(ub list | jsonfilter -e '@.containers[*].name' | sort | tr '\n' ' ')" = "web worker " ]
check "logs {name: web, lines: 5}: web's output" [ "$(ub logs '{"name":"web","lines":5}' | jsonfilter -e '@.lines[*]')" = started ]
check "logs without a name: an error that says so" sh -c "ubus call berth logs '{}' | jsonfilter -e '@.error' | grep -q \"'name'\""
check "logs with a name that is an option: refused" sh -c "ubus call berth logs '{\"name\":\"--follow\"}' | jsonfilter -e '@.error' | grep -q 'not a container name'"
check "restart {name: worker}: ok" [ "$(ub restart '{"name":"worker"}' | jsonfilter -e '@.ok')" = true ]
check "restart: worker runs with a new pid" waitfor 5 sh -c '[ "$(ubus call berth status | jsonfilter -e "@.containers[@.name=\"worker\"].state")" = running ] && [ "$(ubus call berth status | jsonfilter -e "@.containers[@.name=\"worker\"].pid")" != "$0" ]' "$K0"
check "stop {name: worker}: worker stopped" sh -c '[ "$(ubus call berth stop "{\"name\":\"worker\"}" | jsonfilter -e @.ok)" = true ] && [ "$(ubus call berth status | jsonfilter -e "@.containers[@.name=\"worker\"].state")" != running ]'
check "apply: ok" sh -c '[ "$(ubus call berth apply | jsonfilter -e @.ok)" = true ]'
check "apply: worker running again, same berth pid $B1" waitfor 10 sh -c '[ "$(ubus call berth status | jsonfilter -e "@.containers[@.name=\"worker\"].state")" = running ] && [ "$0" = "$1" ]' "$B1" "$(bpid)"
check "ACL file: rpcd's two groups berth and berth-admin" [ "$({ jsonfilter -i /usr/share/rpcd/acl.d/berth.json -e '@.berth.read.ubus.berth[*]'; jsonfilter -i /usr/share/rpcd/acl.d/berth.json -e '@["berth-admin"].write.ubus.berth[*]'; } | tr '\n' ' ')" = "status list logs start stop restart apply " ]

echo "== crash of berth apply --serve"
K1=$(cpid /srv/berth worker)
kill -9 "$B1"
check "procd respawns berth after SIGKILL (respawn_timeout 5 s)" waitfor 10 pid_changed "$B1"
B2=$(bpid)
sleep 3
check "the respawned berth stays up" [ "$(bpid)" = "$B2" ]
check "converged without touching the containers: web pid $W1, worker pid $K1" \
	[ "$(cpid /srv/berth web) $(cpid /srv/berth worker)" = "$W1 $K1" ]

echo "== uci options"
uci_reload log_size=512k

check "log_size: berth is restarted with it (it was only sent SIGHUP before)" waitfor 10 pid_changed "$B2"
check "log_size: procd records BERTH_LOG_SIZE=512k" [ "$(jf '@.berth.instances.berth.env.BERTH_LOG_SIZE')" = 512k ]
check "log_size: the running berth has BERTH_LOG_SIZE=512k" environ_has BERTH_LOG_SIZE=512k
check "log_size: web and worker run again" waitfor 15 sh -c '[ "$(BERTH_ROOT=/srv/berth berth status --json | jsonfilter -e "@.containers[*].state" | sort -u)" = running ]'
B3=$(bpid) W2=$(cpid /srv/berth web)
uci_reload root=/srv/other
check "root: berth restarted with BERTH_ROOT=/srv/other" waitfor 10 pid_changed "$B3"
check "root: the running berth has BERTH_ROOT=/srv/other" environ_has BERTH_ROOT=/srv/other
check "root: web runs from the new store" waitfor 15 is_running /srv/other web
check "root: the old store's web (pid $W2) is stopped" dead "$W2"
B4=$(bpid)
berth key generate /tmp/k --no-passphrase >/dev/null
mkdir -p /etc/berth/keys && cp /tmp/k.pub /etc/berth/keys/
uci_reload term_timeout=7 respawn_threshold=600 respawn_timeout=2 respawn_retry=9
check "term_timeout and respawn_*: procd has 7 and 600/2/9" \
	[ "$(jf '@.berth.instances.berth.term_timeout') $(jf '@.berth.instances.berth.respawn.threshold')/$(jf '@.berth.instances.berth.respawn.timeout')/$(jf '@.berth.instances.berth.respawn.retry')" = "7 600/2/9" ]
check "term_timeout and respawn_*: berth not restarted for them" [ "$(bpid)" = "$B4" ]
uci_reload require_signed=1
check "require_signed: berth restarted" waitfor 10 pid_changed "$B4"
case "$(cmdline)" in *--require-signed*) ok "require_signed: the command has --require-signed" ;;
	*) bad "require_signed: command is $(cmdline)" ;; esac
check "require_signed: berth refuses the unsigned manifest (syslog)" waitfor 10 logged 'minisig'
check "require_signed: no container runs from it" not_up /srv/other web
berth sign --key /tmp/k.key --version 1 /etc/berth/manifest.yaml >/dev/null
/etc/init.d/berth reload
check "require_signed: once signed (FILE.minisig), web runs" waitfor 15 is_running /srv/other web

manifest solo
mv /etc/berth/manifest.yaml /etc/berth/other.yaml
uci_reload require_signed=0 manifest=/etc/berth/other.yaml
check "manifest: berth applies /etc/berth/other.yaml" waitfor 15 is_running /srv/other solo
check "manifest: the command names it" sh -c 'tr "\0" " " </proc/$0/cmdline | grep -q /etc/berth/other.yaml' "$(bpid)"
check "manifest: what it does not name is removed (worker)" not_up /srv/other worker

# url, key, interval: a signed manifest served over HTTP on the loopback of
# this run's own network namespace
mkdir -p /www && manifest fetched && mv /etc/berth/manifest.yaml /www/m.yaml
berth sign --key /tmp/k.key --version 2 /www/m.yaml >/dev/null
ip link set lo up
httpd -p 127.0.0.1:8080 -h /www
KEY=$(sed -n 2p /tmp/k.pub)
B7=$(bpid)
uci_reload url=http://127.0.0.1:8080/m.yaml "key=$KEY" interval=60 jitter=5s
check "url, key: berth restarted" waitfor 10 pid_changed "$B7"
check "url, key, interval, jitter: the command line" \
	[ "$(cmdline)" = "/usr/bin/berth apply --serve --interval 60 --jitter 5s --keys /var/run/berth/uci-key.pub http://127.0.0.1:8080/m.yaml " ]
check "key: the inline key is written to /var/run/berth/uci-key.pub" grep -qx "$KEY" /var/run/berth/uci-key.pub
check "url: the fetched, signed manifest's container runs" waitfor 15 is_running /srv/other fetched
check "url: solo, not in it, is removed" not_up /srv/other solo
printf 'not a key\n' >/www/ca.pem
B8=$(bpid)
uci_reload keys_url=http://127.0.0.1:8080/keys.list ca_bundle=/www/ca.pem
waitfor 10 pid_changed "$B8"
case "$(cmdline)" in *"--keys-url http://127.0.0.1:8080/keys.list --ca-bundle /www/ca.pem "*) ok "keys_url, ca_bundle: on the command line" ;;
	*) bad "keys_url, ca_bundle: command is $(cmdline)" ;; esac
B9=$(bpid)
uci add_list berth.main.group=lab
uci add_list berth.main.group=eu
uci_reload device_id=r1
waitfor 10 pid_changed "$B9"
case "$(cmdline)" in *"--device-id r1 --group lab --group eu "*) ok "device_id, list group: on the command line" ;;
	*) bad "device_id, list group: command is $(cmdline)" ;; esac
uci delete berth.main.group
uci_reload url= key= interval= jitter= keys_url= ca_bundle= device_id=
/etc/init.d/berth reload
check "url unset: back to the local manifest (solo runs)" waitfor 15 is_running /srv/other solo

echo "== stop"
SOLO=$(cpid /srv/other solo) B6=$(bpid)
t=$(now_ms)
/etc/init.d/berth stop
gone() { [ -z "$(ubus call service list | jsonfilter -e '@.berth')" ]; }
check "stop: berth gone from procd's list" waitfor 5 gone
check "stop: berth exits within 5 s" waitfor 5 dead "$B6"
check "stop: the container solo (pid $SOLO) is stopped within 5 s" waitfor 5 dead "$SOLO"
echo "      berth and its containers stopped in $(elapsed_ms "$t") ms"
check "stop: berth status says solo is not running" not_up /srv/other solo

echo "== enabled=0"
uci_reload enabled=0
/etc/init.d/berth start
check "enabled=0: start runs nothing" not_running

kill $PROCD 2>/dev/null
echo "      last lines of procd's log (it relays berth's stdout and stderr):"
if [ $fails = 0 ]; then tail -n 12 $LOG; else cat $LOG; fi | sed 's/^/        /'
echo "$passes passed, $fails failed"
[ $fails = 0 ]
