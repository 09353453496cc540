#!/usr/bin/env python3
"""Offline packaging checks (PACKAGING.md section 3), all read at run time from
the tree: crates.inc against Cargo.lock, LIC_FILES_CHKSUM against LICENSE,
lockfile v3 and rust-version, the OpenWrt PKG_VERSION/PKG_RELEASE, and
/etc/config/berth as UCI. Exit status 1 when any check fails."""
import glob
import hashlib
import os
import re
import shlex
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_crates_inc  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MSRV_MAX = (1, 75)

# apk's version grammar (apk-tools version.c): numbers separated by dots, an
# optional letter, optional _suffix[N] parts; no '-' and no leading 'v'.
APK_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*$")


class CheckError(Exception):
    """A packaging check failed; the message says what and how to fix it."""


def cargo_version(cargo_toml_text):
    """Return (version, rust_version) of the [package] table."""
    pkg = tomllib.loads(cargo_toml_text).get("package", {})
    return pkg.get("version"), pkg.get("rust-version")


def check_lockfile(lock_text, cargo_toml_text):
    """Cargo.lock is version 3 and rust-version is at most 1.75."""
    lock = tomllib.loads(lock_text)
    if lock.get("version") != 3:
        raise CheckError("Cargo.lock is version %r, not 3 (Cargo 1.75 cannot read newer); "
                         "rewrite it with `cargo +1.75.0 generate-lockfile`" % lock.get("version"))
    _, rv = cargo_version(cargo_toml_text)
    if rv is None:
        raise CheckError("Cargo.toml has no rust-version; set rust-version = \"1.75\"")
    parts = tuple(int(x) for x in rv.split("."))
    if parts[:2] > MSRV_MAX:
        raise CheckError("rust-version %s is newer than 1.75 (Yocto scarthgap)" % rv)


def lic_files_chksum(bb_text):
    """Return [(file, md5, beginline, endline)] from LIC_FILES_CHKSUM."""
    m = re.search(r'^LIC_FILES_CHKSUM\s*=\s*"([^"]*)"', bb_text, re.M)
    if not m:
        raise CheckError("recipe has no LIC_FILES_CHKSUM")
    out = []
    for uri in m.group(1).replace("\\\n", " ").split():
        if not uri.startswith("file://"):
            continue
        path, *params = uri[len("file://"):].split(";")
        kv = dict(p.split("=", 1) for p in params if "=" in p)
        out.append((path, kv.get("md5"), kv.get("beginline"), kv.get("endline")))
    if not out:
        raise CheckError("LIC_FILES_CHKSUM names no file://")
    return out


def check_license(bb_text, top=TOP):
    """Every LIC_FILES_CHKSUM md5 matches the file (or line range) it names."""
    for path, md5, begin, end in lic_files_chksum(bb_text):
        with open(os.path.join(top, path), "rb") as f:
            data = f.read()
        if begin or end:
            lines = data.splitlines(True)
            data = b"".join(lines[int(begin or 1) - 1:int(end) if end else None])
        got = hashlib.md5(data).hexdigest()
        if md5 != got:
            raise CheckError("LIC_FILES_CHKSUM md5 of %s is %s but the file has %s" % (path, md5, got))


def makefile_var(mk_text, name):
    """Value of a `NAME:=value` line in an OpenWrt Makefile."""
    m = re.search(r"^%s\s*:?=\s*(.*?)\s*$" % re.escape(name), mk_text, re.M)
    if not m:
        raise CheckError("Makefile does not set %s" % name)
    return m.group(1)


def check_openwrt_version(mk_text, cargo_toml_text):
    """PKG_VERSION is apk-valid and equals the crate version; PKG_RELEASE is an integer."""
    ver = makefile_var(mk_text, "PKG_VERSION")
    if not APK_VERSION.match(ver):
        raise CheckError("PKG_VERSION %r is not a valid apk version (digits and dots, no '-' or 'v')" % ver)
    rel = makefile_var(mk_text, "PKG_RELEASE")
    if not re.fullmatch(r"[0-9]+", rel):
        raise CheckError("PKG_RELEASE %r is not an integer" % rel)
    crate, _ = cargo_version(cargo_toml_text)
    if crate != ver:
        raise CheckError("PKG_VERSION %s differs from Cargo.toml version %s" % (ver, crate))


