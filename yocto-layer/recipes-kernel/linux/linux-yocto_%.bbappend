# Kernel options berth's containers need, only for distros with the `berth`
# feature (as meta-virtualization gates its fragments on `virtualization`).
require ${@bb.utils.contains('DISTRO_FEATURES', 'berth', 'linux-yocto_berth.inc', '', d)}
