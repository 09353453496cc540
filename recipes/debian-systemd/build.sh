#!/bin/sh
# Build a Debian full-OS container rootfs that boots systemd, with debootstrap
# (as root) from a Debian mirror.
#   OUT=dir [SUITE=bookworm] [MIRROR=http://deb.debian.org/debian] [DEB_ARCH=arm64] sh build.sh
# A foreign DEB_ARCH needs qemu-user-static (debootstrap's second stage runs
# the target's binaries).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=recipes/lib.sh
. "$here/../lib.sh"

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "install debootstrap (apt-get install debootstrap)"
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
debootstrap --variant=minbase ${DEB_ARCH:+--arch="$DEB_ARCH"} \
	--include=systemd-sysv,iproute2,ifupdown,isc-dhcp-client \
	"$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

# Units that need real hardware, a real console or a writable /sys.
for u in getty@tty1.service systemd-remount-fs.service systemd-udevd.service \
	systemd-udev-trigger.service systemd-modules-load.service \
	sys-kernel-config.mount sys-kernel-debug.mount systemd-timesyncd.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
echo debian > "$root/etc/hostname"
printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' > "$root/etc/network/interfaces"
: > "$root/etc/machine-id"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/var/log/"*.log

sum=$(make_tarball "$root" debian-systemd)
fill_manifest "$here/manifest.yaml" debian-systemd "$sum"
echo "debian-systemd: $OUT/debian-systemd.tar.gz sha256 $sum"
