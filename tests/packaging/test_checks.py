#!/usr/bin/env python3
"""The packaging checks (scripts/packaging_checks.py, gen_crates_inc.py) accept
the good inputs and reject the bad ones they exist to catch."""
import os
import sys
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
import gen_crates_inc  # noqa: E402
import packaging_checks as pc  # noqa: E402

CARGO = '[package]\nname = "berth"\nversion = "0.1.0"\nrust-version = "1.75"\n'
LOCK = '''version = 3

[[package]]
name = "berth"
version = "0.1.0"

[[package]]
name = "libc"
version = "0.2.150"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "89d92a4743f9a61002fae18374ed11e7973f530cb3a3255fb354818118b2203c"
'''


class Lockfile(unittest.TestCase):
    def test_v3_and_1_75_pass(self):
        pc.check_lockfile(LOCK, CARGO)

    def test_v4_fails(self):
        with self.assertRaisesRegex(pc.CheckError, "version 4"):
            pc.check_lockfile(LOCK.replace("version = 3", "version = 4"), CARGO)

    def test_newer_rust_version_fails(self):
        with self.assertRaisesRegex(pc.CheckError, "1.78"):
            pc.check_lockfile(LOCK, CARGO.replace("1.75", "1.78"))

    def test_missing_rust_version_fails(self):
        with self.assertRaises(pc.CheckError):
            pc.check_lockfile(LOCK, CARGO.replace('rust-version = "1.75"\n', ""))


class CratesInc(unittest.TestCase):
    def test_render_lists_registry_crates_only(self):
        inc = gen_crates_inc.render(LOCK)
        self.assertIn("crate://crates.io/libc/0.2.150 \\", inc)
        self.assertIn('SRC_URI[libc-0.2.150.sha256sum] = "89d92a47', inc)
        self.assertNotIn("crates.io/berth", inc)

    def test_check_detects_stale_inc(self):
        with tempfile.TemporaryDirectory() as d:
            lock, inc = os.path.join(d, "Cargo.lock"), os.path.join(d, "x.inc")
            with open(lock, "w") as f:
                f.write(LOCK)
            self.assertEqual(gen_crates_inc.main(["--lock", lock, "--inc", inc]), 0)
            self.assertEqual(gen_crates_inc.main(["--check", "--lock", lock, "--inc", inc]), 0)
            with open(lock, "w") as f:
                f.write(LOCK.replace("0.2.150", "0.2.151"))
            self.assertEqual(gen_crates_inc.main(["--check", "--lock", lock, "--inc", inc]), 1)

    def test_git_dependency_is_refused(self):
        lock = LOCK + '\n[[package]]\nname = "x"\nversion = "1.0.0"\nsource = "git+https://example.org/x#abc"\n'
        with self.assertRaisesRegex(ValueError, "git"):
            gen_crates_inc.render(lock)


class License(unittest.TestCase):
    def test_md5_match_and_mismatch(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "LICENSE"), "w") as f:
                f.write("line one\nline two\n")
            good = 'LIC_FILES_CHKSUM = "file://LICENSE;md5=%s"\n'
            import hashlib
            md5 = hashlib.md5(b"line one\nline two\n").hexdigest()
            pc.check_license(good % md5, top=d)
            with self.assertRaisesRegex(pc.CheckError, "md5"):
                pc.check_license(good % ("0" * 32), top=d)
            line2 = hashlib.md5(b"line two\n").hexdigest()
            pc.check_license('LIC_FILES_CHKSUM = "file://LICENSE;beginline=2;endline=2;md5=%s"\n' % line2, top=d)

    def test_missing_variable(self):
        with self.assertRaises(pc.CheckError):
            pc.lic_files_chksum('LICENSE = "MIT"\n')


class OpenWrtVersion(unittest.TestCase):
    MK = "PKG_NAME:=berth\nPKG_VERSION:=%s\nPKG_RELEASE:=%s\n"

    def test_valid(self):
        pc.check_openwrt_version(self.MK % ("0.1.0", "1"), CARGO)

    def test_invalid_versions(self):
        for ver in ("v0.1.0", "0.1.0-rc1", "0.1.0~1", ""):
            with self.subTest(ver=ver), self.assertRaises(pc.CheckError):
                pc.check_openwrt_version(self.MK % (ver, "1"), CARGO.replace("0.1.0", ver or "x"))

    def test_release_not_numeric(self):
        with self.assertRaisesRegex(pc.CheckError, "PKG_RELEASE"):
            pc.check_openwrt_version(self.MK % ("0.1.0", "1a"), CARGO)

    def test_differs_from_crate(self):
        with self.assertRaisesRegex(pc.CheckError, "differs"):
            pc.check_openwrt_version(self.MK % ("0.2.0", "1"), CARGO)

    def test_apk_suffixes_accepted(self):
        for ver in ("1.2.3_rc1", "1.2.3a", "2024.01.05"):
            self.assertTrue(pc.APK_VERSION.match(ver), ver)


class Uci(unittest.TestCase):
    GOOD = ("config berth 'main'\n\toption enabled '1'\n\toption manifest '/etc/berth/m.yaml'\n"
            "\toption root '/srv/berth'\n\toption log_size 256k\n\tlist extra 'a b'\n")

    def test_parse(self):
        secs = pc.parse_uci(self.GOOD + "# comment\n\nconfig other\n\toption x \"y z\"\n")
        self.assertEqual(secs[0][0:2], ("berth", "main"))
        self.assertEqual(secs[0][2]["extra"], ["a b"])
        self.assertEqual(secs[1], ("other", None, {"x": "y z"}))
        pc.check_uci_config(self.GOOD)

    def test_syntax_errors(self):
        for bad in ("option x 1\n", "config berth 'main'\n\toption x 'unterminated\n",
                    "config berth 'ma-in'\n", "config berth 'main'\n\tbogus x y\n",
                    "config berth 'main'\n\toption x\n"):
            with self.subTest(bad=bad), self.assertRaises(pc.CheckError):
                pc.parse_uci(bad)

    def test_root_on_tmpfs_rejected(self):
        with self.assertRaisesRegex(pc.CheckError, "tmpfs"):
            pc.check_uci_config(self.GOOD.replace("/srv/berth", "/var/berth"))

    def test_missing_option_rejected(self):
        with self.assertRaisesRegex(pc.CheckError, "manifest"):
            pc.check_uci_config(self.GOOD.replace("\toption manifest '/etc/berth/m.yaml'\n", ""))


