#!/bin/sh
# Build rpcd (the ubus RPC daemon that runs exec plugins from
# /usr/libexec/rpcd) from the fixture's source snapshot into PREFIX, next to
# the libubox, ubus and uci that the fixture's build.sh installed there.
#
#   usage: build-rpcd.sh FIXTURES_OPENWRT PREFIX BUILD_DIR
#
# Its install prefix is /usr, as on OpenWrt: rpcd looks for exec plugins in
# PREFIX/libexec/rpcd and ACLs in PREFIX/share/rpcd/acl.d.
# Only the daemon and its built-in session/uci/plugin objects: no file,
# iwinfo, rpcsys or ucode plugins.
set -eu
[ $# = 3 ] || { echo "usage: $0 FIXTURES_OPENWRT PREFIX BUILD_DIR" >&2; exit 2; }
FX=$1 PREFIX=$2 BUILD=$3
tarball=$(ls "$FX"/src/rpcd-*.tar.gz)
rm -rf "$BUILD/rpcd"
mkdir -p "$BUILD"
tar -xzf "$tarball" -C "$BUILD"
mkdir -p "$BUILD/rpcd/build"
cd "$BUILD/rpcd/build"
cmake .. -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_PREFIX_PATH="$PREFIX" \
	-DCMAKE_C_FLAGS="-I$PREFIX/include" -DCMAKE_EXE_LINKER_FLAGS="-L$PREFIX/lib" \
	-DCMAKE_SHARED_LINKER_FLAGS="-L$PREFIX/lib" -DCMAKE_INSTALL_RPATH="$PREFIX/lib" \
	-DFILE_SUPPORT=OFF -DIWINFO_SUPPORT=OFF -DRPCSYS_SUPPORT=OFF -DUCODE_SUPPORT=OFF >/dev/null
make -j"$(nproc)" rpcd
cp rpcd "$PREFIX/sbin/rpcd"
