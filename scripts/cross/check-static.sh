#!/bin/sh
# Fail unless BINARY is statically linked: no program interpreter and no
# DT_NEEDED entry (static-pie keeps a dynamic section, but needs nothing).
set -eu
bin=$1
[ -f "$bin" ] || { echo "check-static: $bin not found" >&2; exit 1; }
if readelf -lW "$bin" | grep -q 'INTERP'; then
	echo "check-static: $bin has a program interpreter (dynamically linked)" >&2
	exit 1
fi
if readelf -dW "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
	echo "check-static: $bin needs shared libraries:" >&2
	readelf -dW "$bin" | grep '(NEEDED)' >&2
	exit 1
fi
echo "static: $bin ($(wc -c < "$bin") bytes)"
