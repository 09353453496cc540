#!/bin/sh
# Build the container recipes whose inputs exist here (Debian packages from
# the apt mirror) and check that what they produce works: reproducible
# tarball, digest file, filled-in manifest, and the service itself answering
# inside a private network and mount namespace (root only).
# The Debian/debootstrap recipe runs only when RECIPES_DEBOOTSTRAP=1; the
# OpenWrt recipe is checked against a synthetic rootfs (no OpenWrt download here).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
cleanup() {
	[ -n "${svc_pid:-}" ] && kill "$svc_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
export CACHE="${RECIPES_CACHE:-$top/target/recipes-cache}"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
check() { cname=$1; shift; if "$@"; then ok "$cname"; else fail "$cname"; fi; }

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

# common_checks NAME OUT: digest file and manifest agree with the tarball.
common_checks() {
	name=$1 out=$2
	sum=$(sha256sum "$out/$name.tar.gz" | cut -d' ' -f1)
	check "$name: sha256 file matches the tarball" grep -q "^$sum  $name.tar.gz\$" "$out/$name.tar.gz.sha256"
	check "$name: manifest carries the digest" grep -q "sha256: \"$sum\"" "$out/$name.yaml"
	check "$name: manifest has no placeholder left" sh -c "! grep -q @SHA256@ '$out/$name.yaml'"
	check "$name: tarball entries are owned by root" sh -c "tar tzvf '$out/$name.tar.gz' | awk '\$2 != \"0/0\" {exit 1}'"
	check "$name: no absolute or .. paths" sh -c "! tar tzf '$out/$name.tar.gz' | grep -qE '^/|(^|/)\\.\\.(/|\$)'"
}

### busybox
if OUT="$tmp/b1" sh "$top/recipes/busybox/build.sh" >/dev/null && \
   OUT="$tmp/b2" sh "$top/recipes/busybox/build.sh" >/dev/null; then
	ok "busybox: builds"
	check "busybox: tarball is reproducible" cmp -s "$tmp/b1/busybox.tar.gz" "$tmp/b2/busybox.tar.gz"
	common_checks busybox "$tmp/b1"
	mkdir -p "$tmp/bb" && tar xzf "$tmp/b1/busybox.tar.gz" -C "$tmp/bb"
	check "busybox: /bin/sh is busybox" test "$(readlink "$tmp/bb/bin/sh")" = /bin/busybox
	check "busybox: httpd applet linked" test -L "$tmp/bb/usr/sbin/httpd"
	if [ "$is_root" -eq 1 ]; then
		# shellcheck disable=SC2016 # expanded by the inner shell
		got=$(unshare -n -m sh -c '
			ip link set lo up
			chroot "$1" /usr/sbin/httpd -f -p 127.0.0.1:8080 -h /www &
			p=$!
			i=0
			while [ $i -lt 50 ]; do
				chroot "$1" /usr/bin/wget -q -O - http://127.0.0.1:8080/ 2>/dev/null && break
				i=$((i + 1)); sleep 0.1
			done
			kill $p' sh "$tmp/bb")
		check "busybox: httpd from the rootfs serves /www" sh -c "printf '%s' '$got' | grep -q 'busybox httpd in a berth container'"
	else
		echo "skip busybox service check: needs root for unshare/chroot"
	fi
else
	fail "busybox: build failed"
fi

### dnsmasq
if OUT="$tmp/d1" sh "$top/recipes/dnsmasq/build.sh" >/dev/null; then
	ok "dnsmasq: builds"
	common_checks dnsmasq "$tmp/d1"
	mkdir -p "$tmp/dn" && tar xzf "$tmp/d1/dnsmasq.tar.gz" -C "$tmp/dn"
	if [ "$is_root" -eq 1 ]; then
		# shellcheck disable=SC2016 # expanded by the inner shell
		got=$(unshare -n -m sh -c '
			set -e
			ip link set lo up
			: > "$1/dev/urandom"
			mount --bind /dev/urandom "$1/dev/urandom"
			chroot "$1" /usr/sbin/dnsmasq --test --conf-file=/etc/dnsmasq.conf >/dev/null 2>&1
			chroot "$1" /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/etc/dnsmasq.conf \
				--port=5353 --listen-address=127.0.0.1 --bind-interfaces --no-dhcp-interface=lo \
				--user=root --log-facility=- 2>/dev/null &
			p=$!
			python3 "$2" 127.0.0.1 5353 router.lan || true
			kill $p' sh "$tmp/dn" "$here/dnsquery.py" 2>&1)
		check "dnsmasq: answers router.lan from the rootfs config" test "$got" = 192.168.1.1
		[ "$got" = 192.168.1.1 ] || echo "     | got: $got"
	else
		echo "skip dnsmasq service check: needs root for unshare/chroot"
	fi
else
	fail "dnsmasq: build failed"
fi

### openwrt: a synthetic rootfs with OpenWrt's marks, and a non-OpenWrt one
mkdir -p "$tmp/ow/sbin" "$tmp/ow/etc/init.d" "$tmp/ow/lib/preinit"
printf '#!/bin/sh\n' > "$tmp/ow/sbin/procd"
ln -s procd "$tmp/ow/sbin/init"
printf "DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='24.10.0'\n" > "$tmp/ow/etc/openwrt_release"
for s in sysntpd gpio_switch led boot network; do
	printf '#!/bin/sh /etc/rc.common\n' > "$tmp/ow/etc/init.d/$s"
	chmod 0755 "$tmp/ow/etc/init.d/$s"
done
tar -C "$tmp/ow" -czf "$tmp/openwrt-rootfs.tar.gz" .
if OUT="$tmp/o1" sh "$top/recipes/openwrt/build.sh" "$tmp/openwrt-rootfs.tar.gz" >/dev/null; then
	ok "openwrt: prepares an OpenWrt rootfs"
	common_checks openwrt "$tmp/o1"
	mkdir -p "$tmp/oo" && tar xzf "$tmp/o1/openwrt.tar.gz" -C "$tmp/oo"
	check "openwrt: hardware services disabled" sh -c "[ ! -x '$tmp/oo/etc/init.d/gpio_switch' ] && [ ! -x '$tmp/oo/etc/init.d/led' ]"
	check "openwrt: network service kept" test -x "$tmp/oo/etc/init.d/network"
	check "openwrt: container marker written" test -f "$tmp/oo/etc/berth-container"
else
	fail "openwrt: prepare failed"
fi
tar -C "$tmp/bb" -czf "$tmp/not-openwrt.tar.gz" .
if OUT="$tmp/o2" sh "$top/recipes/openwrt/build.sh" "$tmp/not-openwrt.tar.gz" >/dev/null 2>&1; then
	fail "openwrt: accepted a rootfs without procd"
else
	ok "openwrt: rejects a rootfs that is not OpenWrt"
fi

### debian-systemd (debootstrap, slow: opt in, or the build `make test-fullos` made)
debian_checks() {
	common_checks debian-systemd "$1"
	# merged /usr: /sbin is a link and init lives in /usr/sbin
	check "debian-systemd: /sbin/init is systemd" sh -c "tar tzvf '$1/debian-systemd.tar.gz' | grep -qE '\./(usr/)?sbin/init -> .*systemd/systemd\$'"
	check "debian-systemd: getty on tty1 masked" sh -c "tar tzvf '$1/debian-systemd.tar.gz' | grep -q 'getty@tty1.service -> /dev/null'"
}
if [ "${RECIPES_DEBOOTSTRAP:-0}" = 1 ] && [ "$is_root" -eq 1 ]; then
	if OUT="$tmp/s1" sh "$top/recipes/debian-systemd/build.sh" >/dev/null; then
		ok "debian-systemd: builds"
		debian_checks "$tmp/s1"
	else
		fail "debian-systemd: build failed"
	fi
elif [ -f "${RECIPES_BUILT:-/nonexistent}/debian-systemd.tar.gz" ]; then
	# `make test-fullos` built it with this recipe and booted it.
	debian_checks "$RECIPES_BUILT"
else
	echo "skip debian-systemd: set RECIPES_DEBOOTSTRAP=1 (as root) to run debootstrap, or run make test-fullos first"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
