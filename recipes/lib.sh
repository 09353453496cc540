#!/bin/sh
# Shared helpers of the recipe build scripts (sourced, POSIX sh).
# Output convention of every recipe: $OUT/<name>.tar.gz, its sha256 in
# $OUT/<name>.tar.gz.sha256, and $OUT/<name>.yaml, the recipe's manifest
# fragment with the digest filled in.

die() { echo "$0: $*" >&2; exit 1; }

# deb_fetch PKG...: download Debian packages (for $ARCH when set) into
# $CACHE with one apt-get call, reusing earlier downloads, and print their paths.
deb_fetch() {
	mkdir -p "$CACHE"
	missing=
	for p in "$@"; do
		ls "$CACHE/${p}_"*.deb >/dev/null 2>&1 || missing="$missing $p${ARCH:+:$ARCH}"
	done
	if [ -n "$missing" ]; then
		# shellcheck disable=SC2086
		(cd "$CACHE" && apt-get download -qq -o APT::Sandbox::User=root $missing >/dev/null) ||
			die "apt-get download$missing failed (apt-get update first; for ARCH, dpkg --add-architecture)"
	fi
	for p in "$@"; do
		# shellcheck disable=SC2012 # Debian package file names are plain
		f=$(ls "$CACHE/${p}_"*.deb 2>/dev/null | head -n 1)
		[ -n "$f" ] || die "no .deb for $p in $CACHE"
		echo "$f"
	done
}

# make_tarball ROOT NAME: a reproducible tar.gz of ROOT (sorted, owner 0,
# fixed mtime, no gzip timestamp) in $OUT, and its sha256 file. Prints the digest.
make_tarball() {
	root=$1
	name=$2
	mkdir -p "$OUT"
	tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime=@"${SOURCE_DATE_EPOCH:-0}" -cf - . | gzip -9n > "$OUT/$name.tar.gz.tmp"
	mv "$OUT/$name.tar.gz.tmp" "$OUT/$name.tar.gz"
	sum=$(sha256sum "$OUT/$name.tar.gz" | cut -d' ' -f1)
	echo "$sum  $name.tar.gz" > "$OUT/$name.tar.gz.sha256"
	echo "$sum"
}

# fill_manifest TEMPLATE NAME DIGEST: the fragment with @SHA256@ replaced.
fill_manifest() {
	sed "s/@SHA256@/$3/g" "$1" > "$OUT/$2.yaml"
}

# base_tree ROOT: the directories and files every container rootfs needs.
base_tree() {
	for d in bin sbin usr/bin usr/sbin etc dev proc sys tmp run root var/log var/run; do
		mkdir -p "$1/$d"
	done
	chmod 1777 "$1/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$1/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
	: > "$1/etc/resolv.conf"
}

OUT=${OUT:-$(pwd)/out}
CACHE=${CACHE:-$OUT/.cache}

# deb_closure PKG: PKG and everything it depends on, recursively (no
# recommends), as package names.
deb_closure() {
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances "$1${ARCH:+:$ARCH}" 2>/dev/null |
		grep '^[a-z0-9]' | sed 's/:.*//' | sort -u
}

# copy_with_libs STAGE ROOT PATH: copy STAGE/PATH into ROOT with the ELF
# interpreter and every shared library it needs (DT_NEEDED, recursively),
# looked up in STAGE's library directories.
copy_with_libs() {
	stage=$1
	root=$2
	todo=$3
	while [ -n "$todo" ]; do
		# shellcheck disable=SC2086 # split the work list into words
		set -- $todo
		f=$1
		shift
		todo=$*
		[ -e "$root/$f" ] && continue
		mkdir -p "$root/$(dirname "$f")"
		cp -L "$stage/$f" "$root/$f"
		interp=$(readelf -lW "$stage/$f" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
		for lib in $interp $(readelf -dW "$stage/$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			lib=${lib#/}
			found=
			for dir in "$stage" "$stage"/lib "$stage"/usr/lib "$stage"/lib/*-linux-gnu* "$stage"/usr/lib/*-linux-gnu*; do
				if [ -z "$found" ] && [ -e "$dir/${lib##*/}" ]; then
					found=${dir#"$stage"}/${lib##*/}
					found=${found#/}
				fi
			done
			[ -n "$found" ] || [ -e "$stage/$lib" ] || die "library $lib of $f not in the staged packages"
			[ -n "$found" ] || found=$lib
			todo="$todo $found"
			# the interpreter is looked up at its absolute path
			if [ "$lib" != "${lib##*/}" ] && [ "$found" != "$lib" ]; then
				mkdir -p "$root/$(dirname "$lib")"
				[ -e "$root/$lib" ] || ln -s "/$found" "$root/$lib"
			fi
		done
	done
}
