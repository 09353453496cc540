#!/bin/sh
# Run GNU make on openwrt-package/berth/Makefile against the stub OpenWrt
# includes: the package metadata, its install recipe, and that broken
# variants of the Makefile are rejected.
# shellcheck disable=SC2016 # make and sed expressions are meant literally
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
pkgdir="$top/openwrt-package/berth"
stub="$here/openwrt-stub"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

info=$(make -s -C "$pkgdir" TOPDIR="$stub" stub-info-berth 2>&1)
rc=$?
if [ $rc -eq 0 ]; then ok "make parses the Makefile"; else fail "make failed: $info"; fi
for line in "name berth" "section utils" "category Utilities" \
	"build-depends rust/host" "license Apache-2.0" \
	"conffile /etc/config/berth" "conffile /etc/berth/manifest.yaml"; do
	if printf '%s\n' "$info" | grep -qxF "$line"; then ok "info: $line"
	else fail "info lacks: $line"; fi
done
for dep in +kmod-veth +kmod-macvlan; do
	if printf '%s\n' "$info" | grep '^depends ' | grep -qF -- "$dep"; then ok "depends on $dep"
	else fail "depends lacks $dep"; fi
done

# The install recipe, with a fake cargo install result.
mkdir -p "$tmp/inst/bin" "$tmp/dest"
printf '#!/bin/sh\n' > "$tmp/inst/bin/berth"
if out=$(make -s -C "$pkgdir" TOPDIR="$stub" PKG_INSTALL_DIR="$tmp/inst" \
	DEST="$tmp/dest" stub-install-berth 2>&1); then ok "install recipe runs"
else fail "install recipe failed: $out"; fi
for f in usr/bin/berth etc/init.d/berth etc/uci-defaults/90-berth; do
	if [ -x "$tmp/dest/$f" ]; then ok "installs executable /$f"; else fail "missing executable /$f"; fi
done
for f in etc/config/berth lib/upgrade/keep.d/berth; do
	if [ -f "$tmp/dest/$f" ]; then ok "installs /$f"; else fail "missing /$f"; fi
done
for d in etc/berth usr/share/berth/images; do
	if [ -d "$tmp/dest/$d" ]; then ok "creates /$d"; else fail "missing dir /$d"; fi
done

# berth-rpcd: the rpcd plugin and its ACL (run under the real rpcd by
# tests/openwrt/procd.sh)
info=$(make -s -C "$pkgdir" TOPDIR="$stub" stub-info-berth-rpcd 2>&1)
for dep in +berth +rpcd +jsonfilter; do
	if printf '%s\n' "$info" | grep '^depends ' | grep -qF -- "$dep"; then ok "berth-rpcd depends on $dep"
	else fail "berth-rpcd depends lacks $dep: $info"; fi
done
mkdir -p "$tmp/rpcd"
if out=$(make -s -C "$pkgdir" TOPDIR="$stub" DEST="$tmp/rpcd" stub-install-berth-rpcd 2>&1) &&
	[ -x "$tmp/rpcd/usr/libexec/rpcd/berth" ] && [ -f "$tmp/rpcd/usr/share/rpcd/acl.d/berth.json" ]; then
	ok "berth-rpcd installs /usr/libexec/rpcd/berth and /usr/share/rpcd/acl.d/berth.json"
else fail "berth-rpcd install: $out"; fi

# The postinst: at image build time it calls the host berth's
# `install --target-root`, on the device it does nothing.
make -s -C "$pkgdir" TOPDIR="$stub" stub-postinst-berth > "$tmp/postinst"
if shellcheck -s sh "$tmp/postinst"; then ok "postinst passes shellcheck"; else fail "postinst shellcheck"; fi
mkdir -p "$tmp/host/bin" "$tmp/instroot/etc/berth"
printf '#!/bin/sh\necho "$*" > "%s/called"\nexit "${FAKE_RC:-0}"\n' "$tmp" > "$tmp/host/bin/berth"
chmod +x "$tmp/host/bin/berth"
if sh "$tmp/postinst" && [ ! -e "$tmp/called" ]; then ok "postinst on the device does nothing"
else fail "postinst without IPKG_INSTROOT"; fi
if IPKG_INSTROOT="$tmp/instroot" STAGING_DIR_HOST="$tmp/host" sh "$tmp/postinst" && [ ! -e "$tmp/called" ]; then
	ok "postinst without a manifest does nothing"
