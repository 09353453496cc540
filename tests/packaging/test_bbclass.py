#!/usr/bin/env python3
"""Run the shell functions of yocto-layer/classes/berth_bundle.bbclass as
bitbake would (after expanding ${VAR} references) against a fake image root,
deploy dir and host berth: what lands in the image, the digest tokens, the
`berth install --target-root` call, and the failures."""
import bz2
import gzip
import hashlib
import os
import re
import subprocess
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASS = os.path.join(TOP, "yocto-layer", "classes", "berth_bundle.bbclass")


def shell_functions(text):
    """{name: body} of the `name() {` ... `}` shell functions of a bbclass."""
    out = {}
    for m in re.finditer(r"^([a-z_]+)\(\) \{\n(.*?)^\}$", text, re.M | re.S):
        out[m.group(1)] = m.group(2)
    return out


def defaults(text):
    """The `VAR ?= "value"` defaults of the class."""
    return dict(re.findall(r'^([A-Z_]+) \?= "([^"]*)"$', text, re.M))


def expand(body, env):
    # bitbake replaces ${NAME} for known names and leaves shell expansions alone
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: env.get(m.group(1), m.group(0)), body)


class BerthBundle(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        t = self.tmp.name
        self.rootfs = os.path.join(t, "rootfs")
        self.deploy = os.path.join(t, "deploy")
        self.work = os.path.join(t, "work")
        self.bin = os.path.join(t, "bin")
        for d in (self.rootfs, self.deploy, self.work, self.bin):
            os.makedirs(d)
        with open(os.path.join(self.bin, "berth"), "w") as f:
            f.write('#!/bin/sh\necho "$*" >> "%s/berth-calls"\nexit "${FAKE_RC:-0}"\n' % t)
        os.chmod(os.path.join(self.bin, "berth"), 0o755)
        with open(CLASS, encoding="utf-8") as f:
            self.text = f.read()

    def tearDown(self):
        self.tmp.cleanup()

    def tarball(self, path, content):
        with open(path, "wb") as f:
            f.write(content)
        return hashlib.sha256(content).hexdigest()

    def run_class(self, manifest_text, **vars_):
        manifest = os.path.join(self.tmp.name, "manifest.yaml")
        with open(manifest, "w") as f:
            f.write(manifest_text)
        env = defaults(self.text)
        env.update(datadir="/usr/share", sysconfdir="/etc", IMAGE_ROOTFS=self.rootfs,
                   DEPLOY_DIR_IMAGE=self.deploy, MACHINE="qemuarm64", WORKDIR=self.work,
                   BERTH_MANIFEST=manifest)
        env["BERTH_IMAGES_DIR"] = expand(env["BERTH_IMAGES_DIR"], env)
        env.update(vars_)
        funcs = shell_functions(self.text)
        script = 'set -e\nbbfatal() { echo "$*" >&2; exit 1; }\n'
        for name in ("berth_bundle_stage", "berth_bundle_rootfs"):
            script += "%s() {\n%s}\n" % (name, expand(funcs[name], env))
        script += "berth_bundle_rootfs\n"
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                              env=dict(os.environ, PATH=self.bin + ":" + os.environ["PATH"]))

    def read(self, *parts):
        with open(os.path.join(*parts), encoding="utf-8") as f:
            return f.read()

    def test_stages_containers_files_and_manifest(self):
        # what IMAGE_FSTYPES = "container" deploys: staged recompressed as gzip
        with open(os.path.join(self.deploy, "berth-container-busybox-qemuarm64.rootfs.tar.bz2"), "wb") as f:
            f.write(bz2.compress(b"bb"))
        extra = os.path.join(self.tmp.name, "dns-masq.tar.gz")
        s2 = self.tarball(extra, b"dns")
        r = self.run_class("a: @BERTH_SHA256_berth_container_busybox@\nb: @BERTH_SHA256_dns_masq@\n",
                           BERTH_CONTAINERS="berth-container-busybox", BERTH_CONTAINER_FILES=extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        images = os.path.join(self.rootfs, "usr/share/berth/images")
        self.assertEqual(sorted(os.listdir(images)), ["berth-container-busybox.tar.gz", "dns-masq.tar.gz"])
        with open(os.path.join(images, "berth-container-busybox.tar.gz"), "rb") as f:
            staged = f.read()
        self.assertEqual(gzip.decompress(staged), b"bb")
        s1 = hashlib.sha256(staged).hexdigest()
        self.assertEqual(self.read(self.rootfs, "etc/berth/manifest.yaml"), "a: %s\nb: %s\n" % (s1, s2))
        manifest = os.path.join(self.rootfs, "etc/berth/manifest.yaml")
        self.assertEqual(self.read(self.tmp.name, "berth-calls"),
                         "install --target-root %s %s\n" % (self.rootfs, manifest))

    def test_no_preinstall_does_not_call_berth(self):
        self.tarball(os.path.join(self.deploy, "c-qemuarm64.rootfs.tar.bz2"), b"c")
        r = self.run_class("x: @BERTH_SHA256_c@\n", BERTH_CONTAINERS="c", BERTH_PREINSTALL="0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "berth-calls")))

    def test_missing_container_tarball_fails(self):
        r = self.run_class("x: 1\n", BERTH_CONTAINERS="absent")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("absent-qemuarm64.rootfs.tar.bz2 not found", r.stderr)

    def test_token_without_tarball_fails(self):
        r = self.run_class("x: @BERTH_SHA256_nosuch@\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("token", r.stderr)

    def test_failed_install_fails_the_build(self):
        os.environ["FAKE_RC"] = "1"
        try:
            r = self.run_class("x: 1\n")
        finally:
            del os.environ["FAKE_RC"]
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("install --target-root failed", r.stderr)

    def test_depends_name_each_container(self):
        # the do_rootfs dependency expression covers every listed container
        m = re.search(r'^do_rootfs\[depends\] \+= "\$\{@(.*)\}"$', self.text, re.M)
        self.assertIsNotNone(m)

        class D:
            def getVar(self, name):
                return {"BERTH_CONTAINERS": "a b"}.get(name)
        self.assertEqual(eval(m.group(1), {"d": D()}), "a:do_image_complete b:do_image_complete")


if __name__ == "__main__":
    unittest.main()
