#!/usr/bin/env python3
"""`make bench-registry`: pull a ~40 MB, 5-layer image from a loopback
docker-registry with berth (the static firmware build) and with
`skopeo copy docker://... oci:DIR` + `umoci unpack`, in the same run;
3 rounds each, medians. Usage: registry.py BERTH OUT.md"""

import os, statistics, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "registry"))
import harness as h  # noqa: E402

OUT = sys.argv[2]
ROUNDS = 3


def timed(cmd):
    t = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {p.stderr}")
    return time.monotonic() - t, int(p.stderr.strip().splitlines()[-1])


def main():
    port = h.registry("bench")
    reg = f"127.0.0.1:{port}"
    L = h.Layout(f"{h.TMP}/bench-layout")
    layers = []
    for i in range(5):
        entries = [(f"l{i}", None)]
        entries += [(f"l{i}/f{j}", os.urandom(12 << 10) + b"text line\n" * 400) for j in range(600)]
        layers.append(h.layer_tar(entries))
    L.index([L.image(layers)], "bench")
    h.skopeo(f"oci:{L.path}:bench", f"docker://{reg}/bench:1")
    size = sum(len(x) for x in layers)
    berth_t, berth_rss, other_t, other_rss = [], [], [], []
    for r in range(ROUNDS):
        root = f"{h.TMP}/store{r}"
        t, rss = timed([h.BERTH, "--root", root, "image", "pull", "--plain-http", f"{reg}/bench:1"])
        berth_t.append(t)
        berth_rss.append(rss)
        oci, bundle = f"{h.TMP}/oci{r}", f"{h.TMP}/bundle{r}"
        t1, rss1 = timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{reg}/bench:1", f"oci:{oci}:bench"])
        t2, rss2 = timed(["umoci", "unpack", "--rootless", "--image", f"{oci}:bench", bundle])
        other_t.append(t1 + t2)
        other_rss.append(max(rss1, rss2))
        subprocess.run(["rm", "-rf", root, oci, bundle])
    b, o = statistics.median(berth_t), statistics.median(other_t)
    with open(OUT, "w") as f:
        f.write(f"""## Registry pull

`make bench-registry` (bench/registry.py): a {size / 1e6:.1f} MB image of 5 gzip
layers (3,000 files) pushed with skopeo to Debian's docker-registry 2.8 on
127.0.0.1, then pulled {ROUNDS} times by each side, medians; the store and
the OCI directory on the same disk.

| pull | time | peak RSS |
|---|---|---|
| berth image pull (`make static` firmware build with `--features registry`; download, sha256, extract, syncfs) | {b:.2f} s | {statistics.median(berth_rss) / 1024:.1f} MiB |
| skopeo copy docker://... oci:DIR + umoci unpack --rootless | {o:.2f} s | {statistics.median(other_rss) / 1024:.1f} MiB (the larger of the two) |

berth takes {b / o:.2f}x their time (goal: at most 0.5x, peak RSS under 8 MiB).
berth downloads layer N+1 while it applies layer N; rounds: berth
{", ".join(f"{x:.2f}" for x in berth_t)} s, skopeo + umoci {", ".join(f"{x:.2f}" for x in other_t)} s.
""")
    print(open(OUT).read())


if __name__ == "__main__":
    try:
        main()
    finally:
        h.cleanup()