def parse_uci(text):
    """Parse UCI config text into [(type, name, {option: value or [list]})].

    Follows libuci's file syntax: `config TYPE [NAME]`, `option NAME VALUE`,
    `list NAME VALUE`, `#` comments, shell-like quoting."""
    sections = []
    for no, line in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            raise CheckError("line %d: %s" % (no, e)) from e
        if not words:
            continue
        kw = words[0]
        if kw == "package":
            continue
        if kw == "config":
            if len(words) not in (2, 3):
                raise CheckError("line %d: `config TYPE [NAME]` expected" % no)
            name = words[2] if len(words) == 3 else None
            if name is not None and not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise CheckError("line %d: invalid section name %r" % (no, name))
            sections.append((words[1], name, {}))
        elif kw in ("option", "list"):
            if not sections:
                raise CheckError("line %d: %s outside a section" % (no, kw))
            if len(words) != 3:
                raise CheckError("line %d: `%s NAME VALUE` expected" % (no, kw))
            if not re.fullmatch(r"[A-Za-z0-9_]+", words[1]):
                raise CheckError("line %d: invalid option name %r" % (no, words[1]))
            opts = sections[-1][2]
            if kw == "list":
                opts.setdefault(words[1], []).append(words[2])
            else:
                opts[words[1]] = words[2]
        else:
            raise CheckError("line %d: unknown keyword %r" % (no, kw))
    return sections


def check_uci_config(text):
    """berth.config has `config berth 'main'` with the options the init script reads."""
    sections = parse_uci(text)
    main = [s for s in sections if s[0] == "berth" and s[1] == "main"]
    if len(main) != 1:
        raise CheckError("expected exactly one `config berth 'main'` section")
    opts = main[0][2]
    for key in ("enabled", "manifest", "root", "log_size"):
        if key not in opts:
            raise CheckError("section main lacks option %s" % key)
    if opts["enabled"] not in ("0", "1"):
        raise CheckError("option enabled must be 0 or 1")
    root = opts["root"]
    if root.startswith(("/var/", "/tmp/")) or root in ("/var", "/tmp"):
        raise CheckError("option root %s is on tmpfs on OpenWrt; use persistent storage" % root)


def check_openwrt_defaults(config_text, uci_defaults_text, keep_text):
    """uci-defaults fills in the values berth.config ships, and the sysupgrade
    keep list holds the manifest directory and the default store root."""
    opts = [s for s in parse_uci(config_text) if s[1] == "main"][0][2]
    filled = dict(re.findall(r"^set_default (\S+) (\S+)$", uci_defaults_text, re.M))
    for key, value in opts.items():
        if filled.get(key) != value:
            raise CheckError("uci-defaults sets %s to %r, berth.config ships %r" % (key, filled.get(key), value))
    keep = {line.strip().rstrip("/") for line in keep_text.splitlines() if line.strip()}
    for path in ("/etc/berth", opts["root"].rstrip("/")):
        if path not in keep:
            raise CheckError("keep list lacks %s" % path)


def parse_unit(text):
    """{section: {key: [values]}} of a systemd unit file."""
    out, sec = {}, None
    for no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            sec = out.setdefault(line[1:-1], {})
        elif "=" in line and sec is not None:
            k, v = line.split("=", 1)
            sec.setdefault(k.strip(), []).append(v.strip())
        else:
            raise CheckError("line %d: not a section, key=value or comment" % no)
    return out


def check_systemd_unit(text):
    """The unit delegates its cgroup subtree and runs `berth apply`."""
    unit = parse_unit(text)
    svc = unit.get("Service")
    if svc is None:
        raise CheckError("no [Service] section")
    if svc.get("Delegate") != ["yes"]:
        raise CheckError("[Service] needs Delegate=yes (containers live below the unit's cgroup)")
    start = svc.get("ExecStart", [""])[-1].split()
    if start[:3] != ["/usr/bin/berth", "apply", "--serve"]:
        raise CheckError("ExecStart must run /usr/bin/berth apply --serve, not %r" % " ".join(start))
    if "multi-user.target" not in unit.get("Install", {}).get("WantedBy", []):
        raise CheckError("[Install] needs WantedBy=multi-user.target")


def check_recipe_features(bb_text, cargo_toml_text):
    """The recipe's PACKAGECONFIG defaults are the crate's default features,
    and each PACKAGECONFIG option is a cargo feature."""
    features = tomllib.loads(cargo_toml_text).get("features", {})
    m = re.search(r'^PACKAGECONFIG\s*\?\?=\s*"([^"]*)"', bb_text, re.M)
    if not m:
        raise CheckError('recipe has no PACKAGECONFIG ??= "..." for the cargo features')
    if sorted(m.group(1).split()) != sorted(features.get("default", [])):
        raise CheckError("PACKAGECONFIG defaults %s differ from Cargo.toml's default features %s; "
                         "make them the same" % (m.group(1).split(), features.get("default", [])))
    options = re.findall(r'^PACKAGECONFIG\[([^\]]+)\]', bb_text, re.M)
    unknown = [o for o in options if o not in features]
    if unknown:
        raise CheckError("PACKAGECONFIG options %s are not cargo features; "
                         "remove them or add them to Cargo.toml [features]" % unknown)
    missing = [f for f in features if f != "default" and f not in options]
    if missing:
        raise CheckError("cargo features %s have no PACKAGECONFIG option; add "
                         'PACKAGECONFIG[NAME] = ",," for each' % missing)


