#!/bin/sh
# berth's OpenWrt package under the real procd, ubusd, uci, jsonfilter and
# rpcd (built from the fixtures by mk/realtools.mk), with the real berth
# running real containers.
#
#   usage: procd.sh PREFIX PACKAGE_DIR
#   env:   OWRT_FILES (OpenWrt's rc.common, functions.sh, procd.sh...),
#          BERTH_BIN, BERTH_TEST_ROOTFS (the busybox rootfs tarball)
#
# An OpenWrt root is laid out in a temporary directory and entered through
# new mount, PID, network, UTS and IPC namespaces: /etc/init.d/berth and
# /etc/config/berth from the package, /lib/functions, /usr/share/libubox,
# /var -> /tmp. ubusd and procd (`procd -S`, a service manager, not PID 1)
# run there; the checks (checks.sh beside this file) drive the init script.
# The containers' cgroups go under a cgroup parent named for this run in
# each host hierarchy, removed at the end; nothing else of the host changes.
# sh -c with single-quoted scripts is meant: they expand in the child.
# shellcheck disable=SC2016
set -eu

[ $# = 2 ] || { echo "usage: $0 PREFIX PACKAGE_DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "procd.sh: needs root (unshare, chroot, cgroups)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=$(cd "$1" && pwd)
PKG=$(cd "$2" && pwd)
: "${OWRT_FILES:?OWRT_FILES: the files directory of the fixtures}"
: "${BERTH_BIN:?BERTH_BIN: the berth binary}"
: "${BERTH_TEST_ROOTFS:?BERTH_TEST_ROOTFS: the busybox rootfs tarball}"
T0=$(date +%s)

TOP=$(mktemp -d /tmp/berth-owrt.XXXXXX)
R=$TOP/root
CG=berth-owrt-$$
# On a cgroup2 host procd puts each instance in /sys/fs/cgroup/services/.
PROCD_CG=/sys/fs/cgroup/services
PROCD_CG_WAS=0
[ ! -d "$PROCD_CG" ] || PROCD_CG_WAS=1
# shellcheck disable=SC2329 # (run by the EXIT trap)
cleanup() {
	if [ "$PROCD_CG_WAS" = 0 ] && [ -d "$PROCD_CG" ]; then
		find "$PROCD_CG" -depth -type d -exec rmdir {} + 2>/dev/null || true
	fi
	# The namespace's PID 1 is gone by now, and every process with it.
	for h in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG"; do
		[ -d "$h" ] || continue
		find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $TOP" >&2; else rm -rf "$TOP"; fi
}
trap cleanup EXIT

# shellcheck source=tests/openwrt/owrt-root.sh
. "$HERE/owrt-root.sh"
owrt_root
mkdir -p "$R"/usr/share/berth/images "$R"/usr/libexec/rpcd "$R"/usr/share/rpcd/acl.d
owrt_copy_elf "$PREFIX/sbin/rpcd" /sbin/rpcd
owrt_copy_elf "$BERTH_BIN" /usr/bin/berth
cp "$BERTH_TEST_ROOTFS" "$R/usr/share/berth/images/busybox-rootfs.tar.gz"

# the package, installed where its feed Makefile puts it
F=$PKG/berth/files
install -m 0755 "$F/berth.init" "$R/etc/init.d/berth"
install -m 0644 "$F/berth.config" "$R/etc/config/berth"
install -m 0755 "$F/berth.rpcd" "$R/usr/libexec/rpcd/berth"              # berth-rpcd
install -m 0644 "$F/berth.acl.json" "$R/usr/share/rpcd/acl.d/berth.json"
cp "$HERE/checks.sh" "$R/checks.sh"

set +e
unshare --mount --pid --net --uts --ipc --fork --propagation private /bin/sh -c '
	set -e
	R=$1
	mount --bind "$R" "$R"     # a mount point, so berth can pivot_root below it
	mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
	mount -t proc proc "$R/proc"
	mount -t sysfs sysfs "$R/sys"
	mount --rbind /sys/fs/cgroup "$R/sys/fs/cgroup"
	mount -t tmpfs -o mode=755 tmpfs "$R/dev"
	mknod -m 666 "$R/dev/null" c 1 3; mknod -m 666 "$R/dev/zero" c 1 5
	mknod -m 666 "$R/dev/full" c 1 7; mknod -m 666 "$R/dev/random" c 1 8
	mknod -m 666 "$R/dev/urandom" c 1 9; mknod -m 666 "$R/dev/tty" c 5 0
	ln -s /proc/self/fd "$R/dev/fd"
	exec chroot "$R" /usr/bin/env -i BERTH_CGROUP_PARENT="$2" VERBOSE="${VERBOSE:-0}" /bin/sh /checks.sh
' sh "$R" "$CG"
rc=$?
set -e
# The host is left as it was: the containers' cgroups go with the run.
sleep 1
for h in /sys/fs/cgroup/*/"$CG"; do
	[ -d "$h" ] || continue
	find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
	if [ -d "$h" ]; then echo "FAIL  $h is still there (busy: a container outlived the run)"; rc=1; fi
done
echo "procd.sh: rc=$rc, $(( $(date +%s) - T0 )) s" >&2
exit $rc
