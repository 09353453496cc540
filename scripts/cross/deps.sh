#!/bin/sh
# Install what the static and cross builds need on a fresh Debian 12 (root):
# qemu-user-static, xz, file, zig (PyPI ziglang), a nightly with rust-src, and
# the x86_64 musl std. Each step is skipped when already there.
# Usage: deps.sh [static|cross|msrv]
set -eu
what=${1:-cross}

apt_install() {
	missing=
	for p in "$@"; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing >/dev/null 2>&1 || {
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing
	}
}

rustup_target() {
	rustup target list --installed ${2:+--toolchain "$2"} | grep -qx "$1" && return 0
	timeout 600 rustup target add ${2:+--toolchain "$2"} "$1"
}

case "$what" in
static)
	apt_install file binutils xz-utils musl-tools
	rustup_target x86_64-unknown-linux-musl
	# the firmware build rebuilds std (-Z build-std)
	rustup component list --installed | grep -q '^rust-src' || \
		timeout 600 rustup component add rust-src
	;;
cross)
	apt_install file binutils xz-utils qemu-user-static
	python3 -m ziglang version >/dev/null 2>&1 || python3 -m pip install -q ziglang
	rustup toolchain list | grep -q '^nightly' || \
		timeout 900 rustup toolchain install nightly --profile minimal
	rustup component list --toolchain nightly --installed | grep -q '^rust-src' || \
		timeout 600 rustup component add rust-src --toolchain nightly
	# targets with a prebuilt std still rebuild it for the firmware build
	rustup component list --installed | grep -q '^rust-src' || \
		timeout 600 rustup component add rust-src
	;;
msrv)
	rustup toolchain list | grep -q '^1\.75\.0' || \
		timeout 900 rustup toolchain install 1.75.0 --profile minimal
	;;
*) echo "deps.sh: unknown set $what" >&2; exit 2 ;;
esac