def check_openwrt_features(mk_text, cargo_toml_text):
    """Each menuconfig BERTH_* choice maps to a cargo feature, every cargo
    feature has one, and the choices that default to y are the crate's
    default features."""
    features = tomllib.loads(cargo_toml_text).get("features", {})
    sym_feature = dict(re.findall(r"\$\(if \$\(CONFIG_(BERTH_[A-Z0-9_]+)\),([a-z0-9_-]+)\)", mk_text))
    if not sym_feature:
        raise CheckError("RUST_PKG_FEATURES maps no CONFIG_BERTH_* symbol to a cargo feature")
    unknown = sorted(f for f in sym_feature.values() if f not in features)
    if unknown:
        raise CheckError("menuconfig maps to %s, which are not cargo features" % unknown)
    missing = sorted(f for f in features if f != "default" and f not in sym_feature.values())
    if missing:
        raise CheckError("cargo features %s have no menuconfig choice in RUST_PKG_FEATURES" % missing)
    on = set()
    for sym, body in re.findall(r"^\s*config (BERTH_[A-Z0-9_]+)\n((?:\s+(?!config )\S.*\n)*)", mk_text, re.M):
        default = re.search(r"^\s*default (\S+)", body, re.M)
        if sym not in sym_feature:
            continue
        if default is None:
            raise CheckError("menuconfig %s has no default" % sym)
        if default.group(1) == "y":
            on.add(sym_feature[sym])
    if sorted(on) != sorted(features.get("default", [])):
        raise CheckError("menuconfig choices on by default give %s, Cargo.toml's default features are %s; "
                         "make them the same" % (sorted(on), sorted(features.get("default", []))))


def read(*parts):
    with open(os.path.join(TOP, *parts), encoding="utf-8") as f:
        return f.read()


def main():
    cargo = read("Cargo.toml")
    bbs = sorted(glob.glob(os.path.join(TOP, "yocto-layer/recipes-core/berth/berth_*.bb")))
    checks = [
        ("crates.inc matches Cargo.lock", check_crates_inc),
        ("Cargo.lock v3, rust-version <= 1.75", lambda: check_lockfile(read("Cargo.lock"), cargo)),
        ("one berth recipe, named after the crate version", lambda: check_recipe_name(bbs, cargo)),
        ("LIC_FILES_CHKSUM matches LICENSE", lambda: [check_license(open(b).read()) for b in bbs]),
        ("recipe PACKAGECONFIG matches the cargo features",
         lambda: [check_recipe_features(open(b).read(), cargo) for b in bbs]),
        ("OpenWrt menuconfig defaults match the cargo features",
         lambda: check_openwrt_features(read("openwrt-package/berth/Makefile"), cargo)),
        ("OpenWrt PKG_VERSION/PKG_RELEASE",
         lambda: check_openwrt_version(read("openwrt-package/berth/Makefile"), cargo)),
        ("berth.service delegates and runs berth apply", lambda: check_systemd_unit(read("dist/berth.service"))),
        ("uci-defaults and keep list agree with berth.config", lambda: check_openwrt_defaults(
            read("openwrt-package/berth/files/berth.config"),
            read("openwrt-package/berth/files/berth.uci-defaults"),
            read("openwrt-package/berth/files/berth.keep"))),
        ("berth.config parses as UCI", lambda: check_uci_config(read("openwrt-package/berth/files/berth.config"))),
    ]
    failed = 0
    for name, fn in checks:
        try:
            fn()
            print("ok   %s" % name)
        except (CheckError, OSError, ValueError) as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
    print("%d passed, %d failed" % (len(checks) - failed, failed))
    return 1 if failed else 0


def check_crates_inc():
    """berth-crates.inc is what Cargo.lock generates today."""
    if gen_crates_inc.main(["--check"]) != 0:
        raise CheckError("berth-crates.inc is stale; run `make crates-inc`")


def check_recipe_name(bbs, cargo_toml_text):
    """Exactly one berth_<version>.bb, and its version is the crate's."""
    if len(bbs) != 1:
        raise CheckError("expected one berth_<version>.bb, found %d" % len(bbs))
    ver, _ = cargo_version(cargo_toml_text)
    if os.path.basename(bbs[0]) != "berth_%s.bb" % ver:
        raise CheckError("%s does not match crate version %s; rename it" % (os.path.basename(bbs[0]), ver))


if __name__ == "__main__":
    sys.exit(main())
