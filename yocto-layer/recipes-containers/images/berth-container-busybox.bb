SUMMARY = "busybox application container rootfs for berth"
DESCRIPTION = "Builds a rootfs tarball holding busybox only, deployed as \
berth-container-busybox-MACHINE.rootfs.tar.bz2 for berth_bundle."
LICENSE = "MIT"

IMAGE_FSTYPES = "container"
IMAGE_CONTAINER_NO_DUMMY = "1"
IMAGE_INSTALL = "busybox"
IMAGE_LINGUAS = ""
NO_RECOMMENDATIONS = "1"
IMAGE_FEATURES = ""

inherit image