class OpenWrtDefaults(unittest.TestCase):
    CONF = "config berth 'main'\n\toption enabled '1'\n\toption root '/srv/berth'\n"
    DEFAULTS = "set_default enabled 1\nset_default root /srv/berth\n"
    KEEP = "/etc/berth/\n/srv/berth/\n"

    def test_agree(self):
        pc.check_openwrt_defaults(self.CONF, self.DEFAULTS, self.KEEP)

    def test_default_differs(self):
        with self.assertRaisesRegex(pc.CheckError, "root"):
            pc.check_openwrt_defaults(self.CONF, self.DEFAULTS.replace("/srv/berth", "/opt/b"), self.KEEP)

    def test_keep_list_lacks_root(self):
        with self.assertRaisesRegex(pc.CheckError, "keep list"):
            pc.check_openwrt_defaults(self.CONF, self.DEFAULTS, "/etc/berth/\n")


class SystemdUnit(unittest.TestCase):
    GOOD = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/berth apply --serve /m\nDelegate=yes\n\n[Install]\nWantedBy=multi-user.target\n"

    def test_good(self):
        pc.check_systemd_unit(self.GOOD)

    def test_without_delegate(self):
        with self.assertRaisesRegex(pc.CheckError, "Delegate"):
            pc.check_systemd_unit(self.GOOD.replace("Delegate=yes", "Delegate=no"))

    def test_wrong_command(self):
        with self.assertRaisesRegex(pc.CheckError, "ExecStart"):
            pc.check_systemd_unit(self.GOOD.replace("berth apply", "berth plan"))

    def test_garbage_line(self):
        with self.assertRaises(pc.CheckError):
            pc.parse_unit("[Service]\nthis is not a unit line\n")


class RecipeFeatures(unittest.TestCase):
    CARGO = CARGO + '\n[features]\ndefault = ["gzip", "tls"]\ngzip = []\ntls = []\n'
    GOOD = ('PACKAGECONFIG ??= "tls gzip"\nPACKAGECONFIG[gzip] = ",,"\n'
            'PACKAGECONFIG[tls] = ",,"\n')

    def test_good(self):
        pc.check_recipe_features(self.GOOD, self.CARGO)

    def test_defaults_differ(self):
        with self.assertRaisesRegex(pc.CheckError, "default features"):
            pc.check_recipe_features(self.GOOD.replace('"tls gzip"', '"gzip"'), self.CARGO)

    def test_option_that_is_no_feature(self):
        with self.assertRaisesRegex(pc.CheckError, "not cargo features"):
            pc.check_recipe_features(self.GOOD + 'PACKAGECONFIG[lz4] = ",,"\n', self.CARGO)

    def test_feature_without_option(self):
        with self.assertRaisesRegex(pc.CheckError, "no PACKAGECONFIG option"):
            pc.check_recipe_features(self.GOOD.replace('PACKAGECONFIG[tls] = ",,"\n', ""), self.CARGO)

    def test_missing_packageconfig(self):
        with self.assertRaisesRegex(pc.CheckError, "no PACKAGECONFIG"):
            pc.check_recipe_features("SUMMARY = \"x\"\n", self.CARGO)


if __name__ == "__main__":
    unittest.main()


class OpenwrtFeatures(unittest.TestCase):
    CARGO = CARGO + '\n[features]\ndefault = ["gzip"]\ngzip = []\nbzip2 = []\n'
    GOOD = ("define Package/berth/config\n  if PACKAGE_berth\n"
            "\tconfig BERTH_GZIP\n\t\tbool \"gzip\"\n\t\tdefault y\n"
            "\tconfig BERTH_BZIP2\n\t\tbool \"bzip2\"\n\t\tdefault n\n  endif\nendef\n"
            "RUST_PKG_FEATURES:=$(if $(CONFIG_BERTH_GZIP),gzip) $(if $(CONFIG_BERTH_BZIP2),bzip2)\n")

    def test_good(self):
        pc.check_openwrt_features(self.GOOD, self.CARGO)

    def test_default_on_that_cargo_has_off(self):
        with self.assertRaisesRegex(pc.CheckError, "on by default"):
            pc.check_openwrt_features(self.GOOD.replace("default n", "default y"), self.CARGO)

    def test_default_off_that_cargo_has_on(self):
        with self.assertRaisesRegex(pc.CheckError, "on by default"):
            pc.check_openwrt_features(self.GOOD.replace("\t\tdefault y\n", "\t\tdefault n\n"), self.CARGO)

    def test_feature_without_choice(self):
        with self.assertRaisesRegex(pc.CheckError, "no menuconfig choice"):
            pc.check_openwrt_features(self.GOOD.replace(" $(if $(CONFIG_BERTH_BZIP2),bzip2)", ""), self.CARGO)

    def test_choice_that_is_no_feature(self):
        with self.assertRaisesRegex(pc.CheckError, "not cargo features"):
            pc.check_openwrt_features(self.GOOD + "X:=$(if $(CONFIG_BERTH_LZ4),lz4)\n", self.CARGO)
