#!/bin/sh
# Stub of OpenWrt's procd shell API (procd.sh and functions.sh's config_*),
# enough to source an init script and record what it declares.
# Usage: procd_stub.sh UCI_CONFIG_DIR INIT_SCRIPT FUNCTION...
# Prints one line per declaration on stdout:
#   instance NAME / param NAME VALUE... / close / trigger KIND ARGS...

STUB_CONFDIR=$1
STUB_SCRIPT=$2
shift 2

STUB_IN_INSTANCE=0

# config_load PACKAGE: read option lines of every section into variables
# CONFIG_<section>_<option>, as functions.sh does; a list's items joined
# by spaces, as its list() does.
config_load() {
	stub_file="$STUB_CONFDIR/$1"
	[ -f "$stub_file" ] || return 1
	eval "$(awk '
		$1 == "config" { sec = $3; gsub(/\047/, "", sec); next }
		$1 == "option" && sec != "" {
			name = $2
			val = $0
			sub(/^[ \t]*option[ \t]+[^ \t]+[ \t]+/, "", val)
			gsub(/^\047|\047$/, "", val)
			gsub(/\047/, "\047\\\047\047", val)
			printf "CONFIG_%s_%s=\047%s\047\n", sec, name, val
		}
		$1 == "list" && sec != "" {
			val = $3
			gsub(/\047/, "", val)
			printf "CONFIG_%s_%s=\"${CONFIG_%s_%s:+$CONFIG_%s_%s }%s\"\n", sec, $2, sec, $2, sec, $2, val
		}' "$stub_file")"
}

# config_get VAR SECTION OPTION [DEFAULT]
config_get() {
	eval "stub_v=\${CONFIG_$2_$3-}"
	if [ -z "$stub_v" ]; then
		stub_v=${4-}
	fi
	eval "$1=\$stub_v"
}

# config_get_bool VAR SECTION OPTION [DEFAULT]
config_get_bool() {
	config_get stub_b "$2" "$3" "${4-0}"
	case "$stub_b" in
		1|on|true|yes|enabled) stub_b=1 ;;
		*) stub_b=0 ;;
	esac
	eval "$1=\$stub_b"
}

procd_open_instance() {
	if [ "$STUB_IN_INSTANCE" -eq 1 ]; then
		echo "error nested procd_open_instance" >&2
		exit 3
	fi
	STUB_IN_INSTANCE=1
	echo "instance ${1:-instance1}"
}

procd_set_param() {
	if [ "$STUB_IN_INSTANCE" -ne 1 ]; then
		echo "error procd_set_param outside an instance" >&2
		exit 3
	fi
	# the parameter types procd.sh's _procd_set_param knows, with its value checks
	case "$1" in
		env|data|limits|command|netdev|file|respawn|watch|watchdog|error|\
		pidfile|user|group|seccomp|capabilities|facility|extroot|\
		overlaydir|tmpoverlaysize|vrf) ;;
		nice|term_timeout)
			case "${2-}" in ''|*[!0-9-]*) echo "error $1 needs an integer, got '${2-}'" >&2; exit 3 ;; esac ;;
		reload_signal)
			# dash's `kill -l NAME` does not map names: look it up in the list
			kill -l | tr -s '[:space:]' '\n' | grep -qx "${2#SIG}" ||
				{ echo "error reload_signal '${2-}' is no signal" >&2; exit 3; } ;;
		stdout|stderr|no_new_privs)
			case "${2-}" in 0|1) ;; *) echo "error $1 needs 0 or 1" >&2; exit 3 ;; esac ;;
		*) echo "error unknown procd param $1" >&2; exit 3 ;;
	esac
	# the command is one line, printed at close: appends extend it as in procd.sh
	if [ "$1" = command ]; then
		STUB_COMMAND="$*"
		return 0
	fi
	echo "param $*"
}

procd_append_param() {
	if [ "$1" = command ] && [ -n "${STUB_COMMAND-}" ]; then
		shift
		STUB_COMMAND="$STUB_COMMAND $*"
		return 0
	fi
	procd_set_param "$@"
}

procd_close_instance() {
	if [ "$STUB_IN_INSTANCE" -ne 1 ]; then
		echo "error procd_close_instance without an open instance" >&2
		exit 3
	fi
	STUB_IN_INSTANCE=0
	[ -z "${STUB_COMMAND-}" ] || echo "param $STUB_COMMAND"
	STUB_COMMAND=
	echo "close"
}

procd_add_reload_trigger() { echo "trigger reload $*"; }
procd_add_interface_trigger() { echo "trigger interface $*"; }
procd_open_trigger() { :; }
procd_close_trigger() { :; }

# rc.common helpers the script may call in reload_service
start() { start_service; }
stop() { :; }

# shellcheck disable=SC1090
. "$STUB_SCRIPT"

for stub_fn in "$@"; do
	"$stub_fn"
done
if [ "$STUB_IN_INSTANCE" -ne 0 ]; then
	echo "error instance left open" >&2
	exit 3
fi
