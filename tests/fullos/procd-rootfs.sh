#!/bin/sh
# A full-OS image for `boot: true`: a minimal OpenWrt-like root whose init is
# procd, built from the fixtures (see tests/openwrt/owrt-root.sh for the
# common part), packed into a reproducible tarball (fixed order, owner and
# time: the same inputs give the same sha256).
#
#   usage: procd-rootfs.sh PREFIX OWRT_FILES OUT.tar.gz
#
# PREFIX is what the fixtures' build.sh installed into, OWRT_FILES their
# files/ (rc.common, functions.sh, procd.sh...). Needs no root.
#
# The init is /sbin/init, procd's initd, as on OpenWrt, and under LXC too
# (lxc.init.cmd defaults to /sbin/init, and OpenWrt's LXC images run it):
# berth's `boot: true` default, so the manifest needs no `init:`. It is the
# right entry rather than /sbin/procd because:
# - initd/early.c is the code that knows about containers: with `container`
#   in the environment (berth sets container=berth) it leaves /proc, /sys
#   and /dev alone and only mounts the root's own /tmp (a tmpfs; /var links
#   there) and /tmp/.ujail, and makes /tmp/run, /tmp/lock, /tmp/state.
#   /sbin/procd as PID 1 skips all of that: no tmpfs /tmp and no /var/run
#   for ubusd's socket;
# - it then runs /etc/preinit (a no-op here, see below) and execs
#   /sbin/procd, which stays PID 1 and goes through its states: early
#   (hotplug, coldplug: udevtrigger, which finds /sys read-only), ubus
#   (starts ubusd as user ubus), init (/etc/inittab: sysinit runs the rc.d S*
#   scripts), running;
# - on SIGPWR procd runs the inittab's shutdown (the rc.d K* scripts),
#   SIGTERMs and SIGKILLs everything else, then, seeing `container` in the
#   environment, calls reboot(RB_POWER_OFF) (which fails without
#   CAP_SYS_BOOT, or ends the PID namespace) and exits 0 (state.c,
#   perform_halt and is_container()).
set -eu

[ $# = 3 ] || { echo "usage: $0 PREFIX OWRT_FILES OUT.tar.gz" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=$(cd "$1" && pwd)
OWRT_FILES=$(cd "$2" && pwd)
OUT=$3
umask 022
TMP=$(mktemp -d /tmp/berth-procd-rootfs.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
R=$TMP/root

# shellcheck source=tests/openwrt/owrt-root.sh
. "$HERE/../openwrt/owrt-root.sh"
owrt_root
owrt_copy_elf "$PREFIX/sbin/init" /sbin/init
owrt_copy_elf "$PREFIX/sbin/udevtrigger" /sbin/udevtrigger
# /etc/hotplug.d: procd serves its subsystems on ubus (hotplug-dispatch.c);
# without it procd says "failed to initialize hotplug subsystems".
mkdir -p "$R/usr/lib" "$R/srv/out" "$R/etc/hotplug.d/iface" "$R/etc/hotplug.d/net"
# procd starts ubusd as this user when it exists, as on OpenWrt.
echo 'ubus:x:81:81:ubus:/var/run/ubus:/bin/false' >>"$R/etc/passwd"
echo 'ubus:x:81:' >>"$R/etc/group"

# OpenWrt's preinit mounts the root overlay, offers failsafe mode and sets
# up the board; berth has set the root up already, so there is nothing to
# do: procd's init execs /sbin/procd when this ends. Run by hand it hands
# over to the init, as OpenWrt's does.
cat >"$R/etc/preinit" <<'EOF'
#!/bin/sh
[ -z "$PREINIT" ] && exec /sbin/init
exit 0
EOF

# OpenWrt's inittab but for the console login (askconsole), which would wait
# on a console no one answers: procd runs sysinit and shutdown through its
# own rcS (rcS.c) over /etc/rc.d, S* with `boot`, K* with `shutdown`.
cat >"$R/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS S boot
::shutdown:/etc/init.d/rcS K shutdown
EOF

# The release, as OpenWrt's base-files ship it: /etc/openwrt_release for
# scripts, /usr/lib/os-release (linked from /etc) for `ubus call system board`
# (procd's system.c reads that one, not openwrt_release).
cat >"$R/etc/openwrt_release" <<'EOF'
DISTRIB_ID='OpenWrt'
DISTRIB_RELEASE='berth-fixture'
DISTRIB_REVISION='r0-fixture'
DISTRIB_TARGET='x86/64'
DISTRIB_ARCH='x86_64'
DISTRIB_DESCRIPTION='OpenWrt berth-fixture r0-fixture'
DISTRIB_TAINTS=''
EOF
cat >"$R/usr/lib/os-release" <<'EOF'
NAME="OpenWrt"
VERSION="berth-fixture"
ID="openwrt"
ID_LIKE="lede openwrt"
PRETTY_NAME="OpenWrt berth-fixture"
VERSION_ID="berth-fixture"
BUILD_ID="r0-fixture"
OPENWRT_BOARD="x86/64"
OPENWRT_ARCH="x86_64"
OPENWRT_RELEASE="OpenWrt berth-fixture r0-fixture"
EOF
ln -s ../usr/lib/os-release "$R/etc/os-release"
echo 'r0-fixture' >"$R/etc/openwrt_version"

# What OpenWrt's /etc/init.d/boot does that matters here: the directories
# under /var, and the board's sysinfo (board_detect) that `ubus call system
# board` reports as model and board_name.
cat >"$R/etc/init.d/boot" <<'EOF'
#!/bin/sh /etc/rc.common
START=10

boot() {
	mkdir -p /var/lock /var/run /var/state /tmp/.uci /tmp/sysinfo
	chmod 0700 /tmp/.uci
	echo 'berth full-OS container' >/tmp/sysinfo/model
	echo 'berth,procd-fixture' >/tmp/sysinfo/board_name
}
EOF

# A service procd manages, enabled in /etc/rc.d: S50 at boot, K50 at
# shutdown. It notes both in /srv/out/events when the host binds a
# directory there, so a test sees the boot and the shutdown from outside.
cat >"$R/etc/init.d/hello" <<'EOF'
#!/bin/sh /etc/rc.common
USE_PROCD=1
START=50
STOP=50

note() { [ ! -d /srv/out ] || echo "$1" >>/srv/out/events; }

start_service() {
	procd_open_instance
	procd_set_param command /bin/sh -c '[ ! -d /srv/out ] || echo "hello up $$" >>/srv/out/events; exec sleep 2147483647'
	procd_set_param respawn
	procd_close_instance
}

shutdown() {
	note "hello shutdown"
	stop
}
EOF
chmod 0755 "$R/etc/init.d/boot" "$R/etc/init.d/hello" "$R/etc/preinit"
for s in boot hello; do
	# what `/etc/init.d/NAME enable` makes, without running the script on the host
	start=$(sed -n 's/^START=//p' "$R/etc/init.d/$s")
	stop=$(sed -n 's/^STOP=//p' "$R/etc/init.d/$s")
	ln -s "../init.d/$s" "$R/etc/rc.d/S$start$s"
	[ -z "$stop" ] || ln -s "../init.d/$s" "$R/etc/rc.d/K$stop$s"
done

mkdir -p "$(dirname "$OUT")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$R" -cf - . | gzip -n >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
