#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/TARGET/):
small valid inputs that show each parser its format. Run it again after
changing it; the fuzzers' own finds stay in build/fuzz/, not here, except
the inputs of fixed crashes (`regress-*`), which are kept as they are."""

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def tar_of(files):
    """files: list of (name, bytes or None for a dir, or ('sym', target))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            elif isinstance(data, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = data[1]
                t.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def main():
    for target in os.listdir(CORPUS) if os.path.isdir(CORPUS) else []:
        for f in os.listdir(os.path.join(CORPUS, target)):
            if not f.startswith("regress-"):
                os.remove(os.path.join(CORPUS, target, f))
    # Manifests and YAML: the examples, and a few shapes the front end must bound.
    for f in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        if f.endswith(".yaml"):
            text = open(os.path.join(ROOT, "examples", f)).read()
            put("manifest", f, text)
            put("yaml", f, text)
    put("yaml", "aliases.yaml", "a: &a [x, y]\nb: *a\nc: { <<: *a }\n")
    put("yaml", "tags.yaml", "a: !!str 1\nb: !custom x\n")
    put("manifest", "template.yaml",
        "version: 1\nvars: { n: 3 }\ncontainers:\n{% for i in range(n) %}  c{{ i }}: { image: bb }\n{% endfor %}")

    # rtnetlink: an ack, an error with ext-ack text, a done, a link reply.
    hdr = lambda length, kind, flags, seq: struct.pack("=IHHII", length, kind, flags, seq, 1)
    ack = hdr(36, 2, 0, 7) + struct.pack("=i", 0) + hdr(16, 16, 5, 7)
    put("netlink_reply", "ack", b"\x07" + ack[1:])
    text = b"mtu greater than device maximum\x00"
    attr = struct.pack("=HH", 4 + len(text), 1) + text + b"\x00" * ((4 - len(text) % 4) % 4)
    err = hdr(36 + len(attr), 2, 0x200, 7) + struct.pack("=i", -22) + hdr(16, 16, 5, 7) + attr
    put("netlink_reply", "error-extack", err)
    put("netlink_reply", "done", hdr(20, 3, 2, 7) + struct.pack("=i", 0))
    name = b"eth0\x00"
    ifname = struct.pack("=HH", 4 + len(name), 3) + name + b"\x00" * 3
    ifinfo = struct.pack("=BBHiII", 0, 0, 1, 2, 0x1043, 0) + ifname
    put("netlink_reply", "newlink", hdr(16 + len(ifinfo), 16, 2, 7) + ifinfo)

    # HTTP: a sized, a chunked and a redirect answer, as a fleet origin sends them.
    put("registry", "oci-manifest", "\x01" + '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:' + "a" * 64 + '","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:' + "b" * 64 + '","size":3}]}')
    put("registry", "index", "\x00" + '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:' + "c" * 64 + '","size":9,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}')
    put("registry", "token", "\x04" + '{"token":"abc.def.ghi","expires_in":300}')
    put("registry", "challenge", "\x04" + 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
    # MQTT: CONNACK, SUBACK, a QoS 1 doorbell, PINGRESP, a retained status.
    put("mqtt", "session", b"\x20\x02\x00\x00" + b"\x90\x04\x00\x01\x01\x01"
        + b"\x32\x18\x00\x0dberth/all/cmd\x00\x07apply 3" + b"\xd0\x00")
    put("mqtt", "status", b"\x31\x20\x00\x0fberth/d1/status{\"device\":\"d1\"}")
    put("registry", "reference", "\x04" + "ghcr.io/org/web:1.4@sha256:" + "d" * 64)
    put("http_response", "sized", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/yaml\r\n\r\nversion: 1\n")
    put("http_response", "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: z\r\n\r\n")
    put("http_response", "redirect", "HTTP/1.1 301 Moved\r\nLocation: ../x/./y?q#f\r\nContent-Length: 0\r\n\r\n")
    put("http_response", "http10-close", "HTTP/1.0 200 OK\r\nServer: s\r\n\r\nbody until close")

    # xz: a small stream made by Python's lzma (CRC64 and CRC32 checks).
    put("xz", "crc64.xz", lzma.compress(b"hello berth\n" * 20, format=lzma.FORMAT_XZ))
    put("xz", "crc32.xz", lzma.compress(b"x" * 300, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32))

    # Images: a plain, a gzip, an xz and a zstd rootfs tar, a docker save, an OCI layout.
    rootfs = tar_of([("etc/", None), ("etc/hostname", b"box\n"), ("bin/", None),
                     ("bin/sh", b"#!\n"), ("lib", ("sym", "usr/lib"))])
    put("image", "rootfs.tar", rootfs)
    put("image", "rootfs.tar.gz", gzip.compress(rootfs, mtime=0))
    put("image", "rootfs.tar.xz", lzma.compress(rootfs, format=lzma.FORMAT_XZ))
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-q", "-c"], input=rootfs, capture_output=True, check=True)
        put("image", "rootfs.tar.zst", z.stdout)
    layer = tar_of([("etc/", None), ("etc/os-release", b"ID=fuzz\n")])
    config = json.dumps({"config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers"}}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "Layers": ["l1/layer.tar"]}]).encode()
    put("image", "docker-save.tar", tar_of([("manifest.json", manifest), (cfg_name, config),
                                            ("l1/", None), ("l1/layer.tar", layer)]))
    oci_manifest = json.dumps({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(oci_manifest), "size": len(oci_manifest)}]}).encode()
    blob = lambda b: "blobs/sha256/" + hashlib.sha256(b).hexdigest()
    put("image", "oci-layout.tar", tar_of([
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
        ("blobs/", None), ("blobs/sha256/", None),
        (blob(oci_manifest), oci_manifest), (blob(config), config), (blob(layer), layer)]))
    # Signatures: minisign 0.11's prehashed and legacy files and a berth one
    # (version and expiry), each after its public key's line; key files alone.
    ms_pub = 'untrusted comment: minisign public key 1EF0068D5E0647C3\nRWTDRwZejQbwHsPeUp0OWmf/uXBzYyE+vhOY49X5BV5cNrAlfm6MDa9i\n'
    berth_pub = 'untrusted comment: minisign public key E7A3FDA6D1CECFD6\nRWTWz87Rpv2j52+OetQSgjSBVJr7U5mBvTDM3FWzkzrs+Oq6RC49IGwE\n'
    put("signature", "minisign-ED", ms_pub.split("\n")[1] + "\n" + 'untrusted comment: signature from minisign secret key\nRUTDRwZejQbwHtfJyNUle2e1HWrXSWULmQQgxaOP4iqFYbw8mQhL/Ja1mPKujVhEiIKkSHbNkClCsy4g/51PynhT3uRyLdNsXQ4=\ntrusted comment: timestamp:1700000000\tfile:fx.txt\thashed\n71J3V6ssFgceXa8sjtsu2458xsOG7PDRthXCr+exgkrkhAFtsjMaNCRX69imtp9cRYF091OpEBTXnyAJ6UO7Bg==\n')
    put("signature", "minisign-Ed-legacy", ms_pub.split("\n")[1] + "\n" + 'untrusted comment: signature from minisign secret key\nRWTDRwZejQbwHnVnRYKSPwGLRPe5BzUPX1tRs9Q37+fmOI/biMeoJ900i2EGywY835+fKNMjGKcCIHHZnRZ9oF/DsAQ0pXIgwgM=\ntrusted comment: timestamp:1796170069\tfile:fx.txt\nrb0CKN3W06zSyisMJLtlc5EDw8S7LVnIimfzTvEGnURb/fqKEJB5/Ssc4aNWs38QGFlBQrR6tzYf/+8Uqf8xBA==\n')
    put("signature", "berth", berth_pub.split("\n")[1] + "\n" + 'untrusted comment: signature from berth secret key E7A3FDA6D1CECFD6\nRUTWz87Rpv2j5wdH6lIa3aUKr4KCe4gRLlwzJiOcL2e/DFUQ3RRGfu7fkMynIXZIBk6z1pn5YFnEfORqwf2zaeqUDA86a/io8wk=\ntrusted comment: timestamp:1796170706\tfile:s.yaml\tversion:9\texpires:2030-02-03T04:05:06Z\nasz17mP+lrMas202wQWaj68M2s4djP3HU5Tjz8sNKPvrqk1TJ4L009pMKGyi+R2ZC+3hi25Khbyzs9e98htmCQ==\n')
    put("signature", "public-key", ms_pub)
    put("signature", "secret-key-unencrypted", 'untrusted comment: minisign encrypted secret key\nRWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAw0cGXo0G8B5G03Y5JnxzdlQax13a90s8Vvl47lqvYYPFKi6atF5QM8PeUp0OWmf/uXBzYyE+vhOY49X5BV5cNrAlfm6MDa9iAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n')
    put("signature", "facts", "timestamp:1700000000\tfile:a.yaml\tversion:3\texpires:2027-01-31T01:00:00.5+01:00")
    return 0


if __name__ == "__main__":
    sys.exit(main())
