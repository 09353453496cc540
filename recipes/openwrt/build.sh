#!/bin/sh
# Prepare an OpenWrt rootfs tarball, downloaded by the user, as a full-OS
# berth container (procd as init), as the seed does for OpenWrt in LXC.
#   OUT=dir sh build.sh openwrt-24.10.0-x86-64-rootfs.tar.gz
# Take the "rootfs.tar.gz" of the router's own target (e.g. armsr-armv8 for
# aarch64, x86-64, or the router's SoC target) from the OpenWrt downloads.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=recipes/lib.sh
. "$here/../lib.sh"

[ $# -eq 1 ] || die "usage: OUT=dir sh build.sh OPENWRT-ROOTFS.tar.gz"
src=$1
[ -f "$src" ] || die "$src: no such file"
if tar tzf "$src" | grep -qE '^/|(^|/)\.\.(/|$)'; then
	die "$src has absolute or .. paths; refusing to unpack it"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"
tar -xzf "$src" -C "$root" --numeric-owner
[ -e "$root/sbin/procd" ] && [ -f "$root/etc/openwrt_release" ] ||
	die "$src is not an OpenWrt rootfs (no /sbin/procd or /etc/openwrt_release)"

# Services that drive hardware or the host's clock, which belong to the host:
# disable them (no exec bit, no rc.d links) so procd does not start them.
for s in gpio_switch led sysfixtime sysntpd; do
	if [ -f "$root/etc/init.d/$s" ]; then
		chmod a-x "$root/etc/init.d/$s"
		rm -f "$root/etc/rc.d/"[SK][0-9][0-9]"$s"
	fi
done
for d in dev proc sys tmp run; do mkdir -p "$root/$d"; done
echo "prepared for berth from $(basename "$src")" > "$root/etc/berth-container"

sum=$(make_tarball "$root" openwrt)
fill_manifest "$here/manifest.yaml" openwrt "$sum"
echo "openwrt: $OUT/openwrt.tar.gz sha256 $sum"
