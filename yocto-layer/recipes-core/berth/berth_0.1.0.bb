SUMMARY = "Declarative containers from a YAML manifest"
DESCRIPTION = "berth makes a device run exactly the containers that a YAML \
manifest declares: one small binary using namespaces and cgroups, applied at \
boot by a systemd unit or a sysvinit script."
HOMEPAGE = "https://github.com/berth-project/berth"
BUGTRACKER = "https://github.com/berth-project/berth/issues"
SECTION = "admin"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

SRC_URI = "git://github.com/berth-project/berth.git;protocol=https;branch=main;destsuffix=${BP}"
SRCREV = "5777f2a42efb69c52f13c4c5cefa5b99fe72d777"

inherit cargo cargo-update-recipe-crates systemd update-rc.d

require ${BPN}-crates.inc

# berth's cargo features (Cargo.toml), on by default as there: all but bzip2
# (its decoder needs about 35 MiB; berth_bundle stages .tar.bz2 as gzip). A
# small-flash image can drop tls (https sources, about 0.7 MiB) and unused
# decompressors, e.g. PACKAGECONFIG:pn-berth = "http gzip" in local.conf.
PACKAGECONFIG ??= "http tls gzip zstd xz registry"
PACKAGECONFIG[http] = ",,"
PACKAGECONFIG[tls] = ",,"
PACKAGECONFIG[gzip] = ",,"
PACKAGECONFIG[zstd] = ",,"
PACKAGECONFIG[xz] = ",,"
PACKAGECONFIG[bzip2] = ",,"
# OCI registry pulls (images.NAME.ref); needs http.
PACKAGECONFIG[registry] = ",,"
# TLS 1.2 as well as 1.3, for an origin or registry without TLS 1.3.
PACKAGECONFIG[tls12] = ",,"

def berth_cargo_features(d):
    features = (d.getVar("PACKAGECONFIG") or "").split()
    return "--features " + ",".join(features) if features else ""

CARGO_BUILD_FLAGS:append = " --no-default-features ${@berth_cargo_features(d)}"

# Public keys (minisign .pub files) berth trusts for signed manifests,
# installed into /etc/berth/keys/. A name without a / is a file of SRC_URI,
# e.g. in a bbappend: SRC_URI += "file://fleet.pub" and
# BERTH_TRUSTED_KEYS = "fleet.pub". With a key there, berth refuses a fetched
# manifest that is not signed by one of them.
BERTH_TRUSTED_KEYS ??= ""
BERTH_KEYS_SRCDIR = "${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}"

SYSTEMD_SERVICE:${PN} = "berth.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"
INITSCRIPT_NAME = "berth"
INITSCRIPT_PARAMS = "defaults 95 10"

do_install:append() {
    install -d ${D}${sysconfdir}/berth
    for key in ${BERTH_TRUSTED_KEYS}; do
        case "$key" in
            /*) ;;
            *) key="${BERTH_KEYS_SRCDIR}/$key" ;;
        esac
        case "$key" in
            *.pub) ;;
            *) bbfatal "BERTH_TRUSTED_KEYS: $key: berth reads only *.pub key files" ;;
        esac
        if [ ! -f "$key" ]; then
            bbfatal "BERTH_TRUSTED_KEYS: no key file $key"
        fi
        install -d ${D}${sysconfdir}/berth/keys
        install -m 0644 "$key" ${D}${sysconfdir}/berth/keys/
    done
    install -d ${D}${datadir}/berth/images
    if ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'true', 'false', d)}; then
        install -d ${D}${systemd_system_unitdir}
        install -m 0644 ${S}/dist/berth.service ${D}${systemd_system_unitdir}/berth.service
    fi
    if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
        install -d ${D}${sysconfdir}/init.d
        install -m 0755 ${S}/dist/berth.sysvinit ${D}${sysconfdir}/init.d/berth
    fi
}

do_install:append:class-native() {
    rm -rf ${D}${sysconfdir} ${D}${datadir}/berth ${D}${systemd_system_unitdir}
}

RRECOMMENDS:${PN}:class-target = "kernel-module-veth kernel-module-macvlan kernel-module-overlay"

# Build-time staging (`berth install --target-root`) runs the native build
# under pseudo, which only sees dynamically linked binaries.
BBCLASSEXTEND = "native"
