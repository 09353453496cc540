#!/bin/sh
# Build a dnsmasq container rootfs from Debian's dnsmasq-base: the binary, its
# interpreter and shared libraries only, taken from the Debian packages.
#   OUT=dir [ARCH=arm64] sh build.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=recipes/lib.sh
. "$here/../lib.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stage"
# Only library packages: the others are maintainer-script dependencies.
pkgs=$(deb_closure dnsmasq-base | grep -E '^(dnsmasq-base|lib.*|gcc-[0-9]+-base)$')
# shellcheck disable=SC2086
for deb in $(deb_fetch $pkgs); do
	dpkg-deb -x "$deb" "$work/stage"
done
root=$work/root
base_tree "$root"
copy_with_libs "$work/stage" "$root" usr/sbin/dnsmasq
mkdir -p "$root/var/lib/misc"
install -m 0644 "$here/dnsmasq.conf" "$root/etc/dnsmasq.conf"
printf 'dnsmasq:x:101:65534:dnsmasq:/nonexistent:/bin/false\n' >> "$root/etc/passwd"
sum=$(make_tarball "$root" dnsmasq)
fill_manifest "$here/manifest.yaml" dnsmasq "$sum"
echo "dnsmasq: $OUT/dnsmasq.tar.gz sha256 $sum"
