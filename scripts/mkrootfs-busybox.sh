#!/bin/sh
# Build a minimal rootfs tarball from Debian's static busybox: the image the
# demo, the examples and the root tests run.
# usage: mkrootfs-busybox.sh OUT.tar.gz [BUSYBOX]
set -eu
out=$1
busybox=${2:-/bin/busybox}
[ -x "$busybox" ] || { echo "mkrootfs-busybox: $busybox not found; apt-get install busybox-static" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/www" \
	"$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root" "$root/var/run"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:80:80:www:/www:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nwww:x:80:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '<html><body><h1>served by berth</h1></body></html>\n' >"$root/www/index.html"
# Reproducible: fixed order, owner and time, so the sha256 is stable.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf - . | gzip -n >"$out.tmp"
mv "$out.tmp" "$out"
