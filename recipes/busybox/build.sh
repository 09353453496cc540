#!/bin/sh
# Build a busybox service container rootfs from Debian's busybox-static.
#   OUT=dir [ARCH=arm64] [DEB=busybox-static.deb] sh build.sh
# ARCH needs `dpkg --add-architecture ARCH && apt-get update` first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=recipes/lib.sh
. "$here/../lib.sh"

deb=${DEB:-$(deb_fetch busybox-static)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/deb"
root=$work/root
base_tree "$root"
install -m 0755 "$work/deb/bin/busybox" "$root/bin/busybox"
# one symlink per applet, at the path busybox itself gives
"$root/bin/busybox" --list-full 2>/dev/null | while read -r path; do
	[ "$path" = bin/busybox ] && continue
	mkdir -p "$root/$(dirname "$path")"
	[ -e "$root/$path" ] || ln -s /bin/busybox "$root/$path"
done
[ -e "$root/bin/sh" ] || ln -s busybox "$root/bin/sh"
mkdir -p "$root/www"
echo '<!doctype html><title>berth</title><p>served by busybox httpd in a berth container' > "$root/www/index.html"
sum=$(make_tarball "$root" busybox)
fill_manifest "$here/manifest.yaml" busybox "$sum"
echo "busybox: $OUT/busybox.tar.gz sha256 $sum"
