#!/bin/sh
# slim.sh IN.tar.gz OUT.tar.gz: a full-OS rootfs without what its boot never
# reads (documentation, man pages, translations, perl, apt), for the test VM,
# which holds the image and its extraction in RAM.
set -eu
[ $# = 2 ] || { echo "usage: $0 IN.tar.gz OUT.tar.gz" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$1"
rm -rf "$work"/usr/share/doc "$work"/usr/share/man "$work"/usr/share/info \
	"$work"/usr/share/locale "$work"/usr/lib/locale "$work"/usr/share/zoneinfo \
	"$work"/usr/share/perl5 "$work"/usr/lib/x86_64-linux-gnu/perl* "$work"/usr/bin/perl* \
	"$work"/usr/lib/x86_64-linux-gnu/gconv "$work"/usr/lib/apt "$work"/var/cache/* \
	"$work"/var/lib/apt "$work"/usr/share/bash-completion
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - . |
	gzip -6n > "$2.tmp"
mv "$2.tmp" "$2"
