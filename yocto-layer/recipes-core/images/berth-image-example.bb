SUMMARY = "Example image with berth and a busybox container inside"
DESCRIPTION = "A minimal bootable image with berth; its manifest starts a \
busybox httpd container, built by berth-container-busybox, at first boot."
LICENSE = "MIT"

inherit core-image berth_bundle

IMAGE_INSTALL:append = " packagegroup-core-boot"

BERTH_CONTAINERS = "berth-container-busybox"
BERTH_MANIFEST := "${THISDIR}/files/berth-image-example.yaml"
