#!/usr/bin/env python3
"""`make test-registry`: berth pulls from real registries on loopback
(see harness.py). Usage: run.py BERTH. Exit 1 on any failure."""

import json, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: F401,F403
import harness as h


def layout(name):
    return h.Layout(f"{h.TMP}/{name}")


def main():
    port = h.registry("open")
    reg = f"127.0.0.1:{port}"

    # 1. A single-arch image, two layers.
    L = layout("single")
    l1 = h.layer_tar([("etc", None), ("etc/hello", b"hello\n")])
    l2 = h.layer_tar([("etc/second", b"2\n")])
    L.index([L.image([l1, l2])], "1")
    h.skopeo(f"oci:{L.path}:1", f"docker://{reg}/single:1")
    root = f"{h.TMP}/store"
    rc, out, err = h.berth(root, "image", "pull", "--plain-http", f"{reg}/single:1", "--name", "single")
    check(rc == 0, f"single-arch pull: {err.strip()}")
    if rc == 0:
        rootfs = out.split()[1]
        check(open(f"{rootfs}/etc/hello").read() == "hello\n" and os.path.exists(f"{rootfs}/etc/second"),
              "both layers applied in order")
        meta = json.load(open(os.path.join(os.path.dirname(rootfs), "image.json")))
        check(meta["config"].get("cmd") == ["/bin/sh"] and meta["registry"]["platform"] == "linux/amd64",
              "config defaults and platform recorded")
        refs = json.load(open(f"{root}/images/refs.json"))
        check(refs.get(f"{reg}/single:1") == out.split()[0], "tag -> digest recorded")
    rc, _, err = h.berth(root, "image", "pull", f"{reg}/single:1")
    check(rc != 0 and "https://" in err, f"https is the default: {err.strip()}")

    # 2. A multi-arch index: amd64, arm64, arm/v7, mips (marker files).
    M = layout("multi")
    ents = [M.image([h.layer_tar([(f"marker-{a}{v or ''}", a.encode())])], a, v)
            for a, v in [("amd64", None), ("arm64", None), ("arm", "v7"), ("mips", None)]]
    M.index(ents, "2")
    h.skopeo(f"oci:{M.path}:2", f"docker://{reg}/multi:2", "--all")
    for plat, marker in [("linux/arm/v7", "marker-armv7"), ("linux/arm/v8", "marker-armv7"),
                         ("linux/arm64", "marker-arm64"), ("linux/mips", "marker-mips"),
                         ("linux/amd64", "marker-amd64")]:
        r = f"{h.TMP}/store-{plat.replace('/', '-')}"
        rc, out, err = h.berth(r, "image", "pull", "--plain-http", f"{reg}/multi:2", "--platform", plat)
        ok = rc == 0 and os.path.exists(f"{out.split()[1]}/{marker}")
        check(ok, f"index: {plat} picks {marker} {err.strip()}")
    rc, out, err = h.berth(root, "image", "pull", "--plain-http", f"{reg}/multi:2")
    check(rc == 0 and os.path.exists(f"{out.split()[1]}/marker-amd64"), "index: the device's own platform by default")
    r = f"{h.TMP}/store-v6"
    rc, _, err = h.berth(r, "image", "pull", "--plain-http", f"{reg}/multi:2", "--platform", "linux/arm/v6")
    check(rc != 0 and "linux/arm/v7" in err and "linux/mips" in err and "--platform" in err,
          f"no platform fits: the index's platforms listed: {err.strip()}")
    check(h.clean_store(r) == [], "nothing half made after a refused platform")

    # 3. Whiteouts: a file and an opaque directory.
    W = layout("wh")
    w1 = h.layer_tar([("a", b"a"), ("d", None), ("d/x", b"x"), ("keep", b"k")])
    w2 = h.layer_tar([(".wh.a", b""), ("d/.wh..wh..opq", b""), ("d/y", b"y")])
    W.index([W.image([w1, w2])], "3")
    h.skopeo(f"oci:{W.path}:3", f"docker://{reg}/wh:3")
    rc, out, err = h.berth(root, "image", "pull", "--plain-http", f"{reg}/wh:3")
    if check(rc == 0, f"whiteout image pulled {err.strip()}") or rc == 0:
        fs = out.split()[1]
        check(not os.path.exists(f"{fs}/a") and not os.path.exists(f"{fs}/d/x") and os.path.exists(f"{fs}/d/y")
              and os.path.exists(f"{fs}/keep") and not os.path.exists(f"{fs}/.wh.a"), "both whiteout kinds applied")

    # 4. htpasswd (Basic) auth.
    pw = subprocess.run(["htpasswd", "-Bbn", "berth", "s3cret"], capture_output=True, text=True, check=True).stdout
    open(f"{h.TMP}/htpasswd", "w").write(pw)
    bport = h.registry("basic", f"auth: {{htpasswd: {{realm: berth, path: {h.TMP}/htpasswd}}}}\n")
    h.skopeo(f"oci:{L.path}:1", f"docker://127.0.0.1:{bport}/single:1", "--dest-creds", "berth:s3cret")
    r = f"{h.TMP}/store-basic"
    rc, _, err = h.berth(r, "image", "pull", "--plain-http", f"127.0.0.1:{bport}/single:1")
    check(rc != 0 and "USER:PASSWORD" in err, f"basic auth without credentials: {err.strip()}")
    open(f"{h.TMP}/creds", "w").write("berth:wrong\n")
    rc, _, err = h.berth(r, "image", "pull", "--plain-http", "--auth", f"{h.TMP}/creds", f"127.0.0.1:{bport}/single:1")
    check(rc != 0 and "access denied" in err, f"basic auth, wrong password: {err.strip()}")
    open(f"{h.TMP}/creds", "w").write("berth:s3cret\n")
    rc, _, err = h.berth(r, "image", "pull", "--plain-http", "--auth", f"{h.TMP}/creds", f"127.0.0.1:{bport}/single:1")
    check(rc == 0, f"basic auth with the credentials file {err.strip()}")

    # 5. Bearer tokens from an issuer the registry trusts.
    tport, pem, seen = h.token_issuer()
    auth = (f"auth: {{token: {{realm: 'http://127.0.0.1:{tport}/token', service: berth-reg, "
            f"issuer: berth-test-issuer, rootcertbundle: {pem}}}}}\n")
    kport = h.registry("token", auth)
    h.skopeo(f"oci:{L.path}:1", f"docker://127.0.0.1:{kport}/single:1", "--dest-creds", "u:p")
    r = f"{h.TMP}/store-token"
    before = len(seen)
    rc, out, err = h.berth(r, "image", "pull", "--plain-http", f"127.0.0.1:{kport}/single:1")
    check(rc == 0, f"bearer token flow (anonymous) {err.strip()}")
    check(len(seen) - before == 1, f"one token for the whole pull (cached): {len(seen) - before}")

    # 6. Resume: a proxy cutting every 300 KiB; a 6 MiB incompressible layer.
    big = h.layer_tar([("big", os.urandom(6 << 20))])
    B = layout("big")
    B.index([B.image([big])], "4")
    h.skopeo(f"oci:{B.path}:4", f"docker://{reg}/big:4")
    px = h.Proxy(port, 300 << 10)
    r = f"{h.TMP}/store-resume"
    rc, out, err = h.berth(r, "image", "pull", "--plain-http", f"127.0.0.1:{px.port}/big:4", timeout=300)
    check(rc == 0, f"pull through a proxy cutting every 300 KiB {err.strip()[-300:]}")
    check(px.sent <= 1.2 * len(big), f"bytes sent {px.sent} <= 1.2 x blob {len(big)}")

    # kill -9 in the middle, then the next pull resumes from the .partial.
    slow = h.Proxy(port, 0, rate=2 << 20)
    r = f"{h.TMP}/store-kill"
    p = subprocess.Popen([h.BERTH, "--root", r, "image", "pull", "--plain-http", f"127.0.0.1:{slow.port}/big:4"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = None
    for _ in range(100):
        time.sleep(0.05)
        d = f"{r}/images/.blobs"
        parts = [n for n in os.listdir(d) if n.endswith(".partial")] if os.path.isdir(d) else []
        if parts and os.path.getsize(f"{d}/{parts[0]}") > (1 << 20):
            partial = f"{d}/{parts[0]}"
            break
    p.kill()
    p.wait()
    have = os.path.getsize(partial) if partial else 0
    check(partial is not None and 0 < have < len(big), f"kill -9 leaves a .partial of {have} bytes")
    check([n for n in h.clean_store(r) if not n.startswith(".tmp-")] == [], "kill -9 leaves no image")
    fast = h.Proxy(port, 0)
    rc, out, err = h.berth(r, "image", "pull", "--plain-http", f"127.0.0.1:{fast.port}/big:4")
    check(rc == 0 and fast.sent < len(big) - have + (256 << 10),
          f"after kill -9 the pull resumes: {fast.sent} bytes for the remaining {len(big) - have}")

    # A registry that ignores Range: the blob starts over cleanly.
    norange(big)

    # 7. plan shows the digest a tag was pulled as.
    m = f"{h.TMP}/m.yaml"
    open(m, "w").write(f"version: 1\nimages:\n  web: {{ ref: '{reg}/single:1', plain_http: true }}\n"
                       "containers:\n  c: { image: web, command: [/bin/sh] }\n")
    r = f"{h.TMP}/store-plan"
    rc, out, err = h.berth(r, "plan", m)
    check(rc == 0 and "fetch image web\n" in out, f"plan before the tag is resolved: {out.strip()} {err.strip()}")
    rc, out, _ = h.berth(r, "image", "pull", "--plain-http", f"{reg}/single:1", "--name", "web")
    digest = out.split()[0] if rc == 0 else "?"
    rc, _, _ = h.berth(r, "image", "rm", digest)
    rc, out, err = h.berth(r, "plan", m)
    check(rc == 0 and f"fetch image web (sha256 {digest[:12]})" in out, f"plan shows the recorded digest: {out.strip()} {err.strip()}")

    # 8. Hostile registry answers: each a clear error, nothing half made.
    hostile()
    # 9. gc reports what it freed.
    rc, out, err = h.berth(root, "image", "gc")
    check(rc == 0 and "freed" in out and "removed" in out, f"gc reports: {out.strip().splitlines()[-1:]}")
    check(h.clean_store(root) == [], "gc leaves an empty store")
    # 10. apply runs a container from a registry image and waits for its check.
    if os.geteuid() == 0:
        apply_from_registry(reg)


def apply_from_registry(reg):
    rootfs = os.environ.get("BERTH_TEST_ROOTFS", "build/busybox-rootfs.tar.gz")
    B = layout("busybox")
    B.index([B.image([open(rootfs, "rb").read()])], "1")
    h.skopeo(f"oci:{B.path}:1", f"docker://{reg}/busybox:1")
    root, run = f"{h.TMP}/store-apply", f"{h.TMP}/run-apply"
    parent = f"berth-regtest-{os.getpid()}"
    man = f"{h.TMP}/apply.yaml"
    head = f"version: 1\nsettings: {{ root: {root}, runtime_dir: {run} }}\n"
    with open(man, "w") as f:
        f.write(head + f"""images:
  bb: {{ ref: "{reg}/busybox:1", plain_http: true }}
containers:
  web:
    image: bb
    command: [httpd, -f, -p, "8080", -h, /etc]
    health: {{ http: {{ port: 8080, path: /passwd }}, interval: 1s }}
""")
    args = ["--cgroup-parent", parent, "--runtime-dir", run]
    try:
        rc, out, err = h.berth(root, *args, "apply", "--wait", man)
        check(rc == 0 and "> start web" in out, f"apply --wait from a registry image: {err.strip()}")
        rc, out, _ = h.berth(root, *args, "status", "--json")
        web = json.loads(out)["containers"][0] if rc == 0 else {}
        check(web.get("health", {}).get("status") == "healthy", f"the container runs the pulled image: {web}")
        rc, out, _ = h.berth(root, *args, "plan", man)
        check(rc == 0 and "no changes" in out, f"a second plan changes nothing: {out.strip()}")
    finally:
        with open(man, "w") as f:
            f.write(head)
        h.berth(root, *args, "apply", man)
        for d in [f"/sys/fs/cgroup/{c}/{parent}" for c in os.listdir("/sys/fs/cgroup")] + [f"/sys/fs/cgroup/{parent}"]:
            if os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def norange(big):
    cfg = b'{"architecture":"amd64","os":"linux"}'
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": "sha256:" + h.sha(cfg), "size": len(cfg)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": "sha256:" + h.sha(big), "size": len(big)}]}).encode()
    routes = {"/v2/n/manifests/1": (200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, m),
              f"/v2/n/blobs/sha256:{h.sha(cfg)}": (200, {}, cfg),
              f"/v2/n/blobs/sha256:{h.sha(big)}": (200, {}, big)}
    port = h.fake_registry(routes)
    # The manifest and config connections pass; the blob's first one is cut.
    px = h.Proxy(port, 1 << 20, cuts=3)
    r = f"{h.TMP}/store-norange"
    rc, out, err = h.berth(r, "image", "pull", "--plain-http", f"127.0.0.1:{px.port}/n:1")
    check(rc == 0, f"a registry that ignores Range: the blob restarts cleanly {err.strip()}")