else fail "postinst without a manifest"; fi
: > "$tmp/instroot/etc/berth/manifest.yaml"
if IPKG_INSTROOT="$tmp/instroot" STAGING_DIR_HOST="$tmp/host" sh "$tmp/postinst" &&
	[ "$(cat "$tmp/called" 2>/dev/null)" = "install --target-root $tmp/instroot $tmp/instroot/etc/berth/manifest.yaml" ]; then
	ok "postinst runs berth install --target-root at build time"
else fail "postinst call: $(cat "$tmp/called" 2>/dev/null)"; fi
if FAKE_RC=1 IPKG_INSTROOT="$tmp/instroot" STAGING_DIR_HOST="$tmp/host" sh "$tmp/postinst"; then
	fail "postinst hides a failed install"
else ok "postinst fails when install fails"; fi

# Feature choices: menuconfig symbols map onto the crate's cargo features.
compile() { make -s -C "$pkgdir" TOPDIR="$stub" stub-compile-berth "$@" 2>&1; }
all_on="CONFIG_BERTH_HTTP=y CONFIG_BERTH_HTTPS=y CONFIG_BERTH_GZIP=y CONFIG_BERTH_ZSTD=y CONFIG_BERTH_XZ=y CONFIG_BERTH_BZIP2=y CONFIG_BERTH_REGISTRY=y CONFIG_BERTH_TLS12=y"
# shellcheck disable=SC2086 # one word per make variable
full=$(compile $all_on | sed -n 's/.*--features \([^ ]*\) .*/\1/p' | tr ',' '\n' | sort | tr '\n' ' ')
every=$(python3 -c 'import tomllib; print(" ".join(sorted(f for f in tomllib.load(open("'"$top"'/Cargo.toml","rb"))["features"] if f != "default")))')
if [ "$full" = "$every " ]; then ok "all choices on give every cargo feature"
else fail "all choices on: [$full], Cargo.toml features: [$every]"; fi
# shellcheck disable=SC2086
if compile $all_on | grep -q -- '--no-default-features'; then ok "builds without the crate's defaults"
else fail "no --no-default-features"; fi
if compile CONFIG_BERTH_HTTP=y CONFIG_BERTH_GZIP=y | grep -q -- '--features http,gzip --no-default-features'; then
	ok "https and decompressors can be left out"
else fail "partial choice: $(compile CONFIG_BERTH_HTTP=y CONFIG_BERTH_GZIP=y)"; fi
config=$(make -s -C "$pkgdir" TOPDIR="$stub" stub-config-berth 2>&1)
deps=$(sed -n '/^PKG_CONFIG_DEPENDS:=/,/[^\\]$/p' "$pkgdir/Makefile")
# shellcheck disable=SC2013 # one symbol per word
for sym in $(grep -o 'CONFIG_BERTH_[A-Z0-9]*' "$pkgdir/Makefile" | sed 's/^CONFIG_//' | sort -u); do
	if printf '%s\n' "$config" | grep -q "config $sym\$" &&
		printf '%s\n' "$deps" | grep -q "CONFIG_$sym\b"; then
		ok "$sym is declared and rebuilds the package when changed"
	else fail "$sym must be in Package/berth/config and PKG_CONFIG_DEPENDS"; fi
done

# Broken variants must fail: proves the stub checks bite.
broken() {
	name=$1 script=$2
	mkdir -p "$tmp/b" && cp -r "$pkgdir/files" "$tmp/b/" 2>/dev/null
	sed "$script" "$pkgdir/Makefile" > "$tmp/b/Makefile"
	if make -s -C "$tmp/b" TOPDIR="$stub" stub-info-berth >/dev/null 2>&1; then
		fail "broken Makefile accepted: $name"
	else ok "broken Makefile rejected: $name"; fi
}
broken "missing endef" '0,/^endef$/{/^endef$/d}'
broken "no TITLE" '/TITLE:=/d'
broken "no RUST_ARCH_DEPENDS" 's/\$(RUST_ARCH_DEPENDS) //'
broken "PKG_RELEASE not numeric" 's/^PKG_RELEASE:=.*/PKG_RELEASE:=1a/'
broken "no PKG_LICENSE" '/^PKG_LICENSE:=/d'
broken "rust-package.mk before package.mk" '/rust-package.mk/d; s|^include $(INCLUDE_DIR)/package.mk|include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk\ninclude $(INCLUDE_DIR)/package.mk|'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
