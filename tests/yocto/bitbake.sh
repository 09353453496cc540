#!/bin/bash
# meta-berth under the real bitbake (poky scarthgap from the fixtures),
# offline: the fixture's parse.sh runs bitbake-layers add-layer and
# show-layers, `bitbake -p` and `bitbake -e` for berth, berth-native and the
# example image; then `bitbake -g` gives the image's task graph. The work
# dir is kept (WORK, under build/) so the next run reuses bitbake's parse
# cache: about 4 minutes cold, under a minute warm.
#
#   usage: bitbake.sh FIXTURES_YOCTO LAYER_DIR WORK
set -u -o pipefail
[ $# = 3 ] || { echo "usage: $0 FIXTURES_YOCTO LAYER_DIR WORK" >&2; exit 2; }
FX=$1 LAYER=$2 WORK=$3
fails=0 passes=0
ok() { echo "ok    $*"; passes=$((passes + 1)); }
bad() { echo "FAIL  $*"; fails=$((fails + 1)); }
has() { # DESC FILE REGEX: FILE has a line matching REGEX
	if grep -qE -- "$3" "$2"; then ok "$1"; else bad "$1 (no /$3/ in $2)"; fi
}
hasnt() {
	if grep -qE -- "$3" "$2"; then bad "$1 ($(grep -E -- "$3" "$2" | head -n 3))"; else ok "$1"; fi
}

mkdir -p "$WORK"
KEEP=1 FX_WORK=$WORK bash "$FX/parse.sh" "$LAYER" berth berth-native berth-image-example \
	>"$WORK/parse.out" 2>&1
rc=$?
grep -E '^-- |^Parsing of' "$WORK/parse.out"
if [ $rc = 0 ]; then ok "parse.sh: every step passed"; else bad "parse.sh rc=$rc (see $WORK/parse.out)"; fi
L=$WORK/logs
has "show-layers: berth at layers/$(basename "$LAYER"), priority 6" "$L/show-layers.log" "^berth +.*/layers/$(basename "$LAYER") +6$"
has "bitbake -p: 0 errors" "$L/parse.log" '^Parsing of .* 0 errors\.'
hasnt "no WARNING or ERROR line in any step" <(cat "$L"/*.log) '^(WARNING|ERROR):'

# what yocto-check-layer's test_readme asks of the layer's README
R=$LAYER/README.md
has "README names a maintainer" "$R" '^Maintainer: .*<[^@ ]+@[^@ ]+>'
has "README says where patches go" "$R" '[Pp]atches .*(pull requests|email)'

E=$L/env-berth.log
has "berth: SRC_URI is the git repository" "$E" '^SRC_URI="git://github.com/berth-project/berth.git;protocol=https;branch=main'
has "berth: SRC_URI has the crates from berth-crates.inc" "$E" '^SRC_URI=.*crate://crates.io/serde/'
has "berth: DEPENDS has cargo-native and rust-native" "$E" '^DEPENDS=".*cargo-native .*rust-native'
has "berth: do_install runs cargo_do_install" "$E" '^    cargo_do_install$'
has "berth: do_install installs the systemd unit" "$E" 'install -m 0644 .*/dist/berth.service '
has "berth: do_install installs the sysvinit script" "$E" 'install -m 0755 .*/dist/berth.sysvinit '
has "berth: LICENSE Apache-2.0" "$E" '^LICENSE="Apache-2.0"'
N=$L/env-berth-native.log
has "berth-native: DEPENDS has no target toolchain" "$N" '^DEPENDS="cargo-native python3-native rust-native"$'
has "berth-native: do_install drops /etc and the units" "$N" '^    rm -rf .*/image/[^ ]*/etc '
I=$L/env-berth-image-example.log
has "image: BERTH_CONTAINERS" "$I" '^BERTH_CONTAINERS="berth-container-busybox"$'
has "image: IMAGE_INSTALL has berth" "$I" '^IMAGE_INSTALL=".* berth '
has "image: BERTH_MANIFEST is the layer's example" "$I" '^BERTH_MANIFEST=".*/recipes-core/images/files/berth-image-example.yaml"$'

# the bbclass's task dependencies, from bitbake's own task graph
runuser -u fxbb -- bash -c "export LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8; cd '$WORK' && . poky/oe-init-build-env build >/dev/null && bitbake -g berth-image-example" \
	>"$L/graph.log" 2>&1 || bad "bitbake -g berth-image-example (see $L/graph.log)"
G=$WORK/build/task-depends.dot
has "image: do_rootfs waits for the container image (do_image_complete)" "$G" '"berth-image-example.do_rootfs" -> "berth-container-busybox.do_image_complete"'
has "image: berth is built for it (do_package_write)" "$G" '"berth-image-example.do_rootfs" -> "berth.do_package_write_'
has "image: the native berth stages the containers (BERTH_PREINSTALL)" "$G" '"berth-image-example.do_rootfs" -> "berth-native.do_populate_sysroot"'
echo "$passes passed, $fails failed"
[ $fails = 0 ]
