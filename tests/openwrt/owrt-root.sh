# shellcheck shell=sh
# Sourced, not run: lays out the OpenWrt-like root that tests/openwrt/procd.sh
# enters and that tests/fullos/procd-rootfs.sh packs into a full-OS image.
# What goes in is the fixtures' build (procd, ubusd, ubus, uci, jshn,
# jsonfilter and their libraries), Debian's static busybox and OpenWrt's
# shell library, at the paths OpenWrt installs them (see the fixtures'
# README.md for the list and its gotchas).
#
#   R=DIR PREFIX=DIR OWRT_FILES=DIR; . owrt-root.sh; owrt_root
#
# R is the root to fill, PREFIX what the fixtures' build.sh installed into,
# OWRT_FILES the fixtures' files/ (rc.common, functions.sh, procd.sh...).
# Nothing outside R is written, and nothing here needs root.

# owrt_copy_elf SRC DEST: a binary and the host libraries it needs at DEST
# inside R (the fixture's own libraries all go to /lib, see owrt_root).
owrt_copy_elf() {
	rm -f "$R$2"
	cp "$1" "$R$2"
	ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r l; do
		case "$l" in "$PREFIX"/*) continue ;; esac
		[ -e "$R$l" ] || { mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; }
	done
}

# owrt_root: the common root. busybox is static (its applets are symlinks to
# /bin/busybox, as `busybox --install -s` makes them); the programs keep the
# fixtures' RPATH, which does not exist inside R, so the loader finds the
# libraries in /lib.
owrt_root() {
	mkdir -p "$R"/bin "$R"/sbin "$R"/usr/bin "$R"/usr/sbin "$R"/lib "$R"/etc/init.d \
		"$R"/etc/rc.d "$R"/etc/config "$R"/proc "$R"/dev "$R"/sys "$R"/tmp "$R"/root \
		"$R"/usr/share/libubox "$R"/lib/functions "$R"/lib/config
	chmod 1777 "$R/tmp"
	ln -sfn tmp "$R/var"
	cp /bin/busybox "$R/bin/busybox"
	if readelf -l "$R/bin/busybox" | grep -q 'program interpreter'; then
		echo "owrt-root: /bin/busybox is not static (apt-get install busybox-static)" >&2
		return 1
	fi
	for applet in $("$R/bin/busybox" --list-full); do
		[ -e "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
	done
	for l in "$PREFIX"/lib/*.so*; do owrt_copy_elf "$l" "/lib/$(basename "$l")"; done
	owrt_copy_elf "$PREFIX/sbin/ubusd" /sbin/ubusd
	owrt_copy_elf "$PREFIX/sbin/procd" /sbin/procd
	owrt_copy_elf "$PREFIX/bin/ubus" /bin/ubus
	owrt_copy_elf "$PREFIX/bin/uci" /sbin/uci
	owrt_copy_elf "$PREFIX/bin/jshn" /usr/bin/jshn
	owrt_copy_elf "$PREFIX/bin/jsonpath" /usr/bin/jsonfilter
	owrt_copy_elf "$(command -v flock)" /usr/bin/flock   # Debian's busybox has no flock applet
	cp "$PREFIX/share/libubox/jshn.sh" "$R/usr/share/libubox/jshn.sh"
	cp "$OWRT_FILES/etc/rc.common" "$R/etc/rc.common"
	cp "$OWRT_FILES/lib/functions.sh" "$R/lib/functions.sh"
	cp "$OWRT_FILES/lib/functions/procd.sh" "$OWRT_FILES/lib/functions/service.sh" "$R/lib/functions/"
	cp "$OWRT_FILES/lib/config/uci.sh" "$R/lib/config/uci.sh"
	printf 'root:x:0:0:root:/root:/bin/ash\nnobody:x:65534:65534:nobody:/var:/bin/false\n' >"$R/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
	printf "config system\n\toption hostname 'owrt'\n" >"$R/etc/config/system"
}
