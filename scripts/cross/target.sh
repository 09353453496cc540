#!/bin/sh
# Build (release) or unit-test one musl target. Targets with a prebuilt std
# that rustup can fetch use stable; otherwise std is built from rust-src with
# nightly -Z build-std and zig links (scripts/cross/*-zigcc). Tests run under
# qemu-user-static through the runner set in .cargo/config.toml.
# Mode vm-bins builds the debug berth and the integration test binaries named
# after it (--test NAME...) for the foreign-kernel VM tier (mk/foreign.mk) and
# prints their paths, one a line.
# Usage: target.sh TRIPLE build|test|vm-bins [TEST...]
set -eu
triple=$1
mode=$2
shift 2
tests=$*
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

prebuilt=0
case "$triple" in
	mips-*|mipsel-*) ;; # tier 3: never a prebuilt std
	*)
		if rustup target list --installed | grep -qx "$triple"; then
			prebuilt=1
		elif timeout 600 rustup target add "$triple" >/dev/null 2>&1; then
			prebuilt=1
		else
			echo "target.sh: no prebuilt std for $triple from rustup; building it with -Z build-std" >&2
		fi
		;;
esac

# The release build is the firmware build (mk/cross.mk): std rebuilt with
# optimize_for_size and the flags in scripts/cross/firmware-rustflags. With a
# prebuilt std the pinned stable toolchain does it (RUSTC_BOOTSTRAP allows the
# -Z options); tier 3 targets need nightly anyway.
firmware_flags="-C target-feature=+crt-static $(sed '/^#/d' scripts/cross/firmware-rustflags)"
# The C parts (ring) without unwind tables, as the Rust code: with
# panic=immediate-abort nothing unwinds (3 KB on MIPS).
cflags_var="CFLAGS_$(echo "$triple" | tr '-' '_')"
export "$cflags_var=-fno-asynchronous-unwind-tables -fno-unwind-tables"
if [ "$prebuilt" -eq 1 ]; then
	case "$mode" in
		build)
			RUSTC_BOOTSTRAP=1 RUSTFLAGS=$firmware_flags
			export RUSTC_BOOTSTRAP RUSTFLAGS
			set -- cargo -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
			;;
		*) set -- cargo ;;
	esac
else
	# the test harness unwinds, which the default crate set covers
	case "$mode" in
		build)
			RUSTFLAGS="$firmware_flags -C link-self-contained=no"
			export RUSTFLAGS
			set -- cargo +nightly -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
			;;
		*) set -- cargo +nightly -Z build-std ;;
	esac
	arch=${triple%%-*}
	if [ "$arch" = aarch64 ]; then
		# without the prebuilt std there is no self-contained musl: zig brings it
		CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=scripts/cross/aarch64-zigcc
		CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static -C link-self-contained=no"
		export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS
	fi
fi

# The linker keeps sections that are neither loaded nor symbols: on MIPS,
# .pdr (procedure descriptors for debuggers, 237 KB, 9% of the binary).
# The llvm-objcopy of the toolchain that built it drops them (--strip-all).
# Usage: strip_unloaded BINARY [+TOOLCHAIN]
strip_unloaded() {
	sysroot=$(rustc ${2:+"$2"} --print sysroot)
	host=$(rustc ${2:+"$2"} -vV | sed -n 's/^host: //p')
	LD_LIBRARY_PATH="$sysroot/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		"$sysroot/lib/rustlib/$host/bin/rust-objcopy" --strip-all "$1" "$1.stripped"
	mv "$1.stripped" "$1"
}

case "$mode" in
	build)
		"$@" build --locked --release --target "$triple"
		if [ "$prebuilt" -eq 1 ]; then toolchain=; else toolchain=+nightly; fi
		strip_unloaded "${CARGO_TARGET_DIR:-target}/$triple/release/berth" $toolchain
		;;
	test) exec "$@" test --locked --target "$triple" --lib --bins ;;
	vm-bins)
		"$@" build --locked --target "$triple" --bin berth >&2
		echo "${CARGO_TARGET_DIR:-target}/$triple/debug/berth"
		# Through a file: a pipe would hide cargo's exit status (no pipefail in sh).
		json=${CARGO_TARGET_DIR:-target}/$triple/vm-bins.json
		# shellcheck disable=SC2046,SC2086 # one --test per name
		"$@" test --locked --target "$triple" --no-run --message-format=json \
			$(printf -- '--test %s ' $tests) > "$json"
		# the test harness builds (nightly cargo puts them outside deps/)
		grep '"profile":{[^}]*"test":true' "$json" | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'

		;;
	*) echo "target.sh: mode is build, test or vm-bins" >&2; exit 2 ;;
esac
