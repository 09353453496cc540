# berth_bundle: put a berth manifest and its container images into an image
# at build time, so the device starts its containers on first boot without
# fetching anything.
#
#   inherit berth_bundle
#   BERTH_CONTAINERS = "berth-container-busybox"   image recipes built with
#                                                  IMAGE_FSTYPES = "container"
#   BERTH_CONTAINER_FILES = "/srv/rootfs/dnsmasq.tar.gz"   tarballs from files
#   BERTH_MANIFEST = "/path/to/manifest.yaml"
#
# Every tarball lands in ${BERTH_IMAGES_DIR} as <name>.tar.<ext>, where <name>
# is the image recipe name or the file's name without .tar.*; a .tar.bz2 (what
# IMAGE_FSTYPES = "container" writes) is recompressed to <name>.tar.gz. In the manifest,
# the token @BERTH_SHA256_<name>@ (with '-' and '.' turned into '_') is
# replaced by that tarball's sha256, since image tarballs are not
# reproducible from build to build.
#
# With BERTH_PREINSTALL = "1" (the default) the native berth, under pseudo,
# runs `berth install --target-root ${IMAGE_ROOTFS} MANIFEST`: it verifies and
# extracts every image the manifest needs into the read-only image root, so
# the squashfs stores it compressed and the device extracts nothing.

BERTH_CONTAINERS ?= ""
BERTH_CONTAINER_FILES ?= ""
BERTH_MANIFEST ?= ""
BERTH_IMAGES_DIR ?= "${datadir}/berth/images"
BERTH_PREINSTALL ?= "1"

IMAGE_INSTALL:append = " berth"

# Container images must be deployed, and berth-native staged when it
# preinstalls, before do_rootfs runs; a changed manifest reruns it.
do_rootfs[depends] += "${@' '.join('%s:do_image_complete' % c for c in (d.getVar('BERTH_CONTAINERS') or '').split())}"
do_rootfs[depends] += "${@'berth-native:do_populate_sysroot' if d.getVar('BERTH_PREINSTALL') == '1' and d.getVar('BERTH_MANIFEST') else ''}"
do_rootfs[file-checksums] += "${@'%s:True' % d.getVar('BERTH_MANIFEST') if d.getVar('BERTH_MANIFEST') else ''}"

berth_bundle_stage() {
    name="$1"
    src="$2"
    [ -f "$src" ] || bbfatal "berth_bundle: container tarball $src not found"
    case "$src" in
        *.tar.bz2) ext=bz2 ;;
        *.tar.gz|*.tgz) ext=tar.gz ;;
        *.tar.xz) ext=tar.xz ;;
        *.tar.zst) ext=tar.zst ;;
        *.tar) ext=tar ;;
        *) bbfatal "berth_bundle: $src is not a tarball" ;;
    esac
    if [ "$ext" = bz2 ]; then
        # berth reads bzip2 only when built with it (PACKAGECONFIG bzip2, off
        # by default: its decoder needs about 35 MiB), so stage it as gzip
        dest="${IMAGE_ROOTFS}${BERTH_IMAGES_DIR}/$name.tar.gz"
        bzip2 -dc "$src" | gzip -n -9 > "$dest" || bbfatal "berth_bundle: recompress $src failed"
        chmod 0644 "$dest"
    else
        dest="${IMAGE_ROOTFS}${BERTH_IMAGES_DIR}/$name.$ext"
        install -m 0644 "$src" "$dest"
    fi
    sum=$(sha256sum "$dest" | cut -d' ' -f1)
    token=$(echo "$name" | tr '.-' '__')
    echo "s|@BERTH_SHA256_$token@|$sum|g" >> "${WORKDIR}/berth-bundle.sed"
}

berth_bundle_rootfs() {
    install -d "${IMAGE_ROOTFS}${BERTH_IMAGES_DIR}"
    : > "${WORKDIR}/berth-bundle.sed"
    for c in ${BERTH_CONTAINERS}; do
        berth_bundle_stage "$c" "${DEPLOY_DIR_IMAGE}/$c-${MACHINE}.rootfs.tar.bz2"
    done
    for f in ${BERTH_CONTAINER_FILES}; do
        n=$(basename "$f")
        n="${n%%.tar*}"
        n="${n%%.tgz}"
        berth_bundle_stage "$n" "$f"
    done
    if [ -n "${BERTH_MANIFEST}" ]; then
        install -d "${IMAGE_ROOTFS}${sysconfdir}/berth"
        sed -f "${WORKDIR}/berth-bundle.sed" "${BERTH_MANIFEST}" \
            > "${IMAGE_ROOTFS}${sysconfdir}/berth/manifest.yaml"
        chmod 0644 "${IMAGE_ROOTFS}${sysconfdir}/berth/manifest.yaml"
        if grep -q '@BERTH_SHA256_' "${IMAGE_ROOTFS}${sysconfdir}/berth/manifest.yaml"; then
            bbfatal "berth_bundle: ${BERTH_MANIFEST} names a @BERTH_SHA256_...@ token of no staged container"
        fi
        if [ "${BERTH_PREINSTALL}" = "1" ]; then
            berth install --target-root "${IMAGE_ROOTFS}" \
                "${IMAGE_ROOTFS}${sysconfdir}/berth/manifest.yaml" \
                || bbfatal "berth_bundle: berth install --target-root failed"
        fi
    fi
}

ROOTFS_POSTPROCESS_COMMAND += "berth_bundle_rootfs"
