#!/usr/bin/env python3
"""Run do_install:append of yocto-layer/recipes-core/berth/berth_*.bb as
bitbake would (after expanding ${VAR} references) against a fake ${D}:
BERTH_TRUSTED_KEYS puts each key into /etc/berth/keys/ with mode 0644,
and a missing or misnamed key fails the build instead of shipping a device
that trusts nothing."""
import glob
import os
import re
import stat
import subprocess
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = glob.glob(os.path.join(TOP, "yocto-layer", "recipes-core", "berth", "berth_*.bb"))[0]


def function(text, name):
    m = re.search(r"^%s\(\) \{\n(.*?)^\}$" % re.escape(name), text, re.M | re.S)
    assert m, "no %s() in the recipe" % name
    return m.group(1)


class FakeData:
    """The d.getVar of an inline python expression."""

    def __init__(self, env):
        self.env = env

    def getVar(self, name):  # noqa: N802 (bitbake's name)
        return self.env.get(name)


def expand(body, env):
    def inline(m):
        expr = m.group(1)
        if expr.startswith("bb.utils.contains("):
            return "false"  # no systemd, no sysvinit: only the keys matter here
        return str(eval(expr, {"d": FakeData(env)}))  # the recipe's own expressions

    body = re.sub(r"\$\{@(.*?)\}(?=[\s;\"/]|$)", inline, body, flags=re.M)
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: env.get(m.group(1), m.group(0)), body)


class TrustedKeys(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        t = self.tmp.name
        self.d = os.path.join(t, "image")
        self.work = os.path.join(t, "work")
        os.makedirs(self.work)
        with open(RECIPE, encoding="utf-8") as f:
            self.text = f.read()
        srcdir = re.search(r'^BERTH_KEYS_SRCDIR = "(.*)"$', self.text, re.M).group(1)
        self.env = {"D": self.d, "sysconfdir": "/etc", "datadir": "/usr/share",
                    "S": t, "systemd_system_unitdir": "/lib/systemd/system", "WORKDIR": self.work}
        self.env["BERTH_KEYS_SRCDIR"] = expand(srcdir, self.env)

    def tearDown(self):
        self.tmp.cleanup()

    def key(self, name, where=None):
        path = os.path.join(where or self.work, name)
        with open(path, "w") as f:
            f.write("untrusted comment: minisign public key\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n")
        os.chmod(path, 0o600)
        return path

    def install(self, keys):
        self.env["BERTH_TRUSTED_KEYS"] = keys
        script = 'set -e\nbbfatal() { echo "$*" >&2; exit 1; }\n' + expand(function(self.text, "do_install:append"), self.env)
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True)

    def test_default_is_no_keys(self):
        self.assertRegex(self.text, r'(?m)^BERTH_TRUSTED_KEYS \?\?= ""$')
        r = self.install("")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.d, "etc/berth")))
        self.assertFalse(os.path.exists(os.path.join(self.d, "etc/berth/keys")))

    def test_keys_from_src_uri_and_absolute_paths_are_installed_0644(self):
        self.key("fleet.pub")
        other = tempfile.mkdtemp(dir=self.tmp.name)
        self.key("backup.pub", other)
        r = self.install("fleet.pub %s/backup.pub" % other)
        self.assertEqual(r.returncode, 0, r.stderr)
        keys = os.path.join(self.d, "etc/berth/keys")
        self.assertEqual(sorted(os.listdir(keys)), ["backup.pub", "fleet.pub"])
        for name in os.listdir(keys):
            mode = stat.S_IMODE(os.stat(os.path.join(keys, name)).st_mode)
            self.assertEqual(mode, 0o644, name)

    def test_unpackdir_wins_over_workdir(self):
        self.assertEqual(self.env["BERTH_KEYS_SRCDIR"], self.work, "scarthgap: WORKDIR")
        srcdir = re.search(r'^BERTH_KEYS_SRCDIR = "(.*)"$', self.text, re.M).group(1)
        self.assertEqual(expand(srcdir, dict(self.env, UNPACKDIR="/u")), "/u")

    def test_a_missing_or_misnamed_key_fails_the_build(self):
        r = self.install("absent.pub")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no key file %s/absent.pub" % self.work, r.stderr)
        self.key("fleet.key")
        r = self.install("fleet.key")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("berth reads only *.pub key files", r.stderr)


if __name__ == "__main__":
    unittest.main()
