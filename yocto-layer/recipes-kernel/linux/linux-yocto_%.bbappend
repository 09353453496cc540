# Kernel options berth's containers need, for distros with the `berth` feature.
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"

SRC_URI:append = "${@bb.utils.contains('DISTRO_FEATURES', 'berth', ' file://berth.cfg', '', d)}"