def hostile():
    cfg = b'{"architecture":"amd64","os":"linux"}'
    good_layer = h.layer_tar([("f", b"1")])
    not_tar = b"this is not a tar archive at all, " * 40

    def manifest(layer, media="application/vnd.oci.image.layer.v1.tar+gzip"):
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + h.sha(cfg), "size": len(cfg)},
                           "layers": [{"mediaType": media, "digest": "sha256:" + h.sha(layer), "size": len(layer)}]}).encode()

    ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    m_good = manifest(good_layer)
    # An index cannot really name itself (its digest would be a fixed point
    # of sha256); a hostile server can only answer the child's digest with
    # the index again, which the digest check refuses.
    loop = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                      "digest": "sha256:" + "2" * 64, "size": 10,
                                      "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    routes = {}
    for path, blob in [("cfg", cfg), ("good", good_layer), ("nottar", not_tar)]:
        routes[f"/v2/x/blobs/sha256:{h.sha(blob)}"] = (200, {}, blob)
    routes["/v2/x/manifests/sha256:" + "1" * 64] = (200, ct, m_good)
    routes["/v2/x/manifests/huge"] = (200, ct, b" " * (5 << 20))
    routes["/v2/x/manifests/unknown"] = (200, {"Content-Type": "application/x-evil"},
                                         b'{"schemaVersion":2,"mediaType":"application/x-evil"}')
    routes["/v2/x/manifests/nottar"] = (200, ct, manifest(not_tar))
    routes["/v2/x/manifests/loop"] = (200, {}, loop)
    routes["/v2/x/manifests/sha256:" + "2" * 64] = (200, {}, loop)
    routes["/v2/y/manifests/1"] = (401, {"WWW-Authenticate": 'Bearer realm="ftp://127.0.0.1/token",service="s"'}, b"{}")
    port = h.fake_registry(routes)
    cases = [
        (f"x@sha256:{'1' * 64}", "sha256 mismatch"),
        ("x:huge", "larger than"),
        ("x:unknown", "unknown media type"),
        ("x:nottar", "unknown compression"),
        ("x:loop", "sha256 mismatch"),
        ("y:1", "refused token realm"),
    ]
    for ref, want in cases:
        r = f"{h.TMP}/store-bad-{ref.split(':')[-1][:8]}"
        rc, _, err = h.berth(r, "image", "pull", "--plain-http", f"127.0.0.1:{port}/{ref}")
        check(rc != 0 and want in err and "image `" in err, f"hostile {ref}: {err.strip()}")
        check(h.clean_store(r) == [], f"hostile {ref}: no image left half made")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
    if FAILS:
        print(f"test-registry: {len(FAILS)} failure(s)", file=sys.stderr)
        sys.exit(1)
    print("test-registry: all passed")
